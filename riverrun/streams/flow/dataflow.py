"""The one Bytewax dataflow, used by every mode (run, replay, demo, tests).

Bytewax is known only under ``streams/flow/`` (this module, the sources and sinks) and by the
Bytewax sources and sinks of ``streams/kafka/`` and ``streams/serving/``; everything that decides
is in pure objects under ``streams/core/`` and ``learners/`` (``Sequencer``, ``EntityFeatures``,
``ModelStep`` and its ``ModelLifecycle``)
that replay and unit tests use unchanged.

::

    events  ─▶ decode ──┐                           ┌─▶ features (keyed by entity) ─┐
    labels  ─▶ decode ──┼─▶ order (event time) ─────┤                               ├─▶ model (keyed by model)
    control ─▶ load ────┘   (bad input: dead        └── labels, operator commands ──┘   join · predict · learn
                             letters)                                                   lifecycle
                                             ─▶ predictions, dead letters, metrics points, model events,
                                                checkpoints + audit (registry)

The ``order`` step merges the inputs into event-time order and numbers the items; the model step
restores that exact sequence whatever the steps in between did. Between the steps records travel
in the envelopes of ``core.items``: ``SourcedRecord`` (decoded, with its source position) into
``order``, ``Numbered`` out of it, ``ModelInput`` into ``model``.

Step ids are part of the recovery state: renaming one is a migration.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import bytewax.operators as op
from bytewax.dataflow import Dataflow
from bytewax.inputs import Source
from bytewax.outputs import FixedPartitionedSink, Sink

from riverrun.learners.lifecycle import Checkpoint
from riverrun.schemas import (
    DEFAULT_MAX_BYTES,
    DeadLetter,
    Event,
    ModelEvent,
)
from riverrun.streams.core.features import FeatureMode
from riverrun.streams.core.items import (
    ControlItem,
    FeaturedEvent,
    MetricsPoint,
    ModelInput,
    Numbered,
    RawRecord,
    ServedPrediction,
    sourced_record,
)
from riverrun.streams.core.modelstep import StepConfig
from riverrun.streams.core.ordering import Sequencer
from riverrun.streams.core.segments import SegmentRouter
from riverrun.streams.core.ttl import EntityClock, Seen, Sweep, bucket_key, bucket_of
from riverrun.streams.flow import recovery
from riverrun.streams.flow.metrics import FlowMetrics
from riverrun.streams.flow.sinks import sink_key
from riverrun.streams.flow.steps import (
    ModelLogic,
    OrderLogic,
    announce_stability,
    control_step,
    entity_ttl_builder,
    features_builder,
    make_batch_decoder,
    no_features_or_label,
    restored_step,
    sourced_label,
    step_recipes,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FlowSpec:
    """What the dataflow computes (the engine-independent part of the settings)."""

    steps: tuple[StepConfig, ...]
    features: FeatureMode = "default"
    feature_window_seconds: float = 300.0
    max_payload_bytes: int = DEFAULT_MAX_BYTES
    finite: bool = False  # replay/demo: at the end of the input, release and report everything
    max_wait_seconds: float | None = None  # live: longest wait on an idle input (None: exact)
    event_partitions: tuple[int, ...] = (0,)  # known up front, so a silent one holds the others
    label_partitions: tuple[int, ...] = (0,)
    segment_by: str | None = None  # one instance of each model per value of this feature
    entity_ttl_seconds: float | None = None  # quiet entities leave the feature state (core.ttl)


@dataclass(frozen=True)
class FlowSinks:
    predictions: Sink
    dead_letters: Sink
    metrics: Sink | None = None  # MetricsPoint (None: logged)
    model_events: Sink | None = None  # ModelEvent (None: logged)
    registry: Sink | None = None  # checkpoints to persist and model events to audit (None: not kept)
    features: Sink | None = None  # FeaturedEvent (the online store, a PSI timeline; None: not kept)
    latest_predictions: Sink | None = None  # predictions again, e.g. for the online store


def _output(step_id: str, stream, sink: Sink) -> None:
    """``op.output``; a partitioned sink (Kafka: flushed at each epoch's end) gets its items
    keyed first."""
    if isinstance(sink, FixedPartitionedSink):
        stream = op.key_on(f"{step_id}_keyed", stream, sink_key)
    op.output(step_id, stream, sink)


def _seen_in_bucket(numbered: Numbered) -> tuple[str, Seen]:
    event = numbered.item.record
    ts = event.ts.timestamp()
    return bucket_key(bucket_of(ts)), Seen(event.entity, ts)


def build_dataflow(
    spec: FlowSpec,
    events: Source,
    labels: Source,
    sinks: FlowSinks,
    flow_id: str = "riverrun",
    control: Source | None = None,
    control_loader: Callable[[RawRecord], ControlItem | DeadLetter] | None = None,
    metrics: FlowMetrics | None = None,
    publish_every: float = 1.0,
) -> Dataflow:
    """The riverrun dataflow over the given sources and sinks.

    The sources yield ``RawRecord``s (files, memory, Kafka: ``streams.kafka``). ``control``
    (operator commands) is decoded by ``control_loader`` (which fetches rollback targets from
    the registry) and ordered with the stream by its event time, like a label. ``metrics``
    (this process's ``FlowMetrics``) gets records read, and each model step's numbers every
    ``publish_every`` seconds and at each snapshot; the sinks count what they publish.
    """
    configs = {s.model: s for s in spec.steps}
    models = tuple(configs)
    announce_stability(r for c in spec.steps for r in step_recipes(c))  # once per process
    decode_batch = make_batch_decoder(spec.max_payload_bytes, metrics)
    flow = Dataflow(flow_id)

    raw_events = op.input("events_in", flow, events)
    raw_labels = op.input("labels_in", flow, labels)
    decoded = op.flat_map_batch("decode", op.merge("raw", raw_events, raw_labels), decode_batch)
    if control is not None and control_loader is not None:
        raw_control = op.input("control_in", flow, control)
        commands = op.map("load_control", raw_control, control_step(control_loader, metrics))
        decoded = op.merge("with_control", decoded, commands)
    valid = op.branch("is_invalid", decoded, lambda r: isinstance(r, DeadLetter))
    bad_records, good = valid.trues, valid.falses

    one_key = op.key_on("order_key", good, lambda _: "all")

    label_topic = spec.steps[0].label_topic if spec.steps else None

    entity_ttl = spec.entity_ttl_seconds if spec.features == "default" else None

    def order_builder(resume: bytes | None) -> OrderLogic:
        router = clock = None
        if resume is None:
            partitions = (spec.label_partitions, spec.event_partitions)  # indexed by LABEL, EVENT
            sequencer = Sequencer(spec.max_wait_seconds, partitions)
            if spec.segment_by is not None:
                ttl = max(s.label_ttl_seconds for s in spec.steps)
                router = SegmentRouter(spec.segment_by, ttl)
        else:
            state = recovery.loads(resume)
            state = state if isinstance(state, tuple) else (state,)
            sequencer, router, clock = (*state, None, None)[:3]
            # snapshots written before the envelopes had names buffer plain tuples
            sequencer.map_payloads(sourced_record)
            if router is not None:
                router.map_payloads(sourced_record)
            sequencer.orderer.resumed(time.time())
        if entity_ttl is None:
            clock = None
        elif clock is None or clock.ttl_seconds != entity_ttl:  # turned on, or changed: from now on
            clock = EntityClock(entity_ttl)
        return OrderLogic(sequencer, spec.finite, router, label_topic, clock)

    ordered = op.key_rm("order_unkey", op.stateful("order", one_key, order_builder))
    if spec.segment_by is not None:  # labels whose event never came, decided by the router
        unrouted = op.branch("unrouted", ordered, lambda o: isinstance(o, DeadLetter))
        bad_records = op.merge("bad_or_unrouted", bad_records, unrouted.trues)
        ordered = unrouted.falses
    if spec.features == "default":
        if entity_ttl is not None:  # the sweeps of quiet entities (core.ttl) leave the ordered stream
            is_sweep = op.branch("is_sweep", ordered, lambda o: type(o) is Sweep)
            sweeps, ordered = is_sweep.trues, is_sweep.falses
        split = op.branch("split_ordered", ordered, lambda n: isinstance(n.item.record, Event))
        by_entity = op.key_on("by_entity", split.trues, lambda n: n.item.record.entity)
        if entity_ttl is not None:
            seen = op.map("entity_seen", split.trues, _seen_in_bucket)
            sweeps = op.map("sweep_bucket", sweeps, lambda s: (bucket_key(s.bucket), s))
            buckets = op.stateful("entity_ttl", op.merge("seen_and_sweeps", seen, sweeps), entity_ttl_builder)
            evictions = op.map(
                "evict_entity", op.key_rm("entity_ttl_unkey", buckets), lambda e: (e.entity, e)
            )
            by_entity = op.merge("events_and_evictions", by_entity, evictions)
        builder = features_builder(spec.feature_window_seconds, entity_ttl)
        featured = op.stateful("features", by_entity, builder)
        featured = op.key_rm("features_unkey", featured)
        sourced_labels = op.map("labels_sourced", split.falses, sourced_label)
        both = op.merge("featured_and_labels", featured, sourced_labels)
    else:
        both = op.map("features", ordered, no_features_or_label)
    if sinks.features is not None:
        featured_only = op.filter_map(
            "featured_only", both, lambda n: n.item if isinstance(n.item, FeaturedEvent) else None
        )
        op.output("features_out", featured_only, sinks.features)
    if spec.segment_by is not None:  # one key per model and segment: lr.DE, lr.FR, ...
        field = spec.segment_by

        def to_segments(numbered: Numbered) -> list[tuple[str, ModelInput]]:
            segment, seq = numbered.seq
            item = numbered.item
            if isinstance(item, FeaturedEvent) and field in item.x:  # the key, not a feature
                x = {k: v for k, v in item.x.items() if k != field}
                item = FeaturedEvent(item.event, x, item.partition, item.offset)
            keyed = []
            for m in models:
                instance = f"{m}.{segment}"  # the key of the model step: lr.DE
                keyed.append((instance, ModelInput(m, seq, item, instance)))
            return keyed

        routed = op.flat_map("route_to_models", both, to_segments)
    elif len(models) == 1:
        (only,) = models
        routed = op.map("route_to_models", both, lambda n: (only, ModelInput(only, n.seq, n.item)))
    else:
        routed = op.flat_map(
            "route_to_models", both, lambda n: [(m, ModelInput(m, n.seq, n.item)) for m in models]
        )

    def builder(resume: bytes | None) -> ModelLogic:
        if resume is None:
            return ModelLogic(configs, spec.finite, None, metrics, publish_every)
        step, view_at = restored_step(resume)
        logic = ModelLogic(configs, spec.finite, step, metrics, publish_every)
        logic.publish_restored(view_at)  # the restored model's series, before any new input
        return logic

    outputs = op.key_rm("model_unkey", op.stateful("model", routed, builder))
    is_prediction = op.branch("is_prediction", outputs, lambda o: isinstance(o, ServedPrediction))
    _output("predictions_out", is_prediction.trues, sinks.predictions)
    if sinks.latest_predictions is not None:
        op.output("latest_predictions_out", is_prediction.trues, sinks.latest_predictions)
    rest = op.branch("is_dead_letter", is_prediction.falses, lambda o: isinstance(o, DeadLetter))
    dead = op.merge("dead_letters", bad_records, rest.trues)
    _output("dead_letters_out", dead, sinks.dead_letters)
    is_point = op.branch("is_metrics_point", rest.falses, lambda o: isinstance(o, MetricsPoint))
    if sinks.metrics is not None:
        _output("metrics_out", is_point.trues, sinks.metrics)
    else:
        op.inspect("metrics_log", is_point.trues, lambda _s, p: log.info("metrics %s", p.to_dict()))
    is_event = op.branch("is_model_event", is_point.falses, lambda o: isinstance(o, ModelEvent))
    if sinks.model_events is not None:
        _output("model_events_out", is_event.trues, sinks.model_events)
    else:
        op.inspect(
            "model_events_log",
            is_event.trues,
            lambda _s, e: log.warning("model event %s", e.model_dump_json()),
        )
    checkpoints = op.filter("checkpoints", is_event.falses, lambda o: isinstance(o, Checkpoint))
    if sinks.registry is not None:
        to_registry = op.merge("to_registry", checkpoints, is_event.trues)
        op.output("registry_out", to_registry, sinks.registry)
    return flow
