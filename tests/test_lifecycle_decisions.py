"""The lifecycle's decision rule in parts (issue 15): the paired sequential test and its error
rate, the rule object, self-adapting families, probation (a displaced model comes back), the
counterfactual and the regret, and lifecycles pickled before these existed."""

from __future__ import annotations

import pickle
import random
from pathlib import Path

from river import forest, linear_model, preprocessing, tree

from riverrun.learners.lifecycle import ModelLifecycle, PairedDecision, PairedTest, PolicyConfig
from riverrun.learners.lifecycle.decision import adapts_by_itself
from tests.test_lifecycle import SCENARIO, actions, run


def test_the_paired_test_keeps_its_false_alarm_rate_when_neither_is_better():
    rng = random.Random(1)
    alarms = 0
    for _ in range(200):
        t = PairedTest(alpha=0.05)
        for _ in range(2000):  # two equally good, independent models, watched for 2000 labels
            t.update(float(rng.random() < 0.2), float(rng.random() < 0.2))
            if t.rejects:
                alarms += 1
                break
    assert alarms <= 0.05 * 200


def test_the_paired_test_finds_a_better_candidate_and_says_what_it_saw():
    rng = random.Random(2)
    t = PairedTest(alpha=0.05, margin=0.02)
    n = 0
    while not t.rejects:
        n += 1
        t.update(float(rng.random() < 0.3), float(rng.random() < 0.15))
    assert n < 300
    e = t.evidence()
    assert e["labels"] == n and e["e_value"] >= e["threshold"] == 20 and e["mean_gain"] > 0.02
    assert e["accuracy"] > e["champion_accuracy"]


def test_an_e_detector_finds_a_late_change_that_a_test_from_the_start_misses():
    fixed, detector = PairedTest(0.05), PairedTest(0.05, restart=True)
    for k in range(600):  # the candidate is worse for 500 labels, then better
        better = k >= 500
        for t in (fixed, detector):
            t.update(float(better), float(not better))
    assert detector.rejects and not fixed.rejects


def test_the_rule_decides_on_evidence_and_keeps_without_it():
    rule = PairedDecision(alpha=0.05, min_labels=10, max_labels=50)
    rule.start(["challenger:a", "checkpoint:b"])
    for k in range(49):
        rule.see(
            {
                "champion": (float(k % 2), 0.7),
                "challenger:a": (float(k % 3 == 0), 0.7),
                "checkpoint:b": (0.0, 9.0),
            }
        )
        if k < 9:
            assert rule.decide() is None  # too few labels, whatever they say
    # checkpoint:b is more often right, but its log loss is worse: never chosen
    verdict = rule.decide()
    assert verdict is None or verdict.choice != "checkpoint:b"
    rule.see({"champion": (0.0, 0.7)})
    verdict = rule.decide()
    assert verdict is not None and verdict.choice in ("keep", "challenger:a")
    assert set(verdict.evidence) == {"challenger:a", "checkpoint:b"}


def test_models_that_adapt_by_themselves_are_recognised():
    assert adapts_by_itself(tree.HoeffdingAdaptiveTreeClassifier())
    assert adapts_by_itself(forest.ARFClassifier(n_models=2))
    assert adapts_by_itself(preprocessing.StandardScaler() | tree.HoeffdingAdaptiveTreeClassifier())
    assert not adapts_by_itself(preprocessing.StandardScaler() | linear_model.LogisticRegression())
    assert not adapts_by_itself(tree.HoeffdingTreeClassifier())


def blip(end: int, n: int = 6000, start: int = 3000, seed: int = 3) -> list:
    """The scenario's concept, switched to another on [start, end) and back."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        x = {f"x{k}": rng.gauss(0, 1) for k in range(5)}
        y = (-x["x0"] + x["x1"] + x["x2"] > 0) if start <= i < end else (x["x0"] + x["x1"] - x["x2"] > 0)
        rows.append((x, y, y))
    return rows


def test_a_displaced_model_comes_back_when_the_world_does():
    quiet = PolicyConfig(covariate=False, prior=False)
    lc, outputs, accuracy = run(blip(end=3300), quiet)
    _, _, alone = run(blip(end=3300), PolicyConfig(enabled=False))
    acted = actions(outputs, "promotion", "rollback")
    assert [o.action for _, o in acted] == ["promotion", "rollback"]
    (promoted_at, _), (back_at, back) = acted
    assert promoted_at < 3300 < back_at < 3300 + 50 + 100  # the labels come 50 events late
    assert "the displaced model became better" in back.reason and back.compared["displaced"]["e_value"] > 0
    assert lc._displaced is None and lc._counterfactual is None  # back to the unchanged model
    assert accuracy >= alone and lc.regret() <= 0


def test_the_regret_against_doing_nothing_is_measured_from_the_first_action():
    lc, outputs, with_policy = run(list(SCENARIO.rows()), PolicyConfig())
    _, _, alone = run(list(SCENARIO.rows()), PolicyConfig(enabled=False))
    # the counterfactual learned the corrupted labels too; the regret leaves those out
    assert lc.regret() < -0.02 and with_policy - alone > 0.05
    # one counterfactual from the promotion, another from the rollback: each retired once the
    # lifecycle's model beat it for a whole probation (it costs a model while it runs)
    retired = [i for i, o in actions(outputs, "keep") if "counterfactual retired" in o.reason]
    assert len(retired) == 2 and lc._counterfactual is None
    fresh = ModelLifecycle("m", "lr")
    assert fresh.regret() == 0.0 and fresh._counterfactual is None  # nothing to run before an action


def test_a_lifecycle_pickled_before_the_sequential_test_continues():
    """The fixture (written at 8b79e43, an evaluation in progress) has none of the new attributes:
    they default, and its evaluation ends with a keep, as it did."""
    fixture = Path(__file__).parent / "fixtures" / "lifecycle-module" / "lifecycle.pickle"
    lc = pickle.loads(fixture.read_bytes())
    assert lc._displaced is None and lc._counterfactual is None and lc.regret() == 0.0
    assert lc._evaluation.rule is None and lc._evaluation.checkpoints
    again = pickle.loads(pickle.dumps(lc))
    assert again.regret() == 0.0
