"""A real, temporary Prometheus for tests: a config scraping the given targets, ``prometheus`` on a
free port with its own storage directory, queries through the HTTP API, and stop.

    with prometheus_server({"riverrun-flow": ["127.0.0.1:9464"]}, rule_files=[ALERTS]) as prom:
        prom.wait_for('riverrun_records_total{kind="event"} > 0')
        prom.value('sum(riverrun_predictions_total)')    # -> float | None
        prom.alerts()                                     # active alerts (the rules' state)

Prometheus 2.42 scrapes a new target about 5 s after it starts (its discovery throttle, not
configurable): ``wait_for`` defaults to 30 s. The binaries come from
``infra/prometheus/install.sh`` (Debian's package); ``binary("promtool")`` fails in CI (``CI``
set) and skips elsewhere when one is missing.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.harness import ROOT
from tests.harness.ports import free_port

PROMETHEUS_DIR = ROOT / "infra" / "prometheus"
ALERTS = PROMETHEUS_DIR / "alerts.yml"


def binary(name: str) -> str:
    """The path of ``prometheus`` or ``promtool``; missing is a failure in CI, a skip elsewhere."""
    path = shutil.which(name)
    if path is None:
        msg = f"{name} not found: run `bash infra/prometheus/install.sh` (apt-get install prometheus)"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    return path


def write_config(
    path: Path,
    targets: Mapping[str, Sequence[str]],
    *,
    rule_files: Sequence[Path] = (),
    interval: float = 1.0,
) -> Path:
    """A prometheus.yml scraping ``targets`` (job name -> ["host:port", ...]) every ``interval``
    seconds and evaluating ``rule_files`` as often. JSON is YAML, so no YAML writer is needed."""
    every = f"{int(interval * 1000)}ms"
    config = {
        "global": {"scrape_interval": every, "evaluation_interval": every, "scrape_timeout": every},
        "rule_files": [str(Path(f).resolve()) for f in rule_files],
        "scrape_configs": [
            {"job_name": job, "static_configs": [{"targets": list(hosts)}]} for job, hosts in targets.items()
        ],
    }
    path.write_text(json.dumps(config, indent=2))
    return path


@dataclass
class Prometheus:
    """A running Prometheus: ``url`` (http://127.0.0.1:PORT), its directory and process."""

    url: str
    directory: Path
    process: subprocess.Popen[bytes]

    def api(self, path: str, **params: Any) -> Any:
        """GET ``/api/v1/<path>``; the ``data`` of a successful answer, else AssertionError."""
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        with urllib.request.urlopen(f"{self.url}/api/v1/{path}{query}", timeout=10) as r:
            body = json.load(r)
        assert body.get("status") == "success", body
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """An instant query: ``[{"metric": {labels}, "value": [ts, "text"]}, ...]`` (a vector)."""
        data = self.api("query", query=expr)
        if data["resultType"] != "vector":
            return [{"metric": {}, "value": data["result"]}]
        return data["result"]

    def value(self, expr: str) -> float | None:
        """The value of a one-sample result (None when empty; AssertionError if several)."""
        result = self.query(expr)
        assert len(result) <= 1, f"{expr} gave {len(result)} series: {result}"
        return float(result[0]["value"][1]) if result else None

    def wait_for(self, expr: str, timeout: float = 30.0) -> list[dict[str, Any]]:
        """Poll ``expr`` until it returns a sample; AssertionError with the targets' state after
        ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            result = self.query(expr)
            if result:
                return result
            if time.monotonic() > deadline:
                raise AssertionError(f"{expr!r} still empty after {timeout}s; targets: {self.targets()}")
            time.sleep(0.25)

    def targets(self) -> list[dict[str, Any]]:
        """Active targets: scrapeUrl, health (up/down/unknown), lastError."""
        return [
            {k: t.get(k) for k in ("scrapeUrl", "health", "lastError")}
            for t in self.api("targets")["activeTargets"]
        ]

    def alerts(self) -> list[dict[str, Any]]:
        """Pending and firing alerts: labels, annotations, state, value."""
        return self.api("alerts")["alerts"]

    def log(self) -> str:
        return (self.directory / "prometheus.log").read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_prometheus(
    targets: Mapping[str, Sequence[str]],
    directory: Path,
    *,
    rule_files: Sequence[Path] = (),
    interval: float = 1.0,
    timeout: float = 30.0,
) -> Prometheus:
    """Start Prometheus in ``directory`` (config, data, log) on a free port; wait until ready."""
    exe = binary("prometheus")
    config = write_config(directory / "prometheus.yml", targets, rule_files=rule_files, interval=interval)
    for _attempt in range(3):  # another process may take the free port before Prometheus binds it
        port = free_port()
        with open(directory / "prometheus.log", "wb") as log:
            process = subprocess.Popen(
                [
                    exe,
                    f"--config.file={config}",
                    f"--storage.tsdb.path={directory / 'data'}",
                    f"--web.listen-address=127.0.0.1:{port}",
                    "--log.level=warn",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        prom = Prometheus(f"http://127.0.0.1:{port}", directory, process)
        if _ready(prom, timeout):
            return prom
        prom.stop()
        if "address already in use" not in prom.log():
            break
    raise AssertionError(f"prometheus did not become ready in {timeout}s:\n{prom.log()[-3000:]}")


def _ready(prom: Prometheus, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and prom.process.poll() is None:
        try:
            with urllib.request.urlopen(f"{prom.url}/-/ready", timeout=2) as r:
                if r.status == 200:
                    return True
        except OSError:
            pass
        time.sleep(0.1)
    return False


@contextmanager
def prometheus_server(
    targets: Mapping[str, Sequence[str]],
    *,
    rule_files: Sequence[Path] = (),
    interval: float = 1.0,
    timeout: float = 30.0,
) -> Iterator[Prometheus]:
    """``start_prometheus`` in a temporary directory, stopped (and the directory removed) after."""
    with tempfile.TemporaryDirectory(prefix="riverrun-prometheus-") as tmp:
        prom = start_prometheus(targets, Path(tmp), rule_files=rule_files, interval=interval, timeout=timeout)
        try:
            yield prom
        finally:
            prom.stop()
