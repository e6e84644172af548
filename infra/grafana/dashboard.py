"""Writes dashboards/riverrun.json, the Grafana dashboard of a riverrun flow.

    python infra/grafana/dashboard.py          # rewrite the JSON after editing this file

The JSON is what Grafana provisions (provisioning/dashboards/riverrun.yml); this file is its
readable source. tests/test_grafana.py checks the JSON is current, provisionable, and that every
expression reads only series of ``riverrun.streams.flow.metrics.SERIES``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent / "dashboards" / "riverrun.json"
UID = "riverrun-flow"
DS = {"type": "prometheus", "uid": "${datasource}"}
M = 'model=~"$model"'
MC = f'{M}, candidate=~"$candidate"'
RI = "$__rate_interval"
DRIFT = 'kind="concept_drift"'
SWITCH = 'action=~"rollback|promotion"'


def target(expr: str, legend: str = "", ref: str = "A", **extra: Any) -> dict[str, Any]:
    return {"datasource": DS, "expr": expr, "legendFormat": legend or "__auto", "refId": ref, **extra}


def panel(
    title: str,
    targets: list[tuple[str, str]],
    *,
    kind: str = "timeseries",
    unit: str = "short",
    width: int = 8,
    description: str = "",
    stack: bool = False,
    **extra: Any,
) -> dict[str, Any]:
    custom = {"stacking": {"mode": "normal" if stack else "none"}} if kind == "timeseries" else {}
    return {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": DS,
        "targets": [target(e, legend, chr(ord("A") + i)) for i, (e, legend) in enumerate(targets)],
        "fieldConfig": {"defaults": {"unit": unit, "custom": custom}, "overrides": []},
        "options": {"legend": {"displayMode": "table", "placement": "bottom", "calcs": ["lastNotNull"]}},
        "gridPos": {"w": width, "h": 8},
        **extra,
    }


def rate(name: str, by: str = "model", sel: str = M) -> str:
    """Per-second rate of a counter, summed over instances (by ``by``)."""
    grouping = f" by ({by})" if by else ""
    selector = f"{{{sel}}}" if sel else ""
    return f"sum{grouping} (rate({name}{selector}[{RI}]))"


def quantiles(series: str, by: str = "", qs: tuple[float, ...] = (0.5, 0.9, 0.99)) -> list[tuple[str, str]]:
    labels = f"le, {by}" if by else "le"
    sel = f"{{{M}}}" if by == "model" else ""
    prefix = f"{{{{{by}}}}} " if by else ""
    bucket = f"rate({series}_bucket{sel}[{RI}])"
    return [(f"histogram_quantile({q}, sum by ({labels}) ({bucket}))", f"{prefix}p{q * 100:g}") for q in qs]


def in_range(name: str, by: str) -> list[tuple[str, str]]:
    """How many times a counter went up in the dashboard's time range, per model and ``by``."""
    return [(f"sum by (model, {by}) (increase({name}{{{M}}}[$__range]))", f"{{{{model}}}} {{{{{by}}}}}")]


def scores() -> list[dict[str, Any]]:
    about = (
        "Prequential: each label scores the prediction served before it was learned; "
        "rolling = the last [flow] metrics_window labels, cumulative = since the start."
    )
    legend = "{{model}} {{candidate}} {{window}}"
    specs = [("Accuracy", "accuracy", "percentunit", 8), ("Log loss", "log_loss", "short", 8)]
    specs += [("ROC AUC", "roc_auc", "percentunit", 8), ("MAE (regression)", "mae", "short", 12)]
    specs += [("RMSE (regression)", "rmse", "short", 12), ("R² (regression)", "r2", "short", 12)]
    specs += [("Cross-entropy (multiclass)", "cross_entropy", "short", 12)]
    return [
        panel(title, [(f"riverrun_model_{name}{{{MC}}}", legend)], unit=unit, width=w, description=about)
        for title, name, unit, w in specs
    ]


def estimate() -> list[dict[str, Any]]:
    """The label-free estimate of the predictions awaiting labels, next to what the labels showed."""
    about = (
        "Estimated: the served probabilities of the predictions still waiting for their label, "
        "calibrated on the labels so far (README: While labels are late). Realised: the champion's "
        "rolling score once the labels came."
    )
    rolling = f'{M}, candidate="champion", window="rolling"'
    return [
        panel(
            "Estimated vs realised accuracy",
            [
                (f"riverrun_estimated_accuracy{{{M}}}", "{{model}} estimated (awaiting labels)"),
                (f"riverrun_model_accuracy{{{rolling}}}", "{{model}} realised (rolling)"),
            ],
            unit="percentunit",
            description=about,
        ),
        panel(
            "Estimated vs realised log loss",
            [
                (f"riverrun_estimated_log_loss{{{M}}}", "{{model}} estimated (awaiting labels)"),
                (f"riverrun_model_log_loss{{{rolling}}}", "{{model}} realised (rolling)"),
            ],
            description=about,
        ),
        panel(
            "Estimation error (accuracy)",
            [
                (f"riverrun_estimate_abs_error{{{M}}}", "{{model}} |estimated - realised| now"),
                (
                    f"avg_over_time(riverrun_estimate_abs_error{{{M}}}[$__range])",
                    "{{model}} mean absolute error over the range",
                ),
            ],
            unit="percentunit",
            description=(
                "How wrong the estimate was: estimated (as served) and realised rolling accuracy "
                "over the same last [flow] metrics_window labelled predictions."
            ),
        ),
    ]


def rows() -> list[tuple[str, list[dict[str, Any]]]]:
    stat: dict[str, Any] = {"kind": "stat", "width": 6}
    dead_share = f"{rate('riverrun_dead_letters_total', '', '')} / {rate('riverrun_records_total', '', '')}"
    joins = [
        ("riverrun_labels_joined_total", "joined"),
        ("riverrun_labels_learned_total", "learned"),
        ("riverrun_labels_early_total", "early"),
        ("riverrun_labels_expired_total", "labels expired"),
        ("riverrun_events_expired_total", "events expired"),
        ("riverrun_labels_rejected_total", "rejected"),
        ("riverrun_labels_quarantined_total", "quarantined"),
    ]
    throughput = [
        panel("Records read /s", [(rate("riverrun_records_total", "kind", ""), "{{kind}}")], unit="ops"),
        panel(
            "Predictions /s",
            [
                (rate("riverrun_predictions_total"), "{{model}} served"),
                (rate("riverrun_predictions_published_total", "", ""), "published (acknowledged)"),
            ],
            unit="ops",
        ),
        panel(
            "Dead letters /s by reason",
            [(rate("riverrun_dead_letters_total", "kind, reason", ""), "{{kind}} {{reason}}")],
            unit="ops",
            stack=True,
            description="Refused records by reason (README: the reasons table).",
        ),
        panel("Dead-letter share", [(dead_share, "share")], unit="percentunit", **stat),
        panel("Flow up", [('up{job="riverrun-flow"}', "{{instance}}")], **stat),
        panel("Model version", [(f"max by (model) (riverrun_model_version{{{M}}})", "{{model}}")], **stat),
        panel(
            "Learning paused",
            [(f"max by (model) (riverrun_model_learning_paused{{{M}}})", "{{model}}")],
            **stat,
        ),
    ]
    labels = [
        panel(
            "Label join /s",
            [(rate(name), f"{{{{model}}}} {what}") for name, what in joins],
            unit="ops",
            width=6,
        ),
        panel(
            "Pending",
            [
                (f"sum by (model) (riverrun_pending_events{{{M}}})", "{{model}} events waiting for a label"),
                (f"sum by (model) (riverrun_pending_labels{{{M}}})", "{{model}} early labels"),
            ],
            width=6,
        ),
        panel(
            "Label delay (event time)",
            [(f"sum by (le) (increase(riverrun_label_delay_seconds_bucket{{{M}}}[{RI}]))", "{{le}}")],
            kind="heatmap",
            unit="s",
            width=6,
            extra_target={"format": "heatmap"},
        ),
        panel("Label delay quantiles", quantiles("riverrun_label_delay_seconds", "model"), unit="s", width=6),
    ]
    serving = [
        panel(
            "Prediction latency (in Kafka -> published)",
            quantiles("riverrun_prediction_latency_seconds"),
            unit="s",
            width=8,
            description=(
                "Wall time from the event reaching Kafka (its record timestamp) to its prediction "
                "handed to the producer: the flow's own delay."
            ),
        ),
        panel(
            "Prediction event lag (event ts -> published)",
            quantiles("riverrun_prediction_event_lag_seconds"),
            unit="s",
            width=8,
            description=(
                "Wall time from the event's own ts to its prediction: late producers and backfills "
                "show here, not in the latency."
            ),
        ),
        panel(
            "Consumer lag by topic",
            [("sum by (topic) (riverrun_kafka_consumer_lag_messages)", "{{topic}}")],
            width=8,
        ),
    ]
    drift = [
        panel(
            "ADWIN error rate",
            [(f"riverrun_concept_drift_error_rate{{{M}}}", "{{model}}")],
            unit="percentunit",
        ),
        panel("ADWIN width (labels)", [(f"riverrun_concept_drift_window_labels{{{M}}}", "{{model}}")]),
        panel(
            "PSI per feature",
            [(f"riverrun_feature_psi{{{M}}}", "{{model}} {{feature}}")],
            description="Warning at 0.1, alarm at 0.2 ([flow.policy] psi_warning, psi_threshold).",
        ),
        panel(
            "Drift alarms in range",
            in_range("riverrun_drift_alarms_total", "kind"),
            kind="bargauge",
            width=12,
        ),
        panel(
            "Lifecycle actions in range",
            in_range("riverrun_model_actions_total", "action"),
            kind="bargauge",
            width=12,
        ),
        panel(
            "Lifecycle regret",
            [(f"max by (model) (riverrun_lifecycle_regret{{{M}}})", "{{model}}")],
            unit="percentunit",
            width=12,
            description=(
                "Accuracy lost against doing nothing (the unchanged model, in shadow from the first "
                "action); below 0: the lifecycle helped."
            ),
        ),
    ]
    engine = [
        panel(
            "Snapshot duration",
            quantiles("riverrun_snapshot_duration_seconds", "model", (0.5, 0.99)),
            unit="s",
        ),
        panel("Snapshot size", [(f"riverrun_snapshot_bytes{{{M}}}", "{{model}}")], unit="bytes"),
        panel("Model view age", [(f"riverrun_view_age_seconds{{{M}}}", "{{model}}")], unit="s"),
        panel(
            "Registry",
            [
                (rate("riverrun_registry_write_retries_total", "", ""), "write retries /s"),
                ("sum(riverrun_registry_pending_writes)", "pending writes"),
            ],
            width=12,
        ),
        panel(
            "Online store (Redis)",
            [
                (rate("riverrun_online_store_written_total", "", ""), "written /s"),
                (rate("riverrun_online_store_retries_total", "", ""), "retries /s"),
                (rate("riverrun_online_store_dropped_total", "", ""), "dropped /s"),
                ("sum(riverrun_online_store_pending)", "pending"),
            ],
            width=12,
        ),
        panel(
            "Duplicates and model errors /s",
            [
                (rate("riverrun_duplicate_events_total"), "{{model}} duplicate events"),
                (rate("riverrun_model_errors_total"), "{{model}} model errors"),
            ],
            unit="ops",
            width=12,
        ),
    ]
    return [
        ("Throughput and bad input", throughput),
        ("Delayed labels", labels),
        ("Serving", serving),
        ("Model quality (champion and challengers)", [*scores(), *estimate()]),
        ("Drift and lifecycle", drift),
        ("Engine and registry", engine),
    ]


def layout(sections: list[tuple[str, list[dict[str, Any]]]]) -> list[dict[str, Any]]:
    """Rows of panels on Grafana's 24-column grid, with ids and positions."""
    out: list[dict[str, Any]] = []
    y = 0
    for title, panels in sections:
        out.append(
            {
                "type": "row",
                "title": title,
                "collapsed": False,
                "panels": [],
                "gridPos": {"x": 0, "y": y, "w": 24, "h": 1},
            }
        )
        y, x = y + 1, 0
        for p in panels:
            extra = p.pop("extra_target", None)
            if extra:
                for t in p["targets"]:
                    t.update(extra)
            if x + p["gridPos"]["w"] > 24:
                y, x = y + 8, 0
            p["gridPos"].update(x=x, y=y)
            x += p["gridPos"]["w"]
            out.append(p)
        y += 8
    for i, p in enumerate(out, start=1):
        p["id"] = i
    return out


def variable(name: str, query: str, label: str) -> dict[str, Any]:
    return {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": DS,
        "query": {"query": query, "refId": name},
        "definition": query,
        "multi": True,
        "includeAll": True,
        "allValue": ".*",
        "refresh": 2,
        "sort": 1,
        "current": {"text": "All", "value": "$__all"},
    }


def went_up(counter: str, matcher: str) -> str:
    """Models whose ``riverrun_<counter>_total{matcher}`` rose in the last 2 minutes."""
    return f"sum by (model) (increase(riverrun_{counter}_total{{{M}, {matcher}}}[2m])) > 0"


def annotation(name: str, expr: str, text: str, color: str) -> dict[str, Any]:
    """Marks on every time series panel when ``expr`` has a sample (Prometheus annotations)."""
    return {
        "name": name,
        "datasource": DS,
        "enable": True,
        "expr": expr,
        "step": "1m",
        "titleFormat": f"{name}: {{{{model}}}}",
        "textFormat": text,
        "tagKeys": "model",
        "iconColor": color,
    }


def dashboard() -> dict[str, Any]:
    return {
        "uid": UID,
        "title": "riverrun flow",
        "description": "A riverrun flow: throughput, bad input, delayed labels, model quality, drift, "
        "lifecycle, engine. Series: riverrun.streams.flow.metrics.SERIES; "
        "alerts: infra/prometheus/alerts.yml.",
        "tags": ["riverrun"],
        "timezone": "utc",
        "schemaVersion": 39,
        "version": 1,
        "editable": True,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "templating": {
            "list": [
                {
                    "name": "datasource",
                    "label": "Prometheus",
                    "type": "datasource",
                    "query": "prometheus",
                    "current": {},
                    "hide": 0,
                },
                variable("model", "label_values(riverrun_model_version, model)", "Model"),
                variable(
                    "candidate",
                    'label_values(riverrun_model_accuracy{model=~"$model"}, candidate)',
                    "Candidate",
                ),
            ]
        },
        "annotations": {
            "list": [
                annotation(
                    "Concept drift", went_up("drift_alarms", DRIFT), "ADWIN: the error rate rose", "red"
                ),
                annotation(
                    "Rollback or promotion", went_up("model_actions", SWITCH), "see model-events", "orange"
                ),
            ]
        },
        "panels": layout(rows()),
    }


def main() -> None:
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(dashboard(), indent=2) + "\n")
    print(OUT)


if __name__ == "__main__":
    main()
