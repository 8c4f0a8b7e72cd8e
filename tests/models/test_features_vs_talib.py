"""End to end: features.bars built from the lake agrees with TA-Lib on clean.bars' adjusted series.

The market has filled gaps, a split, a reverse split and quarterly dividends. TA-Lib runs on the
backward-adjusted series of clean.bars; features.bars is point-in-time (each row in its own
basis), so a price-level feature times clean.bars.adj_factor is TA-Lib's value, and a scale-free
one (RSI, STOCH, returns) is TA-Lib's value as it is.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

talib = pytest.importorskip("talib")

from alphatwin.paths import WarehousePaths  # noqa: E402
from tests.models.market import build_all, load, market, table  # noqa: E402


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    paths = WarehousePaths(tmp_path_factory.mktemp("talib") / "wh")
    load(paths, market(n_symbols=4, n_bars=240))
    build_all(paths)
    features = table(paths, "features.bars")
    clean = table(paths, "clean.bars").select("symbol", "ts", "adj_open", "adj_high", "adj_low", "adj_close",
                                              "adj_volume", "adj_factor", "adj_volume_factor")
    return features.join(clean, on=["symbol", "ts"], how="left", validate="1:1")


def _close(ours: np.ndarray, ref: np.ndarray, what: str) -> None:
    assert np.array_equal(np.isnan(ours), np.isnan(ref)), f"{what}: NULLs differ from TA-Lib's warm-up"
    ok = ~np.isnan(ref)
    np.testing.assert_allclose(ours[ok], ref[ok], rtol=1e-9, atol=1e-9, err_msg=what)


def test_every_indicator_matches_talib_on_the_adjusted_series(built):
    assert built["is_imputed"].sum() > 0 and built.filter(pl.col("adj_factor") != 1).height > 0
    for symbol, rows in built.partition_by("symbol", as_dict=True).items():
        rows = rows.sort("ts")
        h, lo, c, v = (rows[f"adj_{x}"].to_numpy() for x in ("high", "low", "close", "volume"))
        B, Bv = rows["adj_factor"].to_numpy(), rows["adj_volume_factor"].to_numpy()

        def ours(name: str, scale: np.ndarray | None = None) -> np.ndarray:
            x = rows[name].fill_null(np.nan).to_numpy().astype(float)
            return x * scale if scale is not None else x

        macd, signal, hist = talib.MACD(c, 12, 26, 9)
        upper, middle, lower = talib.BBANDS(c, 20, 2.0, 2.0, 0)
        slowk, slowd = talib.STOCH(h, lo, c, 14, 3, 0, 3, 0)
        checks = {
            "sma_20": (ours("sma_20", B), talib.SMA(c, 20)),
            "ema_20": (ours("ema_20", B), talib.EMA(c, 20)),
            "wma_20": (ours("wma_20", B), talib.WMA(c, 20)),
            "rsi_14": (ours("rsi_14"), talib.RSI(c, 14)),
            "macd_12_26_9": (ours("macd_12_26_9", B), macd),
            "macd_signal_12_26_9": (ours("macd_signal_12_26_9", B), signal),
            "macd_hist_12_26_9": (ours("macd_hist_12_26_9", B), hist),
            "bb_upper_20_2": (ours("bb_upper_20_2", B), upper),
            "bb_middle_20_2": (ours("bb_middle_20_2", B), middle),
            "bb_lower_20_2": (ours("bb_lower_20_2", B), lower),
            "atr_14": (ours("atr_14", B), talib.ATR(h, lo, c, 14)),
            "stoch_k_14_3_3": (ours("stoch_k_14_3_3"), slowk),
            "stoch_d_14_3_3": (ours("stoch_d_14_3_3"), slowd),
            "obv": (ours("obv", Bv), talib.OBV(c, v)),
            "ret": (ours("ret"), talib.ROCR(c, 1) - 1),
        }
        for name, (got, want) in checks.items():
            _close(got, want, f"{symbol} {name}")
