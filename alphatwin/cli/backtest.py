"""``alphatwin backtest`` and ``alphatwin sweep``: strategies on the warehouse's bars (docs/backtest.md)."""

from __future__ import annotations

import json
import math
import re
import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer

from alphatwin.cli.common import emit, parse_when, progress_rows, state
from alphatwin.errors import InputError

if TYPE_CHECKING:
    from alphatwin.backtest.run import RunSpec

__all__ = ["backtest_command", "sweep_command", "parse_params", "parse_grid"]

Strategy = Annotated[str, typer.Argument(help="Strategy name (`alphatwin strategies` lists them with their parameters; docs/strategies/).", show_default=False)]
Symbols = Annotated[str, typer.Option("--symbols", help="Comma-separated symbols; several share one portfolio's cash equally (a sweep runs each alone).", show_default=False)]
Interval = Annotated[str, typer.Option("--interval", help="Bar interval in the warehouse.")]
Start = Annotated[str | None, typer.Option("--start", help="First bar to trade (earlier bars warm the signals up), like 2015-01-02.", show_default=False)]
End = Annotated[str | None, typer.Option("--end", help="Last bar to use, like 2018-12-31.", show_default=False)]
Direction = Annotated[str, typer.Option("--direction", help="long, short or both.")]
Fill = Annotated[str, typer.Option("--fill", help="open: a decision at the close of bar t fills at the open of t+1 (default); close: at the deciding bar's close (optimistic).")]
InitCash = Annotated[float, typer.Option("--init-cash", help="Starting cash.")]
FeesBps = Annotated[float, typer.Option("--fees-bps", help="Commission in basis points of the notional (10 = 0.1%).")]
FeeFixed = Annotated[float, typer.Option("--fee-fixed", help="Fixed commission per order.")]
FeeMin = Annotated[float, typer.Option("--fee-min", help="Minimum commission per order.")]
SlipBps = Annotated[float, typer.Option("--slippage-bps", help="Slippage in basis points of the price, against you.")]
SlipRange = Annotated[float, typer.Option("--slippage-range", help="Slippage as a fraction of the last completed bar's high-low range.")]
SlipAtr = Annotated[float, typer.Option("--slippage-atr", help="Slippage as a fraction of the last completed bar's ATR(14).")]
ImpactK = Annotated[float, typer.Option("--impact-k", help="Square-root market impact k: k * sigma * sqrt(units / ADV(20)) of the price.")]
Participation = Annotated[float | None, typer.Option("--participation", help="Largest fraction of a bar's volume one order may take (default: no cap).", show_default=False)]
StopLoss = Annotated[float | None, typer.Option("--stop-loss", help="Stop-loss as a fraction of the entry price (0.05 = 5%).", show_default=False)]
TakeProfit = Annotated[float | None, typer.Option("--take-profit", help="Take-profit as a fraction of the entry price.", show_default=False)]
Trailing = Annotated[float | None, typer.Option("--trailing-stop", help="Trailing stop as a fraction below the peak (above the trough for shorts).", show_default=False)]
StopAtr = Annotated[float | None, typer.Option("--stop-atr", help="ATR stop: k x ATR(14) of the bar before entry below a long's entry price (above a short's).", show_default=False)]
Sizing = Annotated[str | None, typer.Option("--sizing", help="Position sizing: none (default), fixed (--fraction), vol_target (--target-vol) or kelly (--kelly-fraction). docs/risk/", show_default=False)]
Fraction = Annotated[float | None, typer.Option("--fraction", help="fixed sizing: fraction of the allocated weight per position (default 1).", show_default=False)]
TargetVol = Annotated[float | None, typer.Option("--target-vol", help="vol_target sizing: annualized volatility per position (default 0.10).", show_default=False)]
VolWindow = Annotated[int | None, typer.Option("--vol-window", help="vol_target: returns in the trailing volatility (default 20).", show_default=False)]
VolCap = Annotated[float | None, typer.Option("--vol-cap", help="vol_target: largest size of one position (default 1).", show_default=False)]
KellyFraction = Annotated[float | None, typer.Option("--kelly-fraction", help="kelly sizing: share of full Kelly (default 0.5).", show_default=False)]
KellyWindow = Annotated[int | None, typer.Option("--kelly-window", help="kelly: returns in the trailing mean and variance (default 252).", show_default=False)]
KellyCap = Annotated[float | None, typer.Option("--kelly-cap", help="kelly: largest size (default 1).", show_default=False)]
Allocation = Annotated[str | None, typer.Option("--allocation", help="Across symbols: equal (default), inverse_vol or risk_parity (equal risk contributions).", show_default=False)]
AllocWindow = Annotated[int | None, typer.Option("--alloc-window", help="inverse_vol / risk_parity: returns in the trailing covariance (default 63).", show_default=False)]
RiskRebalance = Annotated[int | None, typer.Option("--risk-rebalance", help="Bars between re-estimations of sizes and allocation weights (default 21).", show_default=False)]
MaxPosition = Annotated[float | None, typer.Option("--max-position", help="Largest |weight| of one symbol (fraction of equity).", show_default=False)]
MaxGross = Annotated[float | None, typer.Option("--max-gross", help="Largest gross exposure (sum of |weights|); a row above it is scaled down.", show_default=False)]
MaxNet = Annotated[float | None, typer.Option("--max-net", help="Largest |net exposure| (|sum of weights|).", show_default=False)]
MaxDrawdown = Annotated[float | None, typer.Option("--max-drawdown", help="Drawdown control: at this drawdown from the high-water mark, scale targets by --drawdown-scale (0.2 = 20%).", show_default=False)]
DrawdownScale = Annotated[float | None, typer.Option("--drawdown-scale", help="Drawdown control: fraction of the targets kept while triggered (default 0 = flatten).", show_default=False)]
DrawdownCooldown = Annotated[int | None, typer.Option("--drawdown-cooldown", help="Drawdown control: bars before re-entry at full size, the high-water mark reset (default 21).", show_default=False)]
Leverage = Annotated[float, typer.Option("--leverage", help="Largest gross exposure / equity (1 = no leverage).")]
WholeUnits = Annotated[bool, typer.Option("--whole-units", help="Trade whole units only.")]
Rebalance = Annotated[int, typer.Option("--rebalance-every", help="Rebalance to the targets every N bars (0: only when a target changes).")]
RiskFree = Annotated[float, typer.Option("--risk-free", help="Annual risk-free rate for Sharpe and Sortino (0.02 = 2%).")]
Ppy = Annotated[float | None, typer.Option("--periods-per-year", help="Override the annualization (default: from the interval and the calendar: 252 equities, 365 crypto, 260 FX).", show_default=False)]
NoSave = Annotated[bool, typer.Option("--no-save", help="Do not store the run in backtest.* (read-only use).")]
Outliers = Annotated[str, typer.Option("--outliers", help="Bars the quality gate flagged as outliers: jumps (those flagged unexplained_jump, a print that jumps and reverts, get no fills or stops and are marked at the last close; large moves that persisted are traded), untradable (none of them traded), trade (all traded) or fail (refuse the run).")]


def _number(text: str) -> int | float:
    """``"10"`` -> 10, ``"2.5"`` -> 2.5 (ValueError otherwise, also for nan/inf)."""
    text = text.strip()
    try:
        return int(text)
    except ValueError:
        value = float(text)
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError(text) from None
        return value


def parse_params(items: list[str] | None) -> dict[str, int | float]:
    """``["fast=10", "width=2.5"]`` -> ``{"fast": 10, "width": 2.5}``."""
    out: dict[str, int | float] = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise InputError(f"`--param` must look like name=value, got {item!r}")
        try:
            out[name.strip()] = _number(value)
        except ValueError:
            raise InputError(f"`--param {name.strip()}` must be a number, got {value!r}") from None
    return out


def _float_range(lo: float, hi: float, step: float) -> list[float]:
    count = int(round((hi - lo) / step + 1e-9)) + 1
    return [round(lo + i * step, 12) for i in range(count) if lo + i * step <= hi + 1e-9 * abs(step)]


def parse_grid(items: list[str] | None) -> dict[str, list[int | float]]:
    """``["fast=2:100", "slow=10,20,50", "x=5:50:5", "z=1.5:2.5:0.5"]`` -> inclusive ranges /
    lists of numbers (a float range needs a step)."""
    out: dict[str, list[int | float]] = {}
    for item in items or []:
        name, sep, spec = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise InputError(f"`--grid` must look like name=2:100, name=2:100:2 or name=5,10,20, got {item!r}")
        try:
            if ":" in spec:
                parts = [_number(p) for p in spec.split(":")]
                if len(parts) not in (2, 3) or (len(parts) == 3 and parts[2] <= 0) or parts[1] < parts[0]:
                    raise ValueError
                if all(isinstance(p, int) for p in parts):
                    values = list(range(parts[0], parts[1] + 1, parts[2] if len(parts) == 3 else 1))
                elif len(parts) == 3:
                    values = _float_range(float(parts[0]), float(parts[1]), float(parts[2]))
                else:
                    raise ValueError
            else:
                values = [_number(p) for p in spec.split(",")]
        except ValueError:
            raise InputError(f"`--grid {name}` must be LOW:HIGH, LOW:HIGH:STEP or a,b,c of numbers "
                             f"(LOW <= HIGH; a float range needs a STEP), got {spec!r}") from None
        out[name] = values
    if not out:
        raise InputError("give at least one `--grid name=LOW:HIGH`")
    return out


def _spec(strategy: str, symbols: str, params: dict[str, int], **kw: Any) -> RunSpec:
    from alphatwin.signals.base import DIRECTIONS

    names = tuple(s.strip() for s in symbols.split(",") if s.strip())
    if not names:
        raise InputError("`--symbols` must name at least one symbol, like GOOG or GOOG,MSFT")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise InputError(f"`--symbols` names {repeated[0]} more than once")
    if kw["direction"] not in DIRECTIONS:
        raise InputError(f"`--direction` must be one of {', '.join(DIRECTIONS)}, got {kw['direction']!r}")
    try:
        return _build_spec(strategy, names, params, kw)
    except InputError as exc:  # name the flag, not the field: `fees_bps` -> `--fees-bps`
        raise InputError(re.sub(r"`([a-z_]+)`", lambda m: f"`--{_FLAG_OF.get(m.group(1), m.group(1)).replace('_', '-')}`"
                                if _FLAG_OF.get(m.group(1), m.group(1)) in kw else m.group(0), str(exc))) from None


#: Field names whose flag is named differently.
_FLAG_OF = {"rebalance": "risk_rebalance"}


def _build_spec(strategy: str, names: tuple[str, ...], params: dict[str, int], kw: dict[str, Any]) -> RunSpec:
    from alphatwin.backtest.params import Costs, Drawdown, SimParams, Stops
    from alphatwin.backtest.run import RunSpec
    from alphatwin.risk.manager import RiskParams
    from alphatwin.metrics.returns import risk_free_per_period

    risk_free_per_period(kw["risk_free"], 252.0)  # checks the rate before anything runs
    ppy = kw["periods_per_year"]
    if ppy is not None and not (math.isfinite(ppy) and ppy > 0):
        raise InputError(f"`--periods-per-year` must be a positive number, got {ppy!r}")
    nan = math.nan
    conf = dict(kw.get("risk_config") or {})

    def pick(flag: str, key: str | None = None, default: Any = None) -> Any:
        """The flag if given, else alphatwin.toml [risk], else ``default``."""
        value = kw.get(flag)
        return value if value is not None else conf.get(key or flag, default)

    costs = Costs(fees_bps=kw["fees_bps"], fee_fixed=kw["fee_fixed"], fee_min=kw["fee_min"],
                  slippage_bps=kw["slippage_bps"], slippage_range=kw["slippage_range"],
                  slippage_atr=kw["slippage_atr"], impact_k=kw["impact_k"],
                  participation=math.inf if kw["participation"] is None else kw["participation"])
    stops = Stops(stop_loss=float(pick("stop_loss", default=nan)), take_profit=float(pick("take_profit", default=nan)),
                  trailing_stop=float(pick("trailing_stop", default=nan)), stop_atr=float(pick("stop_atr", default=nan)))
    drawdown = Drawdown(limit=float(pick("max_drawdown", default=nan)),
                        scale=float(pick("drawdown_scale", default=0.0)),
                        cooldown=pick("drawdown_cooldown", default=21))
    sim = SimParams(fill=kw["fill"], init_cash=kw["init_cash"], whole_units=kw["whole_units"],
                    leverage=kw["leverage"], rebalance_every=kw["rebalance_every"], costs=costs,
                    stops=stops, drawdown=drawdown)
    given = {f: pick(f) for f in ("sizing", "fraction", "target_vol", "vol_window", "vol_cap", "kelly_fraction",
                                  "kelly_window", "kelly_cap", "allocation", "alloc_window", "max_position",
                                  "max_gross", "max_net")}
    given["rebalance"] = pick("risk_rebalance", "rebalance")
    risk = RiskParams(**{k: v for k, v in given.items() if v is not None})
    return RunSpec(strategy=strategy, symbols=names, params=params, direction=kw["direction"],
                   interval=kw["interval"], start=parse_when(kw["start"], "--start"),
                   end=parse_when(kw["end"], "--end"), sim=sim, risk_free=kw["risk_free"],
                   periods_per_year=kw["periods_per_year"], outliers=kw["outliers"], risk=risk,
                   sql_root=kw.get("sql_root"))


def _command_line() -> str:
    return "alphatwin " + " ".join(sys.argv[1:])


def backtest_command(
    ctx: typer.Context,
    strategy: Strategy,
    symbols: Symbols,
    param: Annotated[list[str] | None, typer.Option("--param", "-p", help="A strategy parameter, name=value (repeat).", show_default=False)] = None,
    interval: Interval = "1d", start: Start = None, end: End = None, direction: Direction = "long",
    fill: Fill = "open", init_cash: InitCash = 100_000.0, fees_bps: FeesBps = 0.0,
    fee_fixed: FeeFixed = 0.0, fee_min: FeeMin = 0.0, slippage_bps: SlipBps = 0.0,
    slippage_range: SlipRange = 0.0, slippage_atr: SlipAtr = 0.0, impact_k: ImpactK = 0.0,
    participation: Participation = None, stop_loss: StopLoss = None, take_profit: TakeProfit = None,
    trailing_stop: Trailing = None, leverage: Leverage = 1.0, whole_units: WholeUnits = False,
    rebalance_every: Rebalance = 0, risk_free: RiskFree = 0.0, periods_per_year: Ppy = None,
    outliers: Outliers = "jumps",
    stop_atr: StopAtr = None, sizing: Sizing = None, fraction: Fraction = None,
    target_vol: TargetVol = None, vol_window: VolWindow = None, vol_cap: VolCap = None,
    kelly_fraction: KellyFraction = None, kelly_window: KellyWindow = None, kelly_cap: KellyCap = None,
    allocation: Allocation = None, alloc_window: AllocWindow = None, risk_rebalance: RiskRebalance = None,
    max_position: MaxPosition = None, max_gross: MaxGross = None, max_net: MaxNet = None,
    max_drawdown: MaxDrawdown = None, drawdown_scale: DrawdownScale = None,
    drawdown_cooldown: DrawdownCooldown = None,
    fmt: Annotated[str, typer.Option("--format", "-f", help="Output: table or json.")] = "table",
    no_save: NoSave = False,
) -> None:
    """Backtest a strategy on the warehouse's bars (features.bars + clean.bars), store the run in
    backtest.runs / trades / fills / equity / positions / metrics and print its run id and
    metrics. Fills, costs and stops: docs/backtest.md; metric formulas: docs/metrics.md.

    Example: alphatwin backtest sma_cross --symbols GOOG --param fast=10 --param slow=20 --fees-bps 10 --fill close --format json
    """
    from alphatwin.backtest.run import run_backtest
    from alphatwin.backtest.store import json_value
    from alphatwin.lake import catalog

    if fmt not in ("table", "json"):
        raise InputError(f"`--format` must be table or json, got {fmt!r}")
    spec = _spec(strategy, symbols, parse_params(param), **_options(locals()))
    st = state(ctx)
    st.start_logging()
    with catalog.connect(st.paths, read_only=no_save, wait=60.0) as con:
        run = run_backtest(con, spec, command=_command_line(), save=not no_save)
    _warn(run.loaded.warnings())
    head = {"run_id": run.run_id if not no_save else None, "strategy": spec.strategy,
            "params": run.run["params"], "symbols": list(spec.symbols), "interval": spec.interval,
            "start": str(run.run["run_start"]), "end": str(run.run["data_end"])}
    body = {k: json_value(v) for k, v in run.metrics.items()}
    if fmt == "json":
        typer.echo(json.dumps({**head, **body}))
        return
    _print_table(head, body)


def _warn(lines: list[str]) -> None:
    for line in lines:
        typer.secho(f"warning: {line}", fg="yellow", err=True)


def _options(scope: dict[str, Any]) -> dict[str, Any]:
    keys = ("interval", "start", "end", "direction", "fill", "init_cash", "fees_bps", "fee_fixed",
            "fee_min", "slippage_bps", "slippage_range", "slippage_atr", "impact_k", "participation",
            "stop_loss", "take_profit", "trailing_stop", "leverage", "whole_units", "rebalance_every",
            "risk_free", "periods_per_year", "outliers") + RISK_FLAGS
    out = {k: scope[k] for k in keys}
    settings = state(scope["ctx"]).settings
    out["risk_config"] = dict(settings.risk)
    from alphatwin.models.registry import default_sql_root

    out["sql_root"] = default_sql_root(settings.config_file)  # the same sql/ as `alphatwin build`
    return out


#: Risk flags: None = from ``[risk]`` in alphatwin.toml, else the built-in default.
RISK_FLAGS = ("stop_atr", "sizing", "fraction", "target_vol", "vol_window", "vol_cap", "kelly_fraction",
              "kelly_window", "kelly_cap", "allocation", "alloc_window", "risk_rebalance", "max_position",
              "max_gross", "max_net", "max_drawdown", "drawdown_scale", "drawdown_cooldown")


def _print_table(head: dict[str, Any], body: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"run {head['run_id'] or '(not saved)'}: {head['strategy']} {head['params']} "
                        f"on {','.join(head['symbols'])} {head['interval']} {head['start'][:10]}..{head['end'][:10]}")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in body.items():
        table.add_row(key, _fmt(value))
    Console(soft_wrap=True).print(table)


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.6g}" if abs(value) < 1e6 else f"{value:,.2f}"
    return str(value)


#: Columns a sweep can be ranked by.
SORTABLE = ("sharpe", "sortino", "calmar", "total_return", "cagr", "max_drawdown", "annual_volatility",
            "max_drawdown_duration", "win_rate", "profit_factor", "n_trades", "avg_holding_bars", "exposure",
            "final_equity", "total_fees", "fast", "slow")  # fast/slow: sma_cross sweeps


def sweep_command(
    ctx: typer.Context,
    strategy: Strategy,
    symbols: Symbols,
    grid: Annotated[list[str] | None, typer.Option("--grid", "-g", help="A parameter range: name=LOW:HIGH (inclusive), name=LOW:HIGH:STEP or name=a,b,c (repeat).", show_default=False)] = None,
    top: Annotated[int, typer.Option("--top", help="How many of the best combinations to print.")] = 10,
    sort: Annotated[str, typer.Option("--sort", help="Metric to rank by (sharpe, total_return, cagr, sortino, calmar, max_drawdown, ...).")] = "sharpe",
    ascending: Annotated[bool, typer.Option("--ascending", help="Rank the smallest values first.")] = False,
    interval: Interval = "1d", start: Start = None, end: End = None, direction: Direction = "long",
    fill: Fill = "open", init_cash: InitCash = 100_000.0, fees_bps: FeesBps = 0.0,
    fee_fixed: FeeFixed = 0.0, fee_min: FeeMin = 0.0, slippage_bps: SlipBps = 0.0,
    slippage_range: SlipRange = 0.0, slippage_atr: SlipAtr = 0.0, impact_k: ImpactK = 0.0,
    participation: Participation = None, stop_loss: StopLoss = None, take_profit: TakeProfit = None,
    trailing_stop: Trailing = None, leverage: Leverage = 1.0, whole_units: WholeUnits = False,
    rebalance_every: Rebalance = 0, risk_free: RiskFree = 0.0, periods_per_year: Ppy = None,
    outliers: Outliers = "jumps",
    stop_atr: StopAtr = None, sizing: Sizing = None, fraction: Fraction = None,
    target_vol: TargetVol = None, vol_window: VolWindow = None, vol_cap: VolCap = None,
    kelly_fraction: KellyFraction = None, kelly_window: KellyWindow = None, kelly_cap: KellyCap = None,
    allocation: Allocation = None, alloc_window: AllocWindow = None, risk_rebalance: RiskRebalance = None,
    max_position: MaxPosition = None, max_gross: MaxGross = None, max_net: MaxNet = None,
    max_drawdown: MaxDrawdown = None, drawdown_scale: DrawdownScale = None,
    drawdown_cooldown: DrawdownCooldown = None,
    max_combinations: Annotated[int, typer.Option("--max-combinations", help="Refuse grids larger than this (combinations x symbols).")] = 2_000_000,
    fmt: Annotated[str, typer.Option("--format", "-f", help="Output: table, csv or json.")] = "table",
    no_save: NoSave = False,
) -> None:
    """Backtest every parameter combination of a grid (combinations such as fast >= slow are
    skipped), store them all in backtest.sweeps under one backtest.runs row and
    print the top N.

    sma_cross with the default risk settings runs in the fused sweep kernel (about 200k
    combinations/s); other strategies, or risk rules, run one full backtest per combination.

    Example: alphatwin sweep sma_cross --symbols GOOG --grid fast=2:100 --grid slow=3:200 --fees-bps 10 --top 5

    Example: alphatwin sweep rsi_reversion --symbols GOOG --grid period=7:21:7 --grid lower=20:35:5 --sort sharpe
    """
    import polars as pl

    from alphatwin.backtest.run import run_sweep
    from alphatwin.lake import catalog

    if fmt not in ("table", "csv", "json"):
        raise InputError(f"`--format` must be table, csv or json, got {fmt!r}")
    if top < 1:
        raise InputError(f"`--top` must be >= 1, got {top}")
    ranges = parse_grid(grid)
    if sort not in SORTABLE:
        raise InputError(f"`--sort` must be one of {', '.join(SORTABLE)}, got {sort!r}")
    spec = _spec(strategy, symbols, {}, **_options(locals()))
    st = state(ctx)
    st.start_logging()
    with progress_rows(f"sweeping {strategy}", None, unit="combinations") as advance, \
            catalog.connect(st.paths, read_only=no_save, wait=60.0) as con:
        result = run_sweep(con, spec, ranges, command=_command_line(), save=not no_save,
                           max_combinations=max_combinations, progress=advance)
    _warn(result.warnings)
    table = result.table
    if sort not in table.columns:
        raise InputError(f"`--sort {sort}`: this sweep has no such column")
    keys = ["fast", "slow"] if "fast" in table.columns and "slow" in table.columns else ["params"]
    best = (table.with_columns(pl.col(sort).fill_nan(None)).sort(sort, descending=not ascending, nulls_last=True)
            .head(top).select("symbol", *keys, "total_return", "cagr", "sharpe", "sortino",
                              "calmar", "max_drawdown", "n_trades", "win_rate", "exposure"))
    typer.echo(f"sweep {result.run_id if not no_save else '(not saved)'}: {table.height:,} combinations "
               f"({table['kernel'][0]} kernel) in {result.run['wall_s']:.2f}s", err=True)
    if fmt == "json":  # +-inf (e.g. a Sortino without a losing bar) as "inf", NaN as null
        from alphatwin.backtest.store import json_value

        typer.echo(json.dumps([{k: json_value(v) for k, v in row.items()} for row in best.iter_rows(named=True)]))
        return
    emit(best, fmt)
