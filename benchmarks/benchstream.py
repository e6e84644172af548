"""The stream every row of ``benchmarks/compare.py`` runs on, and where it is written.

River's ``Hyperplane(seed=42, n_features=10)``: events one second of event time apart over 1000
entities, each labelled 30 s of event time later (labels in event-time order). Files are JSON
Lines as ``riverrun replay`` and ``riverrun produce`` read them.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from river.datasets import synth

from riverrun.schemas import Event, Label
from riverrun.streams.backtest.synth import to_records

LABEL_DELAY = timedelta(seconds=30)
N_ENTITIES = 1000


def make_stream(n: int, seed: int = 42) -> tuple[list[tuple[dict, bool]], list[Event], list[Label]]:
    """(x, y) pairs for the plain loop, and the same as events and delayed labels."""
    hyperplane = synth.Hyperplane(seed=seed, n_features=10).take(n)
    data = [({f"f{k}": v for k, v in x.items()}, bool(y)) for x, y in hyperplane]
    events, labels = to_records(data, label_delay=LABEL_DELAY, n_entities=N_ENTITIES)
    return data, events, labels


def write_jsonl(path: Path, records: list[Event] | list[Label]) -> Path:
    with path.open("wb") as out:
        for r in records:
            out.write(r.model_dump_json().encode() + b"\n")
    return path


def write_long_stream(events_path: Path, labels_path: Path, n: int, chunk: int = 100_000) -> None:
    """``n`` events and their labels written chunk by chunk (a million records do not need to be
    in memory at once); the same generator and layout as ``make_stream``, with one long clock."""
    from riverrun.streams.backtest.synth import EPOCH

    hyperplane = iter(synth.Hyperplane(seed=42, n_features=10).take(n))
    with events_path.open("wb") as ev, labels_path.open("wb") as lb:
        done = 0
        while done < n:
            size = min(chunk, n - done)
            data = [({f"f{k}": v for k, v in x.items()}, bool(y)) for x, y in _take(hyperplane, size)]
            events, labels = to_records(
                data,
                start=EPOCH + timedelta(seconds=done),
                label_delay=LABEL_DELAY,
                n_entities=N_ENTITIES,
                seed=done,
            )
            for e in events:  # ids unique over the whole stream
                e = e.model_copy(update={"event_id": f"e{done + int(e.event_id[1:]):09d}"})
                ev.write(e.model_dump_json().encode() + b"\n")
            for la in labels:  # in time order over the whole stream: every delay is the same
                la = la.model_copy(update={"event_id": f"e{done + int(la.event_id[1:]):09d}"})
                lb.write(la.model_dump_json().encode() + b"\n")
            done += size


def _take(it, k):
    for _ in range(k):
        yield next(it)
