"""Parsing SQL model files and discovering models: dependencies, errors that name file and line."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from alphatwin.errors import ModelError
from alphatwin.models.parse import parse_sql, parse_sql_file, top_comment
from alphatwin.models.registry import discover, model, python_model, sql_models


def _write(root: Path, rel: str, text: str) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_dependencies_are_qualified_tables_minus_ctes():
    q = parse_sql(
        "WITH bars AS (SELECT * FROM clean.bars), r AS (SELECT * FROM bars JOIN features.range USING (symbol))\n"
        "SELECT * FROM r WHERE symbol IN (SELECT symbol FROM meta.datasets)"
    )
    assert q.depends_on == {"clean.bars", "features.range", "meta.datasets"}


def test_a_cte_named_like_a_real_table_does_not_hide_the_qualified_one():
    q = parse_sql("WITH bars AS (SELECT * FROM raw.bars) SELECT * FROM bars")
    assert q.depends_on == {"raw.bars"}


def test_table_functions_and_file_scans_are_ignored():
    q = parse_sql(
        "SELECT * FROM read_parquet('x/*.parquet') p, range(3) r, 'y.csv' c, generate_series(1, 2) g, raw.bars b"
    )
    assert q.depends_on == {"raw.bars"}


def test_names_are_lower_cased_and_duplicates_collapse():
    q = parse_sql('SELECT * FROM Clean.Bars a JOIN "clean"."bars" b USING (ts) UNION ALL SELECT * FROM CLEAN.BARS')
    assert q.depends_on == {"clean.bars"}


def test_duckdb_syntax_is_accepted():
    q = parse_sql("FROM quality.accepted_bars SELECT symbol, count(*) GROUP BY ALL QUALIFY row_number() OVER () = 1")
    assert q.depends_on == {"quality.accepted_bars"}


def test_syntax_error_names_file_and_line(tmp_path):
    path = _write(tmp_path, "sql/clean/bars.sql", "-- grain\nSELECT symbol,\n  FROM raw.bars\n  GROUP\n")
    with pytest.raises(ModelError) as info:
        parse_sql_file(path, table="clean.bars")
    assert str(info.value).startswith(f"{path}:4: SQL syntax error")
    assert info.value.line == 4 and info.value.path == str(path) and info.value.table == "clean.bars"


def test_unterminated_string_names_file_and_line():
    with pytest.raises(ModelError, match=r"^m\.sql:2: SQL syntax error: unterminated string"):
        parse_sql("SELECT 1,\n'abc FROM raw.bars", path="m.sql")


@pytest.mark.parametrize(("text", "needle"), [
    ("SELECT 1 FROM raw.bars; SELECT 2 FROM raw.bars", "one query per model file, got 2 statements"),
    ("CREATE TABLE clean.bars AS SELECT 1", "not a CREATE statement"),
    ("INSERT INTO clean.bars SELECT * FROM raw.bars", "not a INSERT statement"),
    ("DESCRIBE raw.bars", "sqlglot read DESCRIBE"),
    ("", "no query in the file"),
    ("-- only a comment\n", "no query in the file"),
])
def test_only_one_query_is_accepted(text, needle):
    with pytest.raises(ModelError, match=needle):
        parse_sql(text, path="sql/clean/bars.sql")


def test_unqualified_and_three_part_names_are_refused_with_line():
    with pytest.raises(ModelError, match=r"^m\.sql:3: unqualified table 'bars': write it as schema\.table"):
        parse_sql("SELECT *\n\nFROM bars", path="m.sql")
    with pytest.raises(ModelError, match="names a database"):
        parse_sql("SELECT * FROM wh.raw.bars", path="m.sql")


def test_trailing_semicolon_and_comments_are_cut_from_the_query():
    q = parse_sql("-- grain: one row per symbol\nSELECT 1 AS x FROM raw.bars; -- done\n")
    assert q.sql == "-- grain: one row per symbol\nSELECT 1 AS x FROM raw.bars"


def test_top_comment_is_the_description():
    assert top_comment("-- Grain: one row per (symbol, ts).\n--   From raw.bars.\n\nSELECT 1") == \
        "Grain: one row per (symbol, ts).\nFrom raw.bars."
    assert top_comment("/*\n * Daily returns.\n * From clean.bars.\n */\nSELECT 1") == "Daily returns.\nFrom clean.bars."
    assert top_comment("SELECT 1 -- not at the top") == ""


def test_sha256_changes_with_the_text():
    assert parse_sql("SELECT 1 FROM raw.bars").sha256 != parse_sql("SELECT 2 FROM raw.bars").sha256


# -- discovery --------------------------------------------------------------------------------


def test_sql_models_are_named_by_their_path(tmp_path):
    root = tmp_path / "sql"
    _write(root, "clean/bars.sql", "-- one row per bar\nSELECT * FROM raw.bars")
    _write(root, "features/returns.sql", "SELECT * FROM clean.bars")
    _write(root, ".ipynb_checkpoints/x.sql", "not sql at all")
    models = sql_models(root)
    assert [m.name for m in models] == ["clean.bars", "features.returns"]
    assert models[0].description == "one row per bar" and models[0].kind == "sql"
    assert models[1].depends_on == {"clean.bars"}


def test_missing_sql_root_holds_no_models(tmp_path):
    assert sql_models(tmp_path / "nope") == []


@pytest.mark.parametrize("rel", ["bars.sql", "clean/sub/bars.sql", "Clean/bars.sql", "clean/bars-v2.sql"])
def test_model_paths_must_be_schema_slash_table(tmp_path, rel):
    _write(tmp_path / "sql", rel, "SELECT 1")
    with pytest.raises(ModelError, match=r"<schema>/<table>\.sql"):
        sql_models(tmp_path / "sql")


def test_models_may_not_write_the_lake_schemas(tmp_path):
    _write(tmp_path / "sql", "raw/bars.sql", "SELECT 1")
    with pytest.raises(ModelError, match="schema 'raw' belongs to the lake"):
        sql_models(tmp_path / "sql")


def test_unknown_table_names_the_file_and_the_table(tmp_path):
    path = _write(tmp_path / "sql", "features/returns.sql", "SELECT * FROM clean.barz")
    registry = discover(tmp_path / "sql", python=[])
    with pytest.raises(ModelError) as info:
        registry.validate({"raw.bars"})
    assert str(info.value).startswith(f"{path}: features.returns reads unknown table clean.barz")
    assert info.value.table == "clean.barz"


def test_existing_warehouse_tables_and_models_are_valid_upstream(tmp_path):
    _write(tmp_path / "sql", "clean/bars.sql", "SELECT * FROM raw.bars JOIN quality.quarantine USING (symbol)")
    _write(tmp_path / "sql", "features/returns.sql", "SELECT * FROM clean.bars")
    registry = discover(tmp_path / "sql", python=[])
    registry.validate({"raw.bars", "quality.quarantine"})
    registry.validate(None)  # no warehouse yet: sources are not checked
    assert registry.sources() == {"raw.bars", "quality.quarantine"}


def test_cycle_between_files_is_printed(tmp_path):
    _write(tmp_path / "sql", "a/x.sql", "SELECT * FROM b.y")
    _write(tmp_path / "sql", "b/y.sql", "SELECT * FROM c.z")
    _write(tmp_path / "sql", "c/z.sql", "SELECT * FROM a.x")
    with pytest.raises(ModelError, match=r"cycle in the model graph: a\.x -> c\.z -> b\.y -> a\.x"):
        discover(tmp_path / "sql", python=[]).validate(set())


def test_a_model_reading_itself_is_a_cycle(tmp_path):
    _write(tmp_path / "sql", "a/x.sql", "SELECT * FROM a.x")
    with pytest.raises(ModelError, match=r"a\.x -> a\.x"):
        discover(tmp_path / "sql", python=[]).validate(set())


# -- Python models: the Hamilton rule ---------------------------------------------------------


@model
def features__spread(clean__bars: pl.LazyFrame, clean__quotes: pl.LazyFrame) -> pl.LazyFrame:
    """One row per (symbol, ts): high minus low.

    More text that is not part of the description.
    """
    return clean__bars


def test_python_model_name_and_parameters_name_tables():
    m = python_model(features__spread)
    assert (m.name, m.kind, m.inputs) == ("features.spread", "python", ("clean.bars", "clean.quotes"))
    assert m.description == "One row per (symbol, ts): high minus low."
    assert m.path == Path(__file__) and m.line is not None


def test_decorated_function_stays_a_plain_function():
    frame = pl.LazyFrame({"x": [1]})
    assert features__spread(frame, frame) is frame


def test_badly_named_python_models_fail_at_decoration_with_file_and_line():
    with pytest.raises(ModelError, match=r"test_parse\.py:\d+: Python model 'spread' must be named <schema>__<table>"):
        @model
        def spread(clean__bars: pl.LazyFrame) -> pl.LazyFrame:
            return clean__bars
    with pytest.raises(ModelError, match="parameter 'bars' of Python model features.spread2"):
        @model
        def features__spread2(bars: pl.LazyFrame) -> pl.LazyFrame:
            return bars
    with pytest.raises(ModelError, match="without a default"):
        @model
        def features__spread3(clean__bars: pl.LazyFrame | None = None) -> pl.LazyFrame:
            return clean__bars
    with pytest.raises(ModelError, match="belongs to the lake"):
        @model
        def raw__spread(clean__bars: pl.LazyFrame) -> pl.LazyFrame:
            return clean__bars


def test_python_models_are_collected_from_modules(tmp_path):
    import sys

    _write(tmp_path / "pkg", "toy_models.py", (
        "import polars as pl\nfrom alphatwin.models.registry import model\n\n"
        "@model\ndef features__one(raw__bars):\n    return raw__bars\n\n"
        "def features__not_marked(raw__bars):\n    return raw__bars\n"
    ))
    sys.path.insert(0, str(tmp_path / "pkg"))
    try:
        registry = discover(None, python=["toy_models"])
    finally:
        sys.path.remove(str(tmp_path / "pkg"))
        sys.modules.pop("toy_models", None)
    assert list(registry.models) == ["features.one"]


def test_sql_and_python_model_building_the_same_table_is_an_error(tmp_path):
    _write(tmp_path / "sql", "features/spread.sql", "SELECT * FROM clean.bars")
    with pytest.raises(ModelError, match=r"features\.spread is built by two models: .*spread\.sql and .*test_parse\.py"):
        discover(tmp_path / "sql", python=[features__spread])


def test_default_python_package_imports(tmp_path):
    registry = discover(tmp_path / "none")  # alphatwin.transforms: whatever it holds must import
    assert all(m.kind == "python" for m in registry.models.values())
