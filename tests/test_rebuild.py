"""``rebuilt`` copies state exactly: models, and a whole model step mid-stream (what the flow
does after each snapshot and on resume), continue identically to the original."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime, timedelta

import pytest
from river import datasets

from riverrun.learners import build_model
from riverrun.learners.lifecycle import PolicyConfig
from riverrun.learners.rebuild import rebuilt
from riverrun.schemas import Event, Label
from riverrun.streams.backtest.scenarios import Scenario
from riverrun.streams.core.items import FeaturedEvent, SourcedLabel
from riverrun.streams.core.modelstep import ModelStep, StepConfig

T0 = datetime(2024, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize("recipe", ["lr", "hat", "arf"])
def test_rebuilt_model_continues_identically(recipe):
    rows = list(datasets.Phishing())
    model = build_model(recipe)
    for x, y in rows[:600]:
        model.learn_one(x, y)
    copy = rebuilt(pickle.loads(pickle.dumps(model)))
    assert copy is not model
    for x, y in rows[600:]:
        assert copy.predict_proba_one(x) == model.predict_proba_one(x)
        model.learn_one(x, y)
        copy.learn_one(x, y)


def test_rebuilt_keeps_shared_references_shared():
    shared = {"a": [1, 2]}
    copy = rebuilt({"one": shared, "two": shared, "t": (shared, 3)})
    assert copy["one"] is copy["two"] is copy["t"][0] and copy["one"] is not shared
    assert copy == {"one": shared, "two": shared, "t": (shared, 3)}


def _items(rows, delay=50):
    items = []
    for i, (x, _, _) in enumerate(rows):
        ts = T0 + timedelta(seconds=i)
        if i >= delay:
            j = i - delay
            items.append(SourcedLabel(Label(event_id=str(j), label=rows[j][1], ts=ts), 0, j))
        items.append(FeaturedEvent(Event(event_id=str(i), entity="e", ts=ts, features=x), x, 0, i))
    return items


def _comparable(outputs):
    """Outputs without wall-clock stamps."""
    out = []
    for o in outputs:
        if hasattr(o, "model_dump"):
            out.append(o.model_dump(exclude={"at"}))
        elif hasattr(o, "blob"):  # the same model (pickle bytes may share strings differently)
            model = pickle.loads(o.blob)
            probe = [model.predict_proba_one({f"x{k}": v / 10 for k in range(5)}) for v in range(-20, 20)]
            out.append(("checkpoint", o.id, o.reason, o.n_learned, o.metrics, probe))
        else:
            out.append(repr(o))
    return out


def test_rebuilt_model_step_continues_identically_through_drift_and_corruption():
    rows = list(Scenario(n=12_000, drift_at=3000, corrupt_from=6000, corrupt_to=7000, shift_at=9000).rows())
    items = _items(rows)
    config = StepConfig(model="m", recipe="lr", policy=PolicyConfig(), served_at_event_time=True)
    step = ModelStep(config)
    half = len(items) // 3
    for seq, item in enumerate(items[:half]):
        step.on_item(seq, item)
    copy = rebuilt(pickle.loads(pickle.dumps(step)))
    for seq, item in enumerate(items[half:], start=half):
        assert _comparable(copy.on_item(seq, item)) == _comparable(step.on_item(seq, item))
    assert copy.counters() == step.counters()
    assert copy.learner.metrics() == step.learner.metrics()
