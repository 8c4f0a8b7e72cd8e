"""Sizing: golden values, clipping, the trailing-moment kernel, and point-in-time truncation."""

from __future__ import annotations

import doctest
import math

import numpy as np
import pytest
from hypothesis import example, given, settings, strategies as st
from hypothesis.extra.numpy import arrays

from alphatwin.errors import InputError
from alphatwin.risk import sizing
from alphatwin.risk.nb import rolling_mean_var_nb
from alphatwin.risk.sizing import fixed_fraction, kelly_fraction, rolling_kelly, vol_target


def test_doctests():
    assert doctest.testmod(sizing).failed == 0


def test_fixed_fraction():
    np.testing.assert_array_equal(fixed_fraction(np.array([[1.0, -1.0], [0.0, 1.0]]), 0.1),
                                  [[0.1, -0.1], [0.0, 0.1]])
    with pytest.raises(InputError, match="`fraction`"):
        fixed_fraction(np.ones(3), -0.1)


def test_rolling_mean_var_kernel_golden():
    x = np.array([[1.0, 2.0], [2.0, np.nan], [4.0, 3.0], [5.0, 4.0]])
    mean, var = rolling_mean_var_nb(x, 2)
    np.testing.assert_array_equal(mean, [[np.nan, np.nan], [1.5, np.nan], [3.0, np.nan], [4.5, 3.5]])
    np.testing.assert_array_equal(var, [[np.nan, np.nan], [0.5, np.nan], [2.0, np.nan], [0.5, 0.5]])


@settings(max_examples=50, deadline=None)
@given(x=arrays(float, st.tuples(st.integers(0, 12), st.integers(1, 3)),
                elements=st.one_of(st.floats(-1, 1), st.just(np.nan))),
       window=st.integers(2, 5))
def test_rolling_mean_var_kernel_matches_reference(x, window):
    mean, var = rolling_mean_var_nb(x, window)
    for t in range(x.shape[0]):
        for j in range(x.shape[1]):
            w = x[max(0, t - window + 1):t + 1, j]
            if t < window - 1 or np.isnan(w).any():
                assert np.isnan(mean[t, j]) and np.isnan(var[t, j])
            else:
                assert mean[t, j] == pytest.approx(w.mean(), abs=1e-12)
                assert var[t, j] == pytest.approx(w.var(ddof=1), abs=1e-12)


def test_vol_target_constant_vol():
    a = 0.01
    r = np.tile([a, -a], 20)  # every window of even length 4 has sample sd a * sqrt(4 / 3)
    r[0] = np.nan
    sig = np.ones_like(r)
    sig[-1] = -1.0
    realized = a * math.sqrt(4 / 3) * math.sqrt(252)
    out = vol_target(sig, r, target_vol=0.10, window=4, periods_per_year=252, cap=5.0)
    np.testing.assert_array_equal(out[:4], 0.0)  # rows 0-3: window short or holds the NaN
    np.testing.assert_allclose(out[4:-1], 0.10 / realized, rtol=1e-12)
    assert out[-1] == pytest.approx(-0.10 / realized, rel=1e-12)
    capped = vol_target(sig, r, target_vol=0.50, window=4, periods_per_year=252, cap=1.5)
    assert 0.50 / realized > 1.5
    np.testing.assert_array_equal(capped[4:-1], 1.5)


def test_vol_target_zero_vol_is_capped_and_2d():
    r = np.zeros((6, 2))
    r[:, 1] = [0.01, -0.01] * 3
    out = vol_target(np.ones((6, 2)), r, target_vol=0.1, window=2, periods_per_year=1, cap=2.0)
    np.testing.assert_array_equal(out[0], 0.0)
    np.testing.assert_array_equal(out[1:, 0], 2.0)
    # sd of (0.01, -0.01) is 0.02 / sqrt(2): leverage 0.1 / 0.01414 = 7.07 -> capped at 2
    np.testing.assert_array_equal(out[1:, 1], 2.0)


def test_vol_target_rejects_bad_arguments():
    with pytest.raises(InputError, match="`target_vol`"):
        vol_target(np.ones(5), np.zeros(5), target_vol=0.0, window=2, periods_per_year=252, cap=1)
    with pytest.raises(InputError, match="same shape"):
        vol_target(np.ones(5), np.zeros(4), target_vol=0.1, window=2, periods_per_year=252, cap=1)


@pytest.mark.parametrize("mean, var, kw, expected", [
    (0.0005, 0.0004, {}, 0.625),                            # 0.5 * 1.25
    (0.0005, 0.0004, {"fraction": 1.0}, 1.0),               # full Kelly 1.25 clipped to 1
    (0.0005, 0.0004, {"fraction": 1.0, "cap": 2.0}, 1.25),
    (-0.0010, 0.0004, {}, -1.0),                            # -1.25 clipped to -1
    (-0.0002, 0.0004, {"fraction": 0.25}, -0.125),
    (0.0, 0.0004, {}, 0.0),
])
def test_kelly_fraction_golden(mean, var, kw, expected):
    assert kelly_fraction(mean, var, **kw) == pytest.approx(expected, rel=1e-12)


def test_kelly_fraction_rejects_bad_arguments():
    with pytest.raises(InputError, match="`var`"):
        kelly_fraction(0.001, 0.0)
    with pytest.raises(InputError, match="`cap`"):
        kelly_fraction(0.001, 0.01, cap=0)


def test_rolling_kelly_golden():
    r = np.array([np.nan, 0.01, 0.03, -0.01, 0.02])
    sig = np.array([1.0, 1.0, 1.0, -1.0, 1.0])
    out = rolling_kelly(sig, r, 2, fraction=0.5, cap=100.0)
    # row 2: (0.01, 0.03) mean 0.02, var 0.0002 -> 0.5 * 100 = 50
    # row 3: (0.03, -0.01) mean 0.01, var 0.0008 -> short against a positive edge -> 0
    # row 4: (-0.01, 0.02) mean 0.005, var 0.00045 -> 0.5 * 11.11 = 5.555...
    np.testing.assert_allclose(out, [0.0, 0.0, 50.0, 0.0, 0.5 * 0.005 / 0.00045], rtol=1e-12)
    capped = rolling_kelly(sig, r, 2)
    np.testing.assert_array_equal(capped, [0.0, 0.0, 1.0, 0.0, 1.0])
    short = rolling_kelly(-sig, -r, 2, cap=100.0)  # mirrored: same sizes, opposite sign
    np.testing.assert_allclose(short, -out, rtol=1e-12)


_RNG = np.random.default_rng(11)
R = _RNG.normal(0.0005, 0.01, size=(50, 2))
R[0] = np.nan
R[20, 1] = np.nan  # a gap
S = _RNG.choice([-1.0, 0.0, 1.0], size=(50, 2))


@settings(max_examples=30, deadline=None)
@given(t=st.integers(0, 50))
@example(t=0)
@example(t=1)
@example(t=50)
def test_truncation_is_point_in_time(t):
    """Guards against look-ahead: output on data[:T] equals the first T rows of the full output."""
    cases = [
        lambda s, r: vol_target(s, r, target_vol=0.1, window=5, periods_per_year=252, cap=2.0),
        lambda s, r: rolling_kelly(s, r, 5),
        lambda s, r: vol_target(s[:, 0], r[:, 0], target_vol=0.1, window=3, periods_per_year=252, cap=2.0),
    ]
    for f in cases:
        np.testing.assert_array_equal(f(S[:t], R[:t]), f(S, R)[:t])
