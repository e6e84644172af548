"""Suspect labels: a binary champion nearly always wrong at a drift has met inverted labels (a
broken labelling job), not a new world. ``SuspectLabels`` (a part of ``ModelLifecycle``) rolls
back to the last healthy checkpoint and pauses learning until the labels agree again."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from riverrun.detectors import ConceptDriftDetector, DriftSignal
from riverrun.learners.lifecycle.checkpoints import Checkpoint
from riverrun.learners.lifecycle.decision import CHAMPION
from riverrun.learners.lifecycle.sequential import PairedTest
from riverrun.schemas import ModelEvent


class SuspectLabels:
    """The pause of ``ModelLifecycle`` (its state lives there: ``paused``, ``n_paused``)."""

    def _pause(self, signal: DriftSignal, accuracy: float, n: int, ts: datetime | None) -> list:
        """Labels look inverted: serve the last healthy checkpoint, stop learning until the
        labels agree with the champion again (``_learn_paused``)."""
        out: list[ModelEvent | Checkpoint] = []
        healthy = [f for f in self.checkpoints if f.healthy]
        if healthy and not self._capped():
            target = healthy[-1].checkpoint.id
            reason = (
                f"labels look corrupted: the champion got {1 - accuracy:.0%} of the last {n} labels "
                f"wrong; back to {target}, the last checkpoint taken while healthy"
            )
            compared = {CHAMPION: {"accuracy": accuracy, "labels": float(n)}}
            out += self._act(f"checkpoint:{target}", compared, signal, ts, "", reason=reason)
        self._diverge()  # the counterfactual learns the labels the champion will not
        self.challengers.pop("fresh", None)  # it learned the suspect labels
        self.paused = True
        self._paused_since = self.n_labels
        self._paused_ok.clear()
        out.append(
            self._event(
                "learning_paused",
                reason=(
                    f"{1 - accuracy:.0%} of the last {n} labels contradict the champion: labels "
                    f"are judged, not learned, and dead-lettered until at least "
                    f"{self.config.resume_accuracy:.0%} of {self.config.suspect_window} in a row agree"
                ),
                signal=signal,
                start=ts,
            )
        )
        return out

    def _learn_paused(self, event_id: str, x: dict, y: Any, ts: datetime | None) -> list:
        """While paused: judge the champion on the label, learn nothing; resume when the
        labels agree with it again. The counterfactual (no lifecycle) learns it."""
        ok = self.champion.judge(event_id, x).y_pred == y
        for challenger in self.challengers.values():
            challenger.forget(event_id)
        if (displaced := self._displaced) is not None and displaced is not self._counterfactual:
            displaced.forget(event_id)
        if self._counterfactual is not None:
            self._counterfactual.learner.learn(event_id, x, y)  # not scored: the labels are suspect
        self.n_paused += 1
        self._paused_ok.append(ok)
        window = self._paused_ok
        agree = len(window) == window.maxlen and sum(window) >= self.config.resume_accuracy * len(window)
        timeout = self.n_labels - self._paused_since >= self.config.max_pause
        if not (agree or timeout):
            return []
        self.paused = False
        self.concept = ConceptDriftDetector(self.config.concept_detector)  # errors since resuming
        self._cooldown_until = self.n_labels + self.config.cooldown
        if self._counterfactual is not None:  # judged again from here on, on labels believed
            self._counterfactual.test = PairedTest(self._shadow_alpha(), restart=True)
        return [
            self._event(
                "learning_resumed",
                reason=(
                    f"{sum(window)} of the last {len(window)} labels agree with the champion"
                    if agree
                    else f"labels still contradict the champion after {self.config.max_pause}: the "
                    "world itself may have inverted; learning again"
                )
                + f" ({self.n_paused} labels not learned so far)",
            )
        ]
