"""Stooq's free CSV endpoint: a fallback for daily, weekly and monthly equity and FX bars.

One request per symbol: ``GET https://stooq.com/q/d/l/?s=aapl.us&i=d&d1=20240102&d2=20240131``
answers ``Date,Open,High,Low,Close,Volume`` rows (no ``Volume`` for FX). Symbols are mapped from
Yahoo's spelling by :func:`stooq_symbol`: US tickers get ``.us`` (``AAPL`` -> ``aapl.us``,
``BRK-B`` -> ``brk-b.us``), a few exchange suffixes are translated (``VOD.L`` -> ``vod.uk``),
``EURUSD=X`` becomes ``eurusd``; crypto pairs and indices have no mapping (an
:class:`~alphatwin.errors.InputError`, so a source chain moves on to its next source).

Honest caveat on prices: Stooq's history is **split-adjusted** (not the unadjusted prices
:mod:`alphatwin.sources.base` asks for) and carries no corporate-action columns, so bars from
here have ``dividend`` 0.0 and ``split_ratio`` 1.0 and must not be split-adjusted again. Whether
Stooq also adjusts for dividends is not documented; treat its series as an approximation of
Yahoo's "Close". Weekly and monthly bars are relabelled to the period's first day (Monday, the
1st), Yahoo's convention, since Stooq labels them with the period's last trading day.

How answers map onto the error hierarchy:

=========================================  ===================================================
Stooq answers                              AlphaTwin raises
=========================================  ===================================================
HTTP 429, "Exceeded the daily hits limit"  :class:`~alphatwin.errors.RateLimitedError`
timeout, connection error, HTTP 5xx,       :class:`~alphatwin.errors.TransientSourceError`
HTML page, malformed CSV
"No data"                                  :class:`~alphatwin.errors.SymbolNotFoundError` (or
                                           nothing, for a range where no bar can start)
a CSV header without rows                  :class:`~alphatwin.errors.EmptyDataError`
=========================================  ===================================================
"""

from __future__ import annotations

import datetime as dt
import io
import re
from collections.abc import Iterator

import polars as pl
import requests

from alphatwin.errors import (
    EmptyDataError,
    InputError,
    RateLimitedError,
    SourceError,
    SymbolNotFoundError,
    TransientSourceError,
)
from alphatwin.sources.base import FetchRequest, conform
from alphatwin.sources.yahoo import expects_bars

__all__ = ["StooqSource", "stooq_symbol", "parse_stooq_csv", "STOOQ_URL"]

SOURCE = "stooq"
STOOQ_URL = "https://stooq.com/q/d/l/"
_INTERVAL_CODES = {"1d": "d", "1wk": "w", "1mo": "m"}
_SUFFIXES = {"": ".us", ".US": ".us", ".L": ".uk", ".DE": ".de", ".F": ".de", ".T": ".jp", ".HK": ".hk"}
_TICKER = re.compile(r"^([A-Z0-9][A-Z0-9\-]*)(\.[A-Z]{1,3})?$")
_FX = re.compile(r"^([A-Z]{6})=X$")
_CRYPTO = re.compile(r"^[A-Z0-9]{2,10}-(USD|USDT|USDC|EUR|GBP|JPY|BTC|ETH)$")
_HEADER = ("Date", "Open", "High", "Low", "Close")
_USER_AGENT = "Mozilla/5.0 (compatible; alphatwin; +https://github.com/alphatwin)"


def stooq_symbol(symbol: str) -> str:
    """Stooq's spelling of a Yahoo-style symbol; :class:`InputError` when there is none.

    Examples
    --------
    >>> stooq_symbol("AAPL"), stooq_symbol("BRK-B"), stooq_symbol("VOD.L"), stooq_symbol("EURUSD=X")
    ('aapl.us', 'brk-b.us', 'vod.uk', 'eurusd')
    """
    upper = symbol.strip().upper()
    fx = _FX.match(upper)
    if fx:
        return fx.group(1).lower()
    ticker = _TICKER.match(upper)
    if _CRYPTO.match(upper) or ticker is None or (ticker.group(2) or "") not in _SUFFIXES:
        raise InputError(f"stooq has no symbol for {symbol!r}; it serves equities (AAPL, VOD.L) and FX (EURUSD=X)")
    return ticker.group(1).lower() + _SUFFIXES[ticker.group(2) or ""]


def _classify_text(text: str, symbol: str, expect: bool) -> str | None:
    """Raise for Stooq's non-CSV answers; return the CSV text, or ``None`` for "no bars here"."""
    where = {"source": SOURCE, "symbol": symbol}
    body = text.lstrip("\ufeff").strip()
    head = body[:200].lower()
    if "exceeded the daily hits limit" in head:
        raise RateLimitedError(f"stooq's daily hits limit is exhausted ({body[:80]!r})", **where)
    if head.startswith("no data"):
        if not expect:
            return None
        raise SymbolNotFoundError(f"stooq has no data for {symbol}", **where)
    if head.startswith("<"):
        raise TransientSourceError(f"stooq answered an HTML page instead of CSV for {symbol}", **where)
    if not body:
        raise TransientSourceError(f"stooq answered an empty body for {symbol}", **where)
    return body


def _relabel(frame: pl.DataFrame, interval: str) -> pl.DataFrame:
    if interval == "1wk":
        return frame.with_columns(pl.col("ts").dt.truncate("1w"))
    if interval == "1mo":
        return frame.with_columns(pl.col("ts").dt.truncate("1mo"))
    return frame


def parse_stooq_csv(text: str, *, symbol: str, interval: str, expect: bool = True) -> pl.DataFrame:
    """Parse one Stooq answer into :data:`~alphatwin.sources.base.BAR_SCHEMA` rows.

    ``expect`` says whether the requested range must hold bars (see
    :func:`~alphatwin.sources.yahoo.expects_bars`); when it need not, "No data" and a bare
    header give an empty frame instead of an error.
    """
    where = {"source": SOURCE, "symbol": symbol}
    body = _classify_text(text, symbol, expect)
    if body is None:
        return conform(pl.DataFrame(schema={"symbol": pl.String, "interval": pl.String, "ts": pl.Datetime("us"),
                                            **{c.lower(): pl.Float64 for c in _HEADER[1:]}}))
    header = tuple(c.strip() for c in body.splitlines()[0].split(","))
    if header[: len(_HEADER)] != _HEADER:
        shown = ",".join(header)[:80]
        raise TransientSourceError(f"stooq answered an unexpected CSV header {shown!r} for {symbol}", **where)
    try:
        raw = pl.read_csv(io.StringIO(body), infer_schema=False)
        frame = raw.select(
            pl.lit(symbol).alias("symbol"),
            pl.lit(interval).alias("interval"),
            pl.col("Date").str.strip_chars().str.strptime(pl.Datetime("us"), "%Y-%m-%d", strict=True).alias("ts"),
            *[pl.col(c).str.strip_chars().cast(pl.Float64, strict=True).alias(c.lower()) for c in _HEADER[1:]],
            (pl.col("Volume").str.strip_chars().cast(pl.Float64, strict=True) if "Volume" in raw.columns
             else pl.lit(0.0)).alias("volume"),
        )
    except (pl.exceptions.PolarsError, ValueError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise TransientSourceError(f"stooq answered malformed CSV for {symbol}: {reason}", **where) from None
    gaps = frame.select(pl.any_horizontal(pl.col("ts", "open", "high", "low", "close").is_null()).sum()).item()
    if gaps:
        raise TransientSourceError(f"stooq answered malformed CSV for {symbol}: {gaps} row(s) lack fields", **where)
    if frame.is_empty() and expect:
        raise EmptyDataError(f"stooq answered a header without rows for {symbol}", **where)
    return conform(_relabel(frame, interval))


class StooqSource:
    """Daily/weekly/monthly bars from Stooq's CSV endpoint (see the module docstring).

    Parameters
    ----------
    session
        The HTTP client (a :class:`requests.Session`); tests pass a fake one.
    timeout
        Seconds before a request gives up (``Settings.http_timeout``).
    url
        The endpoint, for a mirror or a test server.

    Examples
    --------
    >>> StooqSource().params("AAPL", FetchRequest(("AAPL",), start=dt.datetime(2024, 1, 2)))["s"]
    'aapl.us'
    """

    name = SOURCE
    network = True

    def __init__(self, *, session: requests.Session | None = None, timeout: float = 20.0, url: str = STOOQ_URL) -> None:
        self._session = session if session is not None else requests.Session()
        self._timeout = timeout
        self._url = url

    def params(self, symbol: str, request: FetchRequest) -> dict[str, str]:
        """Query parameters for one symbol (``d1``/``d2`` are inclusive session dates)."""
        code = _INTERVAL_CODES.get(request.interval)
        if code is None:
            raise InputError(
                f"stooq serves only {', '.join(_INTERVAL_CODES)} bars, got `--interval` {request.interval!r}"
            )
        params = {"s": stooq_symbol(symbol), "i": code}
        if request.start is not None:
            first = request.start.date() + dt.timedelta(days=0 if request.start.time() == dt.time(0) else 1)
            params["d1"] = f"{first:%Y%m%d}"
        if request.end is not None:
            params["d2"] = f"{(request.end - dt.timedelta(microseconds=1)).date():%Y%m%d}"
        return params

    def fetch(self, request: FetchRequest) -> Iterator[pl.DataFrame]:
        """Yield one frame per symbol; stops at the first symbol that fails, raising its error."""
        if not request.symbols:
            raise InputError("stooq needs at least one symbol, e.g. AAPL")
        plans = [(symbol, self.params(symbol, request)) for symbol in request.symbols]  # validate first
        for symbol, params in plans:
            text = self._get(symbol, params)
            expect = expects_bars(symbol, request.interval, request.start, request.end)
            frame = parse_stooq_csv(text, symbol=symbol, interval=request.interval, expect=expect)
            if request.start is not None and request.interval == "1d":
                frame = frame.filter(pl.col("ts") >= pl.lit(request.start).dt.replace_time_zone("UTC"))
            if request.end is not None:
                frame = frame.filter(pl.col("ts") < pl.lit(request.end).dt.replace_time_zone("UTC"))
            if not frame.is_empty():
                yield frame

    def _get(self, symbol: str, params: dict[str, str]) -> str:
        where = {"source": SOURCE, "symbol": symbol}
        try:
            response = self._session.get(
                self._url, params=params, timeout=self._timeout, headers={"User-Agent": _USER_AGENT}
            )
        except requests.Timeout:
            raise TransientSourceError(f"stooq timed out after {self._timeout:g}s for {symbol}", **where) from None
        except requests.RequestException as exc:
            reason = f"{type(exc).__name__}: {exc}"
            raise TransientSourceError(f"stooq request for {symbol} failed ({reason})", **where) from None
        status = response.status_code
        if status == 429:
            raise RateLimitedError(f"stooq answered HTTP 429 (too many requests) for {symbol}", **where)
        if status >= 500:
            raise TransientSourceError(f"stooq answered HTTP {status} for {symbol}", **where)
        if status == 404:
            raise SymbolNotFoundError(f"stooq answered HTTP 404 for {symbol}", **where)
        if status >= 400:
            raise SourceError(f"stooq answered HTTP {status} for {symbol}", **where)
        return response.text
