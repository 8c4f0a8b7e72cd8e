"""``slope_trend``: follow the fitted trend of the log price. Long while the least-squares slope
of log(close) over the last ``window`` bars is above ``threshold``; short while it is below
``-threshold`` when ``direction`` allows; flat in between.

The slope is per bar (not annualised): with y = log(close) and k = 0 .. w-1 the bar number in
the window,

    slope_t = sum((k - (w - 1) / 2) * y_{t-w+1+k}) / (w (w^2 - 1) / 12),

TA-Lib's ``LINEARREG_SLOPE`` of ``log(close)``: a slope of 0.001 is a fitted trend of about
0.1% a bar.

Parameters: ``window`` (int, default 50) the bars in the fit; ``threshold`` (float, default
0.0005 per bar, about 12.6% a year of log growth at 252 bars: 0.0005 x 252) the dead band
around 0.

Signal: the slope of log price per bar (NaN for the first ``window - 1`` bars). Target 0 during
that warm-up and where the slope is inside the band (a flat window has a slope of exactly 0).
A log turns a split's factor into a constant shift, which the slope ignores: the same on the
backward-adjusted close in any price basis. The target at t reads closes up to t only: point in
time.

Example: ``alphatwin backtest slope_trend --symbols AAPL --param window=100 --param
threshold=0.0004 --direction both``.

Examples
--------
>>> import numpy as np
>>> close = np.exp(np.array([0.0, 0.01, 0.02, 0.03, 0.03, 0.03, 0.02, 0.0]))
>>> targets(close, window=3, threshold=0.002, direction="both").tolist()
[0.0, 0.0, 1.0, 1.0, 1.0, 0.0, -1.0, -1.0]
"""

from __future__ import annotations

import numpy as np

from alphatwin.errors import InputError
from alphatwin.signals.base import Param, Strategy, direction_flags, register
from alphatwin.signals.trend_nb import band_target_nb, linreg_slope_1d_nb

__all__ = ["STRATEGY", "compute", "targets", "log_slope"]


def log_slope(close: np.ndarray, *, window: int = 50) -> np.ndarray:
    """The least-squares slope of log(close) per bar over the last ``window`` bars (NaN for the
    first ``window - 1``); InputError if a close is not positive."""
    close = np.ascontiguousarray(close, dtype=np.float64)
    if (close <= 0).any():
        raise InputError("`close` must be positive (slope_trend fits log(close))")
    return linreg_slope_1d_nb(np.log(close), window)


def compute(close: np.ndarray, *, window: int = 50, threshold: float = 0.0005,
            direction: str = "long") -> tuple[np.ndarray, np.ndarray]:
    """``(signal, target)``: signal = the slope of log(close) per bar, target +1 / 0 / -1 (see
    the module docstring); target 0 during the warm-up."""
    long_, short = direction_flags(direction)
    STRATEGY.resolve({"window": window, "threshold": threshold})
    slope = log_slope(close, window=window)
    return slope, band_target_nb(slope, float(threshold), long_, short)


def targets(close: np.ndarray, *, window: int = 50, threshold: float = 0.0005,
            direction: str = "long") -> np.ndarray:
    """Target weight per bar: +1 / 0 / -1 (see the module docstring); 0 during the warm-up."""
    return compute(close, window=window, threshold=threshold, direction=direction)[1]


STRATEGY = register(Strategy(
    name="slope_trend",
    summary="long while the regression slope of log(close) > threshold, flat in the band "
            "(short below -threshold with direction short/both)",
    params=(Param("window", 50, 2, 10_000, "bars in the least-squares fit"),
            Param("threshold", 0.0005, 0.0, 1.0,
                  "dead band of the slope of log price per bar (0.0005 ~ 12.6% a year at 252 bars)")),
    compute=compute,
    signal_doc="least-squares slope of log(close) per bar over `window` bars",
    family="trend",
))
