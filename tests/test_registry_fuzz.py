"""Fuzz the checkpoint envelope: every mutated, truncated, spliced or wrong-key blob is refused
with a ``CheckpointError`` subclass *before* anything is unpickled, and the canary never appears.

The base blobs are a real trained ``OnlineLearner`` and a correctly signed malicious pickle
(``__reduce__`` -> ``os.system("touch CANARY")``). Mutants of either must fail the MAC; the
unmutated malicious blob must fail the allowlist. "Before unpickling" is checked by recording
every call into ``restricted_loads``, ``RestrictedUnpickler.load`` and ``pickle.load(s)``.
"""

from __future__ import annotations

import pickle
import random
import struct
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from riverrun.errors import CheckpointError, ForbiddenClass, TamperedCheckpoint
from riverrun.registry import ModelRegistry, signing, unpickler, verify
from riverrun.registry.unpickler import restricted_loads
from tests.harness.registry import KEY, Evil, edit_header, envelope, raw_put

pytest_plugins = ["tests.harness.registry"]  # fixtures: store, registry, redis_url, ...

SEED = 20250101
TOTALS: Counter[str] = Counter()  # blobs tried/refused, and tried per test


@pytest.fixture(scope="module")
def canary(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = tmp_path_factory.mktemp("canary") / "CANARY"
    yield path
    assert not path.exists(), "a checkpoint executed code"
    tried, n_refused = TOTALS.pop("tried"), TOTALS.pop("refused")
    print(f"\nFUZZ: {tried} blobs tried, {n_refused} refused, canary exists: {path.exists()}")
    print("FUZZ by test:", dict(TOTALS))


@pytest.fixture(scope="module")
def bases(trained, canary: Path) -> dict[str, bytes]:
    """Valid blobs: a trained learner, a small dict, and the signed malicious pickle."""
    return {
        "learner": envelope(trained["learner-lr"], "m", 1),
        "small": envelope(pickle.dumps({"w": [1.0, 2.0]}, protocol=5), "m", 1),
        "evil": envelope(pickle.dumps(Evil(canary)), "m", 1),
    }


def _calling_test() -> str:
    frame = sys._getframe(1)
    while frame is not None and not frame.f_code.co_name.startswith("test_"):
        frame = frame.f_back
    return frame.f_code.co_name if frame else "?"


def refused(blob: bytes, calls: list[str], key: bytes = KEY) -> str:
    """Assert ``verify`` refuses ``blob`` without unpickling; return the error message."""
    TOTALS["tried"] += 1
    TOTALS[_calling_test()] += 1
    with pytest.raises(TamperedCheckpoint) as err:
        verify(blob, key)
    assert calls == [], f"unpickled before refusing: {calls}"
    TOTALS["refused"] += 1
    return str(err.value)


def test_base_blobs_are_valid(bases, canary: Path) -> None:
    for name in ("learner", "small"):
        header, payload = verify(bases[name], KEY)
        assert header["model"] == "m" and restricted_loads(payload) is not None
    header, payload = verify(bases["evil"], KEY)  # authentic, so only the allowlist stops it
    with pytest.raises(ForbiddenClass):
        restricted_loads(payload)
    assert not canary.exists()


def positions(blob: bytes, rng: random.Random) -> list[int]:
    """Every position of a small blob; of a big one the first 1 KiB, the last 64 B and 1,500 more."""
    n = len(blob)
    if n <= 4096:
        return list(range(n))
    return sorted({*range(1024), *range(n - 64, n), *rng.sample(range(n), 1500)})


@pytest.mark.parametrize("base", ["small", "evil", "learner"])
def test_single_bit_flips_are_refused(bases, base: str, unpickle_calls) -> None:
    blob, rng = bases[base], random.Random(SEED)
    for pos in positions(blob, rng):
        mutant = bytearray(blob)
        mutant[pos] ^= 1 << rng.randrange(8)
        refused(bytes(mutant), unpickle_calls)


@pytest.mark.parametrize("base", ["small", "evil", "learner"])
def test_truncations_are_refused(bases, base: str, unpickle_calls) -> None:
    blob, rng = bases[base], random.Random(SEED)
    messages = {refused(blob[:n], unpickle_calls).split(":")[0] for n in positions(blob, rng)}
    assert messages == {"checkpoint truncated", "checkpoint garbled or truncated", "checkpoint MAC mismatch"}


def _mutations(rng: random.Random, blob: bytes, other: bytes) -> list[tuple[str, Callable[[], bytes]]]:
    n = len(blob)
    head_end = len(signing.MAGIC) + 4 + struct.unpack_from(">I", blob, len(signing.MAGIC))[0]
    other_end = len(signing.MAGIC) + 4 + struct.unpack_from(">I", other, len(signing.MAGIC))[0]

    def overwrite() -> bytes:
        m = bytearray(blob)
        for _ in range(rng.randint(1, 16)):
            pos = rng.randrange(n)
            m[pos] = (m[pos] + rng.randint(1, 255)) % 256
        return bytes(m)

    def insert() -> bytes:
        pos = rng.randrange(n + 1)
        return blob[:pos] + rng.randbytes(rng.randint(1, 64)) + blob[pos:]

    def delete() -> bytes:
        pos = rng.randrange(n)
        return blob[:pos] + blob[pos + rng.randint(1, 64) :]

    return [
        ("overwrite", overwrite),
        ("insert", insert),
        ("delete", delete),
        ("append", lambda: blob + rng.randbytes(rng.randint(1, 100))),
        ("truncate", lambda: blob[: rng.randrange(n)]),
        ("random", lambda: rng.randbytes(rng.randint(0, 2 * n))),
        ("random-with-magic", lambda: signing.MAGIC + rng.randbytes(rng.randint(0, 2 * n))),
        ("header-length", lambda: blob[:6] + struct.pack(">I", rng.randrange(2**32)) + blob[10:]),
        ("payload-swap", lambda: blob[:head_end] + other[other_end:]),
        ("header-swap", lambda: other[:other_end] + blob[head_end:]),
        ("mac-swap", lambda: blob[:-32] + other[-32:]),
        ("mac-zero", lambda: blob[:-32] + bytes(32)),
        ("resign-other-key", lambda: signing.sign(blob[head_end:-32], {"model": "m"}, rng.randbytes(32))),
        ("header-edit", lambda: edit_header(blob, lambda h: h.update(model_class="os.system"))),
        ("version-edit", lambda: edit_header(blob, lambda h: h.update(version=h["version"] + 1))),
    ]


def test_seeded_random_mutants_are_refused(bases, unpickle_calls) -> None:
    rng = random.Random(SEED)
    kinds: dict[str, int] = {}
    pairs = [("learner", "small"), ("small", "evil"), ("evil", "learner"), ("evil", "small")]
    for i in range(1500):
        base, other = pairs[i % len(pairs)]
        blob = bases[base]
        kind, make = rng.choice(_mutations(rng, blob, bases[other]))
        mutant = make()
        if mutant == blob:
            continue
        refused(mutant, unpickle_calls)
        kinds[kind] = kinds.get(kind, 0) + 1
    assert len(kinds) == 15 and sum(kinds.values()) >= 1400


def test_wrong_keys_are_refused(bases, unpickle_calls) -> None:
    rng = random.Random(SEED + 1)
    for _ in range(300):
        key = rng.randbytes(rng.randint(16, 64))
        message = refused(bases[rng.choice(["learner", "small", "evil"])], unpickle_calls, key=key)
        assert "MAC mismatch" in message and key.hex() not in message
    assert "MAC mismatch" in refused(bases["small"], unpickle_calls, key=KEY + b"x")
    assert "MAC mismatch" in refused(bases["small"], unpickle_calls, key=KEY[:-1])


@settings(max_examples=600, deadline=None, derandomize=True)
@given(
    base=st.sampled_from(["small", "evil", "learner"]),
    edits=st.lists(st.tuples(st.integers(min_value=0), st.integers(1, 255)), min_size=1, max_size=8),
    cut=st.one_of(st.none(), st.integers(min_value=0)),
    tail=st.binary(max_size=40),
)
def test_hypothesis_mutants_are_refused(bases, base: str, edits, cut, tail: bytes) -> None:
    blob = bases[base]
    mutant = bytearray(blob)
    for pos, delta in edits:
        mutant[pos % len(blob)] = (mutant[pos % len(blob)] + delta) % 256
    if cut is not None:
        del mutant[cut % len(blob) :]
    mutant += tail
    if bytes(mutant) == blob:
        return
    calls: list[str] = []
    with _recording(calls):
        refused(bytes(mutant), calls)


class _recording:
    """``unpickle_calls`` for hypothesis tests (function-scoped fixtures do not reset per example)."""

    def __init__(self, calls: list[str]) -> None:
        self.calls = calls
        self.mp = pytest.MonkeyPatch()

    def __enter__(self) -> None:
        record = self.calls.append  # the fakes only record: refusals must never reach them
        self.mp.setattr(unpickler, "restricted_loads", lambda data: record("restricted_loads"))
        self.mp.setattr(unpickler.RestrictedUnpickler, "load", lambda self: record("load"))
        self.mp.setattr(pickle, "loads", lambda *a, **k: record("pickle.loads"))
        self.mp.setattr(pickle, "load", lambda *a, **k: record("pickle.load"))

    def __exit__(self, *exc: object) -> None:
        self.mp.undo()


def test_mutants_through_the_registry_on_each_store(
    registry: ModelRegistry, store, bases, unpickle_calls, canary
) -> None:
    """The same refusals end to end: mutants stored in a version slot, then ``registry.load``."""
    rng = random.Random(SEED + 2)
    for version in range(1, 201):
        base = rng.choice(["learner", "small", "evil"])
        blob = envelope(verify(bases[base], KEY)[1], "m", version)
        kind, make = rng.choice(_mutations(rng, blob, bases["small"]))
        mutant = make()
        if mutant == blob:
            continue
        raw_put(store, "m", version, "blob", mutant)
        TOTALS["tried"] += 1
        TOTALS[f"registry.load on {type(store).__name__}"] += 1
        with pytest.raises(CheckpointError) as err:
            registry.load("m", version)
        assert isinstance(err.value, TamperedCheckpoint), (kind, err.value)
        assert unpickle_calls == [], kind
        TOTALS["refused"] += 1
    raw_put(store, "m", 999, "blob", envelope(verify(bases["evil"], KEY)[1], "m", 999))
    with pytest.raises(ForbiddenClass):
        registry.load("m", 999)  # authentic and malicious: the allowlist, not the MAC, refuses it
    assert unpickle_calls == ["restricted_loads", "RestrictedUnpickler.load"]
    assert not canary.exists()
