"""docs/example.ipynb stays true: it is executed end to end (CLI pipeline, then the Python API)
and what it shows is checked against the warehouse it built."""

from __future__ import annotations

import ast
import json
import sys
from pathlib import Path
from typing import Any

import duckdb
import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).parents[1] / "docs" / "example.ipynb"

# appended to a copy of the notebook and run last, in the same kernel: what the cells left behind
_PROBE = """\
import json as _json, sys as _sys
print(_json.dumps({"executable": _sys.executable, "warehouse": WH, "run_id": run_id, "cli": result,
                   "crosscheck": crosscheck, "equity_bars": run.equity.height, "report": report}))
"""


@pytest.fixture(scope="module")
def executed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The notebook executed once in a python3 kernel, with its warehouse in a temporary directory."""
    root = tmp_path_factory.mktemp("notebook")
    warehouse = root / "warehouse"
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(_PROBE, id="test-probe"))
    client = NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(root)}})
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ALPHATWIN_NOTEBOOK_WAREHOUSE", str(warehouse))
        client.execute()  # raises CellExecutionError on the first failing cell
    cells = {cell.id: cell for cell in nb.cells}
    probe = json.loads(_stream(cells.pop("test-probe"), "stdout"))
    return {"nb": nb, "cells": cells, "probe": probe, "warehouse": warehouse}


def _stream(cell: Any, name: str) -> str:
    return "".join(o.text for o in cell.outputs if o.output_type == "stream" and o.name == name)


def _result(cell: Any) -> dict[str, Any]:
    """The mime bundle of the cell's execute_result (the value of its last expression)."""
    results = [o for o in cell.outputs if o.output_type == "execute_result"]
    assert len(results) == 1, f"cell {cell.id} shows {len(results)} results"
    return results[0].data


def _vegalite_spec(bundle: dict[str, Any]) -> dict[str, Any]:
    """The Vega-Lite spec of an Altair output: the vegalite mime type (the `mimetype` renderer), or
    the spec embedded in the default HTML renderer's script, `(function(spec, embedOpt){...})(SPEC, {...})`
    (Altair 6 shows charts as text/html that loads Vega from its CDN)."""
    for mime, data in bundle.items():
        if mime.startswith("application/vnd.vegalite."):
            return data
    html = bundle["text/html"]
    assert "vegaEmbed" in html, "the chart cell shows no Vega-Lite chart"
    spec, _ = json.JSONDecoder().raw_decode(html, html.rindex("})(") + 3)
    return spec


def _run_metrics(warehouse: Path, run_id: str) -> dict[str, float | None]:
    with duckdb.connect(str(warehouse / "alphatwin.duckdb"), read_only=True) as con:
        return dict(con.execute("SELECT metric, value FROM backtest.metrics WHERE run_id = ?", [run_id]).fetchall())


def _count(warehouse: Path, table: str, run_id: str) -> int:
    with duckdb.connect(str(warehouse / "alphatwin.duckdb"), read_only=True) as con:
        return con.execute(f"SELECT count(*) FROM backtest.{table} WHERE run_id = ?", [run_id]).fetchone()[0]


def test_committed_notebook_has_no_outputs():
    """Outputs and execution counts stay out of git, so diffs show only source changes."""
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata.kernelspec.name == "python3"
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code, "the example notebook has no code cells"
    dirty = [c.id for c in code if c.outputs or c.execution_count is not None]
    assert not dirty, f"clear the outputs of docs/example.ipynb (cells {dirty}): " \
                      "jupyter nbconvert --clear-output --inplace docs/example.ipynb"


def test_every_cell_ran_without_error(executed):
    code = [c for c in executed["nb"].cells if c.cell_type == "code"]
    assert all(c.execution_count is not None for c in code)
    errors = [(c.id, o.get("ename")) for c in code for o in c.outputs if o.output_type == "error"]
    assert not errors
    assert not any("Traceback" in _stream(c, "stderr") for c in code)


def test_kernel_runs_this_interpreter(executed):
    """The python3 kernel (and so the CLI it calls with sys.executable) is the venv's Python."""
    assert Path(executed["probe"]["executable"]).resolve() == Path(sys.executable).resolve()


def test_pipeline_built_the_warehouse_the_test_chose(executed):
    probe, warehouse = executed["probe"], executed["warehouse"]
    assert Path(probe["warehouse"]) == warehouse
    assert (warehouse / "alphatwin.duckdb").is_file()
    assert probe["run_id"] == probe["cli"]["run_id"]
    assert probe["cli"]["params"] == {"fast": 50, "slow": 200}
    assert probe["cli"]["symbols"] == ["^GSPC"]


def test_headline_metrics_shown_equal_the_warehouse(executed):
    shown = ast.literal_eval(_result(executed["cells"]["headline-metrics"])["text/plain"])
    stored = _run_metrics(executed["warehouse"], executed["probe"]["run_id"])
    assert list(shown) == ["total_return", "cagr", "sharpe", "sortino", "max_drawdown", "n_trades"]
    assert shown == {name: stored[name] for name in shown}  # exact: repr round-trips a float
    assert shown == {name: executed["probe"]["cli"][name] for name in shown}  # what the CLI printed
    assert shown["n_trades"] == _count(executed["warehouse"], "trades", executed["probe"]["run_id"]) > 0


def test_chart_shows_every_bar_of_the_equity_curve(executed):
    spec = _vegalite_spec(_result(executed["cells"]["equity-chart"]))
    data = spec["data"]
    rows = data["values"] if "values" in data else spec["datasets"][data["name"]]
    n_equity = _count(executed["warehouse"], "equity", executed["probe"]["run_id"])
    assert len(rows) == n_equity == executed["probe"]["equity_bars"] > 0
    assert set(rows[0]) == {"ts", "equity", "drawdown"}
    assert rows[0]["equity"] == pytest.approx(100_000)
    assert [chart["mark"]["type"] for chart in spec["vconcat"]] == ["line", "area"]


def test_recomputed_signal_lines_up_with_the_trades(executed):
    """Every SMA 50/200 cross recomputed with Polars is one trade fill, at the next bar's open."""
    check = executed["probe"]["crosscheck"]
    n_trades = _count(executed["warehouse"], "trades", executed["probe"]["run_id"])
    assert check["all_match"] is True and check["filled_at_next_open"] is True
    # 10 round trips, all closed: 20 crosses, 20 fills
    assert check["crosses"] == check["trade_fills"] == check["matched"] == 2 * n_trades == 20
    shown = _stream(executed["cells"]["signal-cross-check"], "stdout")
    assert ast.literal_eval(shown) == check


def test_report_cell_writes_the_report_and_shows_the_monthly_heatmap(executed):
    report = executed["probe"]["report"]
    path = Path(report["report"])
    assert report["run_id"] == executed["probe"]["run_id"] and path.parent == executed["warehouse"] / "reports"
    assert path.read_text().startswith("<!DOCTYPE html>") and executed["probe"]["run_id"] in path.read_text()
    assert sorted(Path(c).name for c in report["charts"]) == sorted(
        f"{n}.svg" for n in ("equity", "drawdown", "exposure", "price", "monthly_returns", "rolling_sharpe",
                             "trade_pnl", "holding_periods"))
    assert all(Path(c).read_text().startswith("<svg") for c in report["charts"])
    spec = _vegalite_spec(_result(executed["cells"]["report"]))
    rows = [r for d in spec["datasets"].values() for r in d]
    years = {r["year"] for r in rows}
    assert len(years) == 20 and {r["period"] for r in rows} >= {"Jan", "Dec", "Year"}
