"""``riverrun models export MODEL VERSION --format mlflow --out DIR``: a verified checkpoint as an
MLflow pyfunc model, loaded by ``mlflow.pyfunc.load_model`` in a fresh process, whose predictions
equal riverrun's (registry/mlflow_export.py, registry/mlflow_pyfunc.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from riverrun.learners import build_model
from riverrun.registry import ModelRegistry, open_registry
from riverrun.registry.mlflow_export import INSTALL
from riverrun.streams.backtest.scenarios import Scenario
from riverrun.streams.cli import main

pytest.importorskip("mlflow")  # the extra; CI installs it with the test extra

KEY = "mlflow-export-test-key-0123456789"
ROWS = list(Scenario(n=1200, drift_at=600, corrupt_from=2000, corrupt_to=2000, shift_at=2000, seed=5).rows())

#: The fresh process: MLflow's own loader, a DataFrame of features in, probabilities out.
SERVE = """
import json, sys
import mlflow.pyfunc
import pandas as pd
model = mlflow.pyfunc.load_model(sys.argv[1])
rows = json.load(open(sys.argv[2]))
out = model.predict(pd.DataFrame(rows))
print(json.dumps({"columns": list(out.columns), "rows": out.to_dict(orient="records"),
                  "metadata": model.metadata.metadata}))
"""


def _registry(tmp_path: Path, recipe: str) -> ModelRegistry:
    registry = open_registry(str(tmp_path / "reg"), KEY.encode())
    model = build_model(recipe)
    for x, y, _ in ROWS[:1000]:
        model.learn_one(x, y)
    registry.save(
        recipe, model, recipe=recipe, parent=None, n_learned=1000, metrics={"accuracy": 0.9},
        event_time=(None, "2024-01-01T00:00:00+00:00"), reason="ckpt-1: periodic (serving v1)",
    )  # fmt: skip
    return registry


@pytest.mark.parametrize("recipe", ["lr", "hat"])
def test_an_exported_checkpoint_served_by_mlflow_in_a_fresh_process_predicts_as_riverrun(
    tmp_path, monkeypatch, capsys, recipe
) -> None:
    registry = _registry(tmp_path, recipe)
    monkeypatch.setenv("RIVERRUN_REGISTRY__KEY", KEY)
    out = tmp_path / "exported"
    argv = ["models", "export", recipe, "1", "--format", "mlflow", "--out", str(out)]
    assert main([*argv, "--registry", str(tmp_path / "reg")]) == 0
    assert "as an MLflow model" in capsys.readouterr().out
    rows = [x for x, _, _ in ROWS[1000:]]
    rows[0] = {k: v for k, v in rows[0].items() if k != "x4"}  # a missing feature: NaN in the frame
    (tmp_path / "rows.json").write_text(json.dumps(rows))
    done = subprocess.run(
        [sys.executable, "-c", SERVE, str(out), str(tmp_path / "rows.json")],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    served = json.loads(done.stdout)
    riverrun_model = registry.load(recipe, 1)  # what riverrun serves from this version
    expected = [riverrun_model.predict_proba_one(x) for x in rows]
    assert served["columns"] == ["false", "true"]
    assert len(served["rows"]) == len(rows) == 200
    assert served["rows"] == [{"false": p[False], "true": p[True]} for p in expected]  # exactly
    meta = served["metadata"]
    assert (meta["riverrun_model"], meta["registry_version"], meta["recipe"]) == (recipe, 1, recipe)
    assert meta["sha256"] == registry.meta(recipe, 1).sha256
    assert set(meta["written_by"]) == {"python_version", "river_version", "riverrun_version"}
    assert not list(out.rglob("python_model.pkl"))  # the wrapper is code, not a pickle


def test_export_refuses_a_tampered_checkpoint_and_writes_nothing(tmp_path, monkeypatch, capsys) -> None:
    _registry(tmp_path, "lr")
    monkeypatch.setenv("RIVERRUN_REGISTRY__KEY", "another-key-0123456789abcdef-000")
    out = tmp_path / "exported"
    argv = ["models", "export", "lr", "1", "--format", "mlflow", "--out", str(out)]
    assert main([*argv, "--registry", str(tmp_path / "reg")]) == 2
    assert "MAC mismatch" in capsys.readouterr().err
    assert not out.exists()


def test_without_mlflow_export_fails_at_once_with_the_install_line(tmp_path, monkeypatch, capsys) -> None:
    _registry(tmp_path, "lr")
    monkeypatch.setenv("RIVERRUN_REGISTRY__KEY", KEY)
    monkeypatch.setitem(sys.modules, "mlflow", None)  # import mlflow: ModuleNotFoundError
    argv = ["models", "export", "lr", "1", "--format", "mlflow", "--out", str(tmp_path / "x")]
    assert main([*argv, "--registry", str(tmp_path / "reg")]) == 2
    assert INSTALL in capsys.readouterr().err
