"""Position sizing: scale a strategy's direction (+1 / 0 / -1) into a target weight, point in time.

Row t of every rolling function reads rows <= t only. ``signal`` and ``returns`` are 1-D (one
symbol) or 2-D (bars x symbols) arrays of the same shape, oldest row first.

- :func:`fixed_fraction`: the same fraction of equity on every position.
- :func:`vol_target`: scale to a target annualized volatility, capped at ``cap``.
- :func:`kelly_fraction` / :func:`rolling_kelly`: fractional Kelly ``fraction * mean / var``.

Examples
--------
>>> import numpy as np
>>> fixed_fraction(np.array([1.0, 0.0, -1.0]), 0.25).tolist()
[0.25, 0.0, -0.25]
>>> kelly_fraction(0.001, 0.0004)
1.0
>>> kelly_fraction(0.0001, 0.0004, fraction=0.5)
0.125
"""

from __future__ import annotations

import math

import numpy as np

from alphatwin.errors import InputError
from alphatwin.risk.nb import rolling_mean_var_nb

__all__ = ["fixed_fraction", "vol_target", "kelly_fraction", "rolling_kelly"]


def _as_float(x: object, name: str) -> np.ndarray:
    a = np.asarray(x, dtype=float)
    if a.ndim not in (1, 2):
        raise InputError(f"`{name}` must be a 1-D or 2-D array, got shape {a.shape}")
    return a


def _pair(signal: object, returns: object) -> tuple[np.ndarray, np.ndarray]:
    s = _as_float(signal, "signal")
    r = _as_float(returns, "returns")
    if s.shape != r.shape:
        raise InputError(f"`signal` and `returns` must have the same shape, got {s.shape} and {r.shape}")
    return s, r


def _number(value: object, name: str, *, low: float, low_open: bool) -> float:
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool) \
        and math.isfinite(value) and (value > low if low_open else value >= low)
    if not ok:
        rel = ">" if low_open else ">="
        raise InputError(f"`{name}` must be a finite number {rel} {low}, got {value!r}")
    return float(value)


def _window(window: object) -> int:
    if isinstance(window, bool) or not isinstance(window, (int, np.integer)) or window < 2:
        raise InputError(f"`window` must be an integer >= 2, got {window!r}")
    return int(window)


def _trailing(r: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """Trailing mean and sample variance of ``r`` (1-D or 2-D), same shape as ``r``."""
    mean, var = rolling_mean_var_nb(np.ascontiguousarray(r.reshape(r.shape[0], 1 if r.ndim == 1 else r.shape[1])), window)
    return mean.reshape(r.shape), var.reshape(r.shape)


def fixed_fraction(signal: np.ndarray, fraction: float) -> np.ndarray:
    """``signal * fraction``: the same fraction of equity on every position.

    Parameters
    ----------
    signal : array of float
        Directions, +1 / 0 / -1.
    fraction : float
        Fraction of equity per position, >= 0.
    """
    fraction = _number(fraction, "fraction", low=0.0, low_open=False)
    return _as_float(signal, "signal") * fraction


def vol_target(signal: np.ndarray, returns: np.ndarray, *, target_vol: float, window: int,
               periods_per_year: float, cap: float) -> np.ndarray:
    """``signal * min(cap, target_vol / realized_vol)``, the realized vol read up to row t.

    Parameters
    ----------
    signal, returns : array of float, same shape (1-D or 2-D)
        Directions (+1 / 0 / -1) and per-bar returns.
    target_vol : float
        Target annualized volatility (> 0), e.g. 0.10.
    window : int
        Returns (>= 2) in the trailing window; row t uses rows ``t - window + 1 .. t``.
    periods_per_year : float
        Bars per year (> 0) to annualize: ``std(ddof=1) * sqrt(periods_per_year)``.
    cap : float
        Largest leverage (> 0); also used when the realized vol is 0.

    Returns
    -------
    array of float
        Target weights; 0 where the realized vol is undefined (not enough history, NaN in window).
    """
    s, r = _pair(signal, returns)
    target_vol = _number(target_vol, "target_vol", low=0.0, low_open=True)
    window = _window(window)
    periods_per_year = _number(periods_per_year, "periods_per_year", low=0.0, low_open=True)
    cap = _number(cap, "cap", low=0.0, low_open=True)
    _, var = _trailing(r, window)
    vol = np.sqrt(var) * math.sqrt(periods_per_year)
    with np.errstate(divide="ignore"):
        lev = np.minimum(cap, target_vol / vol)
    return s * np.where(np.isnan(vol), 0.0, lev)


def kelly_fraction(mean: float, var: float, *, fraction: float = 0.5, cap: float = 1.0) -> float:
    """Fractional Kelly leverage ``fraction * mean / var`` clipped to ``[-cap, cap]``.

    Parameters
    ----------
    mean, var : float
        Expected per-bar return and its variance (> 0).
    fraction : float
        Share of full Kelly (>= 0); half Kelly by default.
    cap : float
        Largest absolute leverage (> 0).
    """
    mean = _number(mean, "mean", low=-math.inf, low_open=True)
    var = _number(var, "var", low=0.0, low_open=True)
    fraction = _number(fraction, "fraction", low=0.0, low_open=False)
    cap = _number(cap, "cap", low=0.0, low_open=True)
    return float(min(cap, max(-cap, fraction * mean / var)))


def rolling_kelly(signal: np.ndarray, returns: np.ndarray, window: int, *, fraction: float = 0.5,
                  cap: float = 1.0) -> np.ndarray:
    """Fractional Kelly size in the signal's direction from the trailing mean and variance.

    Row t is ``signal_t * clip(fraction * sign(signal_t) * mean_t / var_t, 0, cap)``: the Kelly
    size of betting in the signal's direction, 0 when the trailing edge in that direction is not
    positive (the sizer never flips a position against its signal).

    Parameters
    ----------
    signal, returns : array of float, same shape (1-D or 2-D)
        Directions (+1 / 0 / -1) and per-bar returns.
    window : int
        Returns (>= 2) in the trailing window; row t uses rows ``t - window + 1 .. t``
        (sample variance, ddof=1).
    fraction : float
        Share of full Kelly (>= 0).
    cap : float
        Largest absolute leverage (> 0).

    Returns
    -------
    array of float
        0 where the trailing mean/var is undefined (short history, NaN in window, zero variance).
    """
    s, r = _pair(signal, returns)
    window = _window(window)
    fraction = _number(fraction, "fraction", low=0.0, low_open=False)
    cap = _number(cap, "cap", low=0.0, low_open=True)
    mean, var = _trailing(r, window)
    with np.errstate(divide="ignore", invalid="ignore"):
        k = np.clip(fraction * np.sign(s) * mean / var, 0.0, cap)
    k = np.where(np.isfinite(mean / np.where(var > 0, var, np.nan)), k, 0.0)
    return np.where(s == 0, 0.0, s * k) + 0.0  # + 0.0 turns -0.0 into 0.0
