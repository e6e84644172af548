"""``PairedDecision``: the decision rule of the lifecycle, one object with a small interface.

What it sees: for each label, the 0/1 loss and the log loss of the champion and of every
candidate (challengers, checkpoints) on that same label (``see``). What it decides
(``decide``): the candidate that replaces the champion, when a ``PairedTest`` finds it more
accurate by more than ``margin`` at error rate ``alpha`` and its log loss on those labels is no
worse; ``"keep"`` when the window is over and none was; ``None`` meanwhile. Each
verdict carries what every test saw (labels, mean gain, e-value, threshold), for the event's
evidence. Swappable: ``ModelLifecycle`` only calls ``start``/``see``/``decide``.

>>> rule = PairedDecision(alpha=0.05, margin=0.0, min_labels=5, max_labels=100)
>>> rule.start(["challenger:fresh", "checkpoint:ckpt-1"])
>>> for _ in range(10):
...     rule.see({"champion": (1.0, 2.3), "challenger:fresh": (0.0, 0.1), "checkpoint:ckpt-1": (1.0, 2.3)})
>>> verdict = rule.decide()
>>> verdict.choice, verdict.evidence["challenger:fresh"]["mean_gain"]
('challenger:fresh', 1.0)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from river import base, compose

from riverrun.learners.lifecycle.sequential import PairedTest

CHAMPION = "champion"


def adapts_by_itself(model: Any) -> bool:
    """A model that watches its own errors and adapts (HAT, ARF, ADWIN bagging or boosting, SRP:
    any holding a drift detector), alone or at the end of a pipeline. Its dips after a change
    are its adaptation: a checkpoint that beats it for a while is no reason to roll it back.

    >>> from river import linear_model, tree
    >>> adapts_by_itself(tree.HoeffdingAdaptiveTreeClassifier())
    True
    >>> adapts_by_itself(linear_model.LogisticRegression())
    False
    """
    if isinstance(model, compose.Pipeline):
        model = list(model.steps.values())[-1]
    for value in vars(model).values():
        if isinstance(value, base.DriftDetector) or (
            isinstance(value, list) and value and isinstance(value[0], base.DriftDetector)
        ):
            return True
    return False


@dataclass
class Verdict:
    """``choice``: a candidate's name, or ``"keep"``; ``evidence``: each test's, by candidate."""

    choice: str
    evidence: dict[str, dict[str, float]] = field(default_factory=dict)


class PairedDecision:
    """Candidates against the champion, by anytime-valid paired tests on per-label losses."""

    def __init__(self, alpha: float = 0.05, margin: float = 0.0, min_labels: int = 1, max_labels: int = 300):
        self.alpha = alpha
        self.margin = margin
        self.min_labels = min_labels
        self.max_labels = max_labels
        self.tests: dict[str, PairedTest] = {}
        self.labels = 0

    def start(self, candidates: list[str]) -> None:
        self.tests = {name: PairedTest(self.alpha, self.margin) for name in candidates}
        self.labels = 0

    def add(self, name: str, test: PairedTest | None = None) -> None:
        """A candidate that joins now (scored from now, or with its own running ``test``)."""
        self.tests[name] = test or PairedTest(self.alpha, self.margin)

    def drop(self, name: str) -> None:
        self.tests.pop(name, None)

    def see(self, losses: dict[str, tuple[float, float]]) -> None:
        """One label: the champion's (0/1 loss, log loss) and those of the candidates scored on it."""
        self.labels += 1
        champion, champion_log = losses[CHAMPION]
        for name, test in self.tests.items():
            loss = losses.get(name)
            if loss is not None:
                test.update(champion, loss[0], champion_log, loss[1])

    def evidence(self) -> dict[str, dict[str, float]]:
        return {name: test.evidence() for name, test in self.tests.items()}

    def decide(self) -> Verdict | None:
        """The best candidate the tests found better, ``keep`` after ``max_labels``, or None."""
        winners = [
            (t.e_value, n)
            for n, t in self.tests.items()
            if t.n >= self.min_labels and t.rejects and t.log_loss_not_worse()
        ]
        if winners:
            return Verdict(max(winners)[1], self.evidence())
        if self.labels >= self.max_labels:
            return Verdict("keep", self.evidence())
        return None
