"""The model lifecycle, pure: champion, challengers, checkpoints, drift, rollback, promotion.

The champion serves. Challengers (other recipes, and a fresh model started at a drift warning)
see the same traffic in shadow, are scored on the same labels and never serve. Checkpoints are
frozen copies of the champion taken every ``checkpoint_every`` labels while healthy, before any
risky transition, on a covariate-shift alarm and on demand; the last ``keep_checkpoints`` stay in
memory and keep predicting (without learning) on every label, so they can be compared.

On concept drift (ADWIN by default, on the champion's served-prediction errors) the lifecycle
*evaluates*: for the next ``decision_window`` labels it scores every candidate (champion,
challengers, checkpoints) on the same labels, then acts on the evidence: roll back to a
checkpoint (the champion was damaged, e.g. by bad labels), promote a challenger (the world
changed), or keep. Every action has a cool-down and a cap per window, and is a ``ModelEvent``.
Covariate shift (PSI/KS/chi-square on the features), prior shift (labels) and prediction drift
only alert and checkpoint: label-free evidence never rolls back.

Everything here is deterministic given the stream, so a replay decides exactly as live did.

>>> from river import datasets
>>> lc = ModelLifecycle("m", "lr", PolicyConfig(checkpoint_every=100))
>>> events = []
>>> for i, (x, y) in enumerate(list(datasets.Phishing())[:250]):
...     _ = lc.predict(str(i), x)
...     events += lc.learn(str(i), x, y, ts=None)
>>> [e.action for e in events if isinstance(e, ModelEvent)]
['checkpoint', 'checkpoint']
"""

from __future__ import annotations

import math
import pickle
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from riverrun.detectors import (
    ConceptDriftDetector,
    CovariateShiftMonitor,
    DriftSignal,
    LabelShiftMonitor,
    PredictionDriftMonitor,
)
from riverrun.learners.online import OnlineLearner, Served
from riverrun.schemas import ModelEvent

CHAMPION = "champion"


@dataclass(frozen=True)
class PolicyConfig:
    """When to checkpoint and how to judge candidates. ``enabled=False`` is River alone."""

    enabled: bool = True
    challengers: tuple[str, ...] = ()  # recipes run in shadow
    fresh_challenger: bool = True  # start a fresh model of the champion's recipe at a warning
    concept_detector: str = "adwin"
    checkpoint_every: int = 2000  # labels, while healthy
    keep_checkpoints: int = 3
    decision_window: int = 300  # labels after a drift signal on which candidates are compared
    min_decision: int = 30  # ... or fewer, at least this many, when the evidence is clear:
    z: float = 3.0  # a gain of z standard errors
    min_improvement: float = 0.02  # accuracy a candidate must gain over the champion
    cooldown: int = 500  # labels after an action before the next decision
    max_actions: int = 3  # at most this many rollbacks/promotions ...
    action_window: int = 20_000  # ... per this many labels
    covariate: bool = True  # PSI/KS/chi-square on the features served on
    prior: bool = True  # label and prediction distributions
    reference_size: int = 500  # sampled values forming each monitor's reference
    monitor_window: int = 500  # sampled values in each monitor's sliding window
    monitor_every: int = 5  # distribution monitors see every n-th event/label (a sample)
    psi_warning: float = 0.1  # PSI conventions: < 0.1 stable, 0.1-0.2 moderate, > 0.2 shifted
    psi_threshold: float = 0.2
    ks_alpha: float | None = None  # KS on numeric features too (None: PSI alone, far cheaper)
    chi2_alpha: float = 0.01


@dataclass
class Checkpoint:
    """A frozen copy of the champion (pickle bytes) to persist; ``id`` is ``ckpt-<n>``."""

    model: str
    id: str
    version: int  # the serving version it was taken from
    recipe: str
    blob: bytes
    n_learned: int
    metrics: dict[str, float]
    reason: str
    event_time_end: datetime | None


@dataclass
class _Frozen:
    """A checkpoint kept in memory: it predicts on each label, never learns."""

    checkpoint: Checkpoint
    model: Any
    healthy: bool
    correct: deque = field(default_factory=deque)


@dataclass
class _Evaluation:
    """Candidates scored on the labels since a drift signal."""

    signal: DriftSignal
    start: datetime | None
    labels: int = 0
    correct: dict[str, int] = field(default_factory=dict)
    seen: dict[str, int] = field(default_factory=dict)


class ModelLifecycle:
    """Champion, challengers and checkpoints of one model, and the policy that acts on drift."""

    def __init__(self, name: str, recipe: str, config: PolicyConfig | None = None, window_size: int = 1000):
        self.name = name
        self.recipe = recipe
        self.config = config or PolicyConfig()
        self.champion = OnlineLearner(name, recipe, window_size)
        self.challengers: dict[str, OnlineLearner] = {
            r: OnlineLearner(f"{name}:{r}", r, window_size) for r in self.config.challengers
        }
        c = self.config
        self.concept = ConceptDriftDetector(c.concept_detector)
        self.covariate = (
            CovariateShiftMonitor(
                reference_size=c.reference_size,
                window_size=c.monitor_window,
                psi_warning=c.psi_warning,
                psi_threshold=c.psi_threshold,
                ks_alpha=c.ks_alpha,
                chi2_alpha=c.chi2_alpha,
            )
            if c.covariate
            else None
        )
        self.labels = (
            LabelShiftMonitor(reference_size=c.reference_size, window_size=c.monitor_window)
            if c.prior
            else None
        )
        self.predictions = (
            PredictionDriftMonitor(reference_size=c.reference_size, window_size=c.monitor_window)
            if c.prior
            else None
        )
        self.checkpoints: deque[_Frozen] = deque()
        self.n_checkpoints = 0
        self.n_labels = 0
        self._since_checkpoint = 0
        self._cooldown_until = 0
        self._actions: deque[int] = deque()  # label counts at which rollbacks/promotions happened
        self._evaluation: _Evaluation | None = None
        self._n_served = 0
        self._fresh_since = 0  # labels seen when the fresh challenger started
        self._pending_events: list[ModelEvent | Checkpoint] = []
        self.last_ts: datetime | None = None

    @property
    def version(self) -> int:
        """The serving version: 1, then +1 at every rollback or promotion."""
        return self.champion.version

    # -- serving -------------------------------------------------------------------------------

    def predict(self, event_id: str, x: dict, ts: datetime | None = None) -> Served:
        """The champion's prediction (served); challengers predict in shadow; the feature and
        prediction monitors see what was served on (their events: ``drain()``)."""
        served = self.champion.predict(event_id, x)
        if not self.config.enabled:
            return served
        if ts is not None:
            self.last_ts = ts
        for challenger in self.challengers.values():
            challenger.predict(event_id, x)
        self._n_served += 1
        if self._n_served % self.config.monitor_every:
            return served
        if self.covariate is not None:
            self.covariate.update(x)
            if self.covariate.drift_detected:  # one alert (and checkpoint) per update
                self._alert("covariate_shift", self.covariate.signal(), checkpoint=True)
        if self.predictions is not None and served.proba:
            self.predictions.update(served.proba.get(True, 0.0))
            if self.predictions.drift_detected:
                self._alert("prediction_drift", self.predictions.signal())
        return served

    def drain(self) -> list[ModelEvent | Checkpoint]:
        """Events and checkpoints raised while serving (label-free alerts)."""
        out, self._pending_events = self._pending_events, []
        return out

    def forget(self, event_id: str) -> None:
        self.champion.forget(event_id)
        for challenger in self.challengers.values():
            challenger.forget(event_id)

    # -- learning and deciding -----------------------------------------------------------------

    def learn(
        self, event_id: str, x: dict, y: Any, ts: datetime | None, position: dict[str, int] | None = None
    ) -> list[ModelEvent | Checkpoint]:
        """Score the served predictions, learn, update detectors, maybe act. Returns the
        ``ModelEvent``s and ``Checkpoint``s this label caused (to publish and persist)."""
        served = self.champion._served.get(event_id)
        self.champion.learn(event_id, x, y)
        if not self.config.enabled:
            return []
        self.n_labels += 1
        self.last_ts = ts
        self._position = position or {}
        out = self.drain() if self._pending_events else []
        # A label never served is predicted-then-learned: score what would have been served.
        champion_ok = self.champion.model.predict_one(x) == y if served is None else served.y_pred == y

        shadow: dict[str, bool] | None = None
        if self.challengers:
            shadow = {CHAMPION: champion_ok}
            for recipe, challenger in self.challengers.items():
                c_served = challenger._served.get(event_id)
                challenger.learn(event_id, x, y)
                shadow[f"challenger:{recipe}"] = c_served is not None and c_served.y_pred == y
        if self.labels is not None and self.n_labels % self.config.monitor_every == 0:
            self.labels.update(y)
            if self.labels.drift_detected:
                self._alert("prior_shift", self.labels.signal(), checkpoint=True, out=out)

        self.concept.update(0.0 if champion_ok else 1.0)
        cooling = self.n_labels < self._cooldown_until
        if self.concept.warning_detected and self.config.fresh_challenger:
            self._start_fresh_challenger(out)
        if self.concept.drift_detected and self._evaluation is None and not cooling:
            signal = self.concept.signal()
            out.append(self._event("concept_drift", reason="error rate changed", signal=signal))
            if self.config.fresh_challenger:
                self._start_fresh_challenger(out)
            self._evaluation = _Evaluation(signal, ts)

        if self._evaluation is not None:
            ev = self._evaluation
            if shadow is None:
                shadow = {CHAMPION: champion_ok}
            for frozen in self.checkpoints:  # frozen checkpoints only matter while judging
                shadow[f"checkpoint:{frozen.checkpoint.id}"] = frozen.model.predict_one(x) == y
            ev.labels += 1
            for name, ok in shadow.items():
                ev.correct[name] = ev.correct.get(name, 0) + ok
                ev.seen[name] = ev.seen.get(name, 0) + 1
            if ev.labels >= self.config.decision_window or self._decisive(ev):
                out += self._decide(ev)
                self._evaluation = None
        else:
            if "fresh" in self.challengers and (
                self.n_labels - self._fresh_since > self.config.decision_window
            ):
                del self.challengers["fresh"]  # a warning no drift followed: stop paying for it
            self._since_checkpoint += 1
            if self._since_checkpoint >= self.config.checkpoint_every and not cooling:
                out += self.checkpoint("periodic")
        return out

    def _start_fresh_challenger(self, out: list) -> None:
        """A fresh model of the champion's recipe, learning the world since the warning. One
        started more than a decision window ago has seen the old world too: it is replaced."""
        if "fresh" in self.challengers and (
            self._evaluation is not None or self.n_labels - self._fresh_since <= self.config.decision_window
        ):
            return
        self._fresh_since = self.n_labels
        self.challengers["fresh"] = OnlineLearner(
            f"{self.name}:fresh", self.recipe, self.champion.window_size
        )
        out.append(
            self._event(
                "challenger_started",
                reason=f"drift warning: a fresh model of {self.recipe!r} learns in shadow",
            )
        )

    def _decisive(self, ev: _Evaluation) -> bool:
        """Decide early when a candidate, scored on every label since the drift, already beats
        the champion by ``min_improvement`` and by ``z`` standard errors of the difference."""
        n = ev.labels
        if n < self.config.min_decision:
            return False
        champion = ev.correct[CHAMPION] / n
        for name, correct in ev.correct.items():
            if name == CHAMPION or ev.seen.get(name) != n:
                continue
            p = correct / n
            se = math.sqrt(max(p * (1 - p) + champion * (1 - champion), 1e-9) / n)
            if p - champion >= self.config.min_improvement and p - champion > self.config.z * se:
                return True
        return False

    def _decide(self, ev: _Evaluation) -> list[ModelEvent | Checkpoint]:
        n = ev.labels
        present = {
            CHAMPION,
            *(f"challenger:{r}" for r in self.challengers),
            *(f"checkpoint:{f.checkpoint.id}" for f in self.checkpoints),
        }
        # A candidate that joined late (a challenger started meanwhile) or left (a checkpoint
        # pruned) was not scored on every label: compare those that were.
        scores = {
            name: ev.correct[name] / n for name in ev.correct if name in present and ev.seen.get(name) == n
        }
        compared = {name: {"accuracy": acc, "labels": float(n)} for name, acc in scores.items()}
        best = max(scores, key=lambda k: (scores[k], k == CHAMPION))
        gain = scores[best] - scores[CHAMPION]
        self._cooldown_until = self.n_labels + self.config.cooldown
        while self._actions and self._actions[0] <= self.n_labels - self.config.action_window:
            self._actions.popleft()
        capped = len(self._actions) >= self.config.max_actions
        if best == CHAMPION or gain < self.config.min_improvement or capped:
            self.challengers.pop("fresh", None)  # it had its chance
            why = (
                "action cap reached"
                if capped and best != CHAMPION and gain >= self.config.min_improvement
                else f"no candidate beats the champion by {self.config.min_improvement:.2f}"
            )
            return [self._event("keep", reason=why, signal=ev.signal, compared=compared, start=ev.start)]
        target = next((f for f in self.checkpoints if f"checkpoint:{f.checkpoint.id}" == best), None)
        # Save the champion before replacing it (the rollback target is held above: the new
        # checkpoint may push it out of the kept ones).
        out: list[ModelEvent | Checkpoint] = self.checkpoint("before " + best)
        self._actions.append(self.n_labels)
        before = self.version
        if target is not None:
            frozen = target
            self.champion.model = pickle.loads(frozen.checkpoint.blob)
            action, ckpt = "rollback", frozen.checkpoint.id
            reason = (
                f"{best} beats the champion by {gain:.3f} accuracy on the {n} labels since "
                "the drift: the champion looks damaged (e.g. by bad labels)"
            )
        else:
            recipe = best.removeprefix("challenger:")
            challenger = self.challengers[recipe]
            self.champion.model = pickle.loads(pickle.dumps(challenger.model))
            self.champion.recipe = challenger.recipe
            if recipe == "fresh":
                del self.challengers["fresh"]
            action, ckpt = "promotion", None
            reason = (
                f"{best} beats the champion by {gain:.3f} accuracy on the {n} labels since "
                "the drift: the world looks changed"
            )
        self.champion.version += 1
        self.concept = ConceptDriftDetector(self.config.concept_detector)  # a new model's errors
        out.append(
            self._event(
                action,
                reason=reason,
                signal=ev.signal,
                compared=compared,
                start=ev.start,
                from_version=before,
                to_version=self.version,
                checkpoint=ckpt,
            )
        )
        return out

    # -- checkpoints ---------------------------------------------------------------------------

    def checkpoint(self, reason: str) -> list[ModelEvent | Checkpoint]:
        """Freeze the champion now: returns the ``Checkpoint`` (to persist) and its event."""
        self.n_checkpoints += 1
        self._since_checkpoint = 0
        ckpt = Checkpoint(
            model=self.name,
            id=f"ckpt-{self.n_checkpoints}",
            version=self.version,
            recipe=self.champion.recipe,
            blob=pickle.dumps(self.champion.model, protocol=pickle.HIGHEST_PROTOCOL),
            n_learned=self.champion.n_learned,
            metrics=self.champion.metrics(),
            reason=reason,
            event_time_end=self.last_ts,
        )
        healthy = reason == "periodic"
        self.checkpoints.append(_Frozen(ckpt, pickle.loads(ckpt.blob), healthy))
        while len(self.checkpoints) > self.config.keep_checkpoints:
            # Drop the oldest, but keep at least one healthy checkpoint to roll back to.
            victim = self.checkpoints[0]
            if victim.healthy and sum(f.healthy for f in self.checkpoints) == 1:
                victim = next(f for f in self.checkpoints if not f.healthy)
            self.checkpoints.remove(victim)
        event = self._event("checkpoint", reason=reason, checkpoint=ckpt.id, to_version=self.version)
        return [ckpt, event]

    def rollback_to(
        self,
        checkpoint_blob: bytes,
        reason: str,
        checkpoint: str | None = None,
        ts: datetime | None = None,
    ) -> list[ModelEvent | Checkpoint]:
        """An operator's rollback (through the control topic): save the champion, then serve
        ``checkpoint_blob`` (pickle bytes of a model the registry already verified)."""
        if ts is not None:
            self.last_ts = ts
        out: list[ModelEvent | Checkpoint] = self.checkpoint("before operator rollback")
        before = self.version
        self.champion.model = pickle.loads(checkpoint_blob)
        self.champion.version += 1
        self.concept = ConceptDriftDetector(self.config.concept_detector)
        self._evaluation = None
        self._cooldown_until = self.n_labels + self.config.cooldown
        out.append(
            self._event(
                "rollback", reason=reason, from_version=before, to_version=self.version, checkpoint=checkpoint
            )
        )
        return out

    # -- events --------------------------------------------------------------------------------

    def _alert(
        self, action: str, signal: DriftSignal | None, checkpoint: bool = False, out: list | None = None
    ) -> None:
        target = self._pending_events if out is None else out
        target.append(
            self._event(
                action,
                reason="label-free evidence: alert only, no rollback"
                if action != "prior_shift"
                else "label distribution changed",
                signal=signal,
            )
        )
        if checkpoint:
            target.extend(self.checkpoint(action))

    def _event(
        self,
        action: str,
        *,
        reason: str,
        signal: DriftSignal | None = None,
        compared: dict | None = None,
        start: datetime | None = None,
        from_version: int | None = None,
        to_version: int | None = None,
        checkpoint: str | None = None,
    ) -> ModelEvent:
        return ModelEvent.model_construct(
            model=self.name,
            action=action,
            from_version=from_version,
            to_version=to_version,
            checkpoint=checkpoint,
            reason=reason,
            detector=signal.detector if signal else None,
            feature=signal.feature if signal else None,
            statistic=signal.statistic if signal else None,
            threshold=signal.threshold if signal else None,
            compared=compared or {},
            event_time_start=start,
            event_time_end=self.last_ts,
            position={"labels": self.n_labels, **getattr(self, "_position", {})},
            at=self.last_ts,
        )

    def challenger_metrics(self) -> dict[str, dict[str, float]]:
        return {name: c.metrics() for name, c in self.challengers.items()}
