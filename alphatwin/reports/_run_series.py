"""The series a backtest report derives from a stored run: benchmark, monthly returns, rolling
Sharpe, adjusted prices with the strategy's overlays, trade markers, position weights.

Definitions are in :mod:`alphatwin.reports.backtest`. Backtest tables hold naive UTC timestamps;
``clean.bars`` holds TIMESTAMPTZ, read here ``AT TIME ZONE 'UTC'`` so both join.
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np
import polars as pl

from alphatwin.errors import AlphaTwinError

__all__ = ["adjusted_closes", "with_benchmark", "return_metrics", "monthly_returns", "rolling_window",
           "rolling_sharpe", "chart_symbols", "prices", "outliers", "markers", "weights"]

_UTC_TS = "(ts AT TIME ZONE 'UTC')"


def _bars(con: Any, row: dict[str, Any], symbols: list[str], columns: str, since: str) -> pl.DataFrame:
    marks = ", ".join("?" for _ in symbols)
    return con.sql(
        f"SELECT symbol, {_UTC_TS} AS ts, {columns} FROM clean.bars WHERE interval = ? AND symbol IN ({marks}) "
        f"AND {_UTC_TS} >= ? AND {_UTC_TS} <= ? ORDER BY symbol, ts", params=[row["interval"], *symbols, row[since], row["data_end"]]).pl()


def adjusted_closes(con: Any, row: dict[str, Any], equity: pl.DataFrame) -> pl.DataFrame:
    """``symbol, ts, adj_close`` of the run's symbols over the traded bars."""
    if equity.height == 0:
        return pl.DataFrame(schema={"symbol": pl.String, "ts": pl.Datetime("us"), "adj_close": pl.Float64})
    return _bars(con, row, list(row["symbols"]), "adj_close", "run_start")


def with_benchmark(equity: pl.DataFrame, closes: pl.DataFrame, init_cash: float,
                   symbols: list[str] | None = None) -> pl.DataFrame:
    """``equity`` plus ``benchmark`` (equal-cash buy and hold, total return, no costs) and its
    drawdown. ``symbols`` (default: those in ``closes``) share the cash equally; one without a
    bar keeps its share in cash."""
    if equity.height == 0:
        return equity.with_columns(benchmark=pl.lit(None, pl.Float64), benchmark_drawdown=pl.lit(None, pl.Float64))
    symbols = list(symbols) if symbols else (closes["symbol"].unique(maintain_order=True).to_list() or [None])
    wide = equity.select("ts")
    for i, symbol in enumerate(symbols):
        one = closes.filter(pl.col("symbol") == symbol).select("ts", pl.col("adj_close").alias(f"c{i}"))
        wide = wide.join(one, on="ts", how="left")
    growth = []
    for i in range(len(symbols)):
        col = pl.col(f"c{i}").forward_fill() if f"c{i}" in wide.columns else pl.lit(None, pl.Float64)
        # before its first bar a symbol's share stays in cash (growth 1)
        growth.append((col / col.drop_nulls().first()).fill_null(1.0))
    bench = wide.select((pl.sum_horizontal(growth) / len(symbols) * init_cash).alias("benchmark"))["benchmark"]
    out = equity.with_columns(benchmark=bench)
    return out.with_columns(benchmark_drawdown=pl.col("benchmark") / pl.col("benchmark").cum_max() - 1.0)


def return_metrics(values: np.ndarray, init_cash: float, ppy: float, risk_free: float) -> dict[str, float | None]:
    """The return metrics of an equity curve (the benchmark's), as the run's own are computed."""
    from alphatwin.metrics import returns as m
    from alphatwin.metrics.summary import equity_returns

    if values.size == 0:
        return {}
    r = equity_returns(values.astype(np.float64), init_cash)
    out = {"total_return": m.total_return(r), "cagr": m.cagr(r, ppy), "annual_volatility": m.annual_volatility(r, ppy),
           "sharpe": m.sharpe(r, ppy, risk_free=risk_free), "sortino": m.sortino(r, ppy, risk_free=risk_free),
           "max_drawdown": m.max_drawdown(r), "calmar": m.calmar(r, ppy)}
    return {k: (None if not np.isfinite(v) else float(v)) for k, v in out.items()}


def monthly_returns(equity: pl.DataFrame, init_cash: float) -> pl.DataFrame:
    """``year, month, return``: month 1-12, and month 13 for the whole year (both compounded)."""
    schema = {"year": pl.Int32, "month": pl.Int8, "return": pl.Float64}
    if equity.height == 0:
        return pl.DataFrame(schema=schema)
    last = (equity.sort("ts").group_by(pl.col("ts").dt.year().alias("year"), pl.col("ts").dt.month().alias("month"),
                                      maintain_order=True).agg(pl.col("equity").last()))
    months = last.with_columns(
        (pl.col("equity") / pl.col("equity").shift(1).fill_null(init_cash) - 1.0).alias("return"))
    years = (last.group_by("year", maintain_order=True).agg(pl.col("equity").last())
             .with_columns((pl.col("equity") / pl.col("equity").shift(1).fill_null(init_cash) - 1.0).alias("return"),
                           pl.lit(13).alias("month")))
    cols = list(schema)
    return pl.concat([months.select(cols).cast(schema), years.select(cols).cast(schema)])


def rolling_window(ppy: float) -> int:
    """Bars in the rolling Sharpe: half a year of bars (126 for daily bars), at least 2."""
    return max(2, round(ppy / 2))


def rolling_sharpe(equity: pl.DataFrame, window: int, ppy: float, risk_free: float) -> pl.DataFrame:
    """``ts, rolling_sharpe``: the annualized Sharpe ratio of the last ``window`` bar returns; null
    before ``window`` bars and on a window without variation."""
    from alphatwin.metrics.returns import risk_free_per_period

    if equity.height == 0:
        return pl.DataFrame(schema={"ts": pl.Datetime("us"), "rolling_sharpe": pl.Float64})
    excess = pl.col("return") - risk_free_per_period(risk_free, ppy)
    mean = excess.rolling_mean(window, min_samples=window)
    std = excess.rolling_std(window, min_samples=window, ddof=1)
    sharpe = pl.when(std > 1e-12 * (mean.abs() + 1e-300)).then(mean / std * np.sqrt(ppy))
    return equity.select("ts", sharpe.alias("rolling_sharpe"))


def chart_symbols(symbols: list[str], trades: pl.DataFrame, limit: int) -> list[str]:
    """The symbols drawn in the price chart: most trades first, then the run's order; at most ``limit``."""
    counts = dict(trades.group_by("symbol").len().iter_rows()) if trades.height else {}
    order = {s: i for i, s in enumerate(symbols)}
    return sorted(symbols, key=lambda s: (-counts.get(s, 0), order[s]))[:limit]


def _overlay_fn(row: dict[str, Any]) -> Any:
    from alphatwin.signals.base import get_strategy

    try:
        fn = get_strategy(row["strategy"]).overlays
    except AlphaTwinError:  # a SQL strategy whose file is not where the defaults look
        return None
    if fn is None:
        return None
    accepted = set(inspect.signature(fn).parameters)
    params = {k: v for k, v in (row["params"] or {}).items() if k in accepted}
    return lambda close: fn(close, **params)


def prices(con: Any, row: dict[str, Any], symbols: list[str]) -> pl.DataFrame:
    """``symbol, ts, series, value``: the backward-adjusted close and the strategy's overlays
    (computed over every bar the run read, so the warm-up is the strategy's), from the first
    traded bar on."""
    frame = _bars(con, row, symbols, "adj_close", "data_start")
    overlay = _overlay_fn(row)
    parts = []
    for symbol in symbols:
        one = frame.filter(pl.col("symbol") == symbol)
        cols = {"close": one["adj_close"].to_numpy()}
        if overlay is not None and one.height:
            cols.update(overlay(one["adj_close"].to_numpy()))
        wide = one.select("symbol", "ts").with_columns(**{k: pl.Series(v) for k, v in cols.items()})
        parts.append(wide.filter(pl.col("ts") >= row["run_start"]).unpivot(
            index=["symbol", "ts"], variable_name="series", value_name="value"))
    schema = {"symbol": pl.String, "ts": pl.Datetime("us"), "series": pl.String, "value": pl.Float64}
    return pl.concat(parts).drop_nulls("value").filter(pl.col("value").is_not_nan()) if parts else pl.DataFrame(
        schema=schema)


def outliers(con: Any, row: dict[str, Any], symbols: list[str]) -> pl.DataFrame:
    """``symbol, ts, price``: the traded bars the quality gate flagged as outliers
    (``clean.bars.is_outlier``), at their adjusted close."""
    frame = _bars(con, row, symbols, "adj_close AS price, is_outlier", "run_start")
    return frame.filter(pl.col("is_outlier")).drop("is_outlier")


def markers(con: Any, row: dict[str, Any], trades: pl.DataFrame, symbols: list[str]) -> pl.DataFrame:
    """One row per fill of the drawn symbols (``event`` buy or sell, its reason), at the fill
    price put in the adjusted basis (price x ``clean.bars.adj_factor`` of the fill's bar: a fill
    is priced in its own bar's basis), with the trade it opens or closes."""
    marks = ", ".join("?" for _ in symbols)
    fills = con.sql(f"SELECT symbol, ts, units, price AS fill_price, reason, fee + slippage + impact AS cost "
                    f"FROM backtest.fills WHERE run_id = ? AND symbol IN ({marks}) ORDER BY fill_no",
                    params=[row["run_id"], *symbols]).pl()
    if fills.height == 0:
        return pl.DataFrame()
    factors = _bars(con, row, symbols, "adj_factor", "data_start")
    links = _trade_links(fills, trades)
    facts = trades.select(pl.col("trade_no").alias("closes"), "pnl", "return", "bars_held")
    out = (fills.with_columns(links).join(factors, on=["symbol", "ts"], how="left")
           .join(trades.select(pl.col("trade_no").alias("opens"), "direction"), on="opens", how="left")
           .join(facts, on="closes", how="left"))
    return out.with_columns(price=pl.col("fill_price") * pl.col("adj_factor"),
                            event=pl.when(pl.col("units") > 0).then(pl.lit("buy")).otherwise(pl.lit("sell"))
                            ).drop("adj_factor")


def _trade_links(fills: pl.DataFrame, trades: pl.DataFrame) -> list[pl.Series]:
    """``opens`` / ``closes``: the trade whose first fill this is, and the closed trade whose last
    fill this is. Trades run from zero to zero and each fill belongs to one trade, so a symbol's
    fills, in order, are its trades' ``n_fills`` one after the other."""
    plan: dict[str, list[tuple[int, int, bool]]] = {}
    for symbol, no, n, closed in trades.sort("trade_no").select(
            "symbol", "trade_no", "n_fills", pl.col("exit_ts").is_not_null()).iter_rows():
        plan.setdefault(symbol, []).append((no, n, closed))
    at: dict[str, tuple[int, int]] = {}  # symbol -> (index of its current trade, fills of it seen)
    opens: list[int | None] = []
    closes: list[int | None] = []
    for (symbol,) in fills.select("symbol").iter_rows():
        i, k = at.get(symbol, (0, 0))
        mine = plan.get(symbol, [])
        if i >= len(mine):  # more fills than the trades account for: leave them unlinked
            opens.append(None)
            closes.append(None)
            continue
        no, n, closed = mine[i]
        opens.append(no if k == 0 else None)
        closes.append(no if closed and k == n - 1 else None)
        at[symbol] = (i + 1, 0) if k + 1 >= n else (i, k + 1)
    return [pl.Series("opens", opens, pl.Int64), pl.Series("closes", closes, pl.Int64)]


def weights(con: Any, row: dict[str, Any], equity: pl.DataFrame, symbols: list[str]) -> pl.DataFrame:
    """``symbol, ts, weight, signal``: position value over equity at each bar's close, and what the
    strategy's signal was (``signals.<strategy>`` rows written by this run; null when none)."""
    marks = ", ".join("?" for _ in symbols)
    pos = con.sql(f"SELECT symbol, ts, value FROM backtest.positions WHERE run_id = ? AND symbol IN ({marks}) "
                      "ORDER BY symbol, ts", params=[row["run_id"], *symbols]).pl()
    out = pos.join(equity.select("ts", "equity"), on="ts", how="left").select(
        "symbol", "ts", (pl.col("value") / pl.col("equity")).alias("weight"))
    signal = _signals(con, row, symbols)
    if signal is None:
        return out.with_columns(signal=pl.lit(None, pl.Float64))
    return out.join(signal, on=["symbol", "ts"], how="left")


def _signals(con: Any, row: dict[str, Any], symbols: list[str]) -> pl.DataFrame | None:
    name = str(row["strategy"])
    cols = con.execute("SELECT column_name FROM information_schema.columns WHERE table_schema = 'signals' "
                       "AND table_name = ?", [name]).fetchall()
    if not name.replace("_", "").isalnum() or ("run_id",) not in cols or ("signal",) not in cols:
        return None
    marks = ", ".join("?" for _ in symbols)
    return _naive(con.sql(f'SELECT symbol, ts, signal::DOUBLE AS signal FROM signals."{name}" '
                       f"WHERE run_id = ? AND symbol IN ({marks})", params=[row["run_id"], *symbols]).pl())


def _naive(frame: pl.DataFrame) -> pl.DataFrame:
    """``ts`` as a naive UTC timestamp, whatever the table stored (TIMESTAMP or TIMESTAMPTZ)."""
    dtype = frame.schema["ts"]
    if isinstance(dtype, pl.Datetime) and dtype.time_zone:
        return frame.with_columns(pl.col("ts").dt.convert_time_zone("UTC").dt.replace_time_zone(None))
    return frame
