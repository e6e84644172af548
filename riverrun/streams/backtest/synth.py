"""Turn a River dataset into timestamped events and delayed labels (demo, produce, tests).

>>> from datetime import datetime, timedelta, timezone
>>> from river import datasets
>>> events, labels = to_records(list(datasets.Phishing())[:3], label_delay=timedelta(seconds=2))
>>> [e.ts.second for e in events], [lb.ts.second for lb in labels]
([0, 1, 2], [2, 3, 4])
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from river.datasets import synth

from riverrun.schemas import Event, Label

EPOCH = datetime(2024, 1, 1, tzinfo=UTC)


def _plain(value):
    """Numpy scalars and other number-likes become plain Python values."""
    if isinstance(value, bool | int | float | str) or value is None:
        return value
    if hasattr(value, "item"):
        return value.item()
    return float(value)


def to_records(
    dataset: Iterable[tuple[dict, object]],
    *,
    start: datetime = EPOCH,
    interval: timedelta = timedelta(seconds=1),
    label_delay: timedelta = timedelta(seconds=60),
    n_entities: int = 100,
    jitter: float = 0.0,
    seed: int = 42,
) -> tuple[list[Event], list[Label]]:
    """Events ``interval`` apart (``jitter`` in [0, 1) randomizes the gaps) and one label each,
    ``label_delay`` later, both lists sorted by event time (labels stably, as River's
    ``simulate_qa`` reveals them)."""
    rng = random.Random(seed)
    events, labels = [], []
    ts = start
    for i, (x, y) in enumerate(dataset):
        event_id = f"e{i:09d}"
        features = {k: _plain(v) for k, v in x.items()}
        events.append(
            Event(event_id=event_id, entity=f"u{rng.randrange(n_entities)}", ts=ts, features=features)
        )
        labels.append(Label(event_id=event_id, label=_plain(y), ts=ts + label_delay))
        gap = interval * (1 + jitter * (2 * rng.random() - 1)) if jitter else interval
        ts = ts + gap
    labels.sort(key=lambda lb: lb.ts)
    return events, labels


def drifting_agrawal(n: int, drift_at: int | None = None, seed: int = 42):
    """``n`` samples of River's Agrawal generator, labels as booleans; the concept switches from
    function 0 to 2 at ``drift_at`` (default: the middle), a sudden drift."""
    drift_at = n // 2 if drift_at is None else drift_at
    stream = synth.ConceptDriftStream(
        stream=synth.Agrawal(classification_function=0, seed=seed),
        drift_stream=synth.Agrawal(classification_function=2, seed=seed),
        position=drift_at,
        # River's sigmoid overflows when 4 * position / width > ~709: keep the width just wide enough.
        width=max(50, -(-4 * drift_at // 700)),
        seed=seed,
    )
    return [(x, bool(y)) for x, y in stream.take(n)]
