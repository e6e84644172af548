"""The event/label join with a time-to-live in event time. Pure.

An event waits for its label at most ``ttl_seconds`` of event time; a label that arrives before
its event (an *early* label) waits as long for the event. Expirations are counted, never silent.
Items come in event-time order (see ``ordering``), so both tables are kept in deadline order and
expiring is a pop from the front: memory is what is pending, nothing more.

>>> j = LabelJoin(ttl_seconds=10)
>>> j.add_event("e1", 0.0, {"x": 1})   # no early label
>>> j.match_label("e1", 5.0)            # the label finds the features served at prediction time
{'x': 1}
>>> j.add_event("e2", 6.0, {"x": 2})
>>> j.expire(17.0)                      # 17 > 6 + 10: e2's label never came
['e2']
>>> j.match_label("e3", 18.0) is None   # no event yet: kept as an early label
True
>>> j.n_expired_events, j.n_early_labels
(1, 1)
>>> j.was_expired("e2")                 # a label for e2 now comes too late
True
>>> j.expire(40.0), [lb[0] for lb in j.take_expired_labels()]   # e3 never came
([], ['e3'])

Labels never vanish silently: one whose event expired (``was_expired``) or whose event never
came (an expired early label, from ``take_expired_labels``) becomes a dead letter upstream.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from typing import Any

from riverrun.streams.core.buckets import LABEL_DELAY_BOUNDS, Buckets
from riverrun.streams.core.packing import FeaturePacker

#: How long an event waits for its label (and an early label for its event): one day of event
#: time, unless ``[flow] label_ttl_seconds`` says otherwise.
LABEL_TTL_SECONDS = 86_400.0


class LabelJoin:
    """Pending events (their features) and early labels, keyed by event id."""

    def __init__(self, ttl_seconds: float):
        self.ttl_seconds = ttl_seconds
        # event_id -> (expires_at, x packed), in arrival (= deadline) order
        self._pending: OrderedDict[str, tuple[float, tuple | dict]] = OrderedDict()
        self._packer = FeaturePacker()
        # event_id -> (expires_at, y, ts, partition, offset)
        self._early: OrderedDict[str, tuple] = OrderedDict()
        # event ids whose wait expired -> forget_at (one more TTL), so a late label is explained
        self._expired: OrderedDict[str, float] = OrderedDict()
        # early labels that expired since the last take: (event_id, y, ts, partition, offset)
        self._expired_labels: list[tuple] = []
        self.n_joined = 0
        self.n_early_labels = 0
        self.n_expired_events = 0
        self.n_expired_labels = 0
        self.label_delay = Buckets(LABEL_DELAY_BOUNDS)  # event time from event to its label
        # Nothing expires before this event time (the earliest deadline in the tables): most
        # calls of ``expire`` return at once.
        self.quiet_until = -math.inf

    def per_event_tables(self) -> tuple[dict, ...]:
        """The tables that grow with the events waiting (see ``ModelStep.per_event_tables``)."""
        return self._pending, self._early, self._expired

    def is_pending(self, event_id: str) -> bool:
        return event_id in self._pending

    def add_event(self, event_id: str, ts: float, x: dict) -> None:
        """Remember the features of a served event until its label comes."""
        deadline = ts + self.ttl_seconds
        self._pending[event_id] = (deadline, self._features_packer().pack(x))
        if deadline < self.quiet_until:
            self.quiet_until = deadline

    def take_early_label(self, event_id: str, event_ts: float | None = None) -> tuple[Any, float] | None:
        """The (label, ts) that arrived before ``event_id`` (at ``event_ts``), if any (removed)."""
        early = self._early.pop(event_id, None)
        if early is None:
            return None
        self.n_joined += 1
        if event_ts is not None:
            self._delays().observe(max(0.0, early[2] - event_ts))
        return early[1], early[2]

    def _features_packer(self) -> FeaturePacker:
        packer = getattr(self, "_packer", None)
        if packer is None:  # state pickled before packing: its entries are dicts, still read
            packer = self._packer = FeaturePacker()
        return packer

    def _delays(self) -> Buckets:
        delays = getattr(self, "label_delay", None)
        if delays is None:  # state pickled before the histogram existed
            delays = self.label_delay = Buckets(LABEL_DELAY_BOUNDS)
        return delays

    def has_early_label(self, event_id: str) -> bool:
        return event_id in self._early

    def was_expired(self, event_id: str) -> bool:
        """Whether ``event_id`` waited for its label past the TTL (within the last TTL)."""
        return event_id in getattr(self, "_expired", ())

    def take_expired_labels(self) -> list[tuple]:
        """The early labels that expired (no event came): (event_id, y, ts, partition, offset)."""
        taken = getattr(self, "_expired_labels", [])
        self._expired_labels = []
        return taken

    def match_label(
        self, event_id: str, ts: float, y: Any = None, partition: int = 0, offset: int = 0
    ) -> dict | None:
        """The features of the pending event (removed), or None: then the label waits as early."""
        pending = self._pending.pop(event_id, None)
        if pending is not None:
            self.n_joined += 1
            self._delays().observe(max(0.0, ts - (pending[0] - self.ttl_seconds)))
            return FeaturePacker.unpack(pending[1])
        deadline = ts + self.ttl_seconds
        self._early[event_id] = (deadline, y, ts, partition, offset)
        if deadline < self.quiet_until:
            self.quiet_until = deadline
        self.n_early_labels += 1
        return None

    def expire(self, now: float) -> list[str]:
        """Drop what waited past its TTL at event time ``now``; return the expired event ids."""
        if now <= getattr(self, "quiet_until", -math.inf):
            return []
        expired = []
        pending = self._pending
        while pending:
            event_id, (expires, _) = next(iter(pending.items()))
            if expires >= now:
                break
            pending.popitem(last=False)
            expired.append(event_id)
        self.n_expired_events += len(expired)
        if not hasattr(self, "_expired"):  # state pickled before these tables existed
            self._expired, self._expired_labels = OrderedDict(), []
        gone = self._expired
        for event_id in expired:
            gone[event_id] = now + self.ttl_seconds
        while gone and next(iter(gone.values())) < now:
            gone.popitem(last=False)
        early = self._early
        while early and next(iter(early.values()))[0] < now:
            event_id, entry = early.popitem(last=False)
            self.n_expired_labels += 1
            self._expired_labels.append((event_id, *entry[1:]))
        # the earliest deadline left (tables are in deadline order: their first entries)
        self.quiet_until = min(
            next(iter(pending.values()))[0] if pending else math.inf,
            next(iter(gone.values())) if gone else math.inf,
            next(iter(early.values()))[0] if early else math.inf,
        )
        return expired

    @property
    def n_pending_events(self) -> int:
        return len(self._pending)

    @property
    def n_pending_labels(self) -> int:
        return len(self._early)
