"""Benchmark: the ``sma_cross`` parameter sweep against vectorbt, side by side in one run.

On the last 2,150 daily bars of the real ^GSPC series (the ``arch`` sample), every pair with
fast in 2..100 and slow in fast+1..200 (14,751 combinations), long-only, fees 0.1% (10 bps),
fills at the close (vectorbt's ``from_signals`` semantics), 100,000 of initial cash:

- ours, first call in a new process (``subprocess``): import and first call timed separately,
  with numba's kernel cache as it is (warm cache) and, with ``--cold``, with
  ``NUMBA_CACHE_DIR`` pointed at a fresh empty directory (everything compiles);
  targets 1 s (warm cache) and 10 s (empty cache);
- ours, warm (best of ``--repeat``), with numba's default threads and with one thread;
- vectorbt: ``MA.run`` over the 199 windows, the entry/exit matrices of the 14,751 pairs
  (``fast MA > slow MA`` / its negation), ``Portfolio.from_signals(fees=0.001)``, total returns
  and trade counts: first call of this process and warm (best of ``--vbt-repeat``);
  target: ours at least 100x vectorbt's warm throughput;
- the check: total returns equal within rtol 1e-9 and trade counts equal. vectorbt's MA rounds
  differently from ours (TA-Lib's running sum): where an exact tie in exact arithmetic makes the
  signals differ, the pair is re-run through vectorbt with our signals and must match then;
- memory: peak RSS growth of one sweep in a fresh process for the 14,751-pair grid and a grid
  about 4x larger (fast 2..200, slow fast+1..400), against the size of the results table.

    .venv/bin/python bench/sweep.py               # about 1-2 minutes (vectorbt takes most)
    .venv/bin/python bench/sweep.py --cold        # also the first call with an empty numba cache
    .venv/bin/python bench/sweep.py --skip-vbt    # ours only
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

N_BARS = 2150
FEES = 0.001
INIT_CASH = 100_000.0
GRID = (range(2, 101), range(3, 201))  # 14,751 pairs
GRID_4X = (range(2, 201), range(3, 401))  # 59,501 pairs


def load_gspc(n_bars: int = N_BARS) -> tuple[np.ndarray, np.ndarray]:
    """(open, close) of the last ``n_bars`` daily bars of ^GSPC (arch's sample file)."""
    import polars as pl

    from alphatwin.sources.sample import sample_files

    path = next(f.path for f in sample_files() if f.symbol == "^GSPC")
    df = pl.read_csv(path).tail(n_bars)
    return df["Open"].to_numpy().astype(np.float64), df["Close"].to_numpy().astype(np.float64)


# The child processes: each loads the bars from a .npy file (untimed), so what they time is
# Python's imports of our modules and the sweep itself.
_FIRST_CALL = """
import json, sys, time
t0 = time.perf_counter()
import numpy as np
from alphatwin.backtest.params import Costs, Market, SimParams
from alphatwin.backtest.sweep import sweep_sma_cross
t1 = time.perf_counter()
open_, close = np.load(sys.argv[1])
market = Market.from_close(close, open=open_)
params = SimParams(fill="close", init_cash={cash!r}, costs=Costs(fees_bps={bps!r}))
t2 = time.perf_counter()
out = sweep_sma_cross(market, close, range(2, 101), range(3, 201), params)
t3 = time.perf_counter()
sweep_sma_cross(market, close, range(2, 101), range(3, 201), params)
t4 = time.perf_counter()
print(json.dumps({{"import_s": t1 - t0, "call_s": t3 - t2, "second_s": t4 - t3, "rows": out.height,
                  "kernel": out["kernel"][0]}}))
"""

_MEMORY = """
import json, sys
import numpy as np
from alphatwin.backtest.params import Costs, Market, SimParams
from alphatwin.backtest.sweep import sweep_sma_cross

def status():
    fields = dict(line.split(":", 1) for line in open("/proc/self/status"))
    return {{k: int(fields[k].split()[0]) * 1024 for k in ("VmHWM", "VmRSS")}}

open_, close = np.load(sys.argv[1])
market = Market.from_close(close, open=open_)
params = SimParams(fill="close", init_cash={cash!r}, costs=Costs(fees_bps={bps!r}))
sweep_sma_cross(market, close, [2, 3], [4, 5], params)  # load the kernels, start numba's threads
fasts, slows = range(2, int(sys.argv[2]) + 1), range(3, int(sys.argv[3]) + 1)
with open("/proc/self/clear_refs", "w") as f:  # reset the peak RSS (VmHWM) to the current RSS
    f.write("5")
before = status()["VmRSS"]
out = sweep_sma_cross(market, close, fasts, slows, params)
after = status()
print(json.dumps({{"rows": out.height, "peak_growth": after["VmHWM"] - before,
                  "kept": after["VmRSS"] - before, "table": out.estimated_size()}}))
"""


def _child(code: str, *args: str, env: dict[str, str] | None = None) -> tuple[dict, float]:
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                         env={**os.environ, **(env or {})})
    wall = time.perf_counter() - t0
    if out.returncode != 0:
        sys.exit(f"child process failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1]), wall


def first_call(data: str, cache_dir: str | None) -> dict:
    """Import + first call of ``sweep_sma_cross`` in a new process (its own wall clock too)."""
    env = {"NUMBA_CACHE_DIR": cache_dir} if cache_dir else None
    res, wall = _child(_FIRST_CALL.format(cash=INIT_CASH, bps=FEES * 1e4), data, env=env)
    res["process_s"] = wall
    return res


def memory(data: str, grid: tuple[range, range]) -> dict:
    res, _ = _child(_MEMORY.format(cash=INIT_CASH, bps=FEES * 1e4), data, str(grid[0][-1]), str(grid[1][-1]))
    return res


def time_ours(open_: np.ndarray, close: np.ndarray, repeat: int, threads: int | None = None):
    import numba

    from alphatwin.backtest.params import Costs, Market, SimParams
    from alphatwin.backtest.sweep import sweep_sma_cross

    market = Market.from_close(close, open=open_)
    params = SimParams(fill="close", init_cash=INIT_CASH, costs=Costs(fees_bps=FEES * 1e4))
    default = numba.get_num_threads()
    numba.set_num_threads(threads or default)
    try:
        out = sweep_sma_cross(market, close, *GRID, params)  # warm-up (cache load, first touch)
        best = float("inf")
        for _ in range(repeat):
            t0 = time.perf_counter()
            out = sweep_sma_cross(market, close, *GRID, params)
            best = min(best, time.perf_counter() - t0)
    finally:
        numba.set_num_threads(default)
    return best, out


def _vbt_portfolio(vbt, close: np.ndarray, entries: np.ndarray):
    import pandas as pd

    return vbt.Portfolio.from_signals(pd.Series(close), entries, ~entries, fees=FEES,
                                      init_cash=INIT_CASH, freq="1D")


def run_vbt(vbt, close: np.ndarray, fast: np.ndarray, slow: np.ndarray):
    """vectorbt's whole pipeline: MAs, the pairs' signal matrices, the portfolio, the figures."""
    t0 = time.perf_counter()
    windows = np.unique(np.concatenate([fast, slow]))
    ma = vbt.MA.run(close, window=windows.tolist()).ma.to_numpy()
    t1 = time.perf_counter()
    entries = ma[:, np.searchsorted(windows, fast)] > ma[:, np.searchsorted(windows, slow)]
    t2 = time.perf_counter()
    pf = _vbt_portfolio(vbt, close, entries)
    t3 = time.perf_counter()
    total, count = pf.total_return().to_numpy(), pf.trades.count().to_numpy()
    t4 = time.perf_counter()
    parts = {"ma": t1 - t0, "signals": t2 - t1, "from_signals": t3 - t2, "figures": t4 - t3}
    return total, count, entries, parts


def _rss() -> dict[str, int]:
    fields = dict(line.split(":", 1) for line in open("/proc/self/status"))
    return {k: int(fields[k].split()[0]) * 1024 for k in ("VmHWM", "VmRSS")}


def compare(vbt, close, ours, fast, slow, theirs_total, theirs_count, theirs_entries) -> dict:
    """Total returns and trade counts; the pairs whose signals differ (MA rounding) re-run."""
    from alphatwin.backtest.sweep import pairs
    from alphatwin.signals.nb import sma_rows_nb

    total = ours["total_return"].to_numpy()
    count = ours["n_trades"].to_numpy()
    of, os_ = pairs(*GRID)
    assert np.array_equal(of, fast) and np.array_equal(os_, slow)
    windows = np.unique(np.concatenate([fast, slow]))
    sma = sma_rows_nb(close, windows).T
    our_entries = sma[:, np.searchsorted(windows, fast)] > sma[:, np.searchsorted(windows, slow)]
    differ = np.flatnonzero((our_entries != theirs_entries).any(axis=0))
    del sma, our_entries
    same = np.setdiff1d(np.arange(fast.size), differ)
    out = {
        "n": fast.size,
        "max_abs": float(np.max(np.abs(total[same] - theirs_total[same]))),
        "bad_total": int((~np.isclose(total[same], theirs_total[same], rtol=1e-9, atol=1e-12)).sum()),
        "bad_count": int((count[same] != theirs_count[same]).sum()),
        "signal_differs": [(int(fast[j]), int(slow[j])) for j in differ],
        "rerun_bad": 0,
    }
    if differ.size:
        # vectorbt again on those pairs with our signals: the engines must then agree
        from alphatwin.signals.nb import sma_1d_nb

        entries = np.column_stack([sma_1d_nb(close, int(fast[j])) > sma_1d_nb(close, int(slow[j])) for j in differ])
        pf = _vbt_portfolio(vbt, close, entries)
        t2, c2 = pf.total_return().to_numpy(), pf.trades.count().to_numpy()
        out["rerun_bad"] = int((~np.isclose(total[differ], t2, rtol=1e-9, atol=1e-12)).sum()
                               + (count[differ] != c2).sum())
        out["differ_before"] = [(float(total[j]), float(theirs_total[j])) for j in differ]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5, help="ours: best of this many warm runs (default 5)")
    parser.add_argument("--vbt-repeat", type=int, default=2, help="vectorbt: best of this many warm runs (default 2)")
    parser.add_argument("--cold", action="store_true", help="also a first call with an empty numba cache")
    parser.add_argument("--skip-vbt", action="store_true", help="ours only (no vectorbt)")
    args = parser.parse_args()

    import numba

    from alphatwin.backtest.sweep import pairs

    open_, close = load_gspc()
    fast, slow = pairs(*GRID)
    n = fast.size
    tmp = Path(tempfile.mkdtemp(prefix="alphatwin-bench-sweep-"))
    try:
        data = str(tmp / "gspc.npy")
        np.save(data, np.stack([open_, close]))
        print(f"^GSPC, last {close.size:,} daily bars; {n:,} (fast, slow) pairs, fast 2..100, slow fast+1..200; "
              f"long-only, fees {FEES:.1%}, fills at the close; numba threads: {numba.get_num_threads()}")

        # 1. ours, first call in a new process
        first = first_call(data, None)
        print(f"ours, new process, numba cache as is: import {first['import_s']:.2f} s + first call "
              f"{first['call_s']:.2f} s = {first['import_s'] + first['call_s']:.2f} s (target 1 s); "
              f"process wall {first['process_s']:.2f} s; kernel {first['kernel']}; the second call of that "
              f"process {first['second_s']:.2f} s")
        cold = None
        if args.cold:
            cache = tempfile.mkdtemp(prefix="numba-cache-", dir=tmp)
            cold = first_call(data, cache)
            print(f"ours, new process, empty numba cache: import {cold['import_s']:.2f} s + first call "
                  f"{cold['call_s']:.2f} s = {cold['import_s'] + cold['call_s']:.2f} s (target 10 s); "
                  f"process wall {cold['process_s']:.2f} s")
            again = first_call(data, cache)
            print(f"  the same cache directory once filled: import {again['import_s']:.2f} s + first call "
                  f"{again['call_s']:.2f} s = {again['import_s'] + again['call_s']:.2f} s")

        # 2. ours, warm
        ours_s, ours = time_ours(open_, close, args.repeat)
        ours_1t, _ = time_ours(open_, close, args.repeat, threads=1)
        print(f"ours, warm (best of {args.repeat}): {ours_s * 1e3:.1f} ms = {n / ours_s:,.0f} combos/s; "
              f"1 thread: {ours_1t * 1e3:.1f} ms = {n / ours_1t:,.0f} combos/s")

        # 3. memory
        m1, m4 = memory(data, GRID), memory(data, GRID_4X)
        sma_bytes = lambda g: (g[1][-1] - g[0][0] + 1) * close.size * 8  # noqa: E731
        # per extra pair, the SMA table's own growth (more windows) taken out
        per_combo = ((m4["peak_growth"] - m1["peak_growth"]) - (sma_bytes(GRID_4X) - sma_bytes(GRID))) \
            / (m4["rows"] - m1["rows"])
        print("memory, peak RSS growth of one sweep in a fresh process (results table = polars "
              "estimated_size; SMA table = windows x bars x 8 B):")
        for label, m, g in (("1x", m1, GRID), ("4x", m4, GRID_4X)):
            print(f"  {label} {m['rows']:>7,} pairs: peak +{m['peak_growth'] / 2**20:6.1f} MiB, kept "
                  f"+{m['kept'] / 2**20:5.1f} MiB; results table {m['table'] / 2**20:5.1f} MiB "
                  f"({m['table'] / m['rows']:.0f} B/pair), SMA table {sma_bytes(g) / 2**20:4.1f} MiB")
        print(f"  marginal peak growth: {per_combo:.0f} B per extra pair, SMA table growth excluded "
              f"(results table {m4['table'] / m4['rows']:.0f} B/pair, plus the kernel's output rows and "
              f"the frame's temporaries while it is built; one bars x pairs float64 matrix would be "
              f"{close.size * 8:,} B/pair)")

        # 4. vectorbt
        vbt_first = vbt_s = None
        check = None
        vbt_peak = None
        if not args.skip_vbt:
            t0 = time.perf_counter()
            import vectorbt as vbt
            vbt_import = time.perf_counter() - t0
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
            before = _rss()["VmRSS"]
            t0 = time.perf_counter()
            total, count, entries, _ = run_vbt(vbt, close, fast, slow)
            vbt_first = time.perf_counter() - t0
            vbt_peak = _rss()["VmHWM"] - before
            del entries
            vbt_s = float("inf")
            for _ in range(args.vbt_repeat):
                t0 = time.perf_counter()
                total, count, entries, parts = run_vbt(vbt, close, fast, slow)
                elapsed = time.perf_counter() - t0
                if elapsed < vbt_s:
                    vbt_s, vbt_parts = elapsed, parts
            print(f"vectorbt {vbt.__version__}: import {vbt_import:.1f} s; first call {vbt_first:.1f} s; warm "
                  f"(best of {args.vbt_repeat}) {vbt_s:.1f} s = {n / vbt_s:,.0f} combos/s; peak RSS growth of "
                  f"the first call {vbt_peak / 2**20:,.0f} MiB")
            print("  warm parts: " + ", ".join(f"{k} {v:.2f} s" for k, v in vbt_parts.items())
                  + " (MA.run of the windows; the pairs' boolean matrices in NumPy; from_signals; "
                  "total_return + trades.count)")
            again_s, _ = time_ours(open_, close, args.repeat)  # ours again: the machine is noisy
            print(f"ours, warm, again after vectorbt: {again_s * 1e3:.1f} ms (best of the two sets is used)")
            ours_s = min(ours_s, again_s)
            print(f"ratio, warm throughput ours / vectorbt: {vbt_s / ours_s:,.0f}x (target >= 100x); "
                  f"ours on 1 thread: {vbt_s / ours_1t:,.0f}x")
            check = compare(vbt, close, ours, fast, slow, total, count, entries)
            print(f"check on {check['n']:,} pairs: max |total return difference| {check['max_abs']:.2e}; "
                  f"{check['bad_total']} pairs outside rtol 1e-9, {check['bad_count']} different trade counts")
            if check["signal_differs"]:
                print(f"  pairs whose signals differ (vectorbt's MA rounds an exact tie differently): "
                      f"{check['signal_differs']}, total returns ours/vectorbt {check['differ_before']}; "
                      f"re-run through vectorbt with our signals: {check['rerun_bad']} mismatches")
            ok = check["bad_total"] == check["bad_count"] == check["rerun_bad"] == 0
            print("identical results: " + ("yes" if ok else "NO"))

        # 5. summary
        today = dt.date.today().isoformat()
        print("\nsummary for docs/performance.md:\n")
        print("| figure (14,751 pairs x 2,150 bars, fees 0.1%) | measured | reference in the same run | target |")
        print("|---|---|---|---|")
        if vbt_s:
            print(f"| warm sweep ({today}) | {ours_s * 1e3:.0f} ms, {n / ours_s / 1e6:.2f}M combos/s "
                  f"({n / ours_1t / 1e6:.2f}M on 1 thread) | vectorbt {vbt.__version__}: {vbt_s:.1f} s, "
                  f"{n / vbt_s:,.0f} combos/s (first call {vbt_first:.1f} s) | >= 100x: "
                  f"{vbt_s / ours_s:,.0f}x |")
            same = "identical" if ok else "**differ**"
            print(f"| total returns and trade counts | {same} (max diff {check['max_abs']:.1e}; "
                  f"{len(check['signal_differs'])} pair(s) with an MA rounding tie re-run with our signals) | | "
                  f"rtol 1e-9 |")
        else:
            print(f"| warm sweep ({today}) | {ours_s * 1e3:.0f} ms, {n / ours_s / 1e6:.2f}M combos/s | "
                  f"(vectorbt skipped) | |")
        print(f"| first call, new process, cache as is | import {first['import_s']:.2f} s + call "
              f"{first['call_s']:.2f} s = {first['import_s'] + first['call_s']:.2f} s | | 1 s |")
        if cold:
            print(f"| first call, new process, empty cache | import {cold['import_s']:.2f} s + call "
                  f"{cold['call_s']:.2f} s = {cold['import_s'] + cold['call_s']:.2f} s | | 10 s |")
        print(f"| peak RSS growth of one sweep | +{m1['peak_growth'] / 2**20:.1f} MiB (14,751 pairs), "
              f"+{m4['peak_growth'] / 2**20:.1f} MiB ({m4['rows']:,} pairs): {per_combo:.0f} B per extra pair "
              f"| results table {m4['table'] / m4['rows']:.0f} B/pair"
              + (f"; vectorbt's first call +{vbt_peak / 2**20:,.0f} MiB" if vbt_peak else "")
              + " | only the results table grows |")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
