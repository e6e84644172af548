"""``riverrun gateway``: HTTP ingest and serving, a faust-streaming app in a process of its own.

::

    POST /events, /labels        one JSON record or a JSON array of them; validated by the flow's
                                 decoders; 202 once Kafka acknowledged every record, 400/413 with
                                 the dead-letter ``reason`` of each refused record (nothing of a
                                 refused batch is published), 503 when Kafka does not acknowledge
    GET  /predictions/{entity}   the entity's latest prediction of each model (``?model=NAME``:
                                 that model's), from the online store; 404 when unknown
    GET  /features/{entity}      the entity's latest feature vector, from the online store
    GET  /models                 the registry: versions per model (503 without a registry key)
    GET  /healthz                Kafka (producer) and Redis reachable, topics present; open to
                                 anyone (status only), the details and counters with a read token

Every route but /healthz needs ``Authorization: Bearer TOKEN`` (``[gateway] auth = "token"``, the
default; ``serving.auth``): scope ``ingest`` for the POSTs, ``read`` for the GETs; 401 with
``WWW-Authenticate: Bearer`` without a known token, 403 with a token lacking the scope.
``auth = "none"`` opens every route and is logged as a warning at start.

A Faust agent copies the predictions topic into the online store (latest prediction per entity
and model, with the store's TTL), in batches with one Redis pipeline each; the flow writes the
feature vectors (``online_store.FeatureStoreSink``). Records are published with the keys the
flow expects: events by entity, labels by event id.

Publishing goes through confluent-kafka (librdkafka; ``[gateway] producer = "confluent"``, the
default) with a thread serving delivery reports, or through Faust's own aiokafka producer
(``"faust"``); either way a POST returns only after the broker acknowledged (``acks=all``).
``benchmarks/gateway_load.py`` measures both.

>>> records, errors = parse_records("event", b'{"event_id": "e1", "entity": "u1", "ts": 0, "features": {}}')
>>> [(r.entity, payload[:13]) for r, payload in records], errors
([('u1', b'{"event_id": ')], [])
>>> parse_records("label", b'[{"event_id": "e1", "label": true, "ts": 0}, {"event_id": "e2"}]')[1]
[{'index': 1, 'reason': 'validation', 'error': 'invalid label: label: Field required; ts: Field required'}]
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from riverrun.schemas import DEFAULT_MAX_BYTES, DeadLetter, Event, Label, decode_event, decode_label
from riverrun.streams.settings import Settings

log = logging.getLogger(__name__)


# -- validation ----------------------------------------------------------------------------------


def parse_records(
    kind: str, body: bytes, max_bytes: int = DEFAULT_MAX_BYTES, max_batch: int = 1000
) -> tuple[list[tuple[Event | Label, bytes]], list[dict[str, Any]]]:
    """A request body (one JSON object, or a JSON array of them) -> (records with the bytes to
    publish, refusals ``{index, reason, error}``), judged as the flow's decoders judge them. A
    single object is published as sent; array items as compact JSON."""
    decode = decode_event if kind == "event" else decode_label
    if body.lstrip()[:1] != b"[":
        record = decode(body, max_bytes=max_bytes)
        if isinstance(record, DeadLetter):
            return [], [{"index": 0, "reason": record.reason, "error": record.error}]
        return [(record, body)], []
    try:
        items = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        return [], [{"index": None, "reason": "invalid_json", "error": f"invalid JSON array: {exc}"}]
    if not items:
        return [], [{"index": None, "reason": "empty", "error": f"empty array: expected {kind} records"}]
    if len(items) > max_batch:
        error = f"{len(items)} records in one request, over the limit of {max_batch}: split the batch"
        return [], [{"index": None, "reason": "oversize", "error": error}]
    records, errors = [], []
    for index, item in enumerate(items):
        payload = orjson.dumps(item)
        record = decode(payload, max_bytes=max_bytes)
        if isinstance(record, DeadLetter):
            errors.append({"index": index, "reason": record.reason, "error": record.error})
        else:
            records.append((record, payload))
    return records, errors


def key_of(record: Event | Label) -> bytes:
    """The Kafka key the flow expects: events by entity, labels by event id."""
    return (record.entity if isinstance(record, Event) else record.event_id).encode()


# -- the gateway's state and handlers ------------------------------------------------------------


@dataclass
class Counters:
    """What the gateway did since it started (served by /healthz)."""

    published: dict[str, int] = field(default_factory=lambda: {"event": 0, "label": 0})
    refused: dict[str, int] = field(default_factory=lambda: {"event": 0, "label": 0})
    unavailable: int = 0
    predictions_stored: int = 0
    predictions_skipped: int = 0
    store_retries: int = 0


class Gateway:
    """The handlers, independent of Faust's view classes (``build_app`` wires them)."""

    def __init__(self, settings: Settings, publisher: Any, redis_client: Any):
        self.settings = settings
        self.publisher = publisher
        self.redis = redis_client
        self.prefix = settings.online_store.key_prefix
        self.ttl_ms = max(1, round(settings.online_store.ttl_seconds * 1000))
        self.topics = {"event": settings.topics.events, "label": settings.topics.labels}
        self.counters = Counters()
        self._registry: Any = None

    async def ingest(self, kind: str, body: bytes) -> tuple[int, dict]:
        """POST /events, /labels -> (status, JSON body)."""
        g = self.settings.gateway
        records, errors = parse_records(kind, body, self.settings.flow.max_payload_bytes, g.max_batch)
        if errors:
            self.counters.refused[kind] += 1
            reasons = {e["reason"] for e in errors}
            status = 413 if reasons == {"oversize"} else 400
            total = len(records) + len(errors) if errors[0]["index"] is not None else None
            summary = errors[0]["error"] if len(errors) == 1 else f"{len(errors)} of {total} records refused"
            return status, {
                "error": summary + ("; nothing was published" if total and total > 1 else ""),
                "reason": errors[0]["reason"],
                "errors": errors,
            }
        topic = self.topics[kind]
        try:
            offsets = await self.publisher.publish(topic, [(key_of(r), payload) for r, payload in records])
        except Exception as exc:  # DeliveryError, a timeout, a refusal: never a 500
            self.counters.unavailable += 1
            log.warning("gateway: publishing %d %ss to %s failed: %s", len(records), kind, topic, exc)
            error = f"Kafka did not acknowledge the {kind}s ({error_text(exc)}); retry later"
            return 503, {"error": error, "reason": "unavailable"}
        self.counters.published[kind] += len(records)
        return 202, {"accepted": len(records), "topic": topic, "offsets": offsets}

    async def features(self, entity: str) -> tuple[int, dict]:
        """GET /features/{entity}: the latest feature vector the flow stored."""
        from riverrun.streams.serving.online_store import alatest_features

        try:
            record = await alatest_features(self.redis, self.prefix, entity)
        except Exception as exc:  # Redis down or refusing: 503, never a 500
            return 503, {"error": f"online store unavailable: {error_text(exc)}", "reason": "unavailable"}
        if record is None:
            return 404, {"error": f"no features of entity {entity!r} in the online store", "entity": entity}
        return 200, record

    async def predictions(self, entity: str, model: str | None) -> tuple[int, dict]:
        """GET /predictions/{entity}: the latest prediction of each model (or of ``model``)."""
        from riverrun.streams.serving.online_store import alatest_predictions, newest_prediction

        try:
            by_model = await alatest_predictions(self.redis, self.prefix, entity)
        except Exception as exc:
            return 503, {"error": f"online store unavailable: {error_text(exc)}", "reason": "unavailable"}
        if model is not None:
            if model not in by_model:
                return 404, {"error": f"no prediction of model {model!r} for {entity!r}", "entity": entity}
            return 200, by_model[model]
        if not by_model:
            return 404, {"error": f"no prediction for entity {entity!r}", "entity": entity}
        return 200, {"entity": entity, "latest": newest_prediction(by_model), "models": by_model}

    async def store_predictions(self, payloads: list[bytes]) -> None:
        """The agent's batch -> the online store (retried with backoff while Redis is down)."""
        import redis

        from riverrun.streams.serving.online_store import prediction_entry, queue_writes

        latest, stored = {}, 0
        for payload in payloads:
            entry = prediction_entry(payload, self.prefix)
            if entry is None:
                self.counters.predictions_skipped += 1
            else:
                latest[entry[:2]] = entry  # one write per (entity, model): the last one
                stored += 1
        delay = 0.5
        while latest:
            pipe = self.redis.pipeline(transaction=False)
            queue_writes(pipe, list(latest.values()), self.ttl_ms)
            try:
                results = await pipe.execute(raise_on_error=False)
            except (redis.RedisError, OSError) as exc:
                self.counters.store_retries += 1
                log.warning("gateway: storing predictions failed (retrying in %.1fs): %s", delay, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
                continue
            refused = [r for r in results if isinstance(r, Exception)]
            if refused:  # e.g. a key of another type under the prefix: refused for good
                log.error("gateway: Redis refused %d prediction writes: %s", len(refused), refused[0])
            self.counters.predictions_stored += stored
            return

    async def models(self) -> tuple[int, dict]:
        from riverrun.registry.redis_store import redact_url

        opener = self.settings.registry.opener()
        url = self.settings.registry.url
        where = redact_url(url) if "://" in url else url
        if opener is None:
            error = (
                "no registry key configured: set RIVERRUN_REGISTRY__KEY (the key the flow signs "
                "its checkpoints with) where the gateway runs"
            )
            return 503, {"error": error, "reason": "no_registry_key", "registry": where}
        loop = asyncio.get_running_loop()
        try:
            models = await loop.run_in_executor(None, self._registry_summary, opener)
        except Exception as exc:
            return 503, {"error": f"registry unavailable: {exc}", "reason": "unavailable", "registry": where}
        return 200, {"registry": where, "models": models}

    def _registry_summary(self, opener: Callable[[], Any]) -> dict[str, Any]:
        from riverrun.errors import CheckpointError

        if self._registry is None:
            self._registry = opener()
        registry = self._registry
        names = {m.name for m in self.settings.flow.models} | _stored_models(registry.store)
        out: dict[str, Any] = {}
        for name in sorted(names):
            try:
                versions = [v.to_dict() for v in registry.versions(name)]
                champion = registry.get_pointer(name, "champion")
            except (CheckpointError, ValueError) as exc:
                out[name] = {"error": str(exc)}
                continue
            latest = versions[-1]["version"] if versions else None
            out[name] = {"count": len(versions), "latest": latest, "champion": champion, "versions": versions}
        return out

    async def health(self, detail: bool = True) -> tuple[int, dict]:
        """GET /healthz: Kafka (the producer's broker, and the topics) and Redis, checked at once.
        Without ``detail`` (a caller without a read token) only ``ok``/``failing`` per service:
        no error texts (hosts, topic names) and no counters."""
        needed = [*self.topics.values()]
        if self.settings.gateway.consume_predictions:
            needed.append(self.settings.topics.predictions)
        kafka, pong = await asyncio.gather(
            asyncio.wait_for(self.publisher.check(), 3.0),
            asyncio.wait_for(self.redis.ping(), 3.0),
            return_exceptions=True,
        )
        body: dict[str, Any] = {}
        if isinstance(kafka, BaseException):
            body["kafka"] = f"unreachable: {error_text(kafka)}"
        else:
            missing = sorted(set(needed) - set(kafka))
            body["kafka"] = f"missing topics {missing}" if missing else "ok"
        redis_down = isinstance(pong, BaseException)
        body["redis"] = f"unreachable: {error_text(pong)}" if redis_down else "ok"
        ok = body["kafka"] == body["redis"] == "ok"
        body["status"] = "ok" if ok else "degraded"
        if not detail:
            brief = {k: "ok" if body[k] == "ok" else "failing" for k in ("kafka", "redis")}
            return (200 if ok else 503), {"status": body["status"], **brief}
        body["counters"] = vars(self.counters)
        return (200 if ok else 503), body


def error_text(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "no answer in time"
    args = getattr(exc, "args", ())
    if args and hasattr(args[0], "str"):  # a KafkaException: its KafkaError's text
        return args[0].str()
    return str(exc) or type(exc).__name__


def _stored_models(store: Any) -> set[str]:
    """Model names a registry store holds (a directory per model, or Redis keys)."""
    from riverrun.registry.names import _NAME

    directory = getattr(store, "directory", None)
    if directory is not None:
        if not directory.is_dir():
            return set()
        return {p.name for p in directory.iterdir() if p.is_dir() and _NAME.fullmatch(p.name)}
    client, prefix = getattr(store, "_redis", None), getattr(store, "prefix", None)
    if client is None or prefix is None:
        return set()
    head, tail = f"{prefix}:model:", ":versions"
    keys = (k.decode() for k in client.scan_iter(match=f"{head}*{tail}", count=500))
    return {k[len(head) : -len(tail)] for k in keys}
