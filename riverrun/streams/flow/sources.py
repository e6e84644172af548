"""Bytewax sources of files and memory, and a stop signal around any source; all yield
``RawRecord``. Kafka's tailing source is ``streams.kafka.source``."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition

from riverrun.schemas import Origin
from riverrun.streams.core.items import Kind, RawRecord

# -- sources -----------------------------------------------------------------------------------


class _FilePartition(StatefulSourcePartition[RawRecord, tuple[int, int]]):
    def __init__(self, path: Path, kind: Kind, batch_size: int, resume: tuple[int, int] | None):
        self._kind = kind
        self._name = path.name
        self._batch_size = batch_size
        self._line, offset = resume or (0, 0)
        self._file = path.open("rb")
        self._file.seek(offset)

    def next_batch(self) -> list[RawRecord]:
        batch = []
        for _ in range(self._batch_size):
            line = self._file.readline()
            if not line:
                break
            payload = line.rstrip(b"\r\n")
            batch.append(RawRecord(self._kind, payload, Origin(self._name, 0, self._line)))
            self._line += 1
        if not batch:
            raise StopIteration()
        return batch

    def snapshot(self) -> tuple[int, int]:
        return (self._line, self._file.tell())

    def close(self) -> None:
        self._file.close()


class JsonLinesSource(FixedPartitionedSource[RawRecord, tuple[int, int]]):
    """One JSON record per line; the line number is the record's offset (for ordering and
    dead letters). Blank lines are records too (they go to the dead-letter output)."""

    def __init__(self, path: str | Path, kind: Kind, batch_size: int = 1000):
        self.path = Path(path)
        self.kind = kind
        self.batch_size = batch_size

    def list_parts(self) -> list[str]:
        return [self.path.name]

    def build_part(self, step_id, for_part, resume_state):
        return _FilePartition(self.path, self.kind, self.batch_size, resume_state)


class _MemoryPartition(StatefulSourcePartition[RawRecord, int]):
    def __init__(self, records: Sequence[Any], kind: Kind, batch_size: int, resume: int | None):
        self._records, self._kind, self._batch_size = records, kind, batch_size
        self._i = resume or 0

    def next_batch(self) -> list[RawRecord]:
        if self._i >= len(self._records):
            raise StopIteration()
        chunk = self._records[self._i : self._i + self._batch_size]
        start = self._i
        self._i += len(chunk)
        return [RawRecord(self._kind, r, Origin("memory", 0, start + n)) for n, r in enumerate(chunk)]

    def snapshot(self) -> int:
        return self._i


class MemorySource(FixedPartitionedSource[RawRecord, int]):
    """Records (bytes, or ready ``Event``/``Label`` objects) from a list, e.g. the demo stream."""

    def __init__(self, records: Sequence[Any], kind: Kind, batch_size: int = 1000):
        self.records, self.kind, self.batch_size = records, kind, batch_size

    def list_parts(self) -> list[str]:
        return ["memory"]

    def build_part(self, step_id, for_part, resume_state):
        return _MemoryPartition(self.records, self.kind, self.batch_size, resume_state)


class StopSignal:
    """Set by SIGTERM/SIGINT: sources then end their input, so the flow drains, writes a final
    snapshot and exits 0; a restart continues exactly there, without duplicates."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def set(self, *_args) -> None:
        self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()

    def install(self) -> None:
        signal.signal(signal.SIGTERM, self.set)
        signal.signal(signal.SIGINT, self.set)


class _StoppablePartition(StatefulSourcePartition):
    def __init__(self, inner: StatefulSourcePartition, stop: StopSignal):
        self._inner, self._stop = inner, stop

    def next_batch(self):
        if self._stop.is_set():
            raise StopIteration()
        return self._inner.next_batch()

    def next_awake(self):
        return self._inner.next_awake()

    def snapshot(self):
        return self._inner.snapshot()

    def close(self) -> None:
        self._inner.close()


class StoppableSource(FixedPartitionedSource):
    """Wraps a partitioned source (e.g. Bytewax's ``KafkaSource``) so a ``StopSignal`` ends it."""

    def __init__(self, inner: FixedPartitionedSource, stop: StopSignal):
        self.inner, self.stop = inner, stop

    def list_parts(self) -> list[str]:
        return self.inner.list_parts()

    def build_part(self, step_id, for_part, resume_state):
        return _StoppablePartition(self.inner.build_part(step_id, for_part, resume_state), self.stop)


# -- sinks -------------------------------------------------------------------------------------


def read_jsonl(path: str | Path) -> Iterable[bytes]:
    """The lines of a JSON Lines file, without their line ends."""
    with Path(path).open("rb") as f:
        for line in f:
            yield line.rstrip(b"\r\n")
