"""Kafka side of ``benchmarks/compare.py``: fresh topics, a pipeline as a subprocess, and when
its predictions landed (the Kafka timestamps of the prediction messages).

Every pipeline (riverrun, Quix Streams, Faust) reads the same pre-published events and labels
from its own fresh topics on the same broker and writes one prediction per event; the figures
come from the Kafka timestamps: ``CreateTime`` (set by our producer when it
produced the message) of the events, and the broker's append time (``LogAppendTime``) of the
predictions, read after the run, so the measuring costs the pipeline no CPU beyond a
watermark query every 0.2 s.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

import orjson
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from riverrun.schemas import Event, Label
from riverrun.streams.kafka.admin import create_topics
from riverrun.streams.kafka.producer import VerifiedProducer, publish_stream
from riverrun.streams.settings import Settings, load_settings

ROOT = Path(__file__).resolve().parents[1]
VENVS = Path(os.environ.get("RIVERRUN_BENCH_VENVS", Path.home() / ".cache/riverrun/bench-venvs"))


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` so far (Linux /proc), 0 when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def servers() -> str:
    return os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")


def fresh_config(tmp: Path, policy: bool = False) -> tuple[Settings, Path]:
    """A ``riverrun run`` config on topics unique to this run (created, one partition each),
    recovery on in ``tmp/state`` with the default snapshot interval (10 s)."""
    prefix = f"bench{uuid.uuid4().hex[:10]}"
    names = {
        k: f"{prefix}-{k.replace('_', '-')}"
        for k in ("events", "labels", "predictions", "model_events", "dead_letter", "control")
    }
    lines = ["[kafka]", f'bootstrap_servers = "{servers()}"', "[topics]"]
    lines += [f'{k} = "{v}"' for k, v in names.items()]
    lines += ["[flow]", 'features = "default"', "[flow.policy]", f"enabled = {json.dumps(policy)}"]
    lines += ["[registry]", f'url = "{tmp / "registry"}"', "[recovery]", f'directory = "{tmp / "state"}"']
    path = tmp / "riverrun.toml"
    path.write_text("\n".join(lines) + "\n")
    settings = load_settings(path)
    # Predictions are stamped by the broker when appended: the same clock for every pipeline
    # (Quix Streams, for one, gives an output the timestamp of its input message).
    client = AdminClient({"bootstrap.servers": servers()})
    topic = NewTopic(names["predictions"], 1, 1, config={"message.timestamp.type": "LogAppendTime"})
    client.create_topics([topic])[names["predictions"]].result(30)
    create_topics(settings)
    return settings, path


def publish(
    settings: Settings,
    events: list[Event],
    labels: list[Label],
    rate: float = 0.0,
    producer: VerifiedProducer | None = None,
) -> None:
    publish_stream(settings, events, labels, rate=rate, producer=producer)


@dataclass
class Run:
    """One pipeline run: wall-clock start, and the timestamps of its first and last prediction."""

    name: str
    n: int
    started: float  # time.time() when the process was started
    first: float  # Kafka timestamp (s) of the first prediction
    last: float  # ... and of the last
    complete: bool  # all n predictions arrived before the timeout

    @property
    def total_rate(self) -> float:
        """Events/s from process start to the last prediction (startup included)."""
        return self.n / (self.last - self.started)

    @property
    def steady_rate(self) -> float:
        """Events/s from the first prediction to the last (startup excluded)."""
        return (self.n - 1) / (self.last - self.first)


class Pipeline:
    """A pipeline process: ``argv`` run with ``env`` (logs to ``log``), stopped with SIGTERM."""

    def __init__(self, argv: list[str], log: Path, env: dict[str, str] | None = None):
        self.argv, self.log, self.env = argv, log, env
        self.proc: subprocess.Popen | None = None

    def start(self) -> float:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                self.argv, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT, env=self.env
            )
        return time.time()

    def stop(self, timeout: float = 60) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def alive(self) -> bool:
        return self.proc is None or self.proc.poll() is None

    def log_tail(self, n: int = 30) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])


def riverrun_pipeline(config: Path, log: Path, argv_prefix: list[str] | None = None) -> Pipeline:
    """``riverrun run -c config`` with metrics on any free port (``argv_prefix``: a profiler)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RIVERRUN_")}
    env.pop("KAFKA_BOOTSTRAP_SERVERS", None)
    env["RIVERRUN_METRICS__PORT"] = "0"
    argv = [sys.executable, "-m", "riverrun.streams.cli", "--log-level", "INFO", "run", "-c", str(config)]
    return Pipeline((argv_prefix or []) + argv, log, env)


def peer_pipeline(peer: str, settings: Settings, log: Path) -> Pipeline:
    """The Quix Streams or Faust version (``benchmarks/peers/``) in its venv."""
    python = VENVS / peer / "bin" / "python"
    if not python.exists():
        raise FileNotFoundError(f"{python} missing: run `bash benchmarks/peers/setup.sh {peer}`")
    t = settings.topics
    state = tempfile.mkdtemp(prefix=f"bench-{peer}-")
    group = f"bench-{peer}-{uuid.uuid4().hex[:8]}"
    script = ROOT / "benchmarks" / "peers" / f"{peer}_pipeline.py"
    argv = [str(python), str(script), servers(), t.events, t.labels, t.predictions, group, state]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RIVERRUN_", "VIRTUAL_ENV"))}
    return Pipeline(argv, log, env)


def _consumer() -> Consumer:
    return Consumer(
        {
            "bootstrap.servers": servers(),
            "group.id": f"bench-reader-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
    )


class Running(Protocol):
    """What ``wait_for`` watches: a ``Pipeline``, or ``tests.harness.flows.FlowCluster`` (processes)."""

    def alive(self) -> bool: ...

    def log_tail(self, n: int = 30) -> str: ...


def high_watermarks(consumer: Consumer, topic: str, partitions: int) -> list[int]:
    """The end offset of each partition of ``topic``."""
    return [consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=5)[1] for p in range(partitions)]


def wait_for(topic: str, n: int, timeout: float, pipeline: Running, partitions: int = 1) -> bool:
    """Until ``topic`` holds ``n`` messages (over its first ``partitions`` partitions), the
    timeout, or the pipeline died. It asks for the end offsets every 0.2 s and reads nothing."""
    consumer = _consumer()
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if sum(high_watermarks(consumer, topic, partitions)) >= n:
                return True
            if not pipeline.alive():
                raise RuntimeError(f"the pipeline died:\n{pipeline.log_tail()}")
            time.sleep(0.2)
        return False
    finally:
        consumer.close()


def timestamps_at(topic: str, offsets: list[int], partition: int = 0) -> list[float]:
    """Kafka timestamps (seconds) of the messages at ``offsets`` of ``partition``."""
    consumer = _consumer()
    out = []
    try:
        for offset in offsets:
            consumer.assign([TopicPartition(topic, partition, offset)])
            msg = None
            while msg is None or msg.error() is not None:
                msg = consumer.poll(10)
                if msg is None:
                    raise RuntimeError(f"no message at {topic}:{offset}")
            out.append(msg.timestamp()[1] / 1000.0)
    finally:
        consumer.close()
    return out


def first_last(topic: str, partitions: int) -> tuple[float, float]:
    """Kafka timestamps (s) of the first and the last message of ``topic`` over its partitions
    (each partition's first and last message: its offsets are contiguous, the writes in order)."""
    consumer = _consumer()
    try:
        highs = high_watermarks(consumer, topic, partitions)
    finally:
        consumer.close()
    ends = [timestamps_at(topic, [0, high - 1], p) for p, high in enumerate(highs) if high]
    return min(first for first, _ in ends), max(last for _, last in ends)


def read_all(topic: str, n: int, timeout: float = 120) -> list[tuple[bytes, float]]:
    """(value, Kafka timestamp in s) of the first ``n`` messages of partition 0."""
    consumer = _consumer()
    consumer.assign([TopicPartition(topic, 0, 0)])
    out: list[tuple[bytes, float]] = []
    deadline = time.monotonic() + timeout
    try:
        while len(out) < n and time.monotonic() < deadline:
            for msg in consumer.consume(10_000, timeout=1):
                if msg.error() is None:
                    out.append((msg.value(), msg.timestamp()[1] / 1000.0))
    finally:
        consumer.close()
    return out[:n]


def run_pipeline(name: str, pipeline: Pipeline, topic: str, n: int, timeout: float) -> Run:
    """Start ``pipeline`` (inputs already published), wait for ``n`` predictions on ``topic``,
    stop it. An incomplete run reports the rate over the predictions that did arrive."""
    started = pipeline.start()
    try:
        complete = wait_for(topic, n, timeout, pipeline)
    finally:
        pipeline.stop()
    if complete:
        got = n
    else:
        consumer = _consumer()
        got = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=5)[1]
        consumer.close()
        if got < 2:
            raise RuntimeError(f"{name}: {got} predictions in {timeout:.0f} s:\n{pipeline.log_tail()}")
    first, last = timestamps_at(topic, [0, got - 1])
    return Run(name, got, started, first, last, complete)


def published_events(events_topic: str, n: int) -> list[tuple[str, float]]:
    """(event id, Kafka timestamp in s) of the first ``n`` events, by offset."""
    return [(orjson.loads(v)["event_id"], ts) for v, ts in read_all(events_topic, n)]


def latencies(
    published: list[tuple[str, float]], predictions_topic: str, n: int, only: set[str] | None = None
) -> list[tuple[float, float]]:
    """Per event, in ms, from the event's Kafka timestamp (``CreateTime``: our producer's clock;
    ``published``: ``published_events``) to: the Kafka timestamp of its prediction (end to end),
    and the prediction's ``served_at`` (the flow's wall clock when the model served it: the input
    hop and the flow, without the output hop). The same machine's clock on both sides. ``only``:
    these event ids alone."""
    sent_at = dict(published)
    out = []
    for v, ts in read_all(predictions_topic, n):
        prediction = orjson.loads(v)
        sent = sent_at.get(prediction["event_id"])
        if sent is not None and (only is None or prediction["event_id"] in only):
            served = datetime.fromisoformat(prediction["served_at"]).timestamp()
            out.append(((ts - sent) * 1000.0, (served - sent) * 1000.0))
    return out


def floor_latencies(published: list[tuple[str, float]], floor_json: Path, only: set[str]) -> list[float]:
    """Per event of ``only``, in ms, from its ``CreateTime`` to when ``kafka_floor.py`` (a bare
    consumer, no flow) consumed it: the broker and the machine alone."""
    consumed = json.loads(floor_json.read_text()) if floor_json.exists() else []
    return [(got - created) * 1000.0 for offset, created, got in consumed if published[offset][0] in only]


def start_floor(events_topic: str, tmp: Path, timeout: float = 30.0) -> tuple[Pipeline, Path]:
    """``kafka_floor.py`` on ``events_topic``, started and consuming from the end (it writes a
    ``.ready`` file once its position is set); returns it and the JSON it writes when stopped."""
    out = tmp / "floor.json"
    ready = tmp / "floor.json.ready"
    floor = Pipeline(
        [sys.executable, str(Path(__file__).parent / "kafka_floor.py"), events_topic, str(out)],
        tmp / "floor.log",
    )
    floor.start()
    deadline = time.monotonic() + timeout
    while not ready.exists():
        if not floor.alive() or time.monotonic() > deadline:
            floor.stop()
            raise RuntimeError(f"kafka_floor.py did not start:\n{floor.log_tail()}")
        time.sleep(0.05)
    return floor, out
