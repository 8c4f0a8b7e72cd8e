"""Every registered strategy end to end on a warehouse: inputs loaded, targets computed, risk
manager, engine, ``backtest.*`` and ``signals.<strategy>`` rows; the SQL strategy against its
Python twin; risk settings from the CLI and from alphatwin.toml.
"""

from __future__ import annotations

import json
import math

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from alphatwin.backtest.params import Drawdown, SimParams, Stops
from alphatwin.backtest.run import RunSpec, run_backtest, run_sweep, strategy_signals
from alphatwin.cli.main import app
from alphatwin.errors import InputError
from alphatwin.lake import catalog
from alphatwin.paths import WarehousePaths
from alphatwin.risk.manager import RiskParams
from alphatwin.signals.base import all_strategies, get_strategy
from tests.models.market import build_all, load, market

SYMBOLS = ("SYN00001", "SYN00002", "SYN00003", "SYN00004")

#: Parameters that fit the 240-bar fixture market, and the symbols each strategy trades.
CASES = {
    "sma_cross": ({"fast": 5, "slow": 20}, SYMBOLS[:2]),
    "ema_cross": ({"fast": 5, "slow": 20}, SYMBOLS[:2]),
    "macd": ({"fast": 5, "slow": 12, "signal": 4}, SYMBOLS[:2]),
    "adx_trend": ({"period": 7, "threshold": 15.0}, SYMBOLS[:2]),
    "slope_trend": ({"window": 10, "threshold": 0.0005}, SYMBOLS[:2]),
    "rsi_reversion": ({"period": 5, "lower": 35.0, "upper": 65.0}, SYMBOLS[:2]),
    "bollinger_reversion": ({"period": 10, "width": 1.5}, SYMBOLS[:2]),
    "pairs": ({"window": 30, "entry": 1.5, "exit": 0.3}, SYMBOLS[:2]),
    "ts_momentum": ({"lookback": 20, "skip": 2}, SYMBOLS[:2]),
    "cs_momentum": ({"lookback": 20, "skip": 2, "quantile": 0.25, "rebalance": 10}, SYMBOLS),
    "obv_momentum": ({"period": 10}, SYMBOLS[:2]),
    "ml_gbm": ({"horizon": 2, "train": 0, "retrain": 20, "embargo": 2, "min_train": 60, "max_iter": 20,
                "upper": 0.52, "lower": 0.48}, SYMBOLS[:2]),
}


@pytest.fixture(scope="module")
def wh(tmp_path_factory) -> WarehousePaths:
    paths = WarehousePaths(tmp_path_factory.mktemp("strats") / "wh")
    load(paths, market())
    build_all(paths)
    return paths


def test_every_python_strategy_has_a_case():
    python = {k for k, v in all_strategies().items() if v.source == "python"}
    assert python == set(CASES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_strategy_runs_and_stores_its_signals(wh, name):
    params, symbols = CASES[name]
    spec = RunSpec(name, symbols, params, direction="both", sim=SimParams(fill="close"))
    with catalog.connect(wh) as con:
        run = run_backtest(con, spec)
        strat = get_strategy(name)
        sig, tgt = strategy_signals(con, strat, run.loaded, run.run["params"], "both")
        stored = con.sql(f'SELECT symbol, ts, signal, target, params, run_id FROM signals."{name}" '
                         "WHERE run_id = ? ORDER BY symbol, ts", params=[run.run_id]).pl()
    n_rows = int((~np.isnan(run.loaded.signal_close)).sum())
    assert stored.height == n_rows
    universe = {"universe": list(symbols)} if strat.panel else {}  # panel rows depend on the universe
    assert json.loads(stored["params"][0]) == {**run.run["params"], "direction": "both", **universe}
    # the stored targets are the strategy's, row for row
    for j, symbol in enumerate(symbols):
        part = stored.filter(pl.col("symbol") == symbol)
        rows = np.flatnonzero(~np.isnan(run.loaded.signal_close[:, j]))
        np.testing.assert_array_equal(part["target"].fill_null(np.nan).to_numpy(), tgt[rows, j])
        np.testing.assert_array_equal(part["signal"].fill_null(np.nan).to_numpy(), sig[rows, j])
    # the strategy traded, and every trade is in backtest.trades
    assert run.metrics["n_trades"] == len(run.result.trades)
    assert (np.abs(np.nan_to_num(tgt)) > 0).any(), f"{name} never wanted a position on the fixture"
    assert len(run.result.trades) > 0


def test_storing_the_same_signals_again_replaces_them(wh):
    params, symbols = CASES["rsi_reversion"]
    spec = RunSpec("rsi_reversion", symbols, params)
    with catalog.connect(wh) as con:
        first = run_backtest(con, spec)
        second = run_backtest(con, spec)
        keyed = con.execute('SELECT count(*), count(DISTINCT run_id) FROM signals."rsi_reversion" '
                            "WHERE params = ?::JSON", [json.dumps({**params, "direction": "long"},
                                                                  sort_keys=True)]).fetchall()[0]
    assert keyed == (int((~np.isnan(first.loaded.signal_close)).sum()), 1)
    assert second.run_id != first.run_id


def test_sql_strategy_equals_its_python_twin(wh):
    """signals.golden_cross (SQL window averages) trades exactly like sma_cross 50/200."""
    sim = SimParams(fill="close", stops=Stops(stop_loss=0.03))
    with catalog.connect(wh) as con:
        sql = run_backtest(con, RunSpec("golden_cross", SYMBOLS[:2], direction="both", sim=sim), save=False)
        py = run_backtest(con, RunSpec("sma_cross", SYMBOLS[:2], {"fast": 50, "slow": 200}, direction="both",
                                       sim=sim), save=False)
    assert len(sql.result.trades) > 0
    np.testing.assert_array_equal(sql.result.trades["entry_bar"], py.result.trades["entry_bar"])
    np.testing.assert_allclose(sql.result.equity, py.result.equity, rtol=1e-12)


def test_sql_strategy_takes_no_parameters_and_needs_its_table(wh, tmp_path):
    with catalog.connect(wh) as con:
        with pytest.raises(InputError, match="takes no parameters"):
            run_backtest(con, RunSpec("golden_cross", SYMBOLS[:1], {"fast": 3}))
    fresh = WarehousePaths(tmp_path / "w2")
    load(fresh, market(n_symbols=1, n_bars=60))
    build_all(fresh)
    with catalog.connect(fresh) as con:
        con.execute("DROP VIEW signals.golden_cross")
        with pytest.raises(InputError, match="signals.golden_cross is not built yet"):
            run_backtest(con, RunSpec("golden_cross", SYMBOLS[:1]))


@pytest.mark.parametrize("name", ["pairs", "cs_momentum"])
def test_panel_strategies_refuse_per_symbol_sizing(wh, name):
    params, symbols = CASES[name]
    with catalog.connect(wh) as con, pytest.raises(InputError, match="sets its own portfolio weights"):
        run_backtest(con, RunSpec(name, symbols, params, risk=RiskParams(sizing="vol_target")))


def test_pairs_needs_exactly_two_symbols(wh):
    with catalog.connect(wh) as con, pytest.raises(InputError, match="exactly 2 symbol"):
        run_backtest(con, RunSpec("pairs", SYMBOLS[:3]))


def test_risk_settings_change_the_weights_and_are_recorded(wh):
    params, symbols = CASES["sma_cross"]
    risk = RiskParams(sizing="vol_target", target_vol=0.05, vol_window=10, allocation="inverse_vol",
                      alloc_window=20, rebalance=5, max_position=0.3)
    sim = SimParams(fill="close", drawdown=Drawdown(limit=0.05, scale=0.0, cooldown=5), stops=Stops(stop_atr=2.0))
    with catalog.connect(wh) as con:
        plain = run_backtest(con, RunSpec("sma_cross", symbols, params, sim=SimParams(fill="close")), save=False)
        managed = run_backtest(con, RunSpec("sma_cross", symbols, params, sim=sim, risk=risk))
        row = con.execute("SELECT risk FROM backtest.runs WHERE run_id = ?", [managed.run_id]).fetchall()[0][0]
        scale = con.execute("SELECT min(risk_scale), max(risk_scale) FROM backtest.equity WHERE run_id = ?",
                            [managed.run_id]).fetchall()[0]
    stored = json.loads(row)
    assert stored["sizing"] == "vol_target" and stored["max_drawdown"] == 0.05 and stored["max_position"] == 0.3
    value = np.abs(managed.result.positions_value()) / managed.result.equity[:, None]
    assert value.max() <= 0.3 * (1 + 1e-9) + 0.02  # the cap, plus drift of one bar's price move
    assert not np.allclose(plain.result.equity, managed.result.equity)
    assert scale[1] == 1.0 and scale[0] in (0.0, 1.0)


def test_generic_sweep_matches_single_backtests(wh):
    spec = RunSpec("rsi_reversion", SYMBOLS[:1], sim=SimParams(fill="close"))
    grid = {"period": [5, 9], "lower": [30.0, 40.0], "upper": [60.0]}
    seen: list[tuple[int, int | None]] = []
    with catalog.connect(wh) as con:
        sweep = run_sweep(con, spec, grid, progress=lambda n, total=None: seen.append((n, total)))
        stored = con.execute("SELECT count(*) FROM backtest.sweeps WHERE run_id = ?", [sweep.run_id]).fetchall()[0][0]
        for row in sweep.table.iter_rows(named=True):
            params = json.loads(row["params"])
            single = run_backtest(con, RunSpec("rsi_reversion", SYMBOLS[:1], params, sim=SimParams(fill="close")),
                                  save=False)
            assert math.isclose(row["total_return"], single.metrics["total_return"], rel_tol=1e-12, abs_tol=1e-15)
            assert row["n_trades"] == single.metrics["n_trades"]
    assert sweep.table.height == stored == 4
    assert seen == [(0, 4), (1, None), (1, None), (1, None), (1, None)]  # the total, then each combination


def test_cli_risk_flags_and_toml_defaults(wh, tmp_path):
    runner = CliRunner()
    params, symbols = CASES["rsi_reversion"]
    base = ["--warehouse", str(wh.root), "backtest", "rsi_reversion", "--symbols", ",".join(symbols),
            "--param", "period=5", "--format", "json", "--fill", "close"]
    result = runner.invoke(app, [*base, "--sizing", "vol_target", "--target-vol", "0.1", "--max-drawdown", "0.2",
                                 "--allocation", "risk_parity", "--alloc-window", "20", "--stop-atr", "3"])
    assert result.exit_code == 0, result.output
    run_id = json.loads(result.stdout)["run_id"]
    config = tmp_path / "alphatwin.toml"
    config.write_text('[risk]\nsizing = "fixed"\nfraction = 0.5\nmax_drawdown = 0.25\n')
    result2 = runner.invoke(app, ["--config", str(config), *base, "--max-drawdown", "0.3"])
    assert result2.exit_code == 0, result2.output
    run2 = json.loads(result2.stdout)["run_id"]
    with catalog.connect(wh) as con:
        risk = {r: json.loads(v) for r, v in con.execute(
            "SELECT run_id, risk FROM backtest.runs WHERE run_id IN (?, ?)", [run_id, run2]).fetchall()}
    assert risk[run_id]["sizing"] == "vol_target" and risk[run_id]["allocation"] == "risk_parity"
    assert risk[run_id]["max_drawdown"] == 0.2
    assert risk[run2]["sizing"] == "fixed" and risk[run2]["fraction"] == 0.5
    assert risk[run2]["max_drawdown"] == 0.3  # the flag beats the file
    bad = runner.invoke(app, [*base, "--sizing", "martingale"])
    assert bad.exit_code != 0 and "`--sizing` must be one of" in bad.stderr
    config.write_text('[risk]\nsizing = "fixed"\nbogus = 1\n')
    bad = runner.invoke(app, ["--config", str(config), *base])
    assert bad.exit_code != 0 and "[risk]" in bad.stderr and "bogus" in bad.stderr
    config.write_text("risk = 5\n")
    bad = runner.invoke(app, ["--config", str(config), *base])
    assert bad.exit_code != 0 and "[risk] must be a table" in bad.stderr and "bug" not in bad.stderr


def test_cli_strategies_lists_the_registry(wh):
    result = CliRunner().invoke(app, ["--warehouse", str(wh.root), "strategies", "--format", "json"])
    assert result.exit_code == 0, result.output
    listed = {row["name"]: row for row in json.loads(result.stdout)}
    assert set(listed) == set(all_strategies())
    assert listed["golden_cross"]["source"] == "sql" and listed["pairs"]["shape"] == "panel"
    assert "c[t-skip]" in CliRunner().invoke(app, ["strategies"]).stdout  # table cells are not markup


def test_cli_pairs_ranks_by_engle_granger(wh):
    from statsmodels.tsa.stattools import coint

    result = CliRunner().invoke(app, ["--warehouse", str(wh.root), "pairs", "--symbols", ",".join(SYMBOLS),
                                      "--min-obs", "30", "--format", "json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert len(rows) == 6 and [r["pvalue"] for r in rows] == sorted(r["pvalue"] for r in rows)
    with catalog.connect(wh) as con:
        from alphatwin.backtest.data import load_market

        closes = load_market(con, list(SYMBOLS), "1d").signal_close
    top = rows[0]
    i, j = SYMBOLS.index(top["y"]), SYMBOLS.index(top["x"])
    both = ~np.isnan(closes[:, i]) & ~np.isnan(closes[:, j])
    stat, p, _ = coint(np.log(closes[both, i]), np.log(closes[both, j]))
    assert math.isclose(top["stat"], stat, rel_tol=1e-12) and math.isclose(top["pvalue"], p, rel_tol=1e-12)
    bad = CliRunner().invoke(app, ["--warehouse", str(wh.root), "pairs", "--symbols", "SYN00001"])
    assert bad.exit_code != 0 and "at least 2" in bad.stderr


def test_pairs_refuses_per_leg_stops(wh):
    params, symbols = CASES["pairs"]
    with catalog.connect(wh) as con:
        for stops in (Stops(stop_loss=0.05), Stops(stop_atr=2.0)):
            with pytest.raises(InputError, match="hedged legs"):
                run_backtest(con, RunSpec("pairs", symbols, params, sim=SimParams(stops=stops)))
            with pytest.raises(InputError, match="hedged legs"):
                run_sweep(con, RunSpec("pairs", symbols, sim=SimParams(stops=stops)), {"window": [20, 30]})


def test_a_position_cap_keeps_the_pairs_hedge_ratio(wh):
    from alphatwin.backtest.run import targets_for

    params, symbols = CASES["pairs"]
    with catalog.connect(wh) as con:
        run = run_backtest(con, RunSpec("pairs", symbols, params, direction="both"), save=False)
        free = targets_for(run.loaded, "pairs", params, "both", con=con)
        capped = targets_for(run.loaded, "pairs", params, "both", RiskParams(max_position=0.5), con=con)
    both = (np.nan_to_num(free) != 0).all(axis=1)
    assert both.sum() > 5 and (np.abs(np.nan_to_num(free[both])) > 0.5).any()
    assert np.nanmax(np.abs(capped)) <= 0.5 + 1e-12
    np.testing.assert_allclose(capped[both, 1] / capped[both, 0], free[both, 1] / free[both, 0], rtol=1e-12)


@pytest.mark.parametrize("spec, message", [
    (RunSpec("ml_gbm", SYMBOLS[:1]), "has no signal on any of the"),  # min_train 252 > 240 bars
    (RunSpec("sma_cross", SYMBOLS[:1], {"fast": 50, "slow": 300}), "has no signal on any of the"),
    (RunSpec("sma_cross", SYMBOLS[:2], {"fast": 5, "slow": 20},
             risk=RiskParams(allocation="risk_parity", alloc_window=400)), "has no estimate on any bar"),
])
def test_a_run_that_could_never_trade_is_an_error_and_writes_nothing(wh, spec, message):
    with catalog.connect(wh) as con:
        before = con.execute("SELECT count(*) FROM backtest.runs").fetchall()[0][0]
        with pytest.raises(InputError, match=message):
            run_backtest(con, spec)
        assert con.execute("SELECT count(*) FROM backtest.runs").fetchall()[0][0] == before


def test_sql_strategies_are_found_beside_the_config_file(wh, tmp_path):
    project = tmp_path / "proj"
    (project / "sql" / "signals").mkdir(parents=True)
    (project / "sql" / "signals" / "half.sql").write_text(
        "-- half: half long always\nSELECT symbol, interval, ts, 0.5 AS target FROM clean.bars\n")
    (project / "alphatwin.toml").write_text("")
    result = CliRunner().invoke(app, ["--config", str(project / "alphatwin.toml"), "--warehouse", str(wh.root),
                                      "strategies", "--format", "json"])
    assert result.exit_code == 0, result.output
    assert "half" in {row["name"] for row in json.loads(result.stdout)}
    bt = CliRunner().invoke(app, ["--config", str(project / "alphatwin.toml"), "--warehouse", str(wh.root),
                                  "backtest", "half", "--symbols", "SYN00001", "--no-save"])
    assert bt.exit_code != 0 and "signals.half is not built yet" in bt.stderr  # found, not "unknown"
