"""The stored runs the report tests and the browser tests draw: one two-symbol long/short
``sma_cross`` (10 bps fees, next-open fills, no slippage, so every fill is at its bar's open; the
second symbol has a 2:1 split) and one (fast, slow) sweep on two symbols."""

from __future__ import annotations

from typing import Any

from alphatwin.backtest.params import Costs, SimParams
from alphatwin.backtest.run import RunSpec, run_backtest, run_sweep

SYMBOLS = ("SYN00001", "SYN00002")


def store_runs(con: Any) -> tuple[str, str]:
    """Run and store the backtest and the sweep on an open warehouse; their run ids."""
    fees = SimParams(costs=Costs(fees_bps=10))
    bt = run_backtest(con, RunSpec("sma_cross", SYMBOLS, {"fast": 5, "slow": 20}, direction="both", sim=fees),
                      command="test")
    sw = run_sweep(con, RunSpec("sma_cross", ("SYN00001", "SYN00003"), sim=fees),
                   {"fast": [2, 3, 4, 5], "slow": [6, 8, 10, 12, 14]}, command="test")
    return bt.run_id, sw.run_id
