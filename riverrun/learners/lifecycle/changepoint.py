"""Where the champion's errors changed: the labels a fresh model learns first, and on which
suspect labels are judged."""

from __future__ import annotations

import math


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
