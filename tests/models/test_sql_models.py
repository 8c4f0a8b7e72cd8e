"""The one collector of SQL model tests: every ``tests/sql/<schema>/<table>.<case>.toml|json``.

Each case runs its model (``sql/<schema>/<table>.sql``) on the given rows in an in-memory DuckDB
and compares the expected rows (format: :mod:`alphatwin.models.testing`). The example model and
cases under ``tests/models/fixtures/`` run through the same collector; the tests below them
check that the collector itself can fail.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from alphatwin.errors import ModelError
from alphatwin.models.testing import find_cases, load_case, run_case

HERE = Path(__file__).parent
REPO = HERE.parents[1]
SUITES = [
    (REPO / "tests" / "sql", REPO / "sql"),  # the real models and their cases
    (HERE / "fixtures" / "cases", HERE / "fixtures" / "sql"),  # the documented example
]
CASES = [(path, sql_root, cases_root) for cases_root, sql_root in SUITES for path in find_cases(cases_root)]


@pytest.mark.parametrize(("case_path", "sql_root", "cases_root"), CASES,
                         ids=[p.relative_to(root).as_posix() for p, _, root in CASES])
def test_sql_model_case(case_path, sql_root, cases_root):
    case = load_case(case_path)
    problems = run_case(case, sql_root=sql_root)
    assert not problems, f"{case.path}: {case.id} ({case.description})\n  " + "\n  ".join(problems)


def test_the_example_cases_are_collected():
    ids = {load_case(p).id for p, _, _ in CASES}
    assert {"features.returns:basic", "features.returns:json_format"} <= ids


# -- the collector can fail -------------------------------------------------------------------

MODEL = "-- one row per symbol\nSELECT symbol, sum(qty) AS qty, avg(px) AS px FROM raw.fills GROUP BY symbol ORDER BY symbol\n"
GIVEN = """
[given."raw.fills"]
rows = [
  { symbol = "A", qty = 1, px = 0.1 },
  { symbol = "A", qty = 2, px = 0.2 },
  { symbol = "B", qty = 5, px = 1.0 },
]
"""


def _case(tmp_path: Path, text: str, *, model: str = MODEL, name: str = "x.toml") -> tuple[Path, Path]:
    sql_root, cases = tmp_path / "sql", tmp_path / "cases"
    (sql_root / "toy").mkdir(parents=True, exist_ok=True)
    (sql_root / "toy" / "fills.sql").write_text(model)
    (cases / "toy").mkdir(parents=True, exist_ok=True)
    path = cases / "toy" / f"fills.{name}"
    path.write_text(text)
    return path, sql_root


def _run(tmp_path: Path, text: str, **kwargs) -> list[str]:
    path, sql_root = _case(tmp_path, text, **kwargs)
    return run_case(load_case(path), sql_root=sql_root)


def test_passing_case_with_float_tolerance(tmp_path):
    text = GIVEN + '[expect]\nrows = [ { symbol = "B", qty = 5, px = 1.0 }, { symbol = "A", qty = 3, px = 0.15000000001 } ]\n'
    assert _run(tmp_path, text) == []


def test_wrong_value_beyond_tolerance_is_reported(tmp_path):
    text = GIVEN + '[expect]\nrows = [ { symbol = "A", qty = 3, px = 0.1500001 }, { symbol = "B", qty = 5, px = 1.0 } ]\n'
    problems = _run(tmp_path, text)
    assert problems == ["expected row not found: {symbol: 'A', qty: 3, px: 0.1500001}",
                        "unexpected row: {symbol: 'A', qty: 3, px: 0.15000000000000002}"]


def test_missing_and_extra_rows_and_columns_are_reported(tmp_path):
    text = GIVEN + '[expect]\nrows = [ { symbol = "A", qty = 3, px = 0.15 } ]\n'
    assert _run(tmp_path, text) == ["expected 1 row(s), got 2", "unexpected row: {symbol: 'B', qty: 5, px: 1.0}"]
    text = GIVEN + '[expect]\nrows = [ { symbol = "A", qty = 3 } ]\n'
    assert _run(tmp_path, text) == ["columns differ: expected ['qty', 'symbol'], got ['px', 'qty', 'symbol']"]


def test_ordered_comparison(tmp_path):
    rows = '{ symbol = "B", qty = 5, px = 1.0 }, { symbol = "A", qty = 3, px = 0.15 }'
    assert _run(tmp_path, GIVEN + f"[expect]\nrows = [ {rows} ]\n") == []
    problems = _run(tmp_path, GIVEN + f"[expect]\nordered = true\nrows = [ {rows} ]\n")
    assert problems[0].startswith("row 1: expected {symbol: 'B'")


def test_given_tables_must_match_the_tables_read(tmp_path):
    text = GIVEN + '[given."raw.extra"]\nrows = [ { x = 1 } ]\n[expect]\nrows = []\n'
    with pytest.raises(ModelError, match=r"given but not read: raw\.extra"):
        _run(tmp_path, text)
    with pytest.raises(ModelError, match=r"not given: raw\.fills"):
        _run(tmp_path, '[given."raw.other"]\nrows = [ { x = 1 } ]\n[expect]\nrows = []\n')


def test_types_must_be_declared_when_they_cannot_be_inferred(tmp_path):
    text = '[given."raw.fills"]\nrows = []\n[expect]\nrows = []\n'
    with pytest.raises(ModelError, match=r"cannot create given table raw\.fills"):
        _run(tmp_path, text)
    text = '[given."raw.fills"]\nrows = [ { symbol = "A", qty = 1 } ]\n[expect]\nrows = []\n'
    with pytest.raises(ModelError, match=r"the model's query failed: Binder Error"):
        _run(tmp_path, text)
    text = '[given."raw.fills"]\nrows = [ { symbol = "A", qty = 1 }, { symbol = "B", qty = "two" } ]\n[expect]\nrows = []\n'
    with pytest.raises(ModelError, match=r"cannot infer the type of column 'qty' \(int, str\)"):
        _run(tmp_path, text)


def test_declared_types_and_empty_inputs(tmp_path):
    text = ('[given."raw.fills"]\ncolumns = { symbol = "VARCHAR", qty = "INTEGER", px = "DOUBLE" }\nrows = []\n'
            '[expect]\ncolumns = ["symbol", "qty", "px"]\nrows = []\n')
    assert _run(tmp_path, text) == []


@pytest.mark.parametrize(("text", "needle"), [
    ("given = 1\n", "has `given` tables, an `expect` table"),
    ('[given."raw.fills"]\nrows = []\n[expect]\nrows = []\n[extra]\n', "unknown: extra"),
    ("[given.fills]\nrows = []\n[expect]\nrows = []\n", "name the table as schema.table"),
    ('[given."raw.fills"]\nrows = 3\n[expect]\nrows = []\n', "must hold `rows`"),
    ('[given."raw.fills"]\nrows = []\n[expect]\nrows = 1\n', "`expect.rows` must be a list"),
    ("not = [toml\n", "invalid TOML"),
])
def test_bad_case_files_name_the_file(tmp_path, text, needle):
    path, _ = _case(tmp_path, text)
    with pytest.raises(ModelError, match=needle) as info:
        load_case(path)
    assert str(path) in str(info.value)


def test_missing_model_file(tmp_path):
    path, _ = _case(tmp_path, GIVEN + "[expect]\nrows = []\n")
    with pytest.raises(ModelError, match=r"no model toy\.fills for this test case"):
        run_case(load_case(path), sql_root=tmp_path / "elsewhere")


def test_find_cases_only_takes_schema_folders(tmp_path):
    path, _ = _case(tmp_path, GIVEN + "[expect]\nrows = []\n", name="a.toml")
    (tmp_path / "cases" / "README.md").write_text("x")
    (tmp_path / "cases" / "toy" / "notes.txt").write_text("x")
    assert find_cases(tmp_path / "cases") == [path]
    assert load_case(path).id == "toy.fills:a"
    assert find_cases(tmp_path / "nope") == []
