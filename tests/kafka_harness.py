"""Helpers for tests against the real broker: fresh topics, the flow as a subprocess, readers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, TopicPartition
from riverrun.streams.kafka.admin import create_topics

from riverrun.streams.settings import Settings, load_settings

ROOT = Path(__file__).resolve().parents[1]


REGISTRY_KEY = "test-registry-key-0123456789abcdef"


def fresh_settings(
    servers: str,
    tmp: Path,
    policy: bool = False,
    kafka: dict[str, str] | None = None,
    secrets: dict[str, Any] | None = None,
    **flow,
) -> tuple[Settings, Path]:
    """Settings with topics unique to this test, written to a TOML file for `riverrun run`.
    The lifecycle is off unless ``policy`` (then checkpoints go to ``tmp/registry``, signed
    with ``REGISTRY_KEY``, which the flow gets from its environment). ``kafka`` adds lines to
    the file's [kafka] table (security protocol, SASL user, CA file); ``secrets`` are settings
    overrides kept out of the file (e.g. ``{"kafka": {"sasl_password": ...}}``), as a
    deployment passes them through the environment (see ``Flow(env=...)``)."""
    prefix = f"t{uuid.uuid4().hex[:10]}"
    names = {
        k: f"{prefix}-{k.replace('_', '-')}"
        for k in ("events", "labels", "predictions", "model_events", "dead_letter", "control")
    }
    lines = ["[kafka]", f'bootstrap_servers = "{servers}"']
    lines += [f"{k} = {json.dumps(v)}" for k, v in (kafka or {}).items()]
    lines += ["[topics]"]
    lines += [f'{k} = "{v}"' for k, v in names.items()]
    lines += ["[flow]"] + [f"{k} = {json.dumps(v)}" for k, v in flow.items()]
    lines += ["[flow.policy]", f"enabled = {json.dumps(policy)}"]
    lines += ["[registry]", f'url = "{tmp / "registry"}"']
    lines += ["[recovery]", f'directory = "{tmp / "state"}"', "snapshot_interval_seconds = 1"]
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


class Flow:
    """`riverrun run -c CONFIG` in a subprocess, logging to a file. ``env`` adds variables
    (secrets such as ``RIVERRUN_KAFKA__SASL_PASSWORD``) to the flow's environment."""

    def __init__(
        self, config: Path, log: Path, env: dict[str, str] | None = None, args: tuple[str, ...] = ()
    ):
        self.config, self.log = config, log
        self.extra_env = dict(env or {})
        self.args = args  # more `riverrun run` options (--shard 0/2)
        self.proc: subprocess.Popen | None = None

    def start(self) -> Flow:
        env = {k: v for k, v in os.environ.items() if not k.startswith("RIVERRUN_")}
        env.pop("KAFKA_BOOTSTRAP_SERVERS", None)  # the config file says where
        env["RIVERRUN_REGISTRY__KEY"] = REGISTRY_KEY
        env["RIVERRUN_METRICS__PORT"] = "0"  # flows run side by side: any free port
        env.update(self.extra_env)
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "riverrun.streams.cli",
                    "--log-level",
                    "INFO",
                    "run",
                    "-c",
                    str(self.config),
                    *self.args,
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
                env=env,
            )
        return self

    def kill(self, sig: int = signal.SIGKILL, timeout: float = 30) -> int:
        assert self.proc is not None
        self.proc.send_signal(sig)
        return self.proc.wait(timeout)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, n: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])


class TopicReader:
    """Reads a topic from the beginning (assign, no group commits), accumulating messages.
    ``conf`` adds client settings (e.g. ``settings.kafka.client_config()`` for SASL/TLS)."""

    def __init__(self, servers: str, topic: str, conf: dict[str, str] | None = None):
        self.consumer = Consumer(
            {
                "bootstrap.servers": servers,
                **(conf or {}),
                "group.id": f"test-{uuid.uuid4().hex}",
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
            }
        )
        self.consumer.assign([TopicPartition(topic, 0, 0)])
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
class OperatorRollbackRun:
    """What ``run_operator_rollback`` leaves: the stream, the config and what the flow published."""

    settings: Settings
    config: Path
    events: list
    first: list  # served by v1
    later: list  # served after the rollback, by v2
    predictions: TopicReader
    model_events: TopicReader
    dead_letters: TopicReader


def run_operator_rollback(servers: str, tmp: Path, reason: str) -> OperatorRollbackRun:
    """A live ``riverrun run`` (lifecycle on) over 3,000 events, until its first checkpoint is in
    the registry; then ``riverrun models rollback lr 1`` timed between the 3,000th and the next
    event (no tie to break), a rollback to a missing version (v99), and 2,000 more events."""
    from datetime import timedelta

    from riverrun.streams.kafka.admin import publish_stream

    from riverrun.registry import open_registry
    from riverrun.streams.backtest.scenarios import Scenario
    from riverrun.streams.backtest.synth import to_records
    from riverrun.streams.flow.connectors import VerifiedProducer

    rows = list(Scenario(n=5000, drift_at=10**9, corrupt_from=10**9, corrupt_to=10**9, shift_at=10**9).rows())
    events, labels = to_records([(x, y) for x, y, _ in rows], label_delay=timedelta(seconds=20))
    settings, config = fresh_settings(servers, tmp, policy=True, features="none", max_wait_ms=1000)
    first, later = events[:3000], events[3000:]
    publish_stream(settings, first, [lb for lb in labels if lb.ts <= first[-1].ts])
    flow = Flow(config, tmp / "flow.log").start()
    predictions = TopicReader(servers, settings.topics.predictions)
    model_events = TopicReader(servers, settings.topics.model_events)
    dead_letters = TopicReader(servers, settings.topics.dead_letter)
    registry = open_registry(str(tmp / "registry"), REGISTRY_KEY.encode())
    at = (later[0].ts - (later[0].ts - first[-1].ts) / 2).isoformat()
    try:
        predictions.read_until(lambda m: len(m) >= len(first), 120, flow)
        deadline = time.monotonic() + 60
        while not registry.versions("lr") and time.monotonic() < deadline:
            time.sleep(0.5)  # the checkpoint at 2,000 labels is persisted by the flow
        assert registry.versions("lr"), flow.log_tail()
        riverrun_models(config, "rollback", "lr", "1", "--at", at, "--reason", reason)
        bad = VerifiedProducer(settings.kafka.client_config())
        bad.produce(
            settings.topics.control,
            json.dumps({"model": "lr", "command": "rollback", "version": 99, "ts": at}).encode(),
            b"lr",
        )
        bad.flush()
        publish_stream(settings, later, [lb for lb in labels if lb.ts > first[-1].ts])
        predictions.read_until(lambda m: len(m) >= len(events), 120, flow)
        rolled_back = lambda m: any(json.loads(x.value())["action"] == "rollback" for x in m)  # noqa: E731
        model_events.read_until(rolled_back, 60, flow)
        dead_letters.read_until(lambda m: len(m) >= 1, 60, flow)
    finally:
        flow.kill()
    return OperatorRollbackRun(
        settings, config, events, first, later, predictions, model_events, dead_letters
    )
