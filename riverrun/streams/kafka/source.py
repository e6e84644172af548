"""The dataflow's Kafka input: a tailing source that yields ``RawRecord``s without blocking the
worker, with Bytewax-compatible partition names and offset snapshots."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta

from bytewax.connectors.kafka import BYTEWAX_CONSUMER_LAG_GAUGE as CONSUMER_LAG
from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition
from confluent_kafka import (
    OFFSET_BEGINNING,
    TIMESTAMP_NOT_AVAILABLE,
    Consumer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient

from riverrun.schemas import Origin
from riverrun.streams.core.items import Kind, RawRecord
from riverrun.streams.kafka.admin import partition_ids
from riverrun.streams.kafka.config import config_for
from riverrun.streams.settings import Settings

log = logging.getLogger(__name__)


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
        ids = partition_ids(AdminClient(config_for(self.config, "admin")), self.topic, 30)
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
