"""The label-free monitors of a lifecycle: features (covariate shift), labels (prior shift) and
served probabilities (prediction drift). They alert and checkpoint; they never roll back."""

from __future__ import annotations

from typing import TYPE_CHECKING

from riverrun.detectors import CovariateShiftMonitor, LabelShiftMonitor, PredictionDriftMonitor
from riverrun.learners.lifecycle.policy import PolicyConfig

if TYPE_CHECKING:
    from riverrun.learners.lifecycle.model import ModelLifecycle


def build_monitors(
    c: PolicyConfig,
) -> tuple[CovariateShiftMonitor | None, LabelShiftMonitor | None, PredictionDriftMonitor | None]:
    """The covariate, label and prediction monitors ``c`` asks for (``None``: off)."""
    covariate = (
        CovariateShiftMonitor(
            reference_size=c.reference_size,
            window_size=c.monitor_window,
            psi_warning=c.psi_warning,
            psi_threshold=c.psi_threshold,
            ks_alpha=c.ks_alpha,
            chi2_alpha=c.chi2_alpha,
            check_every=c.monitor_check_every,
            exclude=c.covariate_exclude,
        )
        if c.covariate
        else None
    )
    windows = {"reference_size": c.reference_size, "window_size": c.monitor_window}
    labels = LabelShiftMonitor(**windows, check_every=c.monitor_check_every) if c.prior else None
    predictions = PredictionDriftMonitor(**windows, check_every=c.monitor_check_every) if c.prior else None
    return covariate, labels, predictions


def feed_served(lc: ModelLifecycle, batch: list[tuple[dict, dict | None]]) -> None:
    """Feed a batch of sampled (features, served probabilities) to the label-free monitors of
    ``lc``, in order; alerts (and checkpoints) go to ``lc.drain()``."""
    if (covariate := lc.covariate) is not None:
        for x, _ in batch:
            covariate.update(x)
            if covariate._drift_detected:  # one alert (and checkpoint) per update
                lc._alert("covariate_shift", covariate.signal(), checkpoint=True)
    if (predictions := lc.predictions) is not None:
        for _, proba in batch:
            if proba:
                predictions.update(proba.get(True, 0.0))
                if predictions._drift_detected:
                    lc._alert("prediction_drift", predictions.signal())
