"""Issue 18: a counter feature never raises a covariate-shift alarm (by construction its
distribution moves), a real shift still does, and the alarm says whether the champion's error
moved with it. State pickled before counters were left out leaves them out once loaded."""

from __future__ import annotations

import json
import pickle
import random
from datetime import UTC, datetime, timedelta

from riverrun.detectors import CovariateShiftMonitor
from riverrun.learners.lifecycle import ModelLifecycle, PolicyConfig
from riverrun.schemas import Event
from riverrun.streams.backtest.replay import replay
from riverrun.streams.backtest.report import PsiTimeline
from riverrun.streams.backtest.synth import drifting_agrawal, to_records
from riverrun.streams.core.features import COUNTERS, EntityFeatures
from tests.harness.oracle import write_jsonl

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def _featured(n: int, shift_at: int | None = None, seed: int = 1) -> list[tuple[dict, bool]]:
    """Default features of a stream of 20 entities: one numeric raw feature, shifted (+3) from
    ``shift_at`` on; the label is ``x > 0`` before and after."""
    rng = random.Random(seed)
    states = [EntityFeatures() for _ in range(20)]
    rows = []
    for i in range(n):
        v = rng.gauss(3.0 if shift_at is not None and i >= shift_at else 0.0, 1.0)
        event = Event(event_id=str(i), entity=str(i % 20), ts=T0 + timedelta(seconds=i), features={"x": v})
        rows.append((states[i % 20].transform(event), v > 0))
    return rows


def _alarms(rows, config: PolicyConfig | None = None) -> list:
    lc = ModelLifecycle("m", "lr", config or PolicyConfig())
    out = []
    for i, (x, y) in enumerate(rows):
        ts = T0 + timedelta(seconds=i)
        lc.predict(str(i), x, ts)
        out += lc.drain()
        out += lc.learn(str(i), x, y, ts)
    return [e for e in out if getattr(e, "action", None) == "covariate_shift"]


def test_the_default_policy_leaves_every_counter_of_the_default_features_out():
    assert set(COUNTERS) <= set(PolicyConfig().covariate_exclude)
    rows = _featured(300)
    assert rows[-1][0]["entity_event_count"] == 15  # it only grows


def test_a_stationary_stream_with_default_features_raises_no_covariate_alarm():
    rows = _featured(12_000)
    assert _alarms(rows) == []
    # without the exclusion the counter alarms, as it did on every deployment before
    alarms = _alarms(rows, PolicyConfig(covariate_exclude=()))
    assert alarms and {a.feature for a in alarms} == {"entity_event_count"}


def test_a_real_shift_still_alarms_and_says_whether_the_error_moved():
    alarms = _alarms(_featured(12_000, shift_at=8000))
    assert alarms and alarms[0].feature in ("x", "x_mean_300s")
    assert "entity_event_count" not in {a.feature for a in alarms}
    assert "the champion's error" in alarms[0].reason and "labels" in alarms[0].reason


def test_psi_timeline_leaves_counters_out():
    timeline = PsiTimeline(reference_size=50, window_size=50, sample_every=1, point_every=10)
    assert timeline.to_dict()["excluded"] == list(COUNTERS)


def test_a_lifecycle_pickled_before_the_exclusion_leaves_the_counter_out_once_loaded():
    lc = ModelLifecycle("m", "lr", PolicyConfig())
    old = CovariateShiftMonitor(reference_size=500, window_size=500, ks_alpha=None, check_every=25)
    del old.exclude  # as pickled before the attribute existed: the class default, nothing excluded
    for x, _ in _featured(50):
        old.update(x)
    assert "entity_event_count" in old.features
    lc.covariate = old
    loaded = pickle.loads(pickle.dumps(lc))
    assert "entity_event_count" not in loaded.covariate.features
    assert "entity_event_count" in loaded.covariate.exclude and "x" in loaded.covariate.features


def test_a_replay_plots_the_psi_of_what_its_runs_monitor(tmp_path):
    """The report's PSI timeline leaves out the features the runs' ``covariate_exclude`` names,
    not the default list."""
    events, labels = to_records(list(drifting_agrawal(600)), label_delay=timedelta(seconds=20))
    ev, lb = write_jsonl(tmp_path / "e.jsonl", events), write_jsonl(tmp_path / "l.jsonl", labels)
    policy = PolicyConfig(covariate_exclude=("entity_event_count", "salary"))
    replay(ev, lb, tmp_path / "out", models=[("lr", "lr")], policies=[("default", policy)], plot=False)
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["psi"]["excluded"] == ["entity_event_count", "salary"]
