"""``report.html`` from a report dict: self-contained, one row per run, escaped, and rendered
even when a section has no data."""

from __future__ import annotations

import base64
import html

from riverrun.streams.backtest.html_report import render, summary_table, write_html_report
from tests.harness.html_cells import action_rows, raw_reprs

PNG = b"\x89PNG\r\n\x1a\n"


def _report() -> dict:
    windows = [
        {"ts": f"2024-01-01T00:0{i}:00+00:00", "metrics": {"accuracy_rolling": 0.5 + i / 20}}
        for i in range(5)
    ]
    delay = {"bounds": [1.0, 60.0], "counts": [3, 90, 7], "sum": 2000.0}
    return {
        "events": 100,
        "passes": 1,
        "seconds": 1.5,
        "inputs": {"events": "e.jsonl"},
        "dead_letters": {},
        "models": {"lr-none": {"final": None, "windows": windows}},
        "runs": [
            {
                "name": "lr-none",
                "recipe": "lr",
                "policy": "none",
                "metrics": {"accuracy": 0.9, "log_loss": 0.3, "roc_auc": 0.95},
                "n_predicted": 100,
                "n_learned": 100,
                "action_counts": {"concept_drift": 1, "checkpoint": 4},
                "actions": [
                    {
                        "model": "lr-none",
                        "action": "concept_drift",
                        "at": "2024-01-01T00:02:00+00:00",
                        "reason": "<error rose>",
                        "detector": "adwin",
                    }
                ],
                "events_per_second": 5000.0,
                "shared_pass": True,
                "label_delay": delay,
            }
        ],
        "psi": {
            "warning": 0.1,
            "threshold": 0.2,
            "series": [{"ts": f"2024-01-01T00:0{i}:00+00:00", "psi": {"x": i / 10}} for i in range(5)],
        },
    }


def test_page_embeds_three_png_plots_and_the_summary(tmp_path):
    path = write_html_report(tmp_path, _report(), title="t <1>")
    page = path.read_text()
    images = [chunk.split('"', 1)[0] for chunk in page.split("data:image/png;base64,")[1:]]
    assert len(images) == 3 and all(base64.b64decode(i)[:8] == PNG for i in images)
    assert "<title>t &lt;1&gt;</title>" in page and "&lt;error rose&gt;" in page  # escaped
    assert "How to read this" in page and "http" not in page.split("<body>")[1].split("</body>")[0]


def test_summary_row_counts_actions_without_periodic_checkpoints():
    table = summary_table(_report())
    assert table.count("<tr>") == 2
    assert "concept drift 1" in table and "checkpoint" not in table
    assert "0.9000" in table and "5,000 (shared)" in table


def test_sections_without_data_say_so():
    report = _report()
    report["psi"]["series"] = []
    report["runs"][0]["label_delay"] = None
    report["models"]["lr-none"]["windows"] = []
    page = render(report)
    assert page.count("No data for this plot.") == 3 and "data:image/png" not in page


def _decision_report() -> dict:
    report = _report()
    report["runs"][0]["actions"] = [
        {
            "model": "lr-none",
            "action": "promotion",
            "at": "2024-01-01T00:03:00+00:00",
            "reason": "challenger:fresh beats the champion",
            "detector": "adwin",
            "statistic": 0.011458333333333333,
            "threshold": 0.002,
            "from_version": 1,
            "to_version": 2,
            "compared": {
                "challenger:fresh": {"accuracy": 0.5066666666666667, "labels": 300.0},
                "champion": {"accuracy": 0.4666666666666667, "labels": 300.0},
            },
        },
        {
            "model": "lr-none",
            "action": "checkpoint",
            "at": "2024-01-01T00:03:00+00:00",
            "reason": "before challenger:fresh",
            "checkpoint": "ckpt-8",
            "to_version": 1,
            "registry_version": 8,
        },
        {
            "model": "lr-none",
            "action": "covariate_shift",
            "at": "2024-01-01T00:04:00+00:00",
            "reason": "label-free evidence",
            "detector": "psi",
            "feature": "salary",
            "statistic": 0.31415926,
            "threshold": 0.2,
        },
    ]
    return report


def test_evidence_is_a_sentence_and_a_small_table_never_a_repr():
    page = render(_decision_report())
    assert raw_reprs(page) == []
    promotion, checkpoint, shift = action_rows(page)
    assert promotion[3] == "serving v1 → v2"
    assert promotion[5].startswith("ADWIN (δ 0.002) on the served errors: error rate 1.1% in its window.")
    # the candidates, champion first, accuracy to 3 places, labels as a count
    assert "candidate accuracy labels champion 0.467 300 challenger:fresh 0.507 300" in promotion[5]
    assert checkpoint[3] == "serving v1 saved as ckpt-8 = registry v8" and checkpoint[5] == "\N{EN DASH}"
    assert shift[5] == "PSI of salary 0.31, above 0.2."


def test_the_repr_check_catches_the_old_rendering():
    action = _decision_report()["runs"][0]["actions"][0]
    evidence = {k: action[k] for k in ("detector", "statistic", "threshold", "compared")}
    old_row = "<tr>" + "<td>x</td>" * 5 + f"<td>{html.escape(str(evidence))}</td></tr>"
    page = f"<h2>Actions and their evidence</h2><table><tr><th>h</th></tr>{old_row}</table>"
    assert raw_reprs(page) == [html.unescape(html.escape(str(evidence)))]
