"""A Kafka-range replay's control partitions end with a marker, so that after the last operator
command the ordering releases the stream as it comes instead of holding it until the end of the
input (no broker: the ordering as the engine feeds it)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from riverrun.schemas import DeadLetter, Event, Label, Origin
from riverrun.streams.backtest.inputs import END_OF_RANGE_TS, ending_loader
from riverrun.streams.core.control import control_loader
from riverrun.streams.core.items import ControlItem, RawRecord
from riverrun.streams.core.ordering import EVENT, LABEL, Sequencer
from riverrun.streams.core.segments import SegmentRouter
from riverrun.streams.flow.steps import CONTROL_PARTITION_BASE, OrderLogic, control_step
from riverrun.streams.kafka.range import EndOfRange

T0 = 1_704_067_200.0


def _released_before_the_end(with_marker: bool) -> tuple[int, list]:
    step = control_step(ending_loader(control_loader(None)))
    command = json.dumps({"model": "lr", "command": "checkpoint", "ts": T0 + 5}).encode()
    control = [RawRecord("control", command, Origin("control", 0, 0))]
    if with_marker:
        control.append(RawRecord("control", EndOfRange(), Origin("control", 0, 1)))
    seq = Sequencer(None, ((0,), (0,)))
    released = []
    for raw in control:  # the control topic is small: read first
        item, partition, offset = step(raw)
        released += seq.push(LABEL, item.ts.timestamp(), partition, offset, item)
    for i in range(100):
        released += seq.push(EVENT, T0 + i, 0, i, f"e{i}")
        released += seq.push(LABEL, T0 + i + 0.5, 0, i, f"l{i}")
    before = len(released)
    return before, released + seq.flush()


def test_the_end_marker_stops_the_control_partition_holding_the_stream_back():
    held, everything = _released_before_the_end(with_marker=False)
    assert held == 11  # up to the command at T0+5: the rest waits for the end of the input
    before, with_marker = _released_before_the_end(with_marker=True)
    assert before == 200  # the last event waits for nothing but the labels
    # the same order either way, the marker last: a command no model step takes
    assert [v for _, v in with_marker[:-1]] == [v for _, v in everything]
    marker = with_marker[-1][1]
    assert isinstance(marker, ControlItem) and marker.model == "" and marker.ts == END_OF_RANGE_TS


def test_the_end_marker_expires_no_label_waiting_for_its_event():
    """With segments, a label that came before its event waits in the router for the event's
    segment. The marker (year 9999) goes to every segment but expires nothing, as no command does
    in the model step either: only the event time of events and labels expires what waits."""
    router = SegmentRouter("country", ttl_seconds=60)
    logic = OrderLogic(Sequencer(None, ((0,), (0,))), finite=True, router=router)
    at = datetime.fromtimestamp(T0, UTC)
    seen = Event(event_id="e0", entity="u", ts=at, features={"country": "DE"})
    early = Label(event_id="e1", label=True, ts=at)  # its event is not in the stream (yet)
    marker = ending_loader(control_loader(None))(RawRecord("control", EndOfRange(), Origin("control", 0, 0)))
    routed = logic._route([(0, (seen, 0, 0)), (1, (early, 0, 0)), (2, (marker, CONTROL_PARTITION_BASE, 1))])
    assert [key for key, _ in routed] == [("DE", 0), ("DE", 1)]  # the event, then the marker
    assert router.n_waiting == 1
    # an event past the label's TTL (event time) does expire it: dead-lettered as unknown_event
    later = Event(event_id="e2", entity="u", ts=at + timedelta(seconds=61), features={"country": "DE"})
    dead = [d for d in logic._route([(3, (later, 0, 1))]) if isinstance(d, DeadLetter)]
    assert [(d.kind, d.reason) for d in dead] == [("label", "unknown_event")] and router.n_waiting == 0
