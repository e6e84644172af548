"""Run reports: ``report.json`` (final and windowed metrics) and ``metrics.png``."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from riverrun.streams.core.features import COUNTERS
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


def with_registry_versions(actions: list[dict], registry: Any) -> list[dict]:
    """``actions`` (``actions_summary``) with, on every action naming a lifecycle checkpoint
    (``ckpt-3``) the registry stored, its ``registry_version``: the number ``riverrun models
    list`` shows. A registry version's reason starts with the checkpoint id it was saved from."""
    stored: dict[str, dict[str, int]] = {}
    for model in {a["model"] for a in actions if a.get("checkpoint")}:
        stored[model] = {v.reason.split(":", 1)[0]: v.version for v in registry.versions(model)}
    return [
        {**a, "registry_version": stored[a["model"]][a["checkpoint"]]}
        if a.get("checkpoint") in stored.get(a["model"], {})
        else a
        for a in actions
    ]


def action_markers(events: list) -> list[tuple[datetime, str]]:
    markers = []
    for e in events:
        if e.action in MARKED_ACTIONS and e.at is not None:
            what = e.action.replace("_", " ")
            if e.feature:
                what += f" ({e.feature})"
            if e.to_version is not None and e.action in ("rollback", "promotion"):
                what += f" → serving v{e.to_version}"
            markers.append((e.at, f"{e.model}: {what}"))
    return markers


def group_markers(
    markers: list[tuple[datetime, str]], gap: float
) -> list[tuple[datetime, list[tuple[datetime, str]]]]:
    """Markers in time order, grouped while each is within ``gap`` seconds of its group's first
    (they would be drawn on top of each other): [(the group's time, its markers)].

    >>> from datetime import timezone
    >>> t = lambda s: datetime.fromtimestamp(s, timezone.utc)
    >>> [(g.timestamp(), [m for _, m in ms]) for g, ms in group_markers(
    ...     [(t(100), "b"), (t(0), "a"), (t(30), "a2"), (t(500), "c")], gap=60)]
    [(0.0, ['a', 'a2']), (100.0, ['b']), (500.0, ['c'])]
    """
    groups: list[tuple[datetime, list[tuple[datetime, str]]]] = []
    for when, text in sorted(markers, key=lambda m: m[0]):
        if groups and (when - groups[-1][0]).total_seconds() <= gap:
            groups[-1][1].append((when, text))
        else:
            groups.append((when, [(when, text)]))
    return groups


def write_report(out_dir: Path, points: list[MetricsPoint], **extra: Any) -> Path:
    """Write ``report.json``; ``extra`` adds top-level fields (inputs, timing, dead letters)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    report = {**extra, "models": summarize(points)}
    path = out_dir / "report.json"
    path.write_text(json.dumps(report, indent=2, sort_keys=False, default=str) + "\n")
    return path


def _marker_color(text: str) -> str:
    return next((c for word, c in MARKER_COLORS.items() if word in text), "crimson")


def plot_metrics(
    points: list[MetricsPoint],
    path: Path,
    metric: str = "accuracy_rolling",
    markers: list[tuple[datetime, str]] | None = None,
    title: str = "riverrun",
) -> Path:
    """Rolling ``metric`` of each model over event time. ``markers`` draw vertical lines, each
    numbered at the top (markers closer than 1.5% of the time axis share a number) and listed by
    number in a table under the plot, so labels never overlap."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.transforms import blended_transform_factory

    series_of, estimated_of = {}, {}
    for model, entry in summarize(points).items():
        series = [w for w in entry["windows"] if metric in w["metrics"] and w["ts"]]
        if series:
            series_of[model] = (
                [datetime.fromisoformat(w["ts"]) for w in series],
                [w["metrics"][metric] for w in series],
            )
        # the label-free estimate of the same predictions, before their labels came (dotted)
        guessed = [w for w in series if "estimated_accuracy_rolling" in w.get("estimate", {})]
        if metric == "accuracy_rolling" and guessed:
            estimated_of[model] = (
                [datetime.fromisoformat(w["ts"]) for w in guessed],
                [w["estimate"]["estimated_accuracy_rolling"] for w in guessed],
            )
    times = [t for xs, _ in series_of.values() for t in xs] + [w for w, _ in markers or []]
    span = (max(times) - min(times)).total_seconds() if times else 0.0
    groups = group_markers(markers or [], gap=0.015 * span)
    lines = [
        (k, when, "; ".join(text for _, text in items)) for k, (when, items) in enumerate(groups, start=1)
    ]
    row_in, table_in = 0.19, 0.19 * len(lines) + (0.1 if lines else 0.0)  # inches
    height = 4.5 + table_in
    fig = plt.figure(figsize=(10, height), dpi=110)
    # the plot keeps 4.5 in: 0.85 in under its axes (tick labels, axis label), 0.6 above (title,
    # the markers' numbers)
    ax = fig.add_axes((0.07, (table_in + 0.85) / height, 0.9, 3.05 / height))
    for model, (xs, ys) in series_of.items():
        (line,) = ax.plot(xs, ys, label=model, linewidth=1.6)
        if model in estimated_of:
            style = {"color": line.get_color(), "linestyle": ":", "linewidth": 1.2}
            ax.plot(*estimated_of[model], label=f"{model} estimated", **style)
    top = blended_transform_factory(ax.transData, ax.transAxes)
    for k, when, _ in lines:
        for w, text in groups[k - 1][1]:
            ax.axvline(w, color=_marker_color(text), linestyle="--", linewidth=1)
        ax.text(when, 1.01, str(k), transform=top, ha="center", va="bottom", fontsize=8, weight="bold")
    ax.set_xlabel("event time")
    ax.set_ylabel(metric.replace("_", " "))
    ax.set_title(title, pad=16)
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="lower left")
    for label in ax.get_xticklabels():
        label.set_rotation(20)
        label.set_horizontalalignment("right")
    for row, (k, when, text) in enumerate(lines):
        y = (table_in - row_in * (row + 1)) / height
        colors = {_marker_color(t) for _, t in groups[k - 1][1]}
        color = colors.pop() if len(colors) == 1 else "black"
        fig.text(0.02, y, f"{k:>2}  {when:%m-%d %H:%M}", fontsize=8, family="monospace", weight="bold")
        fig.text(0.15, y, text, fontsize=8, color=color)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


class PsiTimeline:
    """PSI per numeric feature over event time, from a ``CovariateShiftMonitor`` fed the
    feature vectors the models were served on (the same for every run of a replay).

    Like the lifecycle's monitors it sees one event in ``sample_every`` (by source offset, so
    the sample does not depend on batching) and keeps a point every ``point_every`` sampled
    events, once the reference and the window are full. The ``exclude``d features (counters, as
    the lifecycle's monitor) are left out.
    """

    def __init__(
        self,
        reference_size: int = 500,
        window_size: int = 500,
        sample_every: int = 10,
        point_every: int = 50,
        exclude: tuple[str, ...] = COUNTERS,
    ):
        from riverrun.detectors.covariate import CovariateShiftMonitor

        self.monitor = CovariateShiftMonitor(
            reference_size=reference_size,
            window_size=window_size,
            ks_alpha=None,
            check_every=point_every,
            exclude=exclude,
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
            "excluded": sorted(self.monitor.exclude),
            "series": [
                {"ts": ts.isoformat(), "psi": psi} for ts, psi in sorted(self.points, key=lambda p: p[0])
            ],
        }


def buckets_dict(buckets) -> dict[str, Any] | None:
    """A ``Buckets`` histogram as JSON: upper bounds (seconds), counts per bucket (+Inf last)."""
    if buckets is None:
        return None
    return {"bounds": list(buckets.bounds), "counts": list(buckets.counts), "sum": buckets.sum}
