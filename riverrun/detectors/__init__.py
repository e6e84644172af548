"""Drift detectors, pure: numbers in, ``DriftSignal``s out (no I/O, no clocks, no Bytewax).

All speak River's protocol (``update(x)``, then ``drift_detected``/``warning_detected``, True only
on the update that fires), keep hyperparameters as public attributes and state private (rebuilt
by ``_reset()``), and pickle without numpy objects in their state.

- ``ConceptDriftDetector``: ADWIN / HDDM-A / KSWIN on the served-prediction errors.
- ``StreamingPSI``, ``WindowedKS``, ``ChiSquare``: one feature against a frozen reference.
- ``CovariateShiftMonitor``: all of a feature dict's features.
- ``LabelShiftMonitor``, ``PredictionDriftMonitor``: label prior and prediction distribution.
"""

from riverrun.detectors.base import DriftSignal
from riverrun.detectors.concept import ConceptDriftDetector
from riverrun.detectors.covariate import CovariateShiftMonitor
from riverrun.detectors.prior import LabelShiftMonitor, PredictionDriftMonitor
from riverrun.detectors.psi import StreamingPSI, psi_from_counts
from riverrun.detectors.twosample import ChiSquare, WindowedKS

__all__ = [
    "ChiSquare",
    "ConceptDriftDetector",
    "CovariateShiftMonitor",
    "DriftSignal",
    "LabelShiftMonitor",
    "PredictionDriftMonitor",
    "StreamingPSI",
    "WindowedKS",
    "psi_from_counts",
]
