"""``VersionMeta``: what the registry records about one saved model version.

>>> meta = VersionMeta(model="fraud", version=2, parent=1, recipe="lr", n_learned=500,
...     metrics={"accuracy": 0.9}, event_time_start=None, event_time_end=None, reason="drift",
...     created_at="2025-01-01T00:00:00+00:00", model_class="river.compose.pipeline.Pipeline",
...     river_version="0.26.1", python_version="3.11.7", format_version=1, size_bytes=10, sha256="0")
>>> VersionMeta.from_dict(meta.to_dict()) == meta
True
>>> meta.to_dict()["metrics"]
{'accuracy': 0.9}
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import datetime
from types import MappingProxyType
from typing import Any

from riverrun.errors import CheckpointError


def check_event_time(value: str | None, what: str) -> str | None:
    """``value`` if ``None`` or a timezone-aware ISO 8601 timestamp, else ``ValueError``."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be an ISO 8601 timestamp or None, not {value!r}") from None
    if parsed.tzinfo is None:
        raise ValueError(f"{what} {value!r} has no timezone: use e.g. '2025-01-01T00:00:00+00:00'")
    return value


@dataclasses.dataclass(frozen=True, slots=True)
class VersionMeta:
    """Immutable metadata of one version; ``metrics`` and ``source_offsets`` are read-only maps."""

    model: str
    version: int
    parent: int | None
    recipe: str
    n_learned: int
    metrics: Mapping[str, float]
    event_time_start: str | None
    event_time_end: str | None
    reason: str
    created_at: str
    model_class: str
    river_version: str
    python_version: str
    format_version: int
    size_bytes: int
    sha256: str
    source_offsets: Mapping[str, int] = dataclasses.field(default_factory=dict)
    riverrun_version: str = ""  # "" in metadata written before riverrun recorded it

    def __post_init__(self) -> None:
        object.__setattr__(self, "metrics", MappingProxyType(dict(self.metrics)))
        object.__setattr__(self, "source_offsets", MappingProxyType(dict(self.source_offsets)))

    def to_dict(self) -> dict[str, Any]:
        """A plain, JSON-able dict (fresh copies of the maps)."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out["metrics"] = dict(self.metrics)
        out["source_offsets"] = dict(self.source_offsets)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> VersionMeta:
        """The inverse of ``to_dict``; ``CheckpointError`` on missing or unknown fields."""
        names = {f.name for f in dataclasses.fields(cls)}
        required = {
            f.name
            for f in dataclasses.fields(cls)
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        }
        if missing := required - data.keys():
            raise CheckpointError(f"version metadata lacks {sorted(missing)}")
        if unknown := data.keys() - names:
            raise CheckpointError(f"version metadata has unknown fields {sorted(unknown)}")
        return cls(**data)
