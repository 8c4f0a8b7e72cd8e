"""``FrameSource``: ingest bars you already hold in memory (a notebook's Polars or pandas frame)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import polars as pl

from alphatwin.sources.base import FetchRequest, conform

__all__ = ["FrameSource"]


class FrameSource:
    """Serve one or more in-memory frames as a source.

    Frames need ``symbol, ts, open, high, low, close`` (``interval`` defaults to the request's;
    ``volume``, ``dividend``, ``split_ratio`` default to 0, 0 and 1). Rows outside the
    request's ``[start, end)`` are dropped.

    Examples
    --------
    >>> import datetime as dt, polars as pl
    >>> f = pl.DataFrame({"symbol": ["X"], "ts": [dt.datetime(2024, 1, 2)], "open": [1.0],
    ...                   "high": [1.0], "low": [1.0], "close": [1.0]})
    >>> next(iter(FrameSource(f).fetch(FetchRequest()))).height
    1
    """

    network = False

    def __init__(self, frames: pl.DataFrame | Any | Iterable[pl.DataFrame], *, name: str = "frame") -> None:
        if isinstance(frames, pl.DataFrame) or hasattr(frames, "to_numpy"):
            frames = [frames]
        self._frames = [f if isinstance(f, pl.DataFrame) else pl.from_pandas(f) for f in frames]
        self.name = name

    def fetch(self, request: FetchRequest) -> Iterator[pl.DataFrame]:
        for frame in self._frames:
            if "interval" not in frame.columns:
                frame = frame.with_columns(pl.lit(request.interval).alias("interval"))
            out = conform(frame)
            if request.start is not None:
                out = out.filter(pl.col("ts") >= pl.lit(request.start).dt.replace_time_zone("UTC"))
            if request.end is not None:
                out = out.filter(pl.col("ts") < pl.lit(request.end).dt.replace_time_zone("UTC"))
            if not out.is_empty():
                yield out
