"""The Bytewax sink of records to a Kafka topic, through the acknowledged producer."""

from __future__ import annotations

from bytewax.outputs import (
    FixedPartitionedSink,
    StatefulSinkPartition,
)
from pydantic import BaseModel

from riverrun.schemas import DeadLetter, ModelEvent
from riverrun.streams.core.items import to_json
from riverrun.streams.kafka.producer import VerifiedProducer


def _key_of(record: BaseModel) -> bytes | None:
    if isinstance(record, DeadLetter):
        return record.key.encode() if record.key is not None else None
    if isinstance(record, ModelEvent):
        return record.model.encode()
    entity = getattr(record, "entity", None)
    return entity.encode() if entity is not None else None


def _headers_of(record: BaseModel) -> list[tuple[str, bytes]] | None:
    if not isinstance(record, DeadLetter):
        return None
    return [
        ("riverrun.source.topic", str(record.topic).encode()),
        ("riverrun.source.partition", str(record.partition).encode()),
        ("riverrun.source.offset", str(record.offset).encode()),
        ("riverrun.reason", record.reason.encode()),
    ]


class _KafkaPartition(StatefulSinkPartition[BaseModel, None]):
    def __init__(self, client_config: dict[str, str], topic: str):
        # Wait for acknowledgements as long as librdkafka retries them (message.timeout.ms,
        # default 300 s): a broker paused or restarting for less than that is waited out, the
        # epoch just closes later; only a message librdkafka gave up on fails the flow.
        conf_ms = client_config.get("message.timeout.ms", client_config.get("delivery.timeout.ms"))
        timeout = float(conf_ms) / 1000 if conf_ms is not None else 300.0
        self._producer = VerifiedProducer(client_config, flush_timeout=timeout + 5)
        self._topic = topic

    def write_batch(self, items: list[BaseModel]) -> None:
        # Sent at once (librdkafka batches for a few ms); acknowledged by the epoch's end.
        for record in items:
            self._producer.produce(self._topic, to_json(record), _key_of(record), _headers_of(record))

    def snapshot(self) -> None:
        # Called at the end of each epoch, before its offsets commit: every output of the
        # epoch is acknowledged first, so a crash can only re-emit, never lose one.
        self._producer.flush()

    def close(self) -> None:
        self._producer.flush()


class KafkaRecordSink(FixedPartitionedSink[BaseModel, None]):
    """Publishes records as JSON (key: the entity, or the original key for dead letters);
    dead letters carry their origin and reason as headers too. Items are ``(sink_key(record),
    record)``; the engine keys them.

    Writes do not wait for the broker: each partition's ``snapshot`` (the end of an epoch, before
    its offsets commit) flushes, so every output is acknowledged before the input positions that
    produced it are committed. At-least-once: after a crash, the outputs since the last commit
    are published again, identical. (Flushing on every batch instead cost a broker round trip
    per batch: at 2,200 events/s the p50 latency was 428 ms, against 23 ms this way.)"""

    #: Output partitions (each owned by one worker; their state is empty). One keeps the order
    #: of a topic's records; with several workers, they all hand their outputs to its owner.
    PARTS = 1

    def __init__(self, client_config: dict[str, str], topic: str):
        self.client_config = client_config
        self.topic = topic

    def list_parts(self) -> list[str]:
        return [str(i) for i in range(self.PARTS)]

    def build_part(self, step_id, for_part, resume_state):
        return _KafkaPartition(self.client_config, self.topic)
