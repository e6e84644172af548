"""Throughput of per-segment models from 1 to 2 processes, live on the real broker.

    python -m benchmarks.scaling [--events 60000] [--segments 8] [--partitions 4] [--rounds 2]

The stream (River's Hyperplane, 10 features, 1000 entities, labels 30 s of event time later)
carries a ``segment`` field with ``--segments`` values, one per entity (an entity stays in its
segment); the flow runs ``[flow] segment_by = "segment"``, so each segment is a model instance
of its own (``lr.s0``, ...). Events and labels are keyed by segment (``produce --key-by``) into
``--partitions`` partitions. Each round runs the same pre-published input, from fresh recovery
state, with:

- 1 process;
- 2 shards (``run --shard 0/2`` and ``--shard 1/2``): independent processes, each over half of
  the partitions; no record crosses between them;
- 2 processes as one Bytewax cluster (``--addresses``), unless ``--no-cluster``: one event-time
  order over the whole stream, so records cross between the processes (to the ordering key,
  their entity's and their segment's workers).

It times the first to the last prediction (startup excluded) by the broker's append times of
the predictions (``LogAppendTime``), read after the run: while the flow runs, the benchmark only
asks for the topic's end offsets every 0.2 s, so it takes no core from the flow's processes.
It prints 2-process events/s over 1-process events/s in the same round: what a second process
buys.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from confluent_kafka.admin import AdminClient, NewTopic
from river.datasets import synth

from benchmarks import kafkabench as kb
from riverrun.streams.backtest.synth import to_records
from riverrun.streams.kafka.admin import create_topics
from riverrun.streams.kafka.producer import publish_stream
from riverrun.streams.settings import load_settings
from tests.harness.flows import FlowCluster


def make_stream(n: int, segments: int):
    rows = [
        ({f"f{k}": v for k, v in x.items()}, bool(y))
        for x, y in synth.Hyperplane(seed=42, n_features=10).take(n)
    ]
    events, labels = to_records(rows, label_delay=timedelta(seconds=30), n_entities=1000)
    for event in events:  # entity u<k> is in segment s<k % segments>
        event.features["segment"] = f"s{int(event.entity[1:]) % segments}"
    return events, labels


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
    if name != "publish":  # predictions stamped by the broker when appended (timed_run)
        stamped = {"message.timestamp.type": "LogAppendTime"}
        topic = NewTopic(topics["predictions"], partitions, 1, config=stamped)
        client = AdminClient({"bootstrap.servers": servers})  # alive until the result is in
        client.create_topics([topic])[topic.topic].result(30)
    create_topics(load_settings(path))
    return path


def broker_pid() -> int | None:
    """The local Kafka broker's process (``kafka.Kafka`` on this machine), if any."""
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if b"kafka.Kafka" in (proc / "cmdline").read_bytes():
                    return int(proc.name)
            except OSError:
                continue
    return None


@dataclass
class Timing:
    total: float  # seconds from start to the last prediction
    steady: float  # ... from the first prediction to the last
    flow_cpu: float  # CPU seconds of the flow's processes, start to the end of the run
    broker_cpu: float  # ... of the broker (0 when it is not local)


def timed_run(config: Path, processes: int, n: int, timeout: float, shards: bool = False) -> Timing:
    """Run the flow on the pre-published input until all ``n`` predictions are on the topic."""
    settings = load_settings(config)
    predictions, partitions = settings.topics.predictions, settings.topics.partitions
    broker = broker_pid()
    broker_start = kb.cpu_seconds(broker) if broker else 0.0
    flow = FlowCluster(config, config.parent / "flow.log", processes, shards=shards).start()
    start = time.time()
    try:
        if not kb.wait_for(predictions, n, timeout, flow, partitions):
            raise RuntimeError(f"not every event predicted within {timeout:.0f} s:\n{flow.log_tail()}")
        flow_cpu = sum(kb.cpu_seconds(p.pid) for p in flow.procs)
        broker_cpu = kb.cpu_seconds(broker) - broker_start if broker else 0.0
    finally:
        flow.stop()
    first, last = kb.first_last(predictions, partitions)
    return Timing(last - start, last - first, flow_cpu, broker_cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=60_000)
    parser.add_argument("--segments", type=int, default=8)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=900)
    parser.add_argument("--bootstrap", default=None, help="default: $KAFKA_BOOTSTRAP_SERVERS")
    parser.add_argument("--no-cluster", action="store_true", help="skip the 2-process Bytewax cluster")
    args = parser.parse_args()

    servers = args.bootstrap or os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    os.environ["KAFKA_BOOTSTRAP_SERVERS"] = servers  # kafkabench's readers
    events, labels = make_stream(args.events, args.segments)
    prefix = f"scale{uuid.uuid4().hex[:8]}"
    inputs = {"events": f"{prefix}-events", "labels": f"{prefix}-labels"}
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        publish_config = write_config(servers, base, inputs, args.partitions, "publish")
        t = time.monotonic()
        publish_stream(load_settings(publish_config), events, labels, key_by="segment")
        took = time.monotonic() - t
        print(f"published {len(events)} events + labels to {args.partitions} partitions in {took:.1f}s")
        modes = {"1 process": (1, False), "2 shards": (2, True)}
        if not args.no_cluster:
            modes["2-process cluster"] = (2, False)
        ratios: dict[str, list[float]] = {name: [] for name in modes if name != "1 process"}
        for r in range(args.rounds):
            got = {}
            for name, (processes, shards) in modes.items():
                config = write_config(
                    servers, base, inputs, args.partitions, f"r{r}-{name.replace(' ', '-')}"
                )
                t = timed_run(config, processes, len(events), args.timeout, shards)
                got[name] = len(events) / t.steady
                print(
                    f"round {r + 1}: {name}: {got[name]:,.0f} events/s "
                    f"(first->last prediction {t.steady:.1f}s, with startup {t.total:.1f}s; CPU "
                    f"{t.flow_cpu / len(events) * 1e6:.0f} us per event in the flow, broker "
                    f"{t.broker_cpu:.1f} s = {t.broker_cpu / t.total:.0%} of a core)",
                    flush=True,
                )
            for name in ratios:
                ratios[name].append(got[name] / got["1 process"])
                print(f"round {r + 1}: {name} / 1 process = {ratios[name][-1]:.2f}x")
        for name, rows in ratios.items():
            print(
                f"{name} / 1 process, per round: {', '.join(f'{x:.2f}' for x in rows)}; best {max(rows):.2f}x"
            )


if __name__ == "__main__":
    main()
