"""`alphatwin verify` on real lake files, and the build's refusal to read a damaged lake.

Each case damages a real committed Parquet file (flip a byte, truncate, delete) or drops a stray
file into lake/, then runs the real CLI in a subprocess: verify names the file (exit 1), and a
build refuses with one line naming the file while clean.bars and features.bars stay unchanged.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import pytest

from alphatwin.lake import catalog
from alphatwin.paths import WarehousePaths
from tests.lake.test_faults import cli, copy, one_line_error, snapshot, write_csvs


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("verify")
    a = write_csvs(base / "a", ["AAA", "BBB"], 300, dt.date(2015, 1, 1), 3)
    b = write_csvs(base / "b", ["EEE"], 50, dt.date(2017, 1, 2), 4)
    root = base / "wh"
    assert cli(root, "ingest", "csv", str(a)).returncode == 0
    assert cli(root, "build").returncode == 0
    return {"root": root, "b": b}


def _first_file(root: Path) -> tuple[str, str]:
    with catalog.connect(WarehousePaths(root), read_only=True) as con:
        return con.execute("SELECT path, ingest_id FROM meta.lake_files ORDER BY path LIMIT 1").fetchall()[0]


def _audit_verify(root: Path) -> tuple[str, dict]:
    with catalog.connect(WarehousePaths(root), read_only=True) as con:
        status, detail = con.execute("SELECT status, detail FROM meta.audit WHERE action = 'verify' "
                                     "ORDER BY seq DESC LIMIT 1").fetchall()[0]
    return status, json.loads(detail)


def test_a_clean_lake_verifies(built, tmp_path):
    root = copy(built["root"], tmp_path / "wh")
    for args in ([], ["--quick"]):
        proc = cli(root, "verify", *args)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert proc.stdout.strip().endswith(": clean") and len(proc.stdout.strip().splitlines()) == 1
    proc = cli(root, "verify", "--format", "json")
    doc = json.loads(proc.stdout)
    assert proc.returncode == 0 and doc["ok"] and doc["files"] == 2 and doc["findings"] == []
    status, detail = _audit_verify(root)
    assert status == "ok" and detail["missing"] == detail["corrupt"] == detail["unknown"] == 0


def _flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def _truncate(path: Path) -> None:
    with path.open("r+b") as fh:
        fh.truncate(path.stat().st_size - 100)


DAMAGE = {
    "flipped": (_flip, "corrupt", "sha256"),
    "truncated": (_truncate, "corrupt", "size"),
    "deleted": (lambda p: p.unlink(), "missing", "not on disk"),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_damage_is_found_and_the_build_refuses(built, tmp_path, damage):
    root = copy(built["root"], tmp_path / "wh")
    assert cli(root, "verify").returncode == 0  # a first writer re-points raw.bars at the copy
    rel, ingest_id = _first_file(root)
    before = snapshot(root) if damage != "deleted" else None
    harm, kind, why = DAMAGE[damage]
    harm(root / rel)
    proc = cli(root, "verify")
    lines = proc.stdout.strip().splitlines()
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert lines[0].startswith(f"{kind}: {rel} (ingest {ingest_id})") and why in lines[0], lines
    assert len(lines) == 2 and f"1 {kind}" in lines[-1], lines  # one line per finding + the summary
    status, detail = _audit_verify(root)
    assert status == "failed" and detail[kind] == 1 and detail[f"{kind}_files"] == [rel]
    if damage != "deleted":
        assert cli(root, "verify", "--quick").returncode == (0 if damage == "flipped" else 1)
    with catalog.connect(WarehousePaths(root), read_only=True) as con:
        tables = {m: con.execute(f"SELECT count(*), sum(hash(COLUMNS(*))) FROM {m}").fetchall()
                  for m in ("clean.bars", "features.bars")}
    for args in ([], ["--full-refresh"]):
        proc = cli(root, "build", *args)
        line = one_line_error(proc, rel, ingest_id, "alphatwin verify", where=f"{damage}: build {args}")
        assert "refuses" in line
    with catalog.connect(WarehousePaths(root), read_only=True) as con:
        assert tables == {m: con.execute(f"SELECT count(*), sum(hash(COLUMNS(*))) FROM {m}").fetchall()
                          for m in ("clean.bars", "features.bars")}
        failed = con.execute("SELECT model, error FROM meta.model_runs WHERE status = 'failed'").fetchall()
        audited = con.execute("SELECT count(*) FROM meta.audit WHERE action = 'build_failed'").fetchall()[0][0]
    assert len(failed) == 2 and all(rel in e for _, e in failed) and audited == 2
    if before is not None:  # the damage itself aside, nothing was touched: restore it and all is as before
        shutil.copy2(built["root"] / rel, root / rel)
        assert cli(root, "verify").returncode == 0
        assert snapshot(root)["files"] == before["files"]
        assert cli(root, "build").returncode == 0


def test_a_stray_file_is_unknown_and_survives_the_next_ingest(built, tmp_path):
    root = copy(built["root"], tmp_path / "wh")
    rel, _ = _first_file(root)
    strays = [root / "lake" / "bars" / "stray.parquet", root / "lake" / "bars" / "interval=1d" / "notes.txt",
              (root / rel).with_name("ing-20200101T000000Z-abcdef-00000.parquet")]  # named like ours, no such ingest
    for stray in strays:
        shutil.copy2(root / rel, stray)
    proc = cli(root, "verify")
    assert proc.returncode == 1
    unknown = sorted(line.split(": ", 2)[1].split(" ")[0] for line in proc.stdout.splitlines()
                     if line.startswith("unknown: "))
    assert unknown == sorted(s.relative_to(root).as_posix() for s in strays)
    assert cli(root, "ingest", "csv", str(built["b"])).returncode == 0  # recovery runs first: leaves them
    assert all(s.exists() for s in strays)
    assert cli(root, "build").returncode == 0  # files nobody catalogued are never read
    assert cli(root, "verify").returncode == 1


def test_verify_needs_a_warehouse_and_a_known_format(tmp_path):
    proc = cli(tmp_path / "none", "verify")
    one_line_error(proc, "no warehouse")
    proc = cli(tmp_path / "none", "verify", "--format", "xml")
    one_line_error(proc, "`--format` must be table or json")
