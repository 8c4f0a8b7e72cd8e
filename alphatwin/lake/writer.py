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
import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from alphatwin.errors import LakeError
from alphatwin.paths import WarehousePaths

__all__ = ["LakeFile", "LakeWriter", "DatasetStats"]

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


def _encode(part: pl.DataFrame) -> memoryview:
    buf = io.BytesIO()
    part.write_parquet(
        buf, compression=COMPRESSION, compression_level=COMPRESSION_LEVEL,
        statistics=True, row_group_size=ROW_GROUP_SIZE,
    )
    return buf.getbuffer()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _os_error(action: str, path: Path, exc: OSError) -> LakeError:
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
        self.ingest_id = ingest_id
        self.stage_dir = paths.tmp / ingest_id
        self.files: list[LakeFile] = []
        self.stats: dict[tuple[str, str], DatasetStats] = {}  # (symbol, source) -> stats
        self._staged: list[tuple[Path, Path]] = []
        try:
            self.stage_dir.mkdir(parents=True, exist_ok=False)
        except OSError as exc:
            raise _os_error("create staging folder", self.stage_dir, exc) from None

    @property
    def rows(self) -> int:
        """Rows accepted so far (staged or buffered)."""
        return sum(f.rows for f in self.files) + self._buffered

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
        """Stage whatever is buffered: one file per year, rows sorted by ``symbol, ts``."""
        if not self._buffer:
            return
        ordered = _ordered_boundaries(self._buffer)
        bars = pl.concat(self._buffer, rechunk=False) if len(self._buffer) > 1 else self._buffer[0]
        self._buffer, self._buffered = [], 0
        if not ordered:
            bars = bars.sort("symbol", "ts", maintain_order=True)
        interval = bars["interval"][0]
        if bars["interval"].n_unique() != 1:
            raise LakeError("one ingest writes one interval; got several in a batch")
        bars = bars.with_columns(pl.col("ts").dt.year().alias("_year"))
        per_symbol = bars.group_by("symbol", "source").agg(
            pl.col("ts").min().alias("lo"), pl.col("ts").max().alias("hi"), pl.len().alias("n"),
            pl.col("_year").unique().alias("years"),
        )
        years = bars.partition_by("_year", maintain_order=True, include_key=False, as_dict=True)
        parts = [(int(year), part) for (year,), part in years.items()]
        with ThreadPoolExecutor(max_workers=ENCODE_THREADS) as pool:  # Polars encodes without the GIL
            encoded = list(pool.map(_encode, (part for _, part in parts)))
        by_year = {year: self._stage(str(interval), year, part, data)
                   for (year, part), data in zip(parts, encoded, strict=True)}
        for symbol, source, lo, hi, n, yrs in per_symbol.iter_rows():
            st = self.stats.get((symbol, source))
            if st is None:
                st = self.stats[(symbol, source)] = DatasetStats(lo, hi)
            st.first_ts, st.last_ts = min(st.first_ts, lo), max(st.last_ts, hi)
            st.rows += n
            st.files.update(by_year[y] for y in yrs)

    def _stage(self, interval: str, year: int, part: pl.DataFrame, data: memoryview) -> str:
        """Write one encoded file to the staging folder (fsynced); return its lake path."""
        name = f"{self.ingest_id}-{len(self._staged):05d}.parquet"
        final = self.paths.bars / f"interval={interval}" / f"year={year}" / name
        staged = self.stage_dir / name
        try:
            with staged.open("wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
        except OSError as exc:
            raise _os_error("write", staged, exc) from None
        rel = self.paths.relative(final)
        ts = part.get_column("ts")
        self.files.append(
            LakeFile(rel, interval, year, part.height, len(data), hashlib.sha256(data).hexdigest(),
                     ts.min(), ts.max())  # type: ignore[arg-type]
        )
        self._staged.append((staged, final))
        return rel

    def publish(self) -> list[LakeFile]:
        """Move every staged file into its lake partition (atomic renames, then fsync)."""
        self.flush()
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
        shutil.rmtree(self.stage_dir, ignore_errors=True)

    def unpublish(self) -> None:
        """Remove files this writer published (only when the catalog commit failed)."""
        for _, final in self._staged:
            final.unlink(missing_ok=True)
