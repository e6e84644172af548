"""``ModelLifecycle``: champion, challengers and checkpoints of one model, and the policy that
acts on drift (the package docstring tells the whole story). The decision rule is
``decision.PairedDecision``, its test ``sequential.PairedTest``; the displaced model and the
counterfactual are ``shadow.Shadow``s; the label-free monitors are in ``monitors``."""

from __future__ import annotations

import pickle
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from riverrun.detectors import ConceptDriftDetector, DriftSignal
from riverrun.learners.lifecycle.changepoint import labels_since_change
from riverrun.learners.lifecycle.checkpoints import Checkpoint, Checkpointing, FrozenCheckpoint
from riverrun.learners.lifecycle.decision import CHAMPION, PairedDecision, Verdict, adapts_by_itself
from riverrun.learners.lifecycle.events import Events
from riverrun.learners.lifecycle.monitors import build_monitors, feed_served
from riverrun.learners.lifecycle.pause import SuspectLabels
from riverrun.learners.lifecycle.policy import PolicyConfig
from riverrun.learners.lifecycle.probation import Reversible
from riverrun.learners.lifecycle.sequential import PairedTest, log_loss
from riverrun.learners.lifecycle.shadow import Regret, Shadow
from riverrun.learners.online import OnlineLearner, Served
from riverrun.learners.rebuild import rebuilt
from riverrun.schemas import ModelEvent

__all__ = ["CHAMPION", "Evaluation", "ModelLifecycle", "labels_since_change"]


@dataclass
class Evaluation:
    """Candidates scored on the labels since a drift signal (an evaluation in progress)."""

    signal: DriftSignal
    start: datetime | None
    labels: int = 0
    quick_at: int = -1  # unused since the sequential test (kept: old pickles carry it)
    correct: dict[str, int] = field(default_factory=dict)  # unused since the sequential test
    seen: dict[str, int] = field(default_factory=dict)  # unused since the sequential test
    rule: PairedDecision | None = None  # None: pickled before the rule existed (made when next seen)
    checkpoints: bool = True  # judge the checkpoints too (not against a self-adapting champion)


class ModelLifecycle(SuspectLabels, Reversible, Checkpointing, Events):
    """Champion, challengers and checkpoints of one model, and the policy that acts on drift."""

    # Defaults for lifecycles pickled before these existed (recovery snapshots, registry blobs).
    _fresh_test: PairedTest | None = None
    _displaced: Shadow | None = None  # the model a promotion or rollback displaced, on probation
    _counterfactual: Shadow | None = None  # the champion as with no lifecycle (None: the champion)
    _regret: Regret | None = None

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
        self.covariate, self.labels, self.predictions = build_monitors(c)
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
        self._fresh_test = None  # the fresh challenger against the champion, since it started
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

    def regret(self) -> float:
        """Accuracy lost against doing nothing (the counterfactual) on the labels learned so far
        (paused ones left out); negative: the lifecycle helped. 0 until its first action."""
        excess = self._regret.excess if self._regret is not None else 0
        return excess / max(self.n_labels - self.n_paused, 1)

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
        if (cf := self._counterfactual) is not None:
            cf.predict(event_id, x)
        if (displaced := self._displaced) is not None and displaced is not cf:
            displaced.predict(event_id, x)
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
            feed_served(self, batch)
        return served

    def drain(self) -> list[ModelEvent | Checkpoint]:
        """Events and checkpoints raised while serving (label-free alerts)."""
        out, self._pending_events = self._pending_events, []
        return out

    def forget(self, event_id: str) -> None:
        self.champion.forget(event_id)
        for challenger in self.challengers.values():
            challenger.forget(event_id)
        if (cf := self._counterfactual) is not None:
            cf.forget(event_id)
        if (displaced := self._displaced) is not None and displaced is not cf:
            displaced.forget(event_id)

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
        served = self.champion.learn(event_id, x, y)
        champion_ok = served.y_pred == y
        if not config.enabled:
            return []
        n = self.n_labels = self.n_labels + 1
        self.last_ts = ts
        self._position = position
        out = self.drain() if self._pending_events else []

        challengers = self.challengers
        shadow: dict[str, tuple[float, float]] | None = None  # candidate -> (0/1 loss, log loss)
        watched = self._counterfactual is not None or self._displaced is not None
        champion_log = log_loss(served.proba, y) if challengers or watched else 0.0
        if challengers:
            shadow = {CHAMPION: (float(not champion_ok), champion_log)}
            for recipe, challenger in challengers.items():
                # A challenger started after this event was served is scored test-then-train.
                scored = challenger.learn(event_id, x, y)
                shadow[f"challenger:{recipe}"] = (float(scored.y_pred != y), log_loss(scored.proba, y))
            if "fresh" in challengers:
                if self._fresh_test is None:  # pickled before the test existed
                    self._fresh_test = self._new_test()
                fresh_loss, fresh_log = shadow["challenger:fresh"]
                self._fresh_test.update(float(not champion_ok), fresh_loss, champion_log, fresh_log)
        if n % config.monitor_every == 0 and (labels := self.labels) is not None:
            labels.update(y)
            if labels._drift_detected:
                self._alert("prior_shift", labels.signal(), checkpoint=True, out=out)
        if config.decide_at_drift:
            self._recent.append((x, y, champion_ok))
        if watched and self._watch(event_id, x, y, champion_ok, champion_log, out):
            return out  # a displaced model came back

        if self.concept.update(not champion_ok) and self._on_concept_alarm(ts, out):  # rare
            return out
        if self._evaluation is not None:
            self._evaluate(x, y, champion_ok, served.proba, shadow, out)
            return out
        if challengers and "fresh" in challengers and n - self._fresh_since > config.fresh_patience:
            del challengers["fresh"]  # a warning no drift followed: stop paying for it
        since = self._since_checkpoint = self._since_checkpoint + 1
        if since >= config.checkpoint_every and n >= self._cooldown_until:
            out += self.checkpoint("periodic")
        return out

    def _new_test(self) -> PairedTest:
        return PairedTest(self.config.alpha, self.config.min_improvement)

    def _shadow_alpha(self) -> float:
        """The shadows' tests run for a whole probation (the counterfactual for ever), as
        e-detectors: a false alarm at most once in ``probation / alpha`` labels on average."""
        return self.config.alpha / max(self.config.probation, 100)

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
        ev = self._evaluation = Evaluation(signal, ts)
        ev.rule = self._rule()
        ev.checkpoints = self._judge_checkpoints()
        return False

    def _judge_checkpoints(self) -> bool:
        """Checkpoints are candidates at a drift, unless the champion adapts by itself
        (``trust_self_adapting``)."""
        return not (self.config.trust_self_adapting and adapts_by_itself(self.champion.model))

    def _rule(self, max_labels: int | None = None) -> PairedDecision:
        """The decision rule, started on the present candidates; the fresh challenger is judged
        on every label since it started (its running test)."""
        c = self.config
        window = c.decision_window if max_labels is None else max_labels
        rule = PairedDecision(c.alpha, c.min_improvement, c.min_at_drift, window)
        rule.start([f"challenger:{r}" for r in self.challengers if r != "fresh"])
        if "fresh" in self.challengers and self._fresh_test is not None:
            rule.add("challenger:fresh", self._fresh_test)
        return rule

    def _evaluate(
        self, x: dict, y: Any, champion_ok: bool, proba: dict | None, shadow: dict | None, out: list
    ) -> None:
        """Score every candidate on this label; decide when a test is decisive or the window over."""
        ev = self._evaluation
        assert ev is not None
        rule = ev.rule
        if rule is None:  # an evaluation pickled before the rule: judged on the labels left
            rule = ev.rule = self._rule(max(self.config.decision_window - ev.labels, 1))
        if shadow is None:
            losses = {CHAMPION: (float(not champion_ok), log_loss(proba, y))}
        else:  # the fresh challenger's running test was updated in learn()
            losses = {k: v for k, v in shadow.items() if k != "challenger:fresh"}
        for frozen in self.checkpoints if ev.checkpoints else ():  # frozen: only matter while judging
            name = f"checkpoint:{frozen.checkpoint.id}"
            if name not in rule.tests:
                rule.add(name)
            losses[name] = _losses(frozen.model, x, y)
        ev.labels += 1
        rule.see(losses)
        verdict = rule.decide()
        if verdict is None:
            return
        self._evaluation = None
        if verdict.choice != "keep" and (suspect := self._suspect()) is not None:
            out += self._pause(ev.signal, *suspect, self.last_ts)  # its labels taught the candidate
        else:
            out += self._decide(ev, verdict)

    def _start_fresh_challenger(self, out: list) -> None:
        """A fresh model of the champion's recipe, learning the world since the change: it first
        learns the buffered labels after the change point of the champion's errors
        (``labels_since_change``; none when ``decide_at_drift`` is off: nothing is buffered),
        then every label. One started more than ``fresh_patience`` labels ago has seen the old
        world too: replaced. None for a champion that adapts by itself (``trust_self_adapting``):
        it grows its own fresh parts at a drift."""
        if self.config.trust_self_adapting and adapts_by_itself(self.champion.model):
            return
        if "fresh" in self.challengers and (
            self._evaluation is not None or self.n_labels - self._fresh_since <= self.config.fresh_patience
        ):
            return
        self._fresh_since = self.n_labels
        self._fresh_test = self._new_test()
        if self._evaluation is not None and self._evaluation.rule is not None:
            self._evaluation.rule.add("challenger:fresh", self._fresh_test)
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

    def _suspect(self) -> tuple[float, int] | None:
        """(accuracy, labels) when a binary champion is about as right on the labels since the
        change of its errors (``labels_since_change``; at least ``min_at_drift``, at most
        ``suspect_window`` of them) as it was wrong before: the labels look inverted. "About":
        at most ``suspect_accuracy``, or 3 times its error rate on the (up to 200) labels before
        the change, capped at 0.1 (a real change of the world leaves a model nearer chance, 0.5;
        at 0.2 a STAGGER concept switch was taken for inverted labels)."""
        c = self.config
        if c.suspect_accuracy is None or self.champion.label_kind != "bool":
            return None
        oks = [ok for *_, ok in self._recent]
        k = labels_since_change(oks)
        n = min(max(k, c.min_at_drift), c.suspect_window)
        if len(oks) < n:
            return None
        accuracy = sum(oks[-n:]) / n
        before = oks[max(len(oks) - k - 200, 0) : len(oks) - k] if k else []
        mirror = 3 * (1 - sum(before) / len(before)) if len(before) >= c.suspect_window else 0.0
        return (accuracy, n) if accuracy <= max(c.suspect_accuracy, min(mirror, 0.1)) else None

    def _decide_at_drift(self, signal: DriftSignal, ts: datetime | None) -> list | None:
        """Act at once on the labels up to the drift, when they suffice; None: evaluate.

        ADWIN has just found that the champion's error rose. The last labels are buffered, and
        the checkpoints are frozen, so they can be judged now:

        1. a binary champion right on at most ``suspect_accuracy`` of the labels since its
           errors changed (``_suspect``) has not met a new world but *inverted labels* (a broken
           labelling job): roll back to the last healthy checkpoint and pause learning
           (``_pause``; ``max_pause`` bounds it, should the world itself have inverted);
        2. a checkpoint that a ``PairedTest`` finds better than the champion on the buffered
           labels since the warning (at least ``min_decision``) is rolled back to;
        3. a fresh challenger that its running test (since the warning) finds better is
           promoted now, as River's ``DriftRetrainingClassifier`` would, but on evidence.

        A drift alarm alone replaces nothing: a model that adapts by itself (HAT, ARF, ADWIN
        bagging) keeps serving unless a candidate beats it on the same labels. The champion is
        checkpointed before any switch and stays in shadow on probation, so a switch can be undone.
        """
        config = self.config
        recent = list(self._recent)
        if (suspect := self._suspect()) is not None:
            return self._pause(signal, *suspect, ts)
        since = self.n_labels - self._fresh_since if "fresh" in self.challengers else 0
        n = min(max(since, config.min_decision), len(recent))  # the checkpoints' evidence
        rule = self._rule(max_labels=n + 1)
        if since < config.min_at_drift:
            rule.drop("challenger:fresh")
        checkpoints = self.checkpoints if self._judge_checkpoints() else ()
        for frozen in checkpoints:
            rule.add(f"checkpoint:{frozen.checkpoint.id}")
        for x, y, ok in recent[len(recent) - n :]:  # buffered: accuracy alone (no log loss kept)
            losses = {CHAMPION: (float(not ok), 0.0)}
            for frozen in checkpoints:
                losses[f"checkpoint:{frozen.checkpoint.id}"] = (float(frozen.model.predict_one(x) != y), 0.0)
            rule.see(losses)
        verdict = rule.decide()
        if verdict is None or verdict.choice == "keep" or self._capped():
            return None
        return self._act(verdict.choice, verdict.evidence, signal, ts, "up to the drift")

    # -- acting ----------------------------------------------------------------------------------

    def _decide(self, ev: Evaluation, verdict: Verdict) -> list[ModelEvent | Checkpoint]:
        self._cooldown_until = self.n_labels + self.config.cooldown
        present = {
            *(f"challenger:{r}" for r in self.challengers),
            *(f"checkpoint:{f.checkpoint.id}" for f in self.checkpoints),
        }
        capped = self._capped()
        if verdict.choice not in present or capped:
            self.challengers.pop("fresh", None)  # it had its chance
            why = (
                "action cap reached"
                if capped and verdict.choice in present
                else f"no candidate found better than the champion by {self.config.min_improvement:.2f} "
                f"(paired sequential test, false-alarm rate {self.config.alpha:g}) in {ev.labels} labels"
            )
            return [
                self._event(
                    "keep", reason=why, signal=ev.signal, compared=_compared(verdict.evidence), start=ev.start
                )
            ]
        return self._act(verdict.choice, verdict.evidence, ev.signal, ev.start, "since the drift")

    def _capped(self) -> bool:
        while self._actions and self._actions[0] <= self.n_labels - self.config.action_window:
            self._actions.popleft()
        return len(self._actions) >= self.config.max_actions

    def _act(
        self,
        best: str,
        evidence: dict,
        signal: DriftSignal,
        start: datetime | None,
        window: str,
        reason: str | None = None,
    ) -> list[ModelEvent | Checkpoint]:
        """Roll back to checkpoint ``best`` or promote challenger ``best``; the displaced
        champion goes on probation in shadow."""
        self._cooldown_until = self.n_labels + self.config.cooldown
        target = next((f for f in self.checkpoints if f"checkpoint:{f.checkpoint.id}" == best), None)
        # Save the champion before replacing it (the rollback target is held above: the new
        # checkpoint may push it out of the kept ones).
        out: list[ModelEvent | Checkpoint] = self.checkpoint("before " + best)
        self._actions.append(self.n_labels)
        before = self.version
        if self._counterfactual is None:  # the first action: the displaced model is the counterfactual
            self._diverge()
            self._displaced = self._counterfactual if self.config.probation else None
        elif self.config.probation:
            self._displaced = Shadow.of(
                self.champion, self.n_labels, self._shadow_alpha(), self.champion.model
            )
        compared = evidence if reason is not None else _compared(evidence, best)
        if reason is None:
            e = evidence.get(best, {})
            reason = (
                f"{best} beats the champion by {e.get('mean_gain', 0.0):.3f} accuracy on the "
                f"{e.get('labels', 0):g} labels {window} (paired sequential test: e-value "
                f"{e.get('e_value', 0.0):g} >= {e.get('threshold', 0.0):g}, false-alarm rate "
                f"{self.config.alpha:g})"
            )
        if target is not None:
            self.champion.model = rebuilt(pickle.loads(target.checkpoint.blob))
            action, ckpt = "rollback", target.checkpoint.id
            reason += "" if "corrupted" in reason else ": the champion looks damaged (e.g. by bad labels)"
        else:
            recipe = best.removeprefix("challenger:")
            challenger = self.challengers[recipe]
            self.champion.model = rebuilt(challenger.model)  # a deep copy
            self.champion.recipe = challenger.recipe
            if recipe == "fresh":
                del self.challengers["fresh"]
            action, ckpt = "promotion", None
            reason += ": the world looks changed"
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

    def challenger_metrics(self) -> dict[str, dict[str, float]]:
        return {name: c.metrics() for name, c in self.challengers.items()}


def _losses(model: Any, x: dict, y: Any) -> tuple[float, float]:
    """A frozen model's (0/1 loss, log loss) on ``(x, y)``."""
    if hasattr(model, "predict_proba_one"):
        proba = model.predict_proba_one(x)
        return float((max(proba, key=proba.get) if proba else None) != y), log_loss(proba, y)
    return float(model.predict_one(x) != y), 0.0


def _compared(evidence: dict[str, dict[str, float]], best: str | None = None) -> dict[str, dict[str, float]]:
    """A decision's evidence as ``ModelEvent.compared``: each candidate's test (accuracy, labels,
    mean gain, e-value, threshold), and the champion's accuracy on the labels of ``best``'s."""
    out = {name: dict(e) for name, e in evidence.items()}
    e = evidence.get(best or "") or next(iter(evidence.values()), {})
    out[CHAMPION] = {"accuracy": e.get("champion_accuracy", 0.0), "labels": e.get("labels", 0.0)}
    return out
