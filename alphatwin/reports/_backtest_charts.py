"""The backtest report's Altair charts: equity against the benchmark, drawdown, exposure, price
with overlays and trades, monthly returns, rolling Sharpe, trade P&L and holding periods, and a
sweep's parameter heatmap.

:func:`chart_objects` returns Altair charts (they render in Jupyter); :func:`report_charts`
returns them as Vega-Lite specs ready to embed or export. Time charts zoom and pan on x (drag,
wheel; double-click resets) and every mark has a tooltip. Timestamps are UTC wall-clock times.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import polars as pl


if TYPE_CHECKING:
    from alphatwin.reports.backtest import RunData

__all__ = ["chart_objects", "report_charts", "CHART_TITLES"]

WIDTH = 760
DIGITS = 7  # significant digits of prices and equity in the page (smaller files)
STRATEGY_COLOR, BENCHMARK_COLOR = "#1f77b4", "#7f7f7f"
WIN, LOSS = "#2e7d32", "#c62828"

#: chart name -> title (the report's sections and the exported file names)
CHART_TITLES = {
    "equity": "Equity against buy and hold",
    "drawdown": "Drawdown (underwater)",
    "exposure": "Exposure",
    "price": "Price, indicators and trades",
    "monthly_returns": "Monthly returns",
    "rolling_sharpe": "Rolling Sharpe ratio",
    "trade_pnl": "Trade returns",
    "holding_periods": "Holding periods",
    "sweep_heatmap": "Parameter heatmap",
}


def _alt() -> Any:
    import altair as alt

    return alt


def _frame(frame: pl.DataFrame, digits: int = DIGITS) -> pl.DataFrame:
    """A frame ready for Vega: timestamps as wall-clock UTC strings (``2020-01-31T00:00``: the
    browser shows them as they are, in any time zone), floats to ``digits`` significant digits,
    NaN as null. Altair moves it into the spec's ``datasets`` (identical frames once)."""
    exprs = []
    for name, dtype in frame.schema.items():
        if isinstance(dtype, pl.Datetime):
            col = pl.col(name).dt.convert_time_zone("UTC") if dtype.time_zone else pl.col(name)
            exprs.append(col.dt.to_string("%Y-%m-%dT%H:%M").alias(name))
        elif dtype.is_float():
            exprs.append(pl.col(name).fill_nan(None).round_sig_figs(digits).alias(name))
    return frame.with_columns(exprs)


def _series(data: RunData) -> pl.DataFrame:
    """One frame per bar for every time chart of a run (shared by them in the page)."""
    eq = data.equity
    frame = eq.select("ts", pl.col("equity").alias("strategy"), "benchmark", "drawdown", "benchmark_drawdown",
                      (pl.col("gross_exposure") / pl.col("equity")).alias("gross"),
                      (pl.col("net_exposure") / pl.col("equity")).alias("net"))
    if data.rolling.height:
        frame = frame.join(data.rolling, on="ts", how="left")
    return _frame(frame)


def _time(title: str | None = None) -> Any:
    alt = _alt()
    return alt.X("ts:T", title=title, axis=alt.Axis(labelOverlap=True))


def _zoom(name: str) -> Any:
    return _alt().selection_interval(bind="scales", encodings=["x"], name=name)


def _choice(name: str, options: list[str], label: str) -> Any:
    """A parameter holding one of ``options``, with a dropdown when there is a choice to make."""
    alt = _alt()
    if len(options) > 1:
        return alt.param(name=name, value=options[0], bind=alt.binding_select(options=options, name=label))
    return alt.param(name=name, value=options[0])


def _tip_time() -> Any:
    return _alt().Tooltip("ts:T", title="bar (UTC)", format="%Y-%m-%d %H:%M")


def equity_chart(data: RunData) -> Any:
    alt = _alt()
    return alt.Chart(_series(data)).transform_fold(["strategy", "benchmark"], as_=["series", "value"]).mark_line(
        strokeWidth=1.4).encode(
        x=_time(), y=alt.Y("value:Q", title="equity", scale=alt.Scale(zero=False), axis=alt.Axis(format="~s")),
        color=alt.Color("series:N", title=None, scale=alt.Scale(domain=["strategy", "benchmark"],
                                                                range=[STRATEGY_COLOR, BENCHMARK_COLOR])),
        tooltip=[_tip_time(), alt.Tooltip("series:N"), alt.Tooltip("value:Q", title="equity", format=",.2f")],
    ).add_params(_zoom("zoom_equity")).properties(width=WIDTH, height=280, title=CHART_TITLES["equity"])


def drawdown_chart(data: RunData) -> Any:
    alt = _alt()
    base = alt.Chart(_series(data)).encode(x=_time())
    tips = [_tip_time(), alt.Tooltip("drawdown:Q", title="strategy", format=".2%"),
            alt.Tooltip("benchmark_drawdown:Q", title="benchmark", format=".2%")]
    area = base.mark_area(color=STRATEGY_COLOR, opacity=0.45, line={"color": STRATEGY_COLOR, "strokeWidth": 0.8}
                          ).encode(y=alt.Y("drawdown:Q", title="drawdown", axis=alt.Axis(format="%")), tooltip=tips)
    bench = base.mark_line(color=BENCHMARK_COLOR, strokeWidth=1, strokeDash=[4, 2]).encode(
        y="benchmark_drawdown:Q", tooltip=tips)
    return alt.layer(area, bench).add_params(_zoom("zoom_drawdown")).properties(
        width=WIDTH, height=160, title=alt.TitleParams(CHART_TITLES["drawdown"],
                                                       subtitle="strategy (area), buy and hold (dashed)"))


def exposure_chart(data: RunData) -> Any:
    alt = _alt()
    return alt.Chart(_series(data)).transform_fold(["gross", "net"], as_=["exposure", "share"]).mark_line(
        strokeWidth=1).encode(
        x=_time(), y=alt.Y("share:Q", title="share of equity", axis=alt.Axis(format="%")),
        color=alt.Color("exposure:N", title=None),
        tooltip=[_tip_time(), "exposure:N", alt.Tooltip("share:Q", format=".1%")],
    ).add_params(_zoom("zoom_exposure")).properties(width=WIDTH, height=140, title=CHART_TITLES["exposure"])


def price_chart(data: RunData) -> Any | None:
    alt = _alt()
    if data.prices.height == 0:
        return None
    symbols = data.prices["symbol"].unique(maintain_order=True).to_list()
    pick = _choice("symbol", symbols, "symbol ")
    only = alt.datum.symbol == pick
    series = data.prices["series"].unique(maintain_order=True).to_list()
    lines = alt.Chart(_frame(data.prices)).transform_filter(only).mark_line(strokeWidth=1).encode(
        x=_time(), y=alt.Y("value:Q", title="adjusted price", scale=alt.Scale(zero=False)),
        color=alt.Color("series:N", title=None, sort=series),
        strokeWidth=alt.condition(alt.datum.series == "close", alt.value(1.3), alt.value(1.0)),
        tooltip=[_tip_time(), "series:N", alt.Tooltip("value:Q", format=",.4f")])
    layers = [lines]
    if data.markers.height:
        size = 70 if data.markers.height <= 200 else 24  # many fills: smaller marks
        events = ["buy", "sell"]
        layers.append(alt.Chart(_frame(data.markers)).transform_filter(only).mark_point(
            filled=True, size=size, opacity=0.9).encode(
            x="ts:T", y="price:Q",
            shape=alt.Shape("event:N", title="fill", scale=alt.Scale(domain=events,
                                                                    range=["triangle-up", "triangle-down"])),
            fill=alt.Fill("event:N", title="fill", scale=alt.Scale(domain=events, range=[WIN, LOSS])),
            stroke=alt.value("#000"), strokeWidth=alt.value(0.5),
            tooltip=[_tip_time(), "event:N", "reason:N",
                     alt.Tooltip("fill_price:Q", title="fill price (as traded)", format=",.4f"),
                     alt.Tooltip("units:Q", format=",.4f"), alt.Tooltip("cost:Q", title="costs", format=",.2f"),
                     alt.Tooltip("opens:Q", title="opens trade"), "direction:N",
                     alt.Tooltip("closes:Q", title="closes trade"), alt.Tooltip("pnl:Q", title="trade P&L", format=",.2f"),
                     alt.Tooltip("return:Q", title="trade return", format=".2%"), alt.Tooltip("bars_held:Q")]))
    if data.outliers.height:
        layers.append(alt.Chart(_frame(data.outliers)).transform_filter(only).mark_point(
            shape="circle", size=110, filled=False, color="#ff7f0e", strokeWidth=1.5).encode(
            x="ts:T", y="price:Q",
            tooltip=[_tip_time(), alt.Tooltip("price:Q", title="adjusted close", format=",.4f"),
                     alt.Tooltip("note:N", title="quality")]).transform_calculate(
            note="'flagged as an outlier (quality.flags); the run\\'s outlier policy decides if it trades'"))
    top = alt.layer(*layers).add_params(pick, _zoom("zoom_price")).properties(
        width=WIDTH, height=300, title=alt.TitleParams(
            CHART_TITLES["price"], subtitle="backward-adjusted prices; every fill at its price in the same basis (buys up, sells down); "
                     "orange rings: bars the quality gate flagged as outliers"))
    panels = [top]
    w = data.weights
    if w.height:
        panels.append(alt.Chart(_frame(w.select("symbol", "ts", "weight"), 4)).transform_filter(only)
                      .mark_area(opacity=0.5, interpolate="step-after", color=STRATEGY_COLOR).encode(
            x=_time(), y=alt.Y("weight:Q", title="weight", axis=alt.Axis(format="%")),
            tooltip=[_tip_time(), alt.Tooltip("weight:Q", title="position / equity", format=".1%")],
        ).add_params(_zoom("zoom_weight")).properties(width=WIDTH, height=90))
        if w["signal"].null_count() < w.height:
            panels.append(alt.Chart(_frame(w.select("symbol", "ts", "signal").drop_nulls("signal"), 5))
                          .transform_filter(only).mark_line(strokeWidth=1, color="#6a1b9a").encode(
                x=_time(), y=alt.Y("signal:Q", title="signal", scale=alt.Scale(zero=False)),
                tooltip=[_tip_time(), alt.Tooltip("signal:Q", format=",.4f")],
            ).add_params(_zoom("zoom_signal")).properties(width=WIDTH, height=90))
    return alt.vconcat(*panels).resolve_scale(x="shared", color="independent")


def monthly_chart(data: RunData) -> Any | None:
    alt = _alt()
    if data.monthly.height == 0:
        return None
    names = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec", "Year"]
    frame = data.monthly.with_columns(pl.col("month").map_elements(lambda m: names[m - 1], return_dtype=pl.String)
                                      .alias("period"), pl.col("year").cast(pl.String))
    limit = max(0.01, float(data.monthly.filter(pl.col("month") <= 12)["return"].abs().quantile(0.98) or 0.01))
    base = alt.Chart(_frame(frame, 5)).encode(
        x=alt.X("period:O", sort=names, title=None, axis=alt.Axis(orient="top", labelAngle=0)),
        y=alt.Y("year:O", title=None))
    cells = base.mark_rect(stroke="#fff").encode(
        color=alt.Color("return:Q", title="return", scale=alt.Scale(scheme="redyellowgreen", domain=[-limit, limit],
                                                                    clamp=True), legend=alt.Legend(format="%")),
        tooltip=["year:O", "period:O", alt.Tooltip("return:Q", format=".2%")])
    text = base.mark_text(fontSize=9).encode(text=alt.Text("return:Q", format=".1%"))
    years = frame["year"].n_unique()
    return alt.layer(cells, text).properties(width=WIDTH, height=max(60, 18 * years),
                                             title=alt.TitleParams(CHART_TITLES["monthly_returns"],
                                                                   subtitle="compounded within each month and year"))


def rolling_chart(data: RunData) -> Any | None:
    alt = _alt()
    if data.rolling.height == 0 or data.rolling["rolling_sharpe"].null_count() == data.rolling.height:
        return None
    line = alt.Chart(_series(data)).transform_filter("isValid(datum.rolling_sharpe)").mark_line(
        strokeWidth=1, color=STRATEGY_COLOR).encode(
        x=_time(), y=alt.Y("rolling_sharpe:Q", title="Sharpe (annualized)"),
        tooltip=[_tip_time(), alt.Tooltip("rolling_sharpe:Q", title="rolling Sharpe", format=".2f")])
    zero = alt.Chart(_series(data)).mark_rule(color="#999").encode(y=alt.datum(0))
    return alt.layer(line, zero).add_params(_zoom("zoom_rolling")).properties(
        width=WIDTH, height=180, title=alt.TitleParams(
            CHART_TITLES["rolling_sharpe"], subtitle=f"trailing {data.rolling_window} bars"))


def _closed(data: RunData) -> pl.DataFrame:
    closed = data.trades.filter(pl.col("exit_ts").is_not_null() & pl.col("return").is_not_null())
    return closed.with_columns(pl.when(pl.col("pnl") > 0).then(pl.lit("win")).otherwise(pl.lit("loss"))
                               .alias("outcome")).select("trade_no", "symbol", "return", "pnl", "bars_held", "outcome")


def _histogram(frame: pl.DataFrame, field: str, title: str, axis_format: str | None, name: str) -> Any:
    alt = _alt()
    return alt.Chart(_frame(frame, 6)).mark_bar(opacity=0.85).encode(
        x=alt.X(f"{field}:Q", bin=alt.Bin(maxbins=40), title=title,
                axis=alt.Axis(format=axis_format) if axis_format else alt.Axis()),
        y=alt.Y("count():Q", title="trades", stack=True),
        color=alt.Color("outcome:N", title=None, scale=alt.Scale(domain=["win", "loss"], range=[WIN, LOSS])),
        tooltip=[alt.Tooltip(f"{field}:Q", bin=True, title=title, format=axis_format or ""),
                 "outcome:N", alt.Tooltip("count():Q", title="trades")],
    ).properties(width=WIDTH // 2 - 30, height=200, title=CHART_TITLES[name])


def trade_charts(data: RunData) -> tuple[Any | None, Any | None]:
    closed = _closed(data)
    if closed.height == 0:
        return None, None
    return (_histogram(closed, "return", "trade return", "%", "trade_pnl"),
            _histogram(closed, "bars_held", "bars held", None, "holding_periods"))


def sweep_chart(data: RunData) -> Any | None:
    alt = _alt()
    frame, names = data.sweep, data.sweep_params
    if frame.height == 0 or not names:
        return None
    from alphatwin.reports.backtest import SWEEP_METRICS

    metrics = [m for m in SWEEP_METRICS if m in frame.columns]
    if len(names) > 2:  # more axes than a heatmap has: the best Sharpe over the others
        frame = frame.sort("sharpe", descending=True, nulls_last=True).unique([*names[:2], "symbol"], keep="first")
    frame = frame.select("symbol", *names, *metrics)
    symbols = frame["symbol"].unique(maintain_order=True).to_list()
    metric = alt.param(name="metric", value="sharpe", bind=alt.binding_select(options=metrics, name="color by "))
    pick = _choice("sweep_symbol", symbols, "symbol ")
    tips = [*(alt.Tooltip(f"{n}:Q") for n in names),
            *(alt.Tooltip(f"{m}:Q", format=",d" if m == "n_trades" else ".4f") for m in metrics)]
    base = (alt.Chart(_frame(frame, 6)).transform_filter(alt.datum.symbol == pick)
            .transform_calculate(value="datum[metric]"))
    if len(names) == 1:
        chart = base.mark_line(point=True).encode(x=alt.X(f"{names[0]}:Q"), y=alt.Y("value:Q", title="metric"),
                                                  tooltip=tips)
    else:
        chart = base.mark_rect().encode(
            x=alt.X(f"{names[0]}:O", axis=alt.Axis(labelOverlap=True)),
            y=alt.Y(f"{names[1]}:O", sort="descending", axis=alt.Axis(labelOverlap=True)),
            color=alt.Color("value:Q", title="metric", scale=alt.Scale(scheme="viridis")), tooltip=tips)
    subtitle = "pick the metric and symbol above" + ("; other parameters: their best Sharpe" if len(names) > 2 else "")
    return chart.add_params(metric, pick).properties(
        width=WIDTH, height=WIDTH * 0.7 if len(names) > 1 else 260,
        title=alt.TitleParams(CHART_TITLES["sweep_heatmap"], subtitle=subtitle))


def chart_objects(data: RunData) -> dict[str, Any]:
    """The report's charts as Altair objects, by name (see :data:`CHART_TITLES`); a chart with
    nothing to draw (no closed trade, a sweep's equity) is left out."""
    if data.is_sweep:
        charts = {"sweep_heatmap": sweep_chart(data)}
    else:
        pnl, holding = trade_charts(data)
        charts = {"equity": equity_chart(data), "drawdown": drawdown_chart(data), "exposure": exposure_chart(data),
                  "price": price_chart(data), "monthly_returns": monthly_chart(data),
                  "rolling_sharpe": rolling_chart(data), "trade_pnl": pnl, "holding_periods": holding}
    return {k: v for k, v in charts.items() if v is not None}


def _finish(chart: Any) -> dict[str, Any]:
    return (chart.configure_axis(labelLimit=280, titleFontWeight="normal")
            .configure_title(anchor="start", fontSize=14).configure_view(stroke=None).to_dict())


def report_charts(data: RunData) -> dict[str, dict[str, Any]]:
    """:func:`chart_objects` as Vega-Lite specs (dicts, data in their ``datasets``), ready to embed
    or to export. Altair's 5,000-row guard is lifted while they are written: runs are longer."""
    alt = _alt()
    with alt.data_transformers.disable_max_rows():
        return {name: _finish(chart) for name, chart in chart_objects(data).items()}
