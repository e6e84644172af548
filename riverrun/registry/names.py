"""Names and version numbers the stores accept: safe as file names and as Redis key parts.

>>> check_name("fraud-v2", "model")
'fraud-v2'
>>> check_name("../etc", "model")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
ValueError: model name '../etc' is not allowed: use 1-128 characters from A-Z a-z 0-9 . _ -, ...
"""

from __future__ import annotations

import re

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")


def check_name(name: str, what: str) -> str:
    """``name`` if it is safe as a file name and a Redis key part, else ``ValueError``."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValueError(
            f"{what} name {name!r} is not allowed: use 1-128 characters from A-Z a-z 0-9 . _ -, "
            "starting with a letter or digit"
        )
    return name


def check_version(version: int) -> int:
    """``version`` if it is a positive ``int`` (not a bool), else ``ValueError``."""
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ValueError(f"version must be a positive integer, not {version!r}")
    return version
