"""A Kafka-range replay reads the control topic too: an operator rollback sent to a live run
takes effect in the backtest at the same event time, so the replay predicts what live did."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import timedelta

import pytest

from riverrun.streams.cli import main
from riverrun.streams.kafka import publish_stream
from riverrun.streams.synth import to_records
from tests.kafka_harness import REGISTRY_KEY, ROOT, Flow, TopicReader, fresh_settings

pytestmark = pytest.mark.kafka

FIELDS = ("event_id", "entity", "model", "model_version", "y_pred", "proba", "ts")


def _send(config, *args: str) -> None:
    env = {**os.environ, "RIVERRUN_REGISTRY__KEY": REGISTRY_KEY}
    sent = subprocess.run(
        [sys.executable, "-m", "riverrun.streams.cli", "models", *args, "-c", str(config)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=60,
        check=False,
    )
    assert sent.returncode == 0, sent.stderr


def test_replay_from_kafka_applies_the_operator_rollback_as_live_did(kafka_servers, tmp_path, monkeypatch):
    from riverrun.registry import open_registry
    from riverrun.streams.connectors import VerifiedProducer
    from riverrun.streams.scenarios import Scenario

    rows = list(Scenario(n=5000, drift_at=10**9, corrupt_from=10**9, corrupt_to=10**9, shift_at=10**9).rows())
    events, labels = to_records([(x, y) for x, y, _ in rows], label_delay=timedelta(seconds=20))
    settings, config = fresh_settings(kafka_servers, tmp_path, policy=True, features="none", max_wait_ms=1000)
    first, later = events[:3000], events[3000:]
    publish_stream(settings, first, [lb for lb in labels if lb.ts <= first[-1].ts])
    flow = Flow(config, tmp_path / "flow.log").start()
    predictions = TopicReader(kafka_servers, settings.topics.predictions)
    registry = open_registry(str(tmp_path / "registry"), REGISTRY_KEY.encode())
    at = later[0].ts - (later[0].ts - first[-1].ts) / 2  # between two records: no tie to break
    try:
        predictions.read_until(lambda m: len(m) >= len(first), 120, flow)
        deadline = time.monotonic() + 60
        while not registry.versions("lr") and time.monotonic() < deadline:
            time.sleep(0.5)  # the checkpoint at 2,000 labels is persisted by the flow
        assert registry.versions("lr"), flow.log_tail()
        _send(config, "rollback", "lr", "1", "--at", at.isoformat(), "--reason", "operator")
        bad = VerifiedProducer(settings.kafka.client_config())
        bad.produce(
            settings.topics.control,
            json.dumps({"model": "lr", "command": "rollback", "version": 99, "ts": at.isoformat()}).encode(),
            b"lr",
        )
        bad.flush()
        publish_stream(settings, later, [lb for lb in labels if lb.ts > first[-1].ts])
        predictions.read_until(lambda m: len(m) >= len(events), 120, flow)
        model_events = TopicReader(kafka_servers, settings.topics.model_events)
        acted = lambda m: {json.loads(x.value())["action"] for x in m}  # noqa: E731
        model_events.read_until(lambda m: "rollback" in acted(m), 60, flow)
    finally:
        flow.kill()
    live = {p["event_id"]: {k: p[k] for k in FIELDS} for p in predictions.values()}
    assert {live[e.event_id]["model_version"] for e in later} == {2}  # the rollback happened live
    live_rollback = next(e for e in model_events.values() if e["action"] == "rollback")

    monkeypatch.setenv("RIVERRUN_REGISTRY__KEY", REGISTRY_KEY)  # the rollback target is read from it
    out = tmp_path / "replay"
    args = ["replay", "--from-kafka", "-c", str(config), "--out", str(out), "--no-progress"]
    assert main(args) == 0
    replayed = [json.loads(line) for line in (out / "predictions.jsonl").open()]
    assert len(replayed) == len(events)
    assert {r["event_id"]: {k: r[k] for k in FIELDS} for r in replayed} == live
    report = json.loads((out / "report.json").read_text())
    assert report["inputs"]["topics"]["control"] == settings.topics.control
    assert report["inputs"]["control"] == [{"partition": 0, "start": 0, "end": 2}]
    replayed_events = [json.loads(x) for x in (out / "model-events.jsonl").open()]
    rollback = next(e for e in replayed_events if e["action"] == "rollback")
    for k in ("at", "checkpoint", "reason", "from_version", "to_version"):
        assert rollback[k] == live_rollback[k], k
    (letter,) = [json.loads(x) for x in (out / "dead-letter.jsonl").open()]
    assert (letter["kind"], letter["reason"]) == ("control", "checkpoint_refused")

    # without the control topic the backtest does not roll back: the later predictions differ
    assert main([*args[:-3], "--out", str(tmp_path / "blind"), "--no-progress", "--no-control"]) == 0
    blind = {r["event_id"]: r for r in map(json.loads, (tmp_path / "blind" / "predictions.jsonl").open())}
    assert {blind[e.event_id]["model_version"] for e in later} != {2}
