"""The online store: the latest feature vector and the latest predictions of each entity, in Redis.

Keys (``prefix`` is ``[online_store] key_prefix``), each expiring ``ttl_seconds`` after its last
write::

    {prefix}:features:{entity}     JSON {"entity", "event_id", "ts", "features"}   (SET PX)
    {prefix}:predictions:{entity}  hash: model -> Prediction JSON                  (HSET, PEXPIRE)

Writers: ``FeatureStoreSink`` in the flow (``FeaturedEvent`` items; ``ServedPrediction`` and
``Prediction`` items too) through a ``StoreWriter`` thread, and the gateway's agent, which copies
the predictions topic. Readers: ``latest_features`` / ``latest_predictions`` (``redis.Redis``)
and their ``a``-prefixed twins (``redis.asyncio.Redis``), used by the gateway.

>>> from datetime import UTC, datetime
>>> from riverrun.schemas import Event
>>> from riverrun.streams.core.items import FeaturedEvent
>>> event = Event(event_id="e1", entity="u1", ts=datetime(2024, 1, 1, tzinfo=UTC), features={"a": 1.0})
>>> key, field, value = entry_of(FeaturedEvent(event, {"a": 1.0, "count": 1}, 0, 0), "demo")
>>> key, field
('demo:features:u1', None)
>>> orjson.loads(value)
{'entity': 'u1', 'event_id': 'e1', 'ts': '2024-01-01T00:00:00+00:00', 'features': {'a': 1.0, 'count': 1}}
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Any

import orjson
import redis
from bytewax.outputs import DynamicSink, StatelessSinkPartition
from redis.backoff import NoBackoff
from redis.retry import Retry

from riverrun.schemas import Prediction
from riverrun.streams.core.items import FeaturedEvent, ServedPrediction
from riverrun.streams.settings import ONLINE_STORE_TTL_SECONDS

if TYPE_CHECKING:
    from riverrun.streams.settings import Settings

log = logging.getLogger(__name__)

#: (Redis key, hash field or None for a plain string key, value)
Entry = tuple[str, str | None, bytes]


def features_key(prefix: str, entity: str) -> str:
    return f"{prefix}:features:{entity}"


def predictions_key(prefix: str, entity: str) -> str:
    return f"{prefix}:predictions:{entity}"


def _default(value: Any) -> Any:
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    return str(value)


def entry_of(item: FeaturedEvent | ServedPrediction | Prediction, prefix: str) -> Entry:
    """Where ``item`` goes in the store and its bytes: a feature vector replaces the entity's
    previous one; a prediction replaces the entity's previous one *of the same model*."""
    if isinstance(item, FeaturedEvent):
        e = item.event
        record = {"entity": e.entity, "event_id": e.event_id, "ts": e.ts, "features": item.x}
        return features_key(prefix, e.entity), None, orjson.dumps(record, default=_default)
    if isinstance(item, ServedPrediction):
        return predictions_key(prefix, item.entity), item.model, item.to_json()
    if isinstance(item, Prediction):
        return predictions_key(prefix, item.entity), item.model, item.model_dump_json().encode()
    raise TypeError(f"the online store keeps FeaturedEvent and predictions, not {type(item).__name__}")


def prediction_entry(payload: bytes, prefix: str) -> Entry | None:
    """The store entry of a predictions-topic message (its bytes as published), or None
    (logged) if it is not a ``Prediction``: garbage on the topic never lands in the store."""
    from pydantic import ValidationError

    try:
        record = Prediction.model_validate_json(payload)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(map(str, first["loc"])) or "record"
        log.warning("online store: skipped a message that is not a Prediction (%s: %s)", where, first["msg"])
        return None
    return predictions_key(prefix, record.entity), record.model, bytes(payload)


def queue_writes(pipe: Any, entries: list[Entry], ttl_ms: int) -> None:
    """Queue ``entries`` on a Redis pipeline (sync or asyncio): one SET, or HSET + PEXPIRE."""
    for key, field, value in entries:
        if field is None:
            pipe.set(key, value, px=ttl_ms)
        else:
            pipe.hset(key, field, value)
            pipe.pexpire(key, ttl_ms)


def connect(url: str, timeout: float = 2.0) -> redis.Redis:
    """A Redis client that fails fast (retries are the caller's: counted, with backoff)."""
    return redis.Redis.from_url(
        url, socket_timeout=timeout, socket_connect_timeout=timeout, retry=Retry(NoBackoff(), 0)
    )


# -- readers -----------------------------------------------------------------------------------


def _decode_hash(raw: dict) -> dict[str, dict]:
    return {(k.decode() if isinstance(k, bytes) else k): orjson.loads(v) for k, v in sorted(raw.items())}


def latest_features(client: redis.Redis, prefix: str, entity: str) -> dict | None:
    """The entity's latest feature vector record, or None (never seen, or expired)."""
    raw = client.get(features_key(prefix, entity))
    return orjson.loads(raw) if raw else None


def latest_predictions(client: redis.Redis, prefix: str, entity: str) -> dict[str, dict]:
    """The entity's latest prediction of every model: {model: Prediction as a dict}."""
    return _decode_hash(client.hgetall(predictions_key(prefix, entity)))


async def alatest_features(client: Any, prefix: str, entity: str) -> dict | None:
    """``latest_features`` on a ``redis.asyncio.Redis``."""
    raw = await client.get(features_key(prefix, entity))
    return orjson.loads(raw) if raw else None


async def alatest_predictions(client: Any, prefix: str, entity: str) -> dict[str, dict]:
    """``latest_predictions`` on a ``redis.asyncio.Redis``."""
    return _decode_hash(await client.hgetall(predictions_key(prefix, entity)))


def newest_prediction(predictions: dict[str, dict]) -> dict | None:
    """The most recently served of ``latest_predictions``' values (None if empty)."""
    if not predictions:
        return None
    return max(predictions.values(), key=lambda p: (p.get("served_at") or "", p.get("model") or ""))


# -- the writer --------------------------------------------------------------------------------


class StoreWriter:
    """Writes store entries to Redis from a thread of its own, in pipelined batches, so the
    caller (a Bytewax sink partition) never waits on Redis and never fails because of it.

    ``put`` only enqueues: entries are coalesced per slot (entity, and model for predictions),
    so a slot waits with its newest value only (``coalesced`` counts the replaced ones). The
    thread waits up to ``flush_interval`` seconds to fill a batch of ``batch_size``, then writes
    it with one pipeline. When Redis fails, the batch goes back to the front of the queue (unless
    a newer value for its slot arrived meanwhile) and is retried with exponential backoff from
    ``retry_initial`` doubling up to ``retry_max`` seconds (``retries``, logged). At most
    ``max_pending`` slots wait (plus the batch being written); past that the least recently
    updated ones are dropped (``dropped``): the store holds the latest values, which keep
    coming. ``close()`` writes what is pending (for at most ``close_timeout`` seconds).

    Counters for metrics: ``written``, ``retries``, ``dropped``, ``coalesced``, ``pending``.

    Limit: the store is a cache of the stream, not its record: after a crash, entries still
    pending are gone (the flow re-emits those after its last snapshot; later events refresh the
    others).
    """

    def __init__(
        self,
        client: redis.Redis,
        ttl_seconds: float,
        batch_size: int = 500,
        flush_interval: float = 0.05,
        max_pending: int = 100_000,
        retry_initial: float = 0.5,
        retry_max: float = 30.0,
        close_timeout: float = 10.0,
    ):
        self.client = client
        self.ttl_ms = max(1, round(ttl_seconds * 1000))
        self.batch_size, self.flush_interval, self.max_pending = batch_size, flush_interval, max_pending
        self.retry_initial, self.retry_max, self.close_timeout = retry_initial, retry_max, close_timeout
        self._pending: dict[tuple[str, str | None], bytes] = {}
        self._in_flight = 0
        self._cond = threading.Condition()
        self._close_by: float | None = None
        self.written = self.retries = self.dropped = self.coalesced = self.failed = 0
        self._thread = threading.Thread(target=self._run, name="riverrun-online-store", daemon=True)
        self._thread.start()

    @property
    def pending(self) -> int:
        """Entries waiting to be written, including the batch being written."""
        return len(self._pending) + self._in_flight

    def stats(self) -> dict[str, int]:
        """The counters, read together (consistent with each other)."""
        with self._cond:
            names = ("written", "retries", "dropped", "coalesced", "failed", "pending")
            return {name: getattr(self, name) for name in names}

    def put(self, entries: list[Entry]) -> None:
        """Enqueue entries (never blocks on Redis)."""
        with self._cond:
            pending = self._pending
            for key, field, value in entries:
                slot = (key, field)
                if pending.pop(slot, None) is not None:
                    self.coalesced += 1
                pending[slot] = value  # at the end: the oldest slots are at the front
            self._trim()
            self._cond.notify()

    def _trim(self) -> None:
        over = len(self._pending) - self.max_pending
        if over > 0:
            for slot in list(self._pending)[:over]:
                del self._pending[slot]
            self.dropped += over

    def wait_written(self, timeout: float) -> bool:
        """Wait until nothing is pending; False on timeout. For callers that read back what they
        wrote (the flow's sink only ever ``close()``s, which writes what is pending)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._pending or self._in_flight:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.05))
        return True

    def close(self) -> None:
        """Write what is pending (at most ``close_timeout`` seconds), then stop."""
        with self._cond:
            self._close_by = time.monotonic() + self.close_timeout
            self._cond.notify_all()
        self._thread.join(self.close_timeout + 5)
        if self.pending:
            log.error("online store: %d entries not written at shutdown (Redis unreachable)", self.pending)
        self.client.close()

    def _take(self) -> list[tuple[tuple[str, str | None], bytes]] | None:
        """The next batch (after waiting up to flush_interval to fill it), None once closed."""
        with self._cond:
            while not self._pending and self._close_by is None:
                self._cond.wait()
            if not self._pending:
                return None
            fill_by = time.monotonic() + self.flush_interval
            while len(self._pending) < self.batch_size and self._close_by is None:
                left = fill_by - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            slots = list(self._pending)[: self.batch_size]
            batch = [(slot, self._pending.pop(slot)) for slot in slots]
            self._in_flight = len(batch)
            return batch

    def _write(self, batch: list[tuple[tuple[str, str | None], bytes]]) -> int:
        """Write one batch; the number of entries Redis accepted."""
        pipe = self.client.pipeline(transaction=False)
        queue_writes(pipe, [(key, field, value) for (key, field), value in batch], self.ttl_ms)
        results = pipe.execute(raise_on_error=False)
        errors = [r for r in results if isinstance(r, Exception)]
        if errors:  # refused for good (e.g. a key of another type under our prefix): not retried
            self.failed += min(len(errors), len(batch))
            log.error("online store: Redis refused %d writes, dropped: %s", len(errors), errors[0])
        return len(batch) - min(len(errors), len(batch))

    def _requeue(self, batch: list[tuple[tuple[str, str | None], bytes]]) -> None:
        """Put a failed batch back at the front, unless newer values for its slots arrived."""
        with self._cond:
            back = {}
            for slot, value in batch:
                if slot in self._pending:
                    self.coalesced += 1
                else:
                    back[slot] = value
            back.update(self._pending)
            self._pending = back
            self._in_flight = 0
            self._trim()

    def _run(self) -> None:
        delay = self.retry_initial
        failing_since: float | None = None
        while (batch := self._take()) is not None:
            try:
                done = self._write(batch)
            except (redis.RedisError, OSError) as exc:
                self.retries += 1
                failing_since = failing_since or time.monotonic()
                self._requeue(batch)
                log.warning(
                    "online store: Redis write failed (retry %d, %d pending, retrying in %.1fs): %s",
                    self.retries,
                    self.pending,
                    delay,
                    exc,
                )
                with self._cond:
                    if self._close_by is not None and time.monotonic() + delay > self._close_by:
                        return
                    self._cond.wait(delay)
                delay = min(delay * 2, self.retry_max)
                continue
            except Exception:  # a bug: keep the writer alive for what follows
                log.exception("online store: writing %d entries failed, dropped", len(batch))
                self.failed += len(batch)
                done = 0
            with self._cond:
                self.written += done
                self._in_flight = 0
                self._cond.notify_all()
            if failing_since is not None:
                down = time.monotonic() - failing_since
                log.warning("online store: Redis reachable again after %.1fs", down)
                failing_since = None
            delay = self.retry_initial


# -- the Bytewax sink --------------------------------------------------------------------------


class _StorePartition(StatelessSinkPartition):
    def __init__(self, writer: StoreWriter, prefix: str):
        self._writer, self._prefix = writer, prefix

    def write_batch(self, items: list) -> None:
        prefix = self._prefix
        self._writer.put([entry_of(item, prefix) for item in items])

    def close(self) -> None:
        self._writer.close()


class FeatureStoreSink(DynamicSink):
    """The online store as a Bytewax sink: ``FeaturedEvent`` items (``ServedPrediction`` and
    ``Prediction`` too) become the latest values of their entity in Redis at ``url``, written
    by one ``StoreWriter`` thread per worker; ``write_batch`` only enqueues.

    ``writers`` are this process's writers (one per worker, once the flow runs); ``stats()``
    adds up their counters for metrics.
    """

    def __init__(
        self,
        url: str,
        prefix: str = "riverrun:online",
        ttl_seconds: float = ONLINE_STORE_TTL_SECONDS,
        batch_size: int = 500,
        flush_interval: float = 0.05,
        max_pending: int = 100_000,
        retry_initial: float = 0.5,
        retry_max: float = 30.0,
        close_timeout: float = 10.0,
    ):
        self.url, self.prefix, self.ttl_seconds = url, prefix, ttl_seconds
        self.batch_size, self.flush_interval, self.max_pending = batch_size, flush_interval, max_pending
        self.retry_initial, self.retry_max, self.close_timeout = retry_initial, retry_max, close_timeout
        self.writers: list[StoreWriter] = []

    def __repr__(self) -> str:
        from riverrun.registry.redis_store import redact_url

        return f"FeatureStoreSink(url={redact_url(self.url)!r}, prefix={self.prefix!r})"

    def build(self, step_id: str, worker_index: int, worker_count: int) -> _StorePartition:
        writer = StoreWriter(
            connect(self.url),
            self.ttl_seconds,
            batch_size=self.batch_size,
            flush_interval=self.flush_interval,
            max_pending=self.max_pending,
            retry_initial=self.retry_initial,
            retry_max=self.retry_max,
            close_timeout=self.close_timeout,
        )
        self.writers.append(writer)
        return _StorePartition(writer, self.prefix)

    def stats(self) -> dict[str, int]:
        """``StoreWriter.stats`` added up over this process's writers."""
        total: dict[str, int] = {}
        for writer in self.writers:
            for name, value in writer.stats().items():
                total[name] = total.get(name, 0) + value
        return total


def online_store_sink(settings: Settings) -> FeatureStoreSink | None:
    """The flow's online-store sink per ``[online_store]`` (Redis at ``redis_url``), or None
    when it is disabled. Connects lazily: Redis down at start is retried like any outage."""
    s = settings.online_store
    if not s.enabled:
        return None
    return FeatureStoreSink(
        settings.redis_url.get_secret_value(),
        prefix=s.key_prefix,
        ttl_seconds=s.ttl_seconds,
        batch_size=s.batch_size,
        flush_interval=s.flush_interval_ms / 1000.0,
        max_pending=s.max_pending,
    )
