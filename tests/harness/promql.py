"""The series a PromQL expression reads, so tests can hold alert rules and dashboard panels to
``riverrun.streams.flow.metrics.SERIES``. A reader for the PromQL we write, not a full parser: strings,
label matchers, grouping clauses, ranges and Grafana variables are removed, and what is left that
looks like a name and is not a function, keyword or number is a metric name.

>>> sorted(metric_names('sum by (le) (rate(riverrun_x_bucket{job="a", model=~"$model"}[$__rate_interval]))'))
['riverrun_x_bucket']
>>> matchers('riverrun_y{kind="concept_drift", model=~"$model"} > 0')
[('riverrun_y', 'kind', '=', 'concept_drift'), ('riverrun_y', 'model', '=~', '$model')]
"""

from __future__ import annotations

import re

from riverrun.streams.flow.metrics import SERIES

KEYWORDS = {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right"}
KEYWORDS |= {"bool", "offset", "inf", "nan", "atan2"}
#: Series that are not riverrun's but may be used: Prometheus' own scrape health.
EXTERNAL = {"up"}
#: Labels every scraped series has (added by Prometheus), plus the histogram bucket label.
TARGET_LABELS = ("job", "instance")

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_VARIABLE = re.compile(r"\$\{[^}]*\}|\$\w+")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_NAME = re.compile(r"(?<![\w.:])[a-zA-Z_:][\w:]*")
_SELECTOR = re.compile(r"([a-zA-Z_:][\w:]*)\s*\{([^}]*)\}")
_MATCHER = re.compile(r'(\w+)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"')


def metric_names(expr: str) -> set[str]:
    """Metric names referenced by ``expr``."""
    text = _VARIABLE.sub("0", expr)
    text = re.sub(r"\{[^}]*\}", " ", _STRING.sub('""', text))
    text = re.sub(r"\[[^\]]*\]", " ", _GROUPING.sub(" ", text))
    names = set()
    for m in _NAME.finditer(text):
        rest = text[m.end() :].lstrip()
        if rest.startswith("(") or m.group().lower() in KEYWORDS:
            continue  # a function or an aggregation (`sum (`), or a keyword
        names.add(m.group())
    return names


def matchers(expr: str) -> list[tuple[str, str, str, str]]:
    """(metric, label, operator, value) of every label matcher written after a metric name."""
    return [
        (name, *m.groups())
        for name, body in _SELECTOR.findall(expr)
        for m in _MATCHER.finditer(body)
        if name.lower() not in KEYWORDS
    ]


def series_of(name: str) -> str | None:
    """The SERIES key a queried name belongs to (``x_bucket`` -> histogram ``x``), or None."""
    if name in SERIES:
        return name
    for suffix in ("_bucket", "_sum", "_count"):
        base = name.removesuffix(suffix)
        if base != name and base in SERIES and SERIES[base].kind == "histogram":
            return base
    return None


def unknown_references(expr: str) -> list[str]:
    """What ``expr`` reads that riverrun does not export: unknown names, and matchers on labels
    the series does not have. Empty when the expression is fine."""
    problems = [
        f"unknown series {name}"
        for name in sorted(metric_names(expr))
        if name not in EXTERNAL and series_of(name) is None
    ]
    for name, label, _op, _value in matchers(expr):
        base = series_of(name)
        if base is None:
            continue
        allowed = {*SERIES[base].labels, *TARGET_LABELS, *(("le",) if name.endswith("_bucket") else ())}
        if label not in allowed:
            problems.append(f"{name} has no label {label!r} (it has {sorted(allowed)})")
    return problems
