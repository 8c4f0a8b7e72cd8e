"""The backtest report (``alphatwin report``): the series it derives (benchmark, monthly returns,
rolling Sharpe, overlays, trade markers, weights) against independent computations, the HTML
page, the chart exports and the CLI, on a real warehouse (fixture market with dividends and
splits) and real backtests."""

from __future__ import annotations

import datetime as dt
import json
import math
import re

import numpy as np
import polars as pl
import pytest
import talib
from typer.testing import CliRunner

import alphatwin
from alphatwin.backtest.params import SimParams, Stops
from alphatwin.backtest.run import RunSpec, run_backtest
from alphatwin.cli.main import app
from alphatwin.errors import InputError
from alphatwin.lake import catalog
from alphatwin.metrics import returns as m
from alphatwin.paths import WarehousePaths
from alphatwin.reports import _run_series as series
from alphatwin.reports._backtest_charts import CHART_TITLES, chart_objects, report_charts
from alphatwin.reports.backtest import collect_run, export_charts, latest_run_id, write_backtest_report
from tests.models.market import build_all, load, market
from tests.reports.runs import SYMBOLS, store_runs

runner = CliRunner()


@pytest.fixture(scope="module")
def wh(tmp_path_factory):
    """A warehouse with three stored runs: a two-symbol long/short sma_cross (fees, next-open
    fills, no slippage, so fills are at the bar's open), a sweep, and a run without trades on
    a symbol with a bad tick (a 6x print the quality gate flags as an outlier)."""
    paths = WarehousePaths(tmp_path_factory.mktemp("report") / "wh")
    frame = market(n_symbols=3)
    spike = (pl.col("symbol") == "SYN00003") & (pl.col("ts") == frame["ts"].unique().sort()[150])
    load(paths, frame.with_columns(pl.when(spike).then(pl.col(c) * 6).otherwise(pl.col(c)).alias(c)
                                   for c in ("open", "high", "low", "close")))  # a bad tick: flagged, kept
    build_all(paths)
    with catalog.connect(paths) as con:
        bt, sw = store_runs(con)
        flat = run_backtest(con, RunSpec("bollinger_reversion", ("SYN00003",), {"period": 20, "width": 9.5},
                                         sim=SimParams(stops=Stops(trailing_stop=0.1))), command="test")
    return paths, bt, sw, flat.run_id


@pytest.fixture(scope="module")
def data(wh):
    paths, bt, _, _ = wh
    with catalog.connect(paths, read_only=True) as con:
        return collect_run(con, bt)


def _clean(paths, symbols) -> pl.DataFrame:
    with catalog.connect(paths, read_only=True) as con:
        return con.sql("SELECT symbol, (ts AT TIME ZONE 'UTC') AS ts, adj_open, adj_close, adj_factor FROM clean.bars "
                       "WHERE symbol IN (SELECT unnest(?::VARCHAR[])) ORDER BY symbol, ts",
                       params=[list(symbols)]).pl()


# --- the derived series, against hand computations ------------------------------------------------------------


def test_benchmark_golden_values():
    """Equal cash at the first bar; a symbol without a bar yet keeps its share in cash."""
    ts = [dt.datetime(2020, 1, d) for d in (1, 2, 3)]
    equity = pl.DataFrame({"ts": ts, "equity": [100.0, 101.0, 99.0]})
    closes = pl.DataFrame({"symbol": ["A", "A", "A", "B", "B"], "ts": [*ts, ts[1], ts[2]],
                           "adj_close": [10.0, 11.0, 12.0, 5.0, 10.0]})
    out = series.with_benchmark(equity, closes, 100.0)
    assert out["benchmark"].to_list() == pytest.approx([100.0, 105.0, 160.0], rel=1e-15)
    assert out["benchmark_drawdown"].to_list() == pytest.approx([0.0, 0.0, 0.0])
    down = series.with_benchmark(equity, closes.with_columns(pl.Series("adj_close", [10.0, 8.0, 12.0, 5.0, 5.0])), 100.0)
    assert down["benchmark"].to_list() == pytest.approx([100.0, 90.0, 110.0])
    assert down["benchmark_drawdown"].to_list() == pytest.approx([0.0, -0.1, 0.0])
    # a run symbol with no bar at all keeps its third of the cash
    third = series.with_benchmark(equity, closes, 90.0, ["A", "B", "C"])
    assert third["benchmark"].to_list() == pytest.approx([90.0, 30 * (1.1 + 1 + 1), 30 * (1.2 + 2 + 1)])


def test_benchmark_is_buy_and_hold_of_the_run_symbols(wh, data):
    paths = wh[0]
    clean = _clean(paths, SYMBOLS).filter(pl.col("ts") >= data.info["run_start"])
    growth = [clean.filter(pl.col("symbol") == s)["adj_close"].to_numpy() for s in SYMBOLS]
    want = 100_000.0 * np.mean([g / g[0] for g in growth], axis=0)
    assert data.equity.height == len(want)
    np.testing.assert_allclose(data.equity["benchmark"].to_numpy(), want, rtol=1e-12)
    r = want / np.r_[100_000.0, want[:-1]] - 1.0
    ppy = data.info["periods_per_year"]
    assert data.benchmark_metrics["sharpe"] == pytest.approx(m.sharpe(r, ppy), rel=1e-9)
    assert data.benchmark_metrics["max_drawdown"] == pytest.approx(m.max_drawdown(r), rel=1e-9)
    assert data.benchmark_metrics["total_return"] == pytest.approx(want[-1] / 100_000.0 - 1.0, rel=1e-12)


def test_monthly_returns_golden_values_and_compounding():
    ts = [dt.datetime(2020, 1, 15), dt.datetime(2020, 1, 31), dt.datetime(2020, 2, 10), dt.datetime(2020, 2, 28),
          dt.datetime(2021, 3, 2)]
    equity = pl.DataFrame({"ts": ts, "equity": [105.0, 110.0, 99.0, 121.0, 133.1]})
    out = series.monthly_returns(equity, 100.0)
    got = {(y, mo): r for y, mo, r in out.iter_rows()}
    assert got == pytest.approx({(2020, 1): 0.10, (2020, 2): 0.10, (2021, 3): 0.10, (2020, 13): 0.21,
                                 (2021, 13): 0.10})


def test_monthly_returns_compound_to_the_total(data):
    months = data.monthly.filter(pl.col("month") <= 12)["return"].to_numpy()
    years = data.monthly.filter(pl.col("month") == 13)["return"].to_numpy()
    total = data.metrics["total_return"]
    assert np.prod(1 + months) - 1 == pytest.approx(total, rel=1e-9)
    assert np.prod(1 + years) - 1 == pytest.approx(total, rel=1e-9)


def test_rolling_sharpe_is_the_sharpe_metric_on_a_trailing_window(data):
    w, ppy = data.rolling_window, data.info["periods_per_year"]
    assert w == round(ppy / 2) >= 126
    r = data.equity["return"].to_numpy()
    roll = data.rolling["rolling_sharpe"].to_numpy()
    assert np.isnan(roll[: w - 1]).all()
    for t in (w - 1, w + 17, len(r) - 1):
        assert roll[t] == pytest.approx(m.sharpe(r[t - w + 1: t + 1], ppy), rel=1e-8)


def test_rolling_sharpe_reads_nothing_after_its_bar(data):
    """Point in time: truncating the equity curve leaves every earlier value unchanged."""
    full = data.rolling["rolling_sharpe"].to_numpy()
    ppy = data.info["periods_per_year"]
    for cut in (130, 170, data.equity.height - 1):
        part = series.rolling_sharpe(data.equity.head(cut), data.rolling_window, ppy, 0.0)["rolling_sharpe"].to_numpy()
        np.testing.assert_array_equal(part, full[:cut])


def test_overlays_are_the_strategy_smas_as_talib_computes_them(wh, data):
    clean = _clean(wh[0], SYMBOLS)
    for symbol in SYMBOLS:
        closes = clean.filter(pl.col("symbol") == symbol)
        for label, window in (("SMA(5)", 5), ("SMA(20)", 20)):
            want = pl.DataFrame({"ts": closes["ts"], "want": talib.SMA(closes["adj_close"].to_numpy(), window)})
            got = data.prices.filter((pl.col("symbol") == symbol) & (pl.col("series") == label)).join(want, on="ts")
            assert got.height > 150
            np.testing.assert_allclose(got["value"].to_numpy(), got["want"].to_numpy(), rtol=1e-10)


def test_fill_markers_sit_at_the_fill_in_the_adjusted_basis(wh, data):
    """No slippage, next-open fills: every fill is at its bar's open, so its marker is that bar's
    adjusted open, on the split symbol too (a position held across the 2:1 split included)."""
    with catalog.connect(wh[0], read_only=True) as con:
        fills = con.sql("SELECT symbol, ts, units FROM backtest.fills WHERE run_id = ?", params=[data.run_id]).pl()
    assert data.markers.height == fills.height > 10
    both = data.markers.join(_clean(wh[0], SYMBOLS), on=["symbol", "ts"])
    assert both.height == fills.height and set(both["symbol"]) == set(SYMBOLS)
    np.testing.assert_allclose(both["price"].to_numpy(), both["adj_open"].to_numpy(), rtol=1e-9)
    assert both["event"].to_list() == ["buy" if u > 0 else "sell" for u in both["units"]]
    opened = both["opens"].drop_nulls().sort().to_list()
    closed = both["closes"].drop_nulls().sort().to_list()
    trades = data.trades
    assert opened == trades["trade_no"].sort().to_list()
    assert closed == trades.filter(pl.col("exit_ts").is_not_null())["trade_no"].sort().to_list()


def test_flagged_outliers_are_drawn_where_the_gate_flagged_them(wh, tmp_path):
    paths, _, _, flat = wh
    with catalog.connect(paths, read_only=True) as con:
        d = collect_run(con, flat)
        want = con.sql("SELECT (ts AT TIME ZONE 'UTC') AS ts, adj_close FROM clean.bars WHERE symbol = 'SYN00003' "
                       "AND is_outlier AND (ts AT TIME ZONE 'UTC') >= ? ORDER BY ts", params=[d.info["run_start"]]).pl()
    assert want.height >= 1
    assert d.outliers["ts"].to_list() == want["ts"].to_list()
    assert d.outliers["price"].to_list() == want["adj_close"].to_list()
    price = json.dumps(report_charts(d)["price"])
    assert "flagged as an outlier" in price


def test_weights_are_position_value_over_equity(wh, data):
    with catalog.connect(wh[0], read_only=True) as con:
        pos = con.sql("SELECT p.symbol, p.ts, p.value / e.equity AS want FROM backtest.positions p JOIN "
                      "backtest.equity e USING (run_id, ts) WHERE run_id = ?", params=[data.run_id]).pl()
    got = data.weights.join(pos, on=["symbol", "ts"])
    assert got.height == data.weights.height == pos.height
    np.testing.assert_allclose(got["weight"].to_numpy(), got["want"].to_numpy(), rtol=1e-12)
    assert data.weights["signal"].null_count() < data.weights.height  # signals.sma_cross rows of this run


# --- the page and the charts -----------------------------------------------------------------------------------


def _specs(html: str) -> tuple[dict[str, dict], dict]:
    specs = {m_.group(1): json.loads(m_.group(2)) for m_ in
             re.finditer(r'<script type="application/json" data-chart="chart-([a-z_]+)">(.*?)</script>', html, re.S)}
    datasets = json.loads(re.search(r'<script type="application/json" id="datasets">(.*?)</script>', html, re.S)[1])
    return specs, datasets


def test_report_page_is_self_contained_with_every_chart(wh, tmp_path):
    paths, bt, _, _ = wh
    out = write_backtest_report(paths, bt, tmp_path / "r.html")
    html = out.read_text()
    assert not re.search(r'<script[^>]+src=|<link[^>]+href="https?:|@import', html)
    assert html.count("vegaEmbed(") == 1 and html.count("Vega-Embed") == 1  # the bundle, once
    specs, datasets = _specs(html)
    assert set(specs) == set(CHART_TITLES) - {"sweep_heatmap"}
    for spec in specs.values():  # every dataset a chart names is in the page, once
        assert spec["datasets"] and all(name in datasets for name in spec["datasets"])
    assert len(datasets) < sum(len(s["datasets"]) for s in specs.values())  # shared, not repeated
    for key in ("data_sha256", "ingest_ids"):
        value = collect_run_info(paths, bt)[key]
        assert (value if isinstance(value, str) else value[0]) in html
    assert f"{collect_run_info(paths, bt)['n_bars']:,} bars" in html


def collect_run_info(paths, run_id):
    with catalog.connect(paths, read_only=True) as con:
        return collect_run(con, run_id).info


def test_every_chart_renders_and_has_tooltips(data):
    import vl_convert

    specs = report_charts(data)
    assert list(specs) == ["equity", "drawdown", "exposure", "price", "monthly_returns", "rolling_sharpe",
                           "trade_pnl", "holding_periods"]
    for name, spec in specs.items():
        svg = vl_convert.vegalite_to_svg(spec)
        assert svg.startswith("<svg") and ("<path" in svg or "<rect" in svg), name
        assert '"tooltip"' in json.dumps(spec), name
    for name in ("equity", "drawdown", "price", "rolling_sharpe"):  # time charts zoom on x
        assert '"bind": "scales"' in json.dumps(specs[name]), name
    price = json.dumps(specs["price"])
    assert '"input": "select"' in price and '"SYN00001"' in price and '"SYN00002"' in price


def test_price_chart_draws_every_fill_of_the_symbol(data):
    """Rendered (vl-convert): the first symbol is drawn with one point per fill of it."""
    import vl_convert

    svg = vl_convert.vegalite_to_svg(report_charts(data)["price"])
    group = re.search(r'<g class="mark-symbol role-mark concat_0_layer_1_marks"[^>]*>(.*?)</g>', svg, re.S)
    first = data.prices["symbol"][0]
    assert group[1].count("<path") == data.markers.filter(pl.col("symbol") == first).height > 0


def test_sweep_report_has_the_parameter_heatmap(wh, tmp_path):
    paths, _, sw, _ = wh
    with catalog.connect(paths, read_only=True) as con:
        d = collect_run(con, sw)
    assert d.is_sweep and d.sweep_params == ("fast", "slow") and d.sweep.height == 2 * 4 * 5
    specs = report_charts(d)
    assert list(specs) == ["sweep_heatmap"]
    text = json.dumps(specs["sweep_heatmap"])
    assert '"name": "metric"' in text and '"sweep_symbol"' in text and "datum[metric]" in text
    html = write_backtest_report(paths, sw, tmp_path / "s.html").read_text()
    assert "Best combinations" in html and "fast = 2, 3, 4, 5; slow = 6, 8, 10, 12, 14" in html
    best = d.sweep.sort("sharpe", descending=True).row(0, named=True)
    assert f"{best['sharpe']:.4g}" in html


def test_a_run_without_trades_still_reports(wh, tmp_path):
    paths, _, _, flat = wh
    with catalog.connect(paths, read_only=True) as con:
        d = collect_run(con, flat)
    assert d.trades.height == 0
    # never in the market: no trailing window has varying returns, so no rolling Sharpe either
    assert set(chart_objects(d)) == {"equity", "drawdown", "exposure", "price", "monthly_returns"}
    html = write_backtest_report(paths, flat, tmp_path / "f.html").read_text()
    assert "No closed trade." in html and "never in the market" in html and "upper band (9.5 sd)" in html


def test_export_writes_png_svg_pdf(data, tmp_path):
    files = export_charts(data, tmp_path / "charts", ("png", "svg", "pdf"), scale=1.0)
    assert len(files) == 3 * len(report_charts(data))
    for f in files:
        head = f.read_bytes()[:8]
        assert head.startswith({"png": b"\x89PNG", "svg": b"<svg", "pdf": b"%PDF"}[f.suffix[1:]]), f
    with pytest.raises(InputError, match="--export"):
        export_charts(data, tmp_path / "x", ("gif",))


def test_unknown_run_is_a_clear_error(wh):
    with catalog.connect(wh[0], read_only=True) as con:
        with pytest.raises(InputError, match="no backtest run 'bt-nope'"):
            collect_run(con, "bt-nope")
        assert latest_run_id(con) == wh[3] and latest_run_id(con, "sweep") == wh[2]


# --- the CLI and the Python API ----------------------------------------------------------------------------------


def test_cli_report_with_exports(wh, tmp_path):
    paths, bt, _, _ = wh
    out = tmp_path / "out" / "bt.html"
    res = runner.invoke(app, ["--warehouse", str(paths.root), "report", bt, "--out", str(out), "--export", "png,svg",
                              "--format", "json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["run_id"] == bt and doc["report"] == str(out) and out.is_file()
    assert sorted(p.rsplit("/", 1)[1] for p in doc["charts"]) == sorted(
        f"{n}.{e}" for n in report_charts(collect_run_data(paths, bt)) for e in ("png", "svg"))
    assert all(p.startswith(str(tmp_path / "out" / "bt_charts")) for p in doc["charts"])
    latest = runner.invoke(app, ["--warehouse", str(paths.root), "report", "latest"])
    assert latest.exit_code == 0 and latest.stdout.strip() == str(paths.root / "reports" / f"{wh[3]}.html")


def collect_run_data(paths, run_id):
    with catalog.connect(paths, read_only=True) as con:
        return collect_run(con, run_id)


@pytest.mark.parametrize("args, message", [
    (["bt-nope"], "no backtest run 'bt-nope'"),
    (["latest", "--export", "png,gif"], "`--export` takes png, svg, pdf"),
    (["latest", "--format", "yaml"], "`--format` must be text or json"),
    (["latest", "--export", "png", "--scale", "0"], "`--scale` must be a number > 0"),
])
def test_cli_bad_input_is_one_line_and_writes_nothing(wh, tmp_path, args, message):
    out = tmp_path / "never.html"
    res = runner.invoke(app, ["--warehouse", str(wh[0].root), "report", *args, "--out", str(out)])
    assert res.exit_code == 1 and message in res.output and "Traceback" not in res.output
    assert len(res.stderr.strip().splitlines()) == 1
    assert not out.exists() and not (tmp_path / "never_charts").exists()


def test_cli_report_refuses_a_directory_and_a_missing_warehouse(wh, tmp_path):
    res = runner.invoke(app, ["--warehouse", str(wh[0].root), "report", "latest", "--out", str(tmp_path)])
    assert res.exit_code == 1 and "is a directory" in res.output
    res = runner.invoke(app, ["--warehouse", str(tmp_path / "none"), "report", "latest"])
    assert res.exit_code == 1 and "no warehouse" in res.output


def test_api_run_charts_and_report(wh, tmp_path):
    paths, bt, _, _ = wh
    run = alphatwin.open(paths.root).run(bt)
    charts = run.charts()
    assert list(charts) == list(report_charts(collect_run_data(paths, bt)))
    monthly = run.chart("monthly_returns").to_dict()
    assert monthly["datasets"] and math.isfinite(sum(r["return"] for d in monthly["datasets"].values() for r in d))
    with pytest.raises(InputError, match="no chart 'nope'"):
        run.chart("nope")
    assert run.report(tmp_path / "api.html").read_text().startswith("<!DOCTYPE html>")
