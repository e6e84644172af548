"""Service faults against real services the tests start themselves.

The shared broker (127.0.0.1:9092) and Redis (6379) serve other tests at the same time, so these
tests never touch them: they start their own Kafka (``infra/kafka/start.sh`` on free ports, data
under pytest's tmp) and their own ``redis-server``, and stop them in finalizers.

* broker paused (SIGSTOP) for 30 s, then resumed: the flow waits, then catches up;
* broker restarted (controlled stop, start on the same data): the same;
* Redis (the registry) down mid-run: the flow keeps predicting, registry writes are retried with
  backoff and logged, and the pending checkpoints land, intact, when Redis is back;
* a recovery directory written by another flow: `riverrun run` refuses to start, exit 2, and
  says what differs and what to do.

In each run every event gets a prediction and every duplicate equals its first copy.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest

from riverrun.streams.backtest.synth import drifting_agrawal, to_records
from riverrun.streams.kafka.producer import publish_stream
from tests.harness import ROOT
from tests.harness.flows import Flow
from tests.harness.kafka import REGISTRY_KEY, TopicReader, fresh_settings
from tests.harness.ports import free_port

pytestmark = pytest.mark.kafka

PAUSE_SECONDS = 30


@dataclass
class OwnBroker:
    """A single-node Kafka of this module's own (never the shared one)."""

    servers: str
    env: dict[str, str]
    data: Path

    def pid(self) -> int:
        return int((self.data / "kafka.pid").read_text())

    def _script(self, name: str) -> str:
        done = subprocess.run(
            ["bash", str(ROOT / "infra" / "kafka" / name)],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=240,
            check=False,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        return done.stdout.strip()

    def start(self) -> None:
        self.servers = self._script("start.sh").splitlines()[-1]

    def stop(self) -> None:
        self._script("stop.sh")


@pytest.fixture(scope="module")
def own_broker(tmp_path_factory, kafka_servers) -> Iterator[OwnBroker]:
    """Our own broker on free ports. ``kafka_servers`` only makes the
    module skip/fail like the other Kafka tests when no Kafka is configured at all."""
    data = tmp_path_factory.mktemp("own-kafka")
    port, controller = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RIVERRUN_")}
    env.pop("KAFKA_BOOTSTRAP_SERVERS", None)  # otherwise start.sh would reuse that broker
    env.update(KAFKA_PORT=str(port), KAFKA_CONTROLLER_PORT=str(controller), KAFKA_DATA_DIR=str(data))
    broker = OwnBroker(f"127.0.0.1:{port}", env, data)
    try:
        broker.start()
        yield broker
    finally:
        with_pid = data / "kafka.pid"
        if with_pid.exists():
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(with_pid.read_text()), signal.SIGCONT)  # a paused broker cannot stop
        broker.stop()


def _stream(n: int):
    return to_records(drifting_agrawal(n), label_delay=timedelta(seconds=30))


def _check_predictions(reader: TopicReader, events) -> int:
    """Every event predicted; every duplicate equal to its first copy; the duplicate count."""
    first: dict[str, dict] = {}
    duplicates = 0
    for p in reader.values():
        p.pop("served_at")
        seen = first.setdefault(p["event_id"], p)
        if seen is not p:
            duplicates += 1
            assert seen == p, (seen, p)
    assert set(first) == {e.event_id for e in events}
    return duplicates


def _unique(messages) -> int:
    return len({json.loads(m.value())["event_id"] for m in messages})


def _run_through_fault(broker: OwnBroker, tmp_path: Path, fault, monkeypatch) -> None:
    """Start the flow on ``broker``, apply ``fault`` once a quarter is predicted, and check it
    catches up with nothing lost."""
    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS", raising=False)  # it would win over the file
    monkeypatch.delenv("RIVERRUN_KAFKA__BOOTSTRAP_SERVERS", raising=False)
    n = 20_000
    events, labels = _stream(n)
    settings, config = fresh_settings(broker.servers, tmp_path, features="default", max_wait_ms=600_000)
    publish_stream(settings, events, labels)
    flow = Flow(config, tmp_path / "flow.log").start()
    reader = TopicReader(broker.servers, settings.topics.predictions)
    try:
        reader.read_until(lambda m: _unique(m) >= n // 4, 120, flow)
        before = _unique(reader.messages)
        assert before < n, "the flow finished before the fault: make the stream longer"
        fault(flow)
        assert flow.alive(), flow.log_tail()  # it waited, it did not give up
        reader.read_until(lambda m: _unique(m) >= n, 300, flow)
        assert flow.alive(), flow.log_tail()
    finally:
        flow.kill()
        reader.close()
    _check_predictions(reader, events)


def test_broker_paused_30s_flow_waits_and_catches_up(own_broker, tmp_path, monkeypatch):
    def pause(flow: Flow) -> None:
        pid = own_broker.pid()
        os.kill(pid, signal.SIGSTOP)
        try:
            time.sleep(PAUSE_SECONDS)  # the fault's length, not a bound on anything
            assert flow.alive(), flow.log_tail()
        finally:
            os.kill(pid, signal.SIGCONT)

    _run_through_fault(own_broker, tmp_path, pause, monkeypatch)


def test_broker_restarted_flow_waits_and_catches_up(own_broker, tmp_path, monkeypatch):
    def restart(flow: Flow) -> None:
        own_broker.stop()
        assert flow.alive(), flow.log_tail()
        own_broker.start()  # same data directory: the topics and their messages are back

    _run_through_fault(own_broker, tmp_path, restart, monkeypatch)


# -- Redis (the registry) down -----------------------------------------------------------------


@dataclass
class OwnRedis:
    """A redis-server of this test's own, persisting every write (AOF, fsync always), so a
    stop and start keeps what the registry holds."""

    port: int
    data: Path
    proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                "redis-server",
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--dir",
                str(self.data),
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--save",
                "",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.1)
        raise RuntimeError("own redis-server did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # redis writes its AOF and exits
            self.proc.wait(30)


@pytest.fixture
def own_redis(tmp_path) -> Iterator[OwnRedis]:
    if shutil.which("redis-server") is None:
        pytest.fail("redis-server is not installed (infra/redis/start.sh installs it)")
    server = OwnRedis(free_port(), tmp_path / "redis")
    server.data.mkdir()
    server.start()
    try:
        yield server
    finally:
        server.stop()


def test_redis_down_flow_keeps_predicting_and_pending_checkpoints_land(kafka_servers, tmp_path, own_redis):
    from riverrun.registry import open_registry

    n = 12_000
    events, labels = _stream(n)
    settings, config = fresh_settings(kafka_servers, tmp_path, policy=True, features="none", max_wait_ms=1000)
    text = config.read_text().replace(f'url = "{tmp_path / "registry"}"', f'url = "{own_redis.url}"')
    config.write_text(text)
    first, later = events[: n // 2], events[n // 2 :]
    publish_stream(settings, first, [lb for lb in labels if lb.ts <= first[-1].ts])
    flow = Flow(config, tmp_path / "flow.log").start()
    predictions = TopicReader(kafka_servers, settings.topics.predictions)
    model_events = TopicReader(kafka_servers, settings.topics.model_events)
    registry = open_registry(own_redis.url, REGISTRY_KEY.encode())
    try:
        predictions.read_until(lambda m: _unique(m) >= len(first), 120, flow)
        deadline = time.monotonic() + 60
        while not registry.versions("lr") and time.monotonic() < deadline:
            time.sleep(0.2)
        before = len(registry.versions("lr"))
        assert before >= 1, flow.log_tail()

        own_redis.stop()
        publish_stream(settings, later, [lb for lb in labels if lb.ts > first[-1].ts])
        predictions.read_until(lambda m: _unique(m) >= n, 120, flow)  # predicting without Redis
        deadline = time.monotonic() + 60
        while "registry write failed" not in flow.log.read_text() and time.monotonic() < deadline:
            time.sleep(0.2)
        log_text = flow.log.read_text()
        assert "registry write failed (retry 1," in log_text, flow.log_tail()

        def checkpoints(messages) -> set[str]:
            return {
                json.loads(m.value())["checkpoint"]
                for m in messages
                if json.loads(m.value())["action"] == "checkpoint"
            }

        expected = len(checkpoints(model_events.read_until(lambda m: False, 3)))
        assert expected > before, "no checkpoint was taken while Redis was down"

        own_redis.start()
        deadline = time.monotonic() + 120
        while len(registry.versions("lr")) < expected and time.monotonic() < deadline:
            time.sleep(0.5)
        assert flow.alive(), flow.log_tail()
    finally:
        flow.kill()
    versions = registry.versions("lr")
    ids = [v.reason.split(":")[0] for v in versions]
    assert sorted(ids) == sorted(checkpoints(model_events.messages))  # each once, none lost
    for v in versions:
        registry.load("lr", v.version)  # signature and content intact
    assert "registry reachable again" in flow.log.read_text()
    _check_predictions(predictions, events)


# -- misconfiguration --------------------------------------------------------------------------


def test_recovery_directory_of_another_flow_fails_fast(kafka_servers, tmp_path):
    """A flow's recovery directory records which topics and models it belongs to; another flow
    pointed at it refuses to start (exit 2) and says what differs."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    settings, config = fresh_settings(kafka_servers, tmp_path / "a")
    flow = Flow(config, tmp_path / "a.log").start()
    try:
        deadline = time.monotonic() + 60
        manifest = tmp_path / "a" / "state" / "riverrun-manifest.json"
        while not manifest.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert manifest.exists(), flow.log_tail()
    finally:
        flow.kill(signal.SIGTERM)
    other, other_config = fresh_settings(kafka_servers, tmp_path / "b")
    text = other_config.read_text().replace(str(tmp_path / "b" / "state"), str(tmp_path / "a" / "state"))
    other_config.write_text(text)
    env = {k: v for k, v in os.environ.items() if not k.startswith("RIVERRUN_")}
    env.pop("KAFKA_BOOTSTRAP_SERVERS", None)
    done = subprocess.run(
        [sys.executable, "-m", "riverrun.streams.cli", "run", "-c", str(other_config)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert "holds the state of another flow" in done.stderr
    assert settings.topics.events in done.stderr and other.topics.events in done.stderr
    assert "[recovery] directory" in done.stderr
    # the same flow still resumes there
    again = Flow(config, tmp_path / "a.log").start()
    try:
        deadline = time.monotonic() + 60
        while (tmp_path / "a.log").read_text().count("riverrun run: running") < 2:
            if time.monotonic() > deadline or not again.alive():
                break
            time.sleep(0.1)
        assert again.alive(), again.log_tail()
    finally:
        assert again.kill(signal.SIGTERM) == 0, again.log_tail()
