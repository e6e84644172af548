"""`riverrun topics create` and `riverrun produce` against the real broker."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.kafka_harness import ROOT, TopicReader, fresh_settings

pytestmark = pytest.mark.kafka


def riverrun(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "riverrun.streams.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        check=False,
    )


def test_topics_create_is_idempotent(kafka_servers, tmp_path):
    _, config = fresh_settings(kafka_servers, tmp_path)  # creates them
    done = riverrun("topics", "create", "-c", str(config))
    assert done.returncode == 0, done.stderr
    assert done.stdout.count(": exists") == 6


def test_produce_synthetic_and_from_files(kafka_servers, tmp_path):
    settings, config = fresh_settings(kafka_servers, tmp_path)
    done = riverrun(
        "produce", "-c", str(config), "--synthetic", "500", "--label-delay", "10", "--no-progress"
    )
    assert done.returncode == 0, done.stderr
    assert "produced 500 events" in done.stdout
    events = TopicReader(kafka_servers, settings.topics.events)
    labels = TopicReader(kafka_servers, settings.topics.labels)
    events.read_until(lambda m: len(m) >= 500, 30)
    labels.read_until(lambda m: len(m) >= 500, 30)
    values = events.values()
    assert len(values) == 500 and len(labels.values()) == 500
    # Keys: entity for events, event id for labels.
    assert events.messages[0].key().decode() == values[0]["entity"]
    assert labels.messages[0].key().decode() == labels.values()[0]["event_id"]

    # From files: invalid lines are published verbatim at their place.
    (tmp_path / "e.jsonl").write_bytes(
        (json.dumps(values[0]) + "\n{broken\n" + json.dumps(values[1]) + "\n").encode()
    )
    (tmp_path / "l.jsonl").write_bytes((json.dumps(labels.values()[0]) + "\n").encode())
    (tmp_path / "second").mkdir()
    settings2, config2 = fresh_settings(kafka_servers, tmp_path / "second")
    done = riverrun(
        "produce",
        "-c",
        str(config2),
        "--events",
        str(tmp_path / "e.jsonl"),
        "--labels",
        str(tmp_path / "l.jsonl"),
        "--no-progress",
    )
    assert done.returncode == 0, done.stderr
    copied = TopicReader(kafka_servers, settings2.topics.events)
    copied.read_until(lambda m: len(m) >= 3, 30)
    assert [m.value() for m in copied.messages][1] == b"{broken"


def test_run_fails_fast_on_missing_topics(kafka_servers, tmp_path):
    settings, config = fresh_settings(kafka_servers, tmp_path)
    config.write_text(config.read_text().replace(settings.topics.events, "no-such-topic-here"))
    done = riverrun("run", "-c", str(config), timeout=60)
    assert done.returncode == 2
    assert "missing Kafka topics ['no-such-topic-here']" in done.stderr
    assert "riverrun topics create" in done.stderr
