"""A verified checkpoint as an MLflow model: ``riverrun models export MODEL VERSION --format
mlflow --out DIR``, and the final models of ``riverrun replay --mlflow``.

The directory is an MLflow ``pyfunc`` model: ``MLmodel``, the requirements, and as its code the
three lines that build the wrapper (``mlflow_pyfunc.RiverModel``; "models from code", so no
wrapper is pickled). Its ``predict`` takes a DataFrame of features, one row per event, and
returns the River model's probabilities, one column per class. The River model is stored as
``artifacts/river_model.pkl``, the payload the registry verified (MAC, allowlist, River version),
and is loaded back through riverrun's allowlisting unpickler. The MLflow model's metadata records
where it came from: model, registry version, sha256 of the signed blob, recipe, and the versions
that wrote it. Loading needs riverrun (the wrapper, the unpickler) and the River it was written
with: both are in its requirements.

mlflow is an optional extra; this module imports it only when called, so ``riverrun --help`` and
every other command never do (``require_mlflow``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import river

import riverrun
from riverrun.errors import ConfigError, RiverrunError

INSTALL = "pip install 'riverrun[mlflow]' (from a clone: pip install -e '.[mlflow]')"


def require_mlflow(what: str) -> Any:
    """The ``mlflow`` module, or a ``ConfigError`` naming ``what`` needs it and the install line."""
    try:
        import mlflow
    except ModuleNotFoundError as exc:
        raise ConfigError(f"{what} needs the mlflow extra ({exc.name} is not installed): {INSTALL}") from None
    return mlflow


def requirements() -> list[str]:
    """What loading the model needs: this riverrun and River, pandas for the DataFrames."""
    import pandas

    return [
        f"riverrun=={riverrun.__version__}",
        f"river=={river.__version__}",
        f"pandas=={pandas.__version__}",
    ]


#: The model's code, copied into the model directory by MLflow ("models from code"): loading it
#: imports the wrapper from riverrun instead of unpickling one.
_MODEL_CODE = """from mlflow.models import set_model

from riverrun.registry.mlflow_pyfunc import RiverModel

set_model(RiverModel())
"""


def save_pyfunc(model: object, path: str | Path, metadata: dict[str, Any]) -> Path:
    """Write River ``model`` as an MLflow pyfunc model in the new directory ``path``."""
    mlflow = require_mlflow("an MLflow model")
    path = Path(path)
    with tempfile.TemporaryDirectory() as tmp:
        blob = Path(tmp) / "river_model.pkl"
        blob.write_bytes(pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL))
        code = Path(tmp) / "river_model.py"  # "models from code": no pickle of the wrapper
        code.write_text(_MODEL_CODE)
        with _quiet("mlflow.pyfunc"):  # no signature: a River model takes any features
            mlflow.pyfunc.save_model(
                str(path),
                python_model=str(code),
                artifacts={"river_model": str(blob)},
                pip_requirements=requirements(),
                metadata={k: v for k, v in metadata.items() if v is not None},
            )
    return path


@contextlib.contextmanager
def mlflow_env(**values: str) -> Iterator[None]:
    """MLflow's settings read from the environment (``MLFLOW_...``), set for a moment."""
    before = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextlib.contextmanager
def _quiet(logger: str) -> Iterator[None]:
    """``logger``'s warnings and MLflow's progress bars off for a moment: MLflow warns that it
    cannot infer a signature, and a River model has none to give (it takes any dict of features,
    the set may grow); copying the one artifact draws a bar on stderr."""
    log = logging.getLogger(logger)
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        with mlflow_env(MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR="false"):
            yield
    finally:
        log.setLevel(level)


def export_mlflow(registry, model: str, version: int, out: str | Path) -> dict[str, Any]:
    """Verify ``version`` of ``model`` (``registry.load``: MAC, allowlist, River version) and
    write it to ``out`` as an MLflow model; returns the metadata recorded with it."""
    require_mlflow("riverrun models export --format mlflow")
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise RiverrunError(f"{out} exists and is not empty: give a new directory to --out")
    obj = registry.load(model, version)  # signature checked, allowlisted, River version checked
    meta = registry.meta(model, version)
    metadata = {
        "riverrun_model": model,
        "registry_version": version,
        "recipe": meta.recipe,
        "model_class": meta.model_class,
        "n_learned": meta.n_learned,
        "event_time_end": meta.event_time_end,
        "sha256": meta.sha256,  # of the signed blob in the registry
        "written_by": {
            "python_version": meta.python_version,
            "river_version": meta.river_version,
            "riverrun_version": meta.riverrun_version or None,
        },
    }
    if out.exists():
        out.rmdir()  # empty: mlflow writes a new directory
    try:
        save_pyfunc(obj, out, metadata)
    except BaseException:
        shutil.rmtree(out, ignore_errors=True)  # never half a model
        raise
    return metadata
