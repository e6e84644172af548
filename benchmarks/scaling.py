"""Throughput of per-segment models from 1 to 2 processes, live on the real broker.

    python benchmarks/scaling.py [--events 60000] [--segments 8] [--partitions 4] [--rounds 2]

The stream (River's Hyperplane, 10 features, 1000 entities, labels 30 s of event time later)
carries a ``segment`` field with ``--segments`` values; the flow runs ``[flow] segment_by =
"segment"``, so each segment is a model instance of its own (``lr.s0``, ...). The topics have
``--partitions`` partitions. Each round runs the same pre-published input with 1 process and
with 2 processes (one worker each, a Bytewax cluster), from fresh recovery state, and times the
first to the last prediction (startup excluded). The ratio is 2-process events/s over 1-process
events/s in the same round: what a second process buys.

What parallelizes: decoding (per partition), the per-entity features, and the model instances
(keyed by model and segment). What does not: the ordering step, one key that sees every record
in event-time order, and the hops between processes (each record is pickled to its feature
key's and its segment's worker).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path

from river.datasets import synth

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

from crash_harness import FlowCluster, PredictionReader  # noqa: E402

from riverrun.streams.kafka import create_topics, publish_stream  # noqa: E402
from riverrun.streams.settings import load_settings  # noqa: E402
from riverrun.streams.synth import to_records  # noqa: E402


def make_stream(n: int, segments: int):
    rows = []
    for i, (x, y) in enumerate(synth.Hyperplane(seed=42, n_features=10).take(n)):
        features = {f"f{k}": v for k, v in x.items()}
        features["segment"] = f"s{i % segments}"
        rows.append((features, bool(y)))
    return to_records(rows, label_delay=timedelta(seconds=30), n_entities=1000)


def write_config(servers: str, base: Path, inputs: dict[str, str], partitions: int, name: str) -> Path:
    run = base / name
    run.mkdir(parents=True)
    topics = dict(inputs)
    for k in ("predictions", "model_events", "dead_letter", "control"):
        topics[k] = f"{inputs['events']}-{name}-{k.replace('_', '-')}"
    lines = ["[kafka]", f"bootstrap_servers = {json.dumps(servers)}", "[topics]"]
    lines += [f"{k} = {json.dumps(v)}" for k, v in topics.items()]
    lines += [f"partitions = {partitions}"]
    lines += ["[flow]", 'features = "default"', 'segment_by = "segment"', "[flow.policy]", "enabled = false"]
    lines += ["[recovery]", f"directory = {json.dumps(str(run / 'state'))}", "snapshot_interval_seconds = 10"]
    path = run / "riverrun.toml"
    path.write_text("\n".join(lines) + "\n")
    create_topics(load_settings(path))
    return path


def timed_run(config: Path, processes: int, n: int, servers: str, timeout: float) -> tuple[float, float]:
    """(seconds from start to the last prediction, seconds from the first to the last)."""
    settings = load_settings(config)
    reader = PredictionReader(servers, settings.topics.predictions, partitions=settings.topics.partitions)
    flow = FlowCluster(config, config.parent / "flow.log", processes).start()
    start = time.monotonic()
    first = None
    try:
        deadline = start + timeout
        while len(reader.predictions.first) < n:
            if time.monotonic() > deadline or not flow.alive():
                raise RuntimeError(f"run did not finish:\n{flow.log_tail()}")
            reader.poll(0.05)
            if first is None and reader.predictions.first:
                first = time.monotonic()
        end = time.monotonic()
    finally:
        flow.stop()
        reader.close()
    return end - start, end - (first or start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=60_000)
    parser.add_argument("--segments", type=int, default=8)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=900)
    parser.add_argument("--bootstrap", default=None, help="default: $KAFKA_BOOTSTRAP_SERVERS")
    args = parser.parse_args()
    import os

    servers = args.bootstrap or os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    events, labels = make_stream(args.events, args.segments)
    prefix = f"scale{uuid.uuid4().hex[:8]}"
    inputs = {"events": f"{prefix}-events", "labels": f"{prefix}-labels"}
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        publish_config = write_config(servers, base, inputs, args.partitions, "publish")
        t = time.monotonic()
        publish_stream(load_settings(publish_config), events, labels)
        took = time.monotonic() - t
        print(f"published {len(events)} events + labels to {args.partitions} partitions in {took:.1f}s")
        rows = []
        for r in range(args.rounds):
            got = {}
            for processes in (1, 2):
                config = write_config(servers, base, inputs, args.partitions, f"r{r}p{processes}")
                total, steady = timed_run(config, processes, len(events), servers, args.timeout)
                got[processes] = len(events) / steady
                print(
                    f"round {r + 1}: {processes} process(es): {got[processes]:,.0f} events/s "
                    f"(first->last prediction {steady:.1f}s, with startup {total:.1f}s)",
                    flush=True,
                )
            rows.append(got[2] / got[1])
            print(f"round {r + 1}: 2 processes / 1 process = {rows[-1]:.2f}x")
        print(f"ratio per round: {', '.join(f'{x:.2f}' for x in rows)}; best {max(rows):.2f}x")


if __name__ == "__main__":
    main()
