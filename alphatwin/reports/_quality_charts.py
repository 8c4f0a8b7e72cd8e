"""The data-quality report's Altair charts, as Vega-Lite specs (dicts) ready to embed.

Each builder takes a frame of :class:`~alphatwin.reports.quality.QualityData` and returns a spec,
or None when there is nothing to draw. Data go inline into the spec (``values``), timestamps as
ISO strings in UTC, so the page needs no data files.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from alphatwin.reports._html import values

if TYPE_CHECKING:
    import polars as pl

__all__ = ["quality_charts"]

WIDTH = 640
BAR_STEP = 22  # pixels per bar in the horizontal bar charts
SEVERITY_COLORS = {"error": "#d62728", "warning": "#ff7f0e", "info": "#7f7f7f"}
KIND_COLORS = {"quarantined": "#d62728", "flagged": "#ff7f0e"}


def _finish(chart: Any) -> dict[str, Any]:
    return (
        chart.configure_axis(labelLimit=280, titleFontWeight="normal")
        .configure_title(anchor="start", fontSize=14)
        .configure_view(stroke=None)
        .to_dict()
    )


def _count_axis() -> Any:
    """An axis of whole counts: no fractional ticks, thousands separators."""
    import altair as alt

    return alt.Axis(format=",d", tickMinStep=1)


def _scale(colors: dict[str, str]) -> Any:
    import altair as alt

    return alt.Scale(domain=list(colors), range=list(colors.values()))


def pass_rate_chart(pass_rate: pl.DataFrame) -> dict[str, Any] | None:
    """Share of expectations passed and of rows accepted, per validation run, over time."""
    import altair as alt

    if pass_rate.is_empty():
        return None
    frame = pass_rate.rename({"expectation_pass_rate": "expectations passed", "row_accept_rate": "rows accepted"})
    chart = (
        alt.Chart(alt.Data(values=values(frame)))
        .transform_fold(["expectations passed", "rows accepted"], as_=["measure", "share"])
        .mark_line(point=alt.OverlayMarkDef(size=60))
        .encode(
            x=alt.X("started:T", title="Validation run started (UTC)",
                    axis=alt.Axis(format="%Y-%m-%d %H:%M", labelAngle=-30)),
            y=alt.Y("share:Q", title="Share", axis=alt.Axis(format="%"), scale=alt.Scale(domain=[0, 1])),
            color=alt.Color("measure:N", title=None, legend=alt.Legend(orient="bottom")),
            tooltip=[
                alt.Tooltip("started:T", title="started", format="%Y-%m-%d %H:%M:%S"),
                alt.Tooltip("ingest_id:N", title="ingest"), alt.Tooltip("suite:N"),
                alt.Tooltip("result:N"), alt.Tooltip("measure:N"),
                alt.Tooltip("share:Q", format=".2%"),
            ],
        )
        .properties(title="Pass rate over time", width=WIDTH, height=240)
    )
    return _finish(chart)


def expectations_chart(expectations: pl.DataFrame) -> dict[str, Any] | None:
    """Unexpected values per expectation (current runs; expectations with none left out), colored by severity."""
    import altair as alt

    expectations = expectations.filter(expectations["unexpected_count"] > 0)
    if expectations.is_empty():
        return None
    chart = (
        alt.Chart(alt.Data(values=values(expectations)))
        .mark_bar()
        .encode(
            y=alt.Y("expectation:N", title="Expectation", sort="-x"),
            x=alt.X("unexpected_count:Q", title="Unexpected values (current runs)", axis=_count_axis()),
            color=alt.Color("severity:N", title="Severity", scale=_scale(SEVERITY_COLORS)),
            tooltip=[
                alt.Tooltip("expectation:N"), alt.Tooltip("expectation_type:N", title="GX type"),
                alt.Tooltip("columns:N"), alt.Tooltip("severity:N"), alt.Tooltip("result:N"),
                alt.Tooltip("runs_failed:Q", title="runs failed"), alt.Tooltip("runs:Q"),
                alt.Tooltip("unexpected_count:Q", title="unexpected", format=","),
                alt.Tooltip("unexpected_percent:Q", title="unexpected %", format=".3f"),
            ],
        )
        .properties(title="Unexpected values per expectation", width=WIDTH, height=alt.Step(BAR_STEP))
    )
    return _finish(chart)


def worst_symbols_chart(worst: pl.DataFrame) -> dict[str, Any] | None:
    """Symbols with the most quarantined and flagged rows (stacked bars)."""
    import altair as alt

    if worst.is_empty():
        return None
    chart = (
        alt.Chart(alt.Data(values=values(worst)))
        .transform_fold(["quarantined", "flagged"], as_=["kind", "rows"])
        .mark_bar()
        .encode(
            y=alt.Y("symbol:N", title="Symbol", sort=alt.EncodingSortField("total", order="descending")),
            x=alt.X("rows:Q", title="Rows quarantined or flagged", stack="zero", axis=_count_axis()),
            color=alt.Color("kind:N", title=None, scale=_scale(KIND_COLORS)),
            tooltip=[
                alt.Tooltip("symbol:N"), alt.Tooltip("quarantined:Q", format=","),
                alt.Tooltip("flagged:Q", format=","), alt.Tooltip("reasons:N"),
            ],
        )
        .properties(title="Worst symbols", width=WIDTH, height=alt.Step(BAR_STEP))
    )
    return _finish(chart)


def reasons_chart(reasons: pl.DataFrame) -> dict[str, Any] | None:
    """Quarantined (and flagged) rows per failed expectation."""
    import altair as alt

    if reasons.is_empty():
        return None
    chart = (
        alt.Chart(alt.Data(values=values(reasons)))
        .mark_bar()
        .encode(
            y=alt.Y("reason:N", title="Reason (failed expectation)", sort="-x"),
            x=alt.X("rows:Q", title="Rows (a row counts under each of its reasons)", stack="zero",
                    axis=_count_axis()),
            color=alt.Color("kind:N", title=None, scale=_scale(KIND_COLORS)),
            tooltip=[
                alt.Tooltip("reason:N"), alt.Tooltip("kind:N"),
                alt.Tooltip("rows:Q", format=","), alt.Tooltip("symbols:Q"),
            ],
        )
        .properties(title="Quarantined and flagged rows by reason", width=WIDTH, height=alt.Step(BAR_STEP))
    )
    return _finish(chart)


def quality_charts(data: Any) -> dict[str, dict[str, Any] | None]:
    """Every chart of the report, keyed by its element id (None: nothing to draw)."""
    return {
        "chart-pass-rate": pass_rate_chart(data.pass_rate),
        "chart-expectations": expectations_chart(data.expectations),
        "chart-worst-symbols": worst_symbols_chart(data.worst_symbols),
        "chart-reasons": reasons_chart(data.reasons),
    }
