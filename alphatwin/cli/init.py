"""``alphatwin init``: create an empty warehouse (catalog, lake and log folders)."""

from __future__ import annotations

import typer

from alphatwin.cli.common import state


def init_command(ctx: typer.Context) -> None:
    """Create the warehouse directory and its DuckDB catalog (safe to run again).

    Example: alphatwin --warehouse /data/wh init
    """
    from alphatwin.lake import catalog

    st = state(ctx)
    paths = st.paths
    st.start_logging()
    with catalog.connect(paths):
        pass
    for d in (paths.bars, paths.logs, paths.state):
        d.mkdir(parents=True, exist_ok=True)
    typer.echo(f"warehouse ready at {paths.root}")
    typer.echo(f"  catalog: {paths.db}")
    typer.echo(f"  lake:    {paths.lake}")
