"""Allocation: split capital across symbols, point in time (row t reads rows <= t only).

Every function takes a ``(n, m)`` array (rows are bars, oldest first; columns are symbols) and
returns ``(n, m)`` weights. The risk manager sits between strategy targets and the backtest
engine and multiplies the strategies' directions by these weights.

- :func:`equal_weight`: 1/k over the k active symbols of each row.
- :func:`inverse_volatility`: weights proportional to 1 / trailing standard deviation.
- :func:`risk_parity_weights`: equal risk contributions for one covariance matrix.
- :func:`risk_parity`: :func:`risk_parity_weights` on the trailing covariance, rebalanced every
  ``rebalance_every`` rows and held in between.

Examples
--------
>>> import numpy as np
>>> equal_weight(np.array([[True, True, False], [False, False, False]])).tolist()
[[0.5, 0.5, 0.0], [0.0, 0.0, 0.0]]
>>> risk_parity_weights(np.diag([0.04, 0.01])).round(6).tolist()
[0.333333, 0.666667]
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize

from alphatwin.errors import InputError
from alphatwin.risk.nb import rolling_mean_var_nb

__all__ = ["equal_weight", "inverse_volatility", "risk_parity_weights", "risk_parity"]


def _as_2d_float(x: object, name: str) -> np.ndarray:
    a = np.asarray(x, dtype=float)
    if a.ndim != 2:
        raise InputError(f"`{name}` must be a 2-D array (bars x symbols), got shape {a.shape}")
    return a


def _check_int(value: object, name: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise InputError(f"`{name}` must be an integer >= {low}, got {value!r}")
    return int(value)


def _as_active(active: object, shape: tuple[int, ...], name: str = "active") -> np.ndarray:
    a = np.asarray(active)
    if a.shape != shape:
        raise InputError(f"`{name}` must have shape {shape}, got {a.shape}")
    if a.dtype != bool:
        if not np.issubdtype(a.dtype, np.number):
            raise InputError(f"`{name}` must be a boolean (or numeric signal) array, got {a.dtype}")
        a = np.nan_to_num(a.astype(float), nan=0.0) != 0
    return a


def equal_weight(active: np.ndarray) -> np.ndarray:
    """Weights 1/k over the k active symbols of each row, 0 elsewhere.

    Parameters
    ----------
    active : (n, m) array of bool
        True where a symbol has a non-zero signal. A numeric signal array is accepted too
        (non-zero, non-NaN = active).

    Returns
    -------
    (n, m) float array
        Each row sums to 1 over its active symbols; a row without an active symbol is all 0.
    """
    a = np.asarray(active)
    if a.ndim != 2:
        raise InputError(f"`active` must be a 2-D array (bars x symbols), got shape {a.shape}")
    a = _as_active(a, a.shape)
    k = a.sum(axis=1, keepdims=True)
    return np.where(a, 1.0 / np.maximum(k, 1), 0.0)


def inverse_volatility(returns: np.ndarray, window: int, active: np.ndarray | None = None) -> np.ndarray:
    """Weights proportional to 1 / trailing standard deviation, summing to 1 over active symbols.

    Parameters
    ----------
    returns : (n, m) float array
        Per-bar returns; NaN where unknown.
    window : int
        Number of returns (>= 2) in the trailing window; row t uses rows ``t - window + 1 .. t``.
        The standard deviation is the sample one (ddof=1).
    active : (n, m) bool array, optional
        Symbols to allocate to (default: all). Inactive symbols get weight 0.

    Returns
    -------
    (n, m) float array
        NaN for a whole row when an active symbol's volatility is undefined there (not enough
        history, a NaN in the window, or zero volatility); 0 for a row without an active symbol.
    """
    r = _as_2d_float(returns, "returns")
    window = _check_int(window, "window", 2)
    act = np.ones(r.shape, dtype=bool) if active is None else _as_active(active, r.shape)
    _, var = rolling_mean_var_nb(np.ascontiguousarray(r), window)
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = 1.0 / np.sqrt(var)
    inv = np.where(act, inv, 0.0)
    bad = (act & ~(np.isfinite(inv) & (inv > 0))).any(axis=1)
    total = inv.sum(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        w = np.where(total > 0, inv / total, 0.0)
    w[bad] = np.nan
    return w


def _check_cov(cov: object) -> np.ndarray:
    c = np.asarray(cov, dtype=float)
    if c.ndim != 2 or c.shape[0] != c.shape[1] or c.shape[0] == 0:
        raise InputError(f"`cov` must be a non-empty square matrix, got shape {c.shape}")
    if not np.isfinite(c).all():
        raise InputError("`cov` must hold finite numbers only, got NaN or inf")
    diag = np.diag(c)
    if (diag <= 0).any():
        raise InputError(f"`cov` must have a positive diagonal (variances), got {diag.tolist()}")
    scale = diag.max()
    if not np.allclose(c, c.T, rtol=0.0, atol=1e-12 * scale):
        raise InputError("`cov` must be symmetric")
    lam_min = np.linalg.eigvalsh(c).min()
    if lam_min < -1e-10 * scale:
        raise InputError(f"`cov` must be positive semi-definite, got smallest eigenvalue {lam_min:.3g}")
    return c


def risk_parity_weights(cov: np.ndarray, *, tol: float = 1e-12) -> np.ndarray:
    """Long-only weights with equal risk contributions ``w_i (cov w)_i / (w' cov w) = 1/m``.

    Solves the convex problem ``min 0.5 y' S y - (1/m) sum(log y_i)`` (S = cov scaled to unit mean
    variance), whose optimum satisfies ``y_i (S y)_i = 1/m``: L-BFGS-B with an analytic gradient
    and bounds y > 0, then Newton steps on the optimality condition until the largest residual is
    below ``tol``; w = y / sum(y).

    Parameters
    ----------
    cov : (m, m) float array
        Covariance matrix: square, symmetric, positive semi-definite, positive diagonal.
    tol : float
        Target for ``max |y_i (S y)_i - 1/m|`` (relative to 1/m), default 1e-12.

    Returns
    -------
    (m,) float array
        Positive weights summing to 1.

    Raises
    ------
    InputError
        When ``cov`` is not a valid covariance matrix, or no fully invested long-only portfolio
        has positive variance (e.g. two perfectly negatively correlated assets).
    """
    c = _check_cov(cov)
    if not (isinstance(tol, (int, float)) and 0 < tol < 1):
        raise InputError(f"`tol` must be a number in (0, 1), got {tol!r}")
    m = c.shape[0]
    s = c / np.diag(c).mean()
    b = 1.0 / m
    y0 = 1.0 / np.sqrt(np.diag(s))
    v0 = y0 @ s @ y0
    if v0 <= 1e-14 * (y0 @ y0):
        raise InputError(_NO_PARITY)
    y0 *= np.sqrt(b * m / v0)  # scale so y0' S y0 = 1 (the optimum's value)
    with np.errstate(all="ignore"):  # a singular cov may overflow on the way to "no solution"
        y = _solve(s, y0, b, tol)
        resid = y * (s @ y) - b
    if not np.isfinite(resid).all() or np.abs(resid).max() > max(tol, 1e-8) * b:
        raise InputError(_NO_PARITY)
    return y / y.sum()


_NO_PARITY = ("`cov` admits no long-only portfolio with equal risk contributions "
              "(a fully invested portfolio has zero variance)")


def _solve(s: np.ndarray, y0: np.ndarray, b: float, tol: float) -> np.ndarray:
    m = s.shape[0]

    def fun(y: np.ndarray) -> tuple[float, np.ndarray]:
        sy = s @ y
        return 0.5 * y @ sy - b * np.log(y).sum(), sy - b / y

    res = minimize(fun, y0, jac=True, method="L-BFGS-B", bounds=[(1e-300, None)] * m,
                   options={"ftol": 1e-15, "gtol": 1e-12, "maxiter": 10_000})
    y = np.maximum(res.x, 1e-300)
    for _ in range(50):  # Newton polish on g(y) = S y - b / y (Hessian S + diag(b / y^2) is PD)
        resid = y * (s @ y) - b
        if np.abs(resid).max() <= tol * b:
            break
        g = s @ y - b / y
        try:
            step = np.linalg.solve(s + np.diag(b / y**2), g)
        except np.linalg.LinAlgError:  # a singular system: no polish; the residual check decides
            break
        alpha = 1.0
        while (y - alpha * step <= 0).any() and alpha > 1e-12:
            alpha *= 0.5
        y = y - alpha * step
    return y


def risk_parity(returns: np.ndarray, window: int, *, rebalance_every: int = 21) -> np.ndarray:
    """Risk-parity weights from the trailing covariance, rebalanced periodically and held between.

    Parameters
    ----------
    returns : (n, m) float array
        Per-bar returns; NaN where unknown.
    window : int
        Rows (>= 2) in the trailing covariance window; row t uses rows ``t - window + 1 .. t``.
    rebalance_every : int
        Rebalance every this many rows (>= 1), counted from the first row whose trailing window
        is full (no NaN).

    Returns
    -------
    (n, m) float array
        NaN before the first full window. On a rebalancing row whose window holds a NaN or whose
        covariance is not usable (e.g. a flat symbol), the previous weights are held.
    """
    r = _as_2d_float(returns, "returns")
    window = _check_int(window, "window", 2)
    rebalance_every = _check_int(rebalance_every, "rebalance_every", 1)
    n, m = r.shape
    out = np.full((n, m), np.nan)
    if m == 0 or n < window:
        return out
    full = np.array([np.isfinite(r[t - window + 1:t + 1]).all() for t in range(window - 1, n)])
    hits = np.flatnonzero(full)
    if hits.size == 0:
        return out
    first = window - 1 + int(hits[0])
    current = np.full(m, np.nan)
    for t in range(first, n):
        if (t - first) % rebalance_every == 0 and full[t - window + 1]:
            try:
                current = risk_parity_weights(np.atleast_2d(np.cov(r[t - window + 1:t + 1], rowvar=False)))
            except InputError:
                pass  # hold the previous weights
        out[t] = current
    return out
