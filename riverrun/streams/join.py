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
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any


class LabelJoin:
    """Pending events (their features) and early labels, keyed by event id."""

    def __init__(self, ttl_seconds: float):
        self.ttl_seconds = ttl_seconds
        # event_id -> (expires_at, x), in arrival (= deadline) order
        self._pending: OrderedDict[str, tuple[float, dict]] = OrderedDict()
        # event_id -> (expires_at, y, ts)
        self._early: OrderedDict[str, tuple[float, Any, float]] = OrderedDict()
        self.n_joined = 0
        self.n_early_labels = 0
        self.n_expired_events = 0
        self.n_expired_labels = 0

    def is_pending(self, event_id: str) -> bool:
        return event_id in self._pending

    def add_event(self, event_id: str, ts: float, x: dict) -> None:
        """Remember the features of a served event until its label comes."""
        self._pending[event_id] = (ts + self.ttl_seconds, x)

    def take_early_label(self, event_id: str) -> tuple[Any, float] | None:
        """The (label, ts) that arrived before ``event_id``, if any (removed)."""
        early = self._early.pop(event_id, None)
        if early is None:
            return None
        self.n_joined += 1
        return early[1], early[2]

    def has_early_label(self, event_id: str) -> bool:
        return event_id in self._early

    def match_label(self, event_id: str, ts: float, y: Any = None) -> dict | None:
        """The features of the pending event (removed), or None: then the label waits as early."""
        pending = self._pending.pop(event_id, None)
        if pending is not None:
            self.n_joined += 1
            return pending[1]
        self._early[event_id] = (ts + self.ttl_seconds, y, ts)
        self.n_early_labels += 1
        return None

    def expire(self, now: float) -> list[str]:
        """Drop what waited past its TTL at event time ``now``; return the expired event ids."""
        expired = []
        pending = self._pending
        while pending:
            event_id, (expires, _) = next(iter(pending.items()))
            if expires >= now:
                break
            pending.popitem(last=False)
            expired.append(event_id)
        self.n_expired_events += len(expired)
        early = self._early
        while early and next(iter(early.values()))[0] < now:
            early.popitem(last=False)
            self.n_expired_labels += 1
        return expired

    @property
    def n_pending_events(self) -> int:
        return len(self._pending)

    @property
    def n_pending_labels(self) -> int:
        return len(self._early)
