"""What travels between the steps of the dataflow (small, picklable, no Bytewax).

The records (``RawRecord``, ``FeaturedEvent``, ``SourcedLabel``, ``ControlItem``, and the outputs
``ServedPrediction``, ``MetricsPoint``) travel in envelopes that say where they are in the
stream: ``SourcedRecord`` (decoded, with its source position) into the ``order`` step,
``Numbered`` (its place in event-time order) out of it, ``ModelInput`` (for which model step) into
the model steps. The envelopes are ``NamedTuple``s, unpacked like the plain tuples they replaced
(which older recovery snapshots still hold); building one costs ~0.12 us more than a plain tuple,
about 1 us an event over the eight an event and its label travel in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, NamedTuple

import orjson

from riverrun.schemas import Event, Label, Origin

Kind = Literal["event", "label"]


@dataclass(slots=True)
class RawRecord:
    """A payload as read: bytes from Kafka or a file (or an already-built record in memory).
    ``received_at``: when the record reached Kafka (its timestamp, epoch seconds; None for files
    and memory), the start of the prediction latency that ops alert on."""

    kind: Kind
    value: bytes | Event | Label
    origin: Origin = field(default_factory=Origin)
    received_at: float | None = None


def stamp_received(event: Event, received_at: float | None) -> None:
    """Remember on ``event`` when it reached Kafka (a private attribute: never serialized, so
    predictions, replay and live stay byte-identical)."""
    if received_at is not None:
        event._received_at = received_at


def received_at(event: Event) -> float | None:
    """When ``event`` reached Kafka, or None (read from a file, or restored from a snapshot
    written before events carried it).

    >>> from datetime import datetime, timezone
    >>> e = Event(event_id="e", entity="u", ts=datetime(2024, 1, 1, tzinfo=timezone.utc), features={})
    >>> received_at(e) is None
    True
    >>> stamp_received(e, 1700000000.5)
    >>> received_at(e), e.model_dump_json().count("received")
    (1700000000.5, 0)
    """
    private = event.__pydantic_private__  # None in an Event unpickled from an older snapshot
    return None if not private else private.get("_received_at")


@dataclass(slots=True)
class FeaturedEvent:
    """An event with its feature vector, and its source position for ordering."""

    event: Event
    x: dict
    partition: int
    offset: int


@dataclass(slots=True)
class SourcedLabel:
    """A label with its source position for ordering."""

    label: Label
    partition: int
    offset: int


@dataclass(slots=True)
class MetricsPoint:
    """A model's metrics at an event time (every N labels, and at the end of a finite run)."""

    model: str
    model_version: int
    ts: datetime | None
    n_predicted: int
    n_learned: int
    metrics: dict[str, float]
    counters: dict[str, int]
    final: bool = False
    challengers: dict[str, dict[str, float]] = field(default_factory=dict)  # shadow, never serve
    # the label-free estimate: pending window, and estimated vs realised rolling accuracy
    # (learners.estimate.ConfidenceEstimate.get; empty for regression models)
    estimate: dict[str, float] = field(default_factory=dict)
    # the lifecycle's regret against doing nothing (ModelLifecycle.regret; None: policy off)
    regret: float | None = None

    def to_dict(self) -> dict:
        return {
            "model": self.model,
            "model_version": self.model_version,
            "ts": self.ts.isoformat() if self.ts else None,
            "n_predicted": self.n_predicted,
            "n_learned": self.n_learned,
            "metrics": self.metrics,
            "counters": self.counters,
            "final": self.final,
            "challengers": self.challengers,
            "estimate": self.estimate,
            "regret": self.regret,
        }


@dataclass(slots=True, frozen=True)
class ServedPrediction:
    """A served prediction on the hot path: the fields of ``schemas.Prediction`` without
    pydantic's construction cost, written as the same JSON (tested against the schema)."""

    event_id: str
    entity: str
    model: str
    model_version: int
    y_pred: object
    proba: dict[str, float] | None
    ts: datetime
    served_at: datetime
    #: When the event reached Kafka (epoch seconds; None: not read from Kafka). Not written:
    #: only the latency metric reads it.
    received_at: float | None = field(default=None, compare=False)

    def to_json(self) -> bytes:
        return orjson.dumps(
            {
                "event_id": self.event_id,
                "entity": self.entity,
                "model": self.model,
                "model_version": self.model_version,
                "y_pred": self.y_pred,
                "proba": self.proba,
                "ts": self.ts,
                "served_at": self.served_at,
            }
        )


@dataclass(slots=True)
class ControlItem:
    """An operator command ready to apply: for a rollback, the verified model (pickle bytes)."""

    model: str
    command: str
    version: int | None
    blob: bytes | None
    reason: str
    ts: datetime


# -- envelopes ---------------------------------------------------------------------------------


class SourcedRecord(NamedTuple):
    """A decoded record (``Event``, ``Label``, or an operator's ``ControlItem``) with its source
    position: what the decode and control steps emit and the ``order`` step buffers.

    Snapshots of the ``order`` step written before this class hold plain ``(record, partition,
    offset)`` tuples; ``sourced_record`` reads them as this.
    """

    record: Event | Label | ControlItem
    partition: int
    offset: int


def sourced_record(value: tuple) -> SourcedRecord:
    """``value`` as a ``SourcedRecord``: itself, or a plain ``(record, partition, offset)`` tuple
    restored from a snapshot written before the envelopes had names.

    >>> sourced_record(("rec", 0, 7))
    SourcedRecord(record='rec', partition=0, offset=7)
    >>> r = SourcedRecord("rec", 0, 7)
    >>> sourced_record(r) is r
    True
    """
    return value if type(value) is SourcedRecord else SourcedRecord(*value)


class SegmentSeq(NamedTuple):
    """With ``[flow] segment_by``, an item's number: its segment and its place in that
    segment's sequence (each segment's model steps restore their own order)."""

    segment: str
    seq: int


class Numbered(NamedTuple):
    """An item and its number in the event-time ordered stream (0, 1, 2, ...; with segments a
    ``SegmentSeq``), from which the model step restores the order whatever the steps in between
    did. ``item`` is the ``SourcedRecord`` out of the ``order`` step, and after the features step
    a ``FeaturedEvent``, a ``SourcedLabel`` or a ``ControlItem``.

    >>> seq, item = Numbered(3, "item")   # unpacks as the (seq, item) pair it replaced
    >>> seq, item
    (3, 'item')
    """

    seq: int | SegmentSeq
    item: Any


class ModelInput(NamedTuple):
    """A numbered item for one model step: ``model`` names its configuration, ``instance`` the
    step when it is one segment's instance of the model (``lr.DE``; None: the model itself).
    ``seq`` is the item's number in that step's sequence."""

    model: str
    seq: int
    item: FeaturedEvent | SourcedLabel | ControlItem
    instance: str | None = None


def to_json(record) -> bytes:
    """JSON bytes of a record: a pydantic model, or a hot-path record with ``to_json()``."""
    fast = getattr(record, "to_json", None)
    return fast() if fast is not None else record.model_dump_json().encode()
