"""Recovery state survives moved modules: a recovery directory written before streams/ was split
into subpackages (``tests/fixtures/recovery-b477daf``, see its README) resumes with today's code,
and the predictions after the resume are the uninterrupted run's."""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path

import pytest
from bytewax.recovery import RecoveryConfig
from bytewax.testing import run_main

from riverrun.learners.lifecycle import PolicyConfig
from riverrun.streams.backtest.synth import drifting_agrawal, to_records
from riverrun.streams.core.modelstep import StepConfig
from riverrun.streams.flow.dataflow import FlowSinks, FlowSpec, build_dataflow
from riverrun.streams.flow.sinks import CallbackSink
from riverrun.streams.flow.sources import MemorySource

FIXTURE = Path(__file__).parent / "fixtures" / "recovery-b477daf"
N, CUT = 1200, 700  # the fixture's flow stopped after the first CUT events


def _stream():
    return to_records(
        list(drifting_agrawal(N, drift_at=600, seed=3)),
        label_delay=timedelta(seconds=30),
        n_entities=40,
        seed=3,
    )


def _run(events, labels, recovery: RecoveryConfig | None = None) -> list[tuple]:
    steps = (
        StepConfig(
            model="lr-policy",
            recipe="lr",
            report_every=100,
            metrics_window=200,
            served_at_event_time=True,
            policy=PolicyConfig(),
        ),
        StepConfig(
            model="hat-plain", recipe="hat", report_every=100, metrics_window=200, served_at_event_time=True
        ),
    )
    out: list = []
    sinks = FlowSinks(CallbackSink(out.extend), CallbackSink(lambda _batch: None))
    spec = FlowSpec(steps=steps, features="default", finite=True)
    flow = build_dataflow(spec, MemorySource(events, "event"), MemorySource(labels, "label"), sinks)
    run_main(flow, epoch_interval=timedelta(seconds=10), recovery_config=recovery)
    return [(p.model, p.event_id, p.y_pred, p.proba) for p in out]


@pytest.mark.slow
def test_a_recovery_directory_written_before_the_move_resumes_exactly(tmp_path):
    events, labels = _stream()
    store = tmp_path / "recovery"
    shutil.copytree(FIXTURE, store, ignore=shutil.ignore_patterns("*.md"))
    resumed = _run(events, labels, RecoveryConfig(str(store)))
    whole = _run(events, labels)
    # the fixture's flow had served the first CUT - 1 events of each model before it stopped
    assert len(resumed) == 2 * (N - CUT + 1)
    assert {p[1] for p in resumed} == {e.event_id for e in events[CUT - 1 :]}
    tail = [p for p in whole if p[1] >= events[CUT - 1].event_id]
    assert sorted(resumed) == sorted(tail)
