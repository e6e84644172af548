"""``riverrun demo``: the whole loop in one process, no broker.

A synthetic Agrawal stream whose concept changes suddenly halfway, labels arriving a fixed time
after their event, a few malformed records mixed in, two models (``lr`` and ``hat``) learning
side by side, through the same dataflow as ``riverrun run`` with in-memory sources.
"""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

from riverrun.schemas import DeadLetter
from riverrun.streams.connectors import CallbackSink, MemorySource
from riverrun.streams.engine import FlowSinks, FlowSpec, build_dataflow, run_in_process
from riverrun.streams.items import MetricsPoint
from riverrun.streams.modelstep import StepConfig
from riverrun.streams.report import plot_metrics, write_report
from riverrun.streams.synth import drifting_agrawal, to_records

#: Malformed events mixed into the demo stream: they must reach the dead letters, nothing else.
BAD_EVENTS = [
    b"{not json",
    b'{"event_id": "bad-1", "entity": "u1", "ts": "2024-01-01T00:00:00", "features": {}}',
    b'{"event_id": "bad-2", "entity": "u1", "ts": 1704067200, "features": {"salary": NaN}}',
    b'{"event_id": "", "entity": "u1", "ts": 1704067200, "features": {}}',
    b'{"entity": "u1", "ts": 1704067200, "features": {}}',
]


def run_demo(
    out_dir: str | Path = "riverrun-demo",
    n_events: int = 20_000,
    label_delay_seconds: float = 120.0,
    models: tuple[tuple[str, str], ...] = (("lr", "lr"), ("hat", "hat")),
    progress: bool = True,
    seed: int = 42,
) -> dict:
    """Run the demo; write ``report.json`` and ``metrics.png`` into ``out_dir``; return a summary."""
    out = Path(out_dir)
    drift_at = n_events // 2
    data = drifting_agrawal(n_events, drift_at=drift_at, seed=seed)
    events, labels = to_records(
        data, label_delay=timedelta(seconds=label_delay_seconds), n_entities=500, seed=seed
    )
    drift_time = events[drift_at].ts
    stream: list = list(events)
    step = max(1, len(stream) // (len(BAD_EVENTS) + 1))
    for k, bad in enumerate(BAD_EVENTS, start=1):
        stream.insert(k * step, bad)

    points: list[MetricsPoint] = []
    dead: list[DeadLetter] = []
    n_predictions = 0
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(events) * len(models), unit="pred", desc="demo")

    def on_predictions(batch: list) -> None:
        nonlocal n_predictions
        n_predictions += len(batch)
        if bar is not None:
            bar.update(len(batch))

    spec = FlowSpec(
        steps=tuple(
            StepConfig(
                model=name,
                recipe=recipe,
                report_every=250,
                metrics_window=500,
                served_at_event_time=True,
            )
            for name, recipe in models
        ),
        features="default",
        feature_window_seconds=600.0,
        finite=True,
    )
    sinks = FlowSinks(CallbackSink(on_predictions), CallbackSink(dead.extend), CallbackSink(points.extend))
    flow = build_dataflow(spec, MemorySource(stream, "event"), MemorySource(labels, "label"), sinks)
    start = time.perf_counter()
    run_in_process(flow)
    seconds = time.perf_counter() - start
    if bar is not None:
        bar.close()

    report = write_report(
        out,
        points,
        mode="demo",
        stream={
            "generator": "Agrawal(0) -> Agrawal(2)",
            "events": len(events),
            "drift_at_event": drift_at,
            "drift_time": drift_time.isoformat(),
            "label_delay_seconds": label_delay_seconds,
        },
        predictions=n_predictions,
        dead_letters=[{"reason": d.reason, "error": d.error} for d in dead],
        seconds=round(seconds, 3),
    )
    plot = plot_metrics(
        points,
        out / "metrics.png",
        markers=[(drift_time, "concept drift")],
        title="riverrun demo: rolling accuracy (Agrawal, sudden drift)",
    )
    finals = {p.model: p.metrics for p in points if p.final}
    return {
        "report": report,
        "plot": plot,
        "seconds": seconds,
        "final": finals,
        "predictions": n_predictions,
        "dead_letters": len(dead),
    }
