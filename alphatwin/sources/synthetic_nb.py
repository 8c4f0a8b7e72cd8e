"""Numba kernels behind :mod:`alphatwin.sources.synthetic`: one symbol's bars, one RNG stream each.

Every symbol draws from its own SplitMix64 stream seeded by the wrapper (from a NumPy
``SeedSequence`` keyed by the symbol's number), so a symbol's bars never depend on which other
symbols share its chunk, nor on the chunk size, nor on the thread that simulates it.

Arrays are symbol-major: row ``s * n_bars + t`` is bar ``t`` of the chunk's symbol ``s``. The
kernels assume valid input; :class:`~alphatwin.sources.synthetic.SyntheticSource` checks it.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

__all__ = [
    "DEFECT_CODES",
    "simulate_bars_nb",
    "inject_defects_nb",
    "uniforms_nb",
]

#: Defect codes written by :func:`inject_defects_nb` (0 = clean bar).
DEFECT_CODES: dict[str, int] = {
    "gap": 1,
    "duplicate": 2,
    "broken_ohlc": 3,
    "spike": 4,
    "zero_volume_halt": 5,
}

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_S30 = np.uint64(30)
_S27 = np.uint64(27)
_S31 = np.uint64(31)
_S11 = np.uint64(11)
_TWO_M53 = 1.0 / 9007199254740992.0

# Per-symbol parameters (indices into the array _draw_params fills).
_P0, _MU, _SD_LO, _SD_HI, _P_UP, _P_DOWN, _DOLLAR_VOL, _SPLIT_AT, _PAYER, _YIELD_Q, _PHASE = range(11)
_N_PARAMS = 11

_JUMP_PER_DAY = 0.004  # about one jump a year
_JUMP_SD = 0.06
_SPLIT_PER_SESSION = 0.05  # chance a board acts on a given day once the price is out of range
_DIVIDEND_EVERY = 63  # business days in a quarter


@njit(cache=True)
def _next_u64(state: np.ndarray) -> np.uint64:
    """SplitMix64: advance ``state[0]`` and return the next 64 random bits."""
    state[0] += _GOLDEN
    z = state[0]
    z = (z ^ (z >> _S30)) * _MIX1
    z = (z ^ (z >> _S27)) * _MIX2
    return z ^ (z >> _S31)


@njit(cache=True)
def _uniform(state: np.ndarray) -> float:
    """A uniform draw in the open interval (0, 1)."""
    return (float(_next_u64(state) >> _S11) + 0.5) * _TWO_M53


# Acklam's rational approximation of the standard normal quantile (relative error < 1.2e-9).
_A = (-3.969683028665376e01, 2.209460984245205e02, -2.759285104469687e02,
      1.383577518672690e02, -3.066479806614716e01, 2.506628277459239e00)
_B = (-5.447609879822406e01, 1.615858368580409e02, -1.556989798598866e02,
      6.680131188771972e01, -1.328068155288572e01)
_C = (-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e00,
      -2.549732539343734e00, 4.374664141464968e00, 2.938163982698783e00)
_D = (7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e00, 3.754408661907416e00)
_P_LOW = 0.02425


@njit(cache=True)
def _normal(state: np.ndarray) -> float:
    """A standard normal by inverse-transform sampling (no trigonometry, one log in the tails)."""
    u = _uniform(state)
    if _P_LOW <= u <= 1.0 - _P_LOW:
        q = u - 0.5
        r = q * q
        num = (((((_A[0] * r + _A[1]) * r + _A[2]) * r + _A[3]) * r + _A[4]) * r + _A[5]) * q
        return num / (((((_B[0] * r + _B[1]) * r + _B[2]) * r + _B[3]) * r + _B[4]) * r + 1.0)
    q = math.sqrt(-2.0 * math.log(u if u < 0.5 else 1.0 - u))
    x = (((((_C[0] * q + _C[1]) * q + _C[2]) * q + _C[3]) * q + _C[4]) * q + _C[5]) / (
        (((_D[0] * q + _D[1]) * q + _D[2]) * q + _D[3]) * q + 1.0
    )
    return x if u < 0.5 else -x


@njit(cache=True)
def _tick(x: float) -> float:
    """Round a price to the tick: cents at or above 1, 1/10000 below, never 0 (monotone in ``x``)."""
    if x >= 1.0:
        return math.floor(x * 100.0 + 0.5) / 100.0
    return max(0.0001, math.floor(x * 10000.0 + 0.5) / 10000.0)


@njit(cache=True)
def uniforms_nb(seed: np.uint64, n: int) -> np.ndarray:
    """``n`` uniforms from one SplitMix64 stream (exposed for tests of the generator)."""
    state = np.empty(1, np.uint64)
    state[0] = seed
    out = np.empty(n)
    for i in range(n):
        out[i] = _uniform(state)
    return out


@njit(cache=True)
def _draw_params(state: np.ndarray) -> np.ndarray:
    """One symbol's character: price level, drift, two vol regimes, liquidity, corporate actions."""
    p = np.empty(_N_PARAMS)
    p[_P0] = math.exp(math.log(10.0) + _uniform(state) * (math.log(300.0) - math.log(10.0)))
    p[_MU] = 0.07 + 0.12 * _normal(state)
    p[_SD_LO] = 0.12 + 0.33 * _uniform(state)
    p[_SD_HI] = p[_SD_LO] * (2.0 + 1.5 * _uniform(state))
    p[_P_UP] = 0.01  # per day, calm -> stressed
    p[_P_DOWN] = 0.06  # per day, stressed -> calm
    p[_DOLLAR_VOL] = math.exp(math.log(2e6) + _uniform(state) * (math.log(5e8) - math.log(2e6)))
    p[_SPLIT_AT] = 150.0 + 450.0 * _uniform(state)
    p[_PAYER] = 1.0 if _uniform(state) < 0.5 else 0.0
    p[_YIELD_Q] = (0.005 + 0.035 * _uniform(state)) / 4.0
    p[_PHASE] = math.floor(_uniform(state) * _DIVIDEND_EVERY)
    return p


@njit(cache=True)
def _split_ratio(state: np.ndarray, prev_close: float, split_at: float) -> float:
    """New shares per old share decided before a session opens (1.0: no split)."""
    if prev_close > split_at and _uniform(state) < _SPLIT_PER_SESSION:
        return 2.0 if _uniform(state) < 0.7 else 3.0
    if prev_close < 1.0 and _uniform(state) < _SPLIT_PER_SESSION:
        return 0.1  # a 1-for-10 reverse split
    return 1.0


@njit(cache=True)
def _is_ex_date(bday_prev: int, bday_now: int, phase: float) -> bool:
    """Whether a quarterly ex-date (every 63 business days from ``phase``) falls in (prev, now]."""
    return math.floor((bday_now - phase) / _DIVIDEND_EVERY) > math.floor((bday_prev - phase) / _DIVIDEND_EVERY)


@njit(cache=True)
def _switch_regime(state: np.ndarray, regime: int, p_up: float, p_down: float) -> int:
    """One step of the two-state Markov chain (0 calm, 1 stressed)."""
    u = _uniform(state)
    if regime == 0:
        return 1 if u < p_up else 0
    return 0 if u < p_down else 1


@njit(cache=True)
def _body_return(state: np.ndarray, mu_day: float, sd_day: float, body_frac: float, bar_frac: float, p_jump: float):
    """Log return from a bar's open to its close: drift, diffusion and maybe a jump."""
    ret = (mu_day - 0.5 * sd_day * sd_day) * bar_frac + sd_day * math.sqrt(body_frac) * _normal(state)
    if _uniform(state) < p_jump:
        ret += _JUMP_SD * _normal(state)
    return ret


@njit(cache=True)
def _simulate_symbol(state, bar_frac, days_per_year, overnight_frac, bday, vol_shape, actions, o, h, lo, c, v, d, sp):
    p = _draw_params(state)
    body_frac = bar_frac * (1.0 - overnight_frac)
    p_up, p_down = 1.0 - (1.0 - p[_P_UP]) ** bar_frac, 1.0 - (1.0 - p[_P_DOWN]) ** bar_frac
    p_jump = 1.0 - (1.0 - _JUMP_PER_DAY) ** bar_frac
    sd_calm_bar = p[_SD_LO] / math.sqrt(days_per_year) * math.sqrt(bar_frac)
    prev_close, regime = _tick(p[_P0]), 0
    for t in range(o.shape[0]):
        regime = _switch_regime(state, regime, p_up, p_down)
        sd_day = (p[_SD_LO] if regime == 0 else p[_SD_HI]) / math.sqrt(days_per_year)
        body = _body_return(state, p[_MU] / days_per_year, sd_day, body_frac, bar_frac, p_jump)
        sessions = bday[t] - (bday[t - 1] if t > 0 else bday[0] - 1)
        base, gap, ratio, div = prev_close, 0.0, 1.0, 0.0
        if sessions > 0:
            gap = sd_day * math.sqrt(overnight_frac * sessions) * _normal(state)
            if actions:
                ratio = _split_ratio(state, prev_close, p[_SPLIT_AT])
                base = prev_close / ratio
                if p[_PAYER] > 0.0 and _is_ex_date(bday[t] - sessions, bday[t], p[_PHASE]):
                    div = math.floor(p[_YIELD_Q] * base * 10000.0 + 0.5) / 10000.0
        op = _tick((base - div) * math.exp(gap)) if gap != 0.0 else _tick(base - div)
        cl = _tick(op * math.exp(body))
        spread = sd_day * math.sqrt(bar_frac) * 0.4
        h[t] = _tick(max(op, cl) * (1.0 + abs(_normal(state)) * spread))
        lo[t] = _tick(min(op, cl) / (1.0 + abs(_normal(state)) * spread))
        if div >= cl:
            div = math.floor(cl * 5000.0) / 10000.0
        intensity = 0.4 * _normal(state) + 0.5 * abs(gap + body) / sd_calm_bar - 0.45
        v[t] = max(1.0, math.floor(p[_DOLLAR_VOL] * bar_frac * vol_shape[t] / cl * math.exp(intensity)))
        o[t], c[t], d[t], sp[t] = op, cl, div, ratio
        prev_close = cl


@njit(cache=True, parallel=True, nogil=True)
def simulate_bars_nb(
    seeds: np.ndarray,
    n_bars: int,
    bar_frac: float,
    days_per_year: float,
    overnight_frac: float,
    bday: np.ndarray,
    vol_shape: np.ndarray,
    actions: bool,
    open_: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    volume: np.ndarray,
    dividend: np.ndarray,
    split: np.ndarray,
) -> None:
    """Fill the OHLCV and corporate-action arrays of ``len(seeds)`` symbols x ``n_bars`` bars.

    Log prices follow a GBM whose volatility switches between a calm and a stressed regime
    (two-state Markov chain), with Poisson jumps and an overnight gap at each new session
    (``bday`` is the business-day ordinal of each bar; it rises at a session start). Prices are
    unadjusted: a split divides the price level going forward, a dividend drops it on the
    ex-date. Volume is whole shares, log-normal around a dollar volume and rising with |return|.
    """
    for s in prange(seeds.shape[0]):
        state = np.empty(1, np.uint64)
        state[0] = seeds[s]
        a, b = s * n_bars, (s + 1) * n_bars
        _simulate_symbol(
            state, bar_frac, days_per_year, overnight_frac, bday, vol_shape, actions,
            open_[a:b], high[a:b], low[a:b], close[a:b], volume[a:b], dividend[a:b], split[a:b],
        )


@njit(cache=True)
def _break_ohlc(o: float, h: float, lo: float, c: float) -> tuple[float, float]:
    """High/low of a bar made inconsistent: swapped, or a high below the body when flat."""
    if h > lo:
        return lo, h
    return _tick(min(o, c) * 0.97), lo


@njit(cache=True)
def _spike(state: np.ndarray, c: float) -> float:
    """A bad print: the close multiplied (or divided) by a factor between 5 and 20."""
    factor = math.exp(math.log(5.0) + _uniform(state) * (math.log(20.0) - math.log(5.0)))
    return _tick(c * factor if _uniform(state) < 0.5 else c / factor)


@njit(cache=True)
def _inject_symbol(state, cum_rates, o, h, lo, c, v, code, alt_close, alt_volume):
    prev_clean_close = o[0]
    for t in range(o.shape[0]):
        u = _uniform(state)
        clean_close = c[t]
        kind = 0
        for k in range(cum_rates.shape[0]):
            if u < cum_rates[k]:
                kind = k + 1
                break
        code[t] = kind
        if kind == 2:  # duplicate: an exact copy or a conflicting close/volume
            alt_close[t], alt_volume[t] = c[t], v[t]
            if _uniform(state) < 0.5:
                alt_close[t] = _tick(lo[t] + _uniform(state) * (h[t] - lo[t]))
                alt_volume[t] = max(1.0, math.floor(v[t] * (0.5 + _uniform(state))))
        elif kind == 3:
            h[t], lo[t] = _break_ohlc(o[t], h[t], lo[t], c[t])
        elif kind == 4:
            c[t] = _spike(state, c[t])
            h[t], lo[t] = max(h[t], c[t]), min(lo[t], c[t])
        elif kind == 5:
            o[t] = h[t] = lo[t] = c[t] = prev_clean_close
            v[t] = 0.0
        prev_clean_close = clean_close


@njit(cache=True, parallel=True, nogil=True)
def inject_defects_nb(
    seeds: np.ndarray,
    n_bars: int,
    cum_rates: np.ndarray,
    open_: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    volume: np.ndarray,
    code: np.ndarray,
    alt_close: np.ndarray,
    alt_volume: np.ndarray,
) -> None:
    """Pick at most one defect per bar (cumulative rates in :data:`DEFECT_CODES` order) and apply it.

    Broken OHLC, spikes and halts edit the arrays in place; gaps and duplicates are only marked
    in ``code`` (the wrapper drops or repeats those rows; a duplicate's second row takes
    ``alt_close``/``alt_volume``).
    """
    for s in prange(seeds.shape[0]):
        state = np.empty(1, np.uint64)
        state[0] = seeds[s]
        a, b = s * n_bars, (s + 1) * n_bars
        _inject_symbol(
            state, cum_rates, open_[a:b], high[a:b], low[a:b], close[a:b], volume[a:b],
            code[a:b], alt_close[a:b], alt_volume[a:b],
        )
