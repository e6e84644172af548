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
import sqlite3
from pathlib import Path
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


# -- reading a recovery directory (Bytewax 0.21's SQLite partitions) ------------------------------
# These read our own trusted recovery directory, which holds pickles: never point them at a
# directory from elsewhere.


def resume_epoch(directory: Path) -> int | None:
    """The epoch a (re)start of the flow resumes from, computed as Bytewax 0.21 does: the lowest
    worker frontier of the newest execution over all recovery partitions (None: the directory has
    no execution, a start resumes nothing). Snapshots at this epoch or later belong to epochs
    that never completed (a kill during a snapshot write leaves some behind) and are ignored."""
    executions: dict[int, tuple[int, int]] = {}
    fronts: dict[tuple[int, int], int] = {}
    for part in sorted(Path(directory).glob("part-*.sqlite3")):
        with sqlite3.connect(f"file:{part}?mode=ro", uri=True) as db:
            for ex_num, workers, resume in db.execute("SELECT ex_num, worker_count, resume_epoch FROM exs"):
                executions[ex_num] = (workers, resume)
            for ex_num, worker, frontier in db.execute(
                "SELECT ex_num, worker_index, worker_frontier FROM fronts"
            ):
                fronts[(ex_num, worker)] = max(frontier, fronts.get((ex_num, worker), frontier))
    if not executions:
        return None
    last = max(executions)
    workers, default = executions[last]
    return min(max(fronts.get((last, w), default), default) for w in range(workers))


def resumed_snapshots(directory: Path, step: str, before: int) -> dict[str, bytes]:
    """The snapshot of each key of stateful step ``step`` that a restart resuming at epoch
    ``before`` restores: ``{state_key: what the step's snapshot() returned}`` (Bytewax's own
    pickle undone; keys whose state was discarded are left out)."""
    newest: dict[str, tuple[int, bytes | None]] = {}
    for part in sorted(Path(directory).glob("part-*.sqlite3")):
        with sqlite3.connect(f"file:{part}?mode=ro", uri=True) as db:
            rows = db.execute(
                "SELECT state_key, snap_epoch, ser_change FROM snaps "
                "WHERE (step_id LIKE ? OR step_id LIKE ?) AND snap_epoch < ?",
                (f"%.{step}", f"%.{step}.stateful_batch", before),
            ).fetchall()
        for key, snap_epoch, blob in rows:
            if key not in newest or snap_epoch > newest[key][0]:
                newest[key] = (snap_epoch, blob)
    return {key: pickle.loads(blob) for key, (_, blob) in sorted(newest.items()) if blob is not None}
