"""The model operator's logic, pure: order, join, predict, learn, score. No Bytewax here.

One ``ModelStep`` per model key. It receives featured events and labels in whatever order the
engine delivers them, puts them in event-time order (``ordering``), serves a prediction for each
event at once, joins each label with the features served at prediction time (``join``) and lets
the ``OnlineLearner`` score the served prediction and learn. The same object runs in the live
flow, in replay and in unit tests.

>>> from datetime import datetime, timezone
>>> from riverrun.schemas import Event, Label
>>> step = ModelStep(StepConfig(model="m", recipe="lr"))
>>> t = datetime(2024, 1, 1, tzinfo=timezone.utc)
>>> ev = Event(event_id="e1", entity="u", ts=t, features={"x": 1.0})
>>> step.on_item(FeaturedEvent(ev, {"x": 1.0}, 0, 0))   # waits for the labels' watermark
[]
>>> out = step.on_end()
>>> [type(o).__name__ for o in out]
['Prediction', 'MetricsPoint']
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from riverrun.learners import OnlineLearner
from riverrun.schemas import DeadLetter, Origin, Prediction, dead_letter
from riverrun.streams.items import FeaturedEvent, MetricsPoint, SourcedLabel
from riverrun.streams.join import LabelJoin
from riverrun.streams.ordering import EVENT, LABEL, EventTimeOrderer, Sequenced


@dataclass(frozen=True)
class StepConfig:
    """How one model runs: recipe, label TTL, ordering wait bound, metric windows."""

    model: str
    recipe: str
    label_ttl_seconds: float = 86_400.0
    max_wait_seconds: float | None = None  # None: exact order (replay); live flows bound the wait
    metrics_window: int = 1000
    report_every: int = 1000  # emit a MetricsPoint every N learned labels
    served_at_event_time: bool = False  # replay: stamp served_at with event time (reproducible)


def class_key(label) -> str:
    """How a class is written as a JSON object key: ``true``, ``false``, ``3``, ``cat``."""
    if isinstance(label, bool):
        return "true" if label else "false"
    return str(label)


class ModelStep:
    """Order, join, predict and learn for one model."""

    def __init__(self, config: StepConfig):
        self.config = config
        self.learner = OnlineLearner(config.model, config.recipe, config.metrics_window)
        self.orderer = EventTimeOrderer(config.max_wait_seconds)
        self.join = LabelJoin(config.label_ttl_seconds)
        self.n_duplicate_events = 0
        self.last_ts: datetime | None = None
        self._since_report = 0

    # -- input ---------------------------------------------------------------------------------

    def on_item(self, item: FeaturedEvent | SourcedLabel, now: float | None = None) -> list:
        """Take one event or label; return what it releases (predictions, dead letters, points)."""
        if isinstance(item, FeaturedEvent):
            seq = Sequenced(item.event.ts.timestamp(), EVENT, item.partition, item.offset, item)
        else:
            seq = Sequenced(item.label.ts.timestamp(), LABEL, item.partition, item.offset, item)
        return self._process(self.orderer.push(seq, now))

    def on_timeout(self, now: float) -> list:
        """Wall-clock wait bound passed: release what is buffered."""
        return self._process(self.orderer.on_timeout(now))

    def deadline(self) -> float | None:
        """Wall-clock time (epoch seconds) at which ``on_timeout`` should run, if any."""
        return self.orderer.deadline()

    def on_end(self) -> list:
        """End of a finite stream: release everything in order, then a final metrics point."""
        out = self._process(self.orderer.flush())
        out.append(self.metrics_point(final=True))
        return out

    # -- processing in event-time order --------------------------------------------------------

    def _process(self, released: list[Sequenced]) -> list:
        out: list = []
        for seq in released:
            for event_id in self.join.expire(seq.ts):
                self.learner.forget(event_id)
            if seq.kind == EVENT:
                self._on_event(seq.payload, seq.ts, out)
            else:
                self._on_label(seq.payload, seq.ts, out)
        return out

    def _on_event(self, item: FeaturedEvent, ts: float, out: list) -> None:
        event = item.event
        self.last_ts = event.ts
        if self.join.is_pending(event.event_id):
            self.n_duplicate_events += 1
            out.append(self._duplicate(item))
            return
        served = self.learner.predict(event.event_id, item.x)
        proba = served.proba
        out.append(
            Prediction.model_construct(
                event_id=event.event_id,
                entity=event.entity,
                model=self.config.model,
                model_version=self.learner.version,
                y_pred=served.y_pred,
                proba=None if proba is None else {class_key(k): p for k, p in proba.items()},
                ts=event.ts,
                served_at=event.ts if self.config.served_at_event_time else datetime.now(UTC),
            )
        )
        early = self.join.take_early_label(event.event_id)
        if early is None:
            self.join.add_event(event.event_id, ts, item.x)
        else:
            self._learn(event.event_id, item.x, early[0], out)

    def _on_label(self, item: SourcedLabel, ts: float, out: list) -> None:
        label = item.label
        self.last_ts = label.ts
        x = self.join.match_label(label.event_id, ts, label.label)
        if x is not None:
            self._learn(label.event_id, x, label.label, out)

    def _learn(self, event_id: str, x: dict, y, out: list) -> None:
        self.learner.learn(event_id, x, y)
        self._since_report += 1
        if self._since_report >= self.config.report_every:
            self._since_report = 0
            out.append(self.metrics_point())

    def _duplicate(self, item: FeaturedEvent) -> DeadLetter:
        origin = Origin(partition=item.partition, offset=item.offset)
        return dead_letter(
            "event",
            item.event.model_dump_json().encode(),
            origin,
            "duplicate_event_id",
            f"event_id {item.event.event_id!r} is already waiting for its label; not served twice",
        )

    # -- observability -------------------------------------------------------------------------

    def counters(self) -> dict[str, int]:
        j = self.join
        return {
            "joined": j.n_joined,
            "early_labels": j.n_early_labels,
            "expired_events": j.n_expired_events,
            "expired_labels": j.n_expired_labels,
            "pending_events": j.n_pending_events,
            "pending_labels": j.n_pending_labels,
            "buffered": len(self.orderer),
            "late": self.orderer.late,
            "duplicate_events": self.n_duplicate_events,
            "unserved_labels": self.learner.n_unserved,
        }

    def metrics_point(self, final: bool = False) -> MetricsPoint:
        learner = self.learner
        return MetricsPoint(
            model=self.config.model,
            model_version=learner.version,
            ts=self.last_ts,
            n_predicted=learner.n_predicted,
            n_learned=learner.n_learned,
            metrics=learner.metrics(),
            counters=self.counters(),
            final=final,
        )
