"""The warehouse catalog: ``alphatwin.duckdb`` and its ``meta`` and ``raw`` schemas.

The catalog is the single source of truth for what the lake holds. An ingest becomes visible in
one DuckDB transaction that records its files in ``meta.lake_files``, updates
``meta.datasets`` and ``meta.ingest_runs`` and re-points the ``raw.bars`` view at the committed
file list, so a reader sees all of an ingest or none of it.

The file is written in DuckDB storage version v1.5.0 so that the plain ``duckdb`` CLI (1.5.x,
which cannot download extensions here) can open it and query ``raw.bars`` directly: the view
reads the lake with the built-in Parquet reader by absolute path.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from alphatwin.errors import CatalogError, WarehouseBusyError
from alphatwin.paths import WarehousePaths

__all__ = ["connect", "ensure_schema", "STORAGE_VERSION", "refresh_raw_view", "raw_bars_view_sql"]

STORAGE_VERSION = "v1.5.0"
ALIAS = "wh"

DDL = [
    "CREATE SCHEMA IF NOT EXISTS meta",
    "CREATE SCHEMA IF NOT EXISTS raw",
    """CREATE TABLE IF NOT EXISTS meta.ingest_runs (
        ingest_id VARCHAR PRIMARY KEY,
        source VARCHAR NOT NULL,
        symbols VARCHAR[],
        interval VARCHAR,
        requested_start TIMESTAMP,
        requested_end TIMESTAMP,
        rows BIGINT DEFAULT 0,
        files INTEGER DEFAULT 0,
        status VARCHAR NOT NULL,      -- running | committed | failed | fallback | aborted
        error VARCHAR,
        started TIMESTAMPTZ NOT NULL,
        finished TIMESTAMPTZ,
        "user" VARCHAR,
        host VARCHAR,
        pid INTEGER,
        command VARCHAR,
        detail JSON
    )""",
    """CREATE TABLE IF NOT EXISTS meta.lake_files (
        path VARCHAR PRIMARY KEY,     -- relative to the warehouse root
        ingest_id VARCHAR NOT NULL,
        dataset VARCHAR NOT NULL,     -- 'bars'
        interval VARCHAR NOT NULL,
        year INTEGER NOT NULL,
        rows BIGINT NOT NULL,
        bytes BIGINT NOT NULL,
        sha256 VARCHAR NOT NULL,
        min_ts TIMESTAMPTZ,
        max_ts TIMESTAMPTZ,
        created TIMESTAMPTZ NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS meta.datasets (
        symbol VARCHAR NOT NULL,
        interval VARCHAR NOT NULL,
        source VARCHAR NOT NULL,
        first_ts TIMESTAMPTZ,
        last_ts TIMESTAMPTZ,
        rows BIGINT NOT NULL,
        files INTEGER NOT NULL,
        ingests INTEGER NOT NULL,
        last_ingest_id VARCHAR,
        updated TIMESTAMPTZ,
        PRIMARY KEY (symbol, interval, source)
    )""",
    """CREATE TABLE IF NOT EXISTS meta.stage_runs (
        run_id VARCHAR NOT NULL,
        stage VARCHAR NOT NULL,
        command VARCHAR,
        started TIMESTAMPTZ NOT NULL,
        finished TIMESTAMPTZ,
        wall_s DOUBLE,
        rows_in BIGINT,
        rows_out BIGINT,
        peak_rss_mb DOUBLE,
        status VARCHAR NOT NULL,
        error VARCHAR
    )""",
    """CREATE TABLE IF NOT EXISTS meta.properties (
        key VARCHAR PRIMARY KEY,
        value VARCHAR
    )""",
]

# The empty form of raw.bars: the lake's columns with no rows, so queries work before any ingest.
_EMPTY_BARS = (
    "SELECT NULL::VARCHAR AS symbol, NULL::VARCHAR AS interval, NULL::TIMESTAMPTZ AS ts, "
    "NULL::DOUBLE AS open, NULL::DOUBLE AS high, NULL::DOUBLE AS low, NULL::DOUBLE AS close, "
    "NULL::DOUBLE AS volume, NULL::DOUBLE AS dividend, NULL::DOUBLE AS split_ratio, "
    "NULL::VARCHAR AS ingest_id, NULL::VARCHAR AS source WHERE false"
)


def _sql_str(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def raw_bars_view_sql(paths: WarehousePaths, files: list[str]) -> str:
    """``CREATE OR REPLACE VIEW raw.bars`` over the committed ``files`` (relative paths)."""
    if not files:
        return f"CREATE OR REPLACE VIEW raw.bars AS {_EMPTY_BARS}"
    listed = ", ".join(_sql_str((paths.root / f).as_posix()) for f in sorted(files))
    return (
        "CREATE OR REPLACE VIEW raw.bars AS SELECT symbol, interval, ts, open, high, low, close, "
        "volume, dividend, split_ratio, ingest_id, source "
        f"FROM read_parquet([{listed}], union_by_name = true)"
    )


def refresh_raw_view(con: Any, paths: WarehousePaths) -> None:
    """Re-point ``raw.bars`` at every committed bar file (inside the caller's transaction)."""
    files = [r[0] for r in con.execute("SELECT path FROM meta.lake_files WHERE dataset = 'bars'").fetchall()]
    con.execute(raw_bars_view_sql(paths, files))
    con.execute(
        "INSERT OR REPLACE INTO meta.properties VALUES ('root', ?)", [paths.root.as_posix()]
    )


def ensure_schema(con: Any, paths: WarehousePaths) -> None:
    """Create the catalog's schemas and tables if missing; re-point views if the warehouse moved."""
    for statement in DDL:
        con.execute(statement)
    rows = con.execute("SELECT value FROM meta.properties WHERE key = 'root'").fetchall()
    row = rows[0] if rows else None
    has_view = con.execute(
        "SELECT count(*) FROM duckdb_views() WHERE schema_name = 'raw' AND view_name = 'bars' "
        "AND database_name = current_database()"
    ).fetchall()[0][0]
    if row is None or row[0] != paths.root.as_posix() or not has_view:
        refresh_raw_view(con, paths)


def _is_lock_error(exc: Exception) -> bool:
    text = str(exc)
    return "Could not set lock" in text or "Conflicting lock" in text or "lock on file" in text


@contextlib.contextmanager
def connect(paths: WarehousePaths, *, read_only: bool = False, wait: float = 0.0) -> Iterator[Any]:
    """Open the warehouse catalog (creating it, in storage version v1.5.0, on first write).

    Yields a DuckDB connection whose default database is the warehouse. Raises
    :class:`CatalogError` when a read-only open finds no warehouse, and
    :class:`WarehouseBusyError` when another process holds the file open (DuckDB allows one
    read-write process or many read-only ones) for longer than ``wait`` seconds.
    """
    import duckdb

    if read_only and not paths.db.exists():
        raise CatalogError(
            f"no warehouse at {paths.root} (run `alphatwin init` or an ingest first)"
        )
    paths.root.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(":memory:")
    options = "READ_ONLY" if read_only else f"STORAGE_VERSION '{STORAGE_VERSION}'"
    deadline = time.monotonic() + wait
    while True:
        try:
            con.execute(f"ATTACH {_sql_str(paths.db.as_posix())} AS {ALIAS} ({options})")
            break
        except duckdb.Error as exc:
            if _is_lock_error(exc) and time.monotonic() < deadline:
                time.sleep(0.2)
                continue
            con.close()
            if _is_lock_error(exc):
                raise WarehouseBusyError(
                    f"warehouse busy: the catalog {paths.db} is open in another process "
                    f"({'a writer' if read_only else 'a reader or a writer'}); retry when it finishes"
                ) from None
            raise CatalogError(f"cannot open warehouse catalog {paths.db}: {exc}") from None
    con.execute(f"USE {ALIAS}")
    con.execute("SET TimeZone = 'UTC'")
    try:
        if not read_only:
            ensure_schema(con, paths)
        yield con
    finally:
        con.close()
