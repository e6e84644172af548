"""The flow's Kafka source (``kafka_source``) on the real broker: records with their origin, a
poll that never waits in the worker's thread (an empty one asks to be polled again shortly), and
offsets that resume exactly."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
from confluent_kafka.admin import NewTopic

from riverrun.streams.kafka.admin import admin, create_topics, partitions_of
from riverrun.streams.kafka.producer import VerifiedProducer
from riverrun.streams.kafka.source import kafka_source
from tests.harness.kafka import fresh_settings


def _poll_until(part, n: int, timeout: float = 30.0) -> list:
    """Poll as Bytewax would (never before ``next_awake``) until ``n`` messages came."""
    got: list = []
    deadline = time.monotonic() + timeout
    while len(got) < n and time.monotonic() < deadline:
        awake = part.next_awake()
        if awake is not None:
            time.sleep(max(0.0, (awake - datetime.now(UTC)).total_seconds()))
        got += part.next_batch()
    return got


@pytest.mark.kafka
def test_a_poll_returns_what_is_there_and_an_empty_one_asks_to_come_back(kafka_servers, tmp_path):
    settings, _ = fresh_settings(kafka_servers, tmp_path)
    create_topics(settings)
    source = kafka_source(settings, "event", settings.topics.events)
    (part_name,) = source.list_parts()
    part = source.build_part("events", part_name, None)
    try:
        assert part.next_batch() == []  # nothing published: no wait for a batch ...
        assert isinstance(part.next_awake(), datetime)  # ... and Bytewax polls again later

        producer = VerifiedProducer(settings.kafka.client_config())
        for i in range(5):
            producer.produce(settings.topics.events, f"m{i}".encode())
        producer.flush()
        got = _poll_until(part, 5)
        assert [r.value for r in got] == [f"m{i}".encode() for i in range(5)]
        assert [(r.kind, r.origin.topic, r.origin.offset) for r in got] == [
            ("event", settings.topics.events, i) for i in range(5)
        ]
        assert part.snapshot() == 5  # the next offset to read
    finally:
        part.close()

    resumed = source.build_part("events", part_name, 3)  # recovery resumes at a snapshot
    try:
        assert [r.value for r in _poll_until(resumed, 2)] == [b"m3", b"m4"]
        assert resumed.next_batch() == [] and resumed.next_awake() is not None
    finally:
        resumed.close()


@pytest.mark.kafka
def test_a_shard_source_lists_only_its_partitions(kafka_servers, tmp_path):
    settings, _ = fresh_settings(kafka_servers, tmp_path)
    topic = f"{settings.topics.events}-wide"
    client = admin(settings)  # alive until the future resolves
    client.create_topics([NewTopic(topic, 4, 1)])[topic].result(30)
    deadline = time.monotonic() + 30  # metadata propagates asynchronously
    while partitions_of(settings, topic) != (0, 1, 2, 3) and time.monotonic() < deadline:
        time.sleep(0.1)
    source = kafka_source(settings, "event", topic, partitions=(1, 3))
    assert source.list_parts() == [f"1-{topic}", f"3-{topic}"]
