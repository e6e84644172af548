"""The envelopes records travel in between the dataflow's steps (``core.items``): named, unpacked
like the plain tuples they replaced, and restored from snapshots that buffered plain tuples."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime

from riverrun.schemas import Event, Label, Origin
from riverrun.streams.core.items import (
    ModelInput,
    Numbered,
    RawRecord,
    SegmentSeq,
    SourcedRecord,
    sourced_record,
)
from riverrun.streams.core.modelstep import StepConfig
from riverrun.streams.core.ordering import EVENT, Sequencer
from riverrun.streams.core.segments import SegmentRouter
from riverrun.streams.flow.dataflow import FlowSinks, FlowSpec, build_dataflow
from riverrun.streams.flow.sinks import CallbackSink
from riverrun.streams.flow.sources import MemorySource
from riverrun.streams.flow.steps import OrderLogic, make_decoder

T = datetime(2024, 1, 1, tzinfo=UTC)


def _event(event_id: str, country: str = "DE") -> Event:
    return Event(event_id=event_id, entity="u", ts=T, features={"country": country, "x": 1.0})


def test_decode_emits_a_sourced_record_at_its_source_position():
    raw = RawRecord("event", _event("e1").model_dump_json().encode(), Origin("events", 3, 42))
    decoded = make_decoder(64 * 1024)(raw)
    assert type(decoded) is SourcedRecord
    assert (decoded.record.event_id, decoded.partition, decoded.offset) == ("e1", 3, 42)
    record, partition, offset = decoded  # unpacks as the tuple it replaced
    assert record is decoded.record
    assert (partition, offset) == (3, 42)


def test_the_order_step_numbers_sourced_records():
    logic = OrderLogic(Sequencer(None, ((0,), (0,))), finite=True)
    label = SourcedRecord(Label(event_id="e1", label=True, ts=T), 0, 0)
    event = SourcedRecord(_event("e1"), 0, 0)
    out = logic.on_item(event)[0] + logic.on_item(label)[0] + logic.on_eof()[0]
    assert out == [Numbered(0, label), Numbered(1, event)]  # a label before an event at equal time
    assert all(type(n) is Numbered and type(n.item) is SourcedRecord for n in out)


def test_with_segments_items_are_numbered_per_segment():
    logic = OrderLogic(Sequencer(None, ((0,), (0,))), finite=True, router=SegmentRouter("country", 60))
    out = [
        n
        for i, c in enumerate("DFD")
        for n in logic.on_item(SourcedRecord(_event(f"e{i}", c + "E"), 0, i))[0]
    ]
    out += logic.on_eof()[0]
    assert [n.seq for n in out] == [SegmentSeq("DE", 0), SegmentSeq("FE", 0), SegmentSeq("DE", 1)]
    assert [n.item.offset for n in out] == [0, 1, 2]


def test_a_sequencer_snapshot_with_plain_tuples_resumes_with_envelopes():
    """Snapshots written before the envelopes had names buffer ``(record, partition, offset)``."""
    old = Sequencer(None, ((0,), (0,)))
    events = [_event(f"e{i}") for i in range(3)]
    for i, e in enumerate(events):
        assert old.push(EVENT, e.ts.timestamp() + i, 0, i, (e, 0, i)) == []  # wait for the labels
    restored = pickle.loads(pickle.dumps(old))
    restored.map_payloads(sourced_record)
    released = restored.flush()
    assert [n.seq for n in released] == [0, 1, 2]
    assert released == [Numbered(i, SourcedRecord(e, 0, i)) for i, e in enumerate(events)]
    assert all(type(n.item) is SourcedRecord for n in released)


def test_a_router_snapshot_with_plain_tuples_resumes_with_envelopes():
    old = SegmentRouter("country", ttl_seconds=60)
    early = Label(event_id="e1", label=True, ts=T)
    assert old.route_label(early, 0.0, (early, 0, 7)) == []  # waits for its event
    restored = pickle.loads(pickle.dumps(old))
    restored.map_payloads(sourced_record)
    event = SourcedRecord(_event("e1"), 0, 0)
    routed = restored.route_event(event.record, 0.0, event)
    assert routed == [("DE", 0, event), ("DE", 1, SourcedRecord(early, 0, 7))]
    assert type(routed[1][2]) is SourcedRecord


def test_model_input_says_which_step_it_is_for():
    plain = ModelInput("lr", 5, "item")
    assert plain.instance is None
    segment = ModelInput("lr", 5, "item", "lr.DE")
    assert pickle.loads(pickle.dumps(segment)) == segment


def test_the_step_ids_that_key_recovery_state_are_kept():
    """Renaming a step is a migration: the stateful steps and inputs keep their ids."""
    sink = CallbackSink(lambda _batch: None)
    steps = (StepConfig(model="lr", recipe="lr"),)
    spec = FlowSpec(steps=steps, segment_by="country")
    control = MemorySource([], "control")
    flow = build_dataflow(
        spec,
        MemorySource([], "event"),
        MemorySource([], "label"),
        FlowSinks(sink, sink),
        control=control,
        control_loader=lambda raw: raw,
    )
    ids: set[str] = set()

    def walk(steps) -> None:
        for s in steps:
            ids.add(s.step_id)
            walk(getattr(s, "substeps", None) or [])

    walk(flow.substeps)
    for step_id in ("events_in", "labels_in", "control_in", "order", "features", "model", "route_to_models"):
        assert f"riverrun.{step_id}" in ids
