"""Put events and labels back in event-time order before they reach a model. Pure.

Events and labels arrive on two inputs (two topics, two files) whose interleaving depends on the
engine's batching. A model must see them in the order River's ``simulate_qa`` defines: by event
time, and a label at time t before an event at time t. Each input is assumed ordered by time
within a partition, so its *watermark* (the smallest, over its partitions, of the largest time
seen) says that nothing earlier will come from it. Then:

- a label at t is released once the events' watermark has reached t;
- an event at t is released once the labels' watermark has passed t;
- at the end of a finite stream, whatever is buffered is released in order.

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
>>> [s.payload for s in o.flush()]   # end of a finite stream
['l1']
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

from riverrun.streams.core.items import Numbered

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
    """Merges the event and label inputs into one event-time ordered sequence.

    With several partitions per input, an item waits for the *other* partitions too; live, a
    partition that delivered nothing for ``max_wait_seconds`` stops holding the others back
    (per-partition idleness, as Flink treats idle splits), and when the whole input waited for
    is idle that long, what is buffered is released.
    """

    def __init__(
        self,
        max_wait_seconds: float | None = None,
        partitions: tuple[Iterable[int], Iterable[int]] | None = None,
    ):
        self.max_wait_seconds = max_wait_seconds
        self._heap: list[Sequenced] = []
        # per kind: partition -> largest ts seen, and -> wall-clock time of its last item.
        # Known partitions (label partitions first, then event ones) hold the others back from
        # the start; a partition first seen later joins when it sends.
        known = partitions or ((), ())
        self._high: tuple[dict[int, float], dict[int, float]] = tuple(
            {p: -math.inf for p in parts} for parts in known
        )
        self._seen: tuple[dict[int, float], dict[int, float]] = ({}, {})
        self._started = False
        self.blocked_since: float | None = None  # wall-clock time the buffer became non-empty
        self._now = -math.inf  # wall clock at the last push or timeout
        self._last_key: tuple[float, int] = (-math.inf, LABEL)  # (ts, kind) last released
        self.late = 0  # items that arrived after a forced release had passed them

    def _active(self, kind: int, partition: int) -> bool:
        if self.max_wait_seconds is None:
            return True
        return self._now - self._seen[kind].get(partition, -math.inf) < self.max_wait_seconds

    def watermark(self, kind: int, exclude: int | None = None) -> float:
        """No item of ``kind`` earlier than this will arrive from its (active) partitions other
        than ``exclude`` (infinite when there are no others)."""
        high = self._high[kind]
        marks = [ts for p, ts in high.items() if p != exclude and self._active(kind, p)]
        if marks:
            return min(marks)
        if exclude is not None and len(high) <= 1:
            return math.inf  # no other partition
        if high and exclude is None:
            return max(high.values())  # every partition idle: all they sent is here
        return math.inf if exclude is not None else -math.inf

    def _release(self, force: bool = False) -> list[Sequenced]:
        out = []
        heap = self._heap
        if force:
            while heap:
                out.append(heapq.heappop(heap))
        elif len(self._high[LABEL]) == 1 and len(self._high[EVENT]) == 1:
            # One partition per input (the common case), whose items are all that is buffered:
            # an input's watermark is its partition's largest time, idle or not; nothing else
            # of the same input can come earlier. The general loop below gives the same order.
            labels_mark = next(iter(self._high[LABEL].values()))
            events_mark = next(iter(self._high[EVENT].values()))
            pop = heapq.heappop
            while heap:
                top = heap[0]
                if (events_mark < top[0]) if top[1] == LABEL else (labels_mark <= top[0]):
                    break
                out.append(pop(heap))
        elif heap:
            # Watermarks cannot change during one release: compute them once.
            marks: dict = {}
            while heap:
                ts, kind, partition = heap[0][:3]
                own = marks.get((kind, partition))
                if own is None:
                    own = marks[(kind, partition)] = self.watermark(kind, exclude=partition)
                other = marks.get(1 - kind)
                if other is None:
                    other = marks[1 - kind] = self.watermark(1 - kind)
                # Not yet if another partition of the same input may still send an earlier item,
                # nor if the other input may: labels at ts come before events at ts.
                if own < ts or (other < ts if kind == LABEL else other <= ts):
                    break
                out.append(heapq.heappop(heap))
        if out:
            self._last_key = max(self._last_key, (out[-1].ts, out[-1].kind))
        if not heap:
            self.blocked_since = None
        elif self.blocked_since is None:
            self.blocked_since = self._now
        return out

    def push(self, item: Sequenced, now: float | None = None) -> list[Sequenced]:
        """Add an item (``now`` = wall-clock seconds, for idleness); return what is released."""
        if now is not None:
            self._now = now
            if not self._started:  # idleness of silent partitions counts from the first item
                self._started = True
                for kind, seen in enumerate(self._seen):
                    for p in self._high[kind]:
                        seen.setdefault(p, now)
            self._seen[item.kind][item.partition] = now
        high = self._high[item.kind]
        if item.ts > high.get(item.partition, -math.inf):
            high[item.partition] = item.ts
        if (item.ts, item.kind) < self._last_key:
            self.late += 1  # only after a forced release: apply it now, out of order
            return [item, *self._release()]
        heapq.heappush(self._heap, item)
        return self._release()

    def resumed(self, now: float) -> None:
        """Restored from a snapshot: wall-clock bookkeeping from before the restart is stale
        (every partition would look idle); count idleness from ``now``."""
        self._now = now
        for kind, seen in enumerate(self._seen):
            for p in self._high[kind]:
                seen[p] = now
        self.blocked_since = now if self._heap else None

    def map_payloads(self, fn: Callable[[Any], Any]) -> None:
        """Replace each buffered payload by ``fn(payload)`` (restoring a snapshot written with
        an older payload type); the order is kept (payloads are never compared)."""
        self._heap = [item._replace(payload=fn(item.payload)) for item in self._heap]

    def deadline(self) -> float | None:
        """Wall-clock time of the next idleness check while items wait (None: no check)."""
        if self.max_wait_seconds is None or not self._heap:
            return None
        return self._now + self.max_wait_seconds / 4

    def on_timeout(self, now: float) -> list[Sequenced]:
        """Re-check with the wall clock at ``now``: idle partitions stop holding others back,
        and if the whole input waited for has been idle ``max_wait_seconds``, release all."""
        self._now = now
        out = self._release()
        if self._heap and self.max_wait_seconds is not None:
            waited_for = EVENT if self._heap[0].kind == LABEL else LABEL
            last = max(self._seen[waited_for].values(), default=-math.inf)
            since = max(last, self.blocked_since if self.blocked_since is not None else now)
            if now - since >= self.max_wait_seconds:
                out += self._release(force=True)
        return out

    def flush(self) -> list[Sequenced]:
        """Release everything buffered, in order (end of the stream)."""
        return self._release(force=True)

    def __len__(self) -> int:
        return len(self._heap)


class Sequencer:
    """``EventTimeOrderer`` plus numbering: released items come out as ``Numbered(0, a),
    Numbered(1, b), ...``.

    Steps after it may permute items (a keyed step groups a batch by key, workers interleave);
    the contiguous numbers let the model step restore the exact order.

    >>> s = Sequencer()
    >>> s.push(LABEL, 5.0, 0, 0, "l0") + s.push(EVENT, 6.0, 0, 0, "e0") + s.flush()
    [Numbered(seq=0, item='l0'), Numbered(seq=1, item='e0')]
    """

    def __init__(
        self,
        max_wait_seconds: float | None = None,
        partitions: tuple[Iterable[int], Iterable[int]] | None = None,
    ):
        self.orderer = EventTimeOrderer(max_wait_seconds, partitions)
        self.next_seq = 0

    def _number(self, released: list[Sequenced]) -> list[Numbered]:
        out = []
        for item in released:
            out.append(Numbered(self.next_seq, item.payload))
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
    ) -> list[Numbered]:
        return self._number(self.orderer.push(Sequenced(ts, kind, partition, offset, payload), now))

    def on_timeout(self, now: float) -> list[Numbered]:
        return self._number(self.orderer.on_timeout(now))

    def deadline(self) -> float | None:
        return self.orderer.deadline()

    def flush(self) -> list[Numbered]:
        return self._number(self.orderer.flush())

    def map_payloads(self, fn: Callable[[Any], Any]) -> None:
        """See ``EventTimeOrderer.map_payloads``."""
        self.orderer.map_payloads(fn)
