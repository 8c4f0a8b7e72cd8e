"""Build the models inside the warehouse, in dependency order, one atomic table at a time.

``build`` takes the warehouse's write lock, discovers the models (:mod:`alphatwin.models.registry`),
checks that every table they read is a model or already in the warehouse and that the graph has
no cycle, then builds the selected models in topological order (ties broken by name):

- a SQL model runs ``CREATE OR REPLACE TABLE <schema>.<table> AS <its query>``;
- a Python model gets one Polars ``LazyFrame`` per input table (each input is read from DuckDB
  into memory first), and its result is collected and written back with
  ``CREATE OR REPLACE TABLE <schema>.<table> AS SELECT * FROM <arrow frame>``.

Each model is materialised in its own DuckDB transaction, together with its rows in
``meta.stage_runs`` (stage ``build:<schema>.<table>``; ``rows_in`` is counted for Python models
only) and ``meta.model_runs``: a reader sees the
old table or the new one, never half of one, and a model that fails leaves its previous table
intact. The build stops at the first failure (the models built before it stay built), records
the failed run and raises :class:`~alphatwin.errors.ModelError` naming the model and its file.

Every build is a full refresh today: ``full_refresh`` is accepted so that callers need not change
when incremental models arrive, and both values rebuild every selected model from scratch.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from alphatwin.errors import ModelError
from alphatwin.lake import catalog
from alphatwin.lake.lock import write_lock
from alphatwin.lake.stages import StageRun, stage
from alphatwin.log import RUN_ID, get_logger
from alphatwin.models.registry import Model, Registry, default_sql_root, discover, warehouse_relations
from alphatwin.paths import WarehousePaths

__all__ = ["build", "plan", "BuildResult", "ModelRun", "MODEL_RUNS_DDL", "ProgressFn"]

log = get_logger("models")

MODEL_RUNS_DDL = """CREATE TABLE IF NOT EXISTS meta.model_runs (
    run_id VARCHAR NOT NULL,
    model VARCHAR NOT NULL,       -- schema.table
    kind VARCHAR NOT NULL,        -- sql | python
    started TIMESTAMPTZ NOT NULL,
    finished TIMESTAMPTZ,
    wall_s DOUBLE,
    rows BIGINT,
    status VARCHAR NOT NULL,      -- ok | failed
    sql_sha256 VARCHAR,           -- of the SQL file, or of the Python function's source
    error VARCHAR
)"""

_FRAME = "__alphatwin_model_frame"
_DUCKDB_LINE = re.compile(r"\bLINE (\d+):")


@dataclass
class ModelRun:
    """The outcome of building one model."""

    model: str
    kind: str
    status: str
    rows: int
    wall_s: float
    started: dt.datetime
    error: str | None = None


ProgressFn = Callable[[ModelRun], None]


@dataclass
class BuildResult:
    """What a build did: the planned models in build order and one :class:`ModelRun` per model built."""

    plan: list[str]
    runs: list[ModelRun] = field(default_factory=list)

    @property
    def rows(self) -> int:
        """Rows written, over every model built."""
        return sum(r.rows for r in self.runs)


def plan(registry: Registry, select: str | Iterable[str] | None = None) -> list[str]:
    """The models to build, in build order: all of them, or those ``select`` names.

    ``select`` uses :meth:`DAG.select <alphatwin.models.dag.DAG.select>` syntax: ``MODEL``,
    ``MODEL+`` (and downstream), ``+MODEL`` (and upstream), globs, several separated by commas.

    Raises
    ------
    ModelError
        On a cycle, or a selection that matches no model.
    """
    dag = registry.dag()
    order = dag.sorted()
    specs = [select] if isinstance(select, str) else list(select or [])
    if not specs:
        return [name for name in order if name in registry]
    chosen = dag.select(specs)
    picked = [name for name in order if name in chosen and name in registry]
    if not picked:
        raise ModelError(f"`--select` {' '.join(specs)!r} selects only sources, no model")
    return picked


def build(
    paths: WarehousePaths,
    *,
    select: str | Iterable[str] | None = None,
    full_refresh: bool = False,
    sql_root: Path | None = None,
    progress: ProgressFn | None = None,
    python: Iterable[Any] | None = None,
    command: str = "",
) -> BuildResult:
    """Build the models (or the ``select``-ed ones) into the warehouse at ``paths``.

    Parameters
    ----------
    paths
        The warehouse.
    select
        Selection specs (see :func:`plan`); None builds every model.
    full_refresh
        Rebuild from scratch. Every build is a full refresh for now (see the module docstring).
    sql_root
        The ``sql/`` folder; default :func:`~alphatwin.models.registry.default_sql_root`.
    progress
        Called with each :class:`ModelRun` as soon as the model is built (or has failed).
    python
        Where the Python models are (see :func:`~alphatwin.models.registry.discover`).
    command
        The command line, recorded in ``meta.stage_runs``.

    Returns
    -------
    BuildResult

    Raises
    ------
    ModelError
        For an invalid model, an unknown table, a cycle, a bad selection, or the first model
        that fails to build (after recording it as failed).
    WarehouseBusyError
        When another process is writing the warehouse.

    Examples
    --------
    >>> build(WarehousePaths(Path("warehouse")), select="clean.bars+")  # doctest: +SKIP
    """
    del full_refresh  # the only mode today; see the module docstring
    registry = discover(sql_root if sql_root is not None else default_sql_root(), python=python)
    with write_lock(paths), catalog.connect(paths) as con:
        con.execute(MODEL_RUNS_DDL)
        registry.validate(warehouse_relations(con))
        result = BuildResult(plan(registry, select))
        for name in result.plan:
            run, exc = _build_one(con, registry[name], command)
            result.runs.append(run)
            if progress is not None:
                progress(run)
            if isinstance(exc, ModelError):
                raise exc
            if exc is not None:
                raise _failure(registry[name], exc) from exc
    return result


def _build_one(con: Any, m: Model, command: str) -> tuple[ModelRun, Exception | None]:
    """Build ``m`` atomically and record it; a failure is recorded and returned, not raised."""
    srun: StageRun | None = None
    try:
        with stage(f"build:{m.name}", command) as srun:
            frame = _compute(con, m, srun) if m.kind == "python" else None
            con.execute("BEGIN TRANSACTION")
            try:
                srun.rows_out = _materialise(con, m, frame)
                srun.close()
                run = _run_of(m, srun)
                srun.record(con)
                _record(con, m, run, srun)
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
        return run, None
    except Exception as exc:
        if srun is None:
            raise
        srun.status, srun.error = "failed", _describe(exc)[:500]
        run = _run_of(m, srun)
        con.execute("BEGIN TRANSACTION")
        srun.record(con)
        _record(con, m, run, srun)
        con.execute("COMMIT")
        return run, exc


def _run_of(m: Model, srun: StageRun) -> ModelRun:
    return ModelRun(m.name, m.kind, srun.status, srun.rows_out if srun.status == "ok" else 0,
                    srun.wall_s, srun.started, srun.error)


def _quoted(name: str) -> str:
    schema, table = name.split(".", 1)
    return f'"{schema}"."{table}"'


def _compute(con: Any, m: Model, srun: StageRun) -> Any:
    """Run a Python model on its inputs; its result as a Polars DataFrame."""
    import polars as pl

    assert m.func is not None, "a Python model carries its function"
    inputs = [con.sql(f"SELECT * FROM {_quoted(t)}").pl() for t in m.inputs]
    srun.rows_in = sum(f.height for f in inputs)
    out = m.func(*(f.lazy() for f in inputs))
    if isinstance(out, pl.LazyFrame):
        out = out.collect()
    if not isinstance(out, pl.DataFrame):
        raise ModelError(f"Python model {m.name} must return a Polars LazyFrame or DataFrame, "
                         f"got {type(out).__name__}", path=str(m.path), table=m.name, line=m.line)
    return out


def _materialise(con: Any, m: Model, frame: Any) -> int:
    """``CREATE OR REPLACE`` the model's table (inside the caller's transaction); its row count."""
    schema = m.schema
    con.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
    if frame is None:
        con.execute(f"CREATE OR REPLACE TABLE {_quoted(m.name)} AS\n{m.sql}\n")
        return int(con.execute(f"SELECT count(*) FROM {_quoted(m.name)}").fetchall()[0][0])
    con.register(_FRAME, frame.to_arrow())
    try:
        con.execute(f"CREATE OR REPLACE TABLE {_quoted(m.name)} AS SELECT * FROM {_FRAME}")
    finally:
        con.unregister(_FRAME)
    return int(frame.height)


def _record(con: Any, m: Model, run: ModelRun, srun: StageRun) -> None:
    con.execute(
        "INSERT INTO meta.model_runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [RUN_ID, m.name, m.kind, srun.started, srun.finished, srun.wall_s, run.rows, run.status,
         m.sha256, srun.error],
    )


def _describe(exc: BaseException) -> str:
    """The first line of ``exc`` (DuckDB errors already start with their kind)."""
    text = str(exc).strip().split("\n", 1)[0]
    if type(exc).__module__.startswith(("duckdb", "_duckdb")) or isinstance(exc, ModelError):
        return text
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _failure(m: Model, exc: Exception) -> ModelError:
    """The error raised for a model that failed to build, located in its file when possible."""
    line = m.line
    match = _DUCKDB_LINE.search(str(exc)) if m.kind == "sql" else None
    if match is not None:
        line = max(1, int(match.group(1)) - 1)  # the query starts one line below CREATE ... AS
    path = str(m.path) if m.path is not None else None
    return ModelError(f"model {m.name} failed to build: {_describe(exc)}", path=path, table=m.name, line=line)
