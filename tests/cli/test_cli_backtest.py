"""``alphatwin backtest`` and ``alphatwin sweep`` through CliRunner on the fixture market
(tests/models/market.py, SYN00001 renamed GOOG so the documented command runs verbatim)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from alphatwin.cli.main import app
from alphatwin.lake import catalog
from alphatwin.metrics.summary import METRIC_KEYS
from alphatwin.paths import WarehousePaths
from tests.models.market import build_all, load, market

runner = CliRunner()
ISSUE_COMMAND = ("backtest sma_cross --symbols GOOG --param fast=10 --param slow=20 --fees-bps 10 "
                 "--fill close --format json").split()
TABLES = ("runs", "trades", "fills", "equity", "positions", "metrics", "sweeps")


@pytest.fixture(scope="module")
def wh(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("clibt") / "wh"
    frame = market(n_symbols=2).with_columns(pl.col("symbol").replace("SYN00001", "GOOG"))
    load(WarehousePaths(root), frame)
    build_all(WarehousePaths(root))
    return root


@pytest.fixture(autouse=True)
def _no_config(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no alphatwin.toml here
    monkeypatch.setenv("ALPHATWIN_CONFIG", "")
    monkeypatch.delenv("ALPHATWIN_WAREHOUSE", raising=False)


def cli(wh: Path, *args: str):
    return runner.invoke(app, ["--warehouse", str(wh), *args])


def _counts(wh: Path) -> dict[str, int]:
    with catalog.connect(WarehousePaths(wh), read_only=True) as con:
        existing = {r[0] for r in con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'backtest'").fetchall()}
        return {t: (con.execute(f"SELECT count(*) FROM backtest.{t}").fetchall()[0][0] if t in existing else 0)
                for t in TABLES}


def _query(wh: Path, sql: str, params: list | None = None) -> pl.DataFrame:
    with catalog.connect(WarehousePaths(wh), read_only=True) as con:
        return con.sql(sql, params=params or []).pl()


def _one_line_error(result, *needles: str) -> str:
    assert result.exit_code != 0, result.output
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: "), result.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    assert "Traceback" not in result.output and "unexpected" not in lines[0]
    assert result.exception is None or isinstance(result.exception, SystemExit)
    return lines[0]


# ------------------------------------------------------------------------------------ backtest


def test_the_documented_backtest_command_prints_one_json_object_and_stores_the_run(wh):
    result = cli(wh, *ISSUE_COMMAND)
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    for key in ("run_id", "total_return", "cagr", "sharpe", "sortino", "calmar", "max_drawdown", "n_trades"):
        assert key in out, key
    assert list(out)[:7] == ["run_id", "strategy", "params", "symbols", "interval", "start", "end"]
    assert list(out)[7:] == list(METRIC_KEYS)
    assert (out["strategy"], out["params"], out["symbols"], out["interval"]) == \
        ("sma_cross", {"fast": 10, "slow": 20}, ["GOOG"], "1d")
    assert out["start"].startswith("2000-01-03") and out["end"].startswith("2000-12-01")
    assert out["n_trades"] > 0 and out["n_bars"] == 240 and out["total_fees"] > 0
    runs = _query(wh, "SELECT * FROM backtest.runs WHERE run_id = ?", [out["run_id"]])
    assert runs.height == 1
    row = runs.row(0, named=True)
    assert row["symbols"] == ["GOOG"] and json.loads(row["execution"])["fill"] == "close"
    assert json.loads(row["cost_model"])["fees_bps"] == 10
    metrics = _query(wh, "SELECT metric, value FROM backtest.metrics WHERE run_id = ?", [out["run_id"]])
    stored = dict(metrics.iter_rows())
    for key in METRIC_KEYS:
        if out[key] is None:
            assert stored[key] is None, key
        else:
            assert stored[key] == pytest.approx(float(out[key]), rel=1e-12), key


def test_backtest_table_output(wh):
    before = _counts(wh)
    result = cli(wh, "backtest", "sma_cross", "--symbols", "GOOG,SYN00002", "-p", "fast=5", "-p", "slow=20",
                 "--stop-loss", "0.05")
    assert result.exit_code == 0, result.output
    assert "run bt-" in result.stdout and "GOOG,SYN00002" in result.stdout
    for key in METRIC_KEYS:
        assert key in result.stdout, key
    assert _counts(wh)["runs"] == before["runs"] + 1


def test_backtest_no_save_stores_nothing(wh):
    before = _counts(wh)
    result = cli(wh, "backtest", "sma_cross", "--symbols", "GOOG", "--format", "json", "--no-save")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["run_id"] is None
    assert _counts(wh) == before


# -------------------------------------------------------------------------------------- sweep


def _pairs(fasts, slows) -> set[tuple[int, int]]:
    return {(f, s) for f in fasts for s in slows if f < s}


@pytest.mark.parametrize("sort, ascending", [("sharpe", False), ("total_return", False),
                                             ("max_drawdown", False), ("n_trades", True)])
def test_sweep_prints_the_top_rows_by_the_sort_metric_and_stores_every_valid_pair(wh, sort, ascending):
    before = _counts(wh)
    args = ["sweep", "sma_cross", "--symbols", "GOOG", "--grid", "fast=2:10", "--grid", "slow=3:30",
            "--top", "5", "--sort", sort, "--format", "json", *(["--ascending"] if ascending else [])]
    result = cli(wh, *args)
    assert result.exit_code == 0, result.output
    top = pl.DataFrame(json.loads(result.stdout))
    pairs = _pairs(range(2, 11), range(3, 31))
    assert len(pairs) == 216
    assert top.height == 5
    values = top[sort].to_list()
    assert values == sorted(values, reverse=not ascending)
    after = _counts(wh)
    assert after["runs"] == before["runs"] + 1
    assert after["sweeps"] - before["sweeps"] == len(pairs)
    run_id = _query(wh, "SELECT run_id FROM backtest.runs WHERE kind = 'sweep' "
                        "ORDER BY created DESC LIMIT 1")["run_id"][0]
    assert f"sweep {run_id}: 216 combinations" in result.stderr
    stored = _query(wh, "SELECT * FROM backtest.sweeps WHERE run_id = ?", [run_id])
    assert set(stored.select("fast", "slow").iter_rows()) == pairs  # fast >= slow skipped
    assert (stored["fast"] < stored["slow"]).all()
    best = stored.with_columns(pl.col(sort).fill_nan(None)).sort(sort, descending=not ascending, nulls_last=True)
    assert best[sort].head(5).to_list() == values  # the printed rows are the best of all stored
    for row in top.iter_rows(named=True):
        match = stored.filter((pl.col("fast") == row["fast"]) & (pl.col("slow") == row["slow"]))
        assert match.height == 1
        for key in ("total_return", "sharpe", "max_drawdown", "n_trades"):
            assert match[key][0] == pytest.approx(row[key], rel=1e-12) or (
                row[key] is None and math.isnan(match[key][0])), key


def test_sweep_table_and_csv_output(wh):
    result = cli(wh, "sweep", "sma_cross", "--symbols", "GOOG,SYN00002", "--grid", "fast=2,5",
                 "--grid", "slow=5:20:5", "--top", "3", "--format", "csv", "--sort", "sharpe")
    assert result.exit_code == 0, result.output
    rows = pl.read_csv(result.stdout.encode())
    assert rows.height == 3
    assert rows.columns[:3] == ["symbol", "fast", "slow"]
    assert rows["sharpe"].to_list() == sorted(rows["sharpe"].to_list(), reverse=True)
    assert "14 combinations" in result.stderr  # (2,5) (2,10) (2,15) (2,20) (5,10) (5,15) (5,20) x 2 symbols
    table = cli(wh, "sweep", "sma_cross", "--symbols", "GOOG", "--grid", "fast=2:4", "--grid", "slow=5,6",
                "--top", "2")
    assert table.exit_code == 0, table.output
    assert "sharpe" in table.stdout and "2 row(s)" in table.stdout


# ------------------------------------------------------------------------------------- errors


BASE = ["backtest", "sma_cross", "--symbols", "GOOG"]
SWEEP = ["sweep", "sma_cross", "--symbols", "GOOG", "--grid", "fast=2:5", "--grid", "slow=6:9"]


@pytest.mark.parametrize("args, needles", [
    ([*BASE, "--param", "fast"], ["--param", "name=value", "'fast'"]),
    ([*BASE, "--param", "fast=ten"], ["--param fast", "a number", "'ten'"]),
    ([*BASE, "--param", "fast=20", "--param", "slow=10"], ["fast", "slow"]),
    ([*BASE, "--direction", "sideways"], ["--direction", "'sideways'"]),
    ([*BASE, "--fill", "later"], ["--fill", "'later'"]),
    ([*BASE, "--fees-bps", "-1"], ["--fees-bps", "-1"]),
    (["backtest", "sma_cross", "--symbols", "NOPE"], ["NOPE"]),
    (["backtest", "sma_cross", "--symbols", "GOOG,NOPE"], ["NOPE"]),
    (["backtest", "nostrategy", "--symbols", "GOOG"], ["unknown strategy", "nostrategy"]),
    ([*BASE, "--start", "2030-01-01"], ["no bars on or after 2030-01-01"]),
    ([*BASE, "--start", "someday"], ["--start", "'someday'"]),
    ([*SWEEP[:4], "--grid", "fast=10:2", "--grid", "slow=3:30"], ["--grid fast", "'10:2'"]),
    ([*SWEEP[:4], "--grid", "fast", "--grid", "slow=3:30"], ["--grid", "'fast'"]),
    ([*SWEEP[:4], "--grid", "fast=20:30", "--grid", "slow=3:10"], ["no valid combination"]),
    ([*SWEEP, "--direction", "sideways"], ["--direction", "'sideways'"]),
    ([*SWEEP, "--fill", "later"], ["--fill", "'later'"]),
    ([*SWEEP, "--fees-bps", "-1"], ["--fees-bps", "-1"]),
    (["sweep", "sma_cross", "--symbols", "NOPE", "--grid", "fast=2:5", "--grid", "slow=6:9"], ["NOPE"]),
    ([*SWEEP, "--top", "0"], ["--top"]),
    ([*BASE, "--risk-free", "-2"], ["--risk-free", "-2"]),
    ([*BASE, "--risk-free", "nan"], ["--risk-free", "nan"]),
    ([*SWEEP, "--risk-free", "-2"], ["--risk-free", "-2"]),
    ([*SWEEP, "--risk-free", "nan"], ["--risk-free", "nan"]),
])
def test_bad_input_is_one_error_line_and_writes_nothing(wh, args, needles):
    before = _counts(wh)
    result = cli(wh, *args)
    _one_line_error(result, *needles)
    assert result.stdout == ""
    assert _counts(wh) == before


def test_a_bad_sort_column_writes_nothing(wh):
    before = _counts(wh)
    result = cli(wh, *SWEEP, "--sort", "nope")
    _one_line_error(result, "--sort", "'nope'")
    assert _counts(wh) == before


@pytest.mark.parametrize("command", ["backtest", "sweep"])
def test_help_shows_an_example(command):
    result = runner.invoke(app, [command, "--help"])
    assert result.exit_code == 0
    assert f"Example: alphatwin {command} sma_cross" in result.stdout
