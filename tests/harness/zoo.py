"""River's model zoo as riverrun recipes (``tests.harness.zoo:NAME``), small streams of each
kind, and River's own reference for them: per-event predictions (``simulate_qa``) and the final
metrics of ``evaluate.progressive_val_score`` with ``moment`` = event time and a delay.

Each family is one model a user would plausibly serve, seeded where River lets it be. The KNN
families run a SWINN engine with a small ``warm_up`` and ``maxlen``, so that a few hundred events
exercise its search graph, the removal of old nodes and the graph repair; ``knn_*_default`` are
River's defaults (an unseeded SWINN), which no replay can reproduce.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from datetime import datetime, timedelta

from river import (
    base,
    compose,
    ensemble,
    evaluate,
    forest,
    linear_model,
    metrics,
    naive_bayes,
    neighbors,
    preprocessing,
    stream,
    tree,
)
from river.datasets import synth

from riverrun.learners import build_model
from riverrun.streams.core.items import FeaturedEvent, ModelInput, ServedPrediction, SourcedLabel
from riverrun.streams.core.modelstep import StepConfig
from riverrun.streams.core.ordering import EVENT, LABEL, Sequencer
from riverrun.streams.flow.steps import ModelLogic, restored_step


def _scaled(model: base.Estimator) -> base.Estimator:
    return preprocessing.StandardScaler() | model


def _swinn() -> neighbors.SWINN:
    return neighbors.SWINN(graph_k=8, maxlen=150, warm_up=60, seed=3)


# -- recipes (module:callable) -----------------------------------------------------------------
def logistic_regression():
    return _scaled(linear_model.LogisticRegression())


def linear_regression():
    return _scaled(linear_model.LinearRegression())


def pa_regressor():
    return _scaled(linear_model.PARegressor())


def hoeffding_tree_classifier():
    return tree.HoeffdingTreeClassifier(grace_period=50)


def hoeffding_adaptive_tree_classifier():
    return tree.HoeffdingAdaptiveTreeClassifier(grace_period=50, seed=3)


def hoeffding_tree_regressor():
    return tree.HoeffdingTreeRegressor(grace_period=50)


def hoeffding_adaptive_tree_regressor():
    return tree.HoeffdingAdaptiveTreeRegressor(grace_period=50, seed=3)


def arf_classifier():
    return forest.ARFClassifier(n_models=3, seed=3)


def arf_regressor():
    return forest.ARFRegressor(n_models=3, seed=3)


def amf_classifier():
    return forest.AMFClassifier(n_estimators=3, seed=3)


def amf_regressor():
    return forest.AMFRegressor(n_estimators=3, seed=3)


def adwin_bagging():
    return ensemble.ADWINBaggingClassifier(tree.HoeffdingTreeClassifier(grace_period=50), n_models=3, seed=3)


def sgt_classifier():
    return tree.SGTClassifier(grace_period=50)


def sgt_regressor():
    return tree.SGTRegressor(grace_period=50)


def gaussian_nb():
    return naive_bayes.GaussianNB()


def knn_classifier():
    return _scaled(neighbors.KNNClassifier(n_neighbors=4, engine=_swinn()))


def knn_regressor():
    return _scaled(neighbors.KNNRegressor(n_neighbors=4, engine=_swinn()))


def knn_classifier_default():
    return _scaled(neighbors.KNNClassifier())


def knn_regressor_default():
    return _scaled(neighbors.KNNRegressor())


class ForgetfulMean(base.Regressor):
    """A model that changes when copied (not River's): the running mean of the labels, whose
    count a pickle or a deep copy forgets, so a copy weighs the next labels as if few had come."""

    def __init__(self):
        self._n = 0
        self._mean = 0.0

    def learn_one(self, x, y):
        self._n += 1
        self._mean += (y - self._mean) / self._n

    def predict_one(self, x):
        return self._mean

    def __getstate__(self):
        return {"_n": min(self._n, 1), "_mean": self._mean}

    def __deepcopy__(self, memo):
        return pickle.loads(pickle.dumps(self))


def forgetful_mean():
    return ForgetfulMean()


# -- families ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Family:
    """One model family: its recipe, the stream kinds it serves, and the pinned probe verdict."""

    name: str
    kinds: tuple[str, ...]
    deterministic: bool = True
    pickle_stable: bool = True

    @property
    def recipe(self) -> str:
        return f"tests.harness.zoo:{self.name}"


BOTH = ("binary", "multiclass")
FAMILIES = (
    Family("logistic_regression", ("binary",)),
    Family("hoeffding_tree_classifier", BOTH),
    Family("hoeffding_adaptive_tree_classifier", BOTH),
    Family("arf_classifier", BOTH),
    Family("amf_classifier", BOTH),
    Family("adwin_bagging", BOTH),
    Family("sgt_classifier", ("binary",)),
    Family("gaussian_nb", BOTH),
    Family("knn_classifier", BOTH),
    Family("knn_classifier_default", ("multiclass",), deterministic=False),
    Family("linear_regression", ("regression",)),
    Family("pa_regressor", ("regression",)),
    Family("hoeffding_tree_regressor", ("regression",)),
    Family("hoeffding_adaptive_tree_regressor", ("regression",)),
    Family("arf_regressor", ("regression",)),
    Family("amf_regressor", ("regression",)),
    Family("sgt_regressor", ("regression",)),
    Family("knn_regressor", ("regression",)),
    Family("knn_regressor_default", ("regression",), deterministic=False),
    Family("forgetful_mean", ("regression",), pickle_stable=False),
)


def zoo_stream(kind: str, n: int = 300, seed: int = 5) -> list[tuple[dict, object]]:
    """``n`` samples of a River generator: Agrawal (binary, booleans), RandomRBF with three
    classes named ``c0``..``c2`` (multiclass), Friedman (regression); features named ``f0``..."""
    if kind == "binary":
        gen = synth.Agrawal(classification_function=2, seed=seed)
        return [({k: float(v) for k, v in x.items()}, bool(y)) for x, y in gen.take(n)]
    if kind == "multiclass":
        gen = synth.RandomRBF(seed_model=seed, seed_sample=seed, n_classes=3, n_features=6)
        return [({f"f{k}": v for k, v in x.items()}, f"c{y}") for x, y in gen.take(n)]
    gen = synth.Friedman(seed=seed)
    return [({f"f{k}": v for k, v in x.items()}, float(y)) for x, y in gen.take(n)]


def reference_metrics(kind: str) -> metrics.base.Metrics:
    if kind == "binary":
        return metrics.Accuracy() + metrics.LogLoss()
    if kind == "multiclass":
        return metrics.Accuracy() + metrics.CrossEntropy()
    return metrics.MAE() + metrics.RMSE() + metrics.R2()


METRIC_NAMES = {
    "binary": ("accuracy", "log_loss"),
    "multiclass": ("accuracy", "cross_entropy"),
    "regression": ("mae", "rmse", "r2"),
}


def river_reference(data, recipe: str, kind: str, delay: timedelta, ts: list[datetime]):
    """River's per-event predictions (class probabilities, or values) and final metrics."""
    timed = [({**x, "__ts": t}, y) for (x, y), t in zip(data, ts, strict=True)]

    def make():
        return compose.Discard("__ts") | build_model(recipe)

    metric = reference_metrics(kind)
    evaluate.progressive_val_score(timed, make(), metric, moment="__ts", delay=delay)
    model, preds = make(), {}
    for i, x, y in stream.simulate_qa(timed, moment="__ts", delay=delay):
        if y is None:
            preds[i] = model.predict_one(x) if kind == "regression" else model.predict_proba_one(x)
        else:
            model.learn_one(x, y)
    finals = dict(zip(METRIC_NAMES[kind], (m.get() for m in metric), strict=True))
    return [preds[i] for i in range(len(data))], finals


def numbered_items(events, labels) -> list:
    """The two inputs through the Sequencer: (number, item) in event-time order."""
    sequencer = Sequencer()
    numbered = []
    for i, e in enumerate(events):
        numbered += sequencer.push(EVENT, e.ts.timestamp(), 0, i, FeaturedEvent(e, dict(e.features), 0, i))
    for j, lb in enumerate(labels):
        numbered += sequencer.push(LABEL, lb.ts.timestamp(), 0, j, SourcedLabel(lb, 0, j))
    return numbered + sequencer.flush()


def step_predictions(
    numbered: list, recipe: str, snapshot_every: int = 37, start: int = 0, resume: bytes | None = None
) -> tuple[list[ServedPrediction], object, dict[int, bytes]]:
    """The model step's Bytewax shell (``ModelLogic``) over ``numbered[start:]``, snapshotting
    every ``snapshot_every`` items as epochs do (pickle, then serve a rebuilt copy), from a fresh
    step or, with ``resume``, from a snapshot as a restart does. Returns the predictions, the
    final metrics point and the snapshots by the index of the next item."""
    config = StepConfig(model="m", recipe=recipe)
    step = None if resume is None else restored_step(resume)[0]
    logic = ModelLogic({"m": config}, finite=True, step=step)
    out, snapshots = [], {}
    for k in range(start, len(numbered)):
        seq, item = numbered[k]
        out += logic.on_item(ModelInput("m", seq, item))[0]
        if (k + 1) % snapshot_every == 0:
            snapshots[k + 1] = logic.snapshot()
    out += logic.on_eof()[0]
    return [o for o in out if isinstance(o, ServedPrediction)], out[-1], snapshots


def served_value(p: ServedPrediction, kind: str):
    """What a served prediction says, in River's terms: the value, or {class: probability}."""
    if kind == "regression":
        return p.y_pred
    proba = p.proba or {}
    if kind == "binary":
        return {True: proba.get("true", 0.0), False: proba.get("false", 0.0)}
    return dict(proba)


def differences(got: list, want: list, tol: float = 1e-9) -> list[int]:
    """Indices where two prediction lists differ by more than ``tol`` (missing classes are 0)."""
    bad = []
    for i, (a, b) in enumerate(zip(got, want, strict=True)):
        if isinstance(b, dict):
            keys = set(a) | set(b)
            if any(abs(a.get(k, 0.0) - b.get(k, 0.0)) > tol for k in keys):
                bad.append(i)
        elif a is None or b is None:  # no prediction yet (AMF before its first label)
            if a is not b:
                bad.append(i)
        elif abs(a - b) > tol:
            bad.append(i)
    return bad
