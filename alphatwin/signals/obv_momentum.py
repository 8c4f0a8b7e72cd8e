"""``obv_momentum``: follow the volume flow. Long while On-Balance Volume is above its
``period``-bar simple moving average; short while it is below when ``direction`` allows; flat
while they are equal (OBV did not move over the window).

- OBV as TA-Lib's ``OBV``: OBV_0 = V_0, then OBV_t = OBV_{t-1} + V_t on an up close
  (C_t > C_{t-1}), - V_t on a down close, unchanged on an unchanged close.
- The average is TA-Lib's ``SMA`` of OBV (a simple mean, not an EMA: where OBV stops moving its
  SMA catches up with it exactly after ``period`` bars, with no rounding residue to trade on).

Parameters: ``period`` (int, default 20) the bars of the moving average.

Signal: the OBV gap in average bars of volume, (OBV - SMA(OBV, period)) / SMA(volume, period):
its sign is the rule, and it is free of the volume unit. NaN for the first ``period - 1`` bars
(target 0) and where the window traded no volume at all (OBV did not move: target 0). A ratio
OBV / SMA(OBV) - 1 was not used: OBV crosses 0 and its sign depends on where it started.

Backward-adjusted inputs: a later split multiplies every earlier volume by one factor (and
divides the prices by it). OBV - SMA(OBV) scales with it, its sign and the signal do not; the
rule reads only the direction of each close-to-close move, also the same after scaling the
prices. The target at t reads bars up to t only: point in time.

The alternative volume-momentum measure is VROC, the volume rate of change
100 * (V_t / V_{t-period} - 1) (``features.bars.vroc_14``): it compares two single bars and
says nothing about the price direction, which OBV signs the volume with.

Example: ``alphatwin backtest obv_momentum --symbols AAPL --param period=30 --direction both``.

Examples
--------
>>> import numpy as np
>>> close = np.array([10.0, 11, 12, 12, 11, 10, 10, 10])
>>> volume = np.array([100.0, 100, 100, 100, 100, 100, 100, 100])
>>> targets(close, volume, period=2, direction="both").tolist()
[0.0, 1.0, 1.0, 0.0, -1.0, -1.0, 0.0, 0.0]
"""

from __future__ import annotations

import numpy as np

from alphatwin.errors import InputError
from alphatwin.signals.base import Param, Strategy, direction_flags, register
from alphatwin.signals.trend_nb import band_target_nb, obv_1d_nb, obv_gap_1d_nb

__all__ = ["STRATEGY", "compute", "targets", "obv"]


def _columns(close: np.ndarray, volume: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    close = np.ascontiguousarray(close, dtype=np.float64)
    volume = np.ascontiguousarray(volume, dtype=np.float64)
    if volume.shape != close.shape:
        raise InputError(f"`volume` must have the shape of `close` {close.shape}, got {volume.shape}")
    if (volume < 0).any():
        raise InputError("`volume` must be >= 0 on every bar")
    return close, volume


def obv(close: np.ndarray, volume: np.ndarray) -> np.ndarray:
    """On-Balance Volume as TA-Lib's OBV (see the module docstring)."""
    return obv_1d_nb(*_columns(close, volume))


def compute(close: np.ndarray, volume: np.ndarray, *, period: int = 20,
            direction: str = "long") -> tuple[np.ndarray, np.ndarray]:
    """``(signal, target)``: signal = (OBV - SMA(OBV)) / SMA(volume), target +1 / 0 / -1 (see
    the module docstring); target 0 during the warm-up."""
    long_, short = direction_flags(direction)
    STRATEGY.resolve({"period": period})
    close, volume = _columns(close, volume)
    gap = obv_gap_1d_nb(obv_1d_nb(close, volume), volume, period)
    return gap, band_target_nb(gap, 0.0, long_, short)


def targets(close: np.ndarray, volume: np.ndarray, *, period: int = 20,
            direction: str = "long") -> np.ndarray:
    """Target weight per bar: +1 / 0 / -1 (see the module docstring); 0 during the warm-up."""
    return compute(close, volume, period=period, direction=direction)[1]


STRATEGY = register(Strategy(
    name="obv_momentum",
    summary="long while OBV > SMA(OBV, period), flat otherwise (short below it with direction short/both)",
    params=(Param("period", 20, 2, 10_000, "bars of the moving average of OBV"),),
    compute=compute,
    inputs=("close", "volume"),
    signal_doc="(OBV - SMA(OBV, period)) / SMA(volume, period)",
    family="momentum",
))
