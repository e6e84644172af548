"""Per-segment models: a segmented flow equals one flow per segment, labels find their segment,
labels of unknown events are dead-lettered once."""

from __future__ import annotations

from datetime import timedelta

from riverrun.schemas import DeadLetter, Event, Label
from riverrun.streams.core.items import ServedPrediction
from riverrun.streams.core.modelstep import StepConfig
from riverrun.streams.core.segments import SegmentRouter, segment_name
from tests.harness.segments import COUNTRIES, T0, run, stream, without_country


def test_a_segmented_flow_equals_one_flow_per_segment():
    events, labels = stream()
    together = run(events, labels, "country")
    by_model: dict[str, dict[str, ServedPrediction]] = {}
    for p in together["predictions"]:
        by_model.setdefault(p.model, {})[p.event_id] = p
    assert sorted(by_model) == [f"lr.{c}" for c in COUNTRIES]
    for c in COUNTRIES:
        ids = {e.event_id for e in events if e.features["country"] == c}
        mine = [e.model_copy(update={"features": without_country(e)}) for e in events if e.event_id in ids]
        alone = run(mine, [lb for lb in labels if lb.event_id in ids], None)
        want = {p.event_id: (p.y_pred, p.proba) for p in alone["predictions"]}
        got = {i: (p.y_pred, p.proba) for i, p in by_model[f"lr.{c}"].items()}
        assert got == want, c
    assert together["dead"] == []


def test_segments_with_entity_features_and_by_entity():
    events, labels = stream(300)
    events = [e.model_copy(update={"features": without_country(e)}) for e in events]  # lr: numbers
    out = run(events, labels, "entity", features="default")
    assert {p.model for p in out["predictions"]} == {f"lr.u{k}" for k in range(13)}
    assert len(out["predictions"]) == 300 and out["dead"] == []


def test_early_labels_wait_for_their_event_and_unknown_ones_are_dead_lettered():
    events, labels = stream(200)
    early = [Label(event_id=e.event_id, label=True, ts=e.ts - timedelta(seconds=1)) for e in events[150:160]]
    ghost = [Label(event_id="nobody", label=True, ts=T0 + timedelta(seconds=10))]
    labels = sorted([*labels[:150], *early, *ghost], key=lambda lb: lb.ts)
    spec_ttl = StepConfig(model="lr", recipe="lr").label_ttl_seconds
    late_events = [
        *events,
        Event(event_id="last", entity="u", ts=T0 + timedelta(seconds=spec_ttl + 100), features={}),
    ]
    out = run(late_events, labels, "country")
    dead = [d for d in out["dead"] if isinstance(d, DeadLetter)]
    assert [(d.reason, d.kind) for d in dead] == [("unknown_event", "label")]
    assert '"nobody"' in dead[0].payload


def test_router_numbers_per_segment_and_broadcasts_commands():
    r = SegmentRouter("country", ttl_seconds=10)
    de = Event(event_id="1", entity="u", ts=T0, features={"country": "DE"})
    fr = Event(event_id="2", entity="u", ts=T0, features={"country": "FR"})
    assert [(s, n) for s, n, _ in r.route_event(de, 0.0) + r.route_event(fr, 0.0)] == [("DE", 0), ("FR", 0)]
    assert [(s, n) for s, n, _ in r.route_label(Label(event_id="2", label=1, ts=T0), 1.0)] == [("FR", 1)]
    assert [(s, n) for s, n, _ in r.route_everywhere("cmd")] == [("DE", 1), ("FR", 2)]
    assert r.expire(100.0) == [] and r.route_label(Label(event_id="1", label=1, ts=T0), 100.0) == []
    assert segment_name("a b/ü") == "a_b__" and segment_name(None) == "none" and segment_name(True) == "true"
