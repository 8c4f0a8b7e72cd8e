"""``pairs``: statistical-arbitrage pairs trading on two symbols ``(y, x)``, in the order given.

The rule
--------
On the log backward-adjusted closes, a rolling OLS over the last ``window`` bars where both
symbols have a close (rows t - window + 1 .. t of the joint rows) fits

    log y_i = alpha_t + beta_t log x_i + e_i,

giving the hedge ratio ``beta_t``. The spread at t is that fit's residual at t itself,
``s_t = log y_t - beta_t log x_t - alpha_t``, and its z-score is

    z_t = s_t / sd_t,    sd_t = sqrt(sum(e_i ** 2) / window)

the **population** standard deviation (ddof=0) of the window's residuals (their mean is 0: the fit
has an intercept). statsmodels' regression standard error divides by ``window - 2`` instead, so
``z = z_statsmodels * sqrt(window / (window - 2))``. As the residual at t is one of the window's,
``|z| < sqrt(window)``: a short window cannot reach a far ``entry``.

- Flat: enter **long the spread** (long y, short x) when ``z <= -entry``, **short the spread**
  (short y, long x) when ``z >= entry``.
- Long the spread exits when ``z >= -exit`` (z back inside the exit band or beyond it), short the
  spread when ``z <= exit``; an exit and the opposite entry can fall on the same bar.
- ``stop > 0``: a trade is also closed when ``|z| >= stop`` (the spread ran away); it then counts
  as stopped, flat with no new entry, until z reaches its normal exit level. No entry on a bar
  with ``|z| >= stop``.

Weights, fixed at entry: with ``d = +1`` long the spread, ``-1`` short, and ``b`` the beta of the
entry bar, ``w_y = d / (1 + |b|)`` and ``w_x = -d b / (1 + |b|)``: gross exposure
``|w_y| + |w_x| = 1``. They are held unchanged until the exit (the backtest engine trades only when
a target changes, so the hedge is not rebalanced every bar), then both are 0.

Parameters: ``window`` (60) bars of the rolling fit, at least 3; ``entry`` (2.0) and ``exit``
(0.5) z levels, ``exit < entry``; ``stop`` (0.0 = off) z level of the stop, above ``entry``.
``direction``: ``long`` trades only long-spread positions, ``short`` only short-spread ones,
``both`` both. A long-spread trade is still short x (and a short-spread one short y): the
direction names the side of the spread, not of each leg.

Signal column: z_t, the same value for both symbols.

Undefined cases: until ``window`` joint bars exist, on bars where either symbol has no close, on
windows where x does not move (beta undefined) and on exact fits (residual std below 1e-10 of the
std of log y: rounding noise), z is NaN and nothing changes: the weights held stay, 0 when flat
(so 0 during the warm-up). In particular **an open position is held through a bar where one
symbol has no close**; its z is computed again at the next joint bar.

Point in time: row t reads closes of rows <= t only (the window ends at t, the weights change only
at bars whose z they read). Logs of backward-adjusted closes: a later split or dividend multiplies
every earlier close by the same factor, which shifts log y (or log x) by a constant: beta and the
residuals do not change (alpha absorbs the shift), so z and the targets are the same in any price
basis, up to rounding (~1e-12 in z).

Command line: ``alphatwin backtest pairs --symbols KO,PEP --param window=60 --param entry=2
--param exit=0.5 --direction both``.

Examples
--------
A pair with y = x ** 1.5 (times a +-0.2% wobble) whose y drops 5% for two bars at bar 12: z
falls to -2.57 there, long the spread with the beta of that bar (1.552), out when z is back:

>>> import numpy as np
>>> t = np.arange(16)
>>> x = 100.0 * np.exp(0.1 * np.sin(t))
>>> y = x ** 1.5 * np.exp(0.002 * (-1.0) ** t) * np.where((t == 12) | (t == 13), 0.95, 1.0)
>>> z, w = compute(np.column_stack([y, x]), window=8, entry=2.0, exit=0.5)
>>> np.round(z[7:, 0], 2).tolist()
[-0.88, 0.97, -1.05, 0.89, -0.94, -2.57, -1.85, 0.45, 0.36]
>>> np.round(w[10:], 3).tolist()
[[0.0, 0.0], [0.0, 0.0], [0.392, -0.608], [0.392, -0.608], [0.0, 0.0], [0.0, 0.0]]
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from alphatwin.errors import InputError
from alphatwin.signals.base import Param, Strategy, direction_flags, register
from alphatwin.signals.pairs_nb import pairs_weights_nb, rolling_ols_nb

__all__ = ["STRATEGY", "compute", "targets", "rolling_fit"]


def _check_close(close: np.ndarray) -> np.ndarray:
    close = np.ascontiguousarray(close, dtype=np.float64)
    if close.ndim != 2 or close.shape[1] != 2:
        raise InputError(f"`close` must be a (bars x 2) array of the symbols (y, x), got shape {close.shape}")
    present = close[~np.isnan(close)]
    if not (np.isfinite(present).all() and (present > 0).all()):
        raise InputError("`close` must be > 0 and finite on every bar that has one (NaN = no bar)")
    return close


def rolling_fit(close: np.ndarray, *, window: int = 60) -> dict[str, np.ndarray]:
    """The rolling OLS of log y on log x over the joint bars of ``close`` (bars x 2, columns y
    and x): ``alpha``, ``beta``, ``resid``, ``std`` and ``z`` per bar, NaN where undefined (see the
    module docstring)."""
    window = STRATEGY.params[0].check(window)
    close = _check_close(close)
    rows = np.flatnonzero(~np.isnan(close).any(axis=1))
    ly, lx = np.log(close[rows, 0]), np.log(close[rows, 1])
    names = ("alpha", "beta", "resid", "std", "z")
    out = {k: np.full(close.shape[0], np.nan) for k in names}
    for k, v in zip(names, rolling_ols_nb(lx, ly, window)):
        out[k][rows] = v
    return out


def compute(close: np.ndarray, *, window: int = 60, entry: float = 2.0, exit: float = 0.5,
            stop: float = 0.0, direction: str = "long") -> tuple[np.ndarray, np.ndarray]:
    """``(signal, target)``, both (bars x 2): signal = z for both symbols (NaN where undefined),
    target = the weights (w_y, w_x), held through bars without a z (see the module docstring)."""
    long_, short = direction_flags(direction)
    p = STRATEGY.resolve({"window": window, "entry": entry, "exit": exit, "stop": stop})
    fit = rolling_fit(close, window=p["window"])
    # a NaN z (no joint bar, warm-up, undefined fit) leaves the weights held unchanged
    wy, wx = pairs_weights_nb(fit["z"], fit["beta"], p["entry"], p["exit"], p["stop"], long_, short)
    return np.column_stack([fit["z"], fit["z"]]), np.column_stack([wy, wx])


def targets(close: np.ndarray, *, window: int = 60, entry: float = 2.0, exit: float = 0.5,
            stop: float = 0.0, direction: str = "long") -> np.ndarray:
    """(bars x 2) portfolio weights (w_y, w_x) (see the module docstring); 0 during the warm-up."""
    return compute(close, window=window, entry=entry, exit=exit, stop=stop, direction=direction)[1]


def _validate(params: Mapping[str, Any]) -> str | None:
    if params["exit"] >= params["entry"]:
        return f"`exit` must be below `entry`, got exit={params['exit']} entry={params['entry']}"
    if params["stop"] != 0.0 and params["stop"] <= params["entry"]:
        return f"`stop` must be 0 (off) or above `entry`, got stop={params['stop']} entry={params['entry']}"
    return None


STRATEGY = register(Strategy(
    name="pairs",
    summary="trade the z-score of the rolling-OLS spread log y - beta log x - alpha of two symbols "
            "(long the spread below -entry, short above +entry, out inside +-exit)",
    params=(Param("window", 60, 3, 10_000, "bars of the rolling OLS of log y on log x"),
            Param("entry", 2.0, 0.01, 100.0, "|z| at or beyond which a trade opens"),
            Param("exit", 0.5, 0.0, 100.0, "z level (+-) back through which a trade closes"),
            Param("stop", 0.0, 0.0, 100.0, "|z| at which a trade is stopped out (0 = off)")),
    compute=compute,
    validate=_validate,
    inputs=("close",),
    panel=True,
    min_symbols=2,
    max_symbols=2,
    signal_doc="z-score of the rolling-OLS residual of log y on log x (population std of the "
               "window's residuals), the same for both symbols",
    family="mean_reversion",
    hedged=True,
))
