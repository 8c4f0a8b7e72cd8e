"""Numba kernels for the risk stage: trailing moments, NumPy in, NumPy out.

Kernels assume valid input (a 2-D float array, ``window >= 2``); the wrappers in
:mod:`alphatwin.risk.allocation` and :mod:`alphatwin.risk.sizing` check arguments.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["rolling_mean_var_nb"]


@njit(cache=True)
def rolling_mean_var_nb(x: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """Trailing mean and sample variance (ddof=1) of each column of ``x`` (n, m).

    Row t reads rows ``t - window + 1 .. t`` only (two-pass per window, so a row's value does not
    depend on any other window). NaN for ``t < window - 1`` or when the window holds a NaN.
    """
    n, m = x.shape
    mean = np.full((n, m), np.nan)
    var = np.full((n, m), np.nan)
    for j in range(m):
        for t in range(window - 1, n):
            s = 0.0
            ok = True
            for k in range(t - window + 1, t + 1):
                v = x[k, j]
                if np.isnan(v):
                    ok = False
                    break
                s += v
            if not ok:
                continue
            mu = s / window
            ss = 0.0
            for k in range(t - window + 1, t + 1):
                d = x[k, j] - mu
                ss += d * d
            mean[t, j] = mu
            var[t, j] = ss / (window - 1)
    return mean, var
