"""One backtest or sweep from the warehouse to the ``backtest.*`` tables.

    load_market (features.bars + clean.bars, the strategy's input columns)
    -> strategy (signal, target) per symbol, or for the universe (panel), or signals.<name> (SQL)
    -> risk manager (alphatwin.risk.manager: sizing, allocation, caps) -> portfolio weights
    -> simulate (stops, drawdown control) -> metrics (alphatwin.metrics)
    -> write_run (one transaction) and the strategy's signals into signals.<strategy>

With the default risk settings each of N symbols gets an equal share: its direction / N.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import math
import time
from collections.abc import Callable
from pathlib import Path
import uuid
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from alphatwin.backtest.data import Loaded, load_market
from alphatwin.backtest.engine import SimResult, simulate
from alphatwin.backtest.enums import PHASES, REASONS
from alphatwin.backtest.params import SimParams
from alphatwin.backtest.store import json_value, write_run
from alphatwin.backtest.sweep import sweep_sma_cross
from alphatwin.errors import InputError
from alphatwin.lake.stages import staged
from alphatwin.metrics import combine_periods, periods_per_year
from alphatwin.metrics.summary import summarize
from alphatwin.risk.manager import RiskParams, apply_risk
from alphatwin.signals.base import Strategy, apply_direction, get_strategy
from alphatwin.signals.sql import sql_targets
from alphatwin.signals.store import write_signals

__all__ = ["RunSpec", "BacktestRun", "SweepRun", "run_backtest", "run_sweep", "targets_for"]


@dataclass(frozen=True)
class RunSpec:
    """What to run: the strategy and its parameters, the data, execution and annualization."""

    strategy: str
    symbols: tuple[str, ...]
    params: dict[str, int] = field(default_factory=dict)
    direction: str = "long"
    interval: str = "1d"
    start: dt.datetime | None = None
    end: dt.datetime | None = None
    sim: SimParams = field(default_factory=SimParams)
    risk_free: float = 0.0
    periods_per_year: float | None = None  #: None: from the interval and the calendars
    outliers: str = "jumps"  #: bars flagged as outliers: jumps, untradable, trade or fail
    risk: RiskParams = field(default_factory=RiskParams)
    sql_root: Path | None = None  #: where sql/signals/*.sql strategies live (None: the default sql/)


@dataclass(frozen=True)
class BacktestRun:
    run_id: str
    metrics: dict[str, Any]
    result: SimResult
    loaded: Loaded
    frames: dict[str, pl.DataFrame]
    run: dict[str, Any]


@dataclass(frozen=True)
class SweepRun:
    run_id: str
    table: pl.DataFrame
    run: dict[str, Any]
    warnings: list[str] = field(default_factory=list)


def _run_id(prefix: str) -> str:
    return f"{prefix}-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"


def strategy_signals(con: Any, strat: Strategy, loaded: Loaded, params: dict[str, Any],
                     direction: str) -> tuple[np.ndarray, np.ndarray]:
    """(n, m) ``(signal, target)`` of the strategy: directions per symbol (series, on each
    symbol's own rows, NaN elsewhere), the universe's weights (panel) or signals.<name> (SQL)."""
    n, m = loaded.market.shape
    if strat.source == "sql":
        sig, tgt = sql_targets(con, strat.name, loaded.interval, list(loaded.market.symbols), loaded.ts)
        return sig, apply_direction(tgt, direction)
    columns = [loaded.inputs[name] for name in strat.inputs]
    if strat.panel:
        sig, tgt = strat.run(*columns, direction=direction, **params)
        return np.asarray(sig, dtype=np.float64), np.asarray(tgt, dtype=np.float64)
    sig = np.full((n, m), np.nan)
    tgt = np.full((n, m), np.nan)
    for j in range(m):
        rows = np.flatnonzero(~np.isnan(loaded.signal_close[:, j]))
        sig[rows, j], tgt[rows, j] = strat.run(*(np.ascontiguousarray(c[rows, j]) for c in columns),
                                               direction=direction, **params)
    return sig, tgt


def _check_defined(strat: Strategy, signal: np.ndarray, target: np.ndarray, loaded: Loaded) -> None:
    """InputError when the strategy can say nothing on any bar of the run (a warm-up longer than
    the history, symbols without common bars, a SQL strategy without rows for them): such a run
    could never trade, and storing it would pass for a real result."""
    s = loaded.start
    if strat.source == "sql":
        if np.isnan(target[s:]).all():
            raise InputError(f"signals.{strat.name} has no target for {', '.join(loaded.market.symbols)} "
                             f"({loaded.interval}) on any bar of the run")
    elif np.isnan(signal[s:]).all():
        raise InputError(f"strategy `{strat.name}` has no signal on any of the {loaded.market.shape[0] - s} bar(s) "
                         f"of the run ({loaded.market.shape[0]} with history): its warm-up needs more history"
                         + (", or the symbols share too few bars" if strat.panel else "")
                         + "; widen [--start, --end] or shorten the windows")


def _weights(strat: Strategy, target: np.ndarray, loaded: Loaded, risk: RiskParams, ppy: float, *,
             strict: bool = False) -> np.ndarray:
    """The risk manager on the strategy's targets: (n, m) portfolio weights for the engine."""
    return apply_risk(target, loaded.signal_close, risk, panel=strat.panel, hedged=strat.hedged, strict=strict,
                      periods_per_year=ppy, first=loaded.start, strategy=strat.name)


def targets_for(loaded: Loaded, strategy: str, params: dict[str, Any], direction: str,
                risk: RiskParams | None = None, periods_per_year: float = 252.0, con: Any = None) -> np.ndarray:
    """(n, m) portfolio target weights: the strategy's targets through the risk manager."""
    strat = get_strategy(strategy)
    _, tgt = strategy_signals(con, strat, loaded, params, direction)
    return _weights(strat, tgt, loaded, risk or RiskParams(), periods_per_year)


def _ppy(spec: RunSpec, loaded: Loaded) -> float:
    if spec.periods_per_year is not None:
        if not spec.periods_per_year > 0:
            raise InputError(f"`--periods-per-year` must be > 0, got {spec.periods_per_year}")
        return float(spec.periods_per_year)
    return combine_periods(periods_per_year(spec.interval, c) for c in loaded.calendars.values())


def _run_row(run_id: str, kind: str, spec: RunSpec, loaded: Loaded, params: Any, ppy: float,
             wall_s: float, command: str | None) -> dict[str, Any]:
    from importlib.metadata import version

    ts = loaded.ts
    p = spec.sim.as_dict()
    return {
        "run_id": run_id, "kind": kind, "strategy": spec.strategy, "params": params,
        "direction": spec.direction, "symbols": list(spec.symbols), "interval": spec.interval,
        "data_start": _py_ts(ts[0]), "run_start": _py_ts(ts[loaded.start]), "data_end": _py_ts(ts[-1]),
        "n_bars": int(len(ts) - loaded.start), "calendars": loaded.calendars,
        "periods_per_year": ppy, "risk_free": spec.risk_free, "ingest_ids": loaded.ingest_ids,
        "validation": loaded.validation, "data_sha256": loaded.data_sha256,
        "data_quality": loaded.data_quality,
        "execution": {k: p[k] for k in ("fill", "init_cash", "target_kind", "whole_units", "leverage",
                                        "rebalance_every")},
        "cost_model": spec.sim.costs.as_dict(), "stops": spec.sim.stops.as_dict(),
        "risk": {**spec.risk.as_dict(), **spec.sim.drawdown.as_dict()},
        "wall_s": wall_s, "command": command, "alphatwin_version": version("alphatwin"),
    }


def _py_ts(value: np.datetime64) -> dt.datetime:
    return value.astype("datetime64[us]").astype(dt.datetime)


@staged("backtest", rows=lambda r: (int(r.run["n_bars"]) * len(r.run["symbols"]),  # meta.stage_runs
                                     sum(f.height for f in r.frames.values())), context=lambda r: {"run": r.run_id})
def run_backtest(con: Any, spec: RunSpec, *, command: str | None = None, save: bool = True) -> BacktestRun:
    """Run ``spec`` on the warehouse behind ``con`` and (unless ``save=False``) store it."""
    began = time.perf_counter()
    strat = get_strategy(spec.strategy, spec.sql_root)
    strat.check_symbols(len(spec.symbols))
    strat.check_stops(spec.sim.stops.any)
    params = strat.resolve(spec.params)
    inputs = strat.inputs if strat.source == "python" else ("close",)
    loaded = load_market(con, list(spec.symbols), spec.interval, start=spec.start, end=spec.end,
                         outliers=spec.outliers, inputs=inputs)
    ppy = _ppy(spec, loaded)
    if loaded.market.shape[0] - loaded.start < 2:
        raise InputError(f"the run has {loaded.market.shape[0] - loaded.start} bar(s) in [--start, --end]: "
                         "a backtest needs at least 2")
    signal, direction_target = strategy_signals(con, strat, loaded, params, spec.direction)
    _check_defined(strat, signal, direction_target, loaded)
    target = _weights(strat, direction_target, loaded, spec.risk, ppy, strict=True)
    result = simulate(loaded.market, target, spec.sim, start=loaded.start, direction=direction_target)
    metrics = _metrics(result, loaded, spec, ppy)
    run_id = _run_id("bt")
    frames = _frames(run_id, result, loaded, metrics, spec.sim.init_cash)
    run = _run_row(run_id, "backtest", spec, loaded, params, ppy, time.perf_counter() - began, command)
    if save:
        also = None if strat.source == "sql" else (
            lambda c: write_signals(c, strat, loaded, params, signal, direction_target, run_id, spec.direction))
        write_run(con, run, frames, also=also)
    return BacktestRun(run_id=run_id, metrics=metrics, result=result, loaded=loaded, frames=frames, run=run)


def _metrics(result: SimResult, loaded: Loaded, spec: RunSpec, ppy: float) -> dict[str, Any]:
    s = loaded.start
    n = loaded.market.shape[0]
    tr = result.trades
    last = n - 1
    held = np.where(tr["exit_bar"] >= 0, tr["exit_bar"], last) - tr["entry_bar"]
    return summarize(
        equity=result.equity[s:], init_cash=spec.sim.init_cash, trades_pnl=tr["pnl"],
        trades_closed=tr["exit_bar"] >= 0, trades_holding_bars=held,
        gross_exposure=result.gross_exposure()[s:],
        traded_notional=result.traded_notional(n)[s:], fees=float(result.fees.sum()),
        slippage=float(result.slippage.sum()), impact=float(result.impact.sum()),
        periods_per_year=ppy, risk_free=spec.risk_free)


def _frames(run_id: str, result: SimResult, loaded: Loaded, metrics: dict[str, Any],
            init_cash: float) -> dict[str, pl.DataFrame]:
    market = loaded.market
    ts = market.ts
    sym = np.array(market.symbols, dtype=object)
    s = loaded.start
    n, m = market.shape
    tr = result.trades
    open_ = tr["exit_bar"] < 0
    trades = pl.DataFrame({
        "run_id": run_id, "trade_no": np.arange(1, len(tr) + 1, dtype=np.int32),
        "symbol": sym[tr["col"]].tolist(),
        "direction": np.where(tr["quantity"] > 0, "long", "short").tolist(),
        "entry_ts": ts[tr["entry_bar"]], "exit_ts": pl.Series(ts[np.where(open_, 0, tr["exit_bar"])]),
        "quantity": tr["quantity"], "entry_price": tr["entry_price"], "exit_price": tr["exit_price"],
        "fees": tr["fees"], "slippage": tr["slippage"], "impact": tr["impact"],
        "dividends": tr["dividends"], "pnl": tr["pnl"], "return": tr["ret"],
        "bars_held": (np.where(open_, n - 1, tr["exit_bar"]) - tr["entry_bar"]).astype(np.int32),
        "exit_reason": [None if o else REASONS[r] for o, r in zip(open_, tr["exit_reason"])],
        "n_fills": tr["n_fills"].astype(np.int32),
    }, schema_overrides={"exit_reason": pl.String}).with_columns(
        pl.when(pl.Series(open_)).then(None).otherwise(pl.col("exit_ts")).alias("exit_ts"))
    f = result.fills
    fills = pl.DataFrame({
        "run_id": run_id, "fill_no": np.arange(1, len(f) + 1, dtype=np.int32),
        "symbol": sym[f["col"]].tolist(), "ts": ts[f["bar"]],
        "phase": [PHASES[p] for p in f["phase"]], "reason": [REASONS[r] for r in f["reason"]],
        "units": f["units"], "base_price": f["base_price"], "price": f["price"], "fee": f["fee"],
        "slippage": f["slippage"], "impact": f["impact"],
    }, schema_overrides={"phase": pl.String, "reason": pl.String, "symbol": pl.String})
    equity = result.equity[s:]
    prev = np.concatenate([[init_cash], equity[:-1]])
    peak = np.maximum.accumulate(np.concatenate([[init_cash], equity]))[1:]
    values = result.positions_value()
    costs = result.fees + result.slippage + result.impact
    equity_frame = pl.DataFrame({
        "run_id": run_id, "ts": ts[s:], "equity": equity, "cash": result.cash[s:],
        "gross_exposure": np.abs(values).sum(axis=1)[s:], "net_exposure": values.sum(axis=1)[s:],
        "return": equity / prev - 1.0,
        "drawdown": equity / peak - 1.0,
        "risk_scale": result.risk_scale[s:],
        "fees": result.fees[s:], "slippage": result.slippage[s:], "impact": result.impact[s:],
        "cum_costs": np.cumsum(costs[s:]),
    })
    positions = _positions(run_id, result, loaded)
    metric_frame = pl.DataFrame({
        "run_id": run_id, "metric": list(metrics),
        "value": [None if (v := json_value(x)) is None else float("inf") if v == "inf" else float(v)
                  for x in metrics.values()],
    }, schema={"run_id": pl.String, "metric": pl.String, "value": pl.Float64})
    return {"trades": trades, "fills": fills, "equity": equity_frame, "positions": positions,
            "metrics": metric_frame}


def _positions(run_id: str, result: SimResult, loaded: Loaded) -> pl.DataFrame:
    """Per bar and symbol: units, last close, value and the symbol's cumulative P&L."""
    market = loaded.market
    n, m = market.shape
    s = loaded.start
    flows = np.zeros((n, m))
    f = result.fills
    np.add.at(flows, (f["bar"], f["col"]), -(f["units"] * f["price"]) - f["fee"])
    carried = np.zeros((n, m))
    carried[1:] = result.units[:-1] * np.where(result.units[:-1] != 0, market.split_ratio[1:], 1.0)
    flows += carried * market.dividend
    price = result.marks
    value = result.positions_value()
    pnl = np.cumsum(flows, axis=0) + value
    rows = slice(s, n)
    k = n - s
    return pl.DataFrame({
        "run_id": run_id, "ts": np.repeat(market.ts[rows], m),
        "symbol": np.tile(np.array(market.symbols, dtype=object), k).tolist(),
        "units": result.units[rows].ravel(), "price": price[rows].ravel(),
        "value": value[rows].ravel(), "pnl": pnl[rows].ravel(),
    }, schema_overrides={"symbol": pl.String}).with_columns(pl.col("price").fill_nan(None))


#: Largest sweep (combinations x symbols) run without raising ``max_combinations``.
MAX_COMBINATIONS = 2_000_000


@staged("sweep", rows=lambda r: (int(r.run["n_bars"]) * len(r.run["symbols"]), r.table.height),  # meta.stage_runs
        context=lambda r: {"run": r.run_id})
def run_sweep(con: Any, spec: RunSpec, grid: dict[str, list[Any]], *, command: str | None = None,
              save: bool = True, max_combinations: int = MAX_COMBINATIONS,
              progress: Callable[..., None] | None = None) -> SweepRun:
    """Every combination of ``grid`` (invalid ones skipped) on each symbol (a panel strategy:
    on the whole universe at once), stored in ``backtest.sweeps`` under one ``backtest.runs``
    row. ``sma_cross`` with the default risk settings runs in the fused sweep kernels; every
    other strategy (and sma_cross with risk rules) runs the full backtest per combination.
    ``progress(n, total=None)`` is told the number of combinations, then each one done."""
    began = time.perf_counter()
    strat = get_strategy(spec.strategy, spec.sql_root)
    if strat.source == "sql":
        raise InputError(f"`{spec.strategy}` is a SQL strategy without parameters: backtest it instead")
    names = {p.name for p in strat.params}
    unknown = sorted(set(grid) - names)
    if unknown:
        raise InputError(f"strategy `{spec.strategy}` has no parameter {unknown[0]!r}; its parameters are "
                         f"{', '.join(sorted(names))}")
    strat.check_symbols(1 if not strat.panel else len(spec.symbols))
    strat.check_stops(spec.sim.stops.any)
    values = {p.name: [p.check(v) for v in grid.get(p.name, [spec.params.get(p.name, p.default)])]
              for p in strat.params}
    run_id = _run_id("sw")
    merged = load_market(con, list(spec.symbols), spec.interval, start=spec.start, end=spec.end,
                         outliers=spec.outliers, inputs=strat.inputs)  # every symbol checked before any work
    fused = spec.strategy == "sma_cross" and spec.risk == RiskParams()
    combos = _combinations(strat, values, fused)
    units = 1 if strat.panel else len(spec.symbols)
    if len(combos) * units > max_combinations:
        raise InputError(f"the grid has {len(combos) * units:,} combinations (x symbols), more than "
                         f"`--max-combinations` {max_combinations:,}; narrow it or raise the limit")
    if not combos:
        first = dict(zip(values, next(itertools.product(*values.values()))))
        raise InputError(f"no valid combination in the grid for `{spec.strategy}`; e.g. "
                         f"{strat.validate(first)}")
    ppys = []
    tables = []
    groups = [tuple(spec.symbols)] if strat.panel else [(s,) for s in spec.symbols]
    tick = progress or (lambda n, total=None: None)
    tick(0, total=len(combos) * len(groups))
    for group in groups:
        loaded = merged if len(group) == len(spec.symbols) else load_market(
            con, list(group), spec.interval, start=spec.start, end=spec.end, outliers=spec.outliers,
            inputs=strat.inputs)
        ppy = _ppy(spec, loaded)  # each symbol annualized by its own calendar, as when run alone
        ppys.append(ppy)
        if fused:
            table = sweep_sma_cross(loaded.market, loaded.signal_close[:, 0], values["fast"], values["slow"],
                                    spec.sim, direction=spec.direction, start=loaded.start,
                                    periods_per_year=ppy, risk_free=spec.risk_free)
            table = table.with_columns(pl.concat_str([
                pl.lit('{"fast": '), pl.col("fast").cast(pl.String), pl.lit(', "slow": '),
                pl.col("slow").cast(pl.String), pl.lit("}")]).alias("params"))
            tick(len(combos))
        else:
            table = _sweep_each(con, strat, combos, loaded, spec, ppy, tick)
        tables.append(table.with_columns(pl.lit(",".join(group)).alias("symbol")))
    table = pl.concat(tables, how="diagonal_relaxed").with_columns(pl.lit(run_id).alias("run_id"))
    # one annualization for the run row when every symbol shares it, else NULL (per symbol: its calendar)
    run = _run_row(run_id, "sweep", spec, merged, {k: v for k, v in values.items()},
                   ppys[0] if len(set(ppys)) == 1 else None, time.perf_counter() - began, command)
    if save:
        stored = table.with_columns(pl.col("fast").cast(pl.Int32), pl.col("slow").cast(pl.Int32)) \
            if "fast" in table.columns and "slow" in table.columns else table
        write_run(con, run, {"sweeps": stored.select([c for c in stored.columns if c in SWEEP_COLUMNS])})
    return SweepRun(run_id=run_id, table=table, run=run, warnings=merged.warnings())


#: Columns of backtest.sweeps (a generic sweep has no fast/slow unless the strategy has them).
SWEEP_COLUMNS = ("run_id", "symbol", "params", "fast", "slow", "total_return", "cagr", "annual_volatility",
                 "sharpe", "sortino", "calmar", "max_drawdown", "max_drawdown_duration", "n_trades",
                 "n_closed_trades", "win_rate", "profit_factor", "avg_holding_bars", "exposure",
                 "final_equity", "total_fees", "kernel")


def _combinations(strat: Strategy, values: dict[str, list[Any]], fused: bool) -> list[dict[str, Any]]:
    """Every valid combination (the strategy's own rules skip the rest, like fast >= slow)."""
    out = []
    for combo in itertools.product(*values.values()):
        params = dict(zip(values, combo))
        if strat.validate(params) is None:
            out.append(params)
    return out


def _sweep_each(con: Any, strat: Strategy, combos: list[dict[str, Any]], loaded: Loaded, spec: RunSpec,
                ppy: float, tick: Callable[..., None]) -> pl.DataFrame:
    """One full backtest (strategy, risk manager, engine, metrics) per combination."""
    rows = []
    for params in combos:
        _, tgt = strategy_signals(con, strat, loaded, params, spec.direction)
        target = _weights(strat, tgt, loaded, spec.risk, ppy)
        result = simulate(loaded.market, target, spec.sim, start=loaded.start, direction=tgt)
        m = _metrics(result, loaded, spec, ppy)
        rows.append({**{k: params[k] for k in params if k in ("fast", "slow")},
                     "params": json.dumps(params, sort_keys=False),
                     **{k: (float(m[k]) if m[k] is not None else math.nan) for k in SWEEP_COLUMNS if k in m},
                     "kernel": "full"})
        tick(1)
    return pl.DataFrame(rows, infer_schema_length=None).with_columns(
        *(pl.col(c).cast(pl.Int64) for c in ("max_drawdown_duration", "n_trades", "n_closed_trades")))
