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
) -> None:
    """Run a read-only query on the warehouse (writes, ATTACH, COPY, INSTALL, LOAD, SET and files
    outside the warehouse are refused).

    Example: alphatwin sql "select symbol, count(*) from raw.bars group by 1" --format csv
    """
    import sys

    from alphatwin.lake.query import run_query

    st = state(ctx)
    text = sys.stdin.read() if query == "-" else query
    frame = run_query(st.paths, text, limit=limit)
    emit(frame, fmt, out)
