"""``alphatwin validate``: re-run the quality suites on ingests already in the lake."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from alphatwin.cli.common import progress_rows, state


def validate_command(
    ctx: typer.Context,
    ingest_id: Annotated[str | None, typer.Option("--ingest-id", help="Validate this ingest only (default: every committed ingest).", show_default=False)] = None,
    suite: Annotated[str, typer.Option("--suite", help="Suite in expectations/ to run.")] = "raw_bars",
    fmt: Annotated[str, typer.Option("--format", "-f", help="Summary format: table or json.")] = "table",
) -> None:
    """Validate ingests again with the current suite; replaces their quarantine, flags and
    restatements (earlier validation runs stay in meta.validation_runs).

    Example: alphatwin validate --ingest-id ing-20261125T031500Z-1a2b3c
    """
    from alphatwin.quality.revalidate import revalidate

    st = state(ctx)
    st.start_logging()
    with progress_rows("validate") as advance:
        results = revalidate(st.paths, ingest_id=ingest_id, suite=suite, progress=advance)
    if fmt == "json":
        typer.echo(json.dumps([
            {"ingest_id": r.ingest_id, "validation_id": r.validation_id, "received": r.counts.received,
             "accepted": r.counts.accepted, "quarantined": r.counts.quarantined, "collapsed": r.counts.collapsed,
             "flagged": r.counts.flagged, "restated": r.counts.restated, "batch_error": r.batch_error}
            for r in results], indent=2))
        return
    for r in results:
        c = r.counts
        verdict = f"rejected ({r.batch_error})" if r.batch_error else "ok"
        typer.echo(f"{r.ingest_id}: {verdict}: {c.received:,} received = {c.accepted:,} accepted + "
                   f"{c.quarantined:,} quarantined ({c.collapsed:,} duplicate copies); {c.flagged:,} flagged, "
                   f"{c.restated:,} restated")
