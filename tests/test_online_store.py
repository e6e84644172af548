"""The online store on the real Redis: the flow's sink keeps the latest vector per entity with a
TTL, writes off the hot path, survives a Redis outage (its own redis-server, started late) and
stays bounded; the readers serve what the writers stored."""

from __future__ import annotations

import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import bytewax.operators as op
import pytest
import redis
from bytewax.dataflow import Dataflow
from bytewax.testing import TestingSource, run_main

from riverrun.schemas import Event, Prediction
from riverrun.streams.core.items import FeaturedEvent, ServedPrediction
from riverrun.streams.serving.online_store import (
    FeatureStoreSink,
    StoreWriter,
    connect,
    entry_of,
    features_key,
    latest_features,
    latest_predictions,
    newest_prediction,
    online_store_sink,
    predictions_key,
)
from riverrun.streams.settings import load_settings
from tests.harness.ports import free_port
from tests.harness.registry import drop_prefix

pytest_plugins = ["tests.harness.registry"]  # the redis_url fixture

T0 = datetime(2024, 1, 1, tzinfo=UTC)


@pytest.fixture
def prefix(redis_url: str) -> Iterator[str]:
    name = f"rrtest-online-{uuid.uuid4().hex[:10]}"
    yield name
    drop_prefix(redis_url, name)


def featured(i: int, entity: str) -> FeaturedEvent:
    event = Event(event_id=f"e{i}", entity=entity, ts=T0 + timedelta(seconds=i), features={"a": float(i)})
    return FeaturedEvent(event, {"a": float(i), "count": i + 1, "tag": f"t{i}"}, 0, i)


def served(i: int, entity: str, model: str) -> ServedPrediction:
    ts = T0 + timedelta(seconds=i)
    return ServedPrediction(f"e{i}", entity, model, 1, True, {"true": 0.75, "false": 0.25}, ts, ts)


def wait_until(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)


def test_flow_keeps_the_latest_vector_per_entity_with_a_ttl(redis_url: str, prefix: str) -> None:
    items = [featured(i, f"u{i % 3}") for i in range(30)]
    sink = FeatureStoreSink(redis_url, prefix=prefix, ttl_seconds=600, batch_size=7, flush_interval=0.001)
    flow = Dataflow("online_store_test")
    op.output("store", op.input("in", flow, TestingSource(items, batch_size=4)), sink)
    run_main(flow)  # the sink's close() writes what is pending

    client = connect(redis_url)
    for entity, last in (("u0", 27), ("u1", 28), ("u2", 29)):
        record = latest_features(client, prefix, entity)
        assert record == {
            "entity": entity,
            "event_id": f"e{last}",
            "ts": (T0 + timedelta(seconds=last)).isoformat(),
            "features": {"a": float(last), "count": last + 1, "tag": f"t{last}"},
        }
        assert 0 < client.pttl(features_key(prefix, entity)) <= 600_000
    assert latest_features(client, prefix, "nobody") is None
    st = sink.stats()
    assert st["pending"] == 0 and st["dropped"] == 0 and st["retries"] == 0
    assert st["written"] + st["coalesced"] == 30 and st["written"] >= 3


def test_predictions_per_model_and_the_newest(redis_url: str, prefix: str) -> None:
    writer = StoreWriter(connect(redis_url), ttl_seconds=60, flush_interval=0)
    pydantic_one = Prediction(
        event_id="e9",
        entity="u1",
        model="hat",
        model_version=2,
        y_pred=False,
        proba=None,
        ts=T0,
        served_at=T0,
    )
    writer.put(
        [entry_of(item, prefix) for item in (served(1, "u1", "lr"), served(5, "u1", "lr"), pydantic_one)]
    )
    assert writer.wait_written(10)
    client = connect(redis_url)
    both = latest_predictions(client, prefix, "u1")
    assert set(both) == {"lr", "hat"}
    assert both["lr"]["event_id"] == "e5" and both["lr"]["proba"] == {"true": 0.75, "false": 0.25}
    assert Prediction.model_validate(both["hat"]) == pydantic_one
    assert newest_prediction(latest_predictions(client, prefix, "u1"))["event_id"] == "e5"  # served last
    assert latest_predictions(client, prefix, "u1")["hat"]["event_id"] == "e9"
    assert newest_prediction(latest_predictions(client, prefix, "u2")) is None
    assert 0 < client.pttl(predictions_key(prefix, "u1")) <= 60_000
    writer.close()


def test_a_key_redis_refuses_is_dropped_and_the_writer_goes_on(redis_url: str, prefix: str) -> None:
    client = connect(redis_url)
    client.set(predictions_key(prefix, "u1"), b"not a hash")  # HSET on it: WRONGTYPE
    writer = StoreWriter(connect(redis_url), ttl_seconds=60, flush_interval=0)
    writer.put([entry_of(served(1, "u1", "lr"), prefix)])
    assert writer.wait_written(10)
    writer.put([entry_of(featured(2, "u2"), prefix)])
    assert writer.wait_written(10)
    assert writer.failed == 1 and writer.retries == 0
    assert latest_features(client, prefix, "u2")["event_id"] == "e2"
    writer.close()


def test_redis_down_never_blocks_stays_bounded_and_catches_up(tmp_path: Path) -> None:
    """Redis absent: ``put`` returns at once, retries are counted, the queue keeps the newest
    vector of at most ``max_pending`` entities; once Redis starts, they are written."""
    if shutil.which("redis-server") is None:
        pytest.fail("redis-server is not installed (infra/redis/start.sh installs it)")
    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    writer = StoreWriter(
        connect(url, timeout=0.5), ttl_seconds=60, batch_size=50, flush_interval=0, max_pending=100,
        retry_initial=0.05, retry_max=0.2,
    )  # fmt: skip
    started = time.perf_counter()
    for round_ in range(5):  # 5 vectors for each of 150 entities
        writer.put([entry_of(featured(round_ * 1000 + i, f"u{i}"), "own") for i in range(150)])
    assert time.perf_counter() - started < 0.5  # enqueued, not written: Redis is down
    wait_until(lambda: writer.retries >= 2)
    stats = writer.stats()
    assert stats["pending"] == 100  # bounded: the 100 most recently updated entities wait
    assert stats["dropped"] >= 50 and stats["written"] == 0
    assert stats["coalesced"] + stats["dropped"] + stats["pending"] == 750  # every vector accounted for

    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        assert writer.wait_written(20), f"still {writer.pending} pending after Redis came up"
        client = redis.Redis(port=port)
        assert client.dbsize() == 100
        assert latest_features(client, "own", "u149")["event_id"] == "e4149"  # the newest vector
        assert latest_features(client, "own", "u0") is None  # dropped while Redis was down
        assert writer.written == 100
        writer.close()
    finally:
        proc.terminate()
        proc.wait(10)


def test_close_flushes_and_gives_up_on_a_dead_redis_within_its_timeout() -> None:
    writer = StoreWriter(
        connect(f"redis://127.0.0.1:{free_port()}/0", timeout=0.2), ttl_seconds=60, retry_initial=0.05,
        close_timeout=0.5,
    )  # fmt: skip
    writer.put([entry_of(featured(1, "u1"), "own")])
    started = time.monotonic()
    writer.close()
    assert time.monotonic() - started < 3
    assert writer.pending == 1 and writer.written == 0


def test_online_store_sink_follows_the_settings(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", redis_url)
    assert online_store_sink(load_settings()) is None  # off by default
    sink = online_store_sink(
        load_settings(online_store={"enabled": True, "key_prefix": "rr:x", "ttl_seconds": 5, "batch_size": 9})
    )
    assert isinstance(sink, FeatureStoreSink)
    assert (sink.url, sink.prefix, sink.ttl_seconds, sink.batch_size) == (redis_url, "rr:x", 5, 9)
    with pytest.raises(Exception, match="key prefix"):
        load_settings(online_store={"key_prefix": "bad prefix*"})


@pytest.mark.kafka
def test_riverrun_run_fills_the_online_store(kafka_servers: str, redis_url: str, tmp_path: Path) -> None:
    """The live flow on the real broker writes each entity's latest feature vector and
    prediction to Redis, and exports its writers' counters."""
    from riverrun.streams.backtest.synth import to_records
    from riverrun.streams.kafka.producer import publish_stream
    from tests.harness.flows import Flow
    from tests.harness.kafka import TopicReader, fresh_settings

    prefix = f"test-live-{uuid.uuid4().hex[:8]}"
    settings, config = fresh_settings(kafka_servers, tmp_path)
    config.write_text(config.read_text() + f'[online_store]\nenabled = true\nkey_prefix = "{prefix}"\n')
    rows = [({"x": float(i)}, i % 2 == 0) for i in range(300)]
    events, labels = to_records(rows, n_entities=5, label_delay=timedelta(seconds=5))
    publish_stream(settings, events, labels)
    port = free_port()
    env = {"REDIS_URL": redis_url, "RIVERRUN_METRICS__PORT": str(port)}
    flow = Flow(config, tmp_path / "flow.log", env=env).start()
    predictions = TopicReader(kafka_servers, settings.topics.predictions)
    client = connect(redis_url)
    try:
        predictions.read_until(lambda m: len(m) >= len(events), 90, flow)
        last = {e.entity: e for e in events}  # each entity's newest event
        deadline = time.monotonic() + 30
        while True:
            stored = {entity: latest_features(client, prefix, entity) for entity in last}
            served = {
                entity: newest_prediction(latest_predictions(client, prefix, entity)) for entity in last
            }
            if all(s and s["event_id"] == last[k].event_id for k, s in stored.items()) and all(
                p and p["event_id"] == last[k].event_id for k, p in served.items()
            ):
                break
            assert time.monotonic() < deadline, stored
            time.sleep(0.2)
        for entity, event in last.items():
            assert stored[entity]["features"]["x"] == event.features["x"]
            # and its latest prediction, written by the flow too (no gateway agent here)
            assert served[entity]["model"] == "lr"
        # the writers' counters reach the flow's metrics
        from tests.harness.metrics import scrape, value

        exported = scrape(port)
        assert value(exported, "riverrun_online_store_written_total") >= 2 * len(last)
        assert value(exported, "riverrun_online_store_retries_total") == 0
    finally:
        flow.kill()
        predictions.close()
        drop_prefix(redis_url, prefix)
