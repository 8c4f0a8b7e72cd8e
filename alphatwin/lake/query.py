"""Ad-hoc SQL on the warehouse, in a sandbox.

Three independent fences:

1. sqlglot parses the text (DuckDB dialect) and admits only queries: ``SELECT`` (with CTEs and
   set operations), ``DESCRIBE``, ``SHOW`` and ``SUMMARIZE``. DDL, DML, ``ATTACH``, ``COPY``,
   ``EXPORT``/``IMPORT``, ``INSTALL``, ``LOAD``, ``SET``/``PRAGMA``, ``query()`` (SQL inside a
   string, which this fence cannot see) and anything sqlglot cannot classify are refused with a
   message naming the statement kind.
2. DuckDB opens the catalog read-only, limits file access to the lake (``allowed_directories``
   = ``<warehouse>/lake/`` + ``enable_external_access = false``: no logs, state or files outside
   the warehouse), caps memory and threads, and then locks its configuration
   (``lock_configuration``), so even a statement that slipped past (1) cannot write, reach other
   files, load extensions or change settings.
3. A wall-clock timeout interrupts a query that runs too long (``[sql] timeout``).
"""

from __future__ import annotations

import re
import threading
from typing import Any

from alphatwin.config import SqlSettings
from alphatwin.errors import SqlSandboxError
from alphatwin.lake import catalog
from alphatwin.paths import WarehousePaths

__all__ = ["check_sql", "run_query"]

# Statement keywords refused by name before parsing (sqlglot cannot parse some, e.g. EXPORT DATABASE);
# any other word goes to the parser, so a typo stays a syntax error.
_REFUSED_WORDS = {"INSERT", "UPDATE", "DELETE", "MERGE", "UPSERT", "CREATE", "DROP", "ALTER", "TRUNCATE", "ATTACH",
                  "DETACH", "USE", "COPY", "EXPORT", "IMPORT", "INSTALL", "FORCE", "LOAD", "SET", "RESET", "PRAGMA",
                  "CALL", "CHECKPOINT", "VACUUM", "ANALYZE", "BEGIN", "START", "COMMIT", "ROLLBACK", "ABORT", "END",
                  "PREPARE", "EXECUTE", "DEALLOCATE", "COMMENT", "GRANT", "REVOKE"}
# Table functions that run SQL given as a string: fence 1 cannot inspect that SQL.
_FORBIDDEN_FUNCTIONS = {"query", "query_table"}

_ALLOWED_ROOTS = ("Select", "Union", "Intersect", "Except", "Describe", "Show", "Summarize", "Subquery")
_FORBIDDEN_NODES = ("Insert", "Update", "Delete", "Merge", "Create", "Drop", "Alter", "Copy", "Attach",
                    "Detach", "Set", "Pragma", "Command", "Use", "Install", "Load", "TruncateTable")


def check_sql(text: str) -> str:
    """Return the single query in ``text`` if the sandbox admits it, else raise :class:`SqlSandboxError`.

    Examples
    --------
    >>> check_sql("select 1")
    'select 1'
    """
    import logging

    import sqlglot
    from sqlglot.errors import ParseError

    logging.getLogger("sqlglot").setLevel(logging.ERROR)
    stripped = text.strip().rstrip(";").strip()
    if not stripped:
        raise SqlSandboxError("empty query")
    upper = _first_word(stripped)
    if upper in _REFUSED_WORDS:
        raise SqlSandboxError(
            f"only queries are allowed (SELECT, WITH, DESCRIBE, SHOW, SUMMARIZE); refused {upper}"
        )
    if upper in {"SHOW", "DESCRIBE", "SUMMARIZE"}:
        if ";" in stripped:
            raise SqlSandboxError("one query at a time")
        # sqlglot has no full model of these: a wrapped query is checked as a query of its own,
        # and a string-SQL function is refused anywhere; DuckDB's read-only sandbox still applies
        body = re.sub(r"^(\s|--[^\n]*(\n|$)|/\*.*?\*/)*\w+", "", stripped, count=1, flags=re.S).strip()
        if _first_word(body) in {"SELECT", "WITH", "FROM", "(", "VALUES", "TABLE"}:
            check_sql(body)
        for name in _FORBIDDEN_FUNCTIONS:
            if re.search(rf"\b{name}\s*\(", body, flags=re.I):
                raise SqlSandboxError(f"refused {name}(): SQL inside a string cannot be checked; write the query itself")
        return stripped
    try:
        statements = [s for s in sqlglot.parse(stripped, read="duckdb") if s is not None]
    except ParseError as exc:
        first = exc.errors[0] if exc.errors else {}
        raise SqlSandboxError(
            f"SQL syntax error at line {first.get('line', '?')}, column {first.get('col', '?')}: "
            f"{first.get('description', exc)}"
        ) from None
    if len(statements) != 1:
        raise SqlSandboxError(f"one query at a time, got {len(statements)} statements")
    tree = statements[0]
    kind = type(tree).__name__
    if kind not in _ALLOWED_ROOTS:
        raise SqlSandboxError(
            f"only queries are allowed (SELECT, WITH, DESCRIBE, SHOW, SUMMARIZE); refused {upper}"
        )
    for node in tree.walk():
        if type(node).__name__ in _FORBIDDEN_NODES:
            raise SqlSandboxError(f"only queries are allowed; refused a nested {_name(node)} statement")
        name = _function_name(node)
        if name in _FORBIDDEN_FUNCTIONS:
            raise SqlSandboxError(f"refused {name}(): SQL inside a string cannot be checked; write the query itself")
    return stripped


def _first_word(text: str) -> str:
    """The statement's first keyword, after leading comments (``/* */`` and ``--``)."""
    body = re.sub(r"^(\s|--[^\n]*(\n|$)|/\*.*?\*/)+", "", text, flags=re.S)
    if body.startswith("("):
        return "("
    match = re.match(r"[A-Za-z_]+", body)
    return match.group(0).upper() if match else (body[:1] or "?")


def _function_name(node: Any) -> str | None:
    kind = type(node).__name__
    if kind == "Anonymous":
        return str(node.name).lower()
    if kind in {"Table", "TableFromRows"} and type(node.this).__name__ == "Anonymous":
        return str(node.this.name).lower()
    return None


def _name(node: Any) -> str:
    kind = type(node).__name__
    if kind == "Command":
        return str(node.this).upper()
    return kind.upper()


_AS_TEXT = ("INTERVAL", "UHUGEINT", "HUGEINT", "BLOB", "BIT", "UNION", "MAP", "TIME WITH TIME ZONE", "VARIANT")
_HUGEINT = "HUGEINT"


def run_query(paths: WarehousePaths, text: str, *, limit: int | None = None,
              limits: SqlSettings | None = None) -> Any:
    """Run one sandboxed query on the warehouse; return a Polars DataFrame.

    Columns whose DuckDB type has no faithful Polars equivalent (INTERVAL, UHUGEINT, BLOB, MAP,
    UNION, BIT, VARIANT) come back as text, so no value is silently changed. HUGEINT (what ``sum``
    of integers returns) comes back as a 64-bit integer when every value fits, else as text.
    A query running longer than ``limits.timeout`` seconds is interrupted.
    """
    import duckdb

    limits = limits or SqlSettings()
    query = check_sql(text)
    root = paths.root.resolve().as_posix().rstrip("/") + "/"
    with catalog.connect(paths, read_only=True) as con:
        _fence(con, root, limits)
        timer = threading.Timer(limits.timeout, con.interrupt)
        timer.daemon = True
        timer.start()
        try:
            rel = con.sql(query)
            if rel is None:
                raise SqlSandboxError("the statement returned no result set")
            if limit is not None:
                rel = rel.limit(limit)
            return _to_polars(rel)
        except duckdb.Error as exc:
            raise _refusal(exc, limits, timed_out=not timer.is_alive()) from None
        finally:
            timer.cancel()


def _fence(con: Any, root: str, limits: SqlSettings) -> None:
    quoted = root.replace("'", "''")
    con.execute(f"SET temp_directory = '{quoted}tmp/sql'")  # else DuckDB allows its default ./.tmp
    con.execute(f"SET allowed_directories = ['{quoted}lake/']")  # not logs/, state/ or the catalog
    con.execute("SET enable_external_access = false")
    con.execute(f"SET memory_limit = '{limits.memory_limit.replace(chr(39), '')}'")
    con.execute(f"SET threads = {int(limits.threads)}")
    con.execute("SET lock_configuration = true")


def _refusal(exc: Exception, limits: SqlSettings, *, timed_out: bool) -> SqlSandboxError:
    import duckdb

    message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if isinstance(exc, duckdb.InterruptException) or (timed_out and "interrupt" in message.lower()):
        return SqlSandboxError(f"query exceeded {limits.timeout:g} s and was stopped ([sql] timeout)")
    if isinstance(exc, duckdb.OutOfMemoryException):
        return SqlSandboxError(f"query exceeded the memory limit of {limits.memory_limit} ([sql] memory_limit)")
    if isinstance(exc, duckdb.PermissionException):
        return SqlSandboxError(f"refused: {message.removeprefix('Permission Error: ')} "
                               "(the sandbox reads only the warehouse's lake and catalog)")
    return SqlSandboxError(message)


def _to_polars(rel: Any) -> Any:
    import duckdb

    types = [str(t).upper() for t in rel.types]
    texts = [i for i, t in enumerate(types) if any(t.startswith(k) for k in _AS_TEXT)]
    if not texts:
        return _pl(rel)
    huge = [i for i in texts if types[i] == _HUGEINT]
    if huge:
        try:
            return _cast(rel, {i: "BIGINT" for i in huge} | {i: "VARCHAR" for i in texts if i not in huge}).pl()
        except duckdb.Error:  # a value beyond 64 bits: text keeps it exact
            pass
    return _pl(_cast(rel, {i: "VARCHAR" for i in texts}))


def _cast(rel: Any, casts: dict[int, str]) -> Any:
    cols = []
    for i, c in enumerate(rel.columns):
        name = c.replace('"', '""')
        cols.append(f'"{name}"::{casts[i]} AS "{name}"' if i in casts else f'"{name}"')
    return rel.project(", ".join(cols))


def _pl(rel: Any) -> Any:
    import duckdb

    try:
        return rel.pl()
    except BaseException as exc:  # Polars panics (e.g. infinite timestamps) derive from BaseException
        if isinstance(exc, (KeyboardInterrupt, SystemExit, duckdb.Error)):
            raise  # DuckDB's own errors (a refusal, the timeout) are mapped by run_query
        raise SqlSandboxError(
            f"the result cannot be converted ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); "
            "cast the offending column to VARCHAR in the query"
        ) from None
