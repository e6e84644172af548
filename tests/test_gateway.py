"""``riverrun gateway`` on the real broker and Redis: a subprocess on a free port with topics and
a Redis key prefix of its own, and bearer tokens (one of each scope) in a tokens file. Valid
events and labels are acknowledged (202) and on their topic with the keys the flow expects;
invalid ones are refused with the dead-letter reason and never published; predictions on the
topic are served from Redis; features written by the flow's sink are served; the registry and
the health of both services are reported. The handlers are also run in-process against
unreachable services (503s, never a 500). Every route refuses a missing, a malformed, an unknown
and an out-of-scope token; /healthz stays open but says only ok/failing. A live ``riverrun run``
(default producer settings: lz4) feeds the gateway thousands of predictions;
``consume_predictions = false`` and ``auth = "none"`` start and serve."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aredis
from confluent_kafka import Producer
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from riverrun.registry import open_registry
from riverrun.schemas import Event
from riverrun.streams.core.items import FeaturedEvent
from riverrun.streams.kafka.publishers import ConfluentPublisher
from riverrun.streams.serving.auth import grant_line
from riverrun.streams.serving.gateway import Gateway
from riverrun.streams.serving.online_store import StoreWriter, connect, entry_of
from riverrun.streams.settings import Settings, load_settings
from tests.harness import ROOT
from tests.harness.flows import Flow
from tests.harness.kafka import REGISTRY_KEY, TopicReader, fresh_settings
from tests.harness.ports import free_port
from tests.harness.registry import drop_prefix

pytest_plugins = ["tests.harness.registry"]  # the redis_url fixture
pytestmark = pytest.mark.kafka

NOW = datetime.now(UTC).replace(microsecond=0)


# scopes -> (token, grant line): ingest and read, ingest only, read only
TOKENS = {s: grant_line(s.split(","), s.replace(",", "-")) for s in ("ingest,read", "ingest", "read")}
FULL = TOKENS["ingest,read"][0]


@dataclass
class Running:
    url: str
    settings: Settings
    servers: str
    proc: subprocess.Popen
    log: Path

    def exchange(
        self, method: str, path: str, body: bytes | None = None, authorization: str | None = f"Bearer {FULL}"
    ) -> tuple[int, Any, Any]:
        """(status, JSON body, headers); ``authorization`` None sends no Authorization header."""
        headers = {} if authorization is None else {"Authorization": authorization}
        request = urllib.request.Request(self.url + path, data=body, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=15) as response:
                return response.status, json.loads(response.read()), response.headers
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            try:
                return exc.code, json.loads(raw), exc.headers
            except ValueError:
                return exc.code, raw.decode(), exc.headers

    def call(
        self, method: str, path: str, body: bytes | None = None, token: str | None = FULL
    ) -> tuple[int, Any]:
        """(status, JSON body), with ``token`` (ingest and read by default; None: no header)."""
        status, content, _ = self.exchange(method, path, body, None if token is None else f"Bearer {token}")
        return status, content

    def post(self, path: str, record: Any, token: str | None = FULL) -> tuple[int, Any]:
        body = record if isinstance(record, bytes) else json.dumps(record).encode()
        return self.call("POST", path, body, token)

    def poll(self, path: str, until, timeout: float = 30.0) -> tuple[int, Any]:
        deadline = time.monotonic() + timeout
        while True:
            status, body = self.call("GET", path)
            if until(status, body) or time.monotonic() > deadline:
                return status, body
            assert self.proc.poll() is None, self.log.read_text()[-3000:]
            time.sleep(0.05)


def start_gateway(
    servers: str,
    tmp: Path,
    redis_url: str,
    extra: str = "",
    env: dict | None = None,
    config: Path | None = None,
) -> Running:
    """A gateway on fresh topics (or on those of ``config``, a ``fresh_settings`` file that gets
    the [gateway] and [online_store] tables), with the three tokens of ``TOKENS`` in a tokens
    file; ``extra`` adds [gateway] lines."""
    if config is None:
        _, config = fresh_settings(servers, tmp)
    port = free_port()
    prefix = f"rrtest-gw-{uuid.uuid4().hex[:10]}"
    tokens_file = tmp / "gateway-tokens"
    tokens_file.write_text("# test grants\n" + "\n".join(line for _, line in TOKENS.values()) + "\n")
    config.write_text(
        config.read_text()
        + f'[gateway]\nport = {port}\napp_id = "{prefix}"\npredictions_from = "earliest"\nmax_batch = 5\n'
        + f'tokens_file = "{tokens_file}"\n'
        + extra
        + f'[online_store]\nkey_prefix = "{prefix}"\nttl_seconds = 600\n'
    )
    environ = {**os.environ, "REDIS_URL": redis_url, "RIVERRUN_REGISTRY__KEY": REGISTRY_KEY, **(env or {})}
    log = tmp / "gateway.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "riverrun.streams.cli", "gateway", "-c", str(config)],
        cwd=ROOT, env=environ, stdout=log.open("wb"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    running = Running(f"http://127.0.0.1:{port}", load_settings(config), servers, proc, log)
    deadline = time.monotonic() + 60
    while True:
        try:
            if running.call("GET", "/healthz")[0] == 200:
                return running
        except (urllib.error.URLError, ConnectionError):
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"gateway did not start:\n{log.read_text()[-3000:]}")
        time.sleep(0.1)


def stop_gateway(running: Running, redis_url: str) -> None:
    running.proc.terminate()
    try:
        running.proc.wait(20)
    except subprocess.TimeoutExpired:
        running.proc.kill()
        running.proc.wait(5)
    drop_prefix(redis_url, running.settings.online_store.key_prefix)


@pytest.fixture(scope="module")
def gateway(
    kafka_servers: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Running]:
    running = start_gateway(kafka_servers, tmp_path_factory.mktemp("gateway"), redis_url)
    yield running
    stop_gateway(running, redis_url)


def event(i: int, entity: str = "u1", **fields) -> dict:
    return {"event_id": f"e{i}", "entity": entity, "ts": (NOW + timedelta(seconds=i)).isoformat(),
            "features": {"x": float(i), "kind": "a"}, **fields}  # fmt: skip


def read_topic(running: Running, topic: str, n: int) -> list:
    reader = TopicReader(running.servers, topic)
    try:
        return reader.read_until(lambda got: len(got) >= n, timeout=20)
    finally:
        reader.close()


# -- ingest --------------------------------------------------------------------------------------


def test_valid_events_and_labels_are_acknowledged_then_on_their_topics(gateway: Running) -> None:
    status, body = gateway.post("/events", event(1, "alice"))
    assert (status, body["accepted"], body["offsets"]) == (202, 1, [[0, 0]])
    status, body = gateway.post("/events", [event(2, "bob"), event(3, "alice")])
    assert (status, body["accepted"]) == (202, 2)
    batch = [
        {"event_id": "e1", "label": True, "ts": NOW.isoformat()},
        {"event_id": "e2", "label": 0, "ts": 5},
    ]
    assert gateway.post("/labels", batch)[0] == 202

    t = gateway.settings.topics
    events = read_topic(gateway, t.events, 3)
    assert [(m.key(), json.loads(m.value())["event_id"]) for m in events] == [
        (b"alice", "e1"), (b"bob", "e2"), (b"alice", "e3"),
    ]  # fmt: skip
    assert Event.model_validate_json(events[1].value()) == Event.model_validate(event(2, "bob"))
    labels = read_topic(gateway, t.labels, 2)
    assert [(m.key(), json.loads(m.value())["label"]) for m in labels] == [(b"e1", True), (b"e2", 0)]


def test_invalid_input_is_refused_with_its_dead_letter_reason_and_never_published(gateway: Running) -> None:
    cases = [
        ("/events", b"{not json", 400, "invalid_json"),
        ("/events", b"", 400, "empty"),
        ("/events", {"event_id": "x", "entity": "u"}, 400, "validation"),
        ("/events", {**event(9), "extra": 1}, 400, "validation"),
        ("/events", b'{"event_id": "x", "entity": "u", "ts": 0, "features": {"a": NaN}}', 400, "non_finite"),
        ("/events", {**event(9), "schema_version": 2}, 400, "unsupported_schema_version"),
        ("/events", event(9, ts=(NOW + timedelta(days=2)).isoformat()), 400, "future_timestamp"),
        ("/events", event(9, features={"big": "x" * 70_000}), 413, "oversize"),
        ("/labels", {"event_id": "e1", "label": None, "ts": 0}, 400, "validation"),
        ("/events", [event(10), {"event_id": "bad"}, event(11)], 400, "validation"),
        ("/events", [event(i) for i in range(6)], 413, "oversize"),  # max_batch = 5
        ("/events", [], 400, "empty"),
    ]
    for path, record, status, reason in cases:
        got, body = gateway.post(path, record)
        assert (got, body["reason"]) == (status, reason), (record, body)
        assert body["error"] and body["errors"]
    _, body = gateway.post("/events", [event(10), {"event_id": "bad"}, event(11)])
    assert [(e["index"], e["reason"]) for e in body["errors"]] == [(1, "validation")]
    assert "nothing was published" in body["error"]
    assert gateway.call("GET", "/events")[0] == 405

    # A valid marker after the refusals: everything before it on the topic came from elsewhere.
    assert gateway.post("/events", event(99, "marker"))[0] == 202
    reader = TopicReader(gateway.servers, gateway.settings.topics.events)
    try:
        got = reader.read_until(lambda ms: any(m.key() == b"marker" for m in ms), timeout=20)
    finally:
        reader.close()
    ids = [json.loads(m.value())["event_id"] for m in got]
    assert "e99" in ids and not {"e9", "e10", "e11", "x", "bad"} & set(ids), ids


# -- serving -------------------------------------------------------------------------------------


def prediction(event_id: str, entity: str, model: str, served: datetime) -> bytes:
    return json.dumps(
        {"event_id": event_id, "entity": entity, "model": model, "model_version": 1, "y_pred": True,
         "proba": {"true": 0.8, "false": 0.2}, "ts": NOW.isoformat(), "served_at": served.isoformat()}
    ).encode()  # fmt: skip


def test_predictions_on_the_topic_are_served_latest_per_model(gateway: Running) -> None:
    producer = Producer({"bootstrap.servers": gateway.servers})
    topic = gateway.settings.topics.predictions
    for value in (
        prediction("p1", "carol", "lr", NOW),
        b"not a prediction",
        prediction("p2", "carol", "lr", NOW + timedelta(seconds=1)),
        prediction("p3", "carol", "hat", NOW + timedelta(seconds=2)),
    ):
        producer.produce(topic, value, b"carol")
    assert producer.flush(10) == 0

    status, body = gateway.poll("/predictions/carol", lambda s, b: s == 200 and len(b["models"]) == 2)
    assert status == 200, body
    assert body["models"]["lr"]["event_id"] == "p2" and body["latest"]["event_id"] == "p3"
    status, body = gateway.call("GET", "/predictions/carol?model=lr")
    assert (status, body["event_id"], body["proba"]) == (200, "p2", {"true": 0.8, "false": 0.2})
    assert gateway.call("GET", "/predictions/carol?model=arf")[0] == 404
    assert gateway.call("GET", "/predictions/nobody")[0] == 404
    counters = gateway.call("GET", "/healthz")[1]["counters"]
    assert counters["predictions_skipped"] == 1 and counters["predictions_stored"] >= 3


def test_features_written_by_the_flow_sink_are_served(gateway: Running, redis_url: str) -> None:
    writer = StoreWriter(connect(redis_url), ttl_seconds=60, flush_interval=0)
    prefix = gateway.settings.online_store.key_prefix
    for i in (1, 2):
        record = Event.model_validate(event(i, "dave"))
        writer.put([entry_of(FeaturedEvent(record, {"x": float(i), "count": i}, 0, i), prefix)])
    assert writer.wait_written(10)
    writer.close()
    status, body = gateway.call("GET", "/features/dave")
    assert status == 200
    assert body == {
        "entity": "dave",
        "event_id": "e2",
        "ts": event(2)["ts"],
        "features": {"x": 2.0, "count": 2},
    }
    assert gateway.call("GET", "/features/nobody")[0] == 404


def test_models_lists_the_registry_versions(gateway: Running) -> None:
    from river import linear_model

    registry = open_registry(gateway.settings.registry.url, REGISTRY_KEY.encode())
    for name in ("lr", "lr", "fraud"):
        registry.save(name, linear_model.LogisticRegression(), recipe="lr", parent=None, n_learned=3,
                      metrics={"accuracy": 0.5}, event_time=(None, None), reason="test")  # fmt: skip
    status, body = gateway.call("GET", "/models")
    assert status == 200, body
    assert {name: m["count"] for name, m in body["models"].items()} == {"fraud": 1, "lr": 2}
    assert body["models"]["lr"]["latest"] == 2
    assert body["models"]["lr"]["versions"][0]["metrics"] == {"accuracy": 0.5}


def test_healthz_reports_both_services(gateway: Running) -> None:
    status, body = gateway.call("GET", "/healthz")
    assert (status, body["status"], body["kafka"], body["redis"]) == (200, "ok", "ok", "ok")
    assert body["counters"]["published"]["event"] >= 3


# -- authentication ------------------------------------------------------------------------------

ROUTES = [
    ("POST", "/events", "ingest"),
    ("POST", "/labels", "ingest"),
    ("GET", "/predictions/carol", "read"),
    ("GET", "/features/dave", "read"),
    ("GET", "/models", "read"),
]
UNAUTHORIZED = {"error": "a bearer token is required", "reason": "unauthorized"}
FORBIDDEN = {"error": "this token may not do that", "reason": "forbidden"}


def test_every_route_needs_a_known_token_of_its_scope(gateway: Running) -> None:
    published = gateway.call("GET", "/healthz")[1]["counters"]["published"]
    bodies = {"/events": json.dumps(event(50, "mallory")).encode(),
              "/labels": json.dumps({"event_id": "e50", "label": True, "ts": 0}).encode()}  # fmt: skip
    refused = [
        None,  # no Authorization header
        "Bearer",
        "Bearer ",
        f"Basic {FULL}",
        f"Bearer {FULL}x",
        f"Bearer {FULL} {FULL}",
        "Bearer rr_not-a-configured-token",
        f"Bearer {TOKENS['ingest,read'][1].split()[0]}",  # the configured hash is not a token
    ]
    for method, path, scope in ROUTES:
        body = bodies.get(path)
        for authorization in refused:
            status, content, headers = gateway.exchange(method, path, body, authorization)
            assert (status, content) == (401, UNAUTHORIZED), (path, authorization)
            assert headers["WWW-Authenticate"].startswith("Bearer"), headers
        wrong = TOKENS["read" if scope == "ingest" else "ingest"][0]
        status, content, headers = gateway.exchange(method, path, body, f"Bearer {wrong}")
        assert (status, content) == (403, FORBIDDEN), path
        for token in (TOKENS[scope][0], FULL):
            status, content, _ = gateway.exchange(method, path, body, f"bearer {token}")
            assert status not in (401, 403), (path, content)
    # Nothing refused was published: one event and one label per accepted token above.
    after = gateway.call("GET", "/healthz")[1]["counters"]["published"]
    assert after == {"event": published["event"] + 2, "label": published["label"] + 2}


def test_healthz_is_open_but_tells_details_only_to_a_read_token(gateway: Running) -> None:
    for token in (None, "rr_wrong", TOKENS["ingest"][0]):
        assert gateway.call("GET", "/healthz", token=token) == (
            200,
            {"status": "ok", "kafka": "ok", "redis": "ok"},
        )
    status, body = gateway.call("GET", "/healthz", token=TOKENS["read"][0])
    assert status == 200 and body["counters"]["published"]["event"] >= 1


# -- in-process: unreachable services, no registry key -------------------------------------------


def test_unreachable_services_are_503_never_500(kafka_servers: str, redis_url: str, tmp_path: Path) -> None:
    settings = load_settings()  # no registry key
    dead_kafka = {"bootstrap.servers": f"127.0.0.1:{free_port()}"}

    async def scenario() -> None:
        down = Gateway(
            settings,
            ConfluentPublisher(dead_kafka, ack_timeout=1.0),
            aredis.Redis(host="127.0.0.1", port=free_port(), retry=Retry(NoBackoff(), 0)),
        )
        status, body = await down.ingest("event", json.dumps(event(1)).encode())
        assert (status, body["reason"]) == (503, "unavailable"), body
        status, body = await down.health()
        assert (
            status == 503
            and body["kafka"].startswith("unreachable")
            and body["redis"].startswith("unreachable")
        )
        # Without a read token: no error texts (hosts, ports, topics) and no counters.
        assert await down.health(detail=False) == (
            503,
            {"status": "degraded", "kafka": "failing", "redis": "failing"},
        )
        for status, body in (await down.features("u1"), await down.predictions("u1", None)):
            assert (status, body["reason"]) == (503, "unavailable"), body
        status, body = await down.models()  # no key in these settings
        assert (status, body["reason"]) == (503, "no_registry_key")
        assert "RIVERRUN_REGISTRY__KEY" in body["error"]
        down.publisher.close()

    asyncio.run(scenario())


def test_faust_producer_path_publishes_acknowledged(
    kafka_servers: str, redis_url: str, tmp_path: Path
) -> None:
    running = start_gateway(kafka_servers, tmp_path, redis_url, extra='producer = "faust"\n')
    try:
        status, body = running.post("/events", [event(1, "erin"), event(2, "erin")])
        assert (status, body["offsets"]) == (202, [[0, 0], [0, 1]]), body
        messages = read_topic(running, running.settings.topics.events, 2)
        assert [m.key() for m in messages] == [b"erin", b"erin"]
    finally:
        stop_gateway(running, redis_url)


def test_without_the_predictions_agent_the_gateway_starts_and_ingests(
    kafka_servers: str, redis_url: str, tmp_path: Path
) -> None:
    """``consume_predictions = false`` (Faust used to refuse to start a consumer without a topic)."""
    running = start_gateway(kafka_servers, tmp_path, redis_url, extra="consume_predictions = false\n")
    try:
        status, body = running.post("/events", event(1, "frank"))
        assert (status, body["offsets"]) == (202, [[0, 0]]), body
        assert [m.key() for m in read_topic(running, running.settings.topics.events, 1)] == [b"frank"]
        status, body = running.call("GET", "/healthz")
        assert status == 200 and body["counters"]["predictions_stored"] == 0, body
    finally:
        stop_gateway(running, redis_url)


def test_auth_none_serves_anyone_and_warns_at_start(
    kafka_servers: str, redis_url: str, tmp_path: Path
) -> None:
    running = start_gateway(kafka_servers, tmp_path, redis_url, extra='auth = "none"\n')
    try:
        assert running.post("/events", event(1, "gina"), token=None)[0] == 202
        assert running.call("GET", "/predictions/gina", token=None)[0] == 404  # served, nothing yet
        assert "counters" in running.call("GET", "/healthz", token=None)[1]
        log = running.log.read_text()
        assert 'auth = "none": ANYONE' in log and "riverrun gateway token" in log, log[-2000:]
    finally:
        stop_gateway(running, redis_url)


def test_the_gateway_stores_the_predictions_of_a_live_flow(
    kafka_servers: str, redis_url: str, tmp_path: Path
) -> None:
    """``riverrun run`` with its default producer settings (lz4) and the gateway side by side: every
    prediction the flow published is stored, the latest of each entity and model is served, and
    the gateway is still healthy after thousands of compressed batches."""
    from riverrun.streams.backtest.scenarios import Scenario
    from riverrun.streams.backtest.synth import to_records
    from riverrun.streams.kafka.producer import producer_config, publish_stream

    settings, config = fresh_settings(kafka_servers, tmp_path, features="none", max_wait_ms=1000)
    assert producer_config(settings.kafka.client_config())["compression.type"] == "lz4"  # the flow's
    never = 10**9
    rows = Scenario(n=3000, drift_at=never, corrupt_from=never, corrupt_to=never, shift_at=never).rows()
    events, labels = to_records([(x, y) for x, y, _ in rows], label_delay=timedelta(seconds=20))
    running = start_gateway(kafka_servers, tmp_path, redis_url, config=config)
    flow = Flow(config, tmp_path / "flow.log").start()
    predictions = TopicReader(kafka_servers, settings.topics.predictions)
    try:
        publish_stream(settings, events, labels)
        got = predictions.read_until(lambda m: len(m) >= len(events), 120, flow)
        assert len(got) >= len(events), flow.log_tail()
        latest: dict[tuple[str, str], dict] = {}
        for message in got:
            value = json.loads(message.value())
            latest[value["entity"], value["model"]] = value

        stored = lambda s, b: s == 200 and b["counters"]["predictions_stored"] >= len(got)  # noqa: E731
        status, health = running.poll("/healthz", stored, timeout=90)
        assert status == 200, health
        counters = health["counters"]
        assert (counters["predictions_stored"], counters["predictions_skipped"]) == (len(got), 0), counters
        assert len({entity for entity, _ in latest}) >= 50
        for (entity, model), value in latest.items():
            assert running.call("GET", f"/predictions/{entity}?model={model}") == (200, value)
        assert running.proc.poll() is None and running.call("GET", "/healthz")[0] == 200
    finally:
        predictions.close()
        flow.kill()
        stop_gateway(running, redis_url)
