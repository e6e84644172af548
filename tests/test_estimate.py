"""The label-free estimate (``learners.estimate``): close to the realised accuracy on a calibrated
stream, corrected by the labels on an over-confident one, exact bookkeeping of the pending window,
and in the model step an observer only (predictions and metrics unchanged, old snapshots load)."""

from __future__ import annotations

import math
import pickle
import random
from datetime import UTC, datetime, timedelta

import pytest

from riverrun.learners.estimate import ConfidenceEstimate
from riverrun.schemas import Event, Label
from riverrun.streams.backtest.synth import drifting_agrawal
from riverrun.streams.core.items import FeaturedEvent, MetricsPoint, ServedPrediction, SourcedLabel
from riverrun.streams.core.modelstep import ModelStep, StepConfig
from riverrun.streams.flow.metrics import FlowMetrics

DELAY = 200


def synthetic(n: int, truth, seed: int = 1):
    """Binary predictions with confidence p ~ U(0.5, 1), right with probability ``truth(p)``."""
    rng = random.Random(seed)
    for _ in range(n):
        p = rng.uniform(0.5, 1.0)
        y_pred = rng.random() < 0.5
        right = rng.random() < truth(p)
        yield y_pred, {y_pred: p, not y_pred: 1.0 - p}, y_pred if right else not y_pred


def run(est: ConfidenceEstimate, stream, delay: int = DELAY) -> list[tuple[float, float]]:
    """Feed ``stream`` with labels ``delay`` predictions late; each time the pending window is
    full, pair its estimate with the accuracy its labels show later."""
    rows = list(stream)
    pairs = []
    for i, (y_pred, proba, _) in enumerate(rows):
        est.update_served(i, y_pred, proba)
        if i >= delay:
            if i % 50 == 0:
                window = rows[i - delay + 1 : i + 1]
                realised = sum(yp == y for yp, _, y in window) / len(window)
                pairs.append((est.get()["estimated_accuracy"], realised))
            est.update_label(i - delay, rows[i - delay][2])
    return pairs


def mae(pairs) -> float:
    return sum(abs(a - b) for a, b in pairs) / len(pairs)


def test_on_a_calibrated_stream_the_estimate_is_the_realised_accuracy():
    est = ConfidenceEstimate(window_size=500)
    pairs = run(est, synthetic(20_000, lambda p: p))
    # the pending window (200 predictions): sampling noise alone is ~0.025
    assert mae(pairs) < 0.03
    # the rolling comparison the estimator keeps itself, over 500 labelled predictions
    assert est.get()["mae"] < 0.02
    plain = ConfidenceEstimate(window_size=500, calibrate=False)
    run(plain, synthetic(20_000, lambda p: p))
    assert plain.get()["mae"] < 0.02  # calibrated: the correction has nothing to add


def test_on_an_overconfident_stream_the_calibration_corrects_the_estimate():
    def truth(p: float) -> float:  # says 0.9, right 66 % of the time
        return 0.5 + 0.4 * (p - 0.5)

    plain = ConfidenceEstimate(window_size=500, calibrate=False)
    corrected = ConfidenceEstimate(window_size=500)
    plain_pairs = run(plain, synthetic(20_000, truth))
    corrected_pairs = run(corrected, synthetic(20_000, truth))
    assert mae(plain_pairs) > 0.15  # plain CBPE trusts the model: ~0.75 for ~0.6
    assert mae(corrected_pairs) < 0.035
    assert plain.get()["mae"] > 0.12 and corrected.get()["mae"] < 0.03  # warm-up included
    assert corrected.correction(0.9) == pytest.approx(truth(0.9) - 0.9, abs=0.05)


def test_the_expected_log_loss_of_a_calibrated_multiclass_model_is_its_log_loss():
    rng = random.Random(3)
    est = ConfidenceEstimate(calibrate=False)
    losses, rights = [], []
    for i in range(5000):
        w = [rng.random() ** 3 for _ in range(4)]
        proba = {k: v / sum(w) for k, v in zip("abcd", w, strict=True)}
        y_pred = max(proba, key=proba.get)
        y = rng.choices(list(proba), weights=list(proba.values()))[0]
        est.update_served(i, y_pred, proba)  # all pending: labels drawn, not given
        losses.append(-math.log(proba[y]))
        rights.append(y == y_pred)
    s = est.get()
    assert s["estimated_log_loss"] == pytest.approx(sum(losses) / len(losses), rel=0.05)
    assert s["estimated_accuracy"] == pytest.approx(sum(rights) / len(rights), abs=0.02)


def test_the_pending_window_adds_at_serving_and_removes_at_label_or_expiry():
    est = ConfidenceEstimate(calibrate=False)
    assert est.get() == {"pending": 0.0}
    est.update_served("a", True, {True: 0.9, False: 0.1})
    est.update_served("b", False, {True: 0.3, False: 0.7})
    est.update_served("c", True, {True: 1.0, False: 0.0})  # certain: finite expected loss
    assert est.get()["estimated_accuracy"] == pytest.approx((0.9 + 0.7 + 1.0) / 3)
    expected = 0.9 * -math.log(0.9) + 0.1 * -math.log(0.1) + 0.7 * -math.log(0.7) + 0.3 * -math.log(0.3)
    assert est.get()["estimated_log_loss"] == pytest.approx(expected / 3)
    est.update_served("c", True, {True: 0.6, False: 0.4})  # served again: replaces
    assert est.n_pending == 3
    assert est.get()["estimated_accuracy"] == pytest.approx((0.9 + 0.7 + 0.6) / 3)
    est.forget("b")
    est.update_label("a", False)
    est.update_label("zzz", True)  # never served: ignored
    s = est.get()
    assert s["pending"] == 1 and s["estimated_accuracy"] == pytest.approx(0.6)
    assert s["accuracy_rolling"] == 0.0 and s["estimated_accuracy_rolling"] == pytest.approx(0.9)
    assert s["abs_error"] == pytest.approx(0.9) and "mae" not in s  # the window is not full yet
    est.update_label("c", True)
    assert "estimated_accuracy" not in est.get()  # nothing pending: nothing to estimate
    assert est._pending_accuracy == 0.0 and est._pending_log_loss == 0.0


def test_queued_updates_give_what_updates_applied_one_by_one_give():
    class OneByOne(ConfidenceEstimate):
        BATCH = 1

    stream = list(synthetic(3000, lambda p: 0.9 * p))
    batched, single = ConfidenceEstimate(window_size=300), OneByOne(window_size=300)
    for est in (batched, single):
        for i, (y_pred, proba, _) in enumerate(stream):
            est.update_served(i, y_pred, proba)
            if i % 7 == 0:
                est.forget(i - 3)  # expired before its label
            if i >= 100:
                est.update_label(i - 100, stream[i - 100][2])
    assert batched._queue and not single._queue
    assert batched.get() == single.get() and batched.n_labelled == single.n_labelled


def test_a_pickled_estimate_continues_identically():
    est = ConfidenceEstimate(window_size=100)
    stream = list(synthetic(2000, lambda p: p * 0.8))
    run(est, stream[:1000])
    copy = pickle.loads(pickle.dumps(est))
    assert copy.get() == est.get()
    run(est, stream[1000:])
    run(copy, stream[1000:])
    assert copy.get() == est.get()


# -- in the model step ----------------------------------------------------------------------------

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def step_items(n: int = 3000, delay: int = 100) -> list:
    rows = list(drifting_agrawal(n, drift_at=n // 2, seed=7))
    items: list = []
    for i, (x, _) in enumerate(rows):
        ts = T0 + timedelta(seconds=i)
        if i >= delay:
            j = i - delay
            items.append(SourcedLabel(Label(event_id=str(j), label=rows[j][1], ts=ts), 0, j))
        items.append(FeaturedEvent(Event(event_id=str(i), entity="e", ts=ts, features=x), x, 0, i))
    return items


def outputs(step: ModelStep, items: list) -> list:
    out = []
    for seq, item in enumerate(items):
        out.extend(step.on_item(seq, item))
    return out + step.on_end()


def config(**kw) -> StepConfig:
    return StepConfig(model="m", recipe="hat", served_at_event_time=True, report_every=500, **kw)


def test_the_estimate_only_observes_the_model_step():
    items = step_items()
    on, off = ModelStep(config()), ModelStep(config(estimate=False))
    with_estimate, without = outputs(on, items), outputs(off, items)
    predictions = [o for o in with_estimate if isinstance(o, ServedPrediction)]
    assert predictions == [o for o in without if isinstance(o, ServedPrediction)]
    points = [o for o in with_estimate if isinstance(o, MetricsPoint)]
    assert [p.metrics for p in points] == [o.metrics for o in without if isinstance(o, MetricsPoint)]
    final = points[-1].estimate
    assert 0 < final["mae"] < 0.2
    assert final["accuracy_rolling"] == pytest.approx(points[-1].metrics["accuracy_rolling"])
    assert points[-1].to_dict()["estimate"] == final
    assert off.estimate is None and points[-1].estimate and not without[-1].estimate


def test_the_view_exports_the_estimate_to_prometheus():
    step = ModelStep(config())
    for seq, item in enumerate(step_items(1500)):
        step.on_item(seq, item)
    view = step.view()
    assert view.estimate["pending"] == 100
    metrics = FlowMetrics()
    metrics.publish(view)
    text = metrics.exposition()
    for name in ("riverrun_estimated_accuracy", "riverrun_estimated_log_loss", "riverrun_estimate_abs_error"):
        assert f'{name}{{model="m"}}' in text
    assert step.estimate.pending_table() in step.per_event_tables()


def test_a_regression_model_estimates_nothing():
    step = ModelStep(StepConfig(model="r", recipe="river.linear_model:LinearRegression"))
    assert step.estimate is None and step.view().estimate == {}
    assert "riverrun_estimated_accuracy" not in FlowMetrics().exposition()


def test_a_snapshot_from_before_the_estimate_loads_and_estimates_from_then_on():
    items = step_items(1200)
    step = ModelStep(config())
    for seq, item in enumerate(items[:600]):
        step.on_item(seq, item)
    del step.estimate  # as pickled by a riverrun without it
    old = pickle.dumps(step)
    resumed = pickle.loads(old)
    assert resumed.estimate is not None and resumed.estimate.n_pending == 0
    for seq, item in enumerate(items[600:], start=600):
        resumed.on_item(seq, item)
    assert resumed.estimate.n_pending == 100 and resumed.view().estimate["estimated_accuracy"] > 0


def test_quarantined_labels_neither_score_nor_calibrate_the_estimate():
    from riverrun.learners.lifecycle import PolicyConfig
    from riverrun.streams.backtest.scenarios import Scenario

    rows = list(Scenario().rows())
    items: list = []
    for i, (x, _, _) in enumerate(rows):
        ts = T0 + timedelta(seconds=i)
        if i >= 50:
            j = i - 50
            items.append(SourcedLabel(Label.model_construct(event_id=str(j), label=rows[j][1], ts=ts), 0, j))
        items.append(
            FeaturedEvent(Event.model_construct(event_id=str(i), entity="e", ts=ts, features=x), x, 0, i)
        )
    step = ModelStep(StepConfig(model="m", recipe="lr", served_at_event_time=True, policy=PolicyConfig()))
    for seq, item in enumerate(items):
        step.on_item(seq, item)
    assert step.n_quarantined_labels > 0  # the scenario's flipped labels paused learning
    assert step.estimate.n_labelled == step.join.n_joined - step.n_quarantined_labels
    assert step.estimate.n_pending == 50
