"""Prometheus metrics: the series a flow exports, their labels, and that they follow the flow.

The live test runs `riverrun run` on the real broker with the lifecycle on, over the seeded
scenario (drift, corrupted labels, covariate shift), scrapes its endpoint directly and through
a real Prometheus server (``tests/harness/prometheus.py``) with our alert rules, and checks the
series move and the concept-drift alert goes pending.
"""

from __future__ import annotations

import re
import socket
import time
from datetime import UTC, datetime, timedelta

import pytest

from riverrun.learners.lifecycle import PolicyConfig
from riverrun.schemas import Event, Label
from riverrun.streams.backtest.scenarios import Scenario
from riverrun.streams.core.buckets import Buckets
from riverrun.streams.core.items import FeaturedEvent, SourcedLabel
from riverrun.streams.core.modelstep import ModelStep, StepConfig
from riverrun.streams.flow.metrics import SERIES, FlowMetrics
from tests.harness.metrics import samples, scrape, value
from tests.harness.ports import free_port

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def exported_name(sample: str) -> str:
    """The catalog name of a sample (histogram samples carry _bucket/_sum/_count)."""
    if sample.endswith("_created") and sample.removesuffix("_created") + "_total" in SERIES:
        return sample.removesuffix("_created") + "_total"  # prometheus-client: counter creation time
    for suffix in ("_bucket", "_sum", "_count", "_created"):
        base = sample.removesuffix(suffix)
        if base != sample and base in SERIES:
            return base
    return sample


def run_scenario(step: ModelStep, scenario: Scenario, delay: int = 50) -> None:
    """Feed ``scenario`` to ``step`` in order, each label ``delay`` events after its event."""
    rows = list(scenario.rows())
    seq = 0
    for i in range(len(rows) + delay):
        if i < len(rows):
            ev = Event(
                event_id=f"e{i}", entity=f"u{i % 7}", ts=T0 + timedelta(seconds=i), features=rows[i][0]
            )
            step.on_item(seq, FeaturedEvent(ev, rows[i][0], 0, i))
            seq += 1
        j = i - delay
        if 0 <= j < len(rows):
            lb = Label(event_id=f"e{j}", label=rows[j][1], ts=T0 + timedelta(seconds=i, milliseconds=500))
            step.on_item(seq, SourcedLabel(lb, 0, j))
            seq += 1


def test_model_view_of_a_lifecycle_run_is_exported_with_bounded_labels():
    step = ModelStep(StepConfig(model="m", recipe="lr", policy=PolicyConfig()))
    run_scenario(step, Scenario(n=12_000, shift_at=11_000))
    view = step.view()
    assert view.n_predicted == 12_000 and view.counters["joined"] == 12_000
    # the champion is a challenger promoted after the drift; paused labels are not learned
    assert 0 < view.n_learned < 12_000 and view.counters["quarantined_labels"] > 0
    assert view.actions.get("promotion", 0) >= 1 and view.actions.get("rollback", 0) >= 1
    assert view.actions.get("checkpoint", 0) >= 1 and view.actions.get("concept_drift", 0) >= 1
    assert view.label_delay is not None and view.label_delay.count == 12_000
    assert set(view.psi) >= {"x3"} and view.concept["width"] > 0

    m = FlowMetrics()
    m.count_records("event", 12_000)
    m.publish(view)
    found = samples(m.exposition())
    assert value(found, "riverrun_predictions_total", model="m") == 12_000
    assert value(found, "riverrun_labels_joined_total", model="m") == 12_000
    assert value(found, "riverrun_model_actions_total", model="m", action="rollback") >= 1
    assert value(found, "riverrun_drift_alarms_total", model="m", kind="concept_drift") >= 1
    assert value(found, "riverrun_feature_psi", model="m", feature="x3") > 0.2  # x3 moved by 3 sd
    acc = value(found, "riverrun_model_accuracy", model="m", candidate="champion", window="cumulative")
    assert 0.5 < acc < 1.0
    assert value(found, "riverrun_model_accuracy", model="m", candidate="champion", window="rolling") > 0
    # the lifecycle's regret against the same model with no lifecycle: it helped (negative)
    assert view.regret == step.lifecycle.regret() < 0
    assert value(found, "riverrun_lifecycle_regret", model="m") == view.regret
    assert step.metrics_point().regret == view.regret
    plain = ModelStep(StepConfig(model="p", recipe="lr"))  # policy off: no regret, no series
    assert plain.view().regret is None and plain.metrics_point().regret is None
    # delays of 50.5 s: all in the <= 60 s bucket and above, none at 15 s
    assert value(found, "riverrun_label_delay_seconds_bucket", model="m", le="15.0") == 0
    assert value(found, "riverrun_label_delay_seconds_bucket", model="m", le="60.0") == 12_000
    # every sample is in the catalog; no label carries an event or entity id
    for name, labels in found:
        assert exported_name(name) in SERIES, name
        for key, v in labels:
            assert not re.fullmatch(r"[eu]\d+", v), (name, key, v)


def test_view_survives_pickling_and_old_state_without_the_new_fields():
    import pickle

    step = ModelStep(StepConfig(model="m", recipe="lr", policy=PolicyConfig()))
    run_scenario(step, Scenario(n=300))
    # state snapshotted before the label-delay histogram and action counts existed
    old = pickle.loads(pickle.dumps(step))
    del old.join.label_delay
    del old.lifecycle.n_actions
    assert old.view().label_delay is None and old.view().actions == {}
    # old state learns on: the histogram starts with the next joined label
    old.join.add_event("zz", 1000.0, {"x0": 0.0})
    assert old.join.match_label("zz", 1002.5) == {"x0": 0.0}
    assert old.view().label_delay.count == 1 and old.view().label_delay.sum == 2.5
    old.lifecycle.checkpoint("operator: test")
    assert old.view().actions == {"checkpoint": 1}
    assert pickle.loads(pickle.dumps(step)).view().label_delay.count == 300


def test_latency_and_dead_letters_from_the_sinks():
    from riverrun.schemas import Origin, dead_letter
    from riverrun.streams.core.items import ServedPrediction

    m = FlowMetrics()
    now = T0.timestamp() + 10
    preds = [
        # events of a backfill: ts a day before they reached Kafka, i + 0.5 ms before publication
        ServedPrediction(f"e{i}", "u", "m", 1, True, None, T0 - timedelta(days=1), T0, now - (i + 0.5) / 1000)
        for i in range(10)
    ]
    preds.append(ServedPrediction("f", "u", "m", 1, True, None, T0, T0))  # not from Kafka: untimed
    m.observe_published(preds, now=now)
    m.count_dead_letters([dead_letter("event", b"{", Origin("t", 0, 1), "invalid_json", "bad")] * 3)
    found = samples(m.exposition())
    assert value(found, "riverrun_predictions_published_total") == 11
    assert value(found, "riverrun_prediction_latency_seconds_count") == 10
    assert value(found, "riverrun_prediction_latency_seconds_bucket", le="0.005") == 5  # 0.5..4.5 ms
    assert value(found, "riverrun_prediction_latency_seconds_bucket", le="0.025") == 10
    assert value(found, "riverrun_prediction_event_lag_seconds_count") == 11
    day = value(found, "riverrun_prediction_event_lag_seconds_bucket", le="86400.0")
    assert day == 1 and value(found, "riverrun_prediction_event_lag_seconds_bucket", le="604800.0") == 11
    assert value(found, "riverrun_dead_letters_total", kind="event", reason="invalid_json") == 3


def test_buckets_are_cumulative_and_prometheus_le_inclusive():
    b = Buckets((1.0, 2.0))
    for v in (1.0, 2.0, 2.5):
        b.observe(v)
    assert b.cumulative() == [1, 2, 3]


def test_each_registry_is_separate():
    a, b = FlowMetrics(), FlowMetrics()
    a.count_records("label", 2)
    assert value(samples(b.exposition()), "riverrun_records_total") == 0
    assert value(samples(a.exposition()), "riverrun_records_total", kind="label") == 2


def test_metrics_port_in_use_fails_fast_with_the_fix(monkeypatch):
    from riverrun.errors import ConfigError
    from riverrun.streams.flow.live import start_metrics
    from riverrun.streams.settings import load_settings

    monkeypatch.delenv("RIVERRUN_METRICS__PORT", raising=False)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ConfigError, match="RIVERRUN_METRICS__PORT"):
            start_metrics(load_settings(metrics={"port": port}))


def test_the_endpoint_binds_to_loopback_unless_configured(monkeypatch):
    from riverrun.streams.flow.live import start_metrics
    from riverrun.streams.settings import Settings, load_settings

    assert Settings().metrics.address == "127.0.0.1"
    monkeypatch.setenv("RIVERRUN_METRICS__PORT", "0")
    metrics = start_metrics(load_settings())
    assert metrics is not None
    assert value(samples(metrics.exposition()), "riverrun_records_total") == 0
    assert start_metrics(load_settings(metrics={"enabled": False})) is None


# -- a live flow, scraped ----------------------------------------------------------------------


def scenario_records(scenario: Scenario, start: datetime, step: timedelta, delay: timedelta):
    from riverrun.streams.backtest.synth import to_records

    rows = [(x, y) for x, y, _truth in scenario.rows()]
    return to_records(rows, start=start, interval=step, label_delay=delay, n_entities=50)


def wait_for(check, timeout: float, flow=None, what: str = ""):
    """Poll ``check()`` until it returns a truthy value; the value."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if flow is not None and not flow.alive():
            raise AssertionError(f"flow died:\n{flow.log_tail()}")
        try:
            got = check()
        except OSError:  # endpoint not up yet
            got = None
        if got:
            return got
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}" + (f"\n{flow.log_tail()}" if flow else ""))


@pytest.mark.kafka
def test_live_flow_series_exist_and_move(kafka_servers, tmp_path):
    from riverrun.streams.kafka.producer import publish_stream
    from tests.harness.flows import Flow
    from tests.harness.kafka import fresh_settings
    from tests.harness.prometheus import ALERTS, prometheus_server

    settings, config = fresh_settings(kafka_servers, tmp_path, policy=True)
    n, half = 12_000, 6_000
    start = datetime.now(UTC) - timedelta(seconds=60)
    events, labels = scenario_records(
        Scenario(n=n, shift_at=11_000), start, timedelta(milliseconds=5), timedelta(milliseconds=250)
    )
    cut = events[half].ts
    bad = [b"{not json", b'{"event_id": "x1", "entity": "u", "features": {}}']
    port = free_port()
    flow = Flow(config, tmp_path / "flow.log", env={"RIVERRUN_METRICS__PORT": str(port)}).start()
    targets = {"riverrun-flow": [f"127.0.0.1:{port}"]}
    try:
        with prometheus_server(targets, rule_files=[ALERTS], interval=1.0) as prom:
            publish_stream(settings, [*bad, *events[:half]], [lb for lb in labels if lb.ts < cut])
            first = wait_for(
                lambda: (s := scrape(port)) and value(s, "riverrun_predictions_total") == half and s,
                120,
                flow,
                "the first half predicted",
            )
            prom.wait_for(f"sum(riverrun_predictions_total) == {half}", timeout=60)
            publish_stream(settings, events[half:], [lb for lb in labels if lb.ts >= cut])
            last = wait_for(
                lambda: (s := scrape(port)) and value(s, "riverrun_labels_joined_total") == n and s,
                120,
                flow,
                "every label joined",
            )
            # Prometheus saw the series move, and the drift alert rule reacts to them
            prom.wait_for(f"sum(riverrun_labels_joined_total) == {n}", timeout=60)
            assert prom.value("sum(increase(riverrun_predictions_total[5m]))") > 0
            assert prom.value('sum(riverrun_drift_alarms_total{kind="concept_drift"})') >= 1
            assert prom.value("sum(rate(riverrun_records_total[1m]))") > 0
            p99 = "histogram_quantile(0.99, sum by (le) (riverrun_prediction_latency_seconds_bucket))"
            assert prom.value(p99) is not None
            deadline = time.monotonic() + 60
            while not any(a["labels"]["alertname"] == "RiverrunConceptDrift" for a in prom.alerts()):
                assert time.monotonic() < deadline, prom.alerts()
                time.sleep(0.5)
    finally:
        flow.kill()

    assert value(first, "riverrun_records_total", kind="event") >= half + len(bad)
    assert value(last, "riverrun_records_total", kind="label") == n
    assert value(last, "riverrun_dead_letters_total", kind="event", reason="invalid_json") == 1
    assert value(last, "riverrun_dead_letters_total", kind="event", reason="validation") == 1
    assert value(last, "riverrun_predictions_published_total") >= n
    assert value(last, "riverrun_prediction_latency_seconds_count") >= n
    assert value(last, "riverrun_label_delay_seconds_count") == n
    for name in ("riverrun_labels_learned_total", "riverrun_labels_joined_total"):
        assert value(first, name) < value(last, name), name
    assert value(last, "riverrun_drift_alarms_total", kind="concept_drift") >= 1
    assert value(last, "riverrun_model_actions_total", action="checkpoint") >= 1
    assert value(last, "riverrun_model_version") >= 1
    assert value(last, "riverrun_feature_psi", feature="x3") > 0
    assert value(last, "riverrun_model_accuracy", candidate="champion", window="rolling") > 0.5
    assert value(last, "riverrun_concept_drift_window_labels") > 0
    assert value(last, "riverrun_snapshot_duration_seconds_count") > 0
    assert any(name == "riverrun_kafka_consumer_lag_messages" for name, _ in last)
    for name, _labels in last:
        assert exported_name(name) in SERIES, name
