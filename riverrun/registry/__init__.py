"""The model registry: signed, versioned River checkpoints in a directory or in Redis.

``open_registry("redis://...", key)`` or ``open_registry("/var/lib/riverrun/models", key)``
returns a ``ModelRegistry``; see ``riverrun.registry.registry`` for the save/load protocol,
``signing`` for the envelope and ``unpickler`` for the class allowlist.
"""

from riverrun.registry.meta import VersionMeta
from riverrun.registry.registry import ModelRegistry, open_registry
from riverrun.registry.signing import sign, verify
from riverrun.registry.stores import FileStore, RedisStore, Store
from riverrun.registry.unpickler import restricted_loads

__all__ = [
    "FileStore",
    "ModelRegistry",
    "RedisStore",
    "Store",
    "VersionMeta",
    "open_registry",
    "restricted_loads",
    "sign",
    "verify",
]
