"""``riverrun run``: the live dataflow on Kafka, whole or as one shard."""

from __future__ import annotations

from riverrun.streams.cli.common import command, kafka_settings


def add_run(sub) -> None:
    p = command(
        sub,
        "run",
        help="run the dataflow on Kafka (recovery on by default)",
        description="Consume events and labels from Kafka, publish predictions and "
        "dead letters. State and offsets are snapshotted to [recovery] directory "
        "every snapshot_interval_seconds; after a crash, rerun the same command to "
        "resume (outputs since the last snapshot are re-published, identical).",
    )
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


def _cmd_run(args) -> int:
    from riverrun.streams.flow.live import run_live
    from riverrun.streams.flow.shards import Shard

    settings = kafka_settings(args)
    addresses = args.addresses.split(";") if args.addresses else None
    shard = Shard.parse(args.shard) if args.shard else None
    run_live(settings, workers=args.workers, process_id=args.process_id, addresses=addresses, shard=shard)
    return 0
