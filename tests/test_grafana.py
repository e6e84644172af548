"""The Grafana dashboard and its provisioning: the JSON is current with its source
(infra/grafana/dashboard.py), provisionable, every expression parses (real promtool) and reads only
series riverrun exports, and every exported series is on the dashboard."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
from pathlib import Path
from typing import Any

import yaml

from riverrun.streams.flow.metrics import SERIES
from tests.harness import ROOT
from tests.harness.prometheus import binary
from tests.harness.promql import metric_names, series_of, unknown_references

GRAFANA = ROOT / "infra" / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "riverrun.json"
PROVIDER = GRAFANA / "provisioning" / "dashboards" / "riverrun.yml"
DATASOURCES = GRAFANA / "provisioning" / "datasources" / "prometheus.yml"
#: Grafana's built-in variables, and what stands in for them when promtool parses an expression.
BUILTINS = {"$__rate_interval": "1m", "$__range": "1h", "$__interval": "1m"}
_LABEL_VALUES = re.compile(r"^label_values\((.*),\s*(\w+)\)$")


def load() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in dashboard["panels"] if p["type"] != "row"]


def expressions(dashboard: dict[str, Any]) -> dict[str, str]:
    """Every PromQL expression of the dashboard, named by where it is."""
    out = {f"panel {p['title']!r} {t['refId']}": t["expr"] for p in panels(dashboard) for t in p["targets"]}
    out |= {f"annotation {a['name']!r}": a["expr"] for a in dashboard["annotations"]["list"]}
    for v in dashboard["templating"]["list"]:
        if v["type"] == "query":
            m = _LABEL_VALUES.match(v["query"]["query"])
            assert m, f"variable {v['name']}: expected label_values(selector, label)"
            out[f"variable {v['name']}"] = m.group(1)
    return out


def test_json_is_current_with_its_source() -> None:
    spec = importlib.util.spec_from_file_location("riverrun_dashboard", GRAFANA / "dashboard.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert load() == module.dashboard(), "run `python infra/grafana/dashboard.py` and commit the JSON"


def test_dashboard_is_provisionable() -> None:
    d = load()
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,40}", d["uid"]) and d["title"] and "id" not in d
    ids = [p["id"] for p in d["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    variables = {v["name"]: v for v in d["templating"]["list"]}
    assert (
        variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    )
    assert {"model", "candidate"} <= set(variables)
    cells: set[tuple[int, int]] = set()
    for p in d["panels"]:
        g = p["gridPos"]
        assert g["x"] >= 0 and g["x"] + g["w"] <= 24 and g["h"] > 0, p["title"]
        area = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
        assert not area & cells, f"panel {p['title']!r} overlaps another"
        cells |= area
    for p in panels(d):
        refs = [p["datasource"], *(t["datasource"] for t in p["targets"])]
        assert all(r == {"type": "prometheus", "uid": "${datasource}"} for r in refs), p["title"]
        assert p["targets"] and all(t["expr"].strip() for t in p["targets"]), p["title"]
        assert len({t["refId"] for t in p["targets"]}) == len(p["targets"]), p["title"]
    used = set(re.findall(r"\$\{?(\w+)", json.dumps(d)))
    known = set(variables) | {b.removeprefix("$") for b in BUILTINS} | {"__all"}
    assert used <= known, f"undefined variables {used - known}"


def test_provisioning_files() -> None:
    (datasource,) = yaml.safe_load(DATASOURCES.read_text())["datasources"]
    assert datasource["type"] == "prometheus" and datasource["isDefault"]
    assert datasource["url"] == "http://prometheus:9090"  # the compose service (tests/test_compose.py)
    (provider,) = yaml.safe_load(PROVIDER.read_text())["providers"]
    assert provider["type"] == "file" and provider["options"]["path"] == "/etc/grafana/dashboards"


def test_expressions_read_only_exported_series() -> None:
    problems = {where: unknown_references(expr) for where, expr in expressions(load()).items()}
    assert not {w: p for w, p in problems.items() if p}


def test_every_exported_series_is_on_the_dashboard() -> None:
    shown = {series_of(n) for expr in expressions(load()).values() for n in metric_names(expr)}
    assert set(SERIES) <= shown, f"no panel shows {sorted(set(SERIES) - shown)}"


def test_expressions_parse(tmp_path: Path) -> None:
    """promtool parses every expression (variables replaced), as recording rules."""
    rules = []
    for i, expr in enumerate(expressions(load()).values()):
        for var, value in {**BUILTINS, "$model": ".*", "$candidate": ".*"}.items():
            expr = expr.replace(var, value)
        rules.append({"record": f"dashboard:expr_{i}", "expr": expr})
    path = tmp_path / "dashboard_rules.yml"
    path.write_text(json.dumps({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = subprocess.run(
        [binary("promtool"), "check", "rules", str(path)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
