"""The records on riverrun's topics: events, labels, predictions and dead letters.

Every record validates strictly: unknown fields, NaN/inf, naive timestamps and empty ids
are refused with a message that says what is wrong.

>>> e = Event.model_validate_json(
...     b'{"event_id": "e1", "entity": "u1", "ts": "2024-01-01T00:00:00+00:00", "features": {"x": 1.5}}'
... )
>>> e.ts.isoformat(), e.features
('2024-01-01T00:00:00+00:00', {'x': 1.5})
>>> Label.model_validate({"event_id": "e1", "label": True, "ts": 1704067260}).ts.isoformat()
'2024-01-01T00:01:00+00:00'
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    Strict,
    StringConstraints,
    WithJsonSchema,
)

#: Integers must fit in 64 bits (what consumers in other languages and orjson can hold).
Int64 = Annotated[int, Field(ge=-(2**63), le=2**63 - 1)]
#: A feature value: numbers, strings, booleans, or null for "missing".
FeatureValue = bool | Int64 | float | str | None
#: A label: a class (bool, int, str) or a regression target (float).
LabelValue = bool | Int64 | float | str
#: Event time on input: ISO-8601 with an offset, or epoch seconds (numbers above 2e10 are read
#: as epoch milliseconds, pydantic's rule). Either way it must be timezone-aware.
InputTime = Annotated[
    AwareDatetime,
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "format": "date-time"},
                {"type": "number", "description": "epoch seconds (above 2e10: milliseconds)"},
            ]
        }
    ),
]

Id = Annotated[str, StringConstraints(min_length=1, max_length=256)]
FeatureName = Annotated[str, StringConstraints(min_length=1, max_length=256)]

#: Most features one event may carry; more is refused (memory safety).
MAX_FEATURES = 1_000
#: The record format version this code reads. Producers may send ``"schema_version": 1``;
#: any other value is refused (reason ``unsupported_schema_version``), never guessed at.
SCHEMA_VERSION = 1
#: Optional on input, never written out (records dump as before).
SchemaVersion = Annotated[int, Strict(), Field(exclude=True, ge=SCHEMA_VERSION, le=SCHEMA_VERSION)]


class _Record(BaseModel):
    model_config = ConfigDict(
        extra="forbid",  # a typo in a producer must not silently drop a field
        allow_inf_nan=False,  # NaN and inf are refused everywhere
        frozen=True,
        strict=False,
    )


class Event(_Record):
    """Something happened to an entity; the model predicts on it.

    ``ts`` is event time: ISO-8601 with an offset, or epoch seconds.
    """

    event_id: Id
    entity: Id
    ts: InputTime
    features: dict[FeatureName, FeatureValue] = Field(max_length=MAX_FEATURES)
    schema_version: SchemaVersion = SCHEMA_VERSION
    #: When the record reached Kafka (its log-append or create time, epoch seconds), set by the
    #: live Kafka source; not part of the contract (never serialized, not in the JSON Schema).
    #: Read it with ``riverrun.streams.core.items.received_at``.
    _received_at: float | None = PrivateAttr(default=None)


class Label(_Record):
    """The ground truth for an earlier event, known at event time ``ts``."""

    event_id: Id
    label: LabelValue
    ts: InputTime
    schema_version: SchemaVersion = SCHEMA_VERSION


class Prediction(_Record):
    """What a model served for an event.

    ``proba`` maps each class (as a string: ``"true"``, ``"false"``, ``"3"``, ``"cat"``) to its
    probability; it is ``None`` for regressors. ``ts`` is the event's time, ``served_at`` the wall
    clock when the prediction was made. The pair (``event_id``, ``model``, ``model_version``)
    identifies a prediction: a re-emitted copy after a crash is identical, so consumers dedupe on it.
    """

    event_id: Id
    entity: Id
    model: Id
    model_version: int
    y_pred: LabelValue | None
    proba: dict[str, float] | None
    ts: AwareDatetime
    served_at: AwareDatetime


class DeadLetter(_Record):
    """A record that could not be used, with where it came from and why.

    ``payload`` is the original bytes: UTF-8 text when they decode, else base64
    (``payload_encoding`` says which).
    """

    payload: str
    payload_encoding: Literal["utf-8", "base64"] = "utf-8"
    kind: Literal["event", "label", "control"]
    topic: str | None = None
    partition: int | None = None
    offset: int | None = None
    key: str | None = None
    error: str
    reason: str
    at: datetime


ModelAction = Literal[
    "checkpoint",
    "rollback",
    "promotion",
    "keep",
    "drift_warning",
    "concept_drift",
    "covariate_shift",
    "prior_shift",
    "prediction_drift",
    "challenger_started",
    "learning_paused",
    "learning_resumed",
]


class ModelEvent(_Record):
    """Something the model lifecycle noticed or did, with its evidence.

    ``compared`` maps each candidate (``champion``, ``challenger:<name>``, ``checkpoint:<id>``)
    to the metrics it was judged on; ``event_time_start``/``end`` bound the labelled window the
    decision used; ``position`` says where in the stream it happened (labels seen, and the
    source partition/offset of the label that triggered it).
    """

    model: Id
    action: ModelAction
    from_version: int | None = None
    to_version: int | None = None
    checkpoint: str | None = None
    reason: str
    detector: str | None = None
    feature: str | None = None
    statistic: float | None = None
    threshold: float | None = None
    compared: dict[str, dict[str, float]] = Field(default_factory=dict)
    event_time_start: AwareDatetime | None = None
    event_time_end: AwareDatetime | None = None
    position: dict[str, int] = Field(default_factory=dict)
    at: AwareDatetime


class Control(_Record):
    """An operator's command to a running flow, on the ``control`` topic (key: the model).

    ``rollback`` serves registry ``version`` of ``model``; ``checkpoint`` saves the champion now.
    ``ts`` places the command in event time: it takes effect in order with the stream.
    """

    model: Id
    command: Literal["rollback", "checkpoint"]
    version: int | None = Field(None, ge=1)
    ts: InputTime
    reason: str = Field("operator request", max_length=1000)


RECORDS: dict[str, type[BaseModel]] = {
    "event": Event,
    "label": Label,
    "prediction": Prediction,
    "dead-letter": DeadLetter,
    "model-event": ModelEvent,
    "control": Control,
}
