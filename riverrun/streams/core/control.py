"""Operator commands on the ``control`` topic: decode them and fetch rollback targets.

A rollback names a registry version; the registry verifies its signature and allowlists its
classes before anything is unpickled. A command that cannot be honoured (unknown version,
tampered checkpoint, registry down) goes to the dead letters with the reason, and the flow keeps
serving its current model.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable
from typing import Any

from riverrun.errors import RiverrunError
from riverrun.schemas import DEFAULT_MAX_BYTES, DeadLetter, dead_letter, decode_control
from riverrun.streams.core.items import ControlItem, RawRecord


def control_loader(
    open_registry_fn: Callable[[], Any] | None, max_bytes: int = DEFAULT_MAX_BYTES
) -> Callable[[RawRecord], ControlItem | DeadLetter]:
    """A function turning a raw command into a ``ControlItem`` (or a dead letter).
    ``open_registry_fn`` is called on the first rollback (None: rollbacks are refused)."""
    registry = None

    def load(raw: RawRecord) -> ControlItem | DeadLetter:
        nonlocal registry
        command = decode_control(raw.value, raw.origin, max_bytes)
        if isinstance(command, DeadLetter):
            return command

        def refuse(reason: str, error: str) -> DeadLetter:
            return dead_letter(
                "control", raw.value, raw.origin, reason, f"{error}; still serving the current model"
            )

        blob = None
        if command.command == "rollback":
            if command.version is None:
                return refuse("validation", "a rollback needs the registry version to serve")
            if open_registry_fn is None:
                return refuse("no_registry", "no registry key configured (RIVERRUN_REGISTRY__KEY)")
            try:
                registry = registry or open_registry_fn()
                model = registry.load(command.model, command.version)
            except RiverrunError as exc:
                return refuse("checkpoint_refused", f"{type(exc).__name__}: {exc}")
            blob = pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)
        return ControlItem(command.model, command.command, command.version, blob, command.reason, command.ts)

    return load
