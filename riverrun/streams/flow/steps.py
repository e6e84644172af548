"""The dataflow's steps: the stateless decoders and the Bytewax shells around the pure
per-record objects (``Sequencer``, ``EntityFeatures``, ``ModelStep``), with their snapshots.
``dataflow.build_dataflow`` wires them; nothing here decides."""

from __future__ import annotations

import io
import json
import logging
import pickle
import time
from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import UTC, datetime

from bytewax.operators import StatefulLogic

from riverrun.learners.rebuild import rebuilt
from riverrun.learners.stability import Stability, probe
from riverrun.schemas import (
    DeadLetter,
    Event,
    Label,
    decode_event,
    decode_label,
)
from riverrun.streams.core.features import EntityFeatures, identity_features
from riverrun.streams.core.items import (
    ControlItem,
    FeaturedEvent,
    ModelInput,
    Numbered,
    RawRecord,
    SegmentSeq,
    SourcedLabel,
    SourcedRecord,
    stamp_received,
)
from riverrun.streams.core.modelstep import ModelStep, StepConfig
from riverrun.streams.core.ordering import EVENT, LABEL, Sequencer
from riverrun.streams.core.segments import SegmentRouter, unknown_event_letter
from riverrun.streams.core.ttl import BucketEntities, EntityClock, Evict, Seen, Sweep
from riverrun.streams.flow import recovery
from riverrun.streams.flow.metrics import FlowMetrics

log = logging.getLogger(__name__)


# -- stateless steps ---------------------------------------------------------------------------


def make_decoder(max_bytes: int):
    """RawRecord -> its SourcedRecord, or its DeadLetter."""

    def decode(raw: RawRecord) -> SourcedRecord | DeadLetter:
        value = raw.value
        if isinstance(value, Event | Label):
            record = value
        elif raw.kind == "event":
            record = decode_event(value, raw.origin, max_bytes)
        else:
            record = decode_label(value, raw.origin, max_bytes)
        if isinstance(record, DeadLetter):
            return record
        if raw.received_at is not None and isinstance(record, Event):
            stamp_received(record, raw.received_at)  # the start of the prediction latency
        return SourcedRecord(record, raw.origin.partition or 0, raw.origin.offset or 0)

    return decode


def make_batch_decoder(max_bytes: int, metrics: FlowMetrics | None = None):
    """``make_decoder`` over a batch, counting the records read once per batch."""
    decode = make_decoder(max_bytes)
    if metrics is None:
        return lambda batch: [decode(raw) for raw in batch]
    events, labels = metrics.records.labels("event"), metrics.records.labels("label")

    def decode_batch(batch: list[RawRecord]) -> list:
        n_events = sum(1 for raw in batch if raw.kind == "event")
        if n_events:
            events.inc(n_events)
        if len(batch) > n_events:
            labels.inc(len(batch) - n_events)
        return [decode(raw) for raw in batch]

    return decode_batch


class FeaturesLogic(StatefulLogic):
    """Bytewax shell around one entity's ``EntityFeatures``. Its snapshot is pickle bytes:
    Bytewax's ``stateful_map`` deep-copies every touched key's state at each epoch's end, about
    5x the time of one pickle (1,000 entities: 45 ms against 8 ms), and every item in flight
    waits for it. An ``Evict`` naming the time of the entity's last event drops the key
    (``core.ttl``)."""

    def __init__(self, state: EntityFeatures):
        self.state = state

    def on_item(self, value: Numbered | Evict):
        if type(value) is Evict:
            state = self.state
            gone = state.count == 0 or state.last_ts == value.last_ts  # nothing newer since
            return [], StatefulLogic.DISCARD if gone else StatefulLogic.RETAIN
        event, partition, offset = value.item
        featured = FeaturedEvent(event, self.state.transform(event), partition, offset)
        return [Numbered(value.seq, featured)], StatefulLogic.RETAIN

    def snapshot(self) -> bytes:
        return pickle.dumps(self.state, protocol=pickle.HIGHEST_PROTOCOL)


def features_builder(
    window_seconds: float, ttl_seconds: float | None = None
) -> Callable[[bytes | None], FeaturesLogic]:
    def build(resume: bytes | None) -> FeaturesLogic:
        if resume is None:
            return FeaturesLogic(EntityFeatures(window_seconds, ttl_seconds))
        state = recovery.loads(resume)
        state.ttl_seconds = ttl_seconds  # configuration, not state
        return FeaturesLogic(state)

    return build


class EntityTTLLogic(StatefulLogic):
    """Bytewax shell around one event-time bucket's ``BucketEntities`` (``core.ttl``): notes the
    entities seen in the bucket; on its ``Sweep`` evicts them all and drops the bucket."""

    def __init__(self, entities: BucketEntities):
        self.entities = entities

    def on_item(self, value: Seen | Sweep):
        if type(value) is Sweep:
            return self.entities.evictions(), StatefulLogic.DISCARD
        self.entities.add(value.entity, value.ts)
        return [], StatefulLogic.RETAIN

    def snapshot(self) -> bytes:
        return pickle.dumps(self.entities, protocol=pickle.HIGHEST_PROTOCOL)


def entity_ttl_builder(resume: bytes | None) -> EntityTTLLogic:
    return EntityTTLLogic(BucketEntities() if resume is None else recovery.loads(resume))


def no_features_or_label(numbered: Numbered) -> Numbered:
    record, partition, offset = numbered.item
    if isinstance(record, Event):
        return Numbered(numbered.seq, FeaturedEvent(record, identity_features(record), partition, offset))
    if isinstance(record, ControlItem):
        return Numbered(numbered.seq, record)
    return Numbered(numbered.seq, SourcedLabel(record, partition, offset))


def sourced_label(numbered: Numbered) -> Numbered:
    record, partition, offset = numbered.item
    if isinstance(record, ControlItem):
        return Numbered(numbered.seq, record)
    return Numbered(numbered.seq, SourcedLabel(record, partition, offset))


#: Control partitions are numbered apart from the labels' (both order like labels).
CONTROL_PARTITION_BASE = 1_000_000


def control_step(loader, metrics: FlowMetrics | None = None):
    counted = None if metrics is None else metrics.records.labels("control")

    def step(raw: RawRecord) -> SourcedRecord | DeadLetter:
        if counted is not None:
            counted.inc()
        item = loader(raw)
        if isinstance(item, DeadLetter):
            return item
        partition = CONTROL_PARTITION_BASE + (raw.origin.partition or 0)
        return SourcedRecord(item, partition, raw.origin.offset or 0)

    return step


class OrderLogic(StatefulLogic):
    """Bytewax shell around ``Sequencer`` (one key: the whole stream), and with segments the
    ``SegmentRouter`` that numbers the ordered records per segment."""

    def __init__(
        self,
        sequencer: Sequencer,
        finite: bool,
        router: SegmentRouter | None = None,
        label_topic: str | None = None,
        clock: EntityClock | None = None,
    ):
        self.sequencer = sequencer
        self.router = router
        self.clock = clock
        self._finite = finite
        self._label_topic = label_topic

    def on_item(self, value: SourcedRecord):
        record, partition, offset = value
        kind = EVENT if isinstance(record, Event) else LABEL
        out = self.sequencer.push(kind, record.ts.timestamp(), partition, offset, value, time.time())
        return self._route(out), StatefulLogic.RETAIN

    def _route(self, released: list[Numbered]) -> list[Numbered | DeadLetter | Sweep]:
        """The items as released, or with segments numbered per segment (``SegmentSeq``) and
        the dead letters of labels whose event never came; then the sweeps of quiet entities
        that the released events made due (``core.ttl``)."""
        out = released if self.router is None else self._segmented(released)
        clock = self.clock
        if clock is not None:
            sweeps = [
                sweep
                for n in released
                if type(n.item.record) is Event
                for sweep in clock.observe(n.item.record.ts.timestamp())
            ]
            if sweeps:
                out = [*out, *sweeps]
        return out

    def _segmented(self, released: list[Numbered]) -> list[Numbered | DeadLetter]:
        router = self.router
        out: list = []
        for _seq, value in released:
            record, _partition, _offset = value
            if isinstance(record, ControlItem):  # as in the model step, commands expire nothing
                # (a Kafka-range replay's end-of-range marker is at year 9999)
                out += [Numbered(SegmentSeq(s, n), v) for s, n, v in router.route_everywhere(value)]
                continue
            ts = record.ts.timestamp()
            for label, (_, partition, offset) in router.expire(ts):
                ttl = router.ttl_seconds
                out.append(unknown_event_letter(label, partition, offset, ttl, self._label_topic))
            if isinstance(record, Event):
                routed = router.route_event(record, ts, value)
            else:
                routed = router.route_label(record, ts, value)
            out += [Numbered(SegmentSeq(segment, n), v) for segment, n, v in routed]
        return out

    def on_notify(self):
        return self._route(self.sequencer.on_timeout(time.time())), StatefulLogic.RETAIN

    def on_eof(self):
        return (self._route(self.sequencer.flush()) if self._finite else []), StatefulLogic.RETAIN

    def notify_at(self):
        deadline = self.sequencer.deadline()
        return None if deadline is None else datetime.fromtimestamp(deadline, UTC)

    def snapshot(self) -> bytes:
        if self.router is None and self.clock is None:
            return pickle.dumps(self.sequencer, protocol=pickle.HIGHEST_PROTOCOL)
        if self.clock is None:
            return pickle.dumps((self.sequencer, self.router), protocol=pickle.HIGHEST_PROTOCOL)
        return pickle.dumps((self.sequencer, self.router, self.clock), protocol=pickle.HIGHEST_PROTOCOL)


# -- the model operator ------------------------------------------------------------------------

#: What follows the pickled ``ModelStep`` in a model snapshot: this marker, then JSON about the
#: snapshot (``{"view_at": epoch seconds}``: when the metrics last showed the step's numbers).
#: ``pickle.loads`` reads the step and ignores what follows it, so readers of the step alone
#: (``scripts/crash_harness.py``) are unaffected, and snapshots without it (older ones) resume.
SNAPSHOT_TRAILER = b"\nriverrun-model-snapshot:"


def model_snapshot(step_blob: bytes, view_at: float) -> bytes:
    """A model step's snapshot: its pickle, then ``SNAPSHOT_TRAILER`` and the JSON trailer."""
    return step_blob + SNAPSHOT_TRAILER + json.dumps({"view_at": view_at}).encode()


def read_model_snapshot(blob: bytes) -> tuple[ModelStep, float | None]:
    """The step of a model snapshot and when its numbers were last published (None: a snapshot
    written before snapshots said so).

    >>> step = ModelStep(StepConfig(model="m", recipe="lr"))
    >>> restored, at = read_model_snapshot(model_snapshot(pickle.dumps(step), 1700000000.0))
    >>> restored.config.model, at
    ('m', 1700000000.0)
    >>> read_model_snapshot(pickle.dumps(step))[1] is None
    True
    """
    f = io.BytesIO(blob)
    step = recovery.Unpickler(f).load()
    rest = f.read()
    view_at = None
    if rest.startswith(SNAPSHOT_TRAILER):
        try:
            view_at = float(json.loads(rest[len(SNAPSHOT_TRAILER) :])["view_at"])
        except (ValueError, KeyError, TypeError):
            log.warning("model snapshot trailer unreadable; the restored view's age starts now")
    return step, view_at


def step_recipes(config: StepConfig) -> tuple[str, ...]:
    """The recipes a model step may serve: its own and its challengers'."""
    return tuple(dict.fromkeys((config.recipe, *config.policy.challengers)))


def copies_exact(config: StepConfig) -> bool:
    """Whether a step of ``config`` may serve a copy of itself (a rebuilt one after a snapshot,
    an unpickled one after a restart): every recipe it may serve is pickle-stable
    (``learners.stability``; cached per recipe). A recipe the probe could not run counts as
    stable, as before the probe."""
    return all(probe(r).pickle_stable is not False for r in step_recipes(config))


_announced: set[str] = set()


def announce_stability(recipes: Iterable[str]) -> list[Stability]:
    """Probe each of ``recipes`` (once per process) and say, once, what cannot be exact for
    it: a replay (non-deterministic model) or a restart (pickle-unstable model)."""
    verdicts = []
    for recipe in dict.fromkeys(recipes):
        verdict = probe(recipe)
        verdicts.append(verdict)
        if verdict.reason and recipe not in _announced:
            _announced.add(recipe)
            lost = [
                what
                for what, ok in (
                    ("replay = live = River's progressive_val_score", verdict.exact_replay),
                    ("a restart from a snapshot = the uninterrupted run", verdict.exact_recovery),
                )
                if ok is False
            ]
            if lost:
                log.warning("model recipe %r: not exact: %s. %s", recipe, "; ".join(lost), verdict.reason)
            else:
                log.info("model recipe %r: %s", recipe, verdict.reason)
    return verdicts


def restored_step(blob: bytes) -> tuple[ModelStep, float | None]:
    """The step of a model snapshot, as a restart serves it (rebuilt, see ``learners.rebuild``,
    unless a copy of its model would not predict as the original: then as unpickled), and when
    its numbers were last published."""
    step, view_at = read_model_snapshot(blob)
    return (rebuilt(step) if copies_exact(step.config) else step), view_at


class ModelLogic(StatefulLogic):
    """Bytewax shell around ``ModelStep``; its snapshot is pickle bytes (immutable, and much
    cheaper than deepcopy for big models)."""

    #: Rebuild at most this share of the time: an ``arf`` step of 30 MB takes ~0.7 s to
    #: rebuild, and its model runs ~27% slower until it is (``lr``: ~1 ms, ~15%).
    REBUILD_SHARE = 0.05

    #: Items between two looks at the clock for publishing the step's numbers to ``metrics``.
    PUBLISH_CHECK = 256

    def __init__(
        self,
        configs: dict[str, StepConfig],
        finite: bool,
        step: ModelStep | None,
        metrics: FlowMetrics | None = None,
        publish_every: float = 1.0,
    ):
        self._configs = configs
        self._finite = finite
        self.step = step
        self._rebuild_cost = 0.0  # seconds the last rebuild took ...
        self._rebuilt_at = 0.0  # ... and when it ended (monotonic)
        self._metrics = metrics
        self._publish_every = publish_every
        self._countdown = 0  # publish at the first item
        self._published_at = 0.0
        self._view_at = time.time()  # wall clock of the numbers the metrics show (snapshotted)
        self._copies_exact: bool | None = None  # copies_exact(step.config), at the first snapshot

    def on_item(self, value: ModelInput):
        if self.step is None:
            config = self._configs[value.model]
            if value.instance is not None:  # a segment's instance: named by its key (lr.DE)
                config = replace(config, model=value.instance)
            self.step = ModelStep(config)
        out = self.step.on_item(value.seq, value.item)
        if self._metrics is not None:
            self._countdown -= 1
            if self._countdown <= 0:
                self._countdown = self.PUBLISH_CHECK
                if time.monotonic() - self._published_at >= self._publish_every:
                    self._publish()
        return out, StatefulLogic.RETAIN

    def _publish(self) -> None:
        self._published_at = time.monotonic()
        self._view_at = time.time()
        if self.step is not None and self._metrics is not None:
            self._metrics.publish(self.step.view())

    def publish_restored(self, view_at: float | None) -> None:
        """Show the numbers of a step just restored from recovery at once (an idle stream would
        otherwise show none until its next item), aged from ``view_at``, when the metrics last
        showed them before the restart (None: now), so that ``riverrun_view_age_seconds`` and
        the staleness alert see through a restart."""
        if self.step is None or self._metrics is None:
            return
        now = time.time()
        self._view_at = now if view_at is None else min(view_at, now)
        view = self.step.view()
        view.published_at = time.monotonic() - (now - self._view_at)
        self._metrics.publish(view)

    def on_eof(self):
        if self._finite and self.step is not None:
            return self.step.on_end(), StatefulLogic.RETAIN
        return [], StatefulLogic.RETAIN

    def snapshot(self) -> bytes:
        start = time.monotonic()
        blob = pickle.dumps(self.step, protocol=pickle.HIGHEST_PROTOCOL)
        # Pickling slowed every object of the step down (``learners.rebuild``): serve rebuilt
        # copies, unless rebuilding would take more than REBUILD_SHARE of the time, or a copy
        # of the model would not predict as the original (``learners.stability``): that one
        # keeps serving the original, so replay = live = River whenever epochs fall.
        now = time.monotonic()
        if self.step is not None and self._copies_exact is None:
            self._copies_exact = copies_exact(self.step.config)
        if (
            self.step is not None
            and self._copies_exact
            and now - self._rebuilt_at >= self._rebuild_cost / self.REBUILD_SHARE
        ):
            shared = {id(table): table for table in self.step.per_event_tables()}
            self.step = rebuilt(self.step, shared)  # the per-event tables are shared, not copied
            self._rebuilt_at = time.monotonic()
            self._rebuild_cost = self._rebuilt_at - now
        if self._metrics is not None and self.step is not None:
            self._metrics.observe_snapshot(self.step.config.model, time.monotonic() - start, len(blob))
            self._publish()  # at least once an epoch: the numbers of an idle model stay fresh
        return model_snapshot(blob, self._view_at)
