"""Bad input mixed into a valid stream (``tests/harness/badinput.py``): every malformed record is
a dead letter with its origin and the expected reason, nothing crashes, and the valid records are
predicted and learned exactly as in a clean run (so no bad record reached ``learn_one``)."""

from __future__ import annotations

from pathlib import Path

from tests.harness.badinput import TTL, mix, replay_files, static_corpus, valid_stream
from tests.harness.oracle import write_jsonl


def _write_lines(path: Path, lines: list[bytes]) -> Path:
    path.write_bytes(b"".join(line + b"\n" for line in lines))
    return path


def test_corpus_has_at_least_twenty_kinds():
    kinds = {b.kind for b in static_corpus()}
    assert len(kinds) >= 20
    assert len(kinds) == len(list(static_corpus()))  # each kind once


def test_whole_corpus_in_a_valid_stream_is_dead_lettered_and_learning_is_unchanged(tmp_path):
    events, labels = valid_stream()
    clean_dir, dirty_dir = tmp_path / "clean", tmp_path / "dirty"
    clean_dir.mkdir()
    dirty_dir.mkdir()
    clean_predictions, clean_dead, clean_report = replay_files(
        clean_dir,
        write_jsonl(clean_dir / "events.jsonl", events),
        write_jsonl(clean_dir / "labels.jsonl", labels),
    )
    mixed = mix(events, labels, TTL)
    assert len({kind for _, _, kind, _ in mixed.expected}) >= 24
    predictions, dead, report = replay_files(
        dirty_dir,
        _write_lines(dirty_dir / "events.jsonl", mixed.events),
        _write_lines(dirty_dir / "labels.jsonl", mixed.labels),
    )
    # every bad record, and nothing else, is a dead letter, at its line, with the expected reason
    assert clean_dead == []
    files = {"event": "events.jsonl", "label": "labels.jsonl"}
    want = sorted((which, line, reason) for which, line, _, reason in mixed.expected)
    got = sorted((d["kind"], d["offset"], d["reason"]) for d in dead)
    assert got == want
    for d in dead:
        assert d["partition"] == 0 and d["error"] and d["reason"]
        # decode-stage letters name their file; join-stage ones (the join knows no topics) do not
        assert d["topic"] in (files[d["kind"]], None)
        assert d["topic"] is not None or d["reason"] in {
            "duplicate_event_id",
            "label_type",
            "label_expired",
            "unknown_event",
        }
    # the valid records: predicted and learned exactly as without the bad ones
    assert predictions == clean_predictions
    got, want = report["models"]["lr"]["final"], clean_report["models"]["lr"]["final"]
    assert (got["n_predicted"], got["n_learned"], got["metrics"]) == (
        want["n_predicted"],
        want["n_learned"],
        want["metrics"],
    )
    assert got["counters"]["duplicate_events"] == 1 and got["counters"]["expired_labels"] == 1


def test_clean_stream_has_no_dead_letters(tmp_path):
    events, labels = valid_stream()
    _, dead, _ = replay_files(
        tmp_path,
        write_jsonl(tmp_path / "events.jsonl", events),
        write_jsonl(tmp_path / "labels.jsonl", labels),
    )
    assert dead == []


def test_join_letters_name_their_topic_when_the_step_knows_it():
    """The join's dead letters carry the source topics given in ``StepConfig`` (the items only
    carry partition and offset)."""
    from datetime import UTC, datetime

    from riverrun.schemas import DeadLetter, Event, Label
    from riverrun.streams.core.items import FeaturedEvent, SourcedLabel
    from riverrun.streams.core.modelstep import ModelStep, StepConfig

    step = ModelStep(StepConfig("m", "lr", label_ttl_seconds=10, event_topic="ev", label_topic="lb"))
    t = datetime(2024, 1, 1, tzinfo=UTC).timestamp()
    ev = Event(event_id="a", entity="u", ts=t, features={"x": 1.0})
    items = [
        FeaturedEvent(ev, {"x": 1.0}, 0, 0),
        FeaturedEvent(ev, {"x": 1.0}, 0, 1),  # duplicate_event_id
        SourcedLabel(Label(event_id="a", label=True, ts=t + 1), 0, 0),
        SourcedLabel(Label(event_id="zz", label=True, ts=t + 2), 0, 1),  # unknown_event at t + 13
        SourcedLabel(Label(event_id="a", label="cat", ts=t + 3), 0, 2),  # label_type
        FeaturedEvent(Event(event_id="b", entity="u", ts=t + 20, features={}), {}, 0, 2),
    ]
    out = [o for seq, item in enumerate(items) for o in step.on_item(seq, item)]
    letters = sorted((d.reason, d.topic, d.offset) for d in out if isinstance(d, DeadLetter))
    assert letters == [("duplicate_event_id", "ev", 1), ("label_type", "lb", 2), ("unknown_event", "lb", 1)]
