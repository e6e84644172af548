"""Replay as a backtest tool: several models and policies in one pass, byte-identical output for
the same input, a report with one entry per run, progress on stderr."""

from __future__ import annotations

import io
import json
import re
from collections import defaultdict
from datetime import timedelta
from pathlib import Path

import pytest

from riverrun.learners.lifecycle import PolicyConfig
from riverrun.streams.backtest.progress import Progress
from riverrun.streams.backtest.replay import expand_runs, replay
from riverrun.streams.backtest.scenarios import Scenario
from riverrun.streams.backtest.synth import to_records
from riverrun.streams.cli import main
from tests.harness.html_cells import action_rows, raw_reprs
from tests.harness.oracle import write_jsonl
from tests.harness.text import flat

N = 6000
POLICIES = [("none", PolicyConfig(enabled=False)), ("default", PolicyConfig())]
RUNS = ["lr-none", "lr-default", "hat-none", "hat-default"]


@pytest.fixture(scope="module")
def stream(tmp_path_factory) -> tuple[Path, Path]:
    """The demo's scenario, short: a concept drift, flipped labels and a covariate shift."""
    root = tmp_path_factory.mktemp("replay-stream")
    scenario = Scenario(n=N, drift_at=1500, corrupt_from=3000, corrupt_to=3500, shift_at=4500, seed=3)
    rows = list(scenario.rows())
    events, labels = to_records([(x, y) for x, y, _ in rows], label_delay=timedelta(seconds=40), jitter=0.5)
    return write_jsonl(root / "events.jsonl", events), write_jsonl(root / "labels.jsonl", labels)


def _compare(stream: tuple[Path, Path], out: Path, **kw):
    return replay(
        *stream, out, models=[("lr", "lr"), ("hat", "hat")], features="default", policies=POLICIES, **kw
    )


@pytest.fixture(scope="module")
def compared(stream, tmp_path_factory):
    """lr and hat, each without and with the lifecycle, in one pass; then the same again."""
    root = tmp_path_factory.mktemp("replay-compare")
    first = _compare(stream, root / "a")
    second = _compare(stream, root / "b", plot=False)
    return root, first, second


def by_run(path: Path) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = defaultdict(list)
    for line in path.open("rb"):
        p = json.loads(line)
        out[p["model"]].append(p)
    return out


def test_same_input_gives_byte_identical_outputs(compared):
    root, _, _ = compared
    for name in ("predictions.jsonl", "model-events.jsonl"):
        a, b = (root / "a" / name).read_bytes(), (root / "b" / name).read_bytes()
        assert a == b, name

    def letters(out: str) -> list[dict]:  # a dead letter says when it was written ("at")
        return [{**json.loads(x), "at": None} for x in (root / out / "dead-letter.jsonl").open()]

    assert letters("a") == letters("b") and letters("a")  # the flipped labels, quarantined
    assert len((root / "a" / "predictions.jsonl").read_bytes().splitlines()) == N * len(RUNS)


def test_every_model_runs_with_every_policy_in_one_pass(compared):
    root, result, _ = compared
    report = json.loads((root / "a" / "report.json").read_text())
    assert [r["name"] for r in report["runs"]] == RUNS
    assert report["passes"] == 1 and report["events"] == N
    for run in report["runs"]:
        assert run["n_predicted"] == N
        assert run["n_learned"] + run["counters"]["quarantined_labels"] == N
        assert set(run["metrics"]) >= {"accuracy", "log_loss", "roc_auc"}
        assert run["shared_pass"] and run["events_per_second"] > 0
        delay = run["label_delay"]  # the join's histogram: 40 s +- jitter, every label
        assert sum(delay["counts"]) == N and delay["sum"] / N == pytest.approx(40, abs=1)
        if run["policy"] == "none":
            assert run["action_counts"] == {} and run["actions"] == []
            assert run["n_learned"] == N
        else:  # the lifecycle met the drift, the flipped labels and the shift, with evidence
            assert "concept_drift" in run["action_counts"]
            # lr is replaced at the drift; hat adapts by itself: an alarm alone never replaces it
            assert ("promotion" in run["action_counts"]) == (run["model"] == "lr")
            assert all(a["model"] == run["name"] and a["reason"] for a in run["actions"])
            assert not any(a["action"] == "checkpoint" and a["reason"] == "periodic" for a in run["actions"])
    assert report["psi"]["series"] and "x0" in report["psi"]["series"][-1]["psi"]
    series = report["psi"]["series"]  # x3 shifts at event 4500 (of 6000), after the reference
    assert series[0]["psi"]["x3"] < 0.1 < 0.25 < series[-1]["psi"]["x3"]
    assert all(series[-1]["psi"][f] < 0.2 for f in ("x0", "x1", "x2", "x4"))
    assert result.final("lr-none").n_learned == N


def test_a_run_in_a_shared_pass_equals_the_run_alone(stream, compared, tmp_path):
    """Routing every record to four model steps changes nothing for any one of them."""
    root, _, _ = compared
    shared = by_run(root / "a" / "predictions.jsonl")
    replay(*stream, tmp_path, models=[("hat", "hat")], features="default", policy=PolicyConfig(), plot=False)
    alone = by_run(tmp_path / "predictions.jsonl")["hat"]
    assert [{**p, "model": "hat"} for p in shared["hat-default"]] == alone


@pytest.fixture(scope="module")
def small(stream, tmp_path_factory) -> tuple[Path, Path]:
    """The first 1500 events and their labels."""
    root = tmp_path_factory.mktemp("replay-small")
    events = stream[0].read_bytes().splitlines(keepends=True)[:1500]
    ids = {json.loads(e)["event_id"] for e in events}
    labels = [x for x in stream[1].read_bytes().splitlines(keepends=True) if json.loads(x)["event_id"] in ids]
    (root / "events.jsonl").write_bytes(b"".join(events))
    (root / "labels.jsonl").write_bytes(b"".join(labels))
    return root / "events.jsonl", root / "labels.jsonl"


def test_pass_per_run_gives_the_same_predictions(small, tmp_path):
    models = [("lr", "lr"), ("hat", "hat")]
    replay(*small, tmp_path / "shared", models=models, policies=POLICIES, plot=False)
    result = replay(
        *small, tmp_path / "each", models=models, policies=POLICIES, plot=False, pass_per_run=True
    )
    assert by_run(tmp_path / "each" / "predictions.jsonl") == by_run(
        tmp_path / "shared" / "predictions.jsonl"
    )
    report = result.report
    assert report["passes"] == len(RUNS)
    assert not any(r["shared_pass"] for r in report["runs"])
    assert all(r["seconds"] > 0 for r in report["runs"])  # each measured alone (two may round equal)


def test_html_report_is_written_and_self_contained(compared):
    root, _, _ = compared
    page = (root / "a" / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 3  # rolling metrics, label delay, PSI
    assert 'src="http' not in page and "<script" not in page
    for name in RUNS:
        assert f">{name}<" in page
    assert "How to read this" in page and "concept_drift" in page


def test_html_report_evidence_is_readable(compared):
    """Issue 18: on a real replay the actions table shows no Python repr or unrounded float, a
    decision shows the candidates it compared, and checkpoints say what was saved."""
    root, _, _ = compared
    page = (root / "a" / "report.html").read_text()
    rows = action_rows(page)
    assert rows and raw_reprs(page) == []
    assert any(r[2] in ("promotion", "rollback") and "candidate accuracy labels" in r[5] for r in rows)
    checkpoints = [r[3] for r in rows if r[2] == "checkpoint"]
    assert checkpoints and all(re.fullmatch(r"serving v\d+ saved as ckpt-\d+", v) for v in checkpoints)


def test_run_names():
    assert [r.name for r in expand_runs([("lr", "lr")], POLICIES[1:])] == ["lr"]
    with pytest.raises(ValueError, match="unique"):
        expand_runs([("a", "lr"), ("a", "hat")], POLICIES[:1])


# -- progress ----------------------------------------------------------------------------------


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_on_a_terminal_rewrites_one_line_at_most_every_interval():
    out = _Tty()
    bar = Progress(total=10_000, stream=out, interval=3600)
    assert bar.enabled
    for _ in range(100):
        bar.update(100)  # batches, as the sink calls it
    bar.close()
    text = out.getvalue()
    assert text.count("\r") == 1 and text.endswith("\n")  # no redraw within the interval
    assert "10,000/10,000 events (100.0%)" in text and "events/s" in text


def test_progress_shows_eta_while_running_and_is_off_when_not_a_terminal():
    out = _Tty()
    bar = Progress(total=1000, stream=out, interval=0.0)
    bar.update(250)
    assert "(25.0%)" in out.getvalue() and "ETA" in out.getvalue()
    quiet = io.StringIO()
    off = Progress(total=1000, stream=quiet)
    off.update(1000)
    off.close()
    assert not off.enabled and quiet.getvalue() == ""


def test_cli_progress_on_stderr_only_when_asked(small, tmp_path, capsys):
    events, labels = small
    args = ["replay", "--events", str(events), "--labels", str(labels), "--features", "none"]
    assert main([*args, "--out", str(tmp_path / "a"), "--progress"]) == 0
    shown = capsys.readouterr()
    assert "1,500/1,500 events (100.0%)" in shown.err
    assert "events/s" in shown.out
    assert main([*args, "--out", str(tmp_path / "b")]) == 0  # stderr is not a terminal: off
    assert capsys.readouterr().err == ""
    assert (tmp_path / "a" / "predictions.jsonl").read_bytes() == (
        tmp_path / "b" / "predictions.jsonl"
    ).read_bytes()


# -- the command line --------------------------------------------------------------------------


def test_replay_help_names_every_new_flag(capsys):
    with pytest.raises(SystemExit):
        main(["replay", "--help"])
    out = flat(capsys.readouterr().out)
    for flag in (
        "--from-kafka",
        "--start-offset",
        "--end-offset",
        "--start-time",
        "--end-time",
        "--policy",
        "--pass-per-run",
        "--progress",
        "report.html",
    ):
        assert flag in out


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--start-offset", "10"], "add --from-kafka"),
        (["--from-kafka", "--start-offset", "x=1"], "not understood"),
    ],
)
def test_replay_range_flags_fail_fast(stream, tmp_path, capsys, extra, message):
    events, labels = stream
    files = [] if "--from-kafka" in extra else ["--events", str(events), "--labels", str(labels)]
    config = tmp_path / "c.toml"
    config.write_text('[kafka]\nbootstrap_servers = "127.0.0.1:1"\n')
    code = main(["replay", *files, *extra, "-c", str(config), "--out", str(tmp_path / "o")])
    assert code == 2
    assert message in capsys.readouterr().err
