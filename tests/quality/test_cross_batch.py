"""A bar repeated in two batches of one ingest is a duplicate (not a restatement) all the way down."""

from __future__ import annotations

import datetime as dt

import polars as pl

from alphatwin.paths import WarehousePaths
from tests.conftest import make_bars
from tests.models.market import build_all, table


def _ingest(paths: WarehousePaths, frames: list[pl.DataFrame]) -> None:
    from alphatwin.lake.ingest import ingest
    from alphatwin.quality.gate import QualityGate
    from alphatwin.sources.base import FetchRequest
    from alphatwin.sources.frame import FrameSource

    request = FetchRequest(("AAA", "BBB"), "1d")
    ingest(FrameSource(frames, name="csv"), request, paths, gate=QualityGate(paths, request))


def test_exact_copies_collapse_and_differing_copies_quarantine_across_batches(tmp_path):
    paths = WarehousePaths(tmp_path / "wh")
    bars = make_bars(["AAA", "BBB"], 10)
    first = bars.filter(pl.col("ts") <= bars["ts"].sort()[6])  # the second batch repeats its last day
    copy = bars.filter((pl.col("symbol") == "AAA") & (pl.col("ts") == bars["ts"].sort()[6]))
    clash = bars.filter((pl.col("symbol") == "BBB") & (pl.col("ts") == bars["ts"].sort()[6])).with_columns(
        pl.col("close") * 1.001, pl.col("high") * 1.001)
    rest = bars.filter(pl.col("ts") > bars["ts"].sort()[6])
    _ingest(paths, [first, pl.concat([copy, clash, rest])])  # two batches of one ingest
    quarantine = table(paths, "quality.quarantine").select("symbol", "reasons", "collapsed")
    assert sorted(quarantine.rows()) == [("AAA", ["duplicate_exact"], True),
                                         ("BBB", ["duplicate_conflict"], False),
                                         ("BBB", ["duplicate_conflict"], False)]
    assert table(paths, "quality.restatements").height == 0  # not a restatement of accepted data
    build_all(paths)
    clean = table(paths, "clean.bars")
    day = bars["ts"].sort()[6].replace(tzinfo=dt.UTC)  # 2019-12-26, an NYSE session
    assert clean.filter((pl.col("symbol") == "AAA") & (pl.col("ts") == day)).height == 1
    # Both differing copies are quarantined; the session is then a missing bar, filled forward.
    filled = clean.filter((pl.col("symbol") == "BBB") & (pl.col("ts") == day))
    assert filled["is_imputed"].to_list() == [True]
