"""Ingest: pull bars from a source, stage them as Parquet, publish, and commit to the catalog.

The sequence that makes an ingest all-or-nothing::

    lock -> recover leftovers -> record run 'running' -> fetch + stage (tmp/) -> publish (rename)
         -> ONE catalog transaction: lake_files + datasets + ingest_runs + raw.bars view

Network sources are asked for all symbols at once; when one symbol fails after the resilience
layer's retries and fail-over, the others are asked again without it, and the failed symbol
falls back to the data already in the lake (with a staleness warning) when there is some.
"""

from __future__ import annotations

import datetime as dt
import getpass
import os
import queue
import shutil
import socket
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import polars as pl

from alphatwin.errors import AlphaTwinError, BatchRejectedError, EmptyDataError, InputError, SourceError
from alphatwin.lake import catalog
from alphatwin.lake.lock import write_lock
from alphatwin.lake.stages import StageRun, stage
from alphatwin.lake.writer import LakeWriter
from alphatwin.log import get_logger, new_id
from alphatwin.paths import WarehousePaths
from alphatwin.sources.base import BAR_SCHEMA, FetchRequest, Source, conform

__all__ = ["IngestResult", "ingest", "recover"]

log = get_logger("ingest")

ProgressFn = Callable[[int], None]


class BatchGate(Protocol):
    """Validates an ingest's batches before they are staged (the quality layer implements it).

    ``check`` sees each batch in arrival order with the position of its first row in the ingest;
    it raises :class:`~alphatwin.errors.BatchRejectedError` to reject the whole ingest.
    ``persist`` writes its verdicts inside the ingest's commit transaction, so verdicts and data
    become visible together.
    """

    def check(self, bars: pl.DataFrame, *, row_offset: int) -> None: ...

    def persist(self, con: Any, ingest_id: str) -> None: ...


@dataclass
class IngestResult:
    """What an ingest did. ``status``: committed, partial (some symbols failed), or fallback
    (nothing new arrived; every symbol is served by data already in the lake)."""

    ingest_id: str
    source: str
    status: str
    rows: int = 0
    files: int = 0
    symbols: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    stale: dict[str, dt.datetime] = field(default_factory=dict)
    wall_s: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "ingest_id": self.ingest_id, "source": self.source, "status": self.status,
            "rows": self.rows, "files": self.files, "symbols": self.symbols, "failed": self.failed,
            "stale": {k: v.isoformat() for k, v in self.stale.items()}, "wall_s": round(self.wall_s, 3),
        }


def _prefetch(items: Iterable[Any], depth: int = 1) -> Iterator[Any]:
    """Produce the next batch in a background thread while the caller writes this one."""
    q: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        q.put(("item", item), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put(("done", None))
        except BaseException as exc:  # handed to the consumer
            q.put(("error", exc))

    thread = threading.Thread(target=produce, name="alphatwin-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            kind, value = q.get()
            if kind == "done":
                return
            if kind == "error":
                raise value
            yield value
    finally:
        stop.set()


def recover(con: Any, paths: WarehousePaths) -> int:
    """Clean up after killed writers (call with the write lock held).

    Marks runs still 'running' as 'aborted', removes staging folders, and deletes lake files
    that no committed run owns (they were published but never committed, so no reader ever
    saw them). Returns the number of files removed.
    """
    con.execute(
        "UPDATE meta.ingest_runs SET status = 'aborted', finished = now(), "
        "error = coalesce(error, 'process ended before commit') WHERE status = 'running'"
    )
    if paths.tmp.exists():
        for child in paths.tmp.iterdir():
            shutil.rmtree(child, ignore_errors=True)
    known = {r[0] for r in con.execute("SELECT path FROM meta.lake_files").fetchall()}
    committed = {r[0] for r in con.execute(
        "SELECT ingest_id FROM meta.ingest_runs WHERE status IN ('committed', 'partial')").fetchall()}
    removed = 0
    if paths.bars.exists():
        for f in paths.bars.rglob("*.parquet"):
            rel = paths.relative(f)
            owner = f.name.rsplit("-", 1)[0]
            if rel not in known and owner not in committed:
                f.unlink(missing_ok=True)
                removed += 1
    if removed:
        log.warning("recovered: removed %d uncommitted lake file(s) left by a killed ingest", removed)
    return removed


def _start_run(paths: WarehousePaths, run_id: str, source: Source, request: FetchRequest, command: str) -> None:
    with catalog.connect(paths, wait=COMMIT_WAIT) as con:
        recover(con, paths)
        con.execute(
            "INSERT INTO meta.ingest_runs (ingest_id, source, symbols, interval, requested_start, "
            "requested_end, status, started, \"user\", host, pid, command) "
            "VALUES (?, ?, ?, ?, ?, ?, 'running', now(), ?, ?, ?, ?)",
            [run_id, source.name, list(request.symbols), request.interval, request.start,
             request.end, _user(), socket.gethostname(), os.getpid(), command],
        )


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())


def _lake_frame(frame: pl.DataFrame, request: FetchRequest, ingest_id: str, source: str) -> pl.DataFrame:
    frame = conform(frame)
    bad = frame.filter(pl.col("interval") != request.interval)
    if not bad.is_empty():
        raise InputError(
            f"source returned interval {bad['interval'][0]!r} bars for a {request.interval!r} request"
        )
    missing = [c for c in ("symbol", "interval", "ts") if frame[c].null_count()]
    if missing:
        raise InputError(
            f"source returned {max(frame[c].null_count() for c in missing)} bar(s) without "
            f"{' / '.join(missing)}; a bar needs its key (symbol, interval, ts) to be stored or quarantined"
        )
    return frame.with_columns(pl.lit(ingest_id).alias("ingest_id"), pl.lit(source).alias("source"))


def _fetch_all(
    source: Source, request: FetchRequest, writer: LakeWriter, progress: ProgressFn | None,
    gate: BatchGate | None,
) -> dict[str, str]:
    """Stage every batch the source yields; return the symbols that failed, with reasons."""
    failed: dict[str, str] = {}
    remaining = list(request.symbols)
    while True:
        ask = replace(request, symbols=tuple(remaining)) if request.symbols else request
        tagged = getattr(source, "fetch_tagged", None)  # a chain says which member served each frame
        stream = tagged(ask) if tagged is not None else ((source.name, f) for f in source.fetch(ask))
        try:
            for served_by, frame in _prefetch(stream):
                lake = _lake_frame(frame, request, writer.ingest_id, served_by)
                if gate is not None:
                    gate.check(lake, row_offset=writer.rows)
                writer.write(lake)
                if progress is not None:
                    progress(lake.height)
                got = set(lake["symbol"].unique().to_list())
                remaining = [s for s in remaining if s not in got]
            break
        except SourceError as exc:
            if not request.symbols or exc.symbol not in remaining:
                raise
            failed[exc.symbol] = str(exc)
            remaining.remove(exc.symbol)
            if not remaining:
                break
    for symbol in remaining:  # asked for, never delivered, no error: count as a failure
        failed[symbol] = f"{source.name} returned no rows for {symbol}"
    return failed


def _fallback(paths: WarehousePaths, request: FetchRequest, failed: dict[str, str]) -> dict[str, dt.datetime]:
    if not failed or not paths.db.exists():
        return {}
    with catalog.connect(paths, read_only=True) as con:
        rows = con.execute(
            "SELECT symbol, max(last_ts) FROM meta.datasets WHERE interval = ? AND symbol IN "
            "(SELECT unnest(?::VARCHAR[])) GROUP BY symbol",
            [request.interval, list(failed)],
        ).fetchall()
    return {s: ts for s, ts in rows}


def _commit(con: Any, writer: LakeWriter, result: IngestResult, interval: str) -> None:
    files = pl.DataFrame(
        [f.__dict__ for f in writer.files],
        schema={"path": pl.String, "interval": pl.String, "year": pl.Int32, "rows": pl.Int64,
                "bytes": pl.Int64, "sha256": pl.String, "min_ts": BAR_SCHEMA["ts"], "max_ts": BAR_SCHEMA["ts"]},
    )
    stats = pl.DataFrame(
        {
            "symbol": [k[0] for k in writer.stats],
            "source": [k[1] for k in writer.stats],
            "first_ts": [s.first_ts for s in writer.stats.values()],
            "last_ts": [s.last_ts for s in writer.stats.values()],
            "rows": [s.rows for s in writer.stats.values()],
            "files": [len(s.files) for s in writer.stats.values()],
        },
        schema={"symbol": pl.String, "source": pl.String, "first_ts": BAR_SCHEMA["ts"],
                "last_ts": BAR_SCHEMA["ts"], "rows": pl.Int64, "files": pl.Int32},
    )
    con.register("new_files", files.to_arrow())
    con.register("new_stats", stats.to_arrow())
    con.execute(
        "INSERT INTO meta.lake_files SELECT path, ?, 'bars', interval, year, rows, bytes, sha256, "
        "min_ts, max_ts, now() FROM new_files", [result.ingest_id],
    )
    con.execute(
        "INSERT INTO meta.datasets AS d SELECT symbol, ?, source, first_ts, last_ts, rows, files, 1, ?, now() "
        "FROM new_stats ON CONFLICT (symbol, interval, source) DO UPDATE SET "
        "first_ts = least(d.first_ts, excluded.first_ts), last_ts = greatest(d.last_ts, excluded.last_ts), "
        "rows = d.rows + excluded.rows, files = d.files + excluded.files, ingests = d.ingests + 1, "
        "last_ingest_id = excluded.last_ingest_id, updated = excluded.updated",
        [interval, result.ingest_id],
    )
    con.unregister("new_files")
    con.unregister("new_stats")


COMMIT_WAIT = 60.0  # seconds to wait for readers holding the catalog open before giving up


def _finish(paths: WarehousePaths, result: IngestResult, writer: LakeWriter | None, srun: StageRun,
            interval: str, error: str | None, gate: BatchGate | None = None,
            on_commit: Callable[[], None] | None = None) -> bool:
    """Commit the run (and its files and verdicts) in one transaction; True once COMMIT ran.

    ``on_commit`` is called right after COMMIT, before the connection closes: closing (DuckDB's
    checkpoint) can still fail, and the caller must then know the ingest is durable.
    """
    detail = {"failed": result.failed, "stale": {k: str(v) for k, v in result.stale.items()}}
    with catalog.connect(paths, wait=COMMIT_WAIT) as con:
        con.execute("BEGIN TRANSACTION")
        if writer is not None and writer.files:
            _commit(con, writer, result, interval)
            catalog.refresh_raw_view(con, paths)
        if gate is not None:
            gate.persist(con, result.ingest_id)
        con.execute(
            "UPDATE meta.ingest_runs SET status = ?, rows = ?, files = ?, error = ?, finished = now(), "
            "detail = ? WHERE ingest_id = ?",
            [result.status, result.rows, result.files, error, detail, result.ingest_id],
        )
        srun.record(con)
        con.execute("COMMIT")
        if on_commit is not None:
            on_commit()
        return True


def ingest(
    source: Source,
    request: FetchRequest,
    paths: WarehousePaths,
    *,
    progress: ProgressFn | None = None,
    fallback_to_lake: bool = True,
    command: str = "",
    lock_timeout: float = 0.0,
    gate: BatchGate | None = None,
) -> IngestResult:
    """Ingest ``request`` from ``source`` into the warehouse at ``paths``; see the module docstring.

    Returns an :class:`IngestResult`. Raises :class:`AlphaTwinError` (after recording the run
    as failed, with nothing published) when no symbol got data and none could fall back.
    """
    ingest_id = new_id("ing-")
    result = IngestResult(ingest_id, source.name, "running", symbols=list(request.symbols))
    with write_lock(paths, timeout=lock_timeout), stage("ingest", command) as srun:
        _start_run(paths, ingest_id, source, request, command)
        writer: LakeWriter | None = None
        committed = False

        def mark_committed() -> None:
            nonlocal committed
            committed = True

        try:
            writer = LakeWriter(paths, ingest_id)
            result.failed = _fetch_all(source, request, writer, progress, gate)
            if writer.rows == 0 and not result.failed:
                raise EmptyDataError(f"{source.name} returned no rows for this request", source=source.name)
            result.stale = _fallback(paths, request, result.failed) if fallback_to_lake else {}
            if writer.rows == 0 and set(result.stale) != set(result.failed):
                missing = [s for s in result.failed if s not in result.stale]
                raise SourceError("; ".join(f"{s}: {result.failed[s]}" for s in missing), source=source.name)
            writer.sync()
            result.rows, result.files = writer.rows, len(writer.files)
            result.symbols = sorted({k[0] for k in writer.stats}) if not request.symbols else result.symbols
            result.status = "committed" if not result.failed else ("partial" if writer.rows else "fallback")
            srun.rows_in = srun.rows_out = writer.rows
            writer.publish()
            _finish(paths, result, writer, srun, request.interval, None, gate, on_commit=mark_committed)
        except BaseException as exc:
            if committed:  # e.g. the checkpoint on close failed: the ingest itself is durable
                log.error("ingest %s committed, then: %s", ingest_id, exc)
                raise
            if writer is not None:
                writer.discard()
                writer.unpublish()
            result.status = "rejected" if isinstance(exc, BatchRejectedError) else "failed"
            srun.status, srun.error = "failed", str(exc)[:500]
            try:
                _finish(paths, result, None, srun, request.interval, str(exc)[:2000],
                        gate if isinstance(exc, BatchRejectedError) else None)
            except AlphaTwinError:
                pass
            raise
    result.wall_s = srun.wall_s
    for symbol, last in result.stale.items():
        log.warning(
            "%s: no new data (%s); using data already in the lake up to %s (%d days stale)",
            symbol, result.failed.get(symbol, "source failed"), f"{last:%Y-%m-%d %H:%M}",
            (dt.datetime.now(dt.UTC) - last).days, extra={"symbol": symbol, "ingest_id": ingest_id},
        )
    return result
