"""The ``riverrun`` command line: ``main`` and the top-level parser. Each command group adds its
subcommands and holds their handlers in a module of its own: ``demo``, ``replay``, ``run`` (whole
or a shard), ``produce`` (with ``topics``, ``generate``, ``schemas``), ``models``, ``gateway``;
``common`` has what they share. Handlers import what they run when they run: ``riverrun --help``
loads none of it."""

from __future__ import annotations

import argparse
import logging
import sys

from riverrun.errors import RiverrunError
from riverrun.streams.cli import demo, gateway, models, produce, replay, run
from riverrun.streams.cli.common import EPILOG


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="riverrun",
        description="Streaming online learning on Kafka: features, predictions, delayed labels, "
        "metrics and drift, with River models in a Bytewax dataflow.",
        epilog=EPILOG,
    )
    parser.add_argument("--log-level", default="WARNING", help="DEBUG, INFO, WARNING (default)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    # in the order `riverrun --help` lists them
    demo.add_demo(sub)
    replay.add_replay(sub)
    run.add_run(sub)
    produce.add_produce(sub)
    produce.add_topics(sub)
    models.add_models(sub)
    produce.add_schemas(sub)
    produce.add_generate(sub)
    gateway.add_gateway(sub)
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
