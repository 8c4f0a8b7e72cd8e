"""Shared fixtures: a fresh warehouse per test and a builder of valid bar frames."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from alphatwin.paths import WarehousePaths


@pytest.fixture
def paths(tmp_path: Path) -> WarehousePaths:
    return WarehousePaths(tmp_path / "wh")


def make_bars(symbols: list[str], n: int, *, start: dt.datetime = dt.datetime(2019, 12, 20),
              interval: str = "1d", seed: int = 0) -> pl.DataFrame:
    """Valid daily bars (calendar days) for ``symbols``: a random walk with consistent OHLC."""
    rng = np.random.default_rng(seed)
    frames = []
    step = dt.timedelta(days=1) if interval == "1d" else dt.timedelta(hours=1)
    ts = [start + i * step for i in range(n)]
    for sym in symbols:
        close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
        open_ = close * np.exp(rng.normal(0, 0.002, n))
        high = np.maximum(open_, close) * 1.01
        low = np.minimum(open_, close) * 0.99
        frames.append(pl.DataFrame({
            "symbol": sym, "interval": interval, "ts": ts, "open": open_, "high": high,
            "low": low, "close": close, "volume": rng.integers(1_000, 10_000, n).astype(float),
        }))
    return pl.concat(frames)
