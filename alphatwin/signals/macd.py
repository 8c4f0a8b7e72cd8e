"""``macd``: long while the MACD line is above its signal line, flat otherwise; short below it
when ``direction`` allows. TA-Lib's MACD of the backward-adjusted close (EMA(fast) - EMA(slow),
both aligned at bar ``slow - 1``; the signal line is the EMA(signal) of the MACD line), a
difference of EMAs compared with its own EMA, so the same in any price basis; the target at t
reads closes up to t only; 0 for the first ``slow + signal - 2`` bars, where ``talib.MACD`` is NaN.

Examples
--------
>>> import numpy as np
>>> targets(np.array([1.0, 2, 3, 4, 3, 2, 1, 2, 3]), fast=2, slow=3, signal=2).tolist()
[0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0]
"""

from __future__ import annotations

import numpy as np

from alphatwin.signals.base import Param, Strategy, direction_flags, fast_below_slow, register
from alphatwin.signals.nb import cross_target_nb, macd_1d_nb

__all__ = ["STRATEGY", "compute", "targets"]


def compute(close: np.ndarray, *, fast: int = 12, slow: int = 26, signal: int = 9,
            direction: str = "long") -> tuple[np.ndarray, np.ndarray]:
    """``(signal, target)``: signal = the MACD histogram (line - signal line, in adjusted price
    units), target +1 / 0 / -1 (see the module docstring); target 0 during the warm-up."""
    long_, short = direction_flags(direction)
    close = np.ascontiguousarray(close, dtype=np.float64)
    line, sig = macd_1d_nb(close, fast, slow, signal)
    return line - sig, cross_target_nb(line, sig, long_, short)


def targets(close: np.ndarray, *, fast: int = 12, slow: int = 26, signal: int = 9,
            direction: str = "long") -> np.ndarray:
    """Target weight per bar: +1 / 0 / -1 (see the module docstring); 0 during the warm-up."""
    return compute(close, fast=fast, slow=slow, signal=signal, direction=direction)[1]


STRATEGY = register(Strategy(
    name="macd",
    summary="long while the MACD line > its signal line, flat otherwise (short below with direction short/both)",
    params=(Param("fast", 12, 2, 10_000, "fast EMA period (bars)"),
            Param("slow", 26, 3, 10_000, "slow EMA period (bars)"),
            Param("signal", 9, 1, 10_000, "signal-line EMA period (bars)")),
    compute=compute,
    signal_doc="MACD line - signal line (histogram)",
    family="trend",
    validate=fast_below_slow,
))
