"""Covariate shift: per-feature drift detectors on the feature dicts a model is served on.

A feature's detectors are created at its first non-missing value, by that value's type: numbers
get ``StreamingPSI`` and ``WindowedKS``, strings and booleans get ``ChiSquare``. From then on a
feature absent from ``x`` counts as missing, and a value of the other kind counts as missing for
numeric features (a string in a numeric feature lands in PSI's missing bin) and as a category for
categorical ones; ``n_mismatched`` counts them. At most ``max_features`` features are tracked;
values of further features are ignored and counted in ``n_ignored``. Features named in
``exclude`` are never tracked: counters and other features whose distribution moves by
construction (the default features' ``entity_event_count``) would alarm on every stream.
"""

from __future__ import annotations

import numbers
from bisect import bisect_right
from collections.abc import Iterable
from typing import Any

from river.base import DriftAndWarningDetector

from riverrun.detectors.base import DriftSignal, check_alpha, check_positive_int, is_missing
from riverrun.detectors.psi import StreamingPSI
from riverrun.detectors.twosample import ChiSquare, WindowedKS


def _is_number(v: Any) -> bool:
    return not isinstance(v, bool) and isinstance(v, numbers.Real)


class CovariateShiftMonitor(DriftAndWarningDetector):
    """PSI, KS and chi-square drift detection on every feature of ``x``.

    After ``update(x)``: ``signals`` are the alarms this update raised (``feature`` set; PSI may
    warn), ``drift_detected`` says whether any is a drift, ``warning_detected`` whether there are
    only warnings, and ``psi()`` gives the current PSI of each numeric feature whose window is
    full. ``update`` never modifies ``x``.

    >>> import random
    >>> rng = random.Random(7)
    >>> mon = CovariateShiftMonitor(reference_size=500, window_size=500)
    >>> for t in range(2000):
    ...     x = {"amount": rng.gauss(0.0 if t < 1200 else 1.0, 1.0), "country": rng.choice("ab")}
    ...     mon.update(x)
    ...     for s in mon.signals:
    ...         print(t, s.feature, s.detector, s.level)
    1399 amount psi warning
    1399 amount ks drift
    1499 amount psi drift
    >>> sorted(mon.psi())
    ['amount']

    A counter, left out (``exclude``): never tracked, never an alarm.

    >>> mon = CovariateShiftMonitor(reference_size=100, window_size=100, exclude=("n",))
    >>> for t in range(1000):
    ...     mon.update({"n": t, "amount": rng.gauss(0.0, 1.0)})
    >>> sorted(mon.features), mon.drift_detected
    (['amount'], False)
    """

    #: default for instances pickled before ``exclude`` existed
    exclude: frozenset[str] = frozenset()

    def __init__(
        self,
        reference_size: int = 1000,
        window_size: int = 1000,
        psi_warning: float = 0.1,
        psi_threshold: float = 0.2,
        ks_alpha: float | None = 0.01,
        chi2_alpha: float = 0.01,
        check_every: int = 100,
        max_features: int = 200,
        exclude: Iterable[str] = frozenset(),
    ):
        super().__init__()
        owner = "CovariateShiftMonitor"
        check_positive_int(
            owner,
            reference_size=reference_size,
            window_size=window_size,
            check_every=check_every,
            max_features=max_features,
        )
        if ks_alpha is not None:  # None: PSI alone on numeric features (KS costs ~7 µs/update)
            check_alpha(owner, ks_alpha=ks_alpha)
        check_alpha(owner, chi2_alpha=chi2_alpha)
        if not 0 <= psi_warning <= psi_threshold:
            raise ValueError(f"{owner}: need 0 <= psi_warning <= psi_threshold")
        self.reference_size = reference_size
        self.window_size = window_size
        self.psi_warning = psi_warning
        self.psi_threshold = psi_threshold
        self.ks_alpha = ks_alpha
        self.chi2_alpha = chi2_alpha
        self.check_every = check_every
        self.max_features = max_features
        self.exclude = frozenset(exclude)  # a set: River's clone reads a tuple as (class, params)
        self._reset()

    def _reset(self) -> None:
        super()._reset()
        # feature -> (numeric?, its detectors), in order of first sight
        self._features: dict[str, tuple[bool, tuple[Any, ...]]] = {}
        self._signals: list[DriftSignal] = []
        self._n = 0
        self._n_ignored = 0
        self._n_mismatched: dict[str, int] = {}

    def _new_detectors(self, numeric: bool) -> tuple[Any, ...]:
        if numeric:
            psi = StreamingPSI(
                reference_size=self.reference_size,
                window_size=self.window_size,
                warning=self.psi_warning,
                threshold=self.psi_threshold,
                check_every=self.check_every,
            )
            if self.ks_alpha is None:
                return (psi,)
            ks = WindowedKS(
                reference_size=self.reference_size,
                window_size=self.window_size,
                alpha=self.ks_alpha,
                check_every=self.check_every,
            )
            return (psi, ks)
        return (
            ChiSquare(
                reference_size=self.reference_size,
                window_size=self.window_size,
                alpha=self.chi2_alpha,
                check_every=self.check_every,
            ),
        )

    def update(self, x: dict) -> None:
        """Update every tracked feature with its value in ``x`` (absent: missing)."""
        self._n += 1
        signals: list[DriftSignal] = []
        features = self._features
        present = 0  # tracked features with a value in x: all of x's keys, when it equals len(x)
        for name, (numeric, detectors) in features.items():
            v = x.get(name)
            if v is None:
                pass
            elif numeric and type(v) is float:  # the common case, checked first
                present += 1
                psi = detectors[0]
                edges = psi._edges
                if edges is not None and v == v:
                    # StreamingPSI.update for a number once the bins are frozen, inlined (a call
                    # per feature was most of the cost); tests pin equality with StreamingPSI.
                    psi._drift_detected = psi._warning_detected = False
                    psi._n += 1
                    b = bisect_right(edges, v)
                    window, counts, size = psi._window, psi._counts, psi.window_size
                    full = len(window) == size
                    if full:
                        counts[window[0]] -= 1  # append() below evicts it
                    window.append(b)
                    counts[b] += 1
                    if full or len(window) == size:
                        psi._until_check -= 1
                        if psi._until_check == 0:
                            psi._until_check = psi.check_every
                            psi._check()
                            if psi._drift_detected or psi._warning_detected:
                                signals.append(psi.signal(feature=name))
                    if len(detectors) == 1:
                        continue
                    detectors = detectors[1:]  # KS, when on
            else:
                present += 1
                if _is_number(v) != numeric and not is_missing(v):
                    self._n_mismatched[name] = self._n_mismatched.get(name, 0) + 1
                    if numeric:
                        v = None
            for det in detectors:
                det.update(v)
                if det._drift_detected or det._warning_detected:
                    signals.append(det.signal(feature=name))
        for name in self.exclude:
            if name in x:
                present += 1
        if present < len(x):  # features not tracked yet
            for name, v in x.items():
                if name in features or is_missing(v) or name in self.exclude:
                    continue
                if len(features) >= self.max_features:
                    self._n_ignored += 1
                    continue
                numeric = _is_number(v)
                features[name] = (numeric, self._new_detectors(numeric))
                for det in features[name][1]:
                    det.update(v)
        self._signals = signals
        if signals:
            self._drift_detected = any(s.level == "drift" for s in signals)
            self._warning_detected = not self._drift_detected
        else:
            self._drift_detected = self._warning_detected = False

    def leave_out(self, names: Iterable[str]) -> None:
        """Exclude ``names`` from now on: their detectors are dropped (for a monitor pickled
        before they were excluded)."""
        self.exclude = self.exclude | frozenset(names)
        for name in names:
            self._features.pop(name, None)

    @property
    def signals(self) -> list[DriftSignal]:
        """The alarms raised by the last update (a new list each update)."""
        return self._signals

    def signal(self) -> DriftSignal | None:
        """The first drift raised by the last update, else its first warning, else None."""
        for s in self._signals:
            if s.level == "drift":
                return s
        return self._signals[0] if self._signals else None

    def psi(self) -> dict[str, float]:
        """Current PSI of every numeric feature whose reference and window are complete."""
        out = {}
        for name, (numeric, detectors) in self._features.items():
            if numeric and (value := detectors[0].psi) is not None:
                out[name] = value
        return out

    @property
    def features(self) -> dict[str, str]:
        """Tracked features and their kind (``numeric`` or ``categorical``)."""
        return {
            name: "numeric" if numeric else "categorical" for name, (numeric, _) in self._features.items()
        }

    def detectors(self, feature: str) -> tuple[Any, ...]:
        """The detectors of ``feature`` (PSI and KS, or chi-square)."""
        return self._features[feature][1]

    @property
    def n_ignored(self) -> int:
        """Values of features beyond ``max_features``, ignored."""
        return self._n_ignored

    @property
    def n_mismatched(self) -> dict[str, int]:
        """Per feature, values of the other kind (numbers in categorical features, or the reverse)."""
        return dict(self._n_mismatched)
