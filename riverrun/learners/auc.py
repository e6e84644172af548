"""ROC AUC that is exact enough and cheap per update, cumulative or over a window.

River's ``metrics.ROCAUC`` defaults to 10 thresholds, which is off by percent points, and its
cost per update grows with the thresholds. Here each score falls into one of ``n_bins`` bins
evenly spaced in logit space (fine near 0 and 1, where classifier scores crowd); an update is
O(1) and ``get()`` is one O(n_bins) pass. Pairs of a positive and a negative that share a bin
count as ties (1/2), exactly as equal scores do in the Mann-Whitney statistic, so the error is
at most half the share of such pairs; ``max_error()`` returns that bound.

>>> auc = ROCAUC()
>>> for y, p in [(True, 0.9), (False, 0.1), (True, 0.4), (False, 0.6)]:
...     auc.update(y, {True: p, False: 1 - p})
>>> auc.get()
0.75
"""

from __future__ import annotations

import math
from array import array
from collections import deque

import numpy as np

_LOGIT_LIMIT = 30.0  # |logit| of 1e-13; scores beyond fall into the end bins


class ROCAUC:
    """Binned ROC AUC for a binary target; ``window_size`` makes it rolling."""

    def __init__(self, n_bins: int = 16_384, window_size: int | None = None, pos_val=True):
        self.n_bins = n_bins
        self.window_size = window_size
        self.pos_val = pos_val
        self._reset()

    def _reset(self) -> None:
        # arrays of C integers: O(1) updates from Python, zero-copy numpy views for get()
        self._pos = array("q", bytes(8 * self.n_bins))
        self._neg = array("q", bytes(8 * self.n_bins))
        self._window: deque[tuple[int, bool]] | None = deque() if self.window_size is not None else None
        self._scale = self.n_bins / (2 * _LOGIT_LIMIT)

    def _bin(self, p: float) -> int:
        if p != p:  # NaN: no information, the middle bin
            p = 0.5
        if p <= 0.0:
            return 0
        if p >= 1.0:
            return self.n_bins - 1
        z = math.log(p / (1.0 - p))
        b = int((z + _LOGIT_LIMIT) * self._scale)
        return min(max(b, 0), self.n_bins - 1)

    def __getstate__(self) -> dict:
        # plain lists in pickles: checkpoints load with an allowlist of classes (no array)
        return {**self.__dict__, "_pos": self._pos.tolist(), "_neg": self._neg.tolist()}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._pos, self._neg = array("q", state["_pos"]), array("q", state["_neg"])

    def update(self, y_true, y_pred) -> None:
        """Add one labelled score; ``y_pred`` is a probability dict or the positive probability."""
        p = y_pred.get(self.pos_val, 0.0) if isinstance(y_pred, dict) else float(y_pred)
        self.add(self._bin(p), y_true == self.pos_val)

    def add(self, b: int, positive: bool) -> None:
        """Add one score already binned (``_bin``): for metrics sharing a binning."""
        if positive:
            self._pos[b] += 1
        else:
            self._neg[b] += 1
        if self._window is not None:
            self._window.append((b, positive))
            if len(self._window) > self.window_size:
                old_b, old_pos = self._window.popleft()
                if old_pos:
                    self._pos[old_b] -= 1
                else:
                    self._neg[old_b] -= 1

    def _pairs(self) -> tuple[float, float, float]:
        """(wins + ties/2, tied pairs, total pairs) over all positive-negative pairs."""
        pos = np.frombuffer(self._pos, dtype=np.int64).astype(float)
        neg = np.frombuffer(self._neg, dtype=np.int64).astype(float)
        neg_below = np.cumsum(neg) - neg  # negatives in the bins below each bin
        # elementwise products, not ``@``: a BLAS dot product wakes threads that then spin
        score = float((pos * (neg_below + 0.5 * neg)).sum())
        tied = float((pos * neg).sum())
        return score, tied, float(pos.sum() * neg.sum())

    def get(self) -> float:
        """The AUC; 0.0 until both classes have been seen (River's convention)."""
        score, _, total = self._pairs()
        return score / total if total else 0.0

    def max_error(self) -> float:
        """Upper bound of |get() - exact AUC|: half the share of pairs that share a bin."""
        _, tied, total = self._pairs()
        return 0.5 * tied / total if total else 0.0

    def __repr__(self) -> str:
        return f"ROCAUC: {self.get():.6f}"
