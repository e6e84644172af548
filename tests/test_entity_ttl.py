"""Quiet entities leave the feature state (``core.ttl``): features restart after the TTL, the
dataflow drops their keys from its state and its recovery store, and no feature changes with when
that happens."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from bytewax.recovery import RecoveryConfig, init_db_dir
from bytewax.testing import run_main

from riverrun.schemas import Event, Label
from riverrun.streams.core.features import EntityFeatures
from riverrun.streams.core.modelstep import StepConfig
from riverrun.streams.core.ttl import BUCKET_SECONDS
from riverrun.streams.flow import recovery
from riverrun.streams.flow.dataflow import FlowSinks, FlowSpec, build_dataflow
from riverrun.streams.flow.sinks import CallbackSink
from riverrun.streams.flow.sources import MemorySource

T0 = datetime(2024, 1, 1, tzinfo=UTC)
TTL = 120.0


def _stream(n: int = 3000, seed: int = 5) -> tuple[list[Event], list[Label]]:
    """One event a second: mostly new entities seen once, some regulars every few seconds, and
    some that come back after more than the TTL."""
    rng = random.Random(seed)
    events, labels = [], []
    for i in range(n):
        r = rng.random()
        if r < 0.6:
            entity = f"new{i}"
        elif r < 0.8:
            entity = f"regular{rng.randrange(5)}"
        else:
            entity = f"back{rng.randrange(40)}"  # 40 entities, each every ~200 s: beyond the TTL
        ts = T0 + timedelta(seconds=i)
        x = {"a": rng.random(), "b": rng.gauss(0, 1)}
        events.append(Event(event_id=f"e{i:06d}", entity=entity, ts=ts, features=x))
        labels.append(Label(event_id=f"e{i:06d}", label=x["a"] > 0.5, ts=ts + timedelta(seconds=10)))
    return events, labels


def _run(events, labels, ttl: float | None, store: Path | None = None, epoch: float = 10.0):
    featured: list = []
    predictions: list = []
    spec = FlowSpec(
        steps=(StepConfig(model="lr", recipe="lr", served_at_event_time=True),),
        features="default",
        finite=True,
        entity_ttl_seconds=ttl,
    )
    sinks = FlowSinks(
        CallbackSink(predictions.extend),
        CallbackSink(lambda _b: None),
        features=CallbackSink(featured.extend),
    )
    flow = build_dataflow(spec, MemorySource(events, "event"), MemorySource(labels, "label"), sinks)
    config = None
    if store is not None:
        store.mkdir()
        init_db_dir(store, 1)
        config = RecoveryConfig(str(store))
    run_main(flow, epoch_interval=timedelta(seconds=epoch), recovery_config=config)
    return featured, predictions


def test_features_restart_after_the_ttl_as_a_pure_reference_computes_them():
    events, labels = _stream()
    featured, _ = _run(events, labels, TTL)
    reference: dict[str, EntityFeatures] = {}
    expected = {}
    for e in events:
        state = reference.setdefault(e.entity, EntityFeatures(300.0, TTL))
        expected[e.event_id] = state.transform(e)
    got = {f.event.event_id: f.x for f in featured}
    assert got == expected
    comebacks = [x for e, x in got.items() if e.startswith("e") and "entity_seconds_since_last" not in x]
    assert len(comebacks) > 1800  # new entities and every return after the TTL start afresh


@pytest.mark.slow
def test_quiet_entities_leave_the_state_and_the_recovery_store(tmp_path):
    events, labels = _stream()
    with_ttl, predictions = _run(events, labels, TTL, tmp_path / "ttl", epoch=0.05)
    _, predictions_kept = _run(events, labels, None, tmp_path / "kept", epoch=0.05)
    kept = recovery.resumed_snapshots(tmp_path / "kept", "features", 1 << 62)
    live = recovery.resumed_snapshots(tmp_path / "ttl", "features", 1 << 62)
    entities = {e.entity for e in events}
    assert len(kept) == len(entities)  # without a TTL every entity ever seen stays
    last = events[-1].ts.timestamp()
    recent = {e.entity for e in events if last - e.ts.timestamp() <= TTL + BUCKET_SECONDS}
    assert set(live) <= recent  # only entities seen within the TTL (and a bucket) are left
    assert len(live) < len(entities) / 10
    buckets = recovery.resumed_snapshots(tmp_path / "ttl", "entity_ttl", 1 << 62)
    assert len(buckets) <= (TTL + BUCKET_SECONDS) / BUCKET_SECONDS + 1  # swept buckets are gone
    # whatever was dropped and when, the features are those of the pure rule, the same at any epoch
    faster, _ = _run(events, labels, TTL, epoch=10.0)
    assert [(f.event.event_id, f.x) for f in with_ttl] == [(f.event.event_id, f.x) for f in faster]
    assert len(predictions) == len(predictions_kept) == len(events)
