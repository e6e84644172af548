"""``ModelView``: what one model step knows now, as plain numbers. The model step builds it
(``ModelStep.view``); ``flow.metrics`` exports it to Prometheus, reports read it.

>>> ModelView(model="lr", version=2, n_predicted=5, n_learned=4).n_learned
4
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from riverrun.streams.core.buckets import Buckets


@dataclass
class ModelView:
    """What one model step knows now, as plain numbers (built by ``ModelStep.view``)."""

    model: str
    version: int
    n_predicted: int
    n_learned: int
    counters: dict[str, int] = field(default_factory=dict)
    scores: dict[str, dict[str, float]] = field(default_factory=dict)  # candidate -> metric -> value
    concept: dict[str, float] = field(default_factory=dict)  # estimation, width
    psi: dict[str, float] = field(default_factory=dict)
    actions: dict[str, int] = field(default_factory=dict)
    paused: bool = False
    regret: float | None = None  # the lifecycle's, against doing nothing (None: policy off)
    label_delay: Buckets | None = None
    # the label-free estimate (learners.estimate.ConfidenceEstimate.get; empty: none)
    estimate: dict[str, float] = field(default_factory=dict)
    published_at: float = field(default_factory=time.monotonic)
