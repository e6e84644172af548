"""The optional extras stay optional: ``riverrun --help`` and a replay without ``--mlflow`` never
import mlflow or pandas (backtest/tracking.py and registry/mlflow_export.py import them lazily).
sqlalchemy is left out: River's ``river.stream.iter_sql`` imports it whenever it is installed."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import timedelta

from riverrun.streams.backtest.scenarios import Scenario
from riverrun.streams.backtest.synth import to_records
from tests.harness.oracle import write_jsonl

PROBE = """
import json, sys
from riverrun.streams.cli import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
heavy = ("mlflow", "pandas", "alembic", "faust")  # not sqlalchemy: River imports it when installed
print(json.dumps(sorted({m.split(".")[0] for m in sys.modules} & set(heavy))))
"""


def _imported(*argv: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *argv], capture_output=True, text=True, timeout=120, check=True
    )
    return json.loads(done.stdout.splitlines()[-1])


def test_help_imports_no_extra() -> None:
    assert _imported("--help") == []
    assert _imported("replay", "--help") == []
    assert _imported("models", "export", "--help") == []


def test_a_replay_without_mlflow_imports_no_extra(tmp_path) -> None:
    rows = [(x, y) for x, y, _ in Scenario(n=300, drift_at=100, shift_at=900, corrupt_from=900).rows()]
    events, labels = to_records(rows, label_delay=timedelta(seconds=10), jitter=0.0)
    e, lb = write_jsonl(tmp_path / "e.jsonl", events), write_jsonl(tmp_path / "l.jsonl", labels)
    argv = ["replay", "--events", str(e), "--labels", str(lb), "--out", str(tmp_path / "bt"), "--no-progress"]
    assert _imported(*argv) == []
    assert (tmp_path / "bt" / "report.json").is_file() and not (tmp_path / "bt" / "mlflow.db").exists()
