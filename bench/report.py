"""Benchmark: the backtest report (``alphatwin report``): collecting a run, rendering the page,
exporting the charts.

Builds a warehouse from the embedded sample (^GSPC, ^IXIC 1999-2018) and a synthetic universe
(default 12 symbols x 2,520 bars), stores ``sma_cross`` 50/200 on ^GSPC and ``rsi_reversion`` on
the universe, then, in the same process, times against one reference:

- ``read``: reading every ``backtest.*`` row of the run into Polars (plain SQL, no derived
  series); the report's data collection, the page and each export format are printed as
  multiples of it.

Best of ``--repeat`` runs after a warm-up call.

    .venv/bin/python bench/report.py
    .venv/bin/python bench/report.py --symbols 30 --repeat 5
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path


def best(fn, repeat: int) -> float:
    """Best of ``repeat`` timed calls after one warm-up call."""
    from backtest import best as timed  # bench/backtest.py

    fn()
    return timed(fn, repeat)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--symbols", type=int, default=12)
    ap.add_argument("--bars", type=int, default=2520)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    from alphatwin.backtest.params import Costs, SimParams
    from alphatwin.backtest.run import RunSpec, run_backtest
    from alphatwin.lake import catalog
    from alphatwin.lake.ingest import ingest
    from alphatwin.models.build import build
    from alphatwin.paths import WarehousePaths
    from alphatwin.quality.gate import QualityGate
    from alphatwin.reports._backtest_page import render_page
    from alphatwin.reports.backtest import collect_run, export_charts
    from alphatwin.sources.base import FetchRequest
    from alphatwin.sources.sample import sample_source
    from alphatwin.sources.synthetic import SyntheticSource

    tmp = Path(tempfile.mkdtemp(prefix="alphatwin-bench-report-"))
    paths = WarehousePaths(tmp / "wh")
    request = FetchRequest()
    for source in (sample_source(), SyntheticSource(n_symbols=args.symbols, n_bars=args.bars, seed=7)):
        ingest(source, request, paths, gate=QualityGate(paths, request), command="bench")
    build(paths, command="bench")
    synth = tuple(f"SYN{i:05d}" for i in range(1, args.symbols + 1))
    sim = SimParams(costs=Costs(fees_bps=10))
    with catalog.connect(paths) as con:
        runs = {"sma_cross ^GSPC": run_backtest(con, RunSpec("sma_cross", ("^GSPC",), {"fast": 50, "slow": 200},
                                                             sim=sim)).run_id,
                f"rsi_reversion x{args.symbols}": run_backtest(con, RunSpec("rsi_reversion", synth, direction="both",
                                                                           sim=sim)).run_id}
    print(f"{'run':<22}{'read':>9}{'collect':>16}{'page':>16}{'png':>16}{'svg':>16}{'pdf':>16}{'page MB':>9}")
    with catalog.connect(paths, read_only=True) as con:
        for label, rid in runs.items():
            def read(rid=rid):
                for t in ("runs", "metrics", "equity", "trades", "fills", "positions"):
                    con.sql(f"SELECT * FROM backtest.{t} WHERE run_id = ?", params=[rid]).pl()

            ref = best(read, args.repeat)
            collect = best(lambda rid=rid: collect_run(con, rid), args.repeat)
            data = collect_run(con, rid)
            page = best(lambda: render_page(data), args.repeat)
            size = len(render_page(data).encode()) / 2**20
            fmt = {f: best(lambda f=f: export_charts(data, tmp / "charts", (f,)), 1) for f in ("png", "svg", "pdf")}
            cells = [f"{ref * 1e3:7.1f}ms"] + [f"{v:6.2f}s ({v / ref:5.0f}x)" for v in (collect, page, *fmt.values())]
            print(f"{label:<22}" + "".join(f"{c:>16}" if i else f"{c:>9}" for i, c in enumerate(cells)) + f"{size:9.1f}")


if __name__ == "__main__":
    main()
