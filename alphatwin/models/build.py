"""Build the models inside the warehouse, in dependency order, one atomic table at a time.

``build`` takes the warehouse's write lock, discovers the models (:mod:`alphatwin.models.registry`),
checks that every table they read is a model or already in the warehouse and that the graph has
no cycle, then builds the selected models in topological order (ties broken by name):

- a SQL model runs ``CREATE OR REPLACE TABLE <schema>.<table> AS <its query>`` (or ``VIEW`` for
  a model marked ``materialized: view``);
- a Python model gets one Polars ``LazyFrame`` per input table, and its result is written back
  with ``CREATE OR REPLACE TABLE``. A model with ``partition_by`` reads its inputs and runs one
  range of partition values (about :data:`CHUNK_ROWS` rows) at a time, appending each result;
- a model with an ``incremental`` update (``clean.bars``, ``features.bars``) is brought up to
  date from what changed in the lake since its last build (:mod:`alphatwin.models.incremental`)
  unless ``full_refresh``, the table is missing, or its code or settings changed since.

Each model is materialised in its own DuckDB transaction, together with its rows in
``meta.stage_runs`` (stage ``build:<schema>.<table>``) and ``meta.model_runs`` (with the mode:
full, incremental or view): a reader sees the old table or the new one, never half of one, and a
model that fails leaves its previous table intact. The build stops at the first failure (the
models built before it stay built), records the failed run and raises
:class:`~alphatwin.errors.ModelError` naming the model and its file.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
from collections import deque
from concurrent.futures import ThreadPoolExecutor
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from alphatwin.errors import LakeError, ModelError
from alphatwin.lake import audit, catalog, faults
from alphatwin.lake.lock import write_lock
from alphatwin.lake.verify import check_lake_files, lake_read_error
from alphatwin.lake.writer import check_free_space, storage_error
from alphatwin.lake.stages import StageRun, stage
from alphatwin.log import get_logger, run_id
from alphatwin.models import incremental
from alphatwin.models.registry import Model, Registry, default_sql_root, discover, warehouse_relations
from alphatwin.paths import WarehousePaths
from alphatwin.quality.store import ensure_quality_schema

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
    status VARCHAR NOT NULL,      -- running | ok | failed | aborted (killed; marked by the next build)
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
    mode: str = "full"


ProgressFn = Callable[[ModelRun], None]
ChunkFn = Callable[[str, int, int], None]
CHUNK_ROWS = 2_000_000
PREFETCH = 1  # ranges read and computed ahead of the one being written (2 measured no faster, 1 GB more)
BUILD_MEMORY = "4GB"  # DuckDB's buffer pool during a build; Polars chunks come on top (see docs/performance.md)


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
    settings: Any = None,
    chunk_progress: ChunkFn | None = None,
) -> BuildResult:
    """Build the models (or the ``select``-ed ones) into the warehouse at ``paths``.

    Parameters
    ----------
    paths
        The warehouse.
    select
        Selection specs (see :func:`plan`); None builds every model.
    full_refresh
        Rebuild incremental models from scratch instead of updating them.
    sql_root
        The ``sql/`` folder; default :func:`~alphatwin.models.registry.default_sql_root`.
    progress
        Called with each :class:`ModelRun` as soon as the model is built (or has failed).
    python
        Where the Python models are (see :func:`~alphatwin.models.registry.discover`).
    command
        The command line, recorded in ``meta.stage_runs``.
    settings
        :class:`~alphatwin.config.Settings` handed to models that ask for them (default: the
        built-in defaults).
    chunk_progress
        Called as ``chunk_progress(model, rows_done, rows_total)`` while a partitioned model builds.

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
    if settings is None:
        from alphatwin.config import Settings

        settings = Settings()
    registry = discover(sql_root if sql_root is not None else default_sql_root(), python=python)
    with write_lock(paths):
        check_free_space(paths, "a build")
        try:
            with catalog.connect(paths) as con:
                return _build(con, paths, registry, select, settings, command, full_refresh, chunk_progress,
                              progress)
        except Exception as exc:
            if isinstance(exc, (ModelError, LakeError)):
                raise
            mapped = lake_read_error(exc, paths) or storage_error(exc, paths.db)
            if mapped is None:
                raise
            raise mapped from None


def _build(con: Any, paths: WarehousePaths, registry: Registry, select: str | Iterable[str] | None, settings: Any,
           command: str, full_refresh: bool, chunk_progress: ChunkFn | None,
           progress: ProgressFn | None) -> BuildResult:
    con.execute(f"SET memory_limit = '{BUILD_MEMORY}'")  # DuckDB would cache 80% of RAM of written blocks
    con.execute(MODEL_RUNS_DDL)
    con.execute("ALTER TABLE meta.model_runs ADD COLUMN IF NOT EXISTS mode VARCHAR")
    con.execute("ALTER TABLE meta.model_runs ADD COLUMN IF NOT EXISTS table_rows BIGINT")
    for ddl in incremental.DDL:
        con.execute(ddl)
    lake_error: LakeError | None = None
    try:
        check_lake_files(con, paths)  # before anything binds raw.bars (re-creating a view reads the files)
    except LakeError as exc:
        lake_error = exc  # raised by the first model that reads the lake, and recorded as its failure
    if lake_error is None or not {"accepted_bars"} <= _relations(con, "quality"):
        ensure_quality_schema(con)  # models read quality.accepted_bars even before any validation
    registry.validate(warehouse_relations(con))
    result = BuildResult(plan(registry, select))
    _drop_staging_leftovers(con)
    _mark_aborted(con)
    job = _Job(con, paths, settings, command, full_refresh, chunk_progress, registry, lake_error)
    for name in result.plan:
        run, exc = job.build_one(registry[name])
        result.runs.append(run)
        if progress is not None:
            progress(run)
        if isinstance(exc, LakeError) and str(exc).endswith("nothing was changed") and \
                any(r.status == "ok" for r in result.runs[:-1]):
            raise LakeError(str(exc).replace("nothing was changed", f"{name} and the models after it were "
                                             "left as they were (the ones before it are built)")) from None
        if isinstance(exc, (ModelError, LakeError)):
            raise exc
        if exc is not None:
            raise _failure(registry[name], exc) from exc
    return result


def _mark_aborted(con: Any) -> None:
    """Model builds a killed process left 'running' become 'aborted' (audited, one transaction)."""
    con.execute("BEGIN TRANSACTION")
    try:
        killed = con.execute("SELECT run_id, model, mode, started FROM meta.model_runs WHERE status = 'running' "
                             "ORDER BY started").fetchall()
        if killed:
            con.execute("UPDATE meta.model_runs SET status = 'aborted', rows = 0, finished = now(), "
                        "error = 'process ended before commit' WHERE status = 'running'")
        for killed_run, model_name, mode, started in killed:
            audit.record(con, "build_aborted", object=model_name, rows_out=0, status="aborted",
                         detail={"run_id": killed_run, "mode": mode, "started": started,
                                 "reason": "process ended before commit; the previous table was kept"})
        con.execute("COMMIT")
    except BaseException:
        _rollback(con)
        raise


def _rollback(con: Any) -> None:
    """Roll back the open transaction, if any (DuckDB ends it itself when a COMMIT fails)."""
    with contextlib.suppress(Exception):
        con.execute("ROLLBACK")


_LAKE_RELATIONS = {"raw.bars", "quality.accepted_bars"}


@dataclass
class _Job:
    """One build: the connection and what every model's build needs."""

    con: Any
    paths: WarehousePaths
    settings: Any
    command: str
    full_refresh: bool
    chunk_progress: ChunkFn | None
    registry: Registry
    lake_error: LakeError | None = None  # what the pre-flight found wrong with the lake files

    def reads_lake(self, m: Model) -> bool:
        """Whether building ``m`` reads the raw lake (``raw.bars``, directly or through a view)."""
        closure = self.registry.dag().upstream_closure(m.name) | set(m.inputs)
        return bool(closure & _LAKE_RELATIONS)

    def upstream(self, m: Model) -> tuple[str, ...]:
        """The incremental models ``m`` reads (their watermarks bound what ``m`` may fold in)."""
        return tuple(t for t in m.inputs if t in self.registry and self.registry[t].updater is not None)

    def fingerprint(self, m: Model) -> str:
        """``m``'s fingerprint chained with its upstream models': a change of clean.bars' code or
        settings rebuilds features.bars too."""
        own = fingerprint(m, self.settings)
        ups = [self.fingerprint(self.registry[d]) for d in sorted(m.depends_on) if d in self.registry]
        return own if not ups else hashlib.sha256("\n".join([own, *ups]).encode()).hexdigest()

    def build_one(self, m: Model) -> tuple[ModelRun, Exception | None]:
        """Build ``m`` atomically and record it; a failure is recorded and returned, not raised.

        A 'running' row in ``meta.model_runs`` marks the start (a killed build leaves it for the
        next build to mark 'aborted'); the model's table, that row's outcome, its stage run and its
        ``meta.audit`` row are committed in one transaction."""
        con = self.con
        srun: StageRun | None = None
        sha = self.fingerprint(m)
        mode = "view" if m.materialized == "view" else "full"
        staged: _Staged | None = None
        try:
            with stage(f"build:{m.name}", self.command) as srun:
                if self._can_update(m, sha):
                    mode = "incremental"
                _record_start(con, m, srun, sha, mode)
                faults.point("build:started")
                if self.lake_error is not None and self.reads_lake(m):
                    raise self.lake_error  # refuse, naming the file, rather than read a damaged lake
                if mode != "incremental" and m.kind == "python":
                    staged = self._stage_python(m, srun)
                    faults.point("build:staged")
                if staged is None or not staged.in_transaction:
                    con.execute("BEGIN TRANSACTION")
                try:
                    if mode == "incremental":
                        srun.rows_out = self._update(m)
                    elif staged is not None:
                        srun.rows_out = self._swap(m, staged)
                    else:
                        srun.rows_out = _materialise_sql(con, m)
                    srun.close()
                    run = _run_of(m, srun, mode)
                    srun.record(con)
                    _record(con, m, run, srun, sha)
                    faults.point("build:before_commit")
                    con.execute("COMMIT")
                except BaseException:
                    _rollback(con)  # a failed COMMIT has already rolled back
                    raise
            faults.point("build:after_commit")
            return run, None
        except KeyboardInterrupt:
            if m.kind == "python":
                con.execute(f"DROP TABLE IF EXISTS {_staging(m)}")
            raise
        except Exception as exc:
            if srun is None:
                raise
            exc = self._explain(exc)
            srun.status, srun.error = "failed", _describe(exc)[:500]
            run = _run_of(m, srun, mode)
            try:
                if m.kind == "python":
                    con.execute(f"DROP TABLE IF EXISTS {_staging(m)}")
                con.execute("BEGIN TRANSACTION")
                srun.record(con)
                _record(con, m, run, srun, sha)
                con.execute("COMMIT")
            except Exception as again:  # e.g. the disk is still full: the next build marks it aborted
                _rollback(con)
                log.warning("could not record the failure of %s: %s", m.name, _describe(again))
            return run, exc

    def _explain(self, exc: Exception) -> Exception:
        """A failure caused by the lake (a file missing or unreadable) or by the disk (full, size
        limit, permissions) as a one-line :class:`LakeError`; anything else unchanged."""
        if isinstance(exc, (ModelError, LakeError)):
            return exc
        return lake_read_error(exc, self.paths) or storage_error(exc, self.paths.db) or exc

    def _can_update(self, m: Model, sha: str) -> bool:
        """An incremental update applies: not forced full, table built by this code and settings."""
        if m.updater is None or self.full_refresh or m.name not in warehouse_relations(self.con):
            return False
        if not incremental.has_watermark(self.con, m.name):
            return False
        last = self.con.execute(
            "SELECT sql_sha256, finished FROM meta.model_runs WHERE model = ? AND status = 'ok' "
            "ORDER BY finished DESC LIMIT 1", [m.name]).fetchall()
        if not last or last[0][0] != sha:
            return False
        for up in self.upstream(m):  # rebuilt from scratch since: its rows may all have changed
            rebuilt = self.con.execute(
                "SELECT count(*) FROM meta.model_runs WHERE model = ? AND status = 'ok' AND mode = 'full' "
                "AND finished > ?", [up, last[0][1]]).fetchall()
            if rebuilt[0][0]:
                return False
        return True

    def _update(self, m: Model) -> int:
        changes, ingests, new_ingests, new_validations = incremental.source_changes(
            self.con, m.name, self.paths, self.upstream(m))
        ctx = incremental.IncrementalContext(self.con, m, self.settings, changes, ingests, self.paths)
        assert m.updater is not None
        done = m.updater(ctx)
        incremental.record_watermarks(self.con, m.name, full=False, ingests=new_ingests, validations=new_validations)
        log.info("incremental %s: %d keys rebuilt, %d appended, %d rows", m.name, done.rebuilt, done.appended, done.rows)
        return int(done.rows)

    def _stage_python(self, m: Model, srun: StageRun) -> _Staged:
        """Compute a Python model into its staging table ``<table>__building``, one partition range
        at a time, each range committed on its own (DuckDB appends faster, and holds less memory,
        in short transactions); :meth:`_swap` then replaces the model's table in one transaction.

        Ranges are pipelined: worker threads read and compute the next :data:`PREFETCH` ranges
        (each through its own cursor: the inputs are committed tables) while this thread writes
        range k. Polars, numba
        and DuckDB release the GIL, so both cores work.
        """
        import polars as pl

        assert m.func is not None, "a Python model carries its function"
        con = self.con
        con.execute(f'CREATE SCHEMA IF NOT EXISTS "{m.schema}"')
        con.execute(f"DROP TABLE IF EXISTS {_staging(m)}")  # left over by a killed build
        ranges = _ranges(con, m) if m.partition_by else [None]
        total_rows = sum(r[2] for r in ranges if r is not None)
        staged, done = _Staged(), 0

        def produce(rng: tuple[Any, Any, int] | None) -> tuple[Any, Any, int]:
            cursor = con.cursor()  # one per range: a DuckDB connection serves one thread at a time
            try:
                cursor.execute(f"USE {catalog.ALIAS}")
                cursor.execute("SET TimeZone = 'UTC'")
                inputs = [_read(cursor, t, m.partition_by, rng, m.order_by) for t in m.inputs]
            finally:
                cursor.close()
            kwargs = {"settings": self.settings} if m.wants_settings else {}
            out = m.func(*(f.lazy() for f in inputs), **kwargs)
            frame, state = out if isinstance(out, tuple) else (out, None)
            if isinstance(frame, pl.LazyFrame):
                frame = frame.collect()
            if not isinstance(frame, pl.DataFrame):
                raise ModelError(f"Python model {m.name} must return a Polars LazyFrame or DataFrame, "
                                 f"got {type(frame).__name__}", path=str(m.path), table=m.name, line=m.line)
            return frame, state, sum(f.height for f in inputs)

        with ThreadPoolExecutor(max_workers=PREFETCH, thread_name_prefix=f"build-{m.name}") as pool:
            pending = deque(pool.submit(produce, rng) for rng in ranges[:PREFETCH])
            for i, rng in enumerate(ranges):
                frame, state, rows_in = pending.popleft().result()
                if i + PREFETCH < len(ranges):
                    pending.append(pool.submit(produce, ranges[i + PREFETCH]))
                srun.rows_in += rows_in
                con.execute("BEGIN TRANSACTION")
                try:
                    _write(con, _staging(m), frame, replace=i == 0, virtual=m.virtual)
                    if len(ranges) == 1:  # the swap follows in this same transaction
                        staged.in_transaction = True
                    else:
                        con.execute("COMMIT")
                except BaseException:
                    _rollback(con)
                    raise
                staged.rows += frame.height
                del frame
                if state is not None:
                    staged.states.append(state)
                if rng is not None:
                    done += rng[2]
                    if self.chunk_progress is not None:
                        self.chunk_progress(m.name, done, total_rows)
        return staged

    def _swap(self, m: Model, staged: _Staged) -> int:
        """Replace the model's table by its staging table (inside the caller's transaction)."""
        import polars as pl

        con = self.con
        _drop_other_kind(con, m, "view")
        con.execute(f"DROP TABLE IF EXISTS {_quoted(m.name)}")
        con.execute(f'ALTER TABLE {_staging(m)} RENAME TO "{m.table}"')
        if m.updater is not None:
            incremental.write_state(con, m.name, pl.concat(staged.states) if staged.states else None,
                                    replace_all=True)
            incremental.record_watermarks(con, m.name, full=True, upstream=self.upstream(m))
        return staged.rows


@dataclass
class _Staged:
    """A Python model computed into its staging table: rows written and the per-range states.
    ``in_transaction``: a single range was written inside a transaction left open for the swap,
    so a killed build never leaves a committed ``__building`` table behind."""

    rows: int = 0
    states: list[Any] = field(default_factory=list)
    in_transaction: bool = False


def _staging(m: Model) -> str:
    return f'"{m.schema}"."{m.table}__building"'


def _relations(con: Any, schema: str) -> set[str]:
    rows = con.execute("SELECT table_name FROM duckdb_tables() WHERE database_name = current_database() AND "
                       "schema_name = ? UNION ALL SELECT view_name FROM duckdb_views() WHERE database_name = "
                       "current_database() AND schema_name = ?", [schema, schema]).fetchall()
    return {r[0] for r in rows}


def _drop_staging_leftovers(con: Any) -> None:
    """Drop ``*__building`` tables a killed build left behind (they are never read)."""
    rows = con.execute("SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = current_database() "
                       "AND table_name LIKE '%\\_\\_building' ESCAPE '\\'").fetchall()
    for schema, table in rows:
        con.execute(f'DROP TABLE IF EXISTS "{schema}"."{table}"')


def fingerprint(m: Model, settings: Any) -> str:
    """The hash recorded with a build: the model's code, plus the settings it depends on."""
    if m.fingerprint is None:
        return m.sha256
    return hashlib.sha256(f"{m.sha256}\n{m.fingerprint(settings)}".encode()).hexdigest()


def _ranges(con: Any, m: Model) -> list[tuple[Any, Any, int]]:
    """Consecutive ranges of ``m.partition_by`` values over its first input, about CHUNK_ROWS rows each."""
    col = m.partition_by
    counts = con.execute(f'SELECT "{col}", count(*) FROM {_quoted(m.inputs[0])} WHERE "{col}" IS NOT NULL '
                         "GROUP BY 1 ORDER BY 1").fetchall()
    ranges: list[tuple[Any, Any, int]] = []
    lo, rows = None, 0
    for i, (value, n) in enumerate(counts):
        if lo is None:
            lo = value
        rows += n
        if rows >= CHUNK_ROWS or i == len(counts) - 1:
            ranges.append((lo, value, rows))
            lo, rows = None, 0
    return ranges or [None]  # type: ignore[list-item]


def _read(con: Any, table: str, column: str | None, rng: tuple[Any, Any, int] | None,
          order_by: tuple[str, ...] = ()) -> Any:
    """One input of a Python model as a Polars frame (only the partition range when given)."""
    order = f" ORDER BY {', '.join(f'{chr(34)}{c}{chr(34)} NULLS FIRST' for c in order_by)}" if order_by else ""
    if rng is None or column is None:
        return con.sql(f"SELECT * FROM {_quoted(table)}{order}").pl()
    return con.sql(f'SELECT * FROM {_quoted(table)} WHERE "{column}" BETWEEN ? AND ?{order}',
                   params=[rng[0], rng[1]]).pl()


def _run_of(m: Model, srun: StageRun, mode: str) -> ModelRun:
    return ModelRun(m.name, m.kind, srun.status, srun.rows_out if srun.status == "ok" else 0,
                    srun.wall_s, srun.started, srun.error, mode)


def _quoted(name: str) -> str:
    schema, table = name.split(".", 1)
    return f'"{schema}"."{table}"'


def _drop_other_kind(con: Any, m: Model, kind: str) -> None:
    """Drop ``m``'s relation when it exists as the other kind (a table that became a view, ...)."""
    rows = con.execute(
        "SELECT 'view' FROM duckdb_views() WHERE database_name = current_database() AND schema_name = ? "
        "AND view_name = ? UNION ALL SELECT 'table' FROM duckdb_tables() WHERE database_name = current_database() "
        "AND schema_name = ? AND table_name = ?", [m.schema, m.table, m.schema, m.table]).fetchall()
    for (existing,) in rows:
        if existing != kind:
            con.execute(f"DROP {existing.upper()} {_quoted(m.name)}")


def _materialise_sql(con: Any, m: Model) -> int:
    """``CREATE OR REPLACE`` the SQL model's table or view (inside the caller's transaction); its rows."""
    con.execute(f'CREATE SCHEMA IF NOT EXISTS "{m.schema}"')
    kind = "view" if m.materialized == "view" else "table"
    _drop_other_kind(con, m, kind)
    con.execute(f"CREATE OR REPLACE {kind.upper()} {_quoted(m.name)} AS\n{m.sql}\n")
    if m.schema == "signals":
        _check_signal_columns(con, m)
    if kind == "view":
        return 0
    return int(con.execute(f"SELECT count(*) FROM {_quoted(m.name)}").fetchall()[0][0])


def _check_signal_columns(con: Any, m: Model) -> None:
    """A ``signals.*`` model is a SQL strategy: it must yield symbol, interval, ts, target."""
    from alphatwin.signals.sql import REQUIRED_COLUMNS

    cols = {r[0] for r in con.execute(f"DESCRIBE {_quoted(m.name)}").fetchall()}
    missing = [c for c in REQUIRED_COLUMNS if c not in cols]
    if missing:
        raise ModelError(f"a SQL strategy must yield {', '.join(REQUIRED_COLUMNS)}; {m.name} lacks "
                         f"{', '.join(missing)}", path=str(m.path), table=m.name)


def _write(con: Any, table: str, frame: Any, *, replace: bool, virtual: tuple[tuple[str, str], ...] = ()) -> None:
    """Write ``frame`` as ``table`` (quoted; ``replace``) or append it to it; ``virtual`` columns
    become generated columns (their values in ``frame`` are not written)."""
    if not virtual:
        con.register(_FRAME, frame.to_arrow())
        try:
            if replace:
                con.execute(f"CREATE OR REPLACE TABLE {table} AS SELECT * FROM {_FRAME}")
            else:
                con.execute(f"INSERT INTO {table} SELECT * FROM {_FRAME}")
        finally:
            con.unregister(_FRAME)
        return
    expressions = dict(virtual)
    if replace:
        con.register(_FRAME, frame.head(0).to_arrow())
        try:
            types = {row[0]: row[1] for row in con.execute(f"DESCRIBE SELECT * FROM {_FRAME}").fetchall()}
        finally:
            con.unregister(_FRAME)
        columns = [f'"{c}" {types[c]} GENERATED ALWAYS AS ({expressions[c]}) VIRTUAL' if c in expressions
                   else f'"{c}" {types[c]}' for c in frame.columns]
        con.execute(f"CREATE OR REPLACE TABLE {table} ({', '.join(columns)})")
    incremental.append_rows(con, table, frame, virtual=tuple(expressions))


def _record_start(con: Any, m: Model, srun: StageRun, sha: str, mode: str) -> None:
    """The model's 'running' row in ``meta.model_runs`` (committed at once)."""
    con.execute(
        "INSERT INTO meta.model_runs (run_id, model, kind, started, rows, status, sql_sha256, mode) "
        "VALUES (?, ?, ?, ?, 0, 'running', ?, ?)", [run_id(), m.name, m.kind, srun.started, sha, mode])


def _record(con: Any, m: Model, run: ModelRun, srun: StageRun, sha: str) -> None:
    """Finish the model's run row and append its ``meta.audit`` row (inside the caller's transaction).

    ``table_rows`` is the table's row count after the build (``rows`` counts the rows written,
    which for an incremental update is the rows appended or rebuilt)."""
    table_rows = None
    if run.status == "ok" and m.materialized != "view":
        table_rows = int(con.execute(f"SELECT count(*) FROM {_quoted(m.name)}").fetchall()[0][0])
    con.execute(
        "UPDATE meta.model_runs SET finished = ?, wall_s = ?, rows = ?, status = ?, sql_sha256 = ?, error = ?, "
        "mode = ?, table_rows = ? WHERE run_id = ? AND model = ? AND started = ? AND status = 'running'",
        [srun.finished, srun.wall_s, run.rows, run.status, sha, srun.error, run.mode, table_rows,
         run_id(), m.name, srun.started],
    )
    audit.record(con, "build" if run.status == "ok" else "build_failed", object=m.name, rows_in=srun.rows_in,
                 rows_out=run.rows, status=run.status,
                 detail={"kind": m.kind, "mode": run.mode, "table_rows": table_rows, "wall_s": round(srun.wall_s, 3),
                         "error": srun.error})


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
