"""SyntheticSource: determinism, realism, streaming and an exact truth table of injected defects."""

from __future__ import annotations

import datetime as dt
import resource
import time

import numpy as np
import polars as pl
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from alphatwin.errors import InputError, SymbolNotFoundError
from alphatwin.sources import synthetic_nb as nb
from alphatwin.sources.base import BAR_SCHEMA, FetchRequest, Source
from alphatwin.sources.synthetic import DEFECT_KINDS, SyntheticSource

UTC = dt.timezone.utc
DEFECTS = {"gap": 0.01, "duplicate": 0.01, "broken_ohlc": 0.01, "spike": 0.005, "zero_volume_halt": 0.005}
KEY = ["symbol", "ts"]


def bars(src: SyntheticSource, **request: object) -> pl.DataFrame:
    frames = list(src.fetch(FetchRequest(**request)))
    return pl.concat(frames) if frames else pl.DataFrame(schema=BAR_SCHEMA)


def ohlc_ok(frame: pl.DataFrame) -> pl.Series:
    return frame.select(
        (pl.col("high") >= pl.max_horizontal("open", "close")) & (pl.col("low") <= pl.min_horizontal("open", "close"))
    ).to_series()


# --------------------------------------------------------------------------- the RNG kernel


def splitmix64_reference(seed: int, n: int) -> list[float]:
    """SplitMix64 (Steele, Lea & Flood 2014) in plain Python, mapped to (0, 1) like the kernel."""
    mask, state, out = (1 << 64) - 1, seed, []
    for _ in range(n):
        state = (state + 0x9E3779B97F4A7C15) & mask
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
        z ^= z >> 31
        out.append(((z >> 11) + 0.5) / 2.0**53)
    return out


def test_rng_kernel_matches_reference() -> None:
    # SplitMix64's first output from seed 0 is the published 0xE220A8397B1DCDAF
    assert nb.uniforms_nb(np.uint64(0), 1)[0] == ((0xE220A8397B1DCDAF >> 11) + 0.5) / 2.0**53
    assert nb.uniforms_nb(np.uint64(12345), 50).tolist() == splitmix64_reference(12345, 50)


# --------------------------------------------------------------------------- shape and determinism


def test_protocol_schema_and_order() -> None:
    src = SyntheticSource(n_symbols=3, n_bars=20, seed=1)
    assert isinstance(src, Source) and src.name == "synthetic" and src.network is False
    frame = bars(src)
    assert frame.schema == pl.Schema(BAR_SCHEMA)
    assert frame.height == 60
    assert frame["symbol"].unique(maintain_order=True).to_list() == ["SYN00001", "SYN00002", "SYN00003"]
    assert frame.select(KEY).equals(frame.select(KEY).sort(KEY))
    assert src.symbols == ("SYN00001", "SYN00002", "SYN00003")


def test_golden_first_bars() -> None:
    """Regression pin: changing the generator's stream must be a conscious decision."""
    rows = bars(SyntheticSource(n_symbols=1, n_bars=2, seed=0)).rows()
    assert rows == [
        ("SYN00001", "1d", dt.datetime(2000, 1, 3, tzinfo=UTC), 153.64, 154.58, 151.01, 151.8, 968647.0, 0.0, 1.0),
        ("SYN00001", "1d", dt.datetime(2000, 1, 4, tzinfo=UTC), 152.8, 154.86, 152.41, 154.16, 1347389.0, 0.0, 1.0),
    ]


def test_same_seed_same_data_regardless_of_chunks_and_universe() -> None:
    whole = bars(SyntheticSource(n_symbols=7, n_bars=300, seed=42, defects=DEFECTS))
    chunked_src = SyntheticSource(n_symbols=7, n_bars=300, seed=42, chunk_rows=650, defects=DEFECTS)
    chunks = list(chunked_src.fetch(FetchRequest()))
    assert len(chunks) > 3 and all(c.height <= 650 for c in chunks)
    assert pl.concat(chunks).equals(whole)
    bigger = bars(SyntheticSource(n_symbols=20, n_bars=300, seed=42, defects=DEFECTS), symbols=("SYN00005", "SYN00002"))
    assert bigger.equals(whole.filter(pl.col("symbol").is_in(["SYN00002", "SYN00005"])))
    assert not bars(SyntheticSource(n_symbols=7, n_bars=300, seed=43)).equals(whole)


def test_chunks_hold_whole_symbols() -> None:
    src = SyntheticSource(n_symbols=10, n_bars=100, seed=5, chunk_rows=250, defects={"duplicate": 0.05})
    chunks = list(src.fetch(FetchRequest()))
    seen: set[str] = set()
    for chunk in chunks:
        assert chunk.height <= 250
        names = set(chunk["symbol"].unique())
        assert not names & seen
        seen |= names
    assert len(seen) == 10
    one_big = list(SyntheticSource(n_symbols=2, n_bars=100, chunk_rows=10).fetch(FetchRequest()))
    assert [c.height for c in one_big] == [100, 100]  # a symbol is never split


# --------------------------------------------------------------------------- realism of clean data


def test_clean_data_is_consistent() -> None:
    frame = bars(SyntheticSource(n_symbols=20, n_bars=1000, seed=11))
    assert ohlc_ok(frame).all()
    assert (frame["low"] > 0).all() and (frame["high"] >= frame["low"]).all()
    assert (frame["volume"] >= 1).all() and (frame["volume"] == frame["volume"].floor()).all()
    assert frame.select(pl.struct(KEY).is_unique().all()).item()
    weekdays = frame["ts"].dt.weekday()
    assert weekdays.max() <= 5  # Mon-Fri only
    assert (frame["ts"].dt.hour() == 0).all()
    assert (frame["ts"].dt.date().n_unique()) == 1000


def test_returns_have_fat_tails_and_volume_follows_moves() -> None:
    frame = bars(SyntheticSource(n_symbols=30, n_bars=2000, seed=2))
    r = frame.with_columns(r=(pl.col("close") / pl.col("close").shift().over("symbol")).log()).filter(
        pl.col("split_ratio") == 1.0, pl.col("dividend") == 0.0
    ).drop_nulls("r")
    assert 0.005 < r["r"].std() < 0.06
    assert r["r"].kurtosis() > 2.0  # regimes and jumps: heavier tails than a normal
    corr = r.select(pl.corr(pl.col("r").abs(), pl.col("volume").log(), method="spearman")).item()
    assert corr > 0.1
    gap = frame.with_columns(prev=pl.col("close").shift().over("symbol")).filter(pl.col("split_ratio") == 1.0)
    assert (gap["open"] != gap["prev"]).mean() > 0.9  # opens gap away from the previous close


def test_splits_and_dividends_are_sane() -> None:
    frame = bars(SyntheticSource(n_symbols=100, n_bars=2520, seed=3)).with_columns(
        prev=pl.col("close").shift().over("symbol")
    )
    splits = frame.filter(pl.col("split_ratio") != 1.0)
    assert splits.height > 10
    assert set(splits["split_ratio"].unique()) <= {2.0, 3.0, 0.1}
    # unadjusted: the price level jumps by the ratio, the adjusted move is ordinary
    adjusted = (splits["open"] * splits["split_ratio"] / splits["prev"]).log().abs()
    assert adjusted.max() < 0.25
    assert ((splits["open"] / splits["prev"]).log().abs() > 0.4).all()
    divs = frame.filter(pl.col("dividend") > 0.0)
    assert divs.height > 100
    assert (divs["dividend"] < divs["close"]).all()
    assert ((divs["dividend"] / divs["prev"]) < 0.012).all()
    spacing = divs.with_columns(n=pl.int_range(pl.len()).over("symbol")).join(
        frame.with_columns(bar=pl.int_range(pl.len()).over("symbol")).select(*KEY, "bar"), on=KEY
    )
    steps = spacing.select(pl.col("bar").diff().over("symbol")).drop_nulls().to_series()
    assert set(steps.unique()) == {63}  # quarterly, every 63 business days


def test_intraday_new_york_session() -> None:
    src = SyntheticSource(n_symbols=2, n_bars=78 * 3, seed=1, start=dt.date(2024, 3, 8))
    frame = bars(src, interval="5m")
    ny = frame["ts"].dt.convert_time_zone("America/New_York")
    assert ny.dt.strftime("%H:%M").unique().sort().to_list()[0] == "09:30"
    assert ny.dt.strftime("%H:%M").max() == "15:55"
    days = ny.dt.date().unique().sort().to_list()
    assert days == [dt.date(2024, 3, 8), dt.date(2024, 3, 11), dt.date(2024, 3, 12)]  # weekend skipped
    # DST started on 2024-03-10: the session opens an hour earlier in UTC
    opens = frame.filter(ny.dt.strftime("%H:%M") == "09:30")["ts"].unique().sort().dt.hour().to_list()
    assert opens == [14, 13, 13]
    assert ohlc_ok(frame).all()


def test_round_the_clock_calendar() -> None:
    frame = bars(SyntheticSource(n_symbols=1, n_bars=500, calendar="24/7", seed=9), interval="1h")
    steps = frame["ts"].diff().drop_nulls().unique().to_list()
    assert steps == [dt.timedelta(hours=1)]
    assert 6 in frame["ts"].dt.weekday().to_list()  # weekends trade
    assert (frame["dividend"] == 0.0).all() and (frame["split_ratio"] == 1.0).all()
    daily = bars(SyntheticSource(n_symbols=1, n_bars=10, calendar="24/7"))
    assert daily["ts"].diff().drop_nulls().unique().to_list() == [dt.timedelta(days=1)]


def test_longer_intervals() -> None:
    src = SyntheticSource(n_symbols=1, n_bars=6, start=dt.date(2024, 1, 3))
    assert bars(src, interval="1wk")["ts"].dt.weekday().unique().to_list() == [1]
    assert bars(src, interval="1mo")["ts"].dt.date().to_list()[:2] == [dt.date(2024, 2, 1), dt.date(2024, 3, 1)]
    assert bars(src, interval="3mo")["ts"].dt.date().to_list()[0] == dt.date(2024, 4, 1)


def test_range_filter_is_half_open() -> None:
    src = SyntheticSource(n_symbols=2, n_bars=50, seed=4, defects=DEFECTS)
    full = bars(src)
    start, end = dt.datetime(2000, 1, 10), dt.datetime(2000, 2, 1)
    part = bars(src, start=start, end=end)
    expected = full.filter(pl.col("ts") >= start.replace(tzinfo=UTC), pl.col("ts") < end.replace(tzinfo=UTC))
    assert part.equals(expected)
    assert src.defects["ts"].is_between(start.replace(tzinfo=UTC), end.replace(tzinfo=UTC), closed="left").all()
    assert bars(src, start=dt.datetime(2030, 1, 1)).height == 0


# --------------------------------------------------------------------------- defects: the truth table


def defect_truth(n_symbols: int, n_bars: int, seed: int, rates: dict[str, float]) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame, pl.Series]:
    dirty_src = SyntheticSource(n_symbols=n_symbols, n_bars=n_bars, seed=seed, defects=rates)
    dirty = bars(dirty_src)
    clean_src = SyntheticSource(n_symbols=n_symbols, n_bars=n_bars, seed=seed)
    return dirty, bars(clean_src), dirty_src.defects, clean_src.timestamps("1d")


def check_truth_table(dirty: pl.DataFrame, clean: pl.DataFrame, defects: pl.DataFrame, calendar: pl.Series) -> None:
    """Every reported defect is in the data, and every difference from clean data is reported."""
    assert defects.columns == ["symbol", "interval", "ts", "defect"]
    assert set(defects["defect"]) <= set(DEFECT_KINDS)
    assert defects.select(pl.struct(KEY).is_unique().all()).item()
    kind = dict(zip(zip(defects["symbol"], defects["ts"]), defects["defect"]))
    counts = dirty.group_by(KEY).len()
    for (sym, ts), n in zip(zip(counts["symbol"], counts["ts"]), counts["len"]):
        assert n == (2 if kind.get((sym, ts)) == "duplicate" else 1)
    gaps = defects.filter(pl.col("defect") == "gap").select(KEY)
    assert gaps.join(dirty, on=KEY, how="semi").height == 0
    for sym in clean["symbol"].unique():
        present = set(dirty.filter(pl.col("symbol") == sym)["ts"]) | set(gaps.filter(pl.col("symbol") == sym)["ts"])
        assert present == set(calendar)
    first = dirty.unique(KEY, keep="first", maintain_order=True)
    joined = first.join(clean, on=KEY, suffix="_clean").join(defects, on=KEY, how="left")
    changed = joined.filter(
        pl.any_horizontal(pl.col(c) != pl.col(f"{c}_clean") for c in ("open", "high", "low", "close", "volume"))
    )
    assert changed["defect"].is_not_null().all()
    assert joined.filter(pl.col("defect").is_null()).pipe(ohlc_ok).all()
    assert not joined.filter(pl.col("defect") == "broken_ohlc").pipe(ohlc_ok).any()
    spikes = joined.filter(pl.col("defect") == "spike")
    factor = (spikes["close"] / spikes["close_clean"]).log().abs()
    assert (factor > np.log(4.9)).all() and (factor < np.log(20.5)).all()
    assert spikes.pipe(ohlc_ok).all()
    halts = joined.filter(pl.col("defect") == "zero_volume_halt")
    assert (halts["volume"] == 0).all()
    assert (halts["open"] == halts["close"]).all() and (halts["high"] == halts["low"]).all()
    assert (halts["high"] == halts["close"]).all()


def test_defect_truth_table() -> None:
    dirty, clean, defects, calendar = defect_truth(40, 500, 8, DEFECTS)
    per_kind = dict(defects.group_by("defect").len().iter_rows())
    assert set(per_kind) == set(DEFECT_KINDS)
    assert 120 < per_kind["gap"] < 280 and 40 < per_kind["spike"] < 160  # rates x 20,000 bars
    check_truth_table(dirty, clean, defects, calendar)
    dups = dirty.filter(pl.struct(KEY).is_duplicated())
    conflicting = dups.group_by(KEY).agg(pl.col("close").n_unique() > 1).filter(pl.col("close"))
    assert 0 < conflicting.height < dups.height // 2  # some exact copies, some conflicting rows


def test_no_defects_without_a_spec() -> None:
    src = SyntheticSource(n_symbols=2, n_bars=10)
    bars(src)
    assert src.defects.height == 0 and src.defects.schema["ts"] == BAR_SCHEMA["ts"]


@settings(max_examples=40, deadline=None)
@given(
    n_symbols=st.integers(1, 4),
    n_bars=st.integers(1, 60),
    seed=st.integers(0, 2**32),
    chunk_rows=st.integers(1, 200),
    rates=st.fixed_dictionaries({k: st.sampled_from([0.0, 0.02, 0.1]) for k in DEFECT_KINDS}),
)
@example(n_symbols=1, n_bars=1, seed=0, chunk_rows=1, rates={k: 0.0 for k in DEFECT_KINDS})
@example(n_symbols=2, n_bars=5, seed=1, chunk_rows=3, rates={"gap": 0.5, "duplicate": 0.5, **dict.fromkeys(DEFECT_KINDS[2:], 0.0)})
def test_property_small_universes(n_symbols: int, n_bars: int, seed: int, chunk_rows: int, rates: dict[str, float]) -> None:
    src = SyntheticSource(n_symbols=n_symbols, n_bars=n_bars, seed=seed, chunk_rows=chunk_rows, defects=rates)
    chunks = list(src.fetch(FetchRequest()))
    assert all(c.schema == pl.Schema(BAR_SCHEMA) for c in chunks)
    assert all(c.height <= max(chunk_rows, 2 * n_bars) for c in chunks)
    dirty = pl.concat(chunks) if chunks else pl.DataFrame(schema=BAR_SCHEMA)
    clean = bars(SyntheticSource(n_symbols=n_symbols, n_bars=n_bars, seed=seed))
    assert ohlc_ok(clean).all() and (clean["volume"] >= 1).all()
    assert dirty.equals(bars(SyntheticSource(n_symbols=n_symbols, n_bars=n_bars, seed=seed, defects=rates)))
    check_truth_table(dirty, clean, src.defects, src.timestamps("1d"))


# --------------------------------------------------------------------------- options and errors


def test_bad_options_and_symbols() -> None:
    with pytest.raises(InputError, match="`n_symbols` must be a positive integer"):
        SyntheticSource(n_symbols=0)
    with pytest.raises(InputError, match="unknown defect kind"):
        SyntheticSource(defects={"meteor": 0.1})
    with pytest.raises(InputError, match=r"sum to at most 1"):
        SyntheticSource(defects={"gap": 0.6, "spike": 0.6})
    with pytest.raises(InputError, match="`calendar` must be one of"):
        SyntheticSource(calendar="lunar")
    with pytest.raises(SymbolNotFoundError, match="SYN00003"):
        bars(SyntheticSource(n_symbols=2), symbols=("SYN00003",))
    with pytest.raises(SymbolNotFoundError):
        bars(SyntheticSource(n_symbols=2), symbols=("SYN1",))


@pytest.mark.slow
def test_scale_25_million_rows() -> None:
    bars(SyntheticSource(n_symbols=2, n_bars=10))  # load the compiled kernels
    src = SyntheticSource(n_symbols=5000, n_bars=5000, seed=1)
    t0 = time.perf_counter()
    rows = 0
    for frame in src.fetch(FetchRequest()):
        assert frame.height <= src.chunk_rows
        rows += frame.height
    elapsed = time.perf_counter() - t0
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"25M rows in {elapsed:.2f}s ({rows / elapsed / 1e6:.1f}M rows/s), peak RSS {peak_mb:.0f} MB")
    assert rows == 25_000_000
    assert elapsed < 12.0
