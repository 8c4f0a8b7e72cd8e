"""The backtest report: one stored run (``backtest.*``), for people, as a self-contained HTML page.

:func:`collect_run` reads a run and everything its charts need from the warehouse (one Polars
frame per section); :func:`write_backtest_report` renders it as one HTML file that opens offline
(Altair charts, the Vega bundle inlined once); :func:`export_charts` writes every chart as PNG,
SVG or PDF through vl-convert::

    backtest.runs/metrics/equity/trades/positions ─┐
    clean.bars (adjusted prices, overlays) ─────────┼─> collect_run() -> RunData -> report_charts() -> HTML / PNG / SVG / PDF
    signals.<strategy>, backtest.sweeps ────────────┘

What the derived series mean (docs/reports.md says the same):

- **benchmark**: buy and hold of the run's symbols, the initial cash split equally at the first
  traded bar (a symbol that has no bar yet keeps its share in cash until its first bar), total
  return from the backward-adjusted close (dividends reinvested), no costs, never rebalanced.
- **monthly returns**: the last equity of each month over the last equity of the month before
  (the initial cash for the first month), i.e. the per-bar returns compounded within the month.
- **rolling Sharpe**: ``mean(r - rf) / std(r - rf) * sqrt(ppy)`` over the last ``window`` bars
  (sample std, n - 1), ``window = round(ppy / 2)`` (126 daily bars), the run's periods per year
  and risk-free rate; the metric of :mod:`alphatwin.metrics.returns` applied to a trailing window.

Example
-------
>>> from alphatwin.paths import WarehousePaths
>>> write_backtest_report(WarehousePaths(Path("warehouse")), "bt-20260101T000000-abcdef")  # doctest: +SKIP
PosixPath('warehouse/reports/bt-20260101T000000-abcdef.html')
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from alphatwin.backtest.store import decode_run
from alphatwin.errors import InputError

if TYPE_CHECKING:
    from alphatwin.paths import WarehousePaths

__all__ = ["RunData", "collect_run", "latest_run_id", "write_backtest_report", "export_charts", "check_writable",
           "default_report_path", "EXPORT_FORMATS", "PRICE_SYMBOLS", "SWEEP_METRICS"]

#: Chart file formats :func:`export_charts` writes.
EXPORT_FORMATS = ("png", "svg", "pdf")
#: Symbols drawn in the price chart (those with the most trades first; a dropdown picks one).
PRICE_SYMBOLS = 12
#: Metrics a sweep's parameter heatmap can color by (a dropdown picks one).
SWEEP_METRICS = ("sharpe", "total_return", "cagr", "sortino", "calmar", "max_drawdown", "win_rate", "n_trades")
TRADES_SHOWN = 500  # trades listed in the report's table


@dataclass(frozen=True)
class RunData:
    """Everything a backtest report shows, read from the warehouse (see the module docstring)."""

    warehouse: Path
    generated_at: dt.datetime
    info: dict[str, Any]  #: the backtest.runs row, JSON columns decoded
    metrics: dict[str, float | None]
    equity: pl.DataFrame  #: ts, equity, return, drawdown, exposures, costs, benchmark, benchmark_drawdown
    trades: pl.DataFrame
    benchmark_metrics: dict[str, float | None] = field(default_factory=dict)
    monthly: pl.DataFrame = field(default_factory=pl.DataFrame)  #: year, month, return (+ month 13 = year)
    rolling: pl.DataFrame = field(default_factory=pl.DataFrame)  #: ts, rolling_sharpe
    rolling_window: int = 0
    prices: pl.DataFrame = field(default_factory=pl.DataFrame)  #: symbol, ts, series, value (adjusted basis)
    markers: pl.DataFrame = field(default_factory=pl.DataFrame)  #: one row per fill: symbol, ts, event, price, ...
    outliers: pl.DataFrame = field(default_factory=pl.DataFrame)  #: symbol, ts, price of bars flagged as outliers
    weights: pl.DataFrame = field(default_factory=pl.DataFrame)  #: symbol, ts, weight, signal
    sweep: pl.DataFrame = field(default_factory=pl.DataFrame)  #: backtest.sweeps rows, params expanded
    sweep_params: tuple[str, ...] = ()
    rebuilt_since: bool = False  #: clean.bars was rebuilt after the run: a rerun may differ

    @property
    def run_id(self) -> str:
        return str(self.info["run_id"])

    @property
    def is_sweep(self) -> bool:
        return self.info["kind"] == "sweep"


def _has(con: Any, schema: str, name: str) -> bool:
    return bool(con.execute("SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND "
                            "table_name = ?", [schema, name]).fetchall()[0][0])


def latest_run_id(con: Any, kind: str | None = None) -> str:
    """The newest stored run (of ``kind``: backtest or sweep); an InputError when there is none."""
    if not _has(con, "backtest", "runs"):
        raise InputError("the warehouse has no backtests yet: run `alphatwin backtest` first")
    row = con.execute("SELECT run_id FROM backtest.runs WHERE ?::VARCHAR IS NULL OR kind = ? "
                      "ORDER BY created DESC LIMIT 1", [kind, kind]).fetchall()
    if not row:
        raise InputError(f"the warehouse has no {kind or 'backtest'} runs yet")
    return str(row[0][0])


def collect_run(con: Any, run_id: str) -> RunData:
    """Read run ``run_id`` and what its report shows (a connection, read-only is enough).

    A backtest gets its equity against the buy-and-hold benchmark, monthly returns, rolling
    Sharpe, trades, adjusted prices with the strategy's overlays and the entries and exits, and
    its position weights and signal; a sweep gets its parameter grid and results. An unknown
    ``run_id`` is an :class:`~alphatwin.errors.InputError`.
    """
    if not _has(con, "backtest", "runs"):
        raise InputError("the warehouse has no backtests yet: run `alphatwin backtest` first")
    info = con.sql("SELECT * FROM backtest.runs WHERE run_id = ?", params=[run_id]).pl()
    if info.height == 0:
        raise InputError(f"no backtest run {run_id!r} (`alphatwin status` or `alphatwin sql \"select run_id "
                         "from backtest.runs\"` lists them)")
    row = decode_run(info.row(0, named=True))
    metrics = {k: (None if v is None or (isinstance(v, float) and math.isnan(v)) else v)
               for k, v in con.execute("SELECT metric, value FROM backtest.metrics WHERE run_id = ?",
                                       [run_id]).fetchall()}
    rebuilt = bool(con.execute(
        "SELECT coalesce((SELECT max(finished) FROM meta.model_runs WHERE model = 'clean.bars' AND status = 'ok') "
        "> ?::TIMESTAMPTZ, false)", [row["created"]]).fetchall()[0][0]) if _has(con, "meta", "model_runs") else False
    base = {"warehouse": _warehouse_root(con), "generated_at": dt.datetime.now(dt.UTC).replace(microsecond=0),
            "info": row, "metrics": metrics, "rebuilt_since": rebuilt}
    if row["kind"] == "sweep":
        sweep, names = _sweep(con, run_id)
        return RunData(equity=pl.DataFrame(), trades=pl.DataFrame(), sweep=sweep, sweep_params=names, **base)
    from alphatwin.reports import _run_series as series

    equity = con.sql("SELECT * EXCLUDE (run_id) FROM backtest.equity WHERE run_id = ? ORDER BY ts", params=[run_id]).pl()
    trades = con.sql("SELECT * EXCLUDE (run_id) FROM backtest.trades WHERE run_id = ? ORDER BY trade_no", params=[run_id]).pl()
    init_cash = float(row["execution"]["init_cash"])
    ppy, rf = float(row["periods_per_year"]), float(row["risk_free"] or 0.0)
    equity = series.with_benchmark(equity, series.adjusted_closes(con, row, equity), init_cash, list(row["symbols"]))
    window = series.rolling_window(ppy)
    symbols = series.chart_symbols(row["symbols"], trades, PRICE_SYMBOLS)
    return RunData(
        equity=equity, trades=trades,
        benchmark_metrics=series.return_metrics(equity["benchmark"].to_numpy(), init_cash, ppy, rf),
        monthly=series.monthly_returns(equity, init_cash),
        rolling=series.rolling_sharpe(equity, window, ppy, rf), rolling_window=window,
        prices=series.prices(con, row, symbols), markers=series.markers(con, row, trades, symbols),
        outliers=series.outliers(con, row, symbols),
        weights=series.weights(con, row, equity, symbols),
        **base)


def _sweep(con: Any, run_id: str) -> tuple[pl.DataFrame, tuple[str, ...]]:
    frame = con.sql("SELECT * EXCLUDE (run_id) FROM backtest.sweeps WHERE run_id = ?", params=[run_id]).pl()
    if frame.height == 0:
        return frame, ()
    params = [json.loads(p) for p in frame["params"]]
    names = tuple(params[0])
    expanded = pl.DataFrame({n: [p.get(n) for p in params] for n in names})
    frame = frame.drop([c for c in (*names, "params") if c in frame.columns])
    return pl.concat([expanded, frame], how="horizontal"), names


def _warehouse_root(con: Any) -> Path:
    path = con.execute("SELECT path FROM duckdb_databases() WHERE database_name = current_database()").fetchall()[0][0]
    return Path(path).parent


def default_report_path(paths: WarehousePaths, run_id: str) -> Path:
    """Where ``alphatwin report RUN_ID`` writes by default: ``<warehouse>/reports/<run_id>.html``."""
    return paths.root / "reports" / f"{run_id}.html"


def write_backtest_report(paths: WarehousePaths, run_id: str, out: Path | None = None) -> Path:
    """Write the report of run ``run_id`` as one self-contained HTML file and return its path.

    Parameters
    ----------
    paths : WarehousePaths
        The warehouse (opened read-only).
    run_id : str
        A ``backtest.runs`` id: a backtest (``bt-...``) or a sweep (``sw-...``).
    out : pathlib.Path, optional
        The file to write; default ``<warehouse>/reports/<run_id>.html``. Written atomically.
    """
    from alphatwin.lake import catalog
    from alphatwin.reports._backtest_page import render_page
    from alphatwin.reports._html import write_atomic

    with catalog.connect(paths, read_only=True) as con:
        data = collect_run(con, run_id)
    target = Path(out) if out is not None else default_report_path(paths, run_id)
    check_writable(target)
    write_atomic(target, render_page(data))
    return target


def check_writable(target: Path) -> None:
    """Refuse, in one line, an output path that is a directory or lies under a file."""
    if target.is_dir():
        raise InputError(f"`--out` {target} is a directory; give a file name like {target / 'report.html'}")
    parent = target.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise InputError(f"cannot write {target}: {parent} is not a directory")


def export_charts(data: RunData, directory: Path, formats: tuple[str, ...] = ("png", "svg"), *,
                  scale: float = 2.0, progress: Callable[[int], None] | None = None) -> list[Path]:
    """Write every chart of the report as ``<directory>/<chart>.<format>`` (vl-convert), for
    docs and slides; returns the files written.

    The charts are those of the HTML report, as static images (no dropdowns: the price chart shows
    its first symbol, a sweep's heatmap Sharpe). ``scale`` multiplies the PNG's pixel size;
    ``progress(1)`` is called after each file."""
    import vl_convert

    from alphatwin.reports._backtest_charts import report_charts
    from alphatwin.reports._html import write_atomic

    unknown = [f for f in formats if f not in EXPORT_FORMATS]
    if unknown or not formats:
        raise InputError(f"`--export` takes {', '.join(EXPORT_FORMATS)} (comma-separated), got "
                         f"{unknown[0] if unknown else ''!r}")
    if not scale > 0:
        raise InputError(f"`--scale` must be a number > 0, got {scale}")
    if directory.exists() and not directory.is_dir():
        raise InputError(f"cannot write charts into {directory}: it is a file")
    written = []
    for name, spec in report_charts(data).items():
        for fmt in formats:
            if fmt == "png":
                content: str | bytes = vl_convert.vegalite_to_png(spec, scale=scale)
            elif fmt == "svg":
                content = vl_convert.vegalite_to_svg(spec)
            else:
                content = vl_convert.vegalite_to_pdf(spec)
            target = directory / f"{name}.{fmt}"
            write_atomic(target, content)
            written.append(target)
            if progress is not None:
                progress(1)
    return written
