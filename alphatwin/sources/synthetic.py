"""A seeded synthetic market: realistic bars for offline runs and scale tests, with known defects.

:class:`SyntheticSource` simulates ``n_symbols`` symbols (``SYN00001``, ``SYN00002``, ...) over
``n_bars`` bars at the requested interval. Each symbol's log price is a GBM whose volatility
switches between a calm and a stressed regime, with jumps and overnight gaps; OHLC is consistent,
volume is whole shares and rises with |return|, and there are splits (2:1, 3:1, 1:10 reverse)
and quarterly dividends in unadjusted prices. Optional defects (gaps, duplicates, broken OHLC,
spikes, zero-volume halts) are injected at per-bar rates and reported exactly in
:attr:`SyntheticSource.defects`, so quality checks can be tested against the truth.

Generation streams: :meth:`SyntheticSource.fetch` yields frames of whole symbols of at most
``chunk_rows`` rows. Every symbol has its own random stream (a NumPy ``SeedSequence`` keyed by
the seed and the symbol's number), so the data do not depend on the chunk size, on which
symbols are requested, or on the number of threads.

>>> from alphatwin.sources.base import FetchRequest
>>> src = SyntheticSource(n_symbols=3, n_bars=250, seed=7)
>>> sum(f.height for f in src.fetch(FetchRequest()))
750
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import numpy as np
import polars as pl
import pyarrow as pa

from alphatwin.errors import InputError, SymbolNotFoundError
from alphatwin.sources import synthetic_nb as nb
from alphatwin.sources.base import BAR_SCHEMA, DAILY_INTERVALS, FetchRequest, interval_duration

__all__ = ["SyntheticSource", "DEFECT_KINDS"]

#: Defect kinds :class:`SyntheticSource` can inject, in the order the kernel tests them.
DEFECT_KINDS: tuple[str, ...] = tuple(nb.DEFECT_CODES)

_CALENDARS = ("exchange", "24/7")
_SESSION_OPEN_MIN = 9 * 60 + 30  # 09:30 New York
_SESSION_MINUTES = 390  # 09:30-16:00
_SYMBOL_RE = re.compile(r"SYN(\d+)")
_EPOCH = np.datetime64("1970-01-01", "D")
_SIMULATED = ("open", "high", "low", "close", "volume", "dividend", "split_ratio")  # kernel outputs, in order
_DEFECTS_SCHEMA = {"symbol": pl.String(), "interval": pl.String(), "ts": BAR_SCHEMA["ts"], "defect": pl.String()}


@dataclass(frozen=True)
class _Calendar:
    """The bar grid shared by every symbol, and how the kernel should scale one bar."""

    ts_us: np.ndarray  # int64 microseconds since the epoch, UTC, ascending
    bday: np.ndarray  # int64 business-day (or calendar-day) ordinal of each bar's session
    vol_shape: np.ndarray  # float64 relative volume of each bar (intraday U-shape), mean 1
    bar_frac: float  # trading days per bar
    days_per_year: float
    overnight_frac: float  # share of a day's variance that arrives as the overnight gap


class SyntheticSource:
    """Deterministic synthetic bars: ``n_symbols`` x ``n_bars`` in :data:`BAR_SCHEMA`.

    Parameters
    ----------
    n_symbols, n_bars
        Universe size and bars per symbol (before defects and the request's range).
    seed
        Root seed; the same seed gives the same bars on every machine and chunk size.
    start
        First session date of the calendar (the first business day on or after it).
    calendar
        ``"exchange"``: Mon-Fri sessions, intraday bars 09:30-16:00 New York time (in UTC),
        splits and dividends. ``"24/7"``: crypto-like, every day and minute, no corporate actions.
    chunk_rows
        Most rows per yielded frame (a single symbol with more bars is yielded alone).
    defects
        Per-bar rates of injected defects, e.g. ``{"gap": 0.001, "spike": 0.0005}``; kinds are
        :data:`DEFECT_KINDS`. A bar gets at most one defect.

    Examples
    --------
    >>> src = SyntheticSource(n_symbols=2, n_bars=100, defects={"duplicate": 0.05})
    >>> frames = list(src.fetch(FetchRequest(interval="1d")))
    >>> set(src.defects["defect"]) <= set(DEFECT_KINDS)
    True
    """

    name = "synthetic"
    network = False

    def __init__(
        self,
        *,
        n_symbols: int = 100,
        n_bars: int = 1_000,
        seed: int = 0,
        start: dt.date = dt.date(2000, 1, 3),
        calendar: str = "exchange",
        chunk_rows: int = 2_500_000,
        defects: Mapping[str, float] | None = None,
    ) -> None:
        for label, value in (("n_symbols", n_symbols), ("n_bars", n_bars), ("chunk_rows", chunk_rows)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InputError(f"`{label}` must be a positive integer, got {value!r}")
        if n_symbols > 999_999_999:
            raise InputError(f"`n_symbols` must be at most 999999999, got {n_symbols}")
        if not isinstance(seed, int) or seed < 0:
            raise InputError(f"`seed` must be a non-negative integer, got {seed!r}")
        if calendar not in _CALENDARS:
            raise InputError(f"`calendar` must be one of {', '.join(_CALENDARS)}, got {calendar!r}")
        self.n_symbols, self.n_bars, self.seed = n_symbols, n_bars, seed
        self.start = start.date() if isinstance(start, dt.datetime) else start
        self.calendar, self.chunk_rows = calendar, chunk_rows
        self.defect_rates = _check_defects(defects or {})
        self._defects: list[pl.DataFrame] = []

    @property
    def symbols(self) -> tuple[str, ...]:
        """Every symbol of the universe, in order."""
        return tuple(_symbol_name(i) for i in range(1, self.n_symbols + 1))

    @property
    def defects(self) -> pl.DataFrame:
        """The defects injected by the last :meth:`fetch` (symbol, interval, ts, defect).

        Only defects inside the request's symbols and range are listed; the table is complete
        once the fetch iterator is exhausted. A ``gap`` row names the missing bar's timestamp.
        """
        if not self._defects:
            return pl.DataFrame(schema=_DEFECTS_SCHEMA)
        return pl.concat(self._defects).sort("symbol", "ts")

    def timestamps(self, interval: str = "1d") -> pl.Series:
        """The clean calendar of ``interval`` (every bar before defects), as UTC datetimes."""
        cal = _build_calendar(interval, self.n_bars, self.start, self.calendar)
        return pl.Series("ts", cal.ts_us).cast(BAR_SCHEMA["ts"])

    def fetch(self, request: FetchRequest) -> Iterator[pl.DataFrame]:
        """Yield bars for ``request`` in frames of whole symbols, sorted by ``symbol, ts``.

        Raises
        ------
        SymbolNotFoundError
            A requested symbol is not in the universe.
        """
        numbers = self._requested_numbers(request.symbols)
        cal = _build_calendar(request.interval, self.n_bars, self.start, self.calendar)
        lo, hi = _range_slice(cal.ts_us, request.start, request.end)
        self._defects = []
        if lo == hi:  # the range holds no bar of the calendar
            return
        per_chunk = max(1, self.chunk_rows // self._row_budget())
        for i in range(0, len(numbers), per_chunk):
            frame, rows_per_symbol = self._chunk(numbers[i : i + per_chunk], request.interval, cal, lo, hi)
            yield from _split(frame, rows_per_symbol, self.chunk_rows)
            del frame  # let the consumer's copy be the only one while the next chunk is made

    def _requested_numbers(self, symbols: tuple[str, ...]) -> np.ndarray:
        if not symbols:
            return np.arange(1, self.n_symbols + 1, dtype=np.int64)
        numbers = []
        for sym in symbols:
            match = _SYMBOL_RE.fullmatch(sym)
            number = int(match.group(1)) if match else 0
            if not (1 <= number <= self.n_symbols) or _symbol_name(number) != sym:
                raise SymbolNotFoundError(
                    f"{sym!r} is not a synthetic symbol (SYN00001..{_symbol_name(self.n_symbols)})",
                    source=self.name,
                    symbol=sym,
                )
            numbers.append(number)
        return np.unique(np.asarray(numbers, dtype=np.int64))

    def _row_budget(self) -> int:
        """Rows one symbol may need, duplicates included (a generous estimate)."""
        expected = self.n_bars * self.defect_rates.get("duplicate", 0.0)
        return self.n_bars + math.ceil(expected + 4.0 * math.sqrt(expected))

    def _chunk(
        self, numbers: np.ndarray, interval: str, cal: _Calendar, lo: int, hi: int
    ) -> tuple[pl.DataFrame, np.ndarray]:
        """Simulate ``numbers``' symbols; return their bars and the row count of each symbol."""
        m = self.n_bars
        cols = {c: np.empty(len(numbers) * m) for c in _SIMULATED}
        nb.simulate_bars_nb(
            _seeds(self.seed, numbers, 0), m, cal.bar_frac, cal.days_per_year, cal.overnight_frac,
            cal.bday, cal.vol_shape, self.calendar == "exchange", *cols.values(),
        )
        counts = np.zeros((len(numbers), m), dtype=np.int64)
        counts[:, lo:hi] = 1
        if self.defect_rates:
            code = self._inject(numbers, cols)
            self._record_defects(numbers, interval, cal.ts_us, code, counts)
            counts[code == nb.DEFECT_CODES["gap"]] = 0
            counts[code == nb.DEFECT_CODES["duplicate"]] *= 2
        frame = _assemble(numbers, interval, cal.ts_us, cols, counts.ravel())
        return frame, counts.sum(axis=1)

    def _inject(self, numbers: np.ndarray, cols: dict[str, np.ndarray]) -> np.ndarray:
        """Apply the defects in place; the duplicates' second rows go to ``cols['_alt_*']``."""
        n = len(numbers) * self.n_bars
        code = np.zeros(n, dtype=np.int8)
        cols["_alt_close"], cols["_alt_volume"] = np.empty(n), np.empty(n)
        rates = np.cumsum([self.defect_rates.get(k, 0.0) for k in DEFECT_KINDS])
        nb.inject_defects_nb(
            _seeds(self.seed, numbers, 1), self.n_bars, rates,
            cols["open"], cols["high"], cols["low"], cols["close"], cols["volume"],
            code, cols["_alt_close"], cols["_alt_volume"],
        )
        return code.reshape(len(numbers), self.n_bars)

    def _record_defects(
        self, numbers: np.ndarray, interval: str, ts_us: np.ndarray, code: np.ndarray, counts: np.ndarray
    ) -> None:
        sym_idx, bar_idx = np.nonzero((code > 0) & (counts > 0))
        if len(sym_idx) == 0:
            return
        names = pl.Series([_symbol_name(int(n)) for n in numbers])
        kinds = pl.Series(("",) + DEFECT_KINDS)
        self._defects.append(
            pl.DataFrame(
                {
                    "symbol": names.gather(sym_idx),
                    "interval": pl.repeat(interval, len(sym_idx), eager=True),
                    "ts": pl.Series(ts_us[bar_idx]).cast(BAR_SCHEMA["ts"]),
                    "defect": kinds.gather(code[sym_idx, bar_idx].astype(np.int64)),
                }
            )
        )


def _check_defects(defects: Mapping[str, float]) -> dict[str, float]:
    unknown = sorted(set(defects) - set(DEFECT_KINDS))
    if unknown:
        raise InputError(f"unknown defect kind(s) {', '.join(unknown)}; expected some of {', '.join(DEFECT_KINDS)}")
    rates = {k: float(v) for k, v in defects.items()}
    bad = {k: v for k, v in rates.items() if not (0.0 <= v <= 1.0)}
    if bad:
        raise InputError(f"defect rates must be per-bar probabilities in [0, 1], got {bad}")
    if sum(rates.values()) > 1.0:
        raise InputError(f"defect rates must sum to at most 1 (a bar gets one defect), got {sum(rates.values()):g}")
    return {k: v for k, v in rates.items() if v > 0.0}


def _symbol_name(number: int) -> str:
    return f"SYN{number:05d}"


def _seeds(seed: int, numbers: np.ndarray, stream: int) -> np.ndarray:
    """One 64-bit seed per symbol: ``SeedSequence(seed)`` spawned at key ``(number, stream)``."""
    return np.array(
        [np.random.SeedSequence(seed, spawn_key=(int(n), stream)).generate_state(1, np.uint64)[0] for n in numbers],
        dtype=np.uint64,
    )


def _range_slice(ts_us: np.ndarray, start: dt.datetime | None, end: dt.datetime | None) -> tuple[int, int]:
    """Bar positions ``[lo, hi)`` inside the half-open request range (naive UTC bounds)."""
    lo = 0 if start is None else int(np.searchsorted(ts_us, _to_us(start), side="left"))
    hi = len(ts_us) if end is None else int(np.searchsorted(ts_us, _to_us(end), side="left"))
    return lo, max(lo, hi)


def _to_us(value: dt.datetime) -> int:
    if value.tzinfo is not None:
        value = value.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return int(np.datetime64(value, "us").astype(np.int64))


def _symbol_views(numbers: np.ndarray) -> np.ndarray:
    """Arrow string-view slots (16 bytes: length + inline text) of each symbol's name."""
    views = np.zeros((len(numbers), 16), dtype=np.uint8)
    for i, n in enumerate(numbers):
        raw = _symbol_name(int(n)).encode()
        views[i, :4] = np.frombuffer(np.int32(len(raw)).tobytes(), dtype=np.uint8)
        views[i, 4 : 4 + len(raw)] = np.frombuffer(raw, dtype=np.uint8)
    return views


def _assemble(
    numbers: np.ndarray, interval: str, ts_us: np.ndarray, cols: dict[str, np.ndarray], counts: np.ndarray
) -> pl.DataFrame:
    """Build the chunk's frame: row ``r`` of the simulation appears ``counts[r]`` times.

    A repeated row is a duplicate defect; its second copy takes the alternative close/volume.
    The symbol column is built as Arrow string views (short names are stored inline), which
    avoids materialising millions of Python strings.
    """
    m = len(ts_us)
    n = int(counts.sum())
    if (counts == 1).all():  # every row exactly once: no copies at all
        take = None
        ts = np.tile(ts_us, len(numbers))
    else:
        take = np.repeat(np.arange(len(counts)), counts)
        ts = ts_us[take % m]
    per_symbol = counts.reshape(len(numbers), m).sum(axis=1)
    views = np.repeat(_symbol_views(numbers), per_symbol, axis=0)
    symbol = pl.from_arrow(pa.Array.from_buffers(pa.string_view(), n, [None, pa.py_buffer(views)]))
    data = {c: (v if take is None else v[take]) for c, v in cols.items() if not c.startswith("_")}
    if take is not None and "_alt_close" in cols:
        second = np.flatnonzero(take[1:] == take[:-1]) + 1
        data["close"][second] = cols["_alt_close"][take[second]]
        data["volume"][second] = cols["_alt_volume"][take[second]]
    return pl.DataFrame(
        {
            "symbol": symbol,
            "ts": pl.Series(ts).cast(BAR_SCHEMA["ts"]),
            **{c: pl.Series(c, v) for c, v in data.items()},
        }
    ).select(pl.col("symbol"), pl.lit(interval, dtype=pl.String).alias("interval"), "ts", *_SIMULATED)


def _split(frame: pl.DataFrame, rows_per_symbol: np.ndarray, chunk_rows: int) -> Iterator[pl.DataFrame]:
    """Slice ``frame`` at symbol boundaries into pieces of at most ``chunk_rows`` rows."""
    if frame.height <= chunk_rows:
        if frame.height:
            yield frame
        return
    ends = np.cumsum(rows_per_symbol)
    start = 0
    while start < frame.height:
        fits = ends[(ends > start) & (ends <= start + chunk_rows)]
        # the last symbol boundary within the budget, or the next one if a symbol alone is larger
        stop = int(fits[-1]) if len(fits) else int(ends[ends > start][0])
        yield frame.slice(start, stop - start)
        start = stop


# --------------------------------------------------------------------------- calendars


def _build_calendar(interval: str, n_bars: int, start: dt.date, calendar: str) -> _Calendar:
    """The ``n_bars`` bar grid of ``interval`` from ``start``."""
    step = interval_duration(interval)
    if calendar == "24/7":
        return _calendar_247(interval, step, n_bars, start)
    if interval in DAILY_INTERVALS:
        days, frac = _session_days(interval, n_bars, start)
        bday = np.busday_count(_EPOCH, np.busday_offset(days, 0, roll="forward"))
        return _Calendar(_days_to_us(days), bday.astype(np.int64), np.ones(n_bars), frac, 252.0, 0.2)
    return _calendar_intraday(int(step.total_seconds() // 60), n_bars, start)


def _session_days(interval: str, n_bars: int, start: dt.date) -> tuple[np.ndarray, float]:
    """Session dates of daily-and-longer bars and the trading days each bar spans."""
    first = np.datetime64(start, "D")
    idx = np.arange(n_bars)
    if interval in ("1d", "5d"):
        every = 1 if interval == "1d" else 5
        return np.busday_offset(first, idx * every, roll="forward"), float(every)
    if interval == "1wk":
        monday = np.busday_offset(first, 0, roll="forward", weekmask="Mon")
        return monday + 7 * idx, 5.0
    months = 1 if interval == "1mo" else 3
    month0 = first.astype("datetime64[M]")
    if first != month0.astype("datetime64[D]"):
        month0 += 1
    if months == 3:
        month0 += (-month0.astype(np.int64)) % 3  # calendar quarter starts
    return (month0 + months * idx).astype("datetime64[D]"), 21.0 * months


def _calendar_intraday(minutes: int, n_bars: int, start: dt.date) -> _Calendar:
    """Regular-session bars (09:30-16:00 New York) opening every ``minutes``, as UTC instants."""
    per_day = math.ceil(_SESSION_MINUTES / minutes)
    n_days = math.ceil(n_bars / per_day)
    days = np.busday_offset(np.datetime64(start, "D"), np.arange(n_days), roll="forward")
    offsets = (_SESSION_OPEN_MIN + minutes * np.arange(per_day)) * 60_000_000
    local = (days.astype("datetime64[us]").astype(np.int64)[:, None] + offsets[None, :]).ravel()[:n_bars]
    utc = (
        pl.Series(local)
        .cast(pl.Datetime("us"))
        .dt.replace_time_zone("America/New_York")
        .dt.convert_time_zone("UTC")
        .dt.epoch("us")
        .to_numpy()
    )
    bday = np.repeat(np.busday_count(_EPOCH, days), per_day)[:n_bars].astype(np.int64)
    x = (np.arange(per_day) + 0.5) / per_day
    shape = 0.6 + 1.6 * (2.0 * x - 1.0) ** 2  # heavier at the open and the close
    shape = np.tile(shape / shape.mean(), n_days)[:n_bars]
    return _Calendar(utc.astype(np.int64), bday, shape, minutes / _SESSION_MINUTES, 252.0, 0.2)


def _calendar_247(interval: str, step: dt.timedelta, n_bars: int, start: dt.date) -> _Calendar:
    """Round-the-clock bars from ``start`` 00:00 UTC: no sessions, gaps or corporate actions."""
    first = np.datetime64(start, "D")
    if interval in ("1mo", "3mo", "1wk"):
        days, _ = _session_days(interval, n_bars, start)
        frac = {"1wk": 7.0, "1mo": 30.4, "3mo": 91.3}[interval]
        ts_us = _days_to_us(days)
    else:
        step_us = int(step.total_seconds() * 1_000_000)
        ts_us = first.astype("datetime64[us]").astype(np.int64) + step_us * np.arange(n_bars, dtype=np.int64)
        frac = step.total_seconds() / 86_400.0
    bday = ts_us // 86_400_000_000
    return _Calendar(ts_us, bday.astype(np.int64), np.ones(n_bars), frac, 365.0, 0.0)


def _days_to_us(days: np.ndarray) -> np.ndarray:
    return days.astype("datetime64[us]").astype(np.int64)
