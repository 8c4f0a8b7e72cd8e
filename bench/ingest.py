"""Benchmark: generate and ingest N symbols x M daily bars (default 5,000 x 5,000 = 25M rows).

Prints rows/s and peak RSS of the end-to-end ingest (synthetic generation + staging zstd Parquet
+ publish + catalog commit), and the ratio against a reference measured in the same run: plain
Polars writing the same rows as hive-partitioned Parquet from memory (generation not timed).
Each part runs in its own process so peak RSS is the part's own.

    .venv/bin/python bench/ingest.py                 # 25M rows
    .venv/bin/python bench/ingest.py --symbols 500   # 2.5M rows, quick look
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def part_ingest(root: Path, symbols: int, bars: int) -> dict[str, float]:
    from alphatwin.lake.ingest import ingest
    from alphatwin.paths import WarehousePaths
    from alphatwin.sources.base import FetchRequest
    from alphatwin.sources.synthetic import SyntheticSource

    source = SyntheticSource(n_symbols=symbols, n_bars=bars, seed=1)
    t0 = time.perf_counter()
    result = ingest(source, FetchRequest(), WarehousePaths(root))
    wall = time.perf_counter() - t0
    return {"rows": result.rows, "files": result.files, "wall_s": wall, "peak_rss_mb": _peak_mb()}


def part_ingest_frames(root: Path, symbols: int, bars: int) -> dict[str, float]:
    """The lake's own throughput: ingest frames generated beforehand (generation not timed)."""
    from alphatwin.lake.ingest import ingest
    from alphatwin.paths import WarehousePaths
    from alphatwin.sources.base import FetchRequest
    from alphatwin.sources.frame import FrameSource
    from alphatwin.sources.synthetic import SyntheticSource

    frames = list(SyntheticSource(n_symbols=symbols, n_bars=bars, seed=1).fetch(FetchRequest()))
    t0 = time.perf_counter()
    result = ingest(FrameSource(frames, name="synthetic"), FetchRequest(), WarehousePaths(root))
    wall = time.perf_counter() - t0
    return {"rows": result.rows, "files": result.files, "wall_s": wall, "peak_rss_mb": _peak_mb()}


def part_generate(symbols: int, bars: int) -> dict[str, float]:
    from alphatwin.sources.base import FetchRequest
    from alphatwin.sources.synthetic import SyntheticSource

    source = SyntheticSource(n_symbols=symbols, n_bars=bars, seed=1)
    t0 = time.perf_counter()
    rows = sum(f.height for f in source.fetch(FetchRequest()))
    return {"rows": rows, "wall_s": time.perf_counter() - t0, "peak_rss_mb": _peak_mb()}


def part_reference(root: Path, symbols: int, bars: int) -> dict[str, float]:
    import polars as pl

    from alphatwin.sources.base import FetchRequest
    from alphatwin.sources.synthetic import SyntheticSource

    source = SyntheticSource(n_symbols=symbols, n_bars=bars, seed=1)
    frame = pl.concat(list(source.fetch(FetchRequest()))).with_columns(pl.col("ts").dt.year().alias("year"))
    t0 = time.perf_counter()
    frame.write_parquet(root, partition_by=["interval", "year"], compression="zstd")
    wall = time.perf_counter() - t0
    return {"rows": frame.height, "wall_s": wall, "peak_rss_mb": _peak_mb()}


def _child(part: str, symbols: int, bars: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="alphatwin-bench-") as tmp:
        out = subprocess.run(
            [sys.executable, __file__, "--part", part, "--symbols", str(symbols), "--bars", str(bars),
             "--root", str(Path(tmp) / "wh")],
            capture_output=True, text=True, check=True,
        )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--symbols", type=int, default=5000)
    ap.add_argument("--bars", type=int, default=5000)
    ap.add_argument("--part", choices=["ingest", "ingest_frames", "generate", "reference"])
    ap.add_argument("--root", type=Path)
    args = ap.parse_args()
    if args.part:
        fn = {"ingest": lambda: part_ingest(args.root, args.symbols, args.bars),
              "ingest_frames": lambda: part_ingest_frames(args.root, args.symbols, args.bars),
              "generate": lambda: part_generate(args.symbols, args.bars),
              "reference": lambda: part_reference(args.root, args.symbols, args.bars)}[args.part]
        print(json.dumps(fn()))
        return
    n = args.symbols * args.bars
    print(f"bench/ingest.py: {args.symbols:,} symbols x {args.bars:,} daily bars = {n:,} rows", flush=True)
    results = {p: _child(p, args.symbols, args.bars) for p in ("generate", "reference", "ingest_frames", "ingest")}
    for name, r in results.items():
        print(f"  {name:<10} {r['rows']:>12,.0f} rows  {r['wall_s']:7.2f} s  {r['rows'] / r['wall_s']:>12,.0f} rows/s"
              f"  peak RSS {r['peak_rss_mb']:8,.0f} MiB")
    rate = {k: r["rows"] / r["wall_s"] for k, r in results.items()}
    print(f"  lake ingest (pre-generated frames) / plain Polars partitioned write: "
          f"{rate['ingest_frames'] / rate['reference']:.2f}x")
    print(f"  end-to-end ingest (generation included) / plain Polars partitioned write: "
          f"{rate['ingest'] / rate['reference']:.2f}x")
    print(f"  end to end: {rate['ingest'] / 1e6:.2f}M rows/s, peak RSS {results['ingest']['peak_rss_mb']:,.0f} MiB "
          f"(target: >= 4M rows/s, < 4,096 MiB)")
    shutil.rmtree(Path(tempfile.gettempdir()) / "alphatwin-bench", ignore_errors=True)


if __name__ == "__main__":
    main()
