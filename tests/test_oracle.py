"""Oracle: ``riverrun replay --features none`` equals River's progressive_val_score.

Per-event probabilities within 1e-9 and the same final accuracy and log loss, on River's
bundled Phishing dataset and a drifting synthetic Agrawal stream, for ``lr`` and ``hat``; and
beyond binary: a KNN regressor (values, MAE/RMSE/R²) and a multiclass adaptive tree (class
probabilities, accuracy/cross-entropy). ``tests/test_zoo.py`` checks River's model zoo.
"""

from __future__ import annotations

import json
from datetime import timedelta
from types import SimpleNamespace

import pytest
from river import datasets

from riverrun.streams.backtest.replay import replay
from riverrun.streams.backtest.synth import drifting_agrawal, to_records
from tests.harness.oracle import positive_proba, river_reference, write_jsonl

DATASETS = {
    "phishing": lambda: list(datasets.Phishing()),
    "agrawal": lambda: drifting_agrawal(3000, drift_at=1500),
}


@pytest.mark.parametrize("recipe", ["lr", "hat"])
@pytest.mark.parametrize("name", sorted(DATASETS))
def test_replay_equals_progressive_val_score(tmp_path, name, recipe):
    data = DATASETS[name]()
    delay = timedelta(seconds=50)
    # Irregular gaps: event time, not arrival index, decides when a label is revealed.
    events, labels = to_records(data, label_delay=delay, jitter=0.9, seed=7)
    ref_probas, ref_metrics = river_reference(data, recipe, delay, [e.ts for e in events])

    result = replay(
        write_jsonl(tmp_path / "events.jsonl", events),
        write_jsonl(tmp_path / "labels.jsonl", labels),
        tmp_path / "out",
        models=[(recipe, recipe)],
        features="none",
        plot=False,
    )

    lines = (tmp_path / "out" / "predictions.jsonl").read_text().splitlines()
    predictions = [json.loads(line) for line in lines]
    assert [p["event_id"] for p in predictions] == [e.event_id for e in events]
    got = [positive_proba(p) for p in predictions]
    assert got == pytest.approx(ref_probas, abs=1e-9, rel=0)
    final = result.final(recipe)
    assert final.n_learned == len(data)
    assert final.metrics["accuracy"] == pytest.approx(ref_metrics["accuracy"], abs=1e-12)
    assert final.metrics["log_loss"] == pytest.approx(ref_metrics["log_loss"], abs=1e-9)
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["models"][recipe]["final"]["metrics"]["accuracy"] == final.metrics["accuracy"]


def test_integer_delay_matches_arrival_index(tmp_path):
    """moment=None, delay=int in River is event time = arrival index, delay in seconds here."""
    from river import evaluate, metrics

    from riverrun.learners import build_model

    data = list(datasets.Phishing())
    metric = metrics.Accuracy() + metrics.LogLoss()
    evaluate.progressive_val_score(data, build_model("lr"), metric, delay=25)
    events, labels = to_records(data, label_delay=timedelta(seconds=25))
    result = replay(
        write_jsonl(tmp_path / "e.jsonl", events),
        write_jsonl(tmp_path / "l.jsonl", labels),
        tmp_path / "out",
        models=[("lr", "lr")],
        features="none",
        plot=False,
    )
    final = result.final("lr")
    assert final.metrics["accuracy"] == pytest.approx(metric[0].get(), abs=1e-12)
    assert final.metrics["log_loss"] == pytest.approx(metric[1].get(), abs=1e-9)


@pytest.mark.parametrize(
    ("recipe", "kind"),
    [
        ("tests.harness.zoo:knn_regressor", "regression"),
        ("tests.harness.zoo:hoeffding_adaptive_tree_classifier", "multiclass"),
    ],
)
def test_replay_equals_progressive_val_score_beyond_binary(tmp_path, recipe, kind):
    """Regression (a KNN regressor whose SWINN search graph fills, drops old nodes and repairs
    itself within the stream) and multiclass: every served value or class probability, and the
    final MAE/RMSE/R² or accuracy/cross-entropy, as River's; report.json says both are exact."""
    from tests.harness.zoo import METRIC_NAMES, differences, served_value, zoo_stream
    from tests.harness.zoo import river_reference as zoo_reference

    data = zoo_stream(kind, n=400, seed=11)
    delay = timedelta(seconds=30)
    events, labels = to_records(data, label_delay=delay, jitter=0.9, seed=3)
    want, finals = zoo_reference(data, recipe, kind, delay, [e.ts for e in events])
    result = replay(
        write_jsonl(tmp_path / "events.jsonl", events),
        write_jsonl(tmp_path / "labels.jsonl", labels),
        tmp_path / "out",
        models=[("m", recipe)],
        features="none",
        plot=False,
    )
    lines = (tmp_path / "out" / "predictions.jsonl").read_text().splitlines()
    served = [SimpleNamespace(**json.loads(line)) for line in lines]  # y_pred, proba
    assert differences([served_value(p, kind) for p in served], want) == []
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    final = report["models"]["m"]["final"]["metrics"]
    for name in METRIC_NAMES[kind]:
        assert final[name] == pytest.approx(finals[name], abs=1e-9, rel=0), name
    exact = report["exactness"][recipe]
    assert (exact["exact_replay"], exact["exact_recovery"], exact["reason"]) == (True, True, "")
    assert result.final("m").n_learned == len(data)
