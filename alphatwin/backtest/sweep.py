"""Parameter sweeps of ``sma_cross``: every (fast, slow) pair in one kernel call.

The fused kernel (:func:`alphatwin.backtest.sweep_nb.sweep_cross_fast_nb`) runs when the cost
model has no stops, range/ATR slippage, impact, participation cap or rebalancing; otherwise
every combination runs the full kernel (:func:`~alphatwin.backtest.sweep_nb.sweep_cross_general_nb`).
Both give the same numbers where both apply (tests/backtest/test_sweep.py).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import polars as pl

from alphatwin.backtest.engine import cost_vector
from alphatwin.backtest.enums import FILL_DT, TRADE_DT
from alphatwin.backtest.params import Market, SimParams
from alphatwin.backtest.sweep_nb import OUT_COLS, sweep_cross_fast_nb, sweep_cross_general_nb
from alphatwin.errors import InputError
from alphatwin.metrics.returns import risk_free_per_period
from alphatwin.signals.base import direction_flags
from alphatwin.signals.nb import sma_rows_nb

__all__ = ["sweep_sma_cross", "pairs", "fused_applies"]


def pairs(fasts: Sequence[int], slows: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """Every (fast, slow) with fast < slow, fast-major order."""
    f = np.asarray(sorted(set(int(x) for x in fasts)), dtype=np.int64)
    s = np.asarray(sorted(set(int(x) for x in slows)), dtype=np.int64)
    ff, ss = np.meshgrid(f, s, indexing="ij")
    keep = ff < ss
    return ff[keep], ss[keep]


def fused_applies(params: SimParams) -> bool:
    """True when the fused kernel covers ``params`` (see the module docstring)."""
    c, s = params.costs, params.stops
    return (params.target_kind == "weight" and params.rebalance_every == 0
            and c.slippage_range == 0 and c.slippage_atr == 0 and c.impact_k == 0
            and math.isinf(c.participation)
            and not s.any and not params.drawdown.on)


def sweep_sma_cross(market: Market, signal_close: np.ndarray, fasts: Sequence[int],
                    slows: Sequence[int], params: SimParams | None = None, *,
                    direction: str = "long", start: int = 0, periods_per_year: float = 252.0,
                    risk_free: float = 0.0) -> pl.DataFrame:
    """Backtest ``sma_cross`` for every (fast, slow) pair with fast < slow on one symbol.

    Parameters
    ----------
    market
        One symbol's bars (shape (n, 1)), as traded, no missing bars.
    signal_close
        (n,) backward-adjusted closes the SMAs are computed from.
    fasts, slows
        Candidate windows; invalid pairs (fast >= slow) are skipped.
    params
        Fills and costs, as for :func:`alphatwin.backtest.engine.simulate`.
    periods_per_year, risk_free
        Annualization and the annual risk-free rate (docs/metrics.md).

    Returns
    -------
    polars.DataFrame
        One row per pair: ``fast, slow`` and the statistics (same definitions as a backtest's
        metrics), in fast-major order.
    """
    params = params or SimParams()
    n, m = market.shape
    if m != 1:
        raise InputError(f"a sweep runs on one symbol at a time, got {m}")
    long_, short = direction_flags(direction)
    fast, slow = pairs(fasts, slows)
    if fast.size == 0:
        raise InputError("no valid (fast, slow) pair: every fast window must be below a slow one")
    windows = np.unique(np.concatenate([fast, slow]))
    sma = sma_rows_nb(np.ascontiguousarray(signal_close, dtype=np.float64), windows)
    fi = np.searchsorted(windows, fast)
    si = np.searchsorted(windows, slow)
    rf = risk_free_per_period(risk_free, periods_per_year)  # checks it, as a backtest does
    col = lambda a: np.ascontiguousarray(a[:, 0])  # noqa: E731
    if fused_applies(params):
        c = params.costs
        out = sweep_cross_fast_nb(
            sma, fi, si, col(market.open), col(market.close), col(market.split_ratio),
            col(market.dividend), int(start), params.fill == "close", float(params.init_cash),
            long_, short, bool(params.whole_units), c.fees_bps / 1e4, c.fee_fixed, c.fee_min,
            c.slippage_bps / 1e4, float(params.leverage), float(periods_per_year), rf)
        path = "fused"
    else:
        a = np.ascontiguousarray
        out = sweep_cross_general_nb(
            sma, fi, si, a(market.open), a(market.high), a(market.low), a(market.close),
            a(market.volume), a(market.split_ratio), a(market.dividend), a(market.atr),
            a(market.sigma), a(market.adv), int(start), params.fill == "close",
            float(params.init_cash), long_, short, bool(params.whole_units),
            int(params.rebalance_every), cost_vector(params), float(periods_per_year), rf,
            np.zeros(3 * n + 1, dtype=FILL_DT), np.zeros(n + 2, dtype=TRADE_DT))
        path = "general"
    return _frame(fast, slow, out, n - start, periods_per_year, path)


def _frame(fast: np.ndarray, slow: np.ndarray, out: np.ndarray, n_bars: int, ppy: float,
           path: str) -> pl.DataFrame:
    cols = {name: out[:, i] for i, name in enumerate(OUT_COLS)}
    total = cols["total_return"]
    years = n_bars / ppy
    with np.errstate(divide="ignore", invalid="ignore"):
        cagr = np.where(total > -1, np.power(np.maximum(1 + total, 0), 1 / years) - 1, -1.0) \
            if years > 0 else np.full_like(total, np.nan)
        mdd = cols["max_drawdown"]
        calmar = np.where(mdd < 0, cagr / np.abs(mdd), np.nan)
        closed = cols["n_closed_trades"]
        win_rate = np.where(closed > 0, cols["n_wins"] / closed, np.nan)
        gw, gl = cols["gross_wins"], cols["gross_losses"]
        profit_factor = np.where(gl > 0, gw / gl, np.where(gw > 0, np.inf, np.nan))
        avg_hold = np.where(cols["n_trades"] > 0, cols["sum_holding_bars"] / cols["n_trades"], np.nan)
    return pl.DataFrame({
        "fast": fast, "slow": slow,
        "total_return": total, "cagr": cagr, "annual_volatility": cols["annual_volatility"],
        "sharpe": cols["sharpe"], "sortino": cols["sortino"], "calmar": calmar,
        "max_drawdown": mdd, "max_drawdown_duration": cols["max_drawdown_duration"].astype(np.int64),
        "n_trades": cols["n_trades"].astype(np.int64),
        "n_closed_trades": closed.astype(np.int64), "win_rate": win_rate,
        "profit_factor": profit_factor, "avg_holding_bars": avg_hold,
        "exposure": cols["exposure"], "final_equity": cols["final_equity"],
        "total_fees": cols["total_fees"],
    }).with_columns(pl.lit(path).alias("kernel"))
