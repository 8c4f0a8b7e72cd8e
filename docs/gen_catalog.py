"""Regenerate docs/catalog.md: one section per table of the model DAG, from the real code.

The models come from the registry (``sql/`` and the ``@model`` functions of
``alphatwin.transforms``), their grain from the SQL file's top comment or the Python model's
docstring, their lineage from the parsed DAG. The columns are what DuckDB says: the script
ingests a tiny deterministic synthetic market into a temporary warehouse, builds every model
and DESCRIBEs each table, the sources the models read included (``raw.*``, ``meta.*``,
``quality.*``; a source that is a view adds the tables its SQL reads).

Run ``make catalog-docs``; ``--check`` exits 1 when the page is stale (tests/test_docs.py).
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

from alphatwin.models.dag import DAG
from alphatwin.models.registry import Model, Registry, discover

ROOT = Path(__file__).resolve().parent.parent
PAGE = Path(__file__).with_name("catalog.md")
KIND = {"sql": "SQL model", "python": "Python model", "source": "source"}


def _warehouse_schema(registry: Registry) -> tuple[dict[str, list[tuple[str, str]]], dict[str, str], dict[str, str]]:
    """Columns (name, DuckDB type) and relation type (table or view) of every model and source,
    and the SQL of the source views, from a warehouse built on a tiny synthetic market."""
    from alphatwin.lake import catalog
    from alphatwin.lake.ingest import ingest
    from alphatwin.models.build import build
    from alphatwin.paths import WarehousePaths
    from alphatwin.quality.gate import QualityGate
    from alphatwin.sources.base import FetchRequest
    from alphatwin.sources.synthetic import SyntheticSource

    with tempfile.TemporaryDirectory(prefix="alphatwin-catalog-") as tmp:
        paths = WarehousePaths(Path(tmp) / "wh")
        request = FetchRequest()
        ingest(SyntheticSource(n_symbols=2, n_bars=30, seed=1), request, paths,
               gate=QualityGate(paths, request), command="docs catalog")
        build(paths, sql_root=ROOT / "sql", python=None)
        with catalog.connect(paths, read_only=True) as con:
            kinds = {f"{s}.{t}": ("view" if kind == "VIEW" else "table") for s, t, kind in con.execute(
                "SELECT table_schema, table_name, table_type FROM information_schema.tables").fetchall()}
            views = {f"{s}.{v}": sql for s, v, sql in con.execute(
                "SELECT schema_name, view_name, sql FROM duckdb_views() WHERE NOT internal").fetchall()}
            columns: dict[str, list[tuple[str, str]]] = {}
            for name in sorted(kinds):
                columns[name] = [(row[0], row[1]) for row in con.execute(f"DESCRIBE {name}").fetchall()]
    return columns, kinds, views


def _view_reads(sql: str) -> set[str]:
    """The ``schema.table`` names a ``CREATE VIEW`` statement's query reads (table functions such as
    ``read_parquet`` excluded: ``raw.bars`` reads the lake's files, not a table)."""
    import sqlglot
    from sqlglot import exp

    from alphatwin.models.parse import table_references

    tree = sqlglot.parse_one(sql, read="duckdb")
    query = tree.expression if isinstance(tree, exp.Create) else tree
    return table_references(query)


def _graph(registry: Registry, views: dict[str, str]) -> dict[str, set[str]]:
    """Models and their sources, plus what each source view reads, down to the base tables."""
    graph = {name: set(m.depends_on) for name, m in registry.models.items()}
    todo = sorted(registry.sources())
    while todo:
        node = todo.pop()
        if node in graph:
            continue
        graph[node] = _view_reads(views[node]) if node in views else set()
        todo += sorted(graph[node] - set(graph))
    return graph


def _anchor(name: str) -> str:
    return name.replace(".", "-")


def _link(name: str) -> str:
    return f"[`{name}`](#{_anchor(name)})"


def _links(names: set[str]) -> str:
    return ", ".join(_link(n) for n in sorted(names)) or "none"


def _defined_in(name: str) -> tuple[str | None, dict[str, str]]:
    """The module of ``alphatwin/`` whose DDL creates the source table or view ``name``, and the
    comments of the DDL's column lines (``status VARCHAR NOT NULL, -- running | committed``)."""
    schema, table = name.split(".")
    ddl = re.compile(rf"CREATE (?:OR REPLACE )?(?:TABLE|VIEW) (?:IF NOT EXISTS )?{schema}\.{table}\b")
    for path in sorted((ROOT / "alphatwin").rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        match = ddl.search(text)
        if match is None:
            continue
        notes: dict[str, str] = {}
        for line in text[match.end():].splitlines()[1:]:
            if line.strip().startswith(")"):
                break
            column = re.match(r'\s*"?(\w+)"?\s+[A-Z].*?--\s*(.+)$', line)
            if column:
                notes[column.group(1)] = column.group(2).strip()
        return path.relative_to(ROOT).as_posix(), notes
    return None, {}


def _rst_to_md(text: str) -> str:
    """``code`` -> `code` and :role:`x` -> `x` (docstrings are reST, the page is Markdown)."""
    text = re.sub(r":\w+:`~?([^`]+)`", r"`\1`", text)
    return re.sub(r"``([^`]+)``", r"`\1`", text)


def _grain(m: Model | None) -> str:
    if m is None:
        return ""
    if m.kind == "python":
        import inspect

        return _rst_to_md(inspect.getdoc(m.func) or "")
    return m.description


def _summary(name: str, m: Model | None) -> str:
    """The grain's first sentence, on one line (the index table); where a source comes from."""
    if m is None:
        where, _ = _defined_in(name)
        return f"created by `{where}`" if where else ""
    text = " ".join(_grain(m).split())
    match = re.match(r"(.+?[.;])(\s|$)", text)
    return (match.group(1) if match else text).rstrip(";").replace("|", "\\|")


def _section(name: str, m: Model | None, kind: str, up: set[str], down: set[str],
             columns: list[tuple[str, str]], view_sql: str | None) -> list[str]:
    relation = "view" if kind == "view" else "table"
    notes: dict[str, str] = {}
    if m is None:
        where, notes = _defined_in(name)
        what = f"Source {relation}" + (f", created by `{where}`" if where else "") + "."
        if view_sql is not None and "read_parquet" in view_sql.lower():
            what += " It reads the lake's Parquet files (`read_parquet`), re-pointed at every committed ingest."
    elif m.kind == "sql":
        what = f"SQL model `{m.path.relative_to(ROOT).as_posix()}`, materialized as a {relation}."
    else:
        module = m.func.__module__
        what = f"Python model `{module}.{m.func.__name__}` (`{Path(*module.split('.')).as_posix()}.py`), " \
               f"materialized as a {relation}"
        details = [f"built by `{m.partition_by}` range" if m.partition_by else "",
                   "incremental" if m.updater is not None else ""]
        what += "".join(f"; {d}" for d in details if d) + "."
    lines = [f"### `{name}` {{#{_anchor(name)}}}", "", what, ""]
    if m is not None:
        lines += [_grain(m), ""]
    lines += [f"**Upstream:** {_links(up)}  ", f"**Downstream:** {_links(down)}", ""]
    virtual = dict(m.virtual) if m is not None else {}
    notes.update({col: f"virtual: `{expr}`" for col, expr in virtual.items()})
    if notes:
        lines += ["| column | type | note |", "|---|---|---|"]
        lines += [f"| `{col}` | `{typ}` | {notes.get(col, '').replace('|', chr(92) + '|')} |" for col, typ in columns]
    else:
        lines += ["| column | type |", "|---|---|"]
        lines += [f"| `{col}` | `{typ}` |" for col, typ in columns]
    lines.append("")
    if m is not None and m.kind == "sql":
        lines += ["```sql", m.path.read_text(encoding="utf-8").rstrip(), "```", ""]
    return lines


def render() -> str:
    os.environ.pop("ALPHATWIN_PYTHON_MODELS", None)
    registry = discover(ROOT / "sql")
    columns, kinds, views = _warehouse_schema(registry)
    graph = _graph(registry, views)
    dag = DAG(graph)
    order = dag.sorted()
    models = [n for n in order if n in registry]
    sources = [n for n in order if n not in registry]
    lines = [
        "# Model catalog", "",
        "Every table of the model DAG: the models (`sql/<schema>/<table>.sql` and the `@model`",
        "functions of `alphatwin/transforms/`, see [Models and features](models.md)) in build order,",
        "then the sources they read (written by the lake and the quality gate). For each: what one",
        "row is, its columns with their DuckDB types, its definition, and the tables it reads and",
        "that read it.", "",
        "Generated by `docs/gen_catalog.py` (`make catalog-docs`) from the model registry and a",
        "warehouse it builds on a tiny synthetic market, so the columns are what DuckDB reports;",
        "a test fails when this page is stale.", "",
        "| table | kind | one row is / comes from |", "|---|---|---|",
    ]
    for name in [*models, *sources]:
        m = registry.models.get(name)
        kind = KIND[m.kind if m is not None else "source"] + f" ({kinds[name]})"
        lines.append(f"| {_link(name)} | {kind} | {_summary(name, m)} |")
    lines.append("")
    for title, names in (("Models", models), ("Sources", sources)):
        lines += [f"## {title}", ""]
        for name in names:
            lines += _section(name, registry.models.get(name), kinds[name], dag.upstream(name),
                              dag.downstream(name), columns[name], views.get(name))
    return "\n".join(lines).rstrip() + "\n"


if __name__ == "__main__":
    new = render()
    if "--check" in sys.argv:
        stale = not PAGE.exists() or new != PAGE.read_text()
        if stale:
            print("docs/catalog.md is stale: run `make catalog-docs`")
        sys.exit(1 if stale else 0)
    PAGE.write_text(new)
