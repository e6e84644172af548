"""Population stability index of one numeric feature: frozen reference bins, sliding window.

Bins come from the reference's quantiles (``np.unique`` drops the duplicate edges of discrete
features), the end bins are open and one extra bin counts missing values (None, NaN). With
additive smoothing (``k`` bins, ``eps``)::

    e_i = (r_i + eps) / (R + k*eps)      a_i = (c_i + eps) / (C + k*eps)
    PSI = sum_i (a_i - e_i) * ln(a_i / e_i)

Every term is >= 0, so PSI >= 0; it is 0 exactly when the window's counts equal the reference's
(same totals), and finite even when all live values land in one bin. It is symmetric in the two
distributions (a Jeffreys divergence).

>>> psi_from_counts([50, 50, 0], [50, 50, 0])
0.0
>>> round(psi_from_counts([50, 50, 0], [90, 10, 0]), 4)
0.8489
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections import deque
from collections.abc import Sequence
from typing import Any

import numpy as np
from river.base import DriftAndWarningDetector

from riverrun.detectors.base import DriftSignal, as_number, check_positive_int, next_alarm


def psi_from_counts(reference: Sequence[int], window: Sequence[int], eps: float = 0.5) -> float:
    """PSI of two count vectors over the same bins, with additive smoothing ``eps``."""
    k = len(reference)
    if len(window) != k:
        raise ValueError(f"reference has {k} bins, window {len(window)}")
    dr = sum(reference) + k * eps
    dc = sum(window) + k * eps
    total = 0.0
    for r, c in zip(reference, window, strict=True):
        e = (r + eps) / dr
        a = (c + eps) / dc
        total += (a - e) * math.log(a / e)
    return total


class StreamingPSI(DriftAndWarningDetector):
    """PSI of a sliding window against a frozen reference, for one numeric feature.

    The first ``reference_size`` values are the reference; the bins are then frozen and the last
    ``window_size`` values are counted (O(log bins) per update: ``bisect`` on the edges). Once the
    window is full, PSI is checked every ``check_every`` updates (first on the update that fills
    it). Alarms are edge-triggered with hysteresis: ``drift_detected`` is True on the check where
    PSI reaches ``threshold`` from below, ``warning_detected`` where it enters
    [``warning``, ``threshold``) from below ``warning``; neither fires again until PSI has fallen
    below ``warning`` (a lasting shift is one alarm, and PSI hovering around a line does not
    chatter).

    With no drift PSI is about ``(k - 1) * (1/R + 1/C)`` (its chi-square approximation; ``R`` and
    ``C`` the reference and window sizes): 0.02 with the defaults, but 0.1 with windows of 200,
    where the usual 0.1/0.2 lines give false alarms. Keep the windows near 1000 or raise them.

    >>> import random
    >>> rng = random.Random(1)
    >>> det = StreamingPSI(reference_size=500, window_size=500)
    >>> for t in range(3000):
    ...     det.update(rng.gauss(0.0 if t < 1500 else 1.0, 1.0))
    ...     if det.drift_detected:
    ...         print(t, round(det.psi, 3))
    1799 0.368
    >>> det.signal() is None  # only on the update that fired
    True
    """

    def __init__(
        self,
        reference_size: int = 1000,
        window_size: int = 1000,
        n_bins: int = 10,
        eps: float = 0.5,
        warning: float = 0.1,
        threshold: float = 0.2,
        check_every: int = 100,
    ):
        super().__init__()
        check_positive_int(
            "StreamingPSI",
            reference_size=reference_size,
            window_size=window_size,
            n_bins=n_bins,
            check_every=check_every,
        )
        if not eps > 0:
            raise ValueError(f"StreamingPSI: eps must be > 0 (it keeps PSI finite), got {eps!r}")
        if not 0 <= warning <= threshold:
            raise ValueError(f"StreamingPSI: need 0 <= warning <= threshold, got {warning!r}, {threshold!r}")
        self.reference_size = reference_size
        self.window_size = window_size
        self.n_bins = n_bins
        self.eps = eps
        self.warning = warning
        self.threshold = threshold
        self.check_every = check_every
        self._reset()

    def _reset(self) -> None:
        super()._reset()
        self._reference: list[float | None] | None = []  # raw values until the bins freeze
        self._edges: list[float] | None = None
        self._missing = 0  # index of the missing-value bin, set at freeze
        self._ref_counts: list[int] = []
        self._counts: list[int] = []
        self._window: deque[int] = deque(maxlen=self.window_size)
        self._n = 0
        self._until_check = 1
        self._latched: str | None = None
        self._last: float | None = None  # PSI at the last check

    def update(self, x: Any) -> None:
        """Count ``x`` (a real number; None or NaN is missing).

        ``CovariateShiftMonitor.update`` inlines this for floats once the bins are frozen: change
        both together (tests/test_detectors.py pins their equality)."""
        self._drift_detected = self._warning_detected = False
        edges = self._edges
        if edges is None:
            self._reference.append(as_number(x, "StreamingPSI"))  # type: ignore[union-attr]
            self._n += 1
            if len(self._reference) >= self.reference_size:  # type: ignore[arg-type]
                self._freeze()
            return
        if x is None or x != x:
            b = self._missing
        else:
            try:
                b = bisect_right(edges, x)
            except TypeError:
                as_number(x, "StreamingPSI")  # raises with a clear message
                raise
        self._n += 1
        window, counts = self._window, self._counts
        if len(window) == self.window_size:
            counts[window[0]] -= 1  # append() below evicts it
        window.append(b)
        counts[b] += 1
        if len(window) == self.window_size:
            self._until_check -= 1
            if self._until_check == 0:
                self._until_check = self.check_every
                self._check()

    def _freeze(self) -> None:
        reference = self._reference or []
        values = [v for v in reference if v is not None]
        edges: list[float] = []
        if values and self.n_bins > 1:
            qs = np.quantile(np.asarray(values, dtype=float), np.linspace(0.0, 1.0, self.n_bins + 1)[1:-1])
            edges = [float(e) for e in np.unique(qs) if math.isfinite(e)]
        k = len(edges) + 2  # value bins + the missing bin
        self._missing = k - 1
        self._ref_counts = [0] * k
        for v in reference:
            self._ref_counts[self._missing if v is None else bisect_right(edges, v)] += 1
        self._counts = [0] * k
        self._edges = edges
        self._reference = None

    def _check(self) -> None:
        value = psi_from_counts(self._ref_counts, self._counts, self.eps)
        self._last = value
        level = "drift" if value >= self.threshold else "warning" if value >= self.warning else None
        fired, self._latched = next_alarm(self._latched, level, hold=value >= self.warning)
        self._drift_detected = fired == "drift"
        self._warning_detected = fired == "warning"

    @property
    def psi(self) -> float | None:
        """PSI of the current window; None until the reference is frozen and the window full."""
        if self._edges is None or len(self._window) < self.window_size:
            return None
        return psi_from_counts(self._ref_counts, self._counts, self.eps)

    @property
    def edges(self) -> tuple[float, ...] | None:
        """The frozen inner bin edges (None before the reference is complete)."""
        return None if self._edges is None else tuple(self._edges)

    @property
    def reference_counts(self) -> tuple[int, ...]:
        """Reference count per bin; the last bin is missing values."""
        return tuple(self._ref_counts)

    @property
    def window_counts(self) -> tuple[int, ...]:
        """Window count per bin; the last bin is missing values."""
        return tuple(self._counts)

    def signal(self, feature: str | None = None) -> DriftSignal | None:
        """The alarm raised by the last update, if any."""
        if not (self._drift_detected or self._warning_detected):
            return None
        drift = self._drift_detected
        return DriftSignal(
            detector="psi",
            level="drift" if drift else "warning",
            statistic=float(self._last or 0.0),
            threshold=self.threshold if drift else self.warning,
            feature=feature,
            details={"n": self._n, "bins": len(self._ref_counts), "window_size": self.window_size},
        )
