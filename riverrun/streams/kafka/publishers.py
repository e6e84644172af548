"""How the gateway publishes to Kafka: a POST returns only once the broker acknowledged
(``acks=all``). ``ConfluentPublisher`` (librdkafka, the default) or ``FaustPublisher`` (Faust's
aiokafka producer); ``benchmarks/gateway_load.py`` measures both."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from functools import partial
from typing import Any

from riverrun.errors import DeliveryError
from riverrun.streams.kafka.producer import producer_config

log = logging.getLogger(__name__)

Message = tuple[bytes, bytes]  # (key, value)


class ConfluentPublisher:
    """confluent-kafka producer (``acks=all``, idempotent); a thread serves delivery reports and
    hands each round of them to the event loop at once, resolving the waiting requests."""

    def __init__(self, client_config: dict[str, str], ack_timeout: float, linger_ms: float = 1.0):
        from confluent_kafka import Producer

        conf = {
            **producer_config(client_config),
            "linger.ms": linger_ms,
            "message.timeout.ms": max(1, round(ack_timeout * 1000)),
        }
        conf["error_cb"] = self._on_error
        conf["log_level"] = 0  # errors come through error_cb, logged once per kind and minute
        self._logged: dict[str, float] = {}
        self._producer = Producer(conf)
        self._ack_timeout = ack_timeout
        self._loop: asyncio.AbstractEventLoop | None = None
        self._reports: list[tuple[asyncio.Future, Any, int, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="riverrun-gateway-acks", daemon=True)
        self._thread.start()

    def _on_error(self, err: Any) -> None:
        now = time.monotonic()
        if now - self._logged.get(err.name(), -60.0) >= 60.0:
            self._logged[err.name()] = now
            log.warning("gateway: Kafka producer: %s", err.str())

    def _on_delivery(self, fut: asyncio.Future, err: Any, msg: Any) -> None:
        self._reports.append((fut, err, msg.partition(), msg.offset()))  # in the poll thread

    def _serve(self) -> None:
        while not self._stop.is_set():
            self._producer.poll(0.1)
            if self._reports and self._loop is not None:
                reports, self._reports = self._reports, []
                self._loop.call_soon_threadsafe(_settle, reports)

    async def publish(self, topic: str, messages: list[Message]) -> list[tuple[int, int]]:
        """Publish and wait for the broker's acknowledgements: [(partition, offset)]."""
        loop = self._loop = asyncio.get_running_loop()
        futures = []
        for key, value in messages:
            fut = loop.create_future()
            while True:
                try:
                    self._producer.produce(topic, value, key, on_delivery=partial(self._on_delivery, fut))
                    break
                except BufferError:  # librdkafka's queue is full: let it drain
                    await asyncio.sleep(0.005)
            futures.append(fut)
        return await asyncio.wait_for(asyncio.gather(*futures), self._ack_timeout + 5)

    async def check(self) -> list[str]:
        """The broker's topics (raises when it does not answer within 2 s)."""
        loop = asyncio.get_running_loop()
        metadata = await loop.run_in_executor(None, lambda: self._producer.list_topics(timeout=2.0))
        return list(metadata.topics)

    def close(self) -> None:
        self._producer.flush(self._ack_timeout)
        self._stop.set()
        self._thread.join(5)


def _settle(reports: list[tuple[asyncio.Future, Any, int, int]]) -> None:
    for fut, err, partition, offset in reports:
        if fut.done():
            continue
        if err is not None:
            fut.set_exception(DeliveryError(err.str()))
        else:
            fut.set_result((partition, offset))


class FaustPublisher:
    """Faust's own producer (aiokafka, ``acks=all``): ``topic.send()``, then its future."""

    def __init__(self, app: Any, client_config: dict[str, str], ack_timeout: float):
        self._app, self._ack_timeout = app, ack_timeout
        self._topics: dict[str, Any] = {}
        self._client_config = client_config
        self._admin: Any = None

    async def publish(self, topic: str, messages: list[Message]) -> list[tuple[int, int]]:
        channel = self._topics.get(topic)
        if channel is None:
            channel = self._topics[topic] = self._app.topic(
                topic, key_serializer="raw", value_serializer="raw"
            )
        futures = [await channel.send(key=key, value=value) for key, value in messages]
        metas = await asyncio.wait_for(asyncio.gather(*futures), self._ack_timeout)
        return [(m.partition, m.offset) for m in metas]

    async def check(self) -> list[str]:
        from confluent_kafka.admin import AdminClient

        if self._admin is None:
            self._admin = AdminClient(self._client_config)
        loop = asyncio.get_running_loop()
        metadata = await loop.run_in_executor(None, lambda: self._admin.list_topics(timeout=2.0))
        return list(metadata.topics)

    def close(self) -> None:
        pass
