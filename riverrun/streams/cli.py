"""The ``riverrun`` command line."""

from __future__ import annotations

import argparse
import logging
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from riverrun.errors import RiverrunError

EPILOG = "Settings: -c FILE (TOML) and RIVERRUN_* / KAFKA_BOOTSTRAP_SERVERS environment variables."


def _model_arg(text: str) -> tuple[str, str]:
    """``lr`` -> (lr, lr); ``champion=hat`` -> (champion, hat)."""
    name, sep, recipe = text.partition("=")
    return (name, recipe) if sep else (text, text)


def _kafka_settings(args):
    """The settings of a command that talks to Kafka. When the environment overrides the
    file's (or the default) broker address, says so on stderr, in one line: otherwise
    KAFKA_BOOTSTRAP_SERVERS silently sends the command to another broker than the file names."""
    from riverrun.streams.settings import load_settings

    settings = load_settings(args.config)
    note = settings.bootstrap_origin().note()
    if note is not None:
        print(f"riverrun {args.command}: {note}", file=sys.stderr)
    return settings


def _add_config(p: argparse.ArgumentParser) -> None:
    p.add_argument("-c", "--config", type=Path, help="TOML settings file (see riverrun.example.toml)")


def _cmd_demo(args) -> int:
    from riverrun.streams.backtest.demo import run_demo

    summary = run_demo(
        args.out, n_events=args.events, label_delay_seconds=args.label_delay, progress=not args.no_progress
    )
    print(
        f"demo: {summary['predictions']} predictions, {summary['dead_letters']} dead letters "
        f"(bad input), {summary['quarantined_labels']} labels quarantined in {summary['seconds']:.1f}s"
    )
    for model, m in summary["final"].items():
        print(
            f"  {model:>9}: accuracy {m['accuracy']:.4f}  log loss {m['log_loss']:.4f}  "
            f"ROC AUC {m['roc_auc']:.4f}"
        )
    for action, version in summary["actions"]:
        print(f"  lifecycle: {action}" + (f" -> serving v{version}" if version else ""))
    print(f"report: {summary['report']}\nplot:   {summary['plot']}")
    reg = summary["registry"]
    print(
        f"checkpoints: RIVERRUN_REGISTRY__KEY=$(cat {reg.parent}/registry.key) "
        f"riverrun models list lr-policy --registry {reg}"
    )
    return 0


def _policies(args, settings):
    """--policy none|default|config (repeatable) -> [(name, PolicyConfig)]. ``default`` is tuned
    by -c CONFIG's [flow.policy] when given; ``config`` is [flow.policy] as the live flow runs it
    (on or off). Without --policy: none for files, config for --from-kafka."""
    from riverrun.learners.lifecycle import PolicyConfig

    names = args.policy or (["config"] if args.from_kafka else ["none"])
    out = []
    for name in dict.fromkeys(names):
        if name == "none":
            out.append((name, PolicyConfig(enabled=False)))
        elif settings is None:
            out.append((name, PolicyConfig()))
        else:
            config = settings.flow.policy.config()
            if name == "default" and not config.enabled:
                from dataclasses import replace

                config = replace(config, enabled=True)
            out.append((name, config))
    return out


def _replay_input(args, settings):
    """Files, or a range of the configured Kafka topics."""
    from riverrun.streams.backtest.replay import file_input, kafka_input

    ranged = (args.start_offset, args.end_offset, args.start_time, args.end_time)
    if not args.from_kafka:
        if args.events is None or args.labels is None:
            raise RiverrunError("give --events and --labels files, or --from-kafka (topics from -c CONFIG)")
        if any(v is not None for v in ranged):
            raise RiverrunError("--start/--end offsets and times select a Kafka range: add --from-kafka")
        if args.no_control:
            raise RiverrunError("--no-control is for --from-kafka (files have no control topic)")
        for path in (args.events, args.labels):
            if not path.is_file():
                raise RiverrunError(f"{path} not found")
        return file_input(args.events, args.labels)
    if args.events is not None or args.labels is not None:
        raise RiverrunError("--from-kafka reads the topics of -c CONFIG: drop --events/--labels")
    if (args.start_offset or args.end_offset) and (args.start_time or args.end_time):
        raise RiverrunError("select the range by offsets or by times, not both")
    from riverrun.streams.kafka.admin import require_topics
    from riverrun.streams.kafka.range import parse_offsets

    parse_offsets(args.start_offset), parse_offsets(args.end_offset)  # fail before connecting
    times = []
    for text in (args.start_time, args.end_time):
        try:
            times.append(datetime.fromisoformat(text) if text else None)
        except ValueError:
            raise RiverrunError(f"time {text!r} is not ISO-8601 (e.g. 2024-01-01T00:00:00+00:00)") from None
    topics = [settings.topics.events, settings.topics.labels]
    control, loader = None, None
    if not args.no_control:  # operator commands over the same range, as the live flow read them
        from riverrun.streams.core.control import control_loader

        control = settings.topics.control
        loader = control_loader(settings.registry.opener(), settings.flow.max_payload_bytes)
        topics.append(control)
    require_topics(settings, topics)
    return kafka_input(
        settings.kafka.client_config(),
        settings.topics.events,
        settings.topics.labels,
        start_offset=args.start_offset,
        end_offset=args.end_offset,
        start_time=times[0],
        end_time=times[1],
        batch_size=settings.flow.batch_size,
        control_topic=control,
        control_loader=loader,
    )


def _cmd_replay(args) -> int:
    from riverrun.learners import build_model
    from riverrun.schemas import DEFAULT_MAX_BYTES
    from riverrun.streams.backtest.replay import replay_input
    from riverrun.streams.core.join import LABEL_TTL_SECONDS
    from riverrun.streams.settings import load_settings

    if args.from_kafka:
        settings = _kafka_settings(args)
    else:
        settings = load_settings(args.config) if args.config is not None else None
    flow = settings.flow if settings is not None else None
    if args.model:
        models = args.model
    elif flow is not None and args.from_kafka:
        models = [(m.name, m.recipe) for m in flow.models]  # as the live flow runs
    else:
        models = [("lr", "lr")]
    for _, recipe in models:
        build_model(recipe)  # fail fast on a bad recipe

    def pick(flag, setting, default):
        if flag is not None:
            return flag
        return getattr(flow, setting) if flow is not None else default

    inp = _replay_input(args, settings)
    result = replay_input(
        inp,
        args.out,
        models=models,
        policies=_policies(args, settings),
        features=pick(args.features, "features", "default"),
        feature_window_seconds=pick(args.feature_window, "feature_window_seconds", 300.0),
        label_ttl_seconds=pick(args.label_ttl, "label_ttl_seconds", LABEL_TTL_SECONDS),
        metrics_window=pick(None, "metrics_window", 1000),
        report_every=pick(None, "report_every", 1000),
        max_payload_bytes=pick(None, "max_payload_bytes", DEFAULT_MAX_BYTES),
        progress=False if args.no_progress else (True if args.progress else None),
        pass_per_run=args.pass_per_run,
        segment_by=pick(args.segment_by, "segment_by", None) or None,  # "": no segments
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
        print(f"  {run['name']}: learned {run['n_learned']}  {shown}  actions {acts}")
    print(f"output: {args.out}/predictions.jsonl, report.json, report.html, metrics.png")
    return 0


def _cmd_run(args) -> int:
    from riverrun.streams.flow.live import run_live
    from riverrun.streams.flow.shards import Shard

    settings = _kafka_settings(args)
    addresses = args.addresses.split(";") if args.addresses else None
    shard = Shard.parse(args.shard) if args.shard else None
    run_live(settings, workers=args.workers, process_id=args.process_id, addresses=addresses, shard=shard)
    return 0


def _cmd_produce(args) -> int:
    from riverrun.streams.backtest.synth import drifting_agrawal, to_records
    from riverrun.streams.flow.sources import read_jsonl
    from riverrun.streams.kafka.admin import require_topics
    from riverrun.streams.kafka.producer import publish_stream

    if args.events and not args.labels:
        raise RiverrunError("--events needs --labels")
    settings = _kafka_settings(args)
    # The broker and both topics first: an unreachable broker fails in a second, not after a
    # 30 s flush, and a mistyped topic is not auto-created with nobody reading it.
    require_topics(settings, [settings.topics.events, settings.topics.labels])
    if args.events:
        from riverrun.schemas import DeadLetter, decode_event, decode_label

        # Invalid lines are published verbatim, at their place: the flow dead-letters them.
        events = []
        for raw in read_jsonl(args.events):
            event = decode_event(raw, max_bytes=1 << 30)
            events.append(raw if isinstance(event, DeadLetter) else event)
        labels = []
        for raw in read_jsonl(args.labels):
            label = decode_label(raw, max_bytes=1 << 30)
            labels.append(raw if isinstance(label, DeadLetter) else label)
    else:
        start = datetime.now(UTC) if args.start is None else datetime.fromisoformat(args.start)
        data = drifting_agrawal(args.synthetic, seed=args.seed)
        interval = timedelta(seconds=1.0 / args.rate) if args.rate > 0 else timedelta(seconds=1)
        events, labels = to_records(
            data,
            start=start,
            interval=interval,
            label_delay=timedelta(seconds=args.label_delay),
            seed=args.seed,
        )
    from tqdm import tqdm

    with tqdm(total=len(events), unit="event", desc="produce", disable=args.no_progress) as bar:
        n_events, n_labels = publish_stream(
            settings, events, labels, rate=args.rate, on_progress=bar.update, key_by=args.key_by
        )
    print(
        f"produced {n_events} events to {settings.topics.events!r} and {n_labels} labels to "
        f"{settings.topics.labels!r} on {settings.kafka.bootstrap_servers}"
    )
    return 0


def _cmd_topics(args) -> int:
    from riverrun.streams.kafka.admin import create_topics

    settings = _kafka_settings(args)
    statuses = create_topics(settings)
    for name, status in statuses.items():
        print(f"{name}: {status}")
    origin = settings.bootstrap_origin()
    created = sum(status == "created" for status in statuses.values())
    print(
        f"{created} created, {len(statuses) - created} already there, on Kafka at {origin.servers} "
        f"({origin.source})"
    )
    return 0


def _open_registry(args, settings):
    opener = settings.registry.opener(args.registry)
    if opener is None:
        raise RiverrunError(
            "no registry key: set RIVERRUN_REGISTRY__KEY (the key the checkpoints were signed "
            "with; the demo writes its own to OUT/registry.key)"
        )
    return opener()


def _cmd_models(args) -> int:
    import json
    import pickle

    from riverrun.streams.settings import load_settings

    if args.models_command in ("rollback", "checkpoint"):  # through Kafka
        settings = _kafka_settings(args)
    else:
        settings = load_settings(args.config)
    registry = _open_registry(args, settings)
    if args.models_command == "list":
        versions = registry.versions(args.model)
        if not versions:
            print(f"no versions of {args.model!r}")
            return 1
        champion = registry.get_pointer(args.model, "champion")
        print(
            f"registry versions of {args.model!r} (checkpoints; `models rollback {args.model} N` takes "
            "these). Predictions' model_version is the flow's serving generation, a different "
            "number: each reason says which one it was taken from (serving vK). * = champion, "
            "what the flow serves or last checkpointed from it"
        )
        print(f"{'registry':>9}  {'parent':>6}  {'n_learned':>9}  {'accuracy':>8}  {'created_at':<27} reason")
        for v in versions:
            acc = v.metrics.get("accuracy")
            shown = f"{acc:.4f}" if acc is not None else "-"
            parent = v.parent if v.parent is not None else "-"
            mark = f"{'*' if v.version == champion else ''}v{v.version}"
            print(f"{mark:>9}  {parent:>6}  {v.n_learned:>9}  {shown:>8}  {v.created_at:<27} {v.reason}")
    elif args.models_command == "show":
        print(json.dumps(registry.meta(args.model, args.version).to_dict(), indent=2, default=str))
    elif args.models_command == "diff":
        print(json.dumps(registry.diff(args.model, args.v1, args.v2), indent=2, default=str))
    elif args.models_command == "audit":
        for record in registry.audit_log(args.model):
            print(json.dumps(record, default=str))
    elif args.models_command in ("rollback", "checkpoint"):
        return _send_control(args, settings, registry)
    elif args.models_command == "export":
        model = registry.load(args.model, args.version)  # signature checked, allowlisted
        args.out.write_bytes(pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL))
        print(
            f"wrote {args.model} v{args.version} ({type(model).__name__}) to {args.out}; "
            "it is a plain pickle now: load it only where you trust the file"
        )
    return 0


def _send_control(args, settings, registry) -> int:
    """Publish an operator command to the running flow's control topic (acknowledged). The
    broker and the topic are checked first: a mistyped [topics] control would be auto-created
    by the broker and the command reported sent, with no flow ever reading it."""
    from datetime import UTC, datetime

    from riverrun.schemas import Control
    from riverrun.streams.kafka.admin import require_topics
    from riverrun.streams.kafka.producer import VerifiedProducer

    require_topics(settings, [settings.topics.control])
    version = getattr(args, "version", None)
    if version is not None:
        registry.load(args.model, version)  # refuse now what the flow would refuse
    at = datetime.fromisoformat(args.at) if args.at else datetime.now(UTC)
    command = Control(
        model=args.model, command=args.models_command, version=version, ts=at, reason=args.reason
    )
    producer = VerifiedProducer(settings.kafka.client_config())
    producer.produce(settings.topics.control, command.model_dump_json().encode(), args.model.encode())
    producer.flush()
    what = (
        f"rollback to registry v{version} (it will serve under a new serving generation: "
        "predictions' model_version counts rollbacks and promotions, the model event names "
        f"registry v{version})"
        if version
        else "checkpoint"
    )
    print(
        f"sent {what} of {args.model!r} to {settings.topics.control!r} at event time "
        f"{at.isoformat()}: the flow applies it in order with the stream; watch "
        f"{settings.topics.model_events!r}"
    )
    return 0


def _cmd_schemas(args) -> int:
    from riverrun.schemas import export_json_schemas

    for path in export_json_schemas(args.dir):
        print(path)
    return 0


def _cmd_generate(args) -> int:
    from riverrun.streams.backtest.synth import drifting_agrawal, to_records

    data = drifting_agrawal(args.n, seed=args.seed)
    events, labels = to_records(data, label_delay=timedelta(seconds=args.label_delay), seed=args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    for name, records in (("events.jsonl", events), ("labels.jsonl", labels)):
        (args.out / name).write_bytes(b"".join(r.model_dump_json().encode() + b"\n" for r in records))
    print(f"wrote {len(events)} events and labels to {args.out}/events.jsonl, labels.jsonl")
    return 0


def _cmd_gateway(args) -> int:
    from riverrun.streams.serving.app import run_gateway

    settings = _kafka_settings(args)
    flags = {k: v for k, v in (("address", args.address), ("port", args.port)) if v is not None}
    if flags:  # flags beat the file and the environment
        settings = settings.model_copy(update={"gateway": settings.gateway.model_copy(update=flags)})
    run_gateway(settings, loglevel=args.log_level)
    return 0


def _cmd_gateway_token(args) -> int:
    from riverrun.streams.serving.auth import grant_line

    token, line = grant_line([s.strip() for s in args.scope.split(",")], args.name)
    print(token)
    print(line)
    print(
        "line 1: the bearer token, for the client only (shown once); line 2: the grant, for the "
        "gateway: a line of [gateway] tokens_file, or RIVERRUN_GATEWAY__TOKENS (';' between grants)",
        file=sys.stderr,
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="riverrun",
        description="Streaming online learning on Kafka: features, predictions, delayed labels, "
        "metrics and drift, with River models in a Bytewax dataflow.",
        epilog=EPILOG,
    )
    parser.add_argument("--log-level", default="WARNING", help="DEBUG, INFO, WARNING (default)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser(
        "demo",
        help="the whole loop in one process on a drifting stream (no broker)",
        description="Run a seeded stream with a sudden concept drift, a stretch of corrupted "
        "(flipped) labels and a covariate shift, with delayed labels and a few malformed "
        "records, through the dataflow: lr with the model lifecycle and lr without, side by "
        "side. Writes OUT/report.json (metrics and every lifecycle action with its "
        "evidence), OUT/model-events.jsonl and OUT/metrics.png. No Kafka needed.",
    )
    p.add_argument("--out", type=Path, default=Path("riverrun-demo"), help="output directory")
    p.add_argument("--events", type=int, default=20_000, help="stream length (default 20000)")
    p.add_argument(
        "--label-delay",
        type=float,
        default=60.0,
        help="seconds of event time between an event and its label (default 60)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(fn=_cmd_demo)

    p = sub.add_parser(
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
        epilog=EPILOG,
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
        type=_model_arg,
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
    _add_config(p)
    p.add_argument("--out", type=Path, default=Path("riverrun-replay"), help="output directory")
    p.add_argument(
        "--progress",
        action="store_true",
        help="progress on stderr (events, events/s, ETA) even when stderr is not a terminal",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress, even on a terminal")
    p.set_defaults(fn=_cmd_replay)

    p = sub.add_parser(
        "run",
        help="run the dataflow on Kafka (recovery on by default)",
        description="Consume events and labels from Kafka, publish predictions and "
        "dead letters. State and offsets are snapshotted to [recovery] directory "
        "every snapshot_interval_seconds; after a crash, rerun the same command to "
        "resume (outputs since the last snapshot are re-published, identical).",
        epilog=EPILOG,
    )
    _add_config(p)
    p.add_argument("-w", "--workers", type=int, help="worker threads in this process")
    p.add_argument("-i", "--process-id", type=int, help="this process's index in --addresses")
    p.add_argument("-a", "--addresses", help="all processes, 'host:port;host:port' (cluster mode)")
    p.add_argument(
        "--shard",
        metavar="I/N",
        help="run as shard I of N, on its own: only the events and labels partitions p with "
        "p %% N == I, recovery in [recovery] directory/shard-I-of-N, metrics on port+I. Needs "
        "[flow] segment_by and co-partitioned topics keyed by segment (produce --key-by); "
        "no record crosses between shards (README: Scaling)",
    )
    p.set_defaults(fn=_cmd_run)

    p = sub.add_parser(
        "produce",
        help="publish a synthetic or recorded stream to Kafka",
        description="Publish events and their labels (labels LABEL_DELAY seconds "
        "of event time later) in event-time order, every message acknowledged.",
        epilog=EPILOG,
    )
    _add_config(p)
    p.add_argument("--events", type=Path, help="events JSON Lines (else a synthetic stream)")
    p.add_argument("--labels", type=Path, help="labels JSON Lines (with --events)")
    p.add_argument("--synthetic", type=int, default=10_000, help="synthetic events (default 10000)")
    p.add_argument("--label-delay", type=float, default=60.0, help="seconds (synthetic stream)")
    p.add_argument("--rate", type=float, default=0.0, help="events per second (0: unthrottled)")
    p.add_argument("--start", help="ISO-8601 time of the first synthetic event (default: now)")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument(
        "--key-by",
        metavar="FIELD",
        help="key each event and its label by the event's feature FIELD (its segment), for "
        "run --shard; default: events by entity, labels by event id",
    )
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(fn=_cmd_produce)

    p = sub.add_parser("topics", help="manage Kafka topics")
    tsub = p.add_subparsers(dest="topics_command", required=True, metavar="ACTION")
    pc = tsub.add_parser(
        "create",
        help="create every riverrun topic that is missing",
        description="Create events, labels, predictions, model-events, "
        "dead-letter and control topics ([topics] names, partitions, "
        "replication_factor).",
        epilog=EPILOG,
    )
    _add_config(pc)
    pc.set_defaults(fn=_cmd_topics)

    p = sub.add_parser(
        "models",
        help="the model registry: versions, metadata, audit, export",
        description="Read the signed model registry ([registry] url, or "
        "--registry). Needs RIVERRUN_REGISTRY__KEY, the key the checkpoints were "
        "signed with; tampered checkpoints are refused.",
        epilog=EPILOG,
    )
    msub = p.add_subparsers(dest="models_command", required=True, metavar="ACTION")
    for name, help_text in (
        ("list", "versions of a model"),
        ("show", "one version's metadata"),
        ("diff", "what differs between two versions"),
        ("audit", "the model's audit log (every lifecycle action)"),
        ("export", "verify a version and write it as a pickle file"),
        ("rollback", "make the running flow serve VERSION (through the control topic)"),
        ("checkpoint", "make the running flow checkpoint now (through the control topic)"),
    ):
        pm = msub.add_parser(name, help=help_text, description=help_text + ".", epilog=EPILOG)
        _add_config(pm)
        pm.add_argument("--registry", help="directory or redis:// URL (default: [registry] url)")
        pm.add_argument("model", help="model name (the flow's [[flow.models]] name)")
        if name in ("show", "export", "rollback"):
            pm.add_argument("version", type=int)
        if name in ("rollback", "checkpoint"):
            pm.add_argument("--at", help="event time (ISO-8601 with offset) to apply it at; default now")
            pm.add_argument("--reason", default="operator request", help="kept in the audit log")
        if name == "diff":
            pm.add_argument("v1", type=int)
            pm.add_argument("v2", type=int)
        if name == "export":
            pm.add_argument("out", type=Path, help="output file")
        pm.set_defaults(fn=_cmd_models)

    p = sub.add_parser("schemas", help="data contracts")
    ssub = p.add_subparsers(dest="schemas_command", required=True, metavar="ACTION")
    pe = ssub.add_parser(
        "export",
        help="write the JSON Schema of every record",
        description="Write event, label, prediction and dead-letter JSON Schemas.",
    )
    pe.add_argument("dir", type=Path, help="output directory")
    pe.set_defaults(fn=_cmd_schemas)

    p = sub.add_parser(
        "generate",
        help="write a sample drifting stream as JSON Lines",
        description="Write OUT/events.jsonl and OUT/labels.jsonl (Agrawal, sudden "
        "drift halfway, one event per second), input for `replay` and `produce`.",
    )
    p.add_argument("--out", type=Path, default=Path("riverrun-stream"))
    p.add_argument("-n", type=int, default=10_000, help="events (default 10000)")
    p.add_argument("--label-delay", type=float, default=60.0, help="seconds (default 60)")
    p.add_argument("--seed", type=int, default=42)
    p.set_defaults(fn=_cmd_generate)

    p = sub.add_parser(
        "gateway",
        help="HTTP ingest and serving (faust-streaming): POST events/labels, GET predictions/features",
        description="Serve HTTP at [gateway] address:port (default 127.0.0.1:8080), in a process of "
        "its own: POST /events and /labels (one JSON record or an array; validated like the flow "
        "validates them; 202 once Kafka acknowledged, 400/413 with the dead-letter reason), "
        "GET /predictions/ENTITY[?model=NAME] and /features/ENTITY (latest, from the online store "
        "in Redis), GET /models (registry versions; needs RIVERRUN_REGISTRY__KEY), GET /healthz. "
        "A Faust agent copies the predictions topic into the online store; the flow writes the "
        "features when [online_store] enabled = true. Every route but /healthz needs a bearer "
        'token ([gateway] auth = "token"; `riverrun gateway token` makes one). Needs the gateway '
        "extra: pip install 'riverrun[gateway]' (from a clone: pip install -e '.[gateway]').",
        epilog=EPILOG,
    )
    _add_config(p)
    p.add_argument("--address", help="interface to bind (default: [gateway] address, 127.0.0.1)")
    p.add_argument("--port", type=int, help="TCP port (default: [gateway] port, 8080)")
    p.set_defaults(fn=_cmd_gateway)
    gsub = p.add_subparsers(dest="gateway_command", metavar="ACTION")
    pt = gsub.add_parser(
        "token",
        help="make a bearer token and its grant line",
        description="Print a new random bearer token (line 1, for the client) and its grant line "
        "(line 2, 'sha256:HASH SCOPES [NAME]', for [gateway] tokens_file or RIVERRUN_GATEWAY__TOKENS). "
        "Needs no extra and no broker.",
    )
    pt.add_argument("--scope", default="ingest,read", help="ingest, read or ingest,read (default)")
    pt.add_argument("--name", default="", help="a name for the gateway's logs")
    pt.set_defaults(fn=_cmd_gateway_token)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        return args.fn(args)
    except RiverrunError as exc:
        print(f"riverrun {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
