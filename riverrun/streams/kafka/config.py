"""librdkafka properties by client role: what a producer, a consumer and an admin client may be
handed (``config_for``), so that ``[kafka.extra]`` may hold both kinds without CONFWARN lines."""

from __future__ import annotations

from typing import Any, Literal

# librdkafka properties of one client role only (CONFIGURATION.md, C/P column "C" or "P", global
# and topic level, librdkafka 2.x). Handed to the other role, librdkafka ignores them with a
# CONFWARN line on every start; an AdminClient is a producer instance to librdkafka.
CONSUMER_ONLY = frozenset(
    [
        "group.id",
        "group.instance.id",
        "partition.assignment.strategy",
        "session.timeout.ms",
        "heartbeat.interval.ms",
        "group.protocol.type",
        "group.protocol",
        "group.remote.assignor",
        "coordinator.query.interval.ms",
        "max.poll.interval.ms",
        "enable.auto.commit",
        "auto.commit.interval.ms",
        "enable.auto.offset.store",
        "queued.min.messages",
        "queued.max.messages.kbytes",
        "fetch.wait.max.ms",
        "fetch.queue.backoff.ms",
        "fetch.message.max.bytes",
        "max.partition.fetch.bytes",
        "fetch.max.bytes",
        "fetch.min.bytes",
        "fetch.error.backoff.ms",
        "offset.store.method",
        "isolation.level",
        "consume_cb",
        "rebalance_cb",
        "offset_commit_cb",
        "enable.partition.eof",
        "check.crcs",
        "auto.commit.enable",
        "auto.offset.reset",
        "offset.store.path",
        "offset.store.sync.interval.ms",
        "consume.callback.max.messages",
        "on_commit",
    ]
)
PRODUCER_ONLY = frozenset(
    [
        "transactional.id",
        "transaction.timeout.ms",
        "enable.idempotence",
        "enable.gapless.guarantee",
        "queue.buffering.max.messages",
        "queue.buffering.max.kbytes",
        "queue.buffering.max.ms",
        "linger.ms",
        "message.send.max.retries",
        "retries",
        "queue.buffering.backpressure.threshold",
        "compression.codec",
        "compression.type",
        "batch.num.messages",
        "batch.size",
        "delivery.report.only.error",
        "dr_cb",
        "dr_msg_cb",
        "sticky.partitioning.linger.ms",
        "request.required.acks",
        "acks",
        "request.timeout.ms",
        "message.timeout.ms",
        "delivery.timeout.ms",
        "queuing.strategy",
        "produce.offset.report",
        "partitioner",
        "partitioner_cb",
        "msg_order_cmp",
        "compression.level",
        "on_delivery",
    ]
)


def config_for(conf: dict[str, Any], role: Literal["producer", "consumer", "admin"]) -> dict[str, Any]:
    """``conf`` without the librdkafka properties another client role owns: a producer gets no
    consumer property (``fetch.wait.max.ms``, ...), a consumer no producer property
    (``linger.ms``, ...), an admin client neither. ``[kafka.extra]`` may hold both kinds.

    >>> conf = {"bootstrap.servers": "b:9092", "fetch.wait.max.ms": "10", "linger.ms": "5"}
    >>> sorted(config_for(conf, "producer")), sorted(config_for(conf, "consumer"))
    (['bootstrap.servers', 'linger.ms'], ['bootstrap.servers', 'fetch.wait.max.ms'])
    >>> sorted(config_for(conf, "admin"))
    ['bootstrap.servers']
    """
    drop = {
        "producer": CONSUMER_ONLY,
        "consumer": PRODUCER_ONLY,
        "admin": CONSUMER_ONLY | PRODUCER_ONLY,
    }[role]
    return {k: v for k, v in conf.items() if k not in drop}
