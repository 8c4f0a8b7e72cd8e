"""Hand-computed scenarios pinning the pure-Python reference of the backtest (docs/backtest.md).

Each scenario is a few bars; the expected numbers are worked out in the comments.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from alphatwin.backtest.enums import Phase, Reason
from alphatwin.backtest.params import Costs, Market, SimParams, Stops
from tests.backtest.reference import reference_simulate

NAN = math.nan


def approx(x):
    return pytest.approx(x, rel=1e-12, abs=1e-9)


def market(close, **arrays) -> Market:
    return Market.from_close(np.array(close, dtype=float),
                             **{k: np.array(v, dtype=float) for k, v in arrays.items()})


def targets(*rows) -> np.ndarray:
    out = np.array(rows, dtype=float)
    return out[:, None] if out.ndim == 1 else out


def test_all_in_buy_with_fees_gets_cash_over_p_times_1_plus_f():
    # fill="open" (default): the target 1 at the close of bar 0 fills at the open of bar 1 (100).
    # f = 10 bps = 0.001: k = 1000 / (10 * 100 * 1.001) < 1, the largest increase is
    # (1000 - 0) / (100 * 1.001) = 9.99000999... = cash / (p * (1 + f)), vectorbt's all-in size.
    mk = market([100, 100, 110])
    out = reference_simulate(mk, targets(1, NAN, NAN),
                             SimParams(init_cash=1000, costs=Costs(fees_bps=10)))
    units = 1000 / (100 * 1.001)
    [fill] = out["fills"]
    assert fill["bar"] == 1 and fill["phase"] == Phase.OPEN and fill["reason"] == Reason.SIGNAL
    assert fill["units"] == approx(units)
    assert fill["fee"] == approx(0.001 * units * 100)  # 0.999000999
    assert out["cash"] == approx([1000, 0, 0])  # 1000 - 999.000999 - 0.999000999
    assert out["equity"] == approx([1000, units * 100, units * 110])  # 999.000999, 1098.9011
    assert out["fees"] == approx([0, 0.001 * units * 100, 0])
    [trade] = out["trades"]
    # still open: pnl = -999.000999 - 0.999001 + 9.99001 * 110 = 98.9011; ret = 98.9011 / 999.000999
    assert trade["exit_bar"] == -1 and trade["exit_reason"] == -1 and trade["exit_price"] == 110
    assert trade["pnl"] == approx(units * 110 - 1000)
    assert trade["ret"] == approx((units * 110 - 1000) / (units * 100))


def test_fill_open_at_next_open_fill_close_at_same_close():
    close, open_ = [100, 120, 130], [90, 110, 125]
    mk = market(close, open=open_)
    tgt = targets(1, NAN, NAN)
    # close: 1000 / 100 = 10 units at the close of bar 0 -> equity 1000, 1200, 1300
    out = reference_simulate(mk, tgt, SimParams(init_cash=1000, fill="close"))
    [fill] = out["fills"]
    assert (fill["bar"], fill["phase"], fill["price"], fill["units"]) == (0, Phase.CLOSE, 100, 10)
    assert out["equity"] == approx([1000, 1200, 1300])
    # open: the same target fills at the open of bar 1 (110): 1000/110 = 9.0909 units
    # -> equity 1000, 9.0909 * 120 = 1090.909, 9.0909 * 130 = 1181.818
    out = reference_simulate(mk, tgt, SimParams(init_cash=1000, fill="open"))
    [fill] = out["fills"]
    assert (fill["bar"], fill["phase"], fill["price"]) == (1, Phase.OPEN, 110)
    assert fill["units"] == approx(1000 / 110)
    assert out["equity"] == approx([1000, 1000 / 110 * 120, 1000 / 110 * 130])
    assert [u[0] for u in out["units"]] == approx([0, 1000 / 110, 1000 / 110])


def test_stop_loss_intrabar_and_gap_through_at_the_open():
    # 10 units bought at the close of bar 0 (100); sl = 10% -> SL level 90.
    params = SimParams(init_cash=1000, fill="close", stops=Stops(stop_loss=0.1))
    tgt = targets(1, NAN, NAN, NAN)
    # bar 1: open 100, low 95 > 90: holds. bar 2: open 96 > 90, low 88 <= 90 -> exit at 90.
    mk = market([100, 100, 92, 90], open=[100, 100, 96, 90], high=[100, 101, 97, 91],
                low=[100, 95, 88, 89])
    out = reference_simulate(mk, tgt, params)
    stop = out["fills"][1]
    assert (stop["bar"], stop["units"], stop["base_price"], stop["price"]) == (2, -10, 90, 90)
    assert stop["reason"] == Reason.STOP_LOSS and stop["phase"] == Phase.INTRABAR
    assert out["equity"] == approx([1000, 1000, 900, 900])  # cash 10 * 90
    [trade] = out["trades"]
    assert (trade["exit_bar"], trade["exit_reason"], trade["n_fills"]) == (2, Reason.STOP_LOSS, 2)
    assert trade["pnl"] == approx(-100) and trade["ret"] == approx(-0.1)
    # gap: bar 2 opens at 85 <= 90 -> exit at the open (85), recorded with phase INTRABAR
    mk = market([100, 100, 82, 90], open=[100, 100, 85, 90], high=[100, 101, 86, 91],
                low=[100, 95, 80, 89])
    out = reference_simulate(mk, tgt, params)
    stop = out["fills"][1]
    assert (stop["bar"], stop["base_price"], stop["price"]) == (2, 85, 85)
    assert stop["reason"] == Reason.STOP_LOSS and stop["phase"] == Phase.INTRABAR
    assert out["equity"] == approx([1000, 1000, 850, 850])
    assert out["trades"][0]["ret"] == approx(-0.15)


def test_take_profit_and_stop_first_when_both_inside_the_bar():
    # 10 units at 100 (close of bar 0); tp = 20% -> 120. bar 1: high 115 < 120.
    # bar 2: open 113 < 120, high 125 >= 120 -> exit at 120: cash 1200.
    mk = market([100, 110, 118], open=[100, 108, 113], high=[100, 115, 125], low=[100, 105, 112])
    tgt = targets(1, NAN, NAN)
    out = reference_simulate(mk, tgt, SimParams(init_cash=1000, fill="close",
                                                stops=Stops(take_profit=0.2, stop_loss=0.1)))
    stop = out["fills"][1]
    assert (stop["bar"], stop["base_price"], stop["reason"]) == (2, 120, Reason.TAKE_PROFIT)
    assert out["equity"] == approx([1000, 1100, 1200])
    assert out["trades"][0]["ret"] == approx(0.2)
    # same, but bar 2's low (85) also reaches the SL (90): the stop is assumed first -> 90
    mk = market([100, 110, 118], open=[100, 108, 113], high=[100, 115, 125], low=[100, 105, 85])
    out = reference_simulate(mk, tgt, SimParams(init_cash=1000, fill="close",
                                                stops=Stops(take_profit=0.2, stop_loss=0.1)))
    stop = out["fills"][1]
    assert (stop["bar"], stop["base_price"], stop["reason"]) == (2, 90, Reason.STOP_LOSS)
    assert out["equity"] == approx([1000, 1100, 900])


def test_trailing_stop_uses_the_peak_before_the_bar_high():
    # 10 units at 100; tsl = 10%, sl = 5% (SL level 95).
    # bar 1: peak = max(100, open 105) = 105 -> TSL 94.5 < SL 95: level 95; low 104 holds.
    #        (had the bar's own high 120 raised the peak first, TSL = 108 and low 104 would exit)
    #        then peak = 120.
    # bar 2: peak = max(120, open 112) = 120 -> TSL 108 > 95; open 112 > 108; low 107 <= 108
    #        -> exit at 108, TRAILING_STOP: cash 1080.
    mk = market([100, 115, 110, 110], open=[100, 105, 112, 110], high=[100, 120, 113, 110],
                low=[100, 104, 107, 110])
    out = reference_simulate(mk, targets(1, NAN, NAN, NAN),
                             SimParams(init_cash=1000, fill="close",
                                       stops=Stops(trailing_stop=0.1, stop_loss=0.05)))
    assert len(out["fills"]) == 2
    stop = out["fills"][1]
    assert (stop["bar"], stop["reason"], stop["phase"]) == (2, Reason.TRAILING_STOP, Phase.INTRABAR)
    assert stop["base_price"] == approx(108)
    assert out["equity"] == approx([1000, 1150, 1080, 1080])
    assert out["trades"][0]["exit_reason"] == Reason.TRAILING_STOP


def test_after_a_stop_no_reentry_until_the_target_changes_direction():
    # rebalance_every = 1, target 1 at bars 0..2, 0.5 at bar 3, 0 at bar 4, 0.5 at bar 5.
    # bar 1: low 85 <= SL 90 -> exit at 90, cash 900. bars 1, 2: same target, rebalancing bars,
    # but stopped -> no order. bar 3: 0.5, a new size of the same sign -> still stopped, no order.
    # bar 4: 0, a new direction, clears the stop (flat already: no fill).
    # bar 5: 0.5 -> SIGNAL: 0.5 * 900 / 100 = 4.5 units, cash 450.
    mk = market([100, 85, 90, 100, 100, 100], open=[100, 100, 90, 100, 100, 100],
                high=[100, 100, 90, 100, 100, 100], low=[100, 85, 90, 100, 100, 100])
    out = reference_simulate(mk, targets(1, 1, 1, 0.5, 0, 0.5),
                             SimParams(init_cash=1000, fill="close", rebalance_every=1,
                                       stops=Stops(stop_loss=0.1)))
    assert [(f["bar"], f["reason"]) for f in out["fills"]] == [
        (0, Reason.SIGNAL), (1, Reason.STOP_LOSS), (5, Reason.SIGNAL)]
    assert out["fills"][2]["units"] == approx(4.5)
    assert out["equity"] == approx([1000, 900, 900, 900, 900, 900])
    assert out["cash"] == approx([0, 900, 900, 900, 900, 450])
    assert [u[0] for u in out["units"]] == approx([10, 0, 0, 0, 0, 4.5])
    assert len(out["trades"]) == 2 and out["trades"][1]["exit_bar"] == -1


def test_short_pays_the_dividend():
    # bar 0: target -0.5 of 1000 at 100 -> sell 5, cash 1500, equity 1500 - 500 = 1000.
    # bar 1: dividend 2 -> the short pays 5 * 2 = 10: cash 1490; close 90 -> equity 1490 - 450 = 1040.
    # bar 2: target 0 -> buy 5 back at 95: cash 1490 - 475 = 1015.
    mk = market([100, 90, 95], dividend=[0, 2, 0])
    out = reference_simulate(mk, targets(-0.5, NAN, 0), SimParams(init_cash=1000, fill="close"))
    assert [f["units"] for f in out["fills"]] == approx([-5, 5])
    assert out["cash"] == approx([1500, 1490, 1015])
    assert out["equity"] == approx([1000, 1040, 1015])
    [trade] = out["trades"]
    # pnl = (500 - 475) - 0 + (-10) = 15; ret = 15 / (5 * 100) = 0.03
    assert trade["quantity"] == approx(-5) and trade["dividends"] == approx(-10)
    assert (trade["entry_price"], trade["exit_price"]) == (100, 95)
    assert trade["pnl"] == approx(15) and trade["ret"] == approx(0.03)
    assert trade["exit_reason"] == Reason.SIGNAL and trade["n_fills"] == 2


def test_split_2_for_1_while_holding():
    # units target 10 at 100 (all the cash). bar 1: split 2 -> 20 units, entry 50, SL (10%) 45;
    # low 49 holds; equity 20 * 51 = 1020. bar 2: 20 * 50 = 1000. bar 3: open 46 > 45,
    # low 44 <= 45 -> exit 20 at 45: cash 900.
    mk = market([100, 51, 50, 44], open=[100, 50, 50, 46], high=[100, 52, 51, 47],
                low=[100, 49, 49, 44], split_ratio=[1, 2, 1, 1])
    out = reference_simulate(mk, targets(10, NAN, NAN, NAN),
                             SimParams(init_cash=1000, fill="close", target_kind="units",
                                       stops=Stops(stop_loss=0.1)))
    assert [u[0] for u in out["units"]] == approx([10, 20, 20, 0])
    assert out["equity"] == approx([1000, 1020, 1000, 900])
    stop = out["fills"][1]
    assert (stop["units"], stop["base_price"], stop["reason"]) == (-20, 45, Reason.STOP_LOSS)
    [trade] = out["trades"]
    # quantity and entry price split adjusted: 20 at 50; pnl = -1000 + 900 = -100; ret = -0.1
    assert trade["quantity"] == approx(20) and trade["entry_price"] == approx(50)
    assert trade["exit_price"] == approx(45)
    assert trade["pnl"] == approx(-100) and trade["ret"] == approx(-0.1)


def test_participation_cap_leaves_a_pending_rest_filled_next_bar():
    # units target 10; participation 25% of the last completed bar's volume. bar 1's open: cap
    # 0.25 * 16 (bar 0) = 4 -> buy 4 at 100 (cash 9600), 6 pending. decision at bar 1: target NaN,
    # pending -> PENDING order. bar 2's open: cap 0.25 * 100 (bar 1) = 25 -> buy 6 at 101 (cash 8994).
    mk = market([100, 100.5, 101.5, 102], open=[100, 100, 101, 102], volume=[16, 100, 1000, 1000])
    out = reference_simulate(mk, targets(10, NAN, NAN, NAN),
                             SimParams(init_cash=10_000, target_kind="units",
                                       costs=Costs(participation=0.25)))
    assert [(f["bar"], f["units"], f["price"], f["reason"]) for f in out["fills"]] == [
        (1, 4, 100, Reason.SIGNAL), (2, 6, 101, Reason.PENDING)]
    # equity: 10000; 9600 + 4 * 100.5 = 10002; 8994 + 10 * 101.5 = 10009; 8994 + 1020 = 10014
    assert out["equity"] == approx([10_000, 10_002, 10_009, 10_014])
    [trade] = out["trades"]
    # entry = (4 * 100 + 6 * 101) / 10 = 100.6
    assert trade["entry_price"] == approx(100.6) and trade["n_fills"] == 2
    assert trade["entry_bar"] == 1 and trade["exit_bar"] == -1


def test_two_symbols_share_the_cash_scaled_by_one_factor():
    # weights 0.5/0.5 of 1000, prices A 100, B 50, fees 1%: desired 5 A and 10 B;
    # together they need 5 * 100 * 1.01 + 10 * 50 * 1.01 = 1010 > 1000 -> k = 1000/1010:
    # A 4.950495 (cost 495.0495 + fee 4.950495 -> cash 500), B 9.900990 (the cap
    # 500 / (50 * 1.01) = 9.900990 is the same) -> cash 0, equity 1000 / 1.01 = 990.099.
    close = np.array([[100, 50], [110, 50]], dtype=float)
    out = reference_simulate(market(close), targets([0.5, 0.5], [NAN, NAN]),
                             SimParams(init_cash=1000, fill="close", costs=Costs(fees_bps=100)))
    k = 1000 / 1010
    assert [(f["col"], f["units"]) for f in out["fills"]] == [(0, approx(5 * k)), (1, approx(10 * k))]
    assert out["fees"] == approx([10 * k / 100 * 100, 0])  # 0.01 * 495.05 * 2 = 9.90099
    assert out["cash"] == approx([0, 0])
    # bar 1: A 4.950495 * 110 + B 9.900990 * 50 = 1050 / 1.01 = 1039.604
    assert out["equity"] == approx([1000 / 1.01, 1050 / 1.01])


def test_fixed_fee_and_minimum_fee():
    mk = market([100, 110])
    # fixed fee 1: k = (1000 - 1) / (10 * 100) = 0.999 -> 9.99 units; cash 1000 - 999 - 1 = 0
    out = reference_simulate(mk, targets(1, NAN), SimParams(init_cash=1000, fill="close",
                                                            costs=Costs(fee_fixed=1)))
    [fill] = out["fills"]
    assert fill["units"] == approx(9.99) and fill["fee"] == approx(1)
    assert out["cash"] == approx([0, 0])
    # min fee 5 with f = 0.001: k gives 9.99001, but the min fee binds:
    # (1000 - 5) / 100 = 9.95 units, fee max(0.995, 5) = 5, cash 0.
    # bar 1: target 0 -> sell 9.95 at 110: 1094.5 - max(1.0945, 5) = 1089.5.
    out = reference_simulate(mk, targets(1, 0), SimParams(init_cash=1000, fill="close",
                                                          costs=Costs(fees_bps=10, fee_min=5)))
    assert [f["units"] for f in out["fills"]] == approx([9.95, -9.95])
    assert [f["fee"] for f in out["fills"]] == approx([5, 5])
    assert out["cash"] == approx([0, 1089.5])
    [trade] = out["trades"]
    # pnl = -995 + 1094.5 - 10 = 89.5; ret = 89.5 / 995
    assert trade["fees"] == approx(10) and trade["pnl"] == approx(89.5)
    assert trade["ret"] == approx(89.5 / 995)


def test_whole_units():
    # desired 1000 / 30 = 33.33 -> 33 units: cash 1000 - 990 = 10
    out = reference_simulate(market([30, 30]), targets(1, NAN),
                             SimParams(init_cash=1000, fill="close", whole_units=True))
    assert out["fills"][0]["units"] == 33 and out["cash"] == approx([10, 10])
    # f = 0.001 at 100: 10 desired, k = 1000 / 1001 -> 9.99 -> 9 units; cash 1000 - 900 - 0.9 = 99.1
    out = reference_simulate(market([100, 100]), targets(1, NAN),
                             SimParams(init_cash=1000, fill="close", whole_units=True,
                                       costs=Costs(fees_bps=10)))
    assert out["fills"][0]["units"] == 9 and out["cash"] == approx([99.1, 99.1])


def test_leverage_2_caps_gross_exposure_at_twice_equity():
    # target 3x with leverage 2: desired 30 units at 100, k = 2000 / 3000 -> 20 units
    # (the cap 2 * 1000 / 100 = 20 agrees); cash 1000 - 2000 = -1000 (a margin loan).
    # bar 1 at 110: -1000 + 20 * 110 = 1200.
    out = reference_simulate(market([100, 110]), targets(3, NAN),
                             SimParams(init_cash=1000, fill="close", leverage=2))
    assert out["fills"][0]["units"] == approx(20)
    assert out["cash"] == approx([-1000, -1000])
    assert out["equity"] == approx([1000, 1200])


def test_rebalance_every_2_with_drifting_prices_from_start():
    # start = 1: bar 0 ignored (equity 1000); rebalancing bars 1, 3, 5. Weight 0.5 throughout.
    # bar 1 (100): SIGNAL buy 5, cash 500.          bar 2 (120): equity 500 + 600 = 1100.
    # bar 3 (150): E = 500 + 750 = 1250 -> desired 0.5 * 1250 / 150 = 4.1667: sell 0.8333
    #              (+125), cash 625.                 bar 4 (150): equity 1250.
    # bar 5 (120): E = 625 + 500 = 1125 -> desired 0.5 * 1125 / 120 = 4.6875: buy 0.5208
    #              (-62.5), cash 562.5.              bar 6 (120): equity 1125.
    mk = market([80, 100, 120, 150, 150, 120, 120])
    out = reference_simulate(mk, targets(*[0.5] * 7), SimParams(init_cash=1000, fill="close",
                                                                rebalance_every=2), start=1)
    assert [(f["bar"], f["reason"]) for f in out["fills"]] == [
        (1, Reason.SIGNAL), (3, Reason.REBALANCE), (5, Reason.REBALANCE)]
    assert [f["units"] for f in out["fills"]] == approx([5, 1250 / 300 - 5, 4.6875 - 1250 / 300])
    assert out["equity"] == approx([1000, 1000, 1100, 1250, 1250, 1125, 1125])
    assert out["cash"] == approx([1000, 500, 500, 625, 625, 562.5, 562.5])
    assert out["units"][6] == approx([4.6875])


def test_reversal_is_two_orders_with_slippage_impact_and_fixed_fees():
    # units target 10 then -10, fill at the close; F = 1, 10 bps + 0.1 * (high - low) of bar t,
    # impact 0.5 * sigma 0.02 * sqrt(|order| / adv 400) * p.
    # bar 0: buy 10 at 100: slip/unit 0.1 + 0.1 * 4 = 0.5, impact/unit 0.01 * sqrt(10/400) * 100
    #        = 0.158114 -> q0 = 100.658114; cash 10000 - 1006.58114 - 1 = 8992.41886.
    # bar 1: order -20 at 110: slip/unit 0.11 + 0.1 * 6 = 0.71, impact/unit
    #        0.01 * sqrt(20/400) * 110 = 0.245967 -> q1 = 109.044033 for both halves:
    #        close 10 (+1090.44 - 1), open -10 (+1090.44 - 1): cash 11171.2995.
    mk = market([100, 110, 105], high=[102, 112, 105], low=[98, 106, 105],
                sigma=[0.02, 0.02, 0.02], adv=[400, 400, 400])
    out = reference_simulate(mk, targets(10, -10, NAN),
                             SimParams(init_cash=10_000, fill="close", target_kind="units",
                                       costs=Costs(fee_fixed=1, slippage_bps=10, slippage_range=0.1,
                                                   impact_k=0.5)))
    imp0 = 0.5 * 0.02 * math.sqrt(10 / 400) * 100
    imp1 = 0.5 * 0.02 * math.sqrt(20 / 400) * 110
    q0 = 100 + (0.5 + imp0)
    q1 = 110 - (0.71 + imp1)
    assert [(f["bar"], f["units"]) for f in out["fills"]] == [(0, 10), (1, -10), (1, -10)]
    assert [f["price"] for f in out["fills"]] == approx([q0, q1, q1])
    assert [f["fee"] for f in out["fills"]] == approx([1, 1, 1])
    cash1 = 10_000 - 10 * q0 - 1 + 2 * (10 * q1 - 1)
    assert out["cash"] == approx([10_000 - 10 * q0 - 1, cash1, cash1])
    assert out["equity"] == approx([10_000 - 10 * q0 - 1 + 1000, cash1 - 1100, cash1 - 1050])
    assert out["fees"] == approx([1, 2, 0])
    assert out["slippage"] == approx([5, 14.2, 0])  # 10 * 0.5; 2 * 10 * 0.71
    assert out["impact"] == approx([10 * imp0, 20 * imp1, 0])
    old, new = out["trades"]
    # old: pnl = -10 q0 + 10 q1 - 2 = 81.859; ret = 81.859 / (10 q0)
    assert (old["entry_bar"], old["exit_bar"], old["n_fills"]) == (0, 1, 2)
    assert old["exit_reason"] == Reason.SIGNAL and old["fees"] == approx(2)
    assert old["slippage"] == approx(5 + 7.1) and old["impact"] == approx(10 * imp0 + 10 * imp1)
    assert old["pnl"] == approx(10 * q1 - 10 * q0 - 2)
    assert old["ret"] == approx((10 * q1 - 10 * q0 - 2) / (10 * q0))
    # new (open): short 10 at q1, marked at 105: pnl = 10 q1 - 1 - 1050 = 39.44
    assert (new["entry_bar"], new["exit_bar"], new["n_fills"]) == (1, -1, 1)
    assert new["quantity"] == approx(-10) and new["entry_price"] == approx(q1)
    assert new["exit_price"] == 105 and new["pnl"] == approx(10 * q1 - 1 - 1050)
