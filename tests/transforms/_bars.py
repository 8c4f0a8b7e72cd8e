"""Test data and slow references for the indicator tests: as-traded bars with events, back-adjustment.

Bars are generated AS TRADED: at an event row ``i`` the traded price jumps by ``pf[i]`` (a 2:1
split halves it) and the volume by ``vf[i]``, so the back-adjusted series (``x * B(t)``,
``B(t) = prod_{k>t} pf[k]``) is a continuous random walk that TA-Lib can be run on.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

COLS = ("high", "low", "close", "volume", "pf", "vf")


def symbol_bars(rng: np.random.Generator, n: int, *, events: Sequence[tuple[int, str, float]] = (),
                flat: Sequence[tuple[int, int]] = (), zero_volume: Sequence[tuple[int, int]] = (),
                p0: float = 100.0, sigma: float = 0.02) -> dict[str, np.ndarray]:
    """One symbol's as-traded bars.

    ``events``: ``(row, kind, x)`` with kind ``"split"`` (x new shares per old: 2.0 for 2:1,
    0.1 for 1:10 reverse) or ``"div"`` (x = dividend as a fraction of the previous close).
    ``flat``: ``[lo, hi)`` row ranges where the bar repeats the previous close (high = low = close).
    ``zero_volume``: ``[lo, hi)`` row ranges with volume 0.
    """
    pf, vf = np.ones(n), np.ones(n)
    for row, kind, x in events:
        if kind == "split":
            pf[row], vf[row] = 1.0 / x, x
        else:
            pf[row] = 1.0 - x
    is_flat = np.zeros(n, bool)
    for lo, hi in flat:
        is_flat[lo:hi] = True
    step = np.exp(rng.normal(0.0, sigma, n))
    close = np.empty(n)
    for t in range(n):
        prev = p0 if t == 0 else close[t - 1] * pf[t]
        close[t] = prev if is_flat[t] else prev * step[t]
    spread = np.abs(rng.normal(0.0, sigma, (2, n)))
    high = np.where(is_flat, close, close * np.exp(spread[0]))
    low = np.where(is_flat, close, close * np.exp(-spread[1]))
    volume = np.round(rng.lognormal(np.log(1e5), 0.5, n))
    for row, kind, x in events:
        if kind == "split":  # share counts change: the as-traded volume jumps with the split
            volume[row:] = np.round(volume[row:] * x)
    for lo, hi in zero_volume:
        volume[lo:hi] = 0.0
    return {"high": high, "low": low, "close": close, "volume": volume, "pf": pf, "vf": vf}


def concat(symbols: Sequence[dict[str, np.ndarray]]) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Columns of several symbols stacked, and their segment offsets."""
    cols = {c: np.concatenate([s[c] for s in symbols]) if symbols else np.empty(0) for c in COLS}
    starts = np.concatenate([[0], np.cumsum([s["close"].size for s in symbols])]).astype(np.int64)
    return cols, starts


def back_factor(f: np.ndarray) -> np.ndarray:
    """``B(t) = prod_{k>t} f[k]`` within one segment."""
    b = np.ones(f.size)
    if f.size > 1:
        b[:-1] = np.cumprod(f[::-1])[::-1][1:]
    return b


def adjusted(sym: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Back-adjusted prices and volumes of one symbol, plus the factors ``B`` and ``Bv``."""
    b, bv = back_factor(sym["pf"]), back_factor(sym["vf"])
    adj = {c: sym[c] * b for c in ("high", "low", "close")}
    adj["volume"] = sym["volume"] * bv
    adj["B"], adj["Bv"] = b, bv
    return adj


def rolling(x: np.ndarray, n: int, fn) -> np.ndarray:
    """``fn(windows)`` over the trailing windows of ``n`` values (one window a row; rows n-1..), NaN before."""
    out = np.full(x.size, np.nan)
    if x.size >= n:
        out[n - 1:] = fn(np.lib.stride_tricks.sliding_window_view(x, n))
    return out
