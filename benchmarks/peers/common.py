"""The riverrun pipeline written once for the peer frameworks (Quix Streams, Faust).

It runs in the peers' own venvs, so it imports neither riverrun nor its confluent-kafka; it
mirrors riverrun's steps as closely as a page of code can:

- decode + validate: ``Event`` / ``Label`` pydantic v2 models with riverrun's rules (extra
  fields forbidden, NaN/inf refused, timezone-aware times, ids 1-256 chars, at most 1,000
  features, ``schema_version`` 1), parsed by ``model_validate_json`` (pydantic-core);
- per-entity features: exactly riverrun's ``default`` features (``entity_event_count``,
  ``entity_seconds_since_last``, ``<f>_mean_300s`` over the entity's last 300 s of event time),
  kept as a JSON-able dict so the framework's own state store can hold it;
- predict with ``StandardScaler() | LogisticRegression()`` (riverrun's ``lr`` recipe), publish
  the prediction at once;
- delayed-label join: pending events keep the features they were served with; a label learns
  from them; a label that comes first waits as an early label;
- score the served prediction (River's ``Accuracy`` and ``LogLoss``; riverrun scores six
  binary metrics) and ``learn_one``.

What riverrun does and these do not: event-time ordering across the two topics (here a label
is applied when it is consumed), TTL expiry, dead letters to a topic (bad records are counted
only), recovery of the model and join (they live in process memory here; the per-entity
features are in the framework's recoverable state).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import orjson
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, ValidationError
from river import linear_model, metrics, preprocessing

Id = Annotated[str, StringConstraints(min_length=1, max_length=256)]
WINDOW_SECONDS = 300.0


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True)


class Event(_Record):
    event_id: Id
    entity: Id
    ts: AwareDatetime
    features: dict[Id, bool | int | float | str | None] = Field(max_length=1000)
    schema_version: Literal[1] = 1


class Label(_Record):
    event_id: Id
    label: bool | int | float | str
    ts: AwareDatetime
    schema_version: Literal[1] = 1


def decode(model: type[_Record], payload: bytes):
    """The record, or None (counted as a dead letter) when it does not validate."""
    try:
        return model.model_validate_json(payload)
    except ValidationError:
        return None


def entity_features(state: dict | None, event: Event) -> tuple[dict, dict]:
    """riverrun's ``default`` features; ``state`` is JSON-able (count, last, window of values).
    Returns (new state, feature vector)."""
    ts = event.ts.timestamp()
    if state is None:
        state = {"count": 0, "last": None, "window": []}
    x = dict(event.features)
    state["count"] += 1
    x["entity_event_count"] = state["count"]
    last = state["last"]
    if last is not None:
        x["entity_seconds_since_last"] = ts - last
    if last is None or ts > last:
        state["last"] = ts
    numeric = {
        k: float(v)
        for k, v in event.features.items()
        if isinstance(v, int | float) and not isinstance(v, bool)
    }
    horizon = ts - WINDOW_SECONDS
    window = [w for w in state["window"] if w[0] >= horizon]
    window.append([ts, numeric])
    state["window"] = window
    sums: dict[str, list[float]] = {}
    for _, values in window:
        for k, v in values.items():
            acc = sums.setdefault(k, [0.0, 0])
            acc[0] += v
            acc[1] += 1
    for k in numeric:
        s, n = sums[k]
        x[f"{k}_mean_{WINDOW_SECONDS:g}s"] = s / n
    return state, x


class Learner:
    """Predict now, learn when the label comes, score what was served."""

    def __init__(self, model_name: str = "lr"):
        self.name = model_name
        self.model = preprocessing.StandardScaler() | linear_model.LogisticRegression()
        self.pending: dict[str, tuple[dict, dict]] = {}  # event_id -> (x, served proba)
        self.early: dict[str, object] = {}  # event_id -> label
        self.accuracy = metrics.Accuracy()
        self.log_loss = metrics.LogLoss()
        self.n_learned = 0
        self.n_invalid = 0

    def predict(self, event: Event, x: dict) -> bytes:
        proba = self.model.predict_proba_one(x)
        y_pred = max(proba, key=proba.get) if proba else None
        early = self.early.pop(event.event_id, None)
        if early is None:
            self.pending[event.event_id] = (x, proba)
        else:
            self._learn(x, proba, early)
        return orjson.dumps(
            {
                "event_id": event.event_id,
                "entity": event.entity,
                "model": self.name,
                "model_version": 1,
                "y_pred": y_pred,
                "proba": {("true" if k else "false"): p for k, p in proba.items()},
                "ts": event.ts,
                "served_at": datetime.now().astimezone(),
            }
        )

    def label(self, label: Label) -> None:
        pending = self.pending.pop(label.event_id, None)
        if pending is None:
            self.early[label.event_id] = label.label
        else:
            self._learn(pending[0], pending[1], label.label)

    def _learn(self, x: dict, proba: dict, y) -> None:
        if proba:
            self.accuracy.update(y, max(proba, key=proba.get))
            self.log_loss.update(y, proba)
        self.model.learn_one(x, y)
        self.n_learned += 1
