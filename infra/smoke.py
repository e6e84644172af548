"""End-to-end smoke check of the services started by infra/services.sh.

Kafka: create a topic, produce N messages with acks=all + idempotence,
consume them back from the beginning.  Redis: SET/GET round trip.

    python infra/smoke.py                    # fresh topic, produce + consume
    python infra/smoke.py --topic T          # produce into T (created if absent)
    python infra/smoke.py --topic T --verify-only --expect 10
                                             # only read T back (e.g. after a
                                             # broker restart: data persisted?)

Reads KAFKA_BOOTSTRAP_SERVERS / REDIS_URL (defaults: 127.0.0.1:9092,
redis://127.0.0.1:6379/0).  Exits non-zero on any failure.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic


def kafka_roundtrip(bootstrap: str, topic: str, n: int, verify_only: bool, expect: int) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    if topic not in admin.list_topics(timeout=10).topics:
        fut = admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])[topic]
        fut.result(timeout=30)
        print(f"kafka: created topic {topic}")

    sent = []
    if not verify_only:
        producer = Producer(
            {
                "bootstrap.servers": bootstrap,
                "acks": "all",
                "enable.idempotence": True,
            }
        )
        errors: list[str] = []

        def on_delivery(err, msg):
            if err is not None:
                errors.append(str(err))

        for i in range(n):
            value = f"msg-{i}-{uuid.uuid4().hex[:8]}".encode()
            sent.append(value)
            producer.produce(topic, key=str(i).encode(), value=value, on_delivery=on_delivery)
        remaining = producer.flush(30)
        if remaining or errors:
            raise SystemExit(f"kafka: produce failed: remaining={remaining} errors={errors}")
        print(f"kafka: produced {n} messages (acks=all, idempotent)")

    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"smoke-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    # assign() instead of subscribe(): no group rebalance needed, so this is
    # fast and deterministic.
    consumer.assign([TopicPartition(topic, 0, 0)])
    got: list[bytes] = []
    want = expect if verify_only else None
    deadline = time.monotonic() + 30
    _, high = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
    while time.monotonic() < deadline and len(got) < high:
        msg = consumer.poll(1.0)
        if msg is None:
            continue
        if msg.error():
            raise KafkaException(msg.error())
        got.append(msg.value())
    consumer.close()

    if verify_only:
        if len(got) < want:
            raise SystemExit(f"kafka: expected >= {want} messages in {topic}, found {len(got)}")
        print(f"kafka: {topic} holds {len(got)} messages (expected >= {want}) -- OK")
    else:
        missing = [v for v in sent if v not in got]
        if missing:
            raise SystemExit(f"kafka: {len(missing)} produced messages not consumed back")
        print(f"kafka: consumed all {n} messages back (topic has {len(got)}) -- OK")


def redis_roundtrip(url: str) -> None:
    import redis

    r = redis.Redis.from_url(url, socket_timeout=5)
    key = f"riverrun:smoke:{uuid.uuid4().hex[:8]}"
    r.set(key, "hello", ex=60)
    val = r.get(key)
    r.delete(key)
    if val != b"hello":
        raise SystemExit(f"redis: GET returned {val!r}")
    print(f"redis: SET/GET round trip on {url} -- OK")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--topic", default=f"riverrun-smoke-{uuid.uuid4().hex[:8]}")
    ap.add_argument("-n", type=int, default=10, help="messages to produce")
    ap.add_argument("--verify-only", action="store_true", help="only consume and count")
    ap.add_argument("--expect", type=int, default=10, help="with --verify-only: minimum count")
    ap.add_argument("--skip-redis", action="store_true")
    ap.add_argument("--skip-kafka", action="store_true")
    args = ap.parse_args()

    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    if not args.skip_kafka:
        kafka_roundtrip(bootstrap, args.topic, args.n, args.verify_only, args.expect)
    if not args.skip_redis:
        redis_roundtrip(redis_url)
    return 0


if __name__ == "__main__":
    sys.exit(main())
