"""``riverrun run``: the dataflow on Kafka, with recovery.

Checkpoint protocol (Bytewax 0.21 recovery, as riverrun uses it)
-----------------------------------------------------------------

1. **Start.** ``run_live`` checks the broker and the topics, then the recovery directory's
   manifest (``riverrun-manifest.json``: input topics, models, features, partitions; written on
   first start, compared on every later one, so another flow's directory is refused with exit 2),
   then the registry when the lifecycle is on. Any of these failing stops here, before any state
   is read or written.
2. **Resume.** Bytewax opens the SQLite recovery partitions (``part-*.sqlite3``, created on the
   first start) and resumes at the last epoch committed by every partition. Each stateful step
   gets its snapshot of that epoch: the Kafka inputs (``events_in``, ``labels_in``,
   ``control_in``) their next offset per partition (offsets live only here: no consumer-group
   commits), ``order`` its ``Sequencer`` (buffered items, watermarks, next item number; idle
   clocks restart now), ``features`` each entity's ``EntityFeatures``, ``model`` the pickled
   ``ModelStep`` (join, served predictions, learner, metrics, lifecycle with detectors,
   challengers and frozen checkpoints), rebuilt after unpickling. No snapshot: the topics are
   read from the beginning.
3. **Epoch.** Items read during an epoch flow through every step. Kafka sinks hand each record
   to their producer at once (``acks=all``, idempotent; sent within milliseconds), without
   waiting. The registry sink only queues checkpoints and audit records for its writer thread
   (step 8).
4. **Snapshot.** Every ``snapshot_interval_seconds`` the epoch closes and each key touched in
   it is snapshotted: the Kafka sinks first flush, so every prediction, dead letter and model
   event of the epoch is acknowledged before the epoch can commit (while the broker is away the
   flush waits; librdkafka retries for ``message.timeout.ms``); inputs their next offset,
   ``order`` and ``model`` pickle bytes (the model step then serves a rebuilt copy),
   ``features`` a copy. Bytewax writes them with the epoch number into the partitions'
   ``snaps`` tables.
5. **Commit.** When all workers are past the epoch and its snapshots are written, each
   partition's commit epoch advances. Only now have the offsets advanced: a restart resumes
   here. A kill before this point (during step 3 or 4, e.g. half-way through writing the
   snapshot) resumes from the previous commit.
6. **Re-emission.** After a crash, what was read after the last commit is read again and
   processed again from the committed state: each label is learned exactly once, and the
   outputs since that commit are published again, identical to the first copies except
   ``served_at`` (same event order, same model state; in exact order mode, i.e. no idle-input
   release in between). Consumers dedupe on ``(event_id, model, model_version)``. The registry
   sink recognises checkpoints and audit records it already holds and skips them.
7. **Graceful stop.** SIGTERM/SIGINT end the inputs; the last epoch closes with a final snapshot
   and commit; exit 0; a restart re-emits nothing.
8. **Registry faults.** The registry writer retries failed writes with exponential backoff
   (``riverrun_registry_write_retries_total``, a warning per attempt), while the flow goes on
   predicting and learning; pending writes land in order when the registry is back. A version
   is listed only once its signed blob and metadata are stored. Pending writes are in memory:
   a crash while the registry is down loses the checkpoints taken meanwhile from the registry
   (the model state itself is in the recovery snapshot).

Each failure point and its test:

* kill -9 in the middle of an epoch (step 3): ``tests/test_kafka_flow.py::
  test_kill_9_and_restart_loses_no_event`` (River alone and with the lifecycle) and
  ``tests/test_crash_harness.py`` (several kills at random points);
* kill -9 while a snapshot is being written (step 4, the SQLite WAL growing):
  ``tests/test_crash_harness.py`` (half the kills), ``scripts/crash_harness.py`` (full size);
* kill of one or both processes of a two-process cluster (steps 3-5):
  ``tests/test_crash_harness.py`` ``two-processes`` variant;
* final state after recovery equal to an uninterrupted run (steps 2, 5, 6):
  ``tests/test_crash_harness.py``, which compares the whole model step and holdout predictions;
* graceful stop (step 7): ``test_sigterm_drains_snapshots_and_resumes_without_duplicates``;
* broker paused or restarted mid-run (step 3): ``tests/test_faults.py`` broker tests;
* registry (Redis) down mid-run (step 8): ``tests/test_faults.py`` Redis test;
* wrong recovery directory, unreachable broker, missing topics (step 1): ``tests/test_faults.py::
  test_recovery_directory_of_another_flow_fails_fast`` and the CLI tests of ``riverrun run``.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from bytewax.dataflow import Dataflow
from bytewax.outputs import Sink

from riverrun.errors import ConfigError
from riverrun.streams.core.control import control_loader
from riverrun.streams.core.modelstep import StepConfig
from riverrun.streams.flow import recovery
from riverrun.streams.flow.dataflow import FlowSinks, FlowSpec, build_dataflow
from riverrun.streams.flow.metrics import FlowMetrics, serve
from riverrun.streams.flow.registry_sink import RegistrySink
from riverrun.streams.flow.runtime import run_cluster
from riverrun.streams.flow.shards import Shard
from riverrun.streams.flow.sinks import metered
from riverrun.streams.flow.sources import StoppableSource, StopSignal
from riverrun.streams.flow.steps import read_model_snapshot
from riverrun.streams.kafka.admin import partitions_of, require_topics
from riverrun.streams.kafka.sink import KafkaRecordSink
from riverrun.streams.kafka.source import kafka_source
from riverrun.streams.serving.online_store import online_store_sink
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
                estimate=f.estimate,
                policy=f.policy.config(),
                event_topic=settings.topics.events,  # named in the join's dead letters
                label_topic=settings.topics.labels,
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
        segment_by=f.segment_by,
        entity_ttl_seconds=f.entity_ttl_seconds or None,
    )


def registry_sink(settings: Settings, metrics: FlowMetrics | None = None) -> RegistrySink | None:
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
    return RegistrySink(opener, metrics)


def build_live_flow(
    settings: Settings,
    stop: StopSignal | None = None,
    metrics: FlowMetrics | None = None,
    shard: Shard | None = None,
) -> Dataflow:
    """Kafka events + labels in, predictions, dead letters and model events out; ``stop``
    ends the inputs; ``metrics`` (this process's) counts and observes what flows; ``shard``:
    only its share of the events and labels partitions (``riverrun.streams.flow.shards``)."""
    conf = settings.kafka.client_config()
    t = settings.topics
    predictions: Sink = KafkaRecordSink(conf, t.predictions)
    dead_letters: Sink = KafkaRecordSink(conf, t.dead_letter)
    if metrics is not None:
        predictions = metered(predictions, metrics.observe_published)
        dead_letters = metered(dead_letters, metrics.count_dead_letters)
    store = online_store_sink(settings)  # [online_store] enabled: latest values per entity
    if store is not None and metrics is not None:
        metrics.watch_online_store(store)
    sinks = FlowSinks(
        predictions=predictions,
        dead_letters=dead_letters,
        model_events=KafkaRecordSink(conf, t.model_events),
        registry=registry_sink(settings, metrics),
        features=store,  # the gateway serves each entity's latest features ...
        latest_predictions=store,  # ... and latest prediction per model
    )
    event_partitions, label_partitions = partitions_of(settings, t.events), partitions_of(settings, t.labels)
    if shard is not None:
        event_partitions, label_partitions = (
            shard.partitions(event_partitions),
            shard.partitions(label_partitions),
        )
    spec = flow_spec(settings, event_partitions=event_partitions, label_partitions=label_partitions)
    mine = shard is not None
    events = kafka_source(settings, "event", t.events, partitions=event_partitions if mine else None)
    labels = kafka_source(settings, "label", t.labels, partitions=label_partitions if mine else None)
    control = kafka_source(settings, "control", t.control)
    if stop is not None:
        events, labels = StoppableSource(events, stop), StoppableSource(labels, stop)
        control = StoppableSource(control, stop)
    loader = control_loader(settings.registry.opener(), settings.flow.max_payload_bytes)
    return build_dataflow(
        spec,
        events,
        labels,
        sinks,
        control=control,
        control_loader=loader,
        metrics=metrics,
        publish_every=settings.metrics.publish_every_seconds,
    )


def start_metrics(settings: Settings, process_id: int | None = None) -> FlowMetrics | None:
    """This process's metrics and their HTTP endpoint (``[metrics]``; process ``i`` of a
    cluster on ``port + i``). A port in use fails fast (``ConfigError``)."""
    m = settings.metrics
    if not m.enabled:
        return None
    metrics = FlowMetrics()
    port = m.port + (process_id or 0) if m.port else 0
    try:
        serve(metrics, m.address, port)
    except OSError as exc:
        raise ConfigError(
            f"cannot serve metrics on {m.address}:{port} ({exc.strerror or exc}): another process "
            "(another riverrun?) holds the port. Set [metrics] port (RIVERRUN_METRICS__PORT) to a "
            "free one, 0 for any free port, or enabled = false"
        ) from exc
    return metrics


#: Written into the recovery directory when it is created: which flow its state belongs to.
MANIFEST = "riverrun-manifest.json"


def recovery_manifest(settings: Settings) -> dict[str, Any]:
    """What a recovery directory's state depends on: the input topics (their offsets are in
    it), the models (their state is keyed by name and built from the recipe) and the features
    (the feature step's state). A directory written by a different flow would resume the wrong
    offsets into the wrong models."""
    f, t = settings.flow, settings.topics
    return {
        "format": 1,
        "topics": {"events": t.events, "labels": t.labels, "control": t.control},
        "models": [{"name": m.name, "recipe": m.recipe} for m in f.models],
        "features": f.features,
        "recovery_partitions": settings.recovery.partitions,
        "segment_by": f.segment_by,
    }


def check_recovery_dir(settings: Settings) -> None:
    """Fail fast when the recovery directory holds another flow's state; record this flow's
    manifest in a new (or pre-manifest) directory. ``ConfigError`` says what differs and what
    to do."""
    directory = Path(settings.recovery.directory)
    path = directory / MANIFEST
    want = recovery_manifest(settings)
    if path.is_file():
        try:
            have = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise ConfigError(
                f"recovery manifest {path} is unreadable ({exc}): restore it, or point [recovery] "
                "directory at an empty directory (the flow then re-reads its topics from the start)"
            ) from exc
        differs = [k for k in want if have.get(k) != want[k]]
        if differs:
            shown = "; ".join(f"{k}: recorded {have.get(k)!r}, configured {want[k]!r}" for k in differs)
            raise ConfigError(
                f"recovery directory {directory} holds the state of another flow ({shown}). "
                "Resuming it would apply that flow's offsets and models to this one: point "
                "[recovery] directory (RIVERRUN_RECOVERY__DIRECTORY) at this flow's own "
                "directory, or move this one away to start afresh (the topics are then re-read "
                "from the beginning)."
            )
        return
    if directory.exists() and not directory.is_dir():
        raise ConfigError(f"[recovery] directory {directory} exists and is not a directory")
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = directory / f".{MANIFEST}.{os.getpid()}"
    tmp.write_text(json.dumps(want, indent=2) + "\n")
    os.replace(tmp, path)  # atomic: cluster processes may write it at once (same content)


def shard_settings(settings: Settings, shard: Shard, addresses: list[str] | None) -> Settings:
    """The settings of one shard: its own recovery directory (``DIRECTORY/shard-I-of-N``).
    ``ConfigError`` when sharding cannot give each segment's model all of its records."""
    if addresses:
        raise ConfigError("--shard runs this process on its own: drop --addresses (a Bytewax cluster)")
    if settings.flow.segment_by is None:
        raise ConfigError(
            "--shard splits the stream by partition, so a model would learn a share of it: set "
            "[flow] segment_by (per-segment models), and key events and labels by that field "
            "(riverrun produce --key-by FIELD)"
        )
    t = settings.topics
    events, labels = partitions_of(settings, t.events), partitions_of(settings, t.labels)
    if events != labels:
        raise ConfigError(
            f"--shard needs co-partitioned topics: {t.events!r} has {len(events)} partitions, "
            f"{t.labels!r} {len(labels)}; give them the same number (a label must be in its event's "
            "partition)"
        )
    shard.partitions(events)  # owns at least one
    directory = Path(settings.recovery.directory) / shard.label
    recovery = settings.recovery.model_copy(update={"directory": directory})
    return settings.model_copy(update={"recovery": recovery})


@dataclass
class RecoveryPoint:
    """Where a recovery directory resumes: the epoch, and each model key's serving version in
    the snapshot of that epoch (empty: nothing to resume, the topics are read from the start)."""

    epoch: int = 0
    versions: dict[str, int] = field(default_factory=dict)


def recovery_point(directory: Path) -> RecoveryPoint:
    """The epoch a (re)start of the flow resumes from, computed as Bytewax 0.21 does (the lowest
    worker frontier of the newest execution over all partitions), and the version each model
    step had in its snapshot before that epoch. Reads our own trusted recovery directory (it
    holds pickles); a directory without partitions resumes nothing."""
    epoch = recovery.resume_epoch(directory)
    if epoch is None:
        return RecoveryPoint()
    versions: dict[str, int] = {}
    for key, state in recovery.resumed_snapshots(directory, "model", epoch).items():
        step, _ = read_model_snapshot(state)
        if step is not None:
            versions[key] = step.learner.version
    return RecoveryPoint(epoch, versions)


def start_line(
    settings: Settings, metrics: FlowMetrics | None, resumed: RecoveryPoint | None, shard: Shard | None
) -> str:
    """What ``riverrun run`` prints (stderr) as it starts: broker, input topics and their
    partitions, the models and the versions they serve, recovery, metrics."""
    t = settings.topics
    listed = []
    for name in (t.events, t.labels):
        ids = partitions_of(settings, name)
        listed.append(f"{name} partitions {list(shard.partitions(ids) if shard else ids)}")
    topics = ", ".join(listed)
    served = resumed.versions if resumed is not None else {}
    models = ", ".join(
        f"{m.name} ({m.recipe}) "
        + (
            " ".join(
                f"v{v}" if k == m.name else f"{k} v{v}"  # a segment's instance: lr.DE v2
                for k, v in served.items()
                if k == m.name or k.startswith(m.name + ".")
            )
            or "v1 (new)"
        )
        for m in settings.flow.models
    )
    r = settings.recovery
    if resumed is None:
        recovery = "recovery off (the topics are read from the start)"
    elif resumed.versions or resumed.epoch > 0:
        recovery = f"recovery {r.directory} resuming epoch {resumed.epoch}"
    else:
        recovery = f"recovery {r.directory} (new: the topics are read from the start)"
    where = metrics.endpoint if metrics is not None and metrics.endpoint else "metrics off"
    return (
        f"riverrun run: started{f' shard {shard.label}' if shard else ''}; broker "
        f"{settings.kafka.bootstrap_servers}; topics {topics}; models {models}; {recovery}; "
        f"metrics {where}"
    )


def stop_line(settings: Settings, metrics: FlowMetrics | None, signalled: bool) -> str:
    """What ``riverrun run`` prints (stderr) as it stops: why, what this process's model steps
    had served and learned, and the epoch a restart resumes from."""
    r = settings.recovery
    views = metrics.views() if metrics is not None else {}
    done = (
        ", ".join(
            f"{name} v{v.version}: {v.n_predicted} predicted, {v.n_learned} learned, "
            f"{v.counters.get('pending_events', 0)} awaiting labels"
            for name, v in sorted(views.items())
        )
        or "no model step ran in this process"
    )
    how = "on signal: inputs drained" if signalled else "inputs ended"
    if r.enabled:
        epoch = recovery_point(Path(r.directory)).epoch
        kept = f"final snapshot in {r.directory}, a restart resumes epoch {epoch}"
    else:
        kept = "recovery off: nothing snapshotted, a restart re-reads the topics"
    return f"riverrun run: stopped {how}; {done}; {kept}"


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def run_live(
    settings: Settings,
    workers: int | None = None,
    process_id: int | None = None,
    addresses: list[str] | None = None,
    shard: Shard | None = None,
) -> None:
    """Check the broker and topics (fail fast), then run until stopped. ``shard``: run as one
    of several independent processes (``riverrun.streams.flow.shards``)."""
    t = settings.topics
    require_topics(settings, [t.events, t.labels, t.predictions, t.dead_letter, t.model_events, t.control])
    if shard is not None:
        settings = shard_settings(settings, shard, addresses)
        process_id = shard.index  # its metrics port: port + index
    r = settings.recovery
    if r.enabled:
        check_recovery_dir(settings)
    metrics = start_metrics(settings, process_id)
    stop = StopSignal()
    stop.install()  # SIGTERM/SIGINT: drain, final snapshot, exit 0
    resumed = recovery_point(Path(r.directory)) if r.enabled else None
    flow = build_live_flow(settings, stop, metrics, shard)  # checks the registry: fails before "started"
    _say(start_line(settings, metrics, resumed, shard))
    log.info("riverrun run: running; SIGTERM or Ctrl-C stops it gracefully (final snapshot)")
    run_cluster(
        flow,
        workers=workers or settings.workers,
        process_id=process_id,
        addresses=None if shard is not None else addresses,
        recovery_dir=r.directory if r.enabled else None,
        recovery_partitions=r.partitions,
        snapshot_interval=timedelta(seconds=r.snapshot_interval_seconds),
        backup_interval=timedelta(seconds=r.backup_interval_seconds),
    )
    _say(stop_line(settings, metrics, stop.is_set()))
