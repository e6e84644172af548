"""The alert rules: valid for the real promtool/Prometheus, unit-tested (a firing and a quiet case
for every rule), runbook-complete, and reading only series riverrun exports."""

from __future__ import annotations

import subprocess
from typing import Any

import pytest
import yaml

from riverrun.streams.flow.metrics import _ALARMS
from tests.harness.prometheus import ALERTS, PROMETHEUS_DIR, binary
from tests.harness.promql import matchers, metric_names, unknown_references

CONFIG = PROMETHEUS_DIR / "prometheus.yml"
ALERTS_TEST = PROMETHEUS_DIR / "alerts_test.yml"
SEVERITIES = {"page", "ticket", "info"}
#: Label values riverrun emits, for the labels whose values are a closed set.
KNOWN_VALUES: dict[tuple[str, str], set[str]] = {
    ("riverrun_drift_alarms_total", "kind"): set(_ALARMS),
    ("riverrun_records_total", "kind"): {"event", "label", "control"},
    ("riverrun_model_accuracy", "window"): {"rolling", "cumulative"},
}


def rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [binary("promtool"), *args], capture_output=True, text=True, timeout=120, cwd=PROMETHEUS_DIR
    )


@pytest.mark.parametrize(
    "args",
    [
        ("check", "rules", "alerts.yml"),
        ("check", "config", "prometheus.yml"),
        ("test", "rules", "alerts_test.yml"),
    ],
    ids=["check-rules", "check-config", "test-rules"],
)
def test_promtool(args: tuple[str, ...]) -> None:
    result = promtool(*args)
    assert result.returncode == 0, f"promtool {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
    assert "SUCCESS" in result.stdout + result.stderr


def test_every_rule_has_a_firing_and_a_quiet_case() -> None:
    cases: dict[str, set[bool]] = {}
    for test in yaml.safe_load(ALERTS_TEST.read_text())["tests"]:
        for case in test.get("alert_rule_test", []):
            cases.setdefault(case["alertname"], set()).add(bool(case["exp_alerts"]))
    names = [rule["alert"] for rule in rules()]
    assert len(names) == len(set(names)), "alert names must be unique"
    missing = {name: {True, False} - cases.get(name, set()) for name in names}
    assert not {n: m for n, m in missing.items() if m}, "rules without a firing (True) / quiet (False) case"
    assert set(cases) <= set(names), f"tests of rules that do not exist: {set(cases) - set(names)}"


def test_rules_are_runbooks() -> None:
    for rule in rules():
        name = rule["alert"]
        assert rule.get("for"), f"{name}: no `for:`"
        assert rule["labels"]["severity"] in SEVERITIES, name
        annotations = rule["annotations"]
        assert annotations["summary"].strip(), name
        assert len(annotations["description"]) > 80, f"{name}: the description should tell ops what to do"


def test_rules_read_only_exported_series() -> None:
    required = {
        "riverrun_drift_alarms_total",
        "riverrun_model_accuracy",
        "riverrun_labels_learned_total",
        "riverrun_kafka_consumer_lag_messages",
        "riverrun_dead_letters_total",
        "riverrun_records_total",
        "riverrun_model_learning_paused",
        "riverrun_view_age_seconds",
        "riverrun_registry_write_retries_total",
        "up",
    }
    used: set[str] = set()
    for rule in rules():
        expr = rule["expr"]
        assert not unknown_references(expr), (rule["alert"], unknown_references(expr))
        used |= metric_names(expr)
        for name, label, op, value in matchers(expr):
            known = KNOWN_VALUES.get((name, label))
            if known is not None and op == "=":
                assert value in known, f"{rule['alert']}: {name}{{{label}={value!r}}} is never emitted"
    assert required <= used, f"no rule watches {required - used}"


def test_the_reference_reader_sees_unknown_names() -> None:
    """The check above would pass vacuously if the reader found nothing: it must flag these."""
    assert unknown_references("rate(riverrun_recordz_total[5m]) > 0") == [
        "unknown series riverrun_recordz_total"
    ]
    assert unknown_references('riverrun_model_accuracy{windw="rolling"}')
    assert unknown_references("histogram_quantile(0.9, rate(riverrun_model_version_bucket[5m]))")
    assert not unknown_references("histogram_quantile(0.9, rate(riverrun_label_delay_seconds_bucket[5m]))")


def test_a_real_prometheus_scrapes_flow_metrics_and_evaluates_every_rule() -> None:
    """The harness end to end: FlowMetrics served as `riverrun run` serves it, scraped by a real
    Prometheus with alerts.yml loaded; every rule evaluates without error on real series."""
    from riverrun.streams.core.view import ModelView
    from riverrun.streams.flow.metrics import FlowMetrics, serve
    from tests.harness.prometheus import prometheus_server

    metrics = FlowMetrics()
    metrics.count_records("event", 10)
    scores = {"champion": {"accuracy": 0.9, "accuracy_rolling": 0.8}}
    metrics.publish(ModelView("lr", 3, 10, 8, scores=scores, actions={"concept_drift": 1}))
    server, port = serve(metrics, "127.0.0.1", 0)
    try:
        with prometheus_server({"riverrun-flow": [f"127.0.0.1:{port}"]}, rule_files=[ALERTS]) as prom:
            prom.wait_for('riverrun_model_version{model="lr"} == 3')
            assert prom.value('up{job="riverrun-flow"}') == 1.0
            assert prom.value('riverrun_model_accuracy{candidate="champion",window="rolling"}') == 0.8
            for _ in range(100):
                groups = prom.api("rules")["groups"]
                health = {r["name"]: (r["health"], r.get("lastError")) for g in groups for r in g["rules"]}
                if all(h == "ok" for h, _ in health.values()):
                    break
                prom.wait_for("vector(1)")  # a query's round trip, then look again
            assert set(health) == {rule["alert"] for rule in rules()}
            assert all(h == "ok" for h, _ in health.values()), health
    finally:
        server.shutdown()
