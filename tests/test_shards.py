"""Shards (``riverrun run --shard I/N``): independent processes over co-partitioned topics give
each segment's model exactly what one process gives it; misconfiguration fails fast."""

from __future__ import annotations

from datetime import timedelta

import pytest

from riverrun.errors import ConfigError
from riverrun.streams.backtest.synth import drifting_agrawal, to_records
from riverrun.streams.flow.live import shard_settings
from riverrun.streams.flow.shards import Shard
from riverrun.streams.kafka.producer import publish_stream
from tests.harness.flows import Flow
from tests.harness.kafka import TopicReader, fresh_settings
from tests.harness.segments import run as run_in_one_process


@pytest.mark.parametrize("text", ["2/2", "-1/2", "1", "a/b", "1/0", ""])
def test_a_bad_shard_says_the_expected_form(text):
    with pytest.raises(ConfigError, match="expected I/N"):
        Shard.parse(text)


def test_a_shard_owns_every_nth_partition_and_none_is_an_error():
    assert Shard.parse(" 0/3 ").partitions((0, 1, 2, 3, 4)) == (0, 3)
    with pytest.raises(ConfigError, match="at most as many shards"):
        Shard(3, 4).partitions((0, 1))


def segmented_stream(n: int, segments: int):
    """An entity stays in its segment (u<k> in s<k % segments>), as sharding requires."""
    events, labels = to_records(
        drifting_agrawal(n, drift_at=n // 2), label_delay=timedelta(seconds=25), jitter=0.5, n_entities=40
    )
    for e in events:
        e.features["segment"] = f"s{int(e.entity[1:]) % segments}"
    return events, labels


def _grow(settings, partitions: int) -> None:
    from confluent_kafka.admin import NewPartitions

    from riverrun.streams.kafka.admin import admin

    t = settings.topics
    client = admin(settings)  # alive until the futures resolve
    futures = client.create_partitions(
        [NewPartitions(t.events, partitions), NewPartitions(t.labels, partitions)]
    )
    for future in futures.values():
        future.result(30)


@pytest.mark.kafka
def test_two_shards_predict_exactly_as_one_process(kafka_servers, tmp_path):
    events, labels = segmented_stream(2000, segments=4)
    expected = {
        p.event_id: p for p in run_in_one_process(events, labels, "segment", "default")["predictions"]
    }
    # The stream's tail waits for the partitions that ended earlier to turn idle (3 s).
    settings, config = fresh_settings(
        kafka_servers, tmp_path, features="default", segment_by="segment", max_wait_ms=3_000
    )
    _grow(settings, 4)
    publish_stream(settings, events, labels, key_by="segment")
    shards = [Flow(config, tmp_path / f"shard{i}.log", args=("--shard", f"{i}/2")).start() for i in range(2)]
    reader = TopicReader(kafka_servers, settings.topics.predictions)
    try:
        reader.read_until(lambda m: len(m) >= len(events), 120, shards[0])
        assert all(s.alive() for s in shards)
    finally:
        for s in shards:
            s.kill()
    got = reader.values()
    assert sorted(p["event_id"] for p in got) == sorted(expected)
    for p in got:
        want = expected[p["event_id"]]
        assert (p["model"], p["y_pred"]) == (want.model, want.y_pred)
        assert p["proba"] == pytest.approx({str(k).lower(): v for k, v in want.proba.items()}, abs=1e-12)
    # each shard served its own segments: two per shard, none in both
    assert len({p["model"] for p in got}) == 4
    assert (tmp_path / "state" / "shard-0-of-2").is_dir() and (tmp_path / "state" / "shard-1-of-2").is_dir()


@pytest.mark.kafka
def test_sharding_refuses_what_would_split_a_model(kafka_servers, tmp_path):
    settings, _ = fresh_settings(kafka_servers, tmp_path, features="default")
    with pytest.raises(ConfigError, match="segment_by"):
        shard_settings(settings, Shard(0, 2), None)
    settings, _ = fresh_settings(kafka_servers, tmp_path, segment_by="segment")
    with pytest.raises(ConfigError, match="drop --addresses"):
        shard_settings(settings, Shard(0, 2), ["a:1", "b:2"])
    with pytest.raises(ConfigError, match="at most as many shards"):  # 1 partition, 2 shards
        shard_settings(settings, Shard(1, 2), None)
    from confluent_kafka.admin import NewPartitions

    from riverrun.streams.kafka.admin import admin

    client = admin(settings)  # alive until the future resolves
    client.create_partitions([NewPartitions(settings.topics.events, 2)])[settings.topics.events].result(30)
    with pytest.raises(ConfigError, match="co-partitioned"):
        shard_settings(settings, Shard(0, 2), None)
