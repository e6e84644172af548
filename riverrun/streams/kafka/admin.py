"""Kafka administration: broker checks that fail fast with the address and the fix, topics
(required, created), partition lookups."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

from confluent_kafka import (
    KafkaError,
    KafkaException,
)
from confluent_kafka.admin import AdminClient, NewTopic

from riverrun.errors import ConfigError, ServiceUnavailable
from riverrun.streams.kafka.config import config_for
from riverrun.streams.settings import Settings

log = logging.getLogger(__name__)


def admin(settings: Settings) -> AdminClient:
    """An admin client: the shared settings only (no producer or consumer property)."""
    return AdminClient(config_for(settings.kafka.client_config(), "admin"))


# librdkafka errors meaning the bootstrap brokers cannot be reached at all (as opposed to a
# broker that is slow to answer): connection refused, name not resolved, every broker down.
_UNREACHABLE = (KafkaError._TRANSPORT, KafkaError._RESOLVE)


def check_broker(settings: Settings, timeout: float = 10.0) -> set[str]:
    """The broker's topic names; ``ServiceUnavailable`` (address, cause, what to do) when it
    cannot be reached.

    Fails as soon as librdkafka reports every bootstrap broker down (connection refused, name
    not resolved: ``_ALL_BROKERS_DOWN`` after ``_TRANSPORT`` / ``_RESOLVE``), usually within a
    second; waits up to ``timeout`` only for a broker that accepts connections but does not
    answer (or a network that drops packets). Refused credentials and failed TLS handshakes are
    ``ConfigError`` at the first refusal: librdkafka retries them silently until the timeout
    otherwise, and reports only a generic "transport failure", which sends the operator looking
    for a network problem.
    """
    refused: list[KafkaError] = []
    last: list[str] = []  # the latest error's reason
    unreachable: list[str] = []  # the latest connection refused / name not resolved
    down: list[bool] = []

    def on_error(err: KafkaError) -> None:
        code = err.code()
        if code in (KafkaError._AUTHENTICATION, KafkaError._SSL):
            refused.append(err)
        elif code == KafkaError._ALL_BROKERS_DOWN:
            down.append(True)
        else:  # "host:port/bootstrap: Connect to ipv4#... failed: Connection refused (after 0ms ...)"
            last[:] = [err.str().partition("/bootstrap: ")[2] or err.str()]
            if code in _UNREACHABLE:
                unreachable[:] = last

    # Errors come through error_cb and end up in the message: librdkafka's own log would print
    # one line per reconnection attempt.
    conf = {**config_for(settings.kafka.client_config(), "admin"), "error_cb": on_error, "log_level": "0"}
    client = AdminClient(conf)
    deadline = time.monotonic() + timeout
    while True:
        try:
            metadata = client.list_topics(timeout=max(0.1, min(0.25, deadline - time.monotonic())))
            break
        except KafkaException as exc:
            client.poll(0)  # serves error_cb
            if refused:
                raise ConfigError(_refusal_message(settings, refused[0])) from None
            if down and unreachable:  # every bootstrap broker refused or did not resolve
                raise ServiceUnavailable(
                    _unreachable_message(settings, f"is unreachable ({unreachable[0]})")
                ) from None
            if time.monotonic() < deadline:
                continue
            cause = last[0] if last else exc.args[0].str()
            raise ServiceUnavailable(
                _unreachable_message(settings, f"did not answer within {timeout:.0f}s ({cause})")
            ) from None
    return set(metadata.topics)


def _unreachable_message(settings: Settings, what: str) -> str:
    """``Kafka at ADDRESS (where the address came from) WHAT. What to do.``"""
    origin = settings.bootstrap_origin()
    return (
        f"Kafka at {origin.servers} ({origin.source}) {what}. Start one with "
        "`bash infra/services.sh start`, or point riverrun at yours with [kafka] "
        "bootstrap_servers or KAFKA_BOOTSTRAP_SERVERS (the environment wins over the file)."
    )


def _refusal_message(settings: Settings, err: KafkaError) -> str:
    """What to fix when the broker refused us; librdkafka's reason never holds the password."""
    k = settings.kafka
    if err.code() == KafkaError._SSL:
        return (
            f"TLS handshake with Kafka at {k.bootstrap_servers} failed: {err.str()}. Point "
            "[kafka] ssl_ca_location at the PEM of the CA that signed the broker's certificate, "
            "and check that the certificate names the host you connect to."
        )
    return (
        f"Kafka at {k.bootstrap_servers} refused the credentials of user {k.sasl_username!r} "
        f"({k.security_protocol}, {k.sasl_mechanism}): {err.str()}. Check [kafka] sasl_username "
        "and sasl_mechanism, and the password in RIVERRUN_KAFKA__SASL_PASSWORD."
    )


def require_topics(settings: Settings, names: Iterable[str]) -> None:
    """Fail fast, before anything is read or sent, if the broker is unreachable or a topic it
    needs is missing (a producer would have the broker auto-create a mistyped one, and nothing
    would ever read it). The message names each topic with its [topics] key and the fix."""
    missing = sorted(set(names) - check_broker(settings))
    if missing:
        keys = {name: key for key, name in settings.topics.model_dump().items() if isinstance(name, str)}
        shown = ", ".join(
            f"{name!r} ([topics] {keys[name]})" if name in keys else repr(name) for name in missing
        )
        raise ConfigError(
            f"missing Kafka topics [{shown}] on {settings.kafka.bootstrap_servers}: create them with "
            "`riverrun topics create` (same config), or fix the names in [topics] "
            "(RIVERRUN_TOPICS__<KEY> in the environment)."
        )


def partitions_of(settings: Settings, topic: str, timeout: float = 10.0) -> tuple[int, ...]:
    """The partition ids of ``topic``."""
    return partition_ids(admin(settings), topic, timeout)


def partition_ids(client: AdminClient, topic: str, timeout: float) -> tuple[int, ...]:
    metadata = client.list_topics(topic, timeout=timeout).topics[topic]
    if metadata.error is not None:
        raise ConfigError(f"cannot list the partitions of topic {topic!r}: {metadata.error.str()}")
    return tuple(sorted(metadata.partitions))


def create_topics(settings: Settings, timeout: float = 30.0) -> dict[str, str]:
    """Create every riverrun topic that does not exist yet; return {topic: 'created'|'exists'}."""
    existing = check_broker(settings)
    t = settings.topics
    wanted = [name for name in t.all() if name not in existing]
    status = {name: "exists" for name in t.all() if name in existing}
    if wanted:
        client = admin(settings)  # keep the handle alive until the futures resolve
        futures = client.create_topics(
            [NewTopic(name, t.partitions, t.replication_factor) for name in wanted],
            operation_timeout=timeout,
        )
        for name, future in futures.items():
            try:
                future.result(timeout)
                status[name] = "created"
            except KafkaException as exc:
                if "TOPIC_ALREADY_EXISTS" in str(exc):
                    status[name] = "exists"
                else:
                    raise ConfigError(f"could not create topic {name!r}: {exc}") from exc
    # Metadata propagates asynchronously; wait until the broker lists them all.
    deadline = time.monotonic() + timeout
    while set(t.all()) - check_broker(settings) and time.monotonic() < deadline:
        time.sleep(0.2)
    return status
