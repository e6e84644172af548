"""Does the lifecycle policy help? Cumulative accuracy against the *true* labels.

    python benchmarks/policy.py [--delay 50]

Three systems see the same streams with delayed labels (predict, then learn ``delay`` events
later from the *published* label), all with the ``lr`` recipe:

- no policy: River's model alone;
- River's ``drift.DriftRetrainingClassifier(lr, DDM())``: retrains from scratch on drift;
- riverrun's policy (``ModelLifecycle``): checkpoints, challengers, rollback and promotion.

Streams: the lifecycle scenario (sudden drift, a stretch of flipped labels, a covariate shift;
see ``riverrun.streams.scenarios``), the same with the drift alone, and River's SEA generator
with a sudden concept change. Accuracy is measured against the true label, so a model that
learned the corrupted labels is charged for it. The time per event of each system is printed
too (detectors + policy against the plain model step).
"""

from __future__ import annotations

import argparse
import time
from collections import deque
from datetime import UTC, datetime, timedelta

from river import drift
from river.datasets import synth

from riverrun.learners import build_model
from riverrun.learners.lifecycle import ModelLifecycle, PolicyConfig
from riverrun.streams.scenarios import Scenario

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def scenario_stream(scenario: Scenario):
    return list(scenario.rows())


def sea_stream(n: int = 20_000):
    stream = synth.ConceptDriftStream(
        stream=synth.SEA(variant=0, seed=1, noise=0.05),
        drift_stream=synth.SEA(variant=3, seed=2, noise=0.05),
        position=n // 2,
        width=100,
        seed=3,
    )
    return [(x, bool(y), bool(y)) for x, y in stream.take(n)]


def run_river(rows, delay: int, model) -> tuple[float, float]:
    pending: deque = deque()
    correct = 0
    start = time.perf_counter()
    for i, (x, y_published, y_true) in enumerate(rows):
        while pending and pending[0][0] <= i - delay:
            _, xo, yo = pending.popleft()
            model.learn_one(xo, yo)
        correct += model.predict_one(x) == y_true
        pending.append((i, x, y_published))
    return correct / len(rows), (time.perf_counter() - start) / len(rows) * 1e6


def run_lifecycle(rows, delay: int, config: PolicyConfig) -> tuple[float, float, list]:
    lc = ModelLifecycle("lr", "lr", config)
    pending: deque = deque()
    correct = 0
    actions = []
    start = time.perf_counter()
    for i, (x, y_published, y_true) in enumerate(rows):
        ts = T0 + timedelta(seconds=i)
        while pending and pending[0][0] <= i - delay:
            j, xo, yo = pending.popleft()
            for e in lc.learn(str(j), xo, yo, ts):
                if getattr(e, "action", None) in ("rollback", "promotion"):
                    actions.append((i, e.action))
        served = lc.predict(str(i), x, ts)
        lc.drain()
        correct += served.y_pred == y_true
        pending.append((i, x, y_published))
    return correct / len(rows), (time.perf_counter() - start) / len(rows) * 1e6, actions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--delay", type=int, default=50, help="label delay, in events")
    args = parser.parse_args()
    streams = {
        "scenario (drift + corruption + shift)": scenario_stream(Scenario()),
        "drift only": scenario_stream(Scenario(corrupt_from=10**9, corrupt_to=10**9, shift_at=10**9)),
        "SEA sudden drift": sea_stream(),
    }
    print(f"{'stream':<40}{'no policy':>11}{'River DRC':>11}{'riverrun':>11}   riverrun actions")
    costs = {"none": [], "drc": [], "ours": []}
    for name, rows in streams.items():
        acc_none, t_none = run_river(rows, args.delay, build_model("lr"))
        drc = drift.DriftRetrainingClassifier(build_model("lr"), drift.binary.DDM())
        acc_drc, t_drc = run_river(rows, args.delay, drc)
        acc_ours, t_ours, actions = run_lifecycle(rows, args.delay, PolicyConfig())
        costs["none"].append(t_none)
        costs["drc"].append(t_drc)
        costs["ours"].append(t_ours)
        shown = ", ".join(f"{a}@{i}" for i, a in actions) or "none"
        print(f"{name:<40}{acc_none:>11.4f}{acc_drc:>11.4f}{acc_ours:>11.4f}   {shown}")
    mean = {k: sum(v) / len(v) for k, v in costs.items()}
    quiet = PolicyConfig(covariate=False, prior=False, fresh_challenger=False)
    rows = streams["drift only"]
    _, t_concept, _ = run_lifecycle(rows, args.delay, quiet)
    _, t_plain, _ = run_lifecycle(rows, args.delay, PolicyConfig(enabled=False))
    _, t_full, _ = run_lifecycle(rows, args.delay, PolicyConfig())
    print("\nµs per event (predict + learn; drift-only stream for the riverrun rows):")
    print(f"  River model alone            {mean['none']:6.1f}")
    print(f"  River DriftRetrainingClass.  {mean['drc']:6.1f}")
    print(f"  riverrun, lifecycle off      {t_plain:6.1f}  (the model step: OnlineLearner + 6 metrics)")
    print(f"  + concept drift, checkpoints {t_concept:6.1f}  ({t_concept / t_plain - 1:+.0%})")
    print(f"  + monitors and challengers   {t_full:6.1f}  ({t_full / t_plain - 1:+.0%})")


if __name__ == "__main__":
    main()
