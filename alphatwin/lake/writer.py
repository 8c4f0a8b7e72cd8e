"""Writing new, immutable Parquet files into the raw lake.

Files are staged under ``tmp/<ingest_id>/`` and only moved into
``lake/bars/interval=<i>/year=<yyyy>/`` by :meth:`LakeWriter.publish`, each with an atomic
``rename`` after ``fsync``. A published file still becomes visible only when the catalog commits
it (see :mod:`alphatwin.lake.catalog`); a killed ingest leaves at most uncommitted files that the
next writer removes (:func:`alphatwin.lake.ingest.recover`). An existing file is never rewritten.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import os
import re
import shutil
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from alphatwin.errors import LakeError
from alphatwin.paths import WarehousePaths

__all__ = ["LakeFile", "LakeWriter", "DatasetStats", "MIN_FREE_BYTES", "check_free_space", "storage_error"]

COMPRESSION = "zstd"
COMPRESSION_LEVEL = 1
ROW_GROUP_SIZE = 256_000
#: Batches are buffered until this many rows, so per-symbol batches still make few, large files.
FLUSH_ROWS = 1_000_000
ENCODE_THREADS = 2


@dataclass(frozen=True)
class LakeFile:
    """One Parquet file of the lake, as recorded in ``meta.lake_files``."""

    path: str  # relative to the warehouse root
    interval: str
    year: int
    rows: int
    bytes: int
    sha256: str
    min_ts: dt.datetime
    max_ts: dt.datetime


@dataclass
class DatasetStats:
    """Running per-symbol statistics of one ingest (for ``meta.datasets``)."""

    first_ts: dt.datetime
    last_ts: dt.datetime
    rows: int = 0
    files: set[str] = field(default_factory=set)


def _ordered_boundaries(batches: list[pl.DataFrame]) -> bool:
    """Whether concatenating ``batches`` (each sorted by ``symbol, ts``, as
    :func:`~alphatwin.sources.base.conform` guarantees) keeps the order: only the seams are checked."""
    for prev, nxt in zip(batches, batches[1:]):
        last = (prev["symbol"][-1], prev["ts"][-1])
        first = (nxt["symbol"][0], nxt["ts"][0])
        if not last < first:
            return False
    return True


def _stage_file(part: pl.DataFrame, staged: Path, rel: str, interval: str, year: int) -> LakeFile:
    """Encode ``part`` (zstd Parquet), write it to ``staged`` with fsync, and describe it.

    Runs in an encoder thread: Polars encodes and the OS writes without the GIL."""
    buf = io.BytesIO()
    part.write_parquet(
        buf, compression=COMPRESSION, compression_level=COMPRESSION_LEVEL,
        statistics=True, row_group_size=ROW_GROUP_SIZE,
    )
    data = buf.getbuffer()
    try:
        with staged.open("wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
    except OSError as exc:
        raise _os_error("write", staged, exc) from None
    ts = part.get_column("ts")
    return LakeFile(rel, interval, year, part.height, len(data), hashlib.sha256(data).hexdigest(),
                    ts.min(), ts.max())  # type: ignore[arg-type]


#: A writer (ingest, build) refuses to start with less free space than this on the warehouse's
#: filesystem; ``$ALPHATWIN_MIN_FREE_BYTES`` overrides it (0 turns the check off).
MIN_FREE_BYTES = 64 * 1024 * 1024

# What the OS says when the disk, not the data, is the problem -> (what to tell, what to do).
_STORAGE_REASONS = (
    ("No space left on device", "disk full", "free space and retry"),
    ("Disk quota exceeded", "disk quota exceeded", "free space and retry"),
    ("File too large", "file too large (the file size limit was reached)", "raise the limit or free space and retry"),
    ("Permission denied", "permission denied", "fix the permissions and retry"),
    ("Operation not permitted", "permission denied", "fix the permissions and retry"),
    ("Read-only file system", "read-only file system", "remount it read-write and retry"),
)
_PATH_IN_MESSAGE = re.compile(r'"(/[^"]+)"|\'(/[^\']+)\'|(/[^\s:"\']+)')


def min_free_bytes() -> int:
    """The free-space threshold: ``$ALPHATWIN_MIN_FREE_BYTES`` or :data:`MIN_FREE_BYTES`."""
    value = os.environ.get("ALPHATWIN_MIN_FREE_BYTES")
    if value is None or not value.strip():
        return MIN_FREE_BYTES
    try:
        return max(0, int(value))
    except ValueError:
        raise LakeError(f"$ALPHATWIN_MIN_FREE_BYTES must be a number of bytes, got {value!r}") from None


def check_free_space(paths: WarehousePaths, what: str) -> None:
    """Refuse to start ``what`` (an ingest, a build) when the warehouse's filesystem has less than
    :func:`min_free_bytes` free: a writer that runs out midway wastes its work."""
    need = min_free_bytes()
    if need <= 0:
        return
    probe = paths.root if paths.root.exists() else paths.root.parent
    try:
        free = shutil.disk_usage(probe).free
    except OSError:
        return  # cannot tell; the write itself will say
    if free < need:
        raise LakeError(
            f"disk full: only {_size(free)} free on {probe} ({what} needs at least {_size(need)}); "
            "free space and retry; nothing was changed"
        )


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return f"{n} B"


def storage_error(exc: BaseException, default: Path, *, action: str = "write", exact: bool = False) -> LakeError | None:
    """The one-line :class:`LakeError` for a write that failed because of the disk (full, file
    size limit, permissions, read-only), or None when ``exc`` is something else.

    DuckDB reports these as IO or transaction errors whose text carries the OS message and
    often the file; ``default`` names the file when it does not (always, when ``exact``)."""
    text = str(exc)
    if isinstance(exc, OSError) and exc.strerror:
        text = f"{exc.strerror} {exc.filename or ''} {text}"
    for needle, reason, advice in _STORAGE_REASONS:
        if needle in text:
            path = str(default) if exact else _path_in(text, needle) or str(default)
            return LakeError(f"{reason}: cannot {action} {path}; {advice}; nothing was changed")
    return None


def _path_in(text: str, needle: str) -> str | None:
    for match in _PATH_IN_MESSAGE.finditer(text):
        path = next(g for g in match.groups() if g)
        if needle not in path and len(path) > 1:
            return path.rstrip(".,;")
    return None


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _os_error(action: str, path: Path, exc: OSError) -> LakeError:
    known = storage_error(exc, path, action=action, exact=True)
    if known is not None:
        return known
    reason = exc.strerror or str(exc)
    return LakeError(f"cannot {action} {path}: {reason}")


class LakeWriter:
    """Stage and publish the files of one ingest.

    Parameters
    ----------
    paths
        The warehouse layout.
    ingest_id
        Names the staged files (``<ingest_id>-<n>.parquet``) and the staging folder.
    """

    def __init__(self, paths: WarehousePaths, ingest_id: str, *, flush_rows: int = FLUSH_ROWS) -> None:
        self.paths = paths
        self.flush_rows = flush_rows
        self._buffer: list[pl.DataFrame] = []
        self._buffered = 0
        self._staged_rows = 0
        self.ingest_id = ingest_id
        self.stage_dir = paths.tmp / ingest_id
        self.files: list[LakeFile] = []
        self.stats: dict[tuple[str, str], DatasetStats] = {}  # (symbol, source) -> stats
        self._staged: list[tuple[Path, Path]] = []
        self._pool = ThreadPoolExecutor(max_workers=ENCODE_THREADS, thread_name_prefix="alphatwin-encode")
        self._pending: list[Future[LakeFile]] = []
        try:
            self.stage_dir.mkdir(parents=True, exist_ok=False)
        except OSError as exc:
            self._pool.shutdown()
            raise _os_error("create staging folder", self.stage_dir, exc) from None

    @property
    def rows(self) -> int:
        """Rows accepted so far (staged, being staged, or buffered)."""
        return self._staged_rows + self._buffered

    def write(self, bars: pl.DataFrame) -> int:
        """Accept ``bars`` (in the lake's columns, sorted by ``symbol, ts`` as
        :func:`~alphatwin.sources.base.conform` leaves them); stage a file per (interval, year)
        once ``flush_rows`` rows are buffered."""
        if bars.is_empty():
            return 0
        self._buffer.append(bars)
        self._buffered += bars.height
        if self._buffered >= self.flush_rows:
            self.flush()
        return bars.height

    def flush(self) -> None:
        """Hand what is buffered to the encoder threads: one file per year, rows sorted by
        ``symbol, ts``. At most one flush is in flight (memory stays bounded): this waits for
        the previous one while the caller has already prepared the next."""
        if not self._buffer:
            return
        ordered = _ordered_boundaries(self._buffer)
        bars = pl.concat(self._buffer, rechunk=False) if len(self._buffer) > 1 else self._buffer[0]
        self._buffer, self._buffered = [], 0
        if not ordered:
            bars = bars.sort("symbol", "ts", maintain_order=True)
        interval = str(bars["interval"][0])
        if bars["interval"].n_unique() != 1:
            raise LakeError("one ingest writes one interval; got several in a batch")
        self._collect()
        years = bars.with_columns(pl.col("ts").dt.year().alias("_year")).partition_by(
            "_year", maintain_order=True, include_key=False, as_dict=True)
        for (year,), part in years.items():
            name = f"{self.ingest_id}-{len(self._staged):05d}.parquet"
            final = self.paths.bars / f"interval={interval}" / f"year={year}" / name
            staged = self.stage_dir / name
            self._staged.append((staged, final))
            self._pending.append(self._pool.submit(_stage_file, part, staged, self.paths.relative(final),
                                                   interval, int(year)))
            self._count(part, self.paths.relative(final))
        self._staged_rows += bars.height

    def _count(self, part: pl.DataFrame, rel: str) -> None:
        """Per-symbol statistics of one (sorted) part: first/last ts, rows, and its file."""
        per_symbol = part.group_by("symbol", "source", maintain_order=True).agg(
            pl.col("ts").first().alias("lo"), pl.col("ts").last().alias("hi"), pl.len().alias("n"))
        for symbol, source, lo, hi, n in per_symbol.iter_rows():
            st = self.stats.get((symbol, source))
            if st is None:
                st = self.stats[(symbol, source)] = DatasetStats(lo, hi)
            st.first_ts, st.last_ts = min(st.first_ts, lo), max(st.last_ts, hi)
            st.rows += n
            st.files.add(rel)

    def sync(self) -> None:
        """Flush and wait until every file is staged (``files`` is then complete)."""
        self.flush()
        self._collect()

    def _collect(self) -> None:
        """Wait for the files in flight; keep their records in staging order."""
        pending, self._pending = self._pending, []
        self.files.extend(f.result() for f in pending)

    def publish(self) -> list[LakeFile]:
        """Move every staged file into its lake partition (atomic renames, then fsync)."""
        self.sync()
        self._pool.shutdown()
        dirs: set[Path] = set()
        for staged, final in self._staged:
            try:
                final.parent.mkdir(parents=True, exist_ok=True)
                if final.exists():
                    raise LakeError(f"refusing to overwrite existing lake file {final}")
                os.replace(staged, final)
            except OSError as exc:
                raise _os_error("publish", final, exc) from None
            dirs.add(final.parent)
        for d in dirs:
            _fsync_dir(d)
        self.discard()
        return self.files

    def discard(self) -> None:
        """Remove the staging folder and whatever is still staged in it."""
        self._pool.shutdown(wait=True, cancel_futures=True)
        shutil.rmtree(self.stage_dir, ignore_errors=True)

    def unpublish(self) -> None:
        """Remove files this writer published (only when the catalog commit failed)."""
        for _, final in self._staged:
            final.unlink(missing_ok=True)
