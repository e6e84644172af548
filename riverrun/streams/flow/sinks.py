"""Bytewax sinks that hand batches to a callback, and a wrapper that meters what a sink wrote;
``sink_key``, how records are keyed. Kafka's sink is ``streams.kafka.sink``; records are written as
``core.items.to_json``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bytewax.outputs import (
    DynamicSink,
    FixedPartitionedSink,
    StatefulSinkPartition,
    StatelessSinkPartition,
)


class _CallbackPartition(StatelessSinkPartition[Any]):
    def __init__(self, fn: Callable[[list], None]):
        self._fn = fn

    def write_batch(self, items: list) -> None:
        self._fn(items)


class CallbackSink(DynamicSink[Any]):
    """Hands each batch to ``fn`` (in-process consumers: reports, progress bars, tests)."""

    def __init__(self, fn: Callable[[list], None]):
        self.fn = fn

    def build(self, step_id, worker_index, worker_count):
        return _CallbackPartition(self.fn)


class _MeteredPartition(StatelessSinkPartition[Any]):
    def __init__(self, inner: Any, after: Callable[[list], None]):
        self._inner, self._after = inner, after

    def write_batch(self, items: list) -> None:
        self._inner.write_batch(items)
        self._after(items)

    def close(self) -> None:
        self._inner.close()


class _MeteredStatefulPartition(_MeteredPartition, StatefulSinkPartition[Any, Any]):
    def snapshot(self) -> Any:
        return self._inner.snapshot()


class MeteredSink(DynamicSink[Any]):
    """A sink that calls ``after(items)`` once ``inner`` wrote a batch, e.g. to count what was
    published. ``metered`` picks this or ``MeteredPartitionedSink`` for ``inner``."""

    def __init__(self, inner: DynamicSink, after: Callable[[list], None]):
        self.inner, self.after = inner, after

    def build(self, step_id, worker_index, worker_count):
        return _MeteredPartition(self.inner.build(step_id, worker_index, worker_count), self.after)


class MeteredPartitionedSink(FixedPartitionedSink[Any, Any]):
    """``MeteredSink`` for a ``FixedPartitionedSink`` (its partitions and their snapshots)."""

    def __init__(self, inner: FixedPartitionedSink, after: Callable[[list], None]):
        self.inner, self.after = inner, after

    def list_parts(self) -> list[str]:
        return self.inner.list_parts()

    def part_fn(self, item_key: str) -> int:
        return self.inner.part_fn(item_key)

    def build_part(self, step_id, for_part, resume_state):
        part = self.inner.build_part(step_id, for_part, resume_state)
        return _MeteredStatefulPartition(part, self.after)


def metered(inner: Any, after: Callable[[list], None]) -> Any:
    """``inner`` calling ``after(items)`` after each batch it wrote."""
    if isinstance(inner, FixedPartitionedSink):
        return MeteredPartitionedSink(inner, after)
    return MeteredSink(inner, after)


def sink_key(record: Any) -> str:
    """The routing key of an output record to a Kafka sink partition: one partition, so the
    records of a topic keep the order the flow emits them in (by event time)."""
    return "0"
