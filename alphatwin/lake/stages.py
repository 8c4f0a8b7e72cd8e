"""``meta.stage_runs``: wall time, rows in and out, and memory of every pipeline stage.

Stages: ``ingest`` (rows in = received from the source, rows out = accepted by the quality
gate), ``validate``, ``build:<schema>.<table>``, ``backtest``, ``sweep``, ``report`` and
``quality_report``. Memory: ``rss_start_mb`` is the resident set size when the stage began,
``stage_peak_rss_mb`` the highest RSS a light daemon thread sampled while it ran (every
:data:`SAMPLE_EVERY` s, plus the start and the end), ``peak_rss_mb`` the process's high-water
mark so far (``ru_maxrss``, which earlier stages of the same command may have set).
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import resource
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from alphatwin.log import bind, get_logger, redact, run_id

if TYPE_CHECKING:
    from alphatwin.paths import WarehousePaths

__all__ = ["StageRun", "stage", "recorded_stage", "record_stage", "peak_rss_mb", "rss_mb", "COLUMNS"]

log = get_logger("stages")

SAMPLE_EVERY = 0.05  # seconds between RSS samples
#: Columns of meta.stage_runs added after the first release (ALTER TABLE ... ADD COLUMN IF NOT EXISTS).
COLUMNS = (("rss_start_mb", "DOUBLE"), ("stage_peak_rss_mb", "DOUBLE"), ("context", "VARCHAR"))


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MiB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


_PROCESS: Any = None


def rss_mb() -> float:
    """The resident set size of this process now, in MiB (psutil)."""
    global _PROCESS
    if _PROCESS is None:
        import psutil

        _PROCESS = psutil.Process()
    return float(_PROCESS.memory_info().rss) / (1024 * 1024)


class _RssSampler(threading.Thread):
    """Samples RSS every ``every`` seconds until stopped; ``peak`` is the highest seen."""

    def __init__(self, every: float = SAMPLE_EVERY) -> None:
        super().__init__(name="alphatwin-rss", daemon=True)
        self.every = every
        self.start_mb = self.peak = rss_mb()
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.wait(self.every):
            try:
                self.peak = max(self.peak, rss_mb())
            except Exception:  # pragma: no cover - the process is going away
                return

    def stop(self) -> float:
        self._done.set()
        self.join(timeout=1.0)
        self.peak = max(self.peak, rss_mb())
        return self.peak


@dataclass
class StageRun:
    """What one stage did; fill ``rows_in``/``rows_out`` (and ``context``) while it runs."""

    stage: str
    command: str
    started: dt.datetime
    rows_in: int = 0
    rows_out: int = 0
    status: str = "ok"
    error: str | None = None
    wall_s: float = 0.0
    peak_rss_mb: float = 0.0
    rss_start_mb: float | None = None
    stage_peak_rss_mb: float | None = None
    context: dict[str, Any] = field(default_factory=dict)
    finished: dt.datetime | None = None
    t0: float = field(default_factory=time.perf_counter, repr=False)
    _sampler: _RssSampler | None = field(default=None, repr=False)

    def close(self) -> None:
        """Stamp wall time, memory and the finish time (idempotent: the first call wins)."""
        if self.finished is None:
            self.wall_s = time.perf_counter() - self.t0
            if self._sampler is not None:
                self.stage_peak_rss_mb = self._sampler.stop()
                self._sampler = None
            self.peak_rss_mb = peak_rss_mb()
            self.finished = dt.datetime.now(dt.UTC)

    def record(self, con: Any) -> None:
        """Append this run to ``meta.stage_runs`` through ``con`` (closing it first)."""
        self.close()
        con.execute(
            "INSERT INTO meta.stage_runs (run_id, stage, command, started, finished, wall_s, rows_in, rows_out, "
            "peak_rss_mb, status, error, rss_start_mb, stage_peak_rss_mb, context) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [run_id(), self.stage, redact(self.command), self.started, self.finished, self.wall_s,
             self.rows_in, self.rows_out, self.peak_rss_mb, self.status,
             None if self.error is None else redact(self.error), self.rss_start_mb, self.stage_peak_rss_mb,
             json.dumps(self.context, default=str) if self.context else None],
        )


@contextmanager
def stage(name: str, command: str = "", **context: Any) -> Iterator[StageRun]:
    """Time a stage; on exit the :class:`StageRun` holds wall time, memory and the outcome.

    ``context`` (``ingest_id=...``) is stored with the run and carried by every log record
    inside the block, like ``stage``. The caller records it (``run.record(con)``) in the same
    transaction as the stage's result, or after a failure in a transaction of its own
    (:func:`recorded_stage` does that for stages without a transaction of their own).
    """
    sampler = _RssSampler()
    sampler.start()
    run = StageRun(name, command, dt.datetime.now(dt.UTC), rss_start_mb=sampler.start_mb,
                   context=dict(context), _sampler=sampler)
    with bind(stage=name, **{k: v for k, v in context.items() if k in ("ingest_id", "symbol", "source")}):
        try:
            yield run
        except BaseException as exc:
            run.status = "failed" if not isinstance(exc, KeyboardInterrupt) else "interrupted"
            run.error = redact(str(exc))[:500]
            raise
        finally:
            run.close()
            log.info(
                "%s: %s in %.2fs, %d rows in, %d rows out, RSS %.0f MiB at start, peak %.0f MiB%s",
                name, run.status, run.wall_s, run.rows_in, run.rows_out, run.rss_start_mb or 0.0,
                run.stage_peak_rss_mb or 0.0, f" ({run.error})" if run.error else "",
                extra={"rows": run.rows_out, "rows_in": run.rows_in, "rows_out": run.rows_out,
                       "status": run.status, "wall_s": round(run.wall_s, 4), "peak_rss_mb": run.stage_peak_rss_mb},
            )


RECORD_WAIT = 5.0  # seconds to wait for the catalog when recording a stage on its own


def record_stage(paths: WarehousePaths, run: StageRun) -> bool:
    """Append ``run`` to ``meta.stage_runs`` in a transaction of its own; never raises (a stage
    that cannot be recorded, e.g. the catalog is busy, is logged and skipped). False when not
    recorded (also when there is no warehouse: recording never creates one)."""
    from alphatwin.lake import catalog

    if not paths.db.exists():
        return False
    try:
        with catalog.connect(paths, wait=RECORD_WAIT) as con:
            run.record(con)
        return True
    except Exception as exc:
        log.info("stage %s not recorded in meta.stage_runs: %s", run.stage, redact(str(exc)).splitlines()[0])
        return False


@contextmanager
def recorded_stage(name: str, paths: WarehousePaths, command: str = "", **context: Any) -> Iterator[StageRun]:
    """:func:`stage`, recorded in ``meta.stage_runs`` on exit, success or failure (its own transaction)."""
    run: StageRun | None = None
    try:
        with stage(name, command or _argv(), **context) as run:
            yield run
    finally:
        if run is not None:
            record_stage(paths, run)


def staged(name: str, *, rows: Callable[[Any], tuple[int, int]] | None = None,
           context: Callable[[Any], dict[str, Any]] | None = None) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorate ``fn(con, ..., command=None, save=True)`` (a backtest or sweep): its run becomes a
    stage recorded through ``con`` when ``save`` (a read-only ``--no-save`` run is only logged).
    ``rows(result)`` gives (rows in, rows out) and ``context(result)`` the stored context."""

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def wrapper(con: Any, *args: Any, **kwargs: Any) -> Any:
            srun: StageRun | None = None
            try:
                with stage(name, kwargs.get("command") or _argv()) as srun:
                    result = fn(con, *args, **kwargs)
                    if rows is not None:
                        srun.rows_in, srun.rows_out = rows(result)
                    if context is not None:
                        srun.context.update(context(result))
                return result
            finally:
                if srun is not None and kwargs.get("save", True):
                    try:
                        srun.record(con)
                    except Exception as exc:  # never hide the stage's own error or result
                        log.info("stage %s not recorded in meta.stage_runs: %s", name, str(exc).splitlines()[0])

        return wrapper

    return decorate


def _argv() -> str:
    import shlex

    return " ".join(shlex.quote(a) for a in ["alphatwin", *sys.argv[1:]])
