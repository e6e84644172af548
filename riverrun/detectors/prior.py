"""Label-free (and label-only) drift: the label prior and the distribution of predictions.

``LabelShiftMonitor`` watches the labels: classes (bool, int, str) with a chi-square test,
regression targets (floats) with PSI. ``PredictionDriftMonitor`` watches the served probability
of the positive class with PSI. Both alarm, edge-triggered, like the detectors they wrap.
"""

from __future__ import annotations

from typing import Any, Literal

from river.base import DriftAndWarningDetector

from riverrun.detectors.base import DriftSignal, check_alpha, check_positive_int, is_missing
from riverrun.detectors.psi import StreamingPSI
from riverrun.detectors.twosample import ChiSquare


class LabelShiftMonitor(DriftAndWarningDetector):
    """Prior shift: has the label distribution changed since the first ``reference_size`` labels?

    ``kind="auto"`` decides at the first label: a float is a regression target (PSI, with
    ``psi_warning``/``psi_threshold``), anything else a class (chi-square at ``alpha``).

    >>> import random
    >>> rng = random.Random(3)
    >>> mon = LabelShiftMonitor(reference_size=500, window_size=500)
    >>> for t in range(2000):
    ...     mon.update(rng.random() < (0.3 if t < 1000 else 0.5))
    ...     if mon.drift_detected:
    ...         print(t, mon.signal().detector)
    1099 chi2
    """

    def __init__(
        self,
        reference_size: int = 1000,
        window_size: int = 1000,
        alpha: float = 0.01,
        check_every: int = 100,
        kind: Literal["auto", "classes", "numeric"] = "auto",
        psi_warning: float = 0.1,
        psi_threshold: float = 0.2,
    ):
        super().__init__()
        owner = "LabelShiftMonitor"
        check_positive_int(
            owner, reference_size=reference_size, window_size=window_size, check_every=check_every
        )
        check_alpha(owner, alpha=alpha)
        if kind not in ("auto", "classes", "numeric"):
            raise ValueError(f"{owner}: kind must be 'auto', 'classes' or 'numeric', got {kind!r}")
        self.reference_size = reference_size
        self.window_size = window_size
        self.alpha = alpha
        self.check_every = check_every
        self.kind = kind
        self.psi_warning = psi_warning
        self.psi_threshold = psi_threshold
        self._reset()

    def _reset(self) -> None:
        super()._reset()
        self._detector: StreamingPSI | ChiSquare | None = None
        if self.kind != "auto":
            self._detector = self._make(self.kind == "numeric")

    def _make(self, numeric: bool) -> StreamingPSI | ChiSquare:
        if numeric:
            return StreamingPSI(
                reference_size=self.reference_size,
                window_size=self.window_size,
                warning=self.psi_warning,
                threshold=self.psi_threshold,
                check_every=self.check_every,
            )
        return ChiSquare(
            reference_size=self.reference_size,
            window_size=self.window_size,
            alpha=self.alpha,
            check_every=self.check_every,
        )

    def update(self, y: Any) -> None:
        """Add one label (missing labels before the kind is known are skipped)."""
        if self._detector is None:
            if is_missing(y):
                return
            self._detector = self._make(isinstance(y, float))
        self._detector.update(y)
        self._drift_detected = self._detector.drift_detected
        self._warning_detected = self._detector.warning_detected

    @property
    def detector(self) -> StreamingPSI | ChiSquare | None:
        """The wrapped detector (None until the first label when ``kind="auto"``)."""
        return self._detector

    def signal(self) -> DriftSignal | None:
        """The alarm raised by the last update, if any."""
        return None if self._detector is None else self._detector.signal()


class PredictionDriftMonitor(StreamingPSI):
    """PSI of the served positive-class probability (one float per prediction; None is missing).

    The first ``warmup`` values are skipped before the reference starts: a fresh model's early
    predictions are not what it will predict once trained. Otherwise exactly ``StreamingPSI``.

    >>> import random
    >>> rng = random.Random(5)
    >>> mon = PredictionDriftMonitor(reference_size=500, window_size=500)
    >>> for t in range(2000):
    ...     mon.update(rng.betavariate(2, 5) if t < 1000 else rng.betavariate(4, 4))
    ...     if mon.drift_detected:
    ...         print(t, mon.signal().detector)
    1199 psi
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
        warmup: int = 0,
    ):
        if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 0:
            raise ValueError(f"PredictionDriftMonitor: warmup must be an integer >= 0, got {warmup!r}")
        self.warmup = warmup
        super().__init__(reference_size, window_size, n_bins, eps, warning, threshold, check_every)

    def _reset(self) -> None:
        super()._reset()
        self._skipped = 0

    def update(self, x: float | None) -> None:
        """Add the probability served for one prediction."""
        if self._skipped < self.warmup:
            self._skipped += 1
            return
        super().update(x)
