"""Re-run validation on ingests already in the lake (``alphatwin validate``).

Each ingest is read back from the lake, validated with the current suite as it would have been
at its ingest time (``now`` = the ingest's start, accepted history = ingests committed before it), and
its verdicts (quarantine, flags, restatements) are replaced in one transaction; earlier
validation runs stay in ``meta.validation_runs`` with ``current = false``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import polars as pl

from alphatwin.errors import BatchRejectedError, InputError
from alphatwin.lake import audit, catalog, faults
from alphatwin.lake.lock import write_lock
from alphatwin.lake.stages import recorded_stage
from alphatwin.paths import WarehousePaths
from alphatwin.quality.gate import GateCounts, QualityGate
from alphatwin.sources.base import BAR_COLUMNS, FetchRequest

__all__ = ["Revalidation", "revalidate"]

CHUNK_SYMBOLS = 500


@dataclass(frozen=True)
class Revalidation:
    """The outcome of re-validating one ingest."""

    ingest_id: str
    validation_id: str
    counts: GateCounts
    batch_error: str | None


def _ingests(con: Any, ingest_id: str | None) -> list[tuple[Any, ...]]:
    query = ("SELECT ingest_id, interval, requested_start, requested_end, started, finished FROM meta.ingest_runs "
             "WHERE status IN ('committed', 'partial')")
    params: list[Any] = []
    if ingest_id is not None:
        query += " AND ingest_id = ?"
        params.append(ingest_id)
    rows = con.execute(query + " ORDER BY finished", params).fetchall()
    if ingest_id is not None and not rows:
        raise InputError(f"`--ingest-id` {ingest_id!r} is not a committed ingest (see meta.ingest_runs)")
    return rows


def _read(paths: WarehousePaths, ingest_id: str, symbols: list[str]) -> pl.DataFrame:
    with catalog.connect(paths, read_only=True) as con:
        return con.sql(
            f"SELECT {', '.join(BAR_COLUMNS)}, ingest_id, source FROM raw.bars WHERE ingest_id = ? "
            "AND symbol IN (SELECT unnest(?::VARCHAR[])) ORDER BY symbol, ts",
            params=[ingest_id, symbols],
        ).pl()


def _audit(con: Any, ingest_id: str, gate: QualityGate) -> None:
    """The re-validation's quarantine decisions in ``meta.audit`` (inside its transaction)."""
    c = gate.counts
    audit.record(con, "quarantine", object=ingest_id, rows_in=c.received, rows_out=c.accepted,
                 rows_quarantined=c.quarantined, status="rejected" if gate.batch_error else "ok",
                 detail={"validation_id": gate.validation_id, "suite": gate.suite, "trigger": "validate",
                         "collapsed": c.collapsed, "flagged": c.flagged, "restated": c.restated,
                         "batch_error": gate.batch_error})


def revalidate(paths: WarehousePaths, *, ingest_id: str | None = None, suite: str = "raw_bars",
               progress: Callable[[int], None] | None = None) -> list[Revalidation]:
    """Validate ``ingest_id`` (or every committed ingest, oldest first) again; see the module docstring."""
    out: list[Revalidation] = []
    with write_lock(paths), recorded_stage("validate", paths, suite=suite) as srun:  # meta.stage_runs
        with catalog.connect(paths, read_only=True) as con:
            runs = _ingests(con, ingest_id)
        for run_id, interval, start, end, started, finished in runs:
            gate = QualityGate(paths, FetchRequest((), interval, start, end), suite=suite, trigger="validate",
                               now=started, history_until=finished)
            with catalog.connect(paths, read_only=True) as con:
                symbols = [r[0] for r in con.execute(
                    "SELECT DISTINCT symbol FROM raw.bars WHERE ingest_id = ? ORDER BY 1", [run_id]).fetchall()]
            offset = 0
            try:
                for i in range(0, len(symbols), CHUNK_SYMBOLS):
                    bars = _read(paths, run_id, symbols[i : i + CHUNK_SYMBOLS])
                    gate.check(bars, row_offset=offset)
                    offset += bars.height
                    if progress is not None:
                        progress(bars.height)
            except BatchRejectedError:
                pass  # recorded as the run's batch_error
            with catalog.connect(paths) as con:
                con.execute("BEGIN TRANSACTION")
                gate.persist(con, run_id)
                _audit(con, run_id, gate)
                faults.point("validate:before_commit")
                con.execute("COMMIT")
            out.append(Revalidation(run_id, gate.validation_id, gate.counts, gate.batch_error))
            srun.rows_in, srun.rows_out = srun.rows_in + gate.counts.received, srun.rows_out + gate.counts.accepted
    return out
