"""``alphatwin status``: what the warehouse holds, how its pipeline runs are doing, and alerts.

The JSON form (``--format json``) is a contract: keys are only ever added. Alerts (``alerts``,
each ``{kind, message, ...}``): ``disk_low`` (free space under ``[status] disk_warn_bytes`` or
``disk_warn_percent``), ``stale_data`` (a symbol's last bar older than ``[status] stale_days``
for its interval; synthetic data never goes stale), ``failed_run`` (a stage that failed among the last ``[status] recent_runs``
stage runs and has not succeeded since), ``aborted_run`` (an ingest killed midway, among the
last ``recent_runs`` ingests, with no successful ingest since) and ``verify_failed`` (the last
``alphatwin verify`` found missing, corrupt or unknown files). ``--check`` exits 2 when there is
any, for cron and monitoring.
"""

from __future__ import annotations

import json
import shutil
from typing import Annotated, Any

import typer

from alphatwin.cli.common import emit, state

LOW_DISK_BYTES = 1 << 30  # the default of [status] disk_warn_bytes (1 GiB)
CHECK_EXIT = 2  # `status --check` exit code when there are alerts
_OK_STAGE = ("ok",)
_VERIFY_OK = ("ok",)  # meta.audit status of a clean `alphatwin verify` (else "failed")


def _has_table(con: Any, schema: str, table: str) -> bool:
    return bool(con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE database_name = current_database() "
        "AND schema_name = ? AND table_name = ?", [schema, table]).fetchall()[0][0])


def _columns(con: Any, schema: str, table: str) -> set[str]:
    return {r[0] for r in con.execute(
        "SELECT column_name FROM duckdb_columns() WHERE database_name = current_database() "
        "AND schema_name = ? AND table_name = ?", [schema, table]).fetchall()}


def collect_status(paths: Any, settings: Any = None) -> tuple[dict[str, Any], Any, Any]:
    """Warehouse health as plain data (what ``--format json`` prints), plus the datasets and
    recent-ingests frames. ``settings`` (:class:`~alphatwin.config.Settings`) gives the alert
    thresholds (``[status]``; the defaults without it)."""
    from alphatwin.config import StatusSettings
    from alphatwin.lake import catalog

    cfg = settings.status if settings is not None else StatusSettings()
    with catalog.connect(paths, read_only=True) as con:
        q = lambda sql, params=None: con.sql(sql, params=params).pl()  # noqa: E731
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
        rates["success_rate"] = _rate(rates["ok"], rates["runs"] - _running(con))
        lake = q("SELECT count(*) AS files, coalesce(sum(bytes), 0)::BIGINT AS bytes, coalesce(sum(rows), 0)::BIGINT AS rows FROM meta.lake_files").row(0, named=True)
        quality = _quality(con)
        models = _models(con)
        backtests = _backtests(con)
        stages = _stages(con)
        by_symbol = _validation_by_symbol(con)
        stale = _stale(con, cfg)
        failures = _failures(con, cfg.recent_runs)
        verify = _last_verify(con)
    disk = shutil.disk_usage(paths.root)
    disk_percent = 100.0 * disk.free / disk.total if disk.total else 0.0
    disk_low = disk.free < cfg.disk_warn_bytes or disk_percent < cfg.disk_warn_percent
    stale_keys = {(s["symbol"], s["interval"]) for s in stale}
    info = {
        "warehouse": str(paths.root),
        "catalog_bytes": paths.db.stat().st_size,
        "lake": lake,
        "disk_free_bytes": disk.free,
        "disk_low": disk_low,
        "ingests": rates,
        "quality": quality,
        "datasets": [{**d, "stale": (d["symbol"], d["interval"]) in stale_keys} for d in datasets.to_dicts()],
        "recent_ingests": runs.to_dicts(),
        "stages": stages,
        "models": models,
        "backtests": backtests,
        "disk_total_bytes": disk.total,
        "disk_free_percent": round(disk_percent, 2),
        "builds": _builds(stages),
        "validation_by_symbol": by_symbol,
        "stale": stale,
        "last_verify": verify,
        "thresholds": {"disk_warn_bytes": cfg.disk_warn_bytes, "disk_warn_percent": cfg.disk_warn_percent,
                       "stale_days": dict(cfg.stale_days), "recent_runs": cfg.recent_runs},
    }
    info["alerts"] = _alerts(info, failures)
    info["healthy"] = not info["alerts"]
    return info, datasets, runs


def _rate(ok: int, total: int) -> float | None:
    return round(ok / total, 4) if total else None


def _running(con: Any) -> int:
    return con.execute("SELECT count(*) FROM meta.ingest_runs WHERE status = 'running'").fetchall()[0][0]


def _stages(con: Any) -> list[dict[str, Any]]:
    """Per stage: runs, outcomes, success rate, average wall time and memory, the last run."""
    peak = "max(stage_peak_rss_mb)" if "stage_peak_rss_mb" in _columns(con, "meta", "stage_runs") else "NULL"
    return con.sql(
        "SELECT stage, count(*) AS runs, round(avg(wall_s), 3) AS avg_wall_s, max(peak_rss_mb) AS peak_rss_mb, "
        "max(finished) AS last_run, count(*) FILTER (WHERE status = 'ok') AS ok, "
        "count(*) FILTER (WHERE status <> 'ok') AS failed, "
        "round(count(*) FILTER (WHERE status = 'ok') / count(*), 4) AS success_rate, "
        f"arg_max(status, started) AS last_status, {peak} AS stage_peak_rss_mb "
        "FROM meta.stage_runs GROUP BY stage ORDER BY stage").pl().to_dicts()


def _builds(stages: list[dict[str, Any]]) -> dict[str, Any]:
    """Every ``build:<model>`` stage together."""
    builds = [s for s in stages if s["stage"].startswith("build:")]
    runs, ok = sum(s["runs"] for s in builds), sum(s["ok"] for s in builds)
    return {"runs": runs, "ok": ok, "failed": runs - ok, "success_rate": _rate(ok, runs),
            "failing_models": sorted(s["stage"][6:] for s in builds if s["last_status"] != "ok")}


def _validation_by_symbol(con: Any) -> list[dict[str, Any]]:
    """Per (symbol, interval), over each ingest's current validation: rows in the lake, rows
    quarantined and flagged, and the share that passed (worst first)."""
    if not (_has_table(con, "meta", "validation_runs") and _has_table(con, "quality", "quarantine")):
        return []
    flags = ("(SELECT symbol, interval, count(*) AS n FROM quality.flags WHERE validation_id IN (SELECT v FROM cur) "
             "GROUP BY ALL)" if _has_table(con, "quality", "flags") else
             "(SELECT NULL::VARCHAR AS symbol, NULL::VARCHAR AS interval, 0 AS n WHERE false)")
    return con.sql(
        "WITH cur AS (SELECT validation_id AS v FROM meta.validation_runs WHERE current), "
        "d AS (SELECT symbol, interval, sum(rows)::BIGINT AS rows FROM meta.datasets GROUP BY ALL), "
        "qu AS (SELECT symbol, interval, count(*) AS n FROM quality.quarantine WHERE validation_id IN "
        "(SELECT v FROM cur) GROUP BY ALL), "
        f"fl AS {flags} "
        "SELECT d.symbol, d.interval, d.rows, coalesce(qu.n, 0)::BIGINT AS quarantined, "
        "coalesce(fl.n, 0)::BIGINT AS flagged, "
        "round(CASE WHEN d.rows > 0 THEN greatest(d.rows - coalesce(qu.n, 0), 0) / d.rows END, 6) AS pass_rate "
        "FROM d LEFT JOIN qu USING (symbol, interval) LEFT JOIN fl USING (symbol, interval) "
        "ORDER BY pass_rate NULLS LAST, quarantined DESC, d.symbol, d.interval").pl().to_dicts()


def _stale(con: Any, cfg: Any) -> list[dict[str, Any]]:
    """Symbols whose newest bar (over every source) is older than the interval's threshold."""
    rows = con.sql(
        "SELECT symbol, interval, max(last_ts) AS last_ts, "
        "round((epoch(now()) - epoch(max(last_ts))) / 86400, 2) AS days_since_last_bar "
        "FROM meta.datasets WHERE last_ts IS NOT NULL AND source <> 'synthetic' "  # generated data never goes stale
        "GROUP BY ALL ORDER BY symbol, interval").pl().to_dicts()
    out = []
    for r in rows:
        limit = cfg.stale_after(r["interval"])
        if limit > 0 and r["days_since_last_bar"] > limit:
            out.append({**r, "stale_after_days": limit})
    return out


def _failures(con: Any, recent: int) -> list[dict[str, Any]]:
    """Failed stage runs and aborted ingests among the ``recent`` latest, not followed by a
    successful run of the same stage."""
    if recent <= 0:
        return []
    failed = con.sql(
        "WITH last AS (SELECT * FROM meta.stage_runs ORDER BY started DESC LIMIT ?) "
        "SELECT 'failed_run' AS kind, l.stage, l.started, l.status, l.error FROM last AS l "
        "WHERE l.status <> 'ok' AND NOT EXISTS (SELECT 1 FROM meta.stage_runs AS s WHERE s.stage = l.stage "
        "AND s.status = 'ok' AND s.started > l.started) ORDER BY l.started DESC", params=[recent]).pl().to_dicts()
    aborted = con.sql(
        "WITH last AS (SELECT * FROM meta.ingest_runs ORDER BY started DESC LIMIT ?) "
        "SELECT 'aborted_run' AS kind, 'ingest' AS stage, l.started, l.status, l.error, l.ingest_id FROM last AS l "
        "WHERE l.status = 'aborted' AND NOT EXISTS (SELECT 1 FROM meta.ingest_runs AS s WHERE "
        "s.status IN ('committed', 'partial', 'fallback') AND s.started > l.started) ORDER BY l.started DESC",
        params=[recent]).pl().to_dicts()
    return failed + aborted


def _last_verify(con: Any) -> dict[str, Any] | None:
    """The last ``alphatwin verify`` in ``meta.audit`` (None when there is none or no such table)."""
    if not _has_table(con, "meta", "audit") or not {"at", "action", "status"} <= _columns(con, "meta", "audit"):
        return None
    detail = "detail::VARCHAR" if "detail" in _columns(con, "meta", "audit") else "NULL"
    rows = con.sql(f'SELECT "at", status, {detail} AS detail FROM meta.audit WHERE action = \'verify\' '
                   'ORDER BY seq DESC LIMIT 1').pl().to_dicts()
    return rows[0] if rows else None


def _alerts(info: dict[str, Any], failures: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    th = info["thresholds"]
    if info["disk_low"]:
        out.append({"kind": "disk_low", "message": (
            f"{info['disk_free_bytes'] / 2**30:,.2f} GiB free on the warehouse's disk "
            f"({info['disk_free_percent']:.1f}%), under {th['disk_warn_bytes'] / 2**30:,.2f} GiB or "
            f"{th['disk_warn_percent']:g}% ([status] disk_warn_bytes, disk_warn_percent)"),
            "free_bytes": info["disk_free_bytes"]})
    if info["stale"]:
        stale = info["stale"]
        names = ", ".join(f"{s['symbol']} {s['interval']} ({s['days_since_last_bar']:.0f} d)" for s in stale[:5])
        more = f" and {len(stale) - 5} more" if len(stale) > 5 else ""
        out.append({"kind": "stale_data", "message": (
            f"{len(stale)} symbol(s) with no bar newer than [status] stale_days: {names}{more}"),
            "symbols": [s["symbol"] for s in stale]})
    for f in failures:
        what = "aborted (killed midway)" if f["kind"] == "aborted_run" else f["status"]
        error = (f["error"] or "").splitlines()[0][:200] if f["error"] else ""
        out.append({"kind": f["kind"], "stage": f["stage"], "started": f["started"], "message": (
            f"{f['stage']} {what} at {f['started']:%Y-%m-%d %H:%M} UTC, no successful run since"
            + (f": {error}" if error else ""))})
    verify = info["last_verify"]
    if verify is not None and str(verify["status"]).lower() not in _VERIFY_OK:
        out.append({"kind": "verify_failed", "at": verify["at"], "message": (
            f"the last `alphatwin verify` ({verify['at']:%Y-%m-%d %H:%M} UTC) found problems: "
            f"status {verify['status']}; run `alphatwin verify` for the files")})
    return out


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
    rejected = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE database_name = current_database() "
        "AND schema_name = 'quality' AND table_name = 'rejected_lines'").fetchall()[0][0]
    # lines of files that could not be read, set aside by `ingest csv --bad-lines quarantine`
    row["rejected_lines"] = con.execute("SELECT count(*) FROM quality.rejected_lines").fetchall()[0][0] if rejected else 0
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
    check: Annotated[bool, typer.Option("--check", help=f"For monitoring: exit {CHECK_EXIT} when there is any alert (low disk, stale data, a failed or aborted run, a failed verify), 0 otherwise.")] = False,
) -> None:
    """Show datasets and their freshness, recent ingests, success rates (ingests, builds, every
    stage), validation pass rates per symbol, models (last build, ingests not built yet), the
    latest backtests, lake size, free disk, and alerts (thresholds: [status] in alphatwin.toml).

    Example: alphatwin --warehouse W status --format json

    Example: alphatwin -q status --check || notify "warehouse unhealthy"
    """
    from alphatwin.errors import InputError

    if fmt not in ("table", "json"):
        raise InputError(f"`--format` must be table or json, got {fmt!r}")
    st = state(ctx)
    info, datasets, runs = collect_status(st.paths, st.settings)
    if fmt == "json":
        typer.echo(json.dumps(info, indent=2, default=str))
    else:
        _print(info, datasets, runs)
    if check and info["alerts"]:
        raise typer.Exit(CHECK_EXIT)


def _print(info: dict[str, Any], datasets: Any, runs: Any) -> None:
    lake, ing = info["lake"], info["ingests"]
    typer.echo(f"warehouse {info['warehouse']}")
    typer.echo(f"  lake: {lake['files']} file(s), {lake['rows']:,} rows, {lake['bytes'] / 2**20:,.1f} MiB; "
               f"catalog {info['catalog_bytes'] / 2**20:,.1f} MiB")
    rate = "" if ing["success_rate"] is None else f" ({ing['success_rate']:.0%} succeeded)"
    typer.echo(f"  ingests: {ing['runs']} run(s): {ing['ok']} ok, {ing['failed']} failed, {ing['rejected']} rejected, "
               f"{ing['aborted']} aborted{rate}")
    b = info["builds"]
    if b["runs"]:
        failing = f"; failing now: {', '.join(b['failing_models'])}" if b["failing_models"] else ""
        typer.echo(f"  builds: {b['runs']} model build(s), {b['ok']} ok, {b['failed']} failed "
                   f"({b['success_rate']:.0%} succeeded){failing}")
    others = [s for s in info["stages"] if not s["stage"].startswith("build:")]
    if others:
        typer.echo("  stages: " + ", ".join(f"{s['stage']} {s['ok']}/{s['runs']} ok" for s in others))
    qual = info["quality"]
    if qual and qual["batches"]:
        typer.echo(f"  quality: {qual['passed']} of {qual['batches']} batch(es) passed; "
                   f"{qual['quarantined']:,} of {qual['received']:,} rows quarantined, {qual['flagged']:,} flagged"
                   + (f", {qual['rejected_lines']:,} unreadable line(s) set aside (quality.rejected_lines)"
                      if qual["rejected_lines"] else "") + " (alphatwin quality report)")
        worst = [v for v in info["validation_by_symbol"] if v["quarantined"]][:5]
        if worst:
            typer.echo("    worst symbols: " + ", ".join(
                f"{v['symbol']} {v['interval']} {v['pass_rate']:.2%} ({v['quarantined']:,} quarantined)" for v in worst))
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
    typer.echo(f"  disk free: {info['disk_free_bytes'] / 2**30:,.1f} GiB ({info['disk_free_percent']:.1f}%)")
    if info["alerts"]:
        typer.echo(f"  alerts: {len(info['alerts'])}")
        for a in info["alerts"]:
            typer.secho(f"    {a['kind']}: {a['message']}", fg="yellow")
    else:
        typer.echo("  alerts: none")
    typer.echo("\ndatasets")
    emit(datasets, "table")
    typer.echo("recent ingests")
    emit(runs.drop("error"), "table")
