"""``bollinger_reversion``: long when the close falls below the lower Bollinger band, held until
it gets back to the middle band (the SMA); short above the upper band, held until it falls back to
the middle, when ``direction`` allows. The bands are SMA(``period``) -/+ ``width`` population
standard deviations (TA-Lib's BBANDS), so the rule reads the z-score
z = (close - SMA) / std: long below -width, exit at z >= 0; short above +width, exit at
z <= 0. A z-score is the same in any price basis; the target at t reads closes up to t only; 0
for the first ``period - 1`` bars; a flat window (std 0, z undefined) keeps the position held.

Examples
--------
>>> import numpy as np
>>> targets(np.array([10.0, 10.5, 10, 10.5, 8, 9, 11, 10.5]), period=4, width=1.0).tolist()
[0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0]
"""

from __future__ import annotations

import numpy as np

from alphatwin.signals.base import Param, Strategy, direction_flags, register
from alphatwin.signals.nb import reversion_target_nb, rolling_std_1d_nb, sma_1d_nb, zscore_1d_nb

__all__ = ["STRATEGY", "compute", "targets"]


def compute(close: np.ndarray, *, period: int = 20, width: float = 2.0,
            direction: str = "long") -> tuple[np.ndarray, np.ndarray]:
    """``(signal, target)``: signal = the z-score (close - SMA) / population std over ``period``,
    target +1 / 0 / -1 (see the module docstring); target 0 during the warm-up."""
    long_, short = direction_flags(direction)
    close = np.ascontiguousarray(close, dtype=np.float64)
    z = zscore_1d_nb(close, period)
    return z, reversion_target_nb(z, -float(width), float(width), 0.0, long_, short)


def targets(close: np.ndarray, *, period: int = 20, width: float = 2.0, direction: str = "long") -> np.ndarray:
    """Target weight per bar: +1 / 0 / -1 (see the module docstring); 0 during the warm-up."""
    return compute(close, period=period, width=width, direction=direction)[1]


def overlays(close: np.ndarray, *, period: int = 20, width: float = 2.0) -> dict[str, np.ndarray]:
    """The bands the z-score measures against (SMA +- width population std), for charts."""
    close = np.ascontiguousarray(close, dtype=np.float64)
    mid, sd = sma_1d_nb(close, period), rolling_std_1d_nb(close, period)
    return {f"SMA({period})": mid, f"upper band ({width:g} sd)": mid + width * sd,
            f"lower band ({width:g} sd)": mid - width * sd}


STRATEGY = register(Strategy(
    name="bollinger_reversion",
    summary="long below the lower Bollinger band until the SMA (short above the upper band with direction short/both)",
    params=(Param("period", 20, 2, 10_000, "SMA / standard deviation window (bars)"),
            Param("width", 2.0, 0.01, 10.0, "band half-width in standard deviations")),
    compute=compute,
    signal_doc="(close - SMA(period)) / std(period), population std as in TA-Lib BBANDS",
    family="mean_reversion",
    overlays=overlays,
))
