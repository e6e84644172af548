"""What every detector shares: the ``DriftSignal`` it reports, missing values, alarm latching.

Detectors speak River's protocol: ``update(x)``, then read ``drift_detected`` (and
``warning_detected``), which are True only on the update that fires. Windowed detectors latch:
once a level fired it does not fire again until the statistic has gone back to normal
(``next_alarm``), so a lasting shift raises one alarm, not one per check.

>>> next_alarm(None, "drift", hold=True)
('drift', 'drift')
>>> next_alarm("drift", "drift", hold=True)  # still drifted: no new alarm
(None, 'drift')
>>> next_alarm("drift", None, hold=False)  # back to normal: re-armed
(None, None)
"""

from __future__ import annotations

import math
import numbers
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Level = Literal["warning", "drift"]
_RANK: dict[str | None, int] = {None: 0, "warning": 1, "drift": 2}


@dataclass(frozen=True)
class DriftSignal:
    """One alarm: which detector, how severe, the statistic and the threshold it was judged on.

    For test-based detectors (``ks``, ``chi2``, ``kswin``) the statistic is a p-value and the
    alarm means it fell *below* the threshold; for the others it rose above it.

    >>> s = DriftSignal("psi", "drift", statistic=0.31, threshold=0.2, feature="amount")
    >>> s.to_dict()["feature"], s.level
    ('amount', 'drift')
    """

    detector: str
    level: Level
    statistic: float
    threshold: float
    feature: str | None = None
    details: dict = field(default_factory=dict, hash=False)

    def to_dict(self) -> dict[str, Any]:
        """A plain dict (JSON-ready: the details hold only numbers and strings)."""
        return asdict(self)


def is_missing(x: Any) -> bool:
    """None and NaN are missing values (``x != x`` is True only for NaN)."""
    return x is None or (isinstance(x, float) and x != x)


def as_number(x: Any, owner: str) -> float | None:
    """``x`` as a float, None when missing; anything but a real number is a ``TypeError``."""
    if x is None:
        return None
    if type(x) is float or type(x) is int or isinstance(x, numbers.Real):
        v = float(x)
        return None if math.isnan(v) else v
    raise TypeError(f"{owner} takes real numbers (None or NaN for missing), got {type(x).__name__} {x!r}")


def next_alarm(latched: str | None, level: str | None, hold: bool) -> tuple[str | None, str | None]:
    """One check of a latched alarm: returns ``(fired, latched)``.

    ``level`` is where the statistic is now (None, "warning" or "drift"); ``hold`` says whether it
    is still beyond the re-arm line. A level fires only when it is above the latched one; the
    latch clears (re-arms) once the statistic is back below the re-arm line.
    """
    if level is None and not hold:
        return None, None
    if _RANK[level] > _RANK[latched]:
        return level, level
    return None, latched


def check_positive_int(owner: str, **values: int) -> None:
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{owner}: {name} must be a positive integer, got {value!r}")


def check_alpha(owner: str, **values: float) -> None:
    for name, value in values.items():
        if not 0.0 < value < 1.0:
            raise ValueError(f"{owner}: {name} must be a probability in (0, 1), got {value!r}")
