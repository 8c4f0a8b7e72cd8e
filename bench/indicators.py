"""Benchmark: the default feature set of :mod:`alphatwin.transforms.indicators` vs a TA-Lib loop.

On a synthetic universe (default 5,000 symbols x 5,000 bars = 25M rows) of lognormal random
walks with a few corporate actions per symbol (2:1 and 3:1 splits, 1:10 reverse splits,
quarterly dividends), prints the time of :func:`~alphatwin.transforms.indicators.compute` (all 26
default columns, as-of basis, in parallel over symbols) and of TA-Lib's per-symbol loop of SMA,
EMA, RSI, MACD, BBANDS, ATR, STOCH and OBV on the same bars (back-adjusted beforehand, untimed),
and their ratio. Both are measured in this process, best of ``--repeat`` runs (the first touch
of freshly mapped memory is slow and erratic on a VM); data generation and the kernels'
compilation (a small warm-up call loads the cache) are not timed.

    .venv/bin/python bench/indicators.py                          # 25M rows
    .venv/bin/python bench/indicators.py --symbols 500 --bars 2000  # 1M rows, quick look
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np


def make_universe(symbols: int, bars: int, seed: int = 7) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """As-traded bars, symbol-major, with per-row event factors ``pf`` / ``vf``."""
    rng = np.random.default_rng(seed)
    pf = np.ones((symbols, bars))
    vf = np.ones((symbols, bars))
    rows = np.arange(symbols)
    for ratio, share in ((2.0, 0.5), (3.0, 0.2), (0.1, 0.1)):  # splits: new shares per old share
        who = rows[rng.random(symbols) < share]
        at = rng.integers(1, bars, who.size)
        pf[who, at] *= 1.0 / ratio
        vf[who, at] *= ratio
    payers = rows[rng.random(symbols) < 0.5]
    for q in range(int(rng.integers(1, 63)), bars, 63):  # quarterly ex-dates
        pf[payers, q] *= 1.0 - rng.uniform(0.002, 0.01, payers.size)
    log_close = np.log(rng.uniform(10.0, 300.0, (symbols, 1))) + np.cumsum(
        rng.normal(0.0, 0.02, (symbols, bars)) + np.log(pf), axis=1)
    close = np.exp(log_close)
    del log_close
    high = close * np.exp(np.abs(rng.normal(0.0, 0.01, (symbols, bars))))
    low = close * np.exp(-np.abs(rng.normal(0.0, 0.01, (symbols, bars))))
    volume = np.round(rng.lognormal(np.log(1e5), 0.7, (symbols, bars)) * np.cumprod(vf, axis=1))
    cols = {"high": high, "low": low, "close": close, "volume": volume, "pf": pf, "vf": vf}
    starts = np.arange(symbols + 1, dtype=np.int64) * bars
    return {k: v.reshape(-1) for k, v in cols.items()}, starts


def back_adjusted(cols: dict[str, np.ndarray], symbols: int, bars: int) -> dict[str, np.ndarray]:
    """Backward-adjusted high/low/close/volume, the input TA-Lib needs to be comparable."""
    out = {}
    for f, names in (("pf", ("high", "low", "close")), ("vf", ("volume",))):
        b = np.ones((symbols, bars))
        b[:, :-1] = np.cumprod(cols[f].reshape(symbols, bars)[:, :0:-1], axis=1)[:, ::-1]
        for c in names:
            out[c] = (cols[c].reshape(symbols, bars) * b).reshape(-1)
    return out


def time_ours(cols: dict[str, np.ndarray], starts: np.ndarray, repeat: int) -> float:
    from alphatwin.transforms.indicators import compute

    small = {k: v[: int(starts[1])] for k, v in cols.items()}
    compute(small, starts[:2])  # loads the compiled kernels from numba's cache
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        out, _state = compute(cols, starts)
        best = min(best, time.perf_counter() - t0)
        del out, _state
    return best


def time_talib(adj: dict[str, np.ndarray], starts: np.ndarray, repeat: int) -> float:
    import talib

    h, lo, c, v = adj["high"], adj["low"], adj["close"], adj["volume"]
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        for s in range(starts.size - 1):
            a, b = starts[s], starts[s + 1]
            hs, ls, cs, vs = h[a:b], lo[a:b], c[a:b], v[a:b]
            talib.SMA(cs, 20)
            talib.EMA(cs, 20)
            talib.RSI(cs, 14)
            talib.MACD(cs, 12, 26, 9)
            talib.BBANDS(cs, 20, 2.0, 2.0, 0)
            talib.ATR(hs, ls, cs, 14)
            talib.STOCH(hs, ls, cs, 14, 3, 0, 3, 0)
            talib.OBV(cs, vs)
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--symbols", type=int, default=5_000)
    parser.add_argument("--bars", type=int, default=5_000)
    parser.add_argument("--repeat", type=int, default=3, help="best of this many runs (default 3)")
    args = parser.parse_args()
    from alphatwin.transforms.indicators import column_names

    n = args.symbols * args.bars
    t0 = time.perf_counter()
    cols, starts = make_universe(args.symbols, args.bars)
    adj = back_adjusted(cols, args.symbols, args.bars)
    print(f"{args.symbols:,} symbols x {args.bars:,} bars = {n:,} rows (generated in {time.perf_counter() - t0:.1f} s)")
    ta = time_talib(adj, starts, args.repeat)
    del adj
    ours = time_ours(cols, starts, args.repeat)
    width = len(column_names())
    print(f"TA-Lib loop (SMA EMA RSI MACD BBANDS ATR STOCH OBV, 14 outputs): {ta:6.2f} s "
          f"({n / ta / 1e6:5.1f} M rows/s)")
    print(f"ours, default set ({width} outputs, as-of basis):  {ours:6.2f} s ({n / ours / 1e6:5.1f} M rows/s)")
    print(f"ratio ours / TA-Lib: {ours / ta:.2f}x (target <= 3x)")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"output block {width * n * 8 / 2**30:.1f} GiB (float64); peak RSS of this process {peak:.1f} GiB")


if __name__ == "__main__":
    main()
