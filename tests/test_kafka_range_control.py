"""A Kafka-range replay reads the control topic too: an operator rollback sent to a live run
takes effect in the backtest at the same event time, so the replay predicts what live did."""

from __future__ import annotations

import json

import pytest

from riverrun.streams.cli import main
from tests.harness.flows import run_operator_rollback
from tests.harness.kafka import REGISTRY_KEY

pytestmark = pytest.mark.kafka

FIELDS = ("event_id", "entity", "model", "model_version", "y_pred", "proba", "ts")


def test_replay_from_kafka_applies_the_operator_rollback_as_live_did(kafka_servers, tmp_path, monkeypatch):
    run = run_operator_rollback(kafka_servers, tmp_path, reason="operator")
    settings, config, events, later = run.settings, run.config, run.events, run.later
    live = {p["event_id"]: {k: p[k] for k in FIELDS} for p in run.predictions.values()}
    assert {live[e.event_id]["model_version"] for e in later} == {2}  # the rollback happened live
    live_rollback = next(e for e in run.model_events.values() if e["action"] == "rollback")

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
