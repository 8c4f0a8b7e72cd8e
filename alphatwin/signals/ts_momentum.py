"""``ts_momentum``: time-series momentum. Long while the return from ``lookback`` bars ago to
``skip`` bars ago is positive (close[t - skip] / close[t - lookback] - 1 > 0), flat otherwise;
short while it is negative when ``direction`` allows. A ratio of backward-adjusted closes, the
same in any price basis; the target at t reads closes up to t only; 0 for the first ``lookback``
bars. ``skip`` leaves out the most recent bars (the classic 12-1 month momentum: 252 and 21).

Examples
--------
>>> import numpy as np
>>> targets(np.array([1.0, 2, 3, 2, 1, 2, 3]), lookback=2, skip=1).tolist()
[0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0]
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from alphatwin.signals.base import Param, Strategy, direction_flags, register
from alphatwin.signals.nb import cross_target_nb

__all__ = ["STRATEGY", "compute", "targets"]


def _lag(x: np.ndarray, k: int) -> np.ndarray:
    out = np.full(x.shape[0], np.nan)
    if k < x.shape[0]:
        out[k:] = x[:x.shape[0] - k]
    return out


def compute(close: np.ndarray, *, lookback: int = 252, skip: int = 21,
            direction: str = "long") -> tuple[np.ndarray, np.ndarray]:
    """``(signal, target)``: signal = close[t-skip] / close[t-lookback] - 1, target +1 / 0 / -1
    (see the module docstring); target 0 during the warm-up."""
    long_, short = direction_flags(direction)
    close = np.ascontiguousarray(close, dtype=np.float64)
    # close[t - skip] > close[t - lookback] is the sign of the return, without a division
    recent, past = _lag(close, skip), _lag(close, lookback)
    return recent / past - 1.0, cross_target_nb(recent, past, long_, short)


def targets(close: np.ndarray, *, lookback: int = 252, skip: int = 21, direction: str = "long") -> np.ndarray:
    """Target weight per bar: +1 / 0 / -1 (see the module docstring); 0 during the warm-up."""
    return compute(close, lookback=lookback, skip=skip, direction=direction)[1]


def _validate(params: Mapping[str, int]) -> str | None:
    if params["skip"] >= params["lookback"]:
        return f"`skip` must be below `lookback`, got skip={params['skip']} lookback={params['lookback']}"
    return None


STRATEGY = register(Strategy(
    name="ts_momentum",
    summary="long while close[t-skip] / close[t-lookback] > 1, flat otherwise (short below with direction short/both)",
    params=(Param("lookback", 252, 1, 10_000, "bars back to the start of the return window"),
            Param("skip", 21, 0, 9_999, "most recent bars left out of the return window")),
    compute=compute,
    signal_doc="close[t-skip] / close[t-lookback] - 1",
    family="momentum",
    validate=_validate,
))
