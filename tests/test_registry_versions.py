"""Checkpoints record the Python, River and riverrun versions that wrote them; one written by a
River whose pickles this install cannot read is refused before unpickling, with a message naming
both versions and what to do (registry/compat.py)."""

from __future__ import annotations

import platform

import pytest
import river

import riverrun
from riverrun.errors import IncompatibleCheckpoint
from riverrun.learners import build_model
from riverrun.registry import FileStore, ModelRegistry
from riverrun.registry.signing import verify
from tests.harness.registry import KEY, envelope, raw_put

pytest_plugins = ["tests.harness.registry"]  # fixtures: store, registry, ...


def _save(registry: ModelRegistry) -> int:
    meta = registry.save(
        "m", build_model("lr"), recipe="lr", parent=None, n_learned=0, metrics={}, event_time=(None, None),
        reason="first",
    )  # fmt: skip
    return meta.version


def test_a_checkpoint_records_the_versions_that_wrote_it(registry: ModelRegistry, store) -> None:
    version = _save(registry)
    header, _ = verify(store.get_blob("m", version), KEY)
    meta = registry.meta("m", version)
    written = {
        "python_version": platform.python_version(),
        "river_version": river.__version__,
        "riverrun_version": riverrun.__version__,
    }
    assert {k: header[k] for k in written} == written
    assert {k: getattr(meta, k) for k in written} == written


def test_a_checkpoint_of_another_river_minor_is_refused_with_both_versions(
    registry: ModelRegistry, store
) -> None:
    """A signed checkpoint whose header says River 0.25.1 wrote it: refused before unpickling
    (the payload is a pickle that would run code if it were unpickled)."""
    version = _save(registry)
    header, payload = verify(store.get_blob("m", version), KEY)
    forged = {k: v for k, v in header.items() if k not in ("model", "version")}
    forged["river_version"] = "0.25.1"
    raw_put(store, "m", version, "blob", envelope(payload, "m", version, **forged))
    with pytest.raises(IncompatibleCheckpoint) as caught:
        registry.load("m", version)
    message = str(caught.value)
    assert "River 0.25.1" in message and f"River {river.__version__}" in message
    assert "pip install 'river==0.25.1'" in message and "riverrun replay" in message


def test_a_patch_release_of_river_reads_the_checkpoint(registry: ModelRegistry, store) -> None:
    version = _save(registry)
    header, payload = verify(store.get_blob("m", version), KEY)
    major, minor, *_ = river.__version__.split(".")
    forged = {k: v for k, v in header.items() if k not in ("model", "version")}
    forged["river_version"] = f"{major}.{minor}.99"
    raw_put(store, "m", version, "blob", envelope(payload, "m", version, **forged))
    assert registry.load("m", version).predict_proba_one({"x": 1.0})


def test_models_export_refuses_it_in_one_line_without_a_traceback(tmp_path, monkeypatch, capsys) -> None:
    from riverrun.streams.cli import main

    store = FileStore(tmp_path / "reg")
    registry = ModelRegistry(store, KEY)
    version = _save(registry)
    header, payload = verify(store.get_blob("m", version), KEY)
    forged = {k: v for k, v in header.items() if k not in ("model", "version")}
    forged["river_version"] = "0.25.1"
    raw_put(store, "m", version, "blob", envelope(payload, "m", version, **forged))
    monkeypatch.setenv("RIVERRUN_REGISTRY__KEY", KEY.decode())
    out = tmp_path / "m.pkl"
    assert main(["models", "export", "m", str(version), str(out), "--registry", str(tmp_path / "reg")]) == 2
    err = capsys.readouterr().err
    assert "written by River 0.25.1" in err and "Traceback" not in err
    assert not out.exists()
