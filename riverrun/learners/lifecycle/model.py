"""``ModelLifecycle``: champion, challengers and checkpoints of one model, and the policy that
acts on drift (the package docstring tells the whole story)."""

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
from riverrun.learners.lifecycle.checkpoints import Checkpoint, FrozenCheckpoint
from riverrun.learners.lifecycle.error_change import error_change
from riverrun.learners.lifecycle.policy import PolicyConfig
from riverrun.learners.online import OnlineLearner, Served
from riverrun.learners.rebuild import rebuilt
from riverrun.schemas import ModelEvent

CHAMPION = "champion"


def labels_since_change(oks: list[bool]) -> int:
    """How many of the last labels came after the change in a model's error rate.

    ``oks`` says, oldest first, whether the model was right. The change point is the split that
    best explains the errors as two Bernoulli segments (maximum likelihood) with a *higher* error
    rate after it; 0 when no split beats one segment. A warning comes some labels after a sudden
    change: a fresh model that learns those labels too catches up sooner.

    >>> labels_since_change([True] * 50 + [False, True, False, False, True, False])
    6
    >>> labels_since_change([True] * 30)
    0
    """
    n = len(oks)
    total = n - sum(oks)  # errors

    def loglik(errors: int, m: int) -> float:
        if errors == 0 or errors == m:
            return 0.0
        p = errors / m
        return errors * math.log(p) + (m - errors) * math.log(1 - p)

    best_split, best = n, loglik(total, n)
    before = 0  # errors in oks[:split]
    for split in range(1, n):
        before += not oks[split - 1]
        after = total - before
        if after * split > before * (n - split):  # the error rate rose at split
            value = loglik(before, split) + loglik(after, n - split)
            if value > best:
                best_split, best = split, value
    return n - best_split


@dataclass
class Evaluation:
    """Candidates scored on the labels since a drift signal (an evaluation in progress)."""

    signal: DriftSignal
    start: datetime | None
    labels: int = 0
    quick_at: int = -1  # the label count at which _decide_at_drift tries again
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
                check_every=c.monitor_check_every,
                exclude=c.covariate_exclude,
            )
            if c.covariate
            else None
        )
        windows = {"reference_size": c.reference_size, "window_size": c.monitor_window}
        self.labels = LabelShiftMonitor(**windows, check_every=c.monitor_check_every) if c.prior else None
        self.predictions = (
            PredictionDriftMonitor(**windows, check_every=c.monitor_check_every) if c.prior else None
        )
        self.checkpoints: deque[FrozenCheckpoint] = deque()
        self.n_checkpoints = 0
        self.n_actions: dict[str, int] = {}  # model events emitted, by action (for monitoring)
        self.n_labels = 0
        self._since_checkpoint = 0
        self._cooldown_until = 0
        self._actions: deque[int] = deque()  # label counts at which rollbacks/promotions happened
        self._evaluation: Evaluation | None = None
        self._n_served = 0
        self._sampled: list[tuple[dict, dict | None]] = []  # served samples not yet monitored
        self._fresh_since = 0  # labels seen when the fresh challenger started
        self._fresh_score = [0, 0]  # champion, fresh: correct on the labels since then
        self._recent: deque[tuple[dict, Any, bool]] = deque(maxlen=self.config.decision_window)
        self.paused = False  # labels look corrupted: learning is paused
        self._paused_since = 0
        self.n_paused = 0  # labels not learned while paused
        self._paused_ok: deque[bool] = deque(maxlen=self.config.suspect_window)
        self._pending_events: list[ModelEvent | Checkpoint] = []
        self._position: dict[str, int] | None = None  # of the label being learned
        self.last_ts: datetime | None = None

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        # Pickled before the covariate monitor left counters out: leave them out from now on.
        covariate = self.covariate
        if covariate is not None and not covariate.exclude >= set(self.config.covariate_exclude):
            covariate.leave_out(self.config.covariate_exclude)

    @property
    def version(self) -> int:
        """The serving version: 1, then +1 at every rollback or promotion."""
        return self.champion.version

    # -- serving -------------------------------------------------------------------------------

    def predict(self, event_id: str, x: dict, ts: datetime | None = None) -> Served:
        """The champion's prediction (served); challengers predict in shadow; the feature and
        prediction monitors see a sample of what was served on, in batches (``monitor_every``,
        ``monitor_batch``; their events: ``drain()``)."""
        served = self.champion.predict(event_id, x)
        config = self.config
        if not config.enabled:
            return served
        if self.challengers:
            for challenger in self.challengers.values():
                challenger.predict(event_id, x)
        n = self._n_served = self._n_served + 1
        if n % config.monitor_every:  # the hot path ends here (learn() keeps last_ts for its events)
            return served
        try:
            batch = self._sampled
        except AttributeError:  # state pickled before batches existed
            batch = self._sampled = []
        batch.append((x, served.proba))
        if len(batch) >= config.monitor_batch:
            self._sampled = []
            if ts is not None:  # the event time of the alerts
                self.last_ts = ts
            self._monitor(batch)
        return served

    def _monitor(self, batch: list[tuple[dict, dict | None]]) -> None:
        """Feed a batch of sampled (features, served probabilities) to the label-free monitors,
        in order; alerts (and checkpoints) go to ``drain()``."""
        if (covariate := self.covariate) is not None:
            for x, _ in batch:
                covariate.update(x)
                if covariate._drift_detected:  # one alert (and checkpoint) per update
                    self._alert("covariate_shift", covariate.signal(), checkpoint=True)
        if (predictions := self.predictions) is not None:
            for _, proba in batch:
                if proba:
                    predictions.update(proba.get(True, 0.0))
                    if predictions._drift_detected:
                        self._alert("prediction_drift", predictions.signal())

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
        # A label never served is predicted, then learned: what is scored is that prediction.
        config = self.config
        if self.paused:
            self.n_labels += 1
            self.last_ts, self._position = ts, position
            return self._learn_paused(event_id, x, y, ts)
        champion_ok = self.champion.learn(event_id, x, y).y_pred == y
        if not config.enabled:
            return []
        n = self.n_labels = self.n_labels + 1
        self.last_ts = ts
        self._position = position
        out = self.drain() if self._pending_events else []

        challengers = self.challengers
        shadow: dict[str, bool] | None = None
        if challengers:
            shadow = {CHAMPION: champion_ok}
            for recipe, challenger in challengers.items():
                # A challenger started after this event was served is scored test-then-train.
                shadow[f"challenger:{recipe}"] = challenger.learn(event_id, x, y).y_pred == y
            if "fresh" in challengers:
                self._fresh_score[0] += champion_ok
                self._fresh_score[1] += shadow["challenger:fresh"]
        if n % config.monitor_every == 0 and (labels := self.labels) is not None:
            labels.update(y)
            if labels._drift_detected:
                self._alert("prior_shift", labels.signal(), checkpoint=True, out=out)
        if config.decide_at_drift:
            self._recent.append((x, y, champion_ok))

        if self.concept.update(not champion_ok) and self._on_concept_alarm(ts, out):  # rare
            return out
        if self._evaluation is not None:
            self._evaluate(x, y, champion_ok, shadow, out)
            return out
        if challengers and "fresh" in challengers and n - self._fresh_since > config.fresh_patience:
            del challengers["fresh"]  # a warning no drift followed: stop paying for it
        since = self._since_checkpoint = self._since_checkpoint + 1
        if since >= config.checkpoint_every and n >= self._cooldown_until:
            out += self.checkpoint("periodic")
        return out

    def _on_concept_alarm(self, ts: datetime | None, out: list) -> bool:
        """A warning starts a fresh challenger; a drift (of a *rising* error, outside a cool-down
        and an evaluation) is decided at once or starts an evaluation. True: acted."""
        concept, config = self.concept, self.config
        if not concept.rising:  # the error fell: nothing is wrong
            return False
        if concept.warning_detected:
            if config.fresh_challenger:
                self._start_fresh_challenger(out)
            return False
        if self._evaluation is not None or self.n_labels < self._cooldown_until:
            return False
        signal = concept.signal()
        out.append(self._event("concept_drift", reason="error rate rose", signal=signal))
        decided = self._decide_at_drift(signal, ts) if config.decide_at_drift else None
        if decided is not None:
            out += decided
            return True
        if config.fresh_challenger:
            self._start_fresh_challenger(out)
        self._evaluation = Evaluation(signal, ts)
        if config.decide_at_drift and "fresh" in self.challengers:  # too young to judge yet
            self._evaluation.quick_at = self._fresh_since + config.min_at_drift
        return False

    def _evaluate(self, x: dict, y: Any, champion_ok: bool, shadow: dict | None, out: list) -> None:
        """Score every candidate on this label; decide when the window is over or decisive."""
        ev = self._evaluation
        assert ev is not None
        if self.n_labels == ev.quick_at and (decided := self._decide_at_drift(ev.signal, self.last_ts)):
            out += decided
            self._evaluation = None
            return
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

    def _start_fresh_challenger(self, out: list) -> None:
        """A fresh model of the champion's recipe, learning the world since the change: it first
        learns the buffered labels after the change point of the champion's errors
        (``labels_since_change``; none when ``decide_at_drift`` is off: nothing is buffered),
        then every label. One started more than ``fresh_patience`` labels ago has seen the old
        world too: replaced."""
        if "fresh" in self.challengers and (
            self._evaluation is not None or self.n_labels - self._fresh_since <= self.config.fresh_patience
        ):
            return
        self._fresh_since = self.n_labels
        self._fresh_score = [0, 0]
        fresh = self.challengers["fresh"] = OnlineLearner(
            f"{self.name}:fresh", self.recipe, self.champion.window_size
        )
        # The warning comes some labels after the change: those labels are the new world too.
        recent = self._recent
        k = labels_since_change([ok for _, _, ok in recent])
        for x, y, _ in list(recent)[len(recent) - k :]:
            fresh.model.learn_one(x, y)  # trained on, not scored (its score starts now)
        out.append(
            self._event(
                "challenger_started",
                reason=(
                    f"drift warning: a fresh model of {self.recipe!r} learns in shadow, from the "
                    f"{k} buffered labels since the change"
                ),
            )
        )

    def _decide_at_drift(self, signal: DriftSignal, ts: datetime | None) -> list | None:
        """Act at once on the labels up to the drift, when they suffice; None: evaluate.

        ADWIN has just found that the champion's error rose. The last labels are buffered, and
        the checkpoints are frozen, so they can be judged now:

        1. a binary champion right on at most ``suspect_accuracy`` of the last
           ``suspect_window`` labels has not met a new world but *inverted labels* (a broken
           labelling job): roll back to the last healthy checkpoint and pause learning
           (``_pause``; ``max_pause`` bounds it, should the world itself have inverted);
        2. a checkpoint that clearly beats the champion (``_clearly_better``) on the labels since
           the warning (at least ``min_decision``) is rolled back to;
        3. when the fresh challenger, on the labels since the warning (at least
           ``min_at_drift``), did better than the champion and at least as well as every
           checkpoint, the world changed and no past model helps: it is promoted now, as River's
           ``DriftRetrainingClassifier`` would.

        The champion is checkpointed before any switch, so a later drift can still undo it.
        """
        config = self.config
        recent = list(self._recent)

        def accuracy(predict, n: int) -> float:
            return sum((ok if predict is None else predict(x) == y) for x, y, ok in recent[-n:]) / n

        def past_models(n: int) -> dict[str, float]:
            """The champion's and every checkpoint's accuracy on the last ``n`` labels."""
            scores = {CHAMPION: accuracy(None, n)}
            for frozen in self.checkpoints:
                scores[f"checkpoint:{frozen.checkpoint.id}"] = accuracy(frozen.model.predict_one, n)
            return scores

        m = config.suspect_window
        if (
            config.suspect_accuracy is not None
            and self.champion.label_kind == "bool"
            and len(recent) >= m
            and (champion := accuracy(None, m)) <= config.suspect_accuracy
        ):
            return self._pause(signal, champion, m, ts)
        since = self.n_labels - self._fresh_since if "fresh" in self.challengers else 0
        n = min(max(since, config.min_decision), len(recent))  # the checkpoints' evidence
        scores = past_models(n)
        best = max(scores, key=lambda k: (scores[k], k == CHAMPION))
        clear = best != CHAMPION and self._clearly_better(scores[best], scores[CHAMPION], n)
        if clear and n >= config.min_decision:
            gain = scores[best] - scores[CHAMPION]
        elif config.min_at_drift <= since <= len(recent):  # the fresh model's evidence
            n = since
            scores = {**past_models(n), "challenger:fresh": self._fresh_score[1] / n}
            best = max(scores, key=lambda k: (scores[k], k == CHAMPION, k.startswith("challenger")))
            if best != "challenger:fresh" or scores[best] <= scores[CHAMPION]:
                return None
            gain = scores[best] - scores[CHAMPION]
        else:
            return None
        if self._capped():
            return None
        compared = {name: {"accuracy": acc, "labels": float(n)} for name, acc in scores.items()}
        return self._act(best, gain, n, signal, compared, ts, "up to the drift")

    # -- suspect labels ------------------------------------------------------------------------

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
            out += self._act(f"checkpoint:{target}", 0.0, n, signal, compared, ts, "", reason=reason)
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
        labels agree with it again."""
        ok = self.champion.judge(event_id, x).y_pred == y
        for challenger in self.challengers.values():
            challenger.forget(event_id)
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

    def _clearly_better(self, p: float, champion: float, n: int) -> bool:
        """A gain of ``min_improvement`` and of ``z`` standard errors of the difference."""
        se = math.sqrt(max(p * (1 - p) + champion * (1 - champion), 1e-9) / n)
        return p - champion >= self.config.min_improvement and p - champion > self.config.z * se

    def _decisive(self, ev: Evaluation) -> bool:
        """Decide early when a candidate, scored on every label since the drift, already
        clearly beats the champion."""
        n = ev.labels
        if n < self.config.min_decision:
            return False
        champion = ev.correct[CHAMPION] / n
        return any(
            self._clearly_better(correct / n, champion, n)
            for name, correct in ev.correct.items()
            if name != CHAMPION and ev.seen.get(name) == n
        )

    def _decide(self, ev: Evaluation) -> list[ModelEvent | Checkpoint]:
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
        capped = self._capped()
        if best == CHAMPION or gain < self.config.min_improvement or capped:
            self.challengers.pop("fresh", None)  # it had its chance
            why = (
                "action cap reached"
                if capped and best != CHAMPION and gain >= self.config.min_improvement
                else f"no candidate beats the champion by {self.config.min_improvement:.2f}"
            )
            return [self._event("keep", reason=why, signal=ev.signal, compared=compared, start=ev.start)]
        return self._act(best, gain, n, ev.signal, compared, ev.start, "since the drift")

    def _capped(self) -> bool:
        while self._actions and self._actions[0] <= self.n_labels - self.config.action_window:
            self._actions.popleft()
        return len(self._actions) >= self.config.max_actions

    def _act(
        self,
        best: str,
        gain: float,
        n: int,
        signal: DriftSignal,
        compared: dict,
        start: datetime | None,
        window: str,
        reason: str | None = None,
    ) -> list[ModelEvent | Checkpoint]:
        """Roll back to checkpoint ``best`` or promote challenger ``best``."""
        self._cooldown_until = self.n_labels + self.config.cooldown
        target = next((f for f in self.checkpoints if f"checkpoint:{f.checkpoint.id}" == best), None)
        # Save the champion before replacing it (the rollback target is held above: the new
        # checkpoint may push it out of the kept ones).
        out: list[ModelEvent | Checkpoint] = self.checkpoint("before " + best)
        self._actions.append(self.n_labels)
        before = self.version
        if target is not None:
            frozen = target
            self.champion.model = rebuilt(pickle.loads(frozen.checkpoint.blob))
            action, ckpt = "rollback", frozen.checkpoint.id
            reason = reason or (
                f"{best} beats the champion by {gain:.3f} accuracy on the {n} labels {window}: "
                "the champion looks damaged (e.g. by bad labels)"
            )
        else:
            recipe = best.removeprefix("challenger:")
            challenger = self.challengers[recipe]
            self.champion.model = rebuilt(challenger.model)  # a deep copy
            self.champion.recipe = challenger.recipe
            if recipe == "fresh":
                del self.challengers["fresh"]
            action, ckpt = "promotion", None
            reason = reason or (
                f"{best} beats the champion by {gain:.3f} accuracy on the {n} labels {window}: "
                "the world looks changed"
            )
        self.champion.version += 1
        self.concept = ConceptDriftDetector(self.config.concept_detector)  # a new model's errors
        out.append(
            self._event(
                action,
                reason=reason,
                signal=signal,
                compared=compared,
                start=start,
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
        # Pickling slowed the champion down for good (``rebuild``): serve a rebuilt copy.
        self.champion.model = rebuilt(self.champion.model)
        self.checkpoints.append(FrozenCheckpoint(ckpt, healthy))
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
        self.champion.model = rebuilt(pickle.loads(checkpoint_blob))
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
        reason = (
            "label-free evidence: alert only, no rollback"
            if action != "prior_shift"
            else "label distribution changed"
        )
        if action == "covariate_shift":  # did it matter? the labels buffered so far say
            c = self.config
            reason += "; " + error_change([ok for *_, ok in self._recent], c.z, c.min_decision)
        target.append(self._event(action, reason=reason, signal=signal))
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
        try:
            counts = self.n_actions
        except AttributeError:  # state pickled before the counts existed
            counts = self.n_actions = {}
        counts[action] = counts.get(action, 0) + 1
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
            position={"labels": self.n_labels, **(self._position or {})},
            at=self.last_ts,
        )

    def challenger_metrics(self) -> dict[str, dict[str, float]]:
        return {name: c.metrics() for name, c in self.challengers.items()}
