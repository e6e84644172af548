"""The acknowledged producer: every message confirmed by the broker or an error that names the
broker (``VerifiedProducer``), with librdkafka's producer properties (``producer_config``); and
``publish_stream``, a recorded stream and its delayed labels published in event-time order."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from confluent_kafka import (
    Producer,
)

from riverrun.errors import DeliveryError
from riverrun.schemas import Event, Label
from riverrun.streams.kafka.config import config_for
from riverrun.streams.settings import Settings

log = logging.getLogger(__name__)


def producer_config(client_config: dict[str, str]) -> dict[str, Any]:
    """A producer that never loses an acknowledged write nor duplicates on retry: ``acks=all``
    and idempotence whatever ``[kafka.extra]`` says. Batching (``linger.ms``, 5) and
    ``compression.type`` (lz4) are defaults that ``[kafka.extra]`` may change. Consumer
    properties (``fetch.wait.max.ms``, ...) are left out: librdkafka would warn on every start.

    >>> conf = producer_config({"bootstrap.servers": "b:9092", "linger.ms": "1", "acks": "1",
    ...                         "fetch.wait.max.ms": "10"})
    >>> conf["linger.ms"], conf["acks"], conf["enable.idempotence"], conf["compression.type"]
    ('1', 'all', True, 'lz4')
    >>> "fetch.wait.max.ms" in conf
    False
    """
    return {
        "linger.ms": 5,
        "compression.type": "lz4",
        **config_for(client_config, "producer"),
        "acks": "all",
        "enable.idempotence": True,
    }


class _OncePerKind:
    """librdkafka's log (``logger``), each kind of line (facility, broker) once per
    ``every`` seconds: an unreachable broker is otherwise one ``FAIL`` line per reconnection
    attempt, hundreds in a flush timeout. The error itself reaches ``error_cb``."""

    def __init__(self, every: float = 60.0) -> None:
        self._every = every
        self._last: dict[str, float] = {}

    def log(self, level: int, fmt: str, *args: Any) -> None:
        """confluent-kafka calls ``log(level, "%s [%s] %s", facility, client, "[thrd:X]: text")``."""
        text = fmt % args if args else fmt
        kind = f"{args[0]}|{str(args[-1]).split(']', 1)[0]}" if len(args) == 3 else text
        now = time.monotonic()
        if now - self._last.get(kind, float("-inf")) >= self._every:
            self._last[kind] = now
            log.log(level, "librdkafka: %s", text)


class VerifiedProducer:
    """confluent-kafka producer whose every message is confirmed: delivery callbacks are checked
    and ``flush()`` must leave nothing in the queue, or ``DeliveryError`` is raised, naming the
    broker and librdkafka's latest error. librdkafka's own log is thinned (``_OncePerKind``)."""

    def __init__(self, client_config: dict[str, str], flush_timeout: float = 30.0):
        self._servers = client_config.get("bootstrap.servers", "?")
        self._last_error: str | None = None
        conf = {"logger": _OncePerKind(), "error_cb": self._on_error, **producer_config(client_config)}
        self._producer = Producer(conf)
        self._errors: list[str] = []
        self._flush_timeout = flush_timeout
        self.delivered = 0

    def _on_error(self, err: Any) -> None:
        """Client-level errors (broker unreachable, ...): kept for the flush error message."""
        self._last_error = err.str()
        log.debug("kafka producer error: %s", err.str())

    def _on_delivery(self, err, msg) -> None:
        if err is not None:
            self._errors.append(f"{msg.topic()}: {err}")
        else:
            self.delivered += 1

    def produce(self, topic: str, value: bytes, key: bytes | None = None, headers=None) -> None:
        while True:
            try:
                self._producer.produce(topic, value, key, headers=headers, on_delivery=self._on_delivery)
                break
            except BufferError:  # local queue full: let librdkafka drain it
                self._producer.poll(0.1)
        self._producer.poll(0)

    def flush(self) -> None:
        remaining = self._producer.flush(self._flush_timeout)
        if remaining:
            cause = f" (last error: {self._last_error})" if self._last_error else ""
            raise DeliveryError(
                f"{remaining} messages not acknowledged by Kafka at {self._servers} within "
                f"{self._flush_timeout:.0f}s{cause}: check that the broker is up and reachable "
                "from here, and [kafka] bootstrap_servers / KAFKA_BOOTSTRAP_SERVERS"
            )
        if self._errors:
            errors, self._errors = self._errors, []
            raise DeliveryError(f"{len(errors)} messages failed: {errors[:3]}")


def publish_stream(
    settings: Settings,
    events: list[Event | bytes],
    labels: list[Label | bytes],
    rate: float = 0.0,
    on_progress: Callable[[int], None] | None = None,
    key_by: str | None = None,
    producer: VerifiedProducer | None = None,
) -> tuple[int, int]:
    """Publish events and labels in event-time order (a label at t before an event at t), at
    ``rate`` events per second of wall clock (0: as fast as possible). Raw ``bytes`` entries are
    published as they are (bad input for tests) at their position. Every message is confirmed.

    Keys: an event's entity and a label's event id; with ``key_by``, both an event and its label
    are keyed by the event's feature ``key_by`` (its segment), so that co-partitioned topics hold
    them at the same partition number (``--shard``; an event without it keeps its entity).
    ``producer``: one already connected (a new one connects first: its first records wait)."""
    producer = producer or VerifiedProducer(settings.kafka.client_config())
    t = settings.topics
    keys: dict[str, str] | None = None
    if key_by is not None:
        keys = {e.event_id: str(e.features.get(key_by, e.entity)) for e in events if isinstance(e, Event)}

    def when(record, fallback: float) -> float:
        return record.ts.timestamp() if isinstance(record, Event | Label) else fallback

    start = time.monotonic()
    n_events = j = 0
    last_event_ts = float("-inf")
    for record in events:
        ts = when(record, last_event_ts)
        while j < len(labels) and when(labels[j], ts) <= ts:
            _publish(producer, t.labels, labels[j], keys)
            j += 1
        _publish(producer, t.events, record, keys)
        last_event_ts = ts
        n_events += 1
        if rate > 0:
            lag = start + n_events / rate - time.monotonic()
            if lag > 0:
                time.sleep(lag)
        if on_progress is not None and n_events % 1000 == 0:
            on_progress(1000)
    for label in labels[j:]:
        _publish(producer, t.labels, label, keys)
    producer.flush()
    return n_events, len(labels)


def _publish(
    producer: VerifiedProducer, topic: str, record: Event | Label | bytes, keys: dict[str, str] | None = None
) -> None:
    if isinstance(record, bytes):  # raw (invalid) input, published as it is
        producer.produce(topic, record, None)
        return
    key = record.entity if isinstance(record, Event) else record.event_id
    if keys is not None:
        key = keys.get(record.event_id, key)
    producer.produce(topic, record.model_dump_json().encode(), key.encode())
