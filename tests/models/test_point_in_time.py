"""Point-in-time: building on data truncated at T changes no value of any row dated T or before.

The one documented exception is clean.bars' backward adjustment (adj_* and the adj factors): a
later split or dividend rescales a symbol's whole adjusted history by one common factor, which is
what backward adjustment means; the test checks exactly that. Rows filled after a symbol's last
bar at or before T exist only once a later bar shows the session was missing.
"""

from __future__ import annotations

import polars as pl
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from alphatwin.paths import WarehousePaths
from tests.models.market import build_all, load, market, table

DATA = market(n_symbols=4, n_bars=240)
STAMPS = DATA["ts"].unique().sort()
SYMBOLS = sorted(DATA["symbol"].unique())
ADJUSTED = ("ingest_id", "adj_factor", "adj_volume_factor", "adj_open", "adj_high", "adj_low", "adj_close", "adj_volume")


@pytest.fixture(scope="module")
def full(tmp_path_factory) -> dict[str, pl.DataFrame]:
    paths = WarehousePaths(tmp_path_factory.mktemp("pit") / "full")
    load(paths, DATA)
    build_all(paths)
    return {t: table(paths, t) for t in ("clean.bars", "features.bars")}


def _restrict(frame: pl.DataFrame, truncated: pl.DataFrame, cut) -> pl.DataFrame:
    """Rows of ``frame`` at or before ``cut`` for the truncated build's keys, except the rows filled
    after the last real bar (unknowable at ``cut``)."""
    last_real = truncated.group_by("symbol", "interval").agg(pl.col("ts").max().alias("last"))
    return (frame.filter(pl.col("ts") <= cut).join(last_real, on=["symbol", "interval"])
            .filter(pl.col("ts") <= pl.col("last")).drop("last"))


def _differing(got: pl.DataFrame, want: pl.DataFrame) -> list[str]:
    return [c for c in want.columns if not got[c].equals(want[c])]


@settings(max_examples=6, deadline=None, phases=[Phase.explicit, Phase.generate],
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cut=st.integers(min_value=20, max_value=len(STAMPS) - 2),
       symbols=st.sets(st.sampled_from(SYMBOLS), min_size=1, max_size=len(SYMBOLS)))
def test_truncating_the_input_changes_no_earlier_value(full, tmp_path_factory, cut, symbols):
    paths = WarehousePaths(tmp_path_factory.mktemp("cut") / "wh")
    load(paths, DATA.filter((pl.col("ts") <= STAMPS[cut]) & pl.col("symbol").is_in(list(symbols))))
    build_all(paths)
    cut_ts = STAMPS[cut]
    features = table(paths, "features.bars")
    expected = _restrict(full["features.bars"], features, cut_ts)
    assert features.height == expected.height > 0
    assert _differing(features, expected) == []  # every column, bit for bit, nulls in the same places
    clean = table(paths, "clean.bars")
    expected = _restrict(full["clean.bars"], clean, cut_ts)
    assert clean.height == expected.height
    assert _differing(clean.drop(ADJUSTED), expected.drop(ADJUSTED)) == []
    # Backward adjustment: one common factor per symbol (the later events) between the two builds.
    ratio = expected.select("symbol", (pl.col("adj_factor") / clean["adj_factor"]).alias("r"),
                            (pl.col("adj_volume_factor") / clean["adj_volume_factor"]).alias("rv"))
    spread = ratio.group_by("symbol").agg((pl.col("r").max() / pl.col("r").min() - 1).abs().alias("d"),
                                          (pl.col("rv").max() / pl.col("rv").min() - 1).abs().alias("dv"))
    assert spread["d"].max() < 1e-12 and spread["dv"].max() < 1e-12
