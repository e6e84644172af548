"""Where the registry keeps checkpoints: the ``Store`` protocol and its two implementations.

A store holds bytes and JSON-able dicts; it knows nothing about pickles or keys. Versions are
write-once: writing a version again with the same content is a no-op (so retries are safe),
with other content a ``CheckpointError``. A version is listed once its metadata is written, so
the registry writes the blob first and the metadata last.

* ``FileStore(directory)``: one directory per model (see ``riverrun.registry.file_store``).
* ``RedisStore(url, prefix)``: keys under ``{prefix}:model:{name}:`` (see
  ``riverrun.registry.redis_store``).
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from riverrun.registry.file_store import FileStore
from riverrun.registry.names import check_name, check_version
from riverrun.registry.redis_store import RedisStore


@runtime_checkable
class Store(Protocol):
    """Storage for signed blobs, their metadata, an audit log and named pointers, per model."""

    def put_blob(self, model: str, version: int, blob: bytes) -> None:
        """Store the checkpoint bytes of ``version`` (write-once)."""

    def get_blob(self, model: str, version: int) -> bytes:
        """The checkpoint bytes; ``UnknownVersion`` if absent."""

    def put_meta(self, model: str, version: int, meta: dict[str, Any]) -> None:
        """Store the metadata of ``version`` (write-once); the version is listed from now on."""

    def get_meta(self, model: str, version: int) -> dict[str, Any]:
        """The metadata; ``UnknownVersion`` if absent."""

    def list_versions(self, model: str) -> list[int]:
        """Versions with metadata, ascending."""

    def next_version(self, model: str) -> int:
        """A fresh version number, atomically, greater than every one handed out before."""

    def append_audit(self, model: str, record: dict[str, Any]) -> None:
        """Append ``record`` to the model's audit log."""

    def read_audit(self, model: str) -> list[dict[str, Any]]:
        """The audit log, oldest first."""

    def set_pointer(self, model: str, name: str, version: int) -> None:
        """Point ``name`` (e.g. ``champion``, ``last_good``) at ``version``."""

    def get_pointer(self, model: str, name: str) -> int | None:
        """The version ``name`` points at, or ``None``."""


__all__ = ["FileStore", "RedisStore", "Store", "check_name", "check_version"]
