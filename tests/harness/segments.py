"""A segmented stream (a country per event, each its own concept) and the flow run in process."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from riverrun.schemas import Event, Label
from riverrun.streams.core.modelstep import StepConfig
from riverrun.streams.flow.dataflow import FlowSinks, FlowSpec, build_dataflow
from riverrun.streams.flow.runtime import run_in_process
from riverrun.streams.flow.sinks import CallbackSink
from riverrun.streams.flow.sources import MemorySource

T0 = datetime(2024, 1, 1, tzinfo=UTC)
COUNTRIES = ("DE", "FR", "IT")


def stream(n: int = 900, seed: int = 5) -> tuple[list[Event], list[Label]]:
    """Events with a country; labels 30 s later; each country has its own concept."""
    rng = random.Random(seed)
    events, labels = [], []
    for i in range(n):
        c = rng.choice(COUNTRIES)
        x = {"a": rng.gauss(0, 1), "b": rng.gauss(0, 1), "country": c}
        ts = T0 + timedelta(seconds=i)
        events.append(Event(event_id=f"e{i}", entity=f"u{i % 13}", ts=ts, features=x))
        y = (x["a"] > 0) if c == "DE" else (x["b"] > 0) if c == "FR" else (x["a"] + x["b"] > 0)
        labels.append(Label(event_id=f"e{i}", label=y, ts=ts + timedelta(seconds=30)))
    return events, labels


def without_country(e: Event) -> dict:
    return {k: v for k, v in e.features.items() if k != "country"}


def run(events, labels, segment_by: str | None, features: str = "none"):
    out: dict[str, list] = {"predictions": [], "dead": []}
    spec = FlowSpec(
        steps=(StepConfig(model="lr", recipe="lr"),), features=features, finite=True, segment_by=segment_by
    )
    sinks = FlowSinks(
        predictions=CallbackSink(out["predictions"].extend),
        dead_letters=CallbackSink(out["dead"].extend),
        metrics=CallbackSink(lambda _: None),
        model_events=CallbackSink(lambda _: None),
    )
    flow = build_dataflow(spec, MemorySource(events, "event", 100), MemorySource(labels, "label", 100), sinks)
    run_in_process(flow)
    return out
