"""Benchmark: build clean.bars and features.bars on N symbols x M daily bars (default 5,000 x 5,000).

Figures, each with the ratio against its target and a reference measured in the same run:

- full build of clean.bars + features.bars (wall, peak RSS), target 60 s and 8 GB; reference:
  DuckDB copying raw.bars into a table (the I/O floor of reading the lake and writing a table);
- the indicator stage (the numba kernels over every row) against TA-Lib's per-symbol loop of
  SMA, EMA, RSI, MACD, BBANDS, ATR, STOCH and OBV on the same arrays, target within 3x;
- an incremental build after one new bar for every symbol, target 3 s; reference: the full build;
- one symbol's full feature history read back, target 20 ms; reference: the same symbol from raw.bars.

Ingest runs without validation (bench/validate.py measures the gate). The build runs in its own
process so its peak RSS is its own.

    .venv/bin/python bench/build.py                  # 25M rows (about 3 minutes)
    .venv/bin/python bench/build.py --symbols 500    # 2.5M rows, quick look
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _source(symbols: int, bars: int):
    from alphatwin.sources.synthetic import SyntheticSource

    return SyntheticSource(n_symbols=symbols, n_bars=bars, seed=1)


def part_ingest(root: str, symbols: int, bars: int) -> dict[str, float]:
    from alphatwin.lake.ingest import ingest
    from alphatwin.paths import WarehousePaths
    from alphatwin.sources.base import FetchRequest

    t0 = time.perf_counter()
    result = ingest(_source(symbols, bars), FetchRequest(), WarehousePaths(Path(root)))
    return {"rows": result.rows, "wall_s": time.perf_counter() - t0}


def part_append(root: str, symbols: int, bars: int) -> dict[str, float]:
    """Ingest bar number ``bars + 1`` of every symbol (one new bar each)."""
    from alphatwin.lake.ingest import ingest
    from alphatwin.paths import WarehousePaths
    from alphatwin.sources.base import FetchRequest

    source = _source(symbols, bars + 1)
    last = source.timestamps("1d")[-1]
    result = ingest(source, FetchRequest(start=last.replace(tzinfo=None)), WarehousePaths(Path(root)))
    return {"rows": result.rows}


def part_build(root: str, full: bool) -> dict[str, float]:
    from alphatwin.models.build import build
    from alphatwin.paths import WarehousePaths

    t0 = time.perf_counter()
    result = build(WarehousePaths(Path(root)), sql_root=Path(__file__).parent.parent / "sql", full_refresh=full)
    wall = time.perf_counter() - t0
    out = {"wall_s": wall, "peak_rss_mb": _peak_mb()}
    for run in result.runs:
        out[f"{run.model}:{run.mode}"] = run.wall_s
        out[f"{run.model}:rows"] = run.rows
    return out


def part_copy_reference(root: str) -> dict[str, float]:
    from alphatwin.lake import catalog
    from alphatwin.paths import WarehousePaths

    with catalog.connect(WarehousePaths(Path(root))) as con:
        t0 = time.perf_counter()
        con.execute("CREATE OR REPLACE TABLE main.bench_copy AS SELECT * FROM raw.bars ORDER BY symbol, ts")
        wall = time.perf_counter() - t0
        con.execute("DROP TABLE main.bench_copy")
    return {"wall_s": wall}


def part_indicators(root: str) -> dict[str, float]:
    """Our kernels vs TA-Lib's per-symbol loop on the arrays of clean.bars (both timed here)."""
    import numpy as np
    import talib

    from alphatwin.lake import catalog
    from alphatwin.paths import WarehousePaths
    from alphatwin.transforms import indicators

    with catalog.connect(WarehousePaths(Path(root)), read_only=True) as con:
        frame = con.sql("SELECT symbol, open, high, low, close, volume, price_factor, volume_factor "
                        "FROM clean.bars ORDER BY symbol, ts").pl()
    first = frame.select(frame["symbol"] != frame["symbol"].shift(1)).to_series().fill_null(True).to_numpy()
    starts = np.append(np.flatnonzero(first), frame.height).astype(np.int64)
    cols = {c: np.ascontiguousarray(frame[c].to_numpy(), dtype=np.float64) for c in ("open", "high", "low", "close", "volume")}
    cols["pf"] = np.ascontiguousarray(frame["price_factor"].to_numpy(), dtype=np.float64)
    cols["vf"] = np.ascontiguousarray(frame["volume_factor"].to_numpy(), dtype=np.float64)
    del frame
    indicators.compute({k: v[: starts[1]] for k, v in cols.items()}, starts[:2].copy())  # compile / load the cache
    runs = []
    for _ in range(2):  # the first run also pays the first touch of the ~5 GB output block
        t0 = time.perf_counter()
        out, _ = indicators.compute(cols, starts)
        runs.append(time.perf_counter() - t0)
        del out
    t0 = time.perf_counter()
    h, lo, c, v = cols["high"], cols["low"], cols["close"], cols["volume"]
    for s in range(starts.size - 1):
        a, b = starts[s], starts[s + 1]
        talib.SMA(c[a:b], 20)
        talib.EMA(c[a:b], 20)
        talib.RSI(c[a:b], 14)
        talib.MACD(c[a:b], 12, 26, 9)
        talib.BBANDS(c[a:b], 20, 2.0, 2.0, 0)
        talib.ATR(h[a:b], lo[a:b], c[a:b], 14)
        talib.STOCH(h[a:b], lo[a:b], c[a:b], 14, 3, 0, 3, 0)
        talib.OBV(c[a:b], v[a:b])
    ref = time.perf_counter() - t0
    return {"ours_s": min(runs), "first_s": runs[0], "talib_s": ref, "rows": int(starts[-1]),
            "columns": len(indicators.column_names(indicators.DEFAULT_SPECS))}


def part_read(root: str, symbols: int) -> dict[str, float]:
    from alphatwin.lake import catalog
    from alphatwin.paths import WarehousePaths
    symbol = f"SYN{max(1, symbols // 2):05d}"
    timings: dict[str, list[float]] = {"features": [], "raw": []}
    with catalog.connect(WarehousePaths(Path(root)), read_only=True) as con:
        for _ in range(3):  # warm the caches
            con.execute("SELECT * FROM features.bars WHERE symbol = ?", [symbol]).fetchall()
        for _ in range(21):
            t0 = time.perf_counter()
            rows = con.execute("SELECT * FROM features.bars WHERE symbol = ? ORDER BY ts", [symbol]).to_arrow_table()
            timings["features"].append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            con.execute("SELECT * FROM raw.bars WHERE symbol = ? ORDER BY ts", [symbol]).to_arrow_table()
            timings["raw"].append(time.perf_counter() - t0)
    return {"rows": rows.num_rows, "columns": rows.num_columns,
            "features_ms": statistics.median(timings["features"]) * 1000,
            "raw_ms": statistics.median(timings["raw"]) * 1000}


def _run(part: str, *args: object) -> dict[str, float]:
    out = subprocess.run([sys.executable, __file__, "--part", part, *map(str, args)], capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"part {part} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--symbols", type=int, default=5000)
    parser.add_argument("--bars", type=int, default=5000)
    parser.add_argument("--part", help=argparse.SUPPRESS)
    parser.add_argument("rest", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.part:
        fn = globals()[f"part_{args.part}"]
        rest = [int(a) if a.isdigit() else (a == "True" if a in ("True", "False") else a) for a in args.rest]
        print(json.dumps(fn(*rest)))
        return
    root = Path(tempfile.mkdtemp(prefix="alphatwin-bench-build-"))
    try:
        rows = args.symbols * args.bars
        print(f"universe: {args.symbols:,} symbols x {args.bars:,} daily bars = {rows:,} rows ({root})")
        ing = _run("ingest", root, args.symbols, args.bars)
        print(f"ingest (setup, not a target): {ing['wall_s']:.1f} s")
        full = _run("build", root, True)
        copy = _run("copy_reference", root)
        b = full["wall_s"]
        print(f"full build clean.bars + features.bars: {b:.1f} s = {rows / b / 1e6:.2f}M rows/s, peak RSS "
              f"{full['peak_rss_mb']:,.0f} MiB  (clean {full.get('clean.bars:full', 0):.1f} s, features "
              f"{full.get('features.bars:full', 0):.1f} s)")
        print(f"  target 60 s: {b / 60:.2f}x of budget; 8 GB: {full['peak_rss_mb'] / 8192:.2f}x of budget; "
              f"reference DuckDB copy of raw.bars {copy['wall_s']:.1f} s (build = {b / copy['wall_s']:.1f}x)")
        ind = _run("indicators", root)
        print(f"indicator stage ({ind['columns']} columns): {ind['ours_s']:.2f} s (first run {ind['first_s']:.2f} s); "
              f"TA-Lib per-symbol loop (8 indicators): {ind['talib_s']:.2f} s; ratio {ind['ours_s'] / ind['talib_s']:.2f}x "
              "(target <= 3x)")
        _run("append", root, args.symbols, args.bars)
        inc = _run("build", root, False)
        print(f"incremental build after one new bar per symbol: {inc['wall_s']:.2f} s (target 3 s: "
              f"{inc['wall_s'] / 3:.2f}x of budget; {b / inc['wall_s']:.0f}x faster than the full build; "
              f"clean {inc.get('clean.bars:incremental', 0):.2f} s, features {inc.get('features.bars:incremental', 0):.2f} s)")
        read = _run("read", root, args.symbols)
        print(f"one symbol's feature history ({read['rows']:,} rows x {read['columns']} columns): "
              f"{read['features_ms']:.1f} ms median (target 20 ms: {read['features_ms'] / 20:.2f}x); "
              f"reference raw.bars read {read['raw_ms']:.1f} ms")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
