"""``riverrun demo``: the whole loop in one process, no broker."""

from __future__ import annotations

from pathlib import Path

from riverrun.streams.cli.common import command


def add_demo(sub) -> None:
    p = command(
        sub,
        "demo",
        help="the whole loop in one process on a drifting stream (no broker)",
        description="Run a seeded stream with a sudden concept drift, a stretch of corrupted "
        "(flipped) labels and a covariate shift, with delayed labels and a few malformed "
        "records, through the dataflow: lr with the model lifecycle and lr without, side by "
        "side. Writes OUT/report.json (metrics and every lifecycle action with its "
        "evidence), OUT/model-events.jsonl and OUT/metrics.png. No Kafka needed.",
        config=False,
        epilog=None,
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
