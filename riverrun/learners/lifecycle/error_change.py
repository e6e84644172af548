"""Whether the champion's error moved: the sentence a covariate-shift alert carries."""

from __future__ import annotations

import math


def error_change(oks: list[bool], z: float = 3.0, min_labels: int = 30) -> str:
    """Compare the error rate on the newer half of ``oks`` (oldest first: was the champion
    right?) with the older half; a difference beyond ``z`` standard errors moved.

    >>> error_change([True] * 90 + [False] * 10 + [True] * 60 + [False] * 40)
    "the champion's error moved with it: 40% on the last 100 labels, 10% on the 100 before"
    >>> error_change([True, False] * 100)
    "the champion's error did not move: 50% on the last 100 labels, 50% on the 100 before"
    >>> error_change([True] * 40)
    "too few labels (40) to tell whether the champion's error moved"
    """
    n = len(oks)
    if n < 2 * min_labels:
        return f"too few labels ({n}) to tell whether the champion's error moved"
    half = n // 2
    older, newer = oks[: n - half], oks[n - half :]
    e_old = 1 - sum(older) / len(older)
    e_new = 1 - sum(newer) / len(newer)
    p = (e_old * len(older) + e_new * len(newer)) / n
    se = math.sqrt(max(p * (1 - p), 1e-9) * (1 / len(older) + 1 / len(newer)))
    moved = abs(e_new - e_old) > z * se
    verdict = ("moved with it" if e_new > e_old else "fell") if moved else "did not move"
    return (
        f"the champion's error {verdict}: {e_new:.0%} on the last {len(newer)} labels, "
        f"{e_old:.0%} on the {len(older)} before"
    )
