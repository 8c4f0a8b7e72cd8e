"""Shared fixtures: a fresh warehouse per test and a builder of valid bar frames.

Numba's on-disk cache is keyed by each kernel's own source file only: a kernel that calls one
in another module (``sweep_nb`` -> ``nb.simulate_nb``) keeps the old callee compiled in after
that module changes. The tests therefore cache kernels under a directory named by a hash of
every ``*nb.py`` module, so they never run stale machine code.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[1]
if "NUMBA_CACHE_DIR" not in os.environ:  # before anything imports numba
    _kernels = sorted((_ROOT / "alphatwin").rglob("*nb.py"))
    _digest = hashlib.sha256(b"".join(p.read_bytes() for p in _kernels)).hexdigest()[:16]
    os.environ["NUMBA_CACHE_DIR"] = str(_ROOT / ".numba-cache" / _digest)

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
