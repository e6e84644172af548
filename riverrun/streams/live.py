"""``riverrun run``: the dataflow on Kafka, with recovery."""

from __future__ import annotations

import logging
from datetime import timedelta

from bytewax.dataflow import Dataflow

from riverrun.errors import ConfigError
from riverrun.streams.connectors import KafkaRecordSink, RegistrySink, StoppableSource, StopSignal
from riverrun.streams.control import control_loader
from riverrun.streams.engine import FlowSinks, FlowSpec, build_dataflow, run_cluster
from riverrun.streams.kafka import kafka_source, partitions_of, require_topics
from riverrun.streams.modelstep import StepConfig
from riverrun.streams.settings import Settings

log = logging.getLogger(__name__)


def flow_spec(
    settings: Settings,
    finite: bool = False,
    event_partitions: tuple[int, ...] = (0,),
    label_partitions: tuple[int, ...] = (0,),
) -> FlowSpec:
    f = settings.flow
    return FlowSpec(
        steps=tuple(
            StepConfig(
                model=m.name,
                recipe=m.recipe,
                label_ttl_seconds=f.label_ttl_seconds,
                metrics_window=f.metrics_window,
                report_every=f.report_every,
                policy=f.policy.config(),
            )
            for m in f.models
        ),
        features=f.features,
        feature_window_seconds=f.feature_window_seconds,
        max_payload_bytes=f.max_payload_bytes,
        finite=finite,
        max_wait_seconds=None if finite else f.max_wait_ms / 1000.0,
        event_partitions=event_partitions,
        label_partitions=label_partitions,
    )


def registry_sink(settings: Settings) -> RegistrySink | None:
    """Where the lifecycle's checkpoints and audit records go; checked now (fail fast)."""
    if not settings.flow.policy.enabled:
        return None
    opener = settings.registry.opener()
    if opener is None:
        raise ConfigError(
            "the model lifecycle signs its checkpoints: set RIVERRUN_REGISTRY__KEY (16+ bytes, "
            "e.g. `openssl rand -hex 32`), or turn it off with [flow.policy] enabled = false"
        )
    opener().versions(settings.flow.models[0].name)  # reachable, key accepted: fail fast
    return RegistrySink(opener)


def build_live_flow(settings: Settings, stop: StopSignal | None = None) -> Dataflow:
    """Kafka events + labels in, predictions, dead letters and model events out; ``stop``
    ends the inputs."""
    conf = settings.kafka.client_config()
    t = settings.topics
    sinks = FlowSinks(
        predictions=KafkaRecordSink(conf, t.predictions),
        dead_letters=KafkaRecordSink(conf, t.dead_letter),
        model_events=KafkaRecordSink(conf, t.model_events),
        registry=registry_sink(settings),
    )
    spec = flow_spec(
        settings,
        event_partitions=partitions_of(settings, t.events),
        label_partitions=partitions_of(settings, t.labels),
    )
    events, labels = kafka_source(settings, t.events), kafka_source(settings, t.labels)
    control = kafka_source(settings, t.control)
    if stop is not None:
        events, labels = StoppableSource(events, stop), StoppableSource(labels, stop)
        control = StoppableSource(control, stop)
    loader = control_loader(settings.registry.opener(), settings.flow.max_payload_bytes)
    return build_dataflow(spec, events, labels, sinks, kafka=True, control=control, control_loader=loader)


def run_live(
    settings: Settings,
    workers: int | None = None,
    process_id: int | None = None,
    addresses: list[str] | None = None,
) -> None:
    """Check the broker and topics (fail fast), then run until stopped."""
    t = settings.topics
    require_topics(settings, [t.events, t.labels, t.predictions, t.dead_letter, t.model_events, t.control])
    r = settings.recovery
    log.info(
        "riverrun run: brokers=%s models=%s features=%s recovery=%s",
        settings.kafka.bootstrap_servers,
        [m.name for m in settings.flow.models],
        settings.flow.features,
        r.directory if r.enabled else "off",
    )
    stop = StopSignal()
    stop.install()  # SIGTERM/SIGINT: drain, final snapshot, exit 0
    run_cluster(
        build_live_flow(settings, stop),
        workers=workers or settings.workers,
        process_id=process_id,
        addresses=addresses,
        recovery_dir=r.directory if r.enabled else None,
        recovery_partitions=r.partitions,
        snapshot_interval=timedelta(seconds=r.snapshot_interval_seconds),
        backup_interval=timedelta(seconds=r.backup_interval_seconds),
    )
    if stop.is_set():
        log.info("riverrun run: stopped on signal after a final snapshot")
