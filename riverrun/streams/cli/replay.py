"""``riverrun replay``: a backtest of models and policies on files or a range of the Kafka topics.
What the options configure is worked out by ``backtest.replay_setup``; this parses and prints."""

from __future__ import annotations

from pathlib import Path

from riverrun.streams.cli.common import add_config, command, kafka_settings, options


def model_arg(text: str) -> tuple[str, str]:
    """``lr`` -> (lr, lr); ``champion=hat`` -> (champion, hat)."""
    name, sep, recipe = text.partition("=")
    return (name, recipe) if sep else (text, text)


def add_replay(sub) -> None:
    p = command(
        sub,
        "replay",
        help="backtest models and policies on recorded events and labels (files or Kafka)",
        description="Replay JSON Lines files of events and labels (the topic "
        "schemas), or a range of the Kafka topics (--from-kafka), through the same dataflow "
        "as `run`, in event-time order (a label at time t before an event at t), deciding "
        "exactly as live does. Every --model runs with every --policy in one pass over the "
        "input. Writes OUT/predictions.jsonl (one per event and run, in event order; "
        "byte-identical for the same input), dead-letter.jsonl (stamped with each record's own "
        "event time, not the wall clock, and sorted: byte-identical too), model-events.jsonl, "
        "report.json (one entry per run), report.html (summary table, rolling metrics with "
        "drift and action markers, label delay, PSI per feature) and metrics.png. With "
        "--features none and --policy none it equals River's "
        "evaluate.progressive_val_score(moment=event time, delay=...). --from-kafka also "
        "reads the control topic over the same range: operator rollbacks and checkpoints take "
        "effect at their event time, as they did live.",
        config=False,
    )
    p.add_argument("--events", type=Path, help="events JSON Lines file")
    p.add_argument("--labels", type=Path, help="labels JSON Lines file")
    p.add_argument(
        "--from-kafka",
        action="store_true",
        help="read the events and labels topics of -c CONFIG instead of files (a finite range: "
        "by default what the topics hold when the replay starts); models and flow settings "
        "default to the config's, as `run` uses them",
    )
    p.add_argument(
        "--start-offset",
        help="with --from-kafka: first offset per partition, N (every partition of both topics) "
        "or KIND[:PARTITION]=N,... with KIND events|labels|control (default: the earliest kept)",
    )
    p.add_argument(
        "--end-offset",
        help="with --from-kafka: offset to stop before (exclusive), same forms (default: the "
        "end of each partition when the replay starts)",
    )
    p.add_argument(
        "--start-time",
        help="with --from-kafka: ISO-8601 time with offset; start each partition at its first "
        "record whose Kafka timestamp is at or after it (offsets_for_times)",
    )
    p.add_argument(
        "--end-time",
        help="with --from-kafka: ISO-8601 time with offset; stop each partition before its first "
        "record whose Kafka timestamp is at or after it",
    )
    p.add_argument(
        "--model",
        type=model_arg,
        action="append",
        help="recipe (lr, hat, arf, module:callable) or NAME=RECIPE; repeat to compare",
    )
    p.add_argument(
        "--features",
        choices=["none", "default"],
        default=None,
        help="none: raw features; default: + per-entity count, recency, rolling means "
        "(default: default, or the config's [flow] features)",
    )
    p.add_argument(
        "--feature-window",
        type=float,
        default=None,
        help="rolling-mean window, seconds of event time (default 300, or the config's)",
    )
    p.add_argument(
        "--label-ttl",
        type=float,
        default=None,
        help="seconds of event time an event waits for its label (default 86400, or the config's)",
    )
    p.add_argument(
        "--entity-ttl",
        type=float,
        default=None,
        metavar="SECONDS",
        help="seconds of event time an entity may stay quiet before its features start afresh and "
        "its state is dropped; 0: never (default 86400, or the config's [flow] entity_ttl_seconds)",
    )
    p.add_argument(
        "--policy",
        choices=["none", "default", "config"],
        action="append",
        help="model lifecycle; repeat to compare (every model runs with every policy): none "
        "(River alone, equals progressive_val_score), default (drift detection, checkpoints, "
        "challengers, rollback; tuned by -c [flow.policy]) or config ([flow.policy] as `run` "
        "uses it, on or off). Default: none for files, config for --from-kafka",
    )
    p.add_argument(
        "--segment-by",
        metavar="FIELD",
        default=None,
        help="one instance of every model per value of this feature (or entity): lr.DE, lr.FR, "
        "..., as the live flow's [flow] segment_by; report.json has one run entry per instance "
        "(default: the config's [flow] segment_by; '' for none)",
    )
    p.add_argument(
        "--no-control",
        action="store_true",
        help="with --from-kafka: do not read the control topic (by default its operator "
        "rollbacks and checkpoints over the same range take effect at their event time, as live; "
        "with offsets it is read whole unless --start/--end-offset give control=N)",
    )
    p.add_argument(
        "--pass-per-run",
        action="store_true",
        help="one pass over the input per (model, policy) run instead of one shared pass: "
        "slower (reading, decoding and features repeated), but measures each run's own events/s",
    )
    add_config(p)  # listed here, after the replay options
    p.add_argument("--out", type=Path, default=Path("riverrun-replay"), help="output directory")
    p.add_argument(
        "--progress",
        action="store_true",
        help="progress on stderr (events, events/s, ETA) even when stderr is not a terminal",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress, even on a terminal")
    p.add_argument(
        "--mlflow",
        nargs="?",
        const="",
        metavar="TRACKING_URI",
        help="also log the replay to MLflow: a parent run, one child run per model instance with "
        "params, metric series over the stream (step = event index, timestamp = event time), the "
        "lifecycle's actions, the report files and each final model (an MLflow pyfunc model). "
        "Default store: sqlite:///OUT/mlflow.db, nothing to run. Needs the extra: pip install "
        "'riverrun[mlflow]'",
    )
    p.add_argument(
        "--mlflow-experiment",
        default="riverrun-replay",
        metavar="NAME",
        help="with --mlflow: the experiment (default riverrun-replay)",
    )
    p.set_defaults(fn=_cmd_replay)


def _cmd_replay(args) -> int:
    from riverrun.streams.backtest.replay import replay_input
    from riverrun.streams.backtest.replay_setup import (
        replay_flow_options,
        replay_models,
        replay_policies,
        replay_source,
    )
    from riverrun.streams.settings import load_settings

    if args.mlflow is not None:  # the extra, before anything is read
        from riverrun.registry.mlflow_export import require_mlflow

        require_mlflow("riverrun replay --mlflow")
    if args.from_kafka:
        settings = kafka_settings(args)
    else:
        settings = load_settings(args.config) if args.config is not None else None
    models = replay_models(args.model, settings, from_kafka=args.from_kafka)
    inp = replay_source(
        settings,
        **options(args, "events", "labels", "from_kafka", "no_control"),
        **options(args, "start_offset", "end_offset", "start_time", "end_time"),
    )
    tracker = None
    if args.mlflow is not None:  # the store and the experiment, before the replay
        from riverrun.streams.backtest.tracking import ReplayTracker

        tracker = ReplayTracker(args.mlflow or None, args.out, args.mlflow_experiment)
    flow = replay_flow_options(
        settings, **options(args, "features", "feature_window", "label_ttl", "segment_by", "entity_ttl")
    )
    result = replay_input(
        inp,
        args.out,
        models=models,
        policies=replay_policies(args.policy, settings, from_kafka=args.from_kafka),
        progress=False if args.no_progress else (True if args.progress else None),
        pass_per_run=args.pass_per_run,
        final_models=tracker is not None,
        **flow,
    )
    report = result.report
    print(
        f"replay: {report['events']:,} events, {result.n_predictions:,} predictions in "
        f"{result.seconds:.1f}s ({report['events_per_second']:,.0f} events/s over "
        f"{report['passes']} pass(es)), dead letters {dict(result.dead_letters)}"
    )
    for event in result.model_events:
        if event.action in ("rollback", "promotion", "concept_drift"):
            print(f"  {event.at:%Y-%m-%d %H:%M:%S} {event.model}: {event.action} {event.reason}")
    for run in report["runs"]:
        m = run["metrics"]
        shown = "  ".join(f"{k} {v:.4f}" for k, v in m.items() if "rolling" not in k)
        acts = sum(n for a, n in run["action_counts"].items() if a != "checkpoint")
        regret = "" if run.get("regret") is None else f"  regret {run['regret']:+.4f}"
        print(f"  {run['name']}: learned {run['n_learned']}  {shown}  actions {acts}{regret}")
    print(f"output: {args.out}/predictions.jsonl, report.json, report.html, metrics.png")
    if tracker is not None:
        tracked = tracker.log(result, inp, flow)
        print(
            f"mlflow: {tracked.uri}, experiment {args.mlflow_experiment!r} ({tracked.experiment_id}): "
            f"parent run {tracked.parent}, {len(tracked.children)} child runs"
        )
    return 0
