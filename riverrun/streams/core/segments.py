"""Per-segment models: one instance of each model per value of a segment field. Pure.

With ``[flow] segment_by = "country"``, model ``lr`` runs as ``lr.DE``, ``lr.FR``, ... : one key
per segment, so the instances spread over Bytewax workers and processes, each learning on its
own core. The ordering step sees every record in event-time order and routes it here:

* an event goes to the segment of its feature (``entity`` segments by entity id; a missing
  value is the segment ``none``) and is numbered in that segment's sequence (the model step
  restores the order per key from these numbers);
* a label carries only its event id: it goes to the segment its event went to. The event's
  segment is remembered for two label TTLs, so a label that comes too late still reaches the
  model step that explains it (``label_expired``). A label whose event has not come yet waits
  here (it is released right after its event), at most one TTL; then it is a dead letter
  ``unknown_event``, as without segments;
* an operator command goes to every segment seen so far.

The segment field is the key, not a feature: the models do not see it (a string segment would
not suit a linear model, and within a segment it is constant anyway).

>>> from datetime import datetime, timezone
>>> from riverrun.schemas import Event, Label
>>> t = datetime(2024, 1, 1, tzinfo=timezone.utc)
>>> r = SegmentRouter("country", ttl_seconds=60)
>>> ev = Event(event_id="e1", entity="u", ts=t, features={"country": "DE"})
>>> r.route_label(Label(event_id="e1", label=True, ts=t), 0.0)    # early: waits for its event
[]
>>> [(seg, n, type(x).__name__) for seg, n, x in r.route_event(ev, 0.0)]
[('DE', 0, 'Event'), ('DE', 1, 'Label')]
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from riverrun.schemas import Event

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


def segment_name(value: Any) -> str:
    """A segment value as a model-name suffix: ``A-Z a-z 0-9 _ . -``, at most 64 characters
    (other characters become ``_``; distinct values may share a name, and then a model)."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    name = _UNSAFE.sub("_", str(value))[:64]
    return name or "empty"


class SegmentRouter:
    """Routes the ordered records to segments and numbers them per segment."""

    def __init__(self, field: str, ttl_seconds: float):
        self.field = field
        self.ttl_seconds = ttl_seconds
        self.next_seq: dict[str, int] = {}  # segment -> next number
        # event_id -> (forget_at, segment), in event-time (= deadline) order
        self._segment_of: OrderedDict[str, tuple[float, str]] = OrderedDict()
        # event_id -> [(expires_at, label, payload)]: labels waiting for their event
        self._early: OrderedDict[str, list[tuple[float, Any, Any]]] = OrderedDict()

    def segment(self, event: Event) -> str:
        if self.field == "entity":
            return segment_name(event.entity)
        return segment_name(event.features.get(self.field))

    def _number(self, segment: str) -> int:
        n = self.next_seq.get(segment, 0)
        self.next_seq[segment] = n + 1
        return n

    def route_event(self, event: Event, ts: float, payload: Any = None) -> list[tuple[str, int, Any]]:
        """The event (``payload``, default the event) with its segment and number, then the
        labels that waited for it."""
        segment = self.segment(event)
        self._segment_of[event.event_id] = (ts + 2 * self.ttl_seconds, segment)
        self._segment_of.move_to_end(event.event_id)
        out = [(segment, self._number(segment), event if payload is None else payload)]
        for _expires, _label, waiting in self._early.pop(event.event_id, ()):
            out.append((segment, self._number(segment), waiting))
        return out

    def route_label(self, label: Any, ts: float, payload: Any = None) -> list[tuple[str, int, Any]]:
        """The label with its event's segment and a number, or [] while its event is unknown."""
        known = self._segment_of.get(label.event_id)
        if known is None:
            self._early.setdefault(label.event_id, []).append(
                (ts + self.ttl_seconds, label, label if payload is None else payload)
            )
            return []
        segment = known[1]
        return [(segment, self._number(segment), label if payload is None else payload)]

    def route_everywhere(self, payload: Any) -> list[tuple[str, int, Any]]:
        """An operator command, to every segment seen so far."""
        return [(s, self._number(s), payload) for s in list(self.next_seq)]

    def expire(self, now: float) -> list[tuple[Any, Any]]:
        """Forget old event segments; return the waiting labels whose event never came within
        the TTL, as ``(label, payload)``."""
        seen = self._segment_of
        while seen and next(iter(seen.values()))[0] < now:
            seen.popitem(last=False)
        expired = []
        early = self._early
        while early:
            waiting = next(iter(early.values()))
            if waiting[0][0] >= now:
                break
            early.popitem(last=False)
            expired += [(label, payload) for _expires, label, payload in waiting]
        return expired

    def map_payloads(self, fn: Callable[[Any], Any]) -> None:
        """Replace the payload of each waiting label by ``fn(payload)`` (restoring a snapshot
        written with an older payload type)."""
        for waiting in self._early.values():
            waiting[:] = [(expires, label, fn(payload)) for expires, label, payload in waiting]

    @property
    def n_waiting(self) -> int:
        return sum(len(w) for w in self._early.values())


def unknown_event_letter(
    label: Any, partition: int | None, offset: int | None, ttl: float, topic: str | None
) -> Any:
    """The dead letter of a label whose event never came (as the model step writes it)."""
    import json

    from riverrun.schemas import Origin, dead_letter

    payload = json.dumps({"event_id": label.event_id, "label": label.label, "ts": label.ts.isoformat()})
    message = (
        f"label for event_id {label.event_id!r} waited {ttl:g} s of event time and its event never "
        "came (unknown id, or already labelled); not learned"
    )
    return dead_letter("label", payload.encode(), Origin(topic, partition, offset), "unknown_event", message)
