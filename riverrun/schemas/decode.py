"""Bytes in, a valid record or a dead letter out. Never raises on data.

>>> decode_event(b'{"event_id": "e1", "entity": "u", "ts": 0, "features": {}}').event_id
'e1'
>>> dl = decode_event(b'{"event_id": "e1"}', Origin("events", 0, 7))
>>> dl.reason, dl.offset
('validation', 7)
>>> decode_label(b'not json').reason
'invalid_json'
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import UTC, datetime

from pydantic import ValidationError

from riverrun.schemas.records import Control, DeadLetter, Event, Label

#: Default largest accepted payload, in bytes.
DEFAULT_MAX_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a payload came from: a Kafka coordinate or a file and line number."""

    topic: str | None = None
    partition: int | None = None
    offset: int | None = None
    key: str | None = None


_NOWHERE = Origin()


def _payload_text(payload: bytes) -> tuple[str, str]:
    try:
        return payload.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return base64.b64encode(payload).decode("ascii"), "base64"


def dead_letter(kind: str, payload: bytes, origin: Origin, reason: str, error: str) -> DeadLetter:
    """Build the dead letter for ``payload`` (bytes kept verbatim)."""
    text, encoding = _payload_text(payload)
    return DeadLetter(
        payload=text,
        payload_encoding=encoding,
        kind=kind,
        topic=origin.topic,
        partition=origin.partition,
        offset=origin.offset,
        key=origin.key,
        error=error,
        reason=reason,
        at=datetime.now(UTC),
    )


_UNION_MEMBERS = {"bool", "int", "constrained-int", "float", "str", "none"}


def _explain(exc: ValidationError) -> tuple[str, str]:
    """Turn pydantic's error list into (reason, one readable line).

    Union members (``features.x.bool``, ``features.x.int``, ...) are folded into one message
    per field, so NaN reads "features.x: NaN and infinity are not allowed".
    """
    errors = exc.errors(include_url=False)
    if any(e["type"] == "json_invalid" for e in errors):
        return "invalid_json", "; ".join(e["msg"] for e in errors)
    by_field: dict[str, list[str]] = {}
    for e in errors:
        loc = [str(p) for p in e["loc"]]
        if len(loc) > 1 and loc[-1] in _UNION_MEMBERS:
            loc = loc[:-1]
        by_field.setdefault(".".join(loc) or "record", []).append(e["msg"])
    reason = "validation"
    parts = []
    for where, msgs in by_field.items():
        if any("finite number" in m for m in msgs):
            reason = "non_finite"
            msg = "NaN and infinity are not allowed"
        elif len(msgs) > 1 and where == "label":
            msg = "should be a number, string or boolean"
        elif len(msgs) > 1:
            msg = "should be a number, string, boolean or null"
        else:
            msg = msgs[0]
        parts.append(f"{where}: {msg}")
    if len(parts) > 5:
        parts = [*parts[:5], f"... and {len(parts) - 5} more"]
    return reason, "; ".join(parts)


def _decode(model, kind: str, payload: bytes, origin: Origin, max_bytes: int):
    if payload is None or len(payload) == 0:
        return dead_letter(kind, b"", origin, "empty", "empty payload: expected a JSON object")
    if len(payload) > max_bytes:
        msg = f"payload is {len(payload)} bytes, over the limit of {max_bytes}"
        return dead_letter(kind, payload, origin, "oversize", msg)
    try:
        return model.model_validate_json(payload)
    except ValidationError as exc:
        reason, msg = _explain(exc)
        return dead_letter(kind, payload, origin, reason, f"invalid {kind}: {msg}")
    except Exception as exc:
        return dead_letter(kind, payload, origin, "undecodable", f"{type(exc).__name__}: {exc}")


def decode_event(
    payload: bytes, origin: Origin = _NOWHERE, max_bytes: int = DEFAULT_MAX_BYTES
) -> Event | DeadLetter:
    """Validate an event payload (JSON bytes)."""
    return _decode(Event, "event", payload, origin, max_bytes)


def decode_label(
    payload: bytes, origin: Origin = _NOWHERE, max_bytes: int = DEFAULT_MAX_BYTES
) -> Label | DeadLetter:
    """Validate a label payload (JSON bytes)."""
    return _decode(Label, "label", payload, origin, max_bytes)


def decode_control(
    payload: bytes, origin: Origin = _NOWHERE, max_bytes: int = DEFAULT_MAX_BYTES
) -> Control | DeadLetter:
    """Validate an operator command (JSON bytes)."""
    return _decode(Control, "control", payload, origin, max_bytes)
