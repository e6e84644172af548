"""A seeded stream with three known troubles, for the demo, the lifecycle tests and benchmarks.

Five standard-normal features ``x0..x4`` and a boolean label from a linear concept:

1. **sudden concept drift** at ``drift_at``: the label switches from ``x0 + x1 - x2 > 0`` to
   ``-x0 + x1 + x2 > 0`` (the world changed: a fresh model beats the old one);
2. **corrupted labels** on ``[corrupt_from, corrupt_to)``: the *published* labels are flipped
   while the truth is not (a broken labelling job: the model is damaged, rolling back helps);
3. **covariate shift** from ``shift_at``: ``x3`` (not used by the concept) moves by +3 standard
   deviations (the inputs changed, not the concept: alert and checkpoint, never roll back).

>>> s = Scenario(n=10)
>>> rows = list(s.rows())
>>> len(rows), sorted(rows[0][0])
(10, ['x0', 'x1', 'x2', 'x3', 'x4'])
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class Scenario:
    n: int = 20_000
    drift_at: int = 5_000
    corrupt_from: int = 9_000
    corrupt_to: int = 10_000
    shift_at: int = 14_000
    seed: int = 7

    def truth(self, i: int, x: dict) -> bool:
        if i < self.drift_at:
            return x["x0"] + x["x1"] - x["x2"] > 0
        return -x["x0"] + x["x1"] + x["x2"] > 0

    def rows(self) -> Iterator[tuple[dict, bool, bool]]:
        """``(x, published label, true label)`` for each event, in order."""
        rng = random.Random(self.seed)
        for i in range(self.n):
            x = {f"x{k}": rng.gauss(0.0, 1.0) for k in range(5)}
            if i >= self.shift_at:
                x["x3"] += 3.0
            y = self.truth(i, x)
            published = (not y) if self.corrupt_from <= i < self.corrupt_to else y
            yield x, published, y

    def markers(self) -> list[tuple[int, str]]:
        return [
            (self.drift_at, "concept drift"),
            (self.corrupt_from, "labels corrupted"),
            (self.corrupt_to, "labels fixed"),
            (self.shift_at, "x3 shifts"),
        ]
