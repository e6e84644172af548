"""ModelStep alone (no engine) reproduces River's progressive_val_score with delayed labels,
whatever order the two inputs are delivered in."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from river import compose, datasets, evaluate, metrics, stream

from riverrun.learners import build_model
from riverrun.streams.items import FeaturedEvent, SourcedLabel
from riverrun.streams.modelstep import ModelStep, StepConfig
from riverrun.streams.synth import drifting_agrawal, to_records


def river_reference(data, recipe, delay_s, ts):
    """Per-event probabilities (via simulate_qa) and final metrics (progressive_val_score)."""
    timed = [({**x, "__ts": t}, y) for (x, y), t in zip(data, ts, strict=True)]
    make = lambda: compose.Discard("__ts") | build_model(recipe)  # noqa: E731
    metric = metrics.Accuracy() + metrics.LogLoss()
    evaluate.progressive_val_score(
        timed, make(), metric, moment="__ts", delay=timedelta(seconds=delay_s)
    )
    model, probas = make(), {}
    for i, x, y in stream.simulate_qa(timed, moment="__ts", delay=timedelta(seconds=delay_s)):
        if y is None:
            probas[i] = model.predict_proba_one(x).get(True, 0.0)
        else:
            model.learn_one(x, y)
    return probas, {m.__class__.__name__: m.get() for m in metric}


def run_step(events, labels, recipe, interleave_seed):
    step = ModelStep(StepConfig(model="m", recipe=recipe))
    items = [FeaturedEvent(e, dict(e.features), 0, i) for i, e in enumerate(events)]
    label_items = [SourcedLabel(lb, 0, i) for i, lb in enumerate(labels)]
    # Deliver the two inputs interleaved at random, each in its own order (as two topics are).
    rng = random.Random(interleave_seed)
    out, i, j = [], 0, 0
    while i < len(items) or j < len(label_items):
        if j >= len(label_items) or (i < len(items) and rng.random() < 0.5):
            out += step.on_item(items[i])
            i += 1
        else:
            out += step.on_item(label_items[j])
            j += 1
    out += step.on_end()
    preds = [o for o in out if type(o).__name__ == "Prediction"]
    final = out[-1]
    return preds, final


@pytest.mark.parametrize("recipe", ["lr", "hat"])
@pytest.mark.parametrize("dataset", ["phishing", "agrawal"])
def test_step_matches_progressive_val_score(recipe, dataset):
    data = list(datasets.Phishing()) if dataset == "phishing" else drifting_agrawal(1500)
    delay_s = 50
    events, labels = to_records(data, interval=timedelta(seconds=1), jitter=0.9,
                                label_delay=timedelta(seconds=delay_s))
    ts = [e.ts for e in events]
    ref_probas, ref_metrics = river_reference(data, recipe, delay_s, ts)
    for seed in (0, 1):
        preds, final = run_step(events, labels, recipe, seed)
        assert [p.event_id for p in preds] == [e.event_id for e in events]
        got = [p.proba.get("true", 0.0) if p.proba else 0.0 for p in preds]
        assert got == pytest.approx([ref_probas[i] for i in range(len(data))], abs=1e-9)
        assert final.metrics["accuracy"] == pytest.approx(ref_metrics["Accuracy"], abs=1e-12)
        assert final.metrics["log_loss"] == pytest.approx(ref_metrics["LogLoss"], abs=1e-9)
        assert final.n_learned == len(data)
