"""Prequential metrics, cumulative and rolling, fed with the *served* prediction.

Classification metrics receive exactly what ``river.evaluate.progressive_val_score`` gives them
(the predicted class for accuracy, the probability dict for log loss), so the cumulative values
equal River's.

>>> board = Scoreboard(is_classifier=True, window_size=2)
>>> board.update(True, True, {True: 0.8, False: 0.2})
>>> board.update(False, True, {True: 0.6, False: 0.4})
>>> {k: round(v, 4) for k, v in board.get().items() if k.startswith("accuracy")}
{'accuracy': 0.5, 'accuracy_rolling': 0.5}
"""

from __future__ import annotations

from river import metrics, utils

from riverrun.learners.auc import ROCAUC
from riverrun.learners.rolling import RollingAccuracy, RollingLogLoss


class Scoreboard:
    """The metrics of one model; the kind (binary, multiclass, regression) is set by the first label."""

    def __init__(self, is_classifier: bool, window_size: int = 1000):
        self.is_classifier = is_classifier
        self.window_size = window_size
        self._metrics: dict[str, object] | None = None
        self._proba_metrics: frozenset[str] = frozenset()
        self.n = 0

    def _build(self, y_true) -> None:
        w = self.window_size
        if not self.is_classifier:
            self._metrics = {
                "mae": metrics.MAE(),
                "rmse": metrics.RMSE(),
                "mae_rolling": utils.Rolling(metrics.MAE, window_size=w),
                "rmse_rolling": utils.Rolling(metrics.RMSE, window_size=w),
            }
            return
        if isinstance(y_true, bool):
            self._metrics = {
                "accuracy": metrics.Accuracy(),
                "log_loss": metrics.LogLoss(),
                "roc_auc": ROCAUC(),
                "accuracy_rolling": RollingAccuracy(w),
                "log_loss_rolling": RollingLogLoss(w),
                "roc_auc_rolling": ROCAUC(window_size=w),
            }
            self._proba_metrics = frozenset({"log_loss", "roc_auc", "log_loss_rolling", "roc_auc_rolling"})
        else:
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
        for name, metric in self._metrics.items():
            metric.update(y_true, proba if name in self._proba_metrics else y_pred)

    def get(self) -> dict[str, float]:
        """Current value of every metric (empty before the first label)."""
        if self._metrics is None:
            return {}
        return {name: float(metric.get()) for name, metric in self._metrics.items()}
