"""Checkpoints: frozen copies of a champion, to persist (``Checkpoint``) and to judge in memory
(``FrozenCheckpoint``)."""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from riverrun.learners.rebuild import rebuilt


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
