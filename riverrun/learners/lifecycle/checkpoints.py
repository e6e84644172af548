"""Checkpoints: frozen copies of a champion, to persist (``Checkpoint``) and to judge in memory
(``FrozenCheckpoint``); taking them and an operator's rollback (``Checkpointing``, a part of
``ModelLifecycle``)."""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from riverrun.detectors import ConceptDriftDetector
from riverrun.learners.rebuild import rebuilt

if TYPE_CHECKING:
    from riverrun.schemas import ModelEvent


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


class FrozenCheckpoint:
    """A checkpoint kept in memory: it predicts while candidates are judged, never learns.

    Its model is unpickled from the blob when first needed, and left out of pickles (recovery
    snapshots): the blob alone is the state, so a snapshot carries each checkpoint once, not twice.
    """

    def __init__(self, checkpoint: Checkpoint, healthy: bool):
        self.checkpoint = checkpoint
        self.healthy = healthy
        self._model: Any = None

    @property
    def model(self) -> Any:
        if self._model is None:
            self._model = rebuilt(pickle.loads(self.checkpoint.blob))
        return self._model

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_model": None}


class Checkpointing:
    """Checkpoints and the operator's rollback of ``ModelLifecycle`` (its state lives there)."""

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
        self._diverge()
        self._displaced = None  # the operator decided: no probation
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
