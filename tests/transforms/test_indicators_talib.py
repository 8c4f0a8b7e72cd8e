"""Every indicator against TA-Lib (or a plain NumPy reference) on back-adjusted data.

TA-Lib runs on the backward-adjusted series of each symbol (``x * B(t)``); our as-of values map
onto it exactly: level indicators times ``B(t)``, OBV times the volume factor, scale-free ones
as they are. Agreement is required to 1e-9 relative after the warm-up, and NaN exactly where
TA-Lib's (or the reference's) is NaN.
"""

from __future__ import annotations

import numpy as np
import pytest
import talib

from alphatwin.transforms.indicators import DEFAULT_SPECS, FeatureSpec, compute, specs_from_mapping
from tests.transforms._bars import adjusted, concat, rolling, symbol_bars

RTOL = 1e-9

EXTRA = specs_from_mapping({
    "sma": [2, 50], "ema": [2, 50], "wma": [3, 50], "rsi": [2, 30], "atr": [1, 30], "vroc": [1, 30],
    "macd": [[5, 35, 5], [2, 3, 1]], "stoch": [[5, 3, 3], [1, 1, 1], [9, 2, 4]],
    "bbands": [[20, 2.5], [5, 1]], "vol": [5], "parkinson": [1, 7], "vwap": [1, 9],
    "zscore": [2, 7], "minmax": [2, 7], "robust": [2, 7, 30],
})


def _spread(w: np.ndarray) -> np.ndarray:
    return np.ptp(w, axis=1) > 0


def _std(w: np.ndarray) -> np.ndarray:
    return np.where(_spread(w), w.std(axis=1, ddof=1), 0.0)


def _zscore(w: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(_spread(w), (w[:, -1] - w.mean(axis=1)) / w.std(axis=1, ddof=1), np.nan)


def _minmax(w: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(_spread(w), (w[:, -1] - w.min(axis=1)) / np.ptp(w, axis=1), np.nan)


def _robust(w: np.ndarray) -> np.ndarray:
    q1, med, q3 = np.quantile(w, [0.25, 0.5, 0.75], axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(q3 > q1, (w[:, -1] - med) / (q3 - q1), np.nan)


def reference(spec: FeatureSpec, sym: dict[str, np.ndarray]) -> dict[str, tuple[np.ndarray, np.ndarray, float]]:
    """Column -> (expected on the adjusted series, factor mapping ours onto it, absolute tolerance)."""
    adj = adjusted(sym)
    h, lo, c, v, b, bv = adj["high"], adj["low"], adj["close"], adj["volume"], adj["B"], adj["Bv"]
    one = np.ones(c.size)
    price_tol = 1e-10 * np.abs(c).max()
    k, p = spec.kind, spec.params
    lr = np.r_[np.nan, np.log(c[1:] / c[:-1])]
    if k == "ret":
        return {"ret": (np.r_[np.nan, c[1:] / c[:-1] - 1], one, 1e-13), "log_ret": (lr, one, 1e-13)}
    if k == "vol":
        return {spec.columns[0]: (np.r_[np.nan, rolling(lr[1:], p[0], _std)], one, 1e-13)}
    if k == "parkinson":
        u = np.log(h / lo) ** 2
        return {spec.columns[0]: (rolling(u, p[0], lambda w: np.sqrt(w.sum(axis=1) / (4 * np.log(2) * p[0]))),
                                  one, 1e-13)}
    if k == "vwap":
        num, den = (rolling(x, p[0], lambda w: w.sum(axis=1)) for x in ((h + lo + c) / 3 * v, v))
        return {spec.columns[0]: (np.where(den == 0, np.nan, num / np.where(den == 0, 1, den)), b, price_tol)}
    if k == "vroc":
        roc = talib.ROC(v, p[0])
        roc[p[0]:][v[:-p[0]] == 0] = np.nan  # ours is NULL where TA-Lib divides by a zero base
        return {spec.columns[0]: (roc, one, 1e-9)}
    if k == "obv":
        return {"obv": (talib.OBV(c, v), bv, 1e-10 * np.abs(v).sum())}
    if k in ("sma", "ema", "wma"):
        return {spec.columns[0]: (getattr(talib, k.upper())(c, p[0]), b, price_tol)}
    if k == "rsi":
        return {spec.columns[0]: (talib.RSI(c, p[0]), one, 1e-9)}
    if k == "atr":
        return {spec.columns[0]: (talib.ATR(h, lo, c, p[0]), b, price_tol)}
    if k == "macd":
        return dict(zip(spec.columns, [(x, b, price_tol) for x in talib.MACD(c, *p)]))
    if k == "stoch":
        slow_k, slow_d = talib.STOCH(h, lo, c, p[0], p[1], 0, p[2], 0)
        return dict(zip(spec.columns, [(slow_k, one, 1e-9), (slow_d, one, 1e-9)]))
    if k == "bbands":
        bands = talib.BBANDS(c, p[0], p[1], p[1], 0)
        return dict(zip(spec.columns, [(x, b, price_tol) for x in bands]))
    fn = {"zscore": _zscore, "minmax": _minmax, "robust": _robust}[k]
    return dict(zip(spec.columns, [(rolling(c, p[0], fn), one, 1e-10), (rolling(v, p[0], fn), one, 1e-10)]))


def assert_matches(symbols: list[dict[str, np.ndarray]], specs) -> None:
    cols, starts = concat(symbols)
    out, _ = compute(cols, starts, specs)
    checked = 0
    for s, sym in enumerate(symbols):
        a, b = starts[s], starts[s + 1]
        if a == b:
            continue  # nothing to compare (TA-Lib refuses empty input)
        for spec in specs:
            for name, (expected, factor, atol) in reference(spec, sym).items():
                got = out[name][a:b] * factor
                where = f"{name} in segment {s} ({b - a} rows)"
                np.testing.assert_array_equal(np.isnan(got), np.isnan(expected), err_msg=f"NaN positions of {where}")
                np.testing.assert_allclose(got, expected, rtol=RTOL, atol=atol, err_msg=where)
                checked += 1
    assert checked >= len(symbols)


@pytest.fixture(scope="module")
def rng() -> np.random.Generator:
    return np.random.default_rng(20240601)


def test_long_random_walk(rng):
    assert_matches([symbol_bars(rng, 5_000)], DEFAULT_SPECS + EXTRA)


def test_several_symbols_in_one_call(rng):
    symbols = [symbol_bars(rng, n, p0=p0, sigma=sd)
               for n, p0, sd in ((400, 20.0, 0.01), (1_200, 150.0, 0.03), (60, 5.0, 0.02), (900, 1_000.0, 0.015))]
    assert_matches(symbols, DEFAULT_SPECS + EXTRA)


def test_splits_reverse_splits_and_dividends(rng):
    events = [(150, "split", 2.0), (151, "div", 0.01), (400, "div", 0.02), (420, "split", 0.1),
              (421, "split", 3.0), (700, "div", 0.005), (799, "split", 2.0)]
    symbols = [symbol_bars(rng, 800, events=events),
               symbol_bars(rng, 300, events=[(1, "split", 2.0), (2, "div", 0.03), (40, "split", 0.1)], p0=3.0)]
    cols, _ = concat(symbols)
    assert (cols["pf"] != 1).sum() >= 9 and (cols["vf"] != 1).sum() >= 6
    assert_matches(symbols, DEFAULT_SPECS + EXTRA)


def test_flat_stretches_and_zero_volume(rng):
    symbols = [
        symbol_bars(rng, 600, flat=[(0, 60), (200, 260)], zero_volume=[(0, 40), (300, 330), (500, 501)],
                    events=[(100, "split", 2.0), (400, "div", 0.02)]),
        symbol_bars(rng, 200, flat=[(50, 52), (100, 140)], zero_volume=[(100, 101)]),
    ]
    cols, starts = concat(symbols)
    out, _ = compute(cols, starts)
    # the degenerate answers are reached, not just tolerated
    assert out["rsi_14"][14] == 0.0 and out["stoch_k_14_3_3"][20] == 0.0  # flat from the first bar
    assert np.isnan(out["vwap_20"][39]) and np.isnan(out["vroc_14"][14])  # no volume at all
    for name in ("zscore_close_20", "minmax_close_20", "robust_close_20", "zscore_volume_20"):
        assert np.isnan(out[name][30]), name
    assert out["vol_20"][59] == 0.0 and out["bb_upper_20_2"][59] == out["bb_middle_20_2"][59]
    assert_matches(symbols, DEFAULT_SPECS + EXTRA)


def test_segments_shorter_than_the_warmup(rng):
    lengths = [0, 1, 2, 13, 14, 15, 19, 20, 21, 33, 34, 35]
    symbols = [symbol_bars(rng, n) for n in lengths]
    cols, starts = concat(symbols)
    out, state = compute(cols, starts)
    for spec in DEFAULT_SPECS:
        for name in spec.columns:
            for s, n in enumerate(lengths):
                seg = out[name][starts[s]:starts[s + 1]]
                assert np.isnan(seg[: spec.warmup]).all() and not np.isnan(seg[spec.warmup:]).any(), (name, n)
    assert state.shape == (len(lengths), 8) and np.isfinite(state).all()
    assert_matches(symbols, DEFAULT_SPECS + EXTRA)
