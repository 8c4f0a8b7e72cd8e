"""``alphatwin status``: what the warehouse holds and how its pipeline runs are doing."""

from __future__ import annotations

import json
import shutil
from typing import Annotated, Any

import typer

from alphatwin.cli.common import emit, state

LOW_DISK_BYTES = 1 << 30  # warn when less than 1 GiB is free


def collect_status(paths: Any) -> tuple[dict[str, Any], Any, Any]:
    """Warehouse health as plain data (what ``--format json`` prints), plus the datasets and
    recent-ingests frames."""
    from alphatwin.lake import catalog

    with catalog.connect(paths, read_only=True) as con:
        q = lambda sql: con.sql(sql).pl()  # noqa: E731
        datasets = q(
            "SELECT symbol, interval, source, first_ts, last_ts, rows, files, ingests, "
            "date_diff('day', last_ts, now()) AS days_since_last_bar FROM meta.datasets ORDER BY symbol, interval, source"
        )
        runs = q(
            "SELECT ingest_id, source, status, rows, files, started, "
            "round(epoch(finished) - epoch(started), 2) AS wall_s, error FROM meta.ingest_runs "
            "ORDER BY started DESC LIMIT 10"
        )
        rates = q(
            "SELECT count(*) AS runs, count(*) FILTER (WHERE status IN ('committed','partial','fallback')) AS ok, "
            "count(*) FILTER (WHERE status = 'failed') AS failed, count(*) FILTER (WHERE status = 'aborted') AS aborted, "
            "count(*) FILTER (WHERE status = 'rejected') AS rejected FROM meta.ingest_runs"
        ).row(0, named=True)
        lake = q("SELECT count(*) AS files, coalesce(sum(bytes), 0)::BIGINT AS bytes, coalesce(sum(rows), 0)::BIGINT AS rows FROM meta.lake_files").row(0, named=True)
        quality = _quality(con)
        models = _models(con)
        backtests = _backtests(con)
        stages = q("SELECT stage, count(*) AS runs, round(avg(wall_s), 3) AS avg_wall_s, max(peak_rss_mb) AS peak_rss_mb, "
                   "max(finished) AS last_run FROM meta.stage_runs GROUP BY stage ORDER BY stage")
    disk = shutil.disk_usage(paths.root)
    return {
        "warehouse": str(paths.root),
        "catalog_bytes": paths.db.stat().st_size,
        "lake": lake,
        "disk_free_bytes": disk.free,
        "disk_low": disk.free < LOW_DISK_BYTES,
        "ingests": rates,
        "quality": quality,
        "datasets": datasets.to_dicts(),
        "recent_ingests": runs.to_dicts(),
        "stages": stages.to_dicts(),
        "models": models,
        "backtests": backtests,
    }, datasets, runs


def _quality(con: Any) -> dict[str, Any] | None:
    """Validation pass rate and row verdicts over each ingest's current validation (None before any)."""
    exists = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE database_name = current_database() "
        "AND schema_name = 'meta' AND table_name = 'validation_runs'").fetchall()[0][0]
    if not exists:
        return None
    row = con.sql(
        "SELECT count(*) AS batches, count(*) FILTER (WHERE success) AS passed, "
        "coalesce(sum(rows_received), 0)::BIGINT AS received, coalesce(sum(rows_quarantined), 0)::BIGINT AS quarantined, "
        "coalesce(sum(rows_flagged), 0)::BIGINT AS flagged, max(finished) AS last_validation "
        "FROM meta.validation_runs WHERE current").pl().row(0, named=True)
    return row


def _models(con: Any) -> list[dict[str, Any]]:
    """Each model's last build (mode, outcome, rows, when) and, for incremental models, how many
    committed ingests it has not folded in yet (empty before the first build)."""
    have = {r[0] for r in con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE database_name = current_database() AND schema_name = 'meta' "
        "AND table_name IN ('model_runs', 'model_watermarks')").fetchall()}
    if "model_runs" not in have:
        return []
    pending = ("(SELECT count(DISTINCT f.ingest_id) FROM meta.lake_files AS f WHERE f.ingest_id NOT IN (SELECT w.id "
               "FROM meta.model_watermarks AS w WHERE w.model = r.model AND w.kind = 'ingest'))"
               if "model_watermarks" in have else "NULL")
    incremental = ("EXISTS (SELECT 1 FROM meta.model_watermarks AS w WHERE w.model = r.model AND w.kind = 'built')"
                   if "model_watermarks" in have else "false")
    return con.sql(
        f"SELECT r.model, r.mode, r.status, r.rows, r.finished AS last_build, "
        f"CASE WHEN {incremental} THEN {pending} END AS ingests_pending "
        "FROM meta.model_runs AS r QUALIFY row_number() OVER (PARTITION BY r.model ORDER BY r.finished DESC) = 1 "
        "ORDER BY r.model").pl().to_dicts()


def _params(text: str | None) -> str:
    """A run's parameters for one line: a sweep's lists as ``2..100 (99)``."""
    if not text:
        return ""
    parts = []
    for name, value in json.loads(text).items():
        if isinstance(value, list) and len(value) > 3:
            value = f"{min(value)}..{max(value)} ({len(value)})"
        parts.append(f"{name}={value}")
    return " ".join(parts)


def _backtests(con: Any) -> dict[str, Any] | None:
    """Runs stored in backtest.runs (None before any): counts and the five latest, with their
    headline metrics and whether the warehouse's clean.bars were rebuilt since (results may differ)."""
    exists = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE database_name = current_database() "
        "AND schema_name = 'backtest' AND table_name = 'runs'").fetchall()[0][0]
    if not exists:
        return None
    counts = con.sql("SELECT count(*) FILTER (WHERE kind = 'backtest') AS backtests, "
                     "count(*) FILTER (WHERE kind = 'sweep') AS sweeps FROM backtest.runs").pl().row(0, named=True)
    rebuilt = ("(SELECT max(finished) FROM meta.model_runs WHERE model = 'clean.bars' AND status = 'ok')"
               if con.execute("SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'meta' "
                              "AND table_name = 'model_runs'").fetchall()[0][0] else "NULL")
    latest = con.sql(
        "SELECT r.run_id, r.kind, r.strategy, r.params::VARCHAR AS params, array_to_string(r.symbols, ',') AS symbols, "
        "r.created, (SELECT value FROM backtest.metrics m WHERE m.run_id = r.run_id AND m.metric = 'total_return') "
        "AS total_return, (SELECT value FROM backtest.metrics m WHERE m.run_id = r.run_id AND m.metric = 'sharpe') "
        f"AS sharpe, coalesce({rebuilt} > r.created, false) AS data_rebuilt_since "
        "FROM backtest.runs r ORDER BY r.created DESC LIMIT 5").pl().to_dicts()
    return {**counts, "latest": latest}


def status_command(
    ctx: typer.Context,
    fmt: Annotated[str, typer.Option("--format", "-f", help="table or json.")] = "table",
) -> None:
    """Show datasets and their freshness, recent ingests, success rates, validation pass rate,
    models (last build, ingests not built yet), the latest backtests, lake size and free disk.

    Example: alphatwin --warehouse W status --format json
    """
    st = state(ctx)
    info, datasets, runs = collect_status(st.paths)
    if fmt == "json":
        typer.echo(json.dumps(info, indent=2, default=str))
        return
    lake, ing = info["lake"], info["ingests"]
    typer.echo(f"warehouse {info['warehouse']}")
    typer.echo(f"  lake: {lake['files']} file(s), {lake['rows']:,} rows, {lake['bytes'] / 2**20:,.1f} MiB; "
               f"catalog {info['catalog_bytes'] / 2**20:,.1f} MiB")
    typer.echo(f"  ingests: {ing['runs']} run(s): {ing['ok']} ok, {ing['failed']} failed, {ing['rejected']} rejected, "
               f"{ing['aborted']} aborted")
    qual = info["quality"]
    if qual and qual["batches"]:
        typer.echo(f"  quality: {qual['passed']} of {qual['batches']} batch(es) passed; "
                   f"{qual['quarantined']:,} of {qual['received']:,} rows quarantined, {qual['flagged']:,} flagged "
                   "(alphatwin quality report)")
    for m in info["models"]:
        waiting = f"; {m['ingests_pending']} ingest(s) not built yet" if m["ingests_pending"] else ""
        typer.echo(f"  model {m['model']}: {m['status']} ({m['mode']}), {m['rows'] or 0:,} rows, "
                   f"built {m['last_build']:%Y-%m-%d %H:%M}{waiting}")
    bt = info["backtests"]
    if bt:
        typer.echo(f"  backtests: {bt['backtests']} run(s), {bt['sweeps']} sweep(s) in backtest.runs")
        for r in bt["latest"]:
            figures = ("" if r["total_return"] is None else
                       f", total return {r['total_return']:.2%}, Sharpe {r['sharpe'] if r['sharpe'] is None else round(r['sharpe'], 2)}")
            rebuilt = "; the bars were rebuilt since" if r["data_rebuilt_since"] else ""
            typer.echo(f"    {r['run_id']} {r['kind']} {r['strategy']} {_params(r['params'])} on {r['symbols']}"
                       f"{figures}{rebuilt}")
    typer.echo(f"  disk free: {info['disk_free_bytes'] / 2**30:,.1f} GiB")
    if info["disk_low"]:
        typer.secho("  warning: less than 1 GiB free on the warehouse's disk", fg="yellow", err=True)
    typer.echo("\ndatasets")
    emit(datasets, "table")
    typer.echo("recent ingests")
    emit(runs.drop("error"), "table")
