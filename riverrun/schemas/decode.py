"""Bytes in, a valid record or a dead letter out. Never raises on data.

>>> decode_event(b'{"event_id": "e1", "entity": "u", "ts": 0, "features": {}}').event_id
'e1'
>>> dl = decode_event(b'{"event_id": "e1"}', Origin("events", 0, 7))
>>> dl.reason, dl.offset
('validation', 7)
>>> decode_label(b'not json').reason
'invalid_json'
>>> decode_label(b'{"event_id": "e1", "label": 1, "ts": 0, "schema_version": 2}').reason
'unsupported_schema_version'
>>> decode_event(b'{"event_id": "e1", "entity": "u", "ts": 9e9, "features": {}}').reason
'future_timestamp'

Reasons (stable; dashboards and re-feeding tools key on them): ``empty``, ``oversize``,
``invalid_json`` (not JSON, or not UTF-8), ``validation`` (wrong shape, type, missing or extra
field, naive timestamp, id too long, too many features, ...), ``non_finite`` (NaN/inf),
``unsupported_schema_version``, ``future_timestamp`` (event time more than ``max_future_seconds``
ahead of the wall clock; history of any age replays), ``undecodable`` (anything else).
"""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from pydantic import ValidationError

from riverrun.schemas.records import SCHEMA_VERSION, Control, DeadLetter, Event, Label

#: Default largest accepted payload, in bytes.
DEFAULT_MAX_BYTES = 64 * 1024
#: Default tolerance for event times ahead of the wall clock (producer clock skew), in seconds.
#: Only the future is refused: a replay of last year's history is valid input.
DEFAULT_MAX_FUTURE_SECONDS = 3600.0


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
    for e in errors:
        if e["loc"][:1] == ("schema_version",):
            msg = f"schema_version {e.get('input')!r} is not supported (this riverrun reads {SCHEMA_VERSION})"
            return "unsupported_schema_version", msg
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


def _decode(model, kind: str, payload: bytes, origin: Origin, max_bytes: int, max_future: float | None):
    if payload is None or len(payload) == 0:
        return dead_letter(kind, b"", origin, "empty", "empty payload: expected a JSON object")
    try:
        if len(payload) > max_bytes:
            msg = f"payload is {len(payload)} bytes, over the limit of {max_bytes}"
            return dead_letter(kind, payload, origin, "oversize", msg)
        record = model.model_validate_json(payload)
        if max_future is not None:
            ahead = record.ts.timestamp() - time.time()
            if ahead > max_future:
                msg = (
                    f"invalid {kind}: ts {record.ts.isoformat()} is {ahead:.0f} s ahead of the wall clock "
                    f"(tolerance {max_future:g} s)"
                )
                return dead_letter(kind, payload, origin, "future_timestamp", msg)
        return record
    except ValidationError as exc:
        reason, msg = _explain(exc)
        return dead_letter(kind, payload, origin, reason, f"invalid {kind}: {msg}")
    except Exception as exc:
        return dead_letter(kind, bytes(payload), origin, "undecodable", f"{type(exc).__name__}: {exc}")


def decode_event(
    payload: bytes,
    origin: Origin = _NOWHERE,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_future_seconds: float | None = DEFAULT_MAX_FUTURE_SECONDS,
) -> Event | DeadLetter:
    """Validate an event payload (JSON bytes); ``max_future_seconds=None`` accepts any time."""
    return _decode(Event, "event", payload, origin, max_bytes, max_future_seconds)


def decode_label(
    payload: bytes,
    origin: Origin = _NOWHERE,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_future_seconds: float | None = DEFAULT_MAX_FUTURE_SECONDS,
) -> Label | DeadLetter:
    """Validate a label payload (JSON bytes); ``max_future_seconds=None`` accepts any time."""
    return _decode(Label, "label", payload, origin, max_bytes, max_future_seconds)


def decode_control(
    payload: bytes,
    origin: Origin = _NOWHERE,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_future_seconds: float | None = DEFAULT_MAX_FUTURE_SECONDS,
) -> Control | DeadLetter:
    """Validate an operator command (JSON bytes); ``max_future_seconds=None`` accepts any time."""
    return _decode(Control, "control", payload, origin, max_bytes, max_future_seconds)
