"""River's own reference for predict-then-learn with delayed labels, and stream files."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from river import compose, evaluate, metrics, stream

from riverrun.learners import build_model
from riverrun.schemas import Event, Label


def river_reference(data, recipe: str, delay: timedelta, ts: list[datetime]):
    """Per-event positive-class probabilities (River's ``simulate_qa``) and the final accuracy
    and log loss of ``evaluate.progressive_val_score`` with ``moment`` = event time."""
    timed = [({**x, "__ts": t}, y) for (x, y), t in zip(data, ts, strict=True)]

    def make():
        return compose.Discard("__ts") | build_model(recipe)

    metric = metrics.Accuracy() + metrics.LogLoss()
    evaluate.progressive_val_score(timed, make(), metric, moment="__ts", delay=delay)
    model, probas = make(), {}
    for i, x, y in stream.simulate_qa(timed, moment="__ts", delay=delay):
        if y is None:
            probas[i] = model.predict_proba_one(x).get(True, 0.0)
        else:
            model.learn_one(x, y)
    return [probas[i] for i in range(len(data))], {
        "accuracy": metric[0].get(),
        "log_loss": metric[1].get(),
    }


def write_jsonl(path: Path, records: list[Event] | list[Label]) -> Path:
    path.write_bytes(b"".join(r.model_dump_json().encode() + b"\n" for r in records))
    return path


def positive_proba(prediction: dict) -> float:
    proba = prediction["proba"] or {}
    return proba.get("true", 0.0)
