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
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, TopicPartition

from riverrun.streams.kafka import create_topics
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
