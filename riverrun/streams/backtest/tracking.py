"""A replay tracked in MLflow: ``riverrun replay ... --mlflow [TRACKING_URI]``.

One *parent* run for the replay and one *child* run (tag ``mlflow.parentRunId``) per model
instance of ``report.json``'s ``runs`` (model x policy x segment: ``lr-default``, ``lr.DE``):

- params, on every run (so a child reads alone): the input (files with their size and sha256,
  or the Kafka topics with each partition's offset range), the flow settings (feature mode and
  window, label TTL, metric windows, segment_by) and the riverrun, River, Python, Bytewax and
  MLflow versions; on a child also its recipe and the recipe's hyper-parameters (River's
  ``_get_params``, flattened: ``hp.LogisticRegression.l2``), its policy name and every
  ``PolicyConfig`` field (``policy.cooldown``);
- metrics, on a child, as series over the stream: every metrics point the model step emitted
  (every ``report_every`` labels, and at the end) gives accuracy, log loss, ROC AUC and their
  rolling versions at ``step`` = the events the model had served, ``timestamp`` = the event
  time; each lifecycle action is a point of ``action.<action>`` (the count of that action so
  far) at its exact event time, its step interpolated between the neighbouring metrics points,
  and a tag ``action.0001`` (``at action: reason``); the parent gets the replay's totals;
- artifacts: the parent has ``report.html``, ``metrics.png``, ``report.json`` and
  ``model-events.jsonl``; a child has its own ``model-events.jsonl``, its ``report.json`` entry
  as ``run.json`` and its final model as an MLflow pyfunc model in ``model/``
  (``mlflow.pyfunc.load_model("runs:/<id>/model")``, as ``riverrun models export --format
  mlflow`` writes one).

Without a URI the store is ``sqlite:///OUT/mlflow.db`` with artifacts in ``OUT/mlartifacts``:
nothing to run (``mlflow ui --backend-store-uri sqlite:///OUT/mlflow.db`` shows it, with the full
``mlflow`` package). mlflow is imported only here, lazily (``require_mlflow``).
"""

from __future__ import annotations

import bisect
import dataclasses
import hashlib
import json
import math
import platform
import re
import tempfile
from collections import Counter
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import river

import riverrun
from riverrun.errors import ConfigError
from riverrun.registry.mlflow_export import mlflow_env, require_mlflow, save_pyfunc
from riverrun.registry.unpickler import restricted_loads
from riverrun.schemas import ModelEvent
from riverrun.streams.backtest.inputs import ReplayInput
from riverrun.streams.backtest.replay import ReplayResult, Run
from riverrun.streams.core.items import MetricsPoint, to_json

EXPERIMENT = "riverrun-replay"
PARENT_ARTIFACTS = ("report.html", "metrics.png", "report.json", "model-events.jsonl")
MAX_ACTION_TAGS = 500  # a run's action tags beyond these are counted, not tagged
_MAX_VALUE = 500  # characters of a param or tag value kept


def default_uri(out_dir: str | Path) -> str:
    """The local store of a replay: ``sqlite:///OUT/mlflow.db`` (absolute)."""
    return f"sqlite:///{(Path(out_dir) / 'mlflow.db').resolve()}"


@dataclasses.dataclass(frozen=True)
class Tracked:
    """Where a replay was logged: the store, the experiment, the parent and child run ids (by
    model instance name)."""

    uri: str
    experiment_id: str
    parent: str
    children: dict[str, str]


class ReplayTracker:
    """The MLflow experiment a replay is logged to, opened *before* the replay so that a wrong
    URI or a missing extra fails at once. ``log`` writes the runs afterwards."""

    def __init__(self, uri: str | None, out_dir: str | Path, experiment: str = EXPERIMENT):
        require_mlflow("riverrun replay --mlflow")
        from mlflow.exceptions import MlflowException
        from mlflow.tracking import MlflowClient

        self.out = Path(out_dir)
        self.uri = uri or default_uri(self.out)
        if not uri:
            self.out.mkdir(parents=True, exist_ok=True)
        try:  # a server that does not answer fails in seconds here, not after minutes of retries
            with mlflow_env(MLFLOW_HTTP_REQUEST_MAX_RETRIES="1", MLFLOW_HTTP_REQUEST_TIMEOUT="15"):
                self.client = MlflowClient(tracking_uri=self.uri)
                found = self.client.get_experiment_by_name(experiment)
                if found is not None:
                    self.experiment_id = found.experiment_id
                else:  # a local store keeps its artifacts beside it, not in ./mlruns of the cwd
                    where = (self.out / "mlartifacts").resolve().as_uri() if not uri else None
                    self.experiment_id = self.client.create_experiment(experiment, artifact_location=where)
        except MlflowException as exc:
            raise ConfigError(f"MLflow tracking store {self.uri}: {exc.message}") from None

    def log(
        self, result: ReplayResult, inp: ReplayInput, flow: dict[str, Any], run_name: str | None = None
    ) -> Tracked:
        """Log ``result`` (a finished ``replay_input``, with ``final_models``) as a parent run
        and one child run per model instance; ``flow`` is the flow settings it ran with."""
        from mlflow.entities import Metric, Param

        report = result.report
        shared = {**input_params(inp), **flow_params(flow), **version_params()}
        parent = self.client.create_run(
            self.experiment_id,
            run_name=run_name or inp.title,
            tags={"riverrun.kind": "replay", "riverrun.out": str(self.out.resolve())},
        ).info.run_id
        ok = False
        try:
            now = _ms(None)
            totals = {
                "events": report["events"],
                "predictions": report.get("predictions", result.n_predictions),
                "events_per_second": report["events_per_second"],
                "seconds": report.get("seconds", result.seconds),
                "dead_letters": sum(result.dead_letters.values()),
            }
            self._batch(
                parent,
                metrics=[Metric(k, float(v), now, 0) for k, v in totals.items()],
                params=[Param(k, v) for k, v in {**shared, "passes": str(report["passes"])}.items()],
            )
            for name in PARENT_ARTIFACTS:
                if (self.out / name).is_file():
                    self.client.log_artifact(parent, str(self.out / name))
            runs = {r.name: r for r in result.runs}
            children = {}
            for entry in report["runs"]:
                children[entry["name"]] = self._child(parent, entry, runs[entry["run"]], result, shared)
            ok = True
        finally:
            self.client.set_terminated(parent, "FINISHED" if ok else "FAILED")
        return Tracked(self.uri, self.experiment_id, parent, children)

    def _child(self, parent: str, entry: dict, run: Run, result: ReplayResult, shared: dict) -> str:
        from mlflow.entities import Param, RunTag

        name = entry["name"]
        child = self.client.create_run(
            self.experiment_id,
            run_name=name,
            tags={
                "mlflow.parentRunId": parent,
                "riverrun.kind": "replay-run",
                "riverrun.run": entry["run"],
                "riverrun.policy": run.policy,
                "riverrun.segment": entry["segment"] or "",
            },
        ).info.run_id
        ok = False
        try:
            params = {**shared, **run_params(run, entry["segment"])}
            points = sorted((p for p in result.points if p.model == name), key=lambda p: p.n_predicted)
            events = [e for e in result.model_events if e.model == name]
            metrics = metric_series(points) + action_series(events, points)
            counts = RunTag("riverrun.action_counts", json.dumps(entry["action_counts"]))
            tags = [*action_tags(events), counts]
            self._batch(child, metrics=metrics, params=[Param(k, v) for k, v in params.items()], tags=tags)
            with tempfile.TemporaryDirectory() as tmp:
                folder = Path(tmp)
                (folder / "model-events.jsonl").write_bytes(b"".join(to_json(e) + b"\n" for e in events))
                (folder / "run.json").write_text(json.dumps(entry, indent=2, default=str))
                for file in ("model-events.jsonl", "run.json"):
                    self.client.log_artifact(child, str(folder / file))
                final = result.final_models.get(name)
                if final is not None:
                    save_pyfunc(
                        restricted_loads(final.blob),
                        folder / "model",
                        {
                            "riverrun_model": name,
                            "recipe": final.recipe,
                            "serving_version": final.version,
                            "n_learned": final.n_learned,
                            "event_time_end": final.event_time_end.isoformat()
                            if final.event_time_end
                            else None,
                            "written_by": {
                                k: shared[k] for k in ("python_version", "river_version", "riverrun_version")
                            },
                        },
                    )
                    self.client.log_artifacts(child, str(folder / "model"), "model")
            ok = True
        finally:
            self.client.set_terminated(child, "FINISHED" if ok else "FAILED")
        return child

    def _batch(self, run_id: str, metrics=(), params=(), tags=()) -> None:
        """``log_batch`` within MLflow's limits per request (1000 metrics, 100 params, 100 tags)."""
        metrics, params, tags = list(metrics), list(params), list(tags)
        for i in range(0, max(len(metrics), 1), 1000):
            self.client.log_batch(run_id, metrics=metrics[i : i + 1000])
        for i in range(0, len(params), 100):
            self.client.log_batch(run_id, params=params[i : i + 100])
        for i in range(0, len(tags), 100):
            self.client.log_batch(run_id, tags=tags[i : i + 100])


# -- params -------------------------------------------------------------------------------------


def _value(v: Any) -> str:
    """A param or tag value: text, classes by name, sequences as JSON; cut at ``_MAX_VALUE``."""
    if isinstance(v, type):
        text = v.__name__
    elif isinstance(v, list | tuple):
        text = json.dumps([x.__name__ if isinstance(x, type) else x for x in v], default=str)
    else:
        text = str(v)
    return text[:_MAX_VALUE]


def _key(name: str) -> str:
    """A param key MLflow accepts (letters, digits, ``_-./`` and spaces)."""
    return re.sub(r"[^\w\-./ ]", "_", name)[:250]


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def input_params(inp: ReplayInput) -> dict[str, str]:
    """The input as params: files with size and sha256, or topics with each partition's range.

    >>> from riverrun.streams.backtest.inputs import ReplayInput
    >>> ranges = [{"partition": 0, "start": 5, "end": 9}]
    >>> d = {"kafka": "k:9092", "topics": {"events": "ev"}, "events": ranges}
    >>> input_params(ReplayInput(None, None, "ev", "lb", describe=d))
    {'input.kafka': 'k:9092', 'input.topics.events': 'ev', 'input.events.p0': '5..9'}
    """
    out: dict[str, str] = {}
    for key, value in inp.describe.items():
        if isinstance(value, list):  # a topic's partitions: [{partition, start, end}]
            for r in value:
                out[f"input.{key}.p{r['partition']}"] = f"{r['start']}..{r['end']}"
        elif isinstance(value, dict):
            out.update({f"input.{key}.{k}": _value(v) for k, v in value.items()})
        elif value is not None:
            out[f"input.{key}"] = _value(value)
            path = Path(str(value))
            if key in ("events", "labels") and path.is_file():
                out[f"input.{key}.bytes"] = str(path.stat().st_size)
                out[f"input.{key}.sha256"] = sha256_of(path)
    return out


def flow_params(flow: dict[str, Any]) -> dict[str, str]:
    """The flow settings the replay ran with (``replay_flow_options``), ``None`` as ``none``."""
    return {k: "none" if v is None else _value(v) for k, v in flow.items()}


def version_params() -> dict[str, str]:
    import mlflow

    return {
        "riverrun_version": riverrun.__version__,
        "river_version": river.__version__,
        "python_version": platform.python_version(),
        "bytewax_version": metadata.version("bytewax"),
        "mlflow_version": mlflow.__version__,
    }


def hyper_parameters(params: dict[str, Any], prefix: str = "hp") -> dict[str, str]:
    """River's ``_get_params()`` flattened: a ``(class, params)`` pair is the class name and its
    params one level down.

    >>> from river import linear_model, optim
    >>> hp = hyper_parameters(linear_model.LogisticRegression(optimizer=optim.SGD(0.1))._get_params())
    >>> hp["hp.optimizer"], hp["hp.optimizer.lr"], hp["hp.optimizer.lr.learning_rate"], hp["hp.l2"]
    ('SGD', 'Constant', '0.1', '0.0')
    >>> hyper_parameters({"SelectType": {"_POSITIONAL_ARGS": (int, float)}, "a+b": 1})
    {'hp.SelectType._POSITIONAL_ARGS': '["int", "float"]', 'hp.a_b': '1'}
    """
    out: dict[str, str] = {}
    for key, value in params.items():
        name = _key(f"{prefix}.{key}")
        pair = isinstance(value, tuple) and len(value) == 2
        if pair and isinstance(value[0], type) and isinstance(value[1], dict):  # (class, its params)
            out[name] = value[0].__name__
            out.update(hyper_parameters(value[1], name))
        elif isinstance(value, dict):
            out.update(hyper_parameters(value, name))
        else:
            out[name] = _value(value)
    return out


def run_params(run: Run, segment: str | None) -> dict[str, str]:
    """A child's own params: recipe and hyper-parameters, policy and its settings, segment."""
    from riverrun.learners import build_model

    policy = {f"policy.{k}": _value(v) for k, v in dataclasses.asdict(run.config).items()}
    return {
        "run": run.name,
        "model": run.model,
        "recipe": run.recipe,
        "segment": segment or "none",
        "policy": run.policy,
        **policy,
        **hyper_parameters(build_model(run.recipe)._get_params()),
    }


# -- metrics and tags ---------------------------------------------------------------------------


def _ms(at: datetime | None) -> int:
    """Milliseconds since the epoch: of event time ``at``, or now (``None``)."""
    if at is None:
        return int(datetime.now().timestamp() * 1000)
    return int(at.timestamp() * 1000)


def metric_series(points: list[MetricsPoint]) -> list:
    """Every metric of every point at step = events served, timestamp = event time."""
    from mlflow.entities import Metric

    out = []
    for p in points:
        at = _ms(p.ts) if p.ts else 0
        for key, value in p.metrics.items():
            if isinstance(value, int | float) and not isinstance(value, bool):
                out.append(Metric(key, float(value), at, p.n_predicted))
        out.append(Metric("n_learned", float(p.n_learned), at, p.n_predicted))
    return out


def event_index(points: list[MetricsPoint], at: datetime) -> int:
    """The events served at event time ``at``, interpolated between the metrics points around
    it (clamped to the first and last).

    >>> from datetime import UTC, datetime
    >>> pts = [MetricsPoint("m", 1, datetime(2024, 1, 1, 0, 0, s, tzinfo=UTC), n, n, {}, {}) for s, n in
    ...        ((0, 100), (10, 200))]
    >>> event_index(pts, datetime(2024, 1, 1, 0, 0, 5, tzinfo=UTC))
    150
    >>> event_index(pts, datetime(2025, 1, 1, tzinfo=UTC))  # after the last point
    200
    """
    timed = [p for p in points if p.ts is not None]
    if not timed:
        return 0
    times = [p.ts.timestamp() for p in timed]
    t = at.timestamp()
    i = bisect.bisect_left(times, t)
    if i == 0:
        return timed[0].n_predicted
    if i == len(timed):
        return timed[-1].n_predicted
    a, b = timed[i - 1], timed[i]
    share = (t - times[i - 1]) / max(times[i] - times[i - 1], 1e-9)
    return round(a.n_predicted + share * (b.n_predicted - a.n_predicted))


def action_series(events: list[ModelEvent], points: list[MetricsPoint]) -> list:
    """``action.<action>``: the count of that action so far, at its event time."""
    from mlflow.entities import Metric

    counts: Counter = Counter()
    out = []
    for e in events:
        counts[e.action] += 1
        out.append(
            Metric(f"action.{e.action}", float(counts[e.action]), _ms(e.at), event_index(points, e.at))
        )
    return out


def action_tags(events: list[ModelEvent]) -> list:
    """One tag per action (the first ``MAX_ACTION_TAGS``): ``action.0001`` = when, what, why."""
    from mlflow.entities import RunTag

    tags = []
    for n, e in enumerate(events[:MAX_ACTION_TAGS], start=1):
        evidence = (
            "" if e.statistic is None or math.isnan(e.statistic) else f" ({e.detector} {e.statistic:.4g})"
        )
        tags.append(RunTag(f"action.{n:04d}", f"{e.at.isoformat()} {e.action}: {e.reason}{evidence}"[:5000]))
    return tags
