"""``alphatwin.open``: the read-only Python handle on a real warehouse (fixture market, a real
backtest), compared with what the backtest computed."""

from __future__ import annotations

import numpy as np
import pytest

import alphatwin
from alphatwin.backtest.params import Costs, SimParams
from alphatwin.backtest.run import RunSpec, run_backtest
from alphatwin.errors import InputError, SqlSandboxError
from alphatwin.lake import catalog
from alphatwin.paths import WarehousePaths
from tests.models.market import build_all, load, market


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    paths = WarehousePaths(tmp_path_factory.mktemp("api") / "wh")
    load(paths, market(n_symbols=2))
    build_all(paths)
    spec = RunSpec("rsi_reversion", ("SYN00001", "SYN00002"), {"period": 5}, direction="both",
                   sim=SimParams(costs=Costs(fees_bps=10)))
    with catalog.connect(paths) as con:
        run = run_backtest(con, spec)
    return paths, run


def test_open_reads_bars_features_and_sql(built):
    paths, _ = built
    wh = alphatwin.open(paths.root)
    middle = wh.bars("SYN00001")["ts"][100].date()
    bars = wh.bars("SYN00001", start=middle)
    with catalog.connect(paths, read_only=True) as con:
        want = con.sql("SELECT ts, close FROM clean.bars WHERE symbol = 'SYN00001' AND ts >= ?::TIMESTAMPTZ "
                       "ORDER BY ts", params=[f"{middle}T00:00:00+00:00"]).pl()
    assert bars.height == want.height > 0 and bars["close"].to_list() == want["close"].to_list()
    feats = wh.features("SYN00001", columns=["rsi_14"])
    assert feats.columns == ["symbol", "ts", "rsi_14"] and feats.height == wh.bars("SYN00001").height
    assert wh.sql("select count(*) as n from clean.bars")["n"][0] == wh.bars("SYN00001").height + wh.bars("SYN00002").height
    with pytest.raises(SqlSandboxError):
        wh.sql("delete from clean.bars")


def test_run_equals_the_backtest_that_stored_it(built):
    paths, run = built
    wh = alphatwin.open(paths.root)
    assert wh.runs()["run_id"][0] == run.run_id
    got = wh.run(run.run_id)
    s = run.loaded.start
    np.testing.assert_array_equal(got.equity["equity"].to_numpy(), run.result.equity[s:])
    assert got.trades.height == len(run.result.trades) > 0
    assert got.metrics["sharpe"] == pytest.approx(run.metrics["sharpe"], rel=1e-12)
    assert got.info["strategy"] == "rsi_reversion" and got.info["params"] == {"period": 5, "lower": 30.0, "upper": 70.0}
    signals = wh.signals("rsi_reversion", "SYN00001")
    assert signals.height == wh.bars("SYN00001").height and signals["run_id"][0] == run.run_id


def test_chart_is_an_interactive_altair_chart_that_renders(built):
    import vl_convert as vlc

    paths, run = built
    spec = alphatwin.open(paths.root).run(run.run_id).chart().to_dict()
    assert len(spec["vconcat"]) == 2
    zooms = [p for p in spec["params"] if p["select"]["type"] == "interval" and p.get("bind") == "scales"]
    assert len(zooms) == 2  # both panels zoom and pan
    (values,) = spec["datasets"].values()
    assert len(values) == len(run.result.equity) - run.loaded.start
    svg = vlc.vegalite_to_svg(spec)
    assert svg.startswith("<svg") and svg.count("<path") >= 2


@pytest.mark.parametrize("call, message", [
    (lambda wh: wh.bars("NOPE"), "no 1d bars for 'NOPE'"),
    (lambda wh: wh.features("SYN00001", columns=["sma_999"]), "no column 'sma_999'"),
    (lambda wh: wh.run("bt-nope"), "no backtest run 'bt-nope'"),
    (lambda wh: wh.signals("nope; drop"), "no signals.nope; drop"),
    (lambda wh: wh.bars("SYN00001", start="yesterday"), "`start` must be a date"),
])
def test_bad_arguments_are_one_line_errors(built, call, message):
    with pytest.raises(InputError, match=message.replace("(", "\\(")):
        call(alphatwin.open(built[0].root))


def test_open_needs_a_warehouse(tmp_path):
    with pytest.raises(InputError, match="no warehouse at"):
        alphatwin.open(tmp_path / "empty")
