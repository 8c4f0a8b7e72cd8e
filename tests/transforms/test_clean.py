"""clean.bars rules on hand-built rows: latest row wins, calendar gap fill, factors, flags."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from alphatwin.errors import ModelError
from alphatwin.transforms.clean import COLUMNS, clean_frame


def _t(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)


def _rows(symbol: str, stamps: list[str], closes: list[float], *, interval: str = "1d", source: str = "csv",
          dividend: list[float] | None = None, split: list[float] | None = None,
          volume: list[float] | None = None, committed: str = "2025-01-01", ingest: str = "i1") -> pl.DataFrame:
    n = len(stamps)
    return pl.DataFrame({
        "symbol": [symbol] * n, "interval": [interval] * n, "ts": [_t(s) for s in stamps],
        "open": closes, "high": [c * 1.01 for c in closes], "low": [c * 0.99 for c in closes], "close": closes,
        "volume": volume or [100.0] * n, "dividend": dividend or [0.0] * n, "split_ratio": split or [1.0] * n,
        "ingest_id": [ingest] * n, "source": [source] * n, "committed": [_t(committed)] * n,
        "is_outlier": [False] * n,
    })


def test_golden_gap_fill_split_dividend_and_flags():
    rows = _rows("A", ["2024-01-02", "2024-01-03", "2024-01-08", "2024-01-09"], [10.0, 11.0, 12.0, 6.6],
                 dividend=[0.0, 0.0, 0.0, 0.1], split=[1.0, 1.0, 1.0, 2.0], volume=[100.0, 0.0, 300.0, 800.0])
    rows = rows.with_columns(pl.Series("is_outlier", [False, False, True, False]))
    out, state = clean_frame(rows)
    assert out.schema == pl.Schema(COLUMNS)
    # 2024-01-04 and -05 are XNYS sessions with no bar: filled from the previous close; the weekend is not.
    assert out["ts"].dt.strftime("%m-%d").to_list() == ["01-02", "01-03", "01-04", "01-05", "01-08", "01-09"]
    assert out["is_imputed"].to_list() == [False, False, True, True, False, False]
    filled = out.filter("is_imputed")
    assert filled.select("open", "high", "low", "close").unique().rows() == [(11.0, 11.0, 11.0, 11.0)]
    assert filled["volume"].to_list() == [0.0, 0.0] and filled["ingest_id"].null_count() == 2
    # 2:1 split and a 0.10 dividend on 01-09: earlier prices x (1/2 - 0.1/12), earlier volumes x 2.
    pf = 1 / 2 - 0.1 / 12
    assert out["price_factor"].to_list() == [1.0] * 5 + [pf]
    assert out["volume_factor"].to_list() == [1.0] * 5 + [2.0]
    assert out["adj_factor"].to_list() == [pf] * 5 + [1.0]
    assert out["adj_close"].to_list() == [c * pf for c in (10.0, 11.0, 11.0, 11.0, 12.0)] + [6.6]
    assert out["adj_volume"].to_list() == [200.0, 0.0, 0.0, 0.0, 600.0, 800.0]
    assert out["close"].to_list()[-1] == 6.6  # raw prices are kept
    assert out["is_outlier"].to_list() == [False, False, False, False, True, False]
    assert not out["is_halt"].any()  # 01-03 has zero volume but a range: not a halt
    assert state.row(0) == ("A", "1d", _t("2024-01-09"), 6, [6.6], "XNYS\tcsv")


def test_halt_is_a_real_flat_zero_volume_bar():
    rows = _rows("A", ["2024-01-02", "2024-01-03"], [10.0, 10.0], volume=[100.0, 0.0])
    rows = rows.with_columns(pl.when(pl.col("volume") == 0).then(pl.col("close")).otherwise(pl.col("high")).alias("high"),
                             pl.when(pl.col("volume") == 0).then(pl.col("close")).otherwise(pl.col("low")).alias("low"))
    assert clean_frame(rows)[0]["is_halt"].to_list() == [False, True]


def test_exchange_holidays_are_not_gaps_and_yahoo_splits_are_not_applied_twice():
    # 2024-01-15 is Martin Luther King Jr. Day: no NYSE session, so nothing is filled.
    rows = _rows("AAPL", ["2024-01-12", "2024-01-16", "2024-01-17"], [100.0, 101.0, 25.5], source="yahoo",
                 split=[1.0, 1.0, 4.0], dividend=[0.0, 0.0, 0.25])
    out, _ = clean_frame(rows)
    assert out["ts"].dt.strftime("%m-%d").to_list() == ["01-12", "01-16", "01-17"]
    assert out["calendar"].unique().to_list() == ["XNYS"]
    # Yahoo's prices are already split-adjusted: only the dividend adjusts the history.
    assert out["price_factor"].to_list() == [1.0, 1.0, 1 - 0.25 / 101.0]
    assert out["volume_factor"].to_list() == [1.0, 1.0, 1.0]


def test_crypto_fills_weekends_and_intraday_fills_inside_a_day_only():
    out, _ = clean_frame(_rows("BTC-USD", ["2024-01-05", "2024-01-08"], [40_000.0, 41_000.0], source="yahoo"))
    assert out["ts"].dt.strftime("%m-%d").to_list() == ["01-05", "01-06", "01-07", "01-08"]
    hourly = _rows("EURUSD=X", ["2024-01-02 10:00", "2024-01-02 13:00", "2024-01-03 09:00"], [1.1, 1.2, 1.3],
                   interval="1h", source="yahoo")
    out, _ = clean_frame(hourly)
    assert out["ts"].dt.strftime("%d %H").to_list() == ["02 10", "02 11", "02 12", "02 13", "03 09"]
    assert out["is_imputed"].to_list() == [False, True, True, False, False]


def test_the_latest_committed_row_of_a_key_wins():
    old = _rows("A", ["2024-01-02", "2024-01-03"], [10.0, 11.0], committed="2025-01-01", ingest="old")
    new = _rows("A", ["2024-01-03"], [11.5], committed="2025-02-01", ingest="new")
    out, _ = clean_frame(pl.concat([new, old]))
    assert out.select("close", "ingest_id").rows() == [(10.0, "old"), (11.5, "new")]


def test_a_dividend_at_or_above_the_previous_close_is_a_clear_error():
    rows = _rows("A", ["2024-01-02", "2024-01-03"], [10.0, 9.0], dividend=[0.0, 10.0])
    with pytest.raises(ModelError, match=r"clean.bars: A 1d 2024-01-03 00:00: dividend 10.0 is not below the previous close"):
        clean_frame(rows)


def test_incremental_context_continues_exactly():
    rows = _rows("A", ["2024-01-02", "2024-01-03", "2024-01-08", "2024-01-09"], [10.0, 11.0, 12.0, 13.0])
    full, _ = clean_frame(rows)
    head, state = clean_frame(rows.head(2))
    context = state.select("symbol", "interval", "ts", pl.col("state").list.get(0).alias("close")).with_columns(
        *(pl.lit(None, pl.Float64).alias(c) for c in ("open", "high", "low")), pl.lit(0.0).alias("volume"),
        pl.lit(0.0).alias("dividend"), pl.lit(1.0).alias("split_ratio"), pl.lit(None, pl.String).alias("ingest_id"),
        pl.lit("csv").alias("source"), pl.lit(None, pl.Datetime("us", "UTC")).alias("committed"),
        pl.lit(False).alias("is_outlier"))
    tail, tail_state = clean_frame(rows.tail(2), context=context, rows_before=state.select("symbol", "interval", "rows"))
    assert pl.concat([head, tail]).equals(full)
    assert tail_state["rows"].to_list() == [full.height]
