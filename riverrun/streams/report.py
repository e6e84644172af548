"""Run reports: ``report.json`` (final and windowed metrics) and ``metrics.png``."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from riverrun.streams.items import MetricsPoint


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
    ax.legend(loc="lower left")
    fig.autofmt_xdate()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
