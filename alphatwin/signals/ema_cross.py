"""``ema_cross``: long while the fast EMA is above the slow one, flat otherwise; short below it
when ``direction`` allows. TA-Lib's EMA (seeded with the SMA of the first ``period`` closes,
alpha = 2 / (period + 1)) of the backward-adjusted close, so a split or a dividend never fakes a
cross; the target at t reads closes up to t only; 0 until the slow EMA exists.

Examples
--------
>>> import numpy as np
>>> targets(np.array([1.0, 2, 3, 2, 1, 2, 3]), fast=2, slow=3).tolist()
[0.0, 0.0, 1.0, 1.0, 0.0, 1.0, 1.0]
"""

from __future__ import annotations

import numpy as np

from alphatwin.signals.base import Param, Strategy, direction_flags, fast_below_slow, register
from alphatwin.signals.nb import cross_target_nb, ema_1d_nb

__all__ = ["STRATEGY", "compute", "targets"]


def compute(close: np.ndarray, *, fast: int = 12, slow: int = 26, direction: str = "long"
            ) -> tuple[np.ndarray, np.ndarray]:
    """``(signal, target)``: signal = EMA(fast) / EMA(slow) - 1, target +1 / 0 / -1 (see the
    module docstring); target 0 during the warm-up."""
    long_, short = direction_flags(direction)
    close = np.ascontiguousarray(close, dtype=np.float64)
    f, s = ema_1d_nb(close, fast), ema_1d_nb(close, slow)
    return f / s - 1.0, cross_target_nb(f, s, long_, short)


def targets(close: np.ndarray, *, fast: int = 12, slow: int = 26, direction: str = "long") -> np.ndarray:
    """Target weight per bar: +1 / 0 / -1 (see the module docstring); 0 during the warm-up."""
    return compute(close, fast=fast, slow=slow, direction=direction)[1]


def overlays(close: np.ndarray, *, fast: int = 12, slow: int = 26) -> dict[str, np.ndarray]:
    """The two EMAs the cross reads, for charts."""
    close = np.ascontiguousarray(close, dtype=np.float64)
    return {f"EMA({fast})": ema_1d_nb(close, fast), f"EMA({slow})": ema_1d_nb(close, slow)}


STRATEGY = register(Strategy(
    name="ema_cross",
    summary="long while EMA(fast) > EMA(slow), flat otherwise (short below with direction short/both)",
    params=(Param("fast", 12, 1, 10_000, "fast EMA period (bars)"),
            Param("slow", 26, 2, 10_000, "slow EMA period (bars)")),
    compute=compute,
    signal_doc="EMA(fast) / EMA(slow) - 1",
    family="trend",
    validate=fast_below_slow,
    overlays=overlays,
))
