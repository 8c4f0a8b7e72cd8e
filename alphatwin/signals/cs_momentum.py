"""``cs_momentum``: cross-sectional momentum. Every ``rebalance`` bars, rank the symbols by
their return from ``lookback`` bars ago to ``skip`` bars ago and buy the winners (the top
``quantile`` of them), short the losers (the bottom ``quantile``) when ``direction`` allows;
hold the weights until the next rebalance.

A panel strategy: the input is the (bars x symbols) backward-adjusted close on the union of the
symbols' timelines (NaN where a symbol has no bar), the output (bars x symbols) portfolio
weights.

- Score of symbol j at row t: R = c[t - skip] / c[t - lookback] - 1, where c[r] is the
  symbol's last close at or before row r (a missing row is a gap, not a hole in the lookback),
  counted in rows of the union timeline. A symbol has a score on row t when it has a bar on one
  of the last ``RECENT_ROWS`` (5) rows (t included: an exchange holiday or a weekend of a mixed
  24/7 universe does not drop a symbol from a ranking; one that stopped trading drops out) and a
  close at or before row ``t - lookback``.
- Rebalance rows: t0, the first row where at least 2 symbols have a score, then t0 +
  ``rebalance``, t0 + 2 ``rebalance`` ... On each, the n symbols with a score are ranked by
  R (highest first; equal scores ranked by column order, the earlier column higher) and the
  legs take k = max(1, floor(quantile x n)) symbols each (k <= n / 2, so they never overlap),
  equal-weighted. Fewer than 2 scores on a rebalance row: flat until the next one.
- Weights: ``direction=both`` +0.5 / k on the top k and -0.5 / k on the bottom k (gross 1,
  dollar neutral); ``long`` +1 / k on the top k; ``short`` -1 / k on the bottom k; 0 elsewhere.
  The weights of a rebalance row are carried to the following rows; a symbol with no bar on a
  row gets NaN on that row only (the engine keeps its active target).

Parameters: ``lookback`` (int, default 252) bars back to the start of the return window;
``skip`` (int, default 21, below ``lookback``) most recent bars left out (the 12-1 month
momentum); ``quantile`` (float, default 0.2, in (0, 0.5]) the fraction of the ranked symbols
in each leg; ``rebalance`` (int, default 21) bars between rebalances.

Signal: R on every row where the symbol has a score (the rebalance rows read it; NaN where it
has none). Target 0 before t0 (NaN where a symbol has no bar). R is a ratio of one symbol's
closes, so each symbol may be in its own price basis: the ranking is the same after
multiplying any symbol's prices by any factor. The weights at t read closes up to t only:
point in time.

Example: ``alphatwin backtest cs_momentum --symbols AAPL,MSFT,XOM,JPM,KO --param lookback=126
--param skip=5 --param quantile=0.4 --direction both``.

Examples
--------
>>> import numpy as np
>>> close = np.array([[10.0, 10, 10], [11, 10, 9], [12, 10, 8], [13, 10, 7]])
>>> targets(close, lookback=1, skip=0, quantile=0.3, rebalance=2, direction="both").tolist()
[[0.0, 0.0, 0.0], [0.5, 0.0, -0.5], [0.5, 0.0, -0.5], [0.5, 0.0, -0.5]]
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from alphatwin.errors import InputError
from alphatwin.signals.base import Param, Strategy, direction_flags, register
from alphatwin.signals.trend_nb import cs_weights_nb, lagged_ratio_nb

#: A symbol whose last bar is within this many rows (t included) is still ranked.
RECENT_ROWS = 5

__all__ = ["STRATEGY", "compute", "targets"]


def _close(close: np.ndarray) -> np.ndarray:
    close = np.ascontiguousarray(close, dtype=np.float64)
    if close.ndim != 2:
        raise InputError(f"`close` must be a 2-D (bars x symbols) array, got {close.ndim} dimension(s)")
    if (close <= 0).any() or np.isinf(close).any():
        raise InputError("`close` must be positive and finite where a symbol has a bar (NaN elsewhere)")
    return close


def compute(close: np.ndarray, *, lookback: int = 252, skip: int = 21, quantile: float = 0.2,
            rebalance: int = 21, direction: str = "long") -> tuple[np.ndarray, np.ndarray]:
    """``(signal, weights)``, both (bars x symbols): signal = c[t-skip] / c[t-lookback] - 1,
    weights of the two legs held between rebalances (see the module docstring)."""
    long_, short = direction_flags(direction)
    p = STRATEGY.resolve({"lookback": lookback, "skip": skip, "quantile": quantile, "rebalance": rebalance})
    lookback, skip, quantile, rebalance = p["lookback"], p["skip"], p["quantile"], p["rebalance"]
    close = _close(close)
    ratio = lagged_ratio_nb(close, lookback, skip, RECENT_ROWS)
    leg = 0.5 if long_ and short else 1.0
    weights = cs_weights_nb(ratio, ~np.isnan(close), rebalance, float(quantile),
                            leg if long_ else 0.0, leg if short else 0.0)
    return ratio - 1.0, weights


def targets(close: np.ndarray, *, lookback: int = 252, skip: int = 21, quantile: float = 0.2,
            rebalance: int = 21, direction: str = "long") -> np.ndarray:
    """(bars x symbols) portfolio weights (see the module docstring); 0 before the first rebalance."""
    return compute(close, lookback=lookback, skip=skip, quantile=quantile, rebalance=rebalance,
                   direction=direction)[1]


def _validate(params: Mapping[str, int | float]) -> str | None:
    if params["skip"] >= params["lookback"]:
        return f"`skip` must be below `lookback`, got skip={params['skip']} lookback={params['lookback']}"
    if not params["quantile"] > 0:
        return f"`quantile` must be in (0, 0.5], got {params['quantile']}"
    return None


STRATEGY = register(Strategy(
    name="cs_momentum",
    summary="every `rebalance` bars long the top `quantile` of symbols by c[t-skip] / c[t-lookback] "
            "(short the bottom with direction short/both), equal weight, held in between",
    params=(Param("lookback", 252, 1, 10_000, "bars back to the start of the return window"),
            Param("skip", 21, 0, 9_999, "most recent bars left out of the return window"),
            Param("quantile", 0.2, 0.0, 0.5, "fraction of the ranked symbols in each leg, in (0, 0.5]"),
            Param("rebalance", 21, 1, 10_000, "bars between rebalances")),
    compute=compute,
    panel=True,
    min_symbols=2,
    signal_doc="c[t-skip] / c[t-lookback] - 1 per symbol (ranked on rebalance rows)",
    family="momentum",
    validate=_validate,
))
