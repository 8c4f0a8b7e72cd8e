"""Custom Great Expectations for bars, each a map expectation with its own pandas metric provider.

Importing this module registers the expectations with GX (by their snake-case names, e.g.
``expect_bar_high_to_be_at_least_open_and_close``), so a suite JSON can name them; the runner
(:mod:`alphatwin.quality.validate`) imports it lazily, together with GX. Only the pandas
execution engine is implemented (the SQL datasource does not work with DuckDB 2.0).

Every expectation is row-level: its metric returns one boolean per row (``True``: the row meets
the expectation), so GX reports the unexpected row indices. Multicolumn expectations read their
columns by position, documented on each class, and default to ``ignore_row_if="never"``
(missing values are the business of ``expect_column_values_to_not_be_null``; a row with a
missing input is never failed by these rules). The sequential rules (ordering, restatements,
outliers, jumps, gaps) take an optional last ``is_history`` column: history rows are context
the runner appends (accepted bars before the batch) and never fail. Their work happens in the
Numba kernels of :mod:`alphatwin.quality.nb`.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import ClassVar, Literal, Union

import numpy as np
import pandas as pd
from great_expectations.core.suite_parameters import SuiteParameterDict  # noqa: TC002 - pydantic field type
from great_expectations.execution_engine import PandasExecutionEngine
from great_expectations.expectations.expectation import ColumnMapExpectation, MulticolumnMapExpectation
from great_expectations.expectations.metrics.map_metric_provider import (
    ColumnMapMetricProvider,
    MulticolumnMapMetricProvider,
    column_condition_partial,
)
from great_expectations.expectations.metrics.map_metric_provider.multicolumn_condition_partial import (
    multicolumn_condition_partial,
)

from alphatwin.quality import nb
from alphatwin.sources.base import DAILY_INTERVALS, interval_duration

__all__ = [
    "ExpectColumnValuesToBeOnIntervalGrid",
    "ExpectColumnValuesToBeWholeWhereFlagged",
    "ExpectBarHighToBeAtLeastOpenAndClose",
    "ExpectBarLowToBeAtMostOpenAndClose",
    "ExpectDividendToBeBelowClose",
    "ExpectBarToNotBeZeroVolumeFlat",
    "ExpectTimestampsToIncreasePerSymbol",
    "ExpectBarsToNotRestateAccepted",
    "ExpectReturnsToBeWithinRobustBand",
    "ExpectPriceJumpsToBeExplained",
    "ExpectBarsToFollowWithoutGap",
    "interval_grid_minutes",
    "shared_order",
]

_NEVER: Literal["never"] = "never"
_MINUTE_US = 60_000_000
_DAY_US = 86_400_000_000
_SESSION_ALIGN_MINUTES = 30  # exchange sessions open on the half hour (09:30 New York)


# --------------------------------------------------------------------------- column access


def _floats(series: pd.Series) -> np.ndarray:
    """float64 values (a view when the column already is NumPy float64); missing values become NaN."""
    if series.dtype == np.float64:
        return series.to_numpy()
    return series.to_numpy(dtype=np.float64, na_value=np.nan)


def _flags(series: pd.Series) -> np.ndarray:
    """bool values; missing values become False."""
    if series.dtype == np.bool_:
        return series.to_numpy()
    return series.to_numpy(dtype=np.bool_, na_value=False)


def _ts_us(series: pd.Series) -> np.ndarray:
    """Microseconds since the epoch (UTC) of a datetime-like column; NaT (or unparseable) -> int64 min."""
    if not (pd.api.types.is_datetime64_any_dtype(series.dtype) or "timestamp" in str(series.dtype)):
        series = pd.to_datetime(series, utc=True, errors="coerce")
    return series.to_numpy(dtype="datetime64[us]").view(np.int64)


def _codes(series: pd.Series) -> tuple[np.ndarray, int]:
    """Integer codes of a key column (``-1``: missing; any int dtype) and its number of distinct values."""
    if isinstance(series.dtype, pd.CategoricalDtype):
        return series.cat.codes.to_numpy(), max(len(series.cat.categories), 1)
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    return codes, max(len(uniques), 1)


def _group_codes(sym: np.ndarray, n_sym: int, itv: np.ndarray, n_itv: int, ts: np.ndarray) -> tuple[np.ndarray, int]:
    """One int64 code per (symbol, interval) pair (``-1``: a missing symbol, interval or ts)."""
    codes = nb.group_codes_nb(sym, itv, n_itv, ts)
    if n_sym * n_itv <= 4 * len(codes) + 1:
        return codes, n_sym * n_itv
    valid = codes >= 0  # a sparse product of many keys: renumber densely
    dense, uniques = pd.factorize(codes[valid])
    codes[valid] = dense
    return codes, max(len(uniques), 1)


def _split_history(frame: pd.DataFrame, n_keys: int) -> tuple[list[pd.Series], np.ndarray]:
    """The positional columns of ``frame`` and its ``is_history`` flags (the optional last column)."""
    cols = [frame.iloc[:, i] for i in range(frame.shape[1])]
    if len(cols) > n_keys:
        return cols[:n_keys], _flags(cols[n_keys])
    return cols, np.zeros(len(frame), np.bool_)


def _ok(frame: pd.DataFrame | pd.Series, bad: np.ndarray) -> pd.Series:
    """The metric's answer: ``True`` where the row meets the expectation."""
    return pd.Series(~bad, index=frame.index)


class _OrderCache:
    """Shares one (symbol, interval) time order among the sequential metrics of one validation.

    Off unless a caller opens :func:`shared_order` around one validation (the runner does). GX
    hands each metric its own copy of the key columns, so entries are matched on content.
    """

    def __init__(self) -> None:
        self.enabled = False
        self.entries: list[tuple[tuple[np.ndarray, ...], tuple[np.ndarray, np.ndarray]]] = []

    def order(self, sym: np.ndarray, n_sym: int, itv: np.ndarray, n_itv: int, ts: np.ndarray,
              hist: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        arrays = (sym, itv, ts, hist)
        for cached, result in self.entries if self.enabled else ():
            if all(a.dtype == b.dtype and np.array_equal(a, b) for a, b in zip(cached, arrays, strict=True)):
                return result
        codes, n_groups = _group_codes(sym, n_sym, itv, n_itv, ts)
        result = nb.group_order_nb(codes, n_groups, ts, hist)
        if self.enabled:
            self.entries.append((arrays, result))
        return result


_ORDERS = _OrderCache()


@contextmanager
def shared_order() -> Iterator[None]:
    """Within this block, sequential metrics on the same arrays compute their time order once.

    Only for a frame nobody modifies inside the block (the runner's own pandas copy).
    """
    _ORDERS.enabled, _ORDERS.entries = True, []
    try:
        yield
    finally:
        _ORDERS.enabled, _ORDERS.entries = False, []


def _sequence(frame: pd.DataFrame, n_keys: int) -> tuple[list[pd.Series], np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Columns, history flags, ts, and the (symbol, interval) time order of a sequential rule's frame."""
    cols, hist = _split_history(frame, n_keys)
    ts = _ts_us(cols[2])
    sym, n_sym = _codes(cols[0])
    itv, n_itv = _codes(cols[1])
    order, starts = _ORDERS.order(sym, n_sym, itv, n_itv, ts, hist)
    return cols, hist, ts, order, starts


def interval_grid_minutes(interval: str) -> int:
    """Minute step an intraday bar's opening time must be a multiple of (minutes after midnight UTC).

    Sessions open on the half hour, so bars of an hour or longer are aligned to 30 minutes:
    ``gcd(interval minutes, 30)``.
    """
    minutes = int(interval_duration(interval).total_seconds() // 60)
    return math.gcd(minutes, _SESSION_ALIGN_MINUTES)


# --------------------------------------------------------------------------- single-column rules


class ColumnValuesOnIntervalGrid(ColumnMapMetricProvider):
    """Metric: a bar timestamp sits on its interval's grid (daily: midnight UTC; intraday: aligned)."""

    condition_metric_name = "alphatwin.column_values.on_interval_grid"
    condition_value_keys = ("interval",)

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column: pd.Series, interval: str = "1d", **kwargs: object) -> pd.Series:
        ts = _ts_us(column)
        if interval in DAILY_INTERVALS:
            ok = ts % _DAY_US == 0
        else:
            step = interval_grid_minutes(interval) * _MINUTE_US
            ok = ts % step == 0
        return pd.Series(ok | (ts == np.iinfo(np.int64).min), index=column.index)


class ExpectColumnValuesToBeOnIntervalGrid(ColumnMapExpectation):
    """Expect bar timestamps consistent with ``interval``.

    Daily and longer bars carry the session date at 00:00 UTC; intraday bars open on whole
    minutes aligned to :func:`interval_grid_minutes` (``5m`` at :00, :05, ...; ``60m`` on the
    half hour, as exchange sessions open at 09:30).
    """

    map_metric: ClassVar[str] = "alphatwin.column_values.on_interval_grid"
    interval: Union[str, SuiteParameterDict] = "1d"
    success_keys: ClassVar[tuple[str, ...]] = ("mostly", "interval")


# --------------------------------------------------------------------------- row-wise rules


class ColumnValuesWholeWhereFlagged(MulticolumnMapMetricProvider):
    """Metric: ``value`` is a whole number wherever ``flag`` is true (other rows pass)."""

    condition_metric_name = "alphatwin.multicolumn_values.whole_where_flagged"

    @multicolumn_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column_list: pd.DataFrame, **kwargs: object) -> pd.Series:
        value, flag = _floats(column_list.iloc[:, 0]), _flags(column_list.iloc[:, 1])
        with np.errstate(invalid="ignore"):
            fractional = np.isfinite(value) & (value != np.floor(value))
        return _ok(column_list, flag & fractional)


class ExpectColumnValuesToBeWholeWhereFlagged(MulticolumnMapExpectation):
    """Expect ``column_list[0]`` to hold whole numbers on rows where ``column_list[1]`` is true.

    For bars: ``["volume", "is_equity"]`` (equity volume is whole shares; FX and crypto volume
    may be fractional).
    """

    map_metric: ClassVar[str] = "alphatwin.multicolumn_values.whole_where_flagged"
    ignore_row_if: Literal["all_values_are_missing", "any_value_is_missing", "never"] = _NEVER


class BarHighAtLeastOpenAndClose(MulticolumnMapMetricProvider):
    """Metric: ``high >= max(open, close)`` (rows with a missing price pass)."""

    condition_metric_name = "alphatwin.bar.high_ge_max_open_close"

    @multicolumn_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column_list: pd.DataFrame, **kwargs: object) -> pd.Series:
        high, open_, close = (_floats(column_list.iloc[:, i]) for i in range(3))
        return _ok(column_list, high < np.maximum(open_, close))


class ExpectBarHighToBeAtLeastOpenAndClose(MulticolumnMapExpectation):
    """Expect ``high >= max(open, close)``; ``column_list`` is ``["high", "open", "close"]``."""

    map_metric: ClassVar[str] = "alphatwin.bar.high_ge_max_open_close"
    ignore_row_if: Literal["all_values_are_missing", "any_value_is_missing", "never"] = _NEVER


class BarLowAtMostOpenAndClose(MulticolumnMapMetricProvider):
    """Metric: ``low <= min(open, close)`` (rows with a missing price pass)."""

    condition_metric_name = "alphatwin.bar.low_le_min_open_close"

    @multicolumn_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column_list: pd.DataFrame, **kwargs: object) -> pd.Series:
        low, open_, close = (_floats(column_list.iloc[:, i]) for i in range(3))
        return _ok(column_list, low > np.minimum(open_, close))


class ExpectBarLowToBeAtMostOpenAndClose(MulticolumnMapExpectation):
    """Expect ``low <= min(open, close)``; ``column_list`` is ``["low", "open", "close"]``."""

    map_metric: ClassVar[str] = "alphatwin.bar.low_le_min_open_close"
    ignore_row_if: Literal["all_values_are_missing", "any_value_is_missing", "never"] = _NEVER


class DividendBelowClose(MulticolumnMapMetricProvider):
    """Metric: a paid dividend is below the close (no dividend, 0, always passes)."""

    condition_metric_name = "alphatwin.bar.dividend_below_close"

    @multicolumn_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column_list: pd.DataFrame, **kwargs: object) -> pd.Series:
        dividend, close = _floats(column_list.iloc[:, 0]), _floats(column_list.iloc[:, 1])
        return _ok(column_list, (dividend > 0.0) & (dividend >= close))


class ExpectDividendToBeBelowClose(MulticolumnMapExpectation):
    """Expect a dividend below the bar's close; ``column_list`` is ``["dividend", "close"]``."""

    map_metric: ClassVar[str] = "alphatwin.bar.dividend_below_close"
    ignore_row_if: Literal["all_values_are_missing", "any_value_is_missing", "never"] = _NEVER


class BarZeroVolumeFlat(MulticolumnMapMetricProvider):
    """Metric: not a zero-volume bar with open == high == low == close (a halt filled with a stale price)."""

    condition_metric_name = "alphatwin.bar.zero_volume_flat"

    @multicolumn_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column_list: pd.DataFrame, **kwargs: object) -> pd.Series:
        open_, high, low, close, volume = (_floats(column_list.iloc[:, i]) for i in range(5))
        stale = (volume == 0.0) & (high == low) & (open_ == high) & (close == high)
        return _ok(column_list, stale)


class ExpectBarToNotBeZeroVolumeFlat(MulticolumnMapExpectation):
    """Expect no halted bar: zero volume with a flat price (``["open", "high", "low", "close", "volume"]``)."""

    map_metric: ClassVar[str] = "alphatwin.bar.zero_volume_flat"
    ignore_row_if: Literal["all_values_are_missing", "any_value_is_missing", "never"] = _NEVER


# --------------------------------------------------------------------------- sequential rules


class TimestampsIncreasePerSymbol(MulticolumnMapMetricProvider):
    """Metric: ts is not before the previous batch row of the same (symbol, interval), in arrival order."""

    condition_metric_name = "alphatwin.sequence.ts_increasing"
    condition_value_keys = ("strictly",)

    @multicolumn_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column_list: pd.DataFrame, strictly: bool = False, **kwargs: object) -> pd.Series:
        cols, hist = _split_history(column_list, 3)
        ts = _ts_us(cols[2])
        (sym, n_sym), (itv, n_itv) = _codes(cols[0]), _codes(cols[1])
        codes, n_groups = _group_codes(sym, n_sym, itv, n_itv, ts)
        return _ok(column_list, nb.not_increasing_nb(codes, n_groups, ts, hist, bool(strictly)))


class ExpectTimestampsToIncreasePerSymbol(MulticolumnMapExpectation):
    """Expect each batch row's ts after the previous row of its symbol, in arrival order.

    ``column_list`` is ``["symbol", "interval", "ts"]`` plus optionally ``"is_history"``
    (history rows are skipped). With ``strictly=False`` an equal ts passes: that is a duplicate,
    reported by the uniqueness expectation.
    """

    map_metric: ClassVar[str] = "alphatwin.sequence.ts_increasing"
    strictly: Union[bool, SuiteParameterDict] = False
    success_keys: ClassVar[tuple[str, ...]] = ("mostly", "strictly")
    ignore_row_if: Literal["all_values_are_missing", "any_value_is_missing", "never"] = _NEVER


class BarsRestateAccepted(MulticolumnMapMetricProvider):
    """Metric: the batch row's (symbol, interval, ts) is not among the history (accepted) rows."""

    condition_metric_name = "alphatwin.sequence.restates_accepted"

    @multicolumn_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column_list: pd.DataFrame, **kwargs: object) -> pd.Series:
        if column_list.shape[1] < 4 or not _flags(column_list.iloc[:, 3]).any():  # no history: nothing to restate
            return _ok(column_list, np.zeros(len(column_list), np.bool_))
        _, hist, ts, order, starts = _sequence(column_list, 3)
        return _ok(column_list, nb.restates_nb(order, starts, ts, hist, len(column_list)))


class ExpectBarsToNotRestateAccepted(MulticolumnMapExpectation):
    """Expect no batch row to restate an accepted bar: ``["symbol", "interval", "ts", "is_history"]``."""

    map_metric: ClassVar[str] = "alphatwin.sequence.restates_accepted"
    ignore_row_if: Literal["all_values_are_missing", "any_value_is_missing", "never"] = _NEVER


def _price_inputs(column_list: pd.DataFrame) -> tuple[np.ndarray, ...]:
    cols, hist, ts, order, starts = _sequence(column_list, 6)
    close, split, dividend = (_floats(c) for c in cols[3:6])
    return hist, ts, order, starts, close, split, dividend


class ReturnsWithinRobustBand(MulticolumnMapMetricProvider):
    """Metric: the bar's total log return is within ``k`` robust deviations of its trailing returns."""

    condition_metric_name = "alphatwin.sequence.robust_return"
    condition_value_keys = ("k", "window", "min_periods", "min_mad")

    @multicolumn_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column_list: pd.DataFrame, k: float = 10.0, window: int = 63, min_periods: int = 20,
                min_mad: float = 1e-4, **kwargs: object) -> pd.Series:
        if not (k > 0 and window >= 2 and 4 <= min_periods <= window and min_mad >= 0):
            raise ValueError(f"robust band needs k > 0, window >= 2, 4 <= min_periods <= window, min_mad >= 0; "
                             f"got k={k}, window={window}, min_periods={min_periods}, min_mad={min_mad}")
        hist, ts, order, starts, close, split, dividend = _price_inputs(column_list)
        bad = nb.robust_outliers_nb(order, starts, ts, close, split, dividend, float(k), int(window),
                                    int(min_periods), float(min_mad))
        return _ok(column_list, bad & ~hist)


class ExpectReturnsToBeWithinRobustBand(MulticolumnMapExpectation):
    """Expect each bar's return within ``k`` robust deviations of its symbol's trailing returns.

    ``column_list`` is ``["symbol", "interval", "ts", "close", "split_ratio", "dividend"]`` plus
    optionally ``"is_history"``. The return is ``log((close + dividend) * split_ratio / ref)``
    from the last accepted close ``ref``; it fails when ``|r - median| > k * 1.4826 *
    max(MAD, min_mad)`` over the previous ``window`` returns (point-in-time: history rows count,
    later rows never do; no verdict before ``min_periods`` returns; a zero MAD falls back to the
    mean absolute deviation). See :func:`alphatwin.quality.nb.robust_outliers_nb`.
    """

    map_metric: ClassVar[str] = "alphatwin.sequence.robust_return"
    k: Union[float, SuiteParameterDict] = 10.0
    window: Union[int, SuiteParameterDict] = 63
    min_periods: Union[int, SuiteParameterDict] = 20
    min_mad: Union[float, SuiteParameterDict] = 1e-4
    success_keys: ClassVar[tuple[str, ...]] = ("mostly", "k", "window", "min_periods", "min_mad")
    ignore_row_if: Literal["all_values_are_missing", "any_value_is_missing", "never"] = _NEVER


class PriceJumpsExplained(MulticolumnMapMetricProvider):
    """Metric: no |log return| above ``max_abs_log_return`` unless the bar has a split or dividend."""

    condition_metric_name = "alphatwin.sequence.jump_explained"
    condition_value_keys = ("max_abs_log_return",)

    @multicolumn_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column_list: pd.DataFrame, max_abs_log_return: float = 0.5, **kwargs: object) -> pd.Series:
        hist, ts, order, starts, close, split, dividend = _price_inputs(column_list)
        bad = nb.unexplained_jumps_nb(order, starts, ts, close, split, dividend, float(max_abs_log_return))
        return _ok(column_list, bad & ~hist)


class ExpectPriceJumpsToBeExplained(MulticolumnMapExpectation):
    """Expect every close-to-close jump beyond ``max_abs_log_return`` to come with a split or dividend.

    ``column_list`` as for :class:`ExpectReturnsToBeWithinRobustBand`.
    """

    map_metric: ClassVar[str] = "alphatwin.sequence.jump_explained"
    max_abs_log_return: Union[float, SuiteParameterDict] = 0.5
    success_keys: ClassVar[tuple[str, ...]] = ("mostly", "max_abs_log_return")
    ignore_row_if: Literal["all_values_are_missing", "any_value_is_missing", "never"] = _NEVER


class BarsFollowWithoutGap(MulticolumnMapMetricProvider):
    """Metric: the bar before this one (per symbol, in time) is not missing."""

    condition_metric_name = "alphatwin.sequence.no_gap_before"
    condition_value_keys = ("interval",)

    @multicolumn_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column_list: pd.DataFrame, interval: str = "1d", **kwargs: object) -> pd.Series:
        _, hist, ts, order, starts = _sequence(column_list, 3)
        step = int(interval_duration(interval).total_seconds() * 1_000_000)
        if interval == "1d":
            mode = nb.GAP_BUSINESS_DAYS
        elif interval in DAILY_INTERVALS:
            mode = nb.GAP_NOMINAL
        else:
            mode = nb.GAP_SAME_DAY
        return _ok(column_list, nb.gaps_nb(order, starts, ts, hist, len(column_list), mode, step))


class ExpectBarsToFollowWithoutGap(MulticolumnMapExpectation):
    """Expect no missing bar before each batch row: ``["symbol", "interval", "ts", "is_history"]``.

    ``1d``: no weekday without a bar between two bars (exchange holidays show up too);
    ``5d``/``1wk``/``1mo``/``3mo``: bars at most 1.5 intervals apart; intraday: at most one
    interval apart within a UTC day (gaps across days are not judged).
    """

    map_metric: ClassVar[str] = "alphatwin.sequence.no_gap_before"
    interval: Union[str, SuiteParameterDict] = "1d"
    success_keys: ClassVar[tuple[str, ...]] = ("mostly", "interval")
    ignore_row_if: Literal["all_values_are_missing", "any_value_is_missing", "never"] = _NEVER
