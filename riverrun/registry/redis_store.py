"""``RedisStore``: the registry in Redis, every key under ``{prefix}:model:{name}:``.

Keys per model::

    {prefix}:model:{name}:v:{n}:blob   signed checkpoint (SET NX: write-once)
    {prefix}:model:{name}:v:{n}:meta   metadata JSON (SET NX), then ZADD to ...:versions
    {prefix}:model:{name}:versions     sorted set, score = version
    {prefix}:model:{name}:next         INCR counter for next_version
    {prefix}:model:{name}:audit        list of JSON records (RPUSH)
    {prefix}:model:{name}:pointers     hash pointer name -> version

``url`` is handed to ``redis.Redis.from_url`` as is (``redis://``, ``rediss://``, ACL
``user:password@``). Connection failures and timeouts are retried ``attempts`` times with
exponential backoff, then raised as ``RegistryUnavailable``; the password never appears in
messages or ``repr``. A retried INCR may skip a number (versions stay increasing) and a retried
RPUSH may duplicate an audit record (records carry an ``id``; the registry drops repeats).

>>> store = RedisStore("redis://app:s3cret@127.0.0.1:6379/0", prefix="demo")  # connects lazily
>>> store
RedisStore(url='redis://app:***@127.0.0.1:6379/0', prefix='demo')
>>> store.key("fraud", 3, "blob")
'demo:model:fraud:v:3:blob'
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from riverrun.errors import CheckpointError, ConfigError, RegistryUnavailable, UnknownVersion
from riverrun.registry.names import check_name, check_version
from riverrun.registry.signing import canonical_json

T = TypeVar("T")
_PREFIX = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}")


def redact_url(url: str) -> str:
    """``url`` with its password (in the authority or a ``password=`` query) replaced by ``***``.

    >>> redact_url("rediss://app:p%40ss@redis.internal:6380/1?password=x&db=1")
    'rediss://app:***@redis.internal:6380/1?password=%2A%2A%2A&db=1'
    """
    parts = urlsplit(url)
    netloc = parts.netloc
    if parts.password is not None:
        netloc = f"{parts.username or ''}:***@{netloc.rpartition('@')[2]}"
    query = [(k, "***" if k.lower() == "password" else v) for k, v in parse_qsl(parts.query, True)]
    return urlunsplit(parts._replace(netloc=netloc, query=urlencode(query)))


def _secrets(url: str) -> list[str]:
    parts = urlsplit(url)
    found = [parts.password or ""]
    found += [v for k, v in parse_qsl(parts.query, True) if k.lower() == "password"]
    return [s for form in found if form for s in {form, unquote(form)}]


class RedisStore:
    """A ``Store`` in Redis at ``url`` with keys under ``prefix``."""

    def __init__(
        self,
        url: str,
        prefix: str = "riverrun",
        *,
        attempts: int = 3,
        backoff: float = 0.05,
        timeout: float = 2.0,
    ) -> None:
        if attempts < 1:
            raise ConfigError(f"RedisStore attempts must be >= 1, not {attempts}")
        self.url = redact_url(url)
        if not _PREFIX.fullmatch(prefix):
            raise ConfigError(f"Redis key prefix {prefix!r} is not allowed: use A-Z a-z 0-9 . _ - :")
        self.prefix = prefix
        self.attempts = attempts
        self.backoff = backoff
        self._secrets = _secrets(url)
        try:
            self._redis = redis.Redis.from_url(
                url,
                socket_timeout=timeout,
                socket_connect_timeout=timeout,
                retry=Retry(NoBackoff(), 0),  # retries are ours: counted, logged in the message
            )
        except ValueError as exc:
            raise ConfigError(f"invalid Redis URL {self.url}: {self._scrub(str(exc))}") from None

    def __repr__(self) -> str:
        return f"RedisStore(url={self.url!r}, prefix={self.prefix!r})"

    def key(self, model: str, *parts: object) -> str:
        """The Redis key of ``model``'s ``parts``: version number then kind, or a kind."""
        check_name(model, "model")
        if parts and isinstance(parts[0], int):
            check_version(parts[0])
            parts = ("v", *parts)
        return ":".join([self.prefix, "model", model, *map(str, parts)])

    def _scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def _call(self, what: str, op: Callable[[redis.Redis], T]) -> T:
        """Run ``op`` with retries on connection errors and timeouts; map errors to ours."""
        for attempt in range(1, self.attempts + 1):
            try:
                return op(self._redis)
            except redis.AuthenticationError as exc:
                raise RegistryUnavailable(
                    f"Redis at {self.url} refused the credentials ({what}): {self._scrub(str(exc))}; "
                    "check the user name and password in the registry URL"
                ) from None
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                if attempt == self.attempts:
                    raise RegistryUnavailable(
                        f"Redis at {self.url} unreachable after {attempt} attempts ({what}): "
                        f"{type(exc).__name__}: {self._scrub(str(exc))}"
                    ) from None
                time.sleep(self.backoff * 2 ** (attempt - 1))
            except redis.exceptions.NoPermissionError as exc:
                raise ConfigError(
                    f"Redis user of {self.url} may not {what}: {self._scrub(str(exc))}; grant it the "
                    f"keys '{self.prefix}:*' (ACL ~{self.prefix}:*) or change the prefix"
                ) from None
            except redis.RedisError as exc:
                raise RegistryUnavailable(
                    f"Redis at {self.url} failed to {what}: {type(exc).__name__}: {self._scrub(str(exc))}"
                ) from None
        raise AssertionError("unreachable")

    def ping(self) -> None:
        """Raise ``RegistryUnavailable`` unless Redis answers."""
        self._call("ping", lambda r: r.ping())

    def _put_once(self, key: str, data: bytes, what: str) -> None:
        if self._call(what, lambda r: r.set(key, data, nx=True)):
            return
        if self._call(what, lambda r: r.get(key)) != data:
            raise CheckpointError(f"{key} already exists with other content; versions are immutable")

    def _get(self, key: str, model: str, version: int, what: str) -> bytes:
        data = self._call(what, lambda r: r.get(key))
        if data is None:
            raise UnknownVersion(f"model {model!r} has no version {version} in {self!r}")
        return data

    def put_blob(self, model: str, version: int, blob: bytes) -> None:
        """SET NX the checkpoint of ``version``."""
        self._put_once(self.key(model, version, "blob"), bytes(blob), "write a checkpoint")

    def get_blob(self, model: str, version: int) -> bytes:
        """The checkpoint bytes; ``UnknownVersion`` if absent."""
        return self._get(self.key(model, version, "blob"), model, version, "read a checkpoint")

    def put_meta(self, model: str, version: int, meta: dict[str, Any]) -> None:
        """SET NX the metadata, then list the version."""
        self._put_once(self.key(model, version, "meta"), canonical_json(meta), "write metadata")
        versions = self.key(model, "versions")
        self._call("list a version", lambda r: r.zadd(versions, {str(version): version}))

    def get_meta(self, model: str, version: int) -> dict[str, Any]:
        """The metadata; ``UnknownVersion`` if absent."""
        return json.loads(self._get(self.key(model, version, "meta"), model, version, "read metadata"))

    def list_versions(self, model: str) -> list[int]:
        """Versions with metadata, ascending."""
        members = self._call("list versions", lambda r: r.zrange(self.key(model, "versions"), 0, -1))
        return [int(m) for m in members]

    def next_version(self, model: str) -> int:
        """INCR the model's counter."""
        return int(self._call("allocate a version", lambda r: r.incr(self.key(model, "next"))))

    def append_audit(self, model: str, record: dict[str, Any]) -> None:
        """RPUSH one JSON record."""
        line = canonical_json(record)
        self._call("append to the audit log", lambda r: r.rpush(self.key(model, "audit"), line))

    def read_audit(self, model: str) -> list[dict[str, Any]]:
        """The audit records, oldest first."""
        lines = self._call("read the audit log", lambda r: r.lrange(self.key(model, "audit"), 0, -1))
        return [json.loads(line) for line in lines]

    def set_pointer(self, model: str, name: str, version: int) -> None:
        """HSET ``name`` to ``version``."""
        check_name(name, "pointer")
        check_version(version)
        self._call("set a pointer", lambda r: r.hset(self.key(model, "pointers"), name, version))

    def get_pointer(self, model: str, name: str) -> int | None:
        """The version ``name`` points at, or ``None``."""
        check_name(name, "pointer")
        value = self._call("read a pointer", lambda r: r.hget(self.key(model, "pointers"), name))
        return None if value is None else int(value)
