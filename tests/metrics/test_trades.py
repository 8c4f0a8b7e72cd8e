"""Trade statistics: hand-computed golden values, edge cases, and a property test."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from alphatwin.errors import InputError
from alphatwin.metrics import trades as tr

# Five closed trades (a win, a loss, a breakeven, a win, a loss) and one open trade whose
# unrealized P&L (999) must not enter any win/loss statistic.
PNL = np.array([100.0, -50.0, 0.0, 30.0, -20.0, 999.0])
CLOSED = np.array([True, True, True, True, True, False])
HELD = np.array([3, 1, 2, 5, 4, 7])


def test_golden_trade_stats():
    s = tr.trade_stats(PNL, CLOSED, HELD)
    assert tuple(s) == tr.TRADE_KEYS
    assert s["n_trades"] == 6 and s["n_closed_trades"] == 5
    assert s["win_rate"] == 0.4  # 2 wins (100, 30) / 5 closed; the breakeven trade is no win
    assert s["profit_factor"] == pytest.approx(130 / 70, rel=1e-15)  # (100 + 30) / |-50 - 20|
    assert s["avg_win"] == 65.0  # (100 + 30) / 2
    assert s["avg_loss"] == -35.0  # (-50 - 20) / 2
    assert s["expectancy"] == 12.0  # (100 - 50 + 0 + 30 - 20) / 5
    # = win_rate * avg_win + loss_rate * avg_loss = 0.4 * 65 + 0.4 * (-35) (loss_rate 2/5, not 1 - 0.4)
    assert s["expectancy"] == pytest.approx(0.4 * 65 + 0.4 * -35)
    assert s["best_trade"] == 100.0 and s["worst_trade"] == -50.0  # the open 999 is not a trade result
    assert s["avg_holding_bars"] == pytest.approx(22 / 6)  # (3 + 1 + 2 + 5 + 4 + 7) / 6, open included
    assert isinstance(s["n_trades"], int) and isinstance(s["n_closed_trades"], int)


def test_no_trades_and_only_open_trades():
    none = tr.trade_stats(np.array([]), np.array([], dtype=bool), np.array([], dtype=np.int64))
    assert none["n_trades"] == 0 and none["n_closed_trades"] == 0
    for key in tr.TRADE_KEYS[2:]:
        assert math.isnan(none[key]), key
    open_only = tr.trade_stats(np.array([5.0, np.nan]), np.array([False, False]), np.array([2, 4]))
    assert open_only["n_trades"] == 2 and open_only["n_closed_trades"] == 0
    assert math.isnan(open_only["win_rate"]) and math.isnan(open_only["expectancy"])
    assert open_only["avg_holding_bars"] == 3.0


def test_profit_factor_edges():
    assert tr.profit_factor(np.array([1.0, 2.0])) == math.inf  # wins, no loss
    assert math.isnan(tr.profit_factor(np.array([0.0, 0.0])))  # breakeven only
    assert math.isnan(tr.profit_factor(np.array([])))
    assert tr.profit_factor(np.array([-1.0, -2.0])) == 0.0  # losses, no win
    assert math.isnan(tr.avg_win(np.array([-1.0]))) and math.isnan(tr.avg_loss(np.array([1.0])))


def test_bad_inputs_raise_input_error():
    with pytest.raises(InputError, match="same length"):
        tr.trade_stats(np.array([1.0, 2.0]), np.array([True]), np.array([1, 2]))
    with pytest.raises(InputError, match="boolean"):
        tr.trade_stats(np.array([1.0]), np.array([1]), np.array([1]))
    with pytest.raises(InputError, match="holding_bars"):
        tr.trade_stats(np.array([1.0]), np.array([True]), np.array([-1]))
    with pytest.raises(InputError, match="finite"):
        tr.trade_stats(np.array([np.nan]), np.array([True]), np.array([1]))


trades = st.lists(st.tuples(st.integers(-1000, 1000).map(lambda k: k / 8), st.booleans(),
                            st.integers(0, 500)), max_size=60)


@settings(max_examples=150, deadline=None)
@given(trades)
@example([])
@example([(0.0, True, 0)])
@example([(5.0, False, 3)])
def test_trade_stats_equal_their_definitions_trade_by_trade(rows):
    """Against a plain loop over the trades (P&L in steps of 1/8: sums are exact)."""
    pnl = np.array([p for p, _, _ in rows], dtype=float)
    closed = np.array([c for _, c, _ in rows], dtype=bool)
    held = np.array([h for _, _, h in rows], dtype=np.int64)
    s = tr.trade_stats(pnl, closed, held)
    done = [p for p, c, _ in rows if c]
    wins = [p for p in done if p > 0]
    losses = [p for p in done if p < 0]
    assert s["n_trades"] == len(rows) and s["n_closed_trades"] == len(done)
    if rows:
        assert s["avg_holding_bars"] == pytest.approx(held.sum() / len(rows), rel=1e-12)
    if not done:
        assert all(math.isnan(s[k]) for k in tr.TRADE_KEYS[2:-1])
        return
    assert s["win_rate"] == pytest.approx(len(wins) / len(done), rel=1e-15)
    assert s["expectancy"] == pytest.approx(sum(done) / len(done), rel=1e-12, abs=1e-12)
    assert s["best_trade"] == max(done) and s["worst_trade"] == min(done)
    if wins:
        assert s["avg_win"] == pytest.approx(sum(wins) / len(wins), rel=1e-12)
    else:
        assert math.isnan(s["avg_win"])
    if losses:
        assert s["profit_factor"] == pytest.approx(sum(wins) / -sum(losses), rel=1e-12)
        assert s["avg_loss"] == pytest.approx(sum(losses) / len(losses), rel=1e-12)
    else:
        assert math.isnan(s["avg_loss"])
        if wins:
            assert s["profit_factor"] == math.inf
        else:
            assert math.isnan(s["profit_factor"])
    # expectancy = win_rate * avg_win + loss_rate * avg_loss (an absent side contributes 0)
    loss_rate = len(losses) / len(done)
    parts = (s["win_rate"] * s["avg_win"] if wins else 0.0) + (loss_rate * s["avg_loss"] if losses else 0.0)
    assert s["expectancy"] == pytest.approx(parts, rel=1e-9, abs=1e-9)
