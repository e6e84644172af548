"""riverrun's pipeline on Faust (faust-streaming; run in its own venv by ``benchmarks/compare.py``).

    python faust_pipeline.py BROKER EVENTS LABELS PREDICTIONS APP_ID DATA_DIR

One agent per input topic. Events (keyed by entity): decode + validate (pydantic), per-entity
features in a Faust ``Table`` (memory store, changelog topic), predict, ``await send`` to
PREDICTIONS. Labels: decode + validate, join, score, learn. The model and the join are in
process memory; see ``common.py``. Runs until SIGTERM.
"""

from __future__ import annotations

import sys

import faust
from common import Event, Label, Learner, decode, entity_features  # this folder: sys.path[0]

broker, events_name, labels_name, predictions_name, app_id, data_dir = sys.argv[1:7]
sys.argv = [sys.argv[0], "worker", "--loglevel", "warn", "--without-web"]

app = faust.App(
    app_id,
    broker=f"kafka://{broker}",
    store="memory://",
    datadir=data_dir,
    topic_partitions=1,
    consumer_auto_offset_reset="earliest",
    broker_max_poll_records=1000,
    stream_wait_empty=False,
)
events_topic = app.topic(
    events_name, key_type=bytes, value_type=bytes, value_serializer="raw", key_serializer="raw"
)
labels_topic = app.topic(
    labels_name, key_type=bytes, value_type=bytes, value_serializer="raw", key_serializer="raw"
)
predictions_topic = app.topic(predictions_name, value_serializer="raw", key_serializer="raw")
features = app.Table("entity-features", default=None, partitions=1)
learner = Learner()


@app.agent(events_topic)
async def on_events(stream):
    async for key, payload in stream.items():
        event = decode(Event, payload)
        if event is None:
            learner.n_invalid += 1
            continue
        state, x = entity_features(features.get(event.entity), event)
        features[event.entity] = state
        await predictions_topic.send(key=key, value=learner.predict(event, x))


@app.agent(labels_topic)
async def on_labels(stream):
    async for payload in stream:
        label = decode(Label, payload)
        if label is None:
            learner.n_invalid += 1
        else:
            learner.label(label)


if __name__ == "__main__":
    app.main()
