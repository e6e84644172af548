"""riverrun's pipeline on Quix Streams (run in its own venv by ``benchmarks/compare.py``).

    python quix_pipeline.py BROKER EVENTS LABELS PREDICTIONS GROUP STATE_DIR

Events (keyed by entity): decode + validate (pydantic), per-entity features in Quix's keyed
state (RocksDB, changelog topic), predict, publish to PREDICTIONS (same key). Labels: decode +
validate, join with the pending event's served features, score, learn. The model and the join
are in process memory (one process, one partition), as Quix has no global state. See
``common.py`` for what is and is not the same as riverrun. Runs until SIGTERM.
"""

from __future__ import annotations

import logging
import sys

from common import Event, Label, Learner, decode, entity_features  # this folder: sys.path[0]
from quixstreams import Application


def main() -> None:
    broker, events_topic, labels_topic, predictions_topic, group, state_dir = sys.argv[1:7]
    app = Application(
        broker_address=broker,
        consumer_group=group,
        auto_offset_reset="earliest",
        state_dir=state_dir,
        loglevel="WARNING",
        # as riverrun's sources: answer fetches within 10 ms (latency)
        consumer_extra_config={"fetch.wait.max.ms": "10"},
    )
    learner = Learner()
    raw = {"value_deserializer": "bytes", "key_deserializer": "bytes"}
    events = app.dataframe(app.topic(events_topic, **raw))
    labels = app.dataframe(app.topic(labels_topic, **raw))
    out = app.topic(predictions_topic, value_serializer="bytes", key_serializer="bytes")

    def decode_event(payload: bytes):
        event = decode(Event, payload)
        if event is None:
            learner.n_invalid += 1
        return event

    def featurize(event: Event, state) -> tuple[Event, dict]:
        new, x = entity_features(state.get("f"), event)
        state.set("f", new)
        return event, x

    def on_label(payload: bytes) -> None:
        label = decode(Label, payload)
        if label is None:
            learner.n_invalid += 1
        else:
            learner.label(label)

    events = events.apply(decode_event).filter(lambda e: e is not None)
    events = events.apply(featurize, stateful=True)
    events = events.apply(lambda ex: learner.predict(*ex))
    events.to_topic(out)
    labels.update(on_label)
    logging.getLogger("quixstreams").setLevel(logging.WARNING)
    app.run()


if __name__ == "__main__":
    main()
