"""Run an expectation suite on a batch of bars with Great Expectations; one row per failure.

:func:`validate_frame` takes a Polars batch in :data:`~alphatwin.sources.base.BAR_SCHEMA`, adds
the columns the suite decides on (``is_equity`` from a symbol classifier; ``is_history`` marking
accepted history rows appended after the batch as context for the sequential rules), hands the
frame to GX's pandas engine (an ephemeral context, a pandas datasource, a whole-dataframe batch
definition and a ``ValidationDefinition`` per suite, created once per process) and turns GX's
unexpected row indices into :attr:`ValidationReport.row_failures`.

History rows are context only: they are never reported, and per-expectation counts cover the
batch rows alone. The uniqueness expectation keys on ``is_history`` too, so a batch row that
restates an accepted bar is ``restates_accepted`` (info), not a duplicate.

GX is imported on first use (about 5 s); importing this module does not import it.

>>> from alphatwin.sources.synthetic import SyntheticSource
>>> from alphatwin.sources.base import FetchRequest
>>> bars = next(SyntheticSource(n_symbols=2, n_bars=100).fetch(FetchRequest()))
>>> report = validate_frame(bars, interval="1d")  # doctest: +SKIP
>>> report.success, report.row_failures.height  # doctest: +SKIP
(True, 0)
"""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from alphatwin.errors import QualityError
from alphatwin.quality.suites import LoadedSuite, load_suite
from alphatwin.sources.base import BAR_COLUMNS, BAR_SCHEMA, interval_duration

__all__ = [
    "ValidationReport",
    "ExpectationOutcome",
    "validate_frame",
    "is_equity_symbol",
    "ROW_FAILURE_SCHEMA",
]

#: Columns of :attr:`ValidationReport.row_failures`.
ROW_FAILURE_SCHEMA: dict[str, pl.DataType] = {
    "row_nr": pl.UInt32(),
    "expectation": pl.String(),
    "severity": pl.String(),
    "columns": pl.String(),
    "values": pl.String(),
}
_HELPERS = ("is_equity", "is_history")
_NOT_RENDERED = {"symbol", "interval", "is_history"}
_SAMPLE = 10
_NON_EQUITY = re.compile(r"(=X|=F)$|^\^|-(USD|USDT|USDC|EUR|GBP|JPY|BTC|ETH)$")
_RESULT_FORMAT = {"result_format": "COMPLETE", "return_unexpected_index_query": False, "partial_unexpected_count": _SAMPLE}


@dataclass(frozen=True)
class ExpectationOutcome:
    """How one expectation of the suite fared on the batch (history rows excluded).

    ``name`` is the expectation's short stable name (``meta.name`` in the suite), ``kwargs``
    its arguments with the run's parameters filled in, ``sample_values`` up to 10 offending
    values (a dict per row for multicolumn expectations), ``exception`` GX's error message
    when the expectation could not be evaluated.
    """

    name: str
    expectation_type: str
    columns: tuple[str, ...]
    kwargs: dict[str, Any]
    severity: str
    success: bool
    element_count: int
    unexpected_count: int
    unexpected_percent: float
    sample_values: list[Any] = field(default_factory=list)
    exception: str | None = None

    @property
    def expectation(self) -> str:
        """Alias of :attr:`name` (the value used in ``row_failures.expectation``)."""
        return self.name


@dataclass(frozen=True)
class ValidationReport:
    """The verdict of one suite on one batch.

    Attributes
    ----------
    suite, suite_sha256
        Suite name and the SHA-256 of its canonical JSON (record it with the run).
    success
        No ``error`` or ``batch`` expectation failed and there is no ``batch_error``
        (warnings and info never fail a batch).
    rows, history_rows
        Batch rows validated; accepted rows used as context.
    expectations
        One :class:`ExpectationOutcome` per suite expectation, in suite order.
    row_failures
        One row per (batch row, failed row-level expectation): ``row_nr`` (UInt32 index into the
        input frame), ``expectation`` (short name), ``severity``, ``columns`` (comma-joined) and
        ``values`` (the offending values, e.g. ``"high=9.5 open=10.0 close=9.8"``).
    batch_error
        Why the whole batch is unusable (missing/extra columns, wrong dtypes, empty batch, a
        failed ``batch`` expectation), else ``None``.
    parameters
        The suite parameters the run used (defaults from the suite, then the caller's).
    seconds
        Wall time of the validation (preparation, GX, reporting).
    """

    suite: str
    suite_sha256: str
    success: bool
    rows: int
    history_rows: int
    expectations: list[ExpectationOutcome]
    row_failures: pl.DataFrame
    batch_error: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    def failures_of(self, severity: str) -> pl.DataFrame:
        """The row failures of one severity (``error``, ``warning`` or ``info``)."""
        return self.row_failures.filter(pl.col("severity") == severity)


def is_equity_symbol(symbol: str) -> bool:
    """Default asset classifier: everything except Yahoo-style FX (``=X``), futures (``=F``),
    indices (``^``) and crypto pairs (``BTC-USD``) is an equity (whole-share volume)."""
    return _NON_EQUITY.search(symbol) is None


def validate_frame(  # noqa: PLR0913 - the run's context is keyword-only and documented
    frame: pl.DataFrame,
    *,
    suite: str = "raw_bars",
    interval: str,
    requested_start: dt.datetime | None = None,
    requested_end: dt.datetime | None = None,
    now: dt.datetime | None = None,
    history: pl.DataFrame | None = None,
    equity_symbols: Iterable[str] | Callable[[str], bool] | None = None,
    outlier_k: float | None = None,
    parameters: Mapping[str, Any] | None = None,
    severity_overrides: Mapping[str, str] | None = None,
    suites_dir: str | Path | None = None,
) -> ValidationReport:
    """Validate a batch of bars against ``expectations/<suite>.json``.

    Parameters
    ----------
    frame
        The batch, in :data:`~alphatwin.sources.base.BAR_SCHEMA` (column order free; ``ts`` any
        Datetime, naive meaning UTC). ``row_nr`` in the report indexes its rows.
    suite
        Suite name (see :mod:`alphatwin.quality.suites`).
    interval
        The requested bar interval (``"1d"``, ``"5m"``...).
    requested_start, requested_end
        The requested half-open range ``[start, end)`` (naive means UTC); ``None``: unbounded.
    now
        Bars stamped after ``now`` are in the future (default: the current time).
    history
        Accepted bars (same columns; extra ones are ignored) of the batch's symbols: context for
        the sequential rules (trailing returns, previous close) and the keys ``restates_accepted``
        looks for. Never reported.
    equity_symbols
        Which symbols are equities (whole-share volume): a set, or a predicate; default
        :func:`is_equity_symbol`.
    outlier_k
        Robust deviations beyond which a return is an outlier (default: the suite's ``outlier_k``).
    parameters
        Overrides of any other suite parameter (``outlier_window``, ``max_abs_log_return``...).
    severity_overrides
        Severity per expectation name, e.g. ``{"return_outlier": "error"}`` to quarantine outliers.
    suites_dir
        Folder of the suites (default: the repository's ``expectations/``).

    Returns
    -------
    ValidationReport

    Raises
    ------
    QualityError
        The suite is missing or invalid.
    InputError
        ``interval`` is unknown.
    """
    t0 = time.perf_counter()
    spec = load_suite(suite, directory=suites_dir)
    interval_duration(interval)
    overrides = _check_overrides(spec, severity_overrides)
    params = _parameters(spec, frame, interval, requested_start, requested_end, now, outlier_k, parameters)
    problem = _batch_problem(frame)
    if problem is not None:
        return _rejected(spec, frame.height, problem, params, t0)
    batch = _conform(frame)
    context = _history_rows(history, batch)
    gx_frame = _gx_frame(batch, context, _classifier(equity_symbols))
    results = _run_gx(spec, gx_frame, params)
    outcomes, failures = _collect(spec, results, batch, overrides)
    batch_error = _batch_error(outcomes)
    success = batch_error is None and all(o.success for o in outcomes if o.severity in ("error", "batch"))
    return ValidationReport(
        suite=spec.name, suite_sha256=spec.sha256, success=success, rows=batch.height,
        history_rows=0 if context is None else context.height, expectations=outcomes, row_failures=failures,
        batch_error=batch_error, parameters=params, seconds=time.perf_counter() - t0,
    )


# --------------------------------------------------------------------------- preparation


def _check_overrides(spec: LoadedSuite, overrides: Mapping[str, str] | None) -> dict[str, str]:
    names = {e["meta"]["name"] for e in spec.expectations}
    out = dict(overrides or {})
    for name, severity in out.items():
        if name not in names:
            raise QualityError(f"`severity_overrides` names {name!r}, which is not in suite {spec.name!r}", suite=spec.name)
        if severity not in ("error", "warning", "info"):
            raise QualityError(f"`severity_overrides[{name!r}]` must be error, warning or info, got {severity!r}")
    return out


def _utc(value: dt.datetime | dt.date | None) -> dt.datetime | None:
    if value is None:
        return None
    if not isinstance(value, dt.datetime):
        value = dt.datetime(value.year, value.month, value.day)
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def _parameters(spec: LoadedSuite, frame: pl.DataFrame, interval: str, start: Any, end: Any, now: Any,
                outlier_k: float | None, extra: Mapping[str, Any] | None) -> dict[str, Any]:
    """Suite defaults, then the caller's overrides, then the run's own values."""
    params = spec.parameters
    params.update(extra or {})
    if outlier_k is not None:
        params["outlier_k"] = float(outlier_k)
    lo, hi = _ts_bounds(frame)
    params.update(
        now=_utc(now) or dt.datetime.now(dt.UTC),
        requested_start=_utc(start) or lo,
        requested_end=_utc(end) or hi,
        interval=interval,
        intervals=[interval],
    )
    return params


def _ts_bounds(frame: pl.DataFrame) -> tuple[dt.datetime, dt.datetime]:
    """Bounds that accept every ts of ``frame`` (used for an unbounded requested range)."""
    lo, hi = dt.datetime(1970, 1, 1, tzinfo=dt.UTC), dt.datetime(2200, 1, 1, tzinfo=dt.UTC)
    ts = frame.get_column("ts") if "ts" in frame.columns else None
    if ts is not None and isinstance(ts.dtype, pl.Datetime) and ts.null_count() < ts.len():
        first, last = _utc(ts.min()), _utc(ts.max())  # type: ignore[arg-type]
        lo, hi = min(lo, first), max(hi, last + dt.timedelta(microseconds=1))  # type: ignore[operator]
    return lo, hi


def _batch_problem(frame: pl.DataFrame) -> str | None:
    """Why ``frame`` cannot be validated row by row, or ``None``."""
    missing = [c for c in BAR_COLUMNS if c not in frame.columns]
    extra = [c for c in frame.columns if c not in BAR_SCHEMA]
    if missing or extra:
        parts = ([f"missing column(s) {', '.join(missing)}"] if missing else []) + (
            [f"unexpected column(s) {', '.join(extra)}"] if extra else [])
        return "; ".join(parts)
    bad = [f"{c} is {frame.schema[c]}" for c in ("symbol", "interval") if not isinstance(frame.schema[c], (pl.String, pl.Categorical, pl.Enum))]
    if not isinstance(frame.schema["ts"], pl.Datetime):
        bad.append(f"ts is {frame.schema['ts']}, expected Datetime (UTC)")
    bad += [f"{c} is {frame.schema[c]}, expected a number" for c in BAR_COLUMNS[3:] if not frame.schema[c].is_numeric()]
    if bad:
        return "wrong dtype(s): " + "; ".join(bad)
    if frame.is_empty():
        return "empty batch"
    return None


def _conform(frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` in BAR_SCHEMA column order and dtypes (ts in UTC; naive taken as UTC). No row changes."""
    ts = frame.schema["ts"]
    ts_expr = pl.col("ts").dt.replace_time_zone("UTC") if ts.time_zone is None else pl.col("ts").dt.convert_time_zone("UTC")  # type: ignore[union-attr]
    return frame.with_columns(ts_expr).select([pl.col(c).cast(t) for c, t in BAR_SCHEMA.items()])


def _history_rows(history: pl.DataFrame | None, batch: pl.DataFrame) -> pl.DataFrame | None:
    """Accepted rows of the batch's symbols, conformed; ``None`` when there are none."""
    if history is None or history.is_empty():
        return None
    problem = _batch_problem(history.select([c for c in history.columns if c in BAR_SCHEMA]))
    if problem is not None:
        raise QualityError(f"`history` is not in the bar schema: {problem}")
    rows = _conform(history.select(BAR_COLUMNS)).join(batch.select("symbol").unique(), on="symbol", how="semi")
    return None if rows.is_empty() else rows


def _classifier(equity_symbols: Iterable[str] | Callable[[str], bool] | None) -> Callable[[str], bool]:
    if equity_symbols is None:
        return is_equity_symbol
    if callable(equity_symbols):
        return equity_symbols
    members = frozenset(equity_symbols)
    return members.__contains__


def _gx_frame(batch: pl.DataFrame, history: pl.DataFrame | None, is_equity: Callable[[str], bool]) -> Any:
    """The pandas frame GX validates: batch rows (index = row_nr), then history rows, plus helpers.

    Built column by column without copies: prices stay NumPy float64 (GX's vectorized
    between-checks skip Arrow-backed columns), ``ts`` is ``datetime64[us, UTC]``, symbol and
    interval are categoricals (fast uniqueness checks and grouping).
    """
    import pandas as pd

    import numpy as np
    import pandas as pd

    frame = batch.with_columns(pl.lit(False).alias("is_history"))
    if history is not None:
        frame = pl.concat([frame, history.with_columns(pl.lit(True).alias("is_history"))])
    columns: dict[str, Any] = {c: _categorical(frame, c) for c in ("symbol", "interval")}
    symbols = columns["symbol"].categories
    equity = np.array([bool(is_equity(s)) for s in symbols] + [False], dtype=np.bool_)
    columns["is_equity"] = equity[columns["symbol"].codes]  # code -1 (missing) picks the trailing False
    naive = frame.get_column("ts").dt.replace_time_zone(None).to_numpy()
    columns["ts"] = pd.Series(naive, copy=False).dt.tz_localize("UTC")
    for name in (*BAR_COLUMNS[3:], "is_history"):
        columns[name] = frame.get_column(name).to_numpy()
    return pd.DataFrame({c: columns[c] for c in (*BAR_COLUMNS, *_HELPERS)}, copy=False)


def _categorical(frame: pl.DataFrame, name: str) -> Any:
    """A pandas Categorical of a string column (nulls as missing), without a string hash per row.

    A column holding one value (the interval, usually) is answered from one comparison; otherwise
    Polars' categorical cast interns the strings once and its physical ids are renumbered densely.
    """
    import numpy as np
    import pandas as pd

    col = pl.col(name)
    first = frame.select(col.first()).item()
    if first is not None and frame.select((col == first).all() & col.is_not_null().all()).item():
        return pd.Categorical.from_codes(np.zeros(frame.height, np.int8), categories=pd.Index([first], dtype=object))
    cat = frame.get_column(name).cast(pl.Categorical)
    uniq = cat.unique().drop_nulls()
    ids = uniq.to_physical().cast(pl.Int64).to_numpy()
    lookup = np.full(int(ids.max()) + 2 if ids.size else 1, -1, dtype=np.int32)
    lookup[ids] = np.arange(ids.size, dtype=np.int32)
    physical = cat.to_physical()
    physical = physical.to_numpy() if physical.null_count() == 0 else physical.cast(pl.Int64).fill_null(-1).to_numpy()
    return pd.Categorical.from_codes(lookup[physical], categories=pd.Index(uniq.cast(pl.String).to_numpy(), dtype=object))


# --------------------------------------------------------------------------- GX


@dataclass
class _Session:
    """An ephemeral GX context with the suite's ValidationDefinition (one per suite version)."""

    context: Any
    definition: Any
    datasource: Any


_SESSIONS: dict[tuple[str, str], _Session] = {}


def _session(spec: LoadedSuite) -> _Session:
    key = (str(spec.path), spec.sha256)
    if key not in _SESSIONS:
        _SESSIONS[key] = _new_session(spec)
    return _SESSIONS[key]


def _new_session(spec: LoadedSuite) -> _Session:
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )
    from great_expectations.execution_engine import pandas_execution_engine

    # GX fingerprints every pandas batch under 1 GB by hashing all its values (13 s for 5M bars
    # with a tz-aware ts); the fingerprint is only a batch marker, so skip it.
    pandas_execution_engine.HASH_THRESHOLD = 0
    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
        progress_bars=ProgressBarsConfig(globally=False),
        analytics_enabled=False,
    )
    context = gx.get_context(mode="ephemeral", project_config=config)
    datasource = context.data_sources.add_pandas("alphatwin")
    batch_definition = datasource.add_dataframe_asset("bars").add_batch_definition_whole_dataframe("batch")
    suite = context.suites.add(spec.to_gx())
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(name=f"{spec.name}-{spec.sha256[:12]}", data=batch_definition, suite=suite)
    )
    return _Session(context=context, definition=definition, datasource=datasource)


def _run_gx(spec: LoadedSuite, frame: Any, params: dict[str, Any]) -> list[Any]:
    """Validate the pandas ``frame``; GX's per-expectation results in suite order."""
    from alphatwin.quality.custom_expectations import shared_order

    session = _session(spec)
    try:
        with shared_order():  # our own frame, unmodified during the run
            result = session.definition.run(
                batch_parameters={"dataframe": frame}, expectation_parameters=params, result_format=_RESULT_FORMAT
            )
    finally:
        session.datasource.get_execution_engine().batch_manager.reset_batch_cache()
    order = {e["meta"]["name"]: i for i, e in enumerate(spec.expectations)}
    return sorted(result.results, key=lambda r: order.get((r.expectation_config.meta or {}).get("name"), len(order)))


# --------------------------------------------------------------------------- results


def _columns_of(kwargs: Mapping[str, Any]) -> tuple[str, ...]:
    if "column" in kwargs:
        return (kwargs["column"],)
    if "column_list" in kwargs:
        return tuple(kwargs["column_list"])
    if "column_A" in kwargs:
        return (kwargs["column_A"], kwargs["column_B"])
    return ()


def _outcome(res: Any, severity: str, n: int, meta: Mapping[str, Any]) -> tuple[ExpectationOutcome, list[int]]:
    """One expectation's outcome on the batch rows and its failing batch row numbers."""
    config = res.expectation_config
    kwargs = {k: v for k, v in config.kwargs.items() if k != "batch_id"}
    exception = _exception_message(res.exception_info)
    result = res.result or {}
    indices = result.get("unexpected_index_list")
    if indices is None:  # table-level expectation: GX's verdict stands
        return ExpectationOutcome(meta["name"], config.type, _columns_of(kwargs), kwargs, severity,
                                  bool(res.success) and exception is None, n, 0, 0.0, [], exception), []
    rows = [int(i) for i in indices if int(i) < n]
    values = [v for i, v in zip(indices, result.get("unexpected_list") or [], strict=False) if int(i) < n]
    mostly = float(kwargs.get("mostly", 1.0) or 1.0)
    success = exception is None and (len(rows) <= (1.0 - mostly) * n if mostly < 1.0 else not rows)
    outcome = ExpectationOutcome(
        meta["name"], config.type, _columns_of(kwargs), kwargs, severity, success, n, len(rows),
        100.0 * len(rows) / n if n else 0.0, values[:_SAMPLE], exception,
    )
    return outcome, rows


def _exception_message(info: Mapping[str, Any] | None) -> str | None:
    """GX's error for an expectation: ``exception_info`` is flat, or keyed by the failed metric's id."""
    if not info:
        return None
    if info.get("raised_exception"):
        return str(info.get("exception_message"))
    nested = [v for v in info.values() if isinstance(v, Mapping) and v.get("raised_exception")]
    return "; ".join(str(v.get("exception_message")) for v in nested) or None


def _collect(spec: LoadedSuite, results: list[Any], batch: pl.DataFrame,
             overrides: Mapping[str, str]) -> tuple[list[ExpectationOutcome], pl.DataFrame]:
    outcomes, parts = [], []
    for res in results:
        meta = res.expectation_config.meta or {}
        severity = overrides.get(meta.get("name", ""), meta.get("severity", "error"))
        outcome, rows = _outcome(res, severity, batch.height, meta)
        outcomes.append(outcome)
        if rows:
            parts.append(_render(batch, rows, outcome))
    failures = pl.concat(parts) if parts else pl.DataFrame(schema=ROW_FAILURE_SCHEMA)
    return outcomes, failures


def _render(batch: pl.DataFrame, rows: list[int], outcome: ExpectationOutcome) -> pl.DataFrame:
    """Failure rows of one expectation, with the offending values as ``"col=value ..."``."""
    shown = [c for c in outcome.columns if c in batch.columns and (c not in _NOT_RENDERED or len(outcome.columns) == 1)]
    index = pl.Series("row_nr", rows, dtype=pl.UInt32)
    picked = batch.select(shown).with_row_index("row_nr").join(index.to_frame(), on="row_nr", how="semi") if shown else index.to_frame()
    text = [pl.format(f"{c}={{}}", _as_text(pl.col(c), batch.schema[c])) for c in shown]
    values = pl.concat_str(text, separator=" ") if text else pl.lit("")
    return picked.select(
        pl.col("row_nr").cast(pl.UInt32),
        pl.lit(outcome.name).alias("expectation"),
        pl.lit(outcome.severity).alias("severity"),
        pl.lit(",".join(outcome.columns)).alias("columns"),
        values.alias("values"),
    )


def _as_text(expr: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    if isinstance(dtype, pl.Datetime):
        expr = expr.dt.to_string("%Y-%m-%dT%H:%M:%SZ")
    return expr.cast(pl.String).fill_null("null")


def _batch_error(outcomes: list[ExpectationOutcome]) -> str | None:
    """A failed ``batch`` expectation, or an expectation GX could not evaluate, rejects the batch."""
    problems = [f"{o.name} failed" for o in outcomes if o.severity == "batch" and not o.success]
    problems += [f"{o.name} raised: {o.exception}" for o in outcomes if o.exception]
    return "; ".join(problems) or None


def _rejected(spec: LoadedSuite, rows: int, problem: str, params: dict[str, Any], t0: float) -> ValidationReport:
    return ValidationReport(
        suite=spec.name, suite_sha256=spec.sha256, success=False, rows=rows, history_rows=0, expectations=[],
        row_failures=pl.DataFrame(schema=ROW_FAILURE_SCHEMA), batch_error=problem, parameters=params,
        seconds=time.perf_counter() - t0,
    )
