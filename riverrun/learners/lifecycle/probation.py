"""Reversible decisions: the displaced model on probation and the counterfactual, watched on
every label against the champion (``Reversible``, a part of ``ModelLifecycle``; the models in
shadow are ``shadow.Shadow``s)."""

from __future__ import annotations

from typing import Any

from riverrun.detectors import ConceptDriftDetector
from riverrun.learners.lifecycle.checkpoints import Checkpoint
from riverrun.learners.lifecycle.shadow import Regret, Shadow
from riverrun.schemas import ModelEvent


class Reversible:
    """Probation and the counterfactual of ``ModelLifecycle`` (its state lives there)."""

    def _diverge(self) -> None:
        """From the first action on, the champion may differ from what no lifecycle would serve:
        a copy of it goes on as the counterfactual (``counterfactual``). It is retired (and the
        regret stops counting) once the champion beat it on the labels since, after at least a
        probation: doing nothing was worse; the next action starts another from its champion."""
        if self.config.counterfactual and self._counterfactual is None:
            self._counterfactual = Shadow.of(self.champion, self.n_labels, self._shadow_alpha())
            if self._regret is None:
                self._regret = Regret()

    def _watch(
        self, event_id: str, x: dict, y: Any, champion_ok: bool, champion_log: float, out: list
    ) -> bool:
        """The counterfactual and the displaced model learn this label against the champion; one
        that a test finds better (or the displaced model, when its probation ends with fewer
        errors) serves again. True: it did."""
        config = self.config
        cf, displaced = self._counterfactual, self._displaced
        if cf is not None:
            cf_ok = cf.learn(event_id, x, y, champion_ok, champion_log)
            if self._regret is None:
                self._regret = Regret()
            self._regret.add(champion_ok, cf_ok)
            if cf.test.n >= config.min_at_drift and cf.test.rejects and displaced is not cf:
                out += self._reinstate(
                    cf, "the unchanged model (no lifecycle) became better than the lifecycle's"
                )
                self._counterfactual = None  # the champion is the counterfactual again
                if displaced is not None and displaced.since >= cf.since:
                    self._displaced = None
                return True
            if displaced is not cf and cf.labels >= config.probation and cf.behind.rejects:
                self._counterfactual = None  # the next action starts another from its champion
                out.append(
                    self._event(
                        "keep",
                        reason=(
                            f"counterfactual retired: the lifecycle's model beat the unchanged one "
                            f"on the {cf.labels} labels since it started (paired test, e-value "
                            f"{cf.behind.e_value:.3g}); regret so far {self.regret():+.4f}"
                        ),
                        compared={"counterfactual": cf.behind.evidence()},
                    )
                )
        if displaced is None:
            return False
        if displaced is not cf:
            displaced.learn(event_id, x, y, champion_ok, champion_log)
        if displaced.test.n >= config.min_at_drift and displaced.test.rejects:
            why = "probation: the displaced model became better than its successor"
        elif displaced.labels >= config.probation:
            self._displaced = None
            if not displaced.test.sign_test():
                out.append(
                    self._event(
                        "keep",
                        reason=(
                            f"probation over: the new champion made {displaced.champion_errors} errors "
                            f"on the {displaced.labels} labels since, the model it displaced "
                            f"{displaced.errors}; the displaced model is dropped"
                        ),
                        compared={"displaced": displaced.evidence()},
                    )
                )
                return False
            why = (
                "probation over: the displaced model made fewer errors than its successor (by more "
                "than 2 standard deviations of the labels on which they differ)"
            )
        else:
            return False
        out += self._reinstate(displaced, why)
        self._displaced = None
        if displaced is cf:
            self._counterfactual = None  # the champion is the counterfactual again
        return True

    def _reinstate(self, shadow: Shadow, why: str) -> list[ModelEvent | Checkpoint]:
        """Serve ``shadow``'s model again (a rollback, outside the action cap: an undo)."""
        out: list[ModelEvent | Checkpoint] = self.checkpoint("before reinstating a displaced model")
        before = self.version
        self.champion.model = shadow.learner.model
        self.champion.recipe = shadow.learner.recipe
        self.champion.version += 1
        self.concept = ConceptDriftDetector(self.config.concept_detector)
        self._evaluation = None
        self._cooldown_until = self.n_labels + self.config.cooldown
        self.challengers.pop("fresh", None)
        e = shadow.evidence()
        reason = (
            f"{why} (its e-detector on the paired losses reached {e['e_value']:g} >= "
            f"{e['threshold']:g}); over the {shadow.labels} labels since it was displaced: "
            f"accuracy {e['accuracy']:.3f} against {e['champion_accuracy']:.3f}; it serves again"
        )
        out.append(
            self._event(
                "rollback",
                reason=reason,
                compared={"displaced": e},
                from_version=before,
                to_version=self.version,
            )
        )
        return out
