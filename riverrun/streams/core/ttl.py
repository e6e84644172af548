"""Entities that go quiet leave the feature state: a TTL in event time, decided without I/O.

An entity whose next event comes more than ``ttl_seconds`` of event time after its previous one
starts its features afresh (``EntityFeatures.transform``), whether or not its state was still
kept: so *when* the memory of a quiet entity is reclaimed never changes a feature, and a live run
and its replay compute the same features even though they reclaim at different moments.

Reclaiming is item-driven, because Bytewax can only drop a key when an item reaches it (its
per-key timers are scanned on every activation, too slow for millions of keys):

1. The ``order`` step's ``EntityClock`` sees every event in event-time order and notes the
   event-time buckets (``BUCKET_SECONDS`` wide) that received events. Once a bucket is older than
   the TTL it emits a ``Sweep`` of it.
2. The ``entity_ttl`` step, keyed by bucket, keeps each bucket's entities with the last time it
   saw them there (``BucketEntities``). On its ``Sweep`` it emits an ``Evict`` for each, and the
   bucket itself is dropped.
3. The ``features`` step drops an entity on an ``Evict`` that names the time of its last event:
   nothing newer reached it since (a later event keeps it, and a later bucket evicts it).

Each step snapshots only what an epoch touched: an entity's features, the current buckets, the
order step's list of open buckets (one int per ``BUCKET_SECONDS`` of the TTL).

>>> clock = EntityClock(ttl_seconds=30)
>>> clock.observe(0.0), clock.observe(12.0), clock.observe(25.0)
([], [], [])
>>> clock.observe(45.0)  # every event of bucket 0 ([0, 10) s) is now more than 30 s old
[Sweep(bucket=0, at=45.0)]
>>> entities = BucketEntities()
>>> entities.add("u1", 3.0), entities.add("u2", 7.0), entities.add("u1", 9.0)
(None, None, None)
>>> entities.evictions()
[Evict(entity='u1', last_ts=9.0), Evict(entity='u2', last_ts=7.0)]
"""

from __future__ import annotations

import math
from collections import deque
from typing import NamedTuple

#: Default TTL: a day of event time, the online store's TTL too (``[online_store] ttl_seconds``):
#: an entity quiet for a day is forgotten by the flow and by the store alike. A fraud or
#: recommendation stream keyed by cards or sessions sees most entities a few times within hours;
#: a day keeps a daily visitor's history and bounds the state to one day of entities.
ENTITY_TTL_SECONDS = 86_400.0

#: Width of an event-time bucket of the sweep: a quiet entity leaves memory between
#: ``ttl_seconds`` and ``ttl_seconds + BUCKET_SECONDS`` after its last event.
BUCKET_SECONDS = 10.0


class Sweep(NamedTuple):
    """Evict the entities of event-time bucket ``bucket``: the stream reached ``at``."""

    bucket: int
    at: float


class Seen(NamedTuple):
    """``entity`` had an event at ``ts`` (to its event-time bucket)."""

    entity: str
    ts: float


class Evict(NamedTuple):
    """Drop ``entity``'s feature state if its last event is still the one at ``last_ts``."""

    entity: str
    last_ts: float


def bucket_of(ts: float) -> int:
    """The event-time bucket of ``ts`` (``BUCKET_SECONDS`` wide)."""
    return math.floor(ts / BUCKET_SECONDS)


def bucket_key(bucket: int) -> str:
    """The ``entity_ttl`` step's key of a bucket."""
    return f"t{bucket}"


class EntityClock:
    """Which event-time buckets received events and are not swept yet (in the ``order`` step)."""

    __slots__ = ("_open", "ttl_seconds")

    def __init__(self, ttl_seconds: float):
        self.ttl_seconds = ttl_seconds
        self._open: deque[int] = deque()

    def observe(self, ts: float) -> list[Sweep]:
        """An event at ``ts`` (released in event-time order): the sweeps now due."""
        bucket = bucket_of(ts)
        if not self._open or self._open[-1] < bucket:
            self._open.append(bucket)
        last_due = bucket_of(ts - self.ttl_seconds) - 1  # every event in it is older than the TTL
        sweeps = []
        while self._open and self._open[0] <= last_due:
            sweeps.append(Sweep(self._open.popleft(), ts))
        return sweeps

    def __getstate__(self) -> tuple:
        return (self.ttl_seconds, list(self._open))

    def __setstate__(self, state: tuple) -> None:
        self.ttl_seconds, opened = state
        self._open = deque(opened)


class BucketEntities:
    """The entities one bucket saw, with the last time it saw each (in the ``entity_ttl`` step)."""

    __slots__ = ("seen",)

    def __init__(self) -> None:
        self.seen: dict[str, float] = {}

    def add(self, entity: str, ts: float) -> None:
        if ts >= self.seen.get(entity, ts):
            self.seen[entity] = ts

    def evictions(self) -> list[Evict]:
        return [Evict(entity, ts) for entity, ts in sorted(self.seen.items())]

    def __getstate__(self) -> dict[str, float]:
        return self.seen

    def __setstate__(self, state: dict[str, float]) -> None:
        self.seen = state
