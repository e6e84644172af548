"""Which checkpoints this install may unpickle: the versions that wrote one, and the check.

A checkpoint's header records the Python, River and riverrun versions that wrote it
(``written_by``). River changes its pickles between minor versions (0.25 did), so a checkpoint
written by another River ``major.minor`` is refused *before* it is unpickled, with a message
naming both versions and what to do, instead of a traceback from deep inside pickle or, worse, a
model that loads and predicts wrongly. Patch releases of one minor (0.26.0, 0.26.1) are taken to
read each other's pickles. Python and riverrun versions are recorded, not checked: pickle is
stable across Python versions, and riverrun's own classes keep aliases for their old paths.

>>> check_river("0.26.0", "0.26.1", what="v3 of 'lr'")
>>> check_river("0.25.1", "0.26.1", what="v3 of 'lr'")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
riverrun.errors.IncompatibleCheckpoint: checkpoint v3 of 'lr' was written by River 0.25.1; ...
"""

from __future__ import annotations

import platform
import re

import river

import riverrun
from riverrun.errors import IncompatibleCheckpoint


def written_by() -> dict[str, str]:
    """The versions a checkpoint written now records (header and metadata fields)."""
    return {
        "python_version": platform.python_version(),
        "river_version": river.__version__,
        "riverrun_version": riverrun.__version__,
    }


def _minor(version: str) -> tuple[str, str] | None:
    match = re.match(r"(\d+)\.(\d+)", version)
    return (match[1], match[2]) if match else None


def check_river(written: object, installed: str, *, what: str) -> None:
    """Refuse (``IncompatibleCheckpoint``) a checkpoint written by River ``written`` when this
    install has River ``installed`` and their ``major.minor`` differ (or ``written`` is unknown)."""
    if isinstance(written, str) and _minor(written) is not None and _minor(written) == _minor(installed):
        return
    known = isinstance(written, str) and bool(written)
    by = f"River {written}" if known else "a River version it does not record"
    run_it = f"run it with River {written} (pip install 'river=={written}')" if known else "run it elsewhere"
    raise IncompatibleCheckpoint(
        f"checkpoint {what} was written by {by}; this install has River {installed}: River changes "
        "its pickles between minor versions (0.25 did), so it is not unpickled. To use it: "
        f"{run_it}, or rebuild the model with River {installed} from the same events (`riverrun "
        "replay`, or let the flow retrain) and checkpoint it anew"
    )
