"""Prometheus metrics of a running flow: one ``FlowMetrics`` per process, in a registry of its
own (injected; never ``prometheus_client``'s global one), served on ``[metrics] address:port``.

Where the numbers come from, so the hot path stays cheap:

* the **model step** keeps its counters, scores, detector state and label-delay histogram in its
  own (snapshotted) state; every ``publish_every_seconds`` it hands a ``ModelView`` (plain
  numbers) to ``FlowMetrics``, and a scrape reads the newest view. Its counters are therefore
  exactly-once across crashes, like the model;
* the **sinks** count what they publish: predictions (their latency from the event's Kafka
  timestamp, and their lag behind the event's own ``ts``), dead letters by kind and reason;
* the **decode** step counts records read, by kind;
* Bytewax's own Kafka consumer lag gauge is re-exported as ``riverrun_kafka_consumer_lag_messages``.

Label values are bounded: model names, challenger names and feature names come from the
configuration and the covariate monitor's ``max_features``; never event or entity ids.

>>> m = FlowMetrics()
>>> m.count_records("event", 3)
>>> m.publish(ModelView(model="m", version=2, n_predicted=5, n_learned=4))
>>> text = m.exposition()
>>> 'riverrun_records_total{kind="event"} 3.0' in text, 'riverrun_model_version{model="m"} 2.0' in text
(True, True)
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.utils import floatToGoString

from riverrun.streams.core.buckets import LATENCY_BOUNDS, Buckets
from riverrun.streams.core.view import ModelView

log = logging.getLogger(__name__)

#: Event ``ts`` -> published prediction (wall clock): the latency's buckets, then to a week (a
#: backfill of old events lands in the large ones).
EVENT_LAG_BOUNDS = (*LATENCY_BOUNDS, 300.0, 900.0, 3600.0, 14_400.0, 86_400.0, 604_800.0)


@dataclass(frozen=True)
class Series:
    """One exported series: its Prometheus type, labels and meaning."""

    kind: str  # counter, gauge, histogram
    labels: tuple[str, ...]
    help: str


#: Every series a flow exports (without the ``_total`` / ``_bucket`` suffixes Prometheus adds).
#: The Grafana dashboard and the alert rules may reference only these (tested).
SERIES: dict[str, Series] = {
    # input and bad input
    "riverrun_records_total": Series("counter", ("kind",), "Records read, by kind (event, label, control)"),
    "riverrun_dead_letters_total": Series(
        "counter", ("kind", "reason"), "Records sent to the dead-letter topic, by kind and reason"
    ),
    # serving
    "riverrun_predictions_total": Series("counter", ("model",), "Predictions served"),
    "riverrun_predictions_published_total": Series(
        "counter",
        (),
        "Predictions handed to the Kafka producer (acknowledged by their epoch's end; "
        "re-emissions after a crash included)",
    ),
    "riverrun_prediction_latency_seconds": Series(
        "histogram",
        (),
        "Wall time from the event reaching Kafka (its record timestamp) to its prediction's publication",
    ),
    "riverrun_prediction_event_lag_seconds": Series(
        "histogram",
        (),
        "Wall time from the event's own timestamp (ts) to its prediction's publication: "
        "includes producer lateness and backfills",
    ),
    # the delayed-label join
    "riverrun_labels_learned_total": Series("counter", ("model",), "Labels the model learned from"),
    "riverrun_labels_joined_total": Series("counter", ("model",), "Labels joined with their event"),
    "riverrun_labels_early_total": Series("counter", ("model",), "Labels that arrived before their event"),
    "riverrun_labels_expired_total": Series(
        "counter", ("model",), "Early labels whose event never came within the TTL (dead-lettered)"
    ),
    "riverrun_events_expired_total": Series(
        "counter", ("model",), "Served events whose label never came within the TTL"
    ),
    "riverrun_labels_rejected_total": Series(
        "counter", ("model",), "Labels of the wrong type or too late for their event (dead-lettered)"
    ),
    "riverrun_labels_quarantined_total": Series(
        "counter", ("model",), "Labels not learned while learning was paused (dead-lettered)"
    ),
    "riverrun_duplicate_events_total": Series("counter", ("model",), "Events whose id was already pending"),
    "riverrun_model_errors_total": Series("counter", ("model",), "Records the model refused (exceptions)"),
    "riverrun_pending_events": Series("gauge", ("model",), "Served events waiting for their label"),
    "riverrun_pending_labels": Series("gauge", ("model",), "Early labels waiting for their event"),
    "riverrun_label_delay_seconds": Series(
        "histogram", ("model",), "Event time from an event to its label, for joined labels"
    ),
    # model quality (prequential: each label scores the prediction served before it was learned)
    "riverrun_model_accuracy": Series(
        "gauge", ("model", "candidate", "window"), "Accuracy; candidate champion or a challenger"
    ),
    "riverrun_model_log_loss": Series("gauge", ("model", "candidate", "window"), "Log loss"),
    "riverrun_model_roc_auc": Series("gauge", ("model", "candidate", "window"), "ROC AUC"),
    "riverrun_model_mae": Series("gauge", ("model", "candidate", "window"), "Mean absolute error"),
    "riverrun_model_rmse": Series("gauge", ("model", "candidate", "window"), "Root mean squared error"),
    "riverrun_model_r2": Series(
        "gauge", ("model", "candidate", "window"), "Coefficient of determination (R²)"
    ),
    "riverrun_model_cross_entropy": Series(
        "gauge", ("model", "candidate", "window"), "Cross-entropy (multiclass log loss)"
    ),
    "riverrun_model_version": Series("gauge", ("model",), "Version of the serving model"),
    "riverrun_model_learning_paused": Series(
        "gauge", ("model",), "1 while learning is paused because recent labels contradict the model"
    ),
    "riverrun_lifecycle_regret": Series(
        "gauge",
        ("model",),
        "Accuracy the lifecycle lost against doing nothing (the unchanged model, run in shadow from "
        "its first action) on the labels learned; negative: it helped",
    ),
    # the label-free estimate (learners.estimate): what the labels still to come will show
    "riverrun_estimated_accuracy": Series(
        "gauge",
        ("model",),
        "Accuracy of the served predictions still waiting for their label, estimated from their "
        "probabilities (calibrated on the labels so far)",
    ),
    "riverrun_estimated_log_loss": Series(
        "gauge", ("model",), "Log loss of the predictions waiting for their label, estimated likewise"
    ),
    "riverrun_estimate_abs_error": Series(
        "gauge",
        ("model",),
        "Absolute difference of estimated and realised rolling accuracy over the last labelled "
        "predictions (how wrong the estimate was once their labels came)",
    ),
    # drift and the lifecycle
    "riverrun_concept_drift_error_rate": Series(
        "gauge", ("model",), "Error rate estimated by the concept-drift detector (ADWIN: its window mean)"
    ),
    "riverrun_concept_drift_window_labels": Series(
        "gauge", ("model",), "Labels in the concept-drift detector's window (ADWIN width)"
    ),
    "riverrun_feature_psi": Series(
        "gauge", ("model", "feature"), "Population stability index of a numeric feature vs its reference"
    ),
    "riverrun_drift_alarms_total": Series(
        "counter",
        ("model", "kind"),
        "Drift alarms: concept_drift, drift_warning, covariate_shift, prior_shift, prediction_drift",
    ),
    "riverrun_model_actions_total": Series(
        "counter", ("model", "action"), "Lifecycle actions: checkpoint, rollback, promotion, keep, ..."
    ),
    # engine
    "riverrun_kafka_consumer_lag_messages": Series(
        "gauge", ("topic", "partition"), "Messages on the broker not yet read by the flow"
    ),
    "riverrun_snapshot_duration_seconds": Series(
        "histogram", ("model",), "Time to snapshot the model step (pickle, then rebuild the live copy)"
    ),
    "riverrun_snapshot_bytes": Series("gauge", ("model",), "Size of the model step's last snapshot"),
    "riverrun_registry_write_retries_total": Series(
        "counter", (), "Registry writes (checkpoints, audit records) that failed and are retried"
    ),
    "riverrun_registry_pending_writes": Series(
        "gauge", (), "Checkpoints and audit records waiting for the registry"
    ),
    "riverrun_online_store_pending": Series(
        "gauge", (), "Entities whose latest features or prediction wait for the online store (Redis)"
    ),
    "riverrun_online_store_written_total": Series("counter", (), "Entries written to the online store"),
    "riverrun_online_store_retries_total": Series(
        "counter", (), "Online-store writes that failed (Redis unreachable) and are retried"
    ),
    "riverrun_online_store_dropped_total": Series(
        "counter", (), "Online-store entries dropped: past max_pending, or refused by Redis"
    ),
    "riverrun_view_age_seconds": Series(
        "gauge", ("model",), "Seconds since the model step last published its numbers"
    ),
}

_ALARMS = ("concept_drift", "drift_warning", "covariate_shift", "prior_shift", "prediction_drift")
_SCORES = {"accuracy", "log_loss", "cross_entropy", "roc_auc", "mae", "rmse", "r2"}
#: ModelStep counter -> exported counter (the rest of its counters are gauges or unused).
_STEP_COUNTERS = {
    "joined": "riverrun_labels_joined_total",
    "early_labels": "riverrun_labels_early_total",
    "expired_labels": "riverrun_labels_expired_total",
    "expired_events": "riverrun_events_expired_total",
    "rejected_labels": "riverrun_labels_rejected_total",
    "quarantined_labels": "riverrun_labels_quarantined_total",
    "duplicate_events": "riverrun_duplicate_events_total",
    "model_errors": "riverrun_model_errors_total",
}

#: ``ModelView.estimate`` key -> exported gauge.
_ESTIMATES = {
    "estimated_accuracy": "riverrun_estimated_accuracy",
    "estimated_log_loss": "riverrun_estimated_log_loss",
    "abs_error": "riverrun_estimate_abs_error",
}


def _split_metric(key: str) -> tuple[str, str]:
    """``accuracy_rolling`` -> (``accuracy``, ``rolling``); ``accuracy`` -> (.., ``cumulative``)."""
    if key.endswith("_rolling"):
        return key[: -len("_rolling")], "rolling"
    return key, "cumulative"


def _histogram(name: str, labels: list[str], values: list[str], b: Buckets, family=None):
    family = family or HistogramMetricFamily(name, SERIES[name].help, labels=labels)
    bounds = [*(floatToGoString(x) for x in b.bounds), "+Inf"]
    family.add_metric(values, list(zip(bounds, b.cumulative(), strict=True)), b.sum)
    return family


class FlowMetrics:
    """The metrics of one process. Thread-safe: Bytewax workers update it, scrapes read it."""

    def __init__(self, registry: CollectorRegistry | None = None):
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        r = self.registry

        def make(cls, name: str, **kw):
            s = SERIES[name]
            return cls(name.removesuffix("_total"), s.help, list(s.labels), registry=r, **kw)

        self.records = make(Counter, "riverrun_records_total")
        self.dead_letters = make(Counter, "riverrun_dead_letters_total")
        self.published = make(Counter, "riverrun_predictions_published_total")
        self.registry_retries = make(Counter, "riverrun_registry_write_retries_total")
        self.registry_pending = make(Gauge, "riverrun_registry_pending_writes")
        self.snapshot_bytes = make(Gauge, "riverrun_snapshot_bytes")
        self.snapshot_seconds = make(
            Histogram,
            "riverrun_snapshot_duration_seconds",
            buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
        )
        self._lock = threading.Lock()
        self._views: dict[str, ModelView] = {}
        self._online_store: Any = None  # a FeatureStoreSink, read at scrape time
        self.endpoint: str | None = None  # http://address:port/metrics once ``serve``d
        self._latency = Buckets(LATENCY_BOUNDS)
        self._event_lag = Buckets(EVENT_LAG_BOUNDS)
        r.register(_ViewCollector(self))

    # -- updates (from the flow's worker threads) ----------------------------------------------

    def count_records(self, kind: str, n: int = 1) -> None:
        self.records.labels(kind).inc(n)

    def count_dead_letters(self, letters: Iterable[Any]) -> None:
        for letter in letters:
            self.dead_letters.labels(letter.kind, letter.reason).inc()

    def observe_published(self, predictions: list, now: float | None = None) -> None:
        """Predictions handed to the producer. Latency: ``now`` minus the time the event reached
        Kafka (``received_at``; predictions of events not read from Kafka have none and are not
        timed); event lag: ``now`` minus the event's own ``ts`` (a backfill or a late producer
        shows here, not in the latency)."""
        now = time.time() if now is None else now
        with self._lock:
            latency, lag = self._latency.observe, self._event_lag.observe
            for p in predictions:
                if p.received_at is not None:
                    latency(max(0.0, now - p.received_at))
                lag(max(0.0, now - p.ts.timestamp()))
        self.published.inc(len(predictions))

    def observe_snapshot(self, model: str, seconds: float, nbytes: int) -> None:
        self.snapshot_seconds.labels(model).observe(seconds)
        self.snapshot_bytes.labels(model).set(nbytes)

    def watch_online_store(self, sink: Any) -> None:
        """Export the counters of this process's online-store writers (``FeatureStoreSink``)."""
        self._online_store = sink

    def publish(self, view: ModelView) -> None:
        """The newest numbers of a model step (replaces its previous view)."""
        with self._lock:
            self._views[view.model] = view

    # -- reading -------------------------------------------------------------------------------

    def views(self) -> dict[str, ModelView]:
        with self._lock:
            return dict(self._views)

    def latency(self) -> Buckets:
        """Kafka timestamp -> publication (``riverrun_prediction_latency_seconds``)."""
        with self._lock:
            return self._latency.copy()

    def event_lag(self) -> Buckets:
        """Event ``ts`` -> publication (``riverrun_prediction_event_lag_seconds``)."""
        with self._lock:
            return self._event_lag.copy()

    def exposition(self) -> str:
        """The text a scrape gets."""
        return generate_latest(self.registry).decode()


class _ViewCollector:
    """Turns the model views (and Bytewax's lag gauge) into metric families at scrape time."""

    def __init__(self, metrics: FlowMetrics):
        self.metrics = metrics

    def describe(self) -> list[Metric]:
        return []  # names known only at collect time; skip the registry's duplicate check

    def collect(self) -> Iterator[Metric]:
        views = self.metrics.views()
        now = time.monotonic()
        fam: dict[str, Metric] = {}

        def add(name: str, labels: list[str], value: float) -> None:
            s = SERIES[name]
            if name not in fam:
                if s.kind == "counter":
                    fam[name] = CounterMetricFamily(
                        name.removesuffix("_total"), s.help, labels=list(s.labels)
                    )
                else:
                    fam[name] = GaugeMetricFamily(name, s.help, labels=list(s.labels))
            fam[name].add_metric(labels, value)

        delay = None
        for model, v in sorted(views.items()):
            add("riverrun_predictions_total", [model], v.n_predicted)
            add("riverrun_labels_learned_total", [model], v.n_learned)
            for key, name in _STEP_COUNTERS.items():
                add(name, [model], v.counters.get(key, 0))
            add("riverrun_pending_events", [model], v.counters.get("pending_events", 0))
            add("riverrun_pending_labels", [model], v.counters.get("pending_labels", 0))
            add("riverrun_model_version", [model], v.version)
            add("riverrun_model_learning_paused", [model], float(v.paused))
            if v.regret is not None:
                add("riverrun_lifecycle_regret", [model], v.regret)
            for key, name in _ESTIMATES.items():
                if key in v.estimate:
                    add(name, [model], v.estimate[key])
            add("riverrun_view_age_seconds", [model], now - v.published_at)
            for candidate, scores in sorted(v.scores.items()):
                for key, value in sorted(scores.items()):
                    metric, window = _split_metric(key)
                    if metric in _SCORES and value is not None:
                        add(f"riverrun_model_{metric}", [model, candidate, window], float(value))
            if "estimation" in v.concept:
                add("riverrun_concept_drift_error_rate", [model], v.concept["estimation"])
            if "width" in v.concept:
                add("riverrun_concept_drift_window_labels", [model], v.concept["width"])
            for feature, value in sorted(v.psi.items()):
                add("riverrun_feature_psi", [model, feature], value)
            for kind in _ALARMS:
                add("riverrun_drift_alarms_total", [model, kind], v.actions.get(kind, 0))
            for action, n in sorted(v.actions.items()):
                if action not in _ALARMS:
                    add("riverrun_model_actions_total", [model, action], n)
            if v.label_delay is not None:
                delay = _histogram("riverrun_label_delay_seconds", ["model"], [model], v.label_delay, delay)
        store = self.metrics._online_store
        if store is not None:
            st = store.stats()
            add("riverrun_online_store_pending", [], st.get("pending", 0))
            add("riverrun_online_store_written_total", [], st.get("written", 0))
            add("riverrun_online_store_retries_total", [], st.get("retries", 0))
            add("riverrun_online_store_dropped_total", [], st.get("dropped", 0) + st.get("failed", 0))
        yield from fam.values()
        if delay is not None:
            yield delay
        yield _histogram("riverrun_prediction_latency_seconds", [], [], self.metrics.latency())
        yield _histogram("riverrun_prediction_event_lag_seconds", [], [], self.metrics.event_lag())
        yield from _kafka_lag()


def _kafka_lag() -> Iterator[Metric]:
    """Bytewax's ``bytewax_kafka_consumer_lag`` (a module-level gauge in the global registry,
    set from librdkafka's statistics) as ``riverrun_kafka_consumer_lag_messages``."""
    try:
        from bytewax.connectors.kafka import BYTEWAX_CONSUMER_LAG_GAUGE
    except ImportError:  # pragma: no cover - bytewax is a dependency
        return
    name = "riverrun_kafka_consumer_lag_messages"
    family = GaugeMetricFamily(name, SERIES[name].help, labels=["topic", "partition"])
    for metric in BYTEWAX_CONSUMER_LAG_GAUGE.collect():
        for sample in metric.samples:
            family.add_metric([sample.labels["topic"], str(sample.labels["partition"])], sample.value)
    yield family


def serve(metrics: FlowMetrics, address: str = "127.0.0.1", port: int = 9464) -> tuple[Any, int]:
    """Serve ``/metrics`` from a daemon thread; returns (server, the port it listens on)."""
    from prometheus_client import start_http_server

    server, _thread = start_http_server(port, addr=address, registry=metrics.registry)
    bound = server.server_address[1]
    metrics.endpoint = f"http://{address}:{bound}/metrics"
    log.info("metrics at %s", metrics.endpoint)
    return server, bound
