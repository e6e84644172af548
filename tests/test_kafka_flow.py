"""The flow on the real broker: predictions for every event, bad input to the dead-letter topic,
live equal to replay, and no event lost across a kill -9."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from river import datasets

from riverrun.streams.backtest.replay import replay
from riverrun.streams.backtest.synth import drifting_agrawal, to_records
from riverrun.streams.kafka.producer import publish_stream
from tests.harness.flows import Flow
from tests.harness.kafka import TopicReader, fresh_settings
from tests.harness.oracle import write_jsonl

pytestmark = pytest.mark.kafka

BAD_EVENTS = {
    b"{not json": "invalid_json",
    b'{"event_id": "x1", "entity": "u", "features": {}}': "validation",  # no ts
    b'{"event_id": "x2", "entity": "u", "ts": 1704067200, "features": {"a": NaN}}': "non_finite",
    b'{"event_id": "x3", "entity": "u", "ts": "2024-01-01T00:00:00", "features": {}}': "validation",
    b'{"event_id": "x4", "entity": "u", "ts": 1704067200, "features": {"a": [1]}}': "validation",
    b"\xff\xfe\x00": "invalid_json",
    b"": "empty",
}
BAD_LABELS = {b'{"event_id": "e1"}': "validation", b"[]": "validation"}


def _unique_event_ids(messages) -> set[str]:
    return {json.loads(m.value())["event_id"] for m in messages}


def test_predictions_for_every_event_and_bad_input_to_dead_letters(kafka_servers, tmp_path):
    settings, config = fresh_settings(kafka_servers, tmp_path, features="default")
    events, labels = to_records(list(datasets.Phishing()), label_delay=timedelta(seconds=30))
    stream = list(events)
    for k, bad in enumerate(BAD_EVENTS):  # spread the bad records through the stream
        stream.insert(100 * (k + 1), bad)
    publish_stream(settings, stream, labels + list(BAD_LABELS))
    flow = Flow(config, tmp_path / "flow.log").start()
    predictions = TopicReader(kafka_servers, settings.topics.predictions)
    dead = TopicReader(kafka_servers, settings.topics.dead_letter)
    try:
        predictions.read_until(lambda m: len(_unique_event_ids(m)) >= len(events), 120, flow)
        n_bad = len(BAD_EVENTS) + len(BAD_LABELS)
        dead.read_until(lambda m: len(m) >= n_bad, 60, flow)
        assert flow.alive(), flow.log_tail()
    finally:
        flow.kill()
    assert _unique_event_ids(predictions.messages) == {e.event_id for e in events}
    first = predictions.values()[0]
    assert set(first) == {
        "event_id",
        "entity",
        "model",
        "model_version",
        "y_pred",
        "proba",
        "ts",
        "served_at",
    }
    letters = dead.values()
    assert sorted(d["reason"] for d in letters) == sorted([*BAD_EVENTS.values(), *BAD_LABELS.values()])
    for d in letters:
        assert d["topic"] in (settings.topics.events, settings.topics.labels)
        assert d["partition"] == 0 and d["offset"] >= 0 and d["error"]
    headers = dict(dead.messages[0].headers())
    assert headers["riverrun.reason"].decode() == letters[0]["reason"]


def replayed_predictions(tmp_path, events, labels) -> list[dict]:
    """What `riverrun replay` (features on) predicts for this stream."""
    replay(
        write_jsonl(tmp_path / "events.jsonl", events),
        write_jsonl(tmp_path / "labels.jsonl", labels),
        tmp_path / "replay",
        models=[("lr", "lr")],
        features="default",
        plot=False,
    )
    return [json.loads(line) for line in (tmp_path / "replay" / "predictions.jsonl").open()]


def live_predictions(kafka_servers, settings, config, tmp_path, events, labels) -> list[dict]:
    """What `riverrun run` publishes for this stream (published before the flow starts)."""
    publish_stream(settings, events, labels)
    flow = Flow(config, tmp_path / "flow.log").start()
    reader = TopicReader(kafka_servers, settings.topics.predictions)
    try:
        reader.read_until(lambda m: len(m) >= len(events), 120, flow)
    finally:
        flow.kill()
    return reader.values()


def assert_same_predictions(live: list[dict], expected: list[dict]) -> None:
    assert [p["event_id"] for p in live] == [p["event_id"] for p in expected]
    for got, want in zip(live, expected, strict=True):
        assert got["y_pred"] == want["y_pred"]
        assert got["proba"] == pytest.approx(want["proba"], abs=1e-12)
        assert (got["model"], got["model_version"], got["ts"]) == (
            want["model"],
            want["model_version"],
            want["ts"],
        )


def test_live_equals_replay(kafka_servers, tmp_path):
    data = drifting_agrawal(3000, drift_at=1500)
    events, labels = to_records(data, label_delay=timedelta(seconds=40), jitter=0.5, n_entities=50)
    expected = replayed_predictions(tmp_path, events, labels)
    # An idle-input bound far above the test's length: this run's order must be exact.
    settings, config = fresh_settings(kafka_servers, tmp_path, features="default", max_wait_ms=600_000)
    live = live_predictions(kafka_servers, settings, config, tmp_path, events, labels)
    assert_same_predictions(live, expected)


@pytest.mark.parametrize("policy", [False, True], ids=["river-only", "lifecycle"])
def test_kill_9_and_restart_loses_no_event(kafka_servers, tmp_path, policy):
    """With the lifecycle on too: its state (challengers, checkpoints, detectors) is restored
    with the model, so re-emitted predictions are identical and checkpoints are not doubled."""
    n = 20_000
    events, labels = to_records(drifting_agrawal(n), label_delay=timedelta(seconds=30))
    # Exact event-time order (no idle-input timeout), so re-emitted outputs are reproducible.
    settings, config = fresh_settings(
        kafka_servers, tmp_path, policy=policy, features="default", max_wait_ms=600_000
    )
    publish_stream(settings, events, labels)
    flow = Flow(config, tmp_path / "flow.log").start()
    reader = TopicReader(kafka_servers, settings.topics.predictions)
    reader.read_until(lambda m: len(m) >= n // 4, 120, flow)
    assert flow.kill() == -9
    seen_before = len(_unique_event_ids(reader.messages))
    assert seen_before < n, "the flow finished before the kill: make the stream longer"
    flow.start()  # same recovery directory: resumes from the last snapshot
    try:
        reader.read_until(lambda m: len(_unique_event_ids(m)) >= n, 180, flow)
    finally:
        flow.kill()
    assert _unique_event_ids(reader.messages) == {e.event_id for e in events}
    # Re-emitted predictions (since the last snapshot) are identical copies: consumers dedupe.
    by_id: dict[str, dict] = {}
    for p in reader.values():
        key = p["event_id"]
        p.pop("served_at")
        assert by_id.setdefault(key, p) == p
    if policy:
        from riverrun.registry import open_registry
        from tests.harness.kafka import REGISTRY_KEY

        registry = open_registry(str(tmp_path / "registry"), REGISTRY_KEY.encode())
        ids = [v.reason.split(":")[0] for v in registry.versions("lr")]
        assert ids and len(ids) == len(set(ids))  # every checkpoint once, despite the replay


def test_live_with_several_partitions_equals_replay(kafka_servers, tmp_path):
    """3 event and 2 label partitions (keyed by entity / event id): the sequencer merges them
    back into event time, so predictions equal a single-file replay."""
    from confluent_kafka.admin import NewPartitions

    from riverrun.streams.kafka.admin import admin, partitions_of

    data = drifting_agrawal(2000, drift_at=1000)
    events, labels = to_records(data, label_delay=timedelta(seconds=25), jitter=0.5, n_entities=40)
    expected = replayed_predictions(tmp_path, events, labels)
    # The stream's tail waits for the partitions that ended earlier to turn idle (3 s); while
    # catching up every partition delivers, so the order is exact.
    settings, config = fresh_settings(kafka_servers, tmp_path, max_wait_ms=3_000)
    client = admin(settings)
    futures = client.create_partitions(
        [NewPartitions(settings.topics.events, 3), NewPartitions(settings.topics.labels, 2)]
    )
    for future in futures.values():
        future.result(30)
    assert len(partitions_of(settings, settings.topics.events)) == 3
    live = live_predictions(kafka_servers, settings, config, tmp_path, events, labels)
    assert_same_predictions(live, expected)


def test_sigterm_drains_snapshots_and_resumes_without_duplicates(kafka_servers, tmp_path):
    import signal

    n = 20_000
    events, labels = to_records(drifting_agrawal(n), label_delay=timedelta(seconds=30))
    # Snapshots only every 60 s: without a final snapshot on SIGTERM, a restart would repeat
    # everything since the start.
    settings, config = fresh_settings(kafka_servers, tmp_path, max_wait_ms=600_000)
    config.write_text(
        config.read_text().replace("snapshot_interval_seconds = 1", "snapshot_interval_seconds = 60")
    )
    publish_stream(settings, events, labels)
    flow = Flow(config, tmp_path / "flow.log").start()
    reader = TopicReader(kafka_servers, settings.topics.predictions)
    reader.read_until(lambda m: len(m) >= n // 4, 120, flow)
    assert flow.kill(signal.SIGTERM) == 0, flow.log_tail()
    before = len(reader.read_until(lambda m: False, 3))  # everything published before the stop
    assert before < n, "the flow finished before the stop: make the stream longer"
    flow.start()
    try:
        reader.read_until(lambda m: len(m) >= n, 120, flow)
    finally:
        flow.kill(signal.SIGTERM)
    ids = [json.loads(m.value())["event_id"] for m in reader.messages]
    assert len(ids) == len(set(ids)) == n  # every event once: no loss, no duplicate


def test_lifecycle_actions_reach_the_model_events_topic_and_the_registry(kafka_servers, tmp_path):
    """The scenario through `riverrun run` with the lifecycle on: its promotion and rollback are
    published to model-events (keyed by model), and its checkpoints are signed in the registry."""
    from riverrun.registry import open_registry
    from riverrun.streams.backtest.scenarios import Scenario
    from tests.harness.kafka import REGISTRY_KEY

    scenario = Scenario(n=12_000, drift_at=3000, corrupt_from=6000, corrupt_to=7000, shift_at=9000)
    rows = list(scenario.rows())
    events, labels = to_records([(x, y) for x, y, _ in rows], label_delay=timedelta(seconds=50))
    settings, config = fresh_settings(
        kafka_servers, tmp_path, policy=True, features="none", max_wait_ms=600_000
    )
    publish_stream(settings, events, labels)
    flow = Flow(config, tmp_path / "flow.log").start()
    reader = TopicReader(kafka_servers, settings.topics.model_events)

    def acted(messages) -> set[str]:
        return {json.loads(m.value())["action"] for m in messages}

    try:
        reader.read_until(lambda m: {"promotion", "rollback"} <= acted(m), 120, flow)
    finally:
        flow.kill()
    assert {"promotion", "rollback", "checkpoint", "concept_drift"} <= acted(reader.messages)
    assert {m.key() for m in reader.messages} == {b"lr"}
    registry = open_registry(str(tmp_path / "registry"), REGISTRY_KEY.encode())
    versions = registry.versions("lr")
    assert len(versions) >= 3
    assert registry.load("lr", versions[-1].version).predict_proba_one(rows[0][0])


def test_operator_rollback_through_the_control_topic_applies_in_order(kafka_servers, tmp_path):
    """`riverrun models rollback lr 1` reaches the running flow through the control topic and
    takes effect at its event time: predictions before it are served by v1, after it by v2 (the
    rolled-back model). A rollback to a missing version is dead-lettered; serving goes on."""
    from tests.harness.flows import run_operator_rollback

    run = run_operator_rollback(kafka_servers, tmp_path, reason="test rollback")
    versions = {p["event_id"]: p["model_version"] for p in run.predictions.values()}
    assert {versions[e.event_id] for e in run.first} == {1}
    assert {versions[e.event_id] for e in run.later} == {2}
    rollback = next(e for e in run.model_events.values() if e["action"] == "rollback")
    assert (rollback["checkpoint"], rollback["reason"]) == ("registry v1", "test rollback")
    assert rollback["from_version"] == 1 and rollback["to_version"] == 2
    (letter,) = run.dead_letters.values()
    assert letter["kind"] == "control" and letter["reason"] == "checkpoint_refused"
    assert "still serving the current model" in letter["error"]
