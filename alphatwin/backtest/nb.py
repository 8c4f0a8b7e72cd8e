"""The backtest kernel: one bar loop over aligned (bar x symbol) arrays, docs/backtest.md's rules.

Per bar t: corporate actions on positions carried into t, the orders decided at the close of
t-1 fill at the open (``fill_close=False``), stops against the bar's open/high/low, the orders
decided at t fill at the close (``fill_close=True``), mark to market, decide. The kernel sees
only NumPy arrays and assumes valid input (the wrapper in :mod:`alphatwin.backtest.engine`
checks it). ``tests/backtest/reference.py`` is a slow pure-Python twin of this module.
Kernels use ``error_model="numpy"``: a division by zero gives inf or NaN (the returns of a
portfolio whose equity reached 0) instead of raising, and saves a check per division.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from alphatwin.backtest.enums import Phase, Reason

__all__ = ["simulate_nb", "NO_ORDER"]

NO_ORDER = -1
_DUST = 1e-9  # an order below this fraction of the position is float noise
_SIGNAL = Reason.SIGNAL
_REBALANCE = Reason.REBALANCE
_PENDING = Reason.PENDING
_STOP_LOSS = Reason.STOP_LOSS
_TAKE_PROFIT = Reason.TAKE_PROFIT
_TRAILING = Reason.TRAILING_STOP
_DRAWDOWN = Reason.DRAWDOWN
_ATR_STOP = Reason.ATR_STOP
_OPEN = Phase.OPEN
_INTRABAR = Phase.INTRABAR
_CLOSE = Phase.CLOSE

# per-symbol float state columns
_UNITS, _LAST, _ACTIVE, _ENTRY, _PEAK, _TROUGH, _ATRD, _RAW, _DIR = 0, 1, 2, 3, 4, 5, 6, 7, 8
# per-symbol int state columns
_NEED, _STOPPED, _TRADE, _OPENED_AT, _INC_REASON, _EXIT = 0, 1, 2, 3, 4, 5
# cash/bar accumulators
_CASH, _FEES, _SLIP, _IMPACT = 0, 1, 2, 3
# scalar cost parameters, one float64 array: see simulate_nb
_FEE_RATE, _FEE_FIXED, _FEE_MIN, _SLIP_RATE, _SLIP_RANGE, _SLIP_ATR, _IMPACT_K, _PARTICIPATION, \
    _SL, _TP, _TSL, _LEVERAGE, _SL_ATR, _DD_LIMIT, _DD_SCALE, _DD_COOLDOWN = range(16)


@njit(cache=True, error_model="numpy")
def _basis(t: int, r: int, s: int, split_ratio: np.ndarray) -> float:
    """Factor that puts a price-like value of row ``r`` into bar t's basis (1 when r == t):
    the last completed bar before a split is in the old basis (volumes scale by its inverse)."""
    if r < t:
        ratio = split_ratio[t, s]
        if not math.isnan(ratio) and ratio > 0.0:
            return 1.0 / ratio
    return 1.0


@njit(cache=True, error_model="numpy")
def _slip_abs(r: int, s: int, high: np.ndarray, low: np.ndarray, atr: np.ndarray,
              cp: np.ndarray) -> float:
    """Absolute slippage per unit from row ``r`` (the last completed bar), 0 when unknown."""
    if r < 0:
        return 0.0
    if cp[_SLIP_RANGE] > 0.0:
        span = high[r, s] - low[r, s]
        return cp[_SLIP_RANGE] * span if not math.isnan(span) else 0.0
    if cp[_SLIP_ATR] > 0.0:
        a = atr[r, s]
        return cp[_SLIP_ATR] * a if not math.isnan(a) else 0.0
    return 0.0


@njit(cache=True, error_model="numpy")
def _impact(r: int, s: int, units: float, price: float, sigma: np.ndarray, adv: np.ndarray,
            basis: float, cp: np.ndarray) -> float:
    """Square-root market impact per unit: k * sigma * sqrt(|units| / adv) * price."""
    if cp[_IMPACT_K] == 0.0 or r < 0:
        return 0.0
    sg = sigma[r, s]
    av = adv[r, s] / basis  # volumes in bar t's basis
    if math.isnan(sg) or math.isnan(av) or av <= 0.0:
        return 0.0
    return cp[_IMPACT_K] * sg * math.sqrt(abs(units) / av) * price


@njit(cache=True, error_model="numpy")
def _exec(t: int, r: int, s: int, side: float, order: float, p: float, high: np.ndarray,
          low: np.ndarray, atr: np.ndarray, sigma: np.ndarray, adv: np.ndarray,
          split_ratio: np.ndarray, cp: np.ndarray) -> tuple[float, float, float]:
    """(exec price, slippage per unit, impact per unit) of a fill at base price ``p`` on bar t,
    the cost inputs from row ``r``; a sale never goes below a price of 0."""
    basis = _basis(t, r, s, split_ratio)
    slip_pu = p * cp[_SLIP_RATE] + _slip_abs(r, s, high, low, atr, cp) * basis
    imp_pu = _impact(r, s, order, p, sigma, adv, basis, cp)
    if side < 0.0:
        slip_pu = min(slip_pu, p)
        imp_pu = min(imp_pu, p - slip_pu)
    return p + side * (slip_pu + imp_pu), slip_pu, imp_pu


@njit(cache=True, error_model="numpy")
def _fee(units: float, price: float, cp: np.ndarray) -> float:
    return max(cp[_FEE_RATE] * abs(units) * price + cp[_FEE_FIXED], cp[_FEE_MIN])


@njit(cache=True, error_model="numpy")
def _apply(t: int, s: int, u: float, base: float, q: float, slip_pu: float, imp_pu: float,
           reason: int, phase: int, fs: np.ndarray, ist: np.ndarray, acc: np.ndarray,
           bar_cost: np.ndarray, fills: np.ndarray, n_fills: np.ndarray, trades: np.ndarray,
           n_trades: np.ndarray, cp: np.ndarray) -> None:
    """Book one fill of ``u`` units (signed) at exec price ``q``: cash, units, costs, trade."""
    fee = _fee(u, q, cp)
    au = abs(u)
    slip_cost = au * slip_pu
    imp_cost = au * imp_pu
    acc[_CASH] -= u * q + fee
    bar_cost[t, 0] += fee
    bar_cost[t, 1] += slip_cost
    bar_cost[t, 2] += imp_cost
    k = n_fills[0]
    fills[k]["bar"] = t
    fills[k]["col"] = s
    fills[k]["units"] = u
    fills[k]["base_price"] = base
    fills[k]["price"] = q
    fills[k]["fee"] = fee
    fills[k]["slippage"] = slip_cost
    fills[k]["impact"] = imp_cost
    fills[k]["reason"] = reason
    fills[k]["phase"] = phase
    n_fills[0] = k + 1

    old = fs[s, _UNITS]
    if old == 0.0:
        tr = n_trades[0]
        n_trades[0] = tr + 1
        ist[s, _TRADE] = tr
        trades[tr]["col"] = s
        trades[tr]["entry_bar"] = t
        trades[tr]["exit_bar"] = -1
        trades[tr]["quantity"] = 0.0
        trades[tr]["entry_price"] = 0.0  # holds the increasing fills' value until the exit
        trades[tr]["exit_price"] = 0.0  # holds the decreasing fills' value until the exit
        trades[tr]["fees"] = 0.0
        trades[tr]["slippage"] = 0.0
        trades[tr]["impact"] = 0.0
        trades[tr]["dividends"] = 0.0
        trades[tr]["pnl"] = 0.0  # holds the fills' cash flows until the exit
        trades[tr]["ret"] = 0.0
        trades[tr]["exit_reason"] = -1
        trades[tr]["n_fills"] = 0
        fs[s, _PEAK] = q
        fs[s, _TROUGH] = q
        ist[s, _OPENED_AT] = t if phase == _OPEN else -1
    tr = ist[s, _TRADE]
    if old == 0.0 or (old > 0.0) == (u > 0.0):
        trades[tr]["quantity"] += u
        trades[tr]["entry_price"] += au * q
        fs[s, _ENTRY] = trades[tr]["entry_price"] / abs(trades[tr]["quantity"])
    else:
        trades[tr]["exit_price"] += au * q
    trades[tr]["fees"] += fee
    trades[tr]["slippage"] += slip_cost
    trades[tr]["impact"] += imp_cost
    trades[tr]["pnl"] -= u * q
    trades[tr]["n_fills"] += 1
    new = old + u
    fs[s, _UNITS] = new
    if new == 0.0:
        _close_trade(tr, t, reason, trades)
        ist[s, _TRADE] = -1


@njit(cache=True, error_model="numpy")
def _close_trade(tr: int, t: int, reason: int, trades: np.ndarray) -> None:
    qty = abs(trades[tr]["quantity"])
    entry_value = trades[tr]["entry_price"]
    exit_value = trades[tr]["exit_price"]
    trades[tr]["exit_bar"] = t
    trades[tr]["exit_reason"] = reason
    trades[tr]["entry_price"] = entry_value / qty
    if t >= 0:
        trades[tr]["exit_price"] = exit_value / qty
    pnl = trades[tr]["pnl"] - trades[tr]["fees"] + trades[tr]["dividends"]
    trades[tr]["pnl"] = pnl
    trades[tr]["ret"] = pnl / entry_value


@njit(cache=True, error_model="numpy")
def _corporate_actions(t: int, split_ratio: np.ndarray, dividend: np.ndarray, fs: np.ndarray,
                       ist: np.ndarray, acc: np.ndarray, trades: np.ndarray) -> None:
    for s in range(fs.shape[0]):
        units = fs[s, _UNITS]
        if units == 0.0:
            continue
        tr = ist[s, _TRADE]
        r = split_ratio[t, s]
        if not math.isnan(r) and r != 1.0 and r > 0.0:
            fs[s, _UNITS] = units * r
            fs[s, _ENTRY] /= r
            fs[s, _PEAK] /= r
            fs[s, _TROUGH] /= r
            fs[s, _ATRD] /= r
            fs[s, _LAST] /= r  # the mark too (the split bar may have no tradable price)
            trades[tr]["quantity"] *= r
        d = dividend[t, s]
        if not math.isnan(d) and d != 0.0:
            cash = fs[s, _UNITS] * d
            acc[_CASH] += cash
            trades[tr]["dividends"] += cash


@njit(cache=True, error_model="numpy")
def _marks(t: int, prices: np.ndarray, close: np.ndarray, fs: np.ndarray,
           acc: np.ndarray) -> tuple[float, float]:
    """(equity, gross exposure) with the fill prices of bar t, the last close elsewhere."""
    equity = acc[_CASH]
    gross = 0.0
    for s in range(fs.shape[0]):
        units = fs[s, _UNITS]
        if units == 0.0:
            continue
        p = prices[t, s] if not math.isnan(close[t, s]) else fs[s, _LAST]
        equity += units * p
        gross += abs(units * p)
    return equity, gross


@njit(cache=True, error_model="numpy")
def _fill_point(t: int, r: int, phase: int, prices: np.ndarray, high: np.ndarray,
                low: np.ndarray, close: np.ndarray, volume: np.ndarray, atr: np.ndarray,
                sigma: np.ndarray, adv: np.ndarray, split_ratio: np.ndarray, units_target: bool, whole: bool,
                cp: np.ndarray, fs: np.ndarray, ist: np.ndarray, acc: np.ndarray,
                bar_cost: np.ndarray, fills: np.ndarray, n_fills: np.ndarray,
                trades: np.ndarray, n_trades: np.ndarray, inc: np.ndarray,
                order: np.ndarray) -> None:
    """Fill every symbol's order at ``prices[t]``: reducing fills first, then increases."""
    m = fs.shape[0]
    equity, _ = _marks(t, prices, close, fs, acc)
    any_inc = False
    for s in range(m):
        inc[s] = 0.0
        reason = ist[s, _NEED]
        if reason == NO_ORDER:
            continue
        if math.isnan(close[t, s]):
            ist[s, _NEED] = _PENDING
            continue
        p = prices[t, s]
        if units_target:
            desired = fs[s, _ACTIVE]
        elif equity > 0.0:
            desired = fs[s, _ACTIVE] * equity / p
        else:
            desired = 0.0
        if whole:
            desired = float(math.trunc(desired))
        held = fs[s, _UNITS]
        delta = desired - held
        ist[s, _NEED] = NO_ORDER
        if abs(delta) <= _DUST * max(abs(desired), abs(held)):  # float noise, not an order
            continue
        if held == 0.0 or (held > 0.0) == (delta > 0.0):
            red, grow = 0.0, delta
        elif abs(delta) <= abs(held):
            red, grow = delta, 0.0
        else:
            red, grow = -held, delta + held
        cap = cp[_PARTICIPATION]
        if not math.isinf(cap):
            # the last completed bar's volume, in bar t's basis
            v = volume[r, s] / _basis(t, r, s, split_ratio) if r >= 0 else math.nan
            cap = cap * v if not math.isnan(v) else 0.0
            if abs(red) > cap:
                red = math.copysign(math.trunc(cap) if whole else cap, red)
                grow = 0.0
                ist[s, _NEED] = _PENDING
            elif abs(grow) > cap - abs(red):
                left = cap - abs(red)
                grow = math.copysign(math.trunc(left) if whole else left, grow)
                ist[s, _NEED] = _PENDING
        order[s] = delta  # the impact of both halves comes from the whole order, before caps
        if red != 0.0:
            q, slip_pu, imp_pu = _exec(t, r, s, 1.0 if red > 0.0 else -1.0, delta, p, high, low,
                                       atr, sigma, adv, split_ratio, cp)
            _apply(t, s, red, p, q, slip_pu, imp_pu, reason, phase, fs, ist, acc, bar_cost,
                   fills, n_fills, trades, n_trades, cp)
        if grow != 0.0:
            inc[s] = grow
            ist[s, _INC_REASON] = reason  # remembered for the increasing fill
            any_inc = True
    if any_inc:
        _increase(t, r, phase, prices, high, low, close, atr, sigma, adv, split_ratio, whole, cp, fs, ist,
                  acc, bar_cost, fills, n_fills, trades, n_trades, inc, order)


@njit(cache=True, error_model="numpy")
def _increase(t: int, r: int, phase: int, prices: np.ndarray, high: np.ndarray,
              low: np.ndarray, close: np.ndarray, atr: np.ndarray, sigma: np.ndarray,
              adv: np.ndarray, split_ratio: np.ndarray, whole: bool, cp: np.ndarray, fs: np.ndarray, ist: np.ndarray,
              acc: np.ndarray, bar_cost: np.ndarray, fills: np.ndarray, n_fills: np.ndarray,
              trades: np.ndarray, n_trades: np.ndarray, inc: np.ndarray,
              order: np.ndarray) -> None:
    """Increasing fills under the buying-power rule (docs/backtest.md#order-size)."""
    m = fs.shape[0]
    lev = cp[_LEVERAGE]
    f = cp[_FEE_RATE]
    fixed = cp[_FEE_FIXED]
    equity, gross = _marks(t, prices, close, fs, acc)
    need = 0.0
    fixed_total = 0.0
    for s in range(m):
        if inc[s] != 0.0:
            p = prices[t, s]
            side = 1.0 if inc[s] > 0.0 else -1.0
            q = _exec(t, r, s, side, order[s], p, high, low, atr, sigma, adv, split_ratio, cp)[0]
            need += abs(inc[s]) * q * (1.0 + lev * f)
            fixed_total += fixed
    room = lev * equity - gross - lev * fixed_total
    requested = inc.copy()  # before any cut
    if need > room:
        k = max(0.0, room / need)
        for s in range(m):
            inc[s] *= k
            if whole:
                inc[s] = float(math.trunc(inc[s]))
    for s in range(m):
        u = inc[s]
        if u == 0.0:
            continue
        p = prices[t, s]
        side = 1.0 if u > 0.0 else -1.0
        q, slip_pu, imp_pu = _exec(t, r, s, side, order[s], p, high, low, atr, sigma, adv,
                                   split_ratio, cp)
        equity, gross = _marks(t, prices, close, fs, acc)
        # G + a*q <= L * (E - max(f*a*q + F, fee_min)): both bounds hold
        a = min(abs(u), (lev * (equity - fixed) - gross) / (q * (1.0 + lev * f)),
                (lev * (equity - cp[_FEE_MIN]) - gross) / q)
        if whole and a < abs(u):  # a quantity cut by buying power: whole units
            a = float(math.trunc(a))
        if a <= _DUST * abs(requested[s]):  # nothing left, or float noise of a fully used buying power
            continue
        opening = fs[s, _UNITS] == 0.0
        _apply(t, s, side * a, p, q, slip_pu, imp_pu, ist[s, _INC_REASON], phase, fs, ist,
               acc, bar_cost, fills, n_fills, trades, n_trades, cp)
        if opening:  # the ATR stop's distance: k x ATR of the last completed bar, in t's basis
            k = cp[_SL_ATR]
            fs[s, _ATRD] = k * atr[r, s] * _basis(t, r, s, split_ratio) \
                if not math.isnan(k) and r >= 0 else math.nan


@njit(cache=True, error_model="numpy")
def _stop_levels(t: int, open_: np.ndarray, high: np.ndarray, low: np.ndarray,
                 close: np.ndarray, cp: np.ndarray, fs: np.ndarray, ist: np.ndarray,
                 level: np.ndarray) -> bool:
    """Stop-loss, ATR stop, take-profit and trailing stop against bar t (docs/backtest.md#stops): the
    exit price of each stopped position into ``level`` (NaN: none) and its reason into
    ``ist[:, _EXIT]``; True when any position is stopped. Updates the peaks and troughs."""
    sl, tp, tsl = cp[_SL], cp[_TP], cp[_TSL]
    hit = False
    for s in range(fs.shape[0]):
        level[s] = math.nan
        units = fs[s, _UNITS]
        if units == 0.0 or math.isnan(close[t, s]):
            continue
        o, h, lo = open_[t, s], high[t, s], low[t, s]
        e = fs[s, _ENTRY]
        gap = ist[s, _OPENED_AT] != t
        reason = NO_ORDER
        if units > 0.0:
            fs[s, _PEAK] = max(fs[s, _PEAK], o)
            sl_lvl = e * (1.0 - sl) if not math.isnan(sl) else -math.inf
            atr_lvl = e - fs[s, _ATRD] if not math.isnan(fs[s, _ATRD]) else -math.inf
            tsl_lvl = fs[s, _PEAK] * (1.0 - tsl) if not math.isnan(tsl) else -math.inf
            stop_lvl = max(sl_lvl, atr_lvl, tsl_lvl)
            stop_reason = _STOP_LOSS if sl_lvl >= max(atr_lvl, tsl_lvl) else \
                _ATR_STOP if atr_lvl >= tsl_lvl else _TRAILING
            tp_lvl = e * (1.0 + tp) if not math.isnan(tp) else math.inf
            if gap and o <= stop_lvl:
                level[s], reason = o, stop_reason
            elif gap and o >= tp_lvl:
                level[s], reason = o, _TAKE_PROFIT
            elif lo <= stop_lvl:
                level[s], reason = min(stop_lvl, h), stop_reason
            elif h >= tp_lvl:
                level[s], reason = max(tp_lvl, lo), _TAKE_PROFIT
            else:
                fs[s, _PEAK] = max(fs[s, _PEAK], h)
        else:
            fs[s, _TROUGH] = min(fs[s, _TROUGH], o)
            sl_lvl = e * (1.0 + sl) if not math.isnan(sl) else math.inf
            atr_lvl = e + fs[s, _ATRD] if not math.isnan(fs[s, _ATRD]) else math.inf
            tsl_lvl = fs[s, _TROUGH] * (1.0 + tsl) if not math.isnan(tsl) else math.inf
            stop_lvl = min(sl_lvl, atr_lvl, tsl_lvl)
            stop_reason = _STOP_LOSS if sl_lvl <= min(atr_lvl, tsl_lvl) else \
                _ATR_STOP if atr_lvl <= tsl_lvl else _TRAILING
            tp_lvl = e * (1.0 - tp) if not math.isnan(tp) else -math.inf
            if gap and o >= stop_lvl:
                level[s], reason = o, stop_reason
            elif gap and o <= tp_lvl:
                level[s], reason = o, _TAKE_PROFIT
            elif h >= stop_lvl:
                level[s], reason = max(stop_lvl, lo), stop_reason
            elif lo <= tp_lvl:
                level[s], reason = min(tp_lvl, h), _TAKE_PROFIT
            else:
                fs[s, _TROUGH] = min(fs[s, _TROUGH], lo)
        ist[s, _EXIT] = reason
        hit = hit or reason != NO_ORDER
    return hit


@njit(cache=True, error_model="numpy")
def _stop_exits(t: int, high: np.ndarray, low: np.ndarray, atr: np.ndarray, sigma: np.ndarray,
                adv: np.ndarray, split_ratio: np.ndarray, cp: np.ndarray, fs: np.ndarray,
                ist: np.ndarray, acc: np.ndarray, bar_cost: np.ndarray, fills: np.ndarray,
                n_fills: np.ndarray, trades: np.ndarray, n_trades: np.ndarray,
                level: np.ndarray) -> None:
    """Fill the exits :func:`_stop_levels` found, in symbol order, phase ``intrabar``."""
    for s in range(fs.shape[0]):
        if math.isnan(level[s]):
            continue
        u = -fs[s, _UNITS]
        q, slip_pu, imp_pu = _exec(t, t - 1, s, 1.0 if u > 0.0 else -1.0, u, level[s], high, low,
                                   atr, sigma, adv, split_ratio, cp)
        _apply(t, s, u, level[s], q, slip_pu, imp_pu, ist[s, _EXIT], _INTRABAR, fs, ist, acc,
               bar_cost, fills, n_fills, trades, n_trades, cp)
        ist[s, _STOPPED] = 1
        ist[s, _NEED] = NO_ORDER


@njit(cache=True, error_model="numpy")
def _decide(d: int, start: int, rebalance_every: int, target: np.ndarray, direction: np.ndarray,
            fs: np.ndarray, ist: np.ndarray, scale: float, rescaled: bool) -> None:
    """Orders from the targets at the close of bar d (docs/backtest.md#when-an-order-is-created).
    The active target is the last non-NaN target times the drawdown control's ``scale``;
    ``rescaled`` (the scale changed at d) re-targets every symbol (reason ``drawdown``) except
    a stopped one: only a new strategy direction (not a new scale or size) lifts a stop, so
    neither the control nor a re-sizing reopens a position a stop closed."""
    rebalance = rebalance_every > 0 and (d - start) % rebalance_every == 0
    for s in range(fs.shape[0]):
        tg = target[d, s]
        if not math.isnan(tg):
            # a new direction of the strategy (``direction``; NaN there: the target's sign) lifts
            # a stop; a new size (the risk manager's re-estimate, even to 0) does not
            dv = direction[d, s]
            if math.isnan(dv):
                dv = tg
            sd = 1.0 if dv > 0.0 else -1.0 if dv < 0.0 else 0.0
            if sd != fs[s, _DIR]:  # NaN (no direction yet) differs from everything
                ist[s, _STOPPED] = 0
            fs[s, _DIR] = sd
            fs[s, _RAW] = tg
        elif not rescaled or math.isnan(fs[s, _RAW]):
            continue
        eff = fs[s, _RAW] * scale
        if eff != fs[s, _ACTIVE]:  # NaN (no target yet) differs from everything
            fs[s, _ACTIVE] = eff
            if ist[s, _STOPPED] == 0:
                ist[s, _NEED] = _DRAWDOWN if rescaled else _SIGNAL
        elif ist[s, _STOPPED] == 0 and rebalance and not math.isnan(tg):
            ist[s, _NEED] = _REBALANCE


@njit(cache=True, error_model="numpy")
def _drawdown_control(t: int, equity: float, cp: np.ndarray, dd: np.ndarray) -> bool:
    """Update the drawdown control with the equity marked at bar t's close; True when its scale
    changed (docs/risk.md#drawdown-control). ``dd`` = [high-water mark, scale, bar locked at]."""
    if dd[1] == 1.0:
        dd[0] = max(dd[0], equity)
        if equity <= dd[0] * (1.0 - cp[_DD_LIMIT]):
            dd[1] = cp[_DD_SCALE]
            dd[2] = t
            return True
    elif t - dd[2] >= cp[_DD_COOLDOWN]:
        dd[0] = equity
        dd[1] = 1.0
        return True
    return False


@njit(cache=True, error_model="numpy")
def _any_position(fs: np.ndarray) -> bool:
    for s in range(fs.shape[0]):
        if fs[s, _UNITS] != 0.0:
            return True
    return False


@njit(cache=True, error_model="numpy")
def _any_order(ist: np.ndarray) -> bool:
    for s in range(ist.shape[0]):
        if ist[s, _NEED] != NO_ORDER:
            return True
    return False


@njit(cache=True, error_model="numpy")
def simulate_nb(open_: np.ndarray, high: np.ndarray, low: np.ndarray, close: np.ndarray,
                volume: np.ndarray, split_ratio: np.ndarray, dividend: np.ndarray,
                atr: np.ndarray, sigma: np.ndarray, adv: np.ndarray, target: np.ndarray,
                direction: np.ndarray, start: int, fill_close: bool, init_cash: float, units_target: bool,
                whole: bool, rebalance_every: int, cp: np.ndarray, fills: np.ndarray,
                trades: np.ndarray):
    """Simulate one portfolio over bars ``start..n-1``.

    ``cp`` holds the cost and stop parameters in the order of this module's ``_FEE_RATE ..
    _LEVERAGE`` indices; ``fills`` / ``trades`` are preallocated record arrays (FILL_DT /
    TRADE_DT) large enough for every fill. Returns ``(equity, cash, units, marks, bar_costs,
    risk_scale, n_fills, n_trades)``: ``marks[t, s]`` is the last close (in the current basis) each position
    is marked at, ``bar_costs[t] = (fees, slippage, impact)`` of the fills of bar t,
    ``risk_scale[t]`` the drawdown control's scale after bar t (1 when it is off).
    """
    n, m = close.shape
    fs = np.zeros((m, 9))
    fs[:, _ACTIVE] = np.nan
    fs[:, _LAST] = np.nan
    fs[:, _ATRD] = np.nan
    fs[:, _RAW] = np.nan
    fs[:, _DIR] = np.nan
    dd_on = not math.isnan(cp[_DD_LIMIT])
    dd = np.array([init_cash, 1.0, -1.0])
    scale_out = np.ones(n)
    ist = np.zeros((m, 6), dtype=np.int64)
    ist[:, _NEED] = NO_ORDER
    ist[:, _TRADE] = -1
    ist[:, _OPENED_AT] = -1
    acc = np.zeros(4)
    acc[_CASH] = init_cash
    inc = np.zeros(m)
    order = np.zeros(m)
    level = np.zeros(m)
    equity = np.full(n, init_cash)
    cash = np.full(n, init_cash)
    units_out = np.zeros((n, m))
    marks = np.full((n, m), np.nan)
    bar_cost = np.zeros((n, 3))
    n_fills = np.zeros(1, dtype=np.int64)
    n_trades = np.zeros(1, dtype=np.int64)
    has_stops = not (math.isnan(cp[_SL]) and math.isnan(cp[_TP]) and math.isnan(cp[_TSL])
                     and math.isnan(cp[_SL_ATR]))
    for t in range(start, n):
        # the helpers are called only when they have work: a call passes some twenty arrays,
        # whose reference counting costs more than a quiet bar (docs/performance.md)
        holding = _any_position(fs)
        if holding:
            _corporate_actions(t, split_ratio, dividend, fs, ist, acc, trades)
        if not fill_close and t > start and _any_order(ist):
            _fill_point(t, t - 1, _OPEN, open_, high, low, close, volume, atr, sigma, adv,
                        split_ratio, units_target, whole, cp, fs, ist, acc, bar_cost, fills,
                        n_fills, trades, n_trades, inc, order)
        if has_stops and _any_position(fs) and _stop_levels(t, open_, high, low, close, cp, fs,
                                                              ist, level):
            _stop_exits(t, high, low, atr, sigma, adv, split_ratio, cp, fs, ist, acc, bar_cost,
                        fills, n_fills, trades, n_trades, level)
        if fill_close:
            rescaled = dd_on and _drawdown_control(t, _marks(t, close, close, fs, acc)[0], cp, dd)
            _decide(t, start, rebalance_every, target, direction, fs, ist, dd[1], rescaled)
            if _any_order(ist):
                _fill_point(t, t, _CLOSE, close, high, low, close, volume, atr, sigma, adv,
                            split_ratio, units_target, whole, cp, fs, ist, acc, bar_cost, fills,
                            n_fills, trades, n_trades, inc, order)
        value = acc[_CASH]
        for s in range(m):
            if not math.isnan(close[t, s]):
                fs[s, _LAST] = close[t, s]
            if fs[s, _UNITS] != 0.0:
                value += fs[s, _UNITS] * fs[s, _LAST]
            units_out[t, s] = fs[s, _UNITS]
            marks[t, s] = fs[s, _LAST]
        equity[t] = value
        cash[t] = acc[_CASH]
        if not fill_close:
            rescaled = dd_on and _drawdown_control(t, value, cp, dd)
            _decide(t, start, rebalance_every, target, direction, fs, ist, dd[1], rescaled)
        scale_out[t] = dd[1]
    for s in range(m):  # trades still open: marked at the last close
        tr = ist[s, _TRADE]
        if tr >= 0:
            trades[tr]["pnl"] += fs[s, _UNITS] * fs[s, _LAST]
            trades[tr]["exit_price"] = fs[s, _LAST]
            qty = abs(trades[tr]["quantity"])
            entry_value = trades[tr]["entry_price"]
            trades[tr]["entry_price"] = entry_value / qty
            pnl = trades[tr]["pnl"] - trades[tr]["fees"] + trades[tr]["dividends"]
            trades[tr]["pnl"] = pnl
            trades[tr]["ret"] = pnl / entry_value
    return equity, cash, units_out, marks, bar_cost, scale_out, n_fills[0], n_trades[0]
