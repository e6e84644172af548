"""A finite range of Kafka topics as a replay input: offsets or timestamps, per partition.

``resolve_range`` turns ``--start-offset/--end-offset`` or ``--start-time/--end-time`` into one
``PartitionRange`` (start inclusive, end exclusive) per partition, using the broker's watermarks
and ``offsets_for_times``; ``KafkaRangeSource`` reads those ranges once and ends (a finite
Bytewax source). Records come out as the live flow's Kafka source makes them (topic,
partition, offset and key as origin), so the order the sequencer gives, and thus every decision,
is the one a live run on the same records makes.

Offsets are written ``N`` (every partition of both topics), or a comma-separated list of
``KIND[:PARTITION]=N`` with KIND ``events``, ``labels`` or ``control``, e.g.
``events=1000,labels:2=350``. The control topic's offsets are unrelated to the others': a plain
``N`` does not apply to it (``of_kind``), only ``control[:PARTITION]=N`` does.

>>> spec = parse_offsets("events=10,labels:1=4,7")
>>> spec.lookup("events", 0), spec.lookup("labels", 1), spec.lookup("labels", 0)
(10, 4, 7)
>>> parse_offsets("").lookup("events", 3) is None
True
>>> spec.of_kind("control").lookup("control", 0) is None
True
>>> parse_offsets("5,control:0=2").of_kind("control").lookup("control", 0)
2
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime

from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition
from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from riverrun.errors import ConfigError
from riverrun.schemas import Origin
from riverrun.streams.core.items import Kind, RawRecord
from riverrun.streams.kafka.config import config_for

_ITEM = re.compile(r"^(?:(events|labels|control)(?::(\d+))?=)?(\d+)$")


@dataclass(frozen=True)
class OffsetSpec:
    """Offsets by (kind, partition), by kind, or for everything; ``lookup`` picks the most
    specific one."""

    exact: dict[tuple[str, int], int] = field(default_factory=dict)
    by_kind: dict[str, int] = field(default_factory=dict)
    default: int | None = None

    def lookup(self, kind: str, partition: int) -> int | None:
        if (kind, partition) in self.exact:
            return self.exact[(kind, partition)]
        return self.by_kind.get(kind, self.default)

    def of_kind(self, kind: str) -> OffsetSpec:
        """Only the offsets written for ``kind`` (no plain ``N``)."""
        return OffsetSpec(
            {k: o for k, o in self.exact.items() if k[0] == kind},
            {k: o for k, o in self.by_kind.items() if k == kind},
        )


def parse_offsets(text: str | None) -> OffsetSpec:
    """``"1000"`` or ``"events=1000,labels:0=950"``; ``ConfigError`` naming the bad item."""
    spec = OffsetSpec()
    for item in (text or "").split(","):
        item = item.strip()
        if not item:
            continue
        m = _ITEM.match(item)
        if m is None:
            raise ConfigError(
                f"offset {item!r} not understood: write N (every partition of both topics) or "
                "KIND[:PARTITION]=N with KIND events, labels or control, e.g. events=1000,labels:0=950"
            )
        kind, partition, offset = m.group(1), m.group(2), int(m.group(3))
        if kind is None:
            spec = OffsetSpec(spec.exact, spec.by_kind, offset)
        elif partition is None:
            spec.by_kind[kind] = offset
        else:
            spec.exact[(kind, int(partition))] = offset
    return spec


@dataclass(frozen=True)
class PartitionRange:
    """Offsets ``start`` (inclusive) to ``end`` (exclusive) of one topic partition."""

    topic: str
    partition: int
    start: int
    end: int

    @property
    def size(self) -> int:
        """Offsets in the range (records, unless the topic is compacted or transactional)."""
        return max(0, self.end - self.start)


def _consumer(client_config: dict[str, str], **extra: str | bool | int) -> Consumer:
    """A consumer of its own group (never committed), reading from the earliest offset; no
    producer property of ``[kafka.extra]`` (librdkafka would warn on every start)."""
    return Consumer(
        {
            **config_for(client_config, "consumer"),
            "group.id": f"riverrun-replay-{uuid.uuid4().hex[:12]}",  # never committed
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            **extra,
        }
    )


def _millis(when: datetime) -> int:
    if when.tzinfo is None:
        raise ConfigError(f"time {when.isoformat()} has no UTC offset: write e.g. 2024-01-01T00:00:00+00:00")
    return int(when.timestamp() * 1000)


def resolve_range(
    client_config: dict[str, str],
    topic: str,
    kind: str,
    start_offsets: OffsetSpec | None = None,
    end_offsets: OffsetSpec | None = None,
    start_time: datetime | None = None,
    end_time: datetime | None = None,
    timeout: float = 10.0,
) -> list[PartitionRange]:
    """One range per partition of ``topic`` (``kind``: events, labels or control, for the
    offset spec).

    Defaults: from the first offset still on the broker to the high watermark now (what is in
    the topic when the replay starts). Times select by Kafka record timestamp (the time a record
    was produced, unless its producer set one) through ``offsets_for_times``: the first offset at
    or after ``start_time``, up to the first at or after ``end_time``. Offsets are clamped to
    what the broker holds.
    """
    consumer = _consumer(client_config)
    try:
        metadata = consumer.list_topics(topic, timeout=timeout)
        info = metadata.topics.get(topic)
        if info is None or info.error is not None or not info.partitions:
            raise ConfigError(
                f"topic {topic!r} not found on {client_config.get('bootstrap.servers')}: check [topics]"
            )
        ranges = []
        for p in sorted(info.partitions):
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=timeout)
            start, end = low, high
            if start_offsets is not None and (o := start_offsets.lookup(kind, p)) is not None:
                start = o
            if end_offsets is not None and (o := end_offsets.lookup(kind, p)) is not None:
                end = o
            if start_time is not None:
                start = _offset_at(consumer, topic, p, start_time, high, timeout)
            if end_time is not None:
                end = _offset_at(consumer, topic, p, end_time, high, timeout)
            start, end = min(max(start, low), high), min(max(end, low), high)
            ranges.append(PartitionRange(topic, p, start, max(start, end)))
        return ranges
    except KafkaException as exc:
        raise ConfigError(f"could not read the offsets of {topic!r}: {exc}") from exc
    finally:
        consumer.close()


def _offset_at(
    consumer: Consumer, topic: str, partition: int, when: datetime, high: int, timeout: float
) -> int:
    """The first offset whose record timestamp is at or after ``when`` (``high`` if none)."""
    (found,) = consumer.offsets_for_times([TopicPartition(topic, partition, _millis(when))], timeout=timeout)
    if found.error is not None:
        raise ConfigError(f"offsets_for_times on {topic}:{partition} failed: {found.error}")
    return high if found.offset < 0 else found.offset


class EndOfRange(bytes):
    """The value of the record a ``KafkaRangeSource(end_marker=True)`` adds after the last one of
    each partition (at offset ``end``): never a record's bytes (those are plain ``bytes``)."""


class _RangePartition(StatefulSourcePartition[RawRecord, int]):
    """Reads ``[next offset, end)`` of one partition (then the end marker, if asked), then ends."""

    def __init__(
        self,
        client_config: dict[str, str],
        kind: Kind,
        r: PartitionRange,
        batch_size: int,
        resume: int | None,
        end_marker: bool = False,
    ):
        self._kind, self._range, self._batch_size = kind, r, batch_size
        self._next = r.start if resume is None else resume
        self._marker = end_marker and self._next <= r.end
        self._consumer = None
        if self._next < r.end:
            self._consumer = _consumer(client_config, **{"enable.partition.eof": True})
            self._consumer.assign([TopicPartition(r.topic, r.partition, self._next)])

    def next_batch(self) -> list[RawRecord]:
        r = self._range
        if self._consumer is None or self._next >= r.end:
            if self._marker:
                self._marker, self._next = False, r.end + 1
                return [RawRecord(self._kind, EndOfRange(), Origin(r.topic, r.partition, r.end))]
            raise StopIteration()
        batch: list[RawRecord] = []
        for msg in self._consumer.consume(min(self._batch_size, r.end - self._next), timeout=0.5):
            err = msg.error()
            if err is not None:
                if err.code() == KafkaError._PARTITION_EOF:  # compacted/transactional tail
                    self._next = r.end
                    break
                raise KafkaException(err)
            offset = msg.offset()
            if offset >= r.end:
                self._next = r.end
                break
            key = msg.key()
            origin = Origin(
                r.topic, r.partition, offset, None if key is None else key.decode("utf-8", "backslashreplace")
            )
            batch.append(RawRecord(self._kind, msg.value() or b"", origin))
            self._next = offset + 1
        return batch

    def snapshot(self) -> int:
        return self._next

    def close(self) -> None:
        if self._consumer is not None:
            self._consumer.close()


class KafkaRangeSource(FixedPartitionedSource[RawRecord, int]):
    """The non-empty ``ranges`` of one topic, read once: one Bytewax partition per range.

    ``end_marker``: after the last record of each partition, one more ``RawRecord`` whose value
    is ``EndOfRange()`` (offset ``end``), so that a consumer can tell the partition is done (the
    replay's control topic: see ``replay.kafka_input``)."""

    def __init__(
        self,
        client_config: dict[str, str],
        kind: Kind,
        ranges: list[PartitionRange],
        batch_size: int = 1000,
        end_marker: bool = False,
    ):
        self.client_config, self.kind, self.batch_size = client_config, kind, batch_size
        self.end_marker = end_marker
        self.ranges = {f"{r.partition}-{r.topic}": r for r in ranges if r.size > 0}

    def list_parts(self) -> list[str]:
        return list(self.ranges)

    def build_part(self, step_id, for_part, resume_state):
        r, marker = self.ranges[for_part], self.end_marker
        return _RangePartition(self.client_config, self.kind, r, self.batch_size, resume_state, marker)


__all__ = [
    "EndOfRange",
    "KafkaRangeSource",
    "OffsetSpec",
    "PartitionRange",
    "parse_offsets",
    "resolve_range",
]
