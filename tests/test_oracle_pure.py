"""Sequencer + ModelStep alone (no engine) reproduce River's progressive_val_score with delayed labels,
whatever order the two inputs are delivered in."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from river import datasets

from riverrun.streams.backtest.synth import drifting_agrawal, to_records
from riverrun.streams.core.items import FeaturedEvent, SourcedLabel
from riverrun.streams.core.modelstep import ModelStep, StepConfig
from riverrun.streams.core.ordering import EVENT, LABEL, Sequencer
from tests.harness.oracle import river_reference


def run_step(events, labels, recipe, interleave_seed):
    """Sequencer -> (permuted, as keyed steps and workers do) -> ModelStep, as the engine wires them."""
    sequencer = Sequencer()
    step = ModelStep(StepConfig(model="m", recipe=recipe))
    rng = random.Random(interleave_seed)
    numbered, i, j = [], 0, 0
    # Deliver the two inputs interleaved at random, each in its own order (as two topics are).
    while i < len(events) or j < len(labels):
        if j >= len(labels) or (i < len(events) and rng.random() < 0.5):
            e = events[i]
            numbered += sequencer.push(
                EVENT, e.ts.timestamp(), 0, i, FeaturedEvent(e, dict(e.features), 0, i)
            )
            i += 1
        else:
            lb = labels[j]
            numbered += sequencer.push(LABEL, lb.ts.timestamp(), 0, j, SourcedLabel(lb, 0, j))
            j += 1
    numbered += sequencer.flush()
    # Permute within windows of 50 items: the model step must restore the sequence.
    out = []
    for k in range(0, len(numbered), 50):
        window = numbered[k : k + 50]
        rng.shuffle(window)
        for seq, item in window:
            out += step.on_item(seq, item)
    out += step.on_end()
    preds = [o for o in out if type(o).__name__ == "ServedPrediction"]
    return preds, out[-1]


@pytest.mark.parametrize("recipe", ["lr", "hat"])
@pytest.mark.parametrize("dataset", ["phishing", "agrawal"])
def test_step_matches_progressive_val_score(recipe, dataset):
    data = list(datasets.Phishing()) if dataset == "phishing" else drifting_agrawal(1500)
    delay_s = 50
    events, labels = to_records(
        data, interval=timedelta(seconds=1), jitter=0.9, label_delay=timedelta(seconds=delay_s)
    )
    ts = [e.ts for e in events]
    ref_probas, ref_metrics = river_reference(data, recipe, timedelta(seconds=delay_s), ts)
    for seed in (0, 1):
        preds, final = run_step(events, labels, recipe, seed)
        assert [p.event_id for p in preds] == [e.event_id for e in events]
        got = [p.proba.get("true", 0.0) if p.proba else 0.0 for p in preds]
        assert got == pytest.approx(ref_probas, abs=1e-9)
        assert final.metrics["accuracy"] == pytest.approx(ref_metrics["accuracy"], abs=1e-12)
        assert final.metrics["log_loss"] == pytest.approx(ref_metrics["log_loss"], abs=1e-9)
        assert final.n_learned == len(data)
