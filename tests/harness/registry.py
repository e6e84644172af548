"""Fixtures and helpers of the registry, online store and gateway tests (a plugin: test modules
name it in ``pytest_plugins``).

Stores: every store-level test runs on a ``FileStore`` in a tmp directory and on a ``RedisStore``
against the real Redis at ``REDIS_URL`` (a fresh key prefix per test, deleted afterwards).
Without ``REDIS_URL`` the Redis cases fail under ``CI`` and are skipped locally.
"""

from __future__ import annotations

import itertools
import json
import os
import pickle
import shutil
import struct
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from river import datasets, forest, linear_model, preprocessing, tree

from riverrun.learners import OnlineLearner
from riverrun.registry import FileStore, ModelRegistry, RedisStore, signing, unpickler
from riverrun.registry.compat import written_by
from riverrun.registry.unpickler import RestrictedUnpickler
from tests.harness.ports import free_port

KEY = b"registry-test-key-0123456789abcdef"
OTHER_KEY = b"another-key-0123456789abcdef-9876"
N_TRAIN, N_CHECK = 300, 100


# -- Redis -------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The real Redis. Missing in CI is a failure, not a skip."""
    url = os.environ.get("REDIS_URL")
    if not url:
        if os.environ.get("CI"):
            pytest.fail("REDIS_URL is not set; CI must start Redis (bash infra/redis/start.sh)")
        pytest.skip("no Redis: run `bash infra/redis/start.sh` and export REDIS_URL=redis://127.0.0.1:6379/0")
    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        pytest.fail(f"REDIS_URL={url} does not answer PING: {exc}")
    return url


def drop_prefix(url: str, prefix: str) -> None:
    client = redis.Redis.from_url(url)
    keys = list(client.scan_iter(match=f"{prefix}:*", count=500))
    if keys:
        client.delete(*keys)


@pytest.fixture
def redis_store(redis_url: str) -> Iterator[RedisStore]:
    prefix = f"rrtest-{uuid.uuid4().hex[:12]}"
    yield RedisStore(redis_url, prefix=prefix, attempts=3, backoff=0.01)
    drop_prefix(redis_url, prefix)


@pytest.fixture(params=["file", "redis"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> FileStore | RedisStore:
    """Each store kind in turn."""
    if request.param == "file":
        return FileStore(tmp_path / "registry")
    return request.getfixturevalue("redis_store")


@pytest.fixture
def registry(store: FileStore | RedisStore) -> ModelRegistry:
    return ModelRegistry(store, KEY)


def raw_put(store: FileStore | RedisStore, model: str, version: int, kind: str, data: bytes) -> None:
    """Overwrite a stored blob (``kind="blob"``) or metadata (``"meta"``) behind the registry."""
    if isinstance(store, FileStore):
        suffix = "ckpt" if kind == "blob" else "json"
        path = store.directory / model / f"v{version:06d}.{suffix}"
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        path.write_bytes(data)
    else:
        store._redis.set(store.key(model, version, kind), data)
        if kind == "meta":
            store._redis.zadd(store.key(model, "versions"), {str(version): version})


@pytest.fixture(scope="module")
def secured_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A second redis-server with ``requirepass`` and an ACL user limited to ``riverrun:*``."""
    binary = shutil.which("redis-server")
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("redis-server is not installed; CI must provide it (infra/redis/start.sh)")
        pytest.skip("redis-server binary not found")
    port, workdir = free_port(), tmp_path_factory.mktemp("redis-acl")
    secrets = {"admin": "adm1n-Pa55-word", "app": "app-Pa55:w@rd/x"}
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(workdir), "--requirepass", secrets["admin"],
         "--user", "app", "on", f">{secrets['app']}", "~riverrun:*", "+@all", "-@dangerous"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        probe = redis.Redis(port=port, password=secrets["admin"], socket_connect_timeout=0.5)
        for _ in range(100):
            try:
                probe.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.05)
        else:
            pytest.fail(f"the password-protected redis-server on port {port} did not start")
        yield {"port": port, **secrets}
    finally:
        proc.terminate()
        proc.wait(timeout=10)


# -- models ------------------------------------------------------------------------------------


def _rows() -> list[tuple[dict, bool]]:
    return list(itertools.islice(datasets.Phishing(), N_TRAIN + N_CHECK))


MODEL_KINDS = ["lr", "hat", "arf", "learner-lr", "learner-hat", "learner-arf"]


def build(kind: str) -> object:
    """A model trained on the first ``N_TRAIN`` Phishing rows (learners: with pending predictions)."""
    rows = _rows()[:N_TRAIN]
    if kind.startswith("learner-"):
        learner = OnlineLearner("m", kind.removeprefix("learner-"))
        for i, (x, _) in enumerate(rows):
            learner.predict(str(i), x)
        for i, (x, y) in enumerate(rows[:-20]):  # 20 predictions still wait for their label
            learner.learn(str(i), x, y)
        return learner
    model = {
        "lr": lambda: preprocessing.StandardScaler() | linear_model.LogisticRegression(),
        "hat": lambda: tree.HoeffdingAdaptiveTreeClassifier(seed=42),
        "arf": lambda: forest.ARFClassifier(seed=42, n_models=3),
    }[kind]()
    for x, y in rows:
        model.predict_proba_one(x)
        model.learn_one(x, y)
    return model


@pytest.fixture(scope="session")
def trained() -> dict[str, bytes]:
    """Pickles of each trained kind (tests unpickle their own copy, so none shares state)."""
    return {kind: pickle.dumps(build(kind), protocol=pickle.HIGHEST_PROTOCOL) for kind in MODEL_KINDS}


def behaviour(model: object) -> list[Any]:
    """What the model serves on the held-out rows, learning as it goes (so RNG state counts too)."""
    out: list[Any] = []
    for i, (x, y) in enumerate(_rows()[N_TRAIN:]):
        if isinstance(model, OnlineLearner):
            out.append(model.predict(f"h{i}", x))
            model.learn(f"h{i}", x, y)
        else:
            out.append(model.predict_proba_one(x))
            model.learn_one(x, y)
    if isinstance(model, OnlineLearner):
        out.append((model.metrics(), model.n_learned, model.n_pending))
    return out


# -- attacks -----------------------------------------------------------------------------------


class Evil:
    """Unpickling this runs ``touch <canary>``."""

    def __init__(self, canary: Path) -> None:
        self.canary = canary

    def __reduce__(self) -> tuple[Callable[..., Any], tuple[str]]:
        return os.system, (f"touch {self.canary}",)


def forge(module: str, name: str, *args: str) -> bytes:
    """A protocol-4 pickle calling ``module.name(*args)`` via STACK_GLOBAL + REDUCE."""

    def text(s: str) -> bytes:
        raw = s.encode()
        return b"\x8c" + bytes([len(raw)]) + raw  # SHORT_BINUNICODE

    return b"\x80\x04" + text(module) + text(name) + b"\x93(" + b"".join(map(text, args)) + b"tR."


def envelope(payload: bytes, model: str, version: int, key: bytes = KEY, **header: Any) -> bytes:
    """A correctly signed checkpoint of ``payload`` for ``model``/``version``, written by this
    install's versions unless ``header`` says otherwise (``river_version="0.25.1"``)."""
    full = {"model": model, "version": version, "model_class": "x.Y", **written_by(), **header}
    return signing.sign(payload, full, key)


def edit_header(blob: bytes, change: Callable[[dict], None]) -> bytes:
    """``blob`` with its header JSON edited and length re-packed, MAC left as it was."""
    start = len(signing.MAGIC)
    (n,) = struct.unpack_from(">I", blob, start)
    header = json.loads(blob[start + 4 : start + 4 + n])
    change(header)
    head = signing.canonical_json(header)
    return blob[:start] + struct.pack(">I", len(head)) + head + blob[start + 4 + n :]


@pytest.fixture
def unpickle_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Records every entry into unpickling: ``restricted_loads``, the unpickler, ``pickle.load(s)``."""
    calls: list[str] = []
    real_restricted, real_loads, real_load = unpickler.restricted_loads, pickle.loads, pickle.load

    def restricted(data: bytes) -> object:
        calls.append("restricted_loads")
        return real_restricted(data)

    def unpickler_load(self: RestrictedUnpickler) -> object:
        calls.append("RestrictedUnpickler.load")
        return pickle.Unpickler.load(self)

    def loads(*args: Any, **kwargs: Any) -> object:
        calls.append("pickle.loads")
        return real_loads(*args, **kwargs)

    def load(*args: Any, **kwargs: Any) -> object:
        calls.append("pickle.load")
        return real_load(*args, **kwargs)

    monkeypatch.setattr(unpickler, "restricted_loads", restricted)
    monkeypatch.setattr(RestrictedUnpickler, "load", unpickler_load)
    monkeypatch.setattr(pickle, "loads", loads)
    monkeypatch.setattr(pickle, "load", load)
    return calls
