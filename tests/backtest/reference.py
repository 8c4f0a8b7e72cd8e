"""A slow, plain-Python event loop of the backtest contract (docs/backtest.md).

This is the *reference* the numba kernel (``alphatwin/backtest/nb.py``) is checked against: it
shares nothing with the kernel but the input/record definitions (``params.py``, ``enums.py``). It
is written to be read line by line next to docs/backtest.md: plain loops over bars and symbols,
Python floats, no vectorization. Speed is not a goal.

Every place where the document leaves a choice open is marked ``# AMBIGUITY:``.

Outputs (see ``reference_simulate``) are lists/dicts; ``fills`` and ``trades`` use the field
names of ``FILL_DT`` and ``TRADE_DT``.
"""

from __future__ import annotations

import math

import numpy as np

from alphatwin.backtest.enums import FILL_DT, TRADE_DT, Phase, Reason
from alphatwin.backtest.params import Market, SimParams

__all__ = ["reference_simulate"]

FILL_FIELDS = tuple(FILL_DT.names)
TRADE_FIELDS = tuple(TRADE_DT.names)


def _isnan(x: float) -> bool:
    return math.isnan(x)


def _sign(x: float) -> float:
    if x > 0:
        return 1.0
    if x < 0:
        return -1.0
    return 0.0


def _rows(a: np.ndarray, n: int, m: int) -> list[list[float]]:
    """A (bar x symbol) array as a list of lists of Python floats."""
    a = np.asarray(a, dtype=np.float64)
    if a.ndim == 1:
        a = a.reshape(n, m)
    assert a.shape == (n, m), (a.shape, (n, m))
    return [[float(v) for v in row] for row in a]


def reference_simulate(market: Market, target: np.ndarray, params: SimParams, start: int = 0) -> dict:
    """Simulate ``target`` on ``market`` bar by bar, following docs/backtest.md literally.

    Returns ``{"equity": list[float] (n_bars), "cash": list[float], "units": list[list[float]]
    (n_bars x n_sym, after the close), "fees": list[float] per bar, "slippage": list[float] per bar,
    "impact": list[float] per bar, "fills": list[dict] (FILL_DT field names), "trades": list[dict]
    (TRADE_DT field names)}``.
    """
    return _Reference(market, target, params, start).run()


class _Reference:
    def __init__(self, market: Market, target: np.ndarray, params: SimParams, start: int) -> None:
        n, m = market.shape
        self.n, self.m = n, m
        self.start = int(start)
        self.open = _rows(market.open, n, m)
        self.high = _rows(market.high, n, m)
        self.low = _rows(market.low, n, m)
        self.close = _rows(market.close, n, m)
        self.volume = _rows(market.volume, n, m)
        self.split_ratio = _rows(market.split_ratio, n, m)
        self.dividend = _rows(market.dividend, n, m)
        self.atr = _rows(market.atr, n, m)
        self.sigma = _rows(market.sigma, n, m)
        self.adv = _rows(market.adv, n, m)
        self.target = _rows(target, n, m)

        self.fill_mode = params.fill
        self.init_cash = float(params.init_cash)
        self.target_kind = params.target_kind
        self.whole_units = bool(params.whole_units)
        self.leverage = float(params.leverage)
        self.rebalance_every = int(params.rebalance_every)
        c = params.costs
        self.f = c.fees_bps / 1e4  # proportional fee rate
        self.fee_fixed = float(c.fee_fixed)
        self.fee_min = float(c.fee_min)
        self.slippage_bps = float(c.slippage_bps)
        self.slippage_range = float(c.slippage_range)
        self.slippage_atr = float(c.slippage_atr)
        self.impact_k = float(c.impact_k)
        self.participation = float(c.participation)
        self.sl = float(params.stops.stop_loss)
        self.tp = float(params.stops.take_profit)
        self.tsl = float(params.stops.trailing_stop)

        # --- state ---
        self.cash = self.init_cash
        self.units = [0.0] * m
        self.last_close = [math.nan] * m
        self.active = [math.nan] * m  # the active target of each symbol (NaN: none yet)
        self.stopped = [False] * m  # flat after a stop until the target changes direction
        self.pending = [False] * m  # an order was cut by the participation cap or had no bar
        self.orders: dict[int, int] = {}  # symbol -> reason, for the next fill point
        self.trade: list[dict | None] = [None] * m  # the open trade of each symbol
        self.peak = [math.nan] * m
        self.trough = [math.nan] * m
        self.entered_at_open = [-1] * m  # bar at whose open the current position was opened

        # --- outputs ---
        self.fills: list[dict] = []
        self.closed_trades: list[dict] = []
        self.bar_fees = [0.0] * n
        self.bar_slippage = [0.0] * n
        self.bar_impact = [0.0] * n

    # ------------------------------------------------------------------ helpers

    def has_bar(self, t: int, s: int) -> bool:
        return not _isnan(self.close[t][s])

    def base_price(self, t: int, s: int, phase: int) -> float:
        return self.open[t][s] if phase == Phase.OPEN else self.close[t][s]

    def mark_price(self, t: int, s: int, phase: int) -> float:
        """The price a symbol is marked at during a fill point: its fill price if it has a bar at
        t, else its last close."""
        if self.has_bar(t, s):
            return self.base_price(t, s, phase)
        return self.last_close[s]

    def equity_at(self, t: int, phase: int) -> float:
        e = self.cash
        for s in range(self.m):
            if self.units[s] != 0:  # 0 units contribute 0 even if never seen (NaN last close)
                e += self.units[s] * self.mark_price(t, s, phase)
        return e

    def gross_at(self, t: int, phase: int) -> float:
        g = 0.0
        for s in range(self.m):
            if self.units[s] != 0:
                g += abs(self.units[s] * self.mark_price(t, s, phase))
        return g

    def entry_price(self, s: int) -> float:
        """e: the volume-weighted exec price of the increasing fills of the current position
        (split adjusted: the notional is split invariant, the quantity is multiplied by r)."""
        tr = self.trade[s]
        return tr["entry_notional"] / abs(tr["quantity"])

    def exec_price(self, t: int, s: int, p: float, side: float, order_abs: float,
                   phase: int) -> tuple[float, float, float]:
        """(q, slippage per unit, impact per unit) of a fill at base price p.

        The slippage/impact inputs come from the last completed bar: t-1 for a fill at the open
        or intrabar of t, t for a fill at the close of t.
        """
        # AMBIGUITY: "the last completed bar" is taken as the row t-1 (or t) itself; when the
        # symbol has no bar there (NaN row) slip_abs and impact are 0, rather than looking back to
        # the symbol's own last bar.
        row = t if phase == Phase.CLOSE else t - 1
        ratio = self.basis_ratio(t, row, s)  # prices of row t-1 / ratio, volumes * ratio
        slip_abs = 0.0
        impact = 0.0
        if row >= 0:
            if self.slippage_range > 0:
                hl = self.high[row][s] - self.low[row][s]
                if not _isnan(hl):
                    slip_abs = self.slippage_range * hl / ratio
            elif self.slippage_atr > 0:
                atr = self.atr[row][s]
                if not _isnan(atr):
                    slip_abs = self.slippage_atr * atr / ratio
            if self.impact_k > 0:
                sigma = self.sigma[row][s]
                adv = self.adv[row][s] * ratio
                if not _isnan(sigma) and not _isnan(adv) and adv > 0:
                    impact = self.impact_k * sigma * math.sqrt(order_abs / adv) * p
        slip_unit = p * self.slippage_bps / 1e4 + slip_abs
        if side < 0:  # a sale never goes below a price of 0
            slip_unit = min(slip_unit, p)
            impact = min(impact, p - slip_unit)
        q = p + side * (slip_unit + impact)
        return q, slip_unit, impact

    def basis_ratio(self, t: int, row: int, s: int) -> float:
        """The split ratio of bar t when the cost inputs come from the bar before it (row t-1 is in
        the old basis: its prices are divided, its volumes multiplied by the ratio); else 1."""
        if row < t:
            r = self.split_ratio[t][s]
            if not _isnan(r) and r > 0:
                return r
        return 1.0

    def participation_cap(self, t: int, s: int, phase: int) -> float:
        """participation x the volume of the last completed bar (t-1 at the open, t at the close)."""
        if math.isinf(self.participation):
            return math.inf  # no cap (also avoids inf * 0)
        row = t if phase == Phase.CLOSE else t - 1
        vol = self.volume[row][s] * self.basis_ratio(t, row, s) if row >= 0 else math.nan
        if _isnan(vol):
            return 0.0  # unknown volume: nothing allowed
        return self.participation * vol

    def cut(self, x: float, limit: float) -> tuple[float, bool]:
        """x (signed) with |x| cut to ``limit``; returns (x, whether it was cut)."""
        if abs(x) <= limit:
            return x, False
        size = max(limit, 0.0)
        if self.whole_units:
            # AMBIGUITY: under whole_units a quantity cut by the participation cap (or by buying
            # power) is truncated toward zero, so fills stay whole.
            size = float(math.trunc(size))
        return _sign(x) * size, True

    # ------------------------------------------------------------------ one fill

    def execute(self, t: int, s: int, u: float, p: float, q: float, slip_unit: float,
                impact_unit: float, reason: int, phase: int) -> None:
        """Fill u units (signed) of symbol s at exec price q: cash, units, costs, trade, records.

        A single call never crosses zero (a reversal is two calls)."""
        size = abs(u)
        fee = max(self.f * size * q + self.fee_fixed, self.fee_min)
        slippage = size * slip_unit
        impact = size * impact_unit
        if u > 0:
            self.cash -= u * q + fee  # buying: notional plus fee
        else:
            self.cash += size * q - fee  # selling: proceeds minus fee

        held = self.units[s]
        if held == 0:
            # a new position (and trade) opens
            self.trade[s] = {
                "col": s, "entry_bar": t, "quantity": 0.0, "entry_notional": 0.0,
                "exit_quantity": 0.0, "exit_notional": 0.0, "fees": 0.0, "slippage": 0.0,
                "impact": 0.0, "dividends": 0.0, "cash_flow": 0.0, "n_fills": 0,
            }
        tr = self.trade[s]
        if held == 0 or _sign(u) == _sign(held):  # increases the position
            tr["quantity"] += u
            tr["entry_notional"] += size * q
        else:  # reduces it
            tr["exit_quantity"] += size
            tr["exit_notional"] += size * q
        tr["fees"] += fee
        tr["slippage"] += slippage
        tr["impact"] += impact
        tr["cash_flow"] += -u * q
        tr["n_fills"] += 1

        self.units[s] = held + u
        # AMBIGUITY: only the fill that opens a position (from zero) starts peak/trough and makes
        # it "entered at this open" (no gap check on this bar); adding to a position moves the
        # entry price e (volume weighted) but keeps peak/trough and the gap check.
        if held == 0:
            # peak/trough start at the entry price at the fill that opens the position
            self.peak[s] = self.entry_price(s)
            self.trough[s] = self.entry_price(s)
            self.entered_at_open[s] = t if phase == Phase.OPEN else -1

        self.fills.append({
            "bar": t, "col": s, "units": u, "base_price": p, "price": q, "fee": fee,
            "slippage": slippage, "impact": impact, "reason": reason, "phase": phase,
        })
        self.bar_fees[t] += fee
        self.bar_slippage[t] += slippage
        self.bar_impact[t] += impact

        if self.units[s] == 0:
            self.close_trade(s, t, reason)

    def close_trade(self, s: int, t: int, reason: int) -> None:
        tr = self.trade[s]
        pnl = tr["cash_flow"] - tr["fees"] + tr["dividends"]
        entry_price = tr["entry_notional"] / abs(tr["quantity"])
        self.closed_trades.append({
            "col": s, "entry_bar": tr["entry_bar"], "exit_bar": t, "quantity": tr["quantity"],
            "entry_price": entry_price, "exit_price": tr["exit_notional"] / tr["exit_quantity"],
            "fees": tr["fees"], "slippage": tr["slippage"], "impact": tr["impact"],
            "dividends": tr["dividends"], "pnl": pnl, "ret": pnl / (abs(tr["quantity"]) * entry_price),
            "exit_reason": reason, "n_fills": tr["n_fills"],
        })
        self.trade[s] = None
        self.peak[s] = math.nan
        self.trough[s] = math.nan
        self.entered_at_open[s] = -1

    # ------------------------------------------------------------------ step 1: corporate actions

    def corporate_actions(self, t: int) -> None:
        for s in range(self.m):
            if self.units[s] == 0:
                continue  # only positions carried into t
            # Corporate actions apply to a position even when its symbol has no bar at t (NaN
            # close); the last close is divided by the split ratio so the mark stays right.
            # AMBIGUITY: with both on one bar, the split comes first and the dividend is paid on
            # the post-split units (the order of the doc's sentence).
            r = self.split_ratio[t][s]
            if not _isnan(r) and r != 1:
                tr = self.trade[s]
                self.units[s] = self.units[s] * r
                # entry price /= r: the notional (sum |u| * q) is split invariant, so multiplying
                # the quantities by r divides the volume-weighted prices by r.
                tr["quantity"] = tr["quantity"] * r
                tr["exit_quantity"] = tr["exit_quantity"] * r
                self.peak[s] = self.peak[s] / r
                self.trough[s] = self.trough[s] / r
                self.last_close[s] = self.last_close[s] / r  # the mark follows the units
            d = self.dividend[t][s]
            if not _isnan(d) and d != 0:
                amount = self.units[s] * d  # a short pays it
                self.cash += amount
                self.trade[s]["dividends"] += amount

    # ------------------------------------------------------------------ steps 2 and 4: fills

    def fill_orders(self, t: int, phase: int) -> None:
        orders = self.orders
        self.orders = {}
        if not orders:
            return
        lev = self.leverage
        f = self.f

        # AMBIGUITY: the equity E of the order size `w * E / p` is marked once, before any fill
        # of this fill point (the reducing fills' costs do not change the desired units).
        e0 = self.equity_at(t, phase)

        reducing = []  # (s, units, p, q, slip_unit, impact_unit, reason)
        increasing = []
        for s in sorted(orders):
            reason = orders[s]
            if not self.has_bar(t, s):
                self.pending[s] = True  # cannot fill: retried at the next fill opportunity
                continue
            p = self.base_price(t, s, phase)
            if self.target_kind == "weight":
                # a portfolio with no equity left holds nothing (weights of nothing)
                desired = self.active[s] * e0 / p if e0 > 0 else 0.0
            else:
                desired = self.active[s]
            if self.whole_units:
                desired = float(math.trunc(desired))
            held = self.units[s]
            order = desired - held
            self.pending[s] = False
            # dust: an order below a billionth of the position is float noise, not an order
            if abs(order) <= 1e-9 * max(abs(desired), abs(held)):
                continue
            # split into the part that reduces |position| and the part that increases it
            if held == 0 or (held > 0 and desired > held) or (held < 0 and desired < held):
                close_part, open_part = 0.0, order
            elif (held > 0 and desired >= 0) or (held < 0 and desired <= 0):
                close_part, open_part = order, 0.0
            else:  # a reversal: close the position, then open the new one
                close_part, open_part = -held, desired
            # participation cap: the closing half consumes it first, the opening half gets the rest
            cap = self.participation_cap(t, s, phase)
            close_part, cut_close = self.cut(close_part, cap)
            open_part, cut_open = self.cut(open_part, cap - abs(close_part))
            if cut_close or cut_open:
                self.pending[s] = True
            # AMBIGUITY: the impact's "desired units" is the whole order |desired - held| before
            # the participation and buying-power caps; both halves of a reversal use it.
            if close_part != 0:
                side = _sign(close_part)
                q, slip_unit, impact_unit = self.exec_price(t, s, p, side, abs(order), phase)
                reducing.append((s, close_part, p, q, slip_unit, impact_unit, reason))
            if open_part != 0:
                side = _sign(open_part)
                q, slip_unit, impact_unit = self.exec_price(t, s, p, side, abs(order), phase)
                increasing.append([s, open_part, p, q, slip_unit, impact_unit, reason])

        # 1) the orders that reduce exposure, in symbol order
        for s, u, p, q, slip_unit, impact_unit, reason in reducing:
            self.execute(t, s, u, p, q, slip_unit, impact_unit, reason, phase)

        if not increasing:
            return

        # 2) the orders that increase exposure, under the buying-power rule.
        # One common factor k when they do not fit together:
        #     sum_i |u_i| * q_i * (1 + L*f) + L * sum_i F  >  L*E - G
        e = self.equity_at(t, phase)
        g = self.gross_at(t, phase)
        need = 0.0
        fixed = 0.0
        for s, u, p, q, slip_unit, impact_unit, reason in increasing:
            need += abs(u) * q * (1 + lev * f)
            fixed += self.fee_fixed
        requested = {o[0]: abs(o[1]) for o in increasing}  # before any cut
        if need > 0:
            k = (lev * e - g - lev * fixed) / need
            if k < 1:
                k = max(0.0, k)
                for order in increasing:
                    scaled = order[1] * k
                    if self.whole_units:
                        scaled = float(math.trunc(scaled))
                    order[1] = scaled

        # ...then each, in symbol order, capped by what is left (E and G updated after each fill):
        #     largest = (L*(E - F) - G) / (q * (1 + L*f))
        #     or, when the minimum fee binds, (L*(E - fee_min) - G) / q
        # AMBIGUITY: "when the minimum fee binds" is judged at the largest size itself, which is
        # the same as taking the smaller of the two bounds (a fill must satisfy
        # G + |u|*q <= L*(E - max(f*|u|*q + F, fee_min)), i.e. both inequalities).
        for s, u, p, q, slip_unit, impact_unit, reason in increasing:
            e = self.equity_at(t, phase)
            g = self.gross_at(t, phase)
            largest = (lev * (e - self.fee_fixed) - g) / (q * (1 + lev * f))
            if self.fee_min > 0:
                largest = min(largest, (lev * (e - self.fee_min) - g) / q)
            u, _ = self.cut(u, largest)  # cut by buying power: done, not pending
            # nothing left, or dust (float noise of a fully used buying power)
            if abs(u) <= 1e-9 * requested[s] or (self.whole_units and abs(u) < 1):
                continue  # an increase that ends at nothing does not fill
            self.execute(t, s, u, p, q, slip_unit, impact_unit, reason, phase)

    # ------------------------------------------------------------------ step 3: stops

    def check_stops(self, t: int) -> None:
        sl, tp, tsl = self.sl, self.tp, self.tsl
        if _isnan(sl) and _isnan(tp) and _isnan(tsl):
            return
        for s in range(self.m):
            held = self.units[s]
            if held == 0 or not self.has_bar(t, s):
                continue
            o, hi, lo = self.open[t][s], self.high[t][s], self.low[t][s]
            e = self.entry_price(s)
            # a position opened at this bar's open is checked intrabar only (no gap check)
            fresh = self.entered_at_open[s] == t
            exit_price = math.nan
            exit_reason = -1
            if held > 0:
                self.peak[s] = max(self.peak[s], o)
                sl_level = e * (1 - sl) if not _isnan(sl) else math.nan
                tsl_level = self.peak[s] * (1 - tsl) if not _isnan(tsl) else math.nan
                tp_level = e * (1 + tp) if not _isnan(tp) else math.nan
                # the higher of the stop-loss and trailing levels (ties: stop-loss)
                if not _isnan(sl_level) and (_isnan(tsl_level) or sl_level >= tsl_level):
                    stop_level, stop_reason = sl_level, Reason.STOP_LOSS
                elif not _isnan(tsl_level):
                    stop_level, stop_reason = tsl_level, Reason.TRAILING_STOP
                else:
                    stop_level, stop_reason = math.nan, -1
                if not fresh:
                    if not _isnan(stop_level) and o <= stop_level:
                        exit_price, exit_reason = o, stop_reason
                    elif not _isnan(tp_level) and o >= tp_level:
                        exit_price, exit_reason = o, Reason.TAKE_PROFIT
                if exit_reason == -1:
                    # an intrabar exit price is the level clipped into the bar's [low, high]
                    if not _isnan(stop_level) and lo <= stop_level:
                        exit_price, exit_reason = min(stop_level, hi), stop_reason
                    elif not _isnan(tp_level) and hi >= tp_level:
                        exit_price, exit_reason = max(tp_level, lo), Reason.TAKE_PROFIT
                if exit_reason == -1:
                    self.peak[s] = max(self.peak[s], hi)
            else:
                self.trough[s] = min(self.trough[s], o)
                sl_level = e * (1 + sl) if not _isnan(sl) else math.nan
                tsl_level = self.trough[s] * (1 + tsl) if not _isnan(tsl) else math.nan
                tp_level = e * (1 - tp) if not _isnan(tp) else math.nan
                # the lower of the stop-loss and trailing levels (ties: stop-loss)
                if not _isnan(sl_level) and (_isnan(tsl_level) or sl_level <= tsl_level):
                    stop_level, stop_reason = sl_level, Reason.STOP_LOSS
                elif not _isnan(tsl_level):
                    stop_level, stop_reason = tsl_level, Reason.TRAILING_STOP
                else:
                    stop_level, stop_reason = math.nan, -1
                if not fresh:
                    if not _isnan(stop_level) and o >= stop_level:
                        exit_price, exit_reason = o, stop_reason
                    elif not _isnan(tp_level) and o <= tp_level:
                        exit_price, exit_reason = o, Reason.TAKE_PROFIT
                if exit_reason == -1:
                    if not _isnan(stop_level) and hi >= stop_level:
                        exit_price, exit_reason = max(stop_level, lo), stop_reason
                    elif not _isnan(tp_level) and lo <= tp_level:
                        exit_price, exit_reason = min(tp_level, hi), Reason.TAKE_PROFIT
                if exit_reason == -1:
                    self.trough[s] = min(self.trough[s], lo)
            if exit_reason == -1:
                continue
            # Stop exit: the whole position, no participation cap, slippage/impact/fees as any fill.
            # Phase code INTRABAR (1) also for the exits at the open (gap).
            # An intrabar exit of a position entered at this bar's open can find its level above
            # the open (long), e.g. a trailing stop tighter than the entry slippage: the level is
            # clipped into the bar's range (docs/backtest.md#stops).
            u = -held
            side = _sign(u)
            q, slip_unit, impact_unit = self.exec_price(t, s, exit_price, side, abs(held), Phase.INTRABAR)
            self.execute(t, s, u, exit_price, q, slip_unit, impact_unit, exit_reason, Phase.INTRABAR)
            self.stopped[s] = True
            self.pending[s] = False

    # ------------------------------------------------------------------ step 5: marking

    def mark(self, t: int) -> float:
        for s in range(self.m):
            if self.has_bar(t, s):
                self.last_close[s] = self.close[t][s]
        equity = self.cash
        for s in range(self.m):
            if self.units[s] != 0:
                equity += self.units[s] * self.last_close[s]
        return equity

    # ------------------------------------------------------------------ decisions

    def decide(self, d: int) -> None:
        """The targets at the close of d become orders (for the open of d+1 or the close of d)."""
        rebalancing = self.rebalance_every > 0 and (d - self.start) % self.rebalance_every == 0
        orders: dict[int, int] = {}
        for s in range(self.m):
            x = self.target[d][s]
            if _isnan(x):
                # no new target: an order still pending is retried
                if self.pending[s]:
                    orders[s] = Reason.PENDING
                continue
            if _isnan(self.active[s]) or x != self.active[s]:
                # a new direction lifts a stop; a new size of the same sign does not
                if _isnan(self.active[s]) or (x > 0) != (self.active[s] > 0) or (x < 0) != (self.active[s] < 0):
                    self.stopped[s] = False
                self.active[s] = x
                if not self.stopped[s]:
                    orders[s] = Reason.SIGNAL
            elif rebalancing and not self.stopped[s]:
                orders[s] = Reason.REBALANCE
            elif self.pending[s] and not self.stopped[s]:
                orders[s] = Reason.PENDING
        self.orders = orders

    # ------------------------------------------------------------------ the bar loop

    def run(self) -> dict:
        n, m = self.n, self.m
        equity_out: list[float] = []
        cash_out: list[float] = []
        units_out: list[list[float]] = []
        for t in range(n):
            if t < self.start:  # ignored entirely
                equity_out.append(self.init_cash)
                cash_out.append(self.init_cash)
                units_out.append([0.0] * m)
                continue
            # 1. corporate actions on the positions carried into t
            self.corporate_actions(t)
            # 2. open: the orders decided at the close of t-1
            if self.fill_mode == "open":
                self.fill_orders(t, Phase.OPEN)
            # 3. stops
            self.check_stops(t)
            # 4. close: the orders decided at the close of t fill at it
            if self.fill_mode == "close":
                self.decide(t)
                self.fill_orders(t, Phase.CLOSE)
            # 5. mark to market
            equity_out.append(self.mark(t))
            cash_out.append(self.cash)
            units_out.append(list(self.units))
            # 6. decision for the open of t+1 (those of the last bar never fill)
            if self.fill_mode == "open":
                self.decide(t)

        trades = list(self.closed_trades)
        # AMBIGUITY: trades are listed in the order they close, then the still-open ones in
        # symbol order (exit_bar = -1, exit_price = last close, exit_reason = -1).
        for s in range(m):
            tr = self.trade[s]
            if tr is None:
                continue
            entry_price = tr["entry_notional"] / abs(tr["quantity"])
            pnl = tr["cash_flow"] - tr["fees"] + tr["dividends"] + self.units[s] * self.last_close[s]
            trades.append({
                "col": s, "entry_bar": tr["entry_bar"], "exit_bar": -1, "quantity": tr["quantity"],
                "entry_price": entry_price, "exit_price": self.last_close[s], "fees": tr["fees"],
                "slippage": tr["slippage"], "impact": tr["impact"], "dividends": tr["dividends"],
                "pnl": pnl, "ret": pnl / (abs(tr["quantity"]) * entry_price), "exit_reason": -1,
                "n_fills": tr["n_fills"],
            })
        for fill in self.fills:
            assert tuple(fill) == FILL_FIELDS
        for trade in trades:
            assert tuple(trade) == TRADE_FIELDS
        return {
            "equity": equity_out, "cash": cash_out, "units": units_out, "fees": self.bar_fees,
            "slippage": self.bar_slippage, "impact": self.bar_impact, "fills": self.fills,
            "trades": trades,
        }
