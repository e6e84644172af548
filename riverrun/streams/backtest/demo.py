"""``riverrun demo``: the whole loop in one process, no broker.

A seeded stream with three troubles at known places (``riverrun.streams.backtest.scenarios``): a sudden
concept drift, a stretch of corrupted (flipped) labels, and a covariate shift on one feature.
Labels arrive a fixed time after their event and a few malformed records are mixed in. Two
copies of ``lr`` learn side by side through the same dataflow as ``riverrun run`` (in-memory
sources): one with the model lifecycle (drift detection, challengers, checkpoints, rollback,
promotion), one without. Expected: the policy promotes a challenger after the drift; when the
flipped labels start, it rolls back to the last checkpoint taken before them and pauses learning
(the labels it does not learn go to the dead letters as ``label_quarantined``) until the labels
agree with the model again; and it only alerts and checkpoints on the covariate shift.
"""

from __future__ import annotations

import secrets
import shutil
import time
from datetime import timedelta
from functools import partial
from pathlib import Path

from riverrun.learners.lifecycle import PolicyConfig
from riverrun.registry import open_registry
from riverrun.schemas import DeadLetter, ModelEvent
from riverrun.streams.backtest.report import (
    action_markers,
    actions_summary,
    plot_metrics,
    with_registry_versions,
    write_report,
)
from riverrun.streams.backtest.scenarios import Scenario
from riverrun.streams.backtest.synth import to_records
from riverrun.streams.core.items import MetricsPoint, to_json
from riverrun.streams.core.modelstep import StepConfig
from riverrun.streams.flow.dataflow import FlowSinks, FlowSpec, build_dataflow
from riverrun.streams.flow.registry_sink import RegistrySink
from riverrun.streams.flow.runtime import run_in_process
from riverrun.streams.flow.sinks import CallbackSink
from riverrun.streams.flow.sources import MemorySource

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
    label_delay_seconds: float = 60.0,
    progress: bool = True,
    seed: int = 7,
) -> dict:
    """Run the demo; write ``report.json``, ``model-events.jsonl``, ``metrics.png`` and the
    signed checkpoints (``registry/``, key in ``registry.key``) into ``out_dir``; return a summary."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    registry_dir, key = demo_registry(out)
    scale = n_events / 20_000
    scenario = Scenario(
        n=n_events,
        drift_at=int(5000 * scale),
        corrupt_from=int(9000 * scale),
        corrupt_to=int(10_000 * scale),
        shift_at=int(14_000 * scale),
        seed=seed,
    )
    rows = list(scenario.rows())
    events, labels = to_records(
        [(x, published) for x, published, _ in rows],
        label_delay=timedelta(seconds=label_delay_seconds),
        n_entities=500,
        seed=seed,
    )
    stream: list = list(events)
    step = max(1, len(stream) // (len(BAD_EVENTS) + 1))
    for k, bad in enumerate(BAD_EVENTS, start=1):
        stream.insert(k * step, bad)

    points: list[MetricsPoint] = []
    model_events: list[ModelEvent] = []
    dead: list[DeadLetter] = []
    n_predictions = 0
    models = (("lr-policy", PolicyConfig()), ("lr-plain", PolicyConfig(enabled=False)))
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
                recipe="lr",
                report_every=200,
                metrics_window=500,
                served_at_event_time=True,
                policy=policy,
            )
            for name, policy in models
        ),
        features="none",
        finite=True,
    )
    sinks = FlowSinks(
        CallbackSink(on_predictions),
        CallbackSink(dead.extend),
        CallbackSink(points.extend),
        CallbackSink(model_events.extend),
        RegistrySink(partial(open_registry, str(registry_dir), key)),
    )
    flow = build_dataflow(spec, MemorySource(stream, "event"), MemorySource(labels, "label"), sinks)
    start = time.perf_counter()
    run_in_process(flow)
    seconds = time.perf_counter() - start
    if bar is not None:
        bar.close()

    # Labels not learned while a model paused learning are dead letters too, counted apart.
    bad_input = [d for d in dead if d.reason != "label_quarantined"]
    truth = [(events[i].ts, f"scenario: {text}") for i, text in scenario.markers()]
    (out / "model-events.jsonl").write_bytes(b"".join(to_json(e) + b"\n" for e in model_events))
    report = write_report(
        out,
        points,
        mode="demo",
        stream={
            "generator": "riverrun.streams.backtest.scenarios.Scenario",
            "events": len(events),
            "troubles": [
                {"event": i, "what": text, "time": events[i].ts.isoformat()} for i, text in scenario.markers()
            ],
            "label_delay_seconds": label_delay_seconds,
        },
        predictions=n_predictions,
        dead_letters=[{"reason": d.reason, "error": d.error} for d in bad_input],
        quarantined_labels=len(dead) - len(bad_input),
        actions=with_registry_versions(actions_summary(model_events), open_registry(str(registry_dir), key)),
        seconds=round(seconds, 3),
    )
    plot = plot_metrics(
        points,
        out / "metrics.png",
        markers=truth + action_markers(model_events),
        title="riverrun demo: rolling accuracy, lr with and without the lifecycle",
    )
    finals = {p.model: p.metrics for p in points if p.final}
    actions = [
        (e.action, e.to_version)
        for e in model_events
        if e.action in ("rollback", "promotion", "covariate_shift", "learning_paused", "learning_resumed")
    ]
    return {
        "report": report,
        "plot": plot,
        "seconds": seconds,
        "final": finals,
        "predictions": n_predictions,
        "dead_letters": len(bad_input),
        "quarantined_labels": len(dead) - len(bad_input),
        "actions": actions,
        "registry": registry_dir,
    }


def demo_registry(out: Path) -> tuple[Path, bytes]:
    """A fresh registry directory for this run and its signing key (random, kept in
    ``OUT/registry.key`` with mode 0600, so ``riverrun models`` can read the checkpoints)."""
    registry_dir = out / "registry"
    if registry_dir.exists():
        shutil.rmtree(registry_dir)
    key = secrets.token_hex(32).encode()
    key_file = out / "registry.key"
    key_file.write_bytes(key)
    key_file.chmod(0o600)
    return registry_dir, key
