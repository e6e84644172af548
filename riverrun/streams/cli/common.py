"""What every command group shares: the epilog, ``-c CONFIG``, making a subcommand, and the
settings of a command that talks to Kafka. Imports nothing heavy: ``riverrun --help`` loads it."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

EPILOG = "Settings: -c FILE (TOML) and RIVERRUN_* / KAFKA_BOOTSTRAP_SERVERS environment variables."


def add_config(p: argparse.ArgumentParser) -> None:
    p.add_argument("-c", "--config", type=Path, help="TOML settings file (see riverrun.example.toml)")


def command(
    sub,
    name: str,
    help: str,
    description: str | None = None,
    *,
    config: bool = True,
    epilog: str | None = EPILOG,
) -> argparse.ArgumentParser:
    """A subcommand of ``sub``, with the settings epilog and ``-c CONFIG`` first (``config=False``:
    the caller adds it where its help lists it, or the command reads no settings)."""
    p = sub.add_parser(name, help=help, description=description, epilog=epilog)
    if config:
        add_config(p)
    return p


def options(args, *names: str) -> dict:
    """The named options of ``args``, as keywords of the function they configure (its parameters
    are named as the options)."""
    return {name: getattr(args, name) for name in names}


def kafka_settings(args):
    """The settings of a command that talks to Kafka. When the environment overrides the
    file's (or the default) broker address, says so on stderr, in one line: otherwise
    KAFKA_BOOTSTRAP_SERVERS silently sends the command to another broker than the file names."""
    from riverrun.streams.settings import load_settings

    settings = load_settings(args.config)
    note = settings.bootstrap_origin().note()
    if note is not None:
        print(f"riverrun {args.command}: {note}", file=sys.stderr)
    return settings
