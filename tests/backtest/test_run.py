"""``run_backtest`` / ``run_sweep`` end to end: warehouse bars in, ``backtest.*`` rows out.

One module-scoped warehouse (``market()``: dividends, a 2:1 split on SYN00002 at bar 215, a 1:4
reverse split on SYN00003 at bar 60, gaps filled by imputed bars) serves most tests; the
look-ahead and provenance tests build their own small warehouses.
"""

from __future__ import annotations

import datetime as dt
import json
import math

import numpy as np
import polars as pl
import pytest

from alphatwin.backtest import run as run_mod
from alphatwin.backtest.params import Costs, SimParams, Stops
from alphatwin.backtest.run import RunSpec, run_backtest, run_sweep
from alphatwin.errors import InputError
from alphatwin.lake import catalog
from alphatwin.metrics.summary import METRIC_KEYS
from alphatwin.paths import WarehousePaths
from tests.models.market import build_all, load, market

SYMBOLS = ("SYN00001", "SYN00002", "SYN00003", "SYN00004")
FRAME = market()
STAMPS = FRAME["ts"].unique().sort()
BT_TABLES = ("runs", "trades", "fills", "equity", "positions", "metrics", "sweeps")
#: Costs and stops of the "real" run: every cost component and two stop rules.
REAL_SIM = SimParams(
    costs=Costs(fees_bps=10, fee_fixed=1.0, slippage_bps=5, slippage_atr=0.05, impact_k=0.1),
    stops=Stops(stop_loss=0.04, trailing_stop=0.08))
REAL_SPEC = RunSpec("sma_cross", SYMBOLS, {"fast": 5, "slow": 20}, direction="both", sim=REAL_SIM)


def _naive(ts: dt.datetime) -> dt.datetime:
    return ts.replace(tzinfo=None)


def _counts(con) -> dict[str, int]:
    """Rows in each backtest.* table (0 when the table does not exist yet)."""
    existing = {r[0] for r in con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'backtest'").fetchall()}
    return {t: (con.execute(f"SELECT count(*) FROM backtest.{t}").fetchall()[0][0] if t in existing else 0)
            for t in BT_TABLES}


def _rows(con, table: str, run_id: str, order: str) -> pl.DataFrame:
    return con.sql(f"SELECT * FROM backtest.{table} WHERE run_id = ? ORDER BY {order}", params=[run_id]).pl()


@pytest.fixture(scope="module")
def wh(tmp_path_factory) -> WarehousePaths:
    """The fixture market in two ingests (SYN00004 arrives separately), built once."""
    paths = WarehousePaths(tmp_path_factory.mktemp("bt") / "wh")
    load(paths, FRAME.filter(pl.col("symbol") != "SYN00004"))
    load(paths, FRAME.filter(pl.col("symbol") == "SYN00004"))
    build_all(paths)
    return paths


@pytest.fixture(scope="module")
def real(wh):
    """A stored 4-symbol long/short run with every cost and two stops, and its stored rows."""
    with catalog.connect(wh) as con:
        run = run_backtest(con, REAL_SPEC, command="test")
        db = {
            "runs": _rows(con, "runs", run.run_id, "run_id"),
            "trades": _rows(con, "trades", run.run_id, "trade_no"),
            "fills": _rows(con, "fills", run.run_id, "fill_no"),
            "equity": _rows(con, "equity", run.run_id, "ts"),
            "positions": _rows(con, "positions", run.run_id, "ts, symbol"),
            "metrics": con.sql("SELECT * FROM backtest.metrics WHERE run_id = ?", params=[run.run_id]).pl(),
            "clean": con.sql("SELECT symbol, ts, close, adj_close, split_ratio, dividend, ingest_id, is_imputed "
                             "FROM clean.bars ORDER BY symbol, ts").pl(),
        }
    return run, db


# ---------------------------------------------------------------------------------------- rows


def test_a_run_writes_one_runs_row_and_the_expected_rows_in_every_table(real):
    run, db = real
    row = db["runs"].row(0, named=True)
    assert db["runs"].height == 1
    assert (row["kind"], row["strategy"], row["direction"], row["symbols"], row["command"]) == \
        ("backtest", "sma_cross", "both", list(SYMBOLS), "test")
    assert json.loads(row["params"]) == {"fast": 5, "slow": 20}

    trades = db["trades"]
    assert trades.height == len(run.result.trades) > 0
    assert trades["trade_no"].to_list() == list(range(1, trades.height + 1))
    open_ = trades.filter(pl.col("exit_ts").is_null())
    assert open_.height == int((run.result.trades["exit_bar"] < 0).sum()) >= 1  # the test needs an open trade
    assert open_["exit_reason"].null_count() == open_.height
    closed = trades.filter(pl.col("exit_ts").is_not_null())
    assert closed["exit_reason"].null_count() == 0
    assert set(closed["exit_reason"]) >= {"signal", "stop_loss"}
    assert (closed["exit_ts"] >= closed["entry_ts"]).all()

    fills = db["fills"]
    assert fills.height == len(run.result.fills) == int(trades["n_fills"].sum())
    assert fills["fill_no"].to_list() == list(range(1, fills.height + 1))

    # one equity row per bar from run_start to data_end: every timestamp of the symbols' bars
    bars = sorted(set(db["clean"].filter(pl.col("symbol").is_in(SYMBOLS))["ts"].dt.replace_time_zone(None)))
    equity = db["equity"]
    assert row["n_bars"] == equity.height == len(bars) == 240
    assert equity["ts"].to_list() == bars
    assert (equity["ts"][0], equity["ts"][-1]) == (row["run_start"], row["data_end"])

    positions = db["positions"]
    assert positions.height == equity.height * len(SYMBOLS)
    assert positions.group_by("ts").agg(pl.col("symbol").sort())["symbol"].to_list() == \
        [list(SYMBOLS)] * equity.height

    metrics = db["metrics"]
    assert sorted(metrics["metric"]) == sorted(METRIC_KEYS) and metrics.height == len(METRIC_KEYS)
    stored = dict(zip(metrics["metric"], metrics["value"]))
    for key in METRIC_KEYS:
        value = float(run.metrics[key])
        if math.isnan(value):
            assert stored[key] is None, key
        else:
            assert stored[key] == pytest.approx(value, rel=1e-12), key


def test_provenance_names_every_ingest_of_the_rows_read_and_its_verdict(wh):
    with catalog.connect(wh) as con:
        ids_of = "SELECT DISTINCT ingest_id FROM clean.bars WHERE symbol = ? AND ingest_id IS NOT NULL"
        first = con.execute(ids_of, ["SYN00001"]).fetchall()  # imputed rows have no ingest id
        fourth = con.execute(ids_of, ["SYN00004"]).fetchall()
        verdicts = dict(con.execute("SELECT ingest_id, success FROM meta.validation_runs WHERE current").fetchall())
        assert len(first) == len(fourth) == 1 and first != fourth  # the fixture: two ingests
        for symbols, expected in ((("SYN00001",), first), (("SYN00004",), fourth),
                                  (("SYN00001", "SYN00004"), first + fourth)):
            run = run_backtest(con, RunSpec("sma_cross", symbols, {"fast": 5, "slow": 20}))
            row = con.execute("SELECT ingest_ids, validation FROM backtest.runs WHERE run_id = ?",
                              [run.run_id]).fetchall()[0]
            ids = sorted(r[0] for r in expected)
            assert row[0] == ids
            validation = json.loads(row[1])
            assert [v["ingest_id"] for v in validation] == ids
            for v in validation:
                assert verdicts[v["ingest_id"]] is True
                assert (v["validation"], v["ingest_status"], v["source"]) == ("passed", "committed", "synthetic")
                assert v["validation_id"] is not None and v["rows_accepted"] > 0


def test_data_sha256_is_stable_and_changes_when_a_restated_bar_is_ingested(tmp_path):
    """Two runs on the same rows share the digest; a restated bar changes it for the runs that
    read it (and adds its ingest id), not for a run that ends before it."""
    paths = WarehousePaths(tmp_path / "wh")
    data = market(n_symbols=2, n_bars=120)
    stamps = data["ts"].unique().sort()
    load(paths, data)
    build_all(paths)
    spec = RunSpec("sma_cross", ("SYN00001", "SYN00002"), {"fast": 3, "slow": 10})
    early = RunSpec("sma_cross", ("SYN00001", "SYN00002"), {"fast": 3, "slow": 10},
                    end=_naive(stamps[99]))
    with catalog.connect(paths) as con:
        a, b = run_backtest(con, spec), run_backtest(con, spec)
        before_end = run_backtest(con, early)
        stored = con.execute("SELECT data_sha256 FROM backtest.runs WHERE run_id IN (?, ?)",
                             [a.run_id, b.run_id]).fetchall()
    assert a.run["data_sha256"] == b.run["data_sha256"] and len(a.run["data_sha256"]) == 64
    assert [r[0] for r in stored] == [a.run["data_sha256"]] * 2
    assert before_end.run["data_sha256"] != a.run["data_sha256"]
    assert len(a.run["ingest_ids"]) == 1

    restated = data.filter((pl.col("symbol") == "SYN00001") & (pl.col("ts") == stamps[110])) \
        .with_columns(pl.col("volume") + 1000.0)
    load(paths, restated)
    build_all(paths)
    with catalog.connect(paths) as con:
        c = run_backtest(con, spec)
        after_end = run_backtest(con, early)
        restating = con.execute("SELECT ingest_id FROM clean.bars WHERE symbol = 'SYN00001' AND ts = ?",
                                [stamps[110]]).fetchall()[0][0]
    assert c.run["data_sha256"] != a.run["data_sha256"]
    assert restating not in a.run["ingest_ids"]
    assert c.run["ingest_ids"] == sorted([*a.run["ingest_ids"], restating])
    assert [v["ingest_id"] for v in c.run["validation"]] == c.run["ingest_ids"]
    assert after_end.run["data_sha256"] == before_end.run["data_sha256"]
    assert after_end.run["ingest_ids"] == a.run["ingest_ids"]


# ---------------------------------------------------------------------------------- accounting


def test_accounting_identities_of_a_multi_symbol_run_with_costs_and_stops(real):
    run, db = real
    trades, equity, positions, fills = db["trades"], db["equity"], db["positions"], db["fills"]
    m = run.metrics
    init_cash = REAL_SIM.init_cash
    final = equity["equity"][-1]
    assert final == pytest.approx(m["final_equity"], rel=1e-12)
    # the run exercised what the identities are about
    assert set(trades["direction"]) == {"long", "short"}
    assert set(fills["reason"]) >= {"signal", "stop_loss", "trailing_stop"}
    assert min(m["total_fees"], m["total_slippage"], m["total_impact"]) > 0
    assert trades["dividends"].abs().sum() > 0

    assert trades["pnl"].sum() == pytest.approx(final - init_cash, rel=1e-6)
    last = positions.filter(pl.col("ts") == pl.col("ts").max())
    per_symbol = trades.group_by("symbol").agg(pl.col("pnl").sum())
    for symbol in SYMBOLS:
        pnl = per_symbol.filter(pl.col("symbol") == symbol)["pnl"].sum()
        last_pnl = last.filter(pl.col("symbol") == symbol)["pnl"].item()
        assert last_pnl == pytest.approx(pnl, rel=1e-9, abs=1e-6), symbol
    assert last["pnl"].sum() == pytest.approx(final - init_cash, rel=1e-9)

    total_costs = m["total_fees"] + m["total_slippage"] + m["total_impact"]
    assert equity["cum_costs"][-1] == pytest.approx(total_costs, rel=1e-12)
    assert equity["fees"].sum() == pytest.approx(fills["fee"].sum(), rel=1e-12)
    assert trades["fees"].sum() == pytest.approx(fills["fee"].sum(), rel=1e-12)
    assert equity["slippage"].sum() == pytest.approx(fills["slippage"].sum(), rel=1e-12)
    assert equity["impact"].sum() == pytest.approx(fills["impact"].sum(), rel=1e-12)
    np.testing.assert_allclose(equity["equity"], equity["cash"] + equity["net_exposure"], rtol=1e-12)
    by_ts = positions.group_by("ts", maintain_order=True).agg(
        pl.col("value").sum().alias("net"), pl.col("value").abs().sum().alias("gross"))
    np.testing.assert_allclose(by_ts["net"], equity["net_exposure"], rtol=1e-12, atol=1e-6)
    np.testing.assert_allclose(by_ts["gross"], equity["gross_exposure"], rtol=1e-12, atol=1e-6)
    prev = np.concatenate([[init_cash], equity["equity"].to_numpy()[:-1]])
    np.testing.assert_allclose(equity["return"], equity["equity"] / prev - 1, rtol=1e-12, atol=1e-15)
    peak = np.maximum.accumulate(np.maximum(equity["equity"].to_numpy(), init_cash))
    np.testing.assert_allclose(equity["drawdown"], equity["equity"] / peak - 1, rtol=1e-12, atol=1e-15)
    assert equity["drawdown"].min() == pytest.approx(m["max_drawdown"], rel=1e-12)
    np.testing.assert_allclose(trades["return"], trades["pnl"] / (trades["quantity"].abs() * trades["entry_price"]),
                               rtol=1e-12)


def test_splits_do_not_create_fake_pnl(wh):
    """A position held into the split bar has its units multiplied by the ratio; its P&L on that
    bar equals the move of the split-adjusted close (clean.bars.adj_close), and the trade's
    entry price is split-adjusted."""
    with catalog.connect(wh) as con:
        run = run_backtest(con, RunSpec("sma_cross", ("SYN00002", "SYN00003"), {"fast": 2, "slow": 5}))
        clean = con.sql("SELECT symbol, ts, close, adj_close, split_ratio, dividend FROM clean.bars "
                        "WHERE symbol IN ('SYN00002', 'SYN00003') ORDER BY symbol, ts").pl()
        positions = _rows(con, "positions", run.run_id, "ts, symbol")
        fills = _rows(con, "fills", run.run_id, "fill_no")
        trades = _rows(con, "trades", run.run_id, "trade_no")
    for symbol, ratio in (("SYN00002", 2.0), ("SYN00003", 0.25)):
        bars = clean.filter(pl.col("symbol") == symbol)
        k = bars["split_ratio"].to_list().index(ratio)
        assert bars["split_ratio"].filter(bars["split_ratio"] != 1).to_list() == [ratio]
        assert bars["dividend"][k] == 0
        split_ts = _naive(bars["ts"][k])
        pos = positions.filter(pl.col("symbol") == symbol)
        before, on = pos.row(k - 1, named=True), pos.row(k, named=True)
        assert before["units"] > 0  # the run holds the symbol into its split bar ...
        assert fills.filter((pl.col("symbol") == symbol) & (pl.col("ts") == split_ts)).is_empty()  # no fill on it
        assert on["units"] == pytest.approx(before["units"] * ratio, rel=1e-15)
        adj_move = bars["adj_close"][k] / bars["adj_close"][k - 1] - 1
        assert on["pnl"] - before["pnl"] == pytest.approx(before["value"] * adj_move, rel=1e-9)
        assert abs(on["value"] / before["value"] - 1) < 0.1  # no halving / quadrupling of the position
        trade = trades.filter((pl.col("symbol") == symbol) & (pl.col("entry_ts") < split_ts)
                              & ((pl.col("exit_ts") > split_ts) | pl.col("exit_ts").is_null())).row(0, named=True)
        entry = fills.filter((pl.col("symbol") == symbol) & (pl.col("ts") == trade["entry_ts"])).row(0, named=True)
        assert trade["quantity"] == pytest.approx(entry["units"] * ratio, rel=1e-15)
        assert trade["entry_price"] == pytest.approx(entry["price"] / ratio, rel=1e-12)
        assert trade["n_fills"] == 2
        assert trade["pnl"] == pytest.approx(
            trade["quantity"] * (trade["exit_price"] - trade["entry_price"]) - trade["fees"] + trade["dividends"],
            rel=1e-9)


def test_dividends_of_a_held_position_arrive_in_cash_and_in_the_trade(wh):
    with catalog.connect(wh) as con:
        run = run_backtest(con, RunSpec("sma_cross", ("SYN00001", "SYN00004"), {"fast": 3, "slow": 10}))
        clean = con.sql("SELECT symbol, ts, split_ratio, dividend FROM clean.bars "
                        "WHERE symbol IN ('SYN00001', 'SYN00004') ORDER BY ts, symbol").pl()
        trades = _rows(con, "trades", run.run_id, "trade_no")
        equity = _rows(con, "equity", run.run_id, "ts")
        fills = _rows(con, "fills", run.run_id, "fill_no")
    units = run.result.units
    div = run.loaded.market.dividend
    # expected: a position carried into an ex-date receives units x dividend on that bar
    expected = np.zeros(len(run.result.trades))
    for i, tr in enumerate(run.result.trades):
        stop = tr["exit_bar"] if tr["exit_bar"] >= 0 else units.shape[0] - 1
        for t in range(tr["entry_bar"] + 1, stop + 1):
            expected[i] += units[t - 1, tr["col"]] * div[t, tr["col"]]
    np.testing.assert_allclose(trades["dividends"], expected, rtol=1e-12)
    paid = trades.filter(pl.col("dividends") > 0)
    assert paid.height >= 2 and set(paid["symbol"]) == {"SYN00001", "SYN00004"}
    # cash moves by exactly the dividend on an ex-date without a fill
    ex = clean.filter(pl.col("dividend") > 0)
    checked = 0
    for symbol, ts, d in ex.select("symbol", pl.col("ts").dt.replace_time_zone(None), "dividend").iter_rows():
        t = int(np.searchsorted(run.loaded.ts, np.datetime64(ts)))
        j = ("SYN00001", "SYN00004").index(symbol)
        if units[t - 1, j] == 0 or not fills.filter(pl.col("ts") == ts).is_empty():
            continue
        assert equity["cash"][t] - equity["cash"][t - 1] == pytest.approx(units[t - 1, j] * d, rel=1e-12)
        checked += 1
    assert checked >= 2


# ---------------------------------------------------------------------------------- look-ahead


@pytest.mark.parametrize("fill", ["open", "close"])
def test_no_look_ahead_a_run_on_data_cut_at_t_agrees_on_everything_up_to_t(fill, _cut_runs):
    full, cuts = _cut_runs[fill]
    for cut_ts, cut in cuts:
        assert cut.run["data_end"] == cut_ts
        for table, key in (("equity", "ts"), ("fills", "ts"), ("positions", "ts")):
            a = full.frames[table].filter(pl.col(key) <= cut_ts).drop("run_id")
            b = cut.frames[table].filter(pl.col(key) <= cut_ts).drop("run_id")
            assert a.height > 0
            assert a.equals(b), (table, cut_ts)
        # trades: the same entries; those closed by the cut identical in full. A trade open at
        # the cut may later span a split, which rescales its quantity and entry price (docs:
        # "split adjusted to the exit"), so its entry is compared by value |quantity| x price.
        a = full.frames["trades"].filter(pl.col("entry_ts") <= cut_ts)
        b = cut.frames["trades"]
        entry = ["trade_no", "symbol", "direction", "entry_ts"]
        assert a.select(entry).equals(b.select(entry)), cut_ts
        value = (pl.col("quantity").abs() * pl.col("entry_price")).alias("entry_value")
        np.testing.assert_allclose(a.select(value)["entry_value"], b.select(value)["entry_value"], rtol=1e-12)
        done = b.filter(pl.col("exit_ts").is_not_null())
        assert done.drop("run_id").equals(
            a.filter(pl.col("trade_no").is_in(done["trade_no"].implode())).drop("run_id"))
        assert b.filter(pl.col("exit_ts").is_null()).height >= 1


@pytest.fixture(scope="module")
def _cut_runs(wh, tmp_path_factory):
    """One warehouse that receives the market up to T1, then T2, then T3 (incremental builds);
    the same 4-symbol long/short run with costs and stops on the full warehouse and after each
    cut (fill at the open and at the close)."""
    sim = {fill: SimParams(fill=fill, costs=REAL_SIM.costs, stops=REAL_SIM.stops) for fill in ("open", "close")}
    spec = {fill: RunSpec("sma_cross", SYMBOLS, {"fast": 5, "slow": 20}, direction="both", sim=sim[fill])
            for fill in sim}
    paths = WarehousePaths(tmp_path_factory.mktemp("cut") / "wh")
    out: dict[str, tuple] = {}
    with catalog.connect(wh) as con:
        full = {fill: run_backtest(con, spec[fill], save=False) for fill in sim}
    cuts: dict[str, list] = {fill: [] for fill in sim}
    loaded_to = None
    # bar 59: the eve of the SYN00003 reverse split; 200: after it, before the SYN00002 split
    for i in (59, 100, 200):
        t = STAMPS[i]
        rows = FRAME.filter(pl.col("ts") <= t) if loaded_to is None else \
            FRAME.filter((pl.col("ts") > loaded_to) & (pl.col("ts") <= t))
        load(paths, rows)
        build_all(paths)
        loaded_to = t
        with catalog.connect(paths, read_only=True) as con:
            for fill in sim:
                cuts[fill].append((_naive(t), run_backtest(con, spec[fill], save=False)))
    for fill in sim:
        out[fill] = (full[fill], cuts[fill])
    return out


def test_start_keeps_earlier_bars_as_signal_history_only(wh):
    start = _naive(STAMPS[120])
    with catalog.connect(wh) as con:
        whole = run_backtest(con, RunSpec("sma_cross", SYMBOLS, {"fast": 5, "slow": 20},
                                          sim=SimParams(fill="close")), save=False)
        run = run_backtest(con, RunSpec("sma_cross", SYMBOLS, {"fast": 5, "slow": 20}, start=start,
                                        sim=SimParams(fill="close")))
        row = con.execute("SELECT data_start, run_start, data_end, n_bars FROM backtest.runs WHERE run_id = ?",
                          [run.run_id]).fetchall()[0]
        equity = _rows(con, "equity", run.run_id, "ts")
        fills = _rows(con, "fills", run.run_id, "fill_no")
        positions = _rows(con, "positions", run.run_id, "ts, symbol")
    assert row == (_naive(STAMPS[0]), start, _naive(STAMPS[-1]), 120)
    assert equity.height == 120 and equity["ts"][0] == start
    assert positions["ts"].min() == start
    assert fills.height > 0 and fills["ts"].min() >= start
    assert run.frames["trades"]["entry_ts"].min() >= start
    # the signals warmed up before start: the symbols long at bar 120 without --start are long
    # from the close of the first bar with it
    long_then = whole.result.units[120] > 0
    assert long_then.any() and not long_then.all()
    first = positions.filter(pl.col("ts") == start)
    assert ((first["units"].to_numpy() > 0) == long_then).all()
    assert set(fills.filter(pl.col("ts") == start)["symbol"]) == {s for s, x in zip(SYMBOLS, long_then) if x}
    # no costs: the fills and the mark of the first bar share its close
    assert equity["equity"][0] == pytest.approx(REAL_SIM.init_cash, rel=1e-12)
    assert equity["cash"][0] == pytest.approx(REAL_SIM.init_cash * (1 - long_then.sum() / len(SYMBOLS)), rel=1e-12)


# --------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("spec, message", [
    (RunSpec("sma_cross", ("NOPE",)), "NOPE"),
    (RunSpec("sma_cross", ("SYN00001", "NOPE")), "NOPE"),
    (RunSpec("sma_crossover", ("SYN00001",)), "unknown strategy 'sma_crossover'"),
    (RunSpec("sma_cross", ("SYN00001",), {"fast": 20, "slow": 20}), "`fast` must be below `slow`"),
    (RunSpec("sma_cross", ("SYN00001",), {"fast": 30, "slow": 20}), "`fast` must be below `slow`"),
    (RunSpec("sma_cross", ("SYN00001",), {"fast": 5, "slow": 20}, start=dt.datetime(2001, 1, 1)),
     "no bars on or after 2001-01-01"),
    (RunSpec("sma_cross", ("SYN00001",), {"fastest": 5}), "no parameter 'fastest'"),
])
def test_bad_input_is_an_input_error_and_writes_nothing(wh, spec, message):
    with catalog.connect(wh) as con:
        before = _counts(con)
        with pytest.raises(InputError, match=_escape(message)):
            run_backtest(con, spec)
        assert _counts(con) == before


@pytest.mark.parametrize("spec, grid, message", [
    (RunSpec("sma_cross", ("SYN00001", "NOPE")), {"fast": [2], "slow": [5]}, "NOPE"),
    (RunSpec("sma_crossover", ("SYN00001",)), {"fast": [2], "slow": [5]}, "unknown strategy 'sma_crossover'"),
    (RunSpec("sma_cross", ("SYN00001",)), {"fast": [10, 20], "slow": [5, 10]}, "no valid combination in the grid"),
    (RunSpec("sma_cross", ("SYN00001",)), {"fastest": [2]}, "no parameter 'fastest'"),
    (RunSpec("sma_cross", ("SYN00001",), start=dt.datetime(2001, 1, 1)), {"fast": [2], "slow": [5]},
     "no bars on or after 2001-01-01"),
    (RunSpec("sma_cross", ("SYN00001",), risk_free=-2.0), {"fast": [2], "slow": [5]},
     "`risk_free` must be an annual rate > -1"),
    (RunSpec("sma_cross", ("SYN00001",), risk_free=math.nan), {"fast": [2], "slow": [5]},
     "`risk_free` must be an annual rate > -1"),
])
def test_bad_sweep_input_is_an_input_error_and_writes_nothing(wh, spec, grid, message):
    with catalog.connect(wh) as con:
        before = _counts(con)
        with pytest.raises(InputError, match=_escape(message)):
            run_sweep(con, spec, grid)
        assert _counts(con) == before


def _escape(text: str) -> str:
    import re

    return re.escape(text)


def test_a_warehouse_without_build_says_to_run_build(tmp_path):
    paths = WarehousePaths(tmp_path / "wh")
    load(paths, market(n_symbols=1, n_bars=40))
    with catalog.connect(paths) as con:
        before = _counts(con)
        with pytest.raises(InputError, match="run `alphatwin build`"):
            run_backtest(con, RunSpec("sma_cross", ("SYN00001",), {"fast": 2, "slow": 5}))
        with pytest.raises(InputError, match="run `alphatwin build`"):
            run_sweep(con, RunSpec("sma_cross", ("SYN00001",)), {"fast": [2], "slow": [5]})
        assert _counts(con) == before


def test_a_failure_while_writing_leaves_no_partial_run(wh, monkeypatch):
    """write_run is one transaction: a row that cannot be inserted rolls back the runs row too."""
    real_frames = run_mod._frames

    def broken(*args, **kwargs):
        frames = real_frames(*args, **kwargs)
        frames["positions"] = frames["positions"].with_columns(pl.lit(None, dtype=pl.Float64).alias("units"))
        return frames  # positions.units is NOT NULL

    monkeypatch.setattr(run_mod, "_frames", broken)
    with catalog.connect(wh) as con:
        before = _counts(con)
        with pytest.raises(Exception, match="(?i)not null|constraint"):
            run_backtest(con, RunSpec("sma_cross", ("SYN00001",), {"fast": 5, "slow": 20}))
        assert _counts(con) == before


# ------------------------------------------------------------------------------------- sweeps

SHARED = ("total_return", "cagr", "annual_volatility", "sharpe", "sortino", "calmar", "max_drawdown",
          "max_drawdown_duration", "n_trades", "n_closed_trades", "win_rate", "profit_factor",
          "avg_holding_bars", "exposure", "final_equity", "total_fees")
GRID = {"fast": [2, 3, 5], "slow": [5, 10, 20]}
STOPS = Stops(stop_loss=0.03, take_profit=0.08, trailing_stop=0.05)


@pytest.mark.parametrize("start", [None, 100])
@pytest.mark.parametrize("fill", ["open", "close"])
@pytest.mark.parametrize("stops, kernel", [(Stops(), "fused"), (STOPS, "general")])
def test_a_sweep_row_equals_the_single_backtest(wh, fill, stops, kernel, start):
    """SYN00004 has a bar on every row (the fused kernel applies without stops); SYN00002 has
    imputed bars and a split (always the general kernel)."""
    sim = SimParams(fill=fill, costs=Costs(fees_bps=10, slippage_bps=5), stops=stops)
    first = None if start is None else _naive(STAMPS[start])
    spec = RunSpec("sma_cross", ("SYN00004", "SYN00002"), direction="both", sim=sim, start=first, risk_free=0.02)
    with catalog.connect(wh) as con:
        before = _counts(con)
        sweep = run_sweep(con, spec, GRID)
        stored = con.sql("SELECT * FROM backtest.sweeps WHERE run_id = ? ORDER BY symbol, fast, slow",
                         params=[sweep.run_id]).pl()
        after = _counts(con)
        singles = {(s, f, w): run_backtest(con, RunSpec("sma_cross", (s,), {"fast": f, "slow": w}, direction="both",
                                                        sim=sim, start=first, risk_free=0.02), save=False).metrics
                   for s, f, w in sweep.table.select("symbol", "fast", "slow").iter_rows()}
    pairs = [(f, w) for f in GRID["fast"] for w in GRID["slow"] if f < w]
    assert sweep.table.height == stored.height == 2 * len(pairs) == after["sweeps"] - before["sweeps"]
    assert after["runs"] == before["runs"] + 1
    assert sweep.table.filter(pl.col("symbol") == "SYN00004")["kernel"].unique().to_list() == [kernel]
    # SYN00002 has bars that cannot trade (gaps filled in): the fused kernel handles them too
    assert sweep.table.filter(pl.col("symbol") == "SYN00002")["kernel"].unique().to_list() == [kernel]
    assert sorted(stored.filter(pl.col("symbol") == "SYN00004").select("fast", "slow").iter_rows()) == pairs
    for row in stored.iter_rows(named=True):
        assert json.loads(row["params"]) == {"fast": row["fast"], "slow": row["slow"]}
        single = singles[(row["symbol"], row["fast"], row["slow"])]
        for key in SHARED:
            a, b = float(row[key]) if row[key] is not None else math.nan, float(single[key])
            if math.isnan(b) or math.isinf(b):
                assert (a == b) or (math.isnan(a) and math.isnan(b)) or (row[key] is None and math.isnan(b)), \
                    (row["symbol"], row["fast"], row["slow"], key, a, b)
            else:
                assert a == pytest.approx(b, rel=1e-9, abs=1e-12), (row["symbol"], row["fast"], row["slow"], key, a, b)
    assert any(m["n_trades"] > 0 for m in singles.values())
    if stops is STOPS:
        assert any(m["n_closed_trades"] > 0 for m in singles.values())
