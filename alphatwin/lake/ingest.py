"""Ingest: pull bars from a source, stage them as Parquet, publish, and commit to the catalog.

The sequence that makes an ingest all-or-nothing::

    lock -> recover leftovers -> record run 'running' -> fetch + stage (tmp/) -> publish (rename)
         -> ONE catalog transaction: lake_files + datasets + ingest_runs + raw.bars view

Network sources are asked for all symbols at once; when one symbol fails after the resilience
layer's retries and fail-over, the others are asked again without it, and the failed symbol
falls back to the data already in the lake (with a staleness warning) when there is some.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import queue
import re
import shutil
import socket
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import polars as pl

from alphatwin.errors import (AlphaTwinError, BatchRejectedError, CatalogError, EmptyDataError, InputError,
                              LakeError, SourceError)
from alphatwin.lake import audit, catalog, faults
from alphatwin.lake.lock import write_lock
from alphatwin.lake.stages import StageRun, stage
from alphatwin.lake.verify import lake_read_error
from alphatwin.lake.writer import LakeWriter, check_free_space, storage_error
from alphatwin.log import get_logger, new_id, redact
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


_OWNED = re.compile(r"^(ing-.+)-(\d{5})\.parquet$")  # <ingest_id>-<n>.parquet, as LakeWriter names them
_DEAD = ("running", "aborted", "failed", "rejected")  # statuses of ingests that own no committed file


def recover(con: Any, paths: WarehousePaths) -> int:
    """Clean up after killed writers (call with the write lock held, outside a transaction).

    Marks runs still 'running' as 'aborted' (one ``ingest_aborted`` audit row each, in the same
    transaction), removes staging folders under ``tmp/``, and deletes the lake files those runs
    published but never committed (no reader ever saw them): only files named
    ``<ingest_id>-<n>.parquet`` whose ingest is recorded as running, aborted, failed or rejected
    and that ``meta.lake_files`` does not list. Each deletion is audited (``recover_delete``)
    before the file goes. Any other file under ``lake/`` is left where it is (``alphatwin
    verify`` reports it as unknown). Returns the number of files removed.
    """
    con.execute("BEGIN TRANSACTION")
    try:
        killed = con.execute("SELECT ingest_id, source, started FROM meta.ingest_runs WHERE status = 'running' "
                             "ORDER BY started").fetchall()
        if killed:
            con.execute(
                "UPDATE meta.ingest_runs SET status = 'aborted', finished = now(), "
                "error = coalesce(error, 'process ended before commit') WHERE status = 'running'"
            )
        for ingest_id, source, started in killed:
            audit.record(con, "ingest_aborted", object=ingest_id, rows_out=0, files=0, status="aborted",
                         detail={"source": source, "started": started, "reason": "process ended before commit"})
        con.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(Exception):  # a failed COMMIT has already rolled back
            con.execute("ROLLBACK")
        raise
    if paths.tmp.exists():
        for child in paths.tmp.iterdir():
            shutil.rmtree(child, ignore_errors=True)
    doomed = _uncommitted_files(con, paths)
    if not doomed:
        return 0
    con.execute("BEGIN TRANSACTION")
    try:
        for f, ingest_id, status in doomed:
            audit.record(con, "recover_delete", object=paths.relative(f), files=1, bytes=_size_of(f),
                         status="ok", detail={"ingest_id": ingest_id, "ingest_status": status,
                                              "reason": "published by an ingest that never committed"})
        con.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(Exception):  # a failed COMMIT has already rolled back
            con.execute("ROLLBACK")
        raise
    for f, _, _ in doomed:
        f.unlink(missing_ok=True)
    log.warning("recovered: removed %d uncommitted lake file(s) left by a killed or failed ingest", len(doomed))
    return len(doomed)


def _uncommitted_files(con: Any, paths: WarehousePaths) -> list[tuple[Path, str, str]]:
    """Lake files of ingests that never committed: (file, ingest id, its status)."""
    if not paths.bars.exists():
        return []
    known = {r[0] for r in con.execute("SELECT path FROM meta.lake_files").fetchall()}
    dead = {r[0]: r[1] for r in con.execute(
        "SELECT ingest_id, status FROM meta.ingest_runs WHERE status IN (SELECT unnest(?::VARCHAR[]))",
        [list(_DEAD)]).fetchall()}
    out = []
    for f in sorted(paths.bars.rglob("*.parquet")):
        match = _OWNED.match(f.name)
        if match is None or match.group(1) not in dead or paths.relative(f) in known:
            continue
        out.append((f, match.group(1), dead[match.group(1)]))
    return out


def _size_of(f: Path) -> int | None:
    try:
        return f.stat().st_size
    except OSError:
        return None


def _start_run(paths: WarehousePaths, run_id: str, source: Source, request: FetchRequest, command: str) -> None:
    with catalog.connect(paths, wait=COMMIT_WAIT) as con:
        recover(con, paths)
        con.execute(
            "INSERT INTO meta.ingest_runs (ingest_id, source, symbols, interval, requested_start, "
            "requested_end, status, started, \"user\", host, pid, command) "
            "VALUES (?, ?, ?, ?, ?, ?, 'running', now(), ?, ?, ?, ?)",
            [run_id, source.name, list(request.symbols), request.interval, request.start,
             request.end, audit.user(), socket.gethostname(), os.getpid(), command],
        )


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
            failed[exc.symbol] = redact(str(exc))  # no API key in the catalog or the summary
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


def _audit(con: Any, result: IngestResult, writer: LakeWriter | None, gate: BatchGate | None,
           error: str | None) -> None:
    """The run's ``meta.audit`` row (inside the commit transaction): with the gate's counts."""
    counts = getattr(gate, "counts", None)
    files = writer.files if writer is not None else []
    received = counts.received if counts is not None else result.rows
    detail: dict[str, Any] = {"source": result.source, "symbols": result.symbols}
    if counts is not None:
        detail.update(validation_id=getattr(gate, "validation_id", None), collapsed=counts.collapsed,
                      flagged=counts.flagged, restated=counts.restated)
    if result.failed:
        detail["failed"] = result.failed
    if error is not None:
        detail["error"] = error
    audit.record(
        con, "ingest" if error is None else "ingest_failed", object=result.ingest_id, rows_in=received,
        rows_out=(counts.accepted if counts is not None else result.rows) if error is None else 0,
        rows_quarantined=counts.quarantined if counts is not None else 0,
        files=len(files), bytes=sum(f.bytes for f in files), status=result.status, detail=detail,
    )


def _finish(paths: WarehousePaths, result: IngestResult, writer: LakeWriter | None, srun: StageRun,
            interval: str, error: str | None, gate: BatchGate | None = None,
            on_commit: Callable[[], None] | None = None) -> bool:
    """Commit the run (and its files, verdicts and audit row) in one transaction; True once COMMIT ran.

    ``on_commit`` is called right after COMMIT, before the connection closes: closing (DuckDB's
    checkpoint) can still fail, and the caller must then know the ingest is durable.
    """
    error = None if error is None else redact(error)  # no API key in meta.ingest_runs or meta.audit
    detail = {"failed": result.failed, "stale": {k: str(v) for k, v in result.stale.items()}}
    with catalog.connect(paths, wait=COMMIT_WAIT) as con:
        con.execute("BEGIN TRANSACTION")
        if writer is not None and writer.files:
            _commit(con, writer, result, interval)
            catalog.refresh_raw_view(con, paths)
        if gate is not None:
            gate.persist(con, result.ingest_id)
            faults.point("ingest:gate_persisted")
        con.execute(
            "UPDATE meta.ingest_runs SET status = ?, rows = ?, files = ?, error = ?, finished = now(), "
            "detail = ? WHERE ingest_id = ?",
            [result.status, result.rows, result.files, error, detail, result.ingest_id],
        )
        srun.record(con)
        _audit(con, result, writer if error is None else None, gate, error)
        if error is None:
            faults.point("ingest:before_commit")
        con.execute("COMMIT")
        if on_commit is not None:
            on_commit()
        if error is None:
            faults.point("ingest:after_commit")
        return True


def _disk_error(exc: BaseException, paths: WarehousePaths) -> AlphaTwinError | None:
    """``exc`` as a one-line storage error when the disk caused it (DuckDB's IO and transaction
    errors on a full disk, a file size limit, permissions, a read-only filesystem), or when a
    committed lake file is missing or unreadable (refreshing ``raw.bars`` reads every file)."""
    if isinstance(exc, AlphaTwinError) and not isinstance(exc, CatalogError):
        return None
    return storage_error(exc, paths.db) or lake_read_error(exc, paths)


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
    with write_lock(paths, timeout=lock_timeout), stage("ingest", command, ingest_id=ingest_id) as srun:
        check_free_space(paths, "an ingest")
        try:
            _start_run(paths, ingest_id, source, request, command)
        except Exception as exc:
            mapped = _disk_error(exc, paths)
            if mapped is None:
                raise
            raise mapped from None
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
            faults.point("ingest:staged")
            result.rows, result.files = writer.rows, len(writer.files)
            result.symbols = sorted({k[0] for k in writer.stats}) if not request.symbols else result.symbols
            result.status = "committed" if not result.failed else ("partial" if writer.rows else "fallback")
            counts = getattr(gate, "counts", None)  # rows in: received; rows out: accepted by the gate
            srun.rows_in = counts.received if counts is not None else writer.rows
            srun.rows_out = counts.accepted if counts is not None else writer.rows
            writer.publish()
            faults.point("ingest:published")
            _finish(paths, result, writer, srun, request.interval, None, gate, on_commit=mark_committed)
        except BaseException as exc:
            mapped = _disk_error(exc, paths) if isinstance(exc, Exception) else None
            if committed:  # e.g. the checkpoint on close failed: the ingest itself is durable
                log.error("ingest %s committed, then: %s", ingest_id, exc)
                if mapped is not None:
                    raise LakeError(f"ingest {ingest_id} is committed (the catalog's write-ahead log holds it), "
                                    f"but closing the catalog failed: {mapped}".replace("; nothing was changed", "")
                                    ) from None
                raise
            if writer is not None:
                writer.discard()
                writer.unpublish()
            result.status = "rejected" if isinstance(exc, BatchRejectedError) else "failed"
            srun.status, srun.error = "failed", str(mapped or exc)[:500]
            try:
                _finish(paths, result, None, srun, request.interval, str(mapped or exc)[:2000],
                        gate if isinstance(exc, BatchRejectedError) else None)
            except Exception as again:  # e.g. the disk is still full: the next writer marks the run aborted
                log.warning("ingest %s: could not record the failure: %s", ingest_id,
                            str(again).split("\n", 1)[0])
            if mapped is not None:
                raise mapped from None
            raise
    result.wall_s = srun.wall_s
    for symbol, last in result.stale.items():
        log.warning(
            "%s: no new data (%s); using data already in the lake up to %s (%d days stale)",
            symbol, result.failed.get(symbol, "source failed"), f"{last:%Y-%m-%d %H:%M}",
            (dt.datetime.now(dt.UTC) - last).days, extra={"symbol": symbol, "ingest_id": ingest_id},
        )
    return result
