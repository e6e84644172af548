"""Small text helpers."""

from __future__ import annotations


def flat(text: str) -> str:
    """argparse wraps to the terminal width: compare with whitespace collapsed."""
    return " ".join(text.split())
