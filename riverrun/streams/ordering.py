"""Put events and labels back in event-time order before they reach a model. Pure.

Events and labels arrive on two inputs (two topics, two files) whose interleaving depends on the
engine's batching. A model must see them in the order River's ``simulate_qa`` defines: by event
time, and a label at time t before an event at time t. Each input is assumed ordered by time
within a partition, so its *watermark* (the smallest, over its partitions, of the largest time
seen) says that nothing earlier will come from it. Then:

- a label at t is released once the events' watermark has reached t;
- an event at t is released once the labels' watermark has passed t;
- an input that has ended has an infinite watermark.

Ties break by (partition, offset), so the order is a pure function of the data: replay at any
speed releases the same sequence as live. When the input being waited for goes *idle* (delivers
nothing for ``max_wait_seconds`` of wall-clock time), live runs release what is buffered anyway,
as Flink does for idle sources; an input that is merely behind (catching up) keeps delivering and
is waited for, so exactness is given up only for items that arrive after such a forced release
(counted in ``late``).

>>> o = EventTimeOrderer()
>>> o.push(Sequenced(10.0, EVENT, 0, 0, "e0"))   # waits: a label at <= 10 may still come
[]
>>> [s.payload for s in o.push(Sequenced(10.0, LABEL, 0, 0, "l0"))]   # label first at equal time
['l0']
>>> [s.payload for s in o.push(Sequenced(12.0, LABEL, 0, 1, "l1"))]
['e0']
>>> [s.payload for s in o.end_of_input(EVENT)]
['l1']
"""

from __future__ import annotations

import heapq
import math
from typing import Any, NamedTuple

LABEL = 0  # labels sort before events at equal time
EVENT = 1


class Sequenced(NamedTuple):
    """An item with its position in event-time order: (ts, kind, partition, offset).

    A tuple, so the heap compares in C; ``offset`` is unique per (kind, partition), so the
    payload is never compared."""

    ts: float
    kind: int
    partition: int
    offset: int
    payload: Any


class EventTimeOrderer:
    """Merges the event and label inputs into one event-time ordered sequence."""

    def __init__(self, max_wait_seconds: float | None = None):
        self.max_wait_seconds = max_wait_seconds
        self._heap: list[Sequenced] = []
        self._high: tuple[dict[int, float], dict[int, float]] = (
            {},
            {},
        )  # per kind: partition -> max ts
        self._ended = [False, False]
        self.blocked_since: float | None = None  # wall-clock time the buffer became non-empty
        self._last_arrival = [-math.inf, -math.inf]  # per kind: wall-clock time of the last item
        self.last_released_ts = -math.inf
        self.late = 0  # items that arrived after a forced release had passed them

    def watermark(self, kind: int) -> float:
        """No item of ``kind`` earlier than this will arrive (per the ordering assumption)."""
        if self._ended[kind]:
            return math.inf
        high = self._high[kind]
        return min(high.values()) if high else -math.inf

    def _ready(self, item: Sequenced) -> bool:
        if item.kind == LABEL:
            return self.watermark(EVENT) >= item.ts
        return self.watermark(LABEL) > item.ts

    def _release(self, force: bool = False) -> list[Sequenced]:
        out = []
        heap = self._heap
        while heap and (force or self._ready(heap[0])):
            out.append(heapq.heappop(heap))
        if out:
            self.last_released_ts = max(self.last_released_ts, out[-1].ts)
        return out

    def push(self, item: Sequenced, now: float | None = None) -> list[Sequenced]:
        """Add an item (``now`` = wall-clock seconds, for the wait bound); return what is released."""
        if now is not None:
            self._last_arrival[item.kind] = now
        high = self._high[item.kind]
        if item.ts > high.get(item.partition, -math.inf):
            high[item.partition] = item.ts
        if item.ts < self.last_released_ts and not self._heap:
            self.late += 1
            return [item]
        heapq.heappush(self._heap, item)
        out = self._release()
        self._track_wait(now)
        return out

    def _track_wait(self, now: float | None) -> None:
        if not self._heap:
            self.blocked_since = None
        elif self.blocked_since is None and now is not None:
            self.blocked_since = now

    def resumed(self, now: float) -> None:
        """Restored from a snapshot: wall-clock bookkeeping from before the restart is stale
        (it would release everything at once); count idleness from ``now``."""
        self._last_arrival = [now, now]
        self.blocked_since = now if self._heap else None

    def deadline(self) -> float | None:
        """Wall-clock time at which the buffered items are released anyway (None: never):
        ``max_wait_seconds`` after the input the oldest item waits for last delivered."""
        if self.max_wait_seconds is None or self.blocked_since is None or not self._heap:
            return None
        waited_for = EVENT if self._heap[0].kind == LABEL else LABEL
        return max(self.blocked_since, self._last_arrival[waited_for]) + self.max_wait_seconds

    def on_timeout(self, now: float) -> list[Sequenced]:
        """Release everything buffered if the wait bound has passed."""
        deadline = self.deadline()
        if deadline is None or now < deadline:
            return []
        out = self._release(force=True)
        self.blocked_since = None
        return out

    def end_of_input(self, kind: int) -> list[Sequenced]:
        """Input ``kind`` has ended: its watermark becomes infinite."""
        self._ended[kind] = True
        out = self._release()
        if not self._heap:
            self.blocked_since = None
        return out

    def flush(self) -> list[Sequenced]:
        """Release everything buffered, in order (end of the stream)."""
        out = self._release(force=True)
        self.blocked_since = None
        return out

    def __len__(self) -> int:
        return len(self._heap)


class Sequencer:
    """``EventTimeOrderer`` plus numbering: released items come out as ``(0, a), (1, b), ...``.

    Steps after it may permute items (a keyed step groups a batch by key, workers interleave);
    the contiguous numbers let the model step restore the exact order.

    >>> s = Sequencer()
    >>> s.push(LABEL, 5.0, 0, 0, "l0") + s.push(EVENT, 6.0, 0, 0, "e0") + s.flush()
    [(0, 'l0'), (1, 'e0')]
    """

    def __init__(self, max_wait_seconds: float | None = None):
        self.orderer = EventTimeOrderer(max_wait_seconds)
        self.next_seq = 0

    def _number(self, released: list[Sequenced]) -> list[tuple[int, Any]]:
        out = []
        for item in released:
            out.append((self.next_seq, item.payload))
            self.next_seq += 1
        return out

    def push(
        self,
        kind: int,
        ts: float,
        partition: int,
        offset: int,
        payload: Any,
        now: float | None = None,
    ) -> list[tuple[int, Any]]:
        return self._number(self.orderer.push(Sequenced(ts, kind, partition, offset, payload), now))

    def on_timeout(self, now: float) -> list[tuple[int, Any]]:
        return self._number(self.orderer.on_timeout(now))

    def deadline(self) -> float | None:
        return self.orderer.deadline()

    def flush(self) -> list[tuple[int, Any]]:
        return self._number(self.orderer.flush())
