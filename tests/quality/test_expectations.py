"""The custom GX expectations, each on a tiny hand-built frame with known bad rows.

Every test asserts the exact row indices GX reports as unexpected. The Numba kernels behind
the robust-return rule are checked against a slow reference (hypothesis).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from alphatwin.quality import nb

DAY = pd.Timedelta(days=1)
SEQ = ["symbol", "interval", "ts", "is_history"]
PRICES = ["symbol", "interval", "ts", "close", "split_ratio", "dividend", "is_history"]


@pytest.fixture(scope="module")
def ce() -> Any:
    import alphatwin.quality.custom_expectations as module

    return module


@pytest.fixture(scope="module")
def validate_one(ce: Any) -> Any:
    """``validate_one(frame, expectation)``: GX's result for one expectation (an ephemeral context)."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    config = DataContextConfig(store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
                               progress_bars=ProgressBarsConfig(globally=False), analytics_enabled=False)
    context = gx.get_context(mode="ephemeral", project_config=config)
    batch_definition = context.data_sources.add_pandas("t").add_dataframe_asset("a").add_batch_definition_whole_dataframe("b")

    def run(frame: pd.DataFrame, expectation: Any) -> Any:
        batch = batch_definition.get_batch(batch_parameters={"dataframe": frame})
        return batch.validate(expectation, result_format={"result_format": "COMPLETE",
                                                         "return_unexpected_index_query": False})

    return run


@pytest.fixture(scope="module")
def unexpected(validate_one: Any) -> Any:
    """``unexpected(frame, expectation)``: the sorted row indices GX reports for one expectation."""

    def run(frame: pd.DataFrame, expectation: Any) -> list[int]:
        result = validate_one(frame, expectation)
        assert result.result, result.exception_info  # an empty result: GX could not evaluate it
        return sorted(int(i) for i in result.result["unexpected_index_list"])

    return run


def daily(closes: list[float], *, symbol: str = "A", start: str = "2024-01-01", history: int = 0,
          business: bool = False) -> pd.DataFrame:
    """One symbol's daily bars; the first ``history`` rows are marked as history."""
    ts = pd.bdate_range(start, periods=len(closes), tz="UTC") if business else \
        pd.date_range(start, periods=len(closes), freq="D", tz="UTC")
    return pd.DataFrame({
        "symbol": symbol, "interval": "1d", "ts": ts.as_unit("us"), "close": closes,
        "split_ratio": 1.0, "dividend": 0.0, "is_history": [i < history for i in range(len(closes))],
    })


def utc(stamps: list[str]) -> pd.DatetimeIndex:
    return pd.to_datetime(stamps, utc=True, format="ISO8601").as_unit("us")


def wiggle(n: int, seed: int = 0, level: float = 100.0, sd: float = 0.01) -> list[float]:
    rng = np.random.default_rng(seed)
    return list(level * np.exp(np.cumsum(rng.normal(0.0, sd, n))))


# --------------------------------------------------------------------------- single-column rules


def test_interval_grid_daily_needs_midnight_utc(unexpected, ce) -> None:
    ts = utc(["2024-01-02", "2024-01-02 12:00", "2024-01-03", "2024-01-04 00:00:01"])
    frame = pd.DataFrame({"ts": ts})
    assert unexpected(frame, ce.ExpectColumnValuesToBeOnIntervalGrid(column="ts", interval="1d")) == [1, 3]


def test_interval_grid_intraday_aligns_to_minutes_and_half_hours(unexpected, ce) -> None:
    ts = utc(["2024-01-02 14:30", "2024-01-02 14:35", "2024-01-02 14:32", "2024-01-02 14:35:30"])
    frame = pd.DataFrame({"ts": ts})
    assert unexpected(frame, ce.ExpectColumnValuesToBeOnIntervalGrid(column="ts", interval="5m")) == [2, 3]
    # hourly bars open on the half hour (09:30 New York = 14:30 UTC), never at :35
    assert unexpected(frame, ce.ExpectColumnValuesToBeOnIntervalGrid(column="ts", interval="60m")) == [1, 2, 3]
    assert ce.interval_grid_minutes("90m") == 30 and ce.interval_grid_minutes("2m") == 2


# --------------------------------------------------------------------------- row-wise rules


def test_whole_volume_only_for_equities(unexpected, ce) -> None:
    frame = pd.DataFrame({"volume": [100.0, 100.5, 0.25, np.nan, 7.0, -3.5],
                          "is_equity": [True, True, False, True, True, True]})
    exp = ce.ExpectColumnValuesToBeWholeWhereFlagged(column_list=["volume", "is_equity"])
    assert unexpected(frame, exp) == [1, 5]


def test_high_and_low_bound_the_body(unexpected, ce) -> None:
    frame = pd.DataFrame({
        "open": [10.0, 10.0, 10.0, 10.0, 10.0, np.nan],
        "high": [11.0, 9.5, 10.0, 12.0, 12.0, 1.0],
        "low": [9.0, 9.0, 10.0, 10.5, 9.9, 5.0],
        "close": [10.5, 9.8, 10.0, 11.0, 9.8, 5.0],
    })
    high = ce.ExpectBarHighToBeAtLeastOpenAndClose(column_list=["high", "open", "close"])
    low = ce.ExpectBarLowToBeAtMostOpenAndClose(column_list=["low", "open", "close"])
    assert unexpected(frame, high) == [1]  # 9.5 < max(10.0, 9.8); row 5 has a missing open: not this rule's business
    assert unexpected(frame, low) == [3, 4]  # 10.5 > min(10, 11); 9.9 > min(10, 9.8)


def test_dividend_below_close(unexpected, ce) -> None:
    frame = pd.DataFrame({"dividend": [0.0, 0.5, 10.0, 12.0, 0.0], "close": [10.0, 10.0, 10.0, 10.0, 0.0]})
    assert unexpected(frame, ce.ExpectDividendToBeBelowClose(column_list=["dividend", "close"])) == [2, 3]


def test_zero_volume_flat_bar(unexpected, ce) -> None:
    frame = pd.DataFrame({
        "open": [10.0, 10.0, 10.0, 10.0], "high": [10.0, 10.5, 10.0, 10.0], "low": [10.0, 9.5, 10.0, 10.0],
        "close": [10.0, 10.2, 10.0, 10.0], "volume": [0.0, 0.0, 500.0, 0.0],
    })
    exp = ce.ExpectBarToNotBeZeroVolumeFlat(column_list=["open", "high", "low", "close", "volume"])
    assert unexpected(frame, exp) == [0, 3]  # row 1 moved without volume (FX-like), row 2 traded flat


# --------------------------------------------------------------------------- sequential rules


def test_ts_increasing_per_symbol_in_arrival_order(unexpected, ce) -> None:
    ts = utc(["2024-01-01", "2024-01-01", "2024-01-03", "2024-01-02", "2024-01-02", "2024-01-04",
                         "2024-01-04", "2023-12-01"])
    frame = pd.DataFrame({"symbol": ["A", "B", "A", "A", "B", "A", "B", "A"], "interval": "1d", "ts": ts,
                          "is_history": [False] * 7 + [True]})
    exp = ce.ExpectTimestampsToIncreasePerSymbol(column_list=SEQ)
    # row 3: A 01-02 after A 01-03; row 5 (A 01-04) follows row 3 and passes; history row 7 never fails
    assert unexpected(frame, exp) == [3]
    strict = ce.ExpectTimestampsToIncreasePerSymbol(column_list=SEQ, strictly=True)
    frame.loc[5, "ts"] = frame.loc[3, "ts"]
    assert unexpected(frame, strict) == [3, 5]


def test_restates_accepted_finds_keys_of_history_rows(unexpected, ce) -> None:
    batch = daily([10.0, 10.1, 10.2], start="2024-01-03")
    history = daily([9.9, 10.0], start="2024-01-02", history=2)  # 01-02 and 01-03 accepted
    other = daily([5.0], symbol="B", start="2024-01-04")
    frame = pd.concat([batch, other, history], ignore_index=True)
    exp = ce.ExpectBarsToNotRestateAccepted(column_list=SEQ)
    assert unexpected(frame, exp) == [0]  # A 01-03 restates; B 01-04 has no history; history rows never fail


def test_robust_outlier_flags_a_bad_print_once(unexpected, ce) -> None:
    closes = wiggle(60)
    closes[40] *= 8.0  # a bad print: the next bar returns to the old level and is not flagged
    frame = daily(closes)
    exp = ce.ExpectReturnsToBeWithinRobustBand(column_list=PRICES, k=6.0, window=30, min_periods=20)
    assert unexpected(frame, exp) == [40]


def test_robust_outlier_level_shift_flags_only_its_first_bar(unexpected, ce) -> None:
    closes = wiggle(60)
    closes[45:] = [c * 3.0 for c in closes[45:]]
    exp = ce.ExpectReturnsToBeWithinRobustBand(column_list=PRICES, k=6.0, window=30, min_periods=20)
    assert unexpected(daily(closes), exp) == [45]


def test_robust_outlier_splits_and_dividends_are_added_back(unexpected, ce) -> None:
    closes = wiggle(60)
    closes[30:] = [c / 2.0 for c in closes[30:]]  # a 2:1 split on bar 30
    closes[50:] = [c - 3.0 for c in closes[50:]]  # a 3.00 dividend going ex on bar 50
    frame = daily(closes)
    frame.loc[30, "split_ratio"] = 2.0
    frame.loc[50, "dividend"] = 3.0
    exp = ce.ExpectReturnsToBeWithinRobustBand(column_list=PRICES, k=6.0, window=30, min_periods=20)
    assert unexpected(frame, exp) == []
    frame.loc[30, "split_ratio"] = 1.0  # the same move without its split is an outlier
    assert unexpected(frame, exp) == [30]


def test_robust_outlier_uses_history_as_context_and_never_reports_it(unexpected, ce) -> None:
    closes = wiggle(50)
    closes[10] *= 8.0  # a bad print inside the history
    closes[45] *= 8.0  # and one in the batch
    exp = ce.ExpectReturnsToBeWithinRobustBand(column_list=PRICES, k=6.0, window=30, min_periods=20)
    with_history = daily(closes, history=40)
    assert unexpected(with_history, exp) == [45]
    # without the history context the batch has too few returns for a verdict
    batch_only = daily(closes[40:], start="2024-02-10")
    assert unexpected(batch_only, exp) == []


def test_robust_outlier_does_not_freeze_on_a_flat_window(unexpected, ce) -> None:
    """Regression: a price stuck on one tick (MAD 0) then moving a tick a day used to flag every
    later bar, because flagged returns never entered the window and its MAD stayed 0."""
    closes = [1.17] * 40 + [1.17 + 0.01 * (i % 2) for i in range(60)]
    exp = ce.ExpectReturnsToBeWithinRobustBand(column_list=PRICES, k=10.0, window=63, min_periods=20)
    # the first tick moves after 40 flat bars stand out; once a few are in the window the mean
    # absolute deviation has learnt the tick and the other 56 bars pass
    assert unexpected(daily(closes), exp) == [41, 43, 45, 47]


def test_robust_outlier_rejects_bad_arguments(validate_one, ce) -> None:
    exp = ce.ExpectReturnsToBeWithinRobustBand(column_list=PRICES, k=5.0, window=10, min_periods=2)
    result = validate_one(daily(wiggle(30)), exp)
    # GX keys a failed metric's error by the metric's id
    (info,) = result.exception_info.values()
    assert info["raised_exception"] and "4 <= min_periods <= window" in info["exception_message"]


def test_unexplained_jump(unexpected, ce) -> None:
    closes = wiggle(12, sd=0.001)
    closes[3] *= 2.0  # spike: flagged, bar 4 is back on the old level
    closes[7:] = [c * 0.5 for c in closes[7:]]  # a halving with a 2:1 split: explained
    closes[10:] = [c * 0.55 for c in closes[10:]]  # a crash with no action: flagged once
    frame = daily(closes)
    frame.loc[7, "split_ratio"] = 2.0
    exp = ce.ExpectPriceJumpsToBeExplained(column_list=PRICES, max_abs_log_return=0.5)
    assert unexpected(frame, exp) == [3, 10]


def test_gap_before_daily_business_days(unexpected, ce) -> None:
    days = ["2024-01-04", "2024-01-05", "2024-01-08", "2024-01-10", "2024-01-11", "2024-01-11"]
    frame = pd.DataFrame({"symbol": "A", "interval": "1d", "ts": pd.to_datetime(days, utc=True).as_unit("us"),
                          "is_history": False})
    exp = ce.ExpectBarsToFollowWithoutGap(column_list=SEQ, interval="1d")
    assert unexpected(frame, exp) == [3]  # Fri -> Mon is no gap; Tue 01-09 is missing; a duplicate is no gap


def test_gap_before_intraday_and_history(unexpected, ce) -> None:
    ts = utc(["2024-01-02 14:30", "2024-01-02 14:35", "2024-01-02 14:45", "2024-01-03 14:30",
                         "2024-01-02 14:25"])
    frame = pd.DataFrame({"symbol": "A", "interval": "5m", "ts": ts, "is_history": [False] * 4 + [True]})
    exp = ce.ExpectBarsToFollowWithoutGap(column_list=SEQ, interval="5m")
    assert unexpected(frame, exp) == [2]  # 14:40 missing; overnight is not judged; history 14:25 leads in


# --------------------------------------------------------------------------- kernels vs a slow reference


def _reference_outlier(window: np.ndarray, r: float, k: float, min_mad: float) -> tuple[bool, float]:
    """The rule, computed the slow way: the verdict and its distance from the boundary."""
    med = float(np.median(window))
    mad = float(np.median(np.abs(window - med)))
    scale = 1.4826 * max(mad, min_mad)
    if mad == 0.0:
        scale = max(1.2533 * float(np.mean(np.abs(window - med))), 1.4826 * min_mad)
    dev = abs(r - med)
    return dev > k * scale, abs(dev - k * scale)


@settings(max_examples=300, deadline=None)
@given(
    window=st.lists(st.floats(-0.2, 0.2, allow_nan=False), min_size=4, max_size=70),
    r=st.floats(-3.0, 3.0, allow_nan=False),
    k=st.sampled_from([1.0, 3.0, 6.0]),
)
@example(window=[0.0, 0.0, 0.0, 0.0], r=0.001, k=3.0)  # zero MAD and mean deviation: the floor decides
@example(window=[0.0, 0.0, 0.0, 0.01, -0.01], r=0.01, k=3.0)  # zero MAD: the mean deviation decides
@example(window=[0.0, 0.0, 1.0, 1.0], r=5.0, k=1.0)  # even count, tied middles
@example(window=[-0.01, 0.01, 0.02, 0.03, 0.05], r=0.5, k=3.0)
def test_is_outlier_matches_median_absolute_deviation(window: list[float], r: float, k: float) -> None:
    min_mad = 1e-4
    expected, margin = _reference_outlier(np.array(window), r, k, min_mad)
    assume(margin > 1e-9)  # not on the boundary, where rounding may go either way
    srt = np.sort(np.array(window))
    assert nb._is_outlier(r, srt, len(window), 4, k, min_mad) == expected


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(-0.05, 0.05, allow_nan=False), min_size=1, max_size=200), st.integers(2, 40))
def test_sliding_window_stays_sorted(values: list[float], window: int) -> None:
    buf, srt, count, head = np.empty(window), np.empty(window), 0, 0
    for i, x in enumerate(values):
        if count == window:
            nb._replace_sorted(srt, count, buf[head], x)
        else:
            nb._insert_sorted(srt, count, x)
            count += 1
        buf[head] = x
        head = (head + 1) % window
        assert list(srt[:count]) == sorted(values[max(0, i + 1 - window): i + 1])


def test_group_order_sorts_each_symbol_by_time_with_history_first() -> None:
    codes = np.array([1, 0, 1, 0, 1, -1, 1], np.int64)
    ts = np.array([5, 2, 3, 1, 3, 0, 1], np.int64)
    hist = np.array([False, False, False, False, True, False, True])
    order, starts = nb.group_order_nb(codes, 2, ts, hist)
    assert list(starts) == [0, 2, 6]
    assert list(order) == [3, 1, 6, 4, 2, 0]  # group 1: ts 1 (hist), ts 3 history before batch, then 5


def test_weekday_count() -> None:
    monday = (np.datetime64("2024-01-08") - np.datetime64("1970-01-01")).astype(int)
    assert nb._weekdays_before(monday + 7) - nb._weekdays_before(monday) == 5
    assert nb._weekdays_before(monday + 5) - nb._weekdays_before(monday + 1) == 4  # Tue..Fri
    assert math.isclose(nb._weekdays_before(monday + 6) - nb._weekdays_before(monday + 5), 0)
