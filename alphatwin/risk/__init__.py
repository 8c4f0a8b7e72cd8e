"""Risk: between strategy targets and the backtest engine, point in time (row t reads rows <= t).

:mod:`alphatwin.risk.allocation` splits capital across symbols (equal weight, inverse volatility,
risk parity); :mod:`alphatwin.risk.sizing` scales a direction into a position (fixed fraction,
volatility target, fractional Kelly).
"""

from __future__ import annotations

__all__ = ["allocation", "sizing"]
