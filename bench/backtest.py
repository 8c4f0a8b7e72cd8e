"""Benchmark: one multi-asset backtest through the full kernel, and through the warehouse.

A synthetic universe (default 100 symbols x 5,000 daily bars, lognormal random walks with a few
missing bars) traded by ``sma_cross`` 10/50 on every symbol with equal weights, next-open fills,
fees, slippage and impact, a participation cap and a trailing stop, rebalanced every 21 bars:

- the kernel alone (:func:`alphatwin.backtest.engine.simulate`), best of ``--repeat``, as ns per
  bar and symbol, against a NumPy reference in the same process: the time NumPy takes to
  compute the buy-and-hold equity curve of the same universe (one vectorized pass), to show the
  kernel's cost in units of "touching the data once";
- with ``--warehouse``: the same universe ingested (synthetic source) and built into a temporary
  warehouse (untimed), then ``run_backtest`` end to end (load features.bars + clean.bars, targets,
  simulate, metrics, write backtest.* in one transaction) and its split into stages.

    .venv/bin/python bench/backtest.py                    # 100 x 5,000, kernel only
    .venv/bin/python bench/backtest.py --warehouse        # also through the warehouse
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np


def universe(symbols: int, bars: int, seed: int = 3):
    from alphatwin.backtest.params import Market

    rng = np.random.default_rng(seed)
    close = 50 * np.exp(np.cumsum(rng.normal(0.0002, 0.015, (bars, symbols)), axis=0))
    open_ = close * np.exp(rng.normal(0, 0.004, (bars, symbols)))
    high = np.maximum(open_, close) * 1.005
    low = np.minimum(open_, close) * 0.995
    volume = rng.uniform(1e5, 1e6, (bars, symbols))
    missing = rng.random((bars, symbols)) < 0.01
    for a in (open_, high, low, close, volume):
        a[missing] = np.nan
    signal = np.where(missing, np.nan, close)
    sigma = np.full((bars, symbols), 0.015)
    adv = np.full((bars, symbols), 5e5)
    market = Market(ts=np.arange(bars), symbols=tuple(f"S{i:03d}" for i in range(symbols)), open=open_,
                    high=high, low=low, close=close, volume=volume, split_ratio=np.ones((bars, symbols)),
                    dividend=np.zeros((bars, symbols)), atr=np.full((bars, symbols), 0.5), sigma=sigma,
                    adv=adv)
    return market, signal


def targets(signal: np.ndarray) -> np.ndarray:
    from alphatwin.signals.sma_cross import targets as sma_targets

    out = np.full(signal.shape, np.nan)
    m = signal.shape[1]
    for j in range(m):
        rows = np.flatnonzero(~np.isnan(signal[:, j]))
        out[rows, j] = sma_targets(signal[rows, j], fast=10, slow=50) / m
    return out


def params():
    from alphatwin.backtest.params import Costs, SimParams, Stops

    return SimParams(rebalance_every=21, costs=Costs(fees_bps=5, slippage_bps=2, impact_k=0.1, participation=0.1),
                     stops=Stops(trailing_stop=0.1))


def best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def kernel(symbols: int, bars: int, repeat: int) -> None:
    from alphatwin.backtest.engine import simulate

    market, signal = universe(symbols, bars)
    tg = targets(signal)
    p = params()
    simulate(market, tg, p)  # compile / load the cache
    t_kernel = best(lambda: simulate(market, tg, p), repeat)
    res = simulate(market, tg, p)
    close = np.nan_to_num(market.close)
    t_numpy = best(lambda: np.cumprod(np.where(close[1:] > 0, close[1:] / np.where(close[:-1] > 0, close[:-1], 1), 1),
                                      axis=0).sum(axis=1), repeat)
    cells = symbols * bars
    print(f"kernel: {symbols} symbols x {bars:,} bars, {len(res.fills):,} fills, {len(res.trades):,} trades: "
          f"{t_kernel * 1000:.1f} ms = {t_kernel / cells * 1e9:.1f} ns per bar and symbol")
    print(f"reference: NumPy buy-and-hold equity of the same universe {t_numpy * 1000:.1f} ms; "
          f"ratio kernel / reference {t_kernel / t_numpy:.1f}x")


def warehouse(symbols: int, bars: int) -> None:
    from alphatwin.backtest.run import RunSpec, run_backtest
    from alphatwin.lake import catalog
    from alphatwin.lake.ingest import ingest
    from alphatwin.models.build import build
    from alphatwin.models.registry import default_sql_root
    from alphatwin.paths import WarehousePaths
    from alphatwin.quality.gate import QualityGate
    from alphatwin.sources.base import FetchRequest
    from alphatwin.sources.synthetic import SyntheticSource

    with tempfile.TemporaryDirectory() as tmp:
        paths = WarehousePaths(Path(tmp) / "wh")
        source = SyntheticSource(n_symbols=symbols, n_bars=bars, seed=3)
        request = FetchRequest((), "1d")
        ingest(source, request, paths, gate=QualityGate(paths, request))
        build(paths, sql_root=default_sql_root(None))
        with catalog.connect(paths, read_only=True) as con:
            names = tuple(r[0] for r in con.execute("SELECT DISTINCT symbol FROM clean.bars ORDER BY 1").fetchall())
        spec = RunSpec("sma_cross", names, {"fast": 10, "slow": 50}, sim=params())
        with catalog.connect(paths) as con:
            run_backtest(con, spec, save=False)  # warm
            t = time.perf_counter()
            run = run_backtest(con, spec)
            wall = time.perf_counter() - t
        print(f"warehouse: run_backtest on {len(names)} symbols x {bars:,} bars ({run.loaded.market.shape[0]:,} aligned "
              f"bars), stored: {wall:.2f} s; {len(run.frames['positions']):,} position rows, "
              f"{len(run.frames['fills']):,} fills")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--symbols", type=int, default=100)
    ap.add_argument("--bars", type=int, default=5000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--warehouse", action="store_true", help="also run through a temporary warehouse")
    args = ap.parse_args()
    kernel(args.symbols, args.bars, args.repeat)
    if args.warehouse:
        warehouse(args.symbols, args.bars)


if __name__ == "__main__":
    main()
