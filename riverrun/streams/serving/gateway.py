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

from riverrun.errors import ConfigError
from riverrun.schemas import DeadLetter, Event, Label, decode_event, decode_label
from riverrun.streams.kafka.publishers import ConfluentPublisher, FaustPublisher
from riverrun.streams.serving.auth import Scope, Tokens, parse_grants
from riverrun.streams.settings import Settings

log = logging.getLogger(__name__)


# -- validation ----------------------------------------------------------------------------------


def parse_records(
    kind: str, body: bytes, max_bytes: int = 64 * 1024, max_batch: int = 1000
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
            error = f"Kafka did not acknowledge the {kind}s ({_text(exc)}); retry later"
            return 503, {"error": error, "reason": "unavailable"}
        self.counters.published[kind] += len(records)
        return 202, {"accepted": len(records), "topic": topic, "offsets": offsets}

    async def features(self, entity: str) -> tuple[int, dict]:
        """GET /features/{entity}: the latest feature vector the flow stored."""
        from riverrun.streams.serving.online_store import alatest_features

        try:
            record = await alatest_features(self.redis, self.prefix, entity)
        except Exception as exc:  # Redis down or refusing: 503, never a 500
            return 503, {"error": f"online store unavailable: {_text(exc)}", "reason": "unavailable"}
        if record is None:
            return 404, {"error": f"no features of entity {entity!r} in the online store", "entity": entity}
        return 200, record

    async def predictions(self, entity: str, model: str | None) -> tuple[int, dict]:
        """GET /predictions/{entity}: the latest prediction of each model (or of ``model``)."""
        from riverrun.streams.serving.online_store import alatest_predictions, newest_prediction

        try:
            by_model = await alatest_predictions(self.redis, self.prefix, entity)
        except Exception as exc:
            return 503, {"error": f"online store unavailable: {_text(exc)}", "reason": "unavailable"}
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
            body["kafka"] = f"unreachable: {_text(kafka)}"
        else:
            missing = sorted(set(needed) - set(kafka))
            body["kafka"] = f"missing topics {missing}" if missing else "ok"
        redis_down = isinstance(pong, BaseException)
        body["redis"] = f"unreachable: {_text(pong)}" if redis_down else "ok"
        ok = body["kafka"] == body["redis"] == "ok"
        body["status"] = "ok" if ok else "degraded"
        if not detail:
            brief = {k: "ok" if body[k] == "ok" else "failing" for k in ("kafka", "redis")}
            return (200 if ok else 503), {"status": body["status"], **brief}
        body["counters"] = vars(self.counters)
        return (200 if ok else 503), body


def _text(exc: BaseException) -> str:
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


# -- start-up checks: the extra, the codecs, the tokens -------------------------------------------

_INSTALL = "pip install 'riverrun[gateway]' (from a clone: pip install -e '.[gateway]')"


def require_extra() -> None:
    """Faust and every codec the flow's producers may use, or a ``ConfigError`` saying what to
    install. aiokafka reads lz4, snappy and zstd batches only with ``cramjam``; without it the
    first lz4 batch of the flow's predictions (``producer_config``: lz4) would stop the worker."""
    try:
        import faust  # noqa: F401
        from aiokafka import codec
    except ModuleNotFoundError as exc:
        raise ConfigError(
            f"riverrun gateway needs the gateway extra ({exc.name} is not installed): {_INSTALL}"
        ) from exc
    missing = [
        name
        for name, present in (("lz4", codec.has_lz4), ("snappy", codec.has_snappy), ("zstd", codec.has_zstd))
        if not present()
    ]
    if missing:
        raise ConfigError(
            f"the gateway cannot read {'/'.join(missing)}-compressed records (the flow's producers "
            f"compress with lz4): aiokafka needs cramjam. {_INSTALL}, or pip install cramjam"
        )


_NO_TOKENS = (
    '[gateway] auth = "token" but no token is configured. Make one with `riverrun gateway token '
    "--scope ingest,read [--name NAME]` (it prints the token for the client and the grant line "
    "'sha256:... SCOPES NAME'), then put the line in [gateway] tokens_file or RIVERRUN_GATEWAY__TOKENS "
    "(';' between grants). Only on a trusted network: [gateway] auth = \"none\""
)


def load_tokens(settings: Settings) -> Tokens | None:
    """The configured grants (``tokens`` and ``tokens_file``), None with ``auth = "none"``; a
    ``ConfigError`` saying how to make a token when auth is on and none is configured."""
    g = settings.gateway
    if g.auth == "none":
        return None
    grants = parse_grants(g.tokens, "[gateway] tokens")
    if g.tokens_file is not None:
        try:
            text = g.tokens_file.read_text()
        except OSError as exc:
            raise ConfigError(
                f"[gateway] tokens_file {g.tokens_file}: {exc.strerror or exc}; {_NO_TOKENS}"
            ) from exc
        grants += parse_grants(text, str(g.tokens_file))
    if not grants:
        raise ConfigError(_NO_TOKENS)
    return Tokens(grants)


# -- the Faust app -------------------------------------------------------------------------------


def _credentials(settings: Settings) -> Any:
    """Faust (aiokafka) credentials from ``[kafka]``; ``extra`` librdkafka properties do not apply."""
    import ssl

    import faust

    k = settings.kafka
    context = None
    if k.security_protocol in ("SSL", "SASL_SSL"):
        context = ssl.create_default_context(cafile=k.ssl_ca_location)
    if k.security_protocol.startswith("SASL"):
        password = k.sasl_password.get_secret_value() if k.sasl_password else None
        mechanism = k.sasl_mechanism or "PLAIN"
        return faust.SASLCredentials(
            username=k.sasl_username, password=password, ssl_context=context, mechanism=mechanism
        )
    return faust.SSLCredentials(context) if context is not None else None


def build_app(settings: Settings) -> tuple[Any, Gateway]:
    """The Faust app (views, the predictions agent) and the ``Gateway`` behind it; each view
    checks its scope first (``load_tokens``). Without ``consume_predictions`` the app starts
    producer-only: no consumer (Faust cannot start one without a topic)."""
    import faust
    import redis.asyncio as aredis
    from faust.web import View

    g = settings.gateway
    app = faust.App(
        g.app_id,
        broker=[f"kafka://{server}" for server in settings.kafka.bootstrap_servers.split(",")],
        broker_credentials=_credentials(settings),
        store="memory://",
        autodiscover=False,
        web_bind=g.address,
        web_host=g.address,
        web_port=g.port,
        web_application_options={"client_max_size": g.max_body_bytes},
        web_stats_enabled=False,
        web_graph_enabled=False,
        web_router_enabled=False,
        web_tables_enabled=False,
        web_metrics_enabled=False,
        topic_disable_leader=True,
        topic_allow_declare=False,  # the gateway creates no topics: `riverrun topics create` does
        consumer_auto_offset_reset=g.predictions_from,
        producer_acks=-1,
    )
    conf = settings.kafka.client_config()
    if g.producer == "faust":
        publisher: Any = FaustPublisher(app, conf, g.ack_timeout_seconds)
    else:
        publisher = ConfluentPublisher(conf, g.ack_timeout_seconds, g.linger_ms)
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff

    client = aredis.Redis.from_url(
        settings.redis_url.get_secret_value(),
        socket_timeout=2.0,
        socket_connect_timeout=2.0,
        retry=Retry(NoBackoff(), 1),  # Redis down: a quick 503, not seconds of retries
    )
    gateway = Gateway(settings, publisher, client)
    tokens = load_tokens(settings)
    if not g.consume_predictions:
        app.producer_only = True  # web and producer only: Faust starts no consumer

    def respond(view: View, status: int, body: dict, headers: dict | None = None) -> Any:
        content = orjson.dumps(body)
        return view.bytes(content, content_type="application/json", status=status, headers=headers)

    def refused(view: View, request: Any, scope: Scope) -> Any:
        """None when the request's token grants ``scope`` (or auth is off); else the 401/403."""
        if tokens is None:
            return None
        status = tokens.check(request.headers.get("Authorization"), scope)
        if status == 401:
            body = {"error": "a bearer token is required", "reason": "unauthorized"}
            return respond(view, 401, body, {"WWW-Authenticate": 'Bearer realm="riverrun"'})
        if status == 403:
            return respond(view, 403, {"error": "this token may not do that", "reason": "forbidden"})
        return None

    async def read_body(request: Any) -> bytes | None:
        from aiohttp.web import HTTPRequestEntityTooLarge

        try:
            return await request.read()
        except HTTPRequestEntityTooLarge:
            return None

    def ingest_view(kind: str) -> type[View]:
        class Ingest(View):
            async def post(self, request: Any) -> Any:
                if (denied := refused(self, request, "ingest")) is not None:
                    return denied
                body = await read_body(request)
                if body is None:
                    error = f"request body over {g.max_body_bytes} bytes ([gateway] max_body_bytes)"
                    return respond(self, 413, {"error": error, "reason": "oversize"})
                return respond(self, *await gateway.ingest(kind, body))

        Ingest.__name__ = f"ingest_{kind}s"
        return Ingest

    app.page("/events", name="events")(ingest_view("event"))
    app.page("/labels", name="labels")(ingest_view("label"))

    @app.page("/predictions/{entity}", name="predictions")
    class Predictions(View):
        async def get(self, request: Any, entity: str) -> Any:
            if (denied := refused(self, request, "read")) is not None:
                return denied
            return respond(self, *await gateway.predictions(entity, request.query.get("model")))

    @app.page("/features/{entity}", name="features")
    class Features(View):
        async def get(self, request: Any, entity: str) -> Any:
            if (denied := refused(self, request, "read")) is not None:
                return denied
            return respond(self, *await gateway.features(entity))

    @app.page("/models", name="models")
    class Models(View):
        async def get(self, request: Any) -> Any:
            if (denied := refused(self, request, "read")) is not None:
                return denied
            return respond(self, *await gateway.models())

    @app.page("/healthz", name="healthz")
    class Health(View):
        async def get(self, request: Any) -> Any:
            detail = tokens is None or tokens.check(request.headers.get("Authorization"), "read") == 200
            return respond(self, *await gateway.health(detail))

    if g.consume_predictions:
        topic = app.topic(
            settings.topics.predictions,
            key_type=bytes,
            value_type=bytes,
            key_serializer="raw",
            value_serializer="raw",
        )

        @app.agent(topic, name="store_predictions")
        async def store_predictions(stream: Any) -> None:
            async for payloads in stream.take(500, within=0.05):
                await gateway.store_predictions(payloads)

    return app, gateway


def _check_port(address: str, port: int) -> None:
    import socket

    with socket.socket() as sock:
        try:
            sock.bind((address, port))
        except OSError as exc:
            raise ConfigError(
                f"cannot serve the gateway on {address}:{port} ({exc.strerror or exc}): another process "
                "holds the port. Set [gateway] port (RIVERRUN_GATEWAY__PORT, or --port) to a free one"
            ) from exc


def run_gateway(settings: Settings, loglevel: str = "WARNING") -> None:
    """Run the gateway until SIGTERM/SIGINT (Faust's worker: a process of its own, never in the
    same process as a Bytewax flow). Checks the extra (Faust, the codecs), the tokens, the port,
    the broker and the topics first."""
    require_extra()
    import faust

    from riverrun.streams.kafka.admin import require_topics

    g = settings.gateway
    load_tokens(settings)  # a missing token is a ConfigError before anything starts
    _check_port(g.address, g.port)
    t = settings.topics
    require_topics(settings, [t.events, t.labels] + ([t.predictions] if g.consume_predictions else []))
    app, gateway = build_app(settings)
    if g.auth == "none":
        log.warning(
            'riverrun gateway: [gateway] auth = "none": ANYONE who reaches %s:%d may publish events '
            "and labels and read predictions, features and the registry. Use it only on a trusted "
            'network; set auth = "token" and make tokens with `riverrun gateway token`',
            g.address,
            g.port,
        )
    log.warning(
        "riverrun gateway: http://%s:%d (auth %s; producer %s; predictions agent %s; online store %s)",
        g.address,
        g.port,
        f"token, {len(load_tokens(settings) or ())} grants" if g.auth == "token" else "NONE",
        g.producer,
        "on" if g.consume_predictions else "off",
        settings.online_store.key_prefix,
    )
    worker = faust.Worker(app, loglevel=loglevel, quiet=True, redirect_stdouts=False)
    worker.spinner = None  # a terminal spinner: escape codes in every log file
    try:
        worker.execute_from_commandline()
    finally:
        gateway.publisher.close()
