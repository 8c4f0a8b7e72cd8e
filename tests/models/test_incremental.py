"""An incremental build leaves exactly the tables a full refresh builds, whatever arrived."""

from __future__ import annotations

import shutil

import polars as pl

from alphatwin.lake import catalog
from alphatwin.paths import WarehousePaths
from tests.models.market import build_all, load, market, table

TABLES = ("clean.bars", "features.bars", "signals.golden_cross")


def _modes(result) -> dict[str, str]:
    return {r.model: r.mode for r in result.runs}


def test_incremental_equals_full_refresh(tmp_path):
    paths = WarehousePaths(tmp_path / "wh")
    data = market(n_symbols=5, n_bars=260)
    stamps = data["ts"].unique().sort()
    load(paths, data.filter(pl.col("ts") <= stamps[199]))
    assert _modes(build_all(paths)) == {"clean.latest_bars": "view", "clean.bars": "full", "features.bars": "full",
                                        "signals.golden_cross": "view"}
    steps = [
        data.filter((pl.col("ts") > stamps[199]) & (pl.col("ts") <= stamps[202])),          # appends (one a gap)
        data.filter((pl.col("ts") > stamps[202]) & (pl.col("ts") <= stamps[230])),          # a dividend and a split
        data.filter((pl.col("symbol") == "SYN00001") & (pl.col("ts") == stamps[100]))      # a restated old bar
            .with_columns(pl.col("volume") + 1.0),
        data.filter(pl.col("ts") > stamps[230]),                                           # the rest
    ]
    for batch in steps:
        load(paths, batch)
        result = build_all(paths)
        assert _modes(result)["clean.bars"] == "incremental" and _modes(result)["features.bars"] == "incremental"
    incremental = {t: table(paths, t) for t in TABLES}
    assert all(frame.height > 0 for frame in incremental.values())
    _same_as_full_refresh(paths, tmp_path)  # both tables and the saved state, bit for bit
    assert incremental["clean.bars"]["is_imputed"].sum() > 0
    assert incremental["clean.bars"].filter(pl.col("split_ratio") != 1).height == 2


def test_a_new_symbol_and_a_code_change_rebuild(tmp_path):
    paths = WarehousePaths(tmp_path / "wh")
    data = market(n_symbols=3, n_bars=120)
    load(paths, data.filter(pl.col("symbol") != "SYN00003"))
    build_all(paths)
    load(paths, data.filter(pl.col("symbol") == "SYN00003"))
    assert _modes(build_all(paths))["features.bars"] == "incremental"
    assert sorted(table(paths, "features.bars")["symbol"].unique()) == ["SYN00001", "SYN00002", "SYN00003"]
    with catalog.connect(paths) as con:
        con.execute("UPDATE meta.model_runs SET sql_sha256 = 'old' WHERE model = 'features.bars'")
    assert _modes(build_all(paths))["features.bars"] == "full"  # its code is not the code of the last build


def test_extra_feature_parameter_sets_from_settings_force_a_full_rebuild(tmp_path):
    from dataclasses import replace

    from alphatwin.config import Settings
    from alphatwin.models.build import build
    from tests.models.market import SQL_ROOT

    paths = WarehousePaths(tmp_path / "wh")
    load(paths, market(n_symbols=2, n_bars=80))
    build_all(paths)
    assert "sma_50" not in table(paths, "features.bars").columns
    settings = replace(Settings(), features=(("sma", [50]), ("bbands", [[10, 2.5]])))
    result = build(paths, sql_root=SQL_ROOT, settings=settings)
    assert _modes(result) == {"clean.latest_bars": "view", "clean.bars": "incremental", "features.bars": "full",
                              "signals.golden_cross": "view"}
    features = table(paths, "features.bars")
    assert {"sma_50", "bb_upper_10_2p5", "sma_20"} <= set(features.columns)
    first = features.group_by("symbol").agg(pl.col("sma_50").is_not_null().arg_max().alias("g"))
    assert first["g"].to_list() == [49, 49]  # TA-Lib's warm-up: the 50th bar


def _same_as_full_refresh(paths: WarehousePaths, tmp_path, settings=None) -> None:
    from alphatwin.models.build import build
    from tests.models.market import SQL_ROOT

    copy = WarehousePaths(tmp_path / "full")
    shutil.copytree(paths.root, copy.root)
    result = build(copy, sql_root=SQL_ROOT, full_refresh=True, settings=settings)
    assert {r.mode for r in result.runs} == {"view", "full"}
    for name in (*TABLES, "meta.model_state"):
        got, want = table(paths, name), table(copy, name)
        if name == "meta.model_state":
            got, want = (f.sort("model", "symbol", "interval") for f in (got, want))
        assert got.equals(want), name


def test_a_stale_upstream_never_leaks_into_features(tmp_path):
    """features.bars folds only what clean.bars holds, and follows clean.bars' settings changes."""
    from dataclasses import replace

    from alphatwin.config import Settings
    from alphatwin.models.build import build
    from tests.models.market import SQL_ROOT

    paths = WarehousePaths(tmp_path / "wh")
    data = market(n_symbols=3, n_bars=90)
    stamps = data["ts"].unique().sort()
    load(paths, data.filter(pl.col("ts") <= stamps[49]))
    build_all(paths)
    load(paths, data.filter((pl.col("ts") > stamps[49]) & (pl.col("ts") <= stamps[60])))
    build(paths, sql_root=SQL_ROOT, select="features.bars")  # clean.bars has not seen the ingest yet
    build(paths, sql_root=SQL_ROOT, select="clean.bars")
    assert _modes(build_all(paths))["features.bars"] == "incremental"
    _same_as_full_refresh(paths, tmp_path / "a")
    settings = replace(Settings(), calendars=(("SYN*", "24/7"),))  # weekends become missing sessions
    result = build(paths, sql_root=SQL_ROOT, settings=settings)
    assert _modes(result)["clean.bars"] == "full" and _modes(result)["features.bars"] == "full"
    _same_as_full_refresh(paths, tmp_path / "b", settings)


def test_calendar_and_source_do_not_depend_on_later_bars(tmp_path):
    paths = WarehousePaths(tmp_path / "wh")
    data = market(n_symbols=2, n_bars=90)
    stamps = data["ts"].unique().sort()
    load(paths, data.filter(pl.col("ts") <= stamps[49]), source="mydata")  # a source name AlphaTwin does not know
    build_all(paths)
    load(paths, data.filter((pl.col("ts") >= stamps[53]) & (pl.col("ts") <= stamps[70])), source="mydata")
    load(paths, data.filter(pl.col("ts") > stamps[70]), source="csv")  # the symbol's source changes
    build_all(paths)
    clean = table(paths, "clean.bars")
    assert clean.filter(pl.col("is_imputed"))["source"].null_count() == 0
    assert clean["calendar"].unique().to_list() == ["XNYS"]  # decided by the first bar's source
    _same_as_full_refresh(paths, tmp_path)


def test_status_shows_each_models_last_build_and_what_waits(tmp_path):
    from alphatwin.cli.status import collect_status

    paths = WarehousePaths(tmp_path / "wh")
    data = market(n_symbols=2, n_bars=60)
    stamps = data["ts"].unique().sort()
    load(paths, data.filter(pl.col("ts") <= stamps[40]))
    build_all(paths)
    load(paths, data.filter(pl.col("ts") > stamps[40]))
    models = {m["model"]: m for m in collect_status(paths)[0]["models"]}
    assert models["clean.bars"]["mode"] == "full" and models["clean.bars"]["ingests_pending"] == 1
    assert models["features.bars"]["ingests_pending"] == 1 and models["clean.latest_bars"]["ingests_pending"] is None
    build_all(paths)
    models = {m["model"]: m for m in collect_status(paths)[0]["models"]}
    assert models["features.bars"]["mode"] == "incremental" and models["features.bars"]["ingests_pending"] == 0
