"""``report.html``: a replay's report as one self-contained page (plots as base64 PNG).

Built from the ``report.json`` dict alone, so a report can be re-rendered later:
``write_html_report(out, json.loads((out / "report.json").read_text()))``. Sections: a summary
table (one row per run), rolling metrics over event time per run with drift and action markers,
the label-delay distribution, PSI per feature over time, the actions with their evidence, and
how to read it all.
"""

from __future__ import annotations

import base64
import html
import io
from datetime import datetime
from pathlib import Path
from typing import Any

from riverrun.streams.backtest.evidence import compared_rows, signal_sentence, version_text
from riverrun.streams.backtest.report import MARKED_ACTIONS

#: Rolling metrics plotted, one panel each (higher is better except log loss).
PANELS = (
    ("accuracy_rolling", "rolling accuracy"),
    ("log_loss_rolling", "rolling log loss"),
    ("roc_auc_rolling", "rolling ROC AUC"),
)

ACTION_COLORS = {
    "concept_drift": "crimson",
    "rollback": "darkorange",
    "promotion": "green",
    "covariate_shift": "purple",
    "prior_shift": "mediumpurple",
    "prediction_drift": "orchid",
    "learning_paused": "saddlebrown",
    "learning_resumed": "peru",
}

HOW_TO_READ = """
<p>Every run is one model with one policy, replayed over the same stream in event-time order,
exactly as the live flow would have served it: each event gets a prediction at once, and when its
label arrives that <em>served</em> prediction is scored, then the model learns. So the metrics are
prequential (test-then-train) and honest about label delay.</p>
<p><b>Summary.</b> Accuracy, log loss and ROC AUC are cumulative over the whole stream; compare
runs on the same row of numbers, and prefer log loss and AUC when classes are unbalanced. Actions
counts the lifecycle's non-periodic actions (drifts, rollbacks, promotions, shift alarms); a run
without a policy never acts. Events/s is wall-clock throughput: when all runs share one pass over
the input, it is that pass's rate (the cost of every run together).</p>
<p><b>Rolling metrics</b> are computed over the last labelled window; a dip is the model being
wrong on recent data. Vertical lines mark actions (colour by kind, see the legend): a concept
drift followed by a promotion or rollback and a recovery of the curve is the lifecycle working; a
dip without any action is drift it did not catch.</p>
<p><b>Actions.</b> Each row says what the lifecycle did and why; the evidence is the detector's
statistic against its threshold and, for a decision, the candidates compared on the same labels
(rounded here; report.json keeps every digit). <b>Versions</b>: <em>serving vN</em> is the
generation the predictions carry as <code>model_version</code> (+1 at every rollback or
promotion); <em>ckpt-N</em> is the lifecycle's checkpoint id, and <em>registry vN</em> the number
<code>riverrun models list</code> shows, when the run stored its checkpoints in a registry (a
replay from the command line keeps them in memory).</p>
<p><b>Estimated accuracy</b> (dotted, next to the rolling accuracy): what the served
probabilities said the accuracy of the same predictions would be, before their labels came,
calibrated on the labels that had arrived (README: While labels are late). <em>Estimate MAE</em>
in the summary is the mean distance of the two curves: small when the model's confidence tracks
its accuracy; large after a concept drift the model is confidently wrong about.</p>
<p><b>Label delay</b> is event time from an event to its label, as the join saw it. Long delays
mean the model learns late and drift is noticed late.</p>
<p><b>PSI</b> (population stability index) compares each numeric feature's recent values with the
values at the start of the stream: below 0.1 stable, 0.1&ndash;0.2 worth a look, above 0.2 a
shift (the dashed lines). A covariate shift without a drop in the rolling metrics is harmless to
the model; one with a drop is a reason to retrain.</p>
"""

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2em auto;max-width:1100px;color:#222}
table{border-collapse:collapse;margin:1em 0;font-size:14px}
th,td{border:1px solid #ccc;padding:4px 8px;text-align:right}
th{background:#f3f3f3}td.l,th.l{text-align:left}
img{max-width:100%}.muted{color:#777;font-size:13px}
td p{margin:0 0 4px}table.ev{margin:2px 0;font-size:12px}table.ev td,table.ev th{padding:1px 6px}
"""


def _png(fig) -> str:
    """The figure as an ``<img>`` with an embedded PNG (and closed)."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return f'<img alt="plot" src="data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}">'


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _marked(run: dict) -> list[tuple[datetime, str]]:
    return [
        (datetime.fromisoformat(a["at"]), a["action"])
        for a in run.get("actions", [])
        if a.get("action") in MARKED_ACTIONS and a.get("at")
    ]


def rolling_plot(report: dict) -> str | None:
    """One panel per rolling metric, a line per run, actions as vertical lines."""
    models = report.get("models", {})
    runs = report.get("runs", [])
    if not any(m.get("windows") for m in models.values()):
        return None
    plt = _pyplot()
    fig, axes = plt.subplots(len(PANELS), 1, figsize=(11, 8.5), dpi=90, sharex=True)
    kinds: set[str] = set()
    for ax, (metric, label) in zip(axes, PANELS, strict=True):
        for name, entry in models.items():
            series = [w for w in entry.get("windows", []) if metric in w["metrics"] and w["ts"]]
            if series:
                line = ax.plot(
                    [datetime.fromisoformat(w["ts"]) for w in series],
                    [w["metrics"][metric] for w in series],
                    label=name,
                    linewidth=1.4,
                )
            guessed = [w for w in series if "estimated_accuracy_rolling" in w.get("estimate", {})]
            if metric == "accuracy_rolling" and guessed:  # what the estimate said before the labels
                ax.plot(
                    [datetime.fromisoformat(w["ts"]) for w in guessed],
                    [w["estimate"]["estimated_accuracy_rolling"] for w in guessed],
                    label=f"{name} estimated",
                    color=line[0].get_color(),
                    linestyle=":",
                    linewidth=1.2,
                )
        for run in runs:
            for when, action in _marked(run):
                kinds.add(action)
                ax.axvline(
                    when, color=ACTION_COLORS.get(action, "grey"), linestyle="--", linewidth=0.8, alpha=0.7
                )
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    from matplotlib.lines import Line2D

    for action in sorted(kinds):
        handles.append(Line2D([], [], color=ACTION_COLORS.get(action, "grey"), linestyle="--"))
        labels.append(action.replace("_", " "))
    # above the panels, outside them: a legend inside covers the curves
    axes[0].legend(
        handles, labels, loc="lower left", bbox_to_anchor=(0, 1.02), fontsize=8, ncol=6, frameon=False
    )
    axes[-1].set_xlabel("event time")
    fig.autofmt_xdate()
    fig.tight_layout()
    return _png(fig)


def _bucket_names(bounds: list[float]) -> list[str]:
    def short(s: float) -> str:
        for unit, size in (("d", 86_400), ("h", 3600), ("min", 60)):
            if s >= size:
                return f"{s / size:g}{unit}"
        return f"{s:g}s"

    return [f"<={short(b)}" for b in bounds] + [f">{short(bounds[-1])}"]


def label_delay_plot(report: dict) -> str | None:
    """Bars of the label-delay histogram (one set per run when the runs saw different ones)."""
    hists = [(r["name"], r["label_delay"]) for r in report.get("runs", []) if r.get("label_delay")]
    if not hists or not any(sum(h["counts"]) for _, h in hists):
        return None
    if all(h["counts"] == hists[0][1]["counts"] for _, h in hists):
        hists = [("all runs", hists[0][1])]
    plt = _pyplot()
    names = _bucket_names(hists[0][1]["bounds"])
    fig, ax = plt.subplots(figsize=(11, 3.5), dpi=90)
    width = 0.8 / len(hists)
    for k, (name, h) in enumerate(hists):
        ax.bar([i + k * width for i in range(len(names))], h["counts"], width=width, label=name)
    ax.set_xticks([i + width * (len(hists) - 1) / 2 for i in range(len(names))], names)
    ax.set_ylabel("labels")
    ax.set_xlabel("event time from event to label")
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _png(fig)


def psi_plot(report: dict, max_features: int = 12) -> str | None:
    """PSI of each numeric feature over event time (the most shifted ``max_features``)."""
    psi = report.get("psi") or {}
    series = psi.get("series") or []
    if not series:
        return None
    peak: dict[str, float] = {}
    for point in series:
        for f, v in point["psi"].items():
            peak[f] = max(peak.get(f, 0.0), v)
    shown = sorted(peak, key=lambda f: -peak[f])[:max_features]
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(11, 4), dpi=90)
    for f in shown:
        pts = [(datetime.fromisoformat(p["ts"]), p["psi"][f]) for p in series if f in p["psi"]]
        ax.plot([t for t, _ in pts], [v for _, v in pts], label=f, linewidth=1.2)
    levels = [(psi.get("warning"), "worth a look"), (psi.get("threshold"), "shift")]
    for level, what in levels:
        if level is not None:
            ax.axhline(level, color="grey", linestyle="--", linewidth=0.8)
            ax.annotate(
                f"{level:g}: {what}",
                (1.0, level),
                xycoords=("axes fraction", "data"),
                xytext=(-4, 2),
                textcoords="offset points",
                ha="right",
                va="bottom",
                fontsize=7,
                color="dimgrey",
            )
    # symlog: linear up to 0.1, where the thresholds are; the top above the highest line, so
    # every line stays in view whatever its scale
    highest = max([peak[f] for f in shown] + [lv for lv, _ in levels if lv is not None])
    ax.set_yscale("symlog", linthresh=0.1)
    ax.set_ylim(0, highest * 1.5)
    ax.set_ylabel("PSI (linear to 0.1, then log)")
    ax.set_xlabel("event time")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    fig.autofmt_xdate()
    fig.tight_layout()
    return _png(fig)


def psi_note(report: dict) -> str:
    """What the PSI plot leaves out (counters: their PSI grows by construction)."""
    excluded = (report.get("psi") or {}).get("excluded") or []
    if not excluded:
        return ""
    names = ", ".join(html.escape(f) for f in excluded)
    return (
        f'<p class="muted">Left out: {names} (counters: their distribution moves by construction; '
        "the lifecycle's covariate monitor leaves them out too, see <code>covariate_exclude</code>).</p>"
    )


def _fmt(v: Any, digits: int = 4) -> str:
    if isinstance(v, float):
        return f"{v:,.{digits}f}"
    if isinstance(v, int):
        return f"{v:,}"
    return html.escape(str(v)) if v is not None else "&ndash;"


def _plain(v: Any) -> str:
    """A small dict or list as ``key: value, ...`` (not a Python repr)."""
    if isinstance(v, dict):
        return ", ".join(f"{k}: {_plain(x)}" for k, x in v.items())
    if isinstance(v, list | tuple):
        return ", ".join(_plain(x) for x in v)
    return "" if v is None else str(v)


def summary_table(report: dict) -> str:
    """One row per run."""
    head = [
        "run",
        "model",
        "policy",
        "accuracy",
        "log loss",
        "ROC AUC",
        "regret",
        "estimate MAE",
        "predicted",
        "learned",
        "actions",
        "events/s",
    ]
    rows = []
    for r in report.get("runs", []):
        m = r.get("metrics", {})
        acts = {k: v for k, v in r.get("action_counts", {}).items() if k != "checkpoint"}
        shown = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in sorted(acts.items())) or "none"
        rate = _fmt(r.get("events_per_second"), 0) + (" (shared)" if r.get("shared_pass") else "")
        cells = [r["name"], r["recipe"], r["policy"]]
        cells = [f'<td class="l">{html.escape(str(c))}</td>' for c in cells]
        cells += [f"<td>{_fmt(m.get(k))}</td>" for k in ("accuracy", "log_loss", "roc_auc")]
        cells.append(f"<td>{_fmt(r.get('regret'))}</td>")  # against doing nothing; none: policy off
        cells.append(f"<td>{_fmt(r.get('estimate_mae'))}</td>")  # label-free estimate's error
        cells += [f"<td>{_fmt(r.get('n_predicted'))}</td>", f"<td>{_fmt(r.get('n_learned'))}</td>"]
        cells += [f'<td class="l">{html.escape(shown)}</td>', f"<td>{rate}</td>"]
        rows.append("<tr>" + "".join(cells) + "</tr>")
    header = "".join(
        f'<th class="{"l" if i < 3 or h == "actions" else ""}">{h}</th>' for i, h in enumerate(head)
    )
    return f"<table><tr>{header}</tr>{''.join(rows)}</table>"


def evidence_cell(a: dict) -> str:
    """An action's evidence as a sentence and a small table of the candidates compared (rounded;
    ``report.json`` keeps the full values)."""
    parts = []
    if sentence := signal_sentence(a):
        parts.append(f"<p>{html.escape(sentence)}.</p>")
    if rows := compared_rows(a):
        body = "".join(
            f'<tr><td class="l">{html.escape(name)}</td><td>{acc}</td><td>{labels}</td></tr>'
            for name, acc, labels in rows
        )
        parts.append(
            '<table class="ev"><tr><th class="l">candidate</th><th>accuracy</th><th>labels</th></tr>'
            f"{body}</table>"
        )
    return "".join(parts) or "&ndash;"


def actions_table(report: dict, limit: int = 300) -> str:
    """The non-periodic actions with their evidence (detector, statistic, compared scores)."""
    rows = []
    for r in report.get("runs", []):
        for a in r.get("actions", []):
            rows.append(
                "<tr>"
                + f'<td class="l">{html.escape(a.get("at", "").replace("T", " "))}</td>'
                + f'<td class="l">{html.escape(r["name"])}</td>'
                + f'<td class="l">{html.escape(a["action"])}</td>'
                + f'<td class="l">{html.escape(version_text(a))}</td>'
                + f'<td class="l">{html.escape(a.get("reason", ""))}</td>'
                + f'<td class="l">{evidence_cell(a)}</td></tr>'
            )
    if not rows:
        return "<p>No actions (no run had a policy, or nothing happened).</p>"
    more = f'<p class="muted">{len(rows) - limit} more in report.json.</p>' if len(rows) > limit else ""
    head = "".join(
        f'<th class="l">{h}</th>' for h in ("event time", "run", "action", "version", "reason", "evidence")
    )
    return f"<table><tr>{head}</tr>{''.join(rows[:limit])}</table>{more}"


def render(report: dict, title: str = "riverrun replay") -> str:
    """The page as a string."""
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
        f"<style>{CSS}</style></head><body><h1>{html.escape(title)}</h1>",
        f'<p class="muted">{_fmt(report.get("events"))} events, {len(report.get("runs", []))} runs'
        + (
            f" (one per model and value of {html.escape(str(report['segment_by']))})"
            if report.get("segment_by")
            else ""
        )
        + f" in {_fmt(report.get('passes'))} pass(es), {_fmt(report.get('seconds'), 1)} s; dead letters: "
        f"{html.escape(_plain(report.get('dead_letters')) or 'none')}; input: "
        f"{html.escape(_plain(report.get('inputs'))[:600])}</p>",
        "<h2>Summary</h2>",
        summary_table(report),
    ]
    for heading, fig in (
        ("Rolling metrics, drift and actions", rolling_plot(report)),
        ("Label delay", label_delay_plot(report)),
        ("PSI per feature", psi_plot(report)),
    ):
        parts += [f"<h2>{heading}</h2>", fig or "<p>No data for this plot.</p>"]
        if heading.startswith("PSI"):
            parts.append(psi_note(report))
    parts += ["<h2>Actions and their evidence</h2>", actions_table(report)]
    parts += ["<h2>How to read this</h2>", HOW_TO_READ, "</body></html>"]
    return "\n".join(parts)


def write_html_report(out_dir: str | Path, report: dict, title: str = "riverrun replay") -> Path:
    """Write ``out_dir/report.html`` (self-contained) and return its path."""
    path = Path(out_dir) / "report.html"
    path.write_text(render(report, title), encoding="utf-8")
    return path


__all__ = ["render", "write_html_report"]
