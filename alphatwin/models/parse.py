"""Read one SQL model file: its query, the tables it reads, and the comment at its top.

A model file holds exactly one query (``SELECT``, ``WITH ... SELECT``, a set operation or
DuckDB's ``FROM ... SELECT``) in the DuckDB dialect. Two parsers look at it:

1. DuckDB's own parser checks the syntax and counts the statements, so a syntax error is
   reported exactly as DuckDB would report it at build time, at ``path:line``.
2. sqlglot (dialect ``duckdb``) reads the table references. The dependencies are every
   ``schema.table`` reference minus the names of the query's CTEs; table functions
   (``read_parquet(...)``, ``range(...)``) and file scans (``FROM 'x.parquet'``) are ignored.
   An unqualified name that is not a CTE is refused (write ``schema.table``), and so is a
   three-part ``catalog.schema.table`` name: a model reads the warehouse it is built in.

Names are case-insensitive in DuckDB and are lower-cased here. The comment block at the top of
the file (``--`` lines or one ``/* ... */``) is the model's description: what one row is (the
grain) and where the data comes from.

Examples
--------
>>> q = parse_sql("-- one row per symbol\\nWITH b AS (SELECT * FROM raw.bars) SELECT * FROM b")
>>> sorted(q.depends_on), q.description
(['raw.bars'], 'one row per symbol')
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alphatwin.errors import ModelError

__all__ = ["ParsedQuery", "parse_sql", "parse_sql_file", "table_references", "top_comment"]

_DUCKDB_LINE = re.compile(r"\bLINE (\d+):")
_MATERIALIZED = re.compile(r"materialized:\s*(\S+)", re.IGNORECASE)
_SQLGLOT_TOKEN = re.compile(r"<Token token_type: [^,]+, text: (.*?), line: \d+, col: \d+.*?>")


@dataclass(frozen=True)
class ParsedQuery:
    """One parsed model query.

    Attributes
    ----------
    sql
        The query as written (comments kept), without the trailing semicolon.
    depends_on
        The ``schema.table`` names it reads, lower-cased.
    description
        The comment block at the top of the file ('' when there is none).
    sha256
        Hex SHA-256 of the file's text, recorded with every build of the model.
    materialized
        ``table`` (default) or ``view``: a ``materialized: view`` line in the top comment makes
        the model a view (nothing stored; filters of its readers reach its sources).
    """

    sql: str
    depends_on: frozenset[str]
    description: str
    sha256: str
    materialized: str = "table"


def parse_sql_file(path: Path, *, table: str | None = None) -> ParsedQuery:
    """Read and parse the model file at ``path`` (see :func:`parse_sql`).

    Raises
    ------
    ModelError
        If the file cannot be read or does not hold exactly one valid query.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise ModelError(f"cannot read SQL model: {reason}", path=str(path), table=table) from None
    return parse_sql(text, path=str(path), table=table)


def parse_sql(text: str, *, path: str = "<sql>", table: str | None = None) -> ParsedQuery:
    """Parse the text of one SQL model.

    Parameters
    ----------
    text
        The file's contents: one query in the DuckDB dialect.
    path, table
        Where the text comes from and the table it builds; both go into error messages.

    Raises
    ------
    ModelError
        On a syntax error (``path:line: SQL syntax error: ...``), when the text holds no query
        or more than one statement, when the statement is not a query, and on an unqualified
        or three-part table name.
    """
    _check_with_duckdb(text, path, table)
    tree = _sqlglot_tree(text, path, table)
    comment = top_comment(text)
    materialized = "table"
    kept: list[str] = []
    for line in comment.splitlines():
        match = _MATERIALIZED.fullmatch(line.strip())
        if match is None:
            kept.append(line)
        elif match.group(1).lower() in ("table", "view"):
            materialized = match.group(1).lower()
        else:
            raise ModelError(f"`materialized:` must be table or view, got {match.group(1)!r}", path=path, table=table)
    return ParsedQuery(
        sql=_statement_body(text),
        depends_on=frozenset(table_references(tree, path=path, table=table)),
        description="\n".join(kept).strip(),
        sha256=hashlib.sha256(text.encode("utf-8")).hexdigest(),
        materialized=materialized,
    )


def _check_with_duckdb(text: str, path: str, table: str | None) -> None:
    import duckdb

    try:
        statements = duckdb.extract_statements(text)
    except duckdb.Error as exc:
        message = str(exc)
        match = _DUCKDB_LINE.search(message)
        first = message.split("\n", 1)[0].removeprefix("Parser Error: ").strip()
        raise ModelError(f"SQL syntax error: {first}", path=path, table=table,
                         line=int(match.group(1)) if match else None) from None
    if not statements:
        raise ModelError("no query in the file; a model file holds one SELECT or WITH query",
                         path=path, table=table)
    if len(statements) > 1:
        raise ModelError(f"one query per model file, got {len(statements)} statements",
                         path=path, table=table)
    kind = statements[0].type.name
    if kind != "SELECT":
        raise ModelError(f"a model file holds one SELECT or WITH query, not a {kind} statement",
                         path=path, table=table)


def _sqlglot_tree(text: str, path: str, table: str | None) -> Any:
    import sqlglot
    from sqlglot import exp
    from sqlglot.errors import ParseError, TokenError

    logging.getLogger("sqlglot").setLevel(logging.ERROR)
    try:
        trees = [t for t in sqlglot.parse(text, read="duckdb")
                 if t is not None and not isinstance(t, exp.Semicolon)]
    except ParseError as exc:
        first = exc.errors[0] if exc.errors else {}
        description = _SQLGLOT_TOKEN.sub(r"'\1'", str(first.get("description", exc)))
        raise ModelError(f"sqlglot cannot read this query (column {first.get('col', '?')}: {description}), "
                         "so the tables it reads are unknown; DuckDB parses it: rewrite the construct",
                         path=path, table=table, line=first.get("line")) from None
    except TokenError as exc:
        raise ModelError(f"sqlglot cannot read this query ({exc}), so the tables it reads are unknown",
                         path=path, table=table) from None
    if len(trees) != 1 or not isinstance(trees[0], exp.Query):
        kind = type(trees[0]).__name__.upper() if trees else "nothing"
        raise ModelError(f"a model file holds one SELECT or WITH query; sqlglot read {kind}",
                         path=path, table=table)
    return trees[0]


def table_references(tree: Any, *, path: str = "<sql>", table: str | None = None) -> set[str]:
    """The ``schema.table`` names a sqlglot query reads, minus CTE names and table functions.

    Raises
    ------
    ModelError
        On an unqualified name that is not a CTE, or a three-part name.
    """
    from sqlglot import exp

    ctes = {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}
    found: set[str] = set()
    for ref in tree.find_all(exp.Table):
        if not isinstance(ref.this, exp.Identifier):
            continue  # a table function: read_parquet(...), range(...), generate_series(...)
        name, schema = ref.name.lower(), ref.db.lower()
        line = ref.this.meta.get("line")
        if ref.catalog:
            raise ModelError(f"table {ref.sql(dialect='duckdb')} names a database; write it as schema.table",
                             path=path, table=table, line=line)
        if not schema:
            if name in ctes or "." in name or "/" in name:
                continue  # a CTE, or a file scan such as FROM 'data.parquet'
            raise ModelError(f"unqualified table {ref.name!r}: write it as schema.table (e.g. clean.{name})",
                             path=path, table=table, line=line)
        found.add(f"{schema}.{name}")
    return found


def _statement_body(text: str) -> str:
    """``text`` up to the end of its last token: trailing semicolons and comments cut off."""
    import sqlglot

    tokens = [t for t in sqlglot.tokenize(text, read="duckdb") if t.token_type.name != "SEMICOLON"]
    return text[: tokens[-1].end + 1] if tokens else text.strip()


def top_comment(text: str) -> str:
    """The comment block at the top of a SQL file, without comment markers.

    Examples
    --------
    >>> top_comment("-- Grain: one row per (symbol, ts).\\n-- From raw.bars.\\nSELECT 1")
    'Grain: one row per (symbol, ts).\\nFrom raw.bars.'
    >>> top_comment("/* Daily returns. */ SELECT 1")
    'Daily returns.'
    """
    body = text.lstrip()
    if body.startswith("/*"):
        end = body.find("*/")
        block = body[2:end] if end >= 0 else body[2:]
        lines = [ln.strip().lstrip("*").strip() for ln in block.splitlines()]
        return "\n".join(lines).strip()
    lines: list[str] = []
    for line in body.splitlines():
        stripped = line.strip()
        if not stripped.startswith("--"):
            break
        lines.append(stripped[2:].strip())
    return "\n".join(lines).strip()
