"""The model lifecycle on the seeded scenario: promotion after a concept drift, rollback to the
pre-corruption checkpoint after flipped labels, alert-and-checkpoint (never rollback) on a
covariate shift; pinned action positions, caps, exact rollbacks, pickling, registry audit."""

from __future__ import annotations

import json
import pickle
from collections import deque
from datetime import UTC, datetime, timedelta
from functools import partial

import pytest

from riverrun.learners.lifecycle import Checkpoint, ModelLifecycle, PolicyConfig, labels_since_change
from riverrun.registry import open_registry
from riverrun.schemas import ModelEvent
from riverrun.streams.backtest.replay import replay
from riverrun.streams.backtest.scenarios import Scenario
from riverrun.streams.backtest.synth import to_records
from riverrun.streams.flow.registry_sink import RegistrySink
from tests.harness.oracle import write_jsonl

T0 = datetime(2024, 1, 1, tzinfo=UTC)
SCENARIO = Scenario()
DELAY = 50


def run(rows, config: PolicyConfig, until: int | None = None):
    """Predict each event, learn its published label DELAY events later; return the
    lifecycle, its outputs as (event index, item), and accuracy against the truth."""
    lc = ModelLifecycle("m", "lr", config)
    pending: deque = deque()
    outputs, correct = [], 0
    for i, (x, published, truth) in enumerate(rows[:until]):
        ts = T0 + timedelta(seconds=i)
        while pending and pending[0][0] <= i - DELAY:
            j, xo, yo = pending.popleft()
            outputs += [(i, o) for o in lc.learn(str(j), xo, yo, ts)]
        served = lc.predict(str(i), x, ts)
        outputs += [(i, o) for o in lc.drain()]
        correct += served.y_pred == truth
        pending.append((i, x, published))
    return lc, outputs, correct / len(rows[:until])


@pytest.fixture(scope="module")
def scenario_run():
    return run(list(SCENARIO.rows()), PolicyConfig())


def actions(outputs, *names):
    return [(i, o) for i, o in outputs if isinstance(o, ModelEvent) and o.action in names]


def test_drift_promotes_corruption_rolls_back_shift_only_alerts(scenario_run):
    lc, outputs, accuracy = scenario_run
    acted = actions(outputs, "promotion", "rollback")
    # Golden positions (event index when the action happened), seeded: a change here is a
    # change of behaviour.
    assert [(i, o.action) for i, o in acted] == [(5085, "promotion"), (9085, "rollback")]
    promotion = acted[0][1]
    assert promotion.compared["challenger:fresh"]["accuracy"] > promotion.compared["champion"]["accuracy"]
    assert (promotion.from_version, promotion.to_version) == (1, 2)
    # Flipped labels: back to the last healthy checkpoint, taken before they broke, and learning
    # pauses until the labels agree with the champion again (after they are fixed).
    rollback = acted[1][1]
    saved = {o.id: o for _, o in outputs if isinstance(o, Checkpoint)}
    assert saved[rollback.checkpoint].event_time_end < T0 + timedelta(seconds=SCENARIO.corrupt_from)
    assert rollback.to_version == lc.version == 3
    assert "labels look corrupted" in rollback.reason
    assert [(i, o.action) for i, o in actions(outputs, "learning_paused", "learning_resumed")] == [
        (9085, "learning_paused"),
        (10058, "learning_resumed"),
    ]
    assert lc.n_paused == 973 and not lc.paused
    assert accuracy > 0.98  # against the true labels: the corruption did not reach the model
    # The covariate shift: alert with evidence, a checkpoint, and no rollback or promotion.
    shifts = actions(outputs, "covariate_shift")
    assert shifts and all(o.feature == "x3" for _, o in shifts)
    first_shift = shifts[0][0]
    assert SCENARIO.shift_at < first_shift < SCENARIO.shift_at + 1500
    assert not [i for i, _ in acted if i >= SCENARIO.shift_at]
    assert any(isinstance(o, Checkpoint) and o.reason == "covariate_shift" for _, o in outputs)


def test_the_policy_beats_no_policy_on_the_scenario(scenario_run):
    _, _, with_policy = scenario_run
    _, _, without = run(list(SCENARIO.rows()), PolicyConfig(enabled=False))
    assert with_policy > without + 0.01


def test_rollback_restores_the_checkpoint_exactly_and_pausing_keeps_it():
    rows = list(SCENARIO.rows())
    # Stop well inside the corrupted stretch: learning is paused since the rollback, so the
    # champion is still exactly the checkpoint it rolled back to.
    lc, outputs, _ = run(rows, PolicyConfig(), until=9700)
    ((at, rollback),) = actions(outputs, "rollback")
    assert at == 9085 and lc.version == rollback.to_version == 3 and lc.paused
    ckpt = next(o for _, o in outputs if isinstance(o, Checkpoint) and o.id == rollback.checkpoint)
    restored = pickle.loads(ckpt.blob)
    probe = [x for x, _, _ in rows[-300:]]
    assert [lc.champion.model.predict_proba_one(x) for x in probe] == [
        restored.predict_proba_one(x) for x in probe
    ]


def test_the_fresh_challenger_first_learns_the_labels_since_the_change(scenario_run):
    # The drift is at event 5000: its first label is learned at 5050 and ADWIN's warning comes
    # with the 9th (5058); the change point of the champion's errors finds those 9 labels.
    _, outputs, _ = scenario_run
    (started_at, started), *_ = actions(outputs, "challenger_started")
    assert started_at == 5058 and "from the 9 buffered labels since the change" in started.reason


def test_labels_since_change_finds_a_rise_of_the_error_rate():
    assert labels_since_change([]) == 0 and labels_since_change([False] * 5) == 0
    assert labels_since_change([True] * 200 + [False, False, True, False] * 5) == 20
    assert labels_since_change([False] * 50 + [True] * 50) == 0  # the error fell: no change
    # the split of max likelihood, with the error higher after it
    oks = [True] * 100 + [False] * 3 + [True] * 97
    assert labels_since_change(oks) == 100


def test_action_cap_pauses_without_rolling_back():
    _, outputs, _ = run(list(SCENARIO.rows()), PolicyConfig(max_actions=1))
    acted = actions(outputs, "promotion", "rollback")
    assert [o.action for _, o in acted] == ["promotion"]
    assert [o.action for _, o in actions(outputs, "learning_paused", "learning_resumed")] == [
        "learning_paused",
        "learning_resumed",
    ]


def test_a_real_drift_is_not_taken_for_corrupted_labels():
    for seed in (1, 2, 3):
        scenario = Scenario(seed=seed, corrupt_from=10**9, corrupt_to=10**9, shift_at=10**9)
        _, outputs, _ = run(list(scenario.rows()), PolicyConfig())
        assert [o.action for _, o in actions(outputs, "promotion", "rollback")] == ["promotion"]
        assert not actions(outputs, "learning_paused")


def test_a_pause_ends_after_max_pause_if_the_world_itself_inverted():
    # The labels flip at 3000 and stay flipped: after max_pause labels the policy learns again.
    scenario = Scenario(n=6000, drift_at=10**9, corrupt_from=3000, corrupt_to=10**9, shift_at=10**9)
    lc, outputs, _ = run(list(scenario.rows()), PolicyConfig(max_pause=1000))
    events = actions(outputs, "learning_paused", "learning_resumed")
    assert [o.action for _, o in events] == ["learning_paused", "learning_resumed"]
    (paused_at, _), (resumed_at, resumed) = events
    assert resumed_at - paused_at == 1000 and "may have inverted" in resumed.reason
    assert not lc.paused


def test_pickled_lifecycle_continues_identically():
    rows = list(SCENARIO.rows())[:6000]
    lc, _, _ = run(rows, PolicyConfig(), until=5100)
    clone = pickle.loads(pickle.dumps(lc))
    for i, (x, y, _) in enumerate(rows[5100:], start=5100):
        ts = T0 + timedelta(seconds=i)
        a = [o.action for o in lc.learn(str(i), x, y, ts) if isinstance(o, ModelEvent)]
        b = [o.action for o in clone.learn(str(i), x, y, ts) if isinstance(o, ModelEvent)]
        assert a == b
    assert lc.version == clone.version
    assert lc.champion.metrics() == clone.champion.metrics()


def test_policy_off_emits_nothing():
    _, outputs, _ = run(list(SCENARIO.rows())[:3000], PolicyConfig(enabled=False))
    assert outputs == []


def test_replay_with_policy_reports_and_registers(tmp_path):
    scenario = Scenario(n=12_000, drift_at=3000, corrupt_from=6000, corrupt_to=7000, shift_at=9000)
    rows = list(scenario.rows())
    events, labels = to_records([(x, y) for x, y, _ in rows], label_delay=timedelta(seconds=50))
    key = b"k" * 32
    registry_dir = tmp_path / "registry"
    result = replay(
        write_jsonl(tmp_path / "e.jsonl", events),
        write_jsonl(tmp_path / "l.jsonl", labels),
        tmp_path / "out",
        models=[("lr", "lr")],
        features="none",
        policy=PolicyConfig(),
        registry=RegistrySink(partial(open_registry, str(registry_dir), key)),
    )
    done = [e.action for e in result.model_events if e.action in ("promotion", "rollback")]
    assert "promotion" in done and "rollback" in done
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert [a["action"] for a in report["actions"] if a["action"] in ("promotion", "rollback")] == done
    assert all(a.get("reason") for a in report["actions"])
    lines = (tmp_path / "out" / "model-events.jsonl").read_text().splitlines()
    assert len(lines) == len(result.model_events)
    registry = open_registry(str(registry_dir), key)
    versions = registry.versions("lr")
    checkpoints = [e for e in result.model_events if e.action == "checkpoint"]
    assert len(versions) == len(checkpoints) >= 3
    assert [v.parent for v in versions] == [None, *[v.version for v in versions[:-1]]]
    audited = [r["action"] for r in registry.audit_log("lr") if r.get("model") == "lr"]
    assert [e.action for e in result.model_events] == [a for a in audited if a not in ("save",)]
    restored = registry.load("lr", versions[-1].version)
    assert restored.predict_proba_one(rows[0][0])  # a working River model


def test_registry_sink_skips_what_a_recovery_re_emits(tmp_path):
    """After a crash the flow re-emits the outputs since its snapshot, identically: the registry
    must not gain duplicate versions or audit records."""
    from riverrun.streams.flow.registry_sink import _RegistryPartition

    _, outputs, _ = run(list(SCENARIO.rows()), PolicyConfig(), until=8000)
    items = [o for _, o in outputs]
    key = b"k" * 32
    opener = partial(open_registry, str(tmp_path / "registry"), key)
    first = _RegistryPartition(opener)
    first.write_batch(items[: len(items) // 2])
    first.close()  # the writer thread finishes what it was given
    again = _RegistryPartition(opener)  # a restarted worker, re-emitting from an older point
    again.write_batch(items)
    again.close()
    registry = opener()
    checkpoints = [o for o in items if isinstance(o, Checkpoint)]
    versions = registry.versions("m")
    assert [v.reason.split(":")[0] for v in versions] == [c.id for c in checkpoints]
    assert [v.parent for v in versions] == [None, *[v.version for v in versions[:-1]]]
    events = [o for o in items if isinstance(o, ModelEvent)]
    records = registry.audit_log("m")
    audited = [r for r in records if r.get("action") not in ("save", "pointer")]
    assert [r["action"] for r in audited] == [e.action for e in events]
    pointers = [(r["version"], r["previous"]) for r in records if r.get("action") == "pointer"]
    assert len(pointers) == len(set(pointers))  # the champion pointer moved once per change


def test_models_cli_reads_the_signed_registry(tmp_path, monkeypatch, capsys):
    from riverrun.learners import build_model
    from riverrun.streams.cli import main

    key = "cli-test-key-0123456789abcdef"
    registry = open_registry(str(tmp_path / "reg"), key.encode())
    for n, reason in ((100, "ckpt-1: periodic"), (200, "ckpt-2: periodic")):
        registry.save(
            "m",
            build_model("lr"),
            recipe="lr",
            parent=None if n == 100 else 1,
            n_learned=n,
            metrics={"accuracy": n / 1000},
            event_time=(None, None),
            reason=reason,
        )
    registry.audit("m", {"action": "rollback", "reason": "test"})
    where = ["--registry", str(tmp_path / "reg")]
    monkeypatch.setenv("RIVERRUN_REGISTRY__KEY", key)
    assert main(["models", "list", "m", *where]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in listed[2:]] == ["v1", "v2"]  # registry versions
    assert main(["models", "diff", "m", "1", "2", *where]) == 0
    assert json.loads(capsys.readouterr().out)["metrics"]["accuracy"]["delta"] == pytest.approx(0.1)
    assert main(["models", "audit", "m", *where]) == 0
    assert '"rollback"' in capsys.readouterr().out
    assert main(["models", "export", "m", "2", str(tmp_path / "m.pkl"), *where]) == 0
    assert pickle.loads((tmp_path / "m.pkl").read_bytes()).predict_proba_one({"x": 1.0})
    monkeypatch.setenv("RIVERRUN_REGISTRY__KEY", "another-key-0123456789abcdef")
    assert main(["models", "export", "m", "2", str(tmp_path / "x.pkl"), *where]) == 2
    assert "MAC mismatch" in capsys.readouterr().err
    assert not (tmp_path / "x.pkl").exists()


def test_model_step_dead_letters_the_labels_it_does_not_learn():
    """While learning is paused, each label goes to the dead letters (nothing valid is lost:
    ops can re-feed them once the labelling job is checked), with its origin and the reason."""
    from riverrun.schemas import DeadLetter, Event, Label
    from riverrun.streams.core.items import FeaturedEvent, SourcedLabel
    from riverrun.streams.core.modelstep import ModelStep, StepConfig

    rows = list(SCENARIO.rows())
    step = ModelStep(StepConfig(model="m", recipe="lr", policy=PolicyConfig(), served_at_event_time=True))
    seq, quarantined = 0, []
    for i, (x, _, _) in enumerate(rows):
        ts = T0 + timedelta(seconds=i)
        items = []
        if i >= DELAY:
            j = i - DELAY
            items.append(SourcedLabel(Label(event_id=str(j), label=rows[j][1], ts=ts), 1, j))
        items.append(FeaturedEvent(Event(event_id=str(i), entity="e", ts=ts, features=x), x, 0, i))
        for item in items:
            out = step.on_item(seq, item)
            seq += 1
            quarantined += [o for o in out if isinstance(o, DeadLetter) and o.reason == "label_quarantined"]
    assert len(quarantined) == step.lifecycle.n_paused == step.counters()["quarantined_labels"] == 973
    first = quarantined[0]
    # the pause began with the label learned at event 9085; the next one is the first kept out
    assert first.kind == "label" and first.partition == 1 and first.offset == 9085 - DELAY + 1
    assert json.loads(first.payload)["event_id"] == str(first.offset)


def test_lifecycle_pickled_as_a_module_loads():
    """A lifecycle pickled when riverrun/learners/lifecycle.py was a module (recovery snapshots
    name its classes by those paths) loads from the package and goes on deciding as it did."""
    from pathlib import Path

    from river import datasets

    from riverrun.learners.lifecycle.checkpoints import FrozenCheckpoint
    from riverrun.learners.lifecycle.model import Evaluation

    fixture = Path(__file__).parent / "fixtures" / "lifecycle-module"
    lc = pickle.loads((fixture / "lifecycle.pickle").read_bytes())
    assert isinstance(lc, ModelLifecycle) and isinstance(lc.config, PolicyConfig)
    assert isinstance(lc._evaluation, Evaluation) and len(lc.checkpoints) == 3
    assert all(isinstance(f, FrozenCheckpoint) for f in lc.checkpoints)
    got = []
    for i, (x, y) in enumerate(list(datasets.Phishing())[300:700], start=300):
        ts = T0 + timedelta(seconds=i)
        served = lc.predict(str(i), x, ts)
        events = lc.learn(str(i), x, y, ts)
        got.append(
            [served.y_pred, [f"{type(e).__name__}:{getattr(e, 'action', None) or e.id}" for e in events]]
        )
    assert got == json.loads((fixture / "expected.json").read_text())
