"""`riverrun topics create` and `riverrun produce` against the real broker."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
from confluent_kafka.admin import AdminClient

from tests.harness import ROOT
from tests.harness.kafka import REGISTRY_KEY, TopicReader, fresh_settings

pytestmark = pytest.mark.kafka


def riverrun(
    *args: str, timeout: float = 120, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """``riverrun ARGS`` in a subprocess; ``env`` adds variables."""
    return subprocess.run(
        [sys.executable, "-m", "riverrun.streams.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        check=False,
        env={**os.environ, **(env or {})},
    )


def test_topics_create_is_idempotent(kafka_servers, tmp_path):
    _, config = fresh_settings(kafka_servers, tmp_path)  # creates them
    done = riverrun("topics", "create", "-c", str(config), env={"KAFKA_BOOTSTRAP_SERVERS": kafka_servers})
    assert done.returncode == 0, done.stderr
    assert done.stdout.count(": exists") == 6
    # Says on which broker, and where that address came from (the file and the environment agree).
    assert f"0 created, 6 already there, on Kafka at {kafka_servers} (" in done.stdout
    assert done.stderr == ""


def test_topics_create_says_the_environment_overrode_the_file(kafka_servers, tmp_path):
    _, config = fresh_settings(kafka_servers, tmp_path)
    host, port = kafka_servers.rsplit(":", 1)
    elsewhere = f"{'localhost' if host == '127.0.0.1' else '127.0.0.1'}:{port}"  # same broker, other name
    done = riverrun("topics", "create", "-c", str(config), env={"KAFKA_BOOTSTRAP_SERVERS": elsewhere})
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines() == [
        f"riverrun topics: Kafka at {elsewhere} (KAFKA_BOOTSTRAP_SERVERS in the environment), "
        f"not {kafka_servers} as {config} says"
    ]
    assert f"on Kafka at {elsewhere} (KAFKA_BOOTSTRAP_SERVERS in the environment)" in done.stdout


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
    assert "missing Kafka topics ['no-such-topic-here' ([topics] events)]" in done.stderr
    assert "riverrun topics create" in done.stderr


@pytest.mark.parametrize("action", [["checkpoint", "lr"], ["rollback", "lr", "1"]])
def test_models_command_to_a_mistyped_control_topic_fails(kafka_servers, tmp_path, action):
    """The broker would auto-create the mistyped topic and the flow would never see the command:
    refuse it, naming the topic, its [topics] key and the fix; create nothing."""
    settings, config = fresh_settings(kafka_servers, tmp_path)
    typo = settings.topics.control + "-typo"
    config.write_text(
        config.read_text().replace(f'control = "{settings.topics.control}"', f'control = "{typo}"')
    )
    done = riverrun(
        "models", action[0], "-c", str(config), *action[1:], env={"RIVERRUN_REGISTRY__KEY": REGISTRY_KEY}
    )
    assert done.returncode == 2, done.stderr
    assert f"missing Kafka topics ['{typo}' ([topics] control)] on {kafka_servers}" in done.stderr
    assert "riverrun topics create" in done.stderr
    assert "sent" not in done.stdout
    topics = AdminClient({"bootstrap.servers": kafka_servers}).list_topics(timeout=10).topics
    assert typo not in topics


def test_models_checkpoint_reaches_the_control_topic(kafka_servers, tmp_path):
    settings, config = fresh_settings(kafka_servers, tmp_path)
    done = riverrun(
        "models", "checkpoint", "-c", str(config), "lr", env={"RIVERRUN_REGISTRY__KEY": REGISTRY_KEY}
    )
    assert done.returncode == 0, done.stderr
    assert f"sent checkpoint of 'lr' to {settings.topics.control!r}" in done.stdout
    control = TopicReader(kafka_servers, settings.topics.control)
    control.read_until(lambda m: len(m) >= 1, 30)
    assert control.values()[0]["command"] == "checkpoint"


CONSUMER_AND_PRODUCER_EXTRA = """
[kafka.extra]
"fetch.wait.max.ms" = "10"
"fetch.min.bytes" = "1"
"linger.ms" = "1"
"""


def test_produce_hands_its_producer_no_consumer_settings(kafka_servers, tmp_path):
    """librdkafka warns (CONFWARN, on stderr) about every property of the other client role:
    `riverrun produce` with consumer properties in [kafka.extra] prints none."""
    _, config = fresh_settings(kafka_servers, tmp_path)
    config.write_text(config.read_text() + CONSUMER_AND_PRODUCER_EXTRA)
    done = riverrun("produce", "-c", str(config), "--synthetic", "20", "--no-progress")
    assert done.returncode == 0, done.stderr
    assert "produced 20 events" in done.stdout
    assert "CONFWARN" not in done.stderr, done.stderr


def test_flow_clients_get_their_own_settings_only(kafka_servers, tmp_path):
    """The live flow's clients, built as the flow builds them, in a process of their own whose
    stderr (librdkafka's log) is captured: the source's admin client (partition lookup), its
    consumers, the output producers and the replay consumers log no CONFWARN, though the source
    adds consumer properties (fetch.wait.max.ms) and [kafka.extra] holds both kinds."""
    _, config = fresh_settings(kafka_servers, tmp_path)
    config.write_text(config.read_text() + CONSUMER_AND_PRODUCER_EXTRA)
    script = textwrap.dedent(f"""
        import time
        from riverrun.streams.kafka.sink import KafkaRecordSink
        from riverrun.streams.kafka.admin import admin, check_broker
        from riverrun.streams.kafka.source import kafka_source
        from riverrun.streams.kafka.range import _consumer
        from riverrun.streams.settings import load_settings

        settings = load_settings({str(config)!r})
        check_broker(settings)
        admin(settings).list_topics(timeout=10)
        source = kafka_source(settings, "event", settings.topics.events)
        parts = source.list_parts()
        part = source.build_part("in", parts[0], None)
        part.next_batch()
        sink = KafkaRecordSink(settings.kafka.client_config(), settings.topics.predictions)
        out = sink.build_part("out", "0", None)
        out.snapshot()
        _consumer(settings.kafka.client_config()).list_topics(timeout=10)
        time.sleep(0.5)  # librdkafka logs from its own threads
        part.close()
        out.close()
        print("built", parts)
    """)
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, cwd=ROOT, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "built" in done.stdout
    assert "CONFWARN" not in done.stderr, done.stderr
