"""Yahoo Finance through yfinance: stocks (``AAPL``), FX (``EURUSD=X``) and crypto (``BTC-USD``).

One provider call is ``yfinance.Ticker(symbol).history(...)`` for one symbol and one date window,
not ``yfinance.download([...])``. ``download`` is a thread pool over that same ``history`` call
that catches every exception (rate limits, timeouts, unknown symbols alike) and hands back a
column of NaNs instead, so the one thing a resilience layer needs, *why* a symbol failed, is
lost. Calling ``history`` per symbol with exceptions switched on costs the same number of HTTP
requests (Yahoo's chart API serves one symbol per request either way) and lets each failure be
mapped onto the error hierarchy:

==============================================  =============================================
yfinance raises                                 AlphaTwin raises
==============================================  =============================================
``YFRateLimitError`` / HTTP 429                 :class:`~alphatwin.errors.RateLimitedError`
``YFTzMissingError`` ("possibly delisted; no    :class:`~alphatwin.errors.SymbolNotFoundError`
timezone found"), Yahoo's "symbol may be
delisted", HTTP 404
``YFPricesMissingError`` without a Yahoo        :class:`~alphatwin.errors.EmptyDataError`
reason ("no price data found"), empty or
all-NaN frame
timeouts, connection errors, HTTP 5xx,          :class:`~alphatwin.errors.TransientSourceError`
"Yahoo is down", malformed JSON or frame
==============================================  =============================================

An empty answer is a failure (yfinance swallows errors in places and returns an empty frame),
except for a window in which no bar can start at all (a weekend for a daily equity request; see
:func:`expects_bars`), so an incremental Sunday run does not hammer the provider.

Yahoo's history limits are enforced before any request: ``1m`` bars only for the last 30 days and
at most 8 days per request (longer ranges are split into 8-day windows, one request each);
``2m``-``90m`` for the last 60 days; ``60m``/``1h`` for the last 730 days; daily and longer
intervals without limit. A ``--start`` older than the limit is moved up to it with a warning (so
``--interval 1h --start 2024-01-01`` fetches what Yahoo has); a range that ends before the limit is
an :class:`~alphatwin.errors.InputError`.

Prices: ``auto_adjust=False`` and "Adj Close" is ignored, so OHLC are Yahoo's raw "Close" series.
Be aware that Yahoo's raw series is itself *split*-adjusted (never dividend-adjusted), and so are
the dividend amounts it reports; ``split_ratio`` records the split events ("Stock Splits"; Yahoo's
0 for "no split" becomes 1.0) so the model layer can tell, but must not apply them a second time
to Yahoo prices. "Capital Gains" (funds only) is dropped.

Timestamps follow :mod:`alphatwin.sources.base`: daily and longer bars carry the exchange-local
session date at 00:00 UTC (Yahoo's local midnight is read as a date, not converted as an instant);
intraday bars carry the UTC instant at which they open.
"""

from __future__ import annotations

import datetime as dt
import re
import threading
from collections.abc import Callable, Iterator
from typing import Any, Protocol

import numpy as np
import pandas as pd
import polars as pl

from alphatwin.errors import (
    AlphaTwinError,
    EmptyDataError,
    InputError,
    RateLimitedError,
    SourceError,
    SymbolNotFoundError,
    TransientSourceError,
)
from alphatwin.log import get_logger
from alphatwin.sources.base import DAILY_INTERVALS, FetchRequest, conform


log = get_logger("sources.yahoo")

__all__ = [
    "YahooSource",
    "HistoryFn",
    "yahoo_history",
    "map_yfinance_error",
    "history_to_bars",
    "expects_bars",
    "INTRADAY_LOOKBACK",
    "MAX_REQUEST_SPAN",
]

SOURCE = "yahoo"

#: How far back Yahoo serves each intraday interval.
INTRADAY_LOOKBACK: dict[str, dt.timedelta] = {
    "1m": dt.timedelta(days=30),
    "2m": dt.timedelta(days=60),
    "5m": dt.timedelta(days=60),
    "15m": dt.timedelta(days=60),
    "30m": dt.timedelta(days=60),
    "90m": dt.timedelta(days=60),
    "60m": dt.timedelta(days=730),
    "1h": dt.timedelta(days=730),
}
#: The longest range one request may cover, per interval (others: unlimited).
MAX_REQUEST_SPAN: dict[str, dt.timedelta] = {"1m": dt.timedelta(days=8)}
#: Kept off the lookback edge: the request reaches Yahoo a moment after we check it.
_EDGE = dt.timedelta(minutes=5)

_PRICE_COLUMNS = ("Open", "High", "Low", "Close")
_CRYPTO = re.compile(r"^[A-Z0-9]{2,10}-(USD|USDT|USDC|EUR|GBP|JPY|BTC|ETH)$", re.IGNORECASE)
_YF_LOCK = threading.Lock()

Window = tuple[dt.datetime | None, dt.datetime | None]


class HistoryFn(Protocol):
    """The network boundary: one symbol, one window, a frame shaped like ``Ticker.history``.

    ``start``/``end`` are dates for daily-and-longer intervals (exchange-local sessions, ``end``
    exclusive) and tz-aware UTC timestamps for intraday ones; ``start=None`` means all history.
    """

    def __call__(
        self, symbol: str, *, interval: str, start: Any, end: Any, timeout: float
    ) -> pd.DataFrame: ...


def yahoo_history(
    symbol: str, *, interval: str, start: Any, end: Any, timeout: float, session: Any = None
) -> pd.DataFrame:
    """Fetch one symbol's bars with yfinance, letting its exceptions through (the real call).

    yfinance hides exceptions by default, and does so *before* ``history`` even starts: a
    timeout while it looks up the symbol's time zone surfaces as "possibly delisted; no
    timezone found". ``yf.config.debug.hide_exceptions`` is therefore switched off for the
    call (under a lock, restored afterwards; the per-call ``raise_errors`` flag is deprecated
    and does not cover that lookup).
    """
    import yfinance as yf

    kwargs: dict[str, Any] = dict(
        interval=interval, start=start, end=end, prepost=False, actions=True, auto_adjust=False,
        back_adjust=False, repair=False, keepna=False, rounding=False, timeout=timeout,
    )
    if start is None:
        del kwargs["start"]
        kwargs["period"] = "max"
    with _YF_LOCK:
        debug = yf.config.debug
        previous = debug.hide_exceptions
        debug.hide_exceptions = False
        try:
            return yf.Ticker(symbol, session=session).history(**kwargs)
        finally:
            debug.hide_exceptions = previous


def _http_status(exc: BaseException) -> int | None:
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None)
    return status if isinstance(status, int) else None


def _map_yf_exception(exc: BaseException, symbol: str, what: str) -> AlphaTwinError | None:
    from yfinance import exceptions as yfe

    where = {"source": SOURCE, "symbol": symbol}
    if isinstance(exc, yfe.YFRateLimitError):
        return RateLimitedError(f"yahoo rate-limited the request for {symbol}: {exc}", **where)
    if isinstance(exc, yfe.YFTzMissingError):
        return SymbolNotFoundError(f"yahoo does not know {symbol} ({what})", **where)
    if isinstance(exc, yfe.YFPricesMissingError):
        reason = (exc.yahoo_reason or "").lower()
        if not reason:
            return EmptyDataError(f"yahoo returned no prices for {symbol} ({what})", **where)
        if "delisted" in reason or "not found" in reason:
            return SymbolNotFoundError(f"yahoo does not know {symbol} ({what})", **where)
        if "must be within" in reason or "not available for" in reason:
            return InputError(f"yahoo refused the range for {symbol}: {exc.yahoo_reason}")
        return TransientSourceError(f"yahoo failed for {symbol} ({what})", **where)
    if isinstance(exc, yfe.YFInvalidPeriodError):
        return InputError(f"yahoo refused the period for {symbol}: {exc}")
    if isinstance(exc, yfe.YFException):
        return TransientSourceError(f"yahoo failed for {symbol} ({what})", **where)
    return None


def map_yfinance_error(exc: BaseException, *, symbol: str) -> AlphaTwinError | None:
    """Translate an exception raised by yfinance into the AlphaTwin error hierarchy.

    Returns ``None`` for exceptions that are not the provider's fault (programming errors),
    which the caller should let propagate unchanged.

    Examples
    --------
    >>> from yfinance.exceptions import YFRateLimitError
    >>> type(map_yfinance_error(YFRateLimitError(), symbol="AAPL")).__name__
    'RateLimitedError'
    """
    if isinstance(exc, AlphaTwinError):
        return exc
    what = f"{type(exc).__name__}: {exc}"
    mapped = _map_yf_exception(exc, symbol, what)
    if mapped is not None:
        return mapped
    where = {"source": SOURCE, "symbol": symbol}
    status = _http_status(exc)
    if status == 429:
        return RateLimitedError(f"yahoo answered HTTP 429 for {symbol}", **where)
    if status == 404:
        return SymbolNotFoundError(f"yahoo answered HTTP 404 for {symbol}", **where)
    if status is not None and status >= 500:
        return TransientSourceError(f"yahoo answered HTTP {status} for {symbol}", **where)
    if status is not None:
        return SourceError(f"yahoo answered HTTP {status} for {symbol} ({what})", **where)
    if isinstance(exc, (TimeoutError, ConnectionError, OSError)):  # requests/curl_cffi errors are OSErrors
        return TransientSourceError(f"yahoo request for {symbol} failed ({what})", **where)
    if isinstance(exc, (ValueError, KeyError, IndexError, TypeError, AttributeError)):
        return TransientSourceError(f"yahoo sent a malformed answer for {symbol} ({what})", **where)
    return None


def _select_symbol(frame: pd.DataFrame, symbol: str) -> pd.DataFrame:
    """Accept ``yf.download``'s (Ticker, Price) MultiIndex columns as well as flat ones."""
    if not isinstance(frame.columns, pd.MultiIndex):
        return frame
    for level in range(frame.columns.nlevels):
        values = frame.columns.get_level_values(level)
        if symbol in values or symbol.upper() in values:
            key = symbol if symbol in values else symbol.upper()
            return frame.xs(key, axis=1, level=level)
    raise EmptyDataError(f"yahoo's answer has no columns for {symbol}", source=SOURCE, symbol=symbol)


def _session_ts(index: pd.DatetimeIndex, daily: bool, symbol: str) -> np.ndarray:
    if daily:  # the exchange-local session date, at 00:00 UTC
        return pd.to_datetime(index.date).to_numpy(dtype="datetime64[us]")
    if index.tz is None:
        raise TransientSourceError(
            f"yahoo sent intraday bars for {symbol} without a time zone", source=SOURCE, symbol=symbol
        )
    return index.tz_convert("UTC").tz_localize(None).to_numpy(dtype="datetime64[us]")


def _column(frame: pd.DataFrame, name: str, default: float) -> np.ndarray:
    if name not in frame.columns:
        return np.full(len(frame), default, dtype="float64")
    values = pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    return np.where(np.isnan(values), default, values)


def history_to_bars(frame: Any, *, symbol: str, interval: str) -> pl.DataFrame:
    """Turn one ``Ticker.history`` frame into :data:`~alphatwin.sources.base.BAR_SCHEMA` rows.

    Raises :class:`EmptyDataError` when no row has a price (an empty or all-NaN answer) and
    :class:`TransientSourceError` when the frame is not shaped like yfinance's.
    """
    where = {"source": SOURCE, "symbol": symbol}
    if not isinstance(frame, pd.DataFrame):
        raise TransientSourceError(f"yahoo returned {type(frame).__name__} for {symbol}, not a frame", **where)
    frame = _select_symbol(frame, symbol)
    if len(frame) == 0:
        raise EmptyDataError(f"yahoo returned an empty frame for {symbol}", **where)
    missing = [c for c in _PRICE_COLUMNS if c not in frame.columns]
    if missing:
        raise TransientSourceError(f"yahoo's answer for {symbol} lacks column(s) {', '.join(missing)}", **where)
    if not isinstance(frame.index, pd.DatetimeIndex):
        raise TransientSourceError(f"yahoo's answer for {symbol} has no datetime index", **where)
    prices = frame[list(_PRICE_COLUMNS)].apply(pd.to_numeric, errors="coerce")
    frame = frame.loc[prices.notna().any(axis=1).to_numpy()]
    if frame.empty:
        raise EmptyDataError(f"yahoo returned no prices for {symbol} (empty or all-NaN rows)", **where)
    splits = _column(frame, "Stock Splits", 0.0)
    bars = pl.DataFrame({
        "symbol": [symbol] * len(frame),
        "interval": [interval] * len(frame),
        "ts": _session_ts(frame.index, interval in DAILY_INTERVALS, symbol),
        **{c.lower(): pd.to_numeric(frame[c], errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
           for c in _PRICE_COLUMNS},
        "volume": _column(frame, "Volume", 0.0),
        "dividend": _column(frame, "Dividends", 0.0),
        "split_ratio": np.where(splits > 0, splits, 1.0),
    }, nan_to_null=True)
    return conform(bars).unique(subset=["symbol", "ts"], keep="first", maintain_order=True)


def _is_crypto(symbol: str) -> bool:
    return bool(_CRYPTO.match(symbol))


def _bar_can_start(day: dt.date, interval: str, every_day: bool) -> bool:
    if interval == "1wk":
        return day.weekday() == 0
    if interval == "1mo":
        return day.day == 1
    if interval == "3mo":
        return day.day == 1 and day.month in (1, 4, 7, 10)
    return every_day or day.weekday() < 5


def expects_bars(symbol: str, interval: str, start: dt.datetime | None, end: dt.datetime | None) -> bool:
    """Whether ``[start, end)`` must hold at least one bar, so an empty answer is a failure.

    Daily and longer: some session date in the range can start a bar (a weekday for ``1d``,
    any day for crypto, a Monday for ``1wk``, a 1st for ``1mo``). Intraday: the range covers a
    whole UTC weekday (any whole day for crypto), since markets close overnight. Open-ended and
    long ranges always expect bars.

    Examples
    --------
    >>> import datetime as dt
    >>> expects_bars("AAPL", "1d", dt.datetime(2024, 1, 6), dt.datetime(2024, 1, 8))  # Sat-Sun
    False
    >>> expects_bars("BTC-USD", "1d", dt.datetime(2024, 1, 6), dt.datetime(2024, 1, 8))
    True
    """
    if start is None or end is None or end - start > dt.timedelta(days=100):
        return True
    every_day = _is_crypto(symbol)
    if interval in DAILY_INTERVALS:
        day = start.date() if start.time() == dt.time(0) else start.date() + dt.timedelta(days=1)
        days = [day + dt.timedelta(days=i) for i in range((end.date() - day).days + 1)]
        return any(_bar_can_start(d, interval, every_day) and dt.datetime.combine(d, dt.time(0)) < end for d in days)
    first = start.date() if start.time() == dt.time(0) else start.date() + dt.timedelta(days=1)
    whole = [first + dt.timedelta(days=i) for i in range(max(0, (end.date() - first).days))]
    return any(every_day or d.weekday() < 5 for d in whole)


def _ceil_date(moment: dt.datetime) -> dt.date:
    return moment.date() if moment.time() == dt.time(0) else moment.date() + dt.timedelta(days=1)


class YahooSource:
    """Bars from Yahoo Finance via yfinance (see the module docstring for the contract).

    Parameters
    ----------
    history
        The network boundary, called once per symbol and window (default :func:`yahoo_history`,
        the real yfinance call). Tests pass a fake returning ``Ticker.history``-shaped frames.
    timeout
        Seconds before one HTTP request gives up (``Settings.http_timeout``).
    now
        Returns the current time (tz-aware UTC); used to check Yahoo's intraday lookback limits.

    Examples
    --------
    >>> YahooSource().request_cost(FetchRequest(("AAPL", "MSFT"), interval="1d"))
    2
    """

    name = SOURCE
    network = True

    def __init__(
        self,
        *,
        history: HistoryFn | None = None,
        timeout: float = 20.0,
        now: Callable[[], dt.datetime] | None = None,
    ) -> None:
        self._history: HistoryFn = history if history is not None else yahoo_history
        self._timeout = timeout
        self._now = now if now is not None else (lambda: dt.datetime.now(dt.UTC))

    def windows(self, request: FetchRequest) -> list[Window]:
        """The request windows (naive UTC) one symbol needs; checks Yahoo's history limits."""
        interval = request.interval
        if interval in DAILY_INTERVALS:
            return [(request.start, request.end)]
        now = self._now().astimezone(dt.UTC).replace(tzinfo=None)
        earliest = now - INTRADAY_LOOKBACK[interval]
        start = request.start if request.start is not None else earliest + _EDGE
        end = request.end if request.end is not None else now
        if start < earliest:
            days = INTRADAY_LOOKBACK[interval].days
            if end <= earliest + _EDGE:
                raise InputError(
                    f"Yahoo serves {interval} bars for the last {days} days only: the requested range ends "
                    f"{end:%Y-%m-%d %H:%M}, before {earliest:%Y-%m-%d %H:%M} UTC; "
                    f"use a later range or a coarser `--interval`"
                )
            log.warning(
                "Yahoo serves %s bars for the last %d days only: fetching from %s UTC instead of `--start` %s",
                interval, days, f"{earliest + _EDGE:%Y-%m-%d %H:%M}", f"{start:%Y-%m-%d %H:%M}",
            )
            start = earliest + _EDGE
        if start >= end:
            raise InputError(f"`--start` ({start:%Y-%m-%d %H:%M}) must be before `--end` ({end:%Y-%m-%d %H:%M})")
        span = MAX_REQUEST_SPAN.get(interval)
        if span is None:
            return [(start, end)]
        edges = [start]
        while edges[-1] + span < end:
            edges.append(edges[-1] + span)
        return list(zip(edges, edges[1:] + [end], strict=True))

    def request_cost(self, request: FetchRequest) -> int:
        """Provider requests ``fetch(request)`` makes: one per symbol and window."""
        return max(1, len(request.symbols)) * len(self.windows(request))

    def fetch(self, request: FetchRequest) -> Iterator[pl.DataFrame]:
        """Yield one frame per symbol, in request order.

        Stops at the first symbol that fails, raising its error (``symbol`` set); wrap the
        source in :class:`~alphatwin.sources.resilience.ResilientSource` for retries and
        fail-over per symbol. A symbol with no bars in a range that cannot hold any yields
        nothing.
        """
        if not request.symbols:
            raise InputError("yahoo needs at least one symbol, e.g. AAPL, EURUSD=X or BTC-USD")
        windows = self.windows(request)  # limits are checked before the first request
        for symbol in request.symbols:
            bars = self._fetch_symbol(symbol, request.interval, windows)
            if bars is not None:
                yield bars

    def _fetch_symbol(self, symbol: str, interval: str, windows: list[Window]) -> pl.DataFrame | None:
        parts: list[pl.DataFrame] = []
        for start, end in windows:
            try:
                parts.append(self._fetch_window(symbol, interval, start, end))
            except EmptyDataError:
                if expects_bars(symbol, interval, start, end):
                    raise
        parts = [p for p in parts if not p.is_empty()]
        if not parts:
            return None
        return pl.concat(parts).unique(subset=["symbol", "ts"], keep="first").sort("symbol", "ts")

    def _fetch_window(
        self, symbol: str, interval: str, start: dt.datetime | None, end: dt.datetime | None
    ) -> pl.DataFrame:
        if interval in DAILY_INTERVALS:
            first: Any = _ceil_date(start) if start is not None else None
            last: Any = _ceil_date(end) if end is not None else None
        else:
            first = pd.Timestamp(start, tz="UTC") if start is not None else None
            last = pd.Timestamp(end, tz="UTC") if end is not None else None
        try:
            raw = self._history(symbol, interval=interval, start=first, end=last, timeout=self._timeout)
        except Exception as exc:
            mapped = map_yfinance_error(exc, symbol=symbol)
            if mapped is None or mapped is exc:
                raise
            raise mapped from exc
        bars = history_to_bars(raw, symbol=symbol, interval=interval)
        if start is not None:
            bars = bars.filter(pl.col("ts") >= pl.lit(start).dt.replace_time_zone("UTC"))
        if end is not None:
            bars = bars.filter(pl.col("ts") < pl.lit(end).dt.replace_time_zone("UTC"))
        if bars.is_empty():
            raise EmptyDataError(f"yahoo returned no bars for {symbol} inside the requested range",
                                 source=SOURCE, symbol=symbol)
        return bars
