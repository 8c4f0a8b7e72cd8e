"""The Python API for notebooks: ``alphatwin.open(path)`` returns a read-only handle on a warehouse.

    import alphatwin
    wh = alphatwin.open("warehouse")
    wh.sql("select symbol, count(*) from clean.bars group by 1")      # Polars DataFrame
    wh.bars("^GSPC", start="2008-01-01")                               # clean.bars rows
    wh.features("^GSPC", columns=["rsi_14", "atr_14"])                 # features.bars rows
    wh.signals("rsi_reversion", "SYN00001")                            # what a strategy wanted
    run = wh.run(wh.runs()["run_id"][0])                               # a stored backtest
    run.metrics["sharpe"], run.equity, run.trades, run.chart()         # chart: Altair
    run.chart("monthly_returns"), run.charts(), run.report("run.html") # the report's charts, the HTML report

Every method reads; nothing here writes to the warehouse. ``sql`` goes through the same sandbox
as ``alphatwin sql``; the other methods bind their arguments as query parameters.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from alphatwin.errors import InputError
from alphatwin.lake import catalog
from alphatwin.paths import WarehousePaths

__all__ = ["open", "Warehouse", "Run"]


def open(path: str | Path | None = None) -> Warehouse:  # noqa: A001 - the API's name: alphatwin.open
    """A read-only handle on the warehouse at ``path`` (default: the configured warehouse,
    ``$ALPHATWIN_WAREHOUSE`` or ``[warehouse] path`` of ``alphatwin.toml``, else ``./warehouse``)."""
    if path is None:
        from alphatwin.config import load_settings

        path = load_settings().warehouse
    paths = WarehousePaths(Path(path).expanduser().absolute())
    if not paths.db.is_file():
        raise InputError(f"no warehouse at {paths.root} (no alphatwin.duckdb): run `alphatwin init` or "
                         "`alphatwin demo` first")
    return Warehouse(paths)


def _when(value: str | dt.date | dt.datetime | None, name: str) -> dt.datetime | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=None)
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day)
    try:
        return dt.datetime.fromisoformat(str(value)).replace(tzinfo=None)
    except ValueError:
        raise InputError(f"`{name}` must be a date like 2015-01-02, got {value!r}") from None


@dataclass(frozen=True)
class Warehouse:
    """A read-only view of one warehouse (see the module docstring)."""

    paths: WarehousePaths

    def _query(self, text: str, params: list[Any] | None = None) -> pl.DataFrame:
        with catalog.connect(self.paths, read_only=True) as con:
            return con.sql(text, params=params or []).pl()

    def _has(self, table: str) -> bool:
        schema, name = table.split(".")
        return bool(self._query("SELECT count(*) AS n FROM information_schema.tables WHERE table_schema = ? "
                                "AND table_name = ?", [schema, name])["n"][0])

    def sql(self, query: str) -> pl.DataFrame:
        """Run one read-only query (the ``alphatwin sql`` sandbox) and return a Polars DataFrame."""
        from alphatwin.lake.query import run_query

        return run_query(self.paths, query)

    def _rows(self, table: str, symbol: str, interval: str, start: Any, end: Any, columns: str) -> pl.DataFrame:
        if not self._has(table):
            raise InputError(f"the warehouse has no {table} yet: run `alphatwin build`")
        where, params = ["symbol = ?", "interval = ?"], [symbol, interval]
        for op, value, name in ((">=", start, "start"), ("<=", end, "end")):
            when = _when(value, name)
            if when is not None:
                where.append(f"ts {op} ?::TIMESTAMPTZ")
                params.append(when.isoformat() + "+00:00")
        frame = self._query(f"SELECT {columns} FROM {table} WHERE {' AND '.join(where)} ORDER BY ts", params)
        if frame.height == 0 and not self._query(f"SELECT count(*) AS n FROM {table} WHERE symbol = ? AND "
                                                 "interval = ?", [symbol, interval])["n"][0]:
            raise InputError(f"no {interval} bars for {symbol!r} in {table}")
        return frame

    def bars(self, symbol: str, interval: str = "1d", start: Any = None, end: Any = None) -> pl.DataFrame:
        """``clean.bars`` rows of one symbol (as traded, with the adjusted ``adj_*`` columns, flags)."""
        return self._rows("clean.bars", symbol, interval, start, end, "*")

    def features(self, symbol: str, interval: str = "1d", start: Any = None, end: Any = None,
                 columns: list[str] | None = None) -> pl.DataFrame:
        """``features.bars`` rows of one symbol: every column, or ``ts`` plus ``columns``."""
        if columns is not None:
            known = set(self._query("SELECT column_name FROM information_schema.columns WHERE "
                                    "table_schema = 'features' AND table_name = 'bars'")["column_name"])
            unknown = [c for c in columns if c not in known]
            if unknown:
                raise InputError(f"features.bars has no column {unknown[0]!r}")
        cols = "*" if columns is None else ", ".join(['"symbol"', '"ts"', *(f'"{c}"' for c in columns)])
        return self._rows("features.bars", symbol, interval, start, end, cols)

    def signals(self, strategy: str, symbol: str | None = None) -> pl.DataFrame:
        """``signals.<strategy>`` rows (what the strategy wanted at every bar), of one symbol or all."""
        if not strategy.replace("_", "").isalnum() or not self._has(f"signals.{strategy}"):
            raise InputError(f"no signals.{strategy} in the warehouse (backtest the strategy, or build its SQL)")
        where, params = ("WHERE symbol = ?", [symbol]) if symbol is not None else ("", [])
        return self._query(f'SELECT * FROM signals."{strategy}" {where} ORDER BY symbol, ts', params)

    def runs(self, limit: int = 20) -> pl.DataFrame:
        """The latest stored backtests and sweeps, newest first, with their headline metrics."""
        if not self._has("backtest.runs"):
            return pl.DataFrame()
        return self._query(
            "SELECT r.run_id, r.kind, r.strategy, r.params::VARCHAR AS params, r.symbols, r.run_start, r.data_end, "
            "r.created, max(CASE WHEN m.metric = 'total_return' THEN m.value END) AS total_return, "
            "max(CASE WHEN m.metric = 'sharpe' THEN m.value END) AS sharpe, "
            "max(CASE WHEN m.metric = 'max_drawdown' THEN m.value END) AS max_drawdown "
            "FROM backtest.runs r LEFT JOIN backtest.metrics m USING (run_id) GROUP BY ALL "
            "ORDER BY r.created DESC LIMIT ?", [int(limit)])

    def run(self, run_id: str) -> Run:
        """A stored backtest: its settings, equity curve, trades, fills, positions and metrics."""
        if not self._has("backtest.runs"):
            raise InputError("the warehouse has no backtests yet: run `alphatwin backtest` first")
        info = self._query("SELECT * FROM backtest.runs WHERE run_id = ?", [run_id])
        if info.height == 0:
            raise InputError(f"no backtest run {run_id!r} (wh.runs() lists them)")
        from alphatwin.backtest.store import decode_run

        row = decode_run(info.row(0, named=True))
        frames = {t: self._query(f"SELECT * EXCLUDE (run_id) FROM backtest.{t} WHERE run_id = ? ORDER BY {order}",
                                 [run_id])
                  for t, order in (("equity", "ts"), ("trades", "trade_no"), ("fills", "fill_no"),
                                   ("positions", "ts, symbol"))}
        metrics = dict(self._query("SELECT metric, value FROM backtest.metrics WHERE run_id = ?", [run_id]).iter_rows())
        return Run(run_id=run_id, info=row, metrics=metrics, paths=self.paths, **frames)


@dataclass(frozen=True)
class Run:
    """One stored backtest (``backtest.*`` rows of ``run_id``)."""

    run_id: str
    info: dict[str, Any]  #: the backtest.runs row (JSON columns decoded)
    metrics: dict[str, float | None]
    equity: pl.DataFrame
    trades: pl.DataFrame
    fills: pl.DataFrame
    positions: pl.DataFrame
    paths: WarehousePaths | None = None  #: the warehouse it was read from (for the report's charts)

    def _report_data(self) -> Any:
        from alphatwin.reports.backtest import collect_run

        if self.paths is None:
            raise InputError("this Run was not read from a warehouse (use alphatwin.open(path).run(run_id))")
        with catalog.connect(self.paths, read_only=True) as con:
            return collect_run(con, self.run_id)

    def charts(self) -> dict[str, Any]:
        """Every chart of the run's report as interactive Altair charts, by name: ``equity``,
        ``drawdown``, ``exposure``, ``price``, ``monthly_returns``, ``rolling_sharpe``,
        ``trade_pnl``, ``holding_periods`` (a sweep: ``sweep_heatmap``). A chart with nothing to
        draw is left out.

        Altair refuses to display more than 5,000 rows by default; this lifts that guard
        (``alt.data_transformers.disable_max_rows()``) since runs are routinely longer."""
        import altair as alt

        from alphatwin.reports._backtest_charts import chart_objects

        alt.data_transformers.disable_max_rows()
        return chart_objects(self._report_data())

    def report(self, out: str | Path | None = None) -> Path:
        """Write the run's HTML report (``alphatwin report``) and return its path; default
        ``<warehouse>/reports/<run_id>.html``."""
        from alphatwin.reports.backtest import write_backtest_report

        if self.paths is None:
            raise InputError("this Run was not read from a warehouse (use alphatwin.open(path).run(run_id))")
        return write_backtest_report(self.paths, self.run_id, Path(out) if out is not None else None)

    def chart(self, name: str | None = None) -> Any:
        """An interactive Altair chart (renders in Jupyter). Without ``name``: equity above its
        drawdown, sharing one zoomable time axis, with tooltips; with ``name``: that chart of
        :meth:`charts` (e.g. ``run.chart("monthly_returns")``)."""
        import altair as alt

        if name is not None:
            charts = self.charts()
            if name not in charts:
                raise InputError(f"no chart {name!r} for run {self.run_id}; it has {', '.join(charts)}")
            return charts[name]

        # inline values: a long run has more bars than Altair's default 5,000-row guard allows
        rows = self.equity.select(pl.col("ts").dt.strftime("%Y-%m-%dT%H:%M:%S"), "equity", "drawdown").to_dicts()
        base = alt.Chart(alt.InlineData(values=rows)).encode(x=alt.X("ts:T", title=None))
        equity = base.mark_line().encode(
            y=alt.Y("equity:Q", title="equity", scale=alt.Scale(zero=False)),
            tooltip=[alt.Tooltip("ts:T", title="bar"), alt.Tooltip("equity:Q", format=",.2f"),
                     alt.Tooltip("drawdown:Q", format=".2%")],
        ).add_params(alt.selection_interval(bind="scales", encodings=["x"], name="zoom_equity")).properties(
            height=260, width=720, title=f"{self.info['strategy']} on {', '.join(self.info['symbols'])}")
        underwater = base.mark_area(opacity=0.5, color="firebrick").encode(
            y=alt.Y("drawdown:Q", title="drawdown", axis=alt.Axis(format="%")),
            tooltip=[alt.Tooltip("ts:T", title="bar"), alt.Tooltip("drawdown:Q", format=".2%")],
        ).add_params(alt.selection_interval(bind="scales", encodings=["x"], name="zoom_drawdown")).properties(
            height=120, width=720)
        return alt.vconcat(equity, underwater).resolve_scale(x="shared")
