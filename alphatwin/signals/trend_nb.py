"""Numba kernels of the trend-filter, volume and cross-sectional strategies (``adx_trend``,
``slope_trend``, ``obv_momentum``, ``cs_momentum``): NumPy in, NumPy out, no look-ahead (row t
reads rows <= t)."""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["dmi_1d_nb", "linreg_slope_1d_nb", "band_target_nb", "obv_1d_nb", "obv_gap_1d_nb",
           "lagged_ratio_nb", "cs_weights_nb"]

@njit(cache=True, error_model="numpy")
def _true_range(h: float, lo: float, prev_c: float) -> float:
    """TA-Lib's TRUE_RANGE: max(h - lo, |h - prev_c|, |lo - prev_c|)."""
    out = h - lo
    d = abs(h - prev_c)
    if d > out:
        out = d
    d = abs(lo - prev_c)
    if d > out:
        out = d
    return out


@njit(cache=True, error_model="numpy")
def _directional_moves(high: np.ndarray, low: np.ndarray, t: int) -> tuple[float, float]:
    """(+DM, -DM) of bar t: the larger of the up move of the high and the down move of the low,
    when positive; the other one 0 (both 0 on a tie). A tie is equality to 1e-12 relative: on
    backward-adjusted prices a raw tie (up == down) can come out a few ulps apart depending on
    later corporate actions, and TA-Lib's exact comparison would then flip with them."""
    up = high[t] - high[t - 1]
    down = low[t - 1] - low[t]
    if abs(up - down) <= 1e-12 * max(abs(up), abs(down)):
        return 0.0, 0.0
    if down > 0.0 and up < down:
        return 0.0, down
    if up > 0.0 and up > down:
        return up, 0.0
    return 0.0, 0.0


@njit(cache=True, error_model="numpy")
def dmi_1d_nb(high: np.ndarray, low: np.ndarray, close: np.ndarray, period: int
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """TA-Lib's ``PLUS_DI``, ``MINUS_DI`` and ``ADX`` (Wilder, ``period >= 2``) in one pass.

    +DM, -DM and the true range are summed over bars 1 .. period-1, then smoothed with
    ``s = s - s / period + new`` from bar ``period`` on; DI = 100 * DM / TR (0 where TR is 0)
    from row ``period``; DX = 100 * |+DI - -DI| / (+DI + -DI); ADX is the mean of the first
    ``period`` DX (row ``2 * period - 1``), then ``adx = (adx * (period - 1) + dx) / period``.
    A DX that is undefined (TR 0, or +DI + -DI = 0) adds 0 to the first mean and leaves the ADX
    unchanged afterwards, as in TA-Lib. Zero means exactly 0, as in the TA-Lib of the venv (0.8;
    TA-Lib 0.4 had an absolute 1e-8 band, which depends on the price scale). NaN before the
    warm-up rows; row t reads rows <= t.
    """
    n = close.shape[0]
    plus_di = np.full(n, np.nan)
    minus_di = np.full(n, np.nan)
    adx = np.full(n, np.nan)
    if period < 2 or n <= period:
        return plus_di, minus_di, adx
    pdm = 0.0
    mdm = 0.0
    tr = 0.0
    for t in range(1, period):
        p, m = _directional_moves(high, low, t)
        pdm += p
        mdm += m
        tr += _true_range(high[t], low[t], close[t - 1])
    sum_dx = 0.0
    value = 0.0
    for t in range(period, n):
        p, m = _directional_moves(high, low, t)
        pdm = pdm - pdm / period + p
        mdm = mdm - mdm / period + m
        tr = tr - tr / period + _true_range(high[t], low[t], close[t - 1])
        pdi = 0.0
        mdi = 0.0
        dx = np.nan
        if tr != 0.0:
            pdi = 100.0 * (pdm / tr)
            mdi = 100.0 * (mdm / tr)
            total = mdi + pdi
            if total > 0.0:
                dx = 100.0 * (abs(mdi - pdi) / total)
        plus_di[t] = pdi
        minus_di[t] = mdi
        if t < 2 * period - 1:
            if not np.isnan(dx):
                sum_dx += dx
            continue
        if t == 2 * period - 1:
            if not np.isnan(dx):
                sum_dx += dx
            value = sum_dx / period
        elif not np.isnan(dx):
            value = (value * (period - 1) + dx) / period
        adx[t] = value
    return plus_di, minus_di, adx


@njit(cache=True, error_model="numpy")
def linreg_slope_1d_nb(y: np.ndarray, window: int) -> np.ndarray:
    """The least-squares slope of ``y`` against the bar number over the last ``window`` rows
    (TA-Lib's ``LINEARREG_SLOPE``, ``window >= 2``); NaN for the first ``window - 1`` rows.

    Each window is summed afresh with centred bar numbers and ``y`` shifted by ``y[t]``:
    slope = sum((k - (w - 1) / 2) * (y[k] - y[t])) / (w (w^2 - 1) / 12), exactly 0 on a flat
    window, no running-sum cancellation. Row t reads ``y[:t + 1]``.
    """
    n = y.shape[0]
    out = np.full(n, np.nan)
    if window < 2:
        return out
    mid = (window - 1) / 2.0
    sxx = window * (window * window - 1) / 12.0
    for t in range(window - 1, n):
        ref = y[t]
        start = t - window + 1
        total = 0.0
        for k in range(window):
            total += (k - mid) * (y[start + k] - ref)
        out[t] = total / sxx
    return out


@njit(cache=True, error_model="numpy")
def band_target_nb(x: np.ndarray, threshold: float, long_: bool, short: bool) -> np.ndarray:
    """+1 while ``x > threshold`` (when ``long_``), -1 while ``x < -threshold`` (when ``short``),
    else 0 (also where ``x`` is NaN)."""
    n = x.shape[0]
    out = np.zeros(n)
    for t in range(n):
        if x[t] > threshold:
            if long_:
                out[t] = 1.0
        elif x[t] < -threshold:
            if short:
                out[t] = -1.0
    return out


@njit(cache=True, error_model="numpy")
def obv_1d_nb(close: np.ndarray, volume: np.ndarray) -> np.ndarray:
    """TA-Lib's On-Balance Volume: ``volume[0]`` at row 0, then + the bar's volume on an up
    close, - on a down close, unchanged on an unchanged close. Row t reads rows <= t."""
    n = close.shape[0]
    out = np.empty(n)
    if n == 0:
        return out
    obv = volume[0]
    out[0] = obv
    for t in range(1, n):
        if close[t] > close[t - 1]:
            obv += volume[t]
        elif close[t] < close[t - 1]:
            obv -= volume[t]
        out[t] = obv
    return out


@njit(cache=True, error_model="numpy")
def obv_gap_1d_nb(obv: np.ndarray, volume: np.ndarray, window: int) -> np.ndarray:
    """(OBV - SMA(OBV, window)) / SMA(volume, window): how far OBV is above its average, in
    average bars of volume. Each window is summed afresh with OBV shifted by ``obv[t]`` (exactly
    0 where OBV did not move); NaN for the first ``window - 1`` rows and where the window has
    no volume at all. Row t reads rows <= t."""
    n = obv.shape[0]
    out = np.full(n, np.nan)
    if window < 1:
        return out
    for t in range(window - 1, n):
        ref = obv[t]
        below = 0.0
        vol = 0.0
        for i in range(t - window + 1, t + 1):
            below += obv[i] - ref
            vol += volume[i]
        if vol > 0.0:
            out[t] = -below / vol
    return out


@njit(cache=True, error_model="numpy")
def lagged_ratio_nb(close: np.ndarray, lookback: int, skip: int, recent: int) -> np.ndarray:
    """(bars x symbols) ``c[t - skip] / c[t - lookback]`` where ``c[r]`` is the symbol's last
    close at or before row r (NaN closes are gaps); NaN where the symbol's last bar is more than
    ``recent - 1`` rows before t (a holiday or a weekend of the union timeline keeps its score; a
    symbol that stopped trading loses it) or it has no close at or before ``t - lookback``.
    Row t reads rows <= t."""
    n, m = close.shape
    out = np.full((n, m), np.nan)
    last = np.full((n, m), np.nan)
    for j in range(m):
        prev = np.nan
        seen = -recent
        for t in range(n):
            if not np.isnan(close[t, j]):
                prev = close[t, j]
                seen = t
            last[t, j] = prev
            if t >= lookback and t - seen < recent:
                out[t, j] = last[t - skip, j] / last[t - lookback, j]
    return out


@njit(cache=True, error_model="numpy")
def _rank_weights(score: np.ndarray, quantile: float, long_w: float, short_w: float,
                  out: np.ndarray) -> None:
    """Write one rebalance's weights into ``out`` (zeros on entry): the top ``k`` finite scores
    get ``long_w / k``, the bottom ``k`` get ``-short_w / k``, with k = max(1, floor(quantile x
    count)); ties are ranked by column order (the earlier column ranks higher)."""
    cols = np.flatnonzero(~np.isnan(score))
    count = cols.shape[0]
    if count < 2:
        return
    k = max(1, int(np.floor(quantile * count + 1e-9)))
    order = cols[np.argsort(-score[cols], kind="mergesort")]  # stable: ties keep column order
    for i in range(k):  # a leg with weight 0 is left alone (no -0.0)
        if long_w > 0.0:
            out[order[i]] = long_w / k
        if short_w > 0.0:
            out[order[count - 1 - i]] = -short_w / k


@njit(cache=True, error_model="numpy")
def cs_weights_nb(score: np.ndarray, has_bar: np.ndarray, rebalance: int, quantile: float,
                  long_w: float, short_w: float) -> np.ndarray:
    """(bars x symbols) cross-sectional weights: rebalanced on row t0 (the first row where at
    least 2 symbols have a finite score) and every ``rebalance`` rows after it
    (:func:`_rank_weights` over those symbols; flat when fewer than 2), held in between; 0
    before t0; NaN wherever ``has_bar`` is False. Row t reads rows <= t."""
    n, m = score.shape
    out = np.zeros((n, m))
    held = np.zeros(m)
    t0 = -1
    for t in range(n):
        row = score[t]  # a symbol without a bar at t but a recent one is ranked too
        if t0 < 0 and np.sum(~np.isnan(row)) >= 2:
            t0 = t
        if t0 >= 0 and (t - t0) % rebalance == 0:
            held[:] = 0.0
            _rank_weights(row, quantile, long_w, short_w, held)
        for j in range(m):
            out[t, j] = held[j] if has_bar[t, j] else np.nan
    return out
