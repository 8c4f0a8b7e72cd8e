"""Numba kernels of the ``pairs`` strategy: a rolling OLS of one log price on another and the
stateful spread-trading rule. NumPy in, NumPy out; row t reads rows <= t only."""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["rolling_ols_nb", "pairs_weights_nb", "EXACT_FIT"]

#: A window whose residual std is below this fraction of the std of ``y`` is an exact fit: its
#: residuals are rounding noise (|z| of noise over noise is meaningless), so z is left undefined.
EXACT_FIT = 1e-10


@njit(cache=True, error_model="numpy")
def _fit_window(x: np.ndarray, y: np.ndarray, t: int, window: int) -> tuple[float, float, float, float, float]:
    """OLS of ``y`` on ``x`` with an intercept over rows ``t - window + 1 .. t``:
    ``(alpha, beta, residual at t, population std of the residuals, population std of y)``.

    Both series are shifted by their value at t before anything is summed (an unmoved window gives
    exact zeros), the means come first and the sums of squares are taken about them (two passes,
    no running-sum cancellation), and the residual sum of squares is summed directly (a third pass)
    rather than as ``Syy - beta * Sxy``."""
    rx = x[t]
    ry = y[t]
    mx = 0.0
    my = 0.0
    for i in range(t - window + 1, t + 1):
        mx += x[i] - rx
        my += y[i] - ry
    mx /= window
    my /= window
    sxx = 0.0
    sxy = 0.0
    syy = 0.0
    for i in range(t - window + 1, t + 1):
        dx = x[i] - rx - mx
        dy = y[i] - ry - my
        sxx += dx * dx
        sxy += dx * dy
        syy += dy * dy
    if sxx <= 0.0:
        return np.nan, np.nan, np.nan, np.nan, np.sqrt(syy / window)
    beta = sxy / sxx
    ssr = 0.0
    for i in range(t - window + 1, t + 1):
        e = (y[i] - ry - my) - beta * (x[i] - rx - mx)
        ssr += e * e
    alpha = (ry + my) - beta * (rx + mx)
    resid = beta * mx - my  # row t: x[t] - rx = y[t] - ry = 0
    return alpha, beta, resid, np.sqrt(ssr / window), np.sqrt(syy / window)


@njit(cache=True, error_model="numpy")
def rolling_ols_nb(x: np.ndarray, y: np.ndarray, window: int
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Rolling OLS of the NaN-free series ``y`` on ``x`` (``y = alpha + beta x + e``) over the last
    ``window`` rows: ``(alpha, beta, resid, std, z)`` per row, NaN for the first ``window - 1``.

    ``resid[t]`` is the fit's residual at t itself, ``std[t]`` the population std (ddof=0) of the
    window's residuals, ``sqrt(sum(e**2) / window)`` (their mean is 0: the fit has an intercept),
    and ``z = resid / std``. Where ``x`` does not move in the window, everything is NaN; where the
    fit is exact (std below :data:`EXACT_FIT` times the std of ``y``, rounding noise) z is NaN.
    O(n * window)."""
    n = x.shape[0]
    alpha = np.full(n, np.nan)
    beta = np.full(n, np.nan)
    resid = np.full(n, np.nan)
    std = np.full(n, np.nan)
    z = np.full(n, np.nan)
    if window < 2:
        return alpha, beta, resid, std, z
    for t in range(window - 1, n):
        a, b, e, s, sy = _fit_window(x, y, t, window)
        alpha[t] = a
        beta[t] = b
        resid[t] = e
        std[t] = s
        if s > EXACT_FIT * sy:
            z[t] = e / s
    return alpha, beta, resid, std, z


@njit(cache=True, error_model="numpy")
def pairs_weights_nb(z: np.ndarray, beta: np.ndarray, entry: float, exit_: float, stop: float,
                     long_: bool, short: bool) -> tuple[np.ndarray, np.ndarray]:
    """Portfolio weights ``(w_y, w_x)`` of the spread rule (see :mod:`alphatwin.signals.pairs`).

    Flat: enter long the spread when ``z <= -entry`` (if ``long_``), short it when ``z >= entry``
    (if ``short``), not when ``stop > 0`` and ``|z| >= stop``; the weights are
    ``d / (1 + |b|)`` and ``-d b / (1 + |b|)`` with ``b = beta`` at the entry bar, held unchanged.
    Long the spread exits when ``z >= -exit_``, short when ``z <= exit_``; an exit and the
    opposite entry can fall on the same bar. With ``stop > 0``, ``|z| >= stop`` flattens the
    weights, and the trade stays "stopped" (flat, no new entry) until its normal exit level.
    A NaN z changes nothing: the weights held stay (0 before any trade)."""
    n = z.shape[0]
    wy = np.zeros(n)
    wx = np.zeros(n)
    pos = 0.0  # +1 long the spread, -1 short, 0 none (a stopped trade keeps its sign, weights 0)
    cy = 0.0
    cx = 0.0
    for t in range(n):
        s = z[t]
        if not np.isnan(s):
            if (pos > 0.0 and s >= -exit_) or (pos < 0.0 and s <= exit_):
                pos, cy, cx = 0.0, 0.0, 0.0
            elif pos != 0.0 and stop > 0.0 and abs(s) >= stop:
                cy, cx = 0.0, 0.0
            if pos == 0.0 and not (stop > 0.0 and abs(s) >= stop):
                if long_ and s <= -entry:
                    pos = 1.0
                elif short and s >= entry:
                    pos = -1.0
                if pos != 0.0:
                    gross = 1.0 + abs(beta[t])
                    cy, cx = pos / gross, -pos * beta[t] / gross
        wy[t] = cy
        wx[t] = cx
    return wy, wx
