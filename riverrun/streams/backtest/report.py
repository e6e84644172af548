"""Run reports: ``report.json`` (final and windowed metrics) and ``metrics.png``."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from riverrun.streams.core.items import MetricsPoint


def summarize(points: list[MetricsPoint]) -> dict[str, Any]:
    """Per model: the final point and the windowed series, in event-time order."""
    models: dict[str, dict[str, Any]] = {}
    for p in points:
        entry = models.setdefault(p.model, {"final": None, "windows": []})
        if p.final:
            entry["final"] = p.to_dict()
        else:
            entry["windows"].append(p.to_dict())
    return models


#: Actions worth a line on the plot (periodic checkpoints would crowd it).
MARKED_ACTIONS = (
    "concept_drift",
    "rollback",
    "promotion",
    "covariate_shift",
    "prior_shift",
    "prediction_drift",
    "learning_paused",
    "learning_resumed",
)


MARKER_COLORS = {
    "rollback": "darkorange",
    "promotion": "green",
    "learning": "saddlebrown",
    "shift": "purple",
    "drift": "crimson",
    "corrupt": "grey",
    "fixed": "grey",
}


def actions_summary(events: list) -> list[dict]:
    """Every model event except periodic checkpoints, with its evidence, in order."""
    return [
        e.model_dump(mode="json", exclude_none=True)
        for e in events
        if not (e.action == "checkpoint" and e.reason == "periodic")
    ]


def action_markers(events: list) -> list[tuple[datetime, str]]:
    markers = []
    for e in events:
        if e.action in MARKED_ACTIONS and e.at is not None:
            what = e.action.replace("_", " ")
            if e.feature:
                what += f" ({e.feature})"
            if e.to_version is not None and e.action in ("rollback", "promotion"):
                what += f" -> v{e.to_version}"
            markers.append((e.at, f"{e.model}: {what}"))
    return markers


def write_report(out_dir: Path, points: list[MetricsPoint], **extra: Any) -> Path:
    """Write ``report.json``; ``extra`` adds top-level fields (inputs, timing, dead letters)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    report = {**extra, "models": summarize(points)}
    path = out_dir / "report.json"
    path.write_text(json.dumps(report, indent=2, sort_keys=False, default=str) + "\n")
    return path


def plot_metrics(
    points: list[MetricsPoint],
    path: Path,
    metric: str = "accuracy_rolling",
    markers: list[tuple[datetime, str]] | None = None,
    title: str = "riverrun",
) -> Path:
    """Rolling ``metric`` of each model over event time; ``markers`` draw labelled vertical lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10, 4.5), dpi=110)
    for model, entry in summarize(points).items():
        series = [w for w in entry["windows"] if metric in w["metrics"] and w["ts"]]
        if not series:
            continue
        xs = [datetime.fromisoformat(w["ts"]) for w in series]
        ys = [w["metrics"][metric] for w in series]
        ax.plot(xs, ys, label=model, linewidth=1.6)
    for when, text in markers or []:
        color = next((c for word, c in MARKER_COLORS.items() if word in text), "crimson")
        ax.axvline(when, color=color, linestyle="--", linewidth=1)
        ax.annotate(
            text,
            (when, 0.02),
            xycoords=("data", "axes fraction"),
            rotation=90,
            va="bottom",
            ha="right",
            fontsize=7,
            color=color,
        )
    ax.set_xlabel("event time")
    ax.set_ylabel(metric.replace("_", " "))
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="lower left")
    fig.autofmt_xdate()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


class PsiTimeline:
    """PSI per numeric feature over event time, from a ``CovariateShiftMonitor`` fed the
    feature vectors the models were served on (the same for every run of a replay).

    Like the lifecycle's monitors it sees one event in ``sample_every`` (by source offset, so
    the sample does not depend on batching) and keeps a point every ``point_every`` sampled
    events, once the reference and the window are full.
    """

    def __init__(
        self,
        reference_size: int = 500,
        window_size: int = 500,
        sample_every: int = 10,
        point_every: int = 50,
    ):
        from riverrun.detectors.covariate import CovariateShiftMonitor

        self.monitor = CovariateShiftMonitor(
            reference_size=reference_size, window_size=window_size, ks_alpha=None, check_every=point_every
        )
        self.sample_every = sample_every
        self.point_every = point_every
        self.points: list[tuple[datetime, dict[str, float]]] = []
        self._sampled = 0

    def on_batch(self, featured: list) -> None:
        """Take a batch of ``FeaturedEvent``s (a sink's batch: counted here, not per event)."""
        every, monitor = self.sample_every, self.monitor
        # the keyed features step hands its batch on grouped by entity: back to event time
        for item in sorted(featured, key=lambda f: (f.event.ts, f.partition, f.offset)):
            if item.offset % every:
                continue
            monitor.update(item.x)
            self._sampled += 1
            if self._sampled % self.point_every == 0:
                psi = monitor.psi()
                if psi:
                    self.points.append((item.event.ts, psi))

    def to_dict(self) -> dict[str, Any]:
        return {
            "reference_size": self.monitor.reference_size,
            "window_size": self.monitor.window_size,
            "sample_every": self.sample_every,
            "warning": self.monitor.psi_warning,
            "threshold": self.monitor.psi_threshold,
            "series": [
                {"ts": ts.isoformat(), "psi": psi} for ts, psi in sorted(self.points, key=lambda p: p[0])
            ],
        }


def buckets_dict(buckets) -> dict[str, Any] | None:
    """A ``Buckets`` histogram as JSON: upper bounds (seconds), counts per bucket (+Inf last)."""
    if buckets is None:
        return None
    return {"bounds": list(buckets.bounds), "counts": list(buckets.counts), "sum": buckets.sum}
