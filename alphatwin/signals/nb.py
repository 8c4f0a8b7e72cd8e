"""Numba kernels of the signal layer: NumPy in, NumPy out, no look-ahead (row t reads rows <= t)."""

from __future__ import annotations

import numpy as np
from numba import njit, prange

__all__ = ["sma_1d_nb", "sma_rows_nb", "cross_target_nb", "ema_1d_nb", "macd_1d_nb", "rsi_1d_nb",
           "rolling_std_1d_nb", "zscore_1d_nb", "reversion_target_nb"]


@njit(cache=True, error_model="numpy")
def sma_1d_nb(x: np.ndarray, window: int) -> np.ndarray:
    """Simple moving average of a NaN-free series, TA-Lib's running sum; NaN for the first
    ``window - 1`` rows. Row t reads ``x[:t + 1]`` only."""
    n = x.shape[0]
    out = np.full(n, np.nan)
    if window < 1 or n < window:
        return out
    total = 0.0
    for t in range(window - 1):
        total += x[t]
    for t in range(window - 1, n):
        total += x[t]
        out[t] = total / window
        total -= x[t - window + 1]
    return out


@njit(cache=True, error_model="numpy", parallel=True)
def sma_rows_nb(x: np.ndarray, windows: np.ndarray) -> np.ndarray:
    """One row of :func:`sma_1d_nb` per window: each distinct window computed once."""
    out = np.empty((windows.shape[0], x.shape[0]))
    for i in prange(windows.shape[0]):
        out[i] = sma_1d_nb(x, windows[i])
    return out


@njit(cache=True, error_model="numpy")
def cross_target_nb(fast: np.ndarray, slow: np.ndarray, long_: bool, short: bool) -> np.ndarray:
    """+1 while ``fast > slow`` (when ``long_``), -1 while ``fast < slow`` (when ``short``), else 0
    (also while either is NaN, the warm-up)."""
    n = fast.shape[0]
    out = np.zeros(n)
    for t in range(n):
        if fast[t] > slow[t]:
            if long_:
                out[t] = 1.0
        elif fast[t] < slow[t]:
            if short:
                out[t] = -1.0
    return out


@njit(cache=True, error_model="numpy")
def _ema_seeded_nb(x: np.ndarray, period: int, seed: int, out: np.ndarray) -> None:
    """TA-Lib's EMA recursion (alpha = 2 / (period + 1)) written into ``out[seed:]``: the value at
    ``seed`` is the mean of ``x[seed - period + 1 : seed + 1]``; ``out`` is left alone before it."""
    n = x.shape[0]
    if seed >= n:
        return
    k = 2.0 / (period + 1)
    total = 0.0
    for t in range(seed - period + 1, seed + 1):
        total += x[t]
    e = total / period
    out[seed] = e
    for t in range(seed + 1, n):
        e = (x[t] - e) * k + e
        out[t] = e


@njit(cache=True, error_model="numpy")
def ema_1d_nb(x: np.ndarray, period: int) -> np.ndarray:
    """TA-Lib's EMA of a NaN-free series: seeded with the SMA of the first ``period`` values at row
    ``period - 1`` (NaN before), then ``e += (x - e) * 2 / (period + 1)``. Row t reads ``x[:t + 1]``."""
    out = np.full(x.shape[0], np.nan)
    if period >= 1:
        _ema_seeded_nb(x, period, period - 1, out)
    return out


@njit(cache=True, error_model="numpy")
def macd_1d_nb(x: np.ndarray, fast: int, slow: int, signal: int) -> tuple[np.ndarray, np.ndarray]:
    """TA-Lib's MACD line and signal line (``fast < slow``), NaN for the first
    ``slow + signal - 2`` rows as in ``talib.MACD``.

    TA-Lib aligns both EMAs at row ``slow - 1``: the slow one is seeded with the mean of its first
    ``slow`` values, the fast one with the mean of the ``fast`` values ending there (not at row
    ``fast - 1``). The signal line is the EMA of the MACD line seeded with the mean of its first
    ``signal`` values. Row t reads ``x[:t + 1]``.
    """
    n = x.shape[0]
    line = np.full(n, np.nan)
    sig = np.full(n, np.nan)
    start = slow + signal - 2
    if fast < 1 or slow < fast or signal < 1 or n <= start:
        return line, sig
    ef = np.full(n, np.nan)
    es = np.full(n, np.nan)
    _ema_seeded_nb(x, fast, slow - 1, ef)
    _ema_seeded_nb(x, slow, slow - 1, es)
    raw = ef[slow - 1:] - es[slow - 1:]
    _ema_seeded_nb(raw, signal, signal - 1, sig[slow - 1:])
    line[start:] = raw[signal - 1:]
    return line, sig


@njit(cache=True, error_model="numpy")
def rsi_1d_nb(x: np.ndarray, period: int, flat: float = 0.0) -> np.ndarray:
    """TA-Lib's RSI (Wilder): the average gain and loss start as the simple means of the first
    ``period`` changes (row ``period``; NaN before), then ``avg = (avg * (period - 1) + new) / period``;
    RSI = 100 * gain / (gain + loss), ``flat`` where both are 0 (TA-Lib: 0). Row t reads ``x[:t + 1]``."""
    n = x.shape[0]
    out = np.full(n, np.nan)
    if period < 1 or n <= period:
        return out
    gain = 0.0
    loss = 0.0
    for t in range(1, period + 1):
        g, lo = _gain_loss(x[t] - x[t - 1])
        gain += g
        loss += lo
    gain /= period
    loss /= period
    out[period] = _rsi_value(gain, loss, flat)
    for t in range(period + 1, n):
        g, lo = _gain_loss(x[t] - x[t - 1])
        gain = gain * (period - 1) + g
        loss = loss * (period - 1) + lo
        gain /= period
        loss /= period
        out[t] = _rsi_value(gain, loss, flat)
    return out


@njit(cache=True, error_model="numpy")
def _gain_loss(d: float) -> tuple[float, float]:
    """A price change as (gain, loss), both >= 0."""
    return (0.0, -d) if d < 0.0 else (d, 0.0)


@njit(cache=True, error_model="numpy")
def _rsi_value(gain: float, loss: float, flat: float) -> float:
    total = gain + loss
    return 100.0 * (gain / total) if total > 0.0 else flat


@njit(cache=True, error_model="numpy")
def _window_moments(x: np.ndarray, t: int, window: int) -> tuple[float, float]:
    """(mean - x[t], population variance) of ``x[t - window + 1 : t + 1]``, two passes over the
    window shifted by ``x[t]``: exact zeros on a flat window, no running-sum cancellation."""
    ref = x[t]
    total = 0.0
    for i in range(t - window + 1, t + 1):
        total += x[i] - ref
    shift = total / window
    ss = 0.0
    for i in range(t - window + 1, t + 1):
        d = x[i] - ref - shift
        ss += d * d
    return shift, ss / window


@njit(cache=True, error_model="numpy")
def rolling_std_1d_nb(x: np.ndarray, window: int) -> np.ndarray:
    """Rolling population standard deviation (ddof=0, TA-Lib's BBANDS/STDDEV) of a NaN-free series;
    NaN for the first ``window - 1`` rows. Row t reads ``x[:t + 1]``."""
    n = x.shape[0]
    out = np.full(n, np.nan)
    if window < 1:
        return out
    for t in range(window - 1, n):
        out[t] = np.sqrt(_window_moments(x, t, window)[1])
    return out


@njit(cache=True, error_model="numpy")
def zscore_1d_nb(x: np.ndarray, window: int) -> np.ndarray:
    """(x - SMA(window)) / population std(window): the position inside the Bollinger bands in
    standard deviations. NaN during the warm-up and on a flat window (0 / 0). Row t reads ``x[:t + 1]``."""
    n = x.shape[0]
    out = np.full(n, np.nan)
    if window < 1:
        return out
    for t in range(window - 1, n):
        shift, var = _window_moments(x, t, window)
        out[t] = -shift / np.sqrt(var)
    return out


@njit(cache=True, error_model="numpy")
def reversion_target_nb(score: np.ndarray, enter_low: float, enter_high: float, exit_mid: float,
                        long_: bool, short: bool) -> np.ndarray:
    """A stateful mean-reversion target: go long when ``score < enter_low`` (when ``long_``) and
    stay long until ``score >= exit_mid``; go short when ``score > enter_high`` (when ``short``) and
    stay short until ``score <= exit_mid``. An exit and the opposite entry can fall on the same bar.
    A NaN score (warm-up, undefined) changes nothing: the position held stays (0 in the warm-up)."""
    n = score.shape[0]
    out = np.zeros(n)
    pos = 0.0
    for t in range(n):
        s = score[t]
        if not np.isnan(s):
            if (pos > 0.0 and s >= exit_mid) or (pos < 0.0 and s <= exit_mid):
                pos = 0.0
            if pos == 0.0:
                if long_ and s < enter_low:
                    pos = 1.0
                elif short and s > enter_high:
                    pos = -1.0
        out[t] = pos
    return out
