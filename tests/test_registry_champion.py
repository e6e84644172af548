"""The two version numbers kept apart: the registry's ``champion`` pointer follows what the flow
serves (a rollback's registry version, or the last checkpoint taken from the serving model), and
``riverrun models list`` names registry versions and marks the champion."""

from __future__ import annotations

import pickle
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from river import linear_model

from riverrun.learners.lifecycle import Checkpoint
from riverrun.registry import open_registry
from riverrun.schemas import ModelEvent
from riverrun.streams.flow.registry_sink import _RegistryPartition
from tests.harness import ROOT
from tests.harness.kafka import REGISTRY_KEY

T = datetime(2024, 1, 1, tzinfo=UTC)


def checkpoint(n: int, serving: int, reason: str = "periodic") -> Checkpoint:
    blob = pickle.dumps(linear_model.LogisticRegression())
    return Checkpoint("lr", f"ckpt-{n}", serving, "lr", blob, 100 * n, {"accuracy": 0.9}, reason, T)


def write(tmp: Path, items: list) -> None:
    """The flow's registry sink over ``items``, until it has written them all."""
    part = _RegistryPartition(lambda: open_registry(str(tmp / "registry"), REGISTRY_KEY.encode()))
    part.write_batch(items)
    part.close()


def test_champion_points_at_the_served_registry_version(tmp_path: Path) -> None:
    rollback = ModelEvent(
        model="lr",
        action="rollback",
        reason="operator",
        from_version=1,
        to_version=2,
        checkpoint="registry v1",
        at=T,
    )
    items = [checkpoint(1, 1), checkpoint(2, 1), checkpoint(3, 1, "before operator rollback"), rollback]
    write(tmp_path, items)
    registry = open_registry(str(tmp_path / "registry"), REGISTRY_KEY.encode())
    assert [v.version for v in registry.versions("lr")] == [1, 2, 3]
    assert registry.get_pointer("lr", "champion") == 1  # rolled back to registry v1
    pointers = [r for r in registry.audit_log("lr") if r.get("action") == "pointer"]
    assert [p["version"] for p in pointers] == [1, 2, 1]  # not to v3: the displaced model
    assert "serving v2 from registry v1" in pointers[-1]["reason"]

    write(tmp_path, items)  # re-emitted after a crash: nothing new
    assert len([r for r in registry.audit_log("lr") if r.get("action") == "pointer"]) == 3

    # a lifecycle rollback to its own checkpoint: the registry version that checkpoint became
    auto = ModelEvent(
        model="lr", action="rollback", reason="drift", from_version=2, to_version=3, checkpoint="ckpt-2", at=T
    )
    write(tmp_path, [auto])
    assert registry.get_pointer("lr", "champion") == 2


def test_models_list_names_registry_versions_and_marks_the_champion(tmp_path: Path) -> None:
    write(tmp_path, [checkpoint(1, 1), checkpoint(2, 3)])
    config = tmp_path / "riverrun.toml"
    config.write_text(f'[registry]\nurl = "{tmp_path / "registry"}"\n')
    listed = subprocess.run(
        [sys.executable, "-m", "riverrun.streams.cli", "models", "list", "lr", "-c", str(config)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "RIVERRUN_REGISTRY__KEY": REGISTRY_KEY},
        timeout=60,
        check=False,
    )
    assert listed.returncode == 0, listed.stderr
    out = listed.stdout
    assert "registry versions of 'lr'" in out and "serving generation" in out
    rows = [line.split() for line in out.splitlines()[2:]]
    assert [r[0] for r in rows] == ["v1", "*v2"]
    assert "(serving v3)" in out.splitlines()[-1]
