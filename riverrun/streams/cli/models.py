"""``riverrun models``: read the signed registry (list, show, diff, audit, export) and send the
running flow operator commands through the control topic (rollback, checkpoint)."""

from __future__ import annotations

from pathlib import Path

from riverrun.errors import RiverrunError
from riverrun.streams.cli.common import command, kafka_settings

ACTIONS = (
    ("list", "versions of a model"),
    ("show", "one version's metadata"),
    ("diff", "what differs between two versions"),
    ("audit", "the model's audit log (every lifecycle action)"),
    ("export", "verify a version and write it as a pickle file or an MLflow model"),
    ("rollback", "make the running flow serve VERSION (through the control topic)"),
    ("checkpoint", "make the running flow checkpoint now (through the control topic)"),
)
CONTROL = ("rollback", "checkpoint")  # through Kafka


def add_models(sub) -> None:
    p = command(
        sub,
        "models",
        help="the model registry: versions, metadata, audit, export",
        description="Read the signed model registry ([registry] url, or "
        "--registry). Needs RIVERRUN_REGISTRY__KEY, the key the checkpoints were "
        "signed with; tampered checkpoints are refused.",
        config=False,
    )
    msub = p.add_subparsers(dest="models_command", required=True, metavar="ACTION")
    for name, help_text in ACTIONS:
        pm = command(msub, name, help=help_text, description=help_text + ".")
        pm.add_argument("--registry", help="directory or redis:// URL (default: [registry] url)")
        pm.add_argument("model", help="model name (the flow's [[flow.models]] name)")
        if name in ("show", "export", "rollback"):
            pm.add_argument("version", type=int)
        if name in CONTROL:
            pm.add_argument("--at", help="event time (ISO-8601 with offset) to apply it at; default now")
            pm.add_argument("--reason", default="operator request", help="kept in the audit log")
        if name == "diff":
            pm.add_argument("v1", type=int)
            pm.add_argument("v2", type=int)
        if name == "export":
            pm.add_argument("out", type=Path, nargs="?", help="output file or directory (or --out)")
            pm.add_argument("--out", type=Path, dest="out_option", metavar="OUT", help="the same")
            pm.add_argument(
                "--format",
                choices=["pickle", "mlflow"],
                default="pickle",
                help="pickle: a plain pickle file of the River model (default); mlflow: an MLflow "
                "pyfunc model directory, mlflow.pyfunc.load_model(OUT).predict(DataFrame of "
                "features) gives the probabilities (needs the extra: pip install 'riverrun[mlflow]')",
            )
        pm.set_defaults(fn=_cmd_models)


def _open_registry(args, settings):
    opener = settings.registry.opener(args.registry)
    if opener is None:
        raise RiverrunError(
            "no registry key: set RIVERRUN_REGISTRY__KEY (the key the checkpoints were signed "
            "with; the demo writes its own to OUT/registry.key)"
        )
    return opener()


def _cmd_models(args) -> int:
    from riverrun.streams.settings import load_settings

    settings = kafka_settings(args) if args.models_command in CONTROL else load_settings(args.config)
    registry = _open_registry(args, settings)
    if args.models_command in CONTROL:
        return _send_control(args, settings, registry)
    return _READERS[args.models_command](args, registry)


def _list(args, registry) -> int:
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
    return 0


def _show(args, registry) -> int:
    return _print_json(registry.meta(args.model, args.version).to_dict(), indent=2)


def _diff(args, registry) -> int:
    return _print_json(registry.diff(args.model, args.v1, args.v2), indent=2)


def _audit(args, registry) -> int:
    for record in registry.audit_log(args.model):
        _print_json(record)
    return 0


def _print_json(value, indent: int | None = None) -> int:
    import json

    print(json.dumps(value, indent=indent, default=str))
    return 0


def _export(args, registry) -> int:
    import pickle

    if (args.out is None) == (args.out_option is None):
        raise RiverrunError("give the output once: OUT or --out OUT")
    args.out = args.out or args.out_option
    if args.format == "mlflow":
        from riverrun.registry.mlflow_export import export_mlflow

        meta = export_mlflow(registry, args.model, args.version, args.out)
        print(
            f"wrote {args.model} v{args.version} ({meta['model_class']}) as an MLflow model to "
            f"{args.out}: mlflow.pyfunc.load_model('{args.out}').predict(features DataFrame) gives "
            "the probabilities; loading needs riverrun and River "
            f"{meta['written_by']['river_version']} (its requirements.txt)"
        )
        return 0
    model = registry.load(args.model, args.version)  # signature checked, allowlisted
    args.out.write_bytes(pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL))
    print(
        f"wrote {args.model} v{args.version} ({type(model).__name__}) to {args.out}; "
        "it is a plain pickle now: load it only where you trust the file"
    )
    return 0


_READERS = {"list": _list, "show": _show, "diff": _diff, "audit": _audit, "export": _export}


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
    control = Control(
        model=args.model, command=args.models_command, version=version, ts=at, reason=args.reason
    )
    producer = VerifiedProducer(settings.kafka.client_config())
    producer.produce(settings.topics.control, control.model_dump_json().encode(), args.model.encode())
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
