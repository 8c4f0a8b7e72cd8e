"""``rsi_reversion``: buy the oversold, sell the overbought. Long when RSI(``period``) drops
below ``lower``, held until RSI gets back to 50 (the mid-line); short when RSI rises above
``upper``, held until RSI falls back to 50, when ``direction`` allows. TA-Lib's RSI (Wilder
smoothing) of the backward-adjusted close: a ratio of price changes, the same in any price basis;
the target at t reads closes up to t only; 0 for the first ``period`` bars. Where the RSI is
undefined (no change at all in the smoothed gains and losses, where TA-Lib says 0) the position
held stays: a flat price is not oversold.

Examples
--------
>>> import numpy as np
>>> targets(np.array([10.0, 11, 10, 9, 8, 9, 10, 11, 12]), period=2).tolist()
[0.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0]
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from alphatwin.signals.base import Param, Strategy, direction_flags, register
from alphatwin.signals.nb import reversion_target_nb, rsi_1d_nb

__all__ = ["STRATEGY", "compute", "targets"]

#: The RSI level that closes a position: the mid-line.
MID = 50.0


def compute(close: np.ndarray, *, period: int = 14, lower: float = 30.0, upper: float = 70.0,
            direction: str = "long") -> tuple[np.ndarray, np.ndarray]:
    """``(signal, target)``: signal = RSI(period) (NaN where undefined), target +1 / 0 / -1
    (see the module docstring); target 0 during the warm-up."""
    long_, short = direction_flags(direction)
    close = np.ascontiguousarray(close, dtype=np.float64)
    rsi = rsi_1d_nb(close, period, np.nan)
    return rsi, reversion_target_nb(rsi, float(lower), float(upper), MID, long_, short)


def targets(close: np.ndarray, *, period: int = 14, lower: float = 30.0, upper: float = 70.0,
            direction: str = "long") -> np.ndarray:
    """Target weight per bar: +1 / 0 / -1 (see the module docstring); 0 during the warm-up."""
    return compute(close, period=period, lower=lower, upper=upper, direction=direction)[1]


def _validate(params: Mapping[str, int]) -> str | None:
    if not params["lower"] < MID < params["upper"]:
        return f"need `lower` < 50 < `upper`, got lower={params['lower']} upper={params['upper']}"
    return None


STRATEGY = register(Strategy(
    name="rsi_reversion",
    summary="long below RSI lower until RSI >= 50 (short above RSI upper until RSI <= 50 with direction short/both)",
    params=(Param("period", 14, 2, 10_000, "RSI period (bars)"),
            Param("lower", 30.0, 0.0, 100.0, "RSI level below which to go long"),
            Param("upper", 70.0, 0.0, 100.0, "RSI level above which to go short")),
    compute=compute,
    signal_doc="RSI(period), TA-Lib / Wilder",
    family="mean_reversion",
    validate=_validate,
))
