"""The data-quality report and ``alphatwin quality``: real DuckDB catalog rows in, HTML and CLI out.

The fixture warehouse holds two ingests: A was validated twice (the first run superseded, so
``current = false``), B once. Current runs: A fails (4 quarantined rows, one a collapsed
duplicate, 2 flagged), B passes (1 flagged).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from alphatwin.cli import quality as quality_cli
from alphatwin.cli.common import State
from alphatwin.cli.main import _ErrorsAsOneLine
from alphatwin.errors import InputError
from alphatwin.lake import catalog
from alphatwin.paths import WarehousePaths
from alphatwin.quality.store import ensure_quality_schema
from alphatwin.reports.quality import collect_quality, quarantined_rows, write_quality_report

UTC = dt.UTC
T0 = dt.datetime(2024, 3, 1, 10, 0, tzinfo=UTC)
SHA = "3f5e0c1d9a7b" + "0" * 52
EXPECTATIONS = [  # name, GX type, severity
    ("close_not_null", "expect_column_values_to_not_be_null", "error"),
    ("high_ge_max_open_close", "expect_column_pair_values_a_to_be_greater_than_b", "error"),
    ("low_le_min_open_close", "expect_column_pair_values_a_to_be_greater_than_b", "error"),
    ("unique_key", "expect_compound_columns_to_be_unique", "error"),
    ("return_outlier", "expect_column_values_to_be_between", "warning"),
    ("volume_outlier", "expect_column_values_to_be_between", "warning"),
    ("ts_in_range", "expect_column_values_to_be_between", "info"),
]
UNEXPECTED = {  # validation_id -> expectation -> unexpected count (absent: 0, passed)
    "va1": {"close_not_null": 3, "high_ge_max_open_close": 2},
    "va2": {"close_not_null": 1, "high_ge_max_open_close": 2, "low_le_min_open_close": 1, "unique_key": 1,
            "return_outlier": 1, "volume_outlier": 1},
    "vb1": {"return_outlier": 1},
}
RUNS = [  # validation_id, ingest, trigger, started, received, accepted, quarantined, collapsed, flagged, success, current
    ("va1", "ing-A", "ingest", T0, 100, 95, 5, 0, 0, False, False),
    ("va2", "ing-A", "validate", T0 + dt.timedelta(hours=2), 100, 96, 4, 1, 2, False, True),
    ("vb1", "ing-B", "ingest", T0 + dt.timedelta(days=1), 50, 50, 0, 0, 1, True, True),
]
QUARANTINE = [  # ingest, symbol, row_nr, reasons, detail, collapsed, validation_id, minutes after T0
    ("ing-A", "SYN00001", 3, ["high_ge_max_open_close"], "high=99.0 < max(open, close)=101.2", False, "va2", 121),
    ("ing-A", "SYN00001", 7, ["high_ge_max_open_close", "low_le_min_open_close"], "high=98.1 low=103.4", False, "va2", 122),
    ("ing-A", "SYN00002", 12, ["close_not_null"], "close=NULL", False, "va2", 123),
    ("ing-A", "SYN00002", 13, ["unique_key"], "copy 2 of SYN00002 2024-01-14", True, "va2", 124),
]
FLAGS = [  # ingest, symbol, row_nr, reasons, validation_id
    ("ing-A", "SYN00001", 20, ["return_outlier"], "va2"),
    ("ing-A", "SYN00003", 40, ["volume_outlier"], "va2"),
    ("ing-B", "SYN00001", 5, ["return_outlier"], "vb1"),
]
CHART_IDS = ["chart-pass-rate", "chart-expectations", "chart-worst-symbols", "chart-reasons"]


def _insert_runs(con) -> None:
    for ingest, started in (("ing-A", T0), ("ing-B", T0 + dt.timedelta(days=1))):
        con.execute("INSERT INTO meta.ingest_runs (ingest_id, source, status, started) VALUES (?, 'synthetic', 'committed', ?)",
                    [ingest, started])
    for vid, ingest, trigger, started, rec, acc, quar, coll, flag, ok, current in RUNS:
        con.execute(
            "INSERT INTO meta.validation_runs VALUES (?, ?, 'raw_bars', ?, ?, ?, ?, 1.5, ?, ?, ?, ?, ?, 0, ?, NULL, ?)",
            [vid, ingest, SHA, trigger, started, started + dt.timedelta(seconds=2), rec, acc, quar, coll, flag, ok, current],
        )
        for name, gx_type, severity in EXPECTATIONS:
            bad = UNEXPECTED[vid].get(name, 0)
            con.execute(
                "INSERT INTO meta.validation_results VALUES (?, ?, ?, 'close', ?, ?, ?, ?, ?, ?, NULL, '{}')",
                [vid, name, gx_type, severity, bad == 0, rec, bad, 100.0 * bad / rec, json.dumps([1.0] * bad)],
            )


def _insert_marked_rows(con) -> None:
    for ingest, symbol, row_nr, reasons, detail, collapsed, vid, minutes in QUARANTINE:
        con.execute(
            "INSERT INTO quality.quarantine VALUES (?, ?, '1d', ?, ?, ?, ?, ?, ?, ?)",
            [ingest, symbol, dt.datetime(2024, 1, 1, tzinfo=UTC) + dt.timedelta(days=row_nr), row_nr, reasons,
             detail, collapsed, vid, T0 + dt.timedelta(minutes=minutes)],
        )
    for ingest, symbol, row_nr, reasons, vid in FLAGS:
        con.execute("INSERT INTO quality.flags VALUES (?, ?, '1d', ?, ?, ?, 'abs(return) > 8 sd', ?)",
                    [ingest, symbol, dt.datetime(2024, 1, 1, tzinfo=UTC) + dt.timedelta(days=row_nr), row_nr, reasons, vid])


@pytest.fixture
def warehouse(paths: WarehousePaths) -> WarehousePaths:
    with catalog.connect(paths) as con:
        ensure_quality_schema(con)
        _insert_runs(con)
        _insert_marked_rows(con)
    return paths


@pytest.fixture(scope="module")
def report_html(tmp_path_factory: pytest.TempPathFactory) -> str:
    paths = WarehousePaths(tmp_path_factory.mktemp("dq") / "wh")
    with catalog.connect(paths) as con:
        ensure_quality_schema(con)
        _insert_runs(con)
        _insert_marked_rows(con)
    out = write_quality_report(paths)
    assert out == paths.root / "reports" / "quality.html"
    return out.read_text(encoding="utf-8")


def _specs(html: str) -> dict[str, dict]:
    blocks = re.findall(r'<script type="application/json" data-chart="([^"]+)">(.*?)</script>', html, re.S)
    return {chart_id: json.loads(text) for chart_id, text in blocks}


def _card(html: str, label: str) -> str:
    match = re.search(rf'<div class="label">{label}</div><div class="value">([^<]*)</div>', html)
    assert match, f"no summary card {label!r}"
    return match.group(1)


# --- collect_quality: the numbers, pinned ---------------------------------------------------------

def test_summary_counts_current_runs_only(warehouse):
    with catalog.connect(warehouse, read_only=True) as con:
        data = collect_quality(con)
    s = data.summary
    assert (s["validation_runs"], s["batches"], s["batches_passed"]) == (3, 2, 1)
    assert (s["rows_received"], s["rows_accepted"], s["rows_quarantined"], s["rows_flagged"], s["rows_collapsed"]) == (150, 146, 4, 3, 1)
    assert (s["expectations"], s["expectations_passed"]) == (14, 7)
    assert s["batch_pass_rate"] == 0.5 and s["expectation_pass_rate"] == 0.5
    assert (s["quarantine_total"], s["flags_total"]) == (len(QUARANTINE), len(FLAGS))
    assert data.warehouse == warehouse.root.as_posix() and not data.empty


def test_runs_and_pass_rate_over_time(warehouse):
    with catalog.connect(warehouse, read_only=True) as con:
        data = collect_quality(con)
    assert data.runs["validation_id"].to_list() == ["vb1", "va2", "va1"]  # newest first
    assert data.runs["result"].to_list() == ["pass", "fail", "fail"]
    assert data.runs["expectations_failed"].to_list() == [1, 6, 2]
    assert data.runs["suite_sha256"].to_list() == [SHA[:12]] * 3
    rate = data.pass_rate
    assert rate["validation_id"].to_list() == ["va1", "va2", "vb1"]  # oldest first
    assert rate["expectation_pass_rate"].to_list() == pytest.approx([5 / 7, 1 / 7, 6 / 7], rel=1e-12)
    assert rate["row_accept_rate"].to_list() == pytest.approx([0.95, 0.96, 1.0], rel=1e-12)


def test_expectations_sum_unexpected_over_current_runs(warehouse):
    with catalog.connect(warehouse, read_only=True) as con:
        exp = collect_quality(con).expectations
    by_name = {r["expectation"]: r for r in exp.iter_rows(named=True)}
    assert exp["expectation"].to_list()[:2] == ["return_outlier", "high_ge_max_open_close"]  # most unexpected, then most runs failed
    assert by_name["high_ge_max_open_close"]["unexpected_count"] == 2  # va1's 2 are superseded
    assert by_name["close_not_null"]["unexpected_count"] == 1
    assert (by_name["return_outlier"]["runs_failed"], by_name["return_outlier"]["unexpected_count"]) == (2, 2)
    assert by_name["return_outlier"]["unexpected_percent"] == pytest.approx(100 * 2 / 150, abs=1e-4)
    assert by_name["ts_in_range"]["result"] == "pass" and by_name["ts_in_range"]["sample_values"] is None
    assert by_name["close_not_null"]["result"] == "fail" and by_name["close_not_null"]["runs"] == 2


def test_worst_symbols_and_reasons(warehouse):
    with catalog.connect(warehouse, read_only=True) as con:
        data = collect_quality(con)
    worst = data.worst_symbols.select("symbol", "quarantined", "flagged", "total").rows()
    assert worst == [("SYN00001", 2, 2, 4), ("SYN00002", 2, 0, 2), ("SYN00003", 0, 1, 1)]
    assert data.worst_symbols["reasons"][0] == (
        "high_ge_max_open_close (2), return_outlier (2), low_le_min_open_close (1)")
    reasons = {(r["kind"], r["reason"]): r["rows"] for r in data.reasons.iter_rows(named=True)}
    assert reasons == {
        ("quarantined", "high_ge_max_open_close"): 2, ("quarantined", "low_le_min_open_close"): 1,
        ("quarantined", "close_not_null"): 1, ("quarantined", "unique_key"): 1,
        ("flagged", "return_outlier"): 2, ("flagged", "volume_outlier"): 1,
    }


def test_ingest_filter_scopes_every_section(warehouse):
    with catalog.connect(warehouse, read_only=True) as con:
        data = collect_quality(con, ingest_id="ing-B")
        with pytest.raises(InputError, match="`--ingest-id`.*'nope'"):
            collect_quality(con, ingest_id="nope")
    assert data.runs["validation_id"].to_list() == ["vb1"]
    assert (data.summary["batches"], data.summary["rows_quarantined"], data.summary["flags_total"]) == (1, 0, 1)
    assert data.quarantine.is_empty() and data.flags["symbol"].to_list() == ["SYN00001"]


def test_quarantined_rows_newest_first_filtered_and_capped(warehouse):
    with catalog.connect(warehouse, read_only=True) as con:
        every = quarantined_rows(con, limit=None)
        one = quarantined_rows(con, symbol="SYN00001")
        capped = quarantined_rows(con, limit=2)
    assert every["row_nr"].to_list() == [13, 12, 7, 3]
    assert one["row_nr"].to_list() == [7, 3]
    assert one["reasons"].to_list() == [["high_ge_max_open_close", "low_le_min_open_close"], ["high_ge_max_open_close"]]
    assert capped.height == 2


# --- the HTML page ------------------------------------------------------------------------------

def test_report_inlines_the_vega_bundle_once_and_fetches_nothing(report_html):
    assert report_html.startswith("<!DOCTYPE html>")
    assert report_html.count("window.vegaEmbed=") == 1
    assert report_html.count("vegaEmbed('#'") == 1  # one embed loop for every chart
    assert not re.search(r"<script[^>]*\bsrc=", report_html)
    assert not re.search(r"<link[^>]*https?://", report_html)


def test_report_embeds_each_chart_spec(report_html):
    specs = _specs(report_html)
    assert list(specs) == CHART_IDS
    assert all(f'<div id="{chart_id}"></div>' in report_html for chart_id in CHART_IDS)
    titles = {chart_id: spec["title"] for chart_id, spec in specs.items()}
    assert titles == {"chart-pass-rate": "Pass rate over time", "chart-expectations": "Unexpected values per expectation",
                      "chart-worst-symbols": "Worst symbols", "chart-reasons": "Quarantined and flagged rows by reason"}
    assert all(spec["encoding"]["tooltip"] for spec in specs.values())
    pass_rate = specs["chart-pass-rate"]["data"]["values"]
    assert [v["started"] for v in pass_rate] == ["2024-03-01T10:00:00Z", "2024-03-01T12:00:00Z", "2024-03-02T10:00:00Z"]
    bars = {v["expectation"]: v["unexpected_count"] for v in specs["chart-expectations"]["data"]["values"]}
    assert bars["high_ge_max_open_close"] == 2 and "ts_in_range" not in bars  # passing expectations are left out


def test_report_summary_cards_match_the_data(report_html):
    assert _card(report_html, "Batches") == "2"
    assert _card(report_html, "Batch pass rate") == "50.0%"
    assert _card(report_html, "Rows received") == "150"
    assert _card(report_html, "Rows accepted") == "146"
    assert _card(report_html, "Rows quarantined") == str(len(QUARANTINE))
    assert _card(report_html, "Rows flagged") == str(len(FLAGS))


def test_report_header_and_tables_show_suites_symbols_and_reasons(report_html):
    assert "raw_bars</code> (sha256 <code>" + SHA[:12] in report_html
    for symbol in ("SYN00001", "SYN00002", "SYN00003"):
        assert f"<td>{symbol}</td>" in report_html
    assert "high_ge_max_open_close, low_le_min_open_close" in report_html  # one row's reasons
    assert "high=99.0 &lt; max(open, close)=101.2" in report_html  # detail, escaped
    assert '<span class="badge fail">fail</span>' in report_html and '<span class="badge pass">pass</span>' in report_html
    assert "All 4 quarantined rows." in report_html


def test_empty_warehouse_says_no_validation_runs_yet(paths, tmp_path):
    with catalog.connect(paths):
        pass  # a fresh warehouse: catalog only, no quality tables
    out = write_quality_report(paths, tmp_path / "empty.html")
    html = out.read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>") and html.rstrip().endswith("</html>")
    assert "No validation runs yet." in html
    assert "data-chart=" not in html and "window.vegaEmbed=" not in html
    assert not list(tmp_path.glob(".empty.html.*.tmp"))  # written atomically, no leftovers


def test_empty_quality_tables_report_too(paths):
    with catalog.connect(paths) as con:
        ensure_quality_schema(con)
    with catalog.connect(paths, read_only=True) as con:
        data = collect_quality(con)
    assert data.empty and data.summary["batches"] == 0 and data.summary["batch_pass_rate"] is None
    assert "No validation runs yet." in write_quality_report(paths).read_text(encoding="utf-8")


# --- the CLI ------------------------------------------------------------------------------------

def _cli_app() -> typer.Typer:
    """The ``quality`` sub-app mounted the way ``alphatwin.cli.main`` mounts its sub-apps."""
    root = typer.Typer(cls=_ErrorsAsOneLine, rich_markup_mode=None, pretty_exceptions_enable=False)

    @root.callback()
    def main(ctx: typer.Context, warehouse: str = typer.Option(None, "--warehouse")) -> None:
        ctx.obj = State(warehouse=warehouse)

    root.add_typer(quality_cli.app, name="quality")
    return root


def _cli(wh: WarehousePaths, *args: str):
    return CliRunner().invoke(_cli_app(), ["--warehouse", str(wh.root), "quality", *args])


def test_cli_quarantine_csv(warehouse):
    result = _cli(warehouse, "quarantine", "--symbol", "SYN00002", "--format", "csv")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "quarantined_at,ingest_id,symbol,interval,ts,row_nr,reasons,detail,collapsed,validation_id"
    assert [ln.split(",")[2:4] + [ln.split(",")[5]] for ln in lines[1:]] == [["SYN00002", "1d", "13"], ["SYN00002", "1d", "12"]]
    assert "unique_key" in lines[1] and "close_not_null" in lines[2]


def test_cli_quarantine_json_table_and_limit(warehouse):
    js = _cli(warehouse, "quarantine", "--format", "json", "--limit", "3")
    assert js.exit_code == 0, js.output
    rows = json.loads(js.stdout)
    assert [r["row_nr"] for r in rows] == [13, 12, 7] and rows[2]["reasons"] == ["high_ge_max_open_close", "low_le_min_open_close"]
    assert "use --limit 0 for all" in js.stderr
    table = _cli(warehouse, "quarantine")
    assert table.exit_code == 0 and "SYN00001" in table.stdout and "4 row(s)" in table.stdout


def test_cli_report_writes_the_file(warehouse, tmp_path):
    out = tmp_path / "dq.html"
    result = _cli(warehouse, "report", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == str(out) and out.stat().st_size > 100_000
    scoped = _cli(warehouse, "report", "--ingest-id", "ing-B")
    assert scoped.exit_code == 0 and "Data quality: ingest ing-B" in Path(scoped.stdout.strip()).read_text()


def test_cli_bad_input_is_one_line_error(warehouse):
    for args, needle in ((["quarantine", "--ingest-id", "nope"], "`--ingest-id`"),
                         (["quarantine", "--format", "parquet"], "`--format`"),
                         (["report", "--ingest-id", "nope"], "`--ingest-id`")):
        result = _cli(warehouse, *args)
        assert result.exit_code == 1, result.output
        assert result.stderr.strip().splitlines()[-1].startswith("Error: ") and needle in result.stderr
        assert "Traceback" not in result.output


def test_cli_help_has_examples_and_imports_nothing_heavy():
    for command in ("report", "quarantine"):
        result = CliRunner().invoke(_cli_app(), ["quality", command, "--help"])
        assert result.exit_code == 0 and "Example: alphatwin quality " + command in result.stdout
    code = ("import sys, alphatwin.cli.quality; "
            "print(sorted(m for m in ('polars', 'duckdb', 'altair', 'jinja2', 'vl_convert') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
