"""The crash harness as a command: SIGKILL `riverrun run` again and again on a real broker, then
check that no event lost its prediction, duplicates equal their first copy and the final model
state equals an uninterrupted run's. What it does is ``tests/harness/crash.py``'s docstring.

From the repository root (the harness is in the ``tests`` package)::

    KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:9092 python -m scripts.crash_harness --events 200000 --kills 10

(``python scripts/crash_harness.py ...`` from the root runs the same.)

Measured on the 2-core dev machine (lifecycle on, snapshot interval 1 s, shared broker):

* ``--events 200000 --kills 10 --seed 1``: PASS; 5 of the 10 kills while a snapshot was being
  written; 0 lost; 229,000 prediction messages, 29,000 duplicates, all identical to their first
  copy; final state identical (100 checkpoints taken, holdout max difference 0.0); 127 s.
* ``--events 200000 --kills 10 --seed 2 --processes 2``: PASS; kills hit process 0 (5), process 1
  (2) or both (3), 4 while a snapshot was being written; a survivor always exited by itself
  (exit 1) once its peer was gone; 0 lost; 4,727 duplicates, all identical; final state
  identical (serving version 3 after lifecycle actions, 101 checkpoints); 508 s (the machine
  was also running the test suite).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

if __name__ == "__main__" and not __package__:
    # Run as a file: its own folder is on the import path, not the root the tests package is
    # in. Run it as the module it is instead.
    if Path.cwd().resolve() != ROOT:
        sys.exit(f"run it from the repository root: cd {ROOT} && python -m scripts.crash_harness ...")
    os.execv(sys.executable, [sys.executable, "-m", "scripts.crash_harness", *sys.argv[1:]])

import argparse  # noqa: E402
import json  # noqa: E402
import uuid  # noqa: E402

from tests.harness.crash import run_harness, say  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.crash_harness",
        description="SIGKILL `riverrun run` repeatedly on a real Kafka and check: no event without "
        "a prediction, duplicates identical to their first copy, final model state identical to "
        "an uninterrupted run. Prints progress to stderr and a JSON summary to stdout; exit 0 "
        "when every check passed.",
        epilog="Needs a broker: KAFKA_BOOTSTRAP_SERVERS (default 127.0.0.1:9092).",
    )
    parser.add_argument("--events", type=int, default=200_000, help="events (default 200000)")
    parser.add_argument("--kills", type=int, default=10, help="SIGKILLs (default 10)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the stream and the kills")
    parser.add_argument(
        "--processes", type=int, default=1, choices=(1, 2), help="flow processes (a Bytewax cluster)"
    )
    parser.add_argument("--no-policy", action="store_true", help="lifecycle off (River alone)")
    parser.add_argument(
        "--snapshot-share",
        type=float,
        default=0.5,
        help="share of kills aimed at a snapshot being written (default 0.5)",
    )
    parser.add_argument("--workdir", type=Path, default=None, help="default: a new directory under /tmp")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds per wait (default 1800)")
    args = parser.parse_args(argv)
    servers = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    workdir = args.workdir or Path(f"/tmp/crash-harness-{uuid.uuid4().hex[:8]}")
    say(f"workdir {workdir}, broker {servers}")
    outcome = run_harness(
        servers,
        workdir,
        n_events=args.events,
        kills=args.kills,
        seed=args.seed,
        policy=not args.no_policy,
        processes=args.processes,
        snapshot_share=args.snapshot_share,
        timeout=args.timeout,
    )
    summary = outcome.summary()
    print(json.dumps(summary, indent=2, default=str))
    say(
        f"{'PASS' if outcome.ok else 'FAIL'}: {len(outcome.kills)} kills survived, {outcome.events} events, "
        f"{outcome.lost} lost, {outcome.duplicates} duplicate predictions "
        f"({outcome.mismatched_duplicates} differing), final state identical: "
        f"{summary['final_state_identical']}, {outcome.seconds:.0f}s"
    )
    return 0 if outcome.ok else 1


if __name__ == "__main__":
    sys.exit(main())
