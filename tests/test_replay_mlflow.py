"""``riverrun replay ... --mlflow``: a replay of two models x two policies logged to a local MLflow
store, read back with MLflow's own client (backtest/tracking.py)."""

from __future__ import annotations

import hashlib
import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from riverrun.registry.mlflow_export import INSTALL
from riverrun.streams.backtest.scenarios import Scenario
from riverrun.streams.backtest.synth import to_records
from riverrun.streams.cli import main
from tests.harness.oracle import write_jsonl

mlflow = pytest.importorskip("mlflow")  # the extra; CI installs it with the test extra

RUNS = ["lr-none", "lr-default", "hat-none", "hat-default"]
SERIES = ["accuracy", "log_loss", "roc_auc", "accuracy_rolling", "log_loss_rolling", "roc_auc_rolling"]


@pytest.fixture(scope="module")
def tracked(tmp_path_factory) -> dict:
    """One replay, lr and hat with policies none and default, on a stream with a concept drift."""
    root = tmp_path_factory.mktemp("replay-mlflow")
    scenario = Scenario(n=3000, drift_at=1200, corrupt_from=9000, corrupt_to=9000, shift_at=9000, seed=3)
    rows = [(x, y) for x, y, _ in scenario.rows()]
    events, labels = to_records(rows, label_delay=timedelta(seconds=40), jitter=0.5)
    files = write_jsonl(root / "events.jsonl", events), write_jsonl(root / "labels.jsonl", labels)
    out = root / "bt"
    argv = ["replay", "--events", str(files[0]), "--labels", str(files[1]), "--out", str(out)]
    argv += ["--model", "lr", "--model", "hat", "--policy", "none", "--policy", "default", "--mlflow"]
    assert main(argv) == 0
    uri = f"sqlite:///{out / 'mlflow.db'}"
    before = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    try:
        frame = mlflow.search_runs(experiment_names=["riverrun-replay"])
    finally:
        mlflow.set_tracking_uri(before)
    report = json.loads((out / "report.json").read_text())
    return {"out": out, "files": files, "uri": uri, "runs": frame, "report": report}


def _children(tracked) -> dict[str, str]:
    frame = tracked["runs"]
    kids = frame[frame["tags.riverrun.kind"] == "replay-run"]
    return dict(zip(kids["tags.mlflow.runName"], kids["run_id"], strict=True))


def test_one_parent_run_and_a_child_per_model_and_policy(tracked) -> None:
    frame = tracked["runs"]
    assert len(frame) == 5
    parent = frame[frame["tags.riverrun.kind"] == "replay"]
    assert len(parent) == 1
    children = frame[frame["tags.riverrun.kind"] == "replay-run"]
    assert sorted(children["tags.mlflow.runName"]) == sorted(RUNS)
    assert set(children["tags.mlflow.parentRunId"]) == {parent["run_id"].iloc[0]}
    assert set(frame["status"]) == {"FINISHED"}


def test_params_say_what_ran_on_what(tracked) -> None:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracked["uri"])
    events, labels = tracked["files"]
    for name, run_id in _children(tracked).items():
        params = client.get_run(run_id).data.params
        model, policy = name.split("-")
        assert (params["recipe"], params["policy"], params["segment"]) == (model, policy, "none")
        assert params["input.events.sha256"] == hashlib.sha256(events.read_bytes()).hexdigest()
        assert params["input.labels.sha256"] == hashlib.sha256(labels.read_bytes()).hexdigest()
        assert (params["features"], params["label_ttl_seconds"]) == ("default", "86400.0")
        assert params["policy.enabled"] == str(policy == "default")
        assert "policy.cooldown" in params and "policy.concept_detector" in params
        assert params["river_version"] and params["riverrun_version"] and params["python_version"]
        if model == "lr":  # the recipe's hyper-parameters, flattened
            assert params["hp.LogisticRegression.optimizer"] == "SGD"
            assert params["hp.LogisticRegression.optimizer.lr.learning_rate"] == "0.01"
        else:
            assert (params["hp.grace_period"], params["hp.drift_detector"]) == ("200", "ADWIN")


def test_metrics_are_series_over_the_stream_ending_at_the_report(tracked) -> None:
    """step = events served, timestamp = event time; one point per metrics point of the run,
    the last equal to report.json's final metrics."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracked["uri"])
    entries = {r["name"]: r for r in tracked["report"]["runs"]}
    for name, run_id in _children(tracked).items():
        lengths = set()
        for key in SERIES:
            history = sorted(client.get_metric_history(run_id, key), key=lambda m: m.step)
            lengths.add(len(history))
            steps = [m.step for m in history]
            assert steps == sorted(set(steps)) and steps[-1] == entries[name]["n_predicted"] == 3000
            assert history[-1].value == pytest.approx(entries[name]["metrics"][key], nan_ok=True)
            times = [datetime.fromtimestamp(m.timestamp / 1000, UTC).year for m in history]
            assert set(times) == {2024}  # event time (the synthetic stream's), not the wall clock
        assert len(lengths) == 1 and lengths.pop() >= 3  # every 1000 labels, and the end
        actions = entries[name]["action_counts"]
        for action, count in actions.items():
            history = client.get_metric_history(run_id, f"action.{action}")
            assert [m.value for m in history] == [float(n) for n in range(1, count + 1)]
        tags = client.get_run(run_id).data.tags
        assert json.loads(tags["riverrun.action_counts"]) == actions
        assert len([t for t in tags if t.startswith("action.")]) == sum(actions.values())
    default = entries["hat-default"]["action_counts"]
    assert default.get("concept_drift", 0) >= 1  # the drift at event 1200 is seen and tagged


def test_artifacts_reports_model_events_and_the_final_model(tracked) -> None:
    import pandas as pd
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracked["uri"])
    frame = tracked["runs"]
    parent = frame[frame["tags.riverrun.kind"] == "replay"]["run_id"].iloc[0]
    listed = {a.path for a in client.list_artifacts(parent)}
    assert listed == {"report.html", "metrics.png", "report.json", "model-events.jsonl"}
    for name, run_id in _children(tracked).items():
        assert {a.path for a in client.list_artifacts(run_id)} == {"model", "model-events.jsonl", "run.json"}
        local = Path(client.download_artifacts(run_id, "model-events.jsonl"))
        lines = [json.loads(line) for line in local.read_text().splitlines()]
        assert {e["model"] for e in lines} <= {name}
        model = mlflow.pyfunc.load_model(client.download_artifacts(run_id, "model"))
        proba = model.predict(pd.DataFrame([{f"x{k}": 0.5 for k in range(5)}]))
        assert list(proba.columns) == ["false", "true"]
        assert proba.sum(axis=1).iloc[0] == pytest.approx(1.0)
        assert model.metadata.metadata["riverrun_model"] == name


def test_without_mlflow_replay_fails_at_once_with_the_install_line(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setitem(sys.modules, "mlflow", None)  # import mlflow: ModuleNotFoundError
    out = tmp_path / "bt"
    argv = ["replay", "--events", "e.jsonl", "--labels", "l.jsonl", "--out", str(out), "--mlflow"]
    assert main(argv) == 2
    assert INSTALL in capsys.readouterr().err
    assert not out.exists()  # nothing read, nothing written


@pytest.mark.kafka
def test_a_kafka_range_is_logged_as_topic_ranges_per_partition(kafka_servers, tmp_path) -> None:
    from confluent_kafka.admin import NewPartitions
    from mlflow.tracking import MlflowClient

    from riverrun.streams.kafka.admin import admin
    from riverrun.streams.kafka.producer import publish_stream
    from tests.harness.kafka import fresh_settings

    rows = [(x, y) for x, y, _ in Scenario(n=400, drift_at=200, shift_at=900, corrupt_from=900).rows()]
    events, labels = to_records(rows, label_delay=timedelta(seconds=20), jitter=0.5, n_entities=20)
    settings, config = fresh_settings(kafka_servers, tmp_path, features="default")
    client = admin(settings)  # alive until the futures resolve
    for future in client.create_partitions([NewPartitions(settings.topics.events, 2)]).values():
        future.result(30)
    publish_stream(settings, events, labels)
    out = tmp_path / "bt"
    argv = ["replay", "--from-kafka", "-c", str(config), "--out", str(out), "--no-progress", "--mlflow"]
    assert main([*argv, "--end-offset", "labels=300"]) == 0
    report = json.loads((out / "report.json").read_text())
    tracking = MlflowClient(f"sqlite:///{out / 'mlflow.db'}")
    (experiment,) = [e for e in tracking.search_experiments() if e.name == "riverrun-replay"]
    runs = tracking.search_runs([experiment.experiment_id], "tags.riverrun.kind = 'replay-run'")
    (params,) = [r.data.params for r in runs]
    ranges = {f"input.{kind}.p{r['partition']}": f"{r['start']}..{r['end']}" for kind in ("events", "labels")
              for r in report["inputs"][kind]}  # fmt: skip
    assert sorted(ranges) == ["input.events.p0", "input.events.p1", "input.labels.p0"]
    assert {k: params[k] for k in ranges} == ranges and ranges["input.labels.p0"] == "0..300"
    assert params["input.topics.events"] == settings.topics.events


def test_an_unreachable_tracking_server_fails_before_the_replay(tracked, tmp_path, capsys) -> None:
    from tests.harness.ports import free_port

    events, labels = tracked["files"]
    out = tmp_path / "bt"
    uri = f"http://127.0.0.1:{free_port()}/"
    argv = ["replay", "--events", str(events), "--labels", str(labels), "--out", str(out), "--mlflow", uri]
    assert main(argv) == 2
    assert f"MLflow tracking store {uri}" in capsys.readouterr().err
    assert not (out / "predictions.jsonl").exists()


@pytest.mark.parametrize("recipe", ["lr", "lr_onehot", "hat", "arf"])
def test_every_recipe_gives_params_mlflow_accepts(recipe) -> None:
    """Keys MLflow takes (lr_onehot's TransformerUnion holds (int, float) tuples, not params)."""
    import re

    from riverrun.learners.lifecycle import PolicyConfig
    from riverrun.streams.backtest.replay import Run
    from riverrun.streams.backtest.tracking import run_params

    params = run_params(Run(recipe, recipe, recipe, "default", PolicyConfig()), None)
    assert all(re.fullmatch(r"[\w\-./ ]{1,250}", k) for k in params)
    assert all(isinstance(v, str) and len(v) <= 500 for v in params.values())
    assert sum(k.startswith("hp.") for k in params) >= 15
