"""Concept drift on the served-prediction error stream (1 = error, 0 = correct, or a loss).

``ConceptDriftDetector`` wraps one of River's detectors behind a fixed name, so the lifecycle
config says ``"adwin"`` rather than a class path. (Import River's detectors by name:
``from river.drift import *`` raises ``AttributeError`` in River 0.26.1.)

- ``"adwin"``: ``river.drift.ADWIN`` (``delta=0.002``). ADWIN has no warning level, so a second
  ADWIN with a looser ``warning_delta`` (0.01; None turns it off) runs alongside: its alarm is the
  warning, and both restart on a drift. The second one tests every update (``warning_clock=1``;
  ADWIN's default ``clock=32`` tests every 32nd): with the same clock both test on the same
  updates and the looser one seldom fires first (11 of 40 seeded 0.1 -> 0.5 error streams),
  with ``clock=1`` it warned first in 40 of 40, about 25 updates ahead, and never before the
  change. It costs about 0.3 us per update more.
- ``"hddm_a"``: ``river.drift.binary.HDDMA``, errors in [0, 1], with its own warning zone
  (about 7 us per update against ADWIN's 1 us).
- ``"kswin"``: ``river.drift.KSWIN``, seeded (``seed=42`` unless given) for determinism; no
  warning. It runs a KS test on every update: about 0.3 ms per update.

``drift_detected`` and ``warning_detected`` are True only on the update that fires; a warning is
reported on the update that *enters* the warning zone (HDDM-A stays in it for many updates), and
never on an update that drifts. ADWIN is two-sided: it also fires when the error *falls* (a model
still learning, a problem that went away). ``rising`` tells the two apart: True when the error in
the window of the ADWIN that fired is above the mean error since the last drift (HDDM-A, one-sided
by default, and KSWIN always say True).
"""

from __future__ import annotations

import math
from typing import Any, Literal

from river import drift
from river.base import DriftAndWarningDetector
from river.drift import binary

from riverrun.detectors.base import DriftSignal

Method = Literal["adwin", "hddm_a", "kswin"]
_CLASSES = {"adwin": drift.ADWIN, "hddm_a": binary.HDDMA, "kswin": drift.KSWIN}
KSWIN_SEED = 42
_INF = math.inf


class ConceptDriftDetector(DriftAndWarningDetector):
    """Drift (and warnings) in the error stream of a served model.

    ``method`` is ``"adwin"``, ``"hddm_a"`` or ``"kswin"``; ``params`` go to River's class
    (plus ``warning_delta`` and ``warning_clock`` for ADWIN).

    >>> import random
    >>> rng = random.Random(42)
    >>> det = ConceptDriftDetector("adwin")
    >>> for t in range(2000):
    ...     alarm = det.update(rng.random() < (0.1 if t < 1000 else 0.5))  # True: drift or warning
    ...     if (s := det.signal()) is not None:
    ...         print(t, s.level, s.threshold, round(s.statistic, 2))
    1026 warning 0.01 0.12
    1055 drift 0.002 0.24
    """

    def __init__(self, method: Method = "adwin", **params: Any):
        super().__init__()
        if method not in _CLASSES:
            raise ValueError(f"unknown concept drift method {method!r}; choose one of {sorted(_CLASSES)}")
        if method == "kswin":
            params.setdefault("seed", KSWIN_SEED)
        self.method = method
        self.params = params
        self._reset()

    def _reset(self) -> None:
        super()._reset()
        params = dict(self.params)
        self._warning_delta: float | None = None
        self._warner: drift.ADWIN | None = None
        if self.method == "adwin":
            self._warning_delta = params.pop("warning_delta", 0.01)
            warning_clock = params.pop("warning_clock", 1)
        cls = _CLASSES[self.method]
        try:
            self._detector = cls(**params)
        except TypeError as exc:
            raise TypeError(
                f"ConceptDriftDetector({self.method!r}): bad parameters {params}: {exc}; "
                f"see river's {cls.__name__}"
            ) from None
        if self._warning_delta is not None:
            if not self._warning_delta > self._detector.delta:
                raise ValueError(
                    f"ConceptDriftDetector('adwin'): warning_delta ({self._warning_delta}) must be looser "
                    f"(larger) than delta ({self._detector.delta}), or None for no warnings"
                )
            self._warner = drift.ADWIN(**{**params, "delta": self._warning_delta, "clock": warning_clock})
        self._n = 0
        self._n_detections = 0
        self._n_warnings = 0
        self._in_warning = False  # HDDM-A's warning zone, to report entering it once
        self._sum = 0.0  # errors since the last drift (the estimate of HDDM-A and KSWIN)
        self._count = 0
        self.rising = True  # did the last alarm come from a rise of the error?

    def update(self, error: float) -> bool:
        """Add one error (1 = error, 0 = correct, or a finite loss; HDDM-A needs [0, 1]).
        Returns True when this update raised a drift or a warning."""
        if error is False:  # a served prediction that was right: the common case, no checks
            x = 0.0
        elif error is True:
            x = 1.0
        else:
            x = float(error)
            if not -_INF < x < _INF:  # NaN fails this too
                raise ValueError(f"ConceptDriftDetector: error must be finite, got {error!r}")
            if self.method == "hddm_a" and not 0.0 <= x <= 1.0:
                raise ValueError(f"ConceptDriftDetector('hddm_a'): error must be in [0, 1], got {error!r}")
        if self._drift_detected or self._warning_detected:  # the last update fired: restart
            self._restart()
        self._n += 1
        self._count += 1
        if x:
            self._sum += x
        warner = self._warner
        if warner is None:
            return self._update_other(x)
        # ADWIN and its warning ADWIN, the hot path: the body of river.drift.ADWIN.update
        # (0.26.1) inlined; tests/test_detectors.py pins equality with River's ADWIN.
        det = self._detector
        if det._helper.update(x):
            det._drift_detected = True
            warner._reset()  # both restart on the new concept
            self.rising = det.estimation > self._sum / self._count
            self._drift_detected = True
            self._n_detections += 1
            return True
        if warner._helper.update(x):
            warner._drift_detected = True
            self.rising = warner.estimation > self._sum / self._count
            self._warning_detected = True
            self._n_warnings += 1
            return True
        return False

    def _restart(self) -> None:
        """After an alarm: the errors since the last drift start again, and an ADWIN that fired
        restarts (as river.drift.ADWIN.update does); the alarm flags clear."""
        if self._drift_detected:
            self._sum, self._count = 0.0, 0
        if self._warner is not None:
            if self._detector._drift_detected:
                self._detector._reset()
            if self._warner._drift_detected:
                self._warner._reset()
        self._drift_detected = self._warning_detected = False

    def _update_other(self, x: float) -> bool:
        """HDDM-A or KSWIN (or ADWIN without warnings): River's ``update``, then the flags."""
        det = self._detector
        det.update(x)
        drifted = det.drift_detected
        warned = False
        if self.method == "kswin":
            det.p_value = float(det.p_value)  # a numpy scalar: keep the state free of numpy
        elif self.method == "hddm_a":
            zone = det.warning_detected
            warned = zone and not self._in_warning and not drifted
            self._in_warning = zone
        self._drift_detected, self._warning_detected = drifted, warned
        if drifted or warned:
            self._n_detections += drifted
            self._n_warnings += warned
            return True
        return False

    @property
    def estimation(self) -> float:
        """ADWIN: the mean error in its window; others: the mean error since the last drift."""
        if self.method == "adwin":
            return float(self._detector.estimation)
        return self._sum / self._count if self._count else 0.0

    def stats(self) -> dict[str, Any]:
        """What the detector knows now (numbers only)."""
        out: dict[str, Any] = {
            "n": self._n,
            "n_detections": self._n_detections,
            "n_warnings": self._n_warnings,
            "estimation": self.estimation,
        }
        det = self._detector
        if self.method == "adwin":
            width = int(det.width)  # River's ``variance`` is the window's sum of squared deviations
            out.update(width=width, variance=float(det.variance) / width if width else 0.0)
        elif self.method == "kswin":
            out.update(p_value=float(det.p_value), window=len(det.window))
        return out

    def signal(self) -> DriftSignal | None:
        """The alarm raised by the last update, if any."""
        if not (self._drift_detected or self._warning_detected):
            return None
        level = "drift" if self._drift_detected else "warning"
        det = self._detector
        if self.method == "adwin":  # the mean error in the window of the ADWIN that fired
            threshold = det.delta if level == "drift" else self._warning_delta
            fired = det if level == "drift" else self._warner
            statistic = fired.estimation  # type: ignore[union-attr]
        elif self.method == "hddm_a":
            threshold = det.drift_confidence if level == "drift" else det.warning_confidence
            statistic = self.estimation
        else:
            threshold, statistic = det.alpha, float(det.p_value)
        return DriftSignal(
            detector=self.method,
            level=level,
            statistic=float(statistic),
            threshold=float(threshold),  # type: ignore[arg-type]
            details={"n": self._n, "n_detections": self._n_detections},
        )
