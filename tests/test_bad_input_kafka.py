"""The bad-input corpus on the real broker: ``riverrun run`` (a subprocess) dead-letters every
malformed record with its Kafka origin and the expected reason, keeps running, and predicts the
valid events exactly as a clean replay does."""

from __future__ import annotations

import pytest

from riverrun.schemas import Event, Label
from riverrun.streams.kafka.producer import publish_stream
from tests.harness.badinput import TTL, mix, replay_files, valid_stream
from tests.harness.flows import Flow
from tests.harness.kafka import TopicReader, fresh_settings
from tests.harness.oracle import write_jsonl

pytestmark = pytest.mark.kafka

#: Reasons the join gives: it knows the source partition and offset, not the topic name.
JOIN_REASONS = {"duplicate_event_id", "label_type", "label_expired", "unknown_event"}


def test_corpus_on_the_broker_is_dead_lettered_with_its_origin(kafka_servers, tmp_path):
    events, labels = valid_stream()
    clean = tmp_path / "clean"
    clean.mkdir()
    want_predictions, _, _ = replay_files(
        clean, write_jsonl(clean / "events.jsonl", events), write_jsonl(clean / "labels.jsonl", labels)
    )
    mixed = mix(events, labels, TTL)
    bad_at = {(which, line) for which, line, _, _ in mixed.expected}
    # valid lines as records (published with their key and in event-time order), bad ones raw
    ev = [
        line if ("event", i) in bad_at else Event.model_validate_json(line)
        for i, line in enumerate(mixed.events)
    ]
    lb = [
        line if ("label", i) in bad_at else Label.model_validate_json(line)
        for i, line in enumerate(mixed.labels)
    ]

    settings, config = fresh_settings(kafka_servers, tmp_path, features="none", label_ttl_seconds=TTL)
    publish_stream(settings, ev, lb)  # one partition each: the offset is the line number
    flow = Flow(config, tmp_path / "flow.log").start()
    predictions = TopicReader(kafka_servers, settings.topics.predictions)
    dead = TopicReader(kafka_servers, settings.topics.dead_letter)
    try:
        predictions.read_until(lambda m: len(m) >= len(events), 120, flow)
        dead.read_until(lambda m: len(m) >= len(mixed.expected), 60, flow)
        assert flow.alive(), flow.log_tail()
    finally:
        flow.kill()
        predictions.close()
        dead.close()

    topics = {"event": settings.topics.events, "label": settings.topics.labels}
    letters = dead.values()
    want = sorted((which, line, reason) for which, line, _, reason in mixed.expected)
    assert sorted((d["kind"], d["offset"], d["reason"]) for d in letters) == want
    for d, msg in zip(letters, dead.messages, strict=True):
        assert d["partition"] == 0 and d["error"]
        assert d["topic"] == topics[d["kind"]]  # from the decoder, or the join (StepConfig topics)
        headers = dict(msg.headers() or [])
        assert headers["riverrun.reason"].decode() == d["reason"]

    got = predictions.values()
    assert [p["event_id"] for p in got] == [p["event_id"] for p in want_predictions]
    for g, w in zip(got, want_predictions, strict=True):
        assert g["y_pred"] == w["y_pred"]
        assert g["proba"] == pytest.approx(w["proba"], abs=1e-12)
