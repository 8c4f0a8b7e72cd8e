"""The trend filters ``adx_trend`` (Wilder's DI and ADX) and ``slope_trend`` (regression slope
of log price).

Kernels against TA-Lib (DI/ADX bit-compatible, NaN exactly where TA-Lib is NaN, warm-up =
TA-Lib's lookback) and NumPy's polyfit; hand-built series whose targets and engine trades are
written out by hand; the strategy properties: point in time, scale invariant, direction
respected, parameters checked.
"""

from __future__ import annotations

import numpy as np
import pytest
import talib
import talib.abstract
from hypothesis import example, given, settings
from hypothesis import strategies as st

from alphatwin.backtest.engine import simulate
from alphatwin.backtest.params import Market, SimParams
from alphatwin.errors import InputError
from alphatwin.signals import adx_trend, slope_trend
from alphatwin.signals.base import get_strategy
from alphatwin.signals.trend_nb import band_target_nb, dmi_1d_nb, linreg_slope_1d_nb

RTOL = 1e-9


def ohlc(seed: int, n: int, flat: float = 0.2) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A random walk from 100 with highs above and lows below the close, a share ``flat`` of
    unchanged closes, a fully flat start (H = L = C) and a fully flat stretch of up to 15 bars
    (short enough that TA-Lib's smoothed range stays above its 1e-8 zero, even at period 2)."""
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, n) * (rng.random(n) >= flat)))
    high = close * (1 + np.abs(rng.normal(0.0, 0.005, n)) * (rng.random(n) >= flat))
    low = close * (1 - np.abs(rng.normal(0.0, 0.005, n)) * (rng.random(n) >= flat))
    for a, b in ((0, min(n, int(rng.integers(0, 6)))), sorted(rng.integers(0, n + 1, 2))):
        b = min(b, a + 15)
        if b > a:
            close[a:b] = high[a:b] = low[a:b] = close[a]
    return high, low, close


def lookback(name: str, period: int) -> int:
    fn = talib.abstract.Function(name)
    fn.set_parameters(timeperiod=period)
    return fn.lookback


def assert_like(got: np.ndarray, want: np.ndarray, atol: float) -> None:
    assert np.array_equal(np.isnan(got), np.isnan(want)), "NaN rows differ from the reference"
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=atol)


# --------------------------------------------------------------------------- kernels vs TA-Lib

series = st.tuples(st.integers(0, 2**32 - 1), st.integers(0, 300))


@settings(max_examples=60, deadline=None)
@given(series, st.integers(2, 40))
@example((0, 0), 2)
@example((1, 14), 14)  # n = period: no DI yet
@example((2, 15), 14)  # the first DI
@example((3, 28), 14)  # the first ADX
@example((4, 300), 2)
def test_dmi_matches_talib(case, period):
    high, low, close = ohlc(*case)
    plus, minus, adx = dmi_1d_nb(high, low, close, period)
    # DI on 0..100: an absolute margin of 1e-9 (in practice the arithmetic is TA-Lib's, bit for bit)
    assert_like(plus, talib.PLUS_DI(high, low, close, period), atol=1e-9)
    assert_like(minus, talib.MINUS_DI(high, low, close, period), atol=1e-9)
    assert_like(adx, talib.ADX(high, low, close, period), atol=1e-9)


@pytest.mark.parametrize("period", [2, 5, 14, 30])
def test_dmi_warm_up_is_talib_lookback(period):
    high, low, close = ohlc(5, 200)
    plus, minus, adx = dmi_1d_nb(high, low, close, period)
    assert np.flatnonzero(~np.isnan(plus))[0] == lookback("PLUS_DI", period) == period
    assert np.flatnonzero(~np.isnan(minus))[0] == lookback("MINUS_DI", period) == period
    assert np.flatnonzero(~np.isnan(adx))[0] == lookback("ADX", period) == 2 * period - 1
    sig = adx_trend.compute(high, low, close, period=period)[0]
    assert np.array_equal(np.isnan(sig), np.isnan(adx))


@pytest.mark.parametrize("value", [100.3, 1.1, 0.1])
def test_dmi_on_a_flat_series_matches_talib(value):
    x = np.full(60, value)
    got = dmi_1d_nb(x, x, x, 14)
    for g, fn in zip(got, (talib.PLUS_DI, talib.MINUS_DI, talib.ADX)):
        assert_like(g, fn(x, x, x, 14), atol=0.0)
    assert np.nanmax(np.abs(got[2])) == 0.0  # no DX ever defined: ADX 0, so never a strong trend
    assert (adx_trend.targets(x, x, x, threshold=0.0, direction="both") == 0).all()


def test_dmi_by_hand():
    # H = C + 0.5, L = C - 0.5, period 2. Bar 1: +DM 1, TR 1.5 (summed). Bar 2: +DM 1 - 0.5 + 1
    # = 1.5, TR 1.5 - 0.75 + 1.5 = 2.25: +DI 66.67, DX 100; bar 3 likewise: ADX = (100 + 100) / 2.
    # Bar 5 (down): +DM 0.9375, -DM 1, TR 2.90625: +DI 32.26, -DI 34.41, DX 3.23, ADX 51.61
    close = np.array([10.0, 11, 12, 13, 14, 13])
    plus, minus, adx = dmi_1d_nb(close + 0.5, close - 0.5, close, 2)
    np.testing.assert_allclose(plus, [np.nan, np.nan, 200 / 3, 200 / 3, 200 / 3, 100 * 0.9375 / 2.90625])
    np.testing.assert_allclose(minus, [np.nan, np.nan, 0, 0, 0, 100 / 2.90625])
    dx = 100 * (1 - 0.9375) / (1 + 0.9375)
    np.testing.assert_allclose(adx, [np.nan, np.nan, np.nan, 100, 100, (100 + dx) / 2])


@pytest.mark.parametrize("scale", [1e-300, 1e-12, 1e200])
def test_dmi_has_no_price_scale_zero_band(scale):
    # TA-Lib 0.4 treated a smoothed true range below 1e-8 (price units) as 0 (DI 0); the venv's
    # TA-Lib and this kernel take only an exact 0 as 0, so a tiny price scale changes nothing.
    # Also after a long flat stretch, where the range decays towards 0 with the DMs
    high, low, close = ohlc(8, 120)
    flat = np.r_[10.0, 11.0, 12.0, np.full(60, 12.0)]
    for h, lo, c, period in ((high, low, close, 14), (flat, flat, flat, 2)):
        plus, minus, adx = dmi_1d_nb(h, lo, c, period)
        got = dmi_1d_nb(h * scale, lo * scale, c * scale, period)
        want = [fn(h * scale, lo * scale, c * scale, period) for fn in (talib.PLUS_DI, talib.MINUS_DI, talib.ADX)]
        for g, w, unscaled in zip(got, want, (plus, minus, adx)):
            assert_like(g, w, atol=1e-9)
            assert_like(g, unscaled, atol=1e-9)
    assert dmi_1d_nb(flat, flat, flat, 2)[0][-1] == pytest.approx(100.0)  # the ratio stays


@settings(max_examples=60, deadline=None)
@given(series, st.integers(2, 60))
@example((0, 0), 2)
@example((1, 1), 2)
@example((2, 50), 50)
def test_slope_matches_talib_on_log_close(case, window):
    _, _, close = ohlc(*case)
    y = np.log(close)
    # TA-Lib (0.8) keeps running sums of x*y and y over log prices near 4.6: up to ~1.3e-12
    # absolute off polyfit at window 2 (also on flat windows, where the slope is exactly 0);
    # ours sums each centred window afresh (~1e-15, test_slope_matches_polyfit)
    assert_like(linreg_slope_1d_nb(y, window), talib.LINEARREG_SLOPE(y, window), atol=5e-12)
    assert_like(slope_trend.log_slope(close, window=window), talib.LINEARREG_SLOPE(y, window), atol=5e-12)


@pytest.mark.parametrize(("window", "t"), [(2, 1), (5, 40), (50, 49), (50, 199), (120, 150)])
def test_slope_matches_polyfit(window, t):
    _, _, close = ohlc(11, 200, flat=0.0)
    want = np.polyfit(np.arange(window), np.log(close[t - window + 1:t + 1]), 1)[0]
    assert slope_trend.log_slope(close, window=window)[t] == pytest.approx(want, rel=RTOL, abs=1e-14)


def test_slope_warm_up_is_talib_lookback():
    _, _, close = ohlc(3, 100)
    assert np.flatnonzero(~np.isnan(linreg_slope_1d_nb(np.log(close), 50)))[0] \
        == lookback("LINEARREG_SLOPE", 50) == 49


def test_slope_of_a_flat_window_is_exactly_zero():
    # TA-Lib's running sums leave ~1e-17 there: with threshold 0 that would be a trade
    y = np.log(np.array([1.0, 1.01, 1.02, 1.03, 1.03, 1.03, 1.03]))
    assert linreg_slope_1d_nb(y, 3)[-2:].tolist() == [0.0, 0.0]


def test_band_target_by_hand():
    x = np.array([np.nan, 0.3, 0.2, 0.1, -0.2, -0.3, 0.0])
    assert band_target_nb(x, 0.2, True, True).tolist() == [0, 1, 0, 0, 0, -1, 0]
    assert band_target_nb(x, 0.0, True, False).tolist() == [0, 1, 1, 1, 0, 0, 0]
    assert band_target_nb(x, 0.0, False, True).tolist() == [0, 0, 0, 0, -1, -1, 0]


# --------------------------------------------------------------------------- hand-built scenarios

UP_DOWN = np.array([10.0, 11, 12, 13, 14, 13, 12, 11, 10, 9])


def test_adx_trend_by_hand():
    # ADX(2) with H/L = C +- 0.5: -, -, -, 100, 100, 51.6, 52.0, 64.2, 76.2, 85.2; +DI leads
    # on the way up (bars 2-4), -DI from bar 5 on
    h, lo = UP_DOWN + 0.5, UP_DOWN - 0.5
    kw = {"period": 2, "threshold": 60.0}
    assert adx_trend.targets(h, lo, UP_DOWN, **kw).tolist() == [0, 0, 0, 1, 1, 0, 0, 0, 0, 0]
    assert adx_trend.targets(h, lo, UP_DOWN, **kw, direction="both").tolist() == [0, 0, 0, 1, 1, 0, 0, -1, -1, -1]
    assert adx_trend.targets(h, lo, UP_DOWN, **kw, direction="short").tolist() == [0] * 7 + [-1] * 3
    # a lower bar lets the weaker trend through: ADX 51.6 >= 50
    assert adx_trend.targets(h, lo, UP_DOWN, period=2, threshold=50.0, direction="both").tolist() \
        == [0, 0, 0, 1, 1, -1, -1, -1, -1, -1]
    assert adx_trend.targets(h, lo, UP_DOWN, period=2, threshold=90.0, direction="both").tolist() \
        == [0, 0, 0, 1, 1, 0, 0, 0, 0, 0]


def test_adx_trend_trades_in_the_engine():
    h, lo = UP_DOWN + 0.5, UP_DOWN - 0.5
    target = adx_trend.targets(h, lo, UP_DOWN, period=2, threshold=60.0, direction="both")
    result = simulate(Market.from_close(UP_DOWN, high=h, low=lo), target, SimParams(fill="close"))
    trades = result.trades
    # long at bar 3's close (13) out at bar 5's (13), flat, short at bar 7's (11), still open
    assert trades["entry_bar"].tolist() == [3, 7]
    assert trades["exit_bar"].tolist() == [5, -1]
    np.testing.assert_allclose(trades["quantity"], [100_000 / 13, -100_000 / 11], rtol=1e-12)


def test_slope_trend_by_hand():
    # log closes 0, .01, .02, .03, .03, .03, .02, 0: slope(3) -, -, .01, .01, .005, 0, -.005, -.015
    close = np.exp(np.array([0.0, 0.01, 0.02, 0.03, 0.03, 0.03, 0.02, 0.0]))
    kw = {"window": 3, "threshold": 0.002}
    assert slope_trend.targets(close, **kw).tolist() == [0, 0, 1, 1, 1, 0, 0, 0]
    assert slope_trend.targets(close, **kw, direction="both").tolist() == [0, 0, 1, 1, 1, 0, -1, -1]
    assert slope_trend.targets(close, **kw, direction="short").tolist() == [0, 0, 0, 0, 0, 0, -1, -1]
    assert slope_trend.targets(close, window=3, threshold=0.007, direction="both").tolist() \
        == [0, 0, 1, 1, 0, 0, 0, -1]
    np.testing.assert_allclose(slope_trend.compute(close, **kw)[0],
                               [np.nan, np.nan, 0.01, 0.01, 0.005, 0, -0.005, -0.015], atol=1e-15)


def test_slope_trend_trades_in_the_engine():
    close = np.exp(np.array([0.0, 0.01, 0.02, 0.03, 0.03, 0.03, 0.02, 0.0]))
    target = slope_trend.targets(close, window=3, threshold=0.002, direction="both")
    trades = simulate(Market.from_close(close), target, SimParams(fill="close")).trades
    assert trades["entry_bar"].tolist() == [2, 6]
    assert trades["exit_bar"].tolist() == [5, -1]
    equity_5 = 100_000 * close[5] / close[2]
    np.testing.assert_allclose(trades["quantity"], [100_000 / close[2], -equity_5 / close[6]], rtol=1e-12)


def test_slope_threshold_is_about_12_6_percent_a_year():
    default = {p.name: p.default for p in slope_trend.STRATEGY.params}["threshold"]
    assert default * 252 == pytest.approx(0.126)


# --------------------------------------------------------------------------- properties

SMALL = {"adx_trend": {"period": 4, "threshold": 20.0}, "slope_trend": {"window": 6, "threshold": 0.001}}


def run(name: str, high, low, close, **kw):
    if name == "adx_trend":
        return adx_trend.compute(high, low, close, **SMALL[name], **kw)
    return slope_trend.compute(close, **SMALL[name], **kw)


def same(a: np.ndarray, b: np.ndarray) -> bool:
    return np.array_equal(a, b, equal_nan=True)


@pytest.mark.parametrize("name", ["adx_trend", "slope_trend"])
@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(0, 150), cut=st.floats(0, 1),
       direction=st.sampled_from(["long", "short", "both"]))
@example(seed=0, n=0, cut=0.0, direction="both")
@example(seed=0, n=1, cut=1.0, direction="both")
def test_point_in_time_and_scale_invariant(name, seed, n, cut, direction):
    high, low, close = ohlc(seed, n)
    sig, tgt = run(name, high, low, close, direction=direction)
    assert sig.shape == tgt.shape == (n,)
    assert set(np.unique(tgt)) <= {-1.0, 0.0, 1.0}
    t = int(cut * n)
    cut_sig, cut_tgt = run(name, high[:t], low[:t], close[:t], direction=direction)
    assert same(cut_sig, sig[:t]) and same(cut_tgt, tgt[:t])
    scaled_sig, scaled_tgt = run(name, high * 7.3, low * 7.3, close * 7.3, direction=direction)
    assert np.array_equal(scaled_tgt, tgt)
    assert_like(scaled_sig, sig, atol=1e-12)


@pytest.mark.parametrize("name", ["adx_trend", "slope_trend"])
@pytest.mark.parametrize("seed", range(5))
def test_direction_is_respected(name, seed):
    high, low, close = ohlc(seed, 400)
    long_only = run(name, high, low, close, direction="long")[1]
    short_only = run(name, high, low, close, direction="short")[1]
    both = run(name, high, low, close, direction="both")[1]
    assert (long_only >= 0).all() and (long_only > 0).any()
    assert (short_only <= 0).all() and (short_only < 0).any()
    assert np.array_equal(both, long_only + short_only)  # stateless rules
    with pytest.raises(InputError, match="direction"):
        run(name, high, low, close, direction="up")


def test_registry_entries():
    adx, slope = get_strategy("adx_trend"), get_strategy("slope_trend")
    assert (adx.inputs, adx.family, adx.panel) == (("high", "low", "close"), "trend", False)
    assert (slope.inputs, slope.family, slope.panel) == (("close",), "trend", False)
    assert adx.resolve({}) == {"period": 14, "threshold": 25.0}
    assert slope.resolve({"window": 20}) == {"window": 20, "threshold": 0.0005}


@pytest.mark.parametrize(("name", "given", "match"), [
    ("adx_trend", {"period": 1}, "`period` must be an integer"),
    ("adx_trend", {"period": 14.0}, "`period` must be an integer"),
    ("adx_trend", {"threshold": 101}, "`threshold` must be a number in \\[0.0, 100.0\\]"),
    ("adx_trend", {"threshold": -1.0}, "`threshold` must be a number"),
    ("adx_trend", {"window": 5}, "no parameter 'window'"),
    ("slope_trend", {"window": 1}, "`window` must be an integer"),
    ("slope_trend", {"threshold": -0.001}, "`threshold` must be a number"),
    ("slope_trend", {"threshold": float("nan")}, "`threshold` must be a number"),
])
def test_resolve_rejects_invalid_params(name, given, match):
    with pytest.raises(InputError, match=match):
        get_strategy(name).resolve(given)


def test_compute_checks_its_inputs():
    high, low, close = ohlc(1, 50)
    with pytest.raises(InputError, match="`period` must be an integer"):
        adx_trend.compute(high, low, close, period=1)
    with pytest.raises(InputError, match="`low` must have the shape"):
        adx_trend.compute(high, low[:-1], close)
    with pytest.raises(InputError, match="`window` must be an integer"):
        slope_trend.compute(close, window=0)
    with pytest.raises(InputError, match="`close` must be positive"):
        slope_trend.compute(np.r_[close, 0.0])


def test_adx_trend_ties_survive_backward_adjustment():
    """Raw ties (up move == down move) made of whole cents stay ties after multiplying by an
    adjustment factor that breaks them in the last bits (regression: targets flipped)."""
    from alphatwin.signals import adx_trend

    rng = np.random.default_rng(5)
    n = 400
    mid = 100 + np.cumsum(rng.integers(-3, 4, n)) * 0.59
    spread = rng.integers(1, 4, n) * 0.59
    high, low = mid + spread, mid - spread  # many exact up == down ties on a 0.59 grid
    base = adx_trend.targets(high, low, mid, period=5, threshold=10.0, direction="both")
    for factor in (0.37, 1 / 7, 3.0, 0.9731):
        scaled = adx_trend.targets(high * factor, low * factor, mid * factor, period=5, threshold=10.0,
                                   direction="both")
        assert np.array_equal(scaled, base), factor
