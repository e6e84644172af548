"""Kafka plumbing outside the dataflow: broker checks, topic creation, publishing streams."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta

from bytewax.connectors.kafka import BYTEWAX_CONSUMER_LAG_GAUGE as CONSUMER_LAG
from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition
from confluent_kafka import (
    OFFSET_BEGINNING,
    TIMESTAMP_NOT_AVAILABLE,
    Consumer,
    KafkaError,
    KafkaException,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, NewTopic

from riverrun.errors import ConfigError, ServiceUnavailable
from riverrun.schemas import Event, Label, Origin
from riverrun.streams.core.items import Kind, RawRecord
from riverrun.streams.flow.connectors import VerifiedProducer
from riverrun.streams.settings import Settings, config_for

log = logging.getLogger(__name__)


def admin(settings: Settings) -> AdminClient:
    """An admin client: the shared settings only (no producer or consumer property)."""
    return AdminClient(config_for(settings.kafka.client_config(), "admin"))


# librdkafka errors meaning the bootstrap brokers cannot be reached at all (as opposed to a
# broker that is slow to answer): connection refused, name not resolved, every broker down.
_UNREACHABLE = (KafkaError._TRANSPORT, KafkaError._RESOLVE)


def check_broker(settings: Settings, timeout: float = 10.0) -> set[str]:
    """The broker's topic names; ``ServiceUnavailable`` (address, cause, what to do) when it
    cannot be reached.

    Fails as soon as librdkafka reports every bootstrap broker down (connection refused, name
    not resolved: ``_ALL_BROKERS_DOWN`` after ``_TRANSPORT`` / ``_RESOLVE``), usually within a
    second; waits up to ``timeout`` only for a broker that accepts connections but does not
    answer (or a network that drops packets). Refused credentials and failed TLS handshakes are
    ``ConfigError`` at the first refusal: librdkafka retries them silently until the timeout
    otherwise, and reports only a generic "transport failure", which sends the operator looking
    for a network problem.
    """
    refused: list[KafkaError] = []
    last: list[str] = []  # the latest error's reason
    unreachable: list[str] = []  # the latest connection refused / name not resolved
    down: list[bool] = []

    def on_error(err: KafkaError) -> None:
        code = err.code()
        if code in (KafkaError._AUTHENTICATION, KafkaError._SSL):
            refused.append(err)
        elif code == KafkaError._ALL_BROKERS_DOWN:
            down.append(True)
        else:  # "host:port/bootstrap: Connect to ipv4#... failed: Connection refused (after 0ms ...)"
            last[:] = [err.str().partition("/bootstrap: ")[2] or err.str()]
            if code in _UNREACHABLE:
                unreachable[:] = last

    # Errors come through error_cb and end up in the message: librdkafka's own log would print
    # one line per reconnection attempt.
    conf = {**config_for(settings.kafka.client_config(), "admin"), "error_cb": on_error, "log_level": "0"}
    client = AdminClient(conf)
    deadline = time.monotonic() + timeout
    while True:
        try:
            metadata = client.list_topics(timeout=max(0.1, min(0.25, deadline - time.monotonic())))
            break
        except KafkaException as exc:
            client.poll(0)  # serves error_cb
            if refused:
                raise ConfigError(_refusal_message(settings, refused[0])) from None
            if down and unreachable:  # every bootstrap broker refused or did not resolve
                raise ServiceUnavailable(
                    _unreachable_message(settings, f"is unreachable ({unreachable[0]})")
                ) from None
            if time.monotonic() < deadline:
                continue
            cause = last[0] if last else exc.args[0].str()
            raise ServiceUnavailable(
                _unreachable_message(settings, f"did not answer within {timeout:.0f}s ({cause})")
            ) from None
    return set(metadata.topics)


def _unreachable_message(settings: Settings, what: str) -> str:
    """``Kafka at ADDRESS (where the address came from) WHAT. What to do.``"""
    origin = settings.bootstrap_origin()
    return (
        f"Kafka at {origin.servers} ({origin.source}) {what}. Start one with "
        "`bash infra/services.sh start`, or point riverrun at yours with [kafka] "
        "bootstrap_servers or KAFKA_BOOTSTRAP_SERVERS (the environment wins over the file)."
    )


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
    """Fail fast, before anything is read or sent, if the broker is unreachable or a topic it
    needs is missing (a producer would have the broker auto-create a mistyped one, and nothing
    would ever read it). The message names each topic with its [topics] key and the fix."""
    missing = sorted(set(names) - check_broker(settings))
    if missing:
        keys = {name: key for key, name in settings.topics.model_dump().items() if isinstance(name, str)}
        shown = ", ".join(
            f"{name!r} ([topics] {keys[name]})" if name in keys else repr(name) for name in missing
        )
        raise ConfigError(
            f"missing Kafka topics [{shown}] on {settings.kafka.bootstrap_servers}: create them with "
            "`riverrun topics create` (same config), or fix the names in [topics] "
            "(RIVERRUN_TOPICS__<KEY> in the environment)."
        )


def partitions_of(settings: Settings, topic: str, timeout: float = 10.0) -> tuple[int, ...]:
    """The partition ids of ``topic``."""
    return _partition_ids(admin(settings), topic, timeout)


def _partition_ids(client: AdminClient, topic: str, timeout: float) -> tuple[int, ...]:
    metadata = client.list_topics(topic, timeout=timeout).topics[topic]
    if metadata.error is not None:
        raise ConfigError(f"cannot list the partitions of topic {topic!r}: {metadata.error.str()}")
    return tuple(sorted(metadata.partitions))


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


class _TailPartition(StatefulSourcePartition[RawRecord, int]):
    """One partition of a topic, read from an offset on and never ending, as ``RawRecord``s
    (origin: topic, partition, offset, key; ``received_at``: the record's Kafka timestamp). The
    snapshot is the next offset to read.

    A poll takes what librdkafka has fetched already and returns at once: Bytewax's own Kafka
    partition waits up to 1 ms in ``consume`` for a full batch, in the worker's only thread, so
    every poll of a quiet input (the control topic, any input of a flow that keeps up) held the
    whole flow that long. An empty poll asks to be polled again ``IDLE_POLL_SECONDS`` later
    (``next_awake``); meanwhile the worker processes what it has, or sleeps. Consumer errors
    (a broker unreachable, ...) are logged; librdkafka retries them, and no data is skipped.
    """

    IDLE_POLL_SECONDS = 0.001

    def __init__(
        self,
        config: dict,
        kind: Kind,
        topic: str,
        partition: int,
        resume: int | None,
        batch_size: int,
        step_id: str,
    ):
        self._kind, self._topic, self._partition, self._batch_size = kind, topic, partition, batch_size
        self._next = OFFSET_BEGINNING if resume is None else resume
        self._lag = CONSUMER_LAG.labels(step_id=step_id, topic=topic, partition=partition)
        self._consumer = Consumer(
            {
                **config_for(config, "consumer"),
                "group.id": "riverrun-unused",  # assigned, not subscribed: offsets live in the snapshots
                "enable.auto.commit": "false",
                "stats_cb": self._on_stats,
            }
        )
        self._consumer.assign([TopicPartition(topic, partition, self._next)])
        self._awake: datetime | None = None

    def _on_stats(self, json_stats: str) -> None:
        """librdkafka's statistics (every ``statistics.interval.ms``): the consumer lag gauge."""
        stats = json.loads(json_stats)["topics"].get(self._topic, {}).get("partitions", {})
        end = stats.get(str(self._partition), {}).get("ls_offset")
        if end is not None and self._next >= 0:
            self._lag.set(end - self._next)

    def next_batch(self) -> list[RawRecord]:
        kind, topic, partition = self._kind, self._topic, self._partition
        batch: list[RawRecord] = []
        for msg in self._consumer.consume(self._batch_size, 0):
            err = msg.error()
            if err is not None:
                log.warning("kafka consumer error on %s input %s:%d: %s", kind, topic, partition, err)
                continue
            key = msg.key()
            origin = Origin(
                topic,
                partition,
                msg.offset(),
                None if key is None else key.decode("utf-8", "backslashreplace"),
            )
            ts_type, ts_ms = msg.timestamp()  # log-append or create time
            appended = None if ts_type == TIMESTAMP_NOT_AVAILABLE else ts_ms / 1000.0
            batch.append(RawRecord(kind, msg.value(), origin, appended))
        if batch:
            self._next = batch[-1].origin.offset + 1  # type: ignore[operator]
            self._awake = None
        else:
            self._awake = datetime.now(UTC) + timedelta(seconds=self.IDLE_POLL_SECONDS)
        return batch

    def next_awake(self) -> datetime | None:
        return self._awake

    def snapshot(self) -> int:
        return self._next

    def close(self) -> None:
        self._consumer.close()


class KafkaTailSource(FixedPartitionedSource[RawRecord, int]):
    """The partitions of ``topic`` (all, or ``partitions``: a shard's share), each a
    ``_TailPartition``. Bytewax names a partition ``"<index>-<topic>"``, as its own Kafka source
    did: the offsets in existing recovery snapshots resume."""

    def __init__(
        self,
        config: dict[str, str],
        kind: Kind,
        topic: str,
        batch_size: int = 1000,
        partitions: tuple[int, ...] | None = None,
    ):
        self.config, self.kind, self.topic, self.batch_size = config, kind, topic, batch_size
        self.partitions = None if partitions is None else frozenset(partitions)

    def list_parts(self) -> list[str]:
        ids = _partition_ids(AdminClient(config_for(self.config, "admin")), self.topic, 30)
        return [f"{p}-{self.topic}" for p in ids if self.partitions is None or p in self.partitions]

    def build_part(self, step_id: str, for_part: str, resume_state: int | None) -> _TailPartition:
        partition = int(for_part.split("-", 1)[0])
        return _TailPartition(
            self.config, self.kind, self.topic, partition, resume_state, self.batch_size, step_id
        )


def kafka_source(
    settings: Settings, kind: Kind, topic: str, partitions: tuple[int, ...] | None = None
) -> KafkaTailSource:
    """The live flow's input ``kind`` from ``topic``: offsets live in the recovery snapshots, read
    from the beginning when there is none. A low fetch wait keeps event-to-prediction latency in
    milliseconds. ``partitions``: only these (a shard's); None: all."""
    conf = settings.kafka.client_config()
    conf.setdefault("fetch.wait.max.ms", "10")
    conf.setdefault("statistics.interval.ms", "5000")  # the consumer lag gauge
    return KafkaTailSource(conf, kind, topic, settings.flow.batch_size, partitions)


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
