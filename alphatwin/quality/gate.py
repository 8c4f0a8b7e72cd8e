"""The quality gate between a source and the lake: validate, quarantine, flag, record.

:class:`QualityGate` implements :class:`alphatwin.lake.ingest.BatchGate`. Each batch is
validated with a Great Expectations suite (``expectations/<suite>.json``, see
:mod:`alphatwin.quality.validate`) against the context it needs: accepted history of the same
symbols (trailing returns for outliers, keys for restatements) and the request's range. Then:

* rows failing an ``error`` expectation go to ``quality.quarantine`` with every failed
  expectation and the offending values; they stay in the raw lake, excluded downstream;
* exact duplicate copies inside a batch collapse to their first copy (the others are
  quarantined as ``collapsed``); conflicting duplicates are all quarantined;
* rows failing a ``warning`` expectation (outliers) are kept and listed in ``quality.flags``
  (or quarantined with ``quarantine_outliers=True``);
* rows restating an accepted bar are recorded in ``quality.restatements`` (they supersede it);
* a batch-level failure (schema, empty batch) rejects the whole ingest.

Invariant (tested): rows received = rows accepted + rows quarantined, for every batch.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from alphatwin.errors import BatchRejectedError
from alphatwin.lake import catalog
from alphatwin.log import get_logger, new_id
from alphatwin.paths import WarehousePaths
from alphatwin.quality.store import ensure_quality_schema
from alphatwin.sources.base import BAR_COLUMNS, FetchRequest, interval_duration

__all__ = ["QualityGate", "GateCounts"]

log = get_logger("quality")

DUPLICATE = "unique_symbol_interval_ts"
RESTATES = "restates_accepted"
SELF = "(this ingest)"  # ingest_id of history rows from earlier batches of the running ingest
HISTORY_BARS = 64  # trailing bars of context per symbol (covers the outlier window)
_VALUE_COLUMNS = ["open", "high", "low", "close", "volume", "dividend", "split_ratio"]
_KEY = ["symbol", "interval", "ts"]


@dataclass
class GateCounts:
    """Row accounting of one validation (received = accepted + quarantined)."""

    received: int = 0
    quarantined: int = 0
    collapsed: int = 0
    flagged: int = 0
    restated: int = 0

    @property
    def accepted(self) -> int:
        return self.received - self.quarantined


@dataclass
class _Expectation:
    expectation: str
    expectation_type: str
    columns: str
    severity: str
    kwargs: str
    success: bool = True
    element_count: int = 0
    unexpected_count: int = 0
    samples: list[Any] = field(default_factory=list)
    sample_ts: list[Any] = field(default_factory=list)


class QualityGate:
    """Validate every batch of one ingest (or re-validation) with ``suite``.

    Parameters
    ----------
    paths
        The warehouse (read for accepted history).
    request
        The ingest's request: interval and requested range.
    suite
        Suite name in ``expectations/``.
    trigger
        ``ingest`` or ``validate`` (recorded).
    quarantine_outliers
        Quarantine ``warning`` rows instead of flagging them.
    history_until
        Only ingests committed before this time count as accepted history (re-validation).
    """

    def __init__(self, paths: WarehousePaths, request: FetchRequest, *, suite: str = "raw_bars",
                 trigger: str = "ingest", quarantine_outliers: bool = False, now: dt.datetime | None = None,
                 history_until: dt.datetime | None = None) -> None:
        self.paths, self.request, self.suite, self.trigger = paths, request, suite, trigger
        self.quarantine_outliers = quarantine_outliers
        self.now = now or dt.datetime.now(dt.UTC)
        self.history_until = history_until
        self.validation_id = new_id("val-")
        self.started = dt.datetime.now(dt.UTC)
        self.counts = GateCounts()
        self.suite_sha256 = ""
        self.batch_error: str | None = None
        self._t0 = time.perf_counter()
        self._quarantine: list[pl.DataFrame] = []
        self._flags: list[pl.DataFrame] = []
        self._restated: list[pl.DataFrame] = []
        self._expectations: dict[str, _Expectation] = {}
        self._tails: pl.DataFrame | None = None  # last accepted bars per symbol of earlier batches
        self._seen: dict[str, tuple[dt.datetime, dt.datetime]] = {}  # symbol -> ts range of earlier batches

    # -------------------------------------------------------------- BatchGate protocol
    def check(self, bars: pl.DataFrame, *, row_offset: int) -> None:
        """Validate one batch; remember its verdicts; reject the ingest on a batch-level failure."""
        from alphatwin.quality.validate import validate_frame

        self.counts.received += bars.height
        if bars.is_empty():
            self._reject("empty batch")
        self._check_overlap(bars)
        history = self._history(bars)
        report = validate_frame(
            bars.select(BAR_COLUMNS), suite=self.suite, interval=self.request.interval,
            requested_start=self.request.start, requested_end=self.request.end, now=self.now,
            history=history,
        )
        self.suite_sha256 = report.suite_sha256
        if report.batch_error:
            self._reject(report.batch_error)
        self._merge_expectations(report, bars)
        excluded = self._sort_out(bars, report.row_failures, row_offset, history)
        self._remember_tails(bars, row_offset, excluded)

    def persist(self, con: Any, ingest_id: str) -> None:
        """Write the verdicts of this validation inside the caller's transaction."""
        ensure_quality_schema(con)
        con.execute("UPDATE meta.validation_runs SET current = false WHERE ingest_id = ?", [ingest_id])
        if self.batch_error is not None:  # a rejected batch: no row reaches the lake, only the run is kept
            self._persist_run(con, ingest_id)
            return
        for table in ("quality.quarantine", "quality.flags", "quality.restatements"):
            con.execute(f"DELETE FROM {table} WHERE ingest_id = ?", [ingest_id])
        self._insert(con, "quality.quarantine", self._quarantine, ingest_id)
        self._insert(con, "quality.flags", self._flags, ingest_id)
        self._insert(con, "quality.restatements", self._restated, ingest_id)
        self._persist_run(con, ingest_id)

    # -------------------------------------------------------------- verdicts
    def _reject(self, reason: str) -> None:
        self.batch_error = reason
        raise BatchRejectedError(f"batch rejected by suite {self.suite}: {reason}")

    def _sort_out(self, bars: pl.DataFrame, failures: pl.DataFrame, offset: int,
                  history: pl.DataFrame | None) -> pl.DataFrame:
        """Turn the report into verdicts; return the batch's excluded ``row_nr`` (local)."""
        rows = bars.with_row_index("row_nr").with_columns(pl.col("row_nr").cast(pl.Int64))
        errors = failures.filter(pl.col("severity") == "error")
        dup_rows = errors.filter(pl.col("expectation") == DUPLICATE).select("row_nr").unique()
        others = errors.filter(pl.col("expectation") != DUPLICATE)
        warnings = failures.filter(pl.col("severity") == "warning")
        if self.quarantine_outliers:
            others, warnings = pl.concat([others, warnings]), warnings.clear()
        collapsed, conflicting = self._duplicates(rows, dup_rows)
        verdicts = _reasons(others)
        if not conflicting.is_empty():
            verdicts = pl.concat([verdicts, conflicting]).group_by("row_nr").agg(
                pl.col("reasons").list.explode(keep_nulls=False, empty_as_null=False).unique(maintain_order=True), pl.col("detail").str.join("; "))
        quarantine = _with_keys(verdicts, rows, offset).with_columns(pl.lit(False).alias("collapsed"))
        collapsed = collapsed.join(verdicts.select("row_nr"), on="row_nr", how="anti")
        collapsed = _with_keys(collapsed, rows, offset).with_columns(pl.lit(True).alias("collapsed"))
        self._quarantine.extend([quarantine, collapsed])
        self.counts.quarantined += quarantine.height + collapsed.height
        self.counts.collapsed += collapsed.height
        excluded = pl.concat([verdicts.select("row_nr"), collapsed.select(pl.col("row_nr") - offset)])
        flags = _with_keys(_reasons(warnings), rows, offset).join(
            quarantine.select("row_nr"), on="row_nr", how="anti")
        self._flags.append(flags)
        self.counts.flagged += flags.height
        restates = failures.filter(pl.col("expectation") == RESTATES).with_columns(pl.col("row_nr").cast(pl.Int64))
        restates = restates.join(excluded, on="row_nr", how="anti")  # a quarantined row restates nothing
        excluded = pl.concat([excluded, self._record_restatements(restates, rows, offset, history)])
        return excluded

    def _duplicates(self, rows: pl.DataFrame, dup_rows: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
        """Split duplicate rows into collapsible exact copies and conflicting groups."""
        empty = pl.DataFrame(schema={"row_nr": pl.Int64, "reasons": pl.List(pl.String), "detail": pl.String})
        if dup_rows.is_empty():
            return empty, empty
        dups = rows.join(dup_rows.with_columns(pl.col("row_nr").cast(pl.Int64)), on="row_nr")
        groups = dups.with_columns(
            pl.struct(_VALUE_COLUMNS).n_unique().over(_KEY).alias("_variants"),
            pl.col("row_nr").rank("ordinal").over(_KEY).alias("_copy"),
        )
        exact = groups.filter((pl.col("_variants") == 1) & (pl.col("_copy") > 1)).select(
            "row_nr", pl.lit(["duplicate_exact"]).alias("reasons"),
            pl.lit("exact copy of an earlier row in the batch; collapsed to one").alias("detail"))
        conflict = groups.filter(pl.col("_variants") > 1).select(
            "row_nr", pl.lit(["duplicate_conflict"]).alias("reasons"),
            pl.format("{} differing copies of this key in the batch", pl.col("_variants")).alias("detail"))
        return exact, conflict

    def _record_restatements(self, restates: pl.DataFrame, rows: pl.DataFrame, offset: int,
                             history: pl.DataFrame | None) -> pl.DataFrame:
        """Record rows that restate an accepted bar. A bar repeated from an earlier batch of this
        same ingest is a duplicate, not a restatement: an exact copy collapses, a conflicting
        one quarantines both copies. Returns the local ``row_nr`` excluded here."""
        none = pl.DataFrame(schema={"row_nr": pl.Int64})
        if restates.is_empty() or history is None:
            return none
        new = _with_keys(_reasons(restates), rows, offset)
        latest = history.select(*_KEY, *_VALUE_COLUMNS, "ingest_id", "_row")
        joined = new.join(rows.select(pl.col("row_nr") + offset, *_VALUE_COLUMNS), on="row_nr").join(
            latest, on=_KEY, how="left", suffix="_old")
        own = joined.filter(pl.col("ingest_id") == SELF)
        other = joined.filter(pl.col("ingest_id") != SELF)
        self._restated.append(other.select(*_KEY, pl.col("ingest_id").alias("superseded_ingest_id"), "detail"))
        self.counts.restated += other.height
        if own.is_empty():
            return none
        same = pl.all_horizontal([pl.col(c).eq_missing(pl.col(f"{c}_old")) for c in _VALUE_COLUMNS])
        exact = own.filter(same).select(
            "row_nr", *_KEY, pl.lit(["duplicate_exact"]).alias("reasons"),
            pl.lit("exact copy of a bar in an earlier batch of this ingest; collapsed to one").alias("detail"),
            pl.lit(True).alias("collapsed"))
        conflict = own.filter(~same)
        detail = pl.lit("differing copies of this key in two batches of this ingest")
        both = pl.concat([
            conflict.select("row_nr", *_KEY),
            conflict.select(pl.col("_row").alias("row_nr"), *_KEY),
        ]).unique("row_nr").select("row_nr", *_KEY, pl.lit(["duplicate_conflict"]).alias("reasons"),
                                   detail.alias("detail"), pl.lit(False).alias("collapsed"))
        self._quarantine.extend([exact, both])
        self.counts.quarantined += exact.height + both.height
        self.counts.collapsed += exact.height
        self._tails = None if self._tails is None else self._tails.join(
            conflict.select(pl.col("_row")), on="_row", how="anti")
        return pl.concat([exact.select(pl.col("row_nr") - offset),
                          conflict.select(pl.col("row_nr") - offset)])

    # -------------------------------------------------------------- context
    def _check_overlap(self, bars: pl.DataFrame) -> None:
        """Reject a batch that repeats bars of an earlier batch of this ingest beyond the window
        the gate keeps in memory (it could not tell duplicates from new bars there)."""
        ranges = bars.group_by("symbol").agg(pl.col("ts").min().alias("lo"), pl.col("ts").max().alias("hi"))
        kept = {} if self._tails is None else {
            sym: lo for sym, lo in self._tails.group_by("symbol").agg(pl.col("ts").min()).iter_rows()}
        for symbol, lo, hi in ranges.iter_rows():
            seen = self._seen.get(symbol)
            if seen is not None and lo <= seen[1] and (symbol not in kept or lo < kept[symbol]):
                self._reject(
                    f"{symbol} arrives in two batches of one ingest with overlapping bars "
                    f"({lo:%Y-%m-%d} .. {seen[1]:%Y-%m-%d}) beyond the gate's {HISTORY_BARS}-bar window; "
                    "ingest the overlapping files separately"
                )
            self._seen[symbol] = (min(lo, seen[0]), max(hi, seen[1])) if seen else (lo, hi)

    def _history(self, bars: pl.DataFrame) -> pl.DataFrame | None:
        """The latest accepted bar per key of the batch's symbols around its range: committed
        ingests (in commit order) and then earlier batches of this ingest."""
        parts = [] if self._tails is None else [self._tails.join(bars.select("symbol").unique(), on="symbol")]
        stored = self._stored_history(bars)
        if stored is not None:
            parts.insert(0, stored)
        parts = [p for p in parts if not p.is_empty()]
        if not parts:
            return None
        merged = pl.concat(parts, how="diagonal_relaxed")  # stored (commit order) first, this ingest last
        return merged.unique(_KEY, keep="last", maintain_order=True).sort("symbol", "ts", maintain_order=True)

    def _stored_history(self, bars: pl.DataFrame) -> pl.DataFrame | None:
        if not self.paths.db.exists():
            return None
        symbols = bars["symbol"].unique().to_list()
        lookback = interval_duration(self.request.interval) * HISTORY_BARS * 2 + dt.timedelta(days=7)
        lo, hi = bars["ts"].min() - lookback, bars["ts"].max()  # type: ignore[operator]
        with catalog.connect(self.paths, read_only=True) as con:
            known = con.execute(
                "SELECT count(*) FROM meta.datasets WHERE interval = ? AND symbol IN (SELECT unnest(?::VARCHAR[]))",
                [self.request.interval, symbols]).fetchall()[0][0]
            if not known:
                return None
            view = "quality.accepted_bars" if _has_view(con, "quality", "accepted_bars") else "raw.bars"
            query = (f"SELECT {', '.join('b.' + c for c in BAR_COLUMNS)}, b.ingest_id, -1::BIGINT AS _row "
                     f"FROM {view} AS b JOIN meta.ingest_runs AS r ON r.ingest_id = b.ingest_id "
                     "WHERE b.interval = ? AND b.symbol IN (SELECT unnest(?::VARCHAR[])) AND b.ts BETWEEN ? AND ?")
            params: list[Any] = [self.request.interval, symbols, lo, hi]
            if self.history_until is not None:
                query += " AND r.finished < ?"
                params.append(self.history_until)
            return con.sql(query + " ORDER BY r.finished, b.ts", params=params).pl()

    def _remember_tails(self, bars: pl.DataFrame, offset: int, excluded: pl.DataFrame) -> None:
        """Keep the last accepted bars per symbol (with their ingest-wide row numbers)."""
        tail = (bars.with_row_index("_local").with_columns(pl.col("_local").cast(pl.Int64))
                .join(excluded.rename({"row_nr": "_local"}), on="_local", how="anti")
                .select(*BAR_COLUMNS, pl.lit(SELF).alias("ingest_id"), (pl.col("_local") + offset).alias("_row")))
        tail = tail.group_by("symbol", maintain_order=True).tail(HISTORY_BARS)
        merged = tail if self._tails is None else pl.concat([self._tails, tail], how="diagonal_relaxed")
        self._tails = merged.group_by("symbol", maintain_order=True).tail(HISTORY_BARS)

    # -------------------------------------------------------------- results
    def _merge_expectations(self, report: Any, bars: pl.DataFrame) -> None:
        for e in report.expectations:
            key = e.name if hasattr(e, "name") else e.expectation
            agg = self._expectations.get(key)
            if agg is None:
                agg = self._expectations[key] = _Expectation(
                    key, e.expectation_type, ",".join(e.columns) if isinstance(e.columns, (list, tuple)) else str(e.columns),
                    e.severity, json.dumps(e.kwargs, default=str))
            agg.success = agg.success and bool(e.success)
            agg.element_count += int(e.element_count or 0)
            agg.unexpected_count += int(e.unexpected_count or 0)
            if len(agg.samples) < 10:
                agg.samples.extend(list(e.sample_values or [])[: 10 - len(agg.samples)])
        if not report.row_failures.is_empty():
            sample = report.row_failures.group_by("expectation").head(5).join(
                bars.with_row_index("row_nr").select(pl.col("row_nr").cast(pl.Int64), "symbol", "ts"),
                left_on=pl.col("row_nr").cast(pl.Int64), right_on="row_nr", how="left")
            for name, sym, ts in sample.select("expectation", "symbol", "ts").iter_rows():
                agg = self._expectations.get(name)
                if agg is not None and len(agg.sample_ts) < 10:
                    agg.sample_ts.append(f"{sym} {ts:%Y-%m-%d %H:%M}")

    def _insert(self, con: Any, table: str, frames: list[pl.DataFrame], ingest_id: str) -> None:
        frames = [f for f in frames if not f.is_empty()]
        if not frames:
            return
        frame = pl.concat(frames, how="diagonal_relaxed").with_columns(
            pl.lit(ingest_id).alias("ingest_id"), pl.lit(self.validation_id).alias("validation_id"))
        con.register("_verdicts", frame.to_arrow())
        try:
            if table == "quality.quarantine":
                con.execute("INSERT INTO quality.quarantine SELECT ingest_id, symbol, interval, ts, row_nr, reasons, "
                            "detail, collapsed, validation_id, now() FROM _verdicts")
            elif table == "quality.flags":
                con.execute("INSERT INTO quality.flags SELECT ingest_id, symbol, interval, ts, row_nr, reasons, "
                            "detail, validation_id FROM _verdicts")
            else:
                con.execute("INSERT INTO quality.restatements SELECT symbol, interval, ts, ingest_id, "
                            "superseded_ingest_id, detail, validation_id FROM _verdicts")
        finally:
            con.unregister("_verdicts")

    def _persist_run(self, con: Any, ingest_id: str) -> None:
        c = self.counts
        if self.batch_error is not None:
            c = GateCounts(received=c.received, quarantined=c.received)
        failed_errors = any(not e.success and e.severity == "error" for e in self._expectations.values())
        con.execute(
            "INSERT INTO meta.validation_runs VALUES (?, ?, ?, ?, ?, ?, now(), ?, ?, ?, ?, ?, ?, ?, ?, ?, true)",
            [self.validation_id, ingest_id, self.suite, self.suite_sha256, self.trigger, self.started,
             time.perf_counter() - self._t0, c.received, c.accepted, c.quarantined, c.collapsed, c.flagged,
             c.restated, self.batch_error is None and not failed_errors, self.batch_error],
        )
        for e in self._expectations.values():
            pct = 100.0 * e.unexpected_count / e.element_count if e.element_count else 0.0
            con.execute(
                "INSERT INTO meta.validation_results VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [self.validation_id, e.expectation, e.expectation_type, e.columns, e.severity, e.success,
                 e.element_count, e.unexpected_count, pct, json.dumps(e.samples, default=str),
                 json.dumps(e.sample_ts), e.kwargs],
            )
        log.info("validation %s of %s: %d received, %d accepted, %d quarantined (%d collapsed), %d flagged",
                 self.validation_id, ingest_id, c.received, c.accepted, c.quarantined, c.collapsed, c.flagged,
                 extra={"stage": "validate", "ingest_id": ingest_id})


def _reasons(failures: pl.DataFrame) -> pl.DataFrame:
    """One row per failing batch row: every failed expectation and the offending values."""
    if failures.is_empty():
        return pl.DataFrame(schema={"row_nr": pl.Int64, "reasons": pl.List(pl.String), "detail": pl.String})
    return (
        failures.with_columns(pl.col("row_nr").cast(pl.Int64))
        .group_by("row_nr", maintain_order=True)
        .agg(pl.col("expectation").unique(maintain_order=True).alias("reasons"),
             pl.format("{}: {}", "expectation", "values").str.join("; ").alias("detail"))
    )


def _with_keys(verdicts: pl.DataFrame, rows: pl.DataFrame, offset: int) -> pl.DataFrame:
    keyed = verdicts.join(rows.select("row_nr", *_KEY), on="row_nr", how="left")
    return keyed.with_columns((pl.col("row_nr") + offset).alias("row_nr"))


def _has_view(con: Any, schema: str, name: str) -> bool:
    return bool(con.execute(
        "SELECT count(*) FROM duckdb_views() WHERE database_name = current_database() AND schema_name = ? "
        "AND view_name = ?", [schema, name]).fetchall()[0][0])
