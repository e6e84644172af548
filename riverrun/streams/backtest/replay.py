"""Backtests: run recorded events and labels through the live dataflow, in event-time order.

The flow is the same one ``riverrun run`` builds; only the sources (files, or a finite range of
the Kafka topics) and the sinks (files) differ, and the order is exact (no wall-clock wait), so
a replay decides exactly as live did. Predictions are stamped ``served_at`` = event time, so the
same input gives a byte-identical ``predictions.jsonl``.

Several models and policies are compared in one run: every (model, policy) combination is a
model step of its own in *one* dataflow, so the input is read, decoded, ordered and featured
once and each record is routed to every run (the cost of a run is its model step only).
``pass_per_run`` runs one pass per combination instead, which repeats the reading, decoding and
features for each, but measures each run's own events per second.

``segment_by`` runs one instance of every run per value of a feature (``lr.DE``, ``lr.FR``, ...),
as the live flow's ``[flow] segment_by`` does (``segments``); the report has one entry per
instance. A Kafka-range replay also reads the ``control`` topic over the same range, so operator
rollbacks and checkpoints take effect at the event time they did live.

Dead letters are stamped with event time, not the wall clock: ``at`` is the record's own ``ts``
when its payload has a valid one, else ``NO_TIME`` (1970-01-01, the record has none), and the
file is sorted by (at, origin), so ``dead-letter.jsonl`` is byte-identical across runs too.
"""

from __future__ import annotations

import collections
import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from bytewax.outputs import Sink
from pydantic import AwareDatetime, TypeAdapter, ValidationError

from riverrun.learners.lifecycle import Checkpoint, PolicyConfig
from riverrun.schemas import DEFAULT_MAX_BYTES, DeadLetter, ModelEvent
from riverrun.streams.backtest.inputs import ReplayInput, file_input
from riverrun.streams.backtest.progress import Progress
from riverrun.streams.backtest.report import (
    PsiTimeline,
    action_markers,
    actions_summary,
    buckets_dict,
    plot_metrics,
    write_report,
)
from riverrun.streams.core.features import FeatureMode
from riverrun.streams.core.items import MetricsPoint, to_json
from riverrun.streams.core.join import LABEL_TTL_SECONDS
from riverrun.streams.core.modelstep import StepConfig
from riverrun.streams.core.ttl import ENTITY_TTL_SECONDS
from riverrun.streams.flow.dataflow import FlowSinks, FlowSpec, build_dataflow
from riverrun.streams.flow.metrics import FlowMetrics
from riverrun.streams.flow.runtime import run_in_process
from riverrun.streams.flow.sinks import CallbackSink
from riverrun.streams.flow.steps import announce_stability

#: Dead-letter reasons the model steps give (once per run); the others come from decoding the
#: input, which a pass per run would repeat.
STEP_REASONS = frozenset(
    {"duplicate_event_id", "label_type", "label_expired", "unknown_event", "model_error", "label_quarantined"}
)


@dataclass(frozen=True)
class Run:
    """One (model, policy) combination: ``name`` is its model key (in predictions and report)."""

    name: str
    model: str
    recipe: str
    policy: str
    config: PolicyConfig


def expand_runs(models: list[tuple[str, str]], policies: list[tuple[str, PolicyConfig]]) -> list[Run]:
    """Every combination of ``models`` [(name, recipe)] and ``policies`` [(name, config)]. With
    one policy a run is named after its model (``lr``); with several, ``MODEL-POLICY``.

    >>> [r.name for r in expand_runs([("lr", "lr")], [("none", PolicyConfig(enabled=False))])]
    ['lr']
    >>> off, on = ("none", PolicyConfig(enabled=False)), ("default", PolicyConfig())
    >>> [r.name for r in expand_runs([("lr", "lr"), ("arf", "arf")], [off, on])]
    ['lr-none', 'lr-default', 'arf-none', 'arf-default']
    """
    if not models or not policies:
        raise ValueError("need at least one model and one policy")
    runs = [
        Run(name if len(policies) == 1 else f"{name}-{pname}", name, recipe, pname, config)
        for name, recipe in models
        for pname, config in policies
    ]
    names = [r.name for r in runs]
    if len(set(names)) != len(names):
        raise ValueError(f"run names must be unique, got {names}: name the models (NAME=RECIPE)")
    return runs


@dataclass
class ReplayResult:
    points: list[MetricsPoint] = field(default_factory=list)
    n_predictions: int = 0
    dead_letters: collections.Counter = field(default_factory=collections.Counter)
    model_events: list[ModelEvent] = field(default_factory=list)
    seconds: float = 0.0
    runs: list[Run] = field(default_factory=list)
    run_seconds: dict[str, float] = field(default_factory=dict)  # the pass each run was in
    report: dict[str, Any] = field(default_factory=dict)
    # with ``final_models``: each model instance's serving model at the end (its pickle, as a
    # Checkpoint with id "final"), by name (lr, lr-default, lr.DE)
    final_models: dict[str, Checkpoint] = field(default_factory=dict)

    def final(self, model: str) -> MetricsPoint:
        return next(p for p in self.points if p.final and p.model == model)


def replay(
    events: str | Path,
    labels: str | Path,
    out_dir: str | Path,
    models: list[tuple[str, str]],
    features: FeatureMode = "default",
    feature_window_seconds: float = 300.0,
    label_ttl_seconds: float = LABEL_TTL_SECONDS,
    metrics_window: int = 1000,
    report_every: int = 1000,
    progress: bool | None = False,
    plot: bool = True,
    policy: PolicyConfig | None = None,
    registry: Sink | None = None,
    policies: list[tuple[str, PolicyConfig]] | None = None,
    pass_per_run: bool = False,
    segment_by: str | None = None,
    entity_ttl_seconds: float | None = ENTITY_TTL_SECONDS,
) -> ReplayResult:
    """Replay ``events`` and ``labels`` (JSON Lines) through ``models`` [(name, recipe)].

    Writes ``predictions.jsonl`` (one per event and run, in event order), ``dead-letter.jsonl``,
    ``model-events.jsonl``, ``report.json`` and (with ``plot``) ``metrics.png`` and
    ``report.html`` into ``out_dir``. ``policy`` turns the model lifecycle on for every model;
    ``policies`` [(name, config)] compares several (every model with every policy). ``registry``
    (a ``RegistrySink``) persists checkpoints and audits model events. ``segment_by`` runs one
    instance of each model per value of that feature (or ``entity``), as ``[flow] segment_by``.
    ``entity_ttl_seconds``: an entity quiet that long starts its features afresh (None: never),
    as ``[flow] entity_ttl_seconds``.
    """
    return replay_input(
        file_input(events, labels),
        out_dir,
        models,
        features=features,
        feature_window_seconds=feature_window_seconds,
        label_ttl_seconds=label_ttl_seconds,
        metrics_window=metrics_window,
        report_every=report_every,
        progress=progress,
        plot=plot,
        policies=policies
        or [("default" if policy and policy.enabled else "none", policy or PolicyConfig(False))],
        registry=registry,
        pass_per_run=pass_per_run,
        segment_by=segment_by,
        entity_ttl_seconds=entity_ttl_seconds,
    )


def replay_input(
    inp: ReplayInput,
    out_dir: str | Path,
    models: list[tuple[str, str]],
    policies: list[tuple[str, PolicyConfig]],
    features: FeatureMode = "default",
    feature_window_seconds: float = 300.0,
    label_ttl_seconds: float = LABEL_TTL_SECONDS,
    metrics_window: int = 1000,
    report_every: int = 1000,
    max_payload_bytes: int = DEFAULT_MAX_BYTES,
    progress: bool | None = False,
    plot: bool = True,
    registry: Sink | None = None,
    pass_per_run: bool = False,
    segment_by: str | None = None,
    final_models: bool = False,
    entity_ttl_seconds: float | None = ENTITY_TTL_SECONDS,
) -> ReplayResult:
    """Replay ``inp`` through every (model, policy) run; see ``replay`` for the outputs.
    ``progress``: True/False, or None for "when stderr is a terminal". ``final_models`` keeps
    each model's serving model at the end in ``result.final_models`` (``tracking`` logs them);
    it takes the place of a ``registry``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    runs = expand_runs(models, policies)
    result = ReplayResult(runs=runs)
    if final_models:
        if registry is not None:
            raise ValueError("final_models reads the registry sink's checkpoints: give no registry")

        def keep_final(batch: list) -> None:
            for item in batch:
                if isinstance(item, Checkpoint) and item.id == "final":
                    result.final_models[item.model] = item

        registry = CallbackSink(keep_final)
    reference = next((r.config for r in runs if r.config.enabled), PolicyConfig())
    psi = PsiTimeline(
        reference.reference_size,
        reference.monitor_window,
        reference.monitor_every,
        exclude=reference.covariate_exclude,  # the features the runs' covariate monitor leaves out
    )
    if inp.total_events:
        # a short stream is sampled more densely, so that the reference and a few windows fill;
        # about 200 points on the plot
        fill = 4 * (reference.reference_size + reference.monitor_window)
        psi.sample_every = max(1, min(psi.sample_every, inp.total_events // fill))
        psi.point_every = max(10, inp.total_events // psi.sample_every // 200)
    bar = Progress(
        None if inp.total_events is None else inp.total_events * (len(runs) if pass_per_run else 1),
        enabled=progress,
    )
    dead: list[DeadLetter] = []
    label_delay: dict[str, Any] = {}
    passes = [[r] for r in runs] if pass_per_run else [runs]
    with (out / "predictions.jsonl").open("wb") as predictions_file:
        start = time.perf_counter()
        try:
            for k, group in enumerate(passes):
                seconds, views = _one_pass(
                    inp,
                    group,
                    predictions_file,
                    result,
                    dead,
                    bar,
                    psi if k == 0 else None,
                    registry,
                    keep_input_letters=k == 0,
                    spec_args={
                        "features": features,
                        "feature_window_seconds": feature_window_seconds,
                        "max_payload_bytes": max_payload_bytes,
                        "segment_by": segment_by,
                        "entity_ttl_seconds": entity_ttl_seconds,
                    },
                    step_args={
                        "label_ttl_seconds": label_ttl_seconds,
                        "metrics_window": metrics_window,
                        "report_every": report_every,
                        "final_model": final_models,
                    },
                )
                for r in group:
                    result.run_seconds[r.name] = seconds
                for name, view in views.items():
                    label_delay[name] = buckets_dict(view.label_delay if view is not None else None)
        finally:
            bar.close()
        result.seconds = time.perf_counter() - start
    with (out / "dead-letter.jsonl").open("wb") as f:
        f.write(b"".join(to_json(d) + b"\n" for d in sorted(dead, key=_letter_order)))
    with (out / "model-events.jsonl").open("wb") as f:
        f.write(b"".join(to_json(e) + b"\n" for e in result.model_events))
    instances = _instances(runs, result.points, segment_by)
    n_events = max((sum(result.final(i).n_predicted for i, _ in instances[r.name]) for r in runs), default=0)
    shared = len(passes) == 1 and len(runs) > 1
    run_entries = [
        _run_entry(r, result, label_delay.get(name), shared, name, segment)
        for r in runs
        for name, segment in instances[r.name]
    ]
    report_path = write_report(
        out,
        result.points,
        mode="replay",
        inputs=inp.describe,
        features=features,
        events=n_events,
        predictions=result.n_predictions,
        dead_letters=dict(result.dead_letters),
        seconds=round(result.seconds, 3),
        events_per_second=round(n_events * len(passes) / max(result.seconds, 1e-9), 1),
        passes=len(passes),
        segment_by=segment_by,
        runs=run_entries,
        psi=psi.to_dict(),
        actions=actions_summary(result.model_events),
        # per recipe: is this replay River's run (exact_replay), would a restart be (exact_recovery)
        exactness={
            v.recipe: v.to_dict()
            for v in announce_stability(x for r in runs for x in (r.recipe, *r.config.challengers))
        },
    )
    result.report = json.loads(report_path.read_text())
    if plot:
        from riverrun.streams.backtest.html_report import write_html_report

        plot_metrics(
            result.points, out / "metrics.png", title=inp.title, markers=action_markers(result.model_events)
        )
        write_html_report(out, result.report, title=inp.title)
    return result


def _one_pass(
    inp: ReplayInput,
    runs: list[Run],
    predictions_file,
    result: ReplayResult,
    dead: list[DeadLetter],
    bar: Progress,
    psi: PsiTimeline | None,
    registry: Sink | None,
    keep_input_letters: bool,
    spec_args: dict[str, Any],
    step_args: dict[str, Any],
) -> tuple[float, dict]:
    """One dataflow over ``inp`` with one model step per run; returns its seconds and the
    steps' last views (label delays)."""
    spec = FlowSpec(
        steps=tuple(
            StepConfig(
                model=r.name,
                recipe=r.recipe,
                served_at_event_time=True,
                policy=r.config,
                event_topic=inp.event_topic,
                label_topic=inp.label_topic,
                **step_args,
            )
            for r in runs
        ),
        finite=True,
        event_partitions=inp.event_partitions,
        label_partitions=inp.label_partitions,
        **spec_args,
    )
    per_event = len(runs)
    pending = [0]  # predictions not yet counted as whole events

    def on_predictions(batch: list) -> None:
        predictions_file.write(b"".join([to_json(p) + b"\n" for p in batch]))
        result.n_predictions += len(batch)
        pending[0] += len(batch)
        done, pending[0] = divmod(pending[0], per_event)
        bar.update(done)

    def on_dead(batch: list[DeadLetter]) -> None:
        if not keep_input_letters:
            batch = [d for d in batch if d.reason in STEP_REASONS]
        batch = [event_time_letter(d) for d in batch]
        dead.extend(batch)
        result.dead_letters.update(d.reason for d in batch)

    metrics = FlowMetrics()  # its model views keep each step's label-delay histogram
    sinks = FlowSinks(
        predictions=CallbackSink(on_predictions),
        dead_letters=CallbackSink(on_dead),
        metrics=CallbackSink(result.points.extend),
        model_events=CallbackSink(result.model_events.extend),
        registry=registry,
        features=None if psi is None else CallbackSink(psi.on_batch),
    )
    flow = build_dataflow(
        spec,
        inp.events,
        inp.labels,
        sinks,
        control=inp.control,
        control_loader=inp.control_loader,
        metrics=metrics,
    )
    start = time.perf_counter()
    run_in_process(flow, epoch_interval=timedelta(seconds=10))
    return time.perf_counter() - start, metrics.views()


#: ``at`` of a dead letter whose record has no valid event time of its own (replay only).
NO_TIME = datetime(1970, 1, 1, tzinfo=UTC)

_TIME = TypeAdapter(AwareDatetime)


def event_time_letter(letter: DeadLetter) -> DeadLetter:
    """``letter`` stamped with event time instead of the wall clock: its record's own ``ts``
    (read as the schemas read it) when the payload has a valid one, else ``NO_TIME``.

    >>> from riverrun.schemas import Origin, dead_letter
    >>> ok = dead_letter("label", b'{"event_id": "e", "ts": 1704067200}', Origin(), "unknown_event", "")
    >>> event_time_letter(ok).at.isoformat()
    '2024-01-01T00:00:00+00:00'
    >>> event_time_letter(dead_letter("event", b"{not json", Origin(), "invalid_json", "")).at == NO_TIME
    True
    """
    at = NO_TIME
    if letter.payload_encoding == "utf-8" and '"ts"' in letter.payload:
        try:  # orjson: bounded nesting depth (hostile payloads end up here)
            record = orjson.loads(letter.payload)
            if isinstance(record, dict) and "ts" in record:
                at = _TIME.validate_python(record["ts"])
        except (ValueError, ValidationError, RecursionError):
            pass
    return letter.model_copy(update={"at": at})


def _letter_order(d: DeadLetter) -> tuple:
    """The order of ``dead-letter.jsonl``: by event time, then origin (it does not depend on
    how the dataflow happened to batch its outputs)."""
    return (d.at, d.kind, d.topic or "", d.partition or 0, d.offset or 0, d.reason, d.error, d.payload)


def _instances(runs: list[Run], points: list[MetricsPoint], segment_by: str | None) -> dict[str, list]:
    """Each run's model instances as [(name, segment)]: the run itself, or with ``segment_by``
    one per segment it saw (``lr.DE``), in name order."""
    if segment_by is None:
        return {r.name: [(r.name, None)] for r in runs}
    out: dict[str, list] = {r.name: [] for r in runs}
    finals = sorted({p.model for p in points if p.final})
    for r in runs:
        prefix = r.name + "."
        out[r.name] = [(m, m[len(prefix) :]) for m in finals if m.startswith(prefix)]
    return out


def _run_entry(
    run: Run, result: ReplayResult, label_delay, shared: bool, name: str, segment: str | None
) -> dict[str, Any]:
    """One run's (or one segment instance's) line of the report: final metrics, counts, actions
    with their evidence."""
    final = result.final(name)
    events = [e for e in result.model_events if e.model == name]
    seconds = result.run_seconds.get(run.name, 0.0)
    return {
        "name": name,
        "run": run.name,
        "segment": segment,
        "model": run.model,
        "recipe": run.recipe,
        "policy": run.policy,
        "model_version": final.model_version,
        "n_predicted": final.n_predicted,
        "n_learned": final.n_learned,
        "metrics": final.metrics,
        "counters": final.counters,
        # accuracy lost against doing nothing (the unchanged model in shadow); None: policy off
        "regret": final.regret,
        # the label-free estimate's error: mean |estimated - realised rolling accuracy| (None:
        # a regression model, or fewer labels than the window)
        "estimate_mae": final.estimate.get("mae"),
        "action_counts": dict(collections.Counter(e.action for e in events)),
        "actions": actions_summary(events),
        "seconds": round(seconds, 3),
        "events_per_second": round(final.n_predicted / max(seconds, 1e-9), 1),
        "shared_pass": shared,
        "label_delay": label_delay,
    }


__all__ = [
    "NO_TIME",
    "ReplayResult",
    "Run",
    "event_time_letter",
    "expand_runs",
    "replay",
    "replay_input",
]
