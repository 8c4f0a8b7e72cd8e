"""What a backtest does with doubtful data: outlier-flagged bars, failed validations, and the
cost inputs (volume, ATR, range) of the bar before a split."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from alphatwin.backtest import data as data_mod
from alphatwin.backtest.params import Costs, SimParams, Stops
from alphatwin.backtest.run import RunSpec, run_backtest, run_sweep
from alphatwin.errors import InputError
from alphatwin.lake import catalog
from alphatwin.paths import WarehousePaths
from tests.models.market import build_all, load, market

SPIKE_BAR = 150  # SYN00001's close (and high) printed at 10x on this bar: a bad tick


@pytest.fixture(scope="module")
def wh(tmp_path_factory) -> tuple[WarehousePaths, object]:
    frame = market().with_columns(pl.int_range(pl.len()).over("symbol").alias("i"))
    bad = (pl.col("symbol") == "SYN00001") & (pl.col("i") == SPIKE_BAR)
    frame = frame.with_columns(
        pl.when(bad).then(pl.col("close") * 10).otherwise(pl.col("close")).alias("close"),
        pl.when(bad).then(pl.col("close") * 10).otherwise(pl.col("high")).alias("high"),
    )
    spike_ts = frame.filter(bad)["ts"][0]
    paths = WarehousePaths(tmp_path_factory.mktemp("dq") / "wh")
    load(paths, frame.drop("i"))
    build_all(paths)
    return paths, spike_ts


def _spec(outliers: str, **kw) -> RunSpec:
    sim = SimParams(fill="close", stops=Stops(take_profit=0.5), **kw)
    return RunSpec("sma_cross", ("SYN00001",), {"fast": 3, "slow": 10}, outliers=outliers, sim=sim)


def test_the_spike_is_flagged_by_the_quality_gate(wh):
    paths, spike_ts = wh
    with catalog.connect(paths, read_only=True) as con:
        flagged = con.execute("SELECT ts FROM clean.bars WHERE symbol = 'SYN00001' AND is_outlier").fetchall()
    assert spike_ts.replace(tzinfo=None) in [r[0].replace(tzinfo=None) for r in flagged]


def test_untradable_outliers_get_no_fill_and_are_marked_at_the_last_close(wh):
    paths, spike_ts = wh
    with catalog.connect(paths) as con:
        run = run_backtest(con, _spec("untradable"), save=False)
    ts = run.loaded.market.ts
    bar = int(np.searchsorted(ts, np.datetime64(spike_ts.replace(tzinfo=None))))
    assert np.isnan(run.loaded.market.close[bar, 0])
    assert bar not in run.result.fills["bar"]
    # the mark on the spike bar is the previous close: no 10x equity blip
    held = run.result.units[bar, 0]
    if held:
        assert run.result.marks[bar, 0] == run.loaded.market.close[bar - 1, 0]
    assert run.metrics["max_drawdown"] > -0.5
    assert run.loaded.data_quality["outlier_bars"] >= 1
    assert any("flagged as outliers" in w for w in run.loaded.warnings())


def test_trading_outliers_books_the_bad_tick_and_says_so(wh):
    paths, spike_ts = wh
    with catalog.connect(paths) as con:
        trade = run_backtest(con, _spec("trade"), save=False)
        skip = run_backtest(con, _spec("untradable"), save=False)
    ts = trade.loaded.market.ts
    bar = int(np.searchsorted(ts, np.datetime64(spike_ts.replace(tzinfo=None))))
    assert trade.loaded.market.close[bar, 0] > 5 * trade.loaded.market.close[bar - 1, 0]
    assert "traded as they are" in " ".join(trade.loaded.warnings())
    assert trade.loaded.data_quality["outlier_policy"] == "trade"
    # the bad print changes the result; the untradable run does not see it as a price
    assert trade.metrics["total_return"] != skip.metrics["total_return"]


def test_fail_refuses_a_run_that_reads_a_flagged_bar_and_writes_nothing(wh):
    paths, _ = wh
    with catalog.connect(paths) as con:
        with pytest.raises(InputError, match="flagged as outliers"):
            run_backtest(con, _spec("fail"))
        with pytest.raises(InputError, match="flagged as outliers"):
            run_sweep(con, _spec("fail"), {"fast": [2, 3], "slow": [10]})
        exists = con.execute("SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'backtest'").fetchall()[0][0]
        rows = con.execute("SELECT count(*) FROM backtest.runs").fetchall()[0][0] if exists else 0
    assert rows == 0


def test_an_unknown_policy_and_a_start_after_the_end_are_clear_errors(wh):
    paths, _ = wh
    import datetime as dt

    with catalog.connect(paths, read_only=True) as con:
        with pytest.raises(InputError, match="`--outliers` must be one of"):
            run_backtest(con, _spec("ignore"), save=False)
        spec = RunSpec("sma_cross", ("SYN00001",), start=dt.datetime(2001, 1, 1), end=dt.datetime(2000, 1, 1))
        with pytest.raises(InputError, match="is after `--end`"):
            run_backtest(con, spec, save=False)


def test_the_data_quality_record_is_stored_with_the_run(wh):
    paths, _ = wh
    with catalog.connect(paths) as con:
        run = run_backtest(con, _spec("untradable"))
        stored = con.execute("SELECT data_quality FROM backtest.runs WHERE run_id = ?", [run.run_id]).fetchall()[0][0]
    import json

    record = json.loads(stored)
    assert record["outlier_policy"] == "untradable" and record["outlier_bars"] >= 1
    assert record["failed_validations"] == []


def test_a_sweep_larger_than_the_limit_is_refused_before_any_work(wh):
    paths, _ = wh
    with catalog.connect(paths, read_only=True) as con:
        with pytest.raises(InputError, match="more than `--max-combinations` 10"):
            run_sweep(con, _spec("untradable"), {"fast": list(range(2, 10)), "slow": list(range(10, 20))},
                      save=False, max_combinations=10)


def test_adv_is_in_each_rows_basis_and_skips_imputed_rows(monkeypatch):
    monkeypatch.setattr(data_mod, "ADV_WINDOW", 2)
    # 100 shares a day before a 1:10 reverse split (adj_volume_factor 0.1 before it), 10 after
    volume = np.array([100.0, 100.0, 100.0, 10.0, 10.0, 0.0, 10.0])
    factor = np.array([0.1, 0.1, 0.1, 1.0, 1.0, 1.0, 1.0])
    real = np.array([True, True, True, True, True, False, True])
    got = data_mod._adv(volume, factor, real)
    # row 3 (the split bar): mean of 100 * 0.1 and 10 -> 10 in the new basis, not 55
    np.testing.assert_allclose(got, [np.nan, 100, 100, 10, 10, 10, 10])


def test_cost_inputs_of_the_bar_before_a_split_are_put_into_the_fill_bars_basis():
    from alphatwin.backtest.engine import simulate
    from alphatwin.backtest.params import Market

    # a 1:10 reverse split on bar 2: bar 1's volume (1,000 old shares) is 100 new shares, its
    # range 1.0 old is 10.0 new; a units target of 50 with a 50% participation cap fills 50
    close = np.array([10.0, 10.0, 100.0, 100.0])
    market = Market.from_close(close, high=close + np.array([0.5, 0.5, 5.0, 5.0]),
                               low=close - np.array([0.5, 0.5, 5.0, 5.0]),
                               volume=np.array([1000.0, 1000.0, 100.0, 100.0]),
                               split_ratio=np.array([1.0, 1.0, 0.1, 1.0]))
    target = np.array([np.nan, 50.0, np.nan, np.nan])
    params = SimParams(target_kind="units", costs=Costs(participation=0.5, slippage_range=0.1))
    result = simulate(market, target, params)
    [fill] = result.fills
    assert fill["bar"] == 2 and fill["units"] == 50  # cap 0.5 * 1000 * 0.1 = 50, not 500
    assert fill["slippage"] == pytest.approx(50 * 0.1 * 10.0)  # range 1.0 old = 10.0 new


def test_the_cli_warns_on_stderr_and_keeps_stdout_for_data(wh):
    import json

    from typer.testing import CliRunner

    from alphatwin.cli.main import app

    paths, _ = wh
    result = CliRunner().invoke(app, ["--warehouse", str(paths.root), "backtest", "sma_cross", "--symbols",
                                      "SYN00001", "--param", "fast=3", "--param", "slow=10", "--format", "json"])
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["run_id"].startswith("bt-")
    assert "warning:" in result.stderr and "flagged as outliers" in result.stderr
    refused = CliRunner().invoke(app, ["--warehouse", str(paths.root), "backtest", "sma_cross", "--symbols",
                                       "SYN00001", "--outliers", "fail"])
    assert refused.exit_code == 1 and refused.stderr.startswith("Error: ") and "flagged as outliers" in refused.stderr


def test_status_lists_the_latest_backtests_with_their_headline_metrics(wh):
    from alphatwin.cli.status import collect_status

    paths, _ = wh
    with catalog.connect(paths) as con:
        run = run_backtest(con, _spec("untradable"))
    info, _, _ = collect_status(paths)
    latest = info["backtests"]["latest"]
    assert info["backtests"]["backtests"] >= 1
    assert latest[0]["run_id"] == run.run_id
    assert latest[0]["total_return"] == pytest.approx(run.metrics["total_return"], rel=1e-12)
    assert latest[0]["data_rebuilt_since"] is False


def test_the_default_policy_skips_bad_tick_jumps(wh):
    paths, spike_ts = wh
    with catalog.connect(paths, read_only=True) as con:
        run = run_backtest(con, RunSpec("sma_cross", ("SYN00001",), {"fast": 3, "slow": 10}), save=False)
    bar = int(np.searchsorted(run.loaded.market.ts, np.datetime64(spike_ts.replace(tzinfo=None))))
    assert run.loaded.data_quality["outlier_policy"] == "jumps"
    assert run.loaded.data_quality["jump_bars"] >= 1
    assert np.isnan(run.loaded.market.close[bar, 0])  # the 10x print reverts: a bad tick


def test_a_split_in_a_split_adjusted_source_is_not_applied_to_positions(tmp_path):
    """Yahoo's prices are split-adjusted already: its 4:1 split must not multiply the units."""
    frame = market(n_symbols=1, n_bars=120).with_columns(pl.int_range(pl.len()).alias("i"))
    frame = frame.with_columns(
        pl.when(pl.col("i") == 60).then(4.0).otherwise(1.0).alias("split_ratio"),
        pl.lit(0.0).alias("dividend")).drop("i")
    paths = WarehousePaths(tmp_path / "wh")
    load(paths, frame, source="yahoo")
    build_all(paths)
    sim = SimParams(fill="close")
    with catalog.connect(paths, read_only=True) as con:
        run = run_backtest(con, RunSpec("sma_cross", ("SYN00001",), {"fast": 1, "slow": 2}, sim=sim), save=False)
    market_ = run.loaded.market
    assert (market_.split_ratio == 1.0).all()  # clean.bars.volume_factor: the split is in the prices
    units = run.result.units[:, 0]
    mark = run.result.marks[:, 0]
    held = (units[:-1] != 0) & (units[1:] == units[:-1])
    assert held[59:62].any() or (units[55:65] != 0).any()  # the split bar is inside the run
    # while a position is held, equity moves exactly with units x the change of its mark
    step = np.diff(run.result.equity)[held]
    np.testing.assert_allclose(step, (units[1:] * np.diff(mark))[held], rtol=1e-9, atol=1e-6)
    assert np.abs(np.diff(run.result.equity)).max() < 0.5 * run.result.equity.max()  # no 4x jump
