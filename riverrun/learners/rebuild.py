"""Undo the CPython 3.11/3.12 slowdown of a model that was pickled or unpickled.

CPython 3.11 stores the attributes of ordinary objects inline and reads them on a fast path. The
first access to an object's ``__dict__`` (``pickle.dumps``, ``copy.deepcopy``, ``vars``, and the
``__dict__.update`` with which ``pickle.loads`` restores an object) turns that into a real dict for
good, and every attribute read becomes slower. River models read many attributes per event: an
``lr`` pipeline that was pickled once (a checkpoint, a recovery snapshot) or restored from a pickle
(a rollback, a promotion, a restart) predicts and learns 10-20% slower from then on
(``benchmarks/policy.py`` showed it as lifecycle overhead).

``rebuilt(obj)`` returns a deep copy whose objects are created afresh (``__new__``, then each
attribute set in order), so their attributes are inline again; dicts (of any kind), lists, tuples
and deques are rebuilt item by item; objects that manage their own state (slots, ``__reduce__``,
extension types) are copied with ``copy.deepcopy``. Shared references stay shared.

>>> import pickle
>>> from river import linear_model
>>> model = linear_model.LogisticRegression()
>>> model.learn_one({"x": 1.0}, True)
>>> copy = rebuilt(pickle.loads(pickle.dumps(model)))
>>> copy.predict_proba_one({"x": 1.0}) == model.predict_proba_one({"x": 1.0})
True
"""

from __future__ import annotations

import copy
from collections import deque
from typing import Any

_MANAGED_DICT = 1 << 4  # Py_TPFLAGS_MANAGED_DICT (3.11, 3.12): attributes stored inline
_ATOMIC = (int, float, bool, str, bytes, complex, type(None), type)
_CONTAINERS = (dict, list, tuple, set, frozenset, deque)
_rebuildable: dict[type, bool] = {}


def _can_rebuild(cls: type) -> bool:
    """A plain Python class: inline attributes, no slots with values, default pickling."""
    known = _rebuildable.get(cls)
    if known is None:
        known = bool(
            cls.__flags__ & _MANAGED_DICT
            and not issubclass(cls, _CONTAINERS)
            and all(not getattr(k, "__slots__", ()) for k in cls.__mro__ if "__slots__" in vars(k))
            and cls.__reduce_ex__ is object.__reduce_ex__
            and cls.__reduce__ is object.__reduce__
            and not hasattr(cls, "__deepcopy__")
        )
        _rebuildable[cls] = known
    return known


def rebuilt(obj: Any, memo: dict[int, Any] | None = None) -> Any:
    """A deep copy of ``obj`` with every plain object created afresh (fast attribute access)."""
    if memo is None:
        memo = {}
    if isinstance(obj, _ATOMIC):
        return obj
    key = id(obj)
    if key in memo:
        return memo[key]
    cls = type(obj)
    if cls is dict:
        out: Any = {}
        memo[key] = out
        for k, v in obj.items():
            out[rebuilt(k, memo)] = rebuilt(v, memo)
        return out
    if isinstance(obj, dict):  # OrderedDict (a pipeline's steps), defaultdict, Counter, ...
        out = copy.copy(obj)  # the same type, default factory and attributes
        memo[key] = out
        out.clear()
        for k, v in obj.items():
            out[rebuilt(k, memo)] = rebuilt(v, memo)
        return out
    if cls is deque:
        out = deque(maxlen=obj.maxlen)
        memo[key] = out
        out.extend(rebuilt(v, memo) for v in obj)
        return out
    if cls is list:
        out = []
        memo[key] = out
        out.extend(rebuilt(v, memo) for v in obj)
        return out
    if cls is tuple:
        out = tuple(rebuilt(v, memo) for v in obj)
        return memo.setdefault(key, out)
    if _can_rebuild(cls):
        out = cls.__new__(cls)
        memo[key] = out
        for name, value in vars(obj).items():
            object.__setattr__(out, name, rebuilt(value, memo))
        return out
    return copy.deepcopy(obj, memo)
