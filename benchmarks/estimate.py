"""How wrong is the label-free estimate? River's drifting generators x models, labels late.

    python -m benchmarks.estimate [--events 20000] [--seeds 2] [--delay 100:300] [--window 1000]
    python -m benchmarks.estimate --cost [--rounds 5]

For each stream x model x seed the model predicts every event at once and learns its label
``delay`` events later (uniform in the range, seeded), as the model step does (the served
prediction is the one scored). Two estimators watch the served probabilities
(``riverrun.learners.estimate.ConfidenceEstimate``): the default one, calibrated online on the
labels that arrived, and plain CBPE (``calibrate=False``, trusts the model's probabilities).

Printed per case: the realised accuracy, and the mean absolute error of the estimated against
the realised rolling accuracy over the same last ``window`` labelled predictions (``mae``: each
prediction estimated when it was served), for both estimators, and the largest error of the
calibrated one (sampled every 100 events: the estimate cannot see a concept switch, so its error
peaks while the window holds labels from both sides); then the mean and the worst over the panel.

Streams: a sudden concept switch at the middle (ConceptDriftStream, width 1% of the stream) for
Agrawal (functions 0 -> 2), SEA (0 -> 3), STAGGER (0 -> 2), Sine (0 -> 2), Mixed (0 -> 1); and
moving concepts for Hyperplane (mag_change 0.001) and RandomRBFDrift (change_speed 0.0001).

``--cost``: what the estimate adds to the model step (``ModelStep`` with the ``lr`` recipe,
``StepConfig(estimate=False)`` against the default), in process CPU µs per event, the fastest of
``--rounds`` interleaved rounds, on the streams of ``benchmarks/policy.py`` (SEA with 3 features;
Hyperplane with the 21 default features), with the lifecycle off and on.
"""

from __future__ import annotations

import argparse
import heapq
import math
import random
import statistics
import sys
import time
from pathlib import Path

from river.datasets import synth

from riverrun.learners.estimate import ConfidenceEstimate
from riverrun.learners.online import OnlineLearner


def _switch(make, before: int, after: int, seed: int, n: int):
    return synth.ConceptDriftStream(
        stream=make(before, seed),
        drift_stream=make(after, seed + 1),
        position=n // 2,
        width=max(n // 100, 1),
        seed=seed,
    )


STREAMS = {
    "Agrawal 0->2": lambda s, n: _switch(
        lambda f, sd: synth.Agrawal(classification_function=f, seed=sd), 0, 2, s, n
    ),
    "SEA 0->3": lambda s, n: _switch(lambda f, sd: synth.SEA(variant=f, seed=sd, noise=0.05), 0, 3, s, n),
    "STAGGER 0->2": lambda s, n: _switch(
        lambda f, sd: synth.STAGGER(classification_function=f, seed=sd), 0, 2, s, n
    ),
    "Sine 0->2": lambda s, n: _switch(
        lambda f, sd: synth.Sine(classification_function=f, seed=sd), 0, 2, s, n
    ),
    "Mixed 0->1": lambda s, n: _switch(
        lambda f, sd: synth.Mixed(classification_function=f, seed=sd), 0, 1, s, n
    ),
    "Hyperplane moving": lambda s, n: synth.Hyperplane(seed=s, n_features=10, mag_change=0.001),
    "RandomRBFDrift": lambda s, n: synth.RandomRBFDrift(
        seed_model=s, seed_sample=s + 1, n_centroids=20, n_drift_centroids=10, change_speed=0.0001
    ),
}


def run_case(
    stream,
    recipe: str,
    n: int,
    delay: tuple[int, int],
    window: int,
    seed: int,
    calibration_window: int = 1000,
) -> dict:
    """Serve every event, learn each label ``delay`` events later; both estimators watch."""
    learner = OnlineLearner("m", recipe, window_size=window)
    calibrated = ConfidenceEstimate(window, calibration_window=calibration_window)
    plain = ConfidenceEstimate(window, calibrate=False)
    rng = random.Random(seed)
    due: list[tuple[int, int, dict, bool]] = []  # (label time, event number, x, y)
    right, worst = 0, 0.0
    for i, (x, y) in enumerate(stream.take(n)):
        y = bool(y)
        while due and due[0][0] <= i:
            _, j, xj, yj = heapq.heappop(due)
            served = learner.learn(str(j), xj, yj)
            right += served.y_pred == yj
            calibrated.update_label(j, yj)
            plain.update_label(j, yj)
        served = learner.predict(str(i), x)
        if served.proba:
            calibrated.update_served(i, served.y_pred, served.proba)
            plain.update_served(i, served.y_pred, served.proba)
        heapq.heappush(due, (i + rng.randint(*delay), i, x, y))
        if i % 100 == 0 and "mae" in (now := calibrated.get()):  # the window is full
            worst = max(worst, now["abs_error"])
    return {
        "accuracy": right / max(learner.n_learned, 1),
        "mae": calibrated.get()["mae"],
        "worst": worst,
        "mae_plain": plain.get()["mae"],
    }


def step_cost(rounds: int) -> None:
    sys.path.insert(0, str(Path(__file__).parent))  # policy.served_features_stream's benchstream
    from benchmarks.policy import sea_stream, served_features_stream, step_items
    from riverrun.learners.lifecycle import PolicyConfig
    from riverrun.streams.core.modelstep import ModelStep, StepConfig

    def cpu(items, n: int, policy: PolicyConfig, estimate: bool) -> float:
        step = ModelStep(
            StepConfig(model="m", recipe="lr", policy=policy, served_at_event_time=True, estimate=estimate)
        )
        start = time.process_time()
        for seq, item in enumerate(items):
            step.on_item(seq, item)
        return (time.process_time() - start) / n * 1e6

    streams = {"SEA, 3 features": sea_stream(1, 20_000), "Hyperplane, 21 features": served_features_stream()}
    policies = {"lifecycle off": PolicyConfig(enabled=False), "lifecycle default": PolicyConfig()}
    print(f"the lr model step, CPU µs per event (fastest of {rounds} rounds), labels 200 events late:")
    for stream, rows in streams.items():
        items = step_items(rows, 200)
        for name, policy in policies.items():
            best = {False: math.inf, True: math.inf}
            for _ in range(rounds):
                for estimate in best:
                    best[estimate] = min(best[estimate], cpu(items, len(rows), policy, estimate))
            off, on = best[False], best[True]
            print(
                f"  {stream:25}{name:19} estimate off {off:6.1f}  on {on:6.1f}  "
                f"{on - off:+5.2f} µs ({on / off - 1:+.0%})",
                flush=True,
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--delay", default="100:300", help="label delay in events, uniform lo:hi")
    parser.add_argument("--window", type=int, default=1000)
    parser.add_argument("--models", default="lr,hat")
    parser.add_argument("--calibration-window", type=int, default=1000)
    parser.add_argument("--cost", action="store_true", help="the estimate's cost in the model step")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    if args.cost:
        step_cost(args.rounds)
        return
    delay = tuple(int(v) for v in args.delay.split(":"))
    print(
        f"{args.events} events, labels {delay[0]}-{delay[1]} events late, rolling window {args.window}, "
        f"seeds 1..{args.seeds}; mean over seeds"
    )
    print(
        f"{'stream':20}{'model':>6}{'accuracy':>10}{'MAE calibrated':>16}{'max error':>11}"
        f"{'MAE plain CBPE':>16}{'s':>6}"
    )
    maes, plains = [], []
    for name, make in STREAMS.items():
        for recipe in args.models.split(","):
            start = time.perf_counter()
            cases = [
                run_case(
                    make(seed, args.events),
                    recipe,
                    args.events,
                    delay,
                    args.window,
                    seed,
                    args.calibration_window,
                )
                for seed in range(1, args.seeds + 1)
            ]
            mean = {k: statistics.fmean(c[k] for c in cases) for k in cases[0]}
            maes.append(mean["mae"])
            plains.append(mean["mae_plain"])
            print(
                f"{name:20}{recipe:>6}{mean['accuracy']:>10.3f}{mean['mae']:>16.3f}{mean['worst']:>11.3f}"
                f"{mean['mae_plain']:>16.3f}"
                f"{time.perf_counter() - start:>6.0f}",
                flush=True,
            )
    print(f"{'panel mean':36}{statistics.fmean(maes):>16.3f}{'':>11}{statistics.fmean(plains):>16.3f}")
    print(f"{'panel worst':36}{max(maes):>16.3f}{'':>11}{max(plains):>16.3f}")


if __name__ == "__main__":
    main()
