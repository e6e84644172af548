r"""Reading recovery snapshots, including those written before a module moved.

The dataflow's stateful steps snapshot their state with ``pickle``, which records the module path
of every class. When a class moves, a snapshot written before the move names a module that no
longer exists; :func:`loads` maps those paths to today's before resolving them, so a recovery
directory written by an earlier riverrun resumes as if nothing moved.

Snapshots taken before a class gained an attribute are read by that class's ``__setstate__`` (or a
``getattr`` default) next to the code that uses the attribute; this module only maps paths.

>>> loads(b"criverrun.streams.buckets\nBuckets\n.")  # a class pickled by its old path
<class 'riverrun.streams.core.buckets.Buckets'>
"""

from __future__ import annotations

import io
import pickle
from typing import Any

#: Module paths of classes pickled before streams/ was split into subpackages (2026-12-08).
MOVED_MODULES: dict[str, str] = {
    f"riverrun.streams.{old}": f"riverrun.streams.{new}"
    for old, new in {
        "items": "core.items",
        "ordering": "core.ordering",
        "features": "core.features",
        "join": "core.join",
        "packing": "core.packing",
        "buckets": "core.buckets",
        "segments": "core.segments",
        "modelstep": "core.modelstep",
        "control": "core.control",
        "metrics": "flow.metrics",
        "engine": "flow.dataflow",
    }.items()
}


class Unpickler(pickle.Unpickler):
    """``pickle.Unpickler`` with moved modules mapped to where they live now."""

    def find_class(self, module: str, name: str) -> Any:
        return super().find_class(MOVED_MODULES.get(module, module), name)


def loads(data: bytes) -> Any:
    """``pickle.loads`` for a recovery snapshot, with moved modules mapped to where they live now."""
    return Unpickler(io.BytesIO(data)).load()
