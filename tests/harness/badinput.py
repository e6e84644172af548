"""A corpus of malformed events and labels, and a way to mix it into a valid stream.

Used by the bad-input tests (files and the real broker) and ``benchmarks/bad_input.py``; the
valid stream they mix it into is ``valid_stream`` and ``replay_files`` replays files as they do. Each
``BadRecord`` says which input it goes to (``event`` or ``label``), its raw payload and the dead
letter ``reason`` riverrun must give it. Two families:

* *undecodable* records (``STATIC`` kinds): rejected by ``schemas.decode`` wherever they appear;
* *stream* records, valid JSON that only the join can judge (``mix`` places them next to the
  valid records they refer to): a duplicate event id, a label of the wrong type, a label for an
  unknown event, a label for an event that stopped waiting.

>>> kinds = {b.kind for b in static_corpus()}
>>> len(kinds) >= 20
True
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

from riverrun.schemas import DEFAULT_MAX_BYTES, Event, Label
from riverrun.schemas.records import MAX_FEATURES

Input = Literal["event", "label"]


@dataclass(frozen=True)
class BadRecord:
    """One malformed record: its input, a name for its kind, the bytes, the expected reason."""

    input: Input
    kind: str
    payload: bytes
    reason: str


_TS = 1704067200  # 2024-01-01T00:00:00Z


def _event(**fields) -> bytes:
    record = {"event_id": "bad", "entity": "u", "ts": _TS, "features": {"x": 1.0}, **fields}
    return json.dumps({k: v for k, v in record.items() if v is not _DROP}).encode()


def _label(**fields) -> bytes:
    record = {"event_id": "bad", "label": True, "ts": _TS, **fields}
    return json.dumps({k: v for k, v in record.items() if v is not _DROP}).encode()


_DROP = object()


def static_corpus(now: datetime | None = None) -> Iterator[BadRecord]:
    """Every kind of record the decoders must reject on its own, with its reason."""
    future = int(((now or datetime.now(UTC)) + timedelta(days=30)).timestamp())
    e, lb = "event", "label"
    yield BadRecord(e, "empty", b"", "empty")
    yield BadRecord(e, "whitespace_only", b"   ", "invalid_json")
    yield BadRecord(e, "not_json", b"{not json", "invalid_json")
    yield BadRecord(e, "truncated_json", _event()[:-7], "invalid_json")
    yield BadRecord(e, "invalid_utf8", b'{"event_id": "\xff\xfe", "entity": "u", "ts": 0}', "invalid_json")
    yield BadRecord(e, "utf8_bom", b"\xef\xbb\xbf" + _event(), "invalid_json")
    yield BadRecord(
        e, "deeply_nested", _event()[:-1] + b', "y": ' + b"[" * 5000 + b"]" * 5000 + b"}", "invalid_json"
    )
    yield BadRecord(e, "json_array", b"[1, 2, 3]", "validation")
    yield BadRecord(e, "json_number", b"42", "validation")
    yield BadRecord(e, "json_null", b"null", "validation")
    yield BadRecord(e, "missing_ts", _event(ts=_DROP), "validation")
    yield BadRecord(e, "missing_features", _event(features=_DROP), "validation")
    yield BadRecord(e, "extra_field", _event(colour="red"), "validation")
    yield BadRecord(e, "entity_wrong_type", _event(entity=7), "validation")
    yield BadRecord(e, "features_not_object", _event(features=[1.0, 2.0]), "validation")
    yield BadRecord(e, "feature_nested_object", _event(features={"x": {"y": 1}}), "validation")
    yield BadRecord(e, "feature_nan", _event()[:-2] + b', "z": NaN}}', "non_finite")
    yield BadRecord(e, "feature_infinity", _event()[:-2] + b', "z": -Infinity}}', "non_finite")
    yield BadRecord(e, "naive_timestamp", _event(ts="2024-01-01T00:00:00"), "validation")
    yield BadRecord(e, "timestamp_not_a_time", _event(ts="yesterday"), "validation")
    yield BadRecord(e, "timestamp_boolean", _event(ts=True), "validation")
    yield BadRecord(e, "timestamp_out_of_range", _event(ts=-1e20), "validation")
    yield BadRecord(e, "far_future_timestamp", _event(ts=future), "future_timestamp")
    yield BadRecord(e, "empty_event_id", _event(event_id=""), "validation")
    yield BadRecord(e, "event_id_too_long", _event(event_id="e" * 257), "validation")
    yield BadRecord(e, "feature_name_empty", _event(features={"": 1.0}), "validation")
    features = {f"f{i}": 0.0 for i in range(MAX_FEATURES + 1)}
    yield BadRecord(e, "too_many_features", _event(features=features), "validation")
    big = {"x": "a" * (DEFAULT_MAX_BYTES + 10)}
    yield BadRecord(e, "oversize", _event(features=big), "oversize")
    yield BadRecord(e, "unknown_schema_version", _event(schema_version=2), "unsupported_schema_version")
    yield BadRecord(lb, "label_empty", b"", "empty")
    yield BadRecord(lb, "label_not_json", b"label: yes", "invalid_json")
    yield BadRecord(lb, "label_invalid_utf8", b'{"event_id": "\xc3\x28"}', "invalid_json")
    yield BadRecord(lb, "label_json_string", b'"true"', "validation")
    yield BadRecord(lb, "label_missing", _label(label=_DROP), "validation")
    yield BadRecord(lb, "label_null", _label(label=None), "validation")
    yield BadRecord(lb, "label_list", _label(label=[True]), "validation")
    yield BadRecord(lb, "label_nan", _label()[:-1] + b', "label": NaN}', "non_finite")
    yield BadRecord(lb, "label_extra_field", _label(weight=2), "validation")
    yield BadRecord(lb, "label_naive_timestamp", _label(ts="2024-01-01 00:00:00"), "validation")
    yield BadRecord(lb, "label_far_future", _label(ts=future), "future_timestamp")
    yield BadRecord(
        lb, "label_unknown_schema_version", _label(schema_version="2"), "unsupported_schema_version"
    )


@dataclass
class Mixed:
    """A stream with bad records mixed in: the payloads of each input file (one per line) and,
    for every bad record, (input, line, kind, reason)."""

    events: list[bytes]
    labels: list[bytes]
    expected: list[tuple[Input, int, str, str]]


def mix(
    events: list[Event],
    labels: list[Label],
    ttl_seconds: float,
    share: float | None = None,
    seed: int = 7,
    now: datetime | None = None,
) -> Mixed:
    """Mix the corpus into ``events`` and ``labels`` (sorted by time, one label per event or
    none, a binary stream). ``share=None``: each kind once (plus each stream kind once); else
    bad records are drawn from the corpus until they are ``share`` of all records.

    Stream kinds need room: events at least ``2 * ttl_seconds`` before the end, and some event
    without a label (its late label becomes ``label_expired``)."""
    rng = random.Random(seed)
    static = list(static_corpus(now))
    labelled = {lb.event_id for lb in labels}
    end = events[-1].ts
    early = [e for e in events[20:] if e.ts < end - timedelta(seconds=2 * ttl_seconds)]
    unlabelled = [e for e in early if e.event_id not in labelled]
    if not early or not unlabelled:
        raise ValueError("the stream is too short, or every event has a label")
    # (position in the valid list, bad record): inserted after that valid record
    ev_ins: list[tuple[int, BadRecord]] = []
    lb_ins: list[tuple[int, BadRecord]] = []
    ev_index = {e.event_id: i for i, e in enumerate(events)}
    answered = [e for e in early if e.event_id in labelled]
    lb_index = {lb.event_id: i for i, lb in enumerate(labels)}

    def stream_kinds(k: int) -> list[tuple[str, int, BadRecord]]:
        dup = early[k % len(early)]
        typed = answered[k % len(answered)]
        gone = unlabelled[k % len(unlabelled)]
        when = gone.ts + timedelta(seconds=ttl_seconds + 1)
        late = Label(event_id=gone.event_id, label=True, ts=when)
        at_late = max((i for i, lb in enumerate(labels) if lb.ts <= when), default=0)
        unknown = Label(event_id=f"no-such-event-{k}", label=False, ts=dup.ts)
        at_unknown = max((i for i, lb in enumerate(labels) if lb.ts <= dup.ts), default=0)
        wrong = Label(event_id=typed.event_id, label="cat", ts=labels[lb_index[typed.event_id]].ts)
        return [
            (
                "event",
                ev_index[dup.event_id],
                BadRecord("event", "duplicate_event_id", _dump(dup), "duplicate_event_id"),
            ),
            (
                "label",
                lb_index[typed.event_id] - 1,
                BadRecord("label", "label_wrong_type", _dump(wrong), "label_type"),
            ),
            ("label", at_late, BadRecord("label", "label_for_expired_event", _dump(late), "label_expired")),
            (
                "label",
                at_unknown,
                BadRecord("label", "label_for_unknown_event", _dump(unknown), "unknown_event"),
            ),
        ]

    if share is None:
        picks = static
        extra = stream_kinds(0)
    else:
        n_bad = round(share * (len(events) + len(labels)) / (1 - share))
        n_stream = n_bad // 10
        picks = [rng.choice(static) for _ in range(n_bad - n_stream)]
        extra = [rng.choice(stream_kinds(k)) for k in range(n_stream)]
    for bad in picks:
        if bad.input == "event":
            ev_ins.append((rng.randrange(-1, len(events)), bad))
        else:
            lb_ins.append((rng.randrange(-1, len(labels)), bad))
    for which, at, bad in extra:
        (ev_ins if which == "event" else lb_ins).append((at, bad))
    ev_lines, ev_expected = _weave(events, ev_ins, "event")
    lb_lines, lb_expected = _weave(labels, lb_ins, "label")
    return Mixed(ev_lines, lb_lines, ev_expected + lb_expected)


def _dump(record: Event | Label) -> bytes:
    return record.model_dump_json().encode()


def _weave(valid: list, inserts: list[tuple[int, BadRecord]], which: Input):
    """Lines: each valid record, followed by the bad ones inserted after it (-1: first)."""
    after: dict[int, list[BadRecord]] = {}
    for at, bad in inserts:
        after.setdefault(at, []).append(bad)
    lines: list[bytes] = []
    expected: list[tuple[Input, int, str, str]] = []
    for i in range(-1, len(valid)):
        if i >= 0:
            lines.append(_dump(valid[i]))
        for bad in after.get(i, ()):
            expected.append((which, len(lines), bad.kind, bad.reason))
            lines.append(bad.payload)
    return lines, expected


TTL = 120.0  # label TTL of the bad-input runs (seconds)


def valid_stream() -> tuple[list[Event], list[Label]]:
    """Phishing, one event a second, labels 30 s later; every 25th event is never labelled."""
    from river import datasets

    from riverrun.streams.backtest.synth import to_records

    events, labels = to_records(list(datasets.Phishing()), label_delay=timedelta(seconds=30))
    labels = [lb for i, lb in enumerate(labels) if i % 25 != 24]
    return events, labels


def replay_files(tmp: Path, events: Path, labels: Path) -> tuple[list[dict], list[dict], dict]:
    """``replay`` of the files (``lr``, no features, label TTL ``TTL``) into ``tmp/out``: its
    predictions, dead letters and report."""
    from riverrun.streams.backtest.replay import replay

    out = tmp / "out"
    replay(events, labels, out, models=[("lr", "lr")], features="none", label_ttl_seconds=TTL, plot=False)
    predictions = [json.loads(line) for line in (out / "predictions.jsonl").open()]
    dead = [json.loads(line) for line in (out / "dead-letter.jsonl").open()]
    return predictions, dead, json.loads((out / "report.json").read_text())


__all__ = ["TTL", "BadRecord", "Mixed", "mix", "replay_files", "static_corpus", "valid_stream"]
