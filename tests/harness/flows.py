"""`riverrun run` as subprocesses: one process (``Flow``), or a Bytewax cluster or shards
(``FlowCluster``); both get their environment from ``flow_env``. And a whole scenario on a live
flow, the operator's rollback."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from riverrun.streams.settings import Settings
from tests.harness.kafka import REGISTRY_KEY, ROOT, TopicReader, fresh_settings, riverrun_models
from tests.harness.ports import free_port

RUNNING_LINE = "riverrun run: running"  # logged by `riverrun run` once its stop handler is in


def flow_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a flow subprocess: this one without its ``RIVERRUN_*`` variables and
    broker (the config file says where), with the registry key and any free metrics port (flows
    run side by side); then ``extra`` (secrets such as ``RIVERRUN_KAFKA__SASL_PASSWORD``)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RIVERRUN_")}
    env.pop("KAFKA_BOOTSTRAP_SERVERS", None)
    env["RIVERRUN_REGISTRY__KEY"] = REGISTRY_KEY
    env["RIVERRUN_METRICS__PORT"] = "0"
    env.update(extra or {})
    return env


def run_command(config: Path, *args: str) -> list[str]:
    """``riverrun --log-level INFO run -c CONFIG ARGS`` as an argv."""
    return [
        sys.executable,
        "-m",
        "riverrun.streams.cli",
        "--log-level",
        "INFO",
        "run",
        "-c",
        str(config),
        *args,
    ]


class Flow:
    """`riverrun run -c CONFIG` in a subprocess, logging to a file. ``env`` adds variables to
    the flow's environment (``flow_env``); ``args`` more `riverrun run` options (--shard 0/2)."""

    def __init__(
        self, config: Path, log: Path, env: dict[str, str] | None = None, args: tuple[str, ...] = ()
    ):
        self.config, self.log = config, log
        self.extra_env = dict(env or {})
        self.args = args
        self.proc: subprocess.Popen | None = None

    def start(self) -> Flow:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                run_command(self.config, *self.args),
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
                env=flow_env(self.extra_env),
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


class FlowCluster:
    """`riverrun run -c CONFIG` as ``processes`` subprocesses: one Bytewax cluster, or with
    ``shards`` independent processes (``--shard I/N``). Each start is marked in the log
    (``==== start N ====``)."""

    def __init__(
        self,
        config: Path,
        log: Path,
        processes: int = 1,
        env: dict[str, str] | None = None,
        shards: bool = False,
    ):
        self.config, self.log, self.processes, self.shards = config, log, processes, shards
        self.extra_env = dict(env or {})
        self.procs: list[subprocess.Popen] = []
        self.starts = 0

    def start(self) -> FlowCluster:
        base = run_command(self.config)
        if self.shards:
            commands = [[*base, "--shard", f"{i}/{self.processes}"] for i in range(self.processes)]
        elif self.processes > 1:
            addresses = ";".join(f"127.0.0.1:{free_port()}" for _ in range(self.processes))
            commands = [[*base, "-i", str(i), "-a", addresses] for i in range(self.processes)]
        else:
            commands = [base]
        env = flow_env(self.extra_env)
        self.procs = []
        with self.log.open("ab") as out:
            out.write(f"\n==== start {self.starts} ====\n".encode())
            out.flush()
            for command in commands:
                self.procs.append(
                    subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT, env=env)
                )
        self.starts += 1
        return self

    def alive(self) -> bool:
        return bool(self.procs) and all(p.poll() is None for p in self.procs)

    def kill(self, which: list[int], survivors_grace: float = 15.0) -> dict[str, Any]:
        """SIGKILL processes ``which``; the others get ``survivors_grace`` seconds to exit on
        their own (a cluster peer lost), then are SIGKILLed too. Returns what happened."""
        for i in which:
            self.procs[i].send_signal(signal.SIGKILL)
        for i in which:
            self.procs[i].wait(30)
        exited, killed = [], []
        for i, p in enumerate(self.procs):
            if i in which:
                continue
            try:
                p.wait(survivors_grace)
                exited.append((i, p.returncode))
            except subprocess.TimeoutExpired:
                p.send_signal(signal.SIGKILL)
                p.wait(30)
                killed.append(i)
        return {"killed": which, "survivors_exited": exited, "survivors_killed": killed}

    def stop(self, timeout: float = 120.0) -> list[int]:
        """SIGTERM every process (drain, final snapshot); their exit codes."""
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        codes = []
        for p in self.procs:
            try:
                codes.append(p.wait(timeout))
            except subprocess.TimeoutExpired:
                p.kill()
                codes.append(p.wait(30))
        return codes

    def log_tail(self, n: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])


def wait_running(flow: FlowCluster, timeout: float) -> None:
    """Until every process of the flow's latest start logged that it runs (its SIGTERM handler
    is installed from then on)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = flow.log.read_text(errors="replace").rsplit(f"==== start {flow.starts - 1} ====", 1)[-1]
        if text.count(RUNNING_LINE) >= flow.processes:
            return
        if not flow.alive():
            raise RuntimeError(f"flow died:\n{flow.log_tail()}")
        time.sleep(0.1)
    raise RuntimeError(f"flow not running after {timeout:.0f}s:\n{flow.log_tail()}")


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

    from riverrun.registry import open_registry
    from riverrun.streams.backtest.scenarios import Scenario
    from riverrun.streams.backtest.synth import to_records
    from riverrun.streams.kafka.producer import VerifiedProducer, publish_stream

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
