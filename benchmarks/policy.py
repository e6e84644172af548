"""Does the lifecycle policy help? Cumulative accuracy against the *true* labels.

    python -m benchmarks.policy [--delay 50] [--seeds 6] [--rounds 7]

Three systems see the same streams with delayed labels (predict, then learn ``delay`` events
later from the *published* label), all with the ``lr`` recipe:

- no policy: River's model alone;
- River's ``drift.DriftRetrainingClassifier(lr, DDM())``: retrains from scratch on drift;
- riverrun's policy (``ModelLifecycle``): checkpoints, challengers, rollback and promotion.

Streams, each family over several seeds (mean shown) and the demo's seed: the lifecycle
scenario (sudden drift, a stretch of flipped labels, a covariate shift; see
``riverrun.streams.backtest.scenarios``), the same with the drift alone, and River's SEA generator with a
sudden concept change. Accuracy is measured against the true label, so a model that learned the
corrupted labels is charged for it. Then the cost: what detectors + policy add to the model step
(``ModelStep``: join, predict, learn, six metrics), on a stationary stream and on the drift
stream.
"""

from __future__ import annotations

import argparse
import math
import time
from collections import deque
from datetime import UTC, datetime, timedelta
from operator import eq, gt, lt

from river import drift
from river.datasets import synth

from riverrun.learners import build_model
from riverrun.learners.lifecycle import ModelLifecycle, PolicyConfig
from riverrun.schemas import Event, Label
from riverrun.streams.backtest.scenarios import Scenario
from riverrun.streams.core.items import FeaturedEvent, SourcedLabel
from riverrun.streams.core.modelstep import ModelStep, StepConfig

T0 = datetime(2024, 1, 1, tzinfo=UTC)
DEMO_SEED = Scenario().seed


def scenario_stream(scenario: Scenario):
    return list(scenario.rows())


def sea_stream(seed: int = 1, n: int = 20_000):
    stream = synth.ConceptDriftStream(
        stream=synth.SEA(variant=0, seed=seed, noise=0.05),
        drift_stream=synth.SEA(variant=3, seed=seed + 1, noise=0.05),
        position=n // 2,
        width=100,
        seed=seed + 2,
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
    parser.add_argument("--rounds", type=int, default=7, help="timing rounds (the fastest is shown)")
    parser.add_argument("--seeds", type=int, default=6, help="seeds per stream family")
    args = parser.parse_args()
    no_trouble = {"corrupt_from": 10**9, "corrupt_to": 10**9, "shift_at": 10**9}
    families = {
        "scenario (drift + corruption + shift)": lambda seed: scenario_stream(Scenario(seed=seed)),
        "drift only": lambda seed: scenario_stream(Scenario(seed=seed, **no_trouble)),
        "SEA sudden drift": lambda seed: sea_stream(seed=seed),
    }
    seeds = range(1, args.seeds + 1)
    print(f"cumulative accuracy against the true labels, mean of seeds {seeds[0]}..{seeds[-1]}")
    print(f"(and seed {DEMO_SEED}, the demo's, with riverrun's actions at event indices); w/t/l: the seeds")
    print("on which riverrun wins, ties or loses against River's DRC\n")
    print(f"{'stream':<40}{'no policy':>11}{'River DRC':>11}{'riverrun':>11}")
    for name, make in families.items():
        scores: dict[str, list[float]] = {"none": [], "drc": [], "ours": []}
        for seed in [DEMO_SEED, *seeds]:
            rows = make(seed)
            drc = drift.DriftRetrainingClassifier(build_model("lr"), drift.binary.DDM())
            scores["none"].append(run_river(rows, args.delay, build_model("lr"))[0])
            scores["drc"].append(run_river(rows, args.delay, drc)[0])
            acc, _, actions = run_lifecycle(rows, args.delay, PolicyConfig())
            scores["ours"].append(acc)
            if seed == DEMO_SEED:
                demo = actions
        means = [sum(v[1:]) / len(v[1:]) for v in scores.values()]
        pairs = list(zip(scores["ours"][1:], scores["drc"][1:], strict=True))
        record = "/".join(str(sum(f(a, b) for a, b in pairs)) for f in (gt, eq, lt))
        print(f"{name:<40}" + "".join(f"{m:>11.4f}" for m in means) + f"   vs DRC w/t/l {record}")
        shown = ", ".join(f"{a}@{i}" for i, a in demo) or "none"
        row = "".join(f"{v[0]:>11.4f}" for v in scores.values())
        print(f"{'  seed ' + str(DEMO_SEED):<40}{row}   {shown}")
    plain_loops(make(DEMO_SEED), args.delay)
    step_overhead(families["drift only"](DEMO_SEED), args.delay, args.rounds)


def plain_loops(rows, delay: int) -> None:
    drc = drift.DriftRetrainingClassifier(build_model("lr"), drift.binary.DDM())
    print("\nµs per event, plain loops (predict + learn), SEA:")
    print(f"  River model alone            {run_river(rows, delay, build_model('lr'))[1]:6.1f}")
    print(f"  River DriftRetrainingClass.  {run_river(rows, delay, drc)[1]:6.1f}")


def step_items(rows, delay: int) -> list:
    """The model step's input: each event, and its label ``delay`` events later."""
    items: list = []
    for i, (x, _, _) in enumerate(rows):
        ts = T0 + timedelta(seconds=i)
        if i >= delay:
            j = i - delay
            label = Label.model_construct(event_id=str(j), label=rows[j][1], ts=ts)
            items.append(SourcedLabel(label, 0, j))
        event = Event.model_construct(event_id=str(i), entity="e", ts=ts, features=x)
        items.append(FeaturedEvent(event, x, 0, i))
    return items


def time_step(items: list, n_events: int, policy: PolicyConfig) -> float:
    step = ModelStep(StepConfig(model="m", recipe="lr", policy=policy, served_at_event_time=True))
    start = time.process_time()  # CPU time: other processes on a shared machine count less
    for seq, item in enumerate(items):
        step.on_item(seq, item)
    return (time.process_time() - start) / n_events * 1e6


def served_features_stream(n: int = 20_000) -> list:
    """The stream of ``benchmarks/compare.py`` (Hyperplane, 1000 entities) as the live model step
    sees it with the default features: 21 per event (10 raw, the entity's count and gap, 9
    rolling means), where the scenario streams have 5."""
    from benchmarks.benchstream import make_stream
    from riverrun.streams.core.features import EntityFeatures

    data, events, _ = make_stream(n)
    states: dict[str, EntityFeatures] = {}
    xs = [states.setdefault(e.entity, EntityFeatures(60.0)).transform(e) for e in events]
    return [(x, y, y) for x, (_, y) in zip(xs, data, strict=True)]


def step_overhead(drift_rows, delay: int, rounds: int) -> None:
    """What detectors + policy add to the model step (``ModelStep``: join, predict, learn, six
    metrics), on a stationary stream (the steady state), on the drift stream (with a challenger
    in shadow and an evaluation), both with 5 features, and on the benchmark stream with the
    default features (21). Variants interleaved; the fastest of ``rounds``, in process CPU time
    (less sensitive than wall time to other processes on the machine)."""
    stationary = scenario_stream(Scenario(drift_at=10**9, corrupt_from=10**9, shift_at=10**9))
    quiet = PolicyConfig(covariate=False, prior=False, fresh_challenger=False, decide_at_drift=False)
    variants = {
        "lifecycle off (River alone)": PolicyConfig(enabled=False),
        "+ concept drift, checkpoints": quiet,
        "+ challengers, monitors (full)": PolicyConfig(),
    }
    print(f"\nthe model step, CPU µs per event (fastest of {rounds} rounds):")
    print(f"  {'':32}{'stationary':>18}{'drift only':>18}{'21 features':>18}")
    table = {name: [] for name in variants}
    for rows in (stationary, drift_rows, served_features_stream()):
        items = step_items(rows, delay)
        best = {name: math.inf for name in variants}
        for _ in range(rounds):
            for name, policy in variants.items():
                best[name] = min(best[name], time_step(items, len(rows), policy))
        base = best["lifecycle off (River alone)"]
        for name in variants:
            table[name].append(f"{best[name]:6.1f} ({best[name] / base - 1:+4.0%})")
    for name, cells in table.items():
        print(f"  {name:32}" + "".join(f"{c:>18}" for c in cells))


if __name__ == "__main__":
    main()
