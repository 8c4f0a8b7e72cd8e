"""A failure after the catalog's COMMIT (closing the connection, its checkpoint) keeps the ingest:
the files it committed stay published and readable, and the error still reaches the caller."""

from __future__ import annotations

import contextlib

import pytest

from alphatwin.lake import catalog, ingest as ingest_module
from alphatwin.lake.ingest import ingest
from alphatwin.sources.base import FetchRequest
from alphatwin.sources.frame import FrameSource
from tests.conftest import make_bars


def test_an_error_after_commit_does_not_unpublish(paths, monkeypatch):
    real = catalog.connect

    @contextlib.contextmanager
    def failing_close(p, **kwargs):
        with real(p, **kwargs) as con:
            yield con
            committed = con.execute("SELECT count(*) FROM meta.ingest_runs WHERE status = 'committed'").fetchall()
        if committed[0][0]:
            raise OSError("disk full while checkpointing on close")

    monkeypatch.setattr(ingest_module.catalog, "connect", failing_close)
    with pytest.raises(OSError, match="checkpointing"):
        ingest(FrameSource(make_bars(["AAA"], 5)), FetchRequest(), paths)
    monkeypatch.setattr(ingest_module.catalog, "connect", real)
    with catalog.connect(paths, read_only=True) as con:
        runs = con.execute("SELECT status, rows FROM meta.ingest_runs").fetchall()
        files = [r[0] for r in con.execute("SELECT path FROM meta.lake_files").fetchall()]
        rows = con.execute("SELECT count(*) FROM raw.bars").fetchall()[0][0]
    assert runs == [("committed", 5)] and rows == 5
    assert files and all((paths.root / f).exists() for f in files)
