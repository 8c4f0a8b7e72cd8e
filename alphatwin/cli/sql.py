"""``alphatwin sql``: ad-hoc, read-only SQL on the warehouse (see :mod:`alphatwin.lake.query`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from alphatwin.cli.common import emit, state


def sql_command(
    ctx: typer.Context,
    query: Annotated[str, typer.Argument(help="One query: SELECT/WITH/DESCRIBE/SHOW/SUMMARIZE. Use '-' to read it from stdin.")],
    fmt: Annotated[str, typer.Option("--format", "-f", help="Output: table, csv, json or parquet (parquet needs --out).")] = "table",
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write the result to this file instead of stdout.", show_default=False)] = None,
    limit: Annotated[int | None, typer.Option("--limit", help="Return at most this many rows.", show_default=False)] = None,
    timeout: Annotated[float | None, typer.Option("--timeout", help="Stop the query after this many seconds (default: [sql] timeout, 60).", show_default=False)] = None,
) -> None:
    """Run a read-only query on the warehouse (writes, ATTACH, COPY, INSTALL, LOAD, SET and files
    outside the warehouse's lake are refused; memory, threads and time are capped by [sql]).
    While a build or an ingest runs, the query reads the catalog as of the moment it began.

    Example: alphatwin sql "select symbol, count(*) from raw.bars group by 1" --format csv
    """
    import dataclasses
    import sys

    from alphatwin.errors import InputError
    from alphatwin.lake.query import run_query

    st = state(ctx)
    limits = st.settings.sql
    if timeout is not None:
        if not timeout > 0:
            raise InputError(f"`--timeout` must be a positive number of seconds, got {timeout:g}")
        limits = dataclasses.replace(limits, timeout=timeout)
    text = sys.stdin.read() if query == "-" else query
    frame = run_query(st.paths, text, limit=limit, limits=limits)
    emit(frame, fmt, out)
