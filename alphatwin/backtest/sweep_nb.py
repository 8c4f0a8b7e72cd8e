"""Sweep kernels: every parameter combination in one call, parallel over combinations.

:func:`sweep_cross_fast_nb` is the fused path of a moving-average crossover on one symbol: the
distinct SMA windows are computed once (rows of ``sma``), and each combination runs signal,
simulation and the return statistics in one pass over the bars with a per-thread buffer, so
memory does not grow with the number of combinations beyond the results. It implements the
subset of docs/backtest.md without stops, range/ATR slippage, impact, participation cap or
rebalancing, with the same arithmetic as :func:`alphatwin.backtest.nb.simulate_nb` (a property
test checks both agree). :func:`sweep_cross_general_nb` runs the full kernel per combination.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from alphatwin.backtest.nb import simulate_nb
from alphatwin.signals.nb import cross_target_nb

__all__ = ["sweep_cross_fast_nb", "sweep_cross_general_nb", "equity_stats_nb", "OUT_COLS"]

#: Columns of the sweep kernels' output rows.
OUT_COLS = ("total_return", "annual_volatility", "sharpe", "sortino", "max_drawdown",
            "max_drawdown_duration", "n_trades", "n_closed_trades", "n_wins", "gross_wins",
            "gross_losses", "exposure", "final_equity", "total_fees", "sum_holding_bars")
_NOUT = len(OUT_COLS)
_CHUNK = 64


@njit(cache=True, error_model="numpy", inline="always")
def _drawdown_step(e: float, i: int, peak: float, peak_bar: int, floor: float, max_dd: float,
                   longest: int) -> tuple[float, int, float, float, int]:
    """One bar of the running drawdown statistics (``floor = peak * (1 + max_dd)``: only equity
    below it can deepen the maximum drawdown, which saves a division on most bars)."""
    if e >= peak:
        if i - peak_bar > longest and i - peak_bar > 1:  # regained: peak to this bar
            longest = i - peak_bar
        return e, i, e * (1.0 + max_dd), max_dd, longest
    if e < floor:
        dd = e / peak - 1.0
        if dd < max_dd:
            max_dd = dd
            floor = e
    if i - peak_bar > longest:
        longest = i - peak_bar
    return peak, peak_bar, floor, max_dd, longest


@njit(cache=True, error_model="numpy")
def equity_stats_nb(equity: np.ndarray, start: int, init_cash: float, ppy: float, rf: float,
                    out: np.ndarray, rets: np.ndarray) -> None:
    """Return statistics of ``equity[start:]`` (returns vs the previous bar, init_cash before
    the first) into ``out[0:6]``: total return, annual volatility, Sharpe, Sortino, max drawdown
    (negative), its longest duration in bars. ``rets`` is a scratch buffer of len(equity).
    Formulas: docs/metrics.md (empyrical's, checked in tests/metrics)."""
    n = equity.shape[0] - start
    prev = init_cash
    peak = init_cash
    floor = init_cash  # peak * (1 + max_dd): a new maximum drawdown needs equity below it
    max_dd = 0.0
    peak_bar = -1
    longest = 0
    for i in range(n):
        e = equity[start + i]
        x = ((e / prev - 1.0) if e != prev else 0.0) - rf  # a flat bar is exactly 0
        rets[i] = x
        prev = e
        peak, peak_bar, floor, max_dd, longest = _drawdown_step(e, i, peak, peak_bar, floor,
                                                                 max_dd, longest)
    out[0] = equity[start + n - 1] / init_cash - 1.0 if n > 0 else 0.0
    out[4] = max_dd
    out[5] = longest
    _spread_stats(rets, n, ppy, out)


@njit(cache=True, error_model="numpy")
def _all_equal(x: np.ndarray, n: int) -> bool:
    for i in range(1, n):
        if x[i] != x[0]:
            return False
    return True


@njit(cache=True, error_model="numpy", fastmath={"reassoc"})
def _spread_stats(rets: np.ndarray, n: int, ppy: float, out: np.ndarray) -> None:
    """Annual volatility, Sharpe and Sortino of ``rets[:n]`` (excess returns) into out[1:4]."""
    if n < 2:
        out[1] = math.nan
        out[2] = math.nan
        out[3] = math.nan
        return
    total = 0.0
    for i in range(n):
        total += rets[i]
    mean = total / n
    ss = 0.0
    down = 0.0
    for i in range(n):  # vectorized (reassoc): a fixed order for a given build
        x = rets[i]
        ss += (x - mean) * (x - mean)
        down += x * x if x < 0.0 else 0.0
    std = math.sqrt(ss / (n - 1))
    # equal returns have a standard deviation of exactly 0 (empyrical); float noise in ``ss``
    # from equal values is below n * (|mean| * 1e-10)^2, so only then look at the values
    if ss <= n * (abs(mean) * 1e-10) ** 2 and _all_equal(rets, n):
        std = 0.0
    out[1] = std * math.sqrt(ppy)
    if std > 0.0:
        out[2] = mean / std * math.sqrt(ppy)
    else:
        out[2] = math.nan if mean == 0.0 else math.copysign(math.inf, mean)
    down_risk = math.sqrt(down / n) * math.sqrt(ppy)
    out[3] = mean * ppy / down_risk if down_risk > 0.0 else (math.inf if mean > 0.0 else math.nan)


@njit(cache=True, error_model="numpy")
def _fill_one(p: float, units: float, target: float, cash: float,
              whole: bool, cp_fee: float, cp_fixed: float, cp_min: float, slip: float,
              lev: float, tr: np.ndarray) -> tuple[float, float]:
    """Move one symbol toward weight ``target`` at base price ``p``: (units, cash) after.

    ``tr`` = [cash flows, fees, dividends, entry bar, n_trades, n_closed, wins, gross wins,
    gross losses, total fees, holding bars, current bar]."""
    equity = cash + units * p
    desired = target * equity / p if equity > 0.0 else 0.0
    if whole:
        desired = float(math.trunc(desired))
    delta = desired - units
    if abs(delta) <= 1e-9 * max(abs(desired), abs(units)):  # float noise (nb._DUST)
        return units, cash
    if units == 0.0 or (units > 0.0) == (delta > 0.0):
        red, grow = 0.0, delta
    elif abs(delta) <= abs(units):
        red, grow = delta, 0.0
    else:
        red, grow = -units, delta + units
    if red != 0.0:
        slip_pu = p * slip
        q = p - slip_pu if red < 0.0 else p + slip_pu
        fee = max(cp_fee * abs(red) * q + cp_fixed, cp_min)
        cash -= red * q + fee
        tr[0] -= red * q
        tr[1] += fee
        tr[9] += fee
        units = units + red
        if units == 0.0:
            pnl = tr[0] - tr[1] + tr[2]
            tr[5] += 1.0
            tr[10] += tr[11] - tr[3]
            if pnl > 0.0:
                tr[6] += 1.0
                tr[7] += pnl
            else:
                tr[8] -= pnl
    if grow != 0.0:
        slip_pu = p * slip
        side = 1.0 if grow > 0.0 else -1.0
        q = p + side * slip_pu
        equity = cash + units * p
        gross = abs(units * p)
        requested = abs(grow)  # before any cut
        need = abs(grow) * q * (1.0 + lev * cp_fee)
        room = lev * equity - gross - lev * cp_fixed
        if need > room:
            k = max(0.0, room / need)
            grow *= k
            if whole:
                grow = float(math.trunc(grow))
        a = abs(grow)
        if a != 0.0:
            equity = cash + units * p
            gross = abs(units * p)
            a0 = a
            a = min(a, (lev * (equity - cp_fixed) - gross) / (q * (1.0 + lev * cp_fee)),
                    (lev * (equity - cp_min) - gross) / q)
            if whole and a < a0:
                a = float(math.trunc(a))
            if a > 1e-9 * requested:  # not nothing, nor float noise (nb._DUST)
                u = side * a
                fee = max(cp_fee * a * q + cp_fixed, cp_min)
                cash -= u * q + fee
                if units == 0.0:
                    tr[0] = 0.0
                    tr[1] = 0.0
                    tr[2] = 0.0
                    tr[3] = tr[11]
                    tr[4] += 1.0
                tr[0] -= u * q
                tr[1] += fee
                tr[9] += fee
                units = units + u
    return units, cash


@njit(cache=True, error_model="numpy")
def _signal(f: float, s: float, long_: bool, short: bool) -> float:
    if f > s:
        return 1.0 if long_ else 0.0
    if f < s:
        return -1.0 if short else 0.0
    return 0.0


@njit(cache=True, error_model="numpy")
def _run_fast(fast: np.ndarray, slow: np.ndarray, open_: np.ndarray, close: np.ndarray,
              mark: np.ndarray, split_ratio: np.ndarray, dividend: np.ndarray, has_events: bool,
              gaps: bool, start: int,
              fill_close: bool, init_cash: float, long_: bool, short: bool, whole: bool,
              fee: float, fixed: float, fee_min: float, slip: float, lev: float, rf: float,
              rets: np.ndarray, tr: np.ndarray, row: np.ndarray) -> int:
    """One combination in one pass: simulation, excess returns into ``rets`` and the
    drawdown statistics into ``row`` exactly as :func:`equity_stats_nb` computes them from the
    equity curve. Returns the bars held; ``tr`` gets the trade counters. Bars where something
    can happen (a signal change, a pending fill, a corporate action on a position) run the full
    bar logic; between them two tight loops skip flat stretches (the equity does not move) and
    re-mark held positions."""
    n = close.shape[0]
    cash = init_cash
    units = 0.0
    active = math.nan
    need = False
    held = 0
    tr[:] = 0.0
    prev = init_cash
    peak = init_cash
    floor = init_cash
    max_dd = 0.0
    peak_bar = -1
    longest = 0
    e = init_cash
    # warm-up: while either SMA is NaN the target is 0 and nothing can happen: flat at the
    # initial cash, each bar a new (equal) peak, every excess return 0 - rf
    t0 = start
    while t0 < n and (math.isnan(fast[t0]) or math.isnan(slow[t0])):
        t0 += 1
    if t0 > start:
        for i in range(t0 - start):
            rets[i] = 0.0 - rf
        active = 0.0
        peak_bar = t0 - start - 1
    t = t0
    while t < n:
        if has_events and units != 0.0:
            r = split_ratio[t]
            if r != 1.0 and r > 0.0:
                units *= r
            d = dividend[t]
            if d != 0.0:
                cash += units * d
                tr[2] += units * d
        if fill_close:
            tg = _signal(fast[t], slow[t], long_, short)
            if tg != active:
                active = tg
                need = True
            if need and (not gaps or not math.isnan(close[t])):
                tr[11] = t
                units, cash = _fill_one(close[t], units, active, cash, whole, fee, fixed,
                                        fee_min, slip, lev, tr)
                need = False
        elif need and (not gaps or not math.isnan(close[t])):
            tr[11] = t
            units, cash = _fill_one(open_[t], units, active, cash, whole, fee, fixed, fee_min,
                                    slip, lev, tr)
            need = False
        if units != 0.0:
            e = cash + units * mark[t]
            held += 1
        else:
            e = cash
        i = t - start
        x = ((e / prev - 1.0) if e != prev else 0.0) - rf
        rets[i] = x
        prev = e
        peak, peak_bar, floor, max_dd, longest = _drawdown_step(e, i, peak, peak_bar, floor,
                                                                 max_dd, longest)
        if not fill_close:
            tg = _signal(fast[t], slow[t], long_, short)
            if tg != active:
                active = tg
                need = True
        t += 1
        if units == 0.0 and not need:
            # flat and nothing pending: skip to the next signal change; equity stays e (every
            # excess return 0 - rf), each bar a new (equal) peak or one more bar under water
            q = t
            while q < n and _signal(fast[q], slow[q], long_, short) == active:
                q += 1
            if q > t:
                for k in range(t - start, q - start):
                    rets[k] = 0.0 - rf
                last = q - 1 - start
                if e >= peak:
                    peak_bar = last
                elif last - peak_bar > longest:
                    longest = last - peak_bar
                prev = e
                t = q
        elif units != 0.0 and not need:
            # holding and nothing pending: the bars until the signal changes (or a corporate
            # action) only re-mark the position
            while t < n and _signal(fast[t], slow[t], long_, short) == active and not (
                    has_events and (split_ratio[t] != 1.0 or dividend[t] != 0.0)):
                e = cash + units * mark[t]
                held += 1
                i = t - start
                rets[i] = ((e / prev - 1.0) if e != prev else 0.0) - rf
                prev = e
                peak, peak_bar, floor, max_dd, longest = _drawdown_step(e, i, peak, peak_bar,
                                                                         floor, max_dd, longest)
                t += 1
    if units != 0.0:  # the open trade, held to the last bar
        tr[10] += (n - 1) - tr[3]
    row[0] = e / init_cash - 1.0 if n > start else 0.0
    row[4] = max_dd
    row[5] = longest
    row[12] = e
    return held


@njit(cache=True, error_model="numpy")
def _marks_of(close: np.ndarray, split_ratio: np.ndarray) -> np.ndarray:
    """The price a position is marked at on each bar: the close, or on a bar that cannot trade
    the last close, divided by the split ratio of such a bar (as the full kernel's mark)."""
    out = close.copy()
    for t in range(close.shape[0]):
        if math.isnan(close[t]):
            prev = out[t - 1] if t > 0 else math.nan
            r = split_ratio[t]
            out[t] = prev / r if r != 1.0 and r > 0.0 else prev
    return out


@njit(cache=True, error_model="numpy", parallel=True)
def sweep_cross_fast_nb(sma: np.ndarray, fast_idx: np.ndarray, slow_idx: np.ndarray,
                        open_: np.ndarray, close: np.ndarray, split_ratio: np.ndarray,
                        dividend: np.ndarray, start: int, fill_close: bool, init_cash: float,
                        long_: bool, short: bool, whole: bool, fee: float, fixed: float,
                        fee_min: float, slip: float, lev: float, ppy: float,
                        rf: float) -> np.ndarray:
    """(n_combinations, len(OUT_COLS)) statistics of every (fast, slow) row pair of ``sma``."""
    n_comb = fast_idx.shape[0]
    n = close.shape[0]
    out = np.empty((n_comb, _NOUT))
    has_events = False
    gaps = False  # bars that cannot trade (NaN prices: imputed, halted, outliers)
    for t in range(n):
        if split_ratio[t] != 1.0 or dividend[t] != 0.0:
            has_events = True
        if math.isnan(close[t]):
            gaps = True
    mark = _marks_of(close, split_ratio)
    n_chunks = (n_comb + _CHUNK - 1) // _CHUNK
    for c in prange(n_chunks):
        rets = np.empty(n)
        tr = np.zeros(12)
        for j in range(c * _CHUNK, min(n_comb, (c + 1) * _CHUNK)):
            row = out[j]
            held = _run_fast(sma[fast_idx[j]], sma[slow_idx[j]], open_, close, mark,
                                    split_ratio, dividend, has_events, gaps, start, fill_close,
                                    init_cash, long_, short, whole, fee, fixed, fee_min, slip,
                                    lev, rf, rets, tr, row)
            _spread_stats(rets, n - start, ppy, row)
            row[6] = tr[4]
            row[7] = tr[5]
            row[8] = tr[6]
            row[9] = tr[7]
            row[10] = tr[8]
            row[11] = held / (n - start) if n > start else math.nan
            row[13] = tr[9]
            row[14] = tr[10]
    return out


@njit(cache=True, error_model="numpy", parallel=True)
def sweep_cross_general_nb(sma: np.ndarray, fast_idx: np.ndarray, slow_idx: np.ndarray,
                           open_: np.ndarray, high: np.ndarray, low: np.ndarray,
                           close: np.ndarray, volume: np.ndarray, split_ratio: np.ndarray,
                           dividend: np.ndarray, atr: np.ndarray, sigma: np.ndarray,
                           adv: np.ndarray, start: int, fill_close: bool, init_cash: float,
                           long_: bool, short: bool, whole: bool, rebalance_every: int,
                           cp: np.ndarray, ppy: float, rf: float, fills_proto: np.ndarray,
                           trades_proto: np.ndarray) -> np.ndarray:
    """Like :func:`sweep_cross_fast_nb` with the full kernel (stops, impact, caps) per combo.

    Prices are (n, 1) arrays of one symbol; ``*_proto`` are record arrays whose dtype (and
    length, the capacity) each combination's buffers copy."""
    n_comb = fast_idx.shape[0]
    n = close.shape[0]
    out = np.empty((n_comb, _NOUT))
    n_chunks = (n_comb + _CHUNK - 1) // _CHUNK
    for c in prange(n_chunks):
        fills = np.empty_like(fills_proto)  # per thread and chunk, not per combination
        trades = np.empty_like(trades_proto)
        rets = np.empty(n)
        for j in range(c * _CHUNK, min(n_comb, (c + 1) * _CHUNK)):
            _general_one(j, sma, fast_idx, slow_idx, open_, high, low, close, volume,
                         split_ratio, dividend, atr, sigma, adv, start, fill_close, init_cash,
                         long_, short, whole, rebalance_every, cp, ppy, rf, fills, trades, rets,
                         out[j])
    return out


@njit(cache=True, error_model="numpy")
def _general_one(j: int, sma: np.ndarray, fast_idx: np.ndarray, slow_idx: np.ndarray,
                 open_: np.ndarray, high: np.ndarray, low: np.ndarray, close: np.ndarray,
                 volume: np.ndarray, split_ratio: np.ndarray, dividend: np.ndarray,
                 atr: np.ndarray, sigma: np.ndarray, adv: np.ndarray, start: int,
                 fill_close: bool, init_cash: float, long_: bool, short: bool, whole: bool,
                 rebalance_every: int, cp: np.ndarray, ppy: float, rf: float, fills: np.ndarray,
                 trades: np.ndarray, rets: np.ndarray, row: np.ndarray) -> None:
    """One combination through the full kernel, its statistics into ``row``."""
    n = close.shape[0]
    tgt = cross_target_nb(sma[fast_idx[j]], sma[slow_idx[j]], long_, short).reshape(n, 1)
    equity, cash, units, marks, bar_cost, _scale, n_fills, n_trades = simulate_nb(
        open_, high, low, close, volume, split_ratio, dividend, atr, sigma, adv, tgt, tgt,
        start, fill_close, init_cash, False, whole, rebalance_every, cp, fills, trades)
    equity_stats_nb(equity, start, init_cash, ppy, rf, row, rets)
    closed = 0
    wins = 0
    gw = 0.0
    gl = 0.0
    hold = 0.0
    for k in range(n_trades):
        if trades[k]["exit_bar"] >= 0:
            closed += 1
            pnl = trades[k]["pnl"]
            hold += trades[k]["exit_bar"] - trades[k]["entry_bar"]
            if pnl > 0.0:
                wins += 1
                gw += pnl
            else:
                gl -= pnl
        else:
            hold += (n - 1) - trades[k]["entry_bar"]
    held = 0
    for t in range(start, n):
        if units[t, 0] != 0.0:
            held += 1
    row[6] = n_trades
    row[7] = closed
    row[8] = wins
    row[9] = gw
    row[10] = gl
    row[11] = held / (n - start) if n > start else math.nan
    row[12] = equity[n - 1]
    fees = 0.0
    for k in range(n_fills):  # one at a time, as the fused path adds them
        fees += fills[k]["fee"]
    row[13] = fees
    row[14] = hold
