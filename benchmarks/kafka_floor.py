"""The Kafka hop alone: a bare consumer of a topic, timing each record from its ``CreateTime``
(the producer's clock) to when it was consumed (this machine's clock).

``compare.py``'s latency run starts it next to the flow, on the events topic: what it measures
is the part of event -> prediction latency that is the broker and the machine, not the flow
(a stall it also sees happened before the flow could read the events).

    python benchmarks/kafka_floor.py TOPIC OUT.json   # until SIGTERM; then writes OUT.json

It reads partition 0 (the benchmark's topics have one) from its end offset at start, and touches
OUT.json.ready once it knows that offset: every record published after is then seen.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
import uuid
from pathlib import Path

from confluent_kafka import Consumer, TopicPartition


def main() -> None:
    topic, out = sys.argv[1], sys.argv[2]
    consumer = Consumer(
        {
            "bootstrap.servers": os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"),
            "group.id": f"bench-floor-{uuid.uuid4().hex}",  # assigned, not subscribed: no join
            "enable.auto.commit": False,
            "fetch.wait.max.ms": 10,  # as the flow's source (streams.kafka.source)
        }
    )
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(True))
    rows: list[tuple[int, float, float]] = []  # (offset, CreateTime, consumed at), seconds
    _, end = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
    consumer.assign([TopicPartition(topic, 0, end)])
    Path(out + ".ready").touch()  # every record published from now on is at or after ``end``
    while not stop:
        for msg in consumer.consume(200, 0.002):
            if msg.error() is None:
                rows.append((msg.offset(), msg.timestamp()[1] / 1000.0, time.time()))
    consumer.close()
    with open(out, "w") as f:
        json.dump(rows, f)


if __name__ == "__main__":
    main()
