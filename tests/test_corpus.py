"""The bad-input corpus (issue 8): every case of ``tests/corpus/cases.toml`` through the real CLI.

Each case is ingested with ``alphatwin ingest csv`` (in-process, ``CliRunner``) into one
module-scoped warehouse (real DuckDB, real Parquet lake, real Great Expectations suite), under
its own symbol. An error must be one ``Error:`` line on stderr naming the problem, never a
traceback (also with ``-vv``), and leave the warehouse as it was; a bad row must land in
``quality.quarantine`` (or a bad line in ``quality.rejected_lines``) with its reason; and the
number of accepted rows must equal the number of valid rows in the input (no valid row lost).
Large and oversized inputs are generated in tmp at test time.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import random
import tomllib
from pathlib import Path
from typing import Any

import duckdb
import pytest
from typer.testing import CliRunner

from alphatwin.cli.main import app

CORPUS = Path(__file__).parent / "corpus"
CASES: list[dict[str, Any]] = tomllib.loads((CORPUS / "cases.toml").read_text(encoding="utf-8"))["case"]
ISSUE_LIST = (  # the issue's list, each covered by at least one case id containing the key
    "ragged", "quote", "latin1", "utf16", "empty_file", "missing_columns", "extra_column", "nan", "inf",
    "zero", "negative_price", "high_below_low", "duplicate", "out_of_order", "offsets", "future",
    "absurd_volume", "non_numeric", "large_one_bad_line", "symbol_sql", "symbol_path_traversal", "oversized",
)
HEADER = "Date,Open,High,Low,Close,Volume\n"
runner = CliRunner()


# --------------------------------------------------------------------------- inputs


def _large_one_bad_line() -> bytes:
    """200,000 one-minute bars; data row 150,001 (line 150,002) carries an impossible date."""
    start = 1_672_531_200  # 2023-01-01 00:00:00 UTC
    rows = []
    for i in range(200_000):
        ts = dt.datetime.fromtimestamp(start + 60 * i, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
        if i == 150_000:
            ts = "2023-99-99 00:00:00"
        rows.append(f"{ts},10,11,9,10.5,100\n")
    return (HEADER + "".join(rows)).encode()


def _generate(name: str) -> tuple[bytes, str | None]:
    """Content (and a file name, if it matters) of a generated case."""
    row = b"2024-01-02,10,11,9,10.5,1000\n"
    match name:
        case "crlf_bom":
            return b"\xef\xbb\xbf" + HEADER.encode().replace(b"\n", b"\r\n") + b"\r\n" + row.replace(b"\n", b"\r\n") \
                + b"\r\n2024-01-03,10,11,9,10.5,1000\r\n\r\n", None
        case "latin1":
            return (HEADER + "2024-01-02,10,11,9,10.5,1000\n" * 10).encode() + "2024-01-12,10,11,9,10.5,1000 caf\xe9\n".encode(
                "latin-1"), None
        case "utf16":
            return (HEADER + "2024-01-02,10,11,9,10.5,1000\n").encode("utf-16"), None
        case "nul_byte":
            return HEADER.encode() + b"2024-01-02,10,11\x00,9,10.5,1000\n", None
        case "random_binary":
            return b"\xff" + random.Random(8).randbytes(4096), None
        case "bad_gzip":
            return b"\x1f\x8b\x08\x00" + random.Random(8).randbytes(512), None
        case "large_one_bad_line":
            return _large_one_bad_line(), None
        case "long_symbol_arg":
            return HEADER.encode() + row, None
        case "bad_file_name":
            return HEADER.encode() + row, "A B.csv"
        case "oversized_field":
            return HEADER.encode() + row + b"2024-01-03," + b"1" * 5_000_000 + b",11,9,10.5,1000\n", None
        case "oversized_file":
            return HEADER.encode() + row * 40_000, None  # 1.2 MB
        case "gzip_bomb":
            return gzip.compress(HEADER.encode() + b"0" * 5_000_000), None
    raise AssertionError(f"unknown generator {name!r}")


_BIG: dict[str, bytes] = {}


def _write_input(case: dict[str, Any], folder: Path) -> Path:
    if "file" in case:
        return CORPUS / case["file"]
    name = None
    if "gen" in case:
        gen = case["gen"]
        if gen == "large_one_bad_line":  # built once for its two cases
            _BIG.setdefault(gen, _generate(gen)[0])
            data = _BIG[gen]
        else:
            data, name = _generate(gen)
    else:
        data = case["content"].encode("utf-8")
    path = folder / (name or f"{case['id']}.csv")
    path.write_bytes(data)
    return path


def _args(case: dict[str, Any], path: Path) -> list[str]:
    args = case.get("args", ["--symbol", case["id"].upper()])
    if case.get("gen") == "long_symbol_arg":
        args = ["--symbol", "S" * 10_000]
    return ["ingest", "csv", str(path), *args, "--interval", case.get("interval", "1d"), "--format", "json"]


# --------------------------------------------------------------------------- warehouse


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("corpus-warehouse")


def _query(warehouse: Path, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    db = warehouse / "alphatwin.duckdb"
    if not db.exists():
        return []
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    except duckdb.CatalogException:  # a table not created yet
        return []
    finally:
        con.close()


def _snapshot(warehouse: Path) -> tuple[list[str], list[tuple[Any, ...]]]:
    lake = sorted(str(p.relative_to(warehouse)) for p in (warehouse / "lake").rglob("*") if p.is_file()) \
        if (warehouse / "lake").exists() else []
    runs = _query(warehouse, "SELECT ingest_id, rows FROM meta.ingest_runs WHERE status = 'committed' ORDER BY 1")
    return lake, runs


def _invoke(warehouse: Path, args: list[str], *verbosity: str) -> Any:
    return runner.invoke(app, ["-w", str(warehouse), *verbosity, *args], catch_exceptions=True)


# --------------------------------------------------------------------------- the corpus


def test_corpus_covers_the_issue_list() -> None:
    ids = [c["id"] for c in CASES]
    assert len(ids) == len(set(ids)) and len(ids) >= 40
    missing = [key for key in ISSUE_LIST if not any(key in i for i in ids)]
    assert not missing, f"no corpus case for {missing}"
    for case in CASES:
        assert case["outcome"] in ("error", "quarantine", "flag", "ok"), case["id"]
        assert ("needle" in case) == (case["outcome"] == "error"), case["id"]
        assert ("reasons" in case) == (case["outcome"] in ("quarantine", "flag")), case["id"]
        assert sum(k in case for k in ("content", "file", "gen")) >= 1, case["id"]


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_case(case: dict[str, Any], warehouse: Path, tmp_path: Path) -> None:
    path = _write_input(case, tmp_path)
    args = _args(case, path)
    before = _snapshot(warehouse)
    result = _invoke(warehouse, args)
    assert "Traceback" not in result.output + result.stderr
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit), result.exception
    if case["outcome"] == "error":
        _check_error(case, warehouse, args, result, before)
    else:
        _check_ingested(case, warehouse, result)


def _check_error(case: dict[str, Any], warehouse: Path, args: list[str], result: Any, before: Any) -> None:
    assert result.exit_code == 1, result.output
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert case["needle"] in lines[0]
    assert "unexpected" not in lines[0]  # the handler's wording for a bug, not a bad input
    assert _snapshot(warehouse) == before  # nothing changed: no lake file, no committed ingest
    loud = _invoke(warehouse, args, "-vv")
    assert loud.exit_code == 1 and "Traceback" not in loud.stderr + loud.output
    assert any(ln.startswith("Error: ") and case["needle"] in ln for ln in loud.stderr.splitlines())
    assert _snapshot(warehouse) == before


def _check_ingested(case: dict[str, Any], warehouse: Path, result: Any) -> None:
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    ingest_id, quality = summary["ingest_id"], summary["quality"]
    assert summary["status"] == "committed"
    assert quality["received"] == quality["accepted"] + quality["quarantined"]
    assert quality["accepted"] == case["accepted"]  # no valid row lost
    assert quality["quarantined"] == case.get("quarantined", 0)
    stored = _query(warehouse, "SELECT count(*) FROM quality.accepted_bars WHERE ingest_id = ?", [ingest_id])[0][0]
    assert stored == case["accepted"]
    quarantined = _reasons(warehouse, "quality.quarantine", ingest_id)
    flagged = _reasons(warehouse, "quality.flags", ingest_id)
    if case["outcome"] == "quarantine":
        assert set(case["reasons"]) <= quarantined
    elif case["outcome"] == "flag":
        assert set(case["reasons"]) <= flagged and not quarantined
    else:
        assert not quarantined and not flagged - {"unexplained_jump"}
    rejected = _query(warehouse, "SELECT line, reason, raw_text FROM quality.rejected_lines WHERE ingest_id = ?",
                      [ingest_id])
    assert len(rejected) == case.get("rejected", 0)
    assert all(reason and text for _, reason, text in rejected)
    if "note" in case:
        assert any(case["note"] in n for n in summary["notes"]), summary["notes"]


def _reasons(warehouse: Path, table: str, ingest_id: str) -> set[str]:
    rows = _query(warehouse, f"SELECT DISTINCT unnest(reasons) FROM {table} WHERE ingest_id = ?", [ingest_id])
    return {r[0] for r in rows}


def test_large_file_bad_line_is_visible_with_its_reason(warehouse: Path) -> None:
    """Regression: one bad date at line 150,002 of 200,000 rows used to reject the whole file."""
    rows = _query(warehouse, "SELECT r.path, r.line, r.reason, r.raw_text FROM quality.rejected_lines AS r "
                  "JOIN raw.bars AS b USING (ingest_id) WHERE b.symbol = 'LARGEQ' GROUP BY ALL")
    if not rows:
        pytest.skip("run with the corpus cases (large_one_bad_line_quarantined)")
    assert len(rows) == 1
    path, line, reason, text = rows[0]
    assert path.endswith("large_one_bad_line_quarantined.csv") and line == 150_002
    assert reason.startswith("cannot parse date '2023-99-99 00:00:00'") and text.startswith("2023-99-99 00:00:00,")


def test_symbol_sql_did_not_reach_the_catalog(warehouse: Path) -> None:
    """The SQL-carrying symbol is stored verbatim (bound, never spliced) and quarantined; the
    catalog's tables are all still there."""
    tables = {r[0] for r in _query(warehouse, "SELECT table_schema || '.' || table_name FROM information_schema.tables")}
    if not tables:
        pytest.skip("run with the corpus cases")
    assert {"meta.datasets", "meta.ingest_runs", "quality.quarantine"} <= tables
    rows = _query(warehouse, "SELECT reasons FROM quality.quarantine WHERE symbol = ?", ["X'; DROP TABLE meta.datasets; --"])
    assert rows and all("symbol_well_formed" in r[0] for r in rows)
