"""``alphatwin quality``: the data-quality report and the quarantined rows (see :mod:`alphatwin.reports.quality`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from alphatwin.cli.common import emit, stage_command, state
from alphatwin.errors import InputError

__all__ = ["app"]

QUARANTINE_FORMATS = ("table", "csv", "json")

app = typer.Typer(
    help="Data quality: the HTML report and the quarantined rows.\n\nExample: alphatwin quality report",
    no_args_is_help=True,
    rich_markup_mode=None,
)


@app.command("report")
@stage_command("quality_report")  # meta.stage_runs
def report_command(
    ctx: typer.Context,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="HTML file to write (default: <warehouse>/reports/quality.html).", show_default=False)] = None,
    ingest_id: Annotated[str | None, typer.Option("--ingest-id", help="Report on this ingest only.", show_default=False)] = None,
) -> None:
    """Write the data-quality report: one self-contained HTML page (opens offline) with pass/fail
    per batch and suite, unexpected counts per expectation, pass rate over time, worst symbols and
    the latest quarantined rows. Prints the file's path.

    Example: alphatwin quality report --out dq.html
    """
    from alphatwin.reports.quality import write_quality_report

    st = state(ctx)
    path = write_quality_report(st.paths, out, ingest_id=ingest_id)
    typer.echo(str(path))


@app.command("quarantine")
def quarantine_command(
    ctx: typer.Context,
    symbol: Annotated[str | None, typer.Option("--symbol", "-s", help="Only this symbol's rows.", show_default=False)] = None,
    ingest_id: Annotated[str | None, typer.Option("--ingest-id", help="Only this ingest's rows.", show_default=False)] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", help="Show at most this many rows (0: all).")] = 50,
    fmt: Annotated[str, typer.Option("--format", "-f", help="Output: table, csv or json.")] = "table",
) -> None:
    """List quarantined rows, most recent first, with the expectations they failed (reasons) and
    the offending values (detail). The raw lake keeps these rows; downstream models skip them.

    Example: alphatwin quality quarantine --symbol SYN00001
    """
    if fmt not in QUARANTINE_FORMATS:
        raise InputError(f"`--format` must be one of {', '.join(QUARANTINE_FORMATS)}, got {fmt!r}")
    if limit < 0:
        raise InputError(f"`--limit` must be a whole number >= 0 (0 lists all rows), got {limit}")
    import polars as pl

    from alphatwin.lake import catalog
    from alphatwin.reports.quality import quarantined_rows

    st = state(ctx)
    with catalog.connect(st.paths, read_only=True) as con:
        frame = quarantined_rows(con, symbol=symbol, ingest_id=ingest_id, limit=limit or None)
    if fmt != "json":
        frame = frame.with_columns(pl.col("reasons").list.join(", "))
    emit(frame, fmt)
    if limit and frame.height == limit:
        typer.echo(f"showing the latest {limit} rows; use --limit 0 for all", err=True)
