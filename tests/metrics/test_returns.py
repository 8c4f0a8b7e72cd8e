"""Return metrics: hand-computed golden values, edge cases, and property tests against empyrical."""

from __future__ import annotations

import math
import warnings

import empyrical as ep
import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from alphatwin.errors import InputError
from alphatwin.metrics import returns as rt

NAN = math.nan
RTOL, ATOL = 1e-9, 1e-12

# Dyadic returns, so every wealth value below is exact in binary floating point.
# wealth W: 1 -> 1.5 -> 0.75 -> 0.75 -> 1.5 -> 1.125 -> 1.40625; running peak 1.5 from bar 0.
R = np.array([0.5, -0.5, 0.0, 1.0, -0.25, 0.25])
PPY = 12.0  # monthly bars: the 6 returns span half a year


def test_golden_total_return_and_cagr():
    # 1.5 * 0.5 * 1 * 2 * 0.75 * 1.25 = 1.40625
    assert rt.total_return(R) == 0.40625
    # years = 6 / 12 = 0.5 -> 1.40625 ** (1 / 0.5) - 1 = 1.9775390625 - 1 (exact: (45/32)^2 = 2025/1024)
    assert rt.cagr(R, PPY) == 0.9775390625


def test_golden_volatility_and_sharpe():
    # mean = (0.5 - 0.5 + 0 + 1 - 0.25 + 0.25) / 6 = 1/6; deviations x12 = [4, -8, -2, 10, -5, 1]
    # sum of squares = (16 + 64 + 4 + 100 + 25 + 1) / 144 = 210/144; var (ddof=1) = 210/144/5 = 7/24
    # vol = sqrt(7/24 * 12) = sqrt(3.5)
    assert rt.annual_volatility(R, PPY) == pytest.approx(1.8708286933869707, rel=1e-14)
    # sharpe = (1/6) / sqrt(7/24) * sqrt(12) = sqrt(288 / 252) = sqrt(8/7)
    assert rt.sharpe(R, PPY) == pytest.approx(1.0690449676496975, rel=1e-14)


def test_golden_sortino():
    # below 0: [-0.5, -0.25] -> mean of squares over all 6 returns = (0.25 + 0.0625) / 6
    # downside = sqrt(0.3125 / 6 * 12) = sqrt(0.625); numerator = 1/6 * 12 = 2
    assert rt.downside_risk(R, PPY) == pytest.approx(math.sqrt(0.625), rel=1e-14)
    # sortino = 2 / sqrt(0.625) = sqrt(6.4)
    assert rt.sortino(R, PPY) == pytest.approx(2.5298221281347035, rel=1e-14)


def test_golden_risk_free():
    rf = 1.01 ** 12 - 1  # an annual rate whose monthly rate is 1%
    assert rt.risk_free_per_period(rf, PPY) == pytest.approx(0.01, rel=1e-13)
    # excess mean = 1/6 - 0.01; std unchanged sqrt(7/24): sharpe = (1/6 - 0.01) * sqrt(12 * 24 / 7)
    assert rt.sharpe(R, PPY, risk_free=rf) == pytest.approx(1.0049022695907157, rel=1e-12)
    # excess: [0.49, -0.51, -0.01, 0.99, -0.26, 0.24]; below: .2601 + .0001 + .0676 = .3278
    # downside = sqrt(.3278 / 6 * 12) = sqrt(.6556); numerator = (1/6 - .01) * 12 = 1.88
    assert rt.sortino(R, PPY, risk_free=rf) == pytest.approx(1.88 / math.sqrt(0.6556), rel=1e-12)
    # the risk-free rate does not enter the return-only metrics
    assert rt.annual_volatility(R, PPY) == pytest.approx(math.sqrt(3.5), rel=1e-14)


def test_golden_drawdowns():
    # W / peak - 1 with peak 1.5 from bar 0: [0, -0.5, -0.5, 0, -0.25, -0.0625]
    assert rt.drawdown_series(R).tolist() == [0.0, -0.5, -0.5, 0.0, -0.25, -0.0625]
    assert rt.max_drawdown(R) == -0.5
    # peak at bar 0, regained at bar 3 -> 3 bars; peak at bar 3, still under water at bar 5 -> 2
    assert rt.max_drawdown_duration(R) == 3
    # calmar = 0.9775390625 / 0.5
    assert rt.calmar(R, PPY) == 1.955078125


@pytest.mark.parametrize(("returns", "expected"), [
    ([], 0),
    ([0.1, 0.2], 0),  # never under water
    ([-0.5], 1),  # the start (bar -1) is the peak: one bar, open at the end
    ([-0.5, 1.0], 2),  # start -> regained at bar 1
    ([0.1, -0.1, -0.1, 0.0], 3),  # peak at bar 0, still down at bar 3
    ([0.5, -0.5, 1.0, -0.1, 0.0, 0.0, 0.0], 4),  # 2 bars, then an open one of 4 (bar 2 -> 6)
    ([-0.5, 1.0, -0.5, 0.5, 0.5], 3),  # 2 bars (start -> 1), then 3 (1 -> 4, regained above)
])
def test_max_drawdown_duration_by_hand(returns, expected):
    assert rt.max_drawdown_duration(np.array(returns, dtype=float)) == expected


def test_edge_cases_empty_and_one_return():
    empty = np.array([])
    for value in (rt.total_return(empty), rt.cagr(empty, 252), rt.annual_volatility(empty, 252),
                  rt.sharpe(empty, 252), rt.sortino(empty, 252), rt.max_drawdown(empty),
                  rt.calmar(empty, 252), rt.downside_risk(empty, 252)):
        assert math.isnan(value)
    assert rt.drawdown_series(empty).shape == (0,)
    one = np.array([-0.1])
    assert rt.total_return(one) == pytest.approx(-0.1)
    assert rt.cagr(one, 4) == pytest.approx(0.9 ** 4 - 1, rel=1e-14)
    assert math.isnan(rt.annual_volatility(one, 4)) and math.isnan(rt.sharpe(one, 4))
    assert math.isnan(rt.sortino(one, 4))
    assert rt.max_drawdown(one) == pytest.approx(-0.1)  # the starting value is a peak
    assert rt.calmar(one, 4) == pytest.approx((0.9 ** 4 - 1) / 0.1, rel=1e-14)


def test_edge_cases_zero_dispersion_and_no_downside():
    flat = np.full(3, 0.1)
    assert np.std(flat, ddof=1) > 0  # mean([0.1] * 3) = 0.10000000000000002: NumPy's std is ~1.7e-17
    assert rt.annual_volatility(flat, 252) == 0.0  # exactly
    assert rt.sharpe(flat, 252) == math.inf
    assert rt.sharpe(-flat, 252) == -math.inf
    assert math.isnan(rt.sharpe(np.zeros(5), 252))  # 0 / 0
    assert rt.sortino(np.array([0.01, 0.02]), 252) == math.inf  # no return below 0
    assert math.isnan(rt.sortino(np.zeros(3), 252))
    assert rt.max_drawdown(flat) == 0.0 and math.isnan(rt.calmar(flat, 252))  # no drawdown
    assert rt.max_drawdown_duration(flat) == 0


def test_edge_cases_ruin_and_nan():
    ruin = np.array([0.1, -1.0, 0.0])
    assert rt.cagr(ruin, 12) == -1.0 and rt.max_drawdown(ruin) == -1.0
    assert rt.calmar(ruin, 12) == -1.0
    assert math.isnan(rt.cagr(np.array([0.1, -1.5]), 12))  # negative ending value (empyrical: -0.97)
    assert math.isnan(rt.cagr(np.array([0.1, -1.5]), 7))  # (empyrical: NaN)
    # a NaN return counts as 0 in compounding, is skipped by means, but counts in the length
    gap = np.array([0.1, NAN, -0.05, 0.02])
    assert rt.total_return(gap) == pytest.approx(1.1 * 0.95 * 1.02 - 1, rel=1e-14)
    assert rt.cagr(gap, 4) == pytest.approx(1.1 * 0.95 * 1.02 - 1, rel=1e-14)  # 4 bars = 1 year
    assert rt.sharpe(gap, 4) == pytest.approx(rt.sharpe(np.array([0.1, -0.05, 0.02]), 4), rel=1e-14)


def test_bad_arguments_raise_input_error():
    with pytest.raises(InputError, match="1-D"):
        rt.sharpe(np.zeros((2, 2)), 252)
    with pytest.raises(InputError, match="periods_per_year"):
        rt.cagr(R, 0)
    with pytest.raises(InputError, match="risk_free"):
        rt.sharpe(R, 252, risk_free=-1.0)


# --- property tests against empyrical-reloaded ---------------------------------------------

grid_returns = st.lists(  # steps of 1e-4 (so distinct values are well apart), many zeros
    st.one_of(st.just(0.0), st.integers(-9999, 20000).map(lambda k: k / 1e4)), max_size=300,
)


@st.composite
def random_returns(draw: st.DrawFn) -> list[float]:
    """Realistic continuous returns: normal(mu, sigma), some zeroed, some NaN."""
    n = draw(st.integers(0, 300))
    seed = draw(st.integers(0, 2**32 - 1))
    sigma = draw(st.sampled_from([1e-4, 1e-3, 1e-2, 0.1]))
    mu = draw(st.floats(-0.01, 0.01))
    rng = np.random.default_rng(seed)
    r = np.clip(rng.normal(mu, sigma, n), -0.99, None)
    r[rng.random(n) < draw(st.sampled_from([0.0, 0.5, 0.95]))] = 0.0
    if draw(st.booleans()):
        r[rng.random(n) < 0.05] = NAN
    return r.tolist()


ppys = st.sampled_from([1.0, 4.0, 12.0, 52.0, 252.0, 260.0, 365.0, 1764.0, 8760.0, 98280.0])
risk_frees = st.one_of(st.just(0.0), st.floats(-0.05, 0.25))


def assert_matches(ours: float, theirs: float, what: str) -> None:
    np.testing.assert_allclose(ours, theirs, rtol=RTOL, atol=ATOL, equal_nan=True, err_msg=what)


def check_against_empyrical(returns: list[float], ppy: float, rf: float) -> None:
    r = np.array(returns, dtype=np.float64)
    rf_p = rt.risk_free_per_period(rf, ppy)
    with warnings.catch_warnings(), np.errstate(all="ignore"):  # empyrical warns on NaN/empty input
        warnings.simplefilter("ignore")
        expected = {
            "total_return": ep.cum_returns_final(r) if r.size else NAN,
            "cagr": ep.cagr(r, annualization=ppy),
            "annual_volatility": ep.annual_volatility(r, annualization=ppy),
            "sharpe": ep.sharpe_ratio(r, risk_free=rf_p, annualization=ppy),
            "downside_risk": ep.downside_risk(r, required_return=rf_p, annualization=ppy),
            "sortino": ep.sortino_ratio(r, required_return=rf_p, annualization=ppy),
            "max_drawdown": ep.max_drawdown(r),
            "calmar": ep.calmar_ratio(r, annualization=ppy),
        }
        drawdowns = ep.stats.drawdown_series(r) if r.size else np.array([])
    if r.size and np.nanprod(r + 1.0) < 0:
        # The one deliberate difference: with a negative ending value (equity below 0) empyrical's
        # `ending ** (ppy / n)` is NaN, or a real number of arbitrary sign when ppy / n is an
        # integer; ours is always NaN.
        expected["cagr"] = expected["calmar"] = NAN
    ours = {
        "total_return": rt.total_return(r),
        "cagr": rt.cagr(r, ppy),
        "annual_volatility": rt.annual_volatility(r, ppy),
        "sharpe": rt.sharpe(r, ppy, risk_free=rf),
        "downside_risk": rt.downside_risk(r, ppy, risk_free=rf),
        "sortino": rt.sortino(r, ppy, risk_free=rf),
        "max_drawdown": rt.max_drawdown(r),
        "calmar": rt.calmar(r, ppy),
    }
    for key, value in ours.items():
        assert isinstance(value, float), key
        assert_matches(value, float(expected[key]), key)
    np.testing.assert_allclose(rt.drawdown_series(r), drawdowns, rtol=RTOL, atol=ATOL, equal_nan=True)


@settings(max_examples=150, deadline=None)
@given(grid_returns, ppys, risk_frees)
@example([], 252.0, 0.0)  # empty
@example([0.05], 252.0, 0.0)  # one return
@example([-0.05], 12.0, 0.03)  # one negative return: a drawdown from the start
@example([0.01, 0.01, 0.01], 252.0, 0.0)  # zero dispersion, positive mean: sharpe inf
@example([0.1, 0.1, 0.1], 252.0, 0.0)  # equal values whose floating-point mean is not 0.1
@example([0.0, 0.0, 0.0, 0.0], 252.0, 0.0)  # all zero: 0/0
@example([0.0, 0.0, 0.0], 252.0, 0.05)  # all below the risk-free rate
@example([0.02, 0.03, 0.01], 252.0, 0.0)  # no downside: sortino inf, no drawdown: calmar NaN
@example([0.1, -1.0, 0.2], 12.0, 0.0)  # ruin: ending value 0
@example([0.5, -1.5, 0.2], 12.0, 0.0)  # ending value < 0: cagr NaN (empyrical: a real number)
@example([0.5, -1.5, 0.2], 7.0, 0.0)  # ending value < 0: cagr NaN (empyrical too)
@example([0.1, 0.2, 0.3], 98280.0, 0.0)  # cagr overflows to inf: calmar NaN
@example([0.5, -0.5, 0.0, 1.0, -0.25, 0.25], 12.0, 1.01 ** 12 - 1)  # the golden series
def test_grid_returns_match_empyrical(returns, ppy, rf):
    check_against_empyrical(returns, ppy, rf)


@settings(max_examples=150, deadline=None)
@given(random_returns(), ppys, risk_frees)
@example([0.01, NAN, -0.02, NAN], 252.0, 0.02)  # NaN returns
@example([NAN, NAN, NAN], 252.0, 0.0)  # only NaN
@example([NAN, 0.01], 252.0, 0.0)  # one present value among two
def test_random_returns_match_empyrical(returns, ppy, rf):
    check_against_empyrical(returns, ppy, rf)


def slow_max_drawdown_duration(returns: np.ndarray) -> int:
    """Walk the wealth bar by bar: remember the bar of the current peak, measure when regained."""
    wealth, peak, peak_bar, longest, under = 1.0, 1.0, -1, 0, False
    for bar, r in enumerate(returns):
        wealth *= 1.0 + (0.0 if math.isnan(r) else r)
        if wealth >= peak:
            if under:
                longest = max(longest, bar - peak_bar)
            peak, peak_bar, under = wealth, bar, False
        else:
            under = True
    if under:
        longest = max(longest, len(returns) - 1 - peak_bar)
    return longest


@settings(max_examples=200, deadline=None)
@given(grid_returns)
@example([])
@example([-0.1])
@example([0.1, -0.1, 0.2, -0.5, 0.0, 0.0])
def test_max_drawdown_duration_equals_a_slow_walk(returns):
    r = np.array(returns, dtype=np.float64)
    assert rt.max_drawdown_duration(r) == slow_max_drawdown_duration(r)
