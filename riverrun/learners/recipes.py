"""Model recipes: a short name (or ``module:callable``) that builds a fresh River model.

>>> type(build_model("lr")).__name__
'Pipeline'
>>> build_model("river.linear_model:LogisticRegression").__class__.__name__
'LogisticRegression'
>>> build_model("nope")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
riverrun.errors.ConfigError: unknown model recipe 'nope': use one of arf, hat, lr, lr_onehot, or ...
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from river import base, compose, forest, linear_model, preprocessing, tree

from riverrun.errors import ConfigError


def _lr() -> base.Estimator:
    return preprocessing.StandardScaler() | linear_model.LogisticRegression()


def _lr_onehot() -> base.Estimator:
    """``lr`` for mixed features: numbers (and booleans) scaled, strings one-hot encoded."""
    numbers = compose.SelectType(int, float) | preprocessing.StandardScaler()
    strings = compose.SelectType(str) | preprocessing.OneHotEncoder()
    return (numbers + strings) | linear_model.LogisticRegression()


def _hat() -> base.Estimator:
    return tree.HoeffdingAdaptiveTreeClassifier(seed=42)


def _arf() -> base.Estimator:
    return forest.ARFClassifier(seed=42)


RECIPES: dict[str, Callable[[], base.Estimator]] = {
    "lr": _lr,
    "lr_onehot": _lr_onehot,
    "hat": _hat,
    "arf": _arf,
}


def build_model(recipe: str) -> base.Estimator:
    """A fresh, untrained model for ``recipe``."""
    if recipe in RECIPES:
        return RECIPES[recipe]()
    if ":" not in recipe:
        known = ", ".join(sorted(RECIPES))
        raise ConfigError(
            f"unknown model recipe {recipe!r}: use one of {known}, "
            "or 'module:callable' returning a River estimator"
        )
    module_name, _, attr = recipe.partition(":")
    try:
        factory = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ConfigError(f"cannot load model recipe {recipe!r}: {exc}") from exc
    if not callable(factory):
        raise ConfigError(f"model recipe {recipe!r} is not callable: it must build a River model")
    try:
        model = factory()
    except Exception as exc:
        raise ConfigError(
            f"model recipe {recipe!r} failed when called without arguments: {type(exc).__name__}: {exc}"
        ) from exc
    if not isinstance(model, base.Estimator):
        raise ConfigError(f"model recipe {recipe!r} returned {type(model).__name__}, not a River estimator")
    return model
