"""An allowlisting unpickler for model checkpoints (defence in depth behind the HMAC).

Only classes may be looked up, never functions or modules, and only these:

* classes defined in ``river`` (except the I/O and test subpackages in ``DENIED_PREFIXES``),
  ``riverrun.learners`` and ``riverrun.detectors``;
* the exact names in ``ALLOWED_NAMES``: plain builtin values and containers, four ``collections``
  types, ``functools.partial`` (River's confusion matrix is a ``defaultdict(partial(defaultdict,
  float))``) and ``random.Random`` (River's seeded models carry one).

``bytes``/``bytearray`` are left out on purpose (``bytearray(10**12)`` is a memory bomb; pickle
protocol 5 encodes bytes without them), and so are ``copyreg``, ``numpy`` and ``builtins.object``:
none of the shipped recipes (lr, hat, arf, ``OnlineLearner``) need them.

>>> import pickle
>>> from collections import Counter
>>> restricted_loads(pickle.dumps(Counter("abca"), protocol=pickle.HIGHEST_PROTOCOL))
Counter({'a': 2, 'b': 1, 'c': 1})
>>> import os
>>> restricted_loads(pickle.dumps(os.getcwd))
Traceback (most recent call last):
...
riverrun.errors.ForbiddenClass: class posix.getcwd is not allowed in a checkpoint
"""

from __future__ import annotations

import importlib
import io
import pickle

from riverrun.errors import CheckpointError, ForbiddenClass

ALLOWED_PREFIXES: tuple[str, ...] = ("river.", "riverrun.learners.", "riverrun.detectors.")
ALLOWED_MODULES: frozenset[str] = frozenset({"river", "riverrun.learners", "riverrun.detectors"})
DENIED_PREFIXES: tuple[str, ...] = (
    "river.datasets",
    "river.stream",
    "river.checks",
    "river.api",
    "river.conftest",
)
_BUILTINS = ("bool", "int", "float", "complex", "str", "tuple", "list", "dict", "set", "frozenset")
ALLOWED_NAMES: frozenset[tuple[str, str]] = frozenset(
    {
        *(("builtins", name) for name in _BUILTINS),
        ("collections", "OrderedDict"),
        ("collections", "defaultdict"),
        ("collections", "deque"),
        ("collections", "Counter"),
        ("functools", "partial"),
        ("random", "Random"),
    }
)


def module_allowed(module: str) -> bool:
    """Whether classes defined in ``module`` may be unpickled (by prefix, minus the denied ones)."""
    if not all(part.isidentifier() for part in module.split(".")):
        return False
    if module.startswith(DENIED_PREFIXES):
        return False
    return module in ALLOWED_MODULES or module.startswith(ALLOWED_PREFIXES)


class RestrictedUnpickler(pickle.Unpickler):
    """``pickle.Unpickler`` whose ``find_class`` resolves allowlisted classes only."""

    def find_class(self, module: str, name: str) -> type:
        refused = ForbiddenClass(f"class {module}.{name} is not allowed in a checkpoint")
        if not name.isidentifier():  # "os.system" reached through a River module's globals
            raise refused
        if (module, name) in ALLOWED_NAMES:
            return super().find_class(module, name)
        if not module_allowed(module):
            raise refused
        try:
            obj = getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError) as exc:
            raise CheckpointError(f"class {module}.{name} does not exist in this install: {exc}") from exc
        # A function, a module, or a class imported into River from elsewhere is refused.
        if not isinstance(obj, type) or not module_allowed(obj.__module__):
            raise refused
        return obj


def restricted_loads(data: bytes) -> object:
    """Unpickle ``data`` with ``RestrictedUnpickler``; any failure is a ``CheckpointError``."""
    try:
        return RestrictedUnpickler(io.BytesIO(data)).load()
    except CheckpointError:
        raise
    except Exception as exc:  # garbage that slipped past the MAC can raise anything
        raise CheckpointError(f"cannot unpickle checkpoint payload: {type(exc).__name__}: {exc}") from exc
