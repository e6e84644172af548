"""What per-entity feature state costs: bytes per entity held by the features step, and the RSS
slope of a whole replay per 100,000 new entities against ``--features none`` on the same stream.

Streams where every event is a new entity (the fraud/recommendation shape: most entities are
seen a few times and never again), 5 numeric features, labels 30 s later::

    python -m benchmarks.entity_state                     # 100k and 200k events
    python -m benchmarks.entity_state --events 100000 300000

It prints, measured in this run:

* ``state B/entity``: what one entity's ``EntityFeatures`` keeps in memory after one event
  (tracemalloc over 20,000 entities), and its pickled snapshot size;
* ``RSS slope``: the growth of a replay's RSS while streaming per 100,000 new entities with the default
  features, minus the same with ``--features none`` (the feature state alone, with whatever the
  engine keeps per key).
"""

from __future__ import annotations

import argparse
import gc
import pickle
import random
import subprocess
import sys
import tempfile
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path

from benchmarks.memory import rss_kb
from riverrun.schemas import Event, Label
from riverrun.streams.core.features import EntityFeatures
from riverrun.streams.core.ttl import ENTITY_TTL_SECONDS

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def stream(n: int, seed: int = 7) -> tuple[list[Event], list[Label]]:
    """``n`` events one second apart, each of a new entity, and their labels 30 s later."""
    rng = random.Random(seed)
    events, labels = [], []
    for i in range(n):
        x = {f"x{k}": rng.random() for k in range(5)}
        ts = T0 + timedelta(seconds=i)
        events.append(Event(event_id=f"e{i:09d}", entity=f"u{i}", ts=ts, features=x))
        labels.append(Label(event_id=f"e{i:09d}", label=sum(x.values()) > 2.5, ts=ts + timedelta(seconds=30)))
    return events, labels


def state_bytes(n: int = 20_000) -> tuple[float, float]:
    """(bytes in memory, pickled bytes) per entity of ``EntityFeatures`` after one event each."""
    events, _ = stream(n)
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    states = []
    for e in events:
        state = EntityFeatures()
        state.transform(e)
        states.append(state)
    in_memory = (tracemalloc.get_traced_memory()[0] - before) / n
    tracemalloc.stop()
    pickled = sum(len(pickle.dumps(s, protocol=pickle.HIGHEST_PROTOCOL)) for s in states[:2000]) / 2000
    return in_memory, pickled


def _write(path: Path, records: list) -> Path:
    path.write_bytes(b"".join(r.model_dump_json().encode() + b"\n" for r in records))
    return path


_REPLAY = """
import sys
from riverrun.streams.backtest.replay import replay
ttl = None if sys.argv[5] == "off" else float(sys.argv[5])
replay(sys.argv[1], sys.argv[2], sys.argv[3], models=[("lr", "lr")], features=sys.argv[4], plot=False,
       entity_ttl_seconds=ttl)
"""


def stream_rss_mb(events: Path, labels: Path, features: str, out: Path, ttl: str = "off") -> float:
    """The largest RSS of a replay (a process of its own, ``lr``, no policy) while it streams,
    in MiB: sampled from /proc every 0.1 s until its last prediction is written (the report it
    writes afterwards is left out: its peak grows with the events, not the entities). ``ttl``:
    ``[flow] entity_ttl_seconds`` in seconds, or "off"."""
    proc = subprocess.Popen(
        [sys.executable, "-c", _REPLAY, str(events), str(labels), str(out), features, ttl],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    predictions = out / "predictions.jsonl"
    samples: list[tuple[int, float]] = []  # (predictions.jsonl's size, RSS in MiB)
    while proc.poll() is None:
        rss = rss_kb(proc.pid)
        if rss is not None:
            samples.append((predictions.stat().st_size if predictions.exists() else 0, rss / 1024))
        time.sleep(0.1)
    if proc.returncode != 0:
        raise SystemExit(f"replay failed: {proc.stderr.read().decode()[-2000:] if proc.stderr else ''}")
    final = predictions.stat().st_size
    return max((rss for size, rss in samples if size < final), default=float("nan"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, nargs=2, default=(100_000, 200_000), metavar=("SMALL", "LARGE"))
    parser.add_argument("--ttl", type=float, default=ENTITY_TTL_SECONDS, help="entity TTL of the last row")
    args = parser.parse_args()
    small, large = args.events
    in_memory, pickled = state_bytes()
    print(f"state B/entity: {in_memory:,.0f} in memory, {pickled:,.0f} pickled (one event each)")
    rss: dict[tuple[int, str], float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for n in (small, large):
            events, labels = stream(n)
            ev, lb = _write(Path(tmp) / f"e{n}.jsonl", events), _write(Path(tmp) / f"l{n}.jsonl", labels)
            del events, labels
            for features in ("none", "default"):
                mb = rss[(n, features)] = stream_rss_mb(ev, lb, features, Path(tmp) / f"out-{n}-{features}")
                print(f"  {n:>9,} new entities, features {features:<7}: RSS while streaming {mb:,.0f} MiB")
            if n == large:  # the same with quiet entities evicted after a day (the default)
                mb = stream_rss_mb(ev, lb, "default", Path(tmp) / "out-ttl", ttl=str(args.ttl))
                print(
                    f"  {n:>9,} new entities, features default, entity TTL {args.ttl:,.0f} s: {mb:,.0f} MiB"
                )
    extra = {n: rss[(n, "default")] - rss[(n, "none")] for n in (small, large)}
    slope = (extra[large] - extra[small]) / (large - small) * 100_000
    per_entity = slope * 2**20 / 100_000
    print(f"RSS slope of the feature state: {slope:,.1f} MiB per 100k entities ({per_entity:,.0f} B/entity)")


if __name__ == "__main__":
    main()
