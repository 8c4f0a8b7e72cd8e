"""``alphatwin build`` and ``alphatwin models``: the SQL/Python model DAG (see :mod:`alphatwin.models`)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from alphatwin.cli.common import emit, progress_rows, state
from alphatwin.errors import InputError

if TYPE_CHECKING:
    from alphatwin.cli.common import State

__all__ = ["build_command", "models_command"]

SqlRoot = Annotated[Path | None, typer.Option(
    "--sql-root", help="Folder of the SQL models (default: sql/ beside alphatwin.toml, else ./sql, else the project's own sql/).",
    show_default=False)]
Fmt = Annotated[str, typer.Option("--format", "-f", help="Output: table or json.")]


def _sql_root(st: State, sql_root: Path | None) -> Path:
    from alphatwin.models.registry import default_sql_root

    return sql_root if sql_root is not None else default_sql_root(st.settings.config_file)


def _check_format(fmt: str) -> None:
    if fmt not in ("table", "json"):
        raise InputError(f"`--format` must be table or json, got {fmt!r}")


def build_command(
    ctx: typer.Context,
    select: Annotated[list[str] | None, typer.Option("--select", "-s", help="Build only these models: MODEL, MODEL+ (and downstream), +MODEL (and upstream), globs like 'clean.*'. Repeat or separate with commas.", show_default=False)] = None,
    full_refresh: Annotated[bool, typer.Option("--full-refresh", help="Rebuild every model from scratch instead of updating incremental models (clean.bars, features.bars) with what changed since their last build.")] = False,
    fmt: Fmt = "table",
    sql_root: SqlRoot = None,
) -> None:
    """Build the models (sql/<schema>/<table>.sql and @model Python functions) into the
    warehouse in dependency order; each table is replaced atomically and every model is
    recorded in meta.model_runs. Incremental models (clean.bars, features.bars) only recompute
    the symbols touched by ingests since their last build, unless --full-refresh.

    Example: alphatwin build --select clean.bars+
    """
    import polars as pl

    from alphatwin.models.build import build

    _check_format(fmt)
    st = state(ctx)
    st.start_logging()
    root = _sql_root(st, sql_root)

    bars: dict[str, Any] = {}  # model -> [progress context, advance, rows shown]

    def chunk(model: str, done: int, total: int) -> None:
        if model not in bars:
            cm = progress_rows(f"building {model}", total)
            bars[model] = [cm, cm.__enter__(), 0]
        bars[model][1](done - bars[model][2])
        bars[model][2] = done

    def report(run: Any) -> None:
        if run.model in bars:
            bars.pop(run.model)[0].__exit__(None, None, None)
        if st.verbosity < 0 and not run.error:  # -q: only errors on stderr
            return
        note = f" ({run.error})" if run.error else ""
        typer.echo(f"{run.model}: {run.status} ({run.mode}), {run.rows:,} rows in {run.wall_s:.2f}s{note}", err=True)

    command = "build" + (f" --select {','.join(select)}" if select else "") + (" --full-refresh" if full_refresh else "")
    result = build(st.paths, select=select or None, full_refresh=full_refresh, sql_root=root, progress=report,
                   command=command, settings=st.settings, chunk_progress=chunk)
    if not result.plan:
        typer.echo(f"no models found (SQL models under {root}, Python models in alphatwin.transforms)", err=True)
        return
    frame = pl.DataFrame(
        {"model": [r.model for r in result.runs], "kind": [r.kind for r in result.runs],
         "mode": [r.mode for r in result.runs],
         "status": [r.status for r in result.runs], "rows": [r.rows for r in result.runs],
         "wall_s": [round(r.wall_s, 3) for r in result.runs]},
        schema={"model": pl.String, "kind": pl.String, "mode": pl.String, "status": pl.String, "rows": pl.Int64,
                "wall_s": pl.Float64},
    )
    emit(frame, fmt)


def models_command(
    ctx: typer.Context,
    lineage: Annotated[bool, typer.Option("--lineage", help="Print the DAG: every table in build order with the tables that read it.")] = False,
    mermaid: Annotated[bool, typer.Option("--mermaid", help="Print the DAG as a Mermaid flowchart (for the docs).")] = False,
    fmt: Fmt = "table",
    sql_root: SqlRoot = None,
) -> None:
    """List the models with their kind, upstream and downstream tables and description; checks
    that every table they read exists (when there is a warehouse) and that there is no cycle.

    Example: alphatwin models --lineage
    """
    from alphatwin.models.lineage import lineage_mermaid, lineage_text
    from alphatwin.models.registry import discover

    _check_format(fmt)
    st = state(ctx)
    registry = discover(_sql_root(st, sql_root))
    registry.validate(_existing(st))
    if mermaid or lineage:
        typer.echo(lineage_mermaid(registry) if mermaid else lineage_text(registry))
        return
    _list_models(registry, fmt)


def _existing(st: State) -> set[str] | None:
    """The warehouse's tables and views, or None when there is no warehouse yet."""
    from alphatwin.lake import catalog
    from alphatwin.models.registry import warehouse_relations

    if not st.paths.db.exists():
        return None
    with catalog.connect(st.paths, read_only=True) as con:
        return warehouse_relations(con)


def _list_models(registry: Any, fmt: str) -> None:
    import polars as pl

    dag = registry.dag()
    names = [n for n in dag.sorted() if n in registry]
    ups = [sorted(dag.upstream(n)) for n in names]
    downs = [sorted(dag.downstream(n)) for n in names]
    models = [registry[n] for n in names]
    data: dict[str, Any] = {
        "model": names,
        "kind": [m.kind for m in models],
        "upstream": ups if fmt == "json" else [", ".join(u) for u in ups],
        "downstream": downs if fmt == "json" else [", ".join(d) for d in downs],
        "path": [_shown(m.path) for m in models],
        "description": [m.description if fmt == "json" else m.description.split("\n", 1)[0] for m in models],
    }
    schema = {k: (pl.List(pl.String) if fmt == "json" and k in ("upstream", "downstream") else pl.String) for k in data}
    emit(pl.DataFrame(data, schema=schema), fmt)


def _shown(path: Path | None) -> str:
    """``path`` relative to the working directory when it is below it."""
    if path is None:
        return ""
    try:
        return path.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return str(path)
