"""Streaming features per entity, computed in event time. Pure: no Bytewax here.

``default`` adds, to the raw features of each event:

- ``entity_event_count``: events of this entity so far, this one included;
- ``entity_seconds_since_last``: event-time seconds since the entity's previous event
  (absent on its first event);
- ``<name>_mean_<w>s``: for each numeric feature, its mean over the entity's events in the last
  ``w`` seconds of event time, this one included.

``none`` passes the raw features through unchanged (the identity).

``entity_event_count`` only grows: its distribution shifts by construction, so the covariate
monitor leaves it out (``COUNTERS``, the default of ``PolicyConfig.covariate_exclude``); the
others are stationary when the stream is.

>>> from datetime import datetime, timezone
>>> from riverrun.schemas import Event
>>> t = lambda s: datetime.fromtimestamp(s, timezone.utc)
>>> state = EntityFeatures(window_seconds=60)
>>> state.transform(Event(event_id="a", entity="u", ts=t(0), features={"x": 1.0}))
{'x': 1.0, 'entity_event_count': 1, 'x_mean_60s': 1.0}
>>> state.transform(Event(event_id="b", entity="u", ts=t(30), features={"x": 3.0}))
{'x': 3.0, 'entity_event_count': 2, 'entity_seconds_since_last': 30.0, 'x_mean_60s': 2.0}
>>> state.transform(Event(event_id="c", entity="u", ts=t(100), features={"x": 5.0}))["x_mean_60s"]
5.0
"""

from __future__ import annotations

import math
from array import array
from typing import Literal

from riverrun.schemas import Event

FeatureMode = Literal["none", "default"]

#: Default features that only grow: left out of covariate-shift monitoring.
COUNTERS: tuple[str, ...] = ("entity_event_count",)


#: Interned tuples of numeric feature names and their rolling-mean names, shared by every entity
#: whose events carry the same numeric features (one copy per schema, not per entity).
_SCHEMAS: dict[tuple[str, ...], tuple[str, ...]] = {}
_MEAN_NAMES: dict[tuple[tuple[str, ...], float], tuple[str, ...]] = {}


def _schema(names: tuple[str, ...]) -> tuple[str, ...]:
    return _SCHEMAS.setdefault(names, names)


def _mean_names(names: tuple[str, ...], window_seconds: float) -> tuple[str, ...]:
    key = (names, window_seconds)
    out = _MEAN_NAMES.get(key)
    if out is None:
        suffix = f"_mean_{window_seconds:g}s"
        out = _MEAN_NAMES[key] = tuple(k + suffix for k in names)
    return out


class EntityFeatures:
    """The feature state of one entity (count, last time, a window of numeric values), small:
    an entity seen once keeps about 420 bytes (``python -m benchmarks.entity_state``).

    The window is a list of ``(ts, names, values)`` with ``names`` an interned tuple shared by
    every entity of the same schema and ``values`` a ``array('d')``; entries before ``_head``
    have left the window (the list is compacted once half of it is gone). The per-name sums
    exist only while the window holds two events or more: with one, the means are its values.
    """

    __slots__ = (
        "_head",
        "_since_resum",
        "_sums",
        "_window",
        "count",
        "last_ts",
        "ttl_seconds",
        "window_seconds",
    )

    def __init__(self, window_seconds: float = 300.0, ttl_seconds: float | None = None):
        self.window_seconds = window_seconds
        self.ttl_seconds = ttl_seconds  # configuration, not state: not in snapshots
        self.count = 0
        self.last_ts: float | None = None
        self._window: list[tuple[float, tuple[str, ...], array]] = []
        self._head = 0
        self._sums: dict[str, list[float]] | None = None  # name -> [sum, count] (2+ events)
        self._since_resum = 0

    def __getstate__(self) -> tuple:
        window = self._window[self._head :] if self._head else self._window
        return ("v2", self.window_seconds, self.count, self.last_ts, window, self._sums, self._since_resum)

    def __setstate__(self, state: tuple | dict) -> None:
        self._head = 0
        self.ttl_seconds = None  # the features step sets it from the configuration
        if isinstance(state, tuple) and state[0] == "v2":
            _, self.window_seconds, self.count, self.last_ts, window, self._sums, self._since_resum = state
            self._window = [(ts, _schema(names), values) for ts, names, values in window]
            return
        # pickled before 2026-12-08: a deque of (ts, {name: value}) and the sums of every window
        if isinstance(state, dict):  # before 2026-12: every slot by name
            keys = ("window_seconds", "count", "last_ts", "_window", "_sums", "_since_resum")
            state = tuple(state.get(k, 0) for k in keys)
        self.window_seconds, self.count, self.last_ts, window, sums, self._since_resum = state
        self._window = [(ts, _schema(tuple(x)), array("d", x.values())) for ts, x in window]
        self._sums = sums if len(self._window) > 1 else None

    def transform(self, event: Event) -> dict:
        """Update the state with ``event`` and return its feature vector. After more than
        ``ttl_seconds`` of event time without an event, the entity starts afresh, as a new one."""
        ts = event.ts.timestamp()
        if self.ttl_seconds is not None and self.last_ts is not None and ts - self.last_ts > self.ttl_seconds:
            self.__init__(self.window_seconds, self.ttl_seconds)  # a quiet entity is forgotten
        x = dict(event.features)
        self.count += 1
        x["entity_event_count"] = self.count
        if self.last_ts is not None:
            x["entity_seconds_since_last"] = ts - self.last_ts
        if self.last_ts is None or ts > self.last_ts:
            self.last_ts = ts

        numeric = {
            k: float(v)
            for k, v in event.features.items()
            if isinstance(v, int | float) and not isinstance(v, bool)
        }
        names = _schema(tuple(numeric))
        values = array("d", numeric.values())
        window = self._window
        horizon = ts - self.window_seconds
        if len(window) > self._head and window[-1][0] < horizon:
            window.clear()  # the whole window is older than the horizon (sparse entities)
            self._head = 0
        if len(window) == self._head:
            # Nothing else in the window: the means are this event's values, exactly.
            window.clear()
            self._head = 0
            window.append((ts, names, values))
            self._sums = None
            self._since_resum = 0
            means = numeric
        else:
            sums = self._sums
            if sums is None:  # the window's second event: sums of the first
                _, first_names, first_values = window[self._head]
                sums = self._sums = {k: [v, 1] for k, v in zip(first_names, first_values, strict=True)}
            window.append((ts, names, values))
            for k, v in numeric.items():
                acc = sums.get(k)
                if acc is None:
                    sums[k] = [v, 1]
                else:
                    acc[0] += v
                    acc[1] += 1
            head = self._head
            while head < len(window) and window[head][0] < horizon:
                _, old_names, old_values = window[head]
                head += 1
                for k, v in zip(old_names, old_values, strict=True):
                    acc = sums[k]
                    acc[0] -= v
                    acc[1] -= 1
                    if acc[1] == 0:
                        del sums[k]
            if head > 32 and head * 2 > len(window):
                del window[:head]
                head = 0
            self._head = head
            # Subtracting evicted values loses precision (1e17 + 1 - 1e17 == 0): re-sum the
            # window exactly once per window length of updates, O(1) amortized.
            self._since_resum += 1
            if self._since_resum >= len(window) - head:
                self._since_resum = 0
                sums = self._resum()
            means = {k: sums[k][0] / sums[k][1] for k in numeric}
        for name, k in zip(_mean_names(names, self.window_seconds), names, strict=True):
            x[name] = means[k]
        return x

    def _resum(self) -> dict[str, list[float]]:
        values: dict[str, list[float]] = {}
        for _, names, vs in self._window[self._head :]:
            for k, v in zip(names, vs, strict=True):
                values.setdefault(k, []).append(v)
        self._sums = {k: [math.fsum(vs), len(vs)] for k, vs in values.items()}
        return self._sums


def identity_features(event: Event) -> dict:
    """``features = none``: the raw features (a copy, so models never mutate the event)."""
    return dict(event.features)
