"""EntityFeatures against brute force, LabelJoin counters and TTL boundaries, ModelStep bookkeeping."""

from __future__ import annotations

import copy
import pickle
import random
from collections import deque
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from river import datasets

from riverrun.schemas import DeadLetter, Event, Label, decode_event, decode_label
from riverrun.streams.backtest.synth import to_records
from riverrun.streams.core.features import EntityFeatures, identity_features
from riverrun.streams.core.items import FeaturedEvent, MetricsPoint, ServedPrediction, SourcedLabel
from riverrun.streams.core.join import LabelJoin
from riverrun.streams.core.modelstep import ModelStep, StepConfig
from riverrun.streams.core.ordering import EVENT, LABEL, Sequencer

BASE = 1_704_067_200.0  # 2024-01-01T00:00:00Z


def at(seconds: float) -> datetime:
    return datetime.fromtimestamp(BASE + seconds, UTC)


def ev(event_id: str, seconds: float, features: dict | None = None, entity: str = "u") -> Event:
    return Event(event_id=event_id, entity=entity, ts=at(seconds), features=features or {"x": 1.0})


def lb(event_id: str, seconds: float, label=True) -> Label:
    return Label(event_id=event_id, label=label, ts=at(seconds))


# -- EntityFeatures ----------------------------------------------------------------------------


def brute_force(events: list[Event], window: float) -> list[dict]:
    """Recompute every feature vector from scratch (events in non-decreasing event time)."""
    out = []
    for i, e in enumerate(events):
        ts = e.ts.timestamp()
        x = dict(e.features)
        x["entity_event_count"] = i + 1
        if i > 0:
            x["entity_seconds_since_last"] = ts - events[i - 1].ts.timestamp()
        in_window = [p for p in events[: i + 1] if p.ts.timestamp() >= ts - window]
        for k, v in e.features.items():
            if isinstance(v, bool) or not isinstance(v, int | float):
                continue
            vals = [
                float(p.features[k])
                for p in in_window
                if k in p.features
                and isinstance(p.features[k], int | float)
                and not isinstance(p.features[k], bool)
            ]
            x[f"{k}_mean_{window:g}s"] = sum(vals) / len(vals)
        out.append(x)
    return out


def assert_vectors_equal(got: dict, expected: dict) -> None:
    assert set(got) == set(expected)
    for k, v in expected.items():
        if isinstance(v, float) and not isinstance(got[k], bool):
            assert got[k] == pytest.approx(v, rel=1e-9, abs=1e-6), k
        else:
            assert got[k] == v and type(got[k]) is type(v), k


feature_value = (
    st.none()
    | st.booleans()
    | st.integers(-1000, 1000)
    | st.floats(-1000, 1000, allow_nan=False)
    | st.sampled_from(["red", "blue"])
)
streams = st.lists(
    st.tuples(
        st.integers(0, 40).map(lambda q: q / 4),  # gaps in quarter seconds, zero gaps included
        st.dictionaries(st.sampled_from(["a", "b", "c"]), feature_value, max_size=3),
    ),
    min_size=1,
    max_size=60,
)


def make_stream(spec) -> list[Event]:
    t, events = 0.0, []
    for i, (gap, features) in enumerate(spec):
        t += gap
        events.append(ev(f"e{i}", t, features))
    return events


@given(spec=streams, window=st.sampled_from([1.0, 2.5, 10.0, 60.0]))
@settings(max_examples=150, deadline=None)
def test_entity_features_match_brute_force(spec, window):
    events = make_stream(spec)
    state = EntityFeatures(window_seconds=window)
    before = [copy.deepcopy(dict(e.features)) for e in events]
    got = [state.transform(e) for e in events]
    for g, e in zip(got, brute_force(events, window), strict=True):
        assert_vectors_equal(g, e)
    # the events' feature dicts are never mutated, and the output is a new dict
    assert [dict(e.features) for e in events] == before
    assert all(g is not e.features for g, e in zip(got, events, strict=True))
    assert state.count == len(events)


def test_entity_features_seeded_long_stream():
    rng = random.Random(7)
    t, events = 0.0, []
    for i in range(800):
        t += rng.choice([0.0, 0.5, 1.0, 3.0, 20.0])
        features = {"amount": rng.uniform(0, 100), "n": rng.randint(0, 9), "flag": rng.random() < 0.5}
        if rng.random() < 0.2:
            del features["amount"]
        events.append(ev(f"e{i}", t, features))
    state = EntityFeatures(window_seconds=30.0)
    for g, e in zip([state.transform(e) for e in events], brute_force(events, 30.0), strict=True):
        assert_vectors_equal(g, e)


def test_entity_features_first_event_and_window_boundary():
    state = EntityFeatures(window_seconds=10)
    first = state.transform(ev("a", 0, {"x": 2.0, "s": "str", "b": True, "n": None}))
    assert first == {"x": 2.0, "s": "str", "b": True, "n": None, "entity_event_count": 1, "x_mean_10s": 2.0}
    # exactly window_seconds later: the first event is still inside the window (inclusive)
    assert state.transform(ev("b", 10, {"x": 4.0}))["x_mean_10s"] == 3.0
    # just after: it left
    third = state.transform(ev("c", 10.25, {"x": 6.0}))
    assert third["x_mean_10s"] == 5.0
    assert third["entity_seconds_since_last"] == 0.25
    assert third["entity_event_count"] == 3


def test_entity_features_output_changes_do_not_leak_into_state():
    state = EntityFeatures(window_seconds=60)
    e = ev("a", 0, {"x": 1.0})
    x = state.transform(e)
    x["x"] = 999.0
    x["entity_event_count"] = 999
    assert e.features == {"x": 1.0}
    assert state.transform(ev("b", 1, {"x": 3.0}))["x_mean_60s"] == 2.0


@given(spec=streams, cut=st.integers(0, 60))
@settings(max_examples=60, deadline=None)
def test_entity_features_pickle_round_trip_continues_identically(spec, cut):
    events = make_stream(spec)
    cut = min(cut, len(events))
    state = EntityFeatures(window_seconds=5.0)
    for e in events[:cut]:
        state.transform(e)
    clone = pickle.loads(pickle.dumps(state))
    assert clone.count == state.count and clone.last_ts == state.last_ts
    for e in events[cut:]:
        assert clone.transform(e) == state.transform(e)


@pytest.mark.parametrize("form", ["dict", "tuple"])
def test_entity_features_restore_from_earlier_states(form):
    """Recovery snapshots of the two earlier layouts still load and go on exactly: a dict of
    every slot (before 2026-12), then a tuple with a deque of ``(ts, {name: value})`` windows
    (until 2026-12-08)."""
    state = EntityFeatures(window_seconds=60)
    for t in range(5):
        state.transform(ev("a", t, {"x": float(t)}))
    base = ev("a", 0, {}).ts.timestamp()
    window = deque((base + t, {"x": float(t)}) for t in range(5))
    sums, since_resum = {"x": [10.0, 5]}, 4
    if form == "dict":
        earlier = {"window_seconds": 60, "count": 5, "last_ts": base + 4, "_window": window,
                   "_sums": sums, "_names": {}, "_since_resum": since_resum}  # fmt: skip
    else:
        earlier = (60, 5, base + 4, window, sums, since_resum)
    clone = EntityFeatures.__new__(EntityFeatures)
    clone.__setstate__(copy.deepcopy(earlier))
    for t in (6, 30, 70, 200):
        assert clone.transform(ev("a", t, {"x": float(t)})) == state.transform(ev("a", t, {"x": float(t)}))


def test_entity_features_snapshot_round_trip_goes_on_exactly():
    state = EntityFeatures(window_seconds=10)
    for t in range(30):
        state.transform(ev("a", t * 0.7, {"x": t * 1.5, "y": -t}))
    clone = pickle.loads(pickle.dumps(state))
    for t in range(30, 60):
        e = ev("a", t * 0.7, {"x": t * 1.5, "y": -t})
        assert clone.transform(e) == state.transform(e)


def test_identity_features_is_a_copy():
    e = ev("a", 0, {"x": 1.0, "s": "v"})
    x = identity_features(e)
    assert x == {"x": 1.0, "s": "v"}
    x["x"] = 2.0
    assert e.features["x"] == 1.0


def test_rolling_mean_recovers_after_a_huge_value_leaves_the_window():
    state = EntityFeatures(window_seconds=60)
    state.transform(ev("a", 0, {"x": 1e17}))
    assert state.transform(ev("b", 100, {"x": 1.0}))["x_mean_60s"] == 1.0


def test_huge_integer_feature_is_refused_before_the_features_step():
    """A 401-digit integer would overflow float() in the features step: the schema refuses
    integers beyond 64 bits, so it becomes a dead letter instead."""
    dl = decode_event(b'{"event_id":"e","entity":"u","ts":0,"features":{"x":1' + b"0" * 400 + b"}}")
    assert isinstance(dl, DeadLetter)
    assert dl.reason == "non_finite" and "features.x" in dl.error  # as a float it is infinite
    event = decode_event(b'{"event_id":"e","entity":"u","ts":0,"features":{"x":9223372036854775807}}')
    assert EntityFeatures(60).transform(event)["x_mean_60s"] == float(2**63 - 1)


# -- LabelJoin ---------------------------------------------------------------------------------


def test_join_counts_joined_early_and_expired():
    j = LabelJoin(ttl_seconds=10)
    j.add_event("e1", 0.0, {"x": 1})
    j.add_event("e2", 1.0, {"x": 2})
    assert j.n_pending_events == 2 and j.is_pending("e1")
    assert j.match_label("e1", 3.0, True) == {"x": 1}
    assert (j.n_joined, j.n_pending_events, j.is_pending("e1")) == (1, 1, False)
    assert j.match_label("e9", 4.0, False) is None  # no such event yet
    assert (j.n_early_labels, j.n_pending_labels) == (1, 1)
    assert j.has_early_label("e9")
    assert j.expire(11.5) == ["e2"]  # 1 + 10 < 11.5
    assert (j.n_expired_events, j.n_pending_events) == (1, 0)
    assert j.take_early_label("e9") == (False, 4.0)
    assert (j.n_joined, j.n_pending_labels) == (2, 0)
    assert j.take_early_label("e9") is None
    assert j.n_joined == 2


@pytest.mark.parametrize("ttl", [1.0, 10.0, 86_400.0])
def test_join_ttl_boundary_for_events(ttl):
    ts = BASE + 123.0
    j = LabelJoin(ttl_seconds=ttl)
    j.add_event("on-time", ts, {"k": 1})
    assert j.expire(ts + ttl) == []  # a label exactly at ts + ttl still finds its event
    assert j.match_label("on-time", ts + ttl) == {"k": 1}
    j.add_event("late", ts, {"k": 2})
    assert j.expire(ts + ttl + 1e-3) == ["late"]
    assert j.match_label("late", ts + ttl + 1e-3) is None  # now only an (orphan) early label
    assert (j.n_joined, j.n_expired_events) == (1, 1)


def test_join_ttl_boundary_for_early_labels():
    j = LabelJoin(ttl_seconds=5)
    assert j.match_label("a", 10.0, "y") is None
    assert j.match_label("b", 10.0, "z") is None
    j.expire(15.0)  # exactly label ts + ttl: still waiting
    assert j.n_pending_labels == 2 and j.n_expired_labels == 0
    j.expire(15.5)
    assert j.n_pending_labels == 0 and j.n_expired_labels == 2
    assert j.take_early_label("a") is None


def test_join_expire_stops_at_first_live_deadline():
    j = LabelJoin(ttl_seconds=10)
    for i in range(5):
        j.add_event(f"e{i}", float(i), {})
    assert j.expire(12.5) == ["e0", "e1", "e2"]
    assert j.n_pending_events == 2 and j.n_expired_events == 3


# -- ModelStep ---------------------------------------------------------------------------------


def fe(event: Event, offset: int = 0) -> FeaturedEvent:
    return FeaturedEvent(event, dict(event.features), 0, offset)


def sl(label: Label, offset: int = 0) -> SourcedLabel:
    return SourcedLabel(label, 0, offset)


def feed_in_order(step: ModelStep, items: list) -> list:
    out = []
    for seq, item in enumerate(items):
        out += step.on_item(seq, item)
    return out


def predictions(out: list) -> list[ServedPrediction]:
    return [o for o in out if isinstance(o, ServedPrediction)]


def dead(out: list) -> list[DeadLetter]:
    return [o for o in out if isinstance(o, DeadLetter)]


def test_duplicate_event_id_while_pending_is_a_dead_letter():
    step = ModelStep(StepConfig(model="m", recipe="lr"))
    first = ev("e1", 0, {"x": 1.0})
    again = ev("e1", 5, {"x": 2.0})
    out = feed_in_order(step, [fe(first, 0), fe(again, 1)])
    assert len(predictions(out)) == 1 and predictions(out)[0].ts == first.ts
    (dl,) = dead(out)
    assert dl.reason == "duplicate_event_id"
    assert dl.kind == "event" and "e1" in dl.error
    assert (dl.partition, dl.offset) == (0, 1)
    assert Event.model_validate_json(dl.payload) == again  # the refused event, verbatim
    assert step.learner.n_predicted == 1
    assert step.counters()["duplicate_events"] == 1
    # its label joins the first one, once
    out = step.on_item(2, sl(lb("e1", 6)))
    assert step.learner.n_learned == 1 and step.counters()["joined"] == 1
    # after its label came, the same id is a new event again (served)
    out = step.on_item(3, fe(ev("e1", 7), 2))
    assert len(predictions(out)) == 1 and not dead(out)


def numbered_stream(n: int = 300, delay: int = 20) -> list:
    events, labels = to_records(
        list(datasets.Phishing())[:n], label_delay=timedelta(seconds=delay), jitter=0.5, seed=3
    )
    seq = Sequencer()
    out = []
    for i, e in enumerate(events):
        out += seq.push(EVENT, e.ts.timestamp(), 0, i, fe(e, i))
    for i, label in enumerate(labels):
        out += seq.push(LABEL, label.ts.timestamp(), 0, i, sl(label, i))
    out += seq.flush()
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_out_of_sequence_items_are_restored(seed):
    numbered = numbered_stream()
    config = StepConfig(model="m", recipe="hat", report_every=10**9, served_at_event_time=True)
    in_order = ModelStep(config)
    expected = []
    for seq, item in numbered:
        expected += in_order.on_item(seq, item)
    expected += in_order.on_end()

    permuted = list(numbered)
    rng = random.Random(seed)
    for k in range(0, len(permuted), 40):  # shuffle within windows, as keyed steps do
        window = permuted[k : k + 40]
        rng.shuffle(window)
        permuted[k : k + 40] = window
    assert permuted != numbered
    step = ModelStep(config)
    got = []
    max_waiting = 0
    for seq, item in permuted:
        got += step.on_item(seq, item)
        max_waiting = max(max_waiting, step.counters()["out_of_sequence"])
    assert step.counters()["out_of_sequence"] == 0
    got += step.on_end()
    assert max_waiting > 0
    assert predictions(got) == predictions(expected)
    assert len(predictions(got)) == 300
    final_got, final_expected = got[-1], expected[-1]
    assert isinstance(final_got, MetricsPoint) and final_got.final
    assert final_got.metrics == final_expected.metrics
    assert final_got.counters == final_expected.counters
    assert final_got.n_learned == 300


def test_item_waits_for_its_predecessor():
    step = ModelStep(StepConfig(model="m", recipe="lr"))
    assert step.on_item(2, sl(lb("a", 3))) == []
    assert step.on_item(1, fe(ev("b", 2), 1)) == []
    assert step.counters()["out_of_sequence"] == 2
    assert step.learner.n_predicted == 0
    out = step.on_item(0, fe(ev("a", 1), 0))
    assert [p.event_id for p in predictions(out)] == ["a", "b"]
    assert step.learner.n_learned == 1 and step.counters()["out_of_sequence"] == 0


def test_expired_event_prediction_is_forgotten():
    step = ModelStep(StepConfig(model="m", recipe="lr", label_ttl_seconds=10))
    feed_in_order(step, [fe(ev("e1", 0), 0)])
    assert step.learner.n_pending == 1
    step.on_item(1, fe(ev("e2", 10.5), 1))  # 10.5 > 0 + 10: e1 expires before e2 is served
    assert step.learner.n_pending == 1  # only e2
    assert "e1" not in step.learner._served and "e2" in step.learner._served
    c = step.counters()
    assert (c["expired_events"], c["pending_events"]) == (1, 1)
    # e1's late label can no longer be learned: it is a dead letter at once (label_expired)
    out = step.on_item(2, sl(lb("e1", 11)))
    assert step.learner.n_learned == 0
    assert [d.reason for d in out] == ["label_expired"]
    assert step.counters()["early_labels"] == 0


def test_label_exactly_at_ttl_is_learned_after_is_not():
    step = ModelStep(StepConfig(model="m", recipe="lr", label_ttl_seconds=10))
    items = [fe(ev("a", 0), 0), fe(ev("b", 1), 1), sl(lb("a", 10), 0), sl(lb("b", 11.25), 1)]
    out = feed_in_order(step, items)
    c = step.counters()
    assert step.learner.n_learned == 1
    assert (c["joined"], c["expired_events"], c["early_labels"]) == (1, 1, 0)
    assert [d.reason for d in dead(out)] == ["label_expired"]  # b's label came after b expired
    assert step.learner.n_pending == 0


def test_early_label_then_event_learns_at_once():
    step = ModelStep(StepConfig(model="m", recipe="lr"))
    out = feed_in_order(step, [sl(lb("a", 5, False), 0), fe(ev("a", 6), 0)])
    assert len(predictions(out)) == 1
    assert step.learner.n_learned == 1 and step.learner.n_unserved == 0
    assert step.learner.n_pending == 0
    c = step.counters()
    assert (c["early_labels"], c["joined"], c["pending_labels"]) == (1, 1, 0)
    assert step.learner.scoreboard.n == 1  # the served prediction was scored


def test_metrics_point_every_n_labels():
    step = ModelStep(StepConfig(model="m", recipe="lr", report_every=3))
    items = []
    for i in range(7):
        items += [fe(ev(f"e{i}", 2 * i), i), sl(lb(f"e{i}", 2 * i + 1), i)]
    points = [o for o in feed_in_order(step, items) if isinstance(o, MetricsPoint)]
    assert [p.n_learned for p in points] == [3, 6]
    assert not any(p.final for p in points)
    final = step.on_end()[-1]
    assert final.final and final.n_learned == 7 and final.n_predicted == 7


def test_model_error_on_huge_integer_label_is_a_dead_letter():
    """Integers beyond 64 bits are read as floats (a regression target); for a bool model that
    label is a model error: a dead letter, never a crash."""
    step = ModelStep(StepConfig(model="m", recipe="lr"))
    huge = decode_label(b'{"event_id":"e2","label":123456789012345678901234567890,"ts":3}')
    assert isinstance(huge, Label) and huge.label == 1.2345678901234568e29
    items = [fe(ev("e1", 0), 0), sl(lb("e1", 1), 0), fe(ev("e2", 2), 1), SourcedLabel(huge, 0, 1)]
    out = feed_in_order(step, items)  # bool model, float label: the wrong label type
    (dl,) = dead(out)
    assert dl.reason == "label_type"
