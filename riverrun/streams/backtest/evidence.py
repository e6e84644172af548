"""A model event's evidence and versions in words, for people (``report.json`` keeps the full
values): which detector said what against which threshold, and what was served or saved.

>>> signal_sentence({"detector": "psi", "feature": "loan", "statistic": 0.3141, "threshold": 0.2})
'PSI of loan 0.31, above 0.2'
>>> signal_sentence({"detector": "chi2", "statistic": 0.0081846, "threshold": 0.01})
'chi-square test p = 0.0082, below 0.01'
>>> signal_sentence({"detector": "adwin", "statistic": 0.36737, "threshold": 0.002})
'ADWIN (δ 0.002) on the served errors: error rate 36.7% in its window'
>>> version_text({"action": "checkpoint", "to_version": 2, "checkpoint": "ckpt-5", "registry_version": 7})
'serving v2 saved as ckpt-5 = registry v7'
>>> version_text({"action": "rollback", "from_version": 1, "to_version": 2, "checkpoint": "ckpt-5"})
'serving v1 → v2 (back to ckpt-5)'
"""

from __future__ import annotations

from typing import Any

#: Detectors whose statistic is a p-value: an alarm means it fell below the threshold.
P_VALUE_DETECTORS = ("ks", "chi2", "kswin")

NAMES = {"psi": "PSI", "chi2": "chi-square test", "ks": "KS test", "kswin": "KSWIN", "adwin": "ADWIN"}


def _num(v: float) -> str:
    """Two significant digits at least, no float noise: 0.31, 0.0082, 5.4, 1,234."""
    if v == 0 or abs(v) >= 100:
        return f"{v:,.0f}"
    if abs(v) >= 1:
        return f"{v:.2g}" if abs(v) < 10 else f"{v:.0f}"
    return f"{v:.2g}"


def signal_sentence(a: dict[str, Any]) -> str:
    """What the detector measured, against what ("" without a detector)."""
    detector = a.get("detector")
    if not detector or a.get("statistic") is None:
        return ""
    stat, threshold = float(a["statistic"]), float(a.get("threshold", float("nan")))
    name = NAMES.get(detector, detector.upper() if len(detector) <= 6 else detector)
    action = a.get("action")
    if detector in P_VALUE_DETECTORS:
        of = f" on {a['feature']}" if a.get("feature") else ""
        return f"{name}{of} p = {_num(stat)}, below {_num(threshold)}"
    if detector in ("adwin", "hddm_a"):
        return f"{name} (δ {_num(threshold)}) on the served errors: error rate {stat:.1%} in its window"
    of = (
        f" of {a['feature']}"
        if a.get("feature")
        else " of the served probabilities"
        if action == "prediction_drift"
        else " of the labels"
        if action == "prior_shift"
        else ""
    )
    return f"{name}{of} {_num(stat)}, above {_num(threshold)}"


def compared_rows(a: dict[str, Any]) -> list[tuple[str, str, str]]:
    """The candidates compared: (name, accuracy to 3 places, labels), champion first, then by
    accuracy."""
    compared = a.get("compared") or {}
    order = sorted(compared, key=lambda k: (k != "champion", -compared[k].get("accuracy", 0.0), k))
    return [
        (
            name,
            f"{compared[name]['accuracy']:.3f}" if "accuracy" in compared[name] else "-",
            f"{int(compared[name]['labels']):,}" if "labels" in compared[name] else "-",
        )
        for name in order
    ]


def version_text(a: dict[str, Any]) -> str:
    """The serving version (the predictions' ``model_version``) and, for checkpoints, what was
    saved: the lifecycle's checkpoint id and, once stored, its registry version (``riverrun
    models list``)."""
    action = a.get("action")
    to, before, ckpt = a.get("to_version"), a.get("from_version"), a.get("checkpoint")
    registry = a.get("registry_version")
    if action == "checkpoint":
        saved = f"serving v{to} saved as {ckpt}" if to is not None else f"saved as {ckpt}"
        return saved + (f" = registry v{registry}" if registry is not None else "")
    if to is None:
        return ""
    text = f"serving v{before} → v{to}" if before is not None else f"serving v{to}"
    if ckpt:
        text += f" (back to {ckpt}" + (f" = registry v{registry})" if registry is not None else ")")
    return text
