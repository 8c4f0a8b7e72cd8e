"""MkDocs hook: fetch the site's pinned Mermaid if missing; build a small example warehouse and
add its reports to the site.

The reports are generated at every docs build from the real pipeline (the arch sample plus a
synthetic universe with injected defects; the models; ``sma_cross`` 50/200 on ^GSPC with the
demo's costs and stop, and its (fast, slow) sweep), so the pages they are linked from can never
show a stale or hand-made example: ``examples/quality-report.html``,
``examples/backtest-report.html`` and ``examples/sweep-report.html``.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files


def on_config(config: Any) -> Any:
    """The site serves its own Mermaid (Material would load it from a CDN): fetch the pinned,
    checksummed build from the npm registry once (``docs/fetch_mermaid.sh``) before the docs
    files are collected."""
    import subprocess

    target = Path(config["docs_dir"]) / "assets" / "javascripts" / "mermaid.min.js"
    if not target.is_file():
        subprocess.run(["bash", str(Path(config["docs_dir"]) / "fetch_mermaid.sh"), str(target)], check=True)
    return config


def on_files(files: Files, config: Any) -> Files:
    from alphatwin.lake.ingest import ingest
    from alphatwin.paths import WarehousePaths
    from alphatwin.quality.gate import QualityGate
    from alphatwin.reports.backtest import write_backtest_report
    from alphatwin.reports.quality import write_quality_report
    from alphatwin.sources.base import FetchRequest
    from alphatwin.sources.sample import sample_source
    from alphatwin.sources.synthetic import SyntheticSource

    defects = {"gap": 0.002, "duplicate": 0.002, "broken_ohlc": 0.002, "spike": 0.001, "zero_volume_halt": 0.001}
    with tempfile.TemporaryDirectory(prefix="alphatwin-docs-") as tmp:
        paths = WarehousePaths(Path(tmp) / "wh")
        request = FetchRequest()
        for source in (sample_source(), SyntheticSource(n_symbols=8, n_bars=1500, seed=3, defects=defects)):
            ingest(source, request, paths, gate=QualityGate(paths, request), command="docs example")
        report = write_quality_report(paths, Path(tmp) / "quality.html")
        pages = {"examples/quality-report.html": report.read_bytes()}
        for name, run_id in _backtests(paths).items():
            out = write_backtest_report(paths, run_id, Path(tmp) / f"{name}.html")
            pages[f"examples/{name}.html"] = out.read_bytes()
    for uri, content in pages.items():
        files.append(File.generated(config, uri, content=content))
    return files


def _backtests(paths: Any) -> dict[str, str]:
    """Build the models, then run the demo's backtest and sweep; their run ids by report name."""
    from alphatwin.backtest.params import Costs, SimParams, Stops
    from alphatwin.backtest.run import RunSpec, run_backtest, run_sweep
    from alphatwin.lake import catalog
    from alphatwin.models.build import build

    build(paths, command="docs example")
    sim = SimParams(costs=Costs(fees_bps=10, slippage_bps=5), stops=Stops(trailing_stop=0.10))
    with catalog.connect(paths) as con:
        bt = run_backtest(con, RunSpec("sma_cross", ("^GSPC",), {"fast": 50, "slow": 200}, sim=sim),
                          command="docs example")
        sw = run_sweep(con, RunSpec("sma_cross", ("^GSPC",), sim=SimParams(costs=Costs(fees_bps=10))),
                       {"fast": list(range(2, 101)), "slow": list(range(3, 201))}, command="docs example")
    return {"backtest-report": bt.run_id, "sweep-report": sw.run_id}
