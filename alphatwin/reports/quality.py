"""The data-quality report: what validation found, batch by batch, for people.

:func:`collect_quality` pulls the quality verdicts out of the catalog with SQL (one Polars frame
per section); :func:`write_quality_report` renders them as one self-contained HTML page (Altair
charts with the Vega bundle inlined once, so the file opens offline)::

    meta.validation_runs ─┐
    meta.validation_results ├─> collect_quality() -> QualityData -> write_quality_report() -> quality.html
    quality.quarantine / quality.flags ─┘

A batch is one ingest; its *current* validation run is the latest one (re-validation keeps the
older runs, with ``current = false``). Summary numbers and expectation results use current runs;
the pass-rate-over-time chart and the runs table show every run.

Example
-------
>>> from alphatwin.paths import WarehousePaths
>>> from alphatwin.reports.quality import write_quality_report
>>> write_quality_report(WarehousePaths(Path("warehouse")))  # doctest: +SKIP
PosixPath('warehouse/reports/quality.html')
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from alphatwin.errors import InputError

if TYPE_CHECKING:
    import polars as pl

    from alphatwin.paths import WarehousePaths

__all__ = ["QualityData", "collect_quality", "quarantined_rows", "write_quality_report", "default_report_path"]

QUARANTINE_LIMIT = 200  # quarantined (and flagged) rows listed in the report
WORST_LIMIT = 20  # symbols in the worst-symbols chart and table
_QUALITY_TABLES = ("validation_runs", "validation_results", "quarantine", "flags")

# `$ingest` is NULL for "every ingest"; each query filters on it the same way.
_BY_INGEST = "($ingest::VARCHAR IS NULL OR {alias}ingest_id = $ingest::VARCHAR)"

_RUNS_SQL = f"""
SELECT r.started, r.validation_id, r.ingest_id, r.suite, left(r.suite_sha256, 12) AS suite_sha256,
    r.trigger, r.current,
    CASE WHEN r.batch_error IS NOT NULL THEN 'error' WHEN r.success THEN 'pass'
         WHEN r.success IS NULL THEN 'incomplete' ELSE 'fail' END AS result,
    coalesce(x.expectations, 0) AS expectations, coalesce(x.failed, 0) AS expectations_failed,
    r.rows_received, r.rows_accepted, r.rows_quarantined, r.rows_flagged, r.rows_collapsed,
    r.rows_restated, round(r.wall_s, 3) AS wall_s, r.batch_error
FROM meta.validation_runs AS r
LEFT JOIN (
    SELECT validation_id, count(*) AS expectations, count(*) FILTER (WHERE NOT success) AS failed
    FROM meta.validation_results GROUP BY validation_id
) AS x USING (validation_id)
WHERE {_BY_INGEST.format(alias="r.")}
ORDER BY r.started DESC, r.validation_id
"""

_EXPECTATIONS_SQL = f"""
SELECT r.suite, x.expectation, x.expectation_type, x.severity, x.columns,
    CASE WHEN bool_and(x.success) THEN 'pass' ELSE 'fail' END AS result,
    count(*) AS runs, count(*) FILTER (WHERE NOT x.success) AS runs_failed,
    coalesce(sum(x.element_count), 0)::BIGINT AS element_count,
    coalesce(sum(x.unexpected_count), 0)::BIGINT AS unexpected_count,
    round(100.0 * sum(x.unexpected_count) / nullif(sum(x.element_count), 0), 4) AS unexpected_percent,
    arg_max(x.sample_values, r.started) FILTER (WHERE NOT x.success) AS sample_values
FROM meta.validation_results AS x JOIN meta.validation_runs AS r USING (validation_id)
WHERE r.current AND {_BY_INGEST.format(alias="r.")}
GROUP BY ALL
ORDER BY unexpected_count DESC, runs_failed DESC, r.suite, x.expectation
"""

_SUMMARY_SQL = f"""
SELECT
    (SELECT count(*) FROM meta.validation_runs WHERE {_BY_INGEST.format(alias="")}) AS validation_runs,
    count(*) AS batches,
    count(*) FILTER (WHERE success AND batch_error IS NULL) AS batches_passed,
    coalesce(sum(x.expectations), 0)::BIGINT AS expectations,
    coalesce(sum(x.passed), 0)::BIGINT AS expectations_passed,
    coalesce(sum(rows_received), 0)::BIGINT AS rows_received,
    coalesce(sum(rows_accepted), 0)::BIGINT AS rows_accepted,
    coalesce(sum(rows_quarantined), 0)::BIGINT AS rows_quarantined,
    coalesce(sum(rows_flagged), 0)::BIGINT AS rows_flagged,
    coalesce(sum(rows_collapsed), 0)::BIGINT AS rows_collapsed,
    coalesce(sum(rows_restated), 0)::BIGINT AS rows_restated
FROM meta.validation_runs AS r
LEFT JOIN (
    SELECT validation_id, count(*) AS expectations, count(*) FILTER (WHERE success) AS passed
    FROM meta.validation_results GROUP BY validation_id
) AS x USING (validation_id)
WHERE r.current AND {_BY_INGEST.format(alias="r.")}
"""

_SUITES_SQL = f"""
SELECT suite, left(suite_sha256, 12) AS suite_sha256, suite_sha256 AS suite_sha256_full,
    count(*) AS runs, min(started) AS first_run, max(started) AS last_run
FROM meta.validation_runs WHERE {_BY_INGEST.format(alias="")}
GROUP BY ALL ORDER BY suite, last_run DESC
"""

# Quarantined and flagged rows in one stream; a row counts once, each of its reasons once.
_MARKED_ROWS = f"""
marked AS (
    SELECT coalesce(symbol, '(no symbol)') AS symbol, reasons, 'quarantined' AS kind
    FROM quality.quarantine WHERE {_BY_INGEST.format(alias="")}
    UNION ALL
    SELECT coalesce(symbol, '(no symbol)'), reasons, 'flagged'
    FROM quality.flags WHERE {_BY_INGEST.format(alias="")}
)"""

_WORST_SQL = f"""
WITH {_MARKED_ROWS},
per_reason AS (
    SELECT symbol, reason, count(*) AS n
    FROM (SELECT symbol, unnest(reasons) AS reason FROM marked) GROUP BY ALL
),
reasons AS (
    SELECT symbol, string_agg(reason || ' (' || n || ')', ', ' ORDER BY n DESC, reason) AS reasons
    FROM per_reason GROUP BY symbol
)
SELECT m.symbol, count(*) FILTER (WHERE kind = 'quarantined') AS quarantined,
    count(*) FILTER (WHERE kind = 'flagged') AS flagged, count(*) AS total, any_value(r.reasons) AS reasons
FROM marked AS m LEFT JOIN reasons AS r USING (symbol)
GROUP BY m.symbol ORDER BY total DESC, quarantined DESC, m.symbol
LIMIT $limit
"""

_REASONS_SQL = f"""
WITH {_MARKED_ROWS}
SELECT reason, kind, count(*) AS rows, count(DISTINCT symbol) AS symbols
FROM (SELECT symbol, kind, unnest(reasons) AS reason FROM marked)
GROUP BY ALL ORDER BY kind DESC, rows DESC, reason
"""

_FLAGS_SQL = f"""
SELECT v.started AS validated_at, f.ingest_id, f.symbol, f.interval, f.ts, f.row_nr, f.reasons,
    f.detail, f.validation_id
FROM quality.flags AS f LEFT JOIN meta.validation_runs AS v USING (validation_id)
WHERE {_BY_INGEST.format(alias="f.")}
ORDER BY v.started DESC NULLS LAST, f.ingest_id, f.row_nr
LIMIT $limit
"""


@dataclass(frozen=True)
class QualityData:
    """Everything the data-quality report shows, as Polars frames (see :func:`collect_quality`).

    Attributes
    ----------
    warehouse : str
        The warehouse root, as recorded in the catalog.
    generated_at : datetime.datetime
        When the data was collected (UTC).
    ingest_id : str or None
        The one ingest the report covers, or None for every ingest.
    summary : dict
        Totals over current runs: ``validation_runs`` (every run), ``batches``, ``batches_passed``,
        ``batch_pass_rate``, ``expectations``, ``expectations_passed``, ``expectation_pass_rate``,
        ``rows_received``/``accepted``/``quarantined``/``flagged``/``collapsed``/``restated``,
        ``quarantine_total`` and ``flags_total`` (rows in the quality tables).
    suites : polars.DataFrame
        One row per suite version: ``suite``, short and full ``suite_sha256``, ``runs``.
    runs : polars.DataFrame
        One row per validation run, newest first: pass/fail ``result``, expectations failed, row
        counts.
    expectations : polars.DataFrame
        One row per expectation over current runs: ``result``, ``runs_failed``,
        ``unexpected_count``, ``unexpected_percent``, latest failing ``sample_values``.
    pass_rate : polars.DataFrame
        One row per validation run, oldest first: ``expectation_pass_rate`` and
        ``row_accept_rate`` (fractions).
    worst_symbols : polars.DataFrame
        Symbols with the most quarantined + flagged rows, with their reasons and counts.
    reasons : polars.DataFrame
        Rows per ``reason`` and ``kind`` (quarantined / flagged); a row counts under each reason.
    quarantine : polars.DataFrame
        The latest quarantined rows (capped), with ``reasons`` and ``detail``.
    flags : polars.DataFrame
        The latest flagged rows (capped).
    """

    warehouse: str
    generated_at: dt.datetime
    ingest_id: str | None
    summary: dict[str, Any]
    suites: pl.DataFrame
    runs: pl.DataFrame
    expectations: pl.DataFrame
    pass_rate: pl.DataFrame
    worst_symbols: pl.DataFrame
    reasons: pl.DataFrame
    quarantine: pl.DataFrame
    flags: pl.DataFrame

    @property
    def empty(self) -> bool:
        """True when no validation run is recorded (for the ingest, if one was asked for)."""
        return self.runs.is_empty()


def _has_quality_tables(con: Any) -> bool:
    found = con.execute(
        "SELECT count(DISTINCT table_name) FROM duckdb_tables() WHERE database_name = current_database() "
        "AND schema_name IN ('meta', 'quality') AND table_name IN (SELECT unnest($names::VARCHAR[]))",
        {"names": list(_QUALITY_TABLES)},
    ).fetchall()[0][0]
    return found == len(_QUALITY_TABLES)


@contextmanager
def _quality_catalog(con: Any) -> Iterator[Any]:
    """``con`` itself when it holds the quality tables, else an empty in-memory stand-in.

    A warehouse that never ran validation has no quality tables, and a read-only connection
    cannot create them; the stand-in lets every query run and return typed, empty frames.
    """
    if _has_quality_tables(con):
        yield con
        return
    import duckdb

    from alphatwin.quality.store import QUALITY_DDL

    stub = duckdb.connect(":memory:")
    try:
        stub.execute("CREATE SCHEMA meta")
        for statement in QUALITY_DDL:
            stub.execute(statement)
        yield stub
    finally:
        stub.close()


def _check_ingest(con: Any, ingest_id: str | None) -> None:
    if ingest_id is None:
        return
    known = con.execute("SELECT count(*) FROM meta.ingest_runs WHERE ingest_id = $i", {"i": ingest_id}).fetchall()[0][0]
    if not known and _has_quality_tables(con):
        known = con.execute(
            "SELECT count(*) FROM meta.validation_runs WHERE ingest_id = $i", {"i": ingest_id}
        ).fetchall()[0][0]
    if not known:
        raise InputError(f"`--ingest-id` must name an ingest of this warehouse (see `alphatwin status`), got {ingest_id!r}")


def _warehouse_root(con: Any) -> str:
    rows = con.execute("SELECT value FROM meta.properties WHERE key = 'root'").fetchall()
    return rows[0][0] if rows else ""


def quarantined_rows(con: Any, *, symbol: str | None = None, ingest_id: str | None = None,
                     limit: int | None = 50) -> pl.DataFrame:
    """The quarantined rows, most recent first, with the expectations they failed.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        A connection on the warehouse (see :func:`alphatwin.lake.catalog.connect`).
    symbol : str, optional
        Only this symbol's rows.
    ingest_id : str, optional
        Only this ingest's rows; an unknown ingest is an :class:`~alphatwin.errors.InputError`.
    limit : int or None, default 50
        At most this many rows; None lists them all.

    Returns
    -------
    polars.DataFrame
        ``quarantined_at, ingest_id, symbol, interval, ts, row_nr, reasons`` (a list),
        ``detail, collapsed, validation_id``.
    """
    if limit is not None and limit < 0:
        raise InputError(f"`--limit` must be a whole number >= 0, got {limit}")
    _check_ingest(con, ingest_id)
    with _quality_catalog(con) as qc:
        return _quarantine(qc, ingest_id=ingest_id, symbol=symbol, limit=limit)


def _quarantine(qc: Any, *, ingest_id: str | None, symbol: str | None, limit: int | None) -> pl.DataFrame:
    sql = (
        "SELECT quarantined_at, ingest_id, symbol, interval, ts, row_nr, reasons, detail, collapsed, validation_id "
        f"FROM quality.quarantine WHERE {_BY_INGEST.format(alias='')} "
        "AND ($symbol::VARCHAR IS NULL OR symbol = $symbol::VARCHAR) "
        "ORDER BY quarantined_at DESC, ingest_id, row_nr LIMIT $limit"
    )
    return qc.sql(sql, params={"ingest": ingest_id, "symbol": symbol, "limit": limit}).pl()


def _pass_rate(runs: pl.DataFrame) -> pl.DataFrame:
    import polars as pl

    return runs.sort("started").select(
        "started", "validation_id", "ingest_id", "suite", "current", "result",
        pl.when(pl.col("expectations") > 0)
        .then((pl.col("expectations") - pl.col("expectations_failed")) / pl.col("expectations"))
        .alias("expectation_pass_rate"),
        pl.when(pl.col("rows_received") > 0)
        .then(pl.col("rows_accepted") / pl.col("rows_received"))
        .alias("row_accept_rate"),
    )


def _summary(qc: Any, params: dict[str, Any]) -> dict[str, Any]:
    summary = qc.sql(_SUMMARY_SQL, params=params).pl().row(0, named=True)
    summary["batch_pass_rate"] = summary["batches_passed"] / summary["batches"] if summary["batches"] else None
    summary["expectation_pass_rate"] = (
        summary["expectations_passed"] / summary["expectations"] if summary["expectations"] else None
    )
    for table, key in (("quarantine", "quarantine_total"), ("flags", "flags_total")):
        summary[key] = qc.execute(
            f"SELECT count(*) FROM quality.{table} WHERE {_BY_INGEST.format(alias='')}", params
        ).fetchall()[0][0]
    return summary


def collect_quality(con: Any, *, ingest_id: str | None = None, quarantine_limit: int = QUARANTINE_LIMIT,
                    worst_limit: int = WORST_LIMIT) -> QualityData:
    """Pull the data-quality report's sections out of the catalog.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        A connection on the warehouse (read-only is enough).
    ingest_id : str, optional
        Report on this ingest only; an unknown ingest is an :class:`~alphatwin.errors.InputError`.
    quarantine_limit : int, default 200
        How many of the latest quarantined and flagged rows to list.
    worst_limit : int, default 20
        How many symbols to rank.

    Returns
    -------
    QualityData
        Empty frames (and ``data.empty``) when no validation run is recorded yet.
    """
    _check_ingest(con, ingest_id)
    warehouse = _warehouse_root(con)
    params = {"ingest": ingest_id}
    limited = {**params, "limit": quarantine_limit}
    with _quality_catalog(con) as qc:
        q = lambda sql, p=params: qc.sql(sql, params=p).pl()  # noqa: E731
        runs = q(_RUNS_SQL)
        data = QualityData(
            warehouse=warehouse,
            generated_at=dt.datetime.now(dt.UTC).replace(microsecond=0),
            ingest_id=ingest_id,
            summary=_summary(qc, params),
            suites=q(_SUITES_SQL),
            runs=runs,
            expectations=q(_EXPECTATIONS_SQL),
            pass_rate=_pass_rate(runs),
            worst_symbols=q(_WORST_SQL, {**params, "limit": worst_limit}),
            reasons=q(_REASONS_SQL),
            quarantine=_quarantine(qc, ingest_id=ingest_id, symbol=None, limit=quarantine_limit),
            flags=q(_FLAGS_SQL, limited),
        )
    return data


def default_report_path(paths: WarehousePaths) -> Path:
    """Where ``alphatwin quality report`` writes by default: ``<warehouse>/reports/quality.html``."""
    return paths.root / "reports" / "quality.html"


def write_quality_report(paths: WarehousePaths, out: Path | None = None, *, ingest_id: str | None = None) -> Path:
    """Write the data-quality report as one self-contained HTML file.

    The page holds a header (warehouse, time, suites and their hashes), summary cards, four
    Altair charts (pass rate over time, unexpected values per expectation, worst symbols,
    quarantined and flagged rows by reason) and tables of runs, expectations, worst symbols,
    quarantined and flagged rows. The Vega, Vega-Lite and Vega-Embed scripts are inlined once,
    so the file opens offline. A warehouse without validation runs gets a page that says so.

    Parameters
    ----------
    paths : WarehousePaths
        The warehouse to report on (opened read-only).
    out : pathlib.Path, optional
        The HTML file to write; default ``<warehouse>/reports/quality.html``. Written atomically
        (temporary file, then rename).
    ingest_id : str, optional
        Report on this ingest only.

    Returns
    -------
    pathlib.Path
        The file written.
    """
    from alphatwin.lake import catalog
    from alphatwin.reports._html import write_atomic
    from alphatwin.reports._quality_page import render_page

    with catalog.connect(paths, read_only=True) as con:
        data = collect_quality(con, ingest_id=ingest_id)
    target = Path(out) if out is not None else default_report_path(paths)
    write_atomic(target, render_page(data))
    return target
