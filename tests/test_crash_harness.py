"""The crash harness (tests/harness/crash.py, the command scripts/crash_harness.py) on the real
broker, at CI size.

The command's full run is 200,000 events and 10 SIGKILLs (see its docstring); here 20,000 events
and 3 kills per variant (about 45 s each), half of the kills aimed at a snapshot being written.
Each variant checks: no event without a prediction (per-entity sequence numbers), every duplicate
identical to its first copy, and the final model step (models, metrics, detectors, lifecycle,
checkpoints) identical to an uninterrupted run of the same input, with equal holdout predictions.
"""

from __future__ import annotations

import copy
import subprocess
import sys

import pytest

from tests.harness.crash import run_harness, state_diff
from tests.harness.kafka import ROOT

pytestmark = pytest.mark.kafka


@pytest.mark.parametrize(
    ("processes", "policy"),
    [(1, True), (2, True)],
    ids=["one-process-lifecycle", "two-processes-lifecycle"],
)
def test_repeated_sigkill_loses_nothing_and_ends_in_the_uninterrupted_state(
    kafka_servers, tmp_path, processes, policy
):
    outcome = run_harness(
        kafka_servers,
        tmp_path,
        n_events=20_000,
        kills=3,
        seed=processes,
        policy=policy,
        processes=processes,
        timeout=300,
    )
    summary = outcome.summary()
    assert len(outcome.kills) == 3
    assert outcome.lost == 0, summary
    assert outcome.mismatched_duplicates == 0, summary
    if processes == 1:  # with 2 processes a kill can land right after a snapshot of both
        assert outcome.duplicates > 0, "no re-emission: the kills did not interrupt an epoch"
    assert outcome.state_diffs == [], summary
    assert outcome.holdout_max_diff == 0.0
    assert outcome.stop_codes == [0] * (2 * processes)
    final, ref = outcome.fingerprint["lr"], outcome.reference_fingerprint["lr"]
    assert final == ref and final["n_learned"] > 0 and final["n_checkpoints"] > 0


def test_state_diff_finds_a_changed_weight_and_a_changed_detector(tmp_path):
    """The final-state comparison is not vacuous: it sees one weight moved by 1e-12 and one
    more value in a (Rust) ADWIN window."""
    from datetime import timedelta

    from riverrun.streams.backtest.synth import drifting_agrawal, to_records
    from riverrun.streams.core.items import FeaturedEvent, SourcedLabel
    from riverrun.streams.core.modelstep import ModelStep, StepConfig
    from riverrun.streams.settings import PolicySettings

    step = ModelStep(StepConfig(model="lr", recipe="lr", policy=PolicySettings().config()))
    events, labels = to_records(drifting_agrawal(300), label_delay=timedelta(0))
    seq = 0
    for event, label in zip(events, labels, strict=True):
        step.on_item(seq, FeaturedEvent(event, dict(event.features), 0, seq))
        step.on_item(seq + 1, SourcedLabel(label, 0, seq))
        seq += 2
    same = copy.deepcopy(step)
    assert state_diff(step, same) == []
    moved = copy.deepcopy(step)
    weights = moved.learner.model.steps["LogisticRegression"]._weights
    name = next(iter(weights))
    weights[name] += 1e-12
    assert state_diff(step, moved)
    detector = copy.deepcopy(step)
    detector.lifecycle.concept._detector._helper.update(1.0)
    assert state_diff(step, detector)


@pytest.mark.parametrize("command", [["scripts/crash_harness.py"], ["-m", "scripts.crash_harness"]])
def test_the_command_runs_from_the_root_as_a_file_or_a_module(command):
    done = subprocess.run(
        [sys.executable, *command, "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "--kills" in done.stdout
