"""Replay from a range of the Kafka topics on the real broker: equal, byte for byte, to the replay
of the same records from files; ranges by offsets and by record timestamps, per partition."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from riverrun.schemas import Event, Label
from riverrun.streams.backtest.replay import replay
from riverrun.streams.backtest.synth import drifting_agrawal, to_records
from riverrun.streams.cli import main
from riverrun.streams.kafka.producer import publish_stream
from riverrun.streams.kafka.range import parse_offsets, resolve_range
from tests.harness.kafka import fresh_settings
from tests.harness.oracle import write_jsonl

pytestmark = pytest.mark.kafka

BAD_EVENT = b'{"event_id": "x", "entity": "u", "features": {}}'  # no ts: a dead letter


def _stream(n: int = 2000) -> tuple[list[Event], list[Label]]:
    data = drifting_agrawal(n, drift_at=n // 2)
    return to_records(data, label_delay=timedelta(seconds=30), jitter=0.5, n_entities=40)


def _file_replay(tmp: Path, events: list, labels: list, name: str = "files") -> bytes:
    root = tmp / name
    root.mkdir()
    replay(
        write_jsonl(root / "events.jsonl", events),
        write_jsonl(root / "labels.jsonl", labels),
        root / "out",
        models=[("lr", "lr")],
        features="default",
        plot=False,
    )
    return (root / "out" / "predictions.jsonl").read_bytes()


def _kafka_replay(config: Path, out: Path, *extra: str) -> dict:
    args = ["replay", "--from-kafka", "-c", str(config), "--out", str(out), "--no-progress", *extra]
    assert main(args) == 0
    return json.loads((out / "report.json").read_text())


def test_kafka_range_equals_file_replay_byte_for_byte(kafka_servers, tmp_path):
    """The whole topics (a bad record among them), then an offset range of each."""
    events, labels = _stream()
    settings, config = fresh_settings(kafka_servers, tmp_path, features="default")
    stream: list = list(events)
    stream.insert(700, BAD_EVENT)
    publish_stream(settings, stream, labels)
    want = _file_replay(tmp_path, events, labels)

    report = _kafka_replay(config, tmp_path / "all")
    assert (tmp_path / "all" / "predictions.jsonl").read_bytes() == want
    assert report["events"] == len(events) and [r["name"] for r in report["runs"]] == ["lr"]
    assert report["inputs"]["events"] == [{"partition": 0, "start": 0, "end": len(stream)}]
    (letter,) = [json.loads(x) for x in (tmp_path / "all" / "dead-letter.jsonl").open()]
    assert (letter["topic"], letter["partition"], letter["offset"]) == (settings.topics.events, 0, 700)

    # offsets 1000..1800 of the events (999..1799 of the stream: the bad record is before)
    # and 900..1700 of the labels: the same records as files give the same bytes
    _kafka_replay(
        config,
        tmp_path / "range",
        "--start-offset",
        "events=1001,labels=900",
        "--end-offset",
        "events=1801,1700",
    )
    want = _file_replay(tmp_path, events[1000:1800], labels[900:1700], "range-files")
    assert (tmp_path / "range" / "predictions.jsonl").read_bytes() == want


def test_kafka_time_range_resolves_with_offsets_for_times(kafka_servers, tmp_path):
    """Two publishes a moment apart: --start-time between them replays the second alone."""
    events, labels = _stream(1200)
    settings, config = fresh_settings(kafka_servers, tmp_path, features="default")
    first = [lb for lb in labels if lb.ts <= events[599].ts]
    publish_stream(settings, events[:600], first)
    time.sleep(0.05)
    boundary = datetime.now(UTC)
    time.sleep(0.05)
    publish_stream(settings, events[600:], labels[len(first) :])

    conf = settings.kafka.client_config()
    (r,) = resolve_range(conf, settings.topics.events, "events", start_time=boundary)
    assert (r.start, r.end) == (600, 1200)
    (r,) = resolve_range(conf, settings.topics.labels, "labels", end_time=boundary)
    assert (r.start, r.end) == (0, len(first))
    (r,) = resolve_range(conf, settings.topics.events, "events", parse_offsets("5000"), parse_offsets("9000"))
    assert (r.start, r.end, r.size) == (1200, 1200, 0)  # clamped to what the broker holds

    _kafka_replay(config, tmp_path / "late", "--start-time", boundary.isoformat())
    want = _file_replay(tmp_path, events[600:], labels[len(first) :])
    assert (tmp_path / "late" / "predictions.jsonl").read_bytes() == want


def test_kafka_range_over_several_partitions_equals_file_replay(kafka_servers, tmp_path):
    """3 event and 2 label partitions (keyed by entity / event id): read per partition and merged
    back into event time, as the live flow does."""
    from confluent_kafka.admin import NewPartitions

    from riverrun.streams.kafka.admin import admin

    events, labels = _stream()
    settings, config = fresh_settings(kafka_servers, tmp_path, features="default")
    client = admin(settings)  # alive until the futures resolve
    futures = client.create_partitions(
        [NewPartitions(settings.topics.events, 3), NewPartitions(settings.topics.labels, 2)]
    )
    for future in futures.values():
        future.result(30)
    publish_stream(settings, events, labels)
    want = _file_replay(tmp_path, events, labels)
    report = _kafka_replay(config, tmp_path / "kafka")
    assert [p["partition"] for p in report["inputs"]["events"]] == [0, 1, 2]
    assert all(p["end"] > 0 for p in report["inputs"]["events"] + report["inputs"]["labels"])
    assert (tmp_path / "kafka" / "predictions.jsonl").read_bytes() == want
