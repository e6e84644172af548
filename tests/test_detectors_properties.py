"""Properties of the smoothed PSI (hypothesis), on count vectors and through ``StreamingPSI``.

What is true of ``sum (a_i - e_i) ln(a_i / e_i)`` with ``e_i = (r_i + eps)/(R + k eps)``,
``a_i = (c_i + eps)/(C + k eps)``: every term is >= 0 (so PSI >= 0, also in floating point,
since a > e implies a/e >= 1 after rounding); it is finite for eps > 0; it is 0 exactly when the
counts are equal; it is symmetric. Equal *proportions* with different totals do NOT give 0:
a_i = e_i for all i only when the totals are equal or the reference is uniform (r_i = R/k).
"""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from riverrun.detectors import StreamingPSI, psi_from_counts

counts = st.lists(st.integers(0, 10_000), min_size=1, max_size=30)
epsilons = st.floats(0.01, 10.0)


@st.composite
def count_pairs(draw):
    reference = draw(counts)
    window = draw(st.lists(st.integers(0, 10_000), min_size=len(reference), max_size=len(reference)))
    return reference, window


@given(count_pairs(), epsilons)
def test_psi_is_non_negative_finite_and_symmetric(pair, eps):
    reference, window = pair
    value = psi_from_counts(reference, window, eps)
    assert math.isfinite(value) and value >= 0.0
    assert psi_from_counts(window, reference, eps) == pytest.approx(value, rel=1e-9, abs=1e-15)


@given(counts, epsilons)
def test_psi_is_zero_for_equal_counts(reference, eps):
    assert psi_from_counts(reference, list(reference), eps) == 0.0


@given(counts, st.integers(2, 50), epsilons)
def test_equal_proportions_with_other_totals_are_zero_only_for_a_uniform_reference(reference, m, eps):
    assume(sum(reference) > 0)
    value = psi_from_counts(reference, [m * r for r in reference], eps)
    if len(set(reference)) == 1:
        assert value == pytest.approx(0.0, abs=1e-15)
    else:
        assert value > 0.0


@given(count_pairs(), epsilons)
def test_psi_matches_numpy(pair, eps):
    r, c = (np.asarray(v, dtype=float) for v in pair)
    k = len(r)
    e = (r + eps) / (r.sum() + k * eps)
    a = (c + eps) / (c.sum() + k * eps)
    assert psi_from_counts(*pair, eps) == pytest.approx(
        float(np.sum((a - e) * np.log(a / e))), rel=1e-12, abs=1e-12
    )


values = st.one_of(
    st.floats(-1e6, 1e6, allow_nan=False),
    st.integers(-5, 5),  # duplicate-heavy
    st.sampled_from([None, math.nan]),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(values, min_size=1, max_size=60), st.integers(1, 12), st.randoms(use_true_random=False))
def test_window_with_the_reference_counts_has_psi_exactly_zero(sample, n_bins, rnd: random.Random):
    """Any sample, then a permutation of it as the window: the same counts, so PSI is 0.0."""
    det = StreamingPSI(reference_size=len(sample), window_size=len(sample), n_bins=n_bins, check_every=1)
    window = list(sample)
    rnd.shuffle(window)
    for v in [*sample, *window]:
        det.update(v)
    assert det.window_counts == det.reference_counts
    assert det.psi == 0.0
    assert not det.drift_detected and not det.warning_detected
    assert len(det.edges) <= n_bins - 1
    assert list(det.edges) == sorted(set(det.edges))


@settings(max_examples=200, deadline=None)
@given(st.lists(values, min_size=2, max_size=80), st.integers(1, 40), st.integers(1, 40), st.integers(1, 12))
def test_streaming_psi_is_the_psi_of_its_counts(sample, reference_size, window_size, n_bins):
    assume(reference_size < len(sample))
    det = StreamingPSI(reference_size=reference_size, window_size=window_size, n_bins=n_bins)
    for v in sample:
        det.update(v)
    window = sample[reference_size:][-window_size:]
    assert sum(det.window_counts) == len(window)
    assert det.window_counts[-1] == sum(v is None or v != v for v in window)
    assert sum(det.reference_counts) == reference_size
    if len(window) < window_size:
        assert det.psi is None
    else:
        value = det.psi
        assert value == psi_from_counts(det.reference_counts, det.window_counts, det.eps)
        assert math.isfinite(value) and value >= 0.0
