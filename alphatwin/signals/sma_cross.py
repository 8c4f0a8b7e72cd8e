"""``sma_cross``: long while the fast SMA is above the slow one, flat otherwise; short below it
when ``direction`` allows. SMAs of the backward-adjusted close (TA-Lib's SMA), so a split or a
dividend never fakes a cross; the target at t reads closes up to t only.

Examples
--------
>>> import numpy as np
>>> targets(np.array([1.0, 2, 3, 2, 1, 2, 3]), fast=2, slow=3).tolist()
[0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0]
"""

from __future__ import annotations

import numpy as np

from alphatwin.signals.base import Param, Strategy, direction_flags, fast_below_slow, register
from alphatwin.signals.nb import cross_target_nb, sma_1d_nb

__all__ = ["STRATEGY", "compute", "targets"]


def compute(close: np.ndarray, *, fast: int = 10, slow: int = 30, direction: str = "long"
            ) -> tuple[np.ndarray, np.ndarray]:
    """``(signal, target)``: signal = SMA(fast) / SMA(slow) - 1, target +1 / 0 / -1 (see the
    module docstring); target 0 during the warm-up."""
    long_, short = direction_flags(direction)
    close = np.ascontiguousarray(close, dtype=np.float64)
    f, s = sma_1d_nb(close, fast), sma_1d_nb(close, slow)
    return f / s - 1.0, cross_target_nb(f, s, long_, short)


def targets(close: np.ndarray, *, fast: int = 10, slow: int = 30, direction: str = "long") -> np.ndarray:
    """Target weight per bar: +1 / 0 / -1 (see the module docstring); 0 during the warm-up."""
    return compute(close, fast=fast, slow=slow, direction=direction)[1]


def overlays(close: np.ndarray, *, fast: int = 10, slow: int = 30) -> dict[str, np.ndarray]:
    """The two SMAs the cross reads, for charts."""
    close = np.ascontiguousarray(close, dtype=np.float64)
    return {f"SMA({fast})": sma_1d_nb(close, fast), f"SMA({slow})": sma_1d_nb(close, slow)}


STRATEGY = register(Strategy(
    name="sma_cross",
    summary="long while SMA(fast) > SMA(slow), flat otherwise (short below with direction short/both)",
    params=(Param("fast", 10, 1, 10_000, "fast SMA window (bars)"),
            Param("slow", 30, 2, 10_000, "slow SMA window (bars)")),
    compute=compute,
    signal_doc="SMA(fast) / SMA(slow) - 1",
    family="trend",
    validate=fast_below_slow,
    overlays=overlays,
))
