"""Two-sample tests of a sliding window against a frozen reference: KS (numbers), chi-square
(categories).

Both keep the first ``reference_size`` values as the reference and the last ``window_size`` as
the window (bounded memory), and test every ``check_every`` updates once the window is full
(first on the update that fills it). ``drift_detected`` is edge-triggered: True on the check where
the p-value falls below ``alpha``; it does not fire again until a check sees the p-value back at
``rearm_alpha`` or above (default ``10 * alpha``), so a lasting shift is one alarm and a p-value
hovering around ``alpha`` does not chatter. These tests have no warning level:
``warning_detected`` is always False.
"""

from __future__ import annotations

import math
import warnings
from collections import deque
from collections.abc import Hashable
from typing import Any

import numpy as np
from river.base import DriftAndWarningDetector
from scipy import special, stats

from riverrun.detectors.base import DriftSignal, as_number, check_alpha, check_positive_int, next_alarm


class _WindowTest(DriftAndWarningDetector):
    """Shared parameters, the p-value latch and the signal of the two tests."""

    _name = ""

    def __init__(
        self,
        reference_size: int,
        window_size: int,
        alpha: float,
        check_every: int,
        rearm_alpha: float | None,
    ):
        super().__init__()
        owner = type(self).__name__
        check_positive_int(
            owner, reference_size=reference_size, window_size=window_size, check_every=check_every
        )
        check_alpha(owner, alpha=alpha)
        if rearm_alpha is not None and not alpha <= rearm_alpha <= 1.0:
            raise ValueError(f"{owner}: need alpha <= rearm_alpha <= 1, got {alpha!r}, {rearm_alpha!r}")
        self.reference_size = reference_size
        self.window_size = window_size
        self.alpha = alpha
        self.check_every = check_every
        self.rearm_alpha = rearm_alpha
        self._reset()

    def _reset(self) -> None:
        super()._reset()
        self._n = 0
        self._until_check = 1
        self._latched: str | None = None
        self._p_value: float | None = None
        self._statistic: float | None = None

    def _tick(self, window_len: int) -> None:
        """Count one windowed value; run the test when one is due."""
        if window_len == self.window_size:
            self._until_check -= 1
            if self._until_check == 0:
                self._until_check = self.check_every
                statistic, p = self._test()
                self._statistic, self._p_value = statistic, p
                rearm = min(1.0, 10.0 * self.alpha) if self.rearm_alpha is None else self.rearm_alpha
                level = "drift" if p < self.alpha else None
                fired, self._latched = next_alarm(self._latched, level, hold=p < rearm)
                self._drift_detected = fired == "drift"

    def _test(self) -> tuple[float, float]:
        raise NotImplementedError

    @property
    def p_value(self) -> float | None:
        """The p-value of the last test (None before the first)."""
        return self._p_value

    @property
    def statistic(self) -> float | None:
        """The test statistic of the last test (None before the first)."""
        return self._statistic

    def signal(self, feature: str | None = None) -> DriftSignal | None:
        """The alarm raised by the last update, if any (statistic: the p-value)."""
        if not self._drift_detected:
            return None
        return DriftSignal(
            detector=self._name,
            level="drift",
            statistic=float(self._p_value if self._p_value is not None else 1.0),
            threshold=self.alpha,
            feature=feature,
            details={"test_statistic": float(self._statistic or 0.0), "n": self._n},
        )


class WindowedKS(_WindowTest):
    """Two-sample Kolmogorov-Smirnov test (``scipy.stats.ks_2samp``) of a numeric feature.

    Missing values (None, NaN) are skipped: they count towards nothing, not even ``check_every``
    (``n_missing`` says how many there were).

    >>> import random
    >>> rng = random.Random(1)
    >>> det = WindowedKS(reference_size=300, window_size=300, check_every=50)
    >>> for t in range(1500):
    ...     det.update(rng.gauss(0.0 if t < 900 else 0.6, 1.0))
    ...     if det.drift_detected:
    ...         print(t, det.p_value < det.alpha)
    1099 True
    """

    _name = "ks"

    def __init__(
        self,
        reference_size: int = 500,
        window_size: int = 500,
        alpha: float = 0.01,
        check_every: int = 100,
        rearm_alpha: float | None = None,
    ):
        super().__init__(reference_size, window_size, alpha, check_every, rearm_alpha)

    def _reset(self) -> None:
        super()._reset()
        self._reference: list[float] = []
        self._window: deque[float] = deque(maxlen=self.window_size)
        self._n_missing = 0

    def update(self, x: Any) -> None:
        """Add ``x`` (a real number; None or NaN is skipped)."""
        self._drift_detected = False
        v = as_number(x, "WindowedKS")
        if v is None:
            self._n_missing += 1
            return
        self._n += 1
        if len(self._reference) < self.reference_size:
            self._reference.append(v)
            return
        self._window.append(v)
        self._tick(len(self._window))

    def _test(self) -> tuple[float, float]:
        ref = np.fromiter(self._reference, dtype=float, count=len(self._reference))
        win = np.fromiter(self._window, dtype=float, count=len(self._window))
        with warnings.catch_warnings():  # "exact" may fall back to "asymp" with a RuntimeWarning
            warnings.simplefilter("ignore", RuntimeWarning)
            result = stats.ks_2samp(ref, win)
        return float(result.statistic), float(result.pvalue)

    @property
    def n_missing(self) -> int:
        return self._n_missing

    @property
    def reference(self) -> tuple[float, ...]:
        """The reference sample (complete once ``reference_size`` values were seen)."""
        return tuple(self._reference)

    @property
    def window(self) -> tuple[float, ...]:
        """The current window, oldest first."""
        return tuple(self._window)


class ChiSquare(_WindowTest):
    """Chi-square test of homogeneity of a categorical feature's frequencies.

    Any hashable value is a category; None and NaN are one "missing" category (None). The test is
    ``scipy.stats.chi2_contingency([reference counts, window counts])`` (with its default Yates
    correction when there are two categories) over the categories seen in the reference or the
    window, so a category unseen in the reference counts too; all-zero columns are dropped. With a
    single category the table has no degrees of freedom and p = 1.

    >>> import random
    >>> rng = random.Random(1)
    >>> det = ChiSquare(reference_size=500, window_size=500)
    >>> for t in range(2000):
    ...     weights = [5, 3, 2] if t < 1000 else [3, 3, 4]
    ...     det.update(rng.choices(["a", "b", "c"], weights)[0])
    ...     if det.drift_detected:
    ...         print(t)
    1199
    """

    _name = "chi2"

    def __init__(
        self,
        reference_size: int = 1000,
        window_size: int = 1000,
        alpha: float = 0.01,
        check_every: int = 100,
        rearm_alpha: float | None = None,
    ):
        super().__init__(reference_size, window_size, alpha, check_every, rearm_alpha)

    def _reset(self) -> None:
        super()._reset()
        self._ref_counts: dict[Hashable, int] = {}
        self._n_reference = 0
        self._counts: dict[Hashable, int] = {}
        self._window: deque[Hashable] = deque(maxlen=self.window_size)

    def update(self, x: Hashable) -> None:
        """Count the category ``x`` (None or NaN: the missing category)."""
        self._drift_detected = False
        key = None if x is None or (isinstance(x, float) and x != x) else x
        hash(key)  # an unhashable value fails here, before any state changes
        self._n += 1
        if self._n_reference < self.reference_size:
            self._ref_counts[key] = self._ref_counts.get(key, 0) + 1
            self._n_reference += 1
            return
        window, counts = self._window, self._counts
        if len(window) == self.window_size:
            old = window[0]  # append() below evicts it
            left = counts[old] - 1
            if left:
                counts[old] = left
            else:
                del counts[old]
        window.append(key)
        counts[key] = counts.get(key, 0) + 1
        self._tick(len(window))

    def _test(self) -> tuple[float, float]:
        ref, win = self._ref_counts, self._counts
        categories = [*ref, *(c for c in win if c not in ref)]
        table = [(ref.get(c, 0), win.get(c, 0)) for c in categories]
        return chi2_two_rows([col for col in table if col[0] or col[1]])

    @property
    def reference_counts(self) -> dict[Hashable, int]:
        """Count per category in the reference (a copy)."""
        return dict(self._ref_counts)

    @property
    def window_counts(self) -> dict[Hashable, int]:
        """Count per category in the window (a copy)."""
        return dict(self._counts)


def chi2_two_rows(columns: list[tuple[int, int]]) -> tuple[float, float]:
    """Chi-square test of independence of a 2 x k table given as k (row 0, row 1) columns: what
    ``scipy.stats.chi2_contingency`` returns (with Yates' correction at one degree of freedom),
    in plain Python: scipy's call costs about a millisecond, this a few microseconds.

    >>> chi2_two_rows([(30, 10), (20, 40)])
    (15.041666666666666, 0.00010516355403363098)
    """
    rows = (sum(a for a, _ in columns), sum(b for _, b in columns))
    total = rows[0] + rows[1]
    dof = len(columns) - 1
    if dof < 1 or not rows[0] or not rows[1]:
        return 0.0, 1.0
    statistic = 0.0
    for col in columns:
        col_total = col[0] + col[1]
        for observed, row in zip(col, rows, strict=True):
            expected = row * col_total / total
            diff = expected - observed
            if dof == 1:  # Yates: move each count half a unit towards its expectation
                diff = math.copysign(min(0.5, abs(diff)), diff) - diff
            statistic += diff * diff / expected
    return statistic, float(special.chdtrc(dof, statistic))
