"""The ``pairs`` strategy and its kernels.

The rolling OLS against ``numpy.linalg.lstsq`` and statsmodels on every window; the spread rule
against a plain-Python reference; a hand-built pair whose trades are known in advance, through the
real engine; and the properties: point in time, scale invariant, gross exposure 1 in a trade with
the hedge fixed at entry, direction respected, parameters and symbol count checked.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import statsmodels.api as sm
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from alphatwin.backtest.engine import simulate
from alphatwin.backtest.params import Market, SimParams
from alphatwin.errors import InputError
from alphatwin.signals import pairs
from alphatwin.signals.base import get_strategy
from alphatwin.signals.pairs_nb import pairs_weights_nb, rolling_ols_nb


def walk_pair(seed: int, n: int, gaps: float = 0.0, flat: float = 0.1) -> np.ndarray:
    """(n, 2) closes (y, x): x a geometric random walk with a share ``flat`` of unchanged closes,
    y = x ** 1.3 times a mean-reverting AR(1) wobble (so the spread trades); a share ``gaps`` of
    each column's bars is missing (NaN)."""
    rng = np.random.default_rng(seed)
    lx = np.log(100.0) + np.cumsum(rng.normal(0.0, 0.01, n) * (rng.random(n) >= flat))
    e = np.zeros(n)
    for t in range(1, n):
        e[t] = 0.7 * e[t - 1] + rng.normal(0.0, 0.005)
    close = np.exp(np.column_stack([0.2 + 1.3 * lx + e, lx]))
    close[rng.random((n, 2)) < gaps] = np.nan
    return close


def reference_fit(lx: np.ndarray, ly: np.ndarray, window: int) -> np.ndarray:
    """(n, 4) alpha, beta, residual at t, population std of the residuals: lstsq on each window."""
    out = np.full((lx.size, 4), np.nan)
    for t in range(window - 1, lx.size):
        xs, ys = lx[t - window + 1:t + 1], ly[t - window + 1:t + 1]
        (alpha, beta), *_ = np.linalg.lstsq(np.column_stack([np.ones(window), xs]), ys, rcond=None)
        e = ys - alpha - beta * xs
        out[t] = alpha, beta, e[-1], e.std()
    return out


# --------------------------------------------------------------------------- the rolling OLS


def test_rolling_ols_by_hand():
    # rows 0..2 lie on y = 1 + 2x (exact fit: z undefined); rows 1..3: beta 2.5, alpha 1/3,
    # residuals 1/6, -1/3, 1/6: std sqrt(1/18), z = (1/6) / sqrt(1/18) = 1/sqrt(2)
    alpha, beta, resid, std, z = rolling_ols_nb(np.array([0.0, 1, 2, 3]), np.array([1.0, 3, 5, 8]), 3)
    np.testing.assert_allclose(alpha, [np.nan, np.nan, 1.0, 1 / 3], rtol=1e-12)
    np.testing.assert_allclose(beta, [np.nan, np.nan, 2.0, 2.5], rtol=1e-12)
    np.testing.assert_allclose(resid[3], 1 / 6, rtol=1e-12)
    np.testing.assert_allclose(std[3], math.sqrt(1 / 18), rtol=1e-12)
    assert std[2] < 1e-15 and np.isnan(z[2])
    np.testing.assert_allclose(z, [np.nan, np.nan, np.nan, 1 / math.sqrt(2)], rtol=1e-12)


def test_rolling_ols_leaves_an_unmoved_x_undefined():
    x = np.array([1.0, 1, 1, 2, 3])
    alpha, beta, _, _, z = rolling_ols_nb(x, np.array([1.0, 2, 3, 4, 6]), 3)
    assert np.isnan(beta[2]) and np.isnan(alpha[2]) and np.isnan(z[2])
    assert not np.isnan(beta[3:]).any()


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(0, 120), window=st.integers(3, 40))
@example(seed=0, n=0, window=3)
@example(seed=1, n=3, window=3)
def test_rolling_ols_matches_lstsq(seed, n, window):
    close = walk_pair(seed, n, flat=0.0)
    ly, lx = np.log(close[:, 0]), np.log(close[:, 1])
    alpha, beta, resid, std, z = rolling_ols_nb(lx, ly, window)
    want = reference_fit(lx, ly, window)
    got = np.column_stack([alpha, beta, resid, std])
    assert np.array_equal(np.isnan(got), np.isnan(want))
    # alpha is ~ -beta * log(100): its error scales with that offset, not with alpha itself
    np.testing.assert_allclose(got[:, 1:], want[:, 1:], rtol=1e-7, atol=1e-12)
    ok = np.isnan(want[:, 0]) | (np.abs(got[:, 0] - want[:, 0]) <= 1e-9 * (1 + np.abs(want[:, 1]) * 5))
    assert ok.all(), np.abs(got[:, 0] - want[:, 0])
    np.testing.assert_allclose(z, want[:, 2] / want[:, 3], rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize(("seed", "window"), [(0, 5), (1, 20), (2, 60)])
def test_rolling_ols_matches_statsmodels(seed, window):
    close = walk_pair(seed, 150)
    ly, lx = np.log(close[:, 0]), np.log(close[:, 1])
    alpha, beta, resid, _, z = rolling_ols_nb(lx, ly, window)
    for t in (window - 1, 100, 149):
        fit = sm.OLS(ly[t - window + 1:t + 1], sm.add_constant(lx[t - window + 1:t + 1])).fit()
        np.testing.assert_allclose([alpha[t], beta[t]], fit.params, rtol=1e-8)
        np.testing.assert_allclose(resid[t], fit.resid[-1], rtol=1e-7, atol=1e-13)
        # z divides by the population std (ddof=0); statsmodels' standard error by window - 2
        se = math.sqrt(fit.mse_resid)
        np.testing.assert_allclose(z[t], fit.resid[-1] / se * math.sqrt(window / (window - 2)), rtol=1e-7)


# --------------------------------------------------------------------------- the spread rule


def weights_reference(z, beta, entry, exit_, stop, long_, short):
    """The rule of the module docstring written the obvious way."""
    out, pos, stopped, w = [], 0, False, (0.0, 0.0)
    for s, b in zip(z, beta):
        if s == s:  # not NaN
            if (pos == 1 and s >= -exit_) or (pos == -1 and s <= exit_):
                pos, stopped, w = 0, False, (0.0, 0.0)
            elif pos != 0 and stop > 0 and abs(s) >= stop:
                stopped, w = True, (0.0, 0.0)
            beyond_stop = stop > 0 and abs(s) >= stop
            if pos == 0 and not beyond_stop and long_ and s <= -entry:
                pos, w = 1, (1 / (1 + abs(b)), -b / (1 + abs(b)))
            elif pos == 0 and not beyond_stop and short and s >= entry:
                pos, w = -1, (-1 / (1 + abs(b)), b / (1 + abs(b)))
        out.append(w)
    return np.array(out, dtype=np.float64).reshape(-1, 2)


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(st.one_of(st.just(np.nan), st.sampled_from([-3.0, -2.0, -0.5, 0.5, 2.0, 3.0]),
                                    st.floats(-4, 4)),
                          st.floats(-3, 3)), max_size=60),
       st.sampled_from([0.0, 3.0]), st.booleans(), st.booleans())
def test_weights_match_their_reference(rows, stop, long_, short):
    z = np.array([r[0] for r in rows], dtype=np.float64)
    beta = np.array([r[1] for r in rows], dtype=np.float64)
    wy, wx = pairs_weights_nb(z, beta, 2.0, 0.5, stop, long_, short)
    want = weights_reference(z, beta, 2.0, 0.5, stop, long_, short)
    np.testing.assert_array_equal(np.column_stack([wy, wx]), want)


def test_stop_flattens_and_waits_for_the_exit_level():
    # in at -2.1; -3.2 is beyond the stop: out, and -2.6 / -2.2 do not re-enter until z has
    # been back to -0.5 (bar 6); -2.1 then opens a new trade. -3.5 on a flat book opens nothing
    z = np.array([np.nan, -2.1, -2.5, -3.2, -2.6, -2.2, -0.4, -2.1, -0.3, -3.5, -2.4])
    wy, wx = pairs_weights_nb(z, np.full(z.size, 1.0), 2.0, 0.5, 3.0, True, True)
    assert wy.tolist() == [0, 0.5, 0.5, 0, 0, 0, 0, 0.5, 0, 0, 0.5]
    assert wx.tolist() == [0, -0.5, -0.5, 0, 0, 0, 0, -0.5, 0, 0, -0.5]
    without = pairs_weights_nb(z, np.full(z.size, 1.0), 2.0, 0.5, 0.0, True, True)[0]
    assert without.tolist() == [0, 0.5, 0.5, 0.5, 0.5, 0.5, 0, 0.5, 0, 0.5, 0.5]


def test_exit_and_opposite_entry_on_one_bar():
    z = np.array([-2.5, 2.5, 0.4])
    wy, _ = pairs_weights_nb(z, np.full(3, 1.0), 2.0, 0.5, 0.0, True, True)
    assert wy.tolist() == [0.5, -0.5, 0.0]
    assert pairs_weights_nb(z, np.full(3, 1.0), 2.0, 0.5, 0.0, True, False)[0].tolist() == [0.5, 0, 0]


# --------------------------------------------------------------------------- a hand-built pair


def shocked_pair(n: int = 30) -> np.ndarray:
    """y = x ** 1.5 times a +-0.2% wobble; y 5% low on bars 12-13 and 5% high on bars 22-23."""
    t = np.arange(n)
    x = 100.0 * np.exp(0.1 * np.sin(t))
    shock = np.ones(n)
    shock[[12, 13]] = 0.95
    shock[[22, 23]] = 1.05
    return np.column_stack([x ** 1.5 * np.exp(0.002 * (-1.0) ** t) * shock, x])


def hedge(d: float, beta: float) -> list[float]:
    return [d / (1 + abs(beta)), -d * beta / (1 + abs(beta))]


def test_hand_built_pair_trades_as_designed():
    # window 8: z (lstsq) is -2.57, -1.85 on the dip (long the spread, held while z < -0.5), 0.45
    # after it (out); 2.63, 1.41 on the spike (short), -0.67 after it (out). Every other |z| < 1.1
    close = shocked_pair()
    kw = {"window": 8, "entry": 2.0, "exit": 0.5}
    ref = reference_fit(np.log(close[:, 1]), np.log(close[:, 0]), 8)
    z = ref[:, 2] / ref[:, 3]
    assert z[12] < -2 and -2 < z[13] < -0.5 and z[14] > -0.5 and z[22] > 2 and 0.5 < z[23] < 2 and z[24] < 0.5
    assert (np.abs(np.delete(z, [12, 13, 22, 23]))[7:] < 1.1).all()
    want = np.zeros((30, 2))
    want[12:14] = hedge(1.0, ref[12, 1])  # the beta of the entry bar, held
    want[22:24] = hedge(-1.0, ref[22, 1])
    signal, target = pairs.compute(close, **kw, direction="both")
    np.testing.assert_allclose(target, want, rtol=1e-9, atol=0)
    np.testing.assert_allclose(signal[:, 0], z, rtol=1e-9)
    assert np.array_equal(signal[:, 0], signal[:, 1], equal_nan=True)
    first = np.arange(30)[:, None] < 20  # the long-spread trade; the short one is after bar 20
    np.testing.assert_array_equal(pairs.targets(close, **kw, direction="long"), np.where(first, target, 0))
    np.testing.assert_array_equal(pairs.targets(close, **kw, direction="short"), np.where(first, 0, target))

    result = simulate(Market.from_close(close), target, SimParams(fill="close"))
    tr = result.trades
    assert tr["col"].tolist() == [0, 1, 0, 1]
    assert tr["entry_bar"].tolist() == [12, 12, 22, 22]
    assert tr["exit_bar"].tolist() == [14, 14, 24, 24]
    # the weights of equity at the entry close (flat before: equity = that of the bar before)
    equity = result.equity[tr["entry_bar"] - 1]
    weights = target[tr["entry_bar"], tr["col"]]
    np.testing.assert_allclose(tr["quantity"], weights * equity / close[tr["entry_bar"], tr["col"]], rtol=1e-12)
    assert np.sign(tr["quantity"]).tolist() == [1, -1, -1, 1]
    assert len(result.fills) == 8  # in and out of each leg: no rebalancing while held


def test_position_is_held_through_a_missing_bar():
    # x has no bar at 13 (mid-trade) and at 4 (warm-up: the window then needs one more bar)
    close = shocked_pair()
    close[[4, 13], 1] = np.nan
    signal, target = pairs.compute(close, window=8, entry=2.0, exit=0.5, direction="both")
    assert np.isnan(signal[[4, 13]]).all() and np.isnan(signal[:8]).all() and not np.isnan(signal[8:12]).any()
    assert (target[:12] == 0).all() and (target[12] > 0)[0] and (target[13] == target[12]).all()
    assert (target[14] == 0).all()
    result = simulate(Market.from_close(close), target, SimParams(fill="close"))
    assert result.trades["entry_bar"].tolist()[:2] == [12, 12]
    assert result.trades["exit_bar"].tolist()[:2] == [14, 14]


# --------------------------------------------------------------------------- properties

params = st.fixed_dictionaries({
    "window": st.integers(3, 30),
    "entry": st.floats(0.8, 2.5),
    "exit": st.floats(-0.0, 0.7),
    "stop": st.sampled_from([0.0, 2.6, 3.5]),
    "direction": st.sampled_from(["long", "short", "both"]),
})
cases = st.tuples(st.integers(0, 2**32 - 1), st.integers(0, 150), st.sampled_from([0.0, 0.05, 0.3]))


@settings(max_examples=80, deadline=None)
@given(case=cases, kw=params, cut=st.floats(0, 1))
@example(case=(0, 0, 0.0), kw={"window": 3, "entry": 2.0, "exit": 0.5, "stop": 0.0, "direction": "both"}, cut=0.0)
@example(case=(0, 1, 0.0), kw={"window": 3, "entry": 2.0, "exit": 0.5, "stop": 0.0, "direction": "both"}, cut=1.0)
def test_point_in_time(case, kw, cut):
    close = walk_pair(case[0], case[1], gaps=case[2])
    signal, target = pairs.compute(close, **kw)
    assert signal.shape == target.shape == close.shape
    t = int(cut * close.shape[0])
    head_signal, head_target = pairs.compute(close[:t], **kw)
    assert np.array_equal(head_signal, signal[:t], equal_nan=True)
    assert np.array_equal(head_target, target[:t])
    assert not np.isnan(target).any()


@settings(max_examples=60, deadline=None)
@given(case=cases, kw=params, scale=st.sampled_from([(7.3, 1.0), (1.0, 0.37), (7.3, 7.3), (0.01, 250.0)]))
def test_scale_invariant(case, kw, scale):
    # log prices: a factor on y shifts alpha by its log, a factor on x shifts it by -beta times
    # its log; beta, the residuals and z do not change (up to rounding), nor do the targets
    close = walk_pair(case[0], case[1], gaps=case[2])
    signal, target = pairs.compute(close, **kw)
    z = signal[:, 0]
    levels = np.array([kw["entry"], kw["exit"], kw["stop"]])
    assume(not (np.abs(np.abs(z[~np.isnan(z)])[:, None] - levels) < 1e-7).any())  # no z on a threshold
    scaled = close * np.array(scale)
    signal2, target2 = pairs.compute(scaled, **kw)
    np.testing.assert_allclose(signal2, signal, rtol=0, atol=1e-9)
    assert np.array_equal(np.sign(target2), np.sign(target))
    np.testing.assert_allclose(target2, target, rtol=1e-9, atol=1e-12)
    fit, fit2 = pairs.rolling_fit(close, window=kw["window"]), pairs.rolling_fit(scaled, window=kw["window"])
    np.testing.assert_allclose(fit2["beta"], fit["beta"], rtol=1e-7, atol=1e-9)
    shift = math.log(scale[0]) - fit["beta"] * math.log(scale[1])
    np.testing.assert_allclose(fit2["alpha"], fit["alpha"] + shift, rtol=0, atol=1e-6)


@settings(max_examples=80, deadline=None)
@given(case=cases, kw=params)
def test_gross_one_in_a_trade_hedge_fixed_at_entry(case, kw):
    close = walk_pair(case[0], case[1], gaps=case[2])
    signal, target = pairs.compute(close, **kw)
    beta = pairs.rolling_fit(close, window=kw["window"])["beta"]
    gross = np.abs(target).sum(axis=1)
    on = gross > 0
    np.testing.assert_allclose(gross[on], 1.0, rtol=1e-12)
    prev = np.vstack([np.zeros((1, 2)), target[:-1]])
    changed = (target != prev).any(axis=1)
    for t in np.flatnonzero(changed & on):  # an entry: at a z beyond entry, with this bar's beta
        d = np.sign(target[t, 0])
        assert d * signal[t, 0] <= -kw["entry"]
        np.testing.assert_allclose(target[t], hedge(d, beta[t]), rtol=1e-12)
    # between an entry and an exit the weights do not move: every change opens or closes a trade
    assert not (changed & on & (prev != 0).any(axis=1) & (np.sign(target[:, 0]) == np.sign(prev[:, 0]))).any()


@pytest.mark.parametrize("seed", range(4))
def test_direction_is_respected(seed):
    close = walk_pair(seed, 600)
    kw = {"window": 20, "entry": 1.8, "exit": 0.3}
    long_only = pairs.targets(close, **kw, direction="long")
    short_only = pairs.targets(close, **kw, direction="short")
    both = pairs.targets(close, **kw, direction="both")
    assert (long_only[:, 0] >= 0).all() and (long_only[:, 0] > 0).any()
    assert (short_only[:, 0] <= 0).all() and (short_only[:, 0] < 0).any()
    assert (both[:, 0] > 0).any() and (both[:, 0] < 0).any()
    # the default direction is long (long the spread only)
    assert np.array_equal(pairs.targets(close, **kw), long_only)
    with pytest.raises(InputError, match="direction"):
        pairs.targets(close, **kw, direction="up")


# --------------------------------------------------------------------------- the strategy's contract


def test_registered_as_a_two_symbol_panel_strategy():
    strat = get_strategy("pairs")
    assert (strat.panel, strat.inputs, strat.family) == (True, ("close",), "mean_reversion")
    assert strat.resolve({}) == {"window": 60, "entry": 2.0, "exit": 0.5, "stop": 0.0}
    strat.check_symbols(2)
    for n in (1, 3):
        with pytest.raises(InputError, match="needs exactly 2 symbol"):
            strat.check_symbols(n)


@pytest.mark.parametrize(("given", "match"), [
    ({"exit": 2.0}, "`exit` must be below `entry`"),
    ({"entry": 0.4}, "`exit` must be below `entry`"),
    ({"stop": 1.5}, "`stop` must be 0 \\(off\\) or above `entry`"),
    ({"window": 2}, "`window` must be an integer"),
    ({"window": 20.0}, "`window` must be an integer"),
    ({"entry": 0.0}, "`entry` must be a number"),
    ({"exit": -0.1}, "`exit` must be a number"),
    ({"entry": math.nan}, "`entry` must be a number"),
    ({"lookback": 5}, "no parameter 'lookback'"),
])
def test_invalid_params_rejected(given, match):
    with pytest.raises(InputError, match=match):
        get_strategy("pairs").resolve(given)
    if "lookback" not in given:
        with pytest.raises(InputError, match=match):
            pairs.compute(walk_pair(0, 30), **given)


@pytest.mark.parametrize(("close", "match"), [
    (np.ones((10, 3)), "`close` must be a \\(bars x 2\\) array"),
    (np.ones(10), "`close` must be a \\(bars x 2\\) array"),
    (np.array([[1.0, 2.0], [0.0, 2.0]]), "`close` must be > 0"),
    (np.array([[1.0, 2.0], [np.inf, 2.0]]), "`close` must be > 0 and finite"),
])
def test_invalid_close_rejected(close, match):
    with pytest.raises(InputError, match=match):
        pairs.compute(close, window=3)
