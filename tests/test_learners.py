"""Learners: binned ROC AUC against the exact Mann-Whitney statistic, recipes, OnlineLearner."""

from __future__ import annotations

import math
import pickle
import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from river import base, datasets, metrics

from riverrun.errors import ConfigError
from riverrun.learners import RECIPES, ROCAUC, OnlineLearner, build_model

# -- exact AUC ---------------------------------------------------------------------------------


def exact_auc(ys, ps, pos_val=True) -> float:
    """Mann-Whitney AUC by brute force over all positive/negative pairs (ties count 1/2)."""
    ys = np.asarray([y == pos_val for y in ys], dtype=bool)
    ps = np.asarray(ps, dtype=float)
    pos, neg = ps[ys], ps[~ys]
    if len(pos) == 0 or len(neg) == 0:
        return 0.0  # River's convention, as ROCAUC.get()
    wins = (pos[:, None] > neg[None, :]).sum()
    ties = (pos[:, None] == neg[None, :]).sum()
    return float((wins + 0.5 * ties) / (len(pos) * len(neg)))


def test_exact_auc_helper_sanity():
    assert exact_auc([True, False], [0.9, 0.1]) == 1.0
    assert exact_auc([True, False], [0.1, 0.9]) == 0.0
    assert exact_auc([True, False], [0.5, 0.5]) == 0.5
    assert exact_auc([True, False, True, False], [0.9, 0.1, 0.4, 0.6]) == 0.75


def feed(auc: ROCAUC, ys, ps, as_dict: bool = True) -> ROCAUC:
    for y, p in zip(ys, ps, strict=True):
        auc.update(y, {True: p, False: 1.0 - p} if as_dict else p)
    return auc


def assert_close_to_exact(auc: ROCAUC, ys, ps, tol: float = 1e-3) -> None:
    exact = exact_auc(ys, ps)
    err = abs(auc.get() - exact)
    assert err <= auc.max_error() + 1e-12, (auc.get(), exact, auc.max_error())
    assert err <= tol, (auc.get(), exact)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_rocauc_random_scores(seed):
    rng = np.random.default_rng(seed)
    n = 3000
    ys = (rng.random(n) < 0.3 + 0.1 * seed).tolist()
    # informative but noisy scores, some at exactly 0 and 1, some tied
    ps = np.clip(rng.normal(0.5 + 0.15 * np.asarray(ys), 0.25), 0.0, 1.0)
    ps[::50] = np.round(ps[::50], 1)
    ps = ps.tolist()
    auc = feed(ROCAUC(), ys, ps)
    assert_close_to_exact(auc, ys, ps)
    assert 0.5 < auc.get() < 1.0


def test_rocauc_float_and_dict_inputs_agree():
    rng = random.Random(3)
    ys = [rng.random() < 0.5 for _ in range(500)]
    ps = [rng.random() for _ in range(500)]
    a, b = feed(ROCAUC(), ys, ps, as_dict=True), feed(ROCAUC(), ys, ps, as_dict=False)
    assert a.get() == b.get()
    assert_close_to_exact(a, ys, ps)


def test_rocauc_on_phishing_lr_probabilities():
    learner = OnlineLearner("lr", "lr")
    ys, ps = [], []
    for i, (x, y) in enumerate(datasets.Phishing()):
        served = learner.predict(str(i), x)
        ys.append(y)
        ps.append(served.proba.get(True, 0.0))
        learner.learn(str(i), x, y)
    auc = feed(ROCAUC(), ys, ps)
    assert_close_to_exact(auc, ys, ps)
    # the learner's own cumulative roc_auc is that same metric on the served probabilities
    assert learner.metrics()["roc_auc"] == pytest.approx(auc.get(), abs=1e-12)
    assert abs(learner.metrics()["roc_auc"] - exact_auc(ys, ps)) <= 1e-3


def test_rocauc_one_class_and_empty():
    auc = ROCAUC()
    assert auc.get() == 0.0 and auc.max_error() == 0.0
    feed(auc, [True, True], [0.2, 0.9])
    assert auc.get() == 0.0
    feed(auc, [False], [0.5])
    assert auc.get() == 0.5  # one positive above, one below


def test_rocauc_pos_val_and_missing_key():
    auc = ROCAUC(pos_val="yes")
    ys = ["yes", "no", "yes", "no", "no"]
    ps = [0.9, 0.2, 0.3, 0.4, 0.1]
    for y, p in zip(ys, ps, strict=True):
        auc.update(y, {"yes": p, "no": 1 - p})
    assert auc.get() == pytest.approx(exact_auc(ys, ps, pos_val="yes"))
    # a dict without the positive class counts as probability 0
    auc2 = ROCAUC()
    auc2.update(True, {False: 1.0})
    auc2.update(False, {True: 0.7, False: 0.3})
    assert auc2.get() == 0.0


@given(
    data=st.lists(
        st.tuples(st.booleans(), st.floats(0.0, 1.0) | st.sampled_from([0.0, 1.0, 0.5, 0.5 + 1e-9])),
        min_size=1,
        max_size=120,
    )
)
@settings(max_examples=200)
def test_rocauc_error_within_its_own_bound(data):
    ys = [y for y, _ in data]
    ps = [p for _, p in data]
    auc = feed(ROCAUC(), ys, ps)
    assert abs(auc.get() - exact_auc(ys, ps)) <= auc.max_error() + 1e-12
    assert 0.0 <= auc.get() <= 1.0


def test_rocauc_bound_is_needed_for_near_ties():
    """Scores closer than a bin: the binned value is off, but by no more than max_error()."""
    ys = [True, False] * 50
    ps = [0.5 + 1e-4 if y else 0.5 for y in ys]  # every positive ranks above every negative
    auc = feed(ROCAUC(), ys, ps)
    assert exact_auc(ys, ps) == 1.0
    assert auc.get() == 0.5
    assert auc.max_error() == 0.5  # the bound is tight here
    # with a finer grid the same scores separate
    fine = feed(ROCAUC(n_bins=2**20), ys, ps)
    assert fine.get() == 1.0 and fine.max_error() == 0.0


@pytest.mark.parametrize("window", [1, 7, 50])
def test_rolling_rocauc_equals_exact_over_last_window(window):
    rng = random.Random(window)
    auc = ROCAUC(window_size=window)
    ys, ps = [], []
    for _ in range(400):
        y = rng.random() < 0.4
        p = round(min(max(rng.gauss(0.5 + 0.2 * y, 0.2), 0.0), 1.0), 2)  # many exact ties
        ys.append(y)
        ps.append(p)
        auc.update(y, {True: p, False: 1 - p})
        exact = exact_auc(ys[-window:], ps[-window:])
        assert abs(auc.get() - exact) <= auc.max_error() + 1e-12
        assert abs(auc.get() - exact) <= 1e-3
    # after the stream, the window holds exactly window_size items
    assert sum(auc._pos) + sum(auc._neg) == window


# -- recipes -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("recipe", "cls"),
    [
        ("lr", "Pipeline"),
        ("lr_onehot", "Pipeline"),
        ("hat", "HoeffdingAdaptiveTreeClassifier"),
        ("arf", "ARFClassifier"),
    ],
)
def test_builtin_recipes(recipe, cls):
    model = build_model(recipe)
    assert type(model).__name__ == cls
    assert isinstance(model, base.Classifier) or recipe.startswith("lr")
    assert build_model(recipe) is not model  # a fresh model every time
    assert set(RECIPES) == {"lr", "lr_onehot", "hat", "arf"}


def test_lr_onehot_learns_mixed_features_and_its_checkpoints_load_under_the_allowlist():
    """String features: lr dead-letters the event with a hint, lr_onehot learns; its pickle
    passes the registry's allowlisting unpickler (builtins int/float/str in SelectType)."""
    from datetime import UTC, datetime, timedelta

    from riverrun.registry.unpickler import restricted_loads
    from riverrun.schemas import Event, Label
    from riverrun.streams.core.items import FeaturedEvent, SourcedLabel
    from riverrun.streams.core.modelstep import ModelStep, StepConfig

    rng = random.Random(4)
    t0 = datetime(2024, 1, 1, tzinfo=UTC)
    steps = {r: ModelStep(StepConfig(model="m", recipe=r)) for r in ("lr", "lr_onehot")}
    letters = {r: [] for r in steps}
    for i in range(400):
        c = rng.choice(["DE", "FR"])
        x = {"a": rng.gauss(0, 1), "c": c, "flag": i % 2 == 0}
        ts = t0 + timedelta(seconds=i)
        for r, step in steps.items():
            letters[r] += step.on_item(
                2 * i, FeaturedEvent(Event(event_id=f"e{i}", entity="u", ts=ts, features=x), x, 0, i)
            )
            letters[r] += step.on_item(
                2 * i + 1,
                SourcedLabel(
                    Label(event_id=f"e{i}", label=x["a"] + (1.5 if c == "DE" else -1.5) > 0, ts=ts), 0, i
                ),
            )
    lr_errors = [d for d in letters["lr"] if getattr(d, "reason", None) == "model_error"]
    assert lr_errors and "use recipe lr_onehot" in lr_errors[0].error
    onehot = steps["lr_onehot"]
    assert onehot.n_model_errors == 0 and onehot.learner.n_learned == 400
    assert onehot.learner.metrics()["accuracy"] > 0.8  # the string feature carries the concept
    model = onehot.learner.model
    loaded = restricted_loads(pickle.dumps(model))
    x = {"a": 0.3, "c": "FR", "flag": True}
    assert loaded.predict_proba_one(x) == model.predict_proba_one(x)


def test_lr_recipe_is_scaler_then_logistic_regression():
    model = build_model("lr")
    assert [type(s).__name__ for s in model.steps.values()] == ["StandardScaler", "LogisticRegression"]


def test_module_callable_recipe():
    model = build_model("river.tree:HoeffdingTreeClassifier")
    assert type(model).__name__ == "HoeffdingTreeClassifier"
    assert isinstance(build_model("river.linear_model:LinearRegression"), base.Regressor)


@pytest.mark.parametrize(
    ("recipe", "fragments"),
    [
        ("nope", ["unknown model recipe 'nope'", "arf, hat, lr", "module:callable"]),
        ("", ["unknown model recipe ''", "arf, hat, lr"]),
        ("LR", ["unknown model recipe 'LR'"]),
        ("no_such_module_xyz:f", ["cannot load model recipe", "no_such_module_xyz"]),
        ("river.linear_model:Nope", ["cannot load model recipe", "Nope"]),
        ("builtins:dict", ["'builtins:dict'", "returned dict", "not a River estimator"]),
        ("river.metrics:Accuracy", ["returned Accuracy", "not a River estimator"]),
    ],
)
def test_bad_recipes_raise_config_error(recipe, fragments):
    with pytest.raises(ConfigError) as info:
        build_model(recipe)
    for fragment in fragments:
        assert fragment in str(info.value)


@pytest.mark.parametrize("recipe", [":x", "math:sqrt", "math:pi"])
def test_broken_module_recipes_raise_config_error(recipe):
    with pytest.raises(ConfigError, match="recipe"):
        build_model(recipe)


# -- OnlineLearner -----------------------------------------------------------------------------

PHISHING = list(datasets.Phishing())


def test_predict_remembers_served_prediction():
    learner = OnlineLearner("m", "lr")
    x, _ = PHISHING[0]
    served = learner.predict("a", x)
    assert served.proba == {False: 0.5, True: 0.5}
    assert served.y_pred in (True, False)
    assert learner.n_pending == 1 and learner.n_predicted == 1
    assert learner._served["a"] is served


def test_learn_scores_the_served_prediction_not_a_reprediction():
    learner = OnlineLearner("m", "lr", window_size=10_000)
    xa, ya = PHISHING[0]
    served = learner.predict("a", xa)  # untrained: 0.5 / 0.5
    # learn many other samples in between: the model moves
    for i, (x, y) in enumerate(PHISHING[1:200], start=1):
        learner.predict(str(i), x)
        learner.learn(str(i), x, y)
    reprediction = learner.model.predict_proba_one(xa)
    assert abs(reprediction[True] - 0.5) > 0.05  # it would make a difference
    board = learner.scoreboard
    n_before = board.n
    loss_before = learner.metrics()["log_loss"]
    acc_before = learner.metrics()["accuracy"]
    learner.learn("a", xa, ya)
    assert board.n == n_before + 1
    # the log loss added exactly -log(served proba of the truth) = log 2
    added = learner.metrics()["log_loss"] * board.n - loss_before * n_before
    assert added == pytest.approx(-math.log(served.proba[ya]), abs=1e-9)
    assert added != pytest.approx(-math.log(reprediction[ya]), abs=1e-3)
    hits = learner.metrics()["accuracy"] * board.n - acc_before * n_before
    assert hits == pytest.approx(1.0 if served.y_pred == ya else 0.0)
    assert learner.n_unserved == 0
    assert learner.n_pending == 0


def test_learner_equals_hand_fed_river_metrics():
    """Every label is scored with the proba served for it, even with labels delayed."""
    learner = OnlineLearner("m", "lr")
    log_loss, accuracy = metrics.LogLoss(), metrics.Accuracy()
    served = {}
    delay = 25
    stream = PHISHING[:400]
    for i, (x, _) in enumerate(stream):
        served[i] = learner.predict(str(i), x)
        if i >= delay:
            j = i - delay
            xj, yj = stream[j]
            log_loss.update(yj, served[j].proba)
            accuracy.update(yj, served[j].y_pred)
            learner.learn(str(j), xj, yj)
    assert learner.n_pending == delay
    assert learner.metrics()["log_loss"] == pytest.approx(log_loss.get(), abs=1e-12)
    assert learner.metrics()["accuracy"] == pytest.approx(accuracy.get(), abs=1e-12)


def test_unserved_label_is_predicted_then_learned():
    learner = OnlineLearner("m", "lr")
    for i, (x, y) in enumerate(PHISHING[:50]):
        learner.learn(str(i), x, y)
    assert learner.n_unserved == 50
    assert learner.n_learned == 50
    assert learner.n_predicted == 0  # predictions for scoring are not "served"
    assert learner.n_pending == 0
    assert learner.scoreboard.n == 50
    # equals predicting right before learning
    twin = OnlineLearner("m", "lr")
    for i, (x, y) in enumerate(PHISHING[:50]):
        twin.predict(str(i), x)
        twin.learn(str(i), x, y)
    assert learner.metrics() == twin.metrics()
    assert twin.n_unserved == 0


def test_forget_drops_the_served_prediction():
    learner = OnlineLearner("m", "lr")
    x, y = PHISHING[0]
    learner.predict("a", x)
    learner.predict("b", x)
    learner.forget("a")
    learner.forget("never-served")  # no error
    assert learner.n_pending == 1
    assert "a" not in learner._served and "b" in learner._served
    learner.learn("a", x, y)  # its label arrives after all: treated as unserved
    assert learner.n_unserved == 1


def test_label_kind_is_fixed_by_the_first_label():
    learner = OnlineLearner("m", "hat")
    x, _ = PHISHING[0]
    learner.learn("a", x, True)
    learner.predict("b", x)
    with pytest.raises(TypeError, match="bool"):
        learner.learn("b", x, "yes")
    assert learner.n_learned == 1  # model untouched
    assert learner.n_pending == 1  # the served prediction is still there


def test_pickle_round_trip_gives_identical_predictions():
    learner = OnlineLearner("m", "hat", window_size=50)
    for i, (x, _) in enumerate(PHISHING[:300]):
        learner.predict(str(i), x)
        if i >= 5:
            learner.learn(str(i - 5), PHISHING[i - 5][0], PHISHING[i - 5][1])
    clone = pickle.loads(pickle.dumps(learner))
    assert clone.n_pending == learner.n_pending == 5
    assert clone.metrics() == learner.metrics()
    for i, (x, _) in enumerate(PHISHING[300:500], start=300):
        a, b = learner.predict(str(i), x), clone.predict(str(i), x)
        assert a == b
        j = i - 5
        learner.learn(str(j), PHISHING[j][0], PHISHING[j][1])
        clone.learn(str(j), PHISHING[j][0], PHISHING[j][1])
    assert clone.metrics() == learner.metrics()
    assert (clone.n_learned, clone.n_predicted) == (learner.n_learned, learner.n_predicted)


def test_regression_model_with_mae_rmse_and_r2():
    learner = OnlineLearner("reg", "river.linear_model:LinearRegression", window_size=20)
    assert not learner.is_classifier
    rng = random.Random(0)
    for i in range(300):
        x = {"a": rng.uniform(-1, 1), "b": rng.uniform(-1, 1)}
        y = 3 * x["a"] - 2 * x["b"] + 1 + rng.gauss(0, 0.1)
        served = learner.predict(str(i), x)
        assert served.proba is None
        assert isinstance(served.y_pred, float)
        learner.learn(str(i), x, y if i % 2 else round(y))  # ints and floats are both numbers
    m = learner.metrics()
    assert set(m) == {"mae", "rmse", "r2", "mae_rolling", "rmse_rolling", "r2_rolling"}
    assert m["mae"] > 0 and m["rmse"] >= m["mae"]
    assert 0.5 < m["r2"] < 1 and m["r2_rolling"] > m["r2"]  # it explains y (half rounded), better
    assert m["mae_rolling"] < m["mae"]  # it learned: the recent errors are smaller
    assert learner.label_kind == "number"
    assert learner.n_learned == 300 and learner.n_unserved == 0


def test_regression_metrics_equal_hand_computed():
    learner = OnlineLearner("reg", "river.linear_model:LinearRegression", window_size=30)
    rng = random.Random(1)
    abs_err, sq_err = [], []
    for i in range(200):
        x = {"a": rng.uniform(-1, 1)}
        y = 2 * x["a"] + rng.gauss(0, 0.05)
        pred = learner.predict(str(i), x).y_pred
        abs_err.append(abs(y - pred))
        sq_err.append((y - pred) ** 2)
        learner.learn(str(i), x, y)
    m = learner.metrics()
    assert m["mae"] == pytest.approx(sum(abs_err) / len(abs_err), rel=1e-9)
    assert m["rmse"] == pytest.approx(math.sqrt(sum(sq_err) / len(sq_err)), rel=1e-9)
    assert m["mae_rolling"] == pytest.approx(sum(abs_err[-30:]) / 30, rel=1e-9)
    assert m["rmse_rolling"] == pytest.approx(math.sqrt(sum(sq_err[-30:]) / 30), rel=1e-9)


def test_binary_scores_equal_the_metrics_one_by_one():
    """BinaryScores (one fused update) gives exactly what River's Accuracy and LogLoss, and
    our ROCAUC and rolling metrics, give one by one; probabilities at 0 and 1 included."""
    import random

    from river import metrics

    from riverrun.learners.auc import ROCAUC
    from riverrun.learners.rolling import RollingAccuracy, RollingLogLoss
    from riverrun.learners.scoring import BinaryScores

    rng = random.Random(3)
    fused = BinaryScores(window_size=50)
    ref = {
        "accuracy": metrics.Accuracy(),
        "log_loss": metrics.LogLoss(),
        "roc_auc": ROCAUC(),
        "accuracy_rolling": RollingAccuracy(50),
        "log_loss_rolling": RollingLogLoss(50),
        "roc_auc_rolling": ROCAUC(window_size=50),
    }
    for i in range(3000):
        y = rng.random() < 0.3
        p = rng.choice([0.0, 1.0, rng.random(), rng.random(), 1e-17])
        proba = {True: p, False: 1.0 - p}
        fused.update(y, p > 0.5, proba)
        for name, metric in ref.items():
            metric.update(y, p > 0.5 if name.startswith("accuracy") else proba)
        if i % 500 == 0 or i == 2999:
            assert fused.get() == {name: float(m.get()) for name, m in ref.items()}
