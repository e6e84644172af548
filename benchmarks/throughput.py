"""Throughput of riverrun replay against the plain River loop, measured side by side.

    python -m benchmarks.throughput [--events 50000] [--rounds 3] [--model lr]

Prints events/s of:
- plain: ``p = model.predict_proba_one(x); model.learn_one(x, y)`` over pre-built dicts
  (River alone, no I/O: the ceiling);
- replay, features none: ``riverrun replay`` from JSON Lines files to predictions.jsonl
  (decode, validate, event-time ordering, join, predict, learn, metrics, write);
- replay, features default: the same plus per-entity features (count, recency, rolling means).

The ratio is replay events/s divided by plain events/s in the same round (higher is better;
1.0 = as fast as River alone). Rounds are interleaved and the median is reported, because this
machine is noisy: read the ratios, not the absolute numbers.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from river.datasets import synth

from riverrun.learners import build_model
from riverrun.streams.backtest.replay import replay
from riverrun.streams.backtest.synth import to_records


def make_stream(n: int):
    hyperplane = synth.Hyperplane(seed=42, n_features=10).take(n)
    data = [({f"f{k}": v for k, v in x.items()}, bool(y)) for x, y in hyperplane]
    return data, *to_records(data, label_delay=timedelta(seconds=30), n_entities=1000)


def plain_loop(data, recipe: str) -> float:
    model = build_model(recipe)
    start = time.perf_counter()
    for x, y in data:
        model.predict_proba_one(x)
        model.learn_one(x, y)
    return len(data) / (time.perf_counter() - start)


def replay_rate(events_file: Path, labels_file: Path, n: int, recipe: str, features: str) -> float:
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        replay(events_file, labels_file, out, models=[(recipe, recipe)], features=features, plot=False)
        return n / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--model", default="lr")
    args = parser.parse_args()

    data, events, labels = make_stream(args.events)
    tmp = Path(tempfile.mkdtemp())
    events_file, labels_file = tmp / "events.jsonl", tmp / "labels.jsonl"
    events_file.write_bytes(b"".join(e.model_dump_json().encode() + b"\n" for e in events))
    labels_file.write_bytes(b"".join(lb.model_dump_json().encode() + b"\n" for lb in labels))

    rows: dict[str, list[float]] = {"plain": [], "replay none": [], "replay default": []}
    ratios: dict[str, list[float]] = {"replay none": [], "replay default": []}
    for r in range(args.rounds):
        plain = plain_loop(data, args.model)
        none = replay_rate(events_file, labels_file, args.events, args.model, "none")
        default = replay_rate(events_file, labels_file, args.events, args.model, "default")
        rows["plain"].append(plain)
        rows["replay none"].append(none)
        rows["replay default"].append(default)
        ratios["replay none"].append(none / plain)
        ratios["replay default"].append(default / plain)
        print(
            f"round {r + 1}: plain {plain:,.0f}/s  replay none {none:,.0f}/s "
            f"({none / plain:.2f}x)  replay default {default:,.0f}/s ({default / plain:.2f}x)"
        )

    print(
        f"\nmodel {args.model}, {args.events:,} events (Hyperplane, 10 features, 1000 entities), "
        f"{args.rounds} rounds, medians:"
    )
    print(f"{'':<16}{'events/s':>12}{'ratio vs plain':>16}")
    print(f"{'plain River':<16}{statistics.median(rows['plain']):>12,.0f}{1.0:>16.2f}")
    for name in ("replay none", "replay default"):
        print(f"{name:<16}{statistics.median(rows[name]):>12,.0f}{statistics.median(ratios[name]):>16.2f}")


if __name__ == "__main__":
    main()
