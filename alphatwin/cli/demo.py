"""``alphatwin demo``: the whole pipeline, offline, on the embedded default data.

Stages so far: ingest the real S&P 500 / NASDAQ sample and a synthetic universe (with injected
defects) into the lake, each batch validated by the Great Expectations gate (bad rows
quarantined, outliers flagged), write the data-quality report, build the models (clean.bars,
features.bars), query the warehouse, backtest ``sma_cross`` on the S&P 500 with costs and
stops, and sweep its (fast, slow) grid; run the strategy library (SQL, mean reversion, cross-sectional
momentum, trend filter, pairs, ML) through the risk manager; write an HTML report of every run;
verify the lake against the catalog and show the health alerts and the audit trail.
"""

from __future__ import annotations

import shutil
from typing import Annotated

import typer

from alphatwin.cli.common import emit, state
from alphatwin.errors import AlphaTwinError

DEMO_COMMAND = "demo"
DEMO_DEFECTS = {"gap": 0.002, "duplicate": 0.001, "broken_ohlc": 0.001, "spike": 0.0005, "zero_volume_halt": 0.0005}


def _fresh_warehouse(paths: object) -> None:
    """Empty the warehouse if it holds only earlier demo runs; refuse to touch anything else."""
    from alphatwin.lake import catalog

    if not paths.db.exists():  # type: ignore[attr-defined]
        return
    with catalog.connect(paths, read_only=True) as con:  # type: ignore[arg-type]
        other = con.execute(
            "SELECT count(*) FROM meta.ingest_runs WHERE command IS NULL OR command <> ?", [DEMO_COMMAND]
        ).fetchall()[0][0]
    if other:
        raise AlphaTwinError(
            f"{paths.root} holds data that the demo did not create; run the demo elsewhere with "  # type: ignore[attr-defined]
            "`alphatwin --warehouse /tmp/alphatwin-demo demo`"
        )
    for name in ("alphatwin.duckdb", "alphatwin.duckdb.wal", "lake", "tmp"):
        target = paths.root / name  # type: ignore[attr-defined]
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()


def demo_command(
    ctx: typer.Context,
    symbols: Annotated[int, typer.Option("--symbols", help="Synthetic symbols to add to the real sample.")] = 20,
    bars: Annotated[int, typer.Option("--bars", help="Daily bars per synthetic symbol.")] = 2520,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the synthetic market.")] = 42,
) -> None:
    """Run every pipeline stage that exists, offline, on the embedded sample (rebuilds a warehouse
    that holds only earlier demo data).

    Example: alphatwin demo
    """
    from alphatwin.cli.ingest import _request, run_ingest
    from alphatwin.lake.query import run_query
    from alphatwin.sources.sample import sample_source
    from alphatwin.sources.synthetic import SyntheticSource

    st = state(ctx)
    paths = st.paths
    _fresh_warehouse(paths)
    typer.secho(f"AlphaTwin demo -> {paths.root}", bold=True, err=True)
    typer.secho("[1/9] ingest + validate: real sample (^GSPC, ^IXIC 1999-2018) and a synthetic universe",
                bold=True, err=True)
    run_ingest(st, sample_source(), _request((), "1d", None, None), command=DEMO_COMMAND, fallback=False)
    synth = SyntheticSource(n_symbols=symbols, n_bars=bars, seed=seed, defects=DEMO_DEFECTS)
    run_ingest(st, synth, _request((), "1d", None, None), command=DEMO_COMMAND, fallback=False,
               total=symbols * bars)
    typer.secho("[2/9] data-quality report", bold=True, err=True)
    from alphatwin.reports.quality import write_quality_report

    dq = write_quality_report(paths)
    typer.secho("[3/9] build the models: clean.bars (gaps filled, adjusted) and features.bars (indicators)",
                bold=True, err=True)
    from alphatwin.models.build import build
    from alphatwin.models.registry import default_sql_root

    for run in build(paths, sql_root=default_sql_root(st.settings.config_file), settings=st.settings,
                     command=DEMO_COMMAND).runs:
        typer.echo(f"  {run.model}: {run.status} ({run.mode}), {run.rows:,} rows in {run.wall_s:.2f}s", err=True)
    typer.secho("[4/9] query: accepted bars per symbol (quarantined rows excluded)", bold=True, err=True)
    frame = run_query(
        paths,
        "SELECT a.symbol, a.source, count(*) AS bars, min(a.ts)::DATE AS first, max(a.ts)::DATE AS last, "
        "round(arg_max(a.close, a.ts), 2) AS last_close, "
        "(SELECT count(*) FROM quality.quarantine q WHERE q.symbol = a.symbol) AS quarantined, "
        "(SELECT count(*) FROM quality.flags f WHERE f.symbol = a.symbol) AS flagged "
        "FROM quality.accepted_bars a GROUP BY ALL ORDER BY a.source, a.symbol LIMIT 12",
    )
    emit(frame, "table")
    typer.secho("      and the last features of the real sample (point-in-time indicators)", bold=True, err=True)
    emit(run_query(
        paths,
        "SELECT symbol, ts::DATE AS day, round(close, 2) AS close, round(sma_20, 2) AS sma_20, "
        "round(rsi_14, 1) AS rsi_14, round(macd_hist_12_26_9, 2) AS macd_hist, round(atr_14, 2) AS atr_14, "
        "round(zscore_close_20, 2) AS z_20 FROM features.bars WHERE symbol LIKE '^%' "
        "QUALIFY row_number() OVER (PARTITION BY symbol ORDER BY ts DESC) <= 3 ORDER BY symbol, ts",
    ), "table")
    bt_id, sw_id = _backtest_stage(paths)
    lib = _strategy_stage(paths, [f"SYN{i:05d}" for i in range(1, min(symbols, 12) + 1)])
    typer.secho("[8/9] reports: the backtest, the sweep and the strategy library (HTML, open offline)",
                bold=True, err=True)
    from alphatwin.reports.backtest import write_backtest_report

    reports = [write_backtest_report(paths, rid) for rid in (bt_id, sw_id, *lib)]
    _reliability_stage(st)
    typer.echo(f"\nwarehouse:           {paths.root}")
    typer.echo(f"data-quality report: {dq}")
    typer.echo(f"backtest report:     {reports[0]}")
    typer.echo(f"sweep report:        {reports[1]}")
    typer.echo(f"strategy reports:    {reports[2].parent}/<run id>.html ({len(reports) - 2} more)")
    typer.echo(f"backtest run:        {bt_id} (backtest.runs / trades / fills / equity / positions / metrics)")
    typer.echo(f"sweep run:           {sw_id} (backtest.sweeps)")
    typer.echo(f"strategy runs:       {', '.join(lib)} (their signals: signals.<strategy>)")
    typer.echo(f"try: alphatwin --warehouse {paths.root} sql \"select * from meta.ingest_runs\"")
    typer.echo(f"     alphatwin --warehouse {paths.root} sql \"select * from backtest.trades where run_id = '{bt_id}'\"")
    typer.echo(f"     alphatwin --warehouse {paths.root} report {bt_id} --export png,svg   (charts as images)")
    typer.echo(f"     alphatwin --warehouse {paths.root} status --check   (health and alerts; exit 2 on an alert)")
    typer.echo(f"     duckdb {paths.db}   (the plain DuckDB CLI reads raw.bars too)")


def _reliability_stage(st: object) -> None:
    """Stage 9: re-checksum the lake against the catalog, the health alerts and the audit trail."""
    from alphatwin.cli.status import collect_status
    from alphatwin.lake.query import run_query
    from alphatwin.lake.verify import verify

    typer.secho("[9/9] reliability: verify the lake (sha256 of every file), health alerts, audit trail",
                bold=True, err=True)
    paths = st.paths  # type: ignore[attr-defined]
    report = verify(paths)
    typer.echo(f"  {report.summary()}", err=True)
    if not report.ok:
        raise AlphaTwinError(f"the demo's lake failed verification: {report.summary()}")
    health = collect_status(paths, st.settings)[0]  # type: ignore[attr-defined]
    alerts = health.get("alerts") or []
    typer.echo(f"  status: {len(alerts)} alert(s)" + "".join(f"\n    - {a['message']}" for a in alerts), err=True)
    emit(run_query(paths, "SELECT action, status, count(*) AS entries, sum(rows_in) AS rows_in, "
                          "sum(rows_out) AS rows_out FROM meta.audit GROUP BY ALL ORDER BY min(seq)"), "table")


def _backtest_stage(paths: object) -> tuple[str, str]:
    """Stages 5 and 6: a backtest with costs and a stop, then a parameter sweep; returns run ids."""
    import json

    import polars as pl

    from alphatwin.backtest.params import Costs, SimParams, Stops
    from alphatwin.backtest.run import RunSpec, run_backtest, run_sweep
    from alphatwin.backtest.store import json_value
    from alphatwin.lake import catalog

    typer.secho("[5/9] backtest: sma_cross 50/200 on ^GSPC, next-open fills, 10 bps fees, 5 bps slippage, "
                "10% trailing stop", bold=True, err=True)
    sim = SimParams(costs=Costs(fees_bps=10, slippage_bps=5), stops=Stops(trailing_stop=0.10))
    spec = RunSpec(strategy="sma_cross", symbols=("^GSPC",), params={"fast": 50, "slow": 200}, sim=sim)
    with catalog.connect(paths, wait=60.0) as con:  # type: ignore[arg-type]
        bt = run_backtest(con, spec, command=DEMO_COMMAND)
        for line in bt.loaded.warnings():
            typer.secho(f"  warning: {line}", fg="yellow", err=True)
        keys = ("total_return", "cagr", "sharpe", "sortino", "max_drawdown", "n_trades", "win_rate", "total_fees")
        typer.echo(json.dumps({"run_id": bt.run_id, **{k: json_value(bt.metrics[k]) for k in keys}}))
        typer.secho("[6/9] sweep: every fast in 2..100 below every slow in 3..200 on ^GSPC (one kernel call)",
                    bold=True, err=True)
        sweep_spec = RunSpec(strategy="sma_cross", symbols=("^GSPC",), sim=SimParams(costs=Costs(fees_bps=10)))
        sw = run_sweep(con, sweep_spec, {"fast": list(range(2, 101)), "slow": list(range(3, 201))},
                       command=DEMO_COMMAND)
    typer.echo(f"  {sw.table.height:,} combinations in {sw.run['wall_s']:.2f}s; best 5 by Sharpe:", err=True)
    emit(sw.table.sort("sharpe", descending=True, nulls_last=True).head(5)
         .select("fast", "slow", "total_return", "cagr", "sharpe", "max_drawdown", "n_trades")
         .with_columns(pl.col(pl.Float64).round(4)), "table")
    return bt.run_id, sw.run_id


#: The strategy-library stage: (strategy, symbols key, params, direction, risk settings, title).
_LIBRARY = (
    ("golden_cross", "index", {}, "long", {}, "SQL strategy (sql/signals/golden_cross.sql)"),
    ("rsi_reversion", "synth", {}, "both",
     {"sizing": "vol_target", "target_vol": 0.10, "allocation": "risk_parity", "max_drawdown": 0.20,
      "stop_atr": 3.0}, "vol target 10%, risk parity, 20% drawdown control, 3 ATR stop"),
    ("cs_momentum", "synth", {"lookback": 126, "skip": 21, "quantile": 0.25}, "both",
     {"max_gross": 1.0}, "long the top quarter, short the bottom quarter, monthly"),
    ("adx_trend", "index", {}, "long", {"sizing": "vol_target", "target_vol": 0.15}, "ADX >= 25 trend filter"),
    ("pairs", "index", {"window": 120}, "both", {}, "^GSPC / ^IXIC spread, rolling OLS hedge"),
    ("ml_gbm", "index1", {}, "long", {}, "gradient boosting, purged + embargoed walk-forward"),
)


def _strategy_stage(paths: object, synth: list[str]) -> list[str]:
    """Stage 7: the strategy library through the risk manager; returns the run ids."""
    import math

    import polars as pl

    from alphatwin.backtest.params import Costs, Drawdown, SimParams, Stops
    from alphatwin.backtest.run import RunSpec, run_backtest
    from alphatwin.lake import catalog
    from alphatwin.risk.manager import RiskParams

    typer.secho("[7/9] strategy library + risk manager (10 bps fees, next-open fills)", bold=True, err=True)
    universes = {"index": ("^GSPC", "^IXIC"), "index1": ("^GSPC",), "synth": tuple(synth)}
    rows, ids = [], []
    with catalog.connect(paths, wait=60.0) as con:  # type: ignore[arg-type]
        for name, key, params, direction, risk, title in _LIBRARY:
            engine = {k: risk[k] for k in ("max_drawdown", "stop_atr") if k in risk}
            sim = SimParams(costs=Costs(fees_bps=10),
                            stops=Stops(stop_atr=engine.get("stop_atr", math.nan)),
                            drawdown=Drawdown(limit=engine.get("max_drawdown", math.nan)))
            rp = RiskParams(**{k: v for k, v in risk.items() if k not in engine})
            spec = RunSpec(strategy=name, symbols=universes[key], params=params, direction=direction,
                           sim=sim, risk=rp)
            run = run_backtest(con, spec, command=DEMO_COMMAND)
            ids.append(run.run_id)
            m = run.metrics
            rows.append({"strategy": name, "symbols": len(spec.symbols), "setup": title,
                         "total_return": m["total_return"], "sharpe": m["sharpe"],
                         "max_drawdown": m["max_drawdown"], "n_trades": m["n_trades"]})
    emit(pl.DataFrame(rows).with_columns(pl.col(pl.Float64).round(3)), "table")
    return ids
