"""``ModelEvent``s of a lifecycle: alerts and the record of every action (``Events``, a part of
``ModelLifecycle``)."""

from __future__ import annotations

from datetime import datetime

from riverrun.detectors import DriftSignal
from riverrun.learners.lifecycle.error_change import error_change
from riverrun.schemas import ModelEvent


class Events:
    """Alerts and events of ``ModelLifecycle`` (counts in its ``n_actions``)."""

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
