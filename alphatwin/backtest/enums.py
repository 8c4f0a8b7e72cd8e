"""Record layouts and codes of the backtest kernel, declared once (NumPy structured dtypes)."""

from __future__ import annotations

import numpy as np

__all__ = ["FILL_DT", "TRADE_DT", "REASONS", "PHASES", "Reason", "Phase"]


class Reason:
    """Why a fill happened (``fills.reason``)."""

    SIGNAL = 0  #: the target changed
    REBALANCE = 1  #: a scheduled rebalance toward an unchanged target
    PENDING = 2  #: the rest of an order cut by the participation cap (or with no bar to fill on)
    STOP_LOSS = 3
    TAKE_PROFIT = 4
    TRAILING_STOP = 5
    DRAWDOWN = 6  #: the drawdown control scaled the targets down, or restored them
    ATR_STOP = 7  #: the ATR-multiple stop (entry -/+ k x ATR)


REASONS = ("signal", "rebalance", "pending", "stop_loss", "take_profit", "trailing_stop", "drawdown",
           "atr_stop")


class Phase:
    """Where in the bar a fill happened (``fills.phase``)."""

    OPEN = 0
    INTRABAR = 1
    CLOSE = 2


PHASES = ("open", "intrabar", "close")

#: One fill: ``bar`` and ``col`` index the aligned (bar x symbol) arrays; ``units`` is signed
#: (+ buy, - sell); ``price`` the exec price incl. slippage and impact; costs in currency.
FILL_DT = np.dtype([
    ("bar", np.int64),
    ("col", np.int64),
    ("units", np.float64),
    ("base_price", np.float64),
    ("price", np.float64),
    ("fee", np.float64),
    ("slippage", np.float64),
    ("impact", np.float64),
    ("reason", np.int64),
    ("phase", np.int64),
])

#: One round trip (see docs/backtest.md#trades); ``exit_bar`` is -1 while the trade is open.
TRADE_DT = np.dtype([
    ("col", np.int64),
    ("entry_bar", np.int64),
    ("exit_bar", np.int64),
    ("quantity", np.float64),
    ("entry_price", np.float64),
    ("exit_price", np.float64),
    ("fees", np.float64),
    ("slippage", np.float64),
    ("impact", np.float64),
    ("dividends", np.float64),
    ("pnl", np.float64),
    ("ret", np.float64),
    ("exit_reason", np.int64),
    ("n_fills", np.int64),
])
