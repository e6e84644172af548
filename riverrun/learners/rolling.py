"""Lean rolling metrics over the last ``window_size`` labels.

River's ``utils.Rolling`` reverts a full metric per update, which costs more than a logistic
regression step; these keep a window of per-sample scores and a running sum (re-summed exactly
every ``window_size`` updates so float drift cannot accumulate).

>>> acc = RollingAccuracy(window_size=2)
>>> for y, p in [(True, True), (False, True), (True, True)]:
...     acc.update(y, p)
>>> acc.get()
0.5
"""

from __future__ import annotations

import math
from collections import deque


class _RollingMean:
    def __init__(self, window_size: int):
        self.window_size = window_size
        self._window: deque[float] = deque()
        self._sum = 0.0
        self._since_resum = 0

    def _add(self, value: float) -> None:
        window = self._window
        window.append(value)
        self._sum += value
        if len(window) > self.window_size:
            self._sum -= window.popleft()
        self._since_resum += 1
        if self._since_resum >= self.window_size:
            self._sum = math.fsum(window)
            self._since_resum = 0

    def get(self) -> float:
        return self._sum / len(self._window) if self._window else 0.0


class RollingAccuracy(_RollingMean):
    """Share of correct predictions in the window."""

    def update(self, y_true, y_pred) -> None:
        self._add(1.0 if y_true == y_pred else 0.0)


class RollingLogLoss(_RollingMean):
    """Binary log loss in the window, clipped as River's ``metrics.LogLoss`` clips."""

    def __init__(self, window_size: int, pos_val=True):
        super().__init__(window_size)
        self.pos_val = pos_val

    def update(self, y_true, y_pred: dict) -> None:
        p = y_pred.get(self.pos_val, 0.0)
        p = min(max(p, 1e-15), 1.0 - 1e-15)
        self._add(-math.log(p) if y_true == self.pos_val else -math.log(1.0 - p))
