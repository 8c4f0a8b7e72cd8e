"""Engle-Granger cointegration on log prices, to pick the pairs the ``pairs`` strategy trades.

:func:`engle_granger` tests one ordered pair (y, x) with ``statsmodels.tsa.stattools.coint``
(the augmented Engle-Granger two-step test: OLS of log y on log x and the deterministic terms,
then an ADF test without constant on the residuals, MacKinnon p-values), and adds the hedge
ratio of that OLS and the half-life of its residual (the spread). :func:`rank_pairs` runs it on
every pair of a set of symbols and sorts them by p-value.

Half-life: the AR(1) fit ``ds_t = a + b s_{t-1}`` of the spread by OLS; the spread's
deviations shrink by the factor ``|1 + b|`` a bar, so ``half_life = -ln 2 / ln|1 + b|`` bars,
``inf`` when ``|1 + b| >= 1`` (``b >= 0``: no pull back to the mean; ``b <= -2``: overshooting
that grows), 0 at ``b = -1``.

The Engle-Granger test is not symmetric: (y, x) and (x, y) give different statistics.
:func:`rank_pairs` tests each unordered pair once, with y the symbol that comes first in the
input order.

Examples
--------
>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> x = 50.0 * np.exp(np.cumsum(rng.normal(0, 0.01, 500)))
>>> y = x ** 2 * np.exp(rng.normal(0, 0.01, 500))
>>> res = engle_granger(y, x)
>>> res.pvalue < 0.01, round(res.beta, 2), res.half_life < 2
(True, 2.0, True)
>>> rank_pairs({"Y": y, "X": x}).select("y", "x", "n_obs", "cointegrated").rows()
[('Y', 'X', 500, True)]
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

from alphatwin.errors import InputError

__all__ = ["EGResult", "engle_granger", "half_life", "rank_pairs", "TRENDS", "MIN_OBS"]

#: Deterministic terms of the cointegrating regression (statsmodels' names): constant, constant
#: and linear trend, constant and quadratic trend, none.
TRENDS = ("c", "ct", "ctt", "n")
#: Fewest observations :func:`engle_granger` accepts: below ~25 statsmodels' default lag search
#: over-fits the ADF regression (a statistic of exactly 0 at 20 observations).
MIN_OBS = 30
_AUTOLAGS = ("aic", "bic", "t-stat", None)
_SCHEMA = {"y": pl.String, "x": pl.String, "n_obs": pl.Int64, "stat": pl.Float64,
           "pvalue": pl.Float64, "beta": pl.Float64, "half_life": pl.Float64,
           "cointegrated": pl.Boolean}


@dataclass(frozen=True)
class EGResult:
    """One Engle-Granger test of log y on log x.

    ``stat`` the ADF t-statistic of the residuals (``-inf`` when the two are collinear),
    ``pvalue`` MacKinnon's asymptotic p-value (0 when collinear), ``crit`` the critical values
    by level (``"1%"``, ``"5%"``, ``"10%"``; NaN with ``trend="n"``), ``beta`` and ``alpha`` the
    OLS hedge ratio and constant (``log y = alpha + beta log x [+ trend] + s``; alpha 0 with
    ``trend="n"``), ``half_life`` the spread's half-life in bars (see the module docstring).
    """

    stat: float
    pvalue: float
    crit: dict[str, float]
    beta: float
    alpha: float
    half_life: float


def _log_prices(values: np.ndarray, name: str) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1:
        raise InputError(f"`{name}` must be a 1-D array of prices, got shape {arr.shape}")
    if not (np.isfinite(arr).all() and (arr > 0).all()):
        raise InputError(f"`{name}` must hold finite prices > 0 (drop the missing rows first)")
    return np.log(arr)


def _check_options(trend: str, maxlag: int | None, autolag: str | None) -> None:
    if trend not in TRENDS:
        raise InputError(f"`trend` must be one of {', '.join(TRENDS)}, got {trend!r}")
    if autolag not in _AUTOLAGS:
        raise InputError(f"`autolag` must be one of aic, bic, t-stat or None, got {autolag!r}")
    if maxlag is not None and (isinstance(maxlag, bool) or not isinstance(maxlag, (int, np.integer))
                               or maxlag < 0):
        raise InputError(f"`maxlag` must be None or an integer >= 0, got {maxlag!r}")


def half_life(spread: np.ndarray) -> float:
    """Half-life in bars of ``spread`` from the OLS fit ``ds_t = a + b s_{t-1}``:
    ``-ln 2 / ln|1 + b|``, ``inf`` when ``|1 + b| >= 1`` (see the module docstring).

    >>> round(half_life(0.5 ** np.arange(20.0)), 9)  # halves every bar: b = -0.5
    1.0
    """
    s = np.asarray(spread, dtype=np.float64)
    if s.ndim != 1 or s.size < 3 or not np.isfinite(s).all():
        raise InputError(f"`spread` must be a finite 1-D array of at least 3 values, got shape {s.shape}")
    design = np.column_stack([np.ones(s.size - 1), s[:-1]])
    b = float(np.linalg.lstsq(design, np.diff(s), rcond=None)[0][1])
    phi = abs(1.0 + b)
    if phi >= 1.0:
        return math.inf
    return 0.0 if phi == 0.0 else -math.log(2.0) / math.log(phi)


def engle_granger(y: np.ndarray, x: np.ndarray, *, trend: str = "c", maxlag: int | None = None,
                  autolag: str | None = "aic") -> EGResult:
    """Engle-Granger test of the log prices of ``y`` on those of ``x`` (aligned, NaN-free,
    > 0, at least :data:`MIN_OBS` rows), with ``statsmodels.tsa.stattools.coint``'s ``trend``,
    ``maxlag`` and ``autolag``; plus the OLS hedge ratio and the spread's half-life."""
    # statsmodels takes ~1.5 s to import: only when a test runs (get_strategy imports this module)
    from statsmodels.regression.linear_model import OLS
    from statsmodels.tools.sm_exceptions import CollinearityWarning
    from statsmodels.tsa.stattools import coint
    from statsmodels.tsa.tsatools import add_trend

    _check_options(trend, maxlag, autolag)
    ly, lx = _log_prices(y, "y"), _log_prices(x, "x")
    if ly.size != lx.size:
        raise InputError(f"`y` and `x` must have the same length, got {ly.size} and {lx.size}")
    if ly.size < MIN_OBS:
        raise InputError(f"`y` and `x` need at least {MIN_OBS} observations, got {ly.size}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CollinearityWarning)  # reported as stat -inf, p-value 0
        try:
            stat, pvalue, crit = coint(ly, lx, trend=trend, maxlag=maxlag, autolag=autolag)
        except ValueError as exc:  # maxlag too large for the sample
            raise InputError(f"`maxlag` {maxlag} is too large for {ly.size} observations: {exc}") from None
    design = lx[:, None] if trend == "n" else add_trend(lx[:, None], trend=trend, prepend=False)
    fit = OLS(ly, design).fit()
    return EGResult(stat=float(stat), pvalue=float(pvalue),
                    crit=dict(zip(("1%", "5%", "10%"), map(float, crit))),
                    beta=float(fit.params[0]), alpha=0.0 if trend == "n" else float(fit.params[1]),
                    half_life=half_life(fit.resid))


def _columns(closes: Mapping[str, np.ndarray] | np.ndarray,
             symbols: Sequence[str] | None) -> tuple[list[str], np.ndarray]:
    """``(symbols, (n, m) float array)`` from a dict of equal-length arrays or an array."""
    if isinstance(closes, Mapping):
        if symbols is not None:
            raise InputError("`symbols` goes with an array of closes; a dict names its own columns")
        names = [str(k) for k in closes]
        arrays = [np.asarray(v, dtype=np.float64) for v in closes.values()]
        if any(a.ndim != 1 for a in arrays) or len({a.size for a in arrays}) > 1:
            raise InputError("`closes` must map each symbol to a 1-D array, all of one length "
                             "(one common timeline, NaN where a symbol has no close)")
        data = np.column_stack(arrays) if arrays else np.empty((0, 0))
    else:
        data = np.asarray(closes, dtype=np.float64)
        if data.ndim != 2:
            raise InputError(f"`closes` must be a (bars x symbols) array, got shape {data.shape}")
        names = [f"S{i}" for i in range(data.shape[1])] if symbols is None else [str(s) for s in symbols]
        if len(names) != data.shape[1]:
            raise InputError(f"`symbols` names {len(names)} symbols for {data.shape[1]} columns of `closes`")
    if len(set(names)) != len(names):
        raise InputError("`symbols` must not repeat a name")
    if len(names) < 2:
        raise InputError(f"`closes` must hold at least 2 symbols to pair, got {len(names)}")
    bad = [n for n, col in zip(names, data.T) if not (col[~np.isnan(col)] > 0).all()
           or np.isinf(col).any()]
    if bad:
        raise InputError(f"closes of {bad[0]} must be > 0 and finite (NaN = no close)")
    return names, data


def rank_pairs(closes: Mapping[str, np.ndarray] | np.ndarray, symbols: Sequence[str] | None = None, *,
               pvalue: float = 0.05, min_obs: int = 60, trend: str = "c", maxlag: int | None = None,
               autolag: str | None = "aic") -> pl.DataFrame:
    """Engle-Granger test of every unordered pair of symbols, most cointegrated first.

    Parameters
    ----------
    closes
        Prices on one common timeline (NaN where a symbol has no close): a dict symbol -> 1-D
        array, or a (bars x symbols) array with ``symbols`` naming its columns (default S0, S1..).
    pvalue
        Significance level: ``cointegrated`` is ``pvalue < this``.
    min_obs
        Fewest rows where both symbols have a close for a pair to be tested (at least
        :data:`MIN_OBS`); a pair with fewer gets a row with null statistics, not cointegrated.
    trend, maxlag, autolag
        As in :func:`engle_granger`.

    Returns
    -------
    polars.DataFrame
        One row per pair: ``y`` (the symbol first in the input order), ``x``, ``n_obs`` (rows
        where both have a close), ``stat``, ``pvalue``, ``beta``, ``half_life``, ``cointegrated``;
        sorted by p-value (untested pairs last), then by y and x.
    """
    _check_options(trend, maxlag, autolag)
    if not (isinstance(pvalue, (int, float)) and 0.0 < pvalue < 1.0):
        raise InputError(f"`pvalue` must be a number in (0, 1), got {pvalue!r}")
    if isinstance(min_obs, bool) or not isinstance(min_obs, (int, np.integer)) or min_obs < MIN_OBS:
        raise InputError(f"`min_obs` must be an integer >= {MIN_OBS}, got {min_obs!r}")
    names, data = _columns(closes, symbols)
    rows = []
    for i in range(len(names)):
        for j in range(i + 1, len(names)):
            both = ~np.isnan(data[:, i]) & ~np.isnan(data[:, j])
            row = {"y": names[i], "x": names[j], "n_obs": int(both.sum()), "stat": None,
                   "pvalue": None, "beta": None, "half_life": None, "cointegrated": False}
            if row["n_obs"] >= min_obs:
                res = engle_granger(data[both, i], data[both, j], trend=trend, maxlag=maxlag, autolag=autolag)
                row.update(stat=res.stat, pvalue=res.pvalue, beta=res.beta, half_life=res.half_life,
                           cointegrated=res.pvalue < pvalue)
            rows.append(row)
    return pl.DataFrame(rows, schema=_SCHEMA, orient="row").sort(["pvalue", "y", "x"], nulls_last=True)
