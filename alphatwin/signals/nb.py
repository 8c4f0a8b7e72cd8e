"""Numba kernels of the signal layer: NumPy in, NumPy out, no look-ahead (row t reads rows <= t)."""

from __future__ import annotations

import numpy as np
from numba import njit, prange

__all__ = ["sma_1d_nb", "sma_rows_nb", "cross_target_nb"]


@njit(cache=True, error_model="numpy")
def sma_1d_nb(x: np.ndarray, window: int) -> np.ndarray:
    """Simple moving average of a NaN-free series, TA-Lib's running sum; NaN for the first
    ``window - 1`` rows. Row t reads ``x[:t + 1]`` only."""
    n = x.shape[0]
    out = np.full(n, np.nan)
    if window < 1 or n < window:
        return out
    total = 0.0
    for t in range(window - 1):
        total += x[t]
    for t in range(window - 1, n):
        total += x[t]
        out[t] = total / window
        total -= x[t - window + 1]
    return out


@njit(cache=True, error_model="numpy", parallel=True)
def sma_rows_nb(x: np.ndarray, windows: np.ndarray) -> np.ndarray:
    """One row of :func:`sma_1d_nb` per window: each distinct window computed once."""
    out = np.empty((windows.shape[0], x.shape[0]))
    for i in prange(windows.shape[0]):
        out[i] = sma_1d_nb(x, windows[i])
    return out


@njit(cache=True, error_model="numpy")
def cross_target_nb(fast: np.ndarray, slow: np.ndarray, long_: bool, short: bool) -> np.ndarray:
    """+1 while ``fast > slow`` (when ``long_``), -1 while ``fast < slow`` (when ``short``), else 0
    (also while either is NaN, the warm-up)."""
    n = fast.shape[0]
    out = np.zeros(n)
    for t in range(n):
        if fast[t] > slow[t]:
            if long_:
                out[t] = 1.0
        elif fast[t] < slow[t]:
            if short:
                out[t] = -1.0
    return out
