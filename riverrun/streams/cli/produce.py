"""The data commands: ``produce`` (a recorded or synthetic stream to Kafka), ``topics create``,
``generate`` (a sample stream as JSON Lines) and ``schemas export`` (the data contracts). What
``produce``'s options make is ``backtest.produce_input``'s."""

from __future__ import annotations

from pathlib import Path

from riverrun.streams.cli.common import command, kafka_settings, options


def add_produce(sub) -> None:
    p = command(
        sub,
        "produce",
        help="publish a synthetic or recorded stream to Kafka",
        description="Publish events and their labels (labels LABEL_DELAY seconds "
        "of event time later) in event-time order, every message acknowledged.",
    )
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


def add_topics(sub) -> None:
    p = sub.add_parser("topics", help="manage Kafka topics")
    tsub = p.add_subparsers(dest="topics_command", required=True, metavar="ACTION")
    pc = command(
        tsub,
        "create",
        help="create every riverrun topic that is missing",
        description="Create events, labels, predictions, model-events, "
        "dead-letter and control topics ([topics] names, partitions, "
        "replication_factor).",
    )
    pc.set_defaults(fn=_cmd_topics)


def add_schemas(sub) -> None:
    p = sub.add_parser("schemas", help="data contracts")
    ssub = p.add_subparsers(dest="schemas_command", required=True, metavar="ACTION")
    pe = ssub.add_parser(
        "export",
        help="write the JSON Schema of every record",
        description="Write event, label, prediction and dead-letter JSON Schemas.",
    )
    pe.add_argument("dir", type=Path, help="output directory")
    pe.set_defaults(fn=_cmd_schemas)


def add_generate(sub) -> None:
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


def _cmd_produce(args) -> int:
    from riverrun.streams.backtest.produce_input import ProduceInput
    from riverrun.streams.kafka.admin import require_topics
    from riverrun.streams.kafka.producer import publish_stream

    stream = ProduceInput(
        **options(args, "events", "labels", "synthetic", "label_delay", "rate", "start", "seed")
    )
    settings = kafka_settings(args)
    # The broker and both topics first: an unreachable broker fails in a second, not after a
    # 30 s flush, and a mistyped topic is not auto-created with nobody reading it.
    require_topics(settings, [settings.topics.events, settings.topics.labels])
    events, labels = stream.records()
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

    settings = kafka_settings(args)
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


def _cmd_schemas(args) -> int:
    from riverrun.schemas import export_json_schemas

    for path in export_json_schemas(args.dir):
        print(path)
    return 0


def _cmd_generate(args) -> int:
    from riverrun.streams.backtest.produce_input import sample_stream

    events, labels = sample_stream(args.n, seed=args.seed, label_delay=args.label_delay)
    args.out.mkdir(parents=True, exist_ok=True)
    for name, records in (("events.jsonl", events), ("labels.jsonl", labels)):
        (args.out / name).write_bytes(b"".join(r.model_dump_json().encode() + b"\n" for r in records))
    print(f"wrote {len(events)} events and labels to {args.out}/events.jsonl, labels.jsonl")
    return 0
