"""Numba kernels behind :mod:`alphatwin.transforms.indicators`: point-in-time technical indicators.

Rows are sorted by (symbol, ts), one segment per symbol; ``starts`` holds the segment offsets
(length n_segments + 1). Prices and volumes are as traded; ``pf[i]`` / ``vf[i]`` are the factors
of a corporate action effective at row ``i`` (a price / volume of a row before ``i`` times
``pf[i]`` / ``vf[i]`` is comparable with row ``i``; 1.0 on rows without an event).

Every output at row ``t`` is computed from rows ``<= t`` only, in row ``t``'s own basis. A past
value ``x[i]`` in that basis is ``x[i]`` multiplied by the factor of each event in ``(i, t]``,
one after the other in time order (a factor of 1.0 is an exact no-op), so it depends on the
rows ``i..t`` alone:

* **Epochs.** A segment is cut at every event row into epochs, inside which all rows share a
  basis. :func:`_epoch_series` lays a series out epoch by epoch, each epoch's rows preceded by
  the ``P`` values before it rescaled to its basis (the previous epoch's last ``P`` values
  times the event's factor). Every row's window is then a contiguous run of that copy,
  whichever events it spans; row ``t`` of epoch ``k`` sits at position ``t - xo`` with
  ``xo = a - (k + 1) * P`` (:func:`_span`).
* **Window indicators** are a fixed sequence of operations on the window's values, so they
  depend on the window alone: a continuation given the window as context reproduces them bit
  for bit. Sums run in one fixed order (the first value, then ``+=`` each next one; means and
  variances are shifted by the window's first value, which makes them exact on a flat
  window), vectorized across rows (``_v_*``: for each window offset, one pass over a block of
  rows). The robust z-score slides a sorted window (:func:`_slide`), multiplied by the factor
  at an epoch start (a positive factor keeps the order).
* **Recursive states** (EMA, Wilder averages, OBV) are carried in the previous row's basis and
  multiplied by ``pf[t]`` (``vf[t]`` for OBV) before row ``t`` updates them; their warm-up seeds
  are sums carried the same way (``s = s * pf[t] + x[t]``).

No fast-math: vector and scalar code give the same IEEE results, whichever rows a vector loop
happens to cover. The kernels assume valid input; the wrapper checks it.

Sections: epochs, window primitives, window indicators, recursive indicators, the driver. They
stay in one module on purpose: ``features.bars`` fingerprints this file's source (with the
wrapper's) to know when its stored features must be recomputed.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

__all__ = ["KIND_CODES", "features_nb", "first_invalid_nb", "touch_nb"]

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


# --------------------------------------------------------------------------- epochs


@njit(cache=True)
def _epochs(pf, vf, a, b):
    """Epoch starts of rows [a, b): ``a``, then every row with an event; ``b`` appended."""
    count = 1
    for t in range(a + 1, b):
        count += pf[t] != 1.0 or vf[t] != 1.0
    ev = np.empty(count + 1, np.int64)
    ev[0] = a
    k = 1
    for t in range(a + 1, b):
        if pf[t] != 1.0 or vf[t] != 1.0:
            ev[k] = t
            k += 1
    ev[count] = b
    return ev


@njit(cache=True)
def _epoch_series(x, xa, f, ev, p):
    """``x`` (row ``t`` at ``x[t - xa]``) epoch by epoch, each epoch after ``p`` rescaled values."""
    n_ep = ev.size - 1
    a = ev[0]
    y = np.empty(ev[n_ep] - a + n_ep * p)
    y[:p] = 0.0  # nothing before the segment: never read
    w = p
    for k in range(n_ep):
        e, e2 = ev[k], ev[k + 1]
        if k > 0:
            fk = f[e]
            for j in range(p):
                y[w + j] = y[w - p + j] * fk
            w += p
        y[w:w + e2 - e] = x[e - xa:e2 - xa]
        w += e2 - e
    return y


@njit(cache=True)
def _span(ev, k, start, b, a, p):
    """Rows of epoch ``k`` from ``start`` on, and the offset ``xo`` of their epoch series."""
    return max(start, ev[k]), min(b, ev[k + 1]), a - (k + 1) * p


# --------------------------------------------------------------------------- many windows (vector)
# Row t's window of x is x[t-n+1-xo .. t-xo]; the result goes to o[t-oo], for t in [t1, t2).


@njit(cache=True)
def _v_sum(x, xo, n, o, oo, t1, t2):
    for tb in range(t1, t2, _TILE):
        te = min(tb + _TILE, t2)
        w = te - tb
        ob = o[tb - oo:te - oo]
        lo = tb - n + 1 - xo
        ob[:] = x[lo:lo + w]
        j = 1
        while j + 3 < n:  # four window offsets per pass over the block, added in order
            x1, x2, x3, x4 = x[lo + j:lo + j + w], x[lo + j + 1:lo + j + 1 + w], x[lo + j + 2:lo + j + 2 + w], \
                x[lo + j + 3:lo + j + 3 + w]
            for k in range(w):
                ob[k] = (((ob[k] + x1[k]) + x2[k]) + x3[k]) + x4[k]
            j += 4
        for j in range(j, n):
            xj = x[lo + j:lo + j + w]
            for k in range(w):
                ob[k] += xj[k]


@njit(cache=True)
def _v_mean(x, xo, n, o, oo, t1, t2):
    for tb in range(t1, t2, _TILE):
        te = min(tb + _TILE, t2)
        w = te - tb
        ob = o[tb - oo:te - oo]
        lo = tb - n + 1 - xo
        x0 = x[lo:lo + w]
        ob[:] = 0.0
        j = 1
        while j + 3 < n:
            x1, x2, x3, x4 = x[lo + j:lo + j + w], x[lo + j + 1:lo + j + 1 + w], x[lo + j + 2:lo + j + 2 + w], \
                x[lo + j + 3:lo + j + 3 + w]
            for k in range(w):
                c = x0[k]
                ob[k] = (((ob[k] + (x1[k] - c)) + (x2[k] - c)) + (x3[k] - c)) + (x4[k] - c)
            j += 4
        for j in range(j, n):
            xj = x[lo + j:lo + j + w]
            for k in range(w):
                ob[k] += xj[k] - x0[k]
        for k in range(w):
            ob[k] = x0[k] + ob[k] / n


@njit(cache=True)
def _v_ssd(x, xo, n, m, mo, o, oo, t1, t2):
    """Sum of squared deviations from ``m[t - mo]`` (the second pass of a two-pass variance)."""
    for tb in range(t1, t2, _TILE):
        te = min(tb + _TILE, t2)
        w = te - tb
        ob = o[tb - oo:te - oo]
        mb = m[tb - mo:te - mo]
        lo = tb - n + 1 - xo
        ob[:] = 0.0
        j = 0
        while j + 3 < n:
            x1, x2, x3, x4 = x[lo + j:lo + j + w], x[lo + j + 1:lo + j + 1 + w], x[lo + j + 2:lo + j + 2 + w], \
                x[lo + j + 3:lo + j + 3 + w]
            for k in range(w):
                c = mb[k]
                d1, d2, d3, d4 = x1[k] - c, x2[k] - c, x3[k] - c, x4[k] - c
                ob[k] = (((ob[k] + d1 * d1) + d2 * d2) + d3 * d3) + d4 * d4
            j += 4
        for j in range(j, n):
            xj = x[lo + j:lo + j + w]
            for k in range(w):
                d = xj[k] - mb[k]
                ob[k] += d * d


@njit(cache=True)
def _v_wsum(x, xo, n, o, oo, t1, t2):
    """``sum((j + 1) * x[...])``: the WMA numerator, latest row heaviest."""
    for tb in range(t1, t2, _TILE):
        te = min(tb + _TILE, t2)
        w = te - tb
        ob = o[tb - oo:te - oo]
        lo = tb - n + 1 - xo
        ob[:] = 0.0
        j = 0
        while j + 3 < n:
            x1, x2, x3, x4 = x[lo + j:lo + j + w], x[lo + j + 1:lo + j + 1 + w], x[lo + j + 2:lo + j + 2 + w], \
                x[lo + j + 3:lo + j + 3 + w]
            w1, w2, w3, w4 = j + 1.0, j + 2.0, j + 3.0, j + 4.0
            for k in range(w):
                ob[k] = (((ob[k] + w1 * x1[k]) + w2 * x2[k]) + w3 * x3[k]) + w4 * x4[k]
            j += 4
        for j in range(j, n):
            xj = x[lo + j:lo + j + w]
            wj = j + 1.0
            for k in range(w):
                ob[k] += wj * xj[k]


@njit(cache=True)
def _v_dot(x, y, xo, n, o, oo, t1, t2):
    for tb in range(t1, t2, _TILE):
        te = min(tb + _TILE, t2)
        w = te - tb
        ob = o[tb - oo:te - oo]
        lo = tb - n + 1 - xo
        ob[:] = 0.0
        j = 0
        while j + 1 < n:
            x1, x2 = x[lo + j:lo + j + w], x[lo + j + 1:lo + j + 1 + w]
            y1, y2 = y[lo + j:lo + j + w], y[lo + j + 1:lo + j + 1 + w]
            for k in range(w):
                ob[k] = (ob[k] + x1[k] * y1[k]) + x2[k] * y2[k]
            j += 2
        for j in range(j, n):
            xj, yj = x[lo + j:lo + j + w], y[lo + j:lo + j + w]
            for k in range(w):
                ob[k] += xj[k] * yj[k]


@njit(cache=True)
def _v_extreme(x, xo, n, o, oo, t1, t2, want_max):
    """Window minimum or maximum (exact whatever the order of the comparisons)."""
    for tb in range(t1, t2, _TILE):
        te = min(tb + _TILE, t2)
        w = te - tb
        ob = o[tb - oo:te - oo]
        lo = tb - n + 1 - xo
        ob[:] = x[lo:lo + w]
        j = 1
        while j + 3 < n:
            x1, x2, x3, x4 = x[lo + j:lo + j + w], x[lo + j + 1:lo + j + 1 + w], x[lo + j + 2:lo + j + 2 + w], \
                x[lo + j + 3:lo + j + 3 + w]
            if want_max:
                for k in range(w):
                    m = max(max(x1[k], x2[k]), max(x3[k], x4[k]))
                    ob[k] = m if m > ob[k] else ob[k]
            else:
                for k in range(w):
                    m = min(min(x1[k], x2[k]), min(x3[k], x4[k]))
                    ob[k] = m if m < ob[k] else ob[k]
            j += 4
        for j in range(j, n):
            xj = x[lo + j:lo + j + w]
            if want_max:
                for k in range(w):
                    ob[k] = xj[k] if xj[k] > ob[k] else ob[k]
            else:
                for k in range(w):
                    ob[k] = xj[k] if xj[k] < ob[k] else ob[k]


@njit(cache=True)
def _quantile_at(n, q):
    """Where NumPy's default ('linear') q-quantile of n sorted values lies: slot and weight."""
    v = q * (n - 1)
    i = min(int(math.floor(v)), n - 2) if n > 1 else 0
    return i, v - i


@njit(cache=True)
def _lerp(srt, i, g):
    """NumPy's lerp between sorted slots i and i+1 of ``srt[1:]`` (``srt[n+1]`` is padding)."""
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
    q = 0  # slot of ``new`` in the result
    for k in range(1, n + 1):
        v = src[k]
        i += v < old
        q += v < new
    if old < new:
        q -= 1
    for k in range(n):
        s0 = src[k]
        s1 = src[k + 1]
        s2 = src[k + 2]
        below = s2 if k >= i else s1  # result slot k when it is left of ``new``
        above = s1 if k > i else s0  # ... right of ``new``
        r = above if k > q else new
        dst[k + 1] = below if k < q else r


# --------------------------------------------------------------------------- helpers


@njit(cache=True)
def _first(t0, warm, b):
    """First output row: not before ``t0`` nor the warm-up row, never past the segment's end ``b``."""
    return min(max(t0, warm), b)


@njit(cache=True)
def _nan(o, a, e):
    for t in range(a, e):
        o[t] = _NAN


# --------------------------------------------------------------------------- window indicators
# Arguments: segment rows [a, b), first output row t0, epochs ``ev`` and prefix length ``p``;
# ``y*``: epoch series (see _epoch_series); ``s1``, ``s2``: segment-relative scratch.


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
def _vwap(ytp, yv, ev, p, a, b, t0, n, s1, o):
    """Volume-weighted typical price (as-of typical prices and volumes)."""
    start = _first(t0, a + n - 1, b)
    _nan(o, a, start)
    for k in range(ev.size - 1):
        r1, r2, xo = _span(ev, k, start, b, a, p)
        _v_sum(yv, xo, n, s1, a, r1, r2)
        _v_dot(ytp, yv, xo, n, o, 0, r1, r2)
    for t in range(start, b):
        o[t] = o[t] / s1[t - a] if s1[t - a] != 0.0 else _NAN


@njit(cache=True)
def _vroc(volume, yv, ev, p, a, b, t0, n, o):
    """ROC of volume against the as-of volume n rows back; NaN where that base is 0."""
    start = _first(t0, a + n, b)
    _nan(o, a, start)
    for k in range(ev.size - 1):
        r1, r2, xo = _span(ev, k, start, b, a, p)
        for t in range(r1, r2):
            base = yv[t - n - xo]
            o[t] = (volume[t] / base - 1.0) * 100.0 if base != 0.0 else _NAN


@njit(cache=True)
def _wma(y, ev, p, a, b, t0, n, o):
    start = _first(t0, a + n - 1, b)
    _nan(o, a, start)
    for k in range(ev.size - 1):
        r1, r2, xo = _span(ev, k, start, b, a, p)
        _v_wsum(y, xo, n, o, 0, r1, r2)
    div = n * (n + 1) // 2
    for t in range(start, b):
        o[t] /= div


@njit(cache=True)
def _mean_ssd(y, ev, p, a, b, start, n, m, ssd, with_mean, with_ssd):
    """Shifted mean and sum of squared deviations of the as-of windows (segment-relative)."""
    for k in range(ev.size - 1):
        r1, r2, xo = _span(ev, k, start, b, a, p)
        if with_mean:
            _v_mean(y, xo, n, m, a, r1, r2)
        if with_ssd:
            _v_ssd(y, xo, n, m, a, ssd, a, r1, r2)


@njit(cache=True)
def _close_stats(yc, ev, p, a, b, t0, n, cm, cs, with_ssd, have_n, have_ssd):
    """Mean (and SSD) of the close windows of length ``n``, kept for the next spec that needs them.

    SMA, Bollinger bands and the close z-score of one length share them (so the SMA and the
    middle band are the same numbers). Returns what ``cm`` / ``cs`` now hold.
    """
    start = _first(t0, a + n - 1, b)
    if have_n != n:
        _mean_ssd(yc, ev, p, a, b, start, n, cm, cs, True, with_ssd)
        return n, with_ssd
    if with_ssd and not have_ssd:
        _mean_ssd(yc, ev, p, a, b, start, n, cm, cs, False, True)
    return n, have_ssd or with_ssd


@njit(cache=True)
def _sma(cm, a, b, t0, n, o):
    start = _first(t0, a + n - 1, b)
    _nan(o, a, start)
    o[start:b] = cm[start - a:b - a]


@njit(cache=True)
def _bbands(cm, cs, a, b, t0, n, nbdev, o_up, o_mid, o_lo):
    """TA-Lib BBANDS(SMA) with equal up/down deviations (population std)."""
    start = _first(t0, a + n - 1, b)
    _nan(o_up, a, start)
    _nan(o_mid, a, start)
    _nan(o_lo, a, start)
    for t in range(start, b):
        m = cm[t - a]
        dev = math.sqrt(cs[t - a] / n) * nbdev
        o_up[t] = m + dev
        o_mid[t] = m
        o_lo[t] = m - dev


@njit(cache=True)
def _zscore(x, m, ssd, a, b, t0, n, o):
    start = _first(t0, a + n - 1, b)
    _nan(o, a, start)
    for t in range(start, b):
        sd = math.sqrt(ssd[t - a] / (n - 1))
        o[t] = (x[t] - m[t - a]) / sd if sd > 0.0 else _NAN


@njit(cache=True)
def _minmax(x, y, ev, p, a, b, t0, n, s1, s2, o):
    start = _first(t0, a + n - 1, b)
    _nan(o, a, start)
    for k in range(ev.size - 1):
        r1, r2, xo = _span(ev, k, start, b, a, p)
        _v_extreme(y, xo, n, s1, a, r1, r2, False)
        _v_extreme(y, xo, n, s2, a, r1, r2, True)
    for t in range(start, b):
        o[t] = _minmax_value(x[t], s1[t - a], s2[t - a])


@njit(cache=True)
def _minmax_value(x, mn, mx):
    return (x - mn) / (mx - mn) if mx > mn else _NAN


@njit(cache=True)
def _robust_row(x, srt, n, qi, qg, t, o, mm, with_mm):
    """Write row t's robust z-score (and min-max scaling) from its sorted window ``srt[1:n+1]``.

    ``qi`` / ``qg``: slots and weights of the three quartiles (see _quantile_at).
    """
    q1 = _lerp(srt, qi[0], qg[0])
    iqr = _lerp(srt, qi[2], qg[2]) - q1
    o[t] = (x[t] - _lerp(srt, qi[1], qg[1])) / iqr if iqr > 0.0 else _NAN
    if with_mm:  # the min-max scaling of the same window, from its ends
        mm[t] = _minmax_value(x[t], srt[1], srt[n])


@njit(cache=True)
def _scale(buf, n, f):
    for j in range(1, n + 1):
        buf[j] *= f


@njit(cache=True)
def _robust(x, f, y, ev, p, a, b, t0, n, o, mm, with_mm):
    """(x - median) / IQR over a sorted window slid row by row, rescaled at each epoch start.

    With ``with_mm`` it also writes the min-max scaling of the same windows to ``mm``.
    """
    start = _first(t0, a + n - 1, b)
    _nan(o, a, start)
    if with_mm:
        _nan(mm, a, start)
    if start == b:
        return
    (i1, g1), (i2, g2), (i3, g3) = _quantile_at(n, 0.25), _quantile_at(n, 0.5), _quantile_at(n, 0.75)
    qi, qg = (i1, i2, i3), (g1, g2, g3)
    one = np.zeros(n + 2)  # two buffers, alternately source and destination of slide
    two = np.zeros(n + 2)
    in_one = True
    for k in range(ev.size - 1):
        r1, r2, xo = _span(ev, k, start, b, a, p)
        if r1 >= r2:
            continue
        if r1 == start:  # the first window: sorted from scratch
            one[1:n + 1] = y[start - n + 1 - xo:start + 1 - xo]
            one[1:n + 1].sort()
            _robust_row(x, one, n, qi, qg, start, o, mm, with_mm)
            r1 += 1
        elif f[r1] != 1.0:  # an event: the whole window changes basis, and keeps its order
            _scale(one if in_one else two, n, f[r1])
        for t in range(r1, r2):
            if in_one:
                _slide(one, two, n, y[t - n - xo], y[t - xo])
                _robust_row(x, two, n, qi, qg, t, o, mm, with_mm)
            else:
                _slide(two, one, n, y[t - n - xo], y[t - xo])
                _robust_row(x, one, n, qi, qg, t, o, mm, with_mm)
            in_one = not in_one


@njit(cache=True)
def _stoch(close, yh, yl, ev, p, a, b, t0, fk, sk, sd, s1, s2, kbuf, o_k, o_d):
    """TA-Lib STOCH with SMA smoothing; fast %K is scale-free, so it is kept as computed."""
    start = _first(t0, a + fk + sk + sd - 3, b)
    _nan(o_k, a, start)
    _nan(o_d, a, start)
    t1 = max(a + fk - 1, start - (sk - 1) - (sd - 1))
    for k in range(ev.size - 1):
        r1, r2, xo = _span(ev, k, t1, b, a, p)
        _v_extreme(yh, xo, fk, s1, a, r1, r2, True)
        _v_extreme(yl, xo, fk, s2, a, r1, r2, False)
    for t in range(t1, b):
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
        prev = close[t - 1] * pf[t]
        sign = (close[t] > prev) - (close[t] < prev)  # branch-free: volume * 0 adds nothing
        v = v * vf[t] + volume[t] * sign
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
    """TA-Lib RSI (Wilder), in TA-Lib 0.8's arithmetic (times 1/n; 0 where gain + loss is 0)."""
    inv = 1.0 / n
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
            up = d if d > 0.0 else 0.0
            gain = gain * pf[t] + up
            loss = loss * pf[t] + (up - d)
        gain *= inv
        loss *= inv
        start = a + n
    _nan(o, a, start)
    if not resumed and start < b:
        o[start] = _rsi_value(gain, loss)
        start += 1
    for t in range(start, b):
        d = close[t] - close[t - 1] * pf[t]
        up = d if d > 0.0 else 0.0
        gain = ((gain * pf[t]) * (n - 1) + up) * inv
        loss = ((loss * pf[t]) * (n - 1) + (up - d)) * inv
        o[t] = _rsi_value(gain, loss)
    st[k] = gain
    st[k + 1] = loss


@njit(cache=True)
def _rsi_value(gain, loss):
    s = gain + loss
    return 100.0 * (gain / s) if s > 0.0 else 0.0


@njit(cache=True)
def _true_range(high, low, close, pf, t):
    prev = close[t - 1] * pf[t]
    return max(high[t], prev) - min(low[t], prev)


@njit(cache=True)
def _atr(high, low, close, pf, a, b, t0, resumed, n, st, k, o):
    """TA-Lib ATR: the first value is the mean true range of rows 1..n, then Wilder smoothing.

    The smoothing step is written ``v + (tr - v) / n`` (with 1/n precomputed), the same number
    as TA-Lib's ``(v * (n - 1) + tr) / n`` up to rounding and shorter to compute.
    """
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
    inv = 1.0 / n
    for t in range(start, b):
        v *= pf[t]
        v += (_true_range(high, low, close, pf, t) - v) * inv  # (v * (n-1) + tr) / n
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
    warm = slow + sig - 2
    if resumed:
        ef, es, eg = st[k], st[k + 1], st[k + 2]
        start = t0
    elif b - a <= warm:
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
        for t in range(a + slow, a + warm + 1):
            ef *= pf[t]
            ef = (x[t] - ef) * kf + ef
            es *= pf[t]
            es = (x[t] - es) * ks + es
            msum = msum * pf[t] + (ef - es)
        eg = msum / sig
        start = a + warm
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
def _segment(high, low, close, volume, pf, vf, a, b, t0, resumed, kinds, ip, fp, col, slot, p, out, st):
    """All features of one segment (rows a..b-1; outputs from row ``t0`` on; ``p``: longest window)."""
    m = b - a
    ev = _epochs(pf, vf, a, b)
    need = np.zeros(17, np.bool_)
    for q in range(kinds.size):
        need[kinds[q]] = True
    win_close = need[K_SMA] or need[K_WMA] or need[K_BBANDS] or need[K_ZSCORE] or need[K_MINMAX] or need[K_ROBUST]
    win_volume = need[K_VWAP] or need[K_VROC] or need[K_ZSCORE] or need[K_MINMAX] or need[K_ROBUST]
    empty = np.empty(0)
    yc = _epoch_series(close, 0, pf, ev, p) if win_close else empty
    yv = _epoch_series(volume, 0, vf, ev, p) if win_volume else empty
    yh = _epoch_series(high, 0, pf, ev, p) if need[K_STOCH] else empty
    yl = _epoch_series(low, 0, pf, ev, p) if need[K_STOCH] else empty
    ytp = empty
    if need[K_VWAP]:
        tp = np.empty(m)
        for t in range(a, b):
            tp[t - a] = (high[t] + low[t] + close[t]) / 3.0
        ytp = _epoch_series(tp, a, pf, ev, p)
    lr = np.empty(m if need[K_RET] or need[K_VOL] else 0)
    for t in range(a + 1, b if lr.size else a):
        lr[t - a] = math.log(close[t] / (close[t - 1] * pf[t]))
    u = np.empty(m if need[K_PARKINSON] else 0)
    for t in range(a, b if u.size else a):
        h = math.log(high[t] / low[t])
        u[t - a] = h * h
    kbuf = np.empty(m if need[K_STOCH] else 0)
    s1 = np.empty(m)
    s2 = np.empty(m)
    cm = np.empty(m if win_close else 0)  # close mean / SSD shared by sma, bbands, zscore
    cs = np.empty(m if win_close else 0)
    have_n, have_ssd = -1, False
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
            _vwap(ytp, yv, ev, p, a, b, t0, n, s1, out[c])
        elif kind == K_VROC:
            _vroc(volume, yv, ev, p, a, b, t0, n, out[c])
        elif kind == K_SMA:
            have_n, have_ssd = _close_stats(yc, ev, p, a, b, t0, n, cm, cs, False, have_n, have_ssd)
            _sma(cm, a, b, t0, n, out[c])
        elif kind == K_WMA:
            _wma(yc, ev, p, a, b, t0, n, out[c])
        elif kind == K_EMA:
            _ema(close, pf, a, b, t0, resumed, n, st, slot[q], out[c])
        elif kind == K_RSI:
            _rsi(close, pf, a, b, t0, resumed, n, st, slot[q], out[c])
        elif kind == K_MACD:
            _macd(close, pf, a, b, t0, resumed, n, ip[q, 1], ip[q, 2], st, slot[q], out[c], out[c + 1],
                  out[c + 2])
        elif kind == K_STOCH:
            _stoch(close, yh, yl, ev, p, a, b, t0, n, ip[q, 1], ip[q, 2], s1, s2, kbuf, out[c], out[c + 1])
        elif kind == K_BBANDS:
            have_n, have_ssd = _close_stats(yc, ev, p, a, b, t0, n, cm, cs, True, have_n, have_ssd)
            _bbands(cm, cs, a, b, t0, n, fp[q], out[c], out[c + 1], out[c + 2])
        elif kind == K_ATR:
            _atr(high, low, close, pf, a, b, t0, resumed, n, st, slot[q], out[c])
        elif kind == K_ZSCORE:
            have_n, have_ssd = _close_stats(yc, ev, p, a, b, t0, n, cm, cs, True, have_n, have_ssd)
            _zscore(close, cm, cs, a, b, t0, n, out[c])
            _mean_ssd(yv, ev, p, a, b, _first(t0, a + n - 1, b), n, s1, s2, True, True)
            _zscore(volume, s1, s2, a, b, t0, n, out[c + 1])
        elif kind == K_MINMAX:
            if _find(kinds, ip, K_ROBUST, n) < 0:  # else the robust pass writes it
                _minmax(close, yc, ev, p, a, b, t0, n, s1, s2, out[c])
                _minmax(volume, yv, ev, p, a, b, t0, n, s1, s2, out[c + 1])
        else:
            mm = _find(kinds, ip, K_MINMAX, n)
            mc = col[mm] if mm >= 0 else c
            _robust(close, pf, yc, ev, p, a, b, t0, n, out[c], out[mc], mm >= 0)
            _robust(volume, vf, yv, ev, p, a, b, t0, n, out[c + 1], out[mc + 1], mm >= 0)


@njit(cache=True)
def _find(kinds, ip, kind, n):
    """Index of the spec of ``kind`` with first parameter ``n``, or -1."""
    for q in range(kinds.size):
        if kinds[q] == kind and ip[q, 0] == n:
            return q
    return -1


@njit(cache=True, nogil=True)
def features_nb(high, low, close, volume, pf, vf, starts, first_out, resumed, kinds, ip, fp, col, slot,
                maxwin, out, state, s_lo, s_hi):
    """Write every feature of segments ``s_lo..s_hi-1`` into ``out`` (n_columns x n_rows).

    Spec ``q`` has kind ``kinds[q]``, integer parameters ``ip[q]``, float parameter ``fp[q]``, its
    first output row in ``out`` at ``col[q]`` and its first state slot at ``slot[q]``. Segment
    ``s`` outputs rows ``first_out[s]..starts[s+1]-1`` (NaN before: every element of the
    segment's rows is written, so ``out`` may start uninitialized); if ``resumed[s]`` its
    recursive indicators continue from ``state[s]`` at row ``first_out[s]``, else they start
    at the segment's first row. ``state[s]`` is overwritten with the state after the last row.
    ``maxwin`` is at least the longest window of any spec. Releases the GIL: the wrapper runs
    one call per thread on disjoint segment ranges.
    """
    for s in range(s_lo, s_hi):
        a, b = starts[s], starts[s + 1]
        if b > a:
            _segment(high, low, close, volume, pf, vf, a, b, first_out[s], resumed[s], kinds, ip, fp, col,
                     slot, maxwin, out, state[s])


@njit(cache=True, nogil=True)
def first_invalid_nb(x, lower, strict):
    """Index of the first value that is NaN, infinite, or not above (``strict``) / at least ``lower``; -1 if none.

    ``lower`` must be >= 0 (then ``-inf`` fails the bound and only ``+inf`` needs its own test).
    The scan counts (it vectorizes) and only looks for the index when the count is not 0.
    """
    if strict:
        count = 0
        for i in range(x.size):
            count += not ((x[i] > lower) & (x[i] < np.inf))
    else:
        count = 0
        for i in range(x.size):
            count += not ((x[i] >= lower) & (x[i] < np.inf))
    if count:
        for i in range(x.size):
            v = x[i]
            if not ((v > lower if strict else v >= lower) and v < np.inf):
                return i
    return -1


@njit(cache=True, nogil=True)
def touch_nb(flat, lo, hi, step):
    """Write NaN to every ``step``-th element of ``flat[lo:hi]`` (one per memory page), without the GIL.

    The wrapper runs it over a fresh output block, one sequential range per thread, before
    :func:`features_nb` (which writes every element itself): the page faults of first touch then
    come in long runs (about 0.3 s for 5 GB here) instead of scattered through the kernel's
    writes to 26 columns at once (about 1 s).
    """
    for i in range(lo, hi, step):
        flat[i] = _NAN
