"""Does the lifecycle ever make a model worse than leaving it alone? A panel of River streams.

    python -m benchmarks.panel [--half report|tune|all] [--seeds 4] [--n 8000] [--set key=value ...]

Each case is a stream from River's generators (sudden, gradual and moving concepts, and one
stationary control) with a model recipe (``lr``, ``hat``, ``arf`` and a GaussianNB factory,
``benchmarks.panel:gaussian_nb``). Events are one second of event time apart and each label
arrives 15-45 s after its event (seeded, so labels come out of order, as live). Three systems see
the same events and labels in one pass, through the objects the model step uses:

- ``none``: the model alone (``ModelLifecycle`` with the policy off: River's loop);
- ``default``: the lifecycle with ``PolicyConfig()`` (``--set`` overrides a field, to tune);
- ``drc``: River's ``drift.DriftRetrainingClassifier(model, DDM())``.

Cumulative accuracy and log loss of the *served* predictions, per case, mean over seeds; the
seeds are split: the policy's defaults were chosen on the odd ones (``--half tune``), the table
reports the even ones (``--half report``, the default). The goal (issue 15): on every case
``accuracy(default) >= accuracy(none) - 0.005`` and log loss no worse than ``none`` by more than
1 %. w/t/l: the seeds on which ``default`` beats, ties (within 0.001) or loses to ``drc``.
"""

from __future__ import annotations

import argparse
import heapq
import math
import random
import time
from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from river import drift, naive_bayes
from river.datasets import synth

from riverrun.learners import build_model
from riverrun.learners.lifecycle import ModelLifecycle, PolicyConfig

T0 = datetime(2024, 1, 1, tzinfo=UTC)
GNB = "benchmarks.panel:gaussian_nb"


def gaussian_nb():
    """A recipe outside riverrun's own (``module:factory``): River's Gaussian naive Bayes."""
    return naive_bayes.GaussianNB()


class _Switch:
    """``first`` until event ``at``, then ``second`` (River's ``ConceptDriftStream`` with a sudden
    ``width`` overflows its sigmoid far from the switch); ``width`` > 1 mixes them over ``width``
    events, linearly, seeded."""

    def __init__(self, first, second, at: int, width: int = 1, seed: int = 0):
        self.first, self.second, self.at, self.width, self.seed = first, second, at, width, seed

    def take(self, n: int):
        rng = random.Random(self.seed)
        a, b = iter(self.first), iter(self.second)
        for i in range(n):
            p = (
                min(max((i - self.at) / self.width + 0.5, 0.0), 1.0)
                if self.width > 1
                else float(i >= self.at)
            )
            yield next(b if rng.random() < p else a)

    def __iter__(self):
        return self.take(10**12)


def _switch(first, second, at: int, width: int, seed: int):
    return _Switch(first, second, at, width, seed)


def _streams(n: int) -> dict[str, Any]:
    """Stream makers: seed -> an iterable of ``(x, y)``."""
    third = n // 3
    return {
        "agrawal sudden": lambda s: _switch(
            synth.Agrawal(0, seed=s), synth.Agrawal(2, seed=s + 100), n // 2, 1, s
        ),
        "sea sudden": lambda s: _switch(
            synth.SEA(0, seed=s, noise=0.1), synth.SEA(3, seed=s + 100, noise=0.1), n // 2, 1, s
        ),
        "hyperplane moving": lambda s: synth.Hyperplane(
            seed=s, n_features=10, n_drift_features=5, mag_change=0.001, noise_percentage=0.05
        ),
        "stagger switches": lambda s: _switch(
            synth.STAGGER(0, seed=s, balance_classes=True),
            _switch(
                synth.STAGGER(1, seed=s + 100, balance_classes=True),
                synth.STAGGER(2, seed=s + 200, balance_classes=True),
                third,
                1,
                s + 1,
            ),
            third,
            1,
            s,
        ),
        "rbf drift": lambda s: synth.RandomRBFDrift(
            seed_model=s,
            seed_sample=s + 100,
            n_classes=3,
            n_features=8,
            n_centroids=20,
            change_speed=0.0005,
            n_drift_centroids=10,
        ),
        "led drift": lambda s: _switch(
            synth.LEDDrift(seed=s, noise_percentage=0.1, n_drift_features=3),
            synth.LEDDrift(seed=s + 100, noise_percentage=0.1, n_drift_features=7),
            n // 2,
            500,
            s,
        ),
        "sine sudden": lambda s: _switch(
            synth.Sine(0, seed=s, has_noise=False), synth.Sine(2, seed=s + 100), n // 2, 1, s
        ),
        "mixed stationary": lambda s: synth.Mixed(0, seed=s, balance_classes=True),
    }


# (stream, recipe): every recipe meets a drift it must not be made worse on
CASES: list[tuple[str, str]] = [
    ("agrawal sudden", "hat"),
    ("agrawal sudden", GNB),
    ("sea sudden", "lr"),
    ("hyperplane moving", "hat"),
    ("hyperplane moving", "lr"),
    ("stagger switches", GNB),
    ("stagger switches", "lr"),
    ("rbf drift", "arf"),
    ("led drift", GNB),
    ("sine sudden", "hat"),
    ("mixed stationary", "lr"),
]


def rows(stream, n: int, seed: int) -> list[tuple[float, float, dict, Any]]:
    """``(event time, label time, x, y)``: events 1 s apart, labels 15-45 s later."""
    rng = random.Random(seed * 7919)
    taken = [(dict(x), y) for x, y in stream.take(n)]
    binary = {y for _, y in taken} <= {0, 1}  # as booleans, as riverrun's binary models see them
    return [
        (float(i), i + rng.uniform(15.0, 45.0), x, bool(y) if binary else y) for i, (x, y) in enumerate(taken)
    ]


class Score:
    __slots__ = ("correct", "loss", "n")

    def __init__(self) -> None:
        self.n = self.correct = 0
        self.loss = 0.0

    def add(self, proba: dict | None, y_pred: Any, y: Any) -> None:
        self.n += 1
        self.correct += y_pred == y
        p = (proba or {}).get(y, 0.0)
        self.loss -= math.log(min(max(p, 1e-15), 1 - 1e-15))

    @property
    def accuracy(self) -> float:
        return self.correct / self.n

    @property
    def log_loss(self) -> float:
        return self.loss / self.n


@dataclass
class Outcome:
    accuracy: dict[str, float]
    log_loss: dict[str, float]
    actions: list[str]
    regret: float | None
    seconds: float


def run_case(data: list, recipe: str, config: PolicyConfig) -> Outcome:
    """``none``, ``default`` and ``drc`` on the same events and labels, in one pass."""
    start = time.perf_counter()
    none = ModelLifecycle("none", recipe, PolicyConfig(enabled=False))
    ours = ModelLifecycle("default", recipe, config)
    drc = drift.DriftRetrainingClassifier(build_model(recipe), drift.binary.DDM())
    scores = {"none": Score(), "default": Score(), "drc": Score()}
    labels: list = []  # (label time, index)
    actions: list[str] = []
    for i, (t, t_label, x, y) in enumerate(data):
        while labels and labels[0][0] <= t:
            _, j = heapq.heappop(labels)
            xj, yj = data[j][2], data[j][3]
            ts = T0 + timedelta(seconds=data[j][1])
            none.learn(str(j), xj, yj, ts)
            for e in ours.learn(str(j), xj, yj, ts):
                action = getattr(e, "action", None)
                if action not in (None, "checkpoint", "concept_drift", "challenger_started", "keep"):
                    actions.append(f"{action}@{i}")
            drc.learn_one(xj, yj)
        ts = T0 + timedelta(seconds=t)
        for name, lc in (("none", none), ("default", ours)):
            served = lc.predict(str(i), x, ts)
            scores[name].add(served.proba, served.y_pred, y)
        ours.drain()
        proba = drc.predict_proba_one(x)
        scores["drc"].add(proba, max(proba, key=proba.get) if proba else None, y)
        heapq.heappush(labels, (t_label, i))
    regret = getattr(ours, "regret", None)
    return Outcome(
        {k: s.accuracy for k, s in scores.items()},
        {k: s.log_loss for k, s in scores.items()},
        actions,
        regret() if callable(regret) else None,
        time.perf_counter() - start,
    )


def parse_set(items: list[str]) -> dict[str, Any]:
    types = {f.name: f.type for f in fields(PolicyConfig)}
    out: dict[str, Any] = {}
    for item in items:
        key, _, value = item.partition("=")
        if key not in types:
            raise SystemExit(f"--set {item}: PolicyConfig has no field {key!r}")
        if value in ("True", "False"):
            out[key] = value == "True"
        elif value == "None":
            out[key] = None
        else:
            out[key] = float(value) if "." in value or "e" in value else int(value)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--half", choices=("report", "tune", "all"), default="report")
    parser.add_argument("--seeds", type=int, default=4, help="seeds 1..N (odd: tune, even: report)")
    parser.add_argument("--n", type=int, default=8000, help="events per stream")
    parser.add_argument("--set", nargs="*", default=[], help="PolicyConfig overrides, key=value")
    parser.add_argument("--case", nargs="*", default=None, help="only cases whose name has these words")
    parser.add_argument("-v", "--verbose", action="store_true", help="every seed and its actions")
    args = parser.parse_args()
    config = replace(PolicyConfig(), **parse_set(args.set))
    seeds = [
        s for s in range(1, args.seeds + 1) if args.half == "all" or (s % 2 == 1) == (args.half == "tune")
    ]
    makers = _streams(args.n)
    print(f"{args.half} seeds {seeds}, {args.n} events, labels 15-45 s late; overrides: {args.set or 'none'}")
    head = (
        f"{'case':<34}{'acc none':>9}{'default':>9}{'drc':>8}{'d-none':>8}{'logloss none':>13}{'default':>9}"
    )
    print(head + f"{'drc':>8}{'ll %':>7}{'vs drc':>8}{'regret':>8}{'s':>6}")
    worst, worst_seed, gains, worst_ll, total = math.inf, math.inf, [], -math.inf, [0, 0, 0]
    start = time.perf_counter()
    for stream, recipe in CASES:
        name = f"{stream} x {recipe.split(':')[-1]}"
        if args.case and not all(w in name for w in args.case):
            continue
        outcomes = []
        for seed in seeds:
            data = rows(makers[stream](seed), args.n, seed)
            outcome = run_case(data, recipe, config)
            outcomes.append(outcome)
            if args.verbose:
                d = outcome.accuracy["default"] - outcome.accuracy["none"]
                print(f"    seed {seed}: {d:+.4f} {' '.join(outcome.actions) or '-'}")

        def mean(metric: str, policy: str, outcomes=outcomes) -> float:
            return sum(getattr(o, metric)[policy] for o in outcomes) / len(outcomes)

        acc = {p: mean("accuracy", p) for p in ("none", "default", "drc")}
        ll = {p: mean("log_loss", p) for p in ("none", "default", "drc")}
        wtl = [0, 0, 0]
        for o in outcomes:
            d = o.accuracy["default"] - o.accuracy["drc"]
            wtl[0 if d > 0.001 else 1 if d >= -0.001 else 2] += 1
        total = [a + b for a, b in zip(total, wtl, strict=True)]
        gain = acc["default"] - acc["none"]
        worst_seed = min(worst_seed, *(o.accuracy["default"] - o.accuracy["none"] for o in outcomes))
        worst, gains = min(worst, gain), [*gains, gain]
        ll_change = ll["default"] / ll["none"] - 1
        worst_ll = max(worst_ll, ll_change)
        regrets = [o.regret for o in outcomes if o.regret is not None]
        regret = f"{sum(regrets) / len(regrets):8.4f}" if regrets else f"{'-':>8}"
        seconds = sum(o.seconds for o in outcomes)
        print(
            f"{name:<34}{acc['none']:9.4f}{acc['default']:9.4f}{acc['drc']:8.4f}{gain:+8.4f}"
            f"{ll['none']:13.4f}{ll['default']:9.4f}{ll['drc']:8.4f}{ll_change:+7.1%}"
            f"{'/'.join(map(str, wtl)):>8}{regret}{seconds:6.0f}"
        )
    ok = worst >= -0.005 and worst_ll <= 0.01
    print(
        f"\nworst default - none: {worst:+.4f} (a case's mean; a single seed: {worst_seed:+.4f}); "
        f"mean gain {sum(gains) / len(gains):+.4f}; "
        f"worst log-loss change {worst_ll:+.1%}; vs DRC w/t/l {'/'.join(map(str, total))}; "
        f"goal {'met' if ok else 'NOT met'}; {time.perf_counter() - start:.0f} s"
    )


if __name__ == "__main__":
    main()
