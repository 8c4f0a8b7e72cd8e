"""The ATR-multiple stop of the backtest kernel: hand-built OHLC scenarios whose stop level, exit
bar and exit price are worked out in advance (long and short, open and close fills, gaps, the
interaction with stop-loss and trailing stops, splits, unknown ATR), a slow plain-Python reference
of the rule on random single-symbol markets, and point-in-time truncation (hypothesis)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alphatwin.backtest.engine import simulate
from alphatwin.backtest.enums import Phase, Reason
from alphatwin.backtest.params import Costs, Drawdown, Market, SimParams, Stops

NAN = math.nan
CASH = 100_000.0


def _market(close, *, open=None, high=None, low=None, atr=None, split_ratio=None):
    close = np.asarray(close, dtype=float)
    open_ = close if open is None else np.asarray(open, dtype=float)
    high = np.maximum(open_, close) if high is None else np.asarray(high, dtype=float)
    low = np.minimum(open_, close) if low is None else np.asarray(low, dtype=float)
    extra = {} if split_ratio is None else {"split_ratio": np.asarray(split_ratio, dtype=float)}
    atr = np.full(close.shape, NAN) if atr is None else np.asarray(atr, dtype=float)
    return Market.from_close(close, open=open_, high=high, low=low, atr=atr, **extra)


def _mirror(market: Market) -> Market:
    """The same bars reflected around 100 (a short's view of a long's scenario)."""
    return Market.from_close(200.0 - market.close, open=200.0 - market.open, high=200.0 - market.low,
                             low=200.0 - market.high, atr=market.atr, split_ratio=market.split_ratio)


def _fills(result):
    return [(int(f["bar"]), float(f["units"]), float(f["price"]), int(f["reason"]), int(f["phase"]))
            for f in result.fills]


# ---------------------------------------------------------------------------------------------
# long and short, open and close fills, intrabar and gap exits

#   bar 0: 100 flat, ATR 2          -> distance 1.5 x 2 = 3, level 97 (the entry is 100 either way:
#   bar 1: o 100 h 101 l 99 c 100   the close of bar 0, or the open of bar 1); ATR 10 here is not
#          ATR 10                   used (the distance comes from the bar before the opening fill)
#   bar 2: intrabar: o 99 h 99.5 l 96 c 97.5 -> exit at 97;  gap: o 95 h 96 l 94 c 95 -> exit at 95
#   bar 3: 98 flat (the target is unchanged: the symbol stays flat after the stop)
_BAR2 = {"intrabar": (99.0, 99.5, 96.0, 97.5, 97.0), "gap": (95.0, 96.0, 94.0, 95.0, 95.0)}


def _scenario(kind: str) -> tuple[Market, float]:
    o2, h2, l2, c2, exit_price = _BAR2[kind]
    market = _market([100.0, 100.0, c2, 98.0], open=[100.0, 100.0, o2, 98.0], high=[100.0, 101.0, h2, 98.0],
                     low=[100.0, 99.0, l2, 98.0], atr=[2.0, 10.0, 10.0, 10.0])
    return market, exit_price


@pytest.mark.parametrize("fill", ["close", "open"])
@pytest.mark.parametrize("side", [1.0, -1.0])
@pytest.mark.parametrize("kind", ["intrabar", "gap"])
def test_atr_stop_exit_bar_and_price(fill, side, kind):
    market, exit_price = _scenario(kind)
    if side < 0:
        market, exit_price = _mirror(market), 200.0 - exit_price  # level 103, gap exit at 105
    res = simulate(market, np.full(4, side), SimParams(fill=fill, stops=Stops(stop_atr=1.5)))
    units = side * CASH / 100.0
    entry_bar, entry_phase = (0, Phase.CLOSE) if fill == "close" else (1, Phase.OPEN)
    assert _fills(res) == [(entry_bar, units, 100.0, Reason.SIGNAL, entry_phase),
                           (2, -units, exit_price, Reason.ATR_STOP, Phase.INTRABAR)]
    want_equity = CASH + units * (exit_price - 100.0)  # 97000 after an intrabar exit, 95000 after a gap
    np.testing.assert_allclose(res.equity[2:], want_equity, rtol=1e-15)
    np.testing.assert_array_equal(res.units[:, 0], [units if fill == "close" else 0.0, units, 0.0, 0.0])
    (trade,) = res.trades
    assert trade["exit_reason"] == Reason.ATR_STOP and trade["exit_bar"] == 2
    assert trade["entry_price"] == 100.0 and trade["exit_price"] == exit_price


def test_atr_stop_alone_is_checked():
    # regression: the kernel skipped the stop check unless stop_loss/take_profit/trailing_stop
    # was set, so an ATR stop on its own never fired
    market, _ = _scenario("intrabar")
    alone = simulate(market, np.ones(4), SimParams(fill="close", stops=Stops(stop_atr=1.5)))
    assert alone.units[-1, 0] == 0.0 and alone.trades["exit_reason"][0] == Reason.ATR_STOP


def test_open_fill_uses_atr_of_bar_before_and_is_checked_on_the_entry_bar():
    # decided at the close of bar 0 (ATR 2), bought at the open of bar 1 at 101: level 101 - 3 = 98.
    # Bar 1's own ATR (50) would put the level at 26. A position bought at the open is checked
    # intrabar on that bar (low 97.9 -> exit at 98), never for a gap (its open is the entry).
    market = _market([100.0, 100.0, 100.0], open=[100.0, 101.0, 100.0], high=[100.0, 101.5, 100.0],
                     low=[100.0, 97.9, 100.0], atr=[2.0, 50.0, 50.0])
    res = simulate(market, np.ones(3), SimParams(stops=Stops(stop_atr=1.5)))
    units = CASH / 101.0
    assert _fills(res) == [(1, units, 101.0, Reason.SIGNAL, Phase.OPEN),
                           (1, -units, 98.0, Reason.ATR_STOP, Phase.INTRABAR)]
    assert res.equity[1] == pytest.approx(units * 98.0, rel=1e-12)


def test_close_fill_is_checked_from_the_next_bar_for_a_gap():
    # bought at the close of bar 0 (level 97); bar 1 opens at 96 -> a gap exit at the open, 96
    market = _market([100.0, 99.0], open=[100.0, 96.0], high=[100.0, 99.5], low=[100.0, 95.0],
                     atr=[2.0, 2.0])
    res = simulate(market, np.ones(2), SimParams(fill="close", stops=Stops(stop_atr=1.5)))
    assert _fills(res)[1] == (1, -1000.0, 96.0, Reason.ATR_STOP, Phase.INTRABAR)


def test_level_clipped_into_the_bar():
    # bought at the open of bar 1 (100) with 2% slippage: entry (exec) price 102, distance
    # 0.25 x 2 = 0.5, level 101.5 above the bar's high 101: the low touches it and the exit's base
    # price is the level clipped into [low, high], 101 (sold at 101 x 0.98)
    market = _market([100.0, 100.5], open=[100.0, 100.0], high=[100.0, 101.0], low=[100.0, 99.5],
                     atr=[2.0, 2.0])
    res = simulate(market, np.ones(2), SimParams(costs=Costs(slippage_bps=200), stops=Stops(stop_atr=0.25)))
    entry, stop = res.fills
    assert entry["price"] == pytest.approx(102.0, rel=1e-15)
    assert (stop["bar"], stop["reason"], stop["base_price"]) == (1, Reason.ATR_STOP, 101.0)
    assert stop["price"] == pytest.approx(101.0 * 0.98, rel=1e-15)


def test_level_follows_the_average_entry_price():
    # bar 0: 500 units at 100 (target 0.5), distance 1.5 x ATR 2 = 3. bar 1 (close 110, ATR 10):
    # target 1 -> equity 105000, 954.54.. units wanted, 454.54.. bought at 110: average entry
    # (50000 + 50000) / 954.54.. = 104.7619..; the distance stays 3 (set by the opening fill):
    # level 101.7619..; bar 2's low 101.5 hits it. (97 from the first fill, or 94.76 with the
    # ATR of bar 1, would not be hit.)
    market = _market([100.0, 110.0, 103.0], open=[100.0, 110.0, 108.0], high=[100.0, 110.0, 108.0],
                     low=[100.0, 110.0, 101.5], atr=[2.0, 10.0, 10.0])
    res = simulate(market, np.array([0.5, 1.0, 1.0]), SimParams(fill="close", stops=Stops(stop_atr=1.5)))
    held = 105_000.0 / 110.0
    avg = (500 * 100.0 + (held - 500) * 110.0) / held
    bar, units, price, reason, _ = _fills(res)[2]
    assert (bar, reason) == (2, Reason.ATR_STOP)
    assert units == pytest.approx(-held, rel=1e-12) and price == pytest.approx(avg - 3.0, rel=1e-12)


# ---------------------------------------------------------------------------------------------
# with the other stops: the tightest level wins; ties go to stop_loss, then the ATR stop


@pytest.mark.parametrize("side", [1.0, -1.0])
@pytest.mark.parametrize("stop_loss, atr, level, reason", [
    (0.25, 12.5, 75.0, Reason.STOP_LOSS),  # 100 x 0.75 = 75 = 100 - 2 x 12.5: a tie -> stop_loss
    (0.25, 10.0, 80.0, Reason.ATR_STOP),  # ATR level 80 is tighter than 75
    (0.125, 12.5, 87.5, Reason.STOP_LOSS),  # stop-loss 87.5 is tighter than 75
])
def test_atr_and_stop_loss_tightest_wins(side, stop_loss, atr, level, reason):
    market = _market([100.0, 90.0], open=[100.0, 95.0], high=[100.0, 96.0], low=[100.0, 70.0],
                     atr=[atr, atr])
    if side < 0:
        market, level = _mirror(market), 200.0 - level
    res = simulate(market, np.full(2, side), SimParams(fill="close", stops=Stops(stop_loss=stop_loss,
                                                                              stop_atr=2.0)))
    assert _fills(res)[1] == (1, -side * 1000.0, level, reason, Phase.INTRABAR)
    assert res.trades["exit_reason"][0] == reason


@pytest.mark.parametrize("peak_high, exit_price, reason", [
    (140.0, 105.0, Reason.TRAILING_STOP),  # the peak 140 lifts the trailing level to 105 > 90
    (101.0, 90.0, Reason.ATR_STOP),  # peak 110 (bar 2's open): trailing 82.5 < ATR 100 - 2 x 5 = 90
])
def test_atr_and_trailing_stop(peak_high, exit_price, reason):
    market = _market([100.0, 100.0, 100.0], open=[100.0, 100.0, 110.0], high=[100.0, peak_high, 111.0],
                     low=[100.0, 99.0, 85.0], atr=[5.0, 5.0, 5.0])
    res = simulate(market, np.ones(3), SimParams(fill="close", stops=Stops(trailing_stop=0.25, stop_atr=2.0)))
    assert _fills(res)[1] == (2, -1000.0, exit_price, reason, Phase.INTRABAR)


# ---------------------------------------------------------------------------------------------
# splits


def test_split_while_holding_divides_the_distance():
    # bought 1000 at the close of bar 0 (ATR 4, k 1): level 96. A 2:1 split on bar 1: 2000 units,
    # entry 50, distance 2, level 48; bar 2's low 47.9 hits it (an undivided distance, level 46,
    # would not) -> 2000 sold at 48: equity 96000
    market = _market([100.0, 49.0, 48.2], open=[100.0, 50.0, 49.0], high=[100.0, 50.5, 49.5],
                     low=[100.0, 48.5, 47.9], atr=[4.0, 2.0, 2.0], split_ratio=[1.0, 2.0, 1.0])
    res = simulate(market, np.ones(3), SimParams(fill="close", stops=Stops(stop_atr=1.0)))
    assert _fills(res)[1] == (2, -2000.0, 48.0, Reason.ATR_STOP, Phase.INTRABAR)
    assert res.equity[2] == 96_000.0


def test_split_on_the_entry_bar_puts_the_atr_in_the_new_basis():
    # decided at the close of bar 0 (ATR 4 in the old basis); bar 1 is a 2:1 split's ex-date and
    # the order fills at its open, 50: distance 4 / 2 = 2, level 48 (unsplit: 46, not hit by 47.9)
    market = _market([100.0, 49.0, 48.2], open=[100.0, 50.0, 49.0], high=[100.0, 50.5, 49.5],
                     low=[100.0, 48.5, 47.9], atr=[4.0, 2.0, 2.0], split_ratio=[1.0, 2.0, 1.0])
    res = simulate(market, np.ones(3), SimParams(fill="open", stops=Stops(stop_atr=1.0)))
    assert _fills(res) == [(1, 2000.0, 50.0, Reason.SIGNAL, Phase.OPEN),
                           (2, -2000.0, 48.0, Reason.ATR_STOP, Phase.INTRABAR)]


# ---------------------------------------------------------------------------------------------
# no ATR, no ATR stop


@pytest.mark.parametrize("atr", [[NAN, NAN, NAN], [NAN, 1.0, 1.0]])
@pytest.mark.parametrize("fill", ["close", "open"])
def test_unknown_atr_at_entry_means_no_atr_stop(atr, fill):
    # the ATR of the bar before the opening fill is unknown: no ATR stop for that position, even
    # when the ATR is known later and the price collapses
    atr = atr if fill == "close" else [atr[0], atr[0], 1.0]
    market = _market([100.0, 100.0, 50.0], open=[100.0, 100.0, 60.0], low=[100.0, 100.0, 40.0], atr=atr)
    stopped = simulate(market, np.ones(3), SimParams(fill=fill, stops=Stops(stop_atr=1.0)))
    plain = simulate(market, np.ones(3), SimParams(fill=fill))
    assert (stopped.fills == plain.fills).all() and (stopped.equity == plain.equity).all()
    assert stopped.trades["exit_reason"][0] == -1  # still open


def test_atr_stop_off_ignores_the_atr():
    market, _ = _scenario("gap")
    off = simulate(market, np.ones(4), SimParams(fill="close"))
    assert off.units[-1, 0] == 1000.0 and len(off.fills) == 1


def test_a_new_position_gets_a_new_distance():
    # stopped at bar 2 (level 97); the target changes to -1 at bar 3 (close 98, ATR 0.5): a short of
    # 95000/98 units with level 98 + 1.5 x 0.5 = 98.75; bar 4's high 99 hits it
    market = _market([100.0, 100.0, 97.5, 98.0, 98.5], open=[100.0, 100.0, 99.0, 98.0, 98.2],
                     high=[100.0, 101.0, 99.5, 98.0, 99.0], low=[100.0, 99.0, 96.0, 98.0, 98.1],
                     atr=[2.0, 10.0, 10.0, 0.5, 0.5])
    res = simulate(market, np.array([1.0, 1.0, 1.0, -1.0, -1.0]), SimParams(fill="close", stops=Stops(stop_atr=1.5)))
    units = 97_000.0 / 98.0
    f = _fills(res)
    assert f[2][:4] == (3, pytest.approx(-units, rel=1e-12), 98.0, Reason.SIGNAL)
    assert f[3][:4] == (4, pytest.approx(units, rel=1e-12), 98.75, Reason.ATR_STOP)


# ---------------------------------------------------------------------------------------------
# a slow reference of the rule (one symbol, no costs, targets -1 / 0 / +1)


def _reference(o, h, lo, c, atr, target, k, fill):
    """Bars as Python lists; returns (equity per bar, fills as (bar, units, price, reason))."""
    n = len(c)
    cash, units, active, need, entry, dist, opened_at = CASH, 0.0, NAN, False, NAN, NAN, -1
    equity, fills = [], []

    def fill_at(t, p, r, phase):
        nonlocal cash, units, need, entry, dist, opened_at
        need = False
        e = cash + units * p
        desired = active * e / p if e > 0 else 0.0
        if abs(desired - units) <= 1e-9 * max(abs(desired), abs(units)):
            return
        if units != 0.0 and (desired == 0.0 or (desired > 0) != (units > 0)):  # close the old one
            cash += units * p
            fills.append((t, -units, p, Reason.SIGNAL))
            units = 0.0
        if desired != 0.0:
            cash -= desired * p
            fills.append((t, desired, p, Reason.SIGNAL))
            units, entry, opened_at = desired, p, (t if phase == "open" else -1)
            dist = k * atr[r]  # NaN: no ATR stop for this position

    def decide(t):
        nonlocal active, need
        if not math.isnan(target[t]) and target[t] != active:
            active, need = target[t], True

    for t in range(n):
        if fill == "open" and t > 0 and need:
            fill_at(t, o[t], t - 1, "open")
        if units != 0.0 and not math.isnan(dist):
            side = 1.0 if units > 0 else -1.0
            level = entry - side * dist
            price = None
            if opened_at != t and side * (o[t] - level) <= 0:
                price = o[t]
            elif side > 0 and lo[t] <= level:
                price = min(level, h[t])
            elif side < 0 and h[t] >= level:
                price = max(level, lo[t])
            if price is not None:
                cash += units * price
                fills.append((t, -units, price, Reason.ATR_STOP))
                units = 0.0  # stays flat until the target changes (need is already False)
        if fill == "close":
            decide(t)
            if need:
                fill_at(t, c[t], t, "close")
        equity.append(cash + units * c[t])
        if fill == "open":
            decide(t)
    return equity, fills


@st.composite
def single_symbol(draw):
    n = draw(st.integers(1, 40))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.03, n)))
    open_ = close * np.exp(rng.normal(0, 0.02, n))
    high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0, 0.02, n)))
    low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0, 0.02, n)))
    atr = np.where(rng.random(n) < 0.15, NAN, rng.uniform(0.5, 4.0, n))
    target = rng.choice([-1.0, 0.0, 1.0, NAN, NAN, NAN], n)
    k = draw(st.sampled_from([0.5, 1.0, 2.0]))
    fill = draw(st.sampled_from(["open", "close"]))
    return open_, high, low, close, atr, target, k, fill


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(single_symbol())
def test_atr_stop_matches_reference(case):
    open_, high, low, close, atr, target, k, fill = case
    market = Market.from_close(close, open=open_, high=high, low=low, atr=atr)
    res = simulate(market, target, SimParams(fill=fill, stops=Stops(stop_atr=k)))
    equity, fills = _reference(*(list(map(float, a)) for a in (open_, high, low, close, atr, target)), k, fill)
    np.testing.assert_allclose(res.equity, equity, rtol=1e-12)
    got = [(int(f["bar"]), float(f["units"]), float(f["price"]), int(f["reason"])) for f in res.fills]
    assert [(b, r) for b, _, _, r in got] == [(b, r) for b, _, _, r in fills]
    np.testing.assert_allclose([u for _, u, _, _ in got], [u for _, u, _, _ in fills], rtol=1e-12)
    np.testing.assert_allclose([p for _, _, p, _ in got], [p for _, _, p, _ in fills], rtol=1e-15)


# ---------------------------------------------------------------------------------------------
# point in time: results up to T do not change when the market is cut at T


def _cut(market: Market, t: int) -> Market:
    return Market(ts=market.ts[:t], symbols=market.symbols, **{
        name: getattr(market, name)[:t] for name in ("open", "high", "low", "close", "volume", "split_ratio",
                                                      "dividend", "atr", "sigma", "adv")})


@st.composite
def markets(draw, max_n=30):
    n = draw(st.integers(1, max_n))
    m = draw(st.integers(1, 3))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    close = 50 * np.exp(np.cumsum(rng.normal(0, 0.04, (n, m)), axis=0))
    open_ = close * np.exp(rng.normal(0, 0.03, (n, m)))
    high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0, 0.02, (n, m))))
    low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0, 0.02, (n, m))))
    missing = rng.random((n, m)) < draw(st.sampled_from([0.0, 0.1]))
    for a in (open_, high, low, close):
        a[missing] = np.nan
    split = np.where((rng.random((n, m)) < 0.08) & ~missing, rng.choice([2.0, 0.5], (n, m)), 1.0)
    dividend = np.where((rng.random((n, m)) < 0.08) & ~missing, 0.5, 0.0)
    atr = np.where(rng.random((n, m)) < 0.1, np.nan, rng.uniform(0.2, 3.0, (n, m)))
    market = Market(ts=np.arange(n), symbols=tuple(f"S{i}" for i in range(m)), open=open_, high=high,
                    low=low, close=close, volume=np.round(rng.uniform(100, 5_000, (n, m))), split_ratio=split,
                    dividend=dividend, atr=atr, sigma=np.full((n, m), 0.02), adv=np.full((n, m), 2_000.0))
    target = rng.choice([np.nan, -1.0, -0.5, 0.0, 0.5, 1.0], (n, m))
    return market, target


@st.composite
def truncation_cases(draw):
    market, target = draw(markets())
    params = SimParams(
        fill=draw(st.sampled_from(["open", "close"])),
        leverage=draw(st.sampled_from([1.0, 2.0])),
        rebalance_every=draw(st.sampled_from([0, 2])),
        costs=Costs(fees_bps=draw(st.sampled_from([0.0, 20.0])), slippage_atr=draw(st.sampled_from([0.0, 0.1])),
                    participation=draw(st.sampled_from([math.inf, 0.3]))),
        stops=Stops(stop_atr=draw(st.sampled_from([0.5, 1.0, 3.0])),
                    stop_loss=draw(st.sampled_from([NAN, 0.05])), trailing_stop=draw(st.sampled_from([NAN, 0.08])),
                    take_profit=draw(st.sampled_from([NAN, 0.1]))),
        drawdown=Drawdown(limit=draw(st.sampled_from([NAN, 0.05])), scale=0.5, cooldown=3),
    )
    n = market.shape[0]
    return market, target, params, draw(st.integers(0, n - 1)), draw(st.integers(0, n))


def assert_truncation_invariant(market, target, params, start, cut):
    """Every per-bar result up to ``cut`` and every fill before it equal the full run's, bit for bit."""
    full = simulate(market, target, params, start=start)
    part = simulate(_cut(market, cut), target[:cut], params, start=min(start, cut))
    for name in ("equity", "cash", "units", "marks", "fees", "slippage", "impact", "risk_scale"):
        np.testing.assert_array_equal(getattr(part, name), getattr(full, name)[:cut], err_msg=name)
    np.testing.assert_array_equal(part.fills, full.fills[full.fills["bar"] < cut])
    closed = part.trades[part.trades["exit_bar"] >= 0]
    np.testing.assert_array_equal(closed, full.trades[:len(part.trades)][part.trades["exit_bar"] >= 0])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(truncation_cases())
def test_truncation(case):
    assert_truncation_invariant(*case)
