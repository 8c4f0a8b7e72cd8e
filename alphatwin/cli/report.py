"""``alphatwin report``: the HTML report of a stored backtest or sweep, and its charts as images
(see :mod:`alphatwin.reports.backtest`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from alphatwin.cli.common import progress_rows, stage_command, state
from alphatwin.errors import InputError

__all__ = ["report_command"]


def _formats(text: str | None) -> tuple[str, ...]:
    if text is None:
        return ()
    return tuple(dict.fromkeys(f.strip().lower() for f in text.split(",") if f.strip())) or ("",)


@stage_command("report")  # meta.stage_runs
def report_command(
    ctx: typer.Context,
    run_id: Annotated[str, typer.Argument(help="A run id from backtest.runs (bt-... or sw-...), or `latest`.")],
    out: Annotated[Path | None, typer.Option("--out", "-o", help="HTML file to write (default: <warehouse>/reports/<run_id>.html).", show_default=False)] = None,
    export: Annotated[str | None, typer.Option("--export", help="Also write every chart as images: png, svg and/or pdf, comma-separated.", show_default=False)] = None,
    charts_dir: Annotated[Path | None, typer.Option("--charts-dir", help="Where --export writes (default: beside the report, <report name>_charts/).", show_default=False)] = None,
    scale: Annotated[float, typer.Option("--scale", help="PNG pixel scale of --export (2 = twice the chart's size).")] = 2.0,
    fmt: Annotated[str, typer.Option("--format", "-f", help="What to print: text (the paths) or json.")] = "text",
) -> None:
    """Write the report of a stored backtest or sweep: one self-contained HTML page that opens
    offline, with the metrics beside buy and hold, equity against the benchmark, drawdown,
    exposure, price with the strategy's indicators and the entries and exits, monthly returns,
    rolling Sharpe, trade P&L and holding periods, the trades, and the run's provenance (data
    range, ingests and their validation, costs, stops, risk). A sweep gets its parameter heatmap
    and best combinations. Charts zoom, pan and show tooltips. Prints the file's path.

    Example: alphatwin report latest --out report.html --export png,svg
    """
    from alphatwin.lake import catalog
    from alphatwin.reports._backtest_page import render_page
    from alphatwin.reports._html import write_atomic
    from alphatwin.reports.backtest import check_writable, collect_run, default_report_path, export_charts, latest_run_id

    if fmt not in ("text", "json"):
        raise InputError(f"`--format` must be text or json, got {fmt!r}")
    formats = _formats(export)
    st = state(ctx)
    if not st.paths.db.is_file():
        raise InputError(f"no warehouse at {st.paths.root}: run `alphatwin demo` or `alphatwin backtest` first")
    with catalog.connect(st.paths, read_only=True) as con:
        rid = latest_run_id(con) if run_id == "latest" else run_id
        data = collect_run(con, rid)
    target = out if out is not None else default_report_path(st.paths, rid)
    check_writable(target)
    charts: list[Path] = []
    if formats:
        from alphatwin.reports._backtest_charts import chart_objects

        directory = charts_dir if charts_dir is not None else target.with_name(f"{target.stem}_charts")
        total = len(chart_objects(data)) * len(formats)
        with progress_rows(f"exporting charts to {directory}", total=total, unit="files") as advance:
            charts = export_charts(data, directory, formats, scale=scale, progress=advance)
    write_atomic(target, render_page(data))
    if fmt == "json":
        typer.echo(json.dumps({"run_id": rid, "kind": data.info["kind"], "report": str(target),
                               "charts": [str(p) for p in charts]}))
        return
    typer.echo(str(target))
    for path in charts:
        typer.echo(str(path))
