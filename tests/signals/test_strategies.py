"""The strategies of ``alphatwin.signals`` and their kernels.

Kernels against TA-Lib (rtol 1e-9, NaN exactly where TA-Lib is NaN); each strategy on a
hand-built series whose trades are written out by hand; and the properties every strategy must
have: point in time (targets on ``x[:T]`` are the first T targets on ``x``), scale invariant,
direction respected, parameters checked, and one engine trade per entry in the targets.
"""

from __future__ import annotations

import numpy as np
import pytest
import talib
from hypothesis import example, given, settings
from hypothesis import strategies as st

from alphatwin.backtest.engine import simulate
from alphatwin.backtest.params import Market, SimParams
from alphatwin.errors import InputError
from alphatwin.signals import bollinger_reversion, ema_cross, macd, rsi_reversion, ts_momentum
from alphatwin.signals.base import STRATEGIES, get_strategy
from alphatwin.signals.nb import (
    ema_1d_nb,
    macd_1d_nb,
    reversion_target_nb,
    rolling_std_1d_nb,
    rsi_1d_nb,
    zscore_1d_nb,
)

RTOL = 1e-9
NEW = ("ema_cross", "rsi_reversion", "bollinger_reversion", "macd", "ts_momentum")
#: Small parameters per strategy, so that short series get past the warm-up.
SMALL = {
    "ema_cross": {"fast": 3, "slow": 8},
    "rsi_reversion": {"period": 5, "lower": 35, "upper": 65},
    "bollinger_reversion": {"period": 6, "width": 1.2},
    "macd": {"fast": 3, "slow": 7, "signal": 4},
    "ts_momentum": {"lookback": 10, "skip": 2},
}


def walk(seed: int, n: int, flat: float = 0.2) -> np.ndarray:
    """A geometric random walk from 100 (1% steps), with a share ``flat`` of unchanged closes."""
    rng = np.random.default_rng(seed)
    steps = rng.normal(0.0, 0.01, n) * (rng.random(n) >= flat)
    return 100.0 * np.exp(np.cumsum(steps))


def assert_like_talib(got: np.ndarray, want: np.ndarray, atol: float = 0.0) -> None:
    assert np.array_equal(np.isnan(got), np.isnan(want)), "NaN rows differ from TA-Lib"
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=atol)


def entries(target: np.ndarray) -> int:
    """Bars where a new position opens: non-zero and different from the bar before."""
    prev = np.r_[0.0, target[:-1]]
    return int(((target != 0) & (target != prev)).sum())


# --------------------------------------------------------------------------- kernels vs TA-Lib

series = st.tuples(st.integers(0, 2**32 - 1), st.integers(1, 300))


@settings(max_examples=40, deadline=None)
@given(series, st.integers(1, 40))
@example((0, 1), 1)
@example((1, 12), 12)
def test_ema_matches_talib(case, period):
    x = walk(*case)
    assert_like_talib(ema_1d_nb(x, period), talib.EMA(x, period))


@settings(max_examples=40, deadline=None)
@given(series, st.integers(2, 40))
@example((0, 15), 14)
def test_rsi_matches_talib(case, period):
    x = walk(*case)
    assert_like_talib(rsi_1d_nb(x, period), talib.RSI(x, period), atol=1e-9)  # RSI is on 0..100


@settings(max_examples=40, deadline=None)
@given(series, st.integers(2, 40), st.integers(1, 40))
def test_bbands_std_and_zscore_match_talib(case, period, nbdev_tenths):
    x = walk(*case, flat=0.0)
    k = nbdev_tenths / 10
    upper, middle, _ = talib.BBANDS(x, period, k, k, 0)
    # TA-Lib's running sums and the cancellation in (upper - middle) cost it ~1e-12 absolute on
    # prices near 100; ours sums each window afresh: compare with that absolute margin
    assert_like_talib(rolling_std_1d_nb(x, period), (upper - middle) / k, atol=1e-10)
    # the z-score divides by the stdev, so TA-Lib's ~1e-12 error in it becomes ~1e-9 relative
    # when the window barely moves (period 2 gives exactly +-1, TA-Lib 0.9999999978): compare it
    # with NumPy's two-pass mean and stdev of each window instead, where TA-Lib says it exists
    want = np.full(x.shape, np.nan)
    if x.size >= period:
        windows = np.lib.stride_tricks.sliding_window_view(x, period)
        with np.errstate(invalid="ignore", divide="ignore"):
            want[period - 1:] = (x[period - 1:] - windows.mean(axis=1)) / windows.std(axis=1)
    want[np.isnan(middle)] = np.nan
    assert_like_talib(zscore_1d_nb(x, period), want, atol=1e-9)


@settings(max_examples=40, deadline=None)
@given(series, st.integers(2, 20), st.integers(1, 30), st.integers(1, 15))
@example((0, 33), 12, 14, 9)
@example((0, 40), 2, 1, 1)
def test_macd_matches_talib(case, fast, extra, signal):
    x = walk(*case)
    slow = fast + extra
    line, sig, _ = talib.MACD(x, fast, slow, signal)
    got_line, got_sig = macd_1d_nb(x, fast, slow, signal)
    # a difference of two EMAs near 100 can be ~1e-7 itself: its ~1e-15 rounding is then 1e-8
    # relative; an absolute margin far below any price move covers that
    assert_like_talib(got_line, line, atol=1e-10)
    assert_like_talib(got_sig, sig, atol=1e-10)


@pytest.mark.parametrize("value", [100.3, 1.1, 0.1])
def test_kernels_on_a_flat_series_match_talib(value):
    x = np.full(60, value)
    assert_like_talib(ema_1d_nb(x, 12), talib.EMA(x, 12))
    assert_like_talib(rsi_1d_nb(x, 14), talib.RSI(x, 14))  # TA-Lib's RSI is 0 without any move
    upper, middle, _ = talib.BBANDS(x, 20, 2.0, 2.0, 0)
    assert_like_talib(rolling_std_1d_nb(x, 20), (upper - middle) / 2.0)
    line, sig, _ = talib.MACD(x, 12, 26, 9)
    got_line, got_sig = macd_1d_nb(x, 12, 26, 9)
    assert_like_talib(got_line, line)
    assert_like_talib(got_sig, sig)
    # what the strategies read instead: no RSI and no z-score where nothing moved
    assert np.isnan(rsi_1d_nb(x, 14, np.nan)).all()
    assert np.isnan(zscore_1d_nb(x, 20)).all()


def test_tiny_hand_computed_values():
    x = np.array([1.0, 2, 3, 2, 1])
    np.testing.assert_allclose(ema_1d_nb(x, 3), [np.nan, np.nan, 2.0, 2.0, 1.5])
    np.testing.assert_allclose(rsi_1d_nb(x, 2), [np.nan, np.nan, 100.0, 50.0, 25.0])
    np.testing.assert_allclose(rolling_std_1d_nb(x, 2), [np.nan, 0.5, 0.5, 0.5, 0.5])
    np.testing.assert_allclose(zscore_1d_nb(x, 2), [np.nan, 1.0, 1.0, -1.0, -1.0])


def reversion_reference(score, low, high, mid, long_, short):
    """The stateful rule written the obvious way."""
    out, pos = [], 0.0
    for s in score:
        if s == s:  # not NaN
            if (pos == 1 and s >= mid) or (pos == -1 and s <= mid):
                pos = 0.0
            if pos == 0 and long_ and s < low:
                pos = 1.0
            elif pos == 0 and short and s > high:
                pos = -1.0
        out.append(pos)
    return out


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(st.sampled_from([np.nan, 30.0, 50.0, 70.0]), st.floats(0, 100)), max_size=60),
       st.booleans(), st.booleans())
def test_reversion_target_matches_its_reference(score, long_, short):
    score = np.array(score, dtype=np.float64)
    got = reversion_target_nb(score, 30.0, 70.0, 50.0, long_, short)
    assert got.tolist() == reversion_reference(score, 30.0, 70.0, 50.0, long_, short)


# --------------------------------------------------------------------------- hand-built scenarios


def test_ema_cross_on_steps():
    # 10 for 6 bars, a step up to 20, a step down to 5: the fast EMA leads both ways
    x = np.r_[np.full(6, 10.0), np.full(6, 20.0), np.full(6, 5.0)]
    long_only = [0] * 6 + [1] * 6 + [0] * 6
    both = [0] * 6 + [1] * 6 + [-1] * 6
    assert ema_cross.targets(x, fast=2, slow=4).tolist() == long_only
    assert ema_cross.targets(x, fast=2, slow=4, direction="both").tolist() == both
    assert ema_cross.targets(x, fast=2, slow=4, direction="short").tolist() == [0] * 12 + [-1] * 6


def test_macd_on_a_step():
    # 10 for 8 bars then 20: MACD (2, 4, 3) jumps to 2.67, 2.49, 1.79 ... while the signal line
    # reads 1.33, 1.91, 1.85 ...: above it for two bars, then below it as the line decays
    x = np.r_[np.full(8, 10.0), np.full(8, 20.0)]
    assert macd.targets(x, fast=2, slow=4, signal=3).tolist() == [0] * 8 + [1, 1] + [0] * 6
    assert macd.targets(x, fast=2, slow=4, signal=3, direction="both").tolist() == [0] * 8 + [1, 1] + [-1] * 6


def test_rsi_reversion_by_hand():
    # RSI(2): -, -, 50, 25, 12.5, 56.25, 78.1, 89.1, 94.5, 97.3, 48.6, 24.3, 12.2
    x = np.array([10.0, 11, 10, 9, 8, 9, 10, 11, 12, 13, 12, 11, 10])
    kw = {"period": 2, "lower": 30, "upper": 70}
    assert rsi_reversion.targets(x, **kw).tolist() == [0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 1, 1]
    assert rsi_reversion.targets(x, **kw, direction="both").tolist() == [0, 0, 0, 1, 1, 0, -1, -1, -1, -1, 0, 1, 1]
    assert rsi_reversion.targets(x, **kw, direction="short").tolist() == [0, 0, 0, 0, 0, 0, -1, -1, -1, -1, 0, 0, 0]


def test_rsi_reversion_does_not_buy_a_flat_price():
    # TA-Lib's RSI is 0 there, far below `lower`; nothing moved, so nothing is oversold. The
    # first move up makes RSI 100 (short), the move back makes it 50 (exit)
    x = np.r_[np.full(30, 5.0), 5.5, 5.0]
    assert rsi_reversion.targets(x, direction="both").tolist() == [0] * 30 + [-1, 0]


def test_bollinger_reversion_by_hand():
    # z(4 bars, population std): -, -, -, +1.0 (on the band: not beyond it), -1.70, -0.39, +1.15, +0.73
    x = np.array([10.0, 10.5, 10, 10.5, 8, 9, 11, 10.5])
    assert bollinger_reversion.targets(x, period=4, width=1.0).tolist() == [0, 0, 0, 0, 1, 1, 0, 0]
    assert bollinger_reversion.targets(x, period=4, width=1.0, direction="both").tolist() == [0, 0, 0, 0, 1, 1, -1, -1]
    assert bollinger_reversion.targets(x, period=4, width=2.0, direction="both").tolist() == [0] * 8


def test_bollinger_reversion_holds_through_a_flat_window():
    # long at the dip (z = -1.73), then the window goes flat: z undefined, the position stays
    x = np.array([10.0, 10, 10, 7, 7, 7, 7, 7, 8])
    assert bollinger_reversion.targets(x, period=4, width=1.0).tolist() == [0, 0, 0, 1, 1, 1, 1, 1, 0]


def test_ts_momentum_by_hand():
    # close[t-1] vs close[t-3]: -, -, -, 12>10, 13>11, 12=12, 11<13, 10<12, 10<11
    x = np.array([10.0, 11, 12, 13, 12, 11, 10, 10, 10])
    assert ts_momentum.targets(x, lookback=3, skip=1).tolist() == [0, 0, 0, 1, 1, 0, 0, 0, 0]
    assert ts_momentum.targets(x, lookback=3, skip=1, direction="both").tolist() == [0, 0, 0, 1, 1, 0, -1, -1, -1]
    assert ts_momentum.targets(x, lookback=3, skip=0, direction="both").tolist() == [0, 0, 0, 1, 1, -1, -1, -1, -1]


# --------------------------------------------------------------------------- properties of every strategy


@pytest.mark.parametrize("name", NEW)
@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(0, 120), cut=st.floats(0, 1),
       direction=st.sampled_from(["long", "short", "both"]))
@example(seed=0, n=0, cut=0.0, direction="both")
@example(seed=0, n=1, cut=1.0, direction="both")
def test_point_in_time_and_scale_invariant(name, seed, n, cut, direction):
    strat, params = STRATEGIES[name], SMALL[name]
    x = walk(seed, n)
    full = strat.targets(x, **params, direction=direction)
    assert full.shape == (n,)
    t = int(cut * n)
    assert np.array_equal(strat.targets(x[:t], **params, direction=direction), full[:t])
    assert np.array_equal(strat.targets(x * 7.3, **params, direction=direction), full)
    assert set(np.unique(full)) <= {-1.0, 0.0, 1.0}


@pytest.mark.parametrize("name", NEW)
@pytest.mark.parametrize("seed", range(5))
def test_direction_is_respected(name, seed):
    strat, params = STRATEGIES[name], SMALL[name]
    x = walk(seed, 300)
    long_only = strat.targets(x, **params, direction="long")
    short_only = strat.targets(x, **params, direction="short")
    both = strat.targets(x, **params, direction="both")
    assert (long_only >= 0).all() and (long_only > 0).any()
    assert (short_only <= 0).all() and (short_only < 0).any()
    assert (both > 0).any() and (both < 0).any()
    if name not in ("rsi_reversion", "bollinger_reversion"):  # stateless: both = long + short
        assert np.array_equal(both, long_only + short_only)
    with pytest.raises(InputError, match="direction"):
        strat.targets(x, **params, direction="up")


def test_registry_holds_every_strategy():
    for name in NEW + ("sma_cross",):
        assert get_strategy(name).name == name
    assert get_strategy("macd").resolve({}) == {"fast": 12, "slow": 26, "signal": 9}
    assert get_strategy("ts_momentum").resolve({"lookback": 63}) == {"lookback": 63, "skip": 21}


@pytest.mark.parametrize(("name", "given", "match"), [
    ("ema_cross", {"fast": 26, "slow": 26}, "`fast` must be below `slow`"),
    ("ema_cross", {"fast": 0}, "`fast` must be an integer"),
    ("macd", {"fast": 30}, "`fast` must be below `slow`"),
    ("macd", {"signal": 0}, "`signal` must be an integer"),
    ("rsi_reversion", {"lower": 50}, "lower"),
    ("rsi_reversion", {"upper": 50}, "upper"),
    ("rsi_reversion", {"lower": 40, "upper": 101}, "`upper` must be a number in \\[0.0, 100.0\\]"),
    ("rsi_reversion", {"period": 14.0}, "`period` must be an integer"),
    ("bollinger_reversion", {"width": 0}, "`width` must be a number"),
    ("bollinger_reversion", {"period": 1}, "`period` must be an integer"),
    ("ts_momentum", {"lookback": 21}, "`skip` must be below `lookback`"),
    ("ts_momentum", {"skip": -1}, "`skip` must be an integer"),
    ("ts_momentum", {"window": 5}, "no parameter 'window'"),
])
def test_resolve_rejects_invalid_params(name, given, match):
    with pytest.raises(InputError, match=match):
        get_strategy(name).resolve(given)


@pytest.mark.parametrize("name", NEW)
@pytest.mark.parametrize("direction", ["long", "both"])
def test_engine_books_one_trade_per_entry(name, direction):
    x = walk(7, 400)
    target = STRATEGIES[name].targets(x, **SMALL[name], direction=direction)
    result = simulate(Market.from_close(x), target, SimParams(fill="close"))
    assert entries(target) > 3
    assert len(result.trades) == entries(target)
    assert np.array_equal(np.sort(result.trades["entry_bar"]),
                          np.flatnonzero((target != 0) & (target != np.r_[0.0, target[:-1]])))
