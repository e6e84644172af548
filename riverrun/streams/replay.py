"""Backtests: run recorded events and labels through the live dataflow, in event-time order.

The flow is the same one ``riverrun run`` builds; only the sources (files) and sinks (files)
differ, and the order is exact (no wall-clock wait), so a replay decides exactly as live did.
"""

from __future__ import annotations

import collections
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from bytewax.outputs import Sink

from riverrun.learners.lifecycle import PolicyConfig
from riverrun.schemas import DeadLetter, ModelEvent
from riverrun.streams.connectors import CallbackSink, JsonLinesSource, to_json
from riverrun.streams.engine import FlowSinks, FlowSpec, build_dataflow, run_in_process
from riverrun.streams.features import FeatureMode
from riverrun.streams.items import MetricsPoint
from riverrun.streams.modelstep import StepConfig
from riverrun.streams.report import action_markers, actions_summary, plot_metrics, write_report


@dataclass
class ReplayResult:
    points: list[MetricsPoint] = field(default_factory=list)
    n_predictions: int = 0
    dead_letters: collections.Counter = field(default_factory=collections.Counter)
    model_events: list[ModelEvent] = field(default_factory=list)
    seconds: float = 0.0

    def final(self, model: str) -> MetricsPoint:
        return next(p for p in self.points if p.final and p.model == model)


def _count_lines(path: Path) -> int:
    with path.open("rb") as f:
        return sum(1 for _ in f)


def replay(
    events: str | Path,
    labels: str | Path,
    out_dir: str | Path,
    models: list[tuple[str, str]],
    features: FeatureMode = "default",
    feature_window_seconds: float = 300.0,
    label_ttl_seconds: float = 86_400.0,
    metrics_window: int = 1000,
    report_every: int = 1000,
    progress: bool = False,
    plot: bool = True,
    policy: PolicyConfig | None = None,
    registry: Sink | None = None,
) -> ReplayResult:
    """Replay ``events`` and ``labels`` (JSON Lines) through ``models`` [(name, recipe)].

    Writes ``predictions.jsonl`` (one per event and model, in event order), ``dead-letter.jsonl``,
    ``report.json`` and ``metrics.png`` into ``out_dir``. ``policy`` turns the model lifecycle on
    (its actions are listed in the report, marked on the plot, and in ``model-events.jsonl``);
    ``registry`` (a ``RegistrySink``) persists its checkpoints and audits its events.
    """
    events, labels, out = Path(events), Path(labels), Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    spec = FlowSpec(
        steps=tuple(
            StepConfig(
                model=name,
                recipe=recipe,
                label_ttl_seconds=label_ttl_seconds,
                metrics_window=metrics_window,
                report_every=report_every,
                served_at_event_time=True,
                policy=policy or PolicyConfig(enabled=False),
                event_topic=events.name,  # the files, named as the decoder names them
                label_topic=labels.name,
            )
            for name, recipe in models
        ),
        features=features,
        feature_window_seconds=feature_window_seconds,
        finite=True,
    )
    result = ReplayResult()
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=_count_lines(events) * len(models), unit="pred", desc="replay", smoothing=0.1)
    predictions_file = (out / "predictions.jsonl").open("wb")

    def on_predictions(batch: list) -> None:
        predictions_file.write(b"".join(to_json(p) + b"\n" for p in batch))
        result.n_predictions += len(batch)
        if bar is not None:
            bar.update(len(batch))

    def on_dead(batch: list[DeadLetter]) -> None:
        dead_sink_batch.extend(batch)
        result.dead_letters.update(d.reason for d in batch)

    dead_sink_batch: list[DeadLetter] = []
    sinks = FlowSinks(
        predictions=CallbackSink(on_predictions),
        dead_letters=CallbackSink(on_dead),
        metrics=CallbackSink(result.points.extend),
        model_events=CallbackSink(result.model_events.extend),
        registry=registry,
    )
    flow = build_dataflow(spec, JsonLinesSource(events, "event"), JsonLinesSource(labels, "label"), sinks)
    start = time.perf_counter()
    try:
        run_in_process(flow, epoch_interval=timedelta(seconds=10))
    finally:
        predictions_file.close()
        if bar is not None:
            bar.close()
    result.seconds = time.perf_counter() - start
    with (out / "dead-letter.jsonl").open("wb") as f:
        f.write(b"".join(to_json(d) + b"\n" for d in dead_sink_batch))
    with (out / "model-events.jsonl").open("wb") as f:
        f.write(b"".join(to_json(e) + b"\n" for e in result.model_events))
    write_report(
        out,
        result.points,
        mode="replay",
        inputs={"events": str(events), "labels": str(labels)},
        features=features,
        predictions=result.n_predictions,
        dead_letters=dict(result.dead_letters),
        seconds=round(result.seconds, 3),
        actions=actions_summary(result.model_events),
    )
    if plot:
        plot_metrics(
            result.points,
            out / "metrics.png",
            title=f"replay of {events.name}",
            markers=action_markers(result.model_events),
        )
    return result


__all__ = ["ReplayResult", "replay"]
