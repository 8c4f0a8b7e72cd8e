"""``alphatwin verify``: re-checksum the lake against the catalog (see :mod:`alphatwin.lake.verify`)."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from alphatwin.cli.common import progress_rows, state
from alphatwin.errors import InputError

__all__ = ["verify_command"]


def verify_command(
    ctx: typer.Context,
    quick: Annotated[bool, typer.Option("--quick", help="Check sizes and Parquet footers (row counts) only, not the sha256 of every byte.")] = False,
    fmt: Annotated[str, typer.Option("--format", "-f", help="Output: table (one line per finding and a summary) or json.")] = "table",
) -> None:
    """Check every lake file against meta.lake_files: size and sha256 (--quick: size and
    Parquet footer). Reports missing, corrupt and unknown files (unknown: under lake/ but not in
    the catalog), one line each, and exits 1 when there is any; records the outcome in
    meta.audit. A build refuses to read files found missing or corrupt.

    Example: alphatwin verify --quick
    """
    from alphatwin.lake.verify import verify

    if fmt not in ("table", "json"):
        raise InputError(f"`--format` must be table or json, got {fmt!r}")
    st = state(ctx)
    st.start_logging()
    with progress_rows("verify" + (" --quick" if quick else ""), unit="bytes") as advance:
        report = verify(st.paths, quick=quick, progress=advance)
    if fmt == "json":
        typer.echo(json.dumps(report.as_dict(), indent=2))
    else:
        for finding in report.findings:
            typer.echo(finding.line())
        typer.echo(report.summary())
    if not report.ok:
        raise typer.Exit(1)
