"""Kafka plumbing outside the dataflow: broker checks, topic creation, publishing streams."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta

from bytewax.connectors.kafka import KafkaSource
from bytewax.inputs import StatefulSourcePartition
from confluent_kafka import Consumer, KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from riverrun.errors import ConfigError, ServiceUnavailable
from riverrun.schemas import Event, Label
from riverrun.streams.connectors import VerifiedProducer
from riverrun.streams.settings import Settings


def admin(settings: Settings) -> AdminClient:
    return AdminClient(settings.kafka.client_config())


def check_broker(settings: Settings, timeout: float = 10.0) -> set[str]:
    """The broker's topic names; ``ServiceUnavailable`` (with what to do) when it does not answer.

    Refused credentials and failed TLS handshakes are ``ConfigError`` at the first refusal:
    librdkafka retries them silently until the timeout otherwise, and reports only a generic
    "transport failure", which sends the operator looking for a network problem.
    """
    servers = settings.kafka.bootstrap_servers
    refused: list[KafkaError] = []
    last: list[str] = []

    def on_error(err: KafkaError) -> None:
        if err.code() in (KafkaError._AUTHENTICATION, KafkaError._SSL):
            refused.append(err)
        elif err.code() != KafkaError._ALL_BROKERS_DOWN:
            last[:] = [err.str()]

    # Errors come through error_cb and end up in the message: librdkafka's own log would print
    # one line per reconnection attempt.
    conf = {**settings.kafka.client_config(), "error_cb": on_error, "log_level": "0"}
    client = AdminClient(conf)
    deadline = time.monotonic() + timeout
    while True:
        try:
            metadata = client.list_topics(timeout=max(0.1, min(0.5, deadline - time.monotonic())))
            break
        except KafkaException as exc:
            client.poll(0)  # serves error_cb
            if refused:
                raise ConfigError(_refusal_message(settings, refused[0])) from None
            if time.monotonic() < deadline:
                continue
            raise ServiceUnavailable(
                f"Kafka at {servers} did not answer within {timeout:.0f}s "
                f"({last[0] if last else exc.args[0].str()}). "
                "Start one with `bash infra/services.sh start`, or point riverrun at yours with "
                "KAFKA_BOOTSTRAP_SERVERS / [kafka] bootstrap_servers."
            ) from None
    return set(metadata.topics)


def _refusal_message(settings: Settings, err: KafkaError) -> str:
    """What to fix when the broker refused us; librdkafka's reason never holds the password."""
    k = settings.kafka
    if err.code() == KafkaError._SSL:
        return (
            f"TLS handshake with Kafka at {k.bootstrap_servers} failed: {err.str()}. Point "
            "[kafka] ssl_ca_location at the PEM of the CA that signed the broker's certificate, "
            "and check that the certificate names the host you connect to."
        )
    return (
        f"Kafka at {k.bootstrap_servers} refused the credentials of user {k.sasl_username!r} "
        f"({k.security_protocol}, {k.sasl_mechanism}): {err.str()}. Check [kafka] sasl_username "
        "and sasl_mechanism, and the password in RIVERRUN_KAFKA__SASL_PASSWORD."
    )


def require_topics(settings: Settings, names: Iterable[str]) -> None:
    """Fail fast, before the flow starts, if a topic it needs is missing."""
    missing = sorted(set(names) - check_broker(settings))
    if missing:
        raise ConfigError(
            f"missing Kafka topics {missing} on {settings.kafka.bootstrap_servers}: "
            "create them with `riverrun topics create` (same config), or fix [topics]."
        )


def partitions_of(settings: Settings, topic: str, timeout: float = 10.0) -> tuple[int, ...]:
    """The partition ids of ``topic``."""
    metadata = admin(settings).list_topics(topic, timeout=timeout)
    return tuple(sorted(metadata.topics[topic].partitions))


def create_topics(settings: Settings, timeout: float = 30.0) -> dict[str, str]:
    """Create every riverrun topic that does not exist yet; return {topic: 'created'|'exists'}."""
    existing = check_broker(settings)
    t = settings.topics
    wanted = [name for name in t.all() if name not in existing]
    status = {name: "exists" for name in t.all() if name in existing}
    if wanted:
        client = admin(settings)  # keep the handle alive until the futures resolve
        futures = client.create_topics(
            [NewTopic(name, t.partitions, t.replication_factor) for name in wanted],
            operation_timeout=timeout,
        )
        for name, future in futures.items():
            try:
                future.result(timeout)
                status[name] = "created"
            except KafkaException as exc:
                if "TOPIC_ALREADY_EXISTS" in str(exc):
                    status[name] = "exists"
                else:
                    raise ConfigError(f"could not create topic {name!r}: {exc}") from exc
    # Metadata propagates asynchronously; wait until the broker lists them all.
    deadline = time.monotonic() + timeout
    while set(t.all()) - check_broker(settings) and time.monotonic() < deadline:
        time.sleep(0.2)
    return status


class _NoWaitConsumer:
    """A consumer whose ``consume`` never blocks: it takes what librdkafka has fetched already."""

    def __init__(self, consumer: Consumer):
        self._consumer = consumer

    def consume(self, num_messages: int, timeout: float) -> list:
        return self._consumer.consume(num_messages, 0)

    def close(self) -> None:
        self._consumer.close()


class _NoWaitPartition(StatefulSourcePartition):
    """Bytewax's Kafka partition without its blocking wait.

    Bytewax's partition waits up to 1 ms in ``consume`` for a full batch, in the worker's only
    thread: each poll of a partition with less than a batch waiting (the idle control topic,
    every input of a live flow that keeps up) holds the whole flow that long. Here a poll
    returns at once, and an empty one asks to be polled again ``IDLE_POLL_SECONDS`` later
    (``next_awake``): meanwhile the worker processes what it has, or sleeps."""

    IDLE_POLL_SECONDS = 0.001

    def __init__(self, inner: StatefulSourcePartition):
        inner._consumer = _NoWaitConsumer(inner._consumer)  # type: ignore[attr-defined]
        self._inner = inner
        self._awake: datetime | None = None

    def next_batch(self) -> list:
        batch = self._inner.next_batch()
        self._awake = None if batch else datetime.now(UTC) + timedelta(seconds=self.IDLE_POLL_SECONDS)
        return batch

    def next_awake(self) -> datetime | None:
        return self._awake

    def snapshot(self) -> int | None:
        return self._inner.snapshot()

    def close(self) -> None:
        self._inner.close()


class _Source(KafkaSource):
    """Bytewax's Kafka source with non-blocking partitions (``_NoWaitPartition``), over all the
    partitions of its topic, or some (a shard's share)."""

    def __init__(self, *args, partitions: tuple[int, ...] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self._partitions = None if partitions is None else frozenset(partitions)

    def list_parts(self) -> list[str]:
        parts = super().list_parts()
        if self._partitions is None:
            return parts
        return [part for part in parts if int(part.split("-", 1)[0]) in self._partitions]

    def build_part(self, step_id: str, for_part: str, resume_state: int | None) -> _NoWaitPartition:
        return _NoWaitPartition(super().build_part(step_id, for_part, resume_state))


def kafka_source(
    settings: Settings, topic: str, tail: bool = True, partitions: tuple[int, ...] | None = None
) -> KafkaSource:
    """Bytewax's Kafka source: offsets live in the recovery snapshots, read from the beginning
    when there is none. Low fetch wait keeps event-to-prediction latency in milliseconds.
    ``partitions``: only these (a shard's); None: all."""
    conf = settings.kafka.client_config()
    brokers = conf.pop("bootstrap.servers").split(",")
    conf.setdefault("fetch.wait.max.ms", "10")
    conf.setdefault("statistics.interval.ms", "5000")  # Bytewax's consumer-lag gauge (metrics)
    options: dict = dict(
        tail=tail, add_config=conf, batch_size=settings.flow.batch_size, raise_on_errors=False
    )
    return _Source(brokers, [topic], partitions=partitions, **options)


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
