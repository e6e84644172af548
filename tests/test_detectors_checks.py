"""One checks suite run on every detector (River's ``checks`` habit): pickle round trips continue
identically, copies are independent, clones are fresh, inputs are not mutated, memory is bounded,
pickles name only allowlisted classes, hyperparameters are public attributes."""

from __future__ import annotations

import copy
import inspect
import io
import math
import pickle
import random
from collections import deque
from collections.abc import Callable
from typing import Any

import pytest

from riverrun.detectors import (
    ChiSquare,
    ConceptDriftDetector,
    CovariateShiftMonitor,
    LabelShiftMonitor,
    PredictionDriftMonitor,
    StreamingPSI,
    WindowedKS,
)

N = 1600
CHANGE = 800


def errors(seed: int) -> list[float]:
    rng = random.Random(seed)
    return [float(rng.random() < (0.1 if t < CHANGE else 0.5)) for t in range(N)]


def numbers(seed: int) -> list[Any]:
    rng = random.Random(seed)
    out: list[Any] = [rng.gauss(0.0 if t < CHANGE else 1.0, 1.0) for t in range(N)]
    for i in rng.sample(range(N), 80):
        out[i] = rng.choice([None, math.nan])
    return out


def categories(seed: int) -> list[Any]:
    rng = random.Random(seed)
    return [
        rng.choices(["a", "b", "c", None], [5, 3, 2, 1] if t < CHANGE else [2, 3, 5, 1])[0] for t in range(N)
    ]


def labels(seed: int) -> list[bool]:
    rng = random.Random(seed)
    return [rng.random() < (0.2 if t < CHANGE else 0.45) for t in range(N)]


def feature_dicts(seed: int) -> list[dict]:
    rng = random.Random(seed)
    out = []
    for t in range(N):
        x: dict[str, Any] = {"amount": rng.gauss(0.0 if t < CHANGE else 1.0, 1.0), "kind": rng.choice("xyz")}
        if t % 7:
            x["flag"] = rng.random() < (0.3 if t < CHANGE else 0.6)
        if t % 11 == 0:
            x["amount"] = None
        out.append(x)
    return out


CASES: dict[str, tuple[Callable[[], Any], Callable[[int], list]]] = {
    "adwin": (lambda: ConceptDriftDetector("adwin"), errors),
    "hddm_a": (lambda: ConceptDriftDetector("hddm_a"), errors),
    "kswin": (lambda: ConceptDriftDetector("kswin"), errors),
    "psi": (lambda: StreamingPSI(300, 300, check_every=20), numbers),
    "ks": (lambda: WindowedKS(300, 300, check_every=20), numbers),
    "chi2": (lambda: ChiSquare(300, 300, check_every=20), categories),
    "covariate": (lambda: CovariateShiftMonitor(300, 300, check_every=20), feature_dicts),
    "labels": (lambda: LabelShiftMonitor(300, 300, check_every=20), labels),
    "numeric-labels": (lambda: LabelShiftMonitor(300, 300, check_every=20), numbers),
    "predictions": (lambda: PredictionDriftMonitor(300, 300, check_every=20, warmup=50), numbers),
}
params = pytest.mark.parametrize("case", list(CASES))


def observe(det) -> tuple:
    """Everything visible after an update, floats compared exactly."""
    sig = det.signal()
    seen: list[Any] = [det.drift_detected, det.warning_detected, sig.to_dict() if sig else None]
    if isinstance(det, ConceptDriftDetector):
        seen.append(det.stats())
    if isinstance(det, StreamingPSI):
        seen.append(det.psi)
    if isinstance(det, WindowedKS | ChiSquare):
        seen += [det.p_value, det.statistic]
    if isinstance(det, CovariateShiftMonitor):
        seen += [[s.to_dict() for s in det.signals], det.psi()]
    return tuple(seen)


def trace(det, stream) -> list[tuple]:
    out = []
    for x in stream:
        det.update(x)
        out.append(observe(det))
    return out


@params
@pytest.mark.parametrize("cut", [0, 150, 200, 630, 800, 1000])
def test_pickle_round_trip_continues_identically(case, cut):
    make, stream_of = CASES[case]
    stream = stream_of(1)
    det = make()
    trace(det, stream[:cut])
    restored = pickle.loads(pickle.dumps(det, protocol=pickle.HIGHEST_PROTOCOL))
    expected, got = trace(det, stream[cut:]), trace(restored, stream[cut:])
    assert got == expected
    if cut <= CHANGE:
        assert any(seen[0] for seen in expected)  # a drift happened after the snapshot


@params
def test_every_case_drifts_after_the_change_only(case):
    make, stream_of = CASES[case]
    fired = [t for t, seen in enumerate(trace(make(), stream_of(1))) if seen[0]]
    assert fired and all(CHANGE < t < CHANGE + 300 for t in fired), fired


@params
def test_deepcopy_is_independent(case):
    make, stream_of = CASES[case]
    stream = stream_of(2)
    det = make()
    trace(det, stream[:700])
    twin = copy.deepcopy(det)
    frozen = pickle.dumps(twin)
    expected = trace(det, stream[700:])
    assert pickle.dumps(twin) == frozen  # the original's updates did not reach the copy
    assert trace(twin, stream[700:]) == expected


@params
def test_clone_is_fresh_with_the_same_hyperparameters(case):
    make, stream_of = CASES[case]
    stream = stream_of(3)
    det = make()
    trace(det, stream[:900])
    clone = det.clone()
    assert clone._get_params() == det._get_params()
    assert trace(clone, stream) == trace(make(), stream)  # no learned state carried over


@params
def test_seeded_runs_are_identical(case):
    make, stream_of = CASES[case]
    assert trace(make(), stream_of(4)) == trace(make(), stream_of(4))


@params
def test_hyperparameters_are_public_attributes(case):
    det = CASES[case][0]()
    for name, param in inspect.signature(type(det).__init__).parameters.items():
        if name != "self" and param.kind is not param.VAR_KEYWORD:
            assert hasattr(det, name), name
    assert repr(det).startswith(type(det).__name__)


def test_update_does_not_mutate_or_keep_the_input_dict():
    mon = CovariateShiftMonitor(300, 300, check_every=20)
    for x in feature_dicts(5):
        before = copy.deepcopy(x)
        mon.update(x)
        assert x == before
        state = pickle.dumps(mon)
        x["amount"] = "changed"
        x["new"] = 1.0
        x.pop("kind")
        assert pickle.dumps(mon) == state


def _containers(obj, seen=None):
    """Every deque and list reachable from ``obj``'s attributes (River's Rust ADWIN is opaque)."""
    seen = set() if seen is None else seen
    if id(obj) in seen:
        return
    seen.add(id(obj))
    if isinstance(obj, deque | list):
        yield obj
    if isinstance(obj, dict):
        children = list(obj.values())
    elif isinstance(obj, list | tuple | deque):
        children = list(obj)
    elif hasattr(obj, "__dict__") and not isinstance(obj, type | random.Random):
        children = list(vars(obj).values())
    else:
        children = []
    for child in children:
        yield from _containers(child, seen)


def _windowed(det) -> list:
    """The detectors inside ``det`` that own a ``_window``."""
    out = []
    for obj in [det, *(getattr(det, "_features", {}) or {}).values()]:
        items = obj[1] if isinstance(obj, tuple) else [obj, getattr(obj, "_detector", None)]
        out += [d for d in items if d is not None and hasattr(d, "_window")]
    return out


@params
def test_memory_is_bounded(case):
    make, stream_of = CASES[case]
    det = make()
    long_stream = stream_of(6) * (3 if case == "kswin" else 8)  # up to 12,800 updates, 42 windows
    sizes = []
    for i, x in enumerate(long_stream):
        det.update(x)
        if i % 400 == 399:
            for container in _containers(det):
                if isinstance(container, deque):
                    assert container.maxlen is not None and len(container) <= container.maxlen
                else:
                    assert len(container) <= 300
            for windowed in _windowed(det):
                assert windowed._window.maxlen == windowed.window_size
                assert len(windowed._window) <= windowed.window_size
            sizes.append(len(pickle.dumps(det)))
    if case != "adwin":
        assert max(sizes[8:]) <= 1.1 * sizes[7]  # flat once the windows are full
    else:  # ADWIN keeps O(log width) buckets
        assert max(sizes) < 20_000
    assert _windowed(det) or isinstance(det, ConceptDriftDetector)


ALLOWED_EXACT = {
    ("collections", "deque"),
    ("random", "Random"),
    *(("builtins", n) for n in ("bool", "int", "float", "str", "tuple", "list", "dict", "set", "frozenset")),
}


class _Recorder(pickle.Unpickler):
    def __init__(self, data: bytes):
        super().__init__(io.BytesIO(data))
        self.found: set[tuple[str, str]] = set()

    def find_class(self, module, name):
        self.found.add((module, name))
        return super().find_class(module, name)


@params
def test_pickles_name_only_allowlisted_classes(case):
    """The checkpoint unpickler allows River, riverrun.detectors and a few builtins; no numpy."""
    make, stream_of = CASES[case]
    det = make()
    trace(det, stream_of(7))
    recorder = _Recorder(pickle.dumps(det, protocol=pickle.HIGHEST_PROTOCOL))
    recorder.load()
    allowed_modules = ("river.", "riverrun.detectors.")
    for module, name in recorder.found:
        assert (module, name) in ALLOWED_EXACT or module.startswith(allowed_modules), (module, name)


@params
def test_the_checkpoint_unpickler_accepts_detectors(case):
    unpickler = pytest.importorskip("riverrun.registry.unpickler")
    make, stream_of = CASES[case]
    det = make()
    stream = stream_of(8)
    trace(det, stream[:1000])
    restored = unpickler.restricted_loads(pickle.dumps(det, protocol=pickle.HIGHEST_PROTOCOL))
    assert trace(restored, stream[1000:]) == trace(det, stream[1000:])
