"""Property tests for the decoders (``tests/test_schemas.py`` has the event/label JSON-shaped
ones): any bytes, for every decoder, give a record or a dead letter carrying its origin; the
schema version and the future-time tolerance behave at every value."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from riverrun.schemas import Control, DeadLetter, Event, Label, Origin
from riverrun.schemas.decode import decode_control, decode_event, decode_label
from tests.harness.badinput import static_corpus

DECODERS = {
    "event": (decode_event, Event),
    "label": (decode_label, Label),
    "control": (decode_control, Control),
}
REASONS = {
    "empty",
    "oversize",
    "invalid_json",
    "validation",
    "non_finite",
    "unsupported_schema_version",
    "future_timestamp",
}
origins = st.builds(
    Origin,
    st.none() | st.text(max_size=10),
    st.none() | st.integers(0, 100),
    st.none() | st.integers(0, 2**40),
    st.none() | st.text(max_size=10),
)


def _checked(kind: str, payload: bytes, origin: Origin, result) -> None:
    _, model = DECODERS[kind]
    assert isinstance(result, model | DeadLetter)
    if isinstance(result, DeadLetter):
        assert result.reason in REASONS, result
        assert (result.topic, result.partition, result.offset, result.key) == (
            origin.topic,
            origin.partition,
            origin.offset,
            origin.key,
        )
        assert result.kind == kind and result.error
        DeadLetter.model_validate_json(result.model_dump_json())  # a dead letter is always writable


@given(kind=st.sampled_from(sorted(DECODERS)), payload=st.binary(max_size=300), origin=origins)
@settings(max_examples=500)
def test_any_bytes_give_a_record_or_a_dead_letter_with_its_origin(kind, payload, origin):
    decode, _ = DECODERS[kind]
    _checked(kind, payload, origin, decode(payload, origin))


@given(
    kind=st.sampled_from(sorted(DECODERS)),
    bad=st.sampled_from(list(static_corpus())),
    cut=st.integers(0, 60),
    junk=st.binary(max_size=8),
    origin=origins,
)
@settings(max_examples=300)
def test_mutated_corpus_records_never_raise(kind, bad, cut, junk, origin):
    decode, _ = DECODERS[kind]
    payload = bad.payload[:cut] + junk + bad.payload[cut:]
    _checked(kind, payload, origin, decode(payload, origin))


@given(version=st.integers() | st.text(max_size=5) | st.floats(allow_nan=False) | st.none() | st.booleans())
def test_only_the_supported_schema_version_is_accepted(version):
    payload = json.dumps({"event_id": "e", "label": 1, "ts": 0, "schema_version": version}).encode()
    result = decode_label(payload)
    if type(version) is int and version == 1:
        assert isinstance(result, Label)
        assert "schema_version" not in result.model_dump_json()  # never written out
    else:
        assert isinstance(result, DeadLetter) and result.reason == "unsupported_schema_version"


@given(ahead=st.floats(-1e9, 1e9), tolerance=st.floats(0, 1e6))
def test_only_the_future_beyond_the_tolerance_is_refused(ahead, tolerance):
    ts = time.time() + ahead
    payload = json.dumps({"event_id": "e", "entity": "u", "ts": ts, "features": {}}).encode()
    result = decode_event(payload, max_future_seconds=tolerance)
    if ahead > tolerance + 5:  # 5 s: the clock moves while the test runs
        assert isinstance(result, DeadLetter) and result.reason == "future_timestamp"
    elif ahead <= tolerance:
        assert isinstance(result, Event)
        assert decode_event(payload, max_future_seconds=None) == result


@given(
    model=st.text(min_size=1, max_size=20),
    command=st.sampled_from(["rollback", "checkpoint"]),
    version=st.none() | st.integers(1, 2**40),
    ts=st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2025, 1, 1), timezones=st.just(UTC)),
    reason=st.text(max_size=50),
)
def test_control_round_trip(model, command, version, ts, reason):
    control = Control(model=model, command=command, version=version, ts=ts, reason=reason)
    assert decode_control(control.model_dump_json().encode()) == control
