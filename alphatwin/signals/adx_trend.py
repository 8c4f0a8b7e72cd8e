"""``adx_trend``: trade the trend only while it is strong. Long while +DI > -DI and
ADX(``period``) >= ``threshold``; short while -DI > +DI and ADX >= ``threshold`` when
``direction`` allows; flat otherwise (a weak trend, or +DI = -DI).

Wilder's directional movement, exactly as TA-Lib's ``PLUS_DI``, ``MINUS_DI`` and ``ADX``:

- +DM_t = H_t - H_{t-1} when that up move is positive and larger than the down move
  L_{t-1} - L_t (else 0); -DM_t likewise for the down move; TR_t = max(H_t - L_t,
  |H_t - C_{t-1}|, |L_t - C_{t-1}|). Up and down moves equal to 1e-12 relative count as a tie
  (both 0), so a raw tie stays a tie on backward-adjusted prices whatever later corporate actions
  did to their last digits (TA-Lib compares exactly; the two differ only on such near-ties).
- +DM, -DM and TR are summed over bars 1 .. period-1, then smoothed from bar ``period`` on by
  ``s = s - s / period + new``; +DI = 100 * +DM / TR, -DI = 100 * -DM / TR (both 0 where TR is 0).
- DX = 100 * |+DI - -DI| / (+DI + -DI); ADX = the mean of the first ``period`` DX (bar
  2 * period - 1), then ``ADX = (ADX * (period - 1) + DX) / period``. An undefined DX (TR 0,
  or +DI = -DI = 0: no directional move left) adds 0 to the first mean and leaves the ADX unchanged afterwards.

Parameters: ``period`` (int, default 14) the Wilder period; ``threshold`` (float, default 25.0)
the ADX level (0..100) from which a trend counts as strong.

Signal: the ADX (NaN for the first ``2 * period - 1`` bars, TA-Lib's lookback). Target 0 during
that warm-up. DI and ADX are ratios of price differences, so they are the same on the
backward-adjusted high, low and close in any price basis (a later split multiplies every
earlier price by one factor). "Nothing moved" means a smoothed range of exactly 0 (a flat start
of the series), as in the TA-Lib of the venv; TA-Lib 0.4 treated a range below 1e-8 price units
as 0, which depends on the price scale. The target at t reads bars up to t only: point in time.

Example: ``alphatwin backtest adx_trend --symbols AAPL --param period=14 --param threshold=20
--direction both``.

Examples
--------
>>> import numpy as np
>>> close = np.array([10.0, 11, 12, 13, 14, 13, 12, 11, 10, 9])
>>> targets(close + 0.5, close - 0.5, close, period=2, threshold=60.0, direction="both").tolist()
[0.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0, -1.0, -1.0, -1.0]
"""

from __future__ import annotations

import numpy as np

from alphatwin.errors import InputError
from alphatwin.signals.base import Param, Strategy, direction_flags, register
from alphatwin.signals.nb import cross_target_nb
from alphatwin.signals.trend_nb import dmi_1d_nb

__all__ = ["STRATEGY", "compute", "targets", "dmi"]


def _columns(*columns: np.ndarray, names: tuple[str, ...]) -> list[np.ndarray]:
    """The columns as contiguous float64 arrays of one length (InputError naming the odd one)."""
    out = [np.ascontiguousarray(c, dtype=np.float64) for c in columns]
    for name, col in zip(names[1:], out[1:]):
        if col.shape != out[0].shape:
            raise InputError(f"`{name}` must have the shape of `{names[0]}` {out[0].shape}, got {col.shape}")
    return out


def dmi(high: np.ndarray, low: np.ndarray, close: np.ndarray, *, period: int = 14
        ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(+DI, -DI, ADX)`` as TA-Lib's PLUS_DI, MINUS_DI and ADX (see the module docstring)."""
    high, low, close = _columns(high, low, close, names=("high", "low", "close"))
    return dmi_1d_nb(high, low, close, period)


def compute(high: np.ndarray, low: np.ndarray, close: np.ndarray, *, period: int = 14,
            threshold: float = 25.0, direction: str = "long") -> tuple[np.ndarray, np.ndarray]:
    """``(signal, target)``: signal = ADX(period), target +1 / 0 / -1 (see the module
    docstring); target 0 during the warm-up."""
    long_, short = direction_flags(direction)
    STRATEGY.resolve({"period": period, "threshold": threshold})
    plus, minus, adx = dmi(high, low, close, period=period)
    strong = adx >= threshold  # False while the ADX is NaN
    return adx, np.where(strong, cross_target_nb(plus, minus, long_, short), 0.0)


def targets(high: np.ndarray, low: np.ndarray, close: np.ndarray, *, period: int = 14,
            threshold: float = 25.0, direction: str = "long") -> np.ndarray:
    """Target weight per bar: +1 / 0 / -1 (see the module docstring); 0 during the warm-up."""
    return compute(high, low, close, period=period, threshold=threshold, direction=direction)[1]


STRATEGY = register(Strategy(
    name="adx_trend",
    summary="long while +DI > -DI and ADX >= threshold, flat otherwise (short while -DI > +DI "
            "and ADX >= threshold with direction short/both)",
    params=(Param("period", 14, 2, 10_000, "Wilder period of DI and ADX (bars)"),
            Param("threshold", 25.0, 0.0, 100.0, "ADX level from which the trend counts as strong")),
    compute=compute,
    inputs=("high", "low", "close"),
    signal_doc="ADX(period), TA-Lib / Wilder (0..100)",
    family="trend",
))
