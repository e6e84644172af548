"""The registry writer: checkpoints and audited model events from the model step to the signed
registry, on a thread of its own, so a slow store never stalls the flow."""

from __future__ import annotations

import logging
import pickle
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from bytewax.outputs import (
    DynamicSink,
    StatelessSinkPartition,
)

from riverrun.schemas import ModelEvent

log = logging.getLogger(__name__)


def _event_key(record: dict) -> str:
    position = record.get("position") or {}
    return "|".join(str(record.get(k)) for k in ("action", "at", "checkpoint", "reason")) + (
        f"|{position.get('labels')}"
    )


class _RegistryPartition(StatelessSinkPartition):
    """Writes checkpoints and audit records in order, from a thread of its own, so an
    unreachable registry (Redis down) never stalls the flow: a failed write is retried with
    exponential backoff (``retry_initial`` doubling up to ``retry_max`` seconds), counted
    (``retries``, ``riverrun_registry_write_retries_total``) and logged; what waits meanwhile
    is ``pending`` (``riverrun_registry_pending_writes``). ``ModelRegistry.save`` lists a
    version only after its signed blob and metadata are stored, so a write cut short leaves at
    most an unlisted blob, never a listed version without its checkpoint.

    After a crash the flow re-emits what followed its last snapshot, identically: what the
    registry already holds (same checkpoint id, position and time; same event) is skipped, so a
    recovery neither duplicates versions nor audit records. After a failed write the partition
    re-reads what the registry holds before retrying, so a write that landed just before the
    connection broke is not repeated.

    Limit: pending writes live in memory. If the process dies while the registry is down, the
    checkpoints taken meanwhile are not persisted (the model state itself is in the recovery
    snapshot, and the lifecycle keeps its last ``keep_checkpoints`` checkpoints there)."""

    def __init__(
        self,
        open_registry_fn: Callable[[], Any],
        retry_initial: float = 0.5,
        retry_max: float = 30.0,
        close_timeout: float = 30.0,
        metrics: Any = None,
    ):
        self._open = open_registry_fn
        self._metrics = metrics  # a FlowMetrics (retries, pending), or None
        self._registry: Any = None
        self._parents: dict[str, int | None] = {}
        self._saved: dict[str, set[tuple]] = {}
        self._versions_of: dict[str, dict[str, int]] = {}
        self._audited: dict[str, set[str]] = {}
        self._retry_initial, self._retry_max = retry_initial, retry_max
        self._close_timeout = close_timeout
        self._queue: deque = deque()
        self._cond = threading.Condition()
        self._close_by: float | None = None
        self.retries = 0
        self.written = 0
        self._thread = threading.Thread(target=self._run, name="riverrun-registry-writer", daemon=True)
        self._thread.start()

    @property
    def pending(self) -> int:
        return len(self._queue)

    def write_batch(self, items: list) -> None:
        with self._cond:
            self._queue.extend(items)
            if self._metrics is not None:
                self._metrics.registry_pending.inc(len(items))
            self._cond.notify()

    def close(self) -> None:
        """Let the writer finish what is pending (at most ``close_timeout`` seconds)."""
        with self._cond:
            self._close_by = time.monotonic() + self._close_timeout
            self._cond.notify()
        self._thread.join(self._close_timeout + 5)
        if self._queue:
            log.error(
                "registry: %d checkpoints/audit records not written at shutdown (registry "
                "unreachable); the model state is in the recovery snapshot",
                len(self._queue),
            )

    def _run(self) -> None:
        from riverrun.errors import CheckpointError, ServiceUnavailable

        delay = self._retry_initial
        failing_since: float | None = None
        while True:
            with self._cond:
                while not self._queue and self._close_by is None:
                    self._cond.wait()
                if not self._queue:
                    return
                item = self._queue[0]
            try:
                self._write(item)
            except (ServiceUnavailable, OSError) as exc:
                self.retries += 1
                if self._metrics is not None:
                    self._metrics.registry_retries.inc()
                failing_since = failing_since or time.monotonic()
                log.warning(
                    "registry write failed (retry %d, %d pending, retrying in %.1fs): %s",
                    self.retries,
                    len(self._queue),
                    delay,
                    exc,
                )
                self._forget(item.model)  # re-read what landed before retrying
                with self._cond:
                    if self._close_by is not None and time.monotonic() + delay > self._close_by:
                        return
                    self._cond.wait(delay)
                delay = min(delay * 2, self._retry_max)
                continue
            except (CheckpointError, ValueError) as exc:  # refused for good: never retried
                log.error("registry refused %s of %s, dropped: %s", type(item).__name__, item.model, exc)
            except Exception:  # a bug: keep the writer alive for the items after this one
                log.exception("registry write of %s for %s failed, dropped", type(item).__name__, item.model)
            with self._cond:
                self._queue.popleft()
                if self._metrics is not None:
                    self._metrics.registry_pending.dec()
            self.written += 1
            if failing_since is not None:
                log.warning(
                    "registry reachable again after %.1fs; %d writes still pending",
                    time.monotonic() - failing_since,
                    len(self._queue),
                )
                failing_since = None
            delay = self._retry_initial

    def _forget(self, model: str) -> None:
        self._saved.pop(model, None)

    def _load(self, model: str) -> None:
        if self._registry is None:
            self._registry = self._open()
        if model in self._saved:
            return
        versions = self._registry.versions(model)
        self._parents[model] = versions[-1].version if versions else None
        self._audited[model] = {_event_key(r) for r in self._registry.audit_log(model)}
        self._saved[model] = {(v.reason.split(":", 1)[0], v.n_learned, v.event_time_end) for v in versions}
        # the lifecycle's checkpoint id (ckpt-3) -> its registry version, for rollbacks to it
        self._versions_of[model] = {v.reason.split(":", 1)[0]: v.version for v in versions}

    def _write(self, item) -> None:
        self._load(item.model)
        if isinstance(item, ModelEvent):
            record = item.model_dump(mode="json", exclude_none=True)
            key = _event_key(record)
            if key not in self._audited[item.model]:
                self._registry.audit(item.model, record)
                self._audited[item.model].add(key)
            if item.action == "rollback" and item.checkpoint:
                self._point_champion(item.model, self._registry_version(item.model, item.checkpoint), item)
            return
        # A Checkpoint: our own pickle of the champion, made in this process a moment ago.
        end = item.event_time_end.isoformat() if item.event_time_end else None
        key = (item.id, item.n_learned, end)
        if key in self._saved[item.model]:
            return
        meta = self._registry.save(
            item.model,
            pickle.loads(item.blob),
            recipe=item.recipe,
            parent=self._parents[item.model],
            n_learned=item.n_learned,
            metrics=item.metrics,
            event_time=(None, end),
            reason=f"{item.id}: {item.reason} (serving v{item.version})",
        )
        self._saved[item.model].add(key)
        self._parents[item.model] = meta.version
        self._versions_of[item.model][item.id] = meta.version
        if not item.reason.startswith("before "):  # not the model about to be displaced
            self._point_champion(item.model, meta.version, item)

    def _registry_version(self, model: str, checkpoint: str) -> int | None:
        """The registry version a rollback went to: ``registry v3`` (an operator's), or a
        lifecycle checkpoint id this registry holds (``ckpt-3``); None if unknown."""
        if checkpoint.startswith("registry v"):
            return int(checkpoint.removeprefix("registry v"))
        return self._versions_of[model].get(checkpoint)

    def _point_champion(self, model: str, version: int | None, item: Any) -> None:
        """Point the registry's ``champion`` at the registry version the flow now serves (a
        rollback's target) or last checkpointed from what it serves (a periodic or operator
        checkpoint), so ``/models`` and ``riverrun models list`` show it. Idempotent: a
        re-emission after a crash adds no audit record."""
        if version is None or self._registry.get_pointer(model, "champion") == version:
            return
        serving = getattr(item, "to_version", None) or getattr(item, "version", None)
        self._registry.set_pointer(
            model,
            "champion",
            version,
            reason=f"the flow serves {model} serving v{serving} from registry v{version}",
        )


class RegistrySink(DynamicSink):
    """Persists the lifecycle's checkpoints (signed) and appends its model events to the
    registry's audit log. ``open_registry_fn`` builds the registry in the worker (no sockets
    in the flow's definition)."""

    def __init__(self, open_registry_fn: Callable[[], Any], metrics: Any = None):
        self.open_registry_fn = open_registry_fn
        self.metrics = metrics

    def build(self, step_id, worker_index, worker_count):
        return _RegistryPartition(self.open_registry_fn, metrics=self.metrics)
