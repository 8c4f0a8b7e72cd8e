"""Return-based performance metrics of one series of simple per-period returns.

Every function takes a 1-D array of simple returns ``r[i] = equity[i] / equity[i-1] - 1`` and
follows empyrical-reloaded 0.7.1 (``empyrical.stats``) exactly, NaN handling included: a NaN
return counts as 0 when compounding and is skipped by means and standard deviations (it still
counts in ``len(returns)``, which sets the number of years). ``tests/metrics`` checks every
function against empyrical to 1e-9. The one deliberate difference: :func:`cagr` is NaN when the
ending value is negative. Formulas and edge cases: ``docs/metrics.md``.

``risk_free`` is an annual rate; it becomes the per-period rate ``(1 + rf) ** (1 / ppy) - 1``
(:func:`risk_free_per_period`), which is what empyrical's ``risk_free`` / ``required_return``
expect.
"""

from __future__ import annotations

import math

import numpy as np

from alphatwin.errors import InputError

__all__ = [
    "risk_free_per_period",
    "total_return",
    "cagr",
    "annual_volatility",
    "sharpe",
    "downside_risk",
    "sortino",
    "drawdown_series",
    "max_drawdown",
    "max_drawdown_duration",
    "calmar",
]

_NAN = math.nan


def _returns(returns: np.ndarray) -> np.ndarray:
    r = np.asarray(returns, dtype=np.float64)
    if r.ndim != 1:
        raise InputError(f"`returns` must be a 1-D array of per-period returns, got shape {r.shape}")
    return r


def _ppy(periods_per_year: float) -> float:
    ppy = float(periods_per_year)
    if not (math.isfinite(ppy) and ppy > 0):
        raise InputError(f"`periods_per_year` must be a positive number, got {periods_per_year!r}")
    return ppy


def risk_free_per_period(risk_free: float, periods_per_year: float) -> float:
    """The per-period rate that compounds to the annual rate ``risk_free``: ``(1+rf)^(1/ppy) - 1``.

    Examples
    --------
    >>> round(risk_free_per_period(0.05, 252), 10)
    0.0001936305
    """
    rf = float(risk_free)
    if not (math.isfinite(rf) and rf > -1):
        raise InputError(f"`risk_free` must be an annual rate > -1 (0.02 = 2%), got {risk_free!r}")
    ppy = _ppy(periods_per_year)
    return 0.0 if rf == 0 else (1.0 + rf) ** (1.0 / ppy) - 1.0


def _present(r: np.ndarray) -> np.ndarray:
    """The non-NaN returns."""
    nan = np.isnan(r)
    return r[~nan] if nan.any() else r


def _std(x: np.ndarray) -> float:
    """Sample standard deviation (ddof=1) of NaN-free ``x``: NaN below two values, exactly 0 when
    all values are equal (the mean of equal values can miss them by an ulp; empyrical's
    ``_zero_dispersion_std`` does the same for the Sharpe ratio)."""
    if x.size < 2:
        return _NAN
    if x.min() == x.max():
        return 0.0
    return float(np.std(x, ddof=1))


def _mean(x: np.ndarray) -> float:
    return float(x.mean()) if x.size else _NAN


def _divide(a: float, b: float) -> float:
    """``a / b`` with IEEE semantics (x/0 = +-inf, 0/0 = NaN) instead of ZeroDivisionError."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.float64(a) / np.float64(b))


def _wealth(r: np.ndarray) -> np.ndarray:
    """Cumulative wealth after each return, starting from 1 (NaN returns count as 0)."""
    return np.cumprod(1.0 + np.where(np.isnan(r), 0.0, r))


def _growth(r: np.ndarray) -> np.float64:
    """Ending wealth ``prod(1 + r)`` from 1, NaN returns as 0 (the same product as empyrical's)."""
    return np.float64(np.nanprod(r + 1.0))


def total_return(returns: np.ndarray) -> float:
    """Compounded return ``prod(1 + r) - 1``; NaN for an empty series.

    Examples
    --------
    >>> total_return(np.array([0.5, -0.5]))
    -0.25
    """
    r = _returns(returns)
    if r.size == 0:
        return _NAN
    return float(_growth(r) - 1.0)


def cagr(returns: np.ndarray, periods_per_year: float) -> float:
    """Compound annual growth rate ``(1 + total_return) ** (ppy / n) - 1``.

    ``n = len(returns)``, so the series covers ``n / ppy`` years. NaN for an empty series or a
    negative ending value (where empyrical returns a real number when ``ppy / n`` is an
    integer); -1 when the ending value is 0.

    Examples
    --------
    >>> round(cagr(np.array([0.1, 0.1]), 2), 12)  # two half-years of +10%: one year of +21%
    0.21
    """
    r = _returns(returns)
    ppy = _ppy(periods_per_year)
    if r.size == 0:
        return _NAN
    ending = _growth(r)
    if ending < 0:  # equity ended below 0: there is no growth rate
        return _NAN
    years = r.size / ppy
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        return float(ending ** (1.0 / years) - 1.0)


def annual_volatility(returns: np.ndarray, periods_per_year: float) -> float:
    """Sample standard deviation of the returns (ddof=1) times ``sqrt(ppy)``; NaN below 2 returns."""
    r = _returns(returns)
    ppy = _ppy(periods_per_year)
    if r.size < 2:
        return _NAN
    return _std(_present(r)) * ppy ** 0.5


def sharpe(returns: np.ndarray, periods_per_year: float, *, risk_free: float = 0.0) -> float:
    """Annualized Sharpe ratio ``mean(r - rf_p) / std(r - rf_p, ddof=1) * sqrt(ppy)``.

    ``rf_p`` is the per-period risk-free rate (:func:`risk_free_per_period`). NaN below two
    returns; with a zero standard deviation: +-inf, or NaN when the mean excess return is 0.
    """
    r = _returns(returns)
    ppy = _ppy(periods_per_year)
    rf = risk_free_per_period(risk_free, ppy)
    if r.size < 2:
        return _NAN
    excess = _present(r) - rf
    return _divide(_mean(excess), _std(excess)) * math.sqrt(ppy)


def downside_risk(returns: np.ndarray, periods_per_year: float, *, risk_free: float = 0.0) -> float:
    """Annualized downside deviation ``sqrt(mean(min(r - rf_p, 0) ** 2)) * sqrt(ppy)``.

    The mean runs over every (non-NaN) return, not only the ones below ``rf_p``. NaN for an
    empty series.
    """
    r = _returns(returns)
    ppy = _ppy(periods_per_year)
    rf = risk_free_per_period(risk_free, ppy)
    if r.size == 0:
        return _NAN
    below = np.minimum(_present(r) - rf, 0.0)
    return math.sqrt(_mean(below * below)) * math.sqrt(ppy)


def sortino(returns: np.ndarray, periods_per_year: float, *, risk_free: float = 0.0) -> float:
    """Annualized Sortino ratio ``mean(r - rf_p) * ppy / downside_risk``.

    NaN below two returns; +inf when no return is below ``rf_p`` and the mean excess return is
    positive, NaN when it is 0 as well.
    """
    r = _returns(returns)
    ppy = _ppy(periods_per_year)
    if r.size < 2:
        return _NAN
    rf = risk_free_per_period(risk_free, ppy)
    annual_excess = _mean(_present(r) - rf) * ppy
    return _divide(annual_excess, downside_risk(r, ppy, risk_free=risk_free))


def drawdown_series(returns: np.ndarray) -> np.ndarray:
    """Drawdown after each return: ``W[i] / max(1, W[0..i]) - 1`` with ``W`` the cumulative wealth.

    The running peak starts at the initial wealth 1, so a first negative return is already a
    drawdown. Values are <= 0; one value per return.

    Examples
    --------
    >>> drawdown_series(np.array([-0.5, 1.0, 0.5])).tolist()
    [-0.5, 0.0, 0.0]
    """
    r = _returns(returns)
    wealth = _wealth(r)
    peak = np.fmax.accumulate(np.concatenate(([1.0], wealth)))[1:]
    with np.errstate(invalid="ignore", divide="ignore"):
        return (wealth - peak) / peak


def max_drawdown(returns: np.ndarray) -> float:
    """The deepest drawdown, a fraction <= 0 (-0.25 = a 25% fall from a peak).

    0 when wealth never falls below a previous peak (or its start); NaN for an empty series.
    """
    r = _returns(returns)
    if r.size == 0:
        return _NAN
    return float(np.fmin.reduce(drawdown_series(r)))


def max_drawdown_duration(returns: np.ndarray) -> int:
    """The longest drawdown in bars: from a peak to the bar it is regained, or to the last bar.

    A peak is the last bar whose wealth equals the running maximum (the start, before the first
    return, counts); a drawdown regained at bar ``k`` from a peak at bar ``p`` lasts ``k - p``
    bars, one still open at the end ``n - 1 - p``. 0 when there is no drawdown or no return.

    Examples
    --------
    >>> max_drawdown_duration(np.array([0.5, -0.5, 0.0, 1.0, -0.1]))  # peak at 0, regained at 3
    3
    """
    r = _returns(returns)
    under = drawdown_series(r) < 0
    if not under.any():
        return 0
    edges = np.diff(np.concatenate(([0], under.astype(np.int8), [0])))
    starts = np.flatnonzero(edges == 1)  # first bar under water; the peak is the bar before
    stops = np.flatnonzero(edges == -1)  # first bar back at the peak (n when never regained)
    lengths = stops - starts + 1
    lengths[stops == r.size] -= 1  # still under water at the end: the run stops at the last bar
    return int(lengths.max())


def calmar(returns: np.ndarray, periods_per_year: float) -> float:
    """Calmar ratio ``cagr / |max_drawdown|``; NaN without a drawdown or when it is infinite."""
    r = _returns(returns)
    ppy = _ppy(periods_per_year)
    mdd = max_drawdown(r)
    if not mdd < 0:
        return _NAN
    ratio = cagr(r, ppy) / abs(mdd)
    return _NAN if math.isinf(ratio) else ratio
