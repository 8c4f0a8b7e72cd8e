"""The fused sweep kernel against the full kernel, and the sweep against single backtests."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from alphatwin.backtest.engine import simulate
from alphatwin.backtest.params import Costs, Market, SimParams, Stops
from alphatwin.backtest.sweep import fused_applies, pairs, sweep_sma_cross
from alphatwin.metrics.summary import summarize
from alphatwin.signals.sma_cross import targets

SHARED = ("total_return", "cagr", "annual_volatility", "sharpe", "sortino", "calmar", "max_drawdown",
          "max_drawdown_duration", "n_trades", "n_closed_trades", "win_rate", "profit_factor",
          "avg_holding_bars", "exposure", "final_equity", "total_fees")


def _series(seed: int, n: int, events: bool, gaps: bool = False) -> tuple[Market, np.ndarray]:
    rng = np.random.default_rng(seed)
    close = 40 * np.exp(np.cumsum(rng.normal(0, 0.02, n)))
    open_ = close * np.exp(rng.normal(0, 0.01, n))
    high = np.maximum(open_, close) * 1.01
    low = np.minimum(open_, close) * 0.99
    split = np.ones(n)
    dividend = np.zeros(n)
    signal = close.copy()
    if events and n > 10:
        at = n // 2
        split[at] = 2.0
        close[at:] /= 2
        open_[at:] /= 2
        high[at:] /= 2
        low[at:] /= 2
        dividend[n // 3] = 0.4
    if gaps:  # bars that cannot trade (imputed, halted, outliers): NaN prices, the signal still sees them
        cut = np.random.default_rng(seed + 1).random(n) < 0.15
        for a in (close, open_, high, low):
            a[cut] = np.nan
    market = Market.from_close(close, open=open_, high=high, low=low, split_ratio=split, dividend=dividend)
    return market, signal


def _frame_equal(a: pl.DataFrame, b: pl.DataFrame) -> None:
    for col in SHARED:
        x, y = a[col].to_numpy().astype(float), b[col].to_numpy().astype(float)
        np.testing.assert_allclose(x, y, rtol=1e-12, atol=1e-9, err_msg=col)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 120), events=st.booleans(), gaps=st.booleans(),
       fill=st.sampled_from(["open", "close"]), direction=st.sampled_from(["long", "short", "both"]),
       fees=st.sampled_from([0.0, 10.0, 100.0]), fixed=st.sampled_from([0.0, 3.0]),
       fee_min=st.sampled_from([0.0, 20.0]), slip=st.sampled_from([0.0, 7.0]),
       whole=st.booleans(), leverage=st.sampled_from([1.0, 2.0]), start=st.integers(0, 30),
       rf=st.sampled_from([0.0, 0.03]))
@example(seed=1, n=1, events=False, gaps=False, fill="open", direction="long", fees=0.0, fixed=0.0, fee_min=0.0,
         slip=0.0, whole=False, leverage=1.0, start=0, rf=0.0)
def test_fused_kernel_equals_full_kernel(seed, n, events, gaps, fill, direction, fees, fixed, fee_min, slip,
                                         whole, leverage, start, rf):
    market, signal = _series(seed, n, events, gaps)
    start = min(start, n - 1)
    params = SimParams(fill=fill, whole_units=whole, leverage=leverage,
                       costs=Costs(fees_bps=fees, fee_fixed=fixed, fee_min=fee_min, slippage_bps=slip))
    assert fused_applies(params)
    fused = sweep_sma_cross(market, signal, range(1, 8), range(2, 15), params, direction=direction,
                            start=start, risk_free=rf)
    # the same cost model through the full kernel (a participation cap nobody reaches)
    general_params = SimParams(fill=fill, whole_units=whole, leverage=leverage,
                               costs=Costs(fees_bps=fees, fee_fixed=fixed, fee_min=fee_min,
                                           slippage_bps=slip, participation=1e300))
    general = sweep_sma_cross(market, signal, range(1, 8), range(2, 15), general_params,
                              direction=direction, start=start, risk_free=rf)
    assert set(fused["kernel"]) == {"fused"} and set(general["kernel"]) == {"general"}
    _frame_equal(fused, general)


@pytest.mark.parametrize("fill", ["open", "close"])
@pytest.mark.parametrize("stops", [Stops(), Stops(stop_loss=0.03, trailing_stop=0.05)])
def test_sweep_rows_equal_single_backtests(fill, stops):
    market, signal = _series(5, 400, True)
    params = SimParams(fill=fill, costs=Costs(fees_bps=10, slippage_bps=2), stops=stops)
    table = sweep_sma_cross(market, signal, [3, 5, 9], [10, 20, 40], params, direction="both",
                            start=25, periods_per_year=252.0, risk_free=0.02)
    assert table.height == 9
    for row in table.iter_rows(named=True):
        result = simulate(market, targets(signal, fast=row["fast"], slow=row["slow"], direction="both"),
                          params, start=25)
        tr = result.trades
        held = np.where(tr["exit_bar"] >= 0, tr["exit_bar"], len(signal) - 1) - tr["entry_bar"]
        metrics = summarize(
            equity=result.equity[25:], init_cash=params.init_cash, trades_pnl=tr["pnl"],
            trades_closed=tr["exit_bar"] >= 0, trades_holding_bars=held,
            gross_exposure=result.gross_exposure()[25:],
            traded_notional=result.traded_notional(len(signal))[25:], fees=float(result.fees.sum()),
            slippage=float(result.slippage.sum()), impact=float(result.impact.sum()),
            periods_per_year=252.0, risk_free=0.02)
        for key in SHARED:
            got, want = row[key], metrics[key]
            if isinstance(want, float) and math.isnan(want):
                assert math.isnan(got), key
            else:
                assert got == pytest.approx(want, rel=1e-9, abs=1e-12), key


def test_pairs_skip_invalid_combinations():
    fast, slow = pairs(range(2, 101), range(3, 201))
    assert len(fast) == 14_751
    assert (fast < slow).all()
    assert pairs([5], [5])[0].size == 0
