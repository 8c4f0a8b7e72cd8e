"""Ingest: files land immutable, the catalog commits atomically, failures leave no trace."""

from __future__ import annotations

import datetime as dt
import os

import polars as pl
import pytest

from alphatwin.errors import EmptyDataError, InputError, SourceError, SymbolNotFoundError, WarehouseBusyError
from alphatwin.lake import catalog
from alphatwin.lake.ingest import ingest, recover
from alphatwin.lake.lock import write_lock
from alphatwin.sources.base import FetchRequest
from alphatwin.sources.frame import FrameSource
from tests.conftest import make_bars


def _q(paths, sql):
    with catalog.connect(paths, read_only=True) as con:
        return con.execute(sql).fetchall()


def test_ingest_writes_partitioned_zstd_parquet_and_commits(paths):
    bars = make_bars(["AAA", "BBB"], 30)  # spans 2019 and 2020
    result = ingest(FrameSource(bars), FetchRequest(), paths)
    assert result.status == "committed" and result.rows == 60 and result.files == 2
    files = sorted(paths.bars.rglob("*.parquet"))
    assert [f.parent.name for f in files] == ["year=2019", "year=2020"]
    assert all(f.parent.parent.name == "interval=1d" for f in files)
    meta = pl.read_parquet_schema(files[0])
    assert list(meta) == ["symbol", "interval", "ts", "open", "high", "low", "close", "volume",
                          "dividend", "split_ratio", "ingest_id", "source"]
    import pyarrow.parquet as pq
    assert pq.ParquetFile(files[0]).metadata.row_group(0).column(3).compression == "ZSTD"
    back = pl.read_parquet(files[0])
    assert back.sort("symbol", "ts").equals(back)  # sorted by symbol, ts within each file
    assert _q(paths, "SELECT count(*), count(DISTINCT symbol) FROM raw.bars") == [(60, 2)]
    assert _q(paths, "SELECT status, rows, files, source FROM meta.ingest_runs") == [("committed", 60, 2, "frame")]
    ds = _q(paths, "SELECT symbol, rows, files, ingests, first_ts::DATE, last_ts::DATE FROM meta.datasets ORDER BY 1")
    assert ds == [("AAA", 30, 2, 1, dt.date(2019, 12, 20), dt.date(2020, 1, 18)),
                  ("BBB", 30, 2, 1, dt.date(2019, 12, 20), dt.date(2020, 1, 18))]
    rel = [r[0] for r in _q(paths, "SELECT path FROM meta.lake_files ORDER BY 1")]
    assert rel == [paths.relative(f) for f in files]
    assert not any(paths.tmp.iterdir())


def test_values_round_trip_exactly(paths):
    bars = make_bars(["AAA"], 10)
    ingest(FrameSource(bars), FetchRequest(), paths)
    with catalog.connect(paths, read_only=True) as con:
        back = con.sql("SELECT symbol, ts, open, high, low, close, volume FROM raw.bars ORDER BY ts").pl()
    expected = bars.select("symbol", pl.col("ts").dt.replace_time_zone("UTC"), "open", "high", "low", "close", "volume")
    assert back.with_columns(pl.col("ts").dt.convert_time_zone("UTC")).equals(expected)


def test_reingest_adds_files_never_rewrites(paths):
    bars = make_bars(["AAA"], 5, start=dt.datetime(2021, 1, 4))
    ingest(FrameSource(bars), FetchRequest(), paths)
    first = {f: (f.stat().st_mtime_ns, f.read_bytes()) for f in paths.bars.rglob("*.parquet")}
    ingest(FrameSource(bars), FetchRequest(), paths)
    for f, (mtime, data) in first.items():
        assert f.stat().st_mtime_ns == mtime and f.read_bytes() == data
    assert len(list(paths.bars.rglob("*.parquet"))) == 2
    assert _q(paths, "SELECT count(*), count(DISTINCT ingest_id) FROM raw.bars") == [(10, 2)]
    assert _q(paths, "SELECT rows, files, ingests FROM meta.datasets") == [(10, 2, 2)]


def test_checksums_in_catalog_match_files(paths):
    import hashlib

    ingest(FrameSource(make_bars(["AAA", "BBB"], 40)), FetchRequest(), paths)
    for rel, sha, size in _q(paths, "SELECT path, sha256, bytes FROM meta.lake_files"):
        data = (paths.root / rel).read_bytes()
        assert hashlib.sha256(data).hexdigest() == sha and len(data) == size


def test_range_is_honoured(paths):
    bars = make_bars(["AAA"], 30)
    req = FetchRequest(start=dt.datetime(2020, 1, 1), end=dt.datetime(2020, 1, 11))
    assert ingest(FrameSource(bars), req, paths).rows == 10


class _Failing:
    """A source that delivers one batch and then breaks (a real failure mode of a network pull)."""

    name, network = "flaky", False

    def __init__(self, exc: Exception) -> None:
        self.exc = exc

    def fetch(self, request):
        yield make_bars(["AAA"], 20)
        raise self.exc


def test_failure_midway_leaves_lake_and_catalog_untouched(paths):
    ingest(FrameSource(make_bars(["OLD"], 5)), FetchRequest(), paths)
    before_files = sorted(paths.bars.rglob("*.parquet"))
    with pytest.raises(InputError, match="bad row"):
        ingest(_Failing(InputError("bad row")), FetchRequest(), paths)
    assert sorted(paths.bars.rglob("*.parquet")) == before_files
    assert _q(paths, "SELECT count(*) FROM raw.bars") == [(5,)]
    runs = _q(paths, "SELECT status, error FROM meta.ingest_runs ORDER BY started")
    assert runs[-1] == ("failed", "bad row")
    assert not any(paths.tmp.iterdir())


def test_empty_answer_is_a_failure_not_no_data(paths):
    with pytest.raises(EmptyDataError, match="no rows"):
        ingest(FrameSource([]), FetchRequest(), paths)
    assert _q(paths, "SELECT status FROM meta.ingest_runs") == [("failed",)]


class _PerSymbol:
    """Serves symbols it knows, raises SymbolNotFoundError for the others (like a provider)."""

    name, network = "prov", True

    def __init__(self, known: dict[str, pl.DataFrame]) -> None:
        self.known, self.calls = known, []

    def fetch(self, request):
        self.calls.append(request.symbols)
        for s in request.symbols:
            if s not in self.known:
                raise SymbolNotFoundError(f"{s} not found", source=self.name, symbol=s)
            yield self.known[s]


def test_one_failed_symbol_does_not_sink_the_batch(paths):
    src = _PerSymbol({"AAA": make_bars(["AAA"], 5), "CCC": make_bars(["CCC"], 5)})
    result = ingest(src, FetchRequest(("AAA", "BAD", "CCC")), paths)
    assert result.status == "partial" and result.rows == 10
    assert set(result.failed) == {"BAD"} and result.stale == {}
    assert src.calls == [("AAA", "BAD", "CCC"), ("CCC",)]


def test_fallback_to_lake_with_staleness(paths, caplog):
    held = make_bars(["AAA"], 5, start=dt.datetime(2020, 3, 2))
    ingest(FrameSource(held), FetchRequest(), paths)
    result = ingest(_PerSymbol({}), FetchRequest(("AAA",)), paths)
    assert result.status == "fallback" and result.rows == 0
    assert result.stale["AAA"].date() == dt.date(2020, 3, 6)
    assert _q(paths, "SELECT status FROM meta.ingest_runs ORDER BY started") == [("committed",), ("fallback",)]
    with pytest.raises(SourceError, match="ZZZ not found"):
        ingest(_PerSymbol({}), FetchRequest(("ZZZ",)), paths)
    with pytest.raises(SourceError):
        ingest(_PerSymbol({}), FetchRequest(("AAA",)), paths, fallback_to_lake=False)


def test_wrong_interval_from_source_is_rejected(paths):
    with pytest.raises(InputError, match="interval '1h' bars for a '1d' request"):
        ingest(FrameSource(make_bars(["AAA"], 3, interval="1h")), FetchRequest(interval="1d"), paths)


def test_second_writer_gets_busy_error(paths):
    with write_lock(paths):
        with pytest.raises(WarehouseBusyError, match="warehouse busy"):
            ingest(FrameSource(make_bars(["AAA"], 3)), FetchRequest(), paths)


def test_recover_removes_uncommitted_files_and_aborts_running(paths):
    ingest(FrameSource(make_bars(["AAA"], 3, start=dt.datetime(2021, 1, 4))), FetchRequest(), paths)
    orphan = paths.bars / "interval=1d" / "year=2021" / "ing-dead-00000.parquet"
    orphan.write_bytes(b"PAR1 partial")
    (paths.tmp / "ing-dead").mkdir(parents=True)
    with catalog.connect(paths) as con:
        con.execute("INSERT INTO meta.ingest_runs (ingest_id, source, status, started) VALUES ('ing-dead', 'x', 'running', now())")
        assert recover(con, paths) == 1
        assert con.execute("SELECT status FROM meta.ingest_runs WHERE ingest_id = 'ing-dead'").fetchall() == [("aborted",)]
    assert not orphan.exists() and not any(paths.tmp.iterdir())
    assert _q(paths, "SELECT count(*) FROM raw.bars") == [(3,)]


def test_stage_runs_are_recorded(paths):
    ingest(FrameSource(make_bars(["AAA"], 3)), FetchRequest(), paths, command="test")
    (stage, status, rows_out, wall, rss), = _q(paths, "SELECT stage, status, rows_out, wall_s, peak_rss_mb FROM meta.stage_runs")
    assert (stage, status, rows_out) == ("ingest", "ok", 3) and wall > 0 and rss > 10


def test_plain_duckdb_cli_reads_the_warehouse(paths):
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    cli = shutil.which("duckdb") or str(Path(sys.executable).parent / "duckdb")
    assert os.path.exists(cli), "duckdb-cli (dev dependency) must be installed"
    ingest(FrameSource(make_bars(["AAA", "BBB"], 7)), FetchRequest(), paths)
    out = subprocess.run([cli, "-csv", "-noheader", str(paths.db), "-c",
                          "SELECT symbol, count(*) FROM raw.bars GROUP BY 1 ORDER BY 1; SELECT version();"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.split()
    assert lines[:2] == ["AAA,7", "BBB,7"] and lines[2].startswith("v1.5")


def test_catalog_survives_a_moved_warehouse(paths, tmp_path):
    ingest(FrameSource(make_bars(["AAA"], 4)), FetchRequest(), paths)
    moved = tmp_path / "moved"
    os.rename(paths.root, moved)
    from alphatwin.paths import WarehousePaths

    new = WarehousePaths(moved)
    with catalog.connect(new):  # a write open re-points raw.bars at the new location
        pass
    assert _q(new, "SELECT count(*) FROM raw.bars") == [(4,)]
