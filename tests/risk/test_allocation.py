"""Allocation: golden values, risk-parity correctness, and point-in-time truncation."""

from __future__ import annotations

import doctest

import numpy as np
import pytest
from hypothesis import example, given, settings, strategies as st

from alphatwin.errors import InputError
from alphatwin.risk import allocation
from alphatwin.risk.allocation import equal_weight, inverse_volatility, risk_parity, risk_parity_weights

SIG = np.array([0.10, 0.20, 0.15, 0.30])
CORR = np.array([[1.0, 0.5, 0.2, -0.1],
                 [0.5, 1.0, 0.4, 0.0],
                 [0.2, 0.4, 1.0, 0.3],
                 [-0.1, 0.0, 0.3, 1.0]])
COV = CORR * np.outer(SIG, SIG)


def _returns(n: int, m: int, seed: int = 7) -> np.ndarray:
    r = np.random.default_rng(seed).normal(0.0, 0.01, size=(n, m)) * np.arange(1, m + 1)
    r[0] = np.nan  # first bar has no return
    return r


def test_doctests():
    assert doctest.testmod(allocation).failed == 0


def test_equal_weight_golden():
    active = np.array([[True, False, True, True], [False, False, False, False], [False, True, False, False]])
    expected = [[1 / 3, 0, 1 / 3, 1 / 3], [0, 0, 0, 0], [0, 1, 0, 0]]
    np.testing.assert_allclose(equal_weight(active), expected, rtol=0, atol=1e-15)


def test_equal_weight_accepts_signals():
    np.testing.assert_array_equal(equal_weight(np.array([[1.0, -1.0, 0.0, np.nan]])), [[0.5, 0.5, 0, 0]])


def test_inverse_volatility_golden():
    # window 2: sample stdev of (a, b) is |a - b| / sqrt(2)
    r = np.array([[np.nan, 0.0], [0.01, 0.02], [0.03, 0.00], [0.02, 0.04]])
    w = inverse_volatility(r, 2)
    assert np.isnan(w[:2]).all()  # row 0 no history; row 1's window holds the NaN
    # row 2: sd (0.02, 0.02)/sqrt2 -> equal; row 3: sd (0.01, 0.04)/sqrt2 -> 1/0.01 : 1/0.04 = 4 : 1
    np.testing.assert_allclose(w[2:], [[0.5, 0.5], [0.8, 0.2]], rtol=1e-12)


def test_inverse_volatility_active_mask():
    r = np.array([[0.01, 0.02, 0.05], [0.03, 0.00, 0.00], [0.02, 0.04, 0.01]])
    active = np.array([[True, True, True], [True, False, True], [False, False, False]])
    w = inverse_volatility(r, 2, active)
    assert np.isnan(w[0]).all()
    # row 1: sd(col0)=0.02/sqrt2, sd(col2)=0.05/sqrt2 -> 1/0.02 : 1/0.05 = 5 : 2
    np.testing.assert_allclose(w[1], [5 / 7, 0.0, 2 / 7], rtol=1e-12)
    np.testing.assert_array_equal(w[2], [0.0, 0.0, 0.0])


def test_risk_parity_equal_contributions():
    w = risk_parity_weights(COV)
    rc = w * (COV @ w) / (w @ COV @ w)
    np.testing.assert_allclose(rc, 0.25, rtol=0, atol=1e-6)
    np.testing.assert_allclose(rc, 0.25, rtol=0, atol=1e-10)  # the Newton polish gets far closer
    assert w.sum() == pytest.approx(1.0, abs=1e-14)
    assert (w > 0).all()


def test_risk_parity_diagonal_is_inverse_vol():
    w = risk_parity_weights(np.diag(SIG**2))
    np.testing.assert_allclose(w, (1 / SIG) / (1 / SIG).sum(), rtol=0, atol=1e-9)


def test_risk_parity_one_asset():
    np.testing.assert_array_equal(risk_parity_weights(np.array([[0.04]])), [1.0])


@pytest.mark.parametrize("cov, word", [
    (np.ones(3), "square"),
    (np.ones((2, 3)), "square"),
    (np.array([[1.0, 0.5], [0.4, 1.0]]), "symmetric"),
    (np.array([[1.0, 2.0], [2.0, 1.0]]), "positive semi-definite"),
    (np.array([[0.0, 0.0], [0.0, 1.0]]), "positive diagonal"),
    (np.array([[np.nan, 0.0], [0.0, 1.0]]), "finite"),
    (np.array([[1.0, -1.0], [-1.0, 1.0]]), "zero variance"),  # perfect hedge: no equal-risk portfolio
])
def test_risk_parity_rejects_invalid_cov(cov, word):
    with pytest.raises(InputError, match="`cov`") as exc:
        risk_parity_weights(cov)
    assert word in str(exc.value)


def test_risk_parity_rolling_schedule():
    r = _returns(40, 3)
    w = risk_parity(r, 10, rebalance_every=5)
    first = 10  # row 0 is NaN, so the first full window is rows 1..10
    assert np.isnan(w[:first]).all()
    for t in range(first, 40):
        start = t - (t - first) % 5
        np.testing.assert_array_equal(w[t], risk_parity_weights(np.cov(r[start - 9:start + 1], rowvar=False)))
    assert not np.array_equal(w[first], w[first + 5])


def test_rolling_rejects_bad_arguments():
    with pytest.raises(InputError, match="`window`"):
        inverse_volatility(np.zeros((5, 2)), 1)
    with pytest.raises(InputError, match="`returns`"):
        risk_parity(np.zeros(5), 2)
    with pytest.raises(InputError, match="`rebalance_every`"):
        risk_parity(np.zeros((5, 2)), 2, rebalance_every=0)
    with pytest.raises(InputError, match="`active`"):
        inverse_volatility(np.zeros((5, 2)), 2, np.ones((4, 2), dtype=bool))


FULL = _returns(60, 3)
ACTIVE = np.random.default_rng(3).random((60, 3)) > 0.3


@settings(max_examples=30, deadline=None)
@given(t=st.integers(0, 60))
@example(t=0)
@example(t=1)
@example(t=60)
def test_truncation_is_point_in_time(t):
    """Guards against look-ahead: output on data[:T] equals the first T rows of the full output."""
    cases = [
        lambda x, a: inverse_volatility(x, 5),
        lambda x, a: inverse_volatility(x, 5, a),
        lambda x, a: risk_parity(x, 8, rebalance_every=4),
    ]
    for f in cases:
        np.testing.assert_array_equal(f(FULL[:t], ACTIVE[:t]), f(FULL, ACTIVE)[:t])
