"""Data contracts: decoding never raises, dead letters keep the payload, valid records round-trip."""

from __future__ import annotations

import base64
import json
import math
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from riverrun.schemas import (
    DeadLetter,
    Event,
    Label,
    Origin,
    Prediction,
    decode_event,
    decode_label,
    export_json_schemas,
)
from riverrun.schemas.records import MAX_FEATURES
from riverrun.streams.core.items import ServedPrediction

DECODERS = {"event": (decode_event, Event), "label": (decode_label, Label)}

# -- strategies --------------------------------------------------------------------------------

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()  # NaN and +-inf included: json.dumps writes NaN / Infinity
    | st.text(max_size=12)
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
# Timestamps the decoder may see: ISO strings (with or without offset), numbers, garbage.
ts_values = (
    st.integers(-(10**12), 10**12)
    | st.floats()
    | st.datetimes().map(datetime.isoformat)
    | st.datetimes(timezones=st.just(UTC)).map(datetime.isoformat)
    | json_values
)
# Objects shaped like events/labels (field names right, values anything), to reach validation.
record_shaped = st.fixed_dictionaries(
    {},
    optional={
        "event_id": st.text(max_size=5) | json_values,
        "entity": st.text(max_size=5) | json_values,
        "ts": ts_values,
        "features": st.dictionaries(st.text(max_size=5), json_scalars | json_values, max_size=5)
        | json_values,
        "label": json_scalars | json_values,
        "extra": json_values,
    },
)

offsets = st.integers(-(23 * 60 + 59), 23 * 60 + 59).map(lambda m: timezone(timedelta(minutes=m)))
aware_datetimes = st.datetimes(
    min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=offsets
)
ids = st.text(min_size=1, max_size=30)
feature_values = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
valid_events = st.builds(
    Event,
    event_id=ids,
    entity=ids,
    ts=aware_datetimes,
    features=st.dictionaries(st.text(min_size=1, max_size=20), feature_values, max_size=15),
)
valid_labels = st.builds(
    Label,
    event_id=ids,
    label=st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    ts=aware_datetimes,
)


# -- helpers -----------------------------------------------------------------------------------


def original_bytes(dl: DeadLetter) -> bytes:
    if dl.payload_encoding == "utf-8":
        return dl.payload.encode("utf-8")
    assert dl.payload_encoding == "base64"
    return base64.b64decode(dl.payload, validate=True)


NOWHERE = Origin()


def check_result(kind: str, payload: bytes, result, origin: Origin = NOWHERE) -> None:
    """A valid record of the right type, or a dead letter that keeps payload and origin."""
    _, model = DECODERS[kind]
    if isinstance(result, DeadLetter):
        assert result.kind == kind
        assert result.reason and result.reason.strip()
        assert result.error and result.error.strip()
        assert original_bytes(result) == payload
        if result.payload_encoding == "base64":  # only when the bytes are not UTF-8
            with pytest.raises(UnicodeDecodeError):
                payload.decode("utf-8")
        assert (result.topic, result.partition, result.offset, result.key) == (
            origin.topic,
            origin.partition,
            origin.offset,
            origin.key,
        )
        assert result.at.tzinfo is not None
        return
    assert type(result) is model
    assert result.ts.tzinfo is not None and result.ts.utcoffset() is not None
    assert result.event_id
    # A record that was accepted revalidates, and serialises (no NaN, nothing unrepresentable).
    assert model.model_validate_json(result.model_dump_json()) == result
    values = list(result.features.values()) if kind == "event" else [result.label]
    for v in values:
        if isinstance(v, float):
            assert math.isfinite(v)


# -- never raise -------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["event", "label"])
@given(payload=st.binary(max_size=300))
@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_decoders_never_raise_on_arbitrary_bytes(kind, payload):
    decode, _ = DECODERS[kind]
    origin = Origin("topic-x", 2, 99, "key-x")
    check_result(kind, payload, decode(payload, origin), origin)


@pytest.mark.parametrize("kind", ["event", "label"])
@given(value=json_values | record_shaped)
@settings(max_examples=300)
def test_decoders_never_raise_on_arbitrary_json(kind, value):
    decode, _ = DECODERS[kind]
    payload = json.dumps(value).encode()  # NaN/Infinity written as JSON5-ish tokens on purpose
    check_result(kind, payload, decode(payload))


@pytest.mark.parametrize("kind", ["event", "label"])
@given(value=record_shaped, junk=st.binary(min_size=1, max_size=4))
def test_decoders_never_raise_on_corrupted_json(kind, value, junk):
    decode, _ = DECODERS[kind]
    text = json.dumps(value).encode()
    payload = text[: len(text) // 2] + junk + text[len(text) // 2 :]
    check_result(kind, payload, decode(payload))


# -- round trip --------------------------------------------------------------------------------


@given(event=valid_events)
@settings(max_examples=300)
def test_event_round_trip(event):
    payload = event.model_dump_json().encode()
    back = decode_event(payload, max_bytes=len(payload) + 1, max_future_seconds=None)
    assert isinstance(back, Event), getattr(back, "error", back)
    assert back == event
    # same instant *and* same offset, and every feature keeps its JSON type
    assert back.ts.utcoffset() == event.ts.utcoffset()
    assert back.ts.replace(tzinfo=None) == event.ts.replace(tzinfo=None)
    assert [type(v) for v in back.features.values()] == [type(v) for v in event.features.values()]


@given(label=valid_labels)
@settings(max_examples=200)
def test_label_round_trip(label):
    back = decode_label(label.model_dump_json().encode(), max_future_seconds=None)
    assert isinstance(back, Label), getattr(back, "error", back)
    assert back == label
    assert type(back.label) is type(label.label)
    assert back.ts.utcoffset() == label.ts.utcoffset()


# -- malformed payloads, reason by reason --------------------------------------------------------


def event_json(**fields) -> bytes:
    base = {"event_id": "e1", "entity": "u1", "ts": 1704067200, "features": {"x": 1.0}}
    base.update(fields)
    return json.dumps({k: v for k, v in base.items() if v is not ...}).encode()


MALFORMED_EVENTS = [
    ("bad json", b"{not json", "invalid_json", "Invalid JSON"),
    ("truncated json", b'{"event_id": "e1", "entity": ', "invalid_json", "Invalid JSON"),
    (
        "invalid utf-8",
        b'{"event_id": "\xff\xfe", "entity": "u", "ts": 0, "features": {}}',
        "invalid_json",
        "",
    ),
    ("json array", b"[1, 2]", "validation", "object"),
    ("json null", b"null", "validation", "object"),
    ("event_id a number", event_json(event_id=5), "validation", "event_id"),
    ("features a list", event_json(features=[1, 2]), "validation", "features"),
    ("feature a list", event_json(features={"x": [1]}), "validation", "features.x"),
    ("feature an object", event_json(features={"x": {"y": 1}}), "validation", "features.x"),
    ("ts a bool", event_json(ts=True), "validation", "ts"),
    ("ts garbage", event_json(ts="yesterday"), "validation", "ts"),
    ("missing ts", event_json(ts=...), "validation", "ts: Field required"),
    ("missing everything", b"{}", "validation", "event_id: Field required"),
    ("extra field", event_json(colour="red"), "validation", "colour: Extra inputs are not permitted"),
    ("NaN feature", b'{"event_id":"e","entity":"u","ts":0,"features":{"x":NaN}}', "non_finite", "features.x"),
    (
        "Infinity",
        b'{"event_id":"e","entity":"u","ts":0,"features":{"x":Infinity}}',
        "non_finite",
        "features.x",
    ),
    ("-Infinity", b'{"event_id":"e","entity":"u","ts":0,"features":{"x":-Infinity}}', "non_finite", "NaN"),
    (
        "float overflow",
        b'{"event_id":"e","entity":"u","ts":0,"features":{"x":1e400}}',
        "non_finite",
        "features.x",
    ),
    ("naive timestamp", event_json(ts="2024-01-01T00:00:00"), "validation", "timezone"),
    ("empty event_id", event_json(event_id=""), "validation", "event_id"),
    ("empty entity", event_json(entity=""), "validation", "entity"),
    ("empty feature name", event_json(features={"": 1}), "validation", "features"),
    ("event_id too long", event_json(event_id="e" * 257), "validation", "event_id"),
    ("empty payload", b"", "empty", "empty payload"),
    (
        "too many features",
        event_json(features={f"f{i}": i for i in range(MAX_FEATURES + 1)}),
        "validation",
        "at most 1000",
    ),
]


@pytest.mark.parametrize(
    ("payload", "reason", "fragment"),
    [c[1:] for c in MALFORMED_EVENTS],
    ids=[c[0] for c in MALFORMED_EVENTS],
)
def test_malformed_event_reasons(payload, reason, fragment):
    origin = Origin("events", 1, 17, "k")
    dl = decode_event(payload, origin)
    assert isinstance(dl, DeadLetter), dl
    assert dl.reason == reason, dl.error
    assert fragment in dl.error
    check_result("event", payload, dl, origin)


def test_exactly_max_features_is_accepted():
    payload = event_json(features={f"f{i}": i for i in range(MAX_FEATURES)})
    event = decode_event(payload)
    assert isinstance(event, Event)
    assert len(event.features) == MAX_FEATURES


def test_invalid_utf8_payload_is_kept_as_base64():
    payload = b"\x80\x81{garbage\xff"
    dl = decode_event(payload)
    assert isinstance(dl, DeadLetter)
    assert dl.payload_encoding == "base64"
    assert base64.b64decode(dl.payload) == payload


def test_oversize_payload_refused_before_parsing():
    payload = event_json(features={"x": "a" * 500})
    ok = decode_event(payload, max_bytes=len(payload))
    assert isinstance(ok, Event)  # exactly at the limit is fine
    dl = decode_event(payload, max_bytes=len(payload) - 1)
    assert isinstance(dl, DeadLetter)
    assert dl.reason == "oversize"
    assert str(len(payload)) in dl.error and str(len(payload) - 1) in dl.error
    assert original_bytes(dl) == payload
    # also for bytes that are not even UTF-8
    dl = decode_label(b"\xff" * 100, max_bytes=10)
    assert (dl.reason, dl.payload_encoding) == ("oversize", "base64")
    assert base64.b64decode(dl.payload) == b"\xff" * 100


def test_default_max_bytes_is_64k():
    big = event_json(features={"x": "a" * (64 * 1024)})
    dl = decode_event(big)
    assert isinstance(dl, DeadLetter)
    assert dl.reason == "oversize"


MALFORMED_LABELS = [
    ("label a list", b'{"event_id":"e","label":[1],"ts":0}', "validation", "label"),
    ("label an object", b'{"event_id":"e","label":{"a":1},"ts":0}', "validation", "label"),
    ("label null", b'{"event_id":"e","label":null,"ts":0}', "validation", "label"),
    ("label NaN", b'{"event_id":"e","label":NaN,"ts":0}', "non_finite", "label"),
    ("label missing", b'{"event_id":"e","ts":0}', "validation", "label: Field required"),
    ("label extra", b'{"event_id":"e","label":true,"ts":0,"x":1}', "validation", "x: Extra inputs"),
    ("label naive ts", b'{"event_id":"e","label":true,"ts":"2024-01-01T00:00:00"}', "validation", "ts"),
    ("label empty id", b'{"event_id":"","label":true,"ts":0}', "validation", "event_id"),
    ("label bad json", b'{"event_id":"e",', "invalid_json", "Invalid JSON"),
    ("label empty", b"", "empty", "empty"),
]


@pytest.mark.parametrize(
    ("payload", "reason", "fragment"),
    [c[1:] for c in MALFORMED_LABELS],
    ids=[c[0] for c in MALFORMED_LABELS],
)
def test_malformed_label_reasons(payload, reason, fragment):
    dl = decode_label(payload, Origin("labels", 0, 3))
    assert isinstance(dl, DeadLetter), dl
    assert dl.kind == "label"
    assert dl.reason == reason, dl.error
    assert fragment in dl.error
    assert dl.error.startswith("invalid label") or reason == "empty"
    check_result("label", payload, dl, Origin("labels", 0, 3))


@pytest.mark.parametrize("label", [True, False, 0, 3, -7, 2.5, "cat", ""])
def test_label_value_kinds_accepted(label):
    lb = decode_label(json.dumps({"event_id": "e", "label": label, "ts": 0}).encode())
    assert isinstance(lb, Label)
    assert lb.label == label and type(lb.label) is type(label)


# -- timestamps --------------------------------------------------------------------------------

T0 = datetime(2024, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("ts", "expected", "offset"),
    [
        ("2024-01-01T00:00:00+00:00", T0, timedelta(0)),
        ("2024-01-01T00:00:00Z", T0, timedelta(0)),
        ("2024-01-01T05:30:00+05:30", T0, timedelta(hours=5, minutes=30)),
        ("2023-12-31T19:00:00.250-05:00", T0 + timedelta(milliseconds=250), timedelta(hours=-5)),
        (1704067200, T0, timedelta(0)),
        (1704067200.5, T0 + timedelta(milliseconds=500), timedelta(0)),
        (0, datetime(1970, 1, 1, tzinfo=UTC), timedelta(0)),
    ],
)
def test_timestamps_iso_and_epoch_are_aware(ts, expected, offset):
    for decode, record in (
        (decode_event, {"event_id": "e", "entity": "u", "ts": ts, "features": {}}),
        (decode_label, {"event_id": "e", "label": True, "ts": ts}),
    ):
        r = decode(json.dumps(record).encode())
        assert not isinstance(r, DeadLetter), r.error
        assert r.ts.tzinfo is not None
        assert r.ts.utcoffset() == offset
        assert r.ts == expected


# -- origin ------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["event", "label"])
@pytest.mark.parametrize("payload", [b"{oops", b"", b'{"event_id": ""}', b"\xff\xfe"])
def test_origin_copied_into_dead_letter(kind, payload):
    decode, _ = DECODERS[kind]
    dl = decode(payload, Origin(topic="in-topic", partition=4, offset=123456, key="user-9"))
    assert isinstance(dl, DeadLetter)
    assert (dl.kind, dl.topic, dl.partition, dl.offset, dl.key) == (kind, "in-topic", 4, 123456, "user-9")
    # the dead letter itself is a valid, serialisable record
    assert DeadLetter.model_validate_json(dl.model_dump_json()) == dl


def test_no_origin_leaves_coordinates_empty():
    dl = decode_event(b"{")
    assert (dl.topic, dl.partition, dl.offset, dl.key) == (None, None, None, None)


# -- JSON Schema export ------------------------------------------------------------------------

EXPECTED_REQUIRED = {
    "event": {"event_id", "entity", "ts", "features"},
    "label": {"event_id", "label", "ts"},
    "prediction": {"event_id", "entity", "model", "model_version", "y_pred", "proba", "ts", "served_at"},
    "dead-letter": {"payload", "kind", "error", "reason", "at"},
    "model-event": {"model", "action", "reason", "at"},
    "control": {"model", "command", "ts"},
}
JSON_TYPES = {"object", "array", "string", "number", "integer", "boolean", "null"}


def _check_subschema(node, defs: dict, where: str) -> None:
    """Structural validity of a (sub)schema: known types, resolvable refs, well-formed combinators."""
    assert isinstance(node, dict), where
    if "$ref" in node:
        ref = node["$ref"]
        assert ref.startswith("#/$defs/") and ref.split("/")[-1] in defs, f"{where}: dangling {ref}"
    if "type" in node:
        types = node["type"] if isinstance(node["type"], list) else [node["type"]]
        assert set(types) <= JSON_TYPES, where
    for key in ("anyOf", "oneOf", "allOf"):
        if key in node:
            assert isinstance(node[key], list) and node[key], where
            for i, sub in enumerate(node[key]):
                _check_subschema(sub, defs, f"{where}.{key}[{i}]")
    for key in ("items", "additionalProperties", "propertyNames"):
        if isinstance(node.get(key), dict):
            _check_subschema(node[key], defs, f"{where}.{key}")
    for name, sub in node.get("properties", {}).items():
        _check_subschema(sub, defs, f"{where}.{name}")
    if "required" in node:
        assert isinstance(node["required"], list)
        assert len(set(node["required"])) == len(node["required"])
        assert set(node["required"]) <= set(node.get("properties", {})), where
    if "enum" in node:
        assert isinstance(node["enum"], list) and node["enum"]
    for key in ("minLength", "maxLength", "maxProperties"):
        if key in node:
            assert isinstance(node[key], int) and node[key] >= 0


def test_export_json_schemas(tmp_path):
    out = tmp_path / "nested" / "schemas"
    paths = export_json_schemas(out)
    assert len(paths) == len(EXPECTED_REQUIRED)
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{n}.schema.json" for n in EXPECTED_REQUIRED)
    for path in paths:
        name = path.name.removesuffix(".schema.json")
        schema = json.loads(path.read_text())
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        assert schema["$id"] == f"riverrun/{name}.schema.json"
        assert schema["type"] == "object"
        assert schema["additionalProperties"] is False  # extra="forbid" is part of the contract
        assert set(schema["required"]) == EXPECTED_REQUIRED[name]
        _check_subschema(schema, schema.get("$defs", {}), name)
        for sub in schema.get("$defs", {}).values():
            _check_subschema(sub, schema["$defs"], name)
    event = json.loads((out / "event.schema.json").read_text())
    assert event["properties"]["features"]["maxProperties"] == MAX_FEATURES
    assert event["properties"]["event_id"]["minLength"] == 1
    dead = json.loads((out / "dead-letter.schema.json").read_text())
    assert set(dead["properties"]["payload_encoding"]["enum"]) == {"utf-8", "base64"}


def test_export_is_idempotent(tmp_path):
    first = {p.name: p.read_text() for p in export_json_schemas(tmp_path)}
    second = {p.name: p.read_text() for p in export_json_schemas(tmp_path)}
    assert first == second


def test_exported_schema_admits_epoch_seconds(tmp_path):
    export_json_schemas(tmp_path)
    for name in ("event", "label"):
        ts = json.loads((tmp_path / f"{name}.schema.json").read_text())["properties"]["ts"]
        alternatives = ts.get("anyOf", [ts])
        types = {a.get("type") for a in alternatives}
        assert types & {"number", "integer"}, f"{name}.ts admits only {types}"


def test_served_prediction_json_is_a_valid_prediction():
    now = datetime(2024, 1, 1, tzinfo=UTC)
    served = ServedPrediction("e1", "u1", "lr", 3, True, {"true": 0.7, "false": 0.3}, now, now)
    parsed = Prediction.model_validate_json(served.to_json())
    assert parsed.model_dump() == {
        "event_id": "e1",
        "entity": "u1",
        "model": "lr",
        "model_version": 3,
        "y_pred": True,
        "proba": {"true": 0.7, "false": 0.3},
        "ts": now,
        "served_at": now,
    }
    assert set(json.loads(served.to_json())) == set(Prediction.model_fields)
