"""``meta.stage_runs``: wall time, rows in and out, and peak memory of every pipeline stage."""

from __future__ import annotations

import datetime as dt
import resource
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from alphatwin.log import RUN_ID, get_logger

__all__ = ["StageRun", "stage", "peak_rss_mb"]

log = get_logger("stages")


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MiB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


@dataclass
class StageRun:
    """What one stage did; fill ``rows_in``/``rows_out`` while it runs."""

    stage: str
    command: str
    started: dt.datetime
    rows_in: int = 0
    rows_out: int = 0
    status: str = "ok"
    error: str | None = None
    wall_s: float = 0.0
    peak_rss_mb: float = 0.0
    finished: dt.datetime | None = None
    t0: float = field(default_factory=time.perf_counter, repr=False)

    def close(self) -> None:
        """Stamp wall time, peak RSS and the finish time (idempotent: the first call wins)."""
        if self.finished is None:
            self.wall_s = time.perf_counter() - self.t0
            self.peak_rss_mb = peak_rss_mb()
            self.finished = dt.datetime.now(dt.UTC)

    def record(self, con: Any) -> None:
        """Append this run to ``meta.stage_runs`` through ``con`` (closing it first)."""
        self.close()
        con.execute(
            "INSERT INTO meta.stage_runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [RUN_ID, self.stage, self.command, self.started, self.finished, self.wall_s,
             self.rows_in, self.rows_out, self.peak_rss_mb, self.status, self.error],
        )


@contextmanager
def stage(name: str, command: str = "") -> Iterator[StageRun]:
    """Time a stage; on exit the :class:`StageRun` holds wall time, peak RSS and the outcome.

    The caller records it (``run.record(con)``) in the same transaction as the stage's result,
    or after a failure in a transaction of its own.
    """
    run = StageRun(name, command, dt.datetime.now(dt.UTC))
    try:
        yield run
    except BaseException as exc:
        run.status = "failed" if not isinstance(exc, KeyboardInterrupt) else "interrupted"
        run.error = str(exc)[:500]
        raise
    finally:
        run.close()
        log.info(
            "%s: %s in %.2fs, %d rows in, %d rows out, peak RSS %.0f MiB",
            name, run.status, run.wall_s, run.rows_in, run.rows_out, run.peak_rss_mb,
            extra={"stage": name, "rows": run.rows_out, "status": run.status},
        )
