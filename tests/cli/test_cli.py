"""The ``alphatwin`` CLI end to end with CliRunner: real sources, real lake, real DuckDB."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from alphatwin.cli.main import app

FIXTURES = Path(__file__).parents[1] / "sources" / "fixtures"
GOOG = FIXTURES / "GOOG.csv"
runner = CliRunner()


def cli(wh: Path, *args: str, input: str | None = None):
    return runner.invoke(app, ["--warehouse", str(wh), *args], input=input)


def _snapshot(wh: Path) -> tuple:
    files = sorted(p.relative_to(wh).as_posix() for p in (wh / "lake").rglob("*") if p.is_file()) if (wh / "lake").exists() else []
    out = cli(wh, "sql", "select (select count(*) from raw.bars), (select count(*) from meta.lake_files), "
              "(select count(*) from meta.datasets)", "--format", "csv")
    return files, out.stdout


def _one_line_error(result, needle: str) -> None:
    assert result.exit_code == 1, result.output
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert lines[-1].startswith("Error: ") and needle in lines[-1], result.stderr
    assert "Traceback" not in result.output


@pytest.mark.parametrize("command", [
    [], ["init"], ["ingest"], ["ingest", "yahoo"], ["ingest", "stooq"], ["ingest", "auto"], ["ingest", "csv"],
    ["ingest", "synthetic"], ["ingest", "sample"], ["status"], ["sql"], ["demo"],
    ["quality"], ["quality", "report"], ["quality", "quarantine"], ["validate"], ["build"], ["models"],
])
def test_every_command_has_help_with_an_example(command):
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0
    assert "Example: alphatwin" in result.stdout


def test_help_is_fast_because_heavy_imports_are_lazy():
    code = "import sys, alphatwin.cli.main; print(sorted(m for m in ('polars','duckdb','yfinance','pandas','numba','great_expectations','altair') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_ingest_csv_then_query(tmp_path):
    wh = tmp_path / "wh"
    result = cli(wh, "ingest", "csv", str(GOOG), "--symbol", "GOOG", "--interval", "1d")
    assert result.exit_code == 0, result.output
    assert "committed, 9 rows" in result.stdout
    out = cli(wh, "sql", "select symbol, count(*) as n, min(ts)::date as first from raw.bars group by 1", "--format", "csv")
    assert out.exit_code == 0 and out.stdout.splitlines() == ["symbol,n,first", "GOOG,9,2004-08-19"]
    js = cli(wh, "sql", "select symbol, close from raw.bars order by ts limit 2", "--format", "json")
    assert json.loads(js.stdout) == [{"symbol": "GOOG", "close": 100.34}, {"symbol": "GOOG", "close": 108.31}]
    table = cli(wh, "sql", "select symbol from raw.bars limit 1")
    assert "GOOG" in table.stdout and "1 row(s)" in table.stdout
    # sum() of integers is a HUGEINT in DuckDB: a 64-bit integer when it fits, exact text when not.
    sums = cli(wh, "sql", "select sum(volume::BIGINT) as v, count(*) as n, 170141183460469231731687303715884105727::HUGEINT as big "
               "from raw.bars",
               "--format", "json")
    assert sums.exit_code == 0, sums.output
    row = json.loads(sums.stdout)[0]
    assert isinstance(row["n"], int) and row["big"] == "170141183460469231731687303715884105727"
    fits = json.loads(cli(wh, "sql", "select sum(volume::BIGINT) as v from raw.bars", "--format", "json").stdout)[0]
    assert isinstance(fits["v"], int) and fits["v"] > 0


def test_ingest_json_summary_and_status(tmp_path):
    wh = tmp_path / "wh"
    result = cli(wh, "ingest", "synthetic", "--symbols", "3", "--bars", "50", "--seed", "1", "--format", "json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["status"] == "committed" and summary["source"] == "synthetic"
    assert summary["symbols"] == ["SYN00001", "SYN00002", "SYN00003"] and summary["rows"] == 150
    status = cli(wh, "status", "--format", "json")
    info = json.loads(status.stdout)
    assert info["lake"]["rows"] == 150 and info["ingests"]["ok"] == 1
    assert {d["symbol"] for d in info["datasets"]} == {"SYN00001", "SYN00002", "SYN00003"}
    human = cli(wh, "status")
    assert human.exit_code == 0 and "SYN00002" in human.stdout and "disk free" in human.stdout


def test_sql_output_to_parquet_file(tmp_path):
    wh = tmp_path / "wh"
    cli(wh, "ingest", "csv", str(GOOG), "--symbol", "GOOG")
    out = tmp_path / "goog.parquet"
    result = cli(wh, "sql", "select * from raw.bars", "--format", "parquet", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert pl.read_parquet(out).height == 9


@pytest.mark.parametrize("query, needle", [
    ("insert into meta.datasets values (1)", "refused INSERT"),
    ("drop table meta.ingest_runs", "refused DROP"),
    ("attach '/tmp/x.duckdb'", "refused ATTACH"),
    ("copy (select 1) to 'x.csv'", "refused COPY"),
    ("install httpfs", "refused INSTALL"),
    ("load httpfs", "refused LOAD"),
    ("set threads = 1", "refused SET"),
    ("select * from read_csv('/etc/passwd')", "/etc/passwd"),
    ("select 1; select 2", "one query at a time"),
    ("selec 1", "syntax error"),
    ("select * from no_such_table", "no_such_table"),
])
def test_sql_sandbox_refuses_with_one_line(tmp_path, query, needle):
    wh = tmp_path / "wh"
    cli(wh, "init")
    _one_line_error(cli(wh, "sql", query), needle)


@pytest.mark.parametrize("args, needle", [
    (["ingest", "csv", "nope.csv"], "nope.csv: no such file or directory"),
    (["ingest", "csv", str(GOOG), "--start", "31/01/20"], "`--start` must be a date like 2020-01-31"),
    (["ingest", "csv", str(GOOG), "--interval", "7d"], "`--interval` must be one of"),
    (["ingest", "csv", str(GOOG), "--map", "oops"], "`--map` must look like"),
    (["ingest", "synthetic", "--defects", "gap=lots"], "`--defects` must look like"),
    (["ingest", "csv", str(GOOG), "--start", "2010-01-01", "--end", "2009-01-01"], "must be before"),
])
def test_bad_input_is_one_line_and_changes_nothing(tmp_path, args, needle):
    wh = tmp_path / "wh"
    assert cli(wh, "ingest", "csv", str(GOOG), "--symbol", "GOOG").exit_code == 0
    before = _snapshot(wh)
    _one_line_error(cli(wh, *args), needle)
    assert _snapshot(wh) == before


def test_malformed_csv_names_file_and_line(tmp_path):
    wh = tmp_path / "wh"
    bad = tmp_path / "BAD.csv"
    bad.write_text(GOOG.read_text().replace("2004-08-23,", "2004-08-23,oops,", 1))
    assert cli(wh, "ingest", "csv", str(GOOG), "--symbol", "GOOG").exit_code == 0
    before = _snapshot(wh)
    result = cli(wh, "ingest", "csv", str(bad))
    _one_line_error(result, f"{bad}:4")
    assert _snapshot(wh) == before


def test_debug_shows_the_traceback(tmp_path):
    result = runner.invoke(app, ["--warehouse", str(tmp_path / "wh"), "--debug", "ingest", "csv", "nope.csv"])
    assert result.exit_code == 1 and result.exception is not None
    assert type(result.exception).__name__ == "InputError"


def test_warehouse_from_environment(tmp_path, monkeypatch):
    wh = tmp_path / "envwh"
    monkeypatch.setenv("ALPHATWIN_WAREHOUSE", str(wh))
    result = runner.invoke(app, ["init"])
    assert result.exit_code == 0 and (wh / "alphatwin.duckdb").is_file()


def test_config_file_sets_warehouse_and_rejects_typos(tmp_path, monkeypatch):
    monkeypatch.delenv("ALPHATWIN_WAREHOUSE", raising=False)
    cfg = tmp_path / "alphatwin.toml"
    cfg.write_text('[warehouse]\npath = "data"\n')
    assert runner.invoke(app, ["--config", str(cfg), "init"]).exit_code == 0
    assert (tmp_path / "data" / "alphatwin.duckdb").is_file()
    cfg.write_text('[warehouse]\npath = "data"\n[sources.retry]\nmax_attempt = 3\n')
    _one_line_error(runner.invoke(app, ["--config", str(cfg), "init"]), "unknown key(s) max_attempt")


def test_demo_runs_end_to_end_and_reruns(tmp_path):
    wh = tmp_path / "demo"
    for _ in range(2):  # a re-run rebuilds the demo warehouse instead of piling up duplicates
        result = cli(wh, "demo", "--symbols", "3", "--bars", "300")
        assert result.exit_code == 0, result.output
    out = cli(wh, "sql", "select source, count(distinct symbol) from raw.bars group by 1 order by 1", "--format", "csv")
    assert out.stdout.splitlines() == ["source,count(DISTINCT symbol)", "csv,2", "synthetic,3"]
    runs = cli(wh, "sql", "select count(*) from meta.ingest_runs", "--format", "csv")
    assert runs.stdout.splitlines()[1] == "2"


def test_demo_refuses_a_warehouse_with_other_data(tmp_path):
    wh = tmp_path / "wh"
    cli(wh, "ingest", "csv", str(GOOG), "--symbol", "GOOG")
    _one_line_error(cli(wh, "demo"), "holds data that the demo did not create")
    assert _snapshot(wh)[1].splitlines()[1].startswith("9,")
