"""``RiverModel``: the MLflow pyfunc wrapper over a River model (``mlflow_export`` writes it).

This module imports mlflow at the top: only ``mlflow_export`` (when asked to write a model) and
``mlflow.pyfunc.load_model`` (when reading one) import it.

``predict`` takes a DataFrame of features, one row per event (a missing value, NaN, is a feature
the event does not have: River models take sparse dicts), and returns a DataFrame of the
probabilities River's ``predict_proba_one`` gives, one column per class named as riverrun's
prediction records name them (``true``, ``false``, ``3``, ``cat``), sorted by name (a class no
row's probabilities name is left out); a regressor gives one column, ``prediction``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import mlflow.pyfunc
import pandas as pd
from river import base

from riverrun.registry.unpickler import restricted_loads


def class_column(label: Any) -> str:
    """A class as a column name, as prediction records write it: ``true``, ``false``, ``3``."""
    if label is True:
        return "true"
    if label is False:
        return "false"
    return str(label)


def rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """The DataFrame's rows as River's feature dicts, without their missing values.

    >>> rows(pd.DataFrame([{"a": 1.0, "b": float("nan")}, {"a": 2.0, "b": 3.0}]))
    [{'a': 1.0}, {'a': 2.0, 'b': 3.0}]
    """
    return [
        {k: v for k, v in row.items() if not (isinstance(v, float) and math.isnan(v))}
        for row in frame.to_dict(orient="records")
    ]


class RiverModel(mlflow.pyfunc.PythonModel):
    """A River model behind MLflow's pyfunc ``predict``; it predicts, never learns."""

    def load_context(self, context) -> None:
        # the payload the registry verified, unpickled through the same allowlist
        self.model = restricted_loads(Path(context.artifacts["river_model"]).read_bytes())

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        xs = rows(frame)
        if not isinstance(self.model, base.Classifier):
            return pd.DataFrame({"prediction": [self.model.predict_one(x) for x in xs]}, index=frame.index)
        probas = [self.model.predict_proba_one(x) for x in xs]
        classes = sorted({c for p in probas for c in p}, key=class_column)
        return pd.DataFrame(
            [[p.get(c, 0.0) for c in classes] for p in probas],
            columns=[class_column(c) for c in classes],
            index=frame.index,
        )
