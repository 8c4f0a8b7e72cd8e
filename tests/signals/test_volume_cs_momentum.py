"""Volume momentum (``obv_momentum``) and cross-sectional momentum (``cs_momentum``).

OBV against TA-Lib, the OBV gap against TA-Lib's SMA; hand-built series and a hand-built
5-symbol universe whose targets, weights and engine trades are written out by hand; the
properties: point in time, scale invariant (volume and prices; each symbol by its own factor),
weight sums, direction respected, parameters checked.
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
from alphatwin.signals import cs_momentum, obv_momentum
from alphatwin.signals.base import get_strategy
from alphatwin.signals.trend_nb import cs_weights_nb, lagged_ratio_nb, obv_1d_nb, obv_gap_1d_nb


def bars(seed: int, n: int, flat: float = 0.2) -> tuple[np.ndarray, np.ndarray]:
    """A random walk from 100 with a share ``flat`` of unchanged closes, and integer volumes
    (share counts) with a few zero-volume bars."""
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, n) * (rng.random(n) >= flat)))
    volume = rng.integers(0, 1_000_000, n).astype(np.float64) * (rng.random(n) >= 0.05)
    return close, volume


def same(a: np.ndarray, b: np.ndarray) -> bool:
    return np.array_equal(a, b, equal_nan=True)


# --------------------------------------------------------------------------- OBV kernels

series = st.tuples(st.integers(0, 2**32 - 1), st.integers(0, 300))


@settings(max_examples=60, deadline=None)
@given(series, st.integers(2, 40))
@example((0, 0), 2)
@example((1, 1), 2)
@example((2, 20), 20)
def test_obv_and_gap_match_talib(case, period):
    close, volume = bars(*case)
    obv = obv_1d_nb(close, volume)
    assert np.array_equal(obv, talib.OBV(close, volume))  # the same additions in the same order
    # TA-Lib's running-sum SMA of OBV: exact here (integer volumes far below 2**53)
    sma_obv, sma_vol = talib.SMA(obv, period), talib.SMA(volume, period)
    with np.errstate(invalid="ignore", divide="ignore"):
        want = np.where(sma_vol == 0, np.nan, (obv - sma_obv) / sma_vol)
    got = obv_gap_1d_nb(obv, volume, period)
    assert np.array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)


def test_obv_gap_by_hand():
    # OBV 100 300 300 0 0 0 with volumes 100 200 50 300 0 0, window 2:
    # (300 - 200) / 150, (300 - 300) / 125, (0 - 150) / 175, (0 - 0) / 150, no volume: NaN
    close = np.array([10.0, 11, 11, 10, 10, 10])
    volume = np.array([100.0, 200, 50, 300, 0, 0])
    obv = obv_1d_nb(close, volume)
    assert obv.tolist() == [100, 300, 300, 0, 0, 0]
    np.testing.assert_allclose(obv_gap_1d_nb(obv, volume, 2), [np.nan, 100 / 150, 0, -150 / 175, 0, np.nan])


def test_obv_gap_is_exactly_zero_where_obv_did_not_move():
    # with non-integer volumes a running sum would leave a residue here, i.e. a trade
    close = np.r_[1.0, 1.1, 1.2, np.full(10, 1.2)]
    volume = np.full(13, 0.1) * np.arange(1, 14) ** 1.5
    assert (obv_momentum.compute(close, volume, period=5, direction="both")[0][-6:] == 0.0).all()


# --------------------------------------------------------------------------- obv_momentum

OBV_CLOSE = np.array([10.0, 11, 12, 12, 11, 10, 10, 10, 11])
OBV_VOLUME = np.full(9, 100.0)


def test_obv_momentum_by_hand():
    # OBV 100 200 300 300 200 100 100 100 200; its SMA(2) -, 150 250 300 250 150 100 100 150
    assert obv_momentum.targets(OBV_CLOSE, OBV_VOLUME, period=2).tolist() == [0, 1, 1, 0, 0, 0, 0, 0, 1]
    assert obv_momentum.targets(OBV_CLOSE, OBV_VOLUME, period=2, direction="both").tolist() \
        == [0, 1, 1, 0, -1, -1, 0, 0, 1]
    assert obv_momentum.targets(OBV_CLOSE, OBV_VOLUME, period=2, direction="short").tolist() \
        == [0, 0, 0, 0, -1, -1, 0, 0, 0]
    np.testing.assert_allclose(obv_momentum.compute(OBV_CLOSE, OBV_VOLUME, period=2)[0],
                               [np.nan, 0.5, 0.5, 0, -0.5, -0.5, 0, 0, 0.5])


def test_obv_momentum_trades_in_the_engine():
    target = obv_momentum.targets(OBV_CLOSE, OBV_VOLUME, period=2, direction="both")
    trades = simulate(Market.from_close(OBV_CLOSE, volume=OBV_VOLUME * 1e6), target,
                      SimParams(fill="close")).trades
    # long at 11 (bar 1) out at 12 (bar 3); short at 11 (bar 4) out at 10 (bar 6); long at 11
    assert trades["entry_bar"].tolist() == [1, 4, 8]
    assert trades["exit_bar"].tolist() == [3, 6, -1]
    after_long = 100_000 * 12 / 11
    after_short = after_long + after_long / 11 * (11 - 10)
    np.testing.assert_allclose(trades["quantity"], [100_000 / 11, -after_long / 11, after_short / 11],
                               rtol=1e-12)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(0, 150), cut=st.floats(0, 1),
       period=st.integers(2, 25), direction=st.sampled_from(["long", "short", "both"]))
@example(seed=0, n=0, cut=0.0, period=2, direction="both")
@example(seed=0, n=1, cut=1.0, period=2, direction="both")
def test_obv_momentum_point_in_time_and_scale_invariant(seed, n, cut, period, direction):
    close, volume = bars(seed, n)
    sig, tgt = obv_momentum.compute(close, volume, period=period, direction=direction)
    assert sig.shape == tgt.shape == (n,)
    assert set(np.unique(tgt)) <= {-1.0, 0.0, 1.0}
    t = int(cut * n)
    cut_sig, cut_tgt = obv_momentum.compute(close[:t], volume[:t], period=period, direction=direction)
    assert same(cut_sig, sig[:t]) and same(cut_tgt, tgt[:t])
    # a later split backward-adjusted: volumes x 3, prices / 3 (or any factor): the same
    for vf, pf in ((3.0, 7.3), (3.0, 1 / 3)):
        scaled_sig, scaled_tgt = obv_momentum.compute(close * pf, volume * vf, period=period, direction=direction)
        assert np.array_equal(scaled_tgt, tgt)
        assert same(scaled_sig, sig)  # integer volumes: the sums are exact, the ratio identical


@pytest.mark.parametrize("seed", range(5))
def test_obv_momentum_direction_is_respected(seed):
    close, volume = bars(seed, 300)
    run = {d: obv_momentum.targets(close, volume, period=10, direction=d) for d in ("long", "short", "both")}
    assert (run["long"] >= 0).all() and (run["long"] > 0).any()
    assert (run["short"] <= 0).all() and (run["short"] < 0).any()
    assert np.array_equal(run["both"], run["long"] + run["short"])
    with pytest.raises(InputError, match="direction"):
        obv_momentum.targets(close, volume, direction="up")


def test_obv_momentum_checks_its_inputs():
    close, volume = bars(1, 30)
    with pytest.raises(InputError, match="`period` must be an integer"):
        obv_momentum.compute(close, volume, period=1)
    with pytest.raises(InputError, match="`volume` must have the shape"):
        obv_momentum.compute(close, volume[:-1])
    with pytest.raises(InputError, match="`volume` must be >= 0"):
        obv_momentum.compute(close, -volume)


# --------------------------------------------------------------------------- cs_momentum by hand

#: One-bar price relatives of symbols A..E; with lookback 2 and skip 1 the score on row t is
#: the relative of row t - 1, so rebalance rows 2, 4, 6 rank rows 1, 3, 5 of this table.
RELATIVES = np.array([
    [1.00, 1.00, 1.00, 1.00, 1.00],
    [1.05, 1.01, 0.97, 1.03, 0.99],  # A > D > B > E > C
    [1.02, 0.98, 1.01, 1.00, 1.03],
    [0.95, 1.02, 1.04, 1.00, 1.00],  # C > B > D = E > A (D ranks above E: earlier column)
    [1.01, 1.00, 0.99, 1.02, 1.00],
    [1.00, 1.00, 1.00, 1.00, 1.00],  # all equal: column order A > B > C > D > E
    [1.03, 0.97, 1.00, 1.01, 0.99],
])
HAND = {"lookback": 2, "skip": 1, "rebalance": 2}


def universe() -> np.ndarray:
    """The closes of RELATIVES from 10, 20, 30, 40, 50; E has no bar on row 5 (its row-6
    score is then c[4] / c[4] = 1: the last close at or before row 5)."""
    close = np.cumprod(RELATIVES, axis=0) * np.array([10.0, 20, 30, 40, 50])
    close[5, 4] = np.nan
    return close


def held(rows: list[list[float]]) -> np.ndarray:
    """Rows 0-1 flat (warm-up), the three rebalances held two rows each, E's NaN on row 5."""
    out = np.array([[0.0] * 5] * 2 + [rows[0]] * 2 + [rows[1]] * 2 + [rows[2]])
    out[5, 4] = np.nan
    return out


@pytest.mark.parametrize(("quantile", "direction", "rows"), [
    (0.2, "both", [[0.5, 0, -0.5, 0, 0], [-0.5, 0, 0.5, 0, 0], [0.5, 0, 0, 0, -0.5]]),
    (0.2, "long", [[1, 0, 0, 0, 0], [0, 0, 1, 0, 0], [1, 0, 0, 0, 0]]),
    (0.2, "short", [[0, 0, -1, 0, 0], [-1, 0, 0, 0, 0], [0, 0, 0, 0, -1]]),
    (0.4, "both", [[0.25, 0, -0.25, 0.25, -0.25], [-0.25, 0.25, 0.25, 0, -0.25], [0.25, 0.25, 0, -0.25, -0.25]]),
    (0.4, "long", [[0.5, 0, 0, 0.5, 0], [0, 0.5, 0.5, 0, 0], [0.5, 0.5, 0, 0, 0]]),
    (0.5, "both", [[0.25, 0, -0.25, 0.25, -0.25], [-0.25, 0.25, 0.25, 0, -0.25], [0.25, 0.25, 0, -0.25, -0.25]]),
])
def test_cs_momentum_weights_by_hand(quantile, direction, rows):
    # k = max(1, floor(quantile x 5)): 1, 2, 2 (0.5 x 5 = 2.5: the middle symbol stays out)
    got = cs_momentum.targets(universe(), **HAND, quantile=quantile, direction=direction)
    assert same(got, held(rows))


def test_cs_momentum_signal_by_hand():
    sig = cs_momentum.compute(universe(), **HAND, quantile=0.2)[0]
    want = np.full((7, 5), np.nan)
    want[2:] = RELATIVES[1:6] - 1.0  # E has no bar on row 5 but a recent one: c[4] / c[3] - 1
    np.testing.assert_allclose(sig, want, atol=1e-15)


def test_cs_momentum_trades_in_the_engine():
    close = universe()
    target = cs_momentum.targets(close, **HAND, quantile=0.2, direction="both")
    trades = simulate(Market.from_close(close), target, SimParams(fill="close")).trades
    # row 2: long A, short C; row 4: both flip; row 6: A flips back, C out, E short (open)
    got = sorted(zip(trades["col"].tolist(), trades["entry_bar"].tolist(), trades["exit_bar"].tolist()))
    assert got == [(0, 2, 4), (0, 4, 6), (0, 6, -1), (2, 2, 4), (2, 4, 6), (4, 6, -1)]
    first = trades[trades["entry_bar"] == 2]
    np.testing.assert_allclose(np.sort(first["quantity"]), np.sort([50_000 / close[2, 0], -50_000 / close[2, 2]]),
                               rtol=1e-12)


def test_cs_momentum_missing_and_late_symbols():
    # 3 symbols, lookback 1, skip 0, rebalance 2, q 0.5 (k = 1): t0 = 1, rebalances 1, 3, 5.
    # On row 3 only A has a bar, but B's last bar (row 2) is recent: B is ranked with
    # c[3] / c[2] = 8 / 8 = 1 above A's 11 / 12; B's new weight waits for its next bar (row 4).
    # C is listed on row 4; on row 5 B's score reads its last close at or before row 4 (9).
    close = np.array([
        [10.0, 10, np.nan],
        [11, 9, np.nan],          # t0: A 1.1 > B 0.9
        [12, 8, np.nan],
        [11, np.nan, np.nan],     # B 1.0 > A 0.917 (B ranked from its last close)
        [12, 9, 5],
        [13, 10, 6],              # C 1.2 > B 1.11 > A 1.083
        [12, 11, 7],
    ])
    got = cs_momentum.targets(close, lookback=1, skip=0, quantile=0.5, rebalance=2, direction="both")
    want = np.array([
        [0, 0, np.nan], [0.5, -0.5, np.nan], [0.5, -0.5, np.nan], [-0.5, np.nan, np.nan],
        [-0.5, 0.5, 0], [-0.5, 0, 0.5], [-0.5, 0, 0.5],
    ])
    assert same(got, want)


def test_cs_momentum_drops_a_symbol_that_stopped_trading():
    # B's last bar is row 1; from row 6 (5 rows later) it has no score and is not ranked
    close = np.array([[10.0, 10, 10], [11, 9, 10]] + [[10.0 + k, np.nan, 10 - 0.1 * k] for k in range(2, 9)])
    sig = cs_momentum.compute(close, lookback=1, skip=0, quantile=0.5, rebalance=1, direction="both")[0]
    assert not np.isnan(sig[5, 1]) and np.isnan(sig[6:, 1]).all()


def test_cs_momentum_leg_size_survives_rounding():
    # 0.29 x 100 is 28.999999999999996 in floating point: the legs must still hold 29 symbols
    rng = np.random.default_rng(3)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, (5, 100)), axis=0))
    w = cs_momentum.targets(close, lookback=2, skip=0, quantile=0.29, rebalance=1, direction="both")
    assert ((w[-1] > 0).sum(), (w[-1] < 0).sum()) == (29, 29)


# --------------------------------------------------------------------------- cs_momentum properties

CS_SMALL = {"lookback": 6, "skip": 1, "quantile": 0.3, "rebalance": 3}


def panel(seed: int, n: int, m: int, holes: float = 0.1) -> np.ndarray:
    """Random walks of m symbols, each at its own price level, with late listings and holes."""
    rng = np.random.default_rng(seed)
    steps = rng.normal(0.0, 0.01, (n, m)) * (rng.random((n, m)) >= 0.2)
    close = np.exp(np.cumsum(steps, axis=0)) * rng.uniform(1, 500, m)
    close[rng.random((n, m)) < holes] = np.nan
    for j in range(m):
        close[: int(rng.integers(0, max(1, n // 3))), j] = np.nan
    return close


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(0, 80), m=st.integers(1, 8), cut=st.floats(0, 1),
       direction=st.sampled_from(["long", "short", "both"]))
@example(seed=0, n=0, m=2, cut=0.0, direction="both")
@example(seed=0, n=1, m=1, cut=1.0, direction="both")
def test_cs_momentum_point_in_time_and_scale_invariant(seed, n, m, cut, direction):
    close = panel(seed, n, m)
    sig, w = cs_momentum.compute(close, **CS_SMALL, direction=direction)
    assert sig.shape == w.shape == (n, m)
    assert np.array_equal(np.isnan(w), np.isnan(close))  # NaN exactly where there is no bar
    assert (np.nansum(np.abs(w), axis=1) <= 1 + 1e-12).all()
    t = int(cut * n)
    cut_sig, cut_w = cs_momentum.compute(close[:t], **CS_SMALL, direction=direction)
    assert same(cut_sig, sig[:t]) and same(cut_w, w[:t])
    factors = np.random.default_rng(seed).uniform(0.01, 100, m)  # each symbol its own basis
    scaled_sig, scaled_w = cs_momentum.compute(close * factors, **CS_SMALL, direction=direction)
    assert same(scaled_w, w)
    np.testing.assert_allclose(scaled_sig, sig, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("seed", range(5))
def test_cs_momentum_weight_sums_and_direction(seed):
    close = panel(seed, 120, 7, holes=0.0)
    close[:, :3] = np.nan_to_num(close[:, :3], nan=1.0)  # 3 symbols from the start: t0 = lookback
    run = {d: np.nan_to_num(cs_momentum.targets(close, **CS_SMALL, direction=d), nan=0.0)
           for d in ("long", "short", "both")}
    live = np.abs(run["both"]).sum(axis=1) > 0
    assert np.array_equal(np.flatnonzero(live), np.arange(CS_SMALL["lookback"], 120))
    np.testing.assert_allclose(run["both"][live].sum(axis=1), 0.0, atol=1e-15)  # dollar neutral
    np.testing.assert_allclose(np.abs(run["both"][live]).sum(axis=1), 1.0, rtol=1e-15)
    np.testing.assert_allclose(run["long"][live].sum(axis=1), 1.0, rtol=1e-15)
    np.testing.assert_allclose(run["short"][live].sum(axis=1), -1.0, rtol=1e-15)
    assert (run["long"] >= 0).all() and (run["short"] <= 0).all()
    assert np.array_equal(run["both"], 0.5 * run["long"] + 0.5 * run["short"])
    # held between rebalances: the weights change on rebalance rows only (t0 + 3i)
    t0 = np.flatnonzero(live)[0]
    changed = np.flatnonzero((np.diff(run["both"], axis=0) != 0).any(axis=1)) + 1
    assert ((changed - t0) % CS_SMALL["rebalance"] == 0).all()
    with pytest.raises(InputError, match="direction"):
        cs_momentum.targets(close, direction="up")


def test_cs_weights_kernel_on_a_tie_and_a_gap():
    # row 2: B has no bar but a score (a recent bar): ranked on top, its weight shown as NaN
    score = np.array([[np.nan, np.nan, np.nan], [2.0, 2.0, 2.0], [1.0, 3.0, 2.0]])
    has_bar = np.array([[True, True, True], [True, True, True], [True, False, True]])
    w = cs_weights_nb(score, has_bar, 1, 0.5, 0.5, 0.5)
    assert same(w, np.array([[0, 0, 0], [0.5, 0, -0.5], [-0.5, np.nan, 0]]))
    ratio = lagged_ratio_nb(np.array([[1.0], [np.nan], [4.0]]), 2, 1, 5)
    assert same(ratio[:, 0], np.array([np.nan, np.nan, 1.0]))  # c[1] is the close of row 0


def test_cs_momentum_registry_and_symbols():
    strat = get_strategy("cs_momentum")
    assert (strat.panel, strat.min_symbols, strat.inputs, strat.family) == (True, 2, ("close",), "momentum")
    assert strat.resolve({}) == {"lookback": 252, "skip": 21, "quantile": 0.2, "rebalance": 21}
    strat.check_symbols(2)
    with pytest.raises(InputError, match="needs at least 2 symbol"):
        strat.check_symbols(1)
    obv = get_strategy("obv_momentum")
    assert (obv.inputs, obv.family, obv.resolve({})) == (("close", "volume"), "momentum", {"period": 20})


@pytest.mark.parametrize(("name", "given", "match"), [
    ("cs_momentum", {"quantile": 0.0}, "`quantile` must be in \\(0, 0.5\\]"),
    ("cs_momentum", {"quantile": 0.6}, "`quantile` must be a number in \\[0.0, 0.5\\]"),
    ("cs_momentum", {"lookback": 21}, "`skip` must be below `lookback`"),
    ("cs_momentum", {"rebalance": 0}, "`rebalance` must be an integer"),
    ("cs_momentum", {"lookback": 0, "skip": 0}, "`lookback` must be an integer"),
    ("cs_momentum", {"skip": -1}, "`skip` must be an integer"),
    ("cs_momentum", {"period": 5}, "no parameter 'period'"),
    ("obv_momentum", {"period": 1}, "`period` must be an integer"),
    ("obv_momentum", {"period": 20.5}, "`period` must be an integer"),
])
def test_resolve_rejects_invalid_params(name, given, match):
    with pytest.raises(InputError, match=match):
        get_strategy(name).resolve(given)


def test_cs_momentum_compute_checks_its_inputs():
    close = panel(1, 40, 3, holes=0.0)
    with pytest.raises(InputError, match="`quantile` must be in"):
        cs_momentum.compute(close, quantile=0.0)
    with pytest.raises(InputError, match="`skip` must be below `lookback`"):
        cs_momentum.compute(close, lookback=5, skip=5)
    with pytest.raises(InputError, match="2-D"):
        cs_momentum.compute(close[:, 0])
    with pytest.raises(InputError, match="`close` must be positive"):
        cs_momentum.compute(np.where(close > 0, -close, close))
