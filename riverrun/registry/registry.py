"""``ModelRegistry``: versioned, signed model checkpoints with metadata, pointers and an audit log.

Saving (numbered as in the code):

1. pickle the model (highest protocol) and check it loads through the allowlist, so a model that
   could never be restored fails now, loudly, instead of at recovery;
2. take a fresh version number from the store (atomic);
3. sign header + payload (``signing.sign``); the header binds model name and version, so a valid
   blob copied to another slot is refused on load;
4. write the blob, then the metadata with its own MAC (the version is listed from then on);
5. append a ``save`` record to the audit log.

Loading verifies the blob MAC *before* unpickling, checks the header names the requested model
and version and was written by a River whose pickles this one reads (``compat``), then unpickles
with ``restricted_loads``.

>>> import tempfile
>>> from river import linear_model
>>> with tempfile.TemporaryDirectory() as tmp:
...     registry = open_registry(tmp, key=b"0123456789abcdef-demo")
...     meta = registry.save("demo", linear_model.LinearRegression(), recipe="linreg", parent=None,
...         n_learned=0, metrics={}, event_time=(None, None), reason="first")
...     model = registry.load("demo", meta.version)
...     (meta.version, type(model).__name__, [r["action"] for r in registry.audit_log("demo")])
(1, 'LinearRegression', ['save'])
"""

from __future__ import annotations

import hashlib
import hmac
import math
import pickle
import uuid
from datetime import UTC, datetime
from typing import Any

import river

from riverrun.errors import ForbiddenClass, TamperedCheckpoint
from riverrun.registry import unpickler
from riverrun.registry.compat import check_river, written_by
from riverrun.registry.meta import VersionMeta, check_event_time
from riverrun.registry.names import check_name, check_version
from riverrun.registry.signing import FORMAT_VERSION, canonical_json, check_key, mac, sign, verify
from riverrun.registry.stores import FileStore, RedisStore, Store

_META_DOMAIN = b"riverrun-meta-v1\n"


def _now() -> str:
    return datetime.now(UTC).isoformat()


class ModelRegistry:
    """Signed model versions in ``store``; ``key`` (>= 16 bytes) signs blobs and metadata."""

    def __init__(self, store: Store, key: bytes) -> None:
        self.store = store
        self._key = check_key(key)

    def __repr__(self) -> str:
        return f"ModelRegistry({self.store!r})"  # never the key

    # -- versions -----------------------------------------------------------------------------

    def save(
        self,
        model: str,
        obj: object,
        *,
        recipe: str,
        parent: int | None,
        n_learned: int,
        metrics: dict[str, float],
        event_time: tuple[str | None, str | None],
        reason: str,
        source_offsets: dict[str, int] | None = None,
    ) -> VersionMeta:
        """Store ``obj`` as the next version of ``model`` and return its metadata."""
        check_name(model, "model")
        if parent is not None:
            check_version(parent)
        if isinstance(n_learned, bool) or not isinstance(n_learned, int) or n_learned < 0:
            raise ValueError(f"n_learned must be a non-negative integer, not {n_learned!r}")
        metrics = {str(name): float(value) for name, value in metrics.items()}
        start = check_event_time(event_time[0], "event_time start")
        end = check_event_time(event_time[1], "event_time end")
        payload = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
        try:
            unpickler.restricted_loads(payload)  # 1. refuse now what could never be loaded
        except ForbiddenClass as exc:
            raise ForbiddenClass(
                f"model {model!r} cannot be saved, it could never be loaded: {exc} "
                "(see riverrun.registry.unpickler for the allowlist)"
            ) from None
        version = self.store.next_version(model)  # 2.
        cls = type(obj)
        header = {
            "model": model,
            "version": version,
            "model_class": f"{cls.__module__}.{cls.__qualname__}",
            **written_by(),  # Python, River and riverrun versions
            "created_at": _now(),
            "recipe": recipe,
            "parent": parent,
            "source_offsets": dict(source_offsets or {}),
        }
        blob = sign(payload, header, self._key)  # 3.
        meta = VersionMeta(
            model=model,
            version=version,
            parent=parent,
            recipe=recipe,
            n_learned=n_learned,
            metrics=metrics,
            event_time_start=start,
            event_time_end=end,
            reason=reason,
            created_at=header["created_at"],
            model_class=header["model_class"],
            river_version=header["river_version"],
            python_version=header["python_version"],
            riverrun_version=header["riverrun_version"],
            format_version=FORMAT_VERSION,
            size_bytes=len(blob),
            sha256=hashlib.sha256(blob).hexdigest(),
            source_offsets=header["source_offsets"],
        )
        sealed = self._seal(meta.to_dict())  # JSON problems surface before anything is written
        self.store.put_blob(model, version, blob)  # 4.
        self.store.put_meta(model, version, sealed)
        self.audit(model, {"action": "save", "version": version, "parent": parent, "reason": reason})  # 5.
        return meta

    def load(self, model: str, version: int) -> object:
        """The model saved as ``version``; ``TamperedCheckpoint``/``ForbiddenClass`` if untrusted,
        ``IncompatibleCheckpoint`` if written by a River whose pickles this one cannot read."""
        header, payload = verify(self.store.get_blob(model, version), self._key)
        if header.get("model") != model or header.get("version") != version:
            raise TamperedCheckpoint(
                f"checkpoint stored as version {version} of {model!r} holds version "
                f"{header.get('version')!r} of {header.get('model')!r}: blobs were swapped"
            )
        check_river(header.get("river_version"), river.__version__, what=f"v{version} of {model!r}")
        return unpickler.restricted_loads(payload)

    def meta(self, model: str, version: int) -> VersionMeta:
        """The verified metadata of ``version``."""
        stored = dict(self.store.get_meta(model, version))
        tag = stored.pop("mac", "")
        if not (isinstance(tag, str) and hmac.compare_digest(self._meta_mac(stored), tag)):
            raise TamperedCheckpoint(f"metadata of version {version} of {model!r} fails its MAC")
        meta = VersionMeta.from_dict(stored)
        if (meta.model, meta.version) != (model, version):
            raise TamperedCheckpoint(f"metadata stored as version {version} of {model!r} was swapped")
        return meta

    def versions(self, model: str) -> list[VersionMeta]:
        """Metadata of every version, oldest first."""
        return [self.meta(model, v) for v in self.store.list_versions(model)]

    def latest(self, model: str) -> VersionMeta | None:
        """Metadata of the highest version, or ``None`` if ``model`` has none."""
        listed = self.store.list_versions(model)
        return self.meta(model, listed[-1]) if listed else None

    def diff(self, model: str, v1: int, v2: int) -> dict[str, Any]:
        """Fields and metrics that differ between two versions, as ``{"v1": a, "v2": b}`` pairs.

        Metrics also get ``delta`` (``v2 - v1``, ``None`` if either side is missing or NaN).
        """
        a, b = self.meta(model, v1).to_dict(), self.meta(model, v2).to_dict()
        ma, mb = a.pop("metrics"), b.pop("metrics")
        changed = {k: {"v1": a[k], "v2": b[k]} for k in a if a[k] != b[k]}
        metrics = {}
        for name in sorted(ma.keys() | mb.keys()):
            x, y = ma.get(name), mb.get(name)
            if _same(x, y):
                continue
            numeric = all(isinstance(v, int | float) and not math.isnan(v) for v in (x, y))
            metrics[name] = {"v1": x, "v2": y, "delta": y - x if numeric else None}
        return {"model": model, "v1": v1, "v2": v2, "changed": changed, "metrics": metrics}

    # -- pointers and audit -------------------------------------------------------------------

    def set_pointer(self, model: str, name: str, version: int, *, reason: str = "") -> None:
        """Point ``name`` (``champion``, ``last_good``...) at an existing version; audited."""
        self.meta(model, version)  # exists and is intact
        previous = self.store.get_pointer(model, name)
        self.store.set_pointer(model, name, version)
        record = {"action": "pointer", "pointer": name, "version": version, "previous": previous}
        self.audit(model, {**record, "reason": reason})

    def get_pointer(self, model: str, name: str) -> int | None:
        """The version ``name`` points at, or ``None``."""
        return self.store.get_pointer(model, name)

    def audit(self, model: str, record: dict[str, Any]) -> dict[str, Any]:
        """Append ``record`` (JSON-able) with ``at`` and ``id`` added if absent; return it."""
        full = {"at": _now(), "id": uuid.uuid4().hex, **record}
        self.store.append_audit(check_name(model, "model"), full)
        return full

    def audit_log(self, model: str) -> list[dict[str, Any]]:
        """The audit records, oldest first (a record repeated by a store retry appears once)."""
        seen: set[str] = set()
        out = []
        for record in self.store.read_audit(model):
            rid = record.get("id")
            if rid is not None and rid in seen:
                continue
            seen.add(rid)
            out.append(record)
        return out

    # -- metadata MAC ---------------------------------------------------------------------------

    def _meta_mac(self, meta: dict[str, Any]) -> str:
        return mac(self._key, _META_DOMAIN, canonical_json(meta)).hex()

    def _seal(self, meta: dict[str, Any]) -> dict[str, Any]:
        return {**meta, "mac": self._meta_mac(meta)}


def _same(x: Any, y: Any) -> bool:
    nan = isinstance(x, float) and isinstance(y, float) and math.isnan(x) and math.isnan(y)
    return nan or x == y


def open_registry(url_or_path: str, key: bytes, **store_options: Any) -> ModelRegistry:
    """A registry on Redis for ``redis://``/``rediss://`` URLs, else on the directory path.

    ``store_options`` go to ``RedisStore`` (``prefix``, ``attempts``, ``backoff``, ``timeout``).
    """
    if url_or_path.startswith(("redis://", "rediss://")):
        return ModelRegistry(RedisStore(url_or_path, **store_options), key)
    if store_options:
        raise TypeError(f"FileStore takes no options, got {sorted(store_options)}")
    return ModelRegistry(FileStore(url_or_path), key)
