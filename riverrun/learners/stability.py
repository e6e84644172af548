"""Is a recipe's model reproducible, and does it survive a pickle? Probed once per recipe.

Replay reproduces River's ``progressive_val_score`` and live reproduces replay only if two
models built from the same recipe predict the same on the same stream (*deterministic*). The
model step snapshots its state at every epoch (pickle) and serves a rebuilt copy
(``learners.rebuild``); a restart resumes from the pickle. Both are exact only if such a copy
goes on exactly as the original would (*pickle-stable*).

``probe(recipe)`` checks both on a short seeded synthetic stream of the model's kind (binary
labels, three string classes for a multiclass classifier, or numbers): two fresh builds run the
whole stream and 200 queries without labels, and the states of their random generators are
compared (an unseeded one differs at once, however rarely it changes a prediction); at three
points a pickle round trip and a ``rebuilt`` copy of one of them run the next 50 events next to
it. The verdict is cached per recipe, so a flow pays for it once at start (``lr``: 0.03 s;
``hat``: 0.2 s; ``arf`` and KNN models: 1.5-2 s on an idle core).

What the flow does with it: a pickle-unstable model keeps serving the original object (its
snapshot is still a pickled copy), so replay and live stay equal to River; a restart from a
snapshot cannot equal the uninterrupted run (``exact_recovery`` false). A non-deterministic model
(e.g. River's KNN models with their default, unseeded ``SWINN`` engine) cannot be reproduced by
any replay: seed it.

>>> v = probe("lr")
>>> v.deterministic, v.pickle_stable, v.exact_replay, v.exact_recovery
(True, True, True, True)
"""

from __future__ import annotations

import math
import pickle
import random
from collections import deque
from dataclasses import asdict, dataclass
from typing import Any

from river import base

from riverrun.learners.rebuild import rebuilt
from riverrun.learners.recipes import build_model

#: Events in the probe's stream. Above River's SWINN ``warm_up`` (500), below which a KNN
#: model searches exhaustively and cannot show what its approximate search does.
PROBE_EVENTS = 640
#: Where the copies are taken, and how many events each copy runs next to the original.
FORK_AT = (280, 520, 580)
FORK_LENGTH = 50
#: Predictions without learning after the stream, compared between the two builds: an unseeded
#: KNN model's approximate search starts at a random node, so ~5% of them differ (a miss of
#: all 200 and of the stream's ~5 in 140: ~1e-7).
QUERIES = 200
#: Predictions closer than this are equal (the oracle tests ask for 1e-9).
TOLERANCE = 1e-12
_CLASSES = ("ant", "bee", "cat")


@dataclass(frozen=True)
class Stability:
    """A recipe's probe verdict. ``None``: not probed (the model failed on the probe's stream,
    or is no classifier or regressor; ``reason`` says which)."""

    recipe: str
    deterministic: bool | None
    pickle_stable: bool | None
    reason: str = ""

    @property
    def exact_replay(self) -> bool | None:
        """Replay = live = River's progressive_val_score (the flow serves the original object
        of a pickle-unstable model, so only determinism matters)."""
        return self.deterministic

    @property
    def exact_recovery(self) -> bool | None:
        """A restart from a snapshot predicts as the uninterrupted run would."""
        return self.pickle_stable

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "exact_replay": self.exact_replay, "exact_recovery": self.exact_recovery}


def probe_stream(kind: str, n: int = PROBE_EVENTS, seed: int = 20) -> list[tuple[dict, Any]]:
    """A seeded stream of ``n`` (x, y): twenty uniform features, four of which decide ``y``;
    ``kind`` is ``binary``, ``multiclass`` or ``regression``. Twenty dimensions, because an
    approximate nearest-neighbour search errs more often there: two unseeded KNN models
    disagree on ~7% of the events after their warm-up (on 5 Gaussian features, under 1%)."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        x = {f"x{j:02d}": rng.random() for j in range(20)}
        score = 3.0 * (x["x00"] - x["x01"]) + 2.0 * (x["x02"] * x["x03"] - 0.25) + rng.gauss(0.0, 0.3)
        if kind == "binary":
            y: Any = score > 0
        elif kind == "multiclass":
            y = _CLASSES[0 if score < -0.5 else 1 if score < 0.5 else 2]
        else:
            y = 10.0 + 3.0 * score
        out.append((x, y))
    return out


def model_kind(model: base.Estimator) -> str | None:
    if isinstance(model, base.Classifier):
        return "multiclass" if model._multiclass else "binary"
    if isinstance(model, base.Regressor):
        return "regression"
    return None


def _predict(model: base.Estimator, x: dict, classifier: bool) -> Any:
    return model.predict_proba_one(x) if classifier else model.predict_one(x)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, tuple):
        return all(_same(u, v) for u, v in zip(a, b, strict=True))
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, float) and isinstance(b, float):
        return a == b or abs(a - b) <= TOLERANCE or (math.isnan(a) and math.isnan(b))
    return a == b


def _run(model: base.Estimator, data: list, classifier: bool, forks: bool) -> tuple[list, list[str]]:
    """Predict then learn over ``data``; with ``forks``, also the copies' disagreements."""
    preds: list = []
    differ: list[str] = []
    for i, (x, y) in enumerate(data):
        if forks and i in FORK_AT:
            blob = pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)
            copies = {"pickle round trip": pickle.loads(blob), "rebuilt copy": rebuilt(model)}
            ahead = data[i : i + FORK_LENGTH]
            runs = {name: _run(c, ahead, classifier, False)[0] for name, c in copies.items()}
        preds.append(_predict(model, x, classifier))
        model.learn_one(x, y)
        if forks and i + 1 in {f + FORK_LENGTH for f in FORK_AT}:
            mine = preds[-FORK_LENGTH:]
            for name, theirs in runs.items():
                bad = sum(not _same(a, b) for a, b in zip(mine, theirs, strict=True))
                if bad:
                    differ.append(f"{name} at event {i + 1 - FORK_LENGTH}: {bad} of {FORK_LENGTH} differ")
    return preds, differ


def random_states(obj: Any) -> list:
    """The states of the random generators inside ``obj`` (``random.Random``, numpy's
    ``RandomState`` and ``Generator``), in attribute order. Two fresh builds of a seeded recipe
    hold equal ones; an unseeded generator (``random.Random(None)``) differs at once, however
    rarely its draws change a prediction."""
    found: list = []
    seen: set[int] = set()
    stack = [obj]
    while stack:
        o = stack.pop()
        if isinstance(o, str | bytes | int | float | bool | type(None) | type) or id(o) in seen:
            continue
        seen.add(id(o))
        if isinstance(o, random.Random):
            found.append(repr(o.getstate()))
            continue
        if type(o).__module__.startswith("numpy"):
            if hasattr(o, "get_state") and callable(o.get_state):  # np.random.RandomState
                state = o.get_state()
                found.append(repr((state[0], bytes(state[1]), *state[2:])))
            elif hasattr(o, "bit_generator"):  # np.random.Generator
                found.append(repr(o.bit_generator.state))
            continue
        if isinstance(o, dict):
            stack.extend(reversed(list(o.values())))
        elif isinstance(o, list | tuple | set | frozenset | deque):
            stack.extend(reversed(list(o)))
        else:
            attrs = getattr(o, "__dict__", None)
            if attrs is not None:
                stack.extend(reversed(list(attrs.values())))
            for k in type(o).__mro__:
                for slot in k.__dict__.get("__slots__", ()):
                    if hasattr(o, slot):
                        stack.append(getattr(o, slot))
    return found


def _probe(recipe: str) -> Stability:
    try:
        first = build_model(recipe)
    except Exception as exc:  # a bad recipe fails, typed, where the flow builds its model
        return Stability(recipe, None, None, f"not probed: {type(exc).__name__}: {exc}")
    kind = model_kind(first)
    if kind is None:
        what = type(first).__name__
        return Stability(recipe, None, None, f"not probed: {what} is no classifier or regressor")
    data = probe_stream(kind)
    classifier = kind != "regression"
    queries = [x for x, _ in probe_stream(kind, QUERIES, seed=21)]
    try:
        preds, differ = _run(first, data, classifier, forks=True)
        second = build_model(recipe)
        again, _ = _run(second, data, classifier, forks=False)
        # then questions without answers: more chances for unseeded randomness to show
        preds += [_predict(first, x, classifier) for x in queries]
        again += [_predict(second, x, classifier) for x in queries]
    except Exception as exc:  # the model's own failure shows up, typed, when it serves
        return Stability(recipe, None, None, f"not probed: {type(exc).__name__}: {exc}")
    mismatch = [i for i, (a, b) in enumerate(zip(preds, again, strict=True)) if not _same(a, b)]
    seeded = random_states(build_model(recipe)) == random_states(build_model(recipe))
    reasons = []
    if mismatch or not seeded:
        seen = (
            f"two builds of {recipe!r} predict differently on the same stream ({len(mismatch)} of "
            f"{len(preds)} {kind} predictions, the first at {mismatch[0]})"
            if mismatch
            else f"two builds of {recipe!r} start with different random generator states (the probe's "
            f"{len(preds)} predictions agreed; other streams will not)"
        )
        reasons.append(
            seen + ": the model draws unseeded random numbers; give every random part a seed "
            "(River's KNN models: engine=neighbors.SWINN(seed=...))"
        )
    if differ:
        reasons.append(f"a copy of {recipe!r} predicts differently from the original: " + "; ".join(differ))
    return Stability(recipe, not mismatch and seeded, not differ, " ".join(reasons))


_CACHE: dict[str, Stability] = {}


def probe(recipe: str) -> Stability:
    """The cached stability verdict of ``recipe`` (probed at the first call)."""
    known = _CACHE.get(recipe)
    if known is None:
        known = _CACHE[recipe] = _probe(recipe)
    return known
