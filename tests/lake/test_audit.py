"""meta.audit: every data change appends one row, in the transaction of the change, with who,
when, what and counts; nothing ever updates or deletes it."""

from __future__ import annotations

import json
import os
import re
import socket
from pathlib import Path

import duckdb
import polars as pl
import pytest

from alphatwin.errors import SourceError
from alphatwin.lake import catalog
from alphatwin.lake.ingest import ingest
from alphatwin.models.build import build
from alphatwin.paths import WarehousePaths
from alphatwin.quality.gate import QualityGate
from alphatwin.quality.revalidate import revalidate
from alphatwin.sources.base import FetchRequest
from alphatwin.sources.frame import FrameSource
from tests.conftest import make_bars
from tests.lake.test_faults import cli

COLUMNS = 'seq, action, object, rows_in, rows_out, rows_quarantined, files, bytes, status, "user", host, pid, detail'


def _audit(paths: WarehousePaths) -> list[dict]:
    with catalog.connect(paths, read_only=True) as con:
        rows = con.sql(f"SELECT {COLUMNS} FROM meta.audit ORDER BY seq").pl().to_dicts()
    for r in rows:
        r["detail"] = json.loads(r["detail"])
    return rows


def _bars_with_two_broken() -> pl.DataFrame:
    bars = make_bars(["AAA", "BBB"], 30)
    return bars.with_columns(
        pl.when((pl.col("symbol") == "BBB") & (pl.int_range(pl.len()) % 30).is_in([3, 4]))
        .then(pl.col("low") * 0.5).otherwise(pl.col("high")).alias("high"))


def test_ingest_validate_and_build_are_audited_with_counts(paths):
    bars = _bars_with_two_broken()
    gate = QualityGate(paths, FetchRequest())
    done = ingest(FrameSource(bars), FetchRequest(), paths, gate=gate, command="ingest frame")
    rows = _audit(paths)
    assert [r["action"] for r in rows] == ["ingest"]
    row = rows[0]
    with catalog.connect(paths, read_only=True) as con:
        files, size = con.execute("SELECT count(*), sum(bytes) FROM meta.lake_files").fetchall()[0]
    assert (row["object"], row["status"], row["rows_in"], row["rows_out"], row["rows_quarantined"]) == \
        (done.ingest_id, "committed", 60, 58, 2)
    assert (row["files"], row["bytes"]) == (files, size) and files >= 1
    assert row["detail"]["validation_id"] == gate.validation_id and row["detail"]["source"] == "frame"
    assert (row["host"], row["pid"]) == (socket.gethostname(), os.getpid()) and row["user"]

    revalidate(paths)
    build(paths, command="build")
    rows = _audit(paths)
    assert [r["action"] for r in rows] == ["ingest", "quarantine", "build", "build", "build", "build"]
    q = rows[1]
    assert (q["object"], q["rows_in"], q["rows_out"], q["rows_quarantined"], q["status"]) == \
        (done.ingest_id, 60, 58, 2, "ok")
    built = {r["object"]: r for r in rows[2:]}
    assert set(built) == {"clean.latest_bars", "clean.bars", "features.bars", "signals.golden_cross"}
    with catalog.connect(paths, read_only=True) as con:
        clean_rows = con.execute("SELECT count(*) FROM clean.bars").fetchall()[0][0]
    assert built["clean.bars"]["rows_out"] == clean_rows and built["clean.bars"]["detail"]["mode"] == "full"
    assert built["clean.bars"]["detail"]["table_rows"] == clean_rows
    assert [r["seq"] for r in rows] == sorted({r["seq"] for r in rows})  # strictly increasing


def test_a_failed_ingest_is_audited_and_leaves_no_ingest_row(paths):
    class Broken:
        name, network = "broken", False

        def fetch(self, request):
            raise SourceError("upstream said no", source="broken")
            yield  # pragma: no cover

    with pytest.raises(SourceError):
        ingest(Broken(), FetchRequest(), paths)
    rows = _audit(paths)
    assert [(r["action"], r["status"], r["rows_out"], r["files"]) for r in rows] == [("ingest_failed", "failed", 0, 0)]
    assert "upstream said no" in rows[0]["detail"]["error"]


def test_a_failed_commit_leaves_no_ingest_row(paths, monkeypatch):
    """The commit transaction fails after the audit row was written: the row goes with it."""
    from alphatwin.lake import faults

    def fail_before_commit(name: str) -> None:
        if name == "ingest:before_commit":
            raise duckdb.TransactionException("TransactionContext Error: Failed to commit: simulated")

    monkeypatch.setattr(faults, "point", fail_before_commit)
    with pytest.raises(duckdb.Error):
        ingest(FrameSource(make_bars(["AAA"], 5)), FetchRequest(), paths)
    monkeypatch.undo()
    rows = _audit(paths)
    assert [r["action"] for r in rows] == ["ingest_failed"]
    with catalog.connect(paths, read_only=True) as con:
        assert con.execute("SELECT count(*) FROM meta.lake_files").fetchall() == [(0,)]
    assert not list(paths.bars.rglob("*.parquet"))


def test_a_failed_build_is_audited(paths, tmp_path):
    ingest(FrameSource(make_bars(["AAA"], 5)), FetchRequest(), paths)
    sql = tmp_path / "sql" / "clean"
    sql.mkdir(parents=True)
    (sql / "oops.sql").write_text("-- one row per nothing\nSELECT 1 / 0 AS x FROM raw.bars WHERE error('boom')\n")
    with pytest.raises(Exception, match="boom"):
        build(paths, sql_root=tmp_path / "sql", python=[])
    rows = _audit(paths)
    assert [(r["action"], r["object"], r["status"]) for r in rows][-1] == ("build_failed", "clean.oops", "failed")
    assert "boom" in rows[-1]["detail"]["error"]


def test_killed_ingest_and_build_are_audited_by_the_next_writer(tmp_path):
    import datetime as dt

    from tests.lake.test_faults import write_csvs

    root = tmp_path / "wh"
    a = write_csvs(tmp_path / "a", ["AAA", "BBB"], 120, dt.date(2015, 1, 1), 5)
    proc = cli(root, "ingest", "csv", str(a), env={"ALPHATWIN_FAULT": "ingest:published"})
    assert proc.returncode == -9
    published = sorted(p.relative_to(root).as_posix() for p in (root / "lake").rglob("*.parquet"))
    assert published
    assert cli(root, "ingest", "csv", str(a)).returncode == 0  # recovers first
    proc = cli(root, "build", env={"ALPHATWIN_FAULT": "build:before_commit"})
    assert proc.returncode == -9
    assert cli(root, "build").returncode == 0
    rows = _audit(WarehousePaths(root))
    actions = [r["action"] for r in rows]
    assert actions[:len(published) + 2] == ["ingest_aborted", *["recover_delete"] * len(published), "ingest"]
    assert sorted(r["object"] for r in rows if r["action"] == "recover_delete") == published
    assert all(r["files"] == 1 and r["bytes"] > 0 for r in rows if r["action"] == "recover_delete")
    aborted = [r for r in rows if r["action"] == "build_aborted"]
    assert [r["object"] for r in aborted] == ["clean.latest_bars"] and aborted[0]["status"] == "aborted"
    assert actions.index("build_aborted") < actions.index("build")
    assert all(r["user"] and r["host"] and r["pid"] for r in rows)
    assert len({r["pid"] for r in rows}) == 2  # the two processes that completed (killed ones wrote nothing)
    assert [r["seq"] for r in rows] == sorted({r["seq"] for r in rows})
    with catalog.connect(WarehousePaths(root), read_only=True) as con:
        statuses = con.execute("SELECT status, count(*) FROM meta.model_runs GROUP BY 1 ORDER BY 1").fetchall()
    assert dict(statuses)["aborted"] == 1 and "running" not in dict(statuses)


def test_nothing_updates_or_deletes_the_audit_trail():
    """Append-only: no statement in alphatwin/ updates, deletes, truncates, drops or alters meta.audit."""
    pattern = re.compile(r"(UPDATE|DELETE\s+FROM|TRUNCATE|DROP\s+TABLE|ALTER\s+TABLE|INSERT\s+OR\s+REPLACE\s+INTO)"
                         r"\s+(IF\s+EXISTS\s+)?(\w+\.)?(meta\.)?audit\b", re.IGNORECASE)
    src = Path(__file__).resolve().parents[2] / "alphatwin"
    offenders = [f"{p}: {m.group(0)}" for p in src.rglob("*.py") for m in pattern.finditer(p.read_text())]
    assert offenders == []
    inserts = [p.name for p in src.rglob("*.py") if "INSERT INTO meta.audit" in p.read_text()]
    assert inserts == ["audit.py"]  # one writer: alphatwin.lake.audit.record
