"""The ``alphatwin sql`` sandbox against attempts to escape it: every one refused with one line.

A real warehouse (real lake, real DuckDB catalog, a JSON log, a state file, a symlink in the lake
pointing at /etc) and the real CLI (CliRunner). After each attempt the catalog's sha256 and the
warehouse's file list are unchanged and nothing appeared in the directory the attempts aim at.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from alphatwin.cli.main import app
from alphatwin.lake.ingest import ingest
from alphatwin.paths import WarehousePaths
from alphatwin.sources.base import FetchRequest
from alphatwin.sources.frame import FrameSource
from tests.conftest import make_bars

runner = CliRunner()


@pytest.fixture(scope="module")
def wh(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("sandbox")
    paths = WarehousePaths(base / "wh")
    ingest(FrameSource(make_bars(["AAA", "BBB"], 20)), FetchRequest(), paths)
    paths.logs.mkdir(parents=True, exist_ok=True)
    (paths.logs / "alphatwin-secret.jsonl").write_text(json.dumps({"message": "SECRET-LOG-LINE"}) + "\n")
    paths.state.mkdir(parents=True, exist_ok=True)
    (paths.state / "secret.txt").write_text("SECRET-STATE\n")
    (paths.lake / "etc_link").symlink_to("/etc")
    outside = base / "outside"
    outside.mkdir()
    assert runner.invoke(app, ["--warehouse", str(paths.root), "sql", "select 1"]).exit_code == 0  # creates today's log
    return {"root": paths.root, "lake": paths.lake, "outside": outside}


def _fingerprint(wh: dict[str, Path]) -> tuple:
    root = wh["root"]
    files = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file() and not p.is_symlink())
    catalog = hashlib.sha256((root / "alphatwin.duckdb").read_bytes()).hexdigest()
    return files, catalog, sorted(p.name for p in wh["outside"].rglob("*"))


ETC = "/etc/passwd"
CASES = [
    # writes and DDL
    ("insert into meta.properties values ('k', 'v')", "refused INSERT"),
    ("update meta.properties set value = 'x'", "refused UPDATE"),
    ("delete from meta.lake_files", "refused DELETE"),
    ("truncate meta.lake_files", "refused TRUNCATE"),
    ("merge into meta.properties p using meta.properties q on p.key = q.key when matched then delete", "refused MERGE"),
    ("create table t as select 1", "refused CREATE"),
    ("create temp table t as select 1", "refused CREATE"),
    ("create or replace view raw.bars as select 1", "refused CREATE"),
    ("create macro m() as 1", "refused CREATE"),
    ("create secret s (type s3, key_id 'x', secret 'y')", "refused CREATE"),
    ("drop table meta.lake_files", "refused DROP"),
    ("alter table meta.lake_files add column x int", "refused ALTER"),
    ("with d as (delete from meta.lake_files returning *) select * from d", "DELETE"),
    ("select 1; drop table meta.lake_files", "one query at a time"),
    ("/* a comment */ drop table meta.lake_files", "refused DROP"),
    ("checkpoint", "refused CHECKPOINT"),
    ("vacuum", "refused VACUUM"),
    ("begin transaction", "refused BEGIN"),
    # other databases
    ("attach '{outside}/x.duckdb' as x", "refused ATTACH"),
    ("detach wh", "refused DETACH"),
    ("use memory", "refused USE"),
    # copying out and in
    ("copy raw.bars to '{outside}/bars.csv'", "refused COPY"),
    ("copy (select * from meta.lake_files) to '{outside}/files.parquet' (format parquet)", "refused COPY"),
    ("copy meta.properties from '/etc/passwd'", "refused COPY"),
    ("export database '{outside}/export'", "refused EXPORT"),
    ("import database '{outside}/export'", "refused IMPORT"),
    # extensions
    ("install httpfs", "refused INSTALL"),
    ("force install httpfs", "refused FORCE"),
    ("load httpfs", "refused LOAD"),
    ("update extensions", "refused UPDATE"),
    # settings
    ("set memory_limit = '100GB'", "refused SET"),
    ("set enable_external_access = true", "refused SET"),
    ("set variable x = 1", "refused SET"),
    ("reset lock_configuration", "refused RESET"),
    ("pragma enable_profiling", "refused PRAGMA"),
    ("call pragma_version()", "refused CALL"),
    # /etc/passwd through every reader
    (f"select * from read_csv('{ETC}')", ETC),
    (f"select * from read_csv_auto('{ETC}')", ETC),
    (f"select * from read_text('{ETC}')", ETC),
    (f"select * from read_blob('{ETC}')", ETC),
    (f"select * from read_json('{ETC}')", ETC),
    (f"select * from read_json_auto('{ETC}')", ETC),
    (f"select * from read_ndjson('{ETC}')", ETC),
    (f"select * from read_parquet('{ETC}')", ETC),
    (f"select * from parquet_metadata('{ETC}')", ETC),
    (f"select * from parquet_schema('{ETC}')", ETC),
    (f"select * from sniff_csv('{ETC}')", ETC),
    (f"select * from '{ETC}'", ETC),
    ("select * from glob('/etc/*')", "/etc/*"),
    ("select * from read_text('/proc/self/environ')", "/proc/self/environ"),
    # path traversal and a symlink out of the lake
    ("select * from read_text('{lake}/../../../../../../etc/passwd')", "etc/passwd"),
    ("select * from read_text('../../../../../../etc/passwd')", "etc/passwd"),
    ("select * from read_text('{lake}/etc_link/passwd')", "etc_link/passwd"),
    # URLs
    ("select * from read_csv('https://example.com/data.csv')", "https://example.com/data.csv"),
    ("select * from read_parquet('s3://bucket/data.parquet')", "s3://bucket/data.parquet"),
    ("select * from 'http://example.com/x.parquet'", "http://example.com/x.parquet"),
    # the warehouse's own logs and state: outside the lake
    ("select * from read_text('{root}/logs/*.jsonl')", "logs/*.jsonl"),
    ("select * from read_text('{root}/logs/alphatwin-secret.jsonl')", "alphatwin-secret.jsonl"),
    ("select * from read_csv('{root}/state/secret.txt')", "state/secret.txt"),
    ("select * from read_blob('{root}/.write.lock')", ".write.lock"),
    ("select * from glob('{root}/*')", "file system operations are disabled"),
    # SQL inside a string
    ("select * from query('attach ''{outside}/x.duckdb'' as x')", "refused query()"),
    ("select * from query('select * from read_text(''/etc/passwd'')')", "refused query()"),
    ("select * from query_table('meta.lake_files')", "refused query_table()"),
    # ... also behind SHOW / DESCRIBE / SUMMARIZE, which sqlglot does not model
    ("summarize select * from query('select 42')", "refused query()"),
    ("describe select * from query('select 42')", "refused query()"),
    ("show select * from query_table('meta.lake_files')", "refused query_table()"),
    ("describe with x as (delete from meta.properties returning *) select * from x", "refused a nested DELETE"),
    ("summarize select * from read_text('/etc/passwd')", "file system operations are disabled"),
    # extension metadata would touch the home directory
    ("select * from duckdb_extensions()", "file system operations are disabled"),
]


@pytest.mark.parametrize("query, needle", CASES, ids=[f"{i:02d}" for i in range(len(CASES))])
def test_attempt_is_refused_with_one_line(wh, query, needle):
    before = _fingerprint(wh)
    query = query.format(**{k: v.as_posix() for k, v in wh.items()})
    needle = needle.format(**{k: v.as_posix() for k, v in wh.items()})
    result = runner.invoke(app, ["--warehouse", str(wh["root"]), "sql", query])
    _refused(result, needle)
    assert _fingerprint(wh) == before


def _refused(result, needle: str) -> None:
    assert result.exit_code == 1, result.output
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ") and needle in lines[0], lines[0]
    assert "Traceback" not in result.output and "this is a bug" not in result.output
    assert "SECRET" not in result.output and "root:" not in result.stdout


def test_a_runaway_query_is_stopped_by_the_timeout(wh):
    import time

    before = _fingerprint(wh)
    started = time.monotonic()
    result = runner.invoke(app, ["--warehouse", str(wh["root"]), "sql", "select count(*) from range(1e11::bigint)",
                                 "--timeout", "1"])
    _refused(result, "query exceeded 1 s")
    assert time.monotonic() - started < 10
    assert _fingerprint(wh) == before


def test_the_memory_limit_comes_from_the_config(wh, tmp_path):
    config = tmp_path / "alphatwin.toml"
    config.write_text("[sql]\nmemory_limit = '32MB'\nthreads = 1\n")
    result = runner.invoke(app, ["--warehouse", str(wh["root"]), "--config", str(config), "sql",
                                 "select current_setting('memory_limit') as m, current_setting('threads') as t",
                                 "--format", "csv"])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[1] == "30.5 MiB,1"


def test_a_bad_sql_setting_is_one_line(wh, tmp_path):
    config = tmp_path / "alphatwin.toml"
    config.write_text("[sql]\ntimeout = -1\n")
    result = runner.invoke(app, ["--warehouse", str(wh["root"]), "--config", str(config), "sql", "select 1"])
    _refused(result, "[sql] timeout must be a positive number of seconds")


def test_queries_still_work(wh):
    """The fences do not stop the legitimate queries: raw.bars (lake files), meta, DESCRIBE, SHOW."""
    base = ["--warehouse", str(wh["root"]), "sql"]
    for query, expected in [
        ("select count(*) as n from raw.bars", "n\n40\n"),
        ("select count(*) as n from meta.lake_files", "n\n2\n"),
        ("from raw.bars select count(distinct symbol) as n", "n\n2\n"),
        (f"select count(*) as n from read_parquet('{wh['lake'].as_posix()}/bars/**/*.parquet')", "n\n40\n"),
        ("select count(*) > 0 as ok from (describe raw.bars)", "ok\ntrue\n"),
    ]:
        result = runner.invoke(app, [*base, query, "--format", "csv"])
        assert result.exit_code == 0, result.output
        assert result.stdout == expected, query
    shown = runner.invoke(app, [*base, "show all tables", "--format", "csv"])
    assert shown.exit_code == 0 and "lake_files" in shown.stdout


def test_variant_columns_come_back_as_text(wh):
    """duckdb_settings() has a VARIANT column Polars cannot hold: it is cast to text, not a bug."""
    result = runner.invoke(app, ["--warehouse", str(wh["root"]), "sql",
                                 "select name, typed_value from duckdb_settings() where name = 'threads'",
                                 "--format", "csv"])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == ["name,typed_value", "threads,2"]


def test_case_count():
    assert len(CASES) >= 40
