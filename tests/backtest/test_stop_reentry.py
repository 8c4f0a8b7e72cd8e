"""After a stop, only a new direction of the strategy re-enters; a re-size (even to 0 and back)
by the risk manager does not (docs/backtest.md#stops)."""

from __future__ import annotations

import numpy as np

from alphatwin.backtest.engine import simulate
from alphatwin.backtest.enums import Reason
from alphatwin.backtest.params import Market, SimParams, Stops

# bar 1: low 85 <= the 10% stop of the entry at 100 -> stopped out at 90
CLOSE = np.array([100.0, 90, 95, 100, 100, 100, 100])
LOW = np.array([100.0, 85, 95, 100, 100, 100, 100])
PARAMS = SimParams(fill="close", stops=Stops(stop_loss=0.1))


def _fills(weights, direction=None):
    market = Market.from_close(CLOSE, low=LOW, open=CLOSE, high=CLOSE)
    out = simulate(market, np.array(weights, dtype=float), PARAMS, direction=direction)
    return [(int(f["bar"]), int(f["reason"])) for f in out.fills]


def test_a_resize_to_zero_and_back_does_not_reenter_while_the_direction_holds():
    weights = [1.0, 1.0, 0.0, 0.6, 0.6, 0.6, 0.6]  # a sizer: 0 at bar 2, 0.6 from bar 3
    held = [1.0] * 7  # the strategy never changed its mind
    assert _fills(weights, held) == [(0, Reason.SIGNAL), (1, Reason.STOP_LOSS)]


def test_without_a_direction_the_weights_sign_is_the_direction():
    weights = [1.0, 1.0, 0.0, 0.6, 0.6, 0.6, 0.6]
    assert _fills(weights) == [(0, Reason.SIGNAL), (1, Reason.STOP_LOSS), (3, Reason.SIGNAL)]


def test_a_new_direction_reenters_at_the_current_size():
    weights = [1.0, 1.0, 0.0, 0.0, 0.6, 0.6, 0.6]
    direction = [1.0, 1.0, 0.0, 0.0, 1.0, 1.0, 1.0]  # the strategy went flat at bar 2, long at 4
    assert _fills(weights, direction) == [(0, Reason.SIGNAL), (1, Reason.STOP_LOSS), (4, Reason.SIGNAL)]
