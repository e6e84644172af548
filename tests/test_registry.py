"""Model registry: round trips with identical behaviour, metadata, pointers, audit, refusals,
and both stores (a tmp directory and the real Redis), including Redis down and Redis with ACLs."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import pickle
import stat
import threading
import time
from datetime import datetime
from pathlib import Path

import pytest
import river

from riverrun.errors import (
    CheckpointError,
    ConfigError,
    ForbiddenClass,
    RegistryUnavailable,
    RiverrunError,
    ServiceUnavailable,
    TamperedCheckpoint,
    UnknownVersion,
)
from riverrun.learners import OnlineLearner
from riverrun.registry import FileStore, ModelRegistry, RedisStore, open_registry, restricted_loads
from riverrun.registry.signing import verify
from tests.harness.ports import free_port
from tests.harness.registry import KEY, MODEL_KINDS, OTHER_KEY, Evil, behaviour, envelope, forge, raw_put

pytest_plugins = ["tests.harness.registry"]  # fixtures: store, registry, redis_url, ...

SAVE = {"recipe": "lr", "n_learned": 10, "metrics": {"accuracy": 0.5}, "event_time": (None, None)}


def save(reg: ModelRegistry, model: str, obj: object = None, **kw) -> object:
    args = {**SAVE, "parent": None, "reason": "test", **kw}
    return reg.save(model, obj if obj is not None else {"w": 1.0}, **args)


# -- round trips ----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", MODEL_KINDS)
def test_round_trip_gives_identical_behaviour(registry: ModelRegistry, trained, kind: str) -> None:
    original = pickle.loads(trained[kind])
    meta = save(registry, "m", original, recipe=kind, n_learned=300)
    restored = registry.load("m", meta.version)
    assert type(restored) is type(original)
    assert behaviour(restored) == behaviour(original)  # served predictions, then learning, equal


@pytest.mark.parametrize("kind", MODEL_KINDS)
def test_restricted_loads_reads_every_shipped_model(trained, kind: str) -> None:
    model = restricted_loads(trained[kind])
    assert behaviour(model) == behaviour(pickle.loads(trained[kind]))


def test_online_learner_keeps_pending_predictions(registry: ModelRegistry, trained) -> None:
    learner = pickle.loads(trained["learner-hat"])
    restored = registry.load("m", save(registry, "m", learner).version)
    assert isinstance(restored, OnlineLearner)
    assert (restored.n_pending, restored.n_learned) == (20, 280) == (learner.n_pending, learner.n_learned)


# -- versions, metadata ---------------------------------------------------------------------------


def test_versions_increase_with_correct_metadata(registry: ModelRegistry, store) -> None:
    start, end = "2025-01-01T00:00:00+00:00", "2025-01-02T12:00:00+00:00"
    metas = [
        save(registry, "fraud", {"v": i}, parent=(i or None), n_learned=100 * i, metrics={"acc": i / 10},
             event_time=(start, end), reason=f"r{i}", source_offsets={"events/0": 10 * i})
        for i in range(3)
    ]  # fmt: skip
    assert [m.version for m in metas] == [1, 2, 3]
    assert registry.versions("fraud") == metas
    assert registry.latest("fraud") == metas[-1]
    assert registry.latest("other") is None
    m = registry.meta("fraud", 2)
    blob = store.get_blob("fraud", 2)
    assert m.size_bytes == len(blob) and m.sha256 == hashlib.sha256(blob).hexdigest()
    assert (m.parent, m.n_learned, dict(m.metrics), m.reason) == (1, 100, {"acc": 0.1}, "r1")
    assert (m.event_time_start, m.event_time_end, dict(m.source_offsets)) == (start, end, {"events/0": 10})
    assert (m.model_class, m.recipe, m.format_version) == ("builtins.dict", "lr", 1)
    assert m.river_version == river.__version__ and m.python_version.count(".") == 2
    assert datetime.fromisoformat(m.created_at).tzinfo is not None
    header, _ = verify(blob, KEY)
    assert (header["model"], header["version"], header["parent"]) == ("fraud", 2, 1)
    assert header["source_offsets"] == {"events/0": 10}
    assert json.loads(json.dumps(m.to_dict())) == m.to_dict()


def test_version_meta_is_immutable(registry: ModelRegistry) -> None:
    meta = save(registry, "m")
    with pytest.raises(dataclasses.FrozenInstanceError):
        meta.version = 9  # type: ignore[misc]
    with pytest.raises(TypeError):
        meta.metrics["accuracy"] = 1.0  # type: ignore[index]
    exported = meta.to_dict()
    exported["metrics"]["accuracy"] = 1.0
    assert registry.meta("m", 1).metrics["accuracy"] == 0.5 == meta.metrics["accuracy"]


def test_event_times_must_be_timezone_aware(registry: ModelRegistry) -> None:
    with pytest.raises(ValueError, match="no timezone"):
        save(registry, "m", event_time=("2025-01-01T00:00:00", None))
    with pytest.raises(ValueError, match="ISO 8601"):
        save(registry, "m", event_time=(None, "yesterday"))
    assert registry.versions("m") == []


def test_unknown_versions(registry: ModelRegistry) -> None:
    save(registry, "m")
    for call in (lambda: registry.load("m", 2), lambda: registry.meta("m", 2), lambda: registry.load("x", 1)):
        with pytest.raises(UnknownVersion, match="has no version"):
            call()
    with pytest.raises(UnknownVersion):
        registry.set_pointer("m", "champion", 5)


def test_next_version_is_atomic_across_threads(store) -> None:
    got: list[int] = []

    def take() -> None:
        got.extend(store.next_version("m") for _ in range(25))

    threads = [threading.Thread(target=take) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(got) == list(range(1, 201))


def test_versions_are_write_once(store) -> None:
    store.put_blob("m", 1, b"a")
    store.put_blob("m", 1, b"a")  # a retried write is a no-op
    store.put_meta("m", 1, {"x": 1})
    store.put_meta("m", 1, {"x": 1})
    with pytest.raises(CheckpointError, match="immutable"):
        store.put_blob("m", 1, b"b")
    with pytest.raises(CheckpointError, match="immutable"):
        store.put_meta("m", 1, {"x": 2})
    assert (store.get_blob("m", 1), store.get_meta("m", 1), store.list_versions("m")) == (b"a", {"x": 1}, [1])


@pytest.mark.parametrize("name", ["../etc", "a/b", "", "a:b", ".hidden", "x" * 200, "é"])
def test_unsafe_names_are_refused(store, name: str) -> None:
    with pytest.raises(ValueError, match="not allowed"):
        store.put_blob(name, 1, b"x")
    with pytest.raises(ValueError, match="not allowed"):
        store.set_pointer("m", name, 1)


# -- pointers, audit, diff ------------------------------------------------------------------------


def test_pointers(registry: ModelRegistry) -> None:
    for _ in range(3):
        save(registry, "m")
    assert registry.get_pointer("m", "champion") is None
    registry.set_pointer("m", "champion", 2, reason="best auc")
    registry.set_pointer("m", "last_good", 2)
    registry.set_pointer("m", "champion", 3, reason="promoted")
    assert (registry.get_pointer("m", "champion"), registry.get_pointer("m", "last_good")) == (3, 2)
    pointer_records = [r for r in registry.audit_log("m") if r["action"] == "pointer"]
    assert [(r["pointer"], r["previous"], r["version"]) for r in pointer_records] == [
        ("champion", None, 2),
        ("last_good", None, 2),
        ("champion", 2, 3),
    ]


def test_audit_log_is_ordered(registry: ModelRegistry) -> None:
    save(registry, "m", reason="initial")
    for i in range(20):
        registry.audit("m", {"action": "drift", "i": i})
    save(registry, "m", reason="retrained", parent=1)
    log = registry.audit_log("m")
    assert [r["action"] for r in log] == ["save", *["drift"] * 20, "save"]
    assert [r["i"] for r in log[1:-1]] == list(range(20))
    assert (log[0]["reason"], log[-1]["parent"]) == ("initial", 1)
    assert len({r["id"] for r in log}) == 22
    times = [datetime.fromisoformat(r["at"]) for r in log]
    assert times == sorted(times) and times[0].tzinfo is not None
    assert registry.audit_log("other") == []


def test_audit_drops_a_record_duplicated_by_a_store_retry(registry: ModelRegistry) -> None:
    record = registry.audit("m", {"action": "x"})
    registry.store.append_audit("m", record)  # as if an RPUSH were retried after a lost reply
    assert registry.audit_log("m") == [record]


def test_diff(registry: ModelRegistry) -> None:
    save(registry, "m", metrics={"acc": 0.5, "auc": 0.6, "gone": 1.0, "nan": float("nan")})
    save(
        registry,
        "m",
        parent=1,
        n_learned=20,
        metrics={"acc": 0.75, "auc": 0.6, "new": 2.0, "nan": float("nan")},
    )
    d = registry.diff("m", 1, 2)
    assert (d["model"], d["v1"], d["v2"]) == ("m", 1, 2)
    assert d["metrics"] == {
        "acc": {"v1": 0.5, "v2": 0.75, "delta": 0.25},
        "gone": {"v1": 1.0, "v2": None, "delta": None},
        "new": {"v1": None, "v2": 2.0, "delta": None},
    }
    assert d["changed"]["parent"] == {"v1": None, "v2": 1}
    assert d["changed"]["n_learned"] == {"v1": 10, "v2": 20}
    assert {"version", "sha256", "created_at"} <= d["changed"].keys()
    assert "recipe" not in d["changed"] and "model_class" not in d["changed"]
    assert registry.diff("m", 2, 2)["changed"] == {} and registry.diff("m", 2, 2)["metrics"] == {}


# -- refusals ---------------------------------------------------------------------------------------


def test_blob_moved_to_another_slot_is_refused(registry: ModelRegistry, store, unpickle_calls) -> None:
    save(registry, "a", {"v": 1})
    save(registry, "a", {"v": 2})
    save(registry, "b", {"v": 1})
    unpickle_calls.clear()  # save() test-loads what it stores; count only what load() does
    raw_put(store, "a", 2, "blob", store.get_blob("a", 1))  # valid MAC, wrong version
    with pytest.raises(TamperedCheckpoint, match="swapped"):
        registry.load("a", 2)
    raw_put(store, "b", 1, "blob", store.get_blob("a", 1))  # valid MAC, wrong model
    with pytest.raises(TamperedCheckpoint, match="swapped"):
        registry.load("b", 1)
    assert unpickle_calls == []


def test_tampered_metadata_is_refused(registry: ModelRegistry, store) -> None:
    save(registry, "m")
    save(registry, "m")
    edited = store.get_meta("m", 1)
    edited["metrics"] = {"accuracy": 0.99}
    raw_put(store, "m", 1, "meta", json.dumps(edited).encode())
    with pytest.raises(TamperedCheckpoint, match="fails its MAC"):
        registry.meta("m", 1)
    raw_put(store, "m", 1, "meta", json.dumps(store.get_meta("m", 2)).encode())
    with pytest.raises(TamperedCheckpoint, match="swapped"):
        registry.meta("m", 1)
    with pytest.raises(TamperedCheckpoint):
        registry.versions("m")


def test_wrong_key_is_refused(store, unpickle_calls) -> None:
    save(ModelRegistry(store, OTHER_KEY), "m")
    unpickle_calls.clear()
    with pytest.raises(TamperedCheckpoint, match="MAC mismatch") as err:
        ModelRegistry(store, KEY).load("m", 1)
    assert KEY.decode() not in str(err.value) and OTHER_KEY.decode() not in str(err.value)
    assert unpickle_calls == []


def test_malicious_pickle_signed_with_the_right_key(registry: ModelRegistry, store, tmp_path: Path) -> None:
    live = tmp_path / "LIVE"
    pickle.loads(pickle.dumps(Evil(live)))  # the payload is real: plain pickle runs it
    assert live.exists()
    canary = tmp_path / "CANARY"
    raw_put(store, "m", 1, "blob", envelope(pickle.dumps(Evil(canary)), "m", 1))
    with pytest.raises(ForbiddenClass, match=r"class posix\.system is not allowed"):
        registry.load("m", 1)
    assert not canary.exists()


ATTACKS = [
    ("os", "system"),
    ("posix", "system"),
    ("subprocess", "Popen"),
    ("builtins", "eval"),
    ("builtins", "exec"),
    ("builtins", "getattr"),
    ("builtins", "__import__"),
    ("builtins", "open"),
    ("builtins", "bytearray"),  # memory bomb: bytearray(10**12)
    ("builtins", "bytes"),
    ("builtins", "type"),
    ("builtins", "object"),
    ("copyreg", "_reconstructor"),
    ("functools", "reduce"),
    ("collections", "namedtuple"),
    ("random", "SystemRandom"),
    ("numpy", "frombuffer"),
    ("pickle", "loads"),
    ("river.compose.pipeline", "io.open"),  # dotted names walk a River module's globals
    ("river.base.base", "sys.modules"),
    ("river.base.base", "copy.deepcopy"),
    ("river.base.base", "sys"),  # a module
    ("river.utils.rolling", "TypeVar"),  # a foreign class imported into River
    ("river.utils.math", "dot"),  # a River function, not a class
    ("river.datasets.base", "RemoteDataset"),  # denied subpackage (downloads)
    ("river.stream.cache", "Cache"),
    ("riverrun.learners.recipes", "build_model"),  # imports arbitrary "module:callable"
    ("riverrun.learners.recipes", "importlib"),
    ("riverrun.streams.cli", "main"),
    ("riverrun.registry.file_store", "FileStore"),
    ("river..x", "Y"),
]


@pytest.mark.parametrize(("module", "name"), ATTACKS)
def test_allowlist_refuses(module: str, name: str, tmp_path: Path) -> None:
    canary = tmp_path / "CANARY"
    with pytest.raises(ForbiddenClass, match="is not allowed"):
        restricted_loads(forge(module, name, f"touch {canary}"))
    assert not canary.exists()


def test_missing_allowlisted_class_is_a_checkpoint_error() -> None:
    with pytest.raises(CheckpointError, match="does not exist"):
        restricted_loads(forge("river.linear_model", "NoSuchModel"))


def test_garbage_after_a_valid_mac_is_a_checkpoint_error() -> None:
    with pytest.raises(CheckpointError, match="cannot unpickle"):
        restricted_loads(b"\x80\x05not a pickle")


@dataclasses.dataclass
class Plain:
    w: float = 1.0


def test_save_refuses_a_model_that_could_never_be_loaded(registry: ModelRegistry, tmp_path: Path) -> None:
    with pytest.raises(ForbiddenClass, match=r"'m' cannot be saved.*class tests\.test_registry\.Plain"):
        save(registry, "m", {"model": Plain()})
    with pytest.raises(ForbiddenClass, match=r"class posix\.system is not allowed"):
        save(registry, "m", {"model": Evil(tmp_path / "CANARY")})
    assert registry.versions("m") == [] and registry.audit_log("m") == []
    assert not (tmp_path / "CANARY").exists()
    assert save(registry, "m").version == 1  # no version number was consumed


@pytest.mark.parametrize("key", [b"short", b"x" * 15, "a-str-key-of-32-characters-long!", None])
def test_bad_keys_are_config_errors(key, tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        open_registry(str(tmp_path), key)
    if isinstance(key, bytes):
        assert key.decode() not in str(err.value)
    assert "key" in str(err.value)


def test_errors_share_the_project_root() -> None:
    assert issubclass(TamperedCheckpoint, CheckpointError) and issubclass(ForbiddenClass, CheckpointError)
    assert issubclass(UnknownVersion, CheckpointError) and issubclass(CheckpointError, RiverrunError)
    assert issubclass(RegistryUnavailable, ServiceUnavailable) and issubclass(
        RegistryUnavailable, RiverrunError
    )


# -- FileStore specifics ----------------------------------------------------------------------------


def test_file_store_modes_and_no_leftovers(tmp_path: Path) -> None:
    reg = open_registry(str(tmp_path / "reg"), KEY)
    assert isinstance(reg.store, FileStore)
    save(reg, "m")
    reg.set_pointer("m", "champion", 1)
    model_dir = tmp_path / "reg" / "m"
    assert stat.S_IMODE(model_dir.stat().st_mode) == 0o700
    names = sorted(os.listdir(model_dir))
    assert names == [".lock", "audit.jsonl", "counter", "pointers.json", "v000001.ckpt", "v000001.json"]
    for name in ("v000001.ckpt", "v000001.json", "audit.jsonl", "pointers.json"):
        assert stat.S_IMODE((model_dir / name).stat().st_mode) == 0o600, name


def test_file_store_failed_write_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = FileStore(tmp_path)
    store.put_blob("m", 1, b"first")

    def no_link(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "link", no_link)
    with pytest.raises(RegistryUnavailable, match="No space left"):
        store.put_blob("m", 2, b"second")
    assert sorted(os.listdir(tmp_path / "m")) == ["v000001.ckpt"]


def test_file_store_skips_a_torn_audit_line(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    store.append_audit("m", {"n": 1})
    with open(tmp_path / "m" / "audit.jsonl", "ab") as f:
        f.write(b'{"n": 2, "trunc')  # the process died mid-append
    assert store.read_audit("m") == [{"n": 1}]


def test_file_store_counter_never_goes_below_existing_versions(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    store.put_blob("m", 7, b"x")  # e.g. the counter file was lost in a restore
    assert store.next_version("m") == 8


# -- Redis specifics ----------------------------------------------------------------------------------


def test_open_registry_picks_the_store(redis_url: str, tmp_path: Path) -> None:
    reg = open_registry(redis_url, KEY, prefix="rrtest-open")
    assert isinstance(reg.store, RedisStore) and reg.store.prefix == "rrtest-open"
    assert isinstance(open_registry(str(tmp_path), KEY).store, FileStore)
    assert KEY.decode() not in repr(reg)


def test_redis_keys_follow_the_documented_layout(redis_store: RedisStore) -> None:
    reg = ModelRegistry(redis_store, KEY)
    save(reg, "fraud")
    reg.set_pointer("fraud", "champion", 1)
    keys = {k.decode() for k in redis_store._redis.scan_iter(match=f"{redis_store.prefix}:*")}
    base = f"{redis_store.prefix}:model:fraud"
    assert keys == {f"{base}:{s}" for s in ("v:1:blob", "v:1:meta", "versions", "next", "audit", "pointers")}


def test_redis_down_fails_fast_without_the_password() -> None:
    port = free_port()
    url = f"redis://app:hunter2-secret@127.0.0.1:{port}/0"
    store = RedisStore(url, attempts=3, backoff=0.01)
    started = time.monotonic()
    with pytest.raises(RegistryUnavailable) as err:
        ModelRegistry(store, KEY).save("m", {"w": 1}, parent=None, reason="x", **SAVE)
    assert time.monotonic() - started < 2.0
    message = str(err.value)
    assert f"redis://app:***@127.0.0.1:{port}/0" in message and "after 3 attempts" in message
    assert "hunter2" not in message and "hunter2" not in repr(store) and "hunter2" not in repr(err.value)


def test_redis_retries_connection_errors(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import redis as redis_lib

    store = RedisStore(redis_url, prefix="rrtest-retry", attempts=3, backoff=0.0)
    real, failures = store._redis.incr, [redis_lib.ConnectionError("reset"), redis_lib.TimeoutError("slow")]

    def flaky(*args, **kwargs):
        if failures:
            raise failures.pop(0)
        return real(*args, **kwargs)

    monkeypatch.setattr(store._redis, "incr", flaky)
    try:
        assert store.next_version("m") >= 1 and failures == []
    finally:
        store._redis.delete(store.key("m", "next"))


def test_rediss_to_a_plain_port_is_unavailable(redis_url: str) -> None:
    from urllib.parse import urlsplit

    plain = urlsplit(redis_url)
    store = RedisStore(f"rediss://{plain.hostname}:{plain.port or 6379}/0", attempts=1, timeout=1.0)
    with pytest.raises(RegistryUnavailable, match=r"rediss://"):
        store.ping()


def test_password_and_acl_user(secured_redis, tmp_path: Path) -> None:
    port, admin, app = secured_redis["port"], secured_redis["admin"], secured_redis["app"]
    quoted_app = app.replace(":", "%3A").replace("@", "%40").replace("/", "%2F")
    for url in (f"redis://:{admin}@127.0.0.1:{port}/0", f"redis://app:{quoted_app}@127.0.0.1:{port}/0"):
        reg = open_registry(url, KEY, attempts=1)
        meta = save(reg, "m", {"w": 2.0})
        assert reg.load("m", meta.version) == {"w": 2.0}
        reg.set_pointer("m", "champion", meta.version)
        assert admin not in repr(reg) and app not in repr(reg) and quoted_app not in repr(reg)
    secrets = (admin, app, quoted_app, "wr0ng-Pa55")
    failures = {
        "wrong password": (f"redis://app:wr0ng-Pa55@127.0.0.1:{port}/0", RegistryUnavailable, "credentials"),
        "no password": (f"redis://127.0.0.1:{port}/0", RegistryUnavailable, "credentials"),
        "other prefix": (f"redis://app:{quoted_app}@127.0.0.1:{port}/0", ConfigError, "ACL"),
    }
    for case, (url, error, phrase) in failures.items():
        store = RedisStore(url, prefix="elsewhere" if case == "other prefix" else "riverrun", attempts=2)
        with pytest.raises(error, match=phrase) as err:
            store.put_blob("m", 1, b"x")
        assert not any(s in str(err.value) for s in secrets), case
        assert not any(s in repr(store) for s in secrets), case


def test_crash_between_blob_and_metadata(registry: ModelRegistry, monkeypatch: pytest.MonkeyPatch) -> None:
    """Step 4 dies after the blob: the version is never listed and the next save goes on."""

    def crash(*args, **kwargs):
        raise RegistryUnavailable("simulated crash")

    with monkeypatch.context() as patch:
        patch.setattr(registry.store, "put_meta", crash)
        with pytest.raises(RegistryUnavailable):
            save(registry, "m", {"w": 1.0})
    assert registry.versions("m") == [] and registry.latest("m") is None
    meta = save(registry, "m", {"w": 2.0})
    assert meta.version == 2 and [m.version for m in registry.versions("m")] == [2]
    assert registry.load("m", 2) == {"w": 2.0}


def test_metrics_are_stored_as_floats(registry: ModelRegistry) -> None:
    import numpy as np

    meta = save(registry, "m", metrics={"acc": np.float64(0.25), "n": 3})
    assert dict(registry.meta("m", meta.version).metrics) == {"acc": 0.25, "n": 3.0}
    with pytest.raises(ValueError, match="n_learned"):
        save(registry, "m", n_learned=-1)
