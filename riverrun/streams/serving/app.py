"""The gateway's process: start-up checks (the extra, aiokafka's codecs, the tokens, the port,
the broker and topics), the Faust app that serves ``gateway.Gateway``'s handlers and runs the
predictions agent, and ``run_gateway``."""

from __future__ import annotations

import logging
import socket
import ssl
from typing import Any

import orjson

from riverrun.errors import ConfigError
from riverrun.streams.kafka.publishers import ConfluentPublisher, FaustPublisher
from riverrun.streams.serving.auth import Scope, Tokens, parse_grants
from riverrun.streams.serving.gateway import Gateway
from riverrun.streams.settings import Settings

log = logging.getLogger(__name__)


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
