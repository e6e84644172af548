"""``PairedTest``: is a candidate better than the champion, on the same labels? Anytime-valid.

Each label gives the two models' losses (0/1: wrong or right) on the same prediction moment.
The test bets against the null hypothesis "the candidate's loss is not below the champion's by
more than ``margin``" (on every label, given the past): its wealth is a mixture, over a grid of
bet sizes ``λ``, of the products ``Π (1 + λ (d_t - margin))`` where ``d_t`` is the champion's loss
minus the candidate's. Under the null each product is a non-negative supermartingale, and so is
their average; by Ville's inequality the wealth ever reaches ``1 / alpha`` with probability at
most ``alpha``. So the test may be looked at after every label and stopped at any time, and a
candidate that wins by luck is promoted with probability at most ``alpha``, however long it is
watched (a mixture sequential probability ratio test, by betting: Waudby-Smith & Ramdas 2023,
"Estimating means of bounded random variables by betting"; Shafer & Vovk 2019).

With ``restart=True`` the test is an e-detector (e-CUSUM; Shin, Ramdas & Rinaldo 2024, "E-detectors:
a nonparametric framework for sequential change detection"): each bet starts again from its
stake whenever it has lost everything it won, so a candidate that was worse for a while and then
became better is found as fast as one that was better from the start. Its guarantee is on time:
under the null, the first alarm comes after ``1 / alpha`` labels on average, at least.

Labels where both models are right (or both wrong) leave the wealth unchanged: a test costs
nothing on them, and its evidence grows only with the labels on which the two disagree.

>>> t = PairedTest(alpha=0.05)
>>> for _ in range(10):
...     t.update(1.0, 0.0)  # the champion wrong, the candidate right
>>> t.rejects
True
>>> t.evidence()["labels"], t.evidence()["mean_gain"]
(10.0, 1.0)
>>> even = PairedTest()
>>> for k in range(1000):
...     even.update(float(k % 2), float((k + 1) % 2))  # each wins half: no evidence
>>> even.rejects
False
"""

from __future__ import annotations

import math

LAMBDAS = (0.05, 0.1, 0.2, 0.4, 0.7)  # bet sizes mixed (equal weights)


def log_loss(proba: dict | None, y: object) -> float:
    """The log loss of served probabilities ``proba`` for label ``y`` (as River's, clipped at
    1e-15); 0 for a regressor (no probabilities).

    >>> round(log_loss({True: 0.8, False: 0.2}, True), 4)
    0.2231
    """
    if proba is None:
        return 0.0
    return -math.log(min(max(proba.get(y, 0.0), 1e-15), 1 - 1e-15))


class PairedTest:
    """Anytime-valid one-sided test that a candidate's mean loss is below the champion's by
    more than ``margin``, on paired per-label losses in [0, 1]; false alarm rate ``alpha``."""

    __slots__ = (
        "_log_wealth",
        "alpha",
        "candidate_log_loss",
        "candidate_losses",
        "champion_log_loss",
        "champion_losses",
        "margin",
        "n",
        "restart",
        "total",
        "unequal",
    )

    def __init__(self, alpha: float = 0.05, margin: float = 0.0, restart: bool = False):
        self.alpha = alpha
        self.margin = margin
        self.restart = restart
        self.n = 0
        self.total = 0.0  # sum of champion loss - candidate loss
        self.champion_losses = 0.0
        self.candidate_losses = 0.0
        self.unequal = 0  # labels on which the two losses differ
        self.champion_log_loss = 0.0  # sums, for the record and ``log_loss_not_worse``
        self.candidate_log_loss = 0.0
        self._log_wealth = [0.0] * len(LAMBDAS)

    def update(
        self,
        champion_loss: float,
        candidate_loss: float,
        champion_log: float = 0.0,
        candidate_log: float = 0.0,
    ) -> None:
        """One label: both 0/1 losses (tested) and both log losses (recorded)."""
        self.n += 1
        self.champion_losses += champion_loss
        self.candidate_losses += candidate_loss
        self.champion_log_loss += champion_log
        self.candidate_log_loss += candidate_log
        d = champion_loss - candidate_loss
        if d == 0.0:
            if self.margin == 0.0:
                return
        else:
            self.unequal += 1
        self.total += d
        d -= self.margin
        lw = self._log_wealth
        cap = 1.0 / (1.0 + self.margin)  # 1 + λ d > 0 for d >= -1 - margin
        restart = self.restart
        for k, lam in enumerate(LAMBDAS):
            lw[k] = (max(lw[k], 0.0) if restart else lw[k]) + math.log1p(min(lam, 0.99 * cap) * d)

    @property
    def e_value(self) -> float:
        """The wealth: the evidence against "the candidate is not better" (1: none)."""
        top = max(self._log_wealth)
        if top > 700:
            return math.inf
        return sum(math.exp(w) for w in self._log_wealth) / len(LAMBDAS)

    @property
    def rejects(self) -> bool:
        """The candidate is better, at error rate ``alpha``."""
        return max(self._log_wealth) >= math.log(1 / self.alpha) and self.e_value >= 1 / self.alpha

    def sign_test(self, z: float = 2.0) -> bool:
        """A fixed-horizon check, for the end of a watch: the candidate won ``z`` standard
        deviations more of the labels on which the two differ than chance would give."""
        return self.total > z * math.sqrt(self.unequal) if self.unequal else False

    def log_loss_not_worse(self) -> bool:
        """The candidate's log loss on the same labels is no higher than the champion's: a model
        that is right more often but confidently wrong when wrong is not a better model."""
        return self.candidate_log_loss <= self.champion_log_loss

    def mean_gain(self) -> float:
        """The candidate's mean loss below the champion's (accuracy points for 0/1 losses)."""
        return self.total / self.n if self.n else 0.0

    def evidence(self) -> dict[str, float]:
        """What the test saw: labels, the mean gain, the e-value and the level it must reach, and
        both accuracies (1 - mean loss: accuracies for 0/1 losses)."""
        n = self.n or 1
        return {
            "accuracy": round(1 - self.candidate_losses / n, 6),
            "champion_accuracy": round(1 - self.champion_losses / n, 6),
            "log_loss": round(self.candidate_log_loss / n, 6),
            "champion_log_loss": round(self.champion_log_loss / n, 6),
            "labels": float(self.n),
            "mean_gain": round(self.mean_gain(), 6),
            "e_value": round(min(self.e_value, 1e12), 3),
            "threshold": round(1 / self.alpha, 3),
        }
