"""Numba kernels of ``clean.bars``: missing-bar layout and corporate-action factors.

Rows arrive sorted by (symbol, interval, ts), one segment per (symbol, interval); ``starts`` holds
the segment offsets (length n_segments + 1). The wrappers are in :mod:`alphatwin.transforms.clean`.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["layout_nb", "factors_nb"]

_US_PER_DAY = 86_400_000_000

MODE_NONE = 0      # no expected calendar: keep the rows as they are
MODE_SESSIONS = 1  # daily bars: every session of the segment's calendar between its first and last row
MODE_STEPS = 2     # intraday bars: every ``step`` within a UTC day between two rows of that day


@njit(cache=True)
def _walk(ts, starts, mode, step, cal_days, cal_off, seg_cal, src, imputed, out_ts, fill):
    """Count (``fill`` False) or write the output rows; returns how many there are."""
    k = 0
    for s in range(starts.size - 1):
        a, b = starts[s], starts[s + 1]
        c = seg_cal[s]
        lo, hi = cal_off[c], cal_off[c + 1]
        j = lo  # the calendar's next session after the previous row: rows only move forward
        if b > a and mode[s] == MODE_SESSIONS:
            j = lo + np.searchsorted(cal_days[lo:hi], ts[a] // _US_PER_DAY + 1)
        for i in range(a, b):
            if i > a and mode[s] == MODE_SESSIONS:
                prev_day = ts[i - 1] // _US_PER_DAY
                day = ts[i] // _US_PER_DAY
                while j < hi and cal_days[j] <= prev_day:
                    j += 1
                while j < hi and cal_days[j] < day:
                    if fill:
                        src[k] = i - 1
                        imputed[k] = True
                        out_ts[k] = cal_days[j] * _US_PER_DAY
                    k += 1
                    j += 1
            elif i > a and mode[s] == MODE_STEPS:
                t = ts[i - 1] + step[s]
                same_day = ts[i - 1] // _US_PER_DAY == ts[i] // _US_PER_DAY
                while same_day and t < ts[i]:
                    if fill:
                        src[k] = i - 1
                        imputed[k] = True
                        out_ts[k] = t
                    k += 1
                    t += step[s]
            if fill:
                src[k] = i
                imputed[k] = False
                out_ts[k] = ts[i]
            k += 1
    return k


@njit(cache=True)
def layout_nb(ts, starts, mode, step, cal_days, cal_off, seg_cal):
    """Where every output row comes from, missing bars included.

    Parameters
    ----------
    ts
        int64 microseconds since the epoch (UTC) of each input row.
    starts
        Segment offsets.
    mode, step, seg_cal
        Per segment: ``MODE_*``, the intraday step in microseconds, and the index of its
        calendar in ``cal_off``.
    cal_days, cal_off
        Every calendar's session days (days since 1970-01-01), concatenated; calendar c is
        ``cal_days[cal_off[c]:cal_off[c + 1]]``.

    Returns
    -------
    src, imputed, out_ts, out_starts
        For each output row: the input row it copies (the previous real row for a missing bar),
        whether it is a filled missing bar, its ts; and the output segment offsets.
    """
    n = _walk(ts, starts, mode, step, cal_days, cal_off, seg_cal,
              np.empty(0, np.int64), np.empty(0, np.bool_), np.empty(0, np.int64), False)
    src = np.empty(n, np.int64)
    imputed = np.empty(n, np.bool_)
    out_ts = np.empty(n, np.int64)
    _walk(ts, starts, mode, step, cal_days, cal_off, seg_cal, src, imputed, out_ts, True)
    out_starts = np.empty(starts.size, np.int64)
    out_starts[0] = 0
    j = 0
    for s in range(starts.size - 1):  # output segment s ends where input row starts[s+1]-1 was written
        while j < n and src[j] < starts[s + 1]:
            j += 1
        out_starts[s + 1] = j
    return src, imputed, out_ts, out_starts


@njit(cache=True)
def factors_nb(close, dividend, split_ratio, split_applies, starts):
    """Per-row event factors and backward cumulative adjustment factors.

    ``pf[i]`` multiplies the prices of every bar before ``i`` to make them comparable with bar
    ``i``: ``1/s - d/prev_close`` for a split ratio ``s`` (when ``split_applies``: the source's
    prices are not already split-adjusted) and a dividend ``d`` going ex on bar ``i``. ``vf[i]``
    does the same for volumes (``s``). The first row of a segment has factor 1. ``B[i]``
    (``adj_factor``) is the product of ``pf`` over the rows after ``i``, accumulated from the
    segment's end; ``Bv`` likewise with ``vf``.

    Returns
    -------
    pf, vf, B, Bv
        float64 arrays. ``pf`` is NaN where it would not be positive (a dividend at or above the
        previous close): the caller reports that row.
    """
    n = close.size
    pf = np.ones(n)
    vf = np.ones(n)
    B = np.ones(n)
    Bv = np.ones(n)
    for s in range(starts.size - 1):
        a, b = starts[s], starts[s + 1]
        for i in range(a + 1, b):
            r = split_ratio[i] if split_applies[i] else 1.0
            f = 1.0 / r - dividend[i] / close[i - 1]
            pf[i] = f if f > 0.0 else np.nan
            vf[i] = r
        for i in range(b - 2, a - 1, -1):
            B[i] = B[i + 1] * pf[i + 1]
            Bv[i] = Bv[i + 1] * vf[i + 1]
    return pf, vf, B, Bv
