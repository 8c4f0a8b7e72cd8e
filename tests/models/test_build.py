"""Building a tiny DAG (2 SQL models + 1 Python model over raw.bars) in a real warehouse."""

from __future__ import annotations

import hashlib
from pathlib import Path

import polars as pl
import pytest

from alphatwin.errors import ModelError, WarehouseBusyError
from alphatwin.lake import catalog
from alphatwin.lake.ingest import ingest
from alphatwin.lake.lock import write_lock
from alphatwin.models.build import build
from alphatwin.models.registry import model
from alphatwin.sources.base import FetchRequest
from alphatwin.sources.frame import FrameSource
from tests.conftest import make_bars

CLEAN = """-- One row per (symbol, ts) from raw.bars, with a positive close.
SELECT symbol, ts, high, low, close FROM raw.bars WHERE close > 0
"""
RETURNS = """-- One row per (symbol, ts): simple return over the previous bar (NULL for the first).
WITH ordered AS (
    SELECT symbol, ts, close, lag(close) OVER (PARTITION BY symbol ORDER BY ts) AS prev
    FROM clean.bars
)
SELECT symbol, ts, close / prev - 1 AS ret FROM ordered
"""


@model
def features__range(clean__bars: pl.LazyFrame) -> pl.LazyFrame:
    """One row per (symbol, ts): high minus low."""
    return clean__bars.select("symbol", "ts", (pl.col("high") - pl.col("low")).alias("range"))


@model
def features__broken(clean__bars: pl.LazyFrame) -> pl.LazyFrame:
    raise ValueError("no range today")


@model
def features__wrong_type(clean__bars: pl.LazyFrame) -> pl.LazyFrame:
    return 42  # type: ignore[return-value]


BARS = make_bars(["AAA", "BBB"], 10)


@pytest.fixture
def warehouse(paths):
    ingest(FrameSource(BARS), FetchRequest(), paths)
    return paths


@pytest.fixture
def sql_root(tmp_path) -> Path:
    root = tmp_path / "sql"
    _write(root, "clean/bars.sql", CLEAN)
    _write(root, "features/returns.sql", RETURNS)
    return root


def _write(root: Path, rel: str, text: str) -> None:
    (root / rel).parent.mkdir(parents=True, exist_ok=True)
    (root / rel).write_text(text, encoding="utf-8")


def _build(paths, sql_root, python=(features__range,), **kwargs):
    return build(paths, sql_root=sql_root, python=list(python), **kwargs)


def _q(paths, sql):
    with catalog.connect(paths, read_only=True) as con:
        return con.sql(sql).pl()


def test_builds_in_deterministic_order_and_pins_values(warehouse, sql_root):
    seen = []
    result = _build(warehouse, sql_root, progress=lambda run: seen.append((run.model, run.status, run.rows)))
    assert result.plan == ["clean.bars", "features.range", "features.returns"]
    assert seen == [("clean.bars", "ok", 20), ("features.range", "ok", 20), ("features.returns", "ok", 20)]
    assert result.rows == 60
    returns = _q(warehouse, "SELECT symbol, ret FROM features.returns ORDER BY symbol, ts")
    close = BARS.filter(pl.col("symbol") == "AAA")["close"].to_list()
    got = returns.filter(pl.col("symbol") == "AAA")["ret"].to_list()
    assert got[0] is None
    assert got[1:] == pytest.approx([b / a - 1 for a, b in zip(close, close[1:], strict=False)], rel=1e-12)
    rng = _q(warehouse, "SELECT range FROM features.range WHERE symbol = 'BBB' ORDER BY ts")["range"].to_list()
    bbb = BARS.filter(pl.col("symbol") == "BBB")
    assert rng == pytest.approx((bbb["high"] - bbb["low"]).to_list(), rel=1e-12)


def test_model_runs_and_stage_runs_are_recorded(warehouse, sql_root):
    _build(warehouse, sql_root)
    runs = _q(warehouse, "SELECT model, kind, rows, status, sql_sha256, error, wall_s >= 0 AS timed "
                         "FROM meta.model_runs ORDER BY started")
    sha = hashlib.sha256(CLEAN.encode()).hexdigest()
    assert runs.select("model", "kind", "rows", "status").rows() == [
        ("clean.bars", "sql", 20, "ok"), ("features.range", "python", 20, "ok"), ("features.returns", "sql", 20, "ok")]
    assert runs["sql_sha256"][0] == sha and runs["sql_sha256"].str.len_chars().to_list() == [64] * 3
    assert runs["error"].null_count() == 3 and runs["timed"].all()
    stages = _q(warehouse, "SELECT stage, rows_in, rows_out, status FROM meta.stage_runs "
                           "WHERE stage LIKE 'build:%' ORDER BY started")
    assert stages.rows() == [("build:clean.bars", 0, 20, "ok"), ("build:features.range", 20, 20, "ok"),
                             ("build:features.returns", 0, 20, "ok")]


def test_rebuild_is_idempotent(warehouse, sql_root):
    _build(warehouse, sql_root)
    first = {t: _q(warehouse, f"SELECT * FROM {t} ORDER BY ALL") for t in ("clean.bars", "features.range", "features.returns")}
    second_result = _build(warehouse, sql_root, full_refresh=True)
    assert second_result.plan == list(first)
    for table, frame in first.items():
        assert _q(warehouse, f"SELECT * FROM {table} ORDER BY ALL").equals(frame)
    assert _q(warehouse, "SELECT count(*) AS n FROM meta.model_runs")["n"][0] == 6
    tables = _q(warehouse, "SELECT schema_name || '.' || table_name AS t FROM duckdb_tables() "
                           "WHERE schema_name IN ('clean', 'features') ORDER BY 1")["t"].to_list()
    assert tables == ["clean.bars", "features.range", "features.returns"]


def test_failing_sql_model_leaves_its_previous_table_intact(warehouse, sql_root):
    _build(warehouse, sql_root)
    before = _q(warehouse, "SELECT * FROM features.returns ORDER BY ALL")
    _write(sql_root, "features/returns.sql", "-- broken\nSELECT symbol, ts,\n  CAST('x' || symbol AS INTEGER) AS ret FROM clean.bars\n")
    with pytest.raises(ModelError, match=r"returns\.sql:3: model features\.returns failed to build: Conversion Error") as info:
        _build(warehouse, sql_root)
    assert info.value.table == "features.returns"
    assert _q(warehouse, "SELECT * FROM features.returns ORDER BY ALL").equals(before)
    last = _q(warehouse, "SELECT model, status, rows, error FROM meta.model_runs ORDER BY started DESC LIMIT 1").row(0)
    assert last[:3] == ("features.returns", "failed", 0) and "Conversion Error" in last[3]
    failed = _q(warehouse, "SELECT status FROM meta.stage_runs WHERE stage = 'build:features.returns' ORDER BY started")
    assert failed["status"].to_list() == ["ok", "failed"]


def test_binder_error_names_the_line_in_the_model_file(warehouse, sql_root):
    _write(sql_root, "features/returns.sql", "-- grain\nSELECT symbol,\n  no_such_column\nFROM clean.bars\n")
    with pytest.raises(ModelError, match=r"returns\.sql:3: model features\.returns failed to build: Binder Error"):
        _build(warehouse, sql_root)


def test_failure_stops_the_build_after_recording(warehouse, sql_root):
    _write(sql_root, "clean/bars.sql", "SELECT CAST(symbol AS INTEGER) AS symbol FROM raw.bars")
    with pytest.raises(ModelError, match=r"clean\.bars failed"):
        _build(warehouse, sql_root)
    runs = _q(warehouse, "SELECT model, status FROM meta.model_runs")
    assert runs.rows() == [("clean.bars", "failed")]
    assert _q(warehouse, "SELECT count(*) AS n FROM duckdb_tables() WHERE schema_name IN ('clean', 'features')")["n"][0] == 0


def test_failing_python_model_keeps_the_previous_table(warehouse, sql_root):
    _build(warehouse, sql_root)
    with catalog.connect(warehouse) as con:
        con.execute("CREATE TABLE features.broken AS SELECT 1 AS kept")
    with pytest.raises(ModelError, match=r"test_build\.py:\d+: model features\.broken failed to build: "
                                         r"ValueError: no range today"):
        _build(warehouse, sql_root, python=[features__broken], select="features.broken")
    assert _q(warehouse, "SELECT kept FROM features.broken")["kept"].to_list() == [1]
    with pytest.raises(ModelError, match="must return a Polars LazyFrame or DataFrame, got int"):
        _build(warehouse, sql_root, python=[features__wrong_type], select="features.wrong_type")


@pytest.mark.parametrize(("select", "plan"), [
    ("features.returns", ["features.returns"]),
    ("clean.bars+", ["clean.bars", "features.range", "features.returns"]),
    ("+features.returns", ["clean.bars", "features.returns"]),
    ("raw.bars+", ["clean.bars", "features.range", "features.returns"]),
    (["features.range", "features.returns"], ["features.range", "features.returns"]),
    ("features.*", ["features.range", "features.returns"]),
])
def test_select_builds_a_subset_in_order(warehouse, sql_root, select, plan):
    _build(warehouse, sql_root, select="clean.bars")  # inputs exist for single-model selections
    result = _build(warehouse, sql_root, select=select)
    assert result.plan == plan
    assert [r.model for r in result.runs] == plan


def test_select_errors(warehouse, sql_root):
    with pytest.raises(ModelError, match="matches no model"):
        _build(warehouse, sql_root, select="features.nope")
    with pytest.raises(ModelError, match="selects only sources"):
        _build(warehouse, sql_root, select="raw.bars")


def test_unknown_table_fails_before_anything_is_built(warehouse, sql_root):
    _write(sql_root, "features/other.sql", "SELECT * FROM clean.barz")
    with pytest.raises(ModelError, match=r"other\.sql: features\.other reads unknown table clean\.barz"):
        _build(warehouse, sql_root)
    assert _q(warehouse, "SELECT count(*) AS n FROM meta.model_runs")["n"][0] == 0


def test_cycle_fails_before_anything_is_built(warehouse, sql_root):
    _write(sql_root, "clean/bars.sql", "SELECT * FROM features.returns")
    with pytest.raises(ModelError, match=r"cycle in the model graph: clean\.bars -> features\.returns -> clean\.bars"):
        _build(warehouse, sql_root, python=[])


def test_busy_warehouse_is_refused(warehouse, sql_root):
    with write_lock(warehouse), pytest.raises(WarehouseBusyError):
        _build(warehouse, sql_root)


def test_no_models_is_an_empty_build(warehouse, tmp_path):
    result = build(warehouse, sql_root=tmp_path / "empty", python=[])
    assert result.plan == [] and result.runs == []
