"""Fixed-bucket histograms as plain data: picklable (they live in snapshotted state), cheap to
update (one bisect), and exported as Prometheus histograms by ``streams.flow.metrics``. Pure.

>>> h = Buckets((1.0, 10.0))
>>> for v in (0.5, 3.0, 30.0):
...     h.observe(v)
>>> h.cumulative(), h.count, h.sum
([1, 2, 3], 3, 33.5)
"""

from __future__ import annotations

from bisect import bisect_left

#: Label delay (event time between an event and its label): seconds to a week.
LABEL_DELAY_BOUNDS = (0.1, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0, 14_400.0, 86_400.0, 604_800.0)
#: Event -> published prediction latency (wall clock): a millisecond to a minute.
LATENCY_BOUNDS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 60.0)


class Buckets:
    """Counts of observations per upper bound (``le``), plus ``+Inf``, and their sum."""

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]):
        self.bounds = tuple(bounds)
        self.counts = [0] * (len(self.bounds) + 1)  # the last one is +Inf
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value

    @property
    def count(self) -> int:
        return sum(self.counts)

    def cumulative(self) -> list[int]:
        """Observations <= each bound, then the total (Prometheus ``_bucket`` values)."""
        out, total = [], 0
        for c in self.counts:
            total += c
            out.append(total)
        return out

    def copy(self) -> Buckets:
        other = Buckets(self.bounds)
        other.counts, other.sum = list(self.counts), self.sum
        return other

    def __getstate__(self):
        return (self.bounds, self.counts, self.sum)

    def __setstate__(self, state) -> None:
        self.bounds, self.counts, self.sum = state
