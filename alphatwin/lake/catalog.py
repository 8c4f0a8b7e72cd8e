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
import datetime as dt
import os
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from alphatwin.errors import CatalogError, LakeError, WarehouseBusyError
from alphatwin.lake.lock import default_wait, holds_write_lock, snapshot_guard
from alphatwin.log import get_logger
from alphatwin.paths import WarehousePaths

__all__ = ["connect", "ensure_schema", "STORAGE_VERSION", "refresh_raw_view", "raw_bars_view_sql",
           "snapshot_path", "publish_snapshot"]

log = get_logger("lake.catalog")

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
    # stage_runs' later columns (alphatwin.lake.stages.COLUMNS): per-stage memory and context
    "ALTER TABLE meta.stage_runs ADD COLUMN IF NOT EXISTS rss_start_mb DOUBLE",
    "ALTER TABLE meta.stage_runs ADD COLUMN IF NOT EXISTS stage_peak_rss_mb DOUBLE",
    "ALTER TABLE meta.stage_runs ADD COLUMN IF NOT EXISTS context VARCHAR",
    """CREATE TABLE IF NOT EXISTS meta.properties (
        key VARCHAR PRIMARY KEY,
        value VARCHAR
    )""",
    # meta.audit: append-only, one row per data change (alphatwin.lake.audit writes it)
    "CREATE SEQUENCE IF NOT EXISTS meta.audit_seq",
    """CREATE TABLE IF NOT EXISTS meta.audit (
        seq BIGINT NOT NULL,          -- strictly increasing (meta.audit_seq)
        "at" TIMESTAMPTZ NOT NULL,   -- quoted: AT is a keyword
        run_id VARCHAR NOT NULL,      -- the command's log run id
        "user" VARCHAR,
        host VARCHAR,
        pid INTEGER,
        command VARCHAR,
        action VARCHAR NOT NULL,      -- ingest | ingest_failed | ingest_aborted | quarantine | build | ...
        object VARCHAR,               -- ingest id, model, or lake path
        rows_in BIGINT,
        rows_out BIGINT,
        rows_quarantined BIGINT,
        files INTEGER,
        bytes BIGINT,
        status VARCHAR,
        detail JSON
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


# Operating-system errors DuckDB reports when it opens or checkpoints the catalog; each becomes a
# one-line LakeError naming the file instead of an "unexpected error".
_STORAGE_ERRORS = {
    "no space left on device": "no space left on device",
    "disk quota exceeded": "disk quota exceeded",
    "read-only file system": "read-only file system",
    "permission denied": "permission denied",
}


def _storage_error(paths: WarehousePaths, exc: BaseException, doing: str) -> LakeError | None:
    text = str(exc).lower()
    for needle, reason in _STORAGE_ERRORS.items():
        if needle in text:
            return LakeError(f"cannot {doing} the warehouse catalog {paths.db}: {reason} "
                             "(the previous state is intact)")
    return None


def snapshot_path(paths: WarehousePaths) -> Path:
    """The read snapshot: the catalog as it was when the running writer opened it."""
    return paths.state / "snapshot.duckdb"


def _wal(paths: WarehousePaths) -> Path:
    return paths.db.with_name(paths.db.name + ".wal")


def publish_snapshot(paths: WarehousePaths, source: int) -> float | None:
    """Copy the catalog, read through the open descriptor ``source``, to :func:`snapshot_path`
    (temp name, fsync, ``os.replace``: atomic).

    Called by a writer that holds the catalog read-write and the exclusive snapshot guard, before
    it writes anything: the file then holds exactly the last committed state, unless a killed
    writer left a WAL, in which case the old snapshot is removed instead (readers wait). Returns
    the copy's wall time in seconds, or None when there was nothing to publish.

    ``source`` must stay open until DuckDB has closed the catalog: closing any descriptor of a
    file drops every POSIX lock the process holds on it, DuckDB's write lock included.
    """
    target = snapshot_path(paths)
    if _wal(paths).exists():
        target.unlink(missing_ok=True)
        return None
    started = time.perf_counter()
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        out = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            _copy_range(source, out, os.fstat(source).st_size)
            os.fsync(out)
        finally:
            os.close(out)
        os.replace(tmp, target)
    except OSError as exc:  # e.g. no room for the copy: readers wait instead of reading a stale one
        tmp.unlink(missing_ok=True)
        target.unlink(missing_ok=True)
        log.info("no read snapshot of %s (%s): readers wait for this write", paths.db, exc.strerror or exc)
        return None
    return time.perf_counter() - started


def _copy_range(src: int, dst: int, size: int) -> None:
    """Copy ``size`` bytes from offset 0 without moving or closing ``src`` (in-kernel where possible)."""
    offset = 0
    while offset < size:
        try:
            n = os.copy_file_range(src, dst, size - offset, offset)
        except OSError:
            n = 0
        if n == 0:  # not supported here (or end of file): plain reads
            chunk = os.pread(src, min(8 << 20, size - offset), offset)
            if not chunk:
                return
            n = os.write(dst, chunk)
        offset += n


_noted: set[str] = set()


def _note_snapshot(paths: WarehousePaths, snap: Path) -> None:
    if str(paths.root) in _noted:
        return
    _noted.add(str(paths.root))
    taken = dt.datetime.fromtimestamp(snap.stat().st_mtime, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    sys.stderr.write(f"note: another process is writing the warehouse (a build or an ingest); "
                     f"reading the catalog as of {taken}, before that write\n")
    sys.stderr.flush()


def _busy(paths: WarehousePaths, read_only: bool, wait: float) -> WarehouseBusyError:
    waited = f"; waited {wait:g} s" if wait > 0 else ""
    who = "a writer, and there is no read snapshot" if read_only else "a reader or a writer"
    return WarehouseBusyError(
        f"warehouse busy: the catalog {paths.db} is open in another process ({who}){waited}; "
        "retry when it finishes (or pass --wait SECONDS)"
    )


def _attach(con: Any, paths: WarehousePaths, target: Path, options: str) -> Exception | None:
    """ATTACH ``target`` as the warehouse; None on success, the lock error if it is held."""
    import duckdb

    try:
        con.execute(f"ATTACH {_sql_str(target.as_posix())} AS {ALIAS} ({options})")
        return None
    except duckdb.Error as exc:
        if _is_lock_error(exc):
            return exc
        mapped = _storage_error(paths, exc, "open")
        if mapped is not None:
            raise mapped from None
        raise CatalogError(f"cannot open warehouse catalog {target}: {str(exc).splitlines()[0]}") from None


def _open_writer(con: Any, paths: WarehousePaths, keep: list[int], created: list[bool]) -> bool:
    """Attach the catalog read-write and publish the read snapshot; False if it is held.

    The descriptor the snapshot is read through goes to ``keep``, closed after the connection;
    ``created`` gets True when this attach created the catalog file."""
    with snapshot_guard(paths, exclusive=True):  # every writer opens under it: none creates the file meanwhile
        existed = paths.db.exists()
        try:
            held = _attach(con, paths, paths.db, f"STORAGE_VERSION '{STORAGE_VERSION}'")
        except BaseException:
            if not existed:  # the attach started creating the catalog: leave no half-written file
                for leftover in (paths.db, _wal(paths)):
                    leftover.unlink(missing_ok=True)
            raise
        if held is not None:
            return False
        if not existed:
            created.append(True)
            snapshot_path(paths).unlink(missing_ok=True)
            return True
        try:
            keep.append(os.open(paths.db, os.O_RDONLY))
        except OSError:
            snapshot_path(paths).unlink(missing_ok=True)
            return True
        publish_snapshot(paths, keep[-1])
        return True


def _open_reader(con: Any, paths: WarehousePaths) -> bool:
    """Attach the catalog read-only, or, while a writer holds it, the read snapshot."""
    if _attach(con, paths, paths.db, "READ_ONLY") is None:
        return True
    if holds_write_lock(paths):  # this process writes: its reads must see the live catalog
        return False
    with snapshot_guard(paths, exclusive=False):
        if _attach(con, paths, paths.db, "READ_ONLY") is None:  # the writer may just have finished
            return True
        snap = snapshot_path(paths)
        if not snap.is_file() or _attach(con, paths, snap, "READ_ONLY") is not None:
            return False
        _note_snapshot(paths, snap)  # under the guard: no writer replaces the snapshot meanwhile
    return True


@contextlib.contextmanager
def connect(paths: WarehousePaths, *, read_only: bool = False, wait: float = 0.0) -> Iterator[Any]:
    """Open the warehouse catalog (creating it, in storage version v1.5.0, on first write).

    Yields a DuckDB connection whose default database is the warehouse. DuckDB allows one
    read-write process or many read-only ones: a read-only open that finds a writer reads the
    read snapshot instead (the catalog as of the writer's start; one ``note:`` line on stderr),
    and a read-write open publishes that snapshot before it writes (see docs/lake.md).

    Raises :class:`CatalogError` when a read-only open finds no warehouse,
    :class:`WarehouseBusyError` when the catalog stays held for longer than ``wait`` seconds
    (at least the ``--wait`` default), and :class:`LakeError` for a full disk, a read-only file
    system or a permission error.
    """
    import duckdb

    if read_only and not paths.db.exists():
        raise CatalogError(
            f"no warehouse at {paths.root} (run `alphatwin init` or an ingest first)"
        )
    wait = max(wait, default_wait())
    try:
        paths.root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise LakeError(f"cannot create the warehouse directory {paths.root}: {exc.strerror}") from None
    con = duckdb.connect(":memory:")
    keep: list[int] = []  # descriptors to close only after DuckDB closed the catalog
    created: list[bool] = []  # this open created the catalog file (another writer may have, meanwhile)
    try:
        try:
            deadline = time.monotonic() + wait
            while not (_open_reader(con, paths) if read_only else _open_writer(con, paths, keep, created)):
                if time.monotonic() >= deadline:
                    raise _busy(paths, read_only, wait)
                time.sleep(0.2)
            con.execute(f"USE {ALIAS}")
            con.execute("SET TimeZone = 'UTC'")
            if not read_only:
                ensure_schema(con, paths)
        except BaseException as exc:
            con.close()
            if created and isinstance(exc, (duckdb.Error, LakeError)):  # no half-created catalog left behind
                for leftover in (paths.db, _wal(paths)):
                    leftover.unlink(missing_ok=True)
            mapped = _storage_error(paths, exc, "write") if isinstance(exc, duckdb.Error) else None
            if mapped is not None:
                raise mapped from None
            raise
        try:
            yield con
        except BaseException:
            with contextlib.suppress(duckdb.Error):
                con.close()
            raise
        try:
            con.close()  # the checkpoint: a full disk shows here
        except duckdb.Error as exc:
            mapped = _storage_error(paths, exc, "checkpoint")
            if mapped is not None:
                raise mapped from None
            raise
    finally:
        for fd in keep:
            os.close(fd)
