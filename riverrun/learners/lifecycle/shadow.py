"""Models kept in shadow after a decision, so that every decision can be undone and judged.

- The **displaced** model: after a promotion or a rollback the model that served until then
  keeps predicting and learning for ``probation`` labels; it comes back (``ModelLifecycle``
  reinstates it) as soon as a ``PairedTest`` finds it better than the new champion on the labels
  since, or at the end of the probation if it made fewer errors on them.
- The **counterfactual**: the champion as it would be with no lifecycle (the model of the
  recipe, learning every label). Until the first action it *is* the champion (nothing to run);
  from then on a copy learns in shadow, the lifecycle's regret against it is measured
  (``Regret``), and it is adopted when a test finds it better than the champion.

>>> from riverrun.learners.online import OnlineLearner
>>> shadow = Shadow.of(OnlineLearner("m", "lr"), since=0, alpha=0.05)
>>> shadow.predict("e1", {"x": 1.0})
>>> shadow.learn("e1", {"x": 1.0}, False, champion_ok=False)  # its 50:50 guess is False
True
>>> shadow.labels, shadow.errors, shadow.champion_errors
(1, 0, 1)
"""

from __future__ import annotations

from typing import Any

from riverrun.learners.lifecycle.sequential import PairedTest, log_loss
from riverrun.learners.online import OnlineLearner
from riverrun.learners.rebuild import rebuilt


class Shadow:
    """A model learning in shadow next to the champion, compared with it on the same labels."""

    def __init__(self, learner: OnlineLearner, since: int, alpha: float, reason: str = ""):
        self.learner = learner
        self.since = since  # the lifecycle's label count when it went into shadow
        self.reason = reason
        # rejects: the shadow model became better than the champion (an e-detector: evidence
        # against it before does not delay the alarm); ``alpha`` bounds the false alarms per label
        self.test = PairedTest(alpha, restart=True)
        # rejects: the champion is better than the shadow model since it went into shadow (what
        # retires a counterfactual that doing nothing has been shown worse than)
        self.behind = PairedTest(alpha)
        self.labels = 0
        self.errors = 0
        self.champion_errors = 0

    @classmethod
    def of(
        cls, champion: OnlineLearner, since: int, alpha: float, model: Any = None, reason: str = ""
    ) -> Shadow:
        """A shadow of ``champion``'s model (or of ``model``), with the predictions it served
        that still wait for their label: it is scored on those as the champion was."""
        learner = OnlineLearner(f"{champion.name}:shadow", champion.recipe, champion.window_size)
        learner.model = rebuilt(champion.model) if model is None else model
        learner.version = champion.version
        learner.label_kind = champion.label_kind
        learner._served = dict(champion.served_table())
        return cls(learner, since, alpha, reason)

    def predict(self, event_id: str, x: dict) -> None:
        self.learner.predict(event_id, x)

    def learn(self, event_id: str, x: dict, y: Any, champion_ok: bool, champion_log: float = 0.0) -> bool:
        """Score the shadow's served prediction, learn; returns whether it was right."""
        served = self.learner.learn(event_id, x, y)
        ok = served.y_pred == y
        self.labels += 1
        self.errors += not ok
        self.champion_errors += not champion_ok
        log = log_loss(served.proba, y)
        self.test.update(float(not champion_ok), float(not ok), champion_log, log)
        self.behind.update(float(not ok), float(not champion_ok), log, champion_log)
        return ok

    def forget(self, event_id: str) -> None:
        self.learner.forget(event_id)

    def evidence(self) -> dict[str, float]:
        return self.test.evidence()


class Regret:
    """The lifecycle's errors minus the counterfactual's, on the labels it learned since its
    first action (labels judged corrupted, while learning was paused, are not counted: the truth
    is unknown then); before it, the champion *is* the counterfactual. Over every label learned,
    that is the accuracy lost against doing nothing (``ModelLifecycle.regret``)."""

    __slots__ = ("excess", "labels")

    def __init__(self) -> None:
        self.labels = 0  # counted since the first action
        self.excess = 0  # served errors - counterfactual errors

    def add(self, served_ok: bool, counterfactual_ok: bool) -> None:
        self.labels += 1
        self.excess += counterfactual_ok - served_ok
