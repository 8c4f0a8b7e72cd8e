"""Backtests: strategy targets through a numba bar loop into fills, trades and equity.

    data.load_market      features.bars + clean.bars -> Market (+ provenance, data quality)
    signals/              a strategy's targets per bar and symbol
    engine.simulate       nb.simulate_nb: fills, costs, stops, shared cash -> SimResult
    sweep.sweep_sma_cross sweep_nb: every parameter combination in one kernel call
    run.run_backtest      all of the above, metrics, store.write_run -> backtest.* tables

The contract of the kernel is docs/backtest.md; the metrics are docs/metrics.md.
"""

from __future__ import annotations

from alphatwin.backtest.engine import SimResult, simulate
from alphatwin.backtest.params import Costs, Market, SimParams, Stops

__all__ = ["Costs", "Market", "SimParams", "SimResult", "Stops", "simulate"]
