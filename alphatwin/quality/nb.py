"""Numba kernels behind the sequential custom expectations of :mod:`alphatwin.quality.custom_expectations`.

Rows arrive in the order of the validated frame (the batch, then the accepted history rows the
runner appends as context). ``codes`` numbers each row's ``(symbol, interval)`` group (``-1``: a
row without a usable key, skipped), ``ts`` is int64 microseconds since the epoch (UTC) and
``hist`` marks history rows. :func:`group_order_nb` lays every group out in time order, history
first among equal timestamps, then batch rows in arrival order; the other kernels walk that
order. Every verdict is point-in-time: a row's verdict depends only on rows with an earlier
timestamp (and, for ties, on nothing after it in the order), so removing later rows never
changes it. Kernels return ``True`` for a row that breaks the rule; callers mask history rows.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

__all__ = [
    "group_codes_nb",
    "group_order_nb",
    "not_increasing_nb",
    "restates_nb",
    "robust_outliers_nb",
    "unexplained_jumps_nb",
    "gaps_nb",
    "GAP_BUSINESS_DAYS",
    "GAP_NOMINAL",
    "GAP_SAME_DAY",
]

GAP_BUSINESS_DAYS = 0  # daily bars: a missing weekday between two bars
GAP_NOMINAL = 1  # weekly and longer bars: more than 1.5 nominal intervals apart
GAP_SAME_DAY = 2  # intraday bars: more than one interval apart within the same UTC day

_DAY_US = 86_400_000_000
NAT = np.iinfo(np.int64).min  # NaT as int64
MAD_SIGMA = 1.4826  # sigma / MAD for normal data
MEAN_AD_SIGMA = 1.2533  # sigma / mean absolute deviation for normal data


@njit(cache=True)
def _order_key(ts: np.ndarray, hist: np.ndarray, i: int) -> int:
    return ts[i] * 2 + (0 if hist[i] else 1)


@njit(cache=True)
def group_codes_nb(sym: np.ndarray, itv: np.ndarray, n_itv: int, ts: np.ndarray) -> np.ndarray:
    """One code per row for its (symbol, interval) pair: ``sym * n_itv + itv``; ``-1`` if any part is missing."""
    codes = np.empty(sym.shape[0], np.int64)
    for i in range(sym.shape[0]):
        if sym[i] < 0 or itv[i] < 0 or ts[i] == NAT:
            codes[i] = -1
        else:
            codes[i] = np.int64(sym[i]) * n_itv + itv[i]
    return codes


@njit(cache=True)
def _counting_order(codes: np.ndarray, n_groups: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows grouped by code (stable), skipping ``-1``; and the group starts."""
    starts = np.zeros(n_groups + 1, np.int64)
    monotone = True
    for i in range(codes.shape[0]):
        if codes[i] >= 0:
            starts[codes[i] + 1] += 1
        if codes[i] < 0 or (i > 0 and codes[i] < codes[i - 1]):
            monotone = False
    for g in range(n_groups):
        starts[g + 1] += starts[g]
    if monotone:  # already grouped (a sorted batch without history): no scatter
        return np.arange(codes.shape[0]), starts
    fill = starts[:-1].copy()
    order = np.empty(starts[n_groups], np.int64)
    for i in range(codes.shape[0]):
        g = codes[i]
        if g >= 0:
            order[fill[g]] = i
            fill[g] += 1
    return order, starts


@njit(cache=True, parallel=True)
def group_order_nb(codes: np.ndarray, n_groups: int, ts: np.ndarray, hist: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows grouped by ``codes`` (see :func:`group_codes_nb`), each group sorted by (ts, history first).

    Returns ``order`` (row positions) and ``starts`` (group ``g`` is ``order[starts[g]:starts[g+1]]``).
    Groups already in order (the usual case) are not sorted again.
    """
    order, starts = _counting_order(codes, n_groups)
    for g in prange(n_groups):
        a, b = starts[g], starts[g + 1]
        for j in range(a + 1, b):
            if _order_key(ts, hist, order[j]) < _order_key(ts, hist, order[j - 1]):
                seg = order[a:b].copy()
                keys = np.empty(b - a, np.int64)
                for q in range(b - a):
                    keys[q] = _order_key(ts, hist, seg[q])
                order[a:b] = seg[np.argsort(keys, kind="mergesort")]
                break
    return order, starts


@njit(cache=True)
def not_increasing_nb(codes: np.ndarray, n_groups: int, ts: np.ndarray, hist: np.ndarray, strictly: bool) -> np.ndarray:
    """Batch rows whose ts is before (or, ``strictly``, equal to) the previous batch row of their group.

    Rows are taken in frame (arrival) order; history rows neither fail nor count as previous rows.
    """
    bad = np.zeros(codes.shape[0], np.bool_)
    last = np.zeros(n_groups, np.int64)
    seen = np.zeros(n_groups, np.bool_)
    for i in range(codes.shape[0]):
        g = codes[i]
        if g < 0 or hist[i]:
            continue
        if seen[g] and (ts[i] < last[g] or (strictly and ts[i] == last[g])):
            bad[i] = True
        seen[g] = True
        last[g] = ts[i]
    return bad


@njit(cache=True, parallel=True)
def restates_nb(order: np.ndarray, starts: np.ndarray, ts: np.ndarray, hist: np.ndarray, n: int) -> np.ndarray:
    """Batch rows whose (group, ts) also occurs among the history rows."""
    hit = np.zeros(n, np.bool_)
    for g in prange(starts.shape[0] - 1):
        j, b = starts[g], starts[g + 1]
        while j < b:
            e = j + 1
            while e < b and ts[order[e]] == ts[order[j]]:
                e += 1
            if hist[order[j]]:  # history sorts first among equal timestamps
                for q in range(j, e):
                    if not hist[order[q]]:
                        hit[order[q]] = True
            j = e
    return hit


@njit(cache=True)
def _run_end(order: np.ndarray, ts: np.ndarray, j: int, b: int) -> int:
    e = j + 1
    while e < b and ts[order[e]] == ts[order[j]]:
        e += 1
    return e


@njit(cache=True)
def _valid_price(x: float) -> bool:
    return x > 0.0 and math.isfinite(x)


@njit(cache=True)
def _total_return(close: float, split: float, div: float, ref: float) -> float:
    """Log return from ``ref`` to ``close`` with the bar's split and dividend added back."""
    s = split if _valid_price(split) else 1.0
    d = div if (div >= 0.0 and math.isfinite(div)) else 0.0
    return math.log((close + d) * s / ref)


@njit(cache=True)
def _bisect(srt: np.ndarray, count: int, x: float, right: bool) -> int:
    """Insertion point of ``x`` in ``srt[:count]`` (after equal values when ``right``)."""
    lo, hi = 0, count
    while lo < hi:
        mid = (lo + hi) >> 1
        if srt[mid] < x or (right and srt[mid] == x):
            lo = mid + 1
        else:
            hi = mid
    return lo


@njit(cache=True)
def _insert_sorted(srt: np.ndarray, count: int, x: float) -> None:
    q = count
    while q > 0 and srt[q - 1] > x:
        srt[q] = srt[q - 1]
        q -= 1
    srt[q] = x


@njit(cache=True)
def _replace_sorted(srt: np.ndarray, count: int, old: float, new: float) -> None:
    """Replace one ``old`` in ``srt[:count]`` by ``new``, keeping it sorted (moves only what lies between).

    ``old`` is found by a linear scan: on a window of ~60 values its predictable branches beat a
    binary search's mispredicted ones.
    """
    q = 0
    while srt[q] != old:
        q += 1
    if new >= old:
        while q + 1 < count and srt[q + 1] < new:
            srt[q] = srt[q + 1]
            q += 1
    else:
        while q > 0 and srt[q - 1] > new:
            srt[q] = srt[q - 1]
            q -= 1
    srt[q] = new


@njit(cache=True)
def _median_sorted(srt: np.ndarray, count: int) -> float:
    m = count // 2
    if count % 2 == 1:
        return srt[m]
    return 0.5 * (srt[m - 1] + srt[m])


@njit(cache=True)
def _mad_below(srt: np.ndarray, count: int, med: float, c: float) -> bool:
    """Whether the window's median absolute deviation around ``med`` is below ``c``.

    Counts the values within ``(med - c, med + c)`` with two binary searches instead of
    computing the MAD; only an exact tie at an even count needs the two middle deviations.
    """
    lo = _bisect(srt, count, med - c, True)
    hi = _bisect(srt, count, med + c, False)
    inside = hi - lo
    m = count // 2
    if count % 2 == 1 or inside != m:
        return inside >= m + 1
    below = max(med - srt[lo], srt[hi - 1] - med)  # the largest deviation under c
    above = math.inf  # the smallest deviation at or over c
    if lo > 0:
        above = med - srt[lo - 1]
    if hi < count:
        above = min(above, srt[hi] - med)
    return 0.5 * (below + above) < c


@njit(cache=True)
def _mad_is_zero(srt: np.ndarray, count: int, med: float) -> bool:
    """Whether more than half of the window equals its median (so the MAD is 0)."""
    same = _bisect(srt, count, med, True) - _bisect(srt, count, med, False)
    return same >= count // 2 + 1


@njit(cache=True)
def _is_outlier(r: float, srt: np.ndarray, count: int, min_periods: int, k: float, min_mad: float) -> bool:
    """``|r - median| > k * scale``, the scale being ``max(1.4826 * MAD, min_mad)``.

    When the MAD is 0 (more than half the window is one value, e.g. a price stuck on a tick),
    the scale falls back to ``1.2533 * mean absolute deviation`` (both estimate a normal sigma).
    """
    if count < min_periods or not math.isfinite(r):
        return False
    med = _median_sorted(srt, count)
    dev = abs(r - med)
    kk = k * MAD_SIGMA
    if dev <= kk * min_mad:
        return False
    # A cheap lower bound of the MAD settles most rows: (x[mid - h], x[mid + h]) with h = count // 4
    # holds fewer than half the values, so no deviation below the nearer end reaches the median one.
    h = count // 4
    if dev <= kk * min(med - srt[count // 2 - h], srt[count // 2 + h] - med):
        return False
    if not _mad_below(srt, count, med, dev / kk):
        return False
    if not _mad_is_zero(srt, count, med):
        return True
    mean_ad = 0.0
    for q in range(count):
        mean_ad += abs(srt[q] - med)
    return dev > k * max(MEAN_AD_SIGMA * mean_ad / count, MAD_SIGMA * min_mad)


@njit(cache=True)
def _push(srt: np.ndarray, buf: np.ndarray, count: int, head: int, r: float) -> tuple[int, int]:
    """Add ``r`` to the window (dropping the oldest when full); the new count and ring head."""
    window = buf.shape[0]
    if count == window:
        _replace_sorted(srt, count, buf[head], r)
    else:
        _insert_sorted(srt, count, r)
        count += 1
    buf[head] = r
    return count, (head + 1 if head + 1 < window else 0)


@njit(cache=True)
def _outliers_of_group(order, a, b, ts, close, split, div, k, window, min_periods, min_mad, flag):  # noqa: PLR0913
    """:func:`robust_outliers_nb` for the rows ``order[a:b]`` of one group."""
    buf = np.empty(window)  # the window's returns in arrival order (a ring)
    srt = np.empty(window)  # the same returns, sorted
    count, head, ref, pending = 0, 0, math.nan, math.nan
    j = a
    while j < b:
        e = _run_end(order, ts, j, b)
        take, take_r, bad, bad_r = -1, math.nan, -1, math.nan
        for q in range(j, e):
            i = order[q]
            if not _valid_price(close[i]):
                continue
            if not math.isfinite(ref):
                take = i if take < 0 else take
                continue
            r = _total_return(close[i], split[i], div[i], ref)
            out = _is_outlier(r, srt, count, min_periods, k, min_mad)
            if out and math.isfinite(pending):
                r2 = _total_return(close[i], split[i], div[i], pending)
                if not _is_outlier(r2, srt, count, min_periods, k, min_mad):
                    out, r = False, r2
            if out:
                flag[i] = True
                if bad < 0:
                    bad, bad_r = i, r
            elif take < 0:
                take, take_r = i, r
        if take >= 0:
            if math.isfinite(take_r):
                count, head = _push(srt, buf, count, head, take_r)
            ref, pending = close[take], math.nan
        elif bad >= 0:  # the window still learns the move (robust statistics shrug off one value)
            count, head = _push(srt, buf, count, head, bad_r)
            pending = close[bad]
        j = e


@njit(cache=True, parallel=True)
def robust_outliers_nb(order, starts, ts, close, split, div, k, window, min_periods, min_mad):  # noqa: PLR0913
    """Rows whose total log return is beyond ``k`` robust deviations of the group's trailing returns.

    A return is an outlier when ``|r - median| > k * 1.4826 * max(MAD, min_mad)`` over the group's
    last ``window`` returns (see :func:`_is_outlier` for a zero MAD; no decision before
    ``min_periods`` returns). The return runs from the last accepted close, so a bad print is
    flagged once and the next bar is measured against the price before it; when the bar after a
    flagged one agrees with it, the new level is accepted (a level shift flags only its first
    bar). Every bar's return enters the window, flagged or not, so the scale adapts to a new
    regime instead of freezing. Rows without a positive finite close are skipped. Groups run in
    parallel.
    """
    flag = np.zeros(close.shape[0], np.bool_)
    for g in prange(starts.shape[0] - 1):
        _outliers_of_group(order, starts[g], starts[g + 1], ts, close, split, div, k, window, min_periods, min_mad, flag)
    return flag


@njit(cache=True, parallel=True)
def unexplained_jumps_nb(order, starts, ts, close, split, div, threshold):
    """Rows whose |log(close / last accepted close)| exceeds ``threshold`` with no split or dividend.

    Like :func:`robust_outliers_nb`, a flagged bar does not become the reference, and a bar that
    agrees with the flagged one before it confirms a new level (flagged once).
    """
    flag = np.zeros(close.shape[0], np.bool_)
    for g in prange(starts.shape[0] - 1):
        j, b = starts[g], starts[g + 1]
        ref, pending = math.nan, math.nan
        while j < b:
            e = _run_end(order, ts, j, b)
            take, first_bad = -1, -1
            for q in range(j, e):
                i = order[q]
                c = close[i]
                if not _valid_price(c):
                    continue
                explained = split[i] != 1.0 or div[i] > 0.0
                out = math.isfinite(ref) and not explained and abs(math.log(c / ref)) > threshold
                if out and math.isfinite(pending) and abs(math.log(c / pending)) <= threshold:
                    out = False
                if out:
                    flag[i] = True
                    if first_bad < 0:
                        first_bad = i
                elif take < 0:
                    take = i
            if take >= 0:
                ref, pending = close[take], math.nan
            elif first_bad >= 0:
                pending = close[first_bad]
            j = e
    return flag


@njit(cache=True)
def _weekdays_before(day: int) -> int:
    """Weekdays from Monday 1969-12-29 up to (not including) epoch day ``day``."""
    e = day + 3
    return (e // 7) * 5 + min(e % 7, 5)


@njit(cache=True, parallel=True)
def gaps_nb(order, starts, ts, hist, n, mode, step_us):
    """Batch rows that follow a missing bar of their group (the bar before them is absent).

    ``mode`` is :data:`GAP_BUSINESS_DAYS` (a weekday between the two session dates has no bar),
    :data:`GAP_NOMINAL` (more than 1.5 ``step_us`` apart) or :data:`GAP_SAME_DAY` (more than
    ``step_us`` apart on the same UTC day; gaps across days are not judged).
    """
    flag = np.zeros(n, np.bool_)
    for g in prange(starts.shape[0] - 1):
        j, b = starts[g], starts[g + 1]
        prev = 0
        have_prev = False
        while j < b:
            e = _run_end(order, ts, j, b)
            t = ts[order[j]]
            missing = False
            if have_prev:
                if mode == GAP_BUSINESS_DAYS:
                    d0, d1 = prev // _DAY_US, t // _DAY_US
                    missing = _weekdays_before(d1) - _weekdays_before(d0 + 1) > 0
                elif mode == GAP_NOMINAL:
                    missing = t - prev > 1.5 * step_us
                else:
                    missing = (t // _DAY_US == prev // _DAY_US) and t - prev > step_us
            if missing:
                for q in range(j, e):
                    if not hist[order[q]]:
                        flag[order[q]] = True
            prev, have_prev = t, True
            j = e
    return flag
