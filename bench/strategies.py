"""Benchmark: the strategy library, the risk manager and the risk rules in the engine.

A synthetic universe (default 20 symbols x 5,000 daily bars, lognormal random walks; the same
generator as bench/backtest.py) and, in the same process, two references:

- ``pass``: one vectorized NumPy pass over one symbol's closes (log returns and their
  cumulative sum), the cost of touching the data once; each strategy's ``compute`` on one
  symbol (a panel strategy on the universe) is printed as a multiple of it;
- ``simulate``: one engine run of the universe with equal weights and no risk rules; the
  risk manager (vol target + risk parity + caps) and the engine with a drawdown control and an
  ATR stop are printed as multiples of it.

Best of ``--repeat`` runs after a warm-up call (numba compiled, caches loaded).

    .venv/bin/python bench/strategies.py
    .venv/bin/python bench/strategies.py --symbols 50 --bars 10000
"""

from __future__ import annotations

import argparse

import numpy as np


def best(fn, repeat: int) -> float:
    """Best of ``repeat`` timed calls after one warm-up call."""
    from backtest import best as timed  # bench/backtest.py

    fn()
    return timed(fn, repeat)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--symbols", type=int, default=20)
    ap.add_argument("--bars", type=int, default=5000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()

    from backtest import universe  # bench/backtest.py

    from alphatwin.backtest.engine import simulate
    from alphatwin.backtest.params import Costs, Drawdown, SimParams, Stops
    from alphatwin.risk.manager import RiskParams, apply_risk
    from alphatwin.signals.base import all_strategies

    market, close = universe(args.symbols, args.bars)
    filled = np.ascontiguousarray(np.nan_to_num(close, nan=50.0))
    one = np.ascontiguousarray(filled[:, 0])
    ref = best(lambda: np.cumsum(np.diff(np.log(one))), args.repeat)
    print(f"universe: {args.symbols} symbols x {args.bars:,} bars; reference pass over one symbol: {ref * 1e6:.1f} us")
    rng = np.random.default_rng(1)
    columns = {"close": one, "open": one, "high": one * 1.01, "low": one * 0.99,
               "volume": rng.uniform(1e5, 1e6, args.bars)}
    small_ml = {"train": 756, "retrain": 63}
    print(f"{'strategy':<22}{'time':>12}{'x pass':>10}")
    for name, s in all_strategies().items():
        if s.source != "python":
            continue
        if s.panel:
            cols = [filled[:, :2] if s.max_symbols == 2 else filled for _ in s.inputs]
        else:
            cols = [columns.get(c, rng.normal(0, 1, args.bars)) for c in s.inputs]
        params = small_ml if name == "ml_gbm" else {}
        repeat = 1 if name == "ml_gbm" else args.repeat
        t = best(lambda: s.run(*cols, direction="both", **params), repeat)
        print(f"{name:<22}{t * 1e3:>10.2f}ms{t / ref:>10.0f}")

    direction = np.sign(np.sin(np.arange(args.bars) / 40.0))[:, None] * np.ones((1, args.symbols))
    plain = SimParams(costs=Costs(fees_bps=10))
    equal = apply_risk(direction, close, RiskParams(), panel=False, periods_per_year=252)
    base = best(lambda: simulate(market, equal, plain), args.repeat)
    print(f"\nsimulate, equal weights ({args.symbols} x {args.bars:,}): {base * 1e3:.1f} ms")
    risk = RiskParams(sizing="vol_target", allocation="risk_parity", alloc_window=63, rebalance=21,
                      max_position=0.2, max_gross=1.5)
    t = best(lambda: apply_risk(direction, close, risk, panel=False, periods_per_year=252), args.repeat)
    print(f"risk manager (vol_target + risk_parity + caps): {t * 1e3:.1f} ms = {t / base:.2f}x simulate")
    t = best(lambda: apply_risk(direction, close, RiskParams(sizing="vol_target"), panel=False,
                                periods_per_year=252), args.repeat)
    print(f"risk manager (vol_target only):                 {t * 1e3:.1f} ms = {t / base:.2f}x simulate")
    guarded = SimParams(costs=Costs(fees_bps=10), stops=Stops(stop_atr=3.0),
                        drawdown=Drawdown(limit=0.1, scale=0.0, cooldown=21))
    t = best(lambda: simulate(market, equal, guarded), args.repeat)
    print(f"simulate + ATR stop + drawdown control:         {t * 1e3:.1f} ms = {t / base:.2f}x simulate")


if __name__ == "__main__":
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    main()
