"""Prequential metrics, cumulative and rolling, fed with the *served* prediction.

Classification metrics receive exactly what ``river.evaluate.progressive_val_score`` gives them
(the predicted class for accuracy, the probability dict for log loss), so the cumulative values
equal River's.

>>> board = Scoreboard(is_classifier=True, window_size=2)
>>> board.update(True, True, {True: 0.8, False: 0.2})
>>> board.update(False, True, {True: 0.6, False: 0.4})
>>> {k: round(v, 4) for k, v in board.get().items() if k.startswith("accuracy")}
{'accuracy': 0.5, 'accuracy_rolling': 0.5}

Regression: MAE, RMSE and R² (River's ``metrics.R2``: 0 until the second label), cumulative and
rolling; a scoreboard pickled before R² keeps its metrics.

>>> board = Scoreboard(is_classifier=False, window_size=2)
>>> for y, p in [(1.0, 1.5), (2.0, 2.0), (3.0, 2.5)]:
...     board.update(y, p, None)
>>> {k: round(v, 4) for k, v in board.get().items() if not k.endswith("rolling")}
{'mae': 0.3333, 'rmse': 0.4082, 'r2': 0.75}
"""

from __future__ import annotations

import math

from river import metrics, utils

from riverrun.learners.auc import ROCAUC
from riverrun.learners.rolling import RollingAccuracy, RollingLogLoss


class BinaryScores:
    """The six binary metrics of ``Scoreboard`` in one update: accuracy and log loss (equal to
    River's ``metrics.Accuracy`` and ``metrics.LogLoss``: the same float operations in the same
    order), ROC AUC, and their rolling versions. One call instead of six, one binning for both
    AUCs: about a third of the cost.

    >>> s = BinaryScores(window_size=2)
    >>> for y, p in [(True, 0.9), (False, 0.2), (True, 0.3)]:
    ...     s.update(y, p > 0.5, {True: p, False: 1 - p})
    >>> round(s.get()["accuracy"], 4), s.get()["accuracy_rolling"]
    (0.6667, 0.5)
    """

    def __init__(self, window_size: int):
        self.n = 0.0
        self.correct = 0.0
        self.log_loss = 0.0  # running mean, updated as river.stats.Mean updates
        self.auc = ROCAUC()
        self.auc_rolling = ROCAUC(window_size=window_size)
        self.accuracy_rolling = RollingAccuracy(window_size)
        self.log_loss_rolling = RollingLogLoss(window_size)

    def update(self, y_true, y_pred, proba: dict) -> None:
        self.n += 1.0
        hit = y_true == y_pred
        if hit:
            self.correct += 1.0
        p = proba.get(True, 0.0) if isinstance(proba, dict) else proba
        clamped = max(min(p, 1 - 1e-15), 1e-15)  # river.utils.math.clamp, as LogLoss clamps
        loss = -math.log(clamped) if y_true else -math.log(1 - clamped)
        self.log_loss += (1.0 / self.n) * (loss - self.log_loss)
        self.accuracy_rolling._add(1.0 if hit else 0.0)
        self.log_loss_rolling._add(loss)
        b = self.auc._bin(p)
        positive = y_true == self.auc.pos_val
        self.auc.add(b, positive)
        self.auc_rolling.add(b, positive)

    def get(self) -> dict[str, float]:
        return {
            "accuracy": self.correct / self.n if self.n else 0.0,
            "log_loss": self.log_loss,
            "roc_auc": self.auc.get(),
            "accuracy_rolling": self.accuracy_rolling.get(),
            "log_loss_rolling": self.log_loss_rolling.get(),
            "roc_auc_rolling": self.auc_rolling.get(),
        }


class Scoreboard:
    """The metrics of one model; the kind (binary, multiclass, regression) is set by the first label."""

    def __init__(self, is_classifier: bool, window_size: int = 1000):
        self.is_classifier = is_classifier
        self.window_size = window_size
        self._metrics: dict[str, object] | None = None
        self._proba_metrics: frozenset[str] = frozenset()
        self._binary: BinaryScores | None = None
        self.n = 0

    def _build(self, y_true) -> None:
        w = self.window_size
        if not self.is_classifier:
            self._metrics = {
                "mae": metrics.MAE(),
                "rmse": metrics.RMSE(),
                "r2": metrics.R2(),
                "mae_rolling": utils.Rolling(metrics.MAE, window_size=w),
                "rmse_rolling": utils.Rolling(metrics.RMSE, window_size=w),
                "r2_rolling": utils.Rolling(metrics.R2, window_size=w),
            }
            return
        if isinstance(y_true, bool):
            self._binary = BinaryScores(w)
            self._metrics = {}
            return
        self._metrics = {
            "accuracy": metrics.Accuracy(),
            "cross_entropy": metrics.CrossEntropy(),
            "accuracy_rolling": RollingAccuracy(w),
            "cross_entropy_rolling": utils.Rolling(metrics.CrossEntropy, window_size=w),
        }
        self._proba_metrics = frozenset({"cross_entropy", "cross_entropy_rolling"})

    def update(self, y_true, y_pred, proba: dict | None) -> None:
        """Score one served prediction against its label."""
        if self._metrics is None:
            self._build(y_true)
        self.n += 1
        binary = self._binary
        if binary is not None:
            binary.update(y_true, y_pred, proba if proba is not None else {})
            return
        for name, metric in self._metrics.items():
            metric.update(y_true, proba if name in self._proba_metrics else y_pred)

    def get(self) -> dict[str, float]:
        """Current value of every metric (empty before the first label)."""
        if self._metrics is None:
            return {}
        if self._binary is not None:
            return self._binary.get()
        return {name: float(metric.get()) for name, metric in self._metrics.items()}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self.__dict__.setdefault("_binary", None)  # state pickled before BinaryScores
