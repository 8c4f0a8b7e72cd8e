"""The one interface every data source implements, and the one bar schema they all yield.

A source turns a :class:`FetchRequest` into an iterable of Polars frames in :data:`BAR_SCHEMA`
(one frame per batch, so large pulls stream in bounded memory). Prices are unadjusted;
corporate actions stay as columns (``dividend`` per share, paid on ``ts``; ``split_ratio`` new
shares per old share effective on ``ts``, 1.0 when there was no split); adjustment happens
downstream in the model layer.

Timestamps (``ts``) are UTC. Daily and longer bars carry the session date at 00:00 UTC (a date,
not an instant, so a daily bar never shifts day with the exchange's zone); intraday bars carry
the UTC instant at which the bar opens.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import polars as pl

from alphatwin.errors import InputError

__all__ = [
    "BAR_SCHEMA",
    "BAR_COLUMNS",
    "SYMBOL_PATTERN",
    "SYMBOL_FORM",
    "check_symbol",
    "INTERVALS",
    "DAILY_INTERVALS",
    "FetchRequest",
    "Source",
    "conform",
    "interval_duration",
    "sorted_by_symbol_ts",
]

BAR_SCHEMA: dict[str, pl.DataType] = {
    "symbol": pl.String(),
    "interval": pl.String(),
    "ts": pl.Datetime("us", "UTC"),
    "open": pl.Float64(),
    "high": pl.Float64(),
    "low": pl.Float64(),
    "close": pl.Float64(),
    "volume": pl.Float64(),
    "dividend": pl.Float64(),
    "split_ratio": pl.Float64(),
}
BAR_COLUMNS: tuple[str, ...] = tuple(BAR_SCHEMA)

#: Supported bar intervals (Yahoo's spelling) and their nominal length.
INTERVALS: dict[str, dt.timedelta] = {
    "1m": dt.timedelta(minutes=1),
    "2m": dt.timedelta(minutes=2),
    "5m": dt.timedelta(minutes=5),
    "15m": dt.timedelta(minutes=15),
    "30m": dt.timedelta(minutes=30),
    "60m": dt.timedelta(hours=1),
    "90m": dt.timedelta(minutes=90),
    "1h": dt.timedelta(hours=1),
    "1d": dt.timedelta(days=1),
    "5d": dt.timedelta(days=5),
    "1wk": dt.timedelta(weeks=1),
    "1mo": dt.timedelta(days=30),
    "3mo": dt.timedelta(days=91),
}
DAILY_INTERVALS = frozenset({"1d", "5d", "1wk", "1mo", "3mo"})

#: A well-formed symbol: 1-32 of ``A-Z a-z 0-9 ^ = . _ - : / &``, without ``..`` (``^GSPC``,
#: ``EURUSD=X``, ``BTC-USD``, ``BRK.B``, ``BRK-B``, ``M&M.NS``, ``EUR/USD``). The same regex is the
#: quality rule ``symbol_well_formed`` (``expectations/raw_bars.json``) for symbols read from a column.
SYMBOL_PATTERN = r"^(?!/)(?!.*\.\.)[A-Za-z0-9^=._:/&-]{1,32}\Z"
SYMBOL_FORM = "1-32 characters of A-Z a-z 0-9 ^ = . _ - : / & (no spaces, no '..', not starting with /), like AAPL, ^GSPC, EURUSD=X, BRK.B"
_SYMBOL_RE = re.compile(SYMBOL_PATTERN)


def check_symbol(symbol: object, flag: str = "--symbol") -> str:
    """Return ``symbol`` if it is well formed (:data:`SYMBOL_PATTERN`), else raise :class:`InputError`
    naming ``flag`` and the allowed form.

    >>> check_symbol("BRK.B")
    'BRK.B'
    """
    if not isinstance(symbol, str) or _SYMBOL_RE.fullmatch(symbol) is None:
        shown = repr(symbol) if not isinstance(symbol, str) or len(symbol) <= 40 else f"{symbol[:37]!r}... ({len(symbol)} characters)"
        raise InputError(f"`{flag}` must be {SYMBOL_FORM}; got {shown}")
    return symbol


def interval_duration(interval: str) -> dt.timedelta:
    """Nominal length of ``interval``; raises :class:`InputError` for an unknown one."""
    try:
        return INTERVALS[interval]
    except KeyError:
        raise InputError(
            f"`--interval` must be one of {', '.join(INTERVALS)}, got {interval!r}"
        ) from None


@dataclass(frozen=True)
class FetchRequest:
    """What to fetch: symbols, bar interval and an optional half-open range ``[start, end)``.

    ``start``/``end`` are naive UTC datetimes (or ``None`` for "as far as the source goes").
    File-based sources may ignore ``symbols`` (the files name them) but still honour the range.
    """

    symbols: tuple[str, ...] = ()
    interval: str = "1d"
    start: dt.datetime | None = None
    end: dt.datetime | None = None
    options: dict[str, object] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        interval_duration(self.interval)
        if self.start is not None and self.end is not None and self.start >= self.end:
            raise InputError(f"`--start` ({self.start:%Y-%m-%d}) must be before `--end` ({self.end:%Y-%m-%d})")


@runtime_checkable
class Source(Protocol):
    """A market-data source.

    ``name`` is recorded with every row it delivers (``raw.bars.source``); ``network`` says
    whether it talks to the outside world (and so is wrapped in the resilience layer).
    """

    name: str
    network: bool

    def fetch(self, request: FetchRequest) -> Iterable[pl.DataFrame]:
        """Yield batches of bars in :data:`BAR_SCHEMA`, sorted by ``symbol, ts``."""
        ...


def sorted_by_symbol_ts(bars: pl.DataFrame) -> bool:
    """Whether rows are strictly ordered by ``symbol, ts`` (one vectorized pass, no sort)."""
    if bars.height < 2:
        return True
    sym, ts = bars["symbol"], bars["ts"]
    head, tail = slice(0, bars.height - 1), slice(1, bars.height)
    s0, s1 = sym[head], sym[tail]
    return bool(((s1 > s0) | ((s1 == s0) & (ts[tail] > ts[head]))).fill_null(False).all())


def conform(frame: pl.DataFrame) -> pl.DataFrame:
    """Cast ``frame`` to :data:`BAR_SCHEMA` (column order, dtypes, defaults for corporate actions).

    Missing ``dividend`` becomes 0.0 and missing ``split_ratio`` 1.0; any other missing column
    is an :class:`InputError` naming it. Rows are sorted by ``symbol, ts``.
    """
    missing = [c for c in ("symbol", "interval", "ts", "open", "high", "low", "close") if c not in frame.columns]
    if missing:
        raise InputError(f"bars are missing required column(s): {', '.join(missing)}")
    if "volume" not in frame.columns:
        frame = frame.with_columns(pl.lit(0.0).alias("volume"))
    if "dividend" not in frame.columns:
        frame = frame.with_columns(pl.lit(0.0).alias("dividend"))
    if "split_ratio" not in frame.columns:
        frame = frame.with_columns(pl.lit(1.0).alias("split_ratio"))
    ts = frame.get_column("ts")
    if isinstance(ts.dtype, pl.Datetime) and ts.dtype.time_zone is None:
        frame = frame.with_columns(pl.col("ts").dt.replace_time_zone("UTC"))
    elif isinstance(ts.dtype, pl.Datetime) and ts.dtype.time_zone != "UTC":
        frame = frame.with_columns(pl.col("ts").dt.convert_time_zone("UTC"))
    out = frame.select([pl.col(c).cast(t) for c, t in BAR_SCHEMA.items()]).with_columns(
        pl.col("dividend").fill_null(0.0), pl.col("split_ratio").fill_null(1.0)
    )
    return out if sorted_by_symbol_ts(out) else out.sort("symbol", "ts", maintain_order=True)
