"""The numba kernel against the slow pure-Python reference on random markets, targets, costs and
stops (hypothesis): every per-bar array, every fill and every trade agree."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from alphatwin.backtest.engine import simulate
from alphatwin.backtest.params import Costs, Market, SimParams, Stops
from tests.backtest.reference import reference_simulate

RTOL, ATOL = 1e-9, 1e-6


@st.composite
def scenarios(draw):
    n = draw(st.integers(1, 25))
    m = draw(st.integers(1, 3))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    close = 50 * np.exp(np.cumsum(rng.normal(0, 0.04, (n, m)), axis=0))
    open_ = close * np.exp(rng.normal(0, 0.03, (n, m)))
    high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0, 0.02, (n, m))))
    low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0, 0.02, (n, m))))
    volume = np.round(rng.uniform(0, 5_000, (n, m)))
    missing = rng.random((n, m)) < draw(st.sampled_from([0.0, 0.15]))
    for a in (open_, high, low, close):
        a[missing] = np.nan
    volume[missing] = np.nan
    split = np.ones((n, m))
    dividend = np.zeros((n, m))
    if draw(st.booleans()):
        events = (rng.random((n, m)) < 0.1) & ~missing
        split[events] = rng.choice([2.0, 0.5, 1.5], events.sum())
        divs = (rng.random((n, m)) < 0.1) & ~missing
        dividend[divs] = rng.uniform(0.1, 2.0, divs.sum())
    atr = np.where(rng.random((n, m)) < 0.2, np.nan, rng.uniform(0.1, 3, (n, m)))
    sigma = np.where(rng.random((n, m)) < 0.2, np.nan, rng.uniform(0.005, 0.05, (n, m)))
    adv = np.where(rng.random((n, m)) < 0.2, np.nan, rng.uniform(0, 10_000, (n, m)))
    market = Market(ts=np.arange(n), symbols=tuple(f"S{i}" for i in range(m)), open=open_,
                    high=high, low=low, close=close, volume=volume, split_ratio=split,
                    dividend=dividend, atr=atr, sigma=sigma, adv=adv)
    kind = draw(st.sampled_from(["weight", "units"]))
    choices = ([np.nan, -1.0, -0.5, 0.0, 0.3, 0.5, 1.0] if kind == "weight"
               else [np.nan, -700.0, -33.3, 0.0, 50.0, 400.0, 1234.5])
    target = rng.choice(choices, (n, m))
    slip_kind = draw(st.sampled_from(["none", "range", "atr"]))
    costs = Costs(
        fees_bps=draw(st.sampled_from([0.0, 10.0, 100.0])),
        fee_fixed=draw(st.sampled_from([0.0, 1.0, 25.0])),
        fee_min=draw(st.sampled_from([0.0, 5.0, 40.0])),
        slippage_bps=draw(st.sampled_from([0.0, 5.0, 50.0])),
        slippage_range=0.1 if slip_kind == "range" else 0.0,
        slippage_atr=0.2 if slip_kind == "atr" else 0.0,
        impact_k=draw(st.sampled_from([0.0, 0.5])),
        participation=draw(st.sampled_from([math.inf, 0.05, 0.5])),
    )
    stops = Stops(
        stop_loss=draw(st.sampled_from([math.nan, 0.02, 0.1])),
        take_profit=draw(st.sampled_from([math.nan, 0.03, 0.2])),
        trailing_stop=draw(st.sampled_from([math.nan, 0.01, 0.05])),
    )
    params = SimParams(
        fill=draw(st.sampled_from(["open", "close"])),
        init_cash=draw(st.sampled_from([10_000.0, 100_000.0])),
        target_kind=kind, whole_units=draw(st.booleans()),
        leverage=draw(st.sampled_from([1.0, 2.0, 0.5])),
        rebalance_every=draw(st.sampled_from([0, 1, 3])), costs=costs, stops=stops)
    start = draw(st.integers(0, max(0, n - 1)))
    return market, target, params, start


def _close(a, b, what):
    np.testing.assert_allclose(np.asarray(a, dtype=float), np.asarray(b, dtype=float),
                               rtol=RTOL, atol=ATOL, err_msg=what)


def _compare(market, target, params, start):
    got = simulate(market, target, params, start=start)
    ref = reference_simulate(market, target, params, start)
    _close(got.equity, ref["equity"], "equity")
    _close(got.cash, ref["cash"], "cash")
    _close(got.units, ref["units"], "units")
    for name in ("fees", "slippage", "impact"):
        _close(getattr(got, name), ref[name], name)
    assert len(got.fills) == len(ref["fills"]), "number of fills"
    for name in got.fills.dtype.names:
        _close(got.fills[name], [f[name] for f in ref["fills"]], f"fills.{name}")
    trades = sorted(ref["trades"], key=lambda tr: (tr["entry_bar"], tr["col"]))
    mine = np.sort(got.trades, order=["entry_bar", "col"])
    assert len(mine) == len(trades), "number of trades"
    for name in mine.dtype.names:
        _close(mine[name], [tr[name] for tr in trades], f"trades.{name}")
    # every currency unit is accounted for: trade pnl adds up to the equity change
    _close(got.trades["pnl"].sum(), got.equity[-1] - params.init_cash, "sum of trade pnl")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
@example(( Market.from_close(np.array([10.0, 11.0, 12.0, 11.0])), np.array([1.0, 1.0, 0.0, 0.0]),
          SimParams(fill="close", costs=Costs(fees_bps=10)), 0))
@example((Market.from_close(np.array([10.0])), np.array([1.0]), SimParams(), 0))
def test_kernel_matches_reference(case):
    _compare(*case)
