"""The real broker: fresh topics and their config file, `riverrun models`, topic readers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from confluent_kafka import Consumer, TopicPartition

from riverrun.streams.kafka.admin import create_topics
from riverrun.streams.settings import Settings, load_settings
from tests.harness import ROOT

if TYPE_CHECKING:
    from tests.harness.flows import Flow, FlowCluster


# Every flow a test or the crash harness starts gets this key (RIVERRUN_REGISTRY__KEY).
REGISTRY_KEY = "test-registry-key-0123456789abcdef"

TOPIC_KINDS = ("events", "labels", "predictions", "model_events", "dead_letter", "control")


def fresh_settings(
    servers: str,
    tmp: Path,
    policy: bool = False,
    kafka: dict[str, str] | None = None,
    secrets: dict[str, Any] | None = None,
    snapshot_interval: float = 1.0,
    prefix: str = "t",
    **flow,
) -> tuple[Settings, Path]:
    """Settings with topics unique to this test, written to ``tmp/riverrun.toml`` for `riverrun
    run`; the topics are created. The lifecycle is off unless ``policy`` (then checkpoints go to
    ``tmp/registry``, signed with ``REGISTRY_KEY``, which the flow gets from its environment);
    recovery is in ``tmp/state``. ``kafka`` adds lines to the file's [kafka] table (security
    protocol, SASL user, CA file); ``secrets`` are settings overrides kept out of the file (e.g.
    ``{"kafka": {"sasl_password": ...}}``), as a deployment passes them through the environment
    (see ``Flow(env=...)``); ``flow`` are lines of the [flow] table."""
    tmp.mkdir(parents=True, exist_ok=True)
    stem = f"{prefix}{uuid.uuid4().hex[:10]}"
    names = {k: f"{stem}-{k.replace('_', '-')}" for k in TOPIC_KINDS}
    lines = ["[kafka]", f"bootstrap_servers = {json.dumps(servers)}"]
    lines += [f"{k} = {json.dumps(v)}" for k, v in (kafka or {}).items()]
    lines += ["[topics]"]
    lines += [f"{k} = {json.dumps(v)}" for k, v in names.items()]
    lines += ["[flow]"] + [f"{k} = {json.dumps(v)}" for k, v in flow.items()]
    lines += ["[flow.policy]", f"enabled = {json.dumps(policy)}"]
    lines += ["[registry]", f"url = {json.dumps(str(tmp / 'registry'))}"]
    lines += [
        "[recovery]",
        f"directory = {json.dumps(str(tmp / 'state'))}",
        f"snapshot_interval_seconds = {snapshot_interval}",
    ]
    path = tmp / "riverrun.toml"
    path.write_text("\n".join(lines) + "\n")
    settings = load_settings(path, **(secrets or {}))
    create_topics(settings)
    return settings, path


def riverrun_models(config: Path, *args: str) -> None:
    """``riverrun models ARGS -c CONFIG`` in a subprocess, as an operator runs it (with the
    registry key in its environment); it must succeed."""
    env = {**os.environ, "RIVERRUN_REGISTRY__KEY": REGISTRY_KEY}
    sent = subprocess.run(
        [sys.executable, "-m", "riverrun.streams.cli", "models", *args, "-c", str(config)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=60,
        check=False,
    )
    assert sent.returncode == 0, sent.stderr


def reader_consumer(
    servers: str, topic: str, conf: dict[str, str] | None = None, partitions: int = 1
) -> Consumer:
    """A consumer of ``topic`` from the beginning of each partition (assigned: no group, no
    commits). ``conf`` adds client settings (e.g. ``settings.kafka.client_config()`` for
    SASL/TLS)."""
    consumer = Consumer(
        {
            **(conf or {}),
            "bootstrap.servers": servers,
            "group.id": f"test-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
    )
    consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    return consumer


class TopicReader:
    """Reads a topic from the beginning, accumulating its messages."""

    def __init__(self, servers: str, topic: str, conf: dict[str, str] | None = None):
        self.consumer = reader_consumer(servers, topic, conf)
        self.messages: list = []

    def read_until(
        self, done: Callable[[list], bool], timeout: float, while_alive: Flow | None = None
    ) -> list:
        deadline = time.monotonic() + timeout
        while not done(self.messages) and time.monotonic() < deadline:
            if while_alive is not None and not while_alive.alive():
                raise AssertionError(f"flow died:\n{while_alive.log_tail()}")
            for msg in self.consumer.consume(1000, timeout=0.5):
                if msg.error() is None:
                    self.messages.append(msg)
        return self.messages

    def values(self) -> list[dict]:
        return [json.loads(m.value()) for m in self.messages]

    def close(self) -> None:
        self.consumer.close()


@dataclass
class Predictions:
    """Everything read from a predictions topic: first copy per event id, duplicates checked."""

    first: dict[str, dict] = field(default_factory=dict)
    n_messages: int = 0
    n_duplicates: int = 0
    mismatches: list[tuple[dict, dict]] = field(default_factory=list)

    def add(self, value: dict) -> None:
        self.n_messages += 1
        value.pop("served_at", None)  # wall clock of the serve: the one field allowed to differ
        seen = self.first.setdefault(value["event_id"], value)
        if seen is not value:
            self.n_duplicates += 1
            if seen != value and len(self.mismatches) < 20:
                self.mismatches.append((seen, value))


class PredictionReader:
    """Reads a predictions topic from the beginning into ``Predictions`` (for long streams:
    keeps the first copy of each prediction, not every message)."""

    def __init__(self, servers: str, topic: str, conf: dict[str, str] | None = None, partitions: int = 1):
        self.consumer = reader_consumer(servers, topic, conf, partitions)
        self.predictions = Predictions()

    def poll(self, timeout: float = 0.2) -> int:
        """Read what is there (up to 5000 messages); how many were read."""
        n = 0
        for msg in self.consumer.consume(5000, timeout=timeout):
            if msg.error() is None:
                self.predictions.add(json.loads(msg.value()))
                n += 1
        return n

    def read_until(
        self, done: Callable[[Predictions], bool], timeout: float, flow: FlowCluster | None = None
    ) -> bool:
        deadline = time.monotonic() + timeout
        while not done(self.predictions):
            if time.monotonic() > deadline:
                return False
            if flow is not None and not flow.alive():
                raise RuntimeError(f"flow died:\n{flow.log_tail()}")
            self.poll()
        return True

    def close(self) -> None:
        self.consumer.close()
