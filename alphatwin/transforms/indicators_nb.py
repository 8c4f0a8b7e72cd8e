"""Numba kernels behind :mod:`alphatwin.transforms.indicators`: point-in-time technical indicators.

Rows are sorted by (symbol, ts), one segment per symbol; ``starts`` holds the segment offsets
(length n_segments + 1). Prices and volumes are as traded; ``pf[i]`` / ``vf[i]`` are the factors
of a corporate action effective at row ``i`` (a price / volume of a row before ``i`` times
``pf[i]`` / ``vf[i]`` is comparable with row ``i``; 1.0 on rows without an event).

Every output at row ``t`` is computed from rows ``<= t`` only, in row ``t``'s own basis:

* A window indicator is a fixed sequence of operations on its window's values in row ``t``'s
  basis, so it depends on the window alone and a continuation given the window as context
  reproduces it bit for bit. Sums run in one fixed order (first value, then += each next one;
  means and variances are shifted by the window's first value, which makes them exact on a
  flat window). Rows whose window holds no event read the raw values, and are computed many
  rows at a time (``_v_*``: the same order per row, vectorized across rows); a row whose window
  holds an event (``lev[t] > t-n+1``) is recomputed alone (``_r_*``) on a copy of its window
  rescaled to row ``t`` by :func:`_gather` (``x[i] * pf[t] * ... * pf[i+1]``, newest first).
* Recursive states (EMA, Wilder averages, OBV) are carried in the previous row's basis and
  multiplied by ``pf[t]`` (``vf[t]`` for OBV) before row ``t`` updates them. Their warm-up seeds
  are sums carried the same way (``s = s * pf[t] + x[t]``).

No fast-math: vector and scalar code give the same IEEE results, whichever rows a vector loop
happens to cover. The kernels assume valid input; the wrapper checks it.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

__all__ = ["KIND_CODES", "features_nb", "first_invalid_nb"]

#: Kind codes of the feature kinds, in canonical order.
KIND_CODES: dict[str, int] = {
    name: code for code, name in enumerate((
        "ret", "vol", "parkinson", "obv", "vwap", "vroc", "sma", "ema", "wma", "rsi", "macd",
        "stoch", "bbands", "atr", "zscore", "minmax", "robust",
    ))
}
(K_RET, K_VOL, K_PARKINSON, K_OBV, K_VWAP, K_VROC, K_SMA, K_EMA, K_WMA, K_RSI, K_MACD, K_STOCH,
 K_BBANDS, K_ATR, K_ZSCORE, K_MINMAX, K_ROBUST) = range(17)

_NAN = np.nan
_TILE = 256  # rows per vectorized block (keeps the block's accumulators in L1)
_FOUR_LN2 = 4.0 * math.log(2.0)
_STOCH_EPS = 1e-14  # TA-Lib's TA_EPSILON, relative to |HH| + |LL| (its TA_IS_ZERO_SCALED)


# --------------------------------------------------------------------------- one window (scalar)


@njit(cache=True)
def _gather(x, xlo, f, lo, n, buf):
    """``buf[:n]`` = ``x[xlo:xlo+n]`` (rows lo..lo+n-1) in the basis of row lo+n-1."""
    c = 1.0
    for j in range(n - 1, -1, -1):
        buf[j] = x[xlo + j] * c
        c *= f[lo + j]


@njit(cache=True)
def _r_sum(w, lo, n):
    s = w[lo]
    for j in range(1, n):
        s += w[lo + j]
    return s


@njit(cache=True)
def _r_mean(w, lo, n):
    s = 0.0
    for j in range(1, n):
        s += w[lo + j] - w[lo]
    return w[lo] + s / n


@njit(cache=True)
def _r_ssd(w, lo, n, m):
    s = 0.0
    for j in range(n):
        d = w[lo + j] - m
        s += d * d
    return s


@njit(cache=True)
def _r_wsum(w, lo, n):
    s = 0.0
    for j in range(n):
        s += (j + 1.0) * w[lo + j]
    return s


@njit(cache=True)
def _r_dot(w, wo, v, vo, n):
    s = 0.0
    for j in range(n):
        s += w[wo + j] * v[vo + j]
    return s


@njit(cache=True)
def _r_min(w, lo, n):
    s = w[lo]
    for j in range(1, n):
        s = w[lo + j] if w[lo + j] < s else s
    return s


@njit(cache=True)
def _r_max(w, lo, n):
    s = w[lo]
    for j in range(1, n):
        s = w[lo + j] if w[lo + j] > s else s
    return s


# --------------------------------------------------------------------------- many windows (vector)
# Row t's window of x is x[t-n+1-xo .. t-xo]; the result goes to o[t-oo], for t in [t1, t2).


@njit(cache=True)
def _v_sum(x, xo, n, o, oo, t1, t2):
    for tb in range(t1, t2, _TILE):
        te = min(tb + _TILE, t2)
        ob = o[tb - oo:te - oo]
        ob[:] = x[tb - n + 1 - xo:te - n + 1 - xo]
        for j in range(1, n):
            xj = x[tb - n + 1 + j - xo:te - n + 1 + j - xo]
            for k in range(te - tb):
                ob[k] += xj[k]


@njit(cache=True)
def _v_mean(x, xo, n, o, oo, t1, t2):
    for tb in range(t1, t2, _TILE):
        te = min(tb + _TILE, t2)
        ob = o[tb - oo:te - oo]
        x0 = x[tb - n + 1 - xo:te - n + 1 - xo]
        ob[:] = 0.0
        for j in range(1, n):
            xj = x[tb - n + 1 + j - xo:te - n + 1 + j - xo]
            for k in range(te - tb):
                ob[k] += xj[k] - x0[k]
        for k in range(te - tb):
            ob[k] = x0[k] + ob[k] / n


@njit(cache=True)
def _v_ssd(x, xo, n, m, mo, o, oo, t1, t2):
    for tb in range(t1, t2, _TILE):
        te = min(tb + _TILE, t2)
        ob = o[tb - oo:te - oo]
        mb = m[tb - mo:te - mo]
        ob[:] = 0.0
        for j in range(n):
            xj = x[tb - n + 1 + j - xo:te - n + 1 + j - xo]
            for k in range(te - tb):
                d = xj[k] - mb[k]
                ob[k] += d * d


@njit(cache=True)
def _v_wsum(x, xo, n, o, oo, t1, t2):
    for tb in range(t1, t2, _TILE):
        te = min(tb + _TILE, t2)
        ob = o[tb - oo:te - oo]
        ob[:] = 0.0
        for j in range(n):
            xj = x[tb - n + 1 + j - xo:te - n + 1 + j - xo]
            wj = j + 1.0
            for k in range(te - tb):
                ob[k] += wj * xj[k]


@njit(cache=True)
def _v_dot(x, xo, y, yo, n, o, oo, t1, t2):
    for tb in range(t1, t2, _TILE):
        te = min(tb + _TILE, t2)
        ob = o[tb - oo:te - oo]
        ob[:] = 0.0
        for j in range(n):
            xj = x[tb - n + 1 + j - xo:te - n + 1 + j - xo]
            yj = y[tb - n + 1 + j - yo:te - n + 1 + j - yo]
            for k in range(te - tb):
                ob[k] += xj[k] * yj[k]


@njit(cache=True)
def _v_extreme(x, xo, n, o, oo, t1, t2, want_max):
    for tb in range(t1, t2, _TILE):
        te = min(tb + _TILE, t2)
        ob = o[tb - oo:te - oo]
        ob[:] = x[tb - n + 1 - xo:te - n + 1 - xo]
        for j in range(1, n):
            xj = x[tb - n + 1 + j - xo:te - n + 1 + j - xo]
            if want_max:
                for k in range(te - tb):
                    ob[k] = xj[k] if xj[k] > ob[k] else ob[k]
            else:
                for k in range(te - tb):
                    ob[k] = xj[k] if xj[k] < ob[k] else ob[k]


@njit(cache=True)
def _first(t0, warm, b):
    """First output row: not before ``t0`` nor the warm-up row, never past the segment's end ``b``."""
    return min(max(t0, warm), b)


@njit(cache=True)
def _nan(o, a, e):
    for t in range(a, e):
        o[t] = _NAN


@njit(cache=True)
def _last_events(f, a, b, lev):
    """``lev[t-a]`` = the last row ``i`` in ``[a, t]`` with ``f[i] != 1`` (``a`` if none)."""
    last = a
    for t in range(a, b):
        if f[t] != 1.0:
            last = t
        lev[t - a] = last


# --------------------------------------------------------------------------- window indicators
# Arguments: segment rows [a, b), first output row t0; ``lev``/``levv``: see _last_events;
# ``s1``, ``s2``: segment-relative scratch; ``buf``, ``buf2``: one-window scratch.


@njit(cache=True)
def _ret(close, pf, lr, a, b, t0, o_ret, o_lr):
    start = _first(t0, a + 1, b)
    _nan(o_ret, a, start)
    _nan(o_lr, a, start)
    for t in range(start, b):
        o_ret[t] = close[t] / (close[t - 1] * pf[t]) - 1.0
        o_lr[t] = lr[t - a]


@njit(cache=True)
def _vol(lr, a, b, t0, n, s1, o):
    """Sample std (ddof=1) of the (scale-free) log returns of rows t-n+1..t."""
    start = _first(t0, a + n, b)
    _nan(o, a, start)
    _v_mean(lr, a, n, s1, a, start, b)
    _v_ssd(lr, a, n, s1, a, o, 0, start, b)
    for t in range(start, b):
        o[t] = math.sqrt(o[t] / (n - 1))


@njit(cache=True)
def _parkinson(u, a, b, t0, n, o):
    start = _first(t0, a + n - 1, b)
    _nan(o, a, start)
    _v_sum(u, a, n, o, 0, start, b)
    for t in range(start, b):
        o[t] = math.sqrt(o[t] / (_FOUR_LN2 * n))


@njit(cache=True)
def _vwap(tp, volume, pf, vf, lev, levv, a, b, t0, n, s1, buf, buf2, o):
    """Volume-weighted typical price; ``tp`` (segment-relative) is as traded."""
    start = _first(t0, a + n - 1, b)
    _nan(o, a, start)
    _v_sum(volume, 0, n, s1, a, start, b)
    _v_dot(tp, a, volume, 0, n, o, 0, start, b)
    for t in range(start, b):
        lo = t - n + 1
        if lev[t - a] > lo or levv[t - a] > lo:
            _gather(tp, lo - a, pf, lo, n, buf)
            _gather(volume, lo, vf, lo, n, buf2)
            s1[t - a] = _r_sum(buf2, 0, n)
            o[t] = _r_dot(buf, 0, buf2, 0, n)
        o[t] = o[t] / s1[t - a] if s1[t - a] != 0.0 else _NAN


@njit(cache=True)
def _vroc(volume, vf, levv, a, b, t0, n, o):
    """ROC of volume against the as-of volume n rows back; NaN where that base is 0."""
    start = _first(t0, a + n, b)
    _nan(o, a, start)
    for t in range(start, b):
        base = volume[t - n]
        if levv[t - a] > t - n:
            c = 1.0
            for i in range(t, t - n, -1):
                c *= vf[i]
            base = base * c
        o[t] = (volume[t] / base - 1.0) * 100.0 if base != 0.0 else _NAN


@njit(cache=True)
def _sma(x, f, lev, a, b, t0, n, buf, o):
    start = _first(t0, a + n - 1, b)
    _nan(o, a, start)
    _v_mean(x, 0, n, o, 0, start, b)
    for t in range(start, b):
        if lev[t - a] > t - n + 1:
            _gather(x, t - n + 1, f, t - n + 1, n, buf)
            o[t] = _r_mean(buf, 0, n)


@njit(cache=True)
def _wma(x, f, lev, a, b, t0, n, buf, o):
    start = _first(t0, a + n - 1, b)
    _nan(o, a, start)
    _v_wsum(x, 0, n, o, 0, start, b)
    div = n * (n + 1) // 2
    for t in range(start, b):
        if lev[t - a] > t - n + 1:
            _gather(x, t - n + 1, f, t - n + 1, n, buf)
            o[t] = _r_wsum(buf, 0, n)
        o[t] /= div


@njit(cache=True)
def _mean_ssd(x, f, lev, a, b, start, n, m, mo, ssd, buf):
    """Shifted mean and sum of squared deviations of every as-of window ending in [start, b)."""
    _v_mean(x, 0, n, m, mo, start, b)
    _v_ssd(x, 0, n, m, mo, ssd, a, start, b)
    for t in range(start, b):
        if lev[t - a] > t - n + 1:
            _gather(x, t - n + 1, f, t - n + 1, n, buf)
            m[t - mo] = _r_mean(buf, 0, n)
            ssd[t - a] = _r_ssd(buf, 0, n, m[t - mo])


@njit(cache=True)
def _bbands(x, f, lev, a, b, t0, n, nbdev, s1, buf, o_up, o_mid, o_lo):
    """TA-Lib BBANDS(SMA) with equal up/down deviations (population std)."""
    start = _first(t0, a + n - 1, b)
    _nan(o_up, a, start)
    _nan(o_mid, a, start)
    _nan(o_lo, a, start)
    _mean_ssd(x, f, lev, a, b, start, n, o_mid, 0, s1, buf)
    for t in range(start, b):
        dev = math.sqrt(s1[t - a] / n) * nbdev
        o_up[t] = o_mid[t] + dev
        o_lo[t] = o_mid[t] - dev


@njit(cache=True)
def _zscore(x, f, lev, a, b, t0, n, s1, s2, buf, o):
    start = _first(t0, a + n - 1, b)
    _nan(o, a, start)
    _mean_ssd(x, f, lev, a, b, start, n, s1, a, s2, buf)
    for t in range(start, b):
        sd = math.sqrt(s2[t - a] / (n - 1))
        o[t] = (x[t] - s1[t - a]) / sd if sd > 0.0 else _NAN


@njit(cache=True)
def _minmax(x, f, lev, a, b, t0, n, s1, s2, buf, o):
    start = _first(t0, a + n - 1, b)
    _nan(o, a, start)
    _v_extreme(x, 0, n, s1, a, start, b, False)
    _v_extreme(x, 0, n, s2, a, start, b, True)
    for t in range(start, b):
        if lev[t - a] > t - n + 1:
            _gather(x, t - n + 1, f, t - n + 1, n, buf)
            s1[t - a] = _r_min(buf, 0, n)
            s2[t - a] = _r_max(buf, 0, n)
        mn, mx = s1[t - a], s2[t - a]
        o[t] = (x[t] - mn) / (mx - mn) if mx > mn else _NAN


@njit(cache=True)
def _quantile(srt, n, q):
    """NumPy's default ('linear') quantile of the sorted ``srt[1:n+1]``, with NumPy's lerp."""
    v = q * (n - 1)
    i = int(math.floor(v))
    if i >= n - 1:
        return srt[n]
    g = v - i
    lo = srt[i + 1]
    d = srt[i + 2] - lo
    return srt[i + 2] - d * (1.0 - g) if g >= 0.5 else lo + d * g


@njit(cache=True)
def _slide(src, dst, n, old, new):
    """``dst[1:n+1]`` = the sorted ``src[1:n+1]`` with one ``old`` replaced by ``new``.

    Branch-free (a count and a select per slot); ``src[0]`` and ``src[n+1]`` are padding. The
    result is the same multiset as the window, so it equals a fresh sort.
    """
    i = 0  # slot of the first ``old`` (0-based)
    p = 0  # slot of ``new`` in the result
    for k in range(1, n + 1):
        v = src[k]
        i += v < old
        p += v < new
    if old < new:
        p -= 1
    for k in range(n):
        s0 = src[k]
        s1 = src[k + 1]
        s2 = src[k + 2]
        below = s2 if k >= i else s1  # result slot k when it is left of ``new``
        above = s1 if k > i else s0  # ... right of ``new``
        r = above if k > p else new
        dst[k + 1] = below if k < p else r


@njit(cache=True)
def _robust(x, f, lev, a, b, t0, n, buf, o):
    """(x - median) / IQR over a sorted window slid row by row (fresh sort after an event)."""
    start = _first(t0, a + n - 1, b)
    _nan(o, a, start)
    srt = np.zeros(n + 2)
    alt = np.zeros(n + 2)
    slid = False  # srt holds the raw sorted window of the previous row
    for t in range(start, b):
        lo = t - n + 1
        if lev[t - a] <= lo and slid:
            _slide(srt, alt, n, x[lo - 1], x[t])
            srt, alt = alt, srt
        else:
            if lev[t - a] <= lo:
                srt[1:n + 1] = x[lo:t + 1]
                slid = True
            else:
                _gather(x, lo, f, lo, n, buf)
                srt[1:n + 1] = buf[:n]
                slid = False
            srt[1:n + 1].sort()
        q1 = _quantile(srt, n, 0.25)
        iqr = _quantile(srt, n, 0.75) - q1
        o[t] = (x[t] - _quantile(srt, n, 0.5)) / iqr if iqr > 0.0 else _NAN


@njit(cache=True)
def _stoch(high, low, close, pf, lev, a, b, t0, fk, sk, sd, s1, s2, kbuf, buf, buf2, o_k, o_d):
    """TA-Lib STOCH with SMA smoothing; fast %K is scale-free, so it is kept as computed."""
    start = _first(t0, a + fk + sk + sd - 3, b)
    _nan(o_k, a, start)
    _nan(o_d, a, start)
    t1 = max(a + fk - 1, start - (sk - 1) - (sd - 1))
    _v_extreme(high, 0, fk, s1, a, t1, b, True)
    _v_extreme(low, 0, fk, s2, a, t1, b, False)
    for t in range(t1, b):
        lo = t - fk + 1
        if lev[t - a] > lo:
            _gather(high, lo, pf, lo, fk, buf)
            _gather(low, lo, pf, lo, fk, buf2)
            s1[t - a] = _r_max(buf, 0, fk)
            s2[t - a] = _r_min(buf2, 0, fk)
        hh, ll = s1[t - a], s2[t - a]
        flat = abs(hh - ll) <= _STOCH_EPS * (abs(hh) + abs(ll))
        kbuf[t - a] = 0.0 if flat else (close[t] - ll) / ((hh - ll) / 100.0)
    _v_sum(kbuf, a, sk, s1, a, t1 + sk - 1, b)  # slow %K
    for t in range(t1 + sk - 1, b):
        s1[t - a] /= sk
    _v_sum(s1, a, sd, o_d, 0, start, b)  # slow %D
    for t in range(start, b):
        o_k[t] = s1[t - a]
        o_d[t] /= sd


# --------------------------------------------------------------------------- recursive indicators


@njit(cache=True)
def _obv(close, volume, pf, vf, a, b, t0, resumed, st, k, o):
    if resumed:
        v = st[k]
        start = t0
    else:
        v = volume[a]
        o[a] = v
        start = a + 1
    _nan(o, a, t0)
    for t in range(start, b):
        v *= vf[t]
        prev = close[t - 1] * pf[t]
        if close[t] > prev:
            v += volume[t]
        elif close[t] < prev:
            v -= volume[t]
        o[t] = v
    st[k] = v


@njit(cache=True)
def _ema(x, pf, a, b, t0, resumed, n, st, k, o):
    """TA-Lib EMA (k = 2/(n+1)), seeded with the as-of SMA of the first n values."""
    kk = 2.0 / (n + 1)
    if resumed:
        e = st[k]
        start = t0
    elif b - a < n:
        e = 0.0
        start = b
    else:
        s = 0.0
        for t in range(a, a + n):
            s = s * pf[t] + x[t]
        e = s / n
        start = a + n - 1
    _nan(o, a, start)
    if not resumed and start < b:
        o[start] = e
        start += 1
    for t in range(start, b):
        e *= pf[t]
        e = (x[t] - e) * kk + e
        o[t] = e
    st[k] = e


@njit(cache=True)
def _rsi(close, pf, a, b, t0, resumed, n, st, k, o):
    """TA-Lib RSI (Wilder); 0 where average gain + loss is exactly 0, as TA-Lib 0.8 answers."""
    if resumed:
        gain, loss = st[k], st[k + 1]
        start = t0
    elif b - a <= n:
        gain = loss = 0.0
        start = b
    else:
        gain = loss = 0.0
        for t in range(a + 1, a + n + 1):
            d = close[t] - close[t - 1] * pf[t]
            gain *= pf[t]
            loss *= pf[t]
            if d < 0.0:
                loss -= d
            else:
                gain += d
        gain /= n
        loss /= n
        start = a + n
    _nan(o, a, start)
    if not resumed and start < b:
        s = gain + loss
        o[start] = 100.0 * (gain / s) if s > 0.0 else 0.0
        start += 1
    for t in range(start, b):
        d = close[t] - close[t - 1] * pf[t]
        gain *= pf[t]
        loss *= pf[t]
        gain *= n - 1
        loss *= n - 1
        if d < 0.0:
            loss -= d
        else:
            gain += d
        gain /= n
        loss /= n
        s = gain + loss
        o[t] = 100.0 * (gain / s) if s > 0.0 else 0.0
    st[k] = gain
    st[k + 1] = loss


@njit(cache=True)
def _true_range(high, low, close, pf, t):
    prev = close[t - 1] * pf[t]
    return max(high[t], prev) - min(low[t], prev)


@njit(cache=True)
def _atr(high, low, close, pf, a, b, t0, resumed, n, st, k, o):
    """TA-Lib ATR: the first value is the mean true range of rows 1..n, then Wilder smoothing."""
    if resumed:
        v = st[k]
        start = t0
    elif b - a <= n:
        v = 0.0
        start = b
    else:
        s = 0.0
        for t in range(a + 1, a + n + 1):
            s = s * pf[t] + _true_range(high, low, close, pf, t)
        v = s / n
        start = a + n
    _nan(o, a, start)
    if not resumed and start < b:
        o[start] = v
        start += 1
    for t in range(start, b):
        v *= pf[t]
        v *= n - 1
        v += _true_range(high, low, close, pf, t)
        v /= n
        o[t] = v
    st[k] = v


@njit(cache=True)
def _macd(x, pf, a, b, t0, resumed, fast, slow, sig, st, k, o_m, o_s, o_h):
    """TA-Lib MACD: both EMAs are seeded at row slow-1 (the fast one with its last ``fast`` values).

    The signal EMA is seeded at row slow+sig-2 with the as-of mean of the MACD line's first
    ``sig`` values; all three outputs start there.
    """
    kf = 2.0 / (fast + 1)
    ks = 2.0 / (slow + 1)
    kg = 2.0 / (sig + 1)
    w = slow + sig - 2
    if resumed:
        ef, es, eg = st[k], st[k + 1], st[k + 2]
        start = t0
    elif b - a <= w:
        ef = es = eg = 0.0
        start = b
    else:
        sf = ss = 0.0
        for t in range(a, a + slow):
            ss = ss * pf[t] + x[t]
            sf = sf * pf[t] + x[t] if t >= a + slow - fast else 0.0
        ef = sf / fast
        es = ss / slow
        msum = ef - es
        for t in range(a + slow, a + w + 1):
            ef *= pf[t]
            ef = (x[t] - ef) * kf + ef
            es *= pf[t]
            es = (x[t] - es) * ks + es
            msum = msum * pf[t] + (ef - es)
        eg = msum / sig
        start = a + w
    _nan(o_m, a, start)
    _nan(o_s, a, start)
    _nan(o_h, a, start)
    if not resumed and start < b:
        m = ef - es
        o_m[start], o_s[start], o_h[start] = m, eg, m - eg
        start += 1
    for t in range(start, b):
        ef *= pf[t]
        ef = (x[t] - ef) * kf + ef
        es *= pf[t]
        es = (x[t] - es) * ks + es
        m = ef - es
        eg *= pf[t]
        eg = (m - eg) * kg + eg
        o_m[t] = m
        o_s[t] = eg
        o_h[t] = m - eg
    st[k] = ef
    st[k + 1] = es
    st[k + 2] = eg


# --------------------------------------------------------------------------- driver


@njit(cache=True)
def _segment(high, low, close, volume, pf, vf, a, b, t0, resumed, kinds, ip, fp, col, slot, maxwin,
             out, st):
    """All features of one segment (rows a..b-1; outputs from row ``t0`` on)."""
    m = b - a
    lev = np.empty(m, np.int64)
    levv = np.empty(m, np.int64)
    _last_events(pf, a, b, lev)
    _last_events(vf, a, b, levv)
    need_lr = need_u = need_tp = need_k = False
    for q in range(kinds.size):
        need_lr |= kinds[q] == K_RET or kinds[q] == K_VOL
        need_u |= kinds[q] == K_PARKINSON
        need_tp |= kinds[q] == K_VWAP
        need_k |= kinds[q] == K_STOCH
    lr = np.empty(m if need_lr else 0)
    for t in range(a + 1, b if need_lr else a):
        lr[t - a] = math.log(close[t] / (close[t - 1] * pf[t]))
    u = np.empty(m if need_u else 0)
    for t in range(a, b if need_u else a):
        h = math.log(high[t] / low[t])
        u[t - a] = h * h
    tp = np.empty(m if need_tp else 0)
    for t in range(a, b if need_tp else a):
        tp[t - a] = (high[t] + low[t] + close[t]) / 3.0
    kbuf = np.empty(m if need_k else 0)
    s1 = np.empty(m)
    s2 = np.empty(m)
    buf = np.empty(maxwin)
    buf2 = np.empty(maxwin)
    for q in range(kinds.size):
        kind, n, c = kinds[q], ip[q, 0], col[q]
        if kind == K_RET:
            _ret(close, pf, lr, a, b, t0, out[c], out[c + 1])
        elif kind == K_VOL:
            _vol(lr, a, b, t0, n, s1, out[c])
        elif kind == K_PARKINSON:
            _parkinson(u, a, b, t0, n, out[c])
        elif kind == K_OBV:
            _obv(close, volume, pf, vf, a, b, t0, resumed, st, slot[q], out[c])
        elif kind == K_VWAP:
            _vwap(tp, volume, pf, vf, lev, levv, a, b, t0, n, s1, buf, buf2, out[c])
        elif kind == K_VROC:
            _vroc(volume, vf, levv, a, b, t0, n, out[c])
        elif kind == K_SMA:
            _sma(close, pf, lev, a, b, t0, n, buf, out[c])
        elif kind == K_WMA:
            _wma(close, pf, lev, a, b, t0, n, buf, out[c])
        elif kind == K_EMA:
            _ema(close, pf, a, b, t0, resumed, n, st, slot[q], out[c])
        elif kind == K_RSI:
            _rsi(close, pf, a, b, t0, resumed, n, st, slot[q], out[c])
        elif kind == K_MACD:
            _macd(close, pf, a, b, t0, resumed, n, ip[q, 1], ip[q, 2], st, slot[q], out[c], out[c + 1],
                  out[c + 2])
        elif kind == K_STOCH:
            _stoch(high, low, close, pf, lev, a, b, t0, n, ip[q, 1], ip[q, 2], s1, s2, kbuf, buf, buf2,
                   out[c], out[c + 1])
        elif kind == K_BBANDS:
            _bbands(close, pf, lev, a, b, t0, n, fp[q], s1, buf, out[c], out[c + 1], out[c + 2])
        elif kind == K_ATR:
            _atr(high, low, close, pf, a, b, t0, resumed, n, st, slot[q], out[c])
        else:  # zscore, minmax, robust: the close column, then the volume column
            for side in range(2):
                x, f, lv = (close, pf, lev) if side == 0 else (volume, vf, levv)
                if kind == K_ZSCORE:
                    _zscore(x, f, lv, a, b, t0, n, s1, s2, buf, out[c + side])
                elif kind == K_MINMAX:
                    _minmax(x, f, lv, a, b, t0, n, s1, s2, buf, out[c + side])
                else:
                    _robust(x, f, lv, a, b, t0, n, buf, out[c + side])


@njit(cache=True, parallel=True)
def features_nb(high, low, close, volume, pf, vf, starts, first_out, resumed, kinds, ip, fp, col, slot,
                maxwin, out, state):
    """Write every feature of every segment into ``out`` (n_columns x n_rows), in parallel.

    Spec ``q`` has kind ``kinds[q]``, integer parameters ``ip[q]``, float parameter ``fp[q]``, its
    first output row in ``out`` at ``col[q]`` and its first state slot at ``slot[q]``. Segment
    ``s`` outputs rows ``first_out[s]..starts[s+1]-1`` (NaN before); if ``resumed[s]`` its
    recursive indicators continue from ``state[s]`` at row ``first_out[s]``, else they start
    at the segment's first row. ``state[s]`` is overwritten with the state after the last row.
    ``maxwin`` is the longest window of any spec.
    """
    for s in prange(starts.size - 1):
        a, b = starts[s], starts[s + 1]
        if b > a:
            _segment(high, low, close, volume, pf, vf, a, b, first_out[s], resumed[s], kinds, ip, fp, col,
                     slot, maxwin, out, state[s])


@njit(cache=True, parallel=True)
def first_invalid_nb(x, lower, strict):
    """Index of the first value that is not finite or not above (``strict``) / at least ``lower``; -1 if none."""
    n = x.size
    n_chunks = 64
    bad = np.full(n_chunks, -1, np.int64)
    for c in prange(n_chunks):
        for i in range(c * n // n_chunks, (c + 1) * n // n_chunks):
            v = x[i]
            if not (math.isfinite(v) and (v > lower if strict else v >= lower)):
                bad[c] = i
                break
    for c in range(n_chunks):
        if bad[c] >= 0:
            return bad[c]
    return -1
