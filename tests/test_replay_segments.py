"""Replay with per-segment models (``segment_by``): the same instances and predictions as the live
flow's ``[flow] segment_by``, equal to one replay per segment, one report entry per instance,
and byte-identical outputs (dead letters included) across runs."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from riverrun.streams.backtest.replay import NO_TIME, replay
from riverrun.streams.cli import main
from riverrun.streams.core.modelstep import StepConfig
from riverrun.streams.flow.dataflow import FlowSinks, FlowSpec, build_dataflow
from riverrun.streams.flow.runtime import run_in_process
from riverrun.streams.flow.sinks import CallbackSink
from riverrun.streams.flow.sources import MemorySource
from tests.harness.oracle import write_jsonl
from tests.harness.segments import COUNTRIES, stream, without_country

BAD_LINES = [
    "{not json",  # no event time at all
    '{"event_id": "x", "entity": "u", "features": {}}',  # no ts
    '{"event_id": "y", "entity": "u", "ts": 1704067300, "features": {"a": [1]}}',  # has a ts
]


def _write(tmp: Path, events, labels, bad: bool = False) -> tuple[Path, Path]:
    ev = write_jsonl(tmp / "events.jsonl", events)
    if bad:
        lines = ev.read_text().splitlines()
        for k, line in enumerate(BAD_LINES):
            lines.insert(50 * (k + 1), line)
        ev.write_text("\n".join(lines) + "\n")
    return ev, write_jsonl(tmp / "labels.jsonl", labels)


def _replay(tmp: Path, name: str, events, labels, features: str = "default", **kw) -> Path:
    root = tmp / name
    root.mkdir()
    ev, lb = _write(root, events, labels, kw.pop("bad", False))
    replay(ev, lb, root / "out", models=[("lr", "lr")], features=features, plot=kw.pop("plot", False), **kw)
    return root / "out"


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.open()]


def _live(events, labels, features: str) -> list:
    """The live flow's dataflow (in process) with ``segment_by = "country"``."""
    got: list = []
    spec = FlowSpec(
        steps=(StepConfig(model="lr", recipe="lr"),), features=features, finite=True, segment_by="country"
    )
    sinks = FlowSinks(
        predictions=CallbackSink(got.extend),
        dead_letters=CallbackSink(lambda _: None),
        metrics=CallbackSink(lambda _: None),
        model_events=CallbackSink(lambda _: None),
    )
    run_in_process(
        build_dataflow(spec, MemorySource(events, "event", 64), MemorySource(labels, "label", 64), sinks)
    )
    return got


def test_segmented_replay_equals_the_live_segmented_flow_and_is_byte_identical(tmp_path):
    events, labels = stream(900)
    out = _replay(tmp_path, "a", events, labels, segment_by="country", plot=True)
    again = _replay(tmp_path, "b", events, labels, segment_by="country")
    for name in ("predictions.jsonl", "dead-letter.jsonl", "model-events.jsonl"):
        assert (out / name).read_bytes() == (again / name).read_bytes(), name

    rows = _rows(out / "predictions.jsonl")
    assert len(rows) == len(events)
    assert {r["model"] for r in rows} == {f"lr.{c}" for c in COUNTRIES}
    live = _live(events, labels, "default")
    want = {p.event_id: (p.model, p.model_version, p.y_pred, p.proba) for p in live}
    got = {r["event_id"]: (r["model"], r["model_version"], r["y_pred"], r["proba"]) for r in rows}
    assert got == want

    report = json.loads((out / "report.json").read_text())
    assert report["segment_by"] == "country" and report["events"] == len(events)
    runs = report["runs"]
    assert [(r["name"], r["run"], r["segment"]) for r in runs] == [(f"lr.{c}", "lr", c) for c in COUNTRIES]
    for r in runs:
        mine = [e for e in events if e.features["country"] == r["segment"]]
        assert r["n_predicted"] == len(mine) and r["n_learned"] == len(mine)
    assert sum(r["n_predicted"] for r in runs) == len(events)
    page = (out / "report.html").read_text()
    assert all(f"lr.{c}" in page for c in COUNTRIES) and "one per model and value of country" in page


def test_segmented_replay_equals_one_replay_per_segment(tmp_path):
    """Raw features (an entity's features span segments): each instance is the replay of its
    segment's records alone, byte for byte but for the model name."""
    events, labels = stream(600, seed=11)
    out = _replay(tmp_path, "all", events, labels, features="none", segment_by="country")
    rows = _rows(out / "predictions.jsonl")
    for c in COUNTRIES:
        ids = {e.event_id for e in events if e.features["country"] == c}
        mine = [e.model_copy(update={"features": without_country(e)}) for e in events if e.event_id in ids]
        alone = _replay(tmp_path, c, mine, [lb for lb in labels if lb.event_id in ids], features="none")
        expected = [{**r, "model": f"lr.{c}"} for r in _rows(alone / "predictions.jsonl")]
        assert [r for r in rows if r["model"] == f"lr.{c}"] == expected, c


def test_replay_dead_letters_carry_event_time_and_are_byte_identical(tmp_path):
    events, labels = stream(300)
    events = [e.model_copy(update={"features": without_country(e)}) for e in events]
    first = _replay(tmp_path, "one", events, labels, bad=True)
    second = _replay(tmp_path, "two", events, labels, bad=True)
    assert (first / "dead-letter.jsonl").read_bytes() == (second / "dead-letter.jsonl").read_bytes()
    letters = _rows(first / "dead-letter.jsonl")
    assert sorted((d["reason"], d["offset"]) for d in letters) == [
        ("invalid_json", 50),
        ("validation", 100),
        ("validation", 150),
    ]
    at = {d["offset"]: d["at"] for d in letters}
    assert datetime.fromisoformat(at[150]) == datetime(2024, 1, 1, 0, 1, 40, tzinfo=UTC)  # its own ts
    assert datetime.fromisoformat(at[50]) == datetime.fromisoformat(at[100]) == NO_TIME  # none
    assert [d["offset"] for d in letters] == [50, 100, 150]  # by event time, then origin


def test_cli_segment_by_flag(tmp_path, capsys):
    events, labels = stream(300)
    ev, lb = _write(tmp_path, events, labels)
    out = tmp_path / "out"
    args = ["replay", "--events", str(ev), "--labels", str(lb), "--out", str(out), "--no-progress"]
    assert main([*args, "--segment-by", "country", "--features", "none"]) == 0
    report = json.loads((out / "report.json").read_text())
    assert [r["name"] for r in report["runs"]] == [f"lr.{c}" for c in COUNTRIES]
    assert "lr.DE: learned" in capsys.readouterr().out
