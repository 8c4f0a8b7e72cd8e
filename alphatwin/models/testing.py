"""Unit tests for SQL models: tiny input rows in, expected output rows out (dbt's given/expect).

A case lives at ``tests/sql/<schema>/<table>.<case>.toml`` (or ``.json``, same structure) and
tests the model ``sql/<schema>/<table>.sql``::

    description = "the first bar of a symbol has no return"

    [given."clean.bars"]                       # one section per table the model reads
    columns = { ts = "TIMESTAMPTZ" }           # optional DuckDB types; the others are inferred
    rows = [
      { symbol = "A", ts = 2024-01-02T00:00:00Z, close = 100.0 },
      { symbol = "A", ts = 2024-01-03T00:00:00Z, close = 110.0 },
    ]

    [expect]
    ordered = false                            # default: rows compared in any order
    columns = ["symbol", "ts", "ret"]          # optional: needed when a column is NULL in every row
    rows = [
      { symbol = "A", ts = 2024-01-02T00:00:00Z },              # a missing key is NULL
      { symbol = "A", ts = 2024-01-03T00:00:00Z, ret = 0.1 },
    ]

:func:`run_case` creates the given tables in an in-memory DuckDB (``TimeZone`` UTC), runs the
model's query and compares: the same column names (in any order), the same number of rows, and
each value equal, floats within 1e-9 (absolute or relative; NaN equals NaN). Every table the
model reads must be given, and every given table must be read. Values are inferred as BOOLEAN,
BIGINT, DOUBLE, VARCHAR, DATE, TIME, TIMESTAMP (naive) or TIMESTAMPTZ (with an offset); declare
the type of anything else, of an all-NULL column, or of a table with no rows. JSON has no
dates: declare the column's type and write ISO strings (expected strings are parsed to match).
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import math
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alphatwin.errors import ModelError
from alphatwin.models.parse import parse_sql_file

__all__ = ["GivenTable", "ModelCase", "find_cases", "load_case", "run_case", "compare", "same_row", "same_value",
           "TOLERANCE"]

TOLERANCE = 1e-9
_SUFFIXES = (".toml", ".json")


@dataclass(frozen=True)
class GivenTable:
    """One input table: ``(column, DuckDB type)`` pairs and rows in that column order."""

    name: str
    columns: tuple[tuple[str, str], ...]
    rows: tuple[tuple[Any, ...], ...]


@dataclass(frozen=True)
class ModelCase:
    """One test case of one SQL model (see the module docstring for the file format)."""

    path: Path
    model: str
    name: str
    description: str
    given: tuple[GivenTable, ...]
    expect_columns: tuple[str, ...] | None
    expect_rows: tuple[dict[str, Any], ...]
    ordered: bool = False

    @property
    def id(self) -> str:
        """``schema.table:case``, for test ids."""
        return f"{self.model}:{self.name}"


def find_cases(root: Path) -> list[Path]:
    """Every case file under ``root`` (``<root>/<schema>/<table>[.<case>].toml|json``), sorted."""
    if not root.is_dir():
        return []
    return sorted(p for p in root.glob("*/*") if p.is_file() and p.suffix in _SUFFIXES)


def load_case(path: Path) -> ModelCase:
    """Read the case file at ``path``.

    Raises
    ------
    ModelError
        Naming the file, when it cannot be read or does not follow the format.
    """
    doc = _read(path)
    table, _, name = path.name.removesuffix(path.suffix).partition(".")
    model = f"{path.parent.name}.{table}"
    unknown = set(doc) - {"description", "given", "expect"}
    if unknown or not isinstance(doc.get("given"), dict) or not isinstance(doc.get("expect"), dict):
        raise ModelError("a model test case has `given` tables, an `expect` table and optionally a "
                         f"`description`{'; unknown: ' + ', '.join(sorted(unknown)) if unknown else ''}",
                         path=str(path), table=model)
    given = tuple(_given(path, tname.lower(), spec) for tname, spec in sorted(doc["given"].items()))
    expect = doc["expect"]
    rows = expect.get("rows")
    columns = expect.get("columns")
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise ModelError("`expect.rows` must be a list of rows (tables of column = value)", path=str(path), table=model)
    if columns is not None and (not isinstance(columns, list) or not all(isinstance(c, str) for c in columns)):
        raise ModelError("`expect.columns` must be a list of column names", path=str(path), table=model)
    return ModelCase(path=path, model=model, name=name or "default", description=str(doc.get("description", "")),
                     given=given, expect_columns=tuple(columns) if columns is not None else None,
                     expect_rows=tuple(rows), ordered=bool(expect.get("ordered", False)))


def _read(path: Path) -> dict[str, Any]:
    try:
        if path.suffix == ".json":
            doc = json.loads(path.read_text(encoding="utf-8"))
        else:
            with path.open("rb") as fh:
                doc = tomllib.load(fh)
    except OSError as exc:
        raise ModelError(f"cannot read model test case: {exc.strerror}", path=str(path)) from None
    except (tomllib.TOMLDecodeError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelError(f"invalid {path.suffix[1:].upper()}: {exc}", path=str(path)) from None
    if not isinstance(doc, dict):
        raise ModelError("a model test case is a table (TOML) or an object (JSON)", path=str(path))
    return doc


def _given(path: Path, table: str, spec: Any) -> GivenTable:
    where = f"`given.{table}`"
    if "." not in table:
        raise ModelError(f"{where}: name the table as schema.table (quote it: [given.\"raw.bars\"])",
                         path=str(path), table=table)
    if not isinstance(spec, dict) or not isinstance(spec.get("rows"), list) or set(spec) - {"rows", "columns"}:
        raise ModelError(f"{where} must hold `rows` (a list of rows) and optionally `columns` (name = type)",
                         path=str(path), table=table)
    declared = spec.get("columns", {})
    if not isinstance(declared, dict) or not all(isinstance(t, str) for t in declared.values()):
        raise ModelError(f"{where}.columns must map column names to DuckDB types", path=str(path), table=table)
    rows: list[dict[str, Any]] = spec["rows"]
    if not all(isinstance(r, dict) for r in rows):
        raise ModelError(f"{where}.rows must be rows (tables of column = value)", path=str(path), table=table)
    names = list(declared)
    for row in rows:
        names += [c for c in row if c not in names]
    columns = tuple((c, declared.get(c) or _infer(path, table, c, [r.get(c) for r in rows])) for c in names)
    return GivenTable(table, columns, tuple(tuple(r.get(c) for c in names) for r in rows))


def _infer(path: Path, table: str, column: str, values: list[Any]) -> str:
    kinds = {_duck_type(v) for v in values if v is not None}
    if kinds == {"BIGINT", "DOUBLE"}:
        return "DOUBLE"
    kind = kinds.pop() if len(kinds) == 1 else None
    if kind is None:
        found = ", ".join(sorted({type(v).__name__ for v in values if v is not None})) or "only NULLs"
        raise ModelError(f"`given.{table}`: cannot infer the type of column {column!r} ({found}); "
                         f"declare it: columns = {{ {column} = \"DOUBLE\" }}", path=str(path), table=table)
    return kind


def _duck_type(value: Any) -> str | None:
    if isinstance(value, bool):
        return "BOOLEAN"
    if isinstance(value, int):
        return "BIGINT"
    if isinstance(value, float):
        return "DOUBLE"
    if isinstance(value, str):
        return "VARCHAR"
    if isinstance(value, dt.datetime):
        return "TIMESTAMPTZ" if value.tzinfo is not None else "TIMESTAMP"
    if isinstance(value, dt.date):
        return "DATE"
    if isinstance(value, dt.time):
        return "TIME"
    return None


def run_case(case: ModelCase, *, sql_root: Path) -> list[str]:
    """Run ``case`` against its model under ``sql_root``; the differences found ([] = pass).

    Raises
    ------
    ModelError
        When the model file is missing or invalid, the given tables do not match the tables it
        reads, or the query fails.
    """
    import duckdb

    schema, table = case.model.split(".", 1)
    sql_path = sql_root / schema / f"{table}.sql"
    if not sql_path.is_file():
        raise ModelError(f"no model {case.model} for this test case (expected {sql_path})", path=str(case.path))
    query = parse_sql_file(sql_path, table=case.model)
    given = {g.name for g in case.given}
    missing, unused = sorted(query.depends_on - given), sorted(given - query.depends_on)
    if missing or unused:
        detail = "; ".join(filter(None, [missing and f"not given: {', '.join(missing)}",
                                         unused and f"given but not read: {', '.join(unused)}"]))
        raise ModelError(f"the given tables must be exactly those {case.model} reads ({detail})",
                         path=str(case.path), table=case.model)
    con = duckdb.connect(":memory:")
    try:
        con.execute("SET TimeZone = 'UTC'")
        for g in case.given:
            _create(con, g, case.path)
        try:
            cursor = con.execute(query.sql)
            columns = [d[0] for d in cursor.description]
            rows = [dict(zip(columns, r, strict=True)) for r in cursor.fetchall()]
        except duckdb.Error as exc:
            raise ModelError(f"{case.id}: the model's query failed: {str(exc).splitlines()[0]}",
                             path=str(sql_path), table=case.model) from None
    finally:
        con.close()
    return compare(case, columns, rows)


def _create(con: Any, g: GivenTable, path: Path) -> None:
    import duckdb

    schema, table = g.name.split(".", 1)
    cols = ", ".join(f'"{c}" {t}' for c, t in g.columns)
    try:
        con.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        con.execute(f'CREATE TABLE "{schema}"."{table}" ({cols})')
        if g.rows:
            marks = ", ".join("?" for _ in g.columns)
            con.executemany(f'INSERT INTO "{schema}"."{table}" VALUES ({marks})', [list(r) for r in g.rows])
    except duckdb.Error as exc:
        raise ModelError(f"cannot create given table {g.name}: {str(exc).splitlines()[0]}",
                         path=str(path), table=g.name) from None


def compare(case: ModelCase, columns: list[str], rows: list[dict[str, Any]]) -> list[str]:
    """The differences between ``case``'s expected rows and the actual ``columns``/``rows``."""
    wanted = list(case.expect_columns or [])
    for row in case.expect_rows:
        wanted += [c for c in row if c not in wanted]
    problems: list[str] = []
    if (wanted or case.expect_columns is not None) and sorted(wanted) != sorted(columns):
        problems.append(f"columns differ: expected {sorted(wanted)}, got {sorted(columns)}")
        return problems
    if len(rows) != len(case.expect_rows):
        problems.append(f"expected {len(case.expect_rows)} row(s), got {len(rows)}")
    expected = [{c: row.get(c) for c in columns} for row in case.expect_rows]
    if case.ordered:
        for i, (want, got) in enumerate(zip(expected, rows, strict=False), start=1):
            if not same_row(want, got):
                problems.append(f"row {i}: expected {_show(want)}, got {_show(got)}")
        return problems
    left = list(rows)
    for want in expected:
        hit = next((i for i, got in enumerate(left) if same_row(want, got)), None)
        if hit is None:
            problems.append(f"expected row not found: {_show(want)}")
        else:
            left.pop(hit)
    problems += [f"unexpected row: {_show(got)}" for got in left]
    return problems


def same_row(expected: dict[str, Any], actual: dict[str, Any]) -> bool:
    """Whether every column of ``actual`` equals ``expected`` (see :func:`same_value`)."""
    return all(same_value(expected.get(c), v) for c, v in actual.items())


def same_value(expected: Any, actual: Any) -> bool:
    """Equality for test values: floats within :data:`TOLERANCE`, NaN == NaN, ISO strings vs dates.

    Examples
    --------
    >>> same_value(0.1 + 0.2, 0.3), same_value(1, 1.0), same_value(None, 0)
    (True, True, False)
    """
    if expected is None or actual is None:
        return expected is None and actual is None
    if isinstance(expected, bool) or isinstance(actual, bool):
        return type(expected) is type(actual) and expected == actual
    numbers = (int, float, decimal.Decimal)
    if isinstance(expected, numbers) and isinstance(actual, numbers):
        e, a = float(expected), float(actual)
        if math.isnan(e) or math.isnan(a):
            return math.isnan(e) and math.isnan(a)
        return math.isclose(e, a, rel_tol=TOLERANCE, abs_tol=TOLERANCE)
    if isinstance(expected, str) and isinstance(actual, dt.datetime | dt.date | dt.time):
        try:
            expected = type(actual).fromisoformat(expected.replace("Z", "+00:00"))
        except ValueError:
            return False
    if isinstance(expected, list) and isinstance(actual, list | tuple):
        return len(expected) == len(actual) and all(same_value(e, a) for e, a in zip(expected, actual, strict=True))
    if isinstance(expected, dict) and isinstance(actual, dict):
        return expected.keys() == actual.keys() and all(same_value(expected[k], actual[k]) for k in actual)
    try:
        return bool(expected == actual)
    except TypeError:  # naive vs aware datetimes
        return False


def _show(row: dict[str, Any]) -> str:
    return "{" + ", ".join(f"{k}: {v!r}" for k, v in row.items()) + "}"
