"""Shards: independent processes, each running the whole flow over its own input partitions.

A Bytewax cluster (``--addresses``) keeps one event-time order over the whole stream: every
record passes through the one ordering key, and on to its entity's and its model's worker, so
most records cross between processes, some twice. With per-segment models
(``[flow] segment_by``) nothing needs that global order: each segment's model needs only its
own segment's events and labels, in event-time order. Shard ``i`` of ``n`` reads the partitions
``p`` with ``p % n == i`` of the events and labels topics, and runs the flow on them alone: its
own ordering, features, joins and models, its own recovery directory and metrics port. No record
crosses between processes, so shards scale as Kafka Streams tasks do.

What it needs (as a Kafka Streams join does): the events and labels topics are
*co-partitioned*, with the same number of partitions, and each event and its label are keyed by
the event's segment (``riverrun produce --key-by SEGMENT``), so a segment's records share one
partition number. An entity's events must stay in one segment (its features are computed where
its segment is). Then each segment's model sees exactly what it would see in one process.

>>> shard = Shard.parse("1/2")
>>> shard, [p for p in range(5) if shard.owns(p)]
(Shard(index=1, count=2), [1, 3])
>>> shard.label
'shard-1-of-2'
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from riverrun.errors import ConfigError

_FORMAT = re.compile(r"(\d+)/(\d+)")


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` (from 0) of ``count``."""

    index: int
    count: int

    @classmethod
    def parse(cls, text: str) -> Shard:
        """``"I/N"``, e.g. ``"0/2"``; ``ConfigError`` with the expected form otherwise."""
        match = _FORMAT.fullmatch(text.strip())
        if match is None or not 0 <= int(match[1]) < int(match[2]):
            raise ConfigError(
                f"--shard {text!r}: expected I/N with 0 <= I < N, e.g. --shard 0/2 and --shard 1/2 "
                "for two processes"
            )
        return cls(int(match[1]), int(match[2]))

    def owns(self, partition: int) -> bool:
        return partition % self.count == self.index

    def partitions(self, partitions: tuple[int, ...]) -> tuple[int, ...]:
        """This shard's share of a topic's partitions; ``ConfigError`` when it is empty."""
        mine = tuple(p for p in partitions if self.owns(p))
        if not mine:
            raise ConfigError(
                f"shard {self.index}/{self.count} owns none of the {len(partitions)} partitions: "
                "run at most as many shards as the topics have partitions"
            )
        return mine

    @property
    def label(self) -> str:
        """Names this shard's own state: its recovery subdirectory."""
        return f"shard-{self.index}-of-{self.count}"
