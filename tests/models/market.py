"""A small synthetic market with every case the model layer handles, and warehouse helpers."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl

from alphatwin.lake import catalog
from alphatwin.lake.ingest import ingest
from alphatwin.models.build import BuildResult, build
from alphatwin.paths import WarehousePaths
from alphatwin.quality.gate import QualityGate
from alphatwin.sources.base import FetchRequest
from alphatwin.sources.frame import FrameSource
from alphatwin.sources.synthetic import SyntheticSource

SQL_ROOT = Path(__file__).resolve().parents[2] / "sql"


def market(n_symbols: int = 4, n_bars: int = 240, seed: int = 11) -> pl.DataFrame:
    """Synthetic daily bars (quarterly dividends) plus a 2:1 split on SYN00002 at bar 215, a 1:4
    reverse split on SYN00003 at bar 60, and missing bars (gaps the model fills)."""
    frame = pl.concat(list(SyntheticSource(n_symbols=n_symbols, n_bars=n_bars, seed=seed).fetch(FetchRequest())))
    frame = frame.with_columns(pl.int_range(pl.len()).over("symbol").alias("i"))
    for symbol, at, ratio in (("SYN00002", 215, 2.0), ("SYN00003", 60, 0.25)):
        after = (pl.col("symbol") == symbol) & (pl.col("i") >= at)
        frame = frame.with_columns(
            *(pl.when(after).then(pl.col(c) / ratio).otherwise(pl.col(c)).alias(c) for c in ("open", "high", "low", "close")),
            pl.when(after).then((pl.col("volume") * ratio).round()).otherwise(pl.col("volume")).alias("volume"),
            pl.when(after).then(pl.col("dividend") / ratio).otherwise(pl.col("dividend")).alias("dividend"),
            pl.when((pl.col("symbol") == symbol) & (pl.col("i") == at)).then(ratio).otherwise(pl.col("split_ratio"))
            .alias("split_ratio"),
        )
    gaps = pl.col("i").is_in([15, 16, 90, 171]) & (pl.col("symbol") != "SYN00004")
    return frame.filter(~gaps).drop("i")


def load(paths: WarehousePaths, frame: pl.DataFrame, *, source: str = "synthetic") -> None:
    """Ingest ``frame`` (validated by the quality gate) as ``source``."""
    request = FetchRequest(tuple(sorted(frame["symbol"].unique())), "1d")
    ingest(FrameSource(frame, name=source), request, paths, gate=QualityGate(paths, request))


def build_all(paths: WarehousePaths, *, full_refresh: bool = False) -> BuildResult:
    return build(paths, sql_root=SQL_ROOT, full_refresh=full_refresh)


def table(paths: WarehousePaths, name: str) -> pl.DataFrame:
    with catalog.connect(paths, read_only=True) as con:
        return con.sql(f"SELECT * FROM {name} ORDER BY symbol, interval, ts").pl()


def day(frame: pl.DataFrame, i: int) -> dt.datetime:
    """The ts of the ``i``-th distinct bar date of ``frame``."""
    return frame["ts"].unique().sort()[i]
