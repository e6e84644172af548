"""The README's series table (Operations) lists exactly riverrun.streams.flow.metrics.SERIES."""

from __future__ import annotations

import re

from riverrun.streams.flow.metrics import SERIES
from tests.harness import ROOT


def test_readme_series_table_matches_the_catalog() -> None:
    text = (ROOT / "README.md").read_text()
    table = text.split("<!-- series:start -->")[1].split("<!-- series:end -->")[0]
    rows = re.findall(r"^\| `(\w+)` \| (\w+) \| ([^|]*) \|", table, re.MULTILINE)
    documented = {name: (kind, labels.strip()) for name, kind, labels in rows}
    expected = {name: (s.kind, ", ".join(s.labels) or "-") for name, s in SERIES.items()}
    assert documented == expected, "regenerate the README series table from SERIES (name, type, labels)"
