"""The drawdown control of the backtest kernel: hand-built scenarios with a known trigger bar,
flatten (scale 0) and partial scale (0.5), the cooldown re-entry and the new high-water mark, in
both fill modes; its equivalence with a plain run on the scaled targets (hypothesis); point-in-time
truncation; and "off" meaning exactly off."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from alphatwin.backtest.engine import simulate
from alphatwin.backtest.enums import Phase, Reason
from alphatwin.backtest.params import Costs, Drawdown, Market, SimParams, Stops
from tests.backtest.test_atr_stop import assert_truncation_invariant, markets

NAN = math.nan


def _fills(result):
    return [(int(f["bar"]), int(f["col"]), float(f["units"]), float(f["price"]), int(f["reason"]),
             int(f["phase"])) for f in result.fills]


def _bars(close, open_=None):
    close = np.asarray(close, dtype=float)
    open_ = close if open_ is None else np.asarray(open_, dtype=float)
    return Market.from_close(close, open=open_, high=np.maximum(open_, close), low=np.minimum(open_, close))


# ---------------------------------------------------------------------------------------------
# hand-built scenarios


def test_flatten_at_close_cooldown_and_new_high_water_mark():
    # fill="close", limit 10%, scale 0 (flatten), cooldown 2; always long 100%.
    # bar 0: 1000 units at 100. bar 1: equity 110000 (hwm). bar 2: 100000 > 99000. bar 3: 95000
    # <= 99000 -> scale 0, sell 1000 at 95 (reason drawdown). bar 4: scaled (1 bar since). bar 5:
    # 2 bars -> hwm = equity 95000, scale 1, buy 95000/99 at 99 (drawdown). bar 6: 94040 > 85500 (it
    # would trigger against the old hwm's 99000). bar 7: hwm 95000/99 x 110. bar 8: 95000/99 x 94 =
    # 90202 <= 0.9 x 105556 = 95000 -> flatten again.
    close = [100.0, 110.0, 100.0, 95.0, 97.0, 99.0, 98.0, 110.0, 94.0]
    res = simulate(_bars(close), np.ones(9), SimParams(fill="close", drawdown=Drawdown(0.1, 0.0, 2)))
    u = 95_000.0 / 99.0
    np.testing.assert_array_equal(res.risk_scale, [1, 1, 1, 0, 0, 1, 1, 1, 0])
    np.testing.assert_allclose(res.units[:, 0], [1000, 1000, 1000, 0, 0, u, u, u, 0], rtol=1e-12)
    np.testing.assert_allclose(res.equity, [100_000, 110_000, 100_000, 95_000, 95_000, 95_000, u * 98, u * 110,
                                            u * 94], rtol=1e-12)
    want = [(0, 0, 1000.0, 100.0, Reason.SIGNAL), (3, 0, -1000.0, 95.0, Reason.DRAWDOWN),
            (5, 0, u, 99.0, Reason.DRAWDOWN), (8, 0, -u, 94.0, Reason.DRAWDOWN)]
    got = _fills(res)
    assert [(b, c, p, r) for b, c, _, p, r, _ in got] == [(b, c, p, r) for b, c, _, p, r in want]
    np.testing.assert_allclose([f[2] for f in got], [w[2] for w in want], rtol=1e-12)
    assert {f[5] for f in got} == {Phase.CLOSE}


def test_half_scale_at_open_cooldown_and_new_high_water_mark():
    # fill="open", limit 10%, scale 0.5, cooldown 3; always long 100%.
    # open 1: 1000 at 100; close 1: 110000 (hwm). close 2: 98000 <= 99000 -> scale .5 from the
    # decision at bar 2: open 3 (97): equity 97000, want .5 x 97000 / 97 = 500 -> sell 500 at 97
    # (drawdown); cash 48500. closes 3-5: 96500, 96000, 98500; bar 5 = 3 bars since -> hwm 98500,
    # scale 1: open 6 (101): equity 99000, want 99000/101 -> buy 99000/101 - 500 (drawdown).
    # close 6: 99000/101 x 102 = hwm; close 7: x 97 = 95079 > 0.9 x 99980 (old hwm: 99000 -> would trigger)
    open_ = [100.0, 100.0, 105.0, 97.0, 96.0, 95.0, 101.0, 103.0]
    close = [100.0, 110.0, 98.0, 96.0, 95.0, 100.0, 102.0, 97.0]
    res = simulate(_bars(close, open_), np.ones(8), SimParams(fill="open", drawdown=Drawdown(0.1, 0.5, 3)))
    u6 = 99_000.0 / 101.0
    np.testing.assert_array_equal(res.risk_scale, [1, 1, 0.5, 0.5, 0.5, 1, 1, 1])
    np.testing.assert_allclose(res.units[:, 0], [0, 1000, 1000, 500, 500, 500, u6, u6], rtol=1e-12)
    np.testing.assert_allclose(res.equity[3:], [96_500, 96_000, 98_500, u6 * 102, u6 * 97], rtol=1e-12)
    got = _fills(res)
    assert [(b, r, ph) for b, _, _, _, r, ph in got] == [
        (1, Reason.SIGNAL, Phase.OPEN), (3, Reason.DRAWDOWN, Phase.OPEN), (6, Reason.DRAWDOWN, Phase.OPEN)]
    np.testing.assert_allclose([f[2] for f in got], [1000, -500, u6 - 500], rtol=1e-12)
    np.testing.assert_array_equal([f[3] for f in got], [100, 97, 101])


@pytest.mark.parametrize("scale", [0.0, 0.5])
@pytest.mark.parametrize("fill", ["close", "open"])
def test_trigger_and_reentry_bars_in_both_fill_modes(fill, scale):
    # each open is the close before, so both modes hold 1000 units bought at 100 and see the same
    # closes: 110000 (hwm), 104000, 98000 <= 99000 -> triggered at the close of bar 3; cooldown 2 ->
    # restored at the close of bar 5. Close fills trade at those closes (98, 96), open fills at the
    # next opens (the same prices, a bar later).
    close = [100.0, 110.0, 104.0, 98.0, 97.0, 96.0, 100.0, 101.0, 103.0]
    open_ = [100.0] + close[:-1]
    res = simulate(_bars(close, open_), np.ones(9), SimParams(fill=fill, drawdown=Drawdown(0.1, scale, 2)))
    np.testing.assert_array_equal(res.risk_scale, [1, 1, 1, scale, scale, 1, 1, 1, 1])
    lag = 0 if fill == "close" else 1
    dd = [f for f in _fills(res) if f[4] == Reason.DRAWDOWN]
    assert [(f[0], f[3]) for f in dd] == [(3 + lag, 98.0), (5 + lag, 96.0)]
    cash = (1 - scale) * 1000 * 98.0
    restored = cash + scale * 1000 * 96.0  # the equity the re-entry is sized on
    np.testing.assert_allclose([f[2] for f in dd], [-(1 - scale) * 1000, restored / 96.0 - scale * 1000], rtol=1e-12)
    assert res.units[5 + lag, 0] == pytest.approx(restored / 96.0, rel=1e-12)


def test_every_symbol_is_rescaled_even_without_a_new_target():
    # targets only on bar 0 (NaN after: keep them); A falls to 79: equity 89500 <= 90000 at bar 1
    # -> scale .5: A wants .25 x 89500 / 79, B .25 x 89500 / 100, both with reason drawdown
    close = np.array([[100.0, 100.0], [79.0, 100.0], [79.0, 100.0]])
    target = np.array([[0.5, 0.5], [NAN, NAN], [NAN, NAN]])
    res = simulate(_bars(close), target, SimParams(fill="close", drawdown=Drawdown(0.1, 0.5, 5)))
    np.testing.assert_allclose(res.units[1], [0.25 * 89_500 / 79, 0.25 * 89_500 / 100], rtol=1e-12)
    assert [(f[0], f[1], f[4]) for f in _fills(res)[2:]] == [(1, 0, Reason.DRAWDOWN), (1, 1, Reason.DRAWDOWN)]


@pytest.mark.parametrize("last, triggered", [(50.0, True), (50.01, False)])
def test_the_limit_is_inclusive(last, triggered):
    # 1000 units at 100, limit 50%: equity 50000 = 100000 x (1 - 0.5) triggers, 50010 does not
    res = simulate(_bars([100.0, last]), np.ones(2), SimParams(fill="close", drawdown=Drawdown(0.5, 0.0, 3)))
    assert res.risk_scale[1] == (0.0 if triggered else 1.0)


def test_close_mode_marks_before_that_close_fills():
    # fill="close" with 6% fees: the all-in buy at the close of bar 0 pays 5660 of fees, so the
    # equity after bar 0 is 94340 (below 95000), but the control saw the 100000 marked before
    # that close's fills: it triggers at bar 1, not at bar 0
    params = SimParams(fill="close", costs=Costs(fees_bps=600), drawdown=Drawdown(0.05, 0.5, 5))
    res = simulate(_bars([100.0, 100.0, 100.0]), np.ones(3), params)
    units = 100_000.0 / (100.0 * 1.06)
    assert res.equity[0] == pytest.approx(100_000 - 0.06 * units * 100, rel=1e-12)
    np.testing.assert_array_equal(res.risk_scale, [1.0, 0.5, 0.5])


def test_a_stopped_symbol_is_not_reopened_by_the_drawdown_control():
    # regression: every rescale lifted the stops, so the control *opened* positions a stop had
    # closed: half positions on the scale-down (more risk from the rule meant to cut it), full
    # ones at the re-entry. Only a new target lifts a stop (docs/risk/drawdown_control.md).
    # A (0.5) gaps through its 5% stop at bar 2 (exit 94), B (0.5) at bar 3 (exit 80): equity
    # 47000 + 40000 = 87000 <= 95000 -> scale .5 at bar 3, re-entry at bar 6. Both stay flat.
    close = np.array([[100.0, 100.0], [100.0, 100.0], [94.0, 100.0], [94.0, 80.0], [94.0, 80.0],
                      [94.0, 80.0], [94.0, 80.0], [94.0, 80.0]])
    params = SimParams(fill="close", stops=Stops(stop_loss=0.05), drawdown=Drawdown(0.05, 0.5, 3))
    res = simulate(_bars(close), np.full((8, 2), 0.5), params)
    np.testing.assert_array_equal(res.risk_scale, [1, 1, 1, 0.5, 0.5, 0.5, 1, 1])
    assert [(f[0], f[1], f[4]) for f in _fills(res)] == [
        (0, 0, Reason.SIGNAL), (0, 1, Reason.SIGNAL), (2, 0, Reason.STOP_LOSS), (3, 1, Reason.STOP_LOSS)]
    assert (res.units[3:] == 0).all()
    # a new target lifts A's stop during the scaled period: -0.5 at bar 4 -> -0.25 x 87000 / 94
    # (signal); the re-entry at bar 6 -> -0.5 x 87000 / 94 (drawdown). B, still stopped, stays flat.
    target = np.full((8, 2), 0.5)
    target[4:, 0] = [-0.5, NAN, NAN, NAN]
    res = simulate(_bars(close), target, params)
    later = [f for f in _fills(res) if f[0] >= 4]
    assert [(f[0], f[1], f[4]) for f in later] == [(4, 0, Reason.SIGNAL), (6, 0, Reason.DRAWDOWN)]
    np.testing.assert_allclose(res.units[[4, 6], 0], [-0.25 * 87_000 / 94, -0.5 * 87_000 / 94], rtol=1e-12)
    assert (res.units[3:, 1] == 0).all()


def test_high_water_mark_starts_at_the_initial_cash_on_the_first_bar_of_the_run():
    # bars before `start` are history: hwm = init_cash = 100000; bought at 100 on bar 2,
    # 89000 <= 90000 at bar 3
    params = SimParams(fill="close", drawdown=Drawdown(0.1, 0.0, 9))
    res = simulate(_bars([50.0, 60.0, 100.0, 89.0]), np.ones(4), params, start=2)
    np.testing.assert_array_equal(res.risk_scale, [1, 1, 1, 0])


# ---------------------------------------------------------------------------------------------
# properties


@st.composite
def dd_cases(draw, stops=False, constant_targets=False):
    market, target = draw(markets(max_n=40))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    n, m = market.shape
    if constant_targets:  # one target per symbol, repeated or NaN (no new target)
        target = np.where(rng.random((n, m)) < 0.3, NAN, rng.choice([-0.5, 0.3, 0.5, 1.0], m))
    stop = Stops(stop_loss=draw(st.sampled_from([NAN, 0.03])), trailing_stop=draw(st.sampled_from([NAN, 0.05])),
                 take_profit=draw(st.sampled_from([NAN, 0.1])), stop_atr=draw(st.sampled_from([NAN, 1.0]))) \
        if stops else Stops()
    params = SimParams(
        fill=draw(st.sampled_from(["open", "close"])),
        init_cash=draw(st.sampled_from([10_000.0, 100_000.0])),
        whole_units=draw(st.booleans()),
        leverage=draw(st.sampled_from([1.0, 2.0])),
        rebalance_every=draw(st.sampled_from([0, 1, 3])),
        costs=Costs(fees_bps=draw(st.sampled_from([0.0, 10.0])), fee_min=draw(st.sampled_from([0.0, 5.0])),
                    slippage_bps=draw(st.sampled_from([0.0, 5.0])),
                    participation=draw(st.sampled_from([math.inf, 0.3]))),
        stops=stop,
        drawdown=Drawdown(limit=draw(st.sampled_from([0.01, 0.03, 0.1])), scale=draw(st.sampled_from([0.0, 0.25, 0.5])),
                          cooldown=draw(st.integers(1, 5))),
    )
    return market, target, params, draw(st.integers(0, max(0, n - 1)))


def scaled_targets(target: np.ndarray, scale: np.ndarray, start: int) -> np.ndarray:
    """The targets a run without the control needs to reproduce one with it.

    With ``s[d]`` = risk_scale[d] (the scale the decision at bar d uses, in both fill modes) and
    ``raw`` the last non-NaN target up to d (from ``start``): ``target[d] * s[d]`` where the target
    is not NaN; ``raw * s[d]`` where it is NaN, the scale changed at d and that changes the active
    target ``raw * s[d - 1]`` (the control re-targets every symbol); NaN (keep) elsewhere."""
    n, m = target.shape
    out = np.full((n, m), np.nan)
    raw = np.full(m, np.nan)
    prev = 1.0
    for d in range(start, n):
        s = scale[d]
        for j in range(m):
            if not math.isnan(target[d, j]):
                raw[j] = target[d, j]
                out[d, j] = target[d, j] * s
            elif s != prev and not math.isnan(raw[j]) and raw[j] * s != raw[j] * prev:
                out[d, j] = raw[j] * s
        prev = s
    return out


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(dd_cases())
def test_control_equals_a_plain_run_on_the_scaled_targets(case):
    """Without stops, a run with the control and a run without it on ``scaled_targets`` (built from
    the first run's risk_scale) are identical **bit for bit**: equity, cash, units, marks, costs,
    every fill and trade, but the fills' reason, which is ``drawdown`` in the first where the
    second says ``signal`` (the same orders, created by a change of scale rather than of target).
    Exact because the kernel's active target is the same float product ``target x scale``.
    With stops no such identity exists: a change of scale does not lift a stop (see
    test_constant_targets_a_stop_is_final), while a changed target always does."""
    market, target, params, start = case
    on = simulate(market, target, params, start=start)
    plain = replace(params, drawdown=Drawdown())
    off = simulate(market, scaled_targets(target, on.risk_scale, start), plain, start=start)
    for name in ("equity", "cash", "units", "marks", "fees", "slippage", "impact"):
        np.testing.assert_array_equal(getattr(on, name), getattr(off, name), err_msg=name)
    assert (off.risk_scale == 1).all()
    fields = [f for f in on.fills.dtype.names if f != "reason"]
    np.testing.assert_array_equal(on.fills[fields], off.fills[fields])
    pairs = set(zip(on.fills["reason"].tolist(), off.fills["reason"].tolist()))
    assert all(a == b or (a, b) == (Reason.DRAWDOWN, Reason.SIGNAL) for a, b in pairs), pairs
    trades = [f for f in on.trades.dtype.names if f != "exit_reason"]
    np.testing.assert_array_equal(on.trades[trades], off.trades[trades])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(dd_cases(stops=True, constant_targets=True))
def test_constant_targets_a_stop_is_final(case):
    """With one target per symbol for the whole run, a stop exit is the symbol's last fill,
    whatever the drawdown control does (scale-downs and re-entries included): a stopped symbol
    stays flat until its target changes (docs/backtest.md#stops)."""
    market, target, params, start = case
    res = simulate(market, target, params, start=start)
    stop_reasons = [Reason.STOP_LOSS, Reason.TAKE_PROFIT, Reason.TRAILING_STOP, Reason.ATR_STOP]
    for j in range(market.shape[1]):
        f = res.fills[res.fills["col"] == j]
        hit = np.flatnonzero(np.isin(f["reason"], stop_reasons))
        if hit.size:
            assert hit[0] == len(f) - 1, f[["bar", "units", "reason"]]
            assert (res.units[f["bar"][hit[0]]:, j] == 0).all()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(dd_cases(stops=True), st.integers(0, 40))
def test_truncation(case, cut):
    """Cutting the market and the targets at T leaves everything up to T identical (equity,
    cash, units, marks, costs, risk_scale, fills, closed trades), bit for bit."""
    market, target, params, start = case
    assert_truncation_invariant(market, target, params, start, min(cut, market.shape[0]))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(dd_cases(stops=True))
def test_off_is_exactly_off(case):
    """limit NaN: risk_scale all 1; and a limit never reached changes nothing, bit for bit."""
    market, target, params, start = case
    off = simulate(market, target, replace(params, drawdown=Drawdown()), start=start)
    assert (off.risk_scale == 1).all()
    far = simulate(market, target, replace(params, drawdown=Drawdown(0.999, 0.0, 1)),
                   start=start)
    assume((far.risk_scale == 1).all())
    for name in ("equity", "cash", "units", "marks", "fees", "slippage", "impact"):
        np.testing.assert_array_equal(getattr(far, name), getattr(off, name), err_msg=name)
    np.testing.assert_array_equal(far.fills, off.fills)
    np.testing.assert_array_equal(far.trades, off.trades)


def test_drawdown_settings_are_checked():
    from alphatwin.errors import InputError

    for bad in (dict(limit=0.0), dict(limit=1.0), dict(limit=0.1, scale=1.0), dict(limit=0.1, scale=-0.1),
                dict(limit=0.1, cooldown=0), dict(limit=0.1, cooldown=1.5)):
        with pytest.raises(InputError):
            Drawdown(**bad)
    assert not Drawdown().on and Drawdown(0.2).on
