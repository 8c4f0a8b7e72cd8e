"""MkDocs hook: build a small example warehouse and add its data-quality report to the site.

The report is generated at every docs build from the real pipeline (the arch sample plus a
synthetic universe with injected defects), so the page it is linked from can never show a stale
or hand-made example.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files


def on_files(files: Files, config: Any) -> Files:
    from alphatwin.lake.ingest import ingest
    from alphatwin.paths import WarehousePaths
    from alphatwin.quality.gate import QualityGate
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
        content = report.read_bytes()
    files.append(File.generated(config, "examples/quality-report.html", content=content))
    return files
