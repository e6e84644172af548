"""Valid-event throughput of replay with malformed records mixed in, against the clean stream.

    python -m benchmarks.bad_input [--events 30000] [--rounds 3] [--shares 0.05 0.2] [--features none]

The clean stream is Hyperplane events (one label each 30 s later, every 50th never labelled);
the dirty streams are the same valid records with ``tests/harness/badinput.py`` records mixed in
until they are the given share of all records (uniformly over the corpus's kinds, a tenth of
them stream kinds: duplicate ids, wrong-type labels, labels for expired or unknown events).
Each round replays every stream once, interleaved; the figure is the median over rounds of
(valid events/s with bad input) / (valid events/s clean), both in the same round. The goal is a
ratio >= 0.90 (at most a 10% drop).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from river.datasets import synth

from riverrun.streams.backtest.replay import replay
from riverrun.streams.backtest.synth import to_records
from tests.harness.badinput import mix

TTL = 600.0


def make_stream(n: int):
    """Valid events and labels (every 50th event without a label)."""
    hyperplane = synth.Hyperplane(seed=42, n_features=10).take(n)
    data = [({f"f{k}": v for k, v in x.items()}, bool(y)) for x, y in hyperplane]
    events, labels = to_records(data, label_delay=timedelta(seconds=30), n_entities=1000)
    return events, [lb for i, lb in enumerate(labels) if i % 50 != 49]


def write(path: Path, lines: list[bytes]) -> Path:
    path.write_bytes(b"".join(line + b"\n" for line in lines))
    return path


def rate(events_file: Path, labels_file: Path, n_valid: int, features: str) -> tuple[float, dict]:
    """Valid events per second of one replay, and its dead letters by reason."""
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        result = replay(
            events_file,
            labels_file,
            out,
            models=[("lr", "lr")],
            features=features,
            label_ttl_seconds=TTL,
            plot=False,
        )
        return n_valid / (time.perf_counter() - start), dict(result.dead_letters)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=30_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--shares", type=float, nargs="+", default=[0.05, 0.2])
    parser.add_argument("--features", default="none", choices=["none", "default"])
    args = parser.parse_args()

    events, labels = make_stream(args.events)
    tmp = Path(tempfile.mkdtemp())
    files = {
        "clean": (
            write(tmp / "clean-e.jsonl", [e.model_dump_json().encode() for e in events]),
            write(tmp / "clean-l.jsonl", [lb.model_dump_json().encode() for lb in labels]),
        )
    }
    for share in args.shares:
        mixed = mix(events, labels, TTL, share=share)
        name = f"{share:.0%} bad"
        files[name] = (
            write(tmp / f"{share}-e.jsonl", mixed.events),
            write(tmp / f"{share}-l.jsonl", mixed.labels),
        )
        print(f"{name}: {len(mixed.expected):,} bad records among {len(mixed.events) + len(mixed.labels):,}")

    rates: dict[str, list[float]] = {name: [] for name in files}
    ratios: dict[str, list[float]] = {name: [] for name in files if name != "clean"}
    for r in range(args.rounds):
        row = {}
        for name, (ev, lb) in files.items():
            row[name], dead = rate(ev, lb, len(events), args.features)
            rates[name].append(row[name])
            if r == 0 and name != "clean":
                print(f"  {name} dead letters: {dict(sorted(dead.items()))}")
        for name in ratios:
            ratios[name].append(row[name] / row["clean"])
        print(f"round {r + 1}: " + "  ".join(f"{name} {v:,.0f} valid ev/s" for name, v in row.items()))
    print(f"\nmedian over {args.rounds} rounds ({args.events:,} valid events, features {args.features}):")
    print(f"  clean: {statistics.median(rates['clean']):,.0f} valid events/s")
    for name, values in ratios.items():
        each = ", ".join(f"{v:.3f}" for v in values)
        print(
            f"  {name}: {statistics.median(rates[name]):,.0f} valid events/s, "
            f"ratio to clean {statistics.median(values):.3f} (rounds: {each})"
        )


if __name__ == "__main__":
    main()
