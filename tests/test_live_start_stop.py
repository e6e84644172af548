"""`riverrun run` on the real broker, as an operator sees it: the line it prints on start and on
stop (stderr), the prediction latency measured from Kafka (not from the event's own ts), and the
restored model's series on /metrics at once after a restart with no new input."""

from __future__ import annotations

import re
import signal
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from riverrun.schemas import Event, Label
from riverrun.streams.kafka.producer import publish_stream
from tests.harness.flows import Flow
from tests.harness.kafka import TopicReader, fresh_settings

pytestmark = pytest.mark.kafka

START = re.compile(r"^riverrun run: started.*metrics (http://\S+/metrics)$", re.MULTILINE)


def scrape(url: str) -> dict[tuple[str, tuple], float]:
    """``curl URL``, parsed: {(sample name, sorted labels): value}."""
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def get(found: dict, name: str, **labels: str) -> float | None:
    return found.get((name, tuple(sorted(labels.items()))))


def wait_for_line(flow: Flow, pattern: re.Pattern, after: int, timeout: float = 60) -> re.Match:
    """The first match of ``pattern`` in the flow's output past character ``after``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = pattern.search(flow.log.read_text(errors="replace"), after)
        if found:
            return found
        assert flow.alive() or flow.proc.returncode == 0, flow.log_tail()
        time.sleep(0.05)
    raise AssertionError(f"no line matching {pattern.pattern!r}:\n{flow.log_tail()}")


def day_old_stream(n: int) -> tuple[list[Event], list[Label]]:
    """A backfill: events whose own ts is a day in the past, each labelled 1 s of event time later."""
    t0 = datetime.now(UTC) - timedelta(days=1)
    events = [
        Event(
            event_id=f"e{i}",
            entity=f"u{i % 7}",
            ts=t0 + timedelta(milliseconds=10 * i),
            features={"x": i % 5},
        )
        for i in range(n)
    ]
    labels = [
        Label(event_id=e.event_id, label=i % 2 == 0, ts=e.ts + timedelta(seconds=1))
        for i, e in enumerate(events)
    ]
    return events, labels


def test_start_and_stop_lines_latency_from_kafka_and_the_restored_view(kafka_servers, tmp_path: Path):
    n = 400
    settings, config = fresh_settings(kafka_servers, tmp_path, features="none", max_wait_ms=200)
    model = settings.flow.models[0].name
    flow = Flow(config, tmp_path / "flow.log").start()
    predictions = TopicReader(kafka_servers, settings.topics.predictions)
    try:
        started = wait_for_line(flow, START, 0)
        line = started.group(0)
        url = started.group(1)
        assert f"broker {kafka_servers}" in line
        assert f"{settings.topics.events} partitions [0]" in line and settings.topics.labels in line
        assert f"models {model} ({settings.flow.models[0].recipe}) v1 (new)" in line
        assert "(new: the topics are read from the start)" in line

        events, labels = day_old_stream(n)
        publish_stream(settings, events, labels)
        predictions.read_until(lambda m: len(m) >= n, 120, flow)
        deadline = time.monotonic() + 30
        while (get(found := scrape(url), "riverrun_prediction_latency_seconds_count") or 0) < n:
            assert time.monotonic() < deadline, found
            time.sleep(0.2)
        # latency from the record's Kafka timestamp: small, though every event is a day old
        count = get(found, "riverrun_prediction_latency_seconds_count")
        assert get(found, "riverrun_prediction_latency_seconds_bucket", le="2.5") == count
        assert get(found, "riverrun_prediction_latency_seconds_bucket", le="+Inf") == count
        # the event's own ts shows in the event lag: all past 4 hours, none past a week
        lag_count = get(found, "riverrun_prediction_event_lag_seconds_count")
        assert lag_count == count
        assert get(found, "riverrun_prediction_event_lag_seconds_bucket", le="14400.0") == 0
        assert get(found, "riverrun_prediction_event_lag_seconds_bucket", le="604800.0") == count

        size = len(flow.log.read_text(errors="replace"))
        assert flow.kill(signal.SIGTERM) == 0, flow.log_tail()
        stopped_at = time.time()
        stop = re.search(
            r"^riverrun run: stopped.*$", flow.log.read_text(errors="replace")[size:], re.MULTILINE
        )
        assert stop, flow.log_tail()
        assert "on signal: inputs drained" in stop.group(0)
        assert re.search(rf"{re.escape(model)} v1: {n} predicted, \d+ learned", stop.group(0)), stop.group(0)
        assert f"final snapshot in {tmp_path / 'state'}, a restart resumes epoch" in stop.group(0)

        # restart with no new input: the restored model's series are there at once
        time.sleep(3)
        size = len(flow.log.read_text(errors="replace"))
        flow.start()
        restarted = wait_for_line(flow, START, size)
        assert re.search(rf"models {re.escape(model)} \(\w+\) v1;", restarted.group(0))
        assert "resuming epoch" in restarted.group(0)
        url = restarted.group(1)
        deadline = time.monotonic() + 5
        while get(found := scrape(url), "riverrun_model_version", model=model) is None:
            assert time.monotonic() < deadline, f"no model series 5 s after start: {sorted(found)[:20]}"
            time.sleep(0.05)
        scraped_at = time.time()
        assert get(found, "riverrun_model_version", model=model) == 1
        assert get(found, "riverrun_predictions_total", model=model) == n
        assert get(found, "riverrun_pending_events", model=model) is not None
        assert get(found, "riverrun_model_accuracy", model=model, candidate="champion", window="cumulative")
        # aged from the view restored, not from the restart
        age = get(found, "riverrun_view_age_seconds", model=model)
        assert age >= scraped_at - stopped_at - 0.5, (age, scraped_at - stopped_at)
    finally:
        if flow.alive():
            flow.kill(signal.SIGTERM)
        predictions.close()
