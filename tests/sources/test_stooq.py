"""StooqSource: the CSV endpoint's answers -> BAR_SCHEMA, and every failure mode onto the hierarchy.

Only the HTTP session is faked; its answers are recorded-style Stooq bodies from ``fixtures/``.
"""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest
import requests

from alphatwin.errors import (
    EmptyDataError,
    InputError,
    RateLimitedError,
    SourceError,
    SymbolNotFoundError,
    TransientSourceError,
)
from alphatwin.sources.base import BAR_SCHEMA, FetchRequest
from alphatwin.sources.stooq import STOOQ_URL, StooqSource, stooq_symbol


from tests.sources.fixtures import fakes  # noqa: E402
UTC = dt.UTC
JAN = FetchRequest(("AAPL",), start=dt.datetime(2024, 1, 2), end=dt.datetime(2024, 1, 13))


def utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)


def fetch(*answers, request: FetchRequest = JAN, timeout: float = 20.0):
    http = fakes.FakeHTTP(*answers)
    frames = list(StooqSource(session=http, timeout=timeout).fetch(request))
    return frames, http


def test_daily_csv_maps_to_bar_schema_with_neutral_corporate_actions():
    (bars,), http = fetch((200, fakes.text("stooq_aapl_d_2024-01.csv")), timeout=7.5)
    assert bars.schema == pl.Schema(BAR_SCHEMA)
    assert bars.height == 9
    assert bars["ts"].to_list()[:2] == [utc(2024, 1, 2), utc(2024, 1, 3)]
    assert bars.row(0, named=True) | {"ts": None} == {
        "symbol": "AAPL", "interval": "1d", "ts": None, "open": 186.2, "high": 187.482, "low": 182.929,
        "close": 184.685, "volume": 82951374.0, "dividend": 0.0, "split_ratio": 1.0,
    }
    (call,) = http.calls
    assert call["url"] == STOOQ_URL
    # [2024-01-02, 2024-01-13) -> inclusive session dates d1..d2
    assert call["params"] == {"s": "aapl.us", "i": "d", "d1": "20240102", "d2": "20240112"}
    assert call["timeout"] == 7.5


def test_fx_csv_without_volume_gets_zero_volume():
    request = FetchRequest(("EURUSD=X",), start=dt.datetime(2024, 6, 3), end=dt.datetime(2024, 6, 6))
    (bars,), http = fetch((200, fakes.text("stooq_eurusd_d_2024-06.csv")), request=request)
    assert http.calls[0]["params"]["s"] == "eurusd"
    assert bars["volume"].to_list() == [0.0, 0.0, 0.0]
    assert bars["close"].to_list() == [1.09023, 1.08756, 1.08689]
    assert bars["symbol"].unique().to_list() == ["EURUSD=X"]


def test_weekly_bars_are_relabelled_to_the_monday_like_yahoo():
    request = FetchRequest(("AAPL",), interval="1wk", start=dt.datetime(2024, 1, 1), end=dt.datetime(2024, 1, 15))
    (bars,), http = fetch((200, fakes.text("stooq_aapl_w_2024-01.csv")), request=request)
    assert http.calls[0]["params"]["i"] == "w"
    assert bars["ts"].to_list() == [utc(2024, 1, 1), utc(2024, 1, 8)]  # Stooq says Fri 5th, Fri 12th


def test_multi_symbol_batch_one_request_per_symbol():
    request = FetchRequest(("AAPL", "EURUSD=X"), start=dt.datetime(2024, 1, 2), end=dt.datetime(2024, 6, 6))
    frames, http = fetch((200, fakes.text("stooq_aapl_d_2024-01.csv")), (200, fakes.text("stooq_eurusd_d_2024-06.csv")),
                         request=request)
    assert [f["symbol"][0] for f in frames] == ["AAPL", "EURUSD=X"]
    assert [c["params"]["s"] for c in http.calls] == ["aapl.us", "eurusd"]


@pytest.mark.parametrize(
    ("symbol", "expected"),
    [("AAPL", "aapl.us"), ("msft", "msft.us"), ("BRK-B", "brk-b.us"), ("VOD.L", "vod.uk"), ("SAP.DE", "sap.de"),
     ("7203.T", "7203.jp"), ("EURUSD=X", "eurusd"), ("AAPL.US", "aapl.us")],
)
def test_symbol_mapping(symbol, expected):
    assert stooq_symbol(symbol) == expected


@pytest.mark.parametrize("symbol", ["BTC-USD", "ETH-EUR", "^GSPC", "ABC.XX", ""])
def test_symbols_stooq_cannot_serve_are_input_errors_before_any_request(symbol):
    http = fakes.FakeHTTP((200, "unused"))
    with pytest.raises(InputError, match="stooq has no symbol"):
        list(StooqSource(session=http).fetch(FetchRequest((symbol,))))
    assert http.calls == []


@pytest.mark.parametrize("interval", ["1m", "1h", "5d", "3mo"])
def test_unsupported_intervals_are_input_errors(interval):
    http = fakes.FakeHTTP((200, "unused"))
    with pytest.raises(InputError, match="stooq serves only 1d, 1wk, 1mo"):
        list(StooqSource(session=http).fetch(FetchRequest(("AAPL",), interval=interval)))
    assert http.calls == []


def test_no_data_is_symbol_not_found():
    with pytest.raises(SymbolNotFoundError) as info:
        fetch((200, fakes.text("stooq_no_data.txt")))
    assert (info.value.source, info.value.symbol) == ("stooq", "AAPL")


def test_no_data_for_a_weekend_range_is_simply_no_bars():
    weekend = FetchRequest(("AAPL",), start=dt.datetime(2024, 1, 6), end=dt.datetime(2024, 1, 8))
    frames, _ = fetch((200, fakes.text("stooq_no_data.txt")), request=weekend)
    assert frames == []


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param((200, fakes.text("stooq_hits_limit.txt")), id="daily-hits-limit"),
        pytest.param((429, "Too Many Requests"), id="http-429"),
    ],
)
def test_rate_limits(answer):
    with pytest.raises(RateLimitedError):
        fetch(answer)


@pytest.mark.parametrize(
    ("answer", "match"),
    [
        pytest.param((503, "Service Unavailable"), "HTTP 503", id="http-503"),
        pytest.param((500, ""), "HTTP 500", id="http-500"),
        pytest.param((200, fakes.text("stooq_blocked.html")), "HTML page", id="html"),
        pytest.param((200, ""), "empty body", id="empty-body"),
        pytest.param(requests.ReadTimeout("read timed out"), "timed out after 20s", id="read-timeout"),
        pytest.param(requests.ConnectTimeout("connect timed out"), "timed out", id="connect-timeout"),
        pytest.param(requests.ConnectionError("connection reset"), "ConnectionError", id="connection-error"),
        pytest.param((200, "Symbol,Date,Close\nAAPL,2024-01-02,1\n"), "unexpected CSV header", id="bad-header"),
        pytest.param((200, "Date,Open,High,Low,Close,Volume\n2024-01-02,186.2,abc,182.9,184.6,1\n"), "malformed CSV",
                     id="bad-number"),
        pytest.param((200, "Date,Open,High,Low,Close,Volume\n02/01/2024,186.2,187,182.9,184.6,1\n"), "malformed CSV",
                     id="bad-date"),
        pytest.param((200, "Date,Open,High,Low,Close,Volume\n2024-01-02,186.2,187\n"), "malformed CSV", id="short-row"),
    ],
)
def test_transient_failures(answer, match):
    with pytest.raises(TransientSourceError, match=match) as info:
        fetch(answer)
    assert not isinstance(info.value, RateLimitedError)
    assert info.value.symbol == "AAPL"


def test_header_without_rows_is_empty_data():
    with pytest.raises(EmptyDataError):
        fetch((200, fakes.text("stooq_header_only.csv")))


def test_http_404_is_not_found_and_other_4xx_is_not_retryable():
    with pytest.raises(SymbolNotFoundError):
        fetch((404, "Not Found"))
    with pytest.raises(SourceError) as info:
        fetch((403, "Forbidden"))
    assert not isinstance(info.value, TransientSourceError)


def test_open_range_sends_no_dates():
    (bars,), http = fetch((200, fakes.text("stooq_aapl_d_2024-01.csv")), request=FetchRequest(("AAPL",)))
    assert http.calls[0]["params"] == {"s": "aapl.us", "i": "d"}
    assert bars.height == 9
