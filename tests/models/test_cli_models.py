"""``alphatwin build`` and ``alphatwin models`` through CliRunner (mounted on a test app until
the lead registers them in cli/main.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import pytest
import typer
from typer.testing import CliRunner

from alphatwin.cli.common import State
from alphatwin.cli.main import _ErrorsAsOneLine
from alphatwin.cli.models import build_command, models_command
from alphatwin.lake.ingest import ingest
from alphatwin.paths import WarehousePaths
from alphatwin.sources.base import FetchRequest
from alphatwin.sources.frame import FrameSource
from tests.conftest import make_bars

app = typer.Typer(cls=_ErrorsAsOneLine, rich_markup_mode=None, pretty_exceptions_enable=False)


@app.callback()
def _main(ctx: typer.Context,
          warehouse: Annotated[str | None, typer.Option("--warehouse", "-w")] = None) -> None:
    ctx.obj = State(warehouse=warehouse)


app.command("build")(build_command)
app.command("models")(models_command)
runner = CliRunner()


@pytest.fixture
def setup(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no alphatwin.toml here: sql/ is ./sql
    monkeypatch.setenv("ALPHATWIN_CONFIG", "")
    monkeypatch.setenv("ALPHATWIN_PYTHON_MODELS", "")  # only this test's SQL models
    sql = tmp_path / "sql"
    (sql / "clean").mkdir(parents=True)
    (sql / "features").mkdir()
    (sql / "clean" / "bars.sql").write_text("-- One row per bar.\nSELECT symbol, ts, close FROM raw.bars\n")
    (sql / "features" / "last.sql").write_text(
        "-- One row per symbol: the last close.\nSELECT symbol, arg_max(close, ts) AS close FROM clean.bars GROUP BY ALL\n")
    wh = tmp_path / "wh"
    ingest(FrameSource(make_bars(["AAA", "BBB"], 5)), FetchRequest(), WarehousePaths(wh))
    return wh


def cli(wh: Path, *args: str):
    return runner.invoke(app, ["--warehouse", str(wh), *args])


@pytest.mark.parametrize("command", ["build", "models"])
def test_help_has_an_example(command):
    result = runner.invoke(app, [command, "--help"])
    assert result.exit_code == 0 and "Example: alphatwin" in result.stdout


def test_build_then_list(setup):
    result = cli(setup, "build", "--format", "json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [(r["model"], r["status"], r["rows"]) for r in rows] == [("clean.bars", "ok", 10), ("features.last", "ok", 2)]
    assert "clean.bars: ok (full), 10 rows" in result.stderr
    listed = json.loads(cli(setup, "models", "--format", "json").stdout)
    assert listed[0] == {"model": "clean.bars", "kind": "sql", "upstream": ["raw.bars"], "downstream": ["features.last"],
                         "path": "sql/clean/bars.sql", "description": "One row per bar."}


def test_build_select(setup):
    assert cli(setup, "build").exit_code == 0
    result = cli(setup, "build", "--select", "features.last", "--full-refresh", "--format", "json")
    assert result.exit_code == 0, result.output
    assert [r["model"] for r in json.loads(result.stdout)] == ["features.last"]


def test_lineage_text_and_mermaid(setup):
    text = cli(setup, "models", "--lineage")
    assert text.exit_code == 0, text.output
    assert text.stdout.splitlines() == [
        "raw.bars (source)", "  -> clean.bars", "clean.bars (sql)", "  -> features.last", "features.last (sql)"]
    mermaid = cli(setup, "models", "--mermaid").stdout.splitlines()
    assert mermaid[:6] == ["flowchart LR", '  n0[("raw.bars")]:::source', '  n1["clean.bars"]:::sql',
                           '  n2["features.last"]:::sql', "  n0 --> n1", "  n1 --> n2"]


def test_errors_are_one_line(setup):
    (Path("sql") / "features" / "bad.sql").write_text("SELECT *\nFROM clean.nope\n")
    result = cli(setup, "models")
    assert result.exit_code == 1
    assert result.stderr.strip().endswith("features.bad reads unknown table clean.nope: it is neither a model "
                                          "(sql/clean/nope.sql or a @model function clean__nope) nor a table or view "
                                          "in the warehouse")
    assert "Traceback" not in result.output
    Path("sql/features/bad.sql").write_text("SELECT *\nFROM clean.bars\nWHERE\n")
    result = cli(setup, "build")
    assert result.exit_code == 1 and "bad.sql:3: SQL syntax error" in result.stderr
    Path("sql/features/bad.sql").unlink()
    result = cli(setup, "build", "--select", "nope.*")
    assert result.exit_code == 1 and "selection 'nope.*' matches no model" in result.stderr


def test_models_without_a_warehouse_skips_the_source_check(setup, tmp_path):
    result = cli(tmp_path / "no-warehouse-here", "models")
    assert result.exit_code == 0, result.output
    assert "clean.bars" in result.stdout and not (tmp_path / "no-warehouse-here").exists()


def test_bad_format(setup):
    result = cli(setup, "models", "--format", "csv")
    assert result.exit_code == 1 and "`--format` must be table or json" in result.stderr
