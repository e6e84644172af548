"""``OnlineLearner``: predict now, learn when the label arrives, score what was served.

It reproduces ``river.evaluate.progressive_val_score(moment=, delay=)``: the metric receives the
prediction made when the event was served and ``learn_one`` receives the features the model saw
then. Pure: no Kafka, no Bytewax, no clocks.

>>> from river import datasets
>>> learner = OnlineLearner("lr", "lr")
>>> stream = list(datasets.Phishing())[:3]
>>> served = [learner.predict(str(i), x) for i, (x, _) in enumerate(stream)]
>>> served[0].proba
{False: 0.5, True: 0.5}
>>> for i, (x, y) in enumerate(stream):
...     scored = learner.learn(str(i), x, y)  # the prediction that was scored
>>> learner.n_learned, learner.n_pending
(3, 0)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from river import base

from riverrun.learners.recipes import build_model
from riverrun.learners.scoring import Scoreboard


def label_kind(y: Any) -> str:
    """``bool``, ``number`` or ``str``: labels of one model must keep one kind."""
    if isinstance(y, bool):
        return "bool"
    if isinstance(y, int | float):
        return "number"
    return type(y).__name__


@dataclass(frozen=True, slots=True)
class Served:
    """A prediction as served: the class (or value) and, for classifiers, the probabilities."""

    y_pred: Any
    proba: dict | None


class OnlineLearner:
    """One model's predict/learn loop with prequential metrics.

    ``recipe`` names the model (see ``riverrun.learners.recipes``); ``window_size`` is the length
    of the rolling metrics.
    """

    def __init__(self, name: str, recipe: str, window_size: int = 1000, version: int = 1):
        self.name = name
        self.recipe = recipe
        self.window_size = window_size
        self.version = version
        self.model = build_model(recipe)
        self.is_classifier = isinstance(self.model, base.Classifier)
        self.scoreboard = Scoreboard(self.is_classifier, window_size)
        self._served: dict[str, Served] = {}
        self.n_predicted = 0
        self.n_learned = 0
        self.n_unserved = 0  # labels whose prediction had not been served
        self.label_kind: str | None = None  # set by the first label

    def served_table(self) -> dict[str, Served]:
        """The predictions served and not yet learned, by event id (grows with pending labels)."""
        return self._served

    def _predict(self, x: dict) -> Served:
        if self.is_classifier:
            proba = self.model.predict_proba_one(x)
            y_pred = max(proba, key=proba.get) if proba else None
            return Served(y_pred, proba)
        return Served(self.model.predict_one(x), None)

    def predict(self, event_id: str, x: dict) -> Served:
        """Predict for ``x``, remember what was served under ``event_id``, return it."""
        served = self._predict(x)
        self._served[event_id] = served
        self.n_predicted += 1
        return served

    def learn(self, event_id: str, x: dict, y: Any) -> Served:
        """Score the prediction served for ``event_id`` against ``y``, then learn from ``(x, y)``.
        Returns the prediction that was scored.

        A label whose prediction was never served is predicted first, then learned (and that
        prediction is the one returned). A label of
        another kind than the first one (``True`` then ``"yes"``) raises ``TypeError`` before the
        model is touched.
        """
        kind = label_kind(y)
        if self.label_kind is None:
            self.label_kind = kind
        elif kind != self.label_kind:
            raise TypeError(f"label {y!r} is a {kind}, but this model learns {self.label_kind} labels")
        served = self._served.pop(event_id, None)
        if served is None:
            self.n_unserved += 1
            served = self._predict(x)
        # As progressive_val_score: an empty prediction (a tree before its first leaf) is not scored.
        if served.y_pred is not None and served.proba != {}:
            self.scoreboard.update(y, served.y_pred, served.proba)
        self.model.learn_one(x, y)
        self.n_learned += 1
        return served

    def judge(self, event_id: str, x: dict) -> Served:
        """The prediction served for ``event_id`` (or one made now), for a label that will not
        be learned nor scored (learning paused)."""
        served = self._served.pop(event_id, None)
        return self._predict(x) if served is None else served

    def forget(self, event_id: str) -> None:
        """Drop the served prediction of an event whose label will never come (TTL expired)."""
        self._served.pop(event_id, None)

    @property
    def n_pending(self) -> int:
        """Served predictions still waiting for their label."""
        return len(self._served)

    def metrics(self) -> dict[str, float]:
        """Current prequential metrics."""
        return self.scoreboard.get()
