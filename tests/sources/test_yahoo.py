"""YahooSource: yfinance frames -> BAR_SCHEMA, Yahoo's limits, and the error mapping.

Only the network boundary is faked: either the per-symbol history call (frames built like
yfinance 1.7's output) or, for the contract tests, the HTTP session underneath yfinance, so
yfinance's own parsing runs on recorded chart JSON.
"""

from __future__ import annotations

import datetime as dt
import functools
import json

import curl_cffi.requests.exceptions as curl_exc
import pandas as pd
import polars as pl
import pytest
import requests
import yfinance
import yfinance.cache
import yfinance.data
from yfinance import exceptions as yfe

from alphatwin.errors import (
    EmptyDataError,
    InputError,
    RateLimitedError,
    SourceError,
    SymbolNotFoundError,
    TransientSourceError,
)
from alphatwin.sources.base import BAR_SCHEMA, FetchRequest
from alphatwin.sources.yahoo import YahooSource, expects_bars, history_to_bars, map_yfinance_error, yahoo_history


from tests.sources.fixtures import fakes  # noqa: E402
UTC = dt.UTC
NOW = dt.datetime(2024, 6, 10, 12, 0, tzinfo=UTC)


def utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)


class FakeHistory:
    """Stands in for yahoo_history: answers per symbol, records every call."""

    def __init__(self, answers: dict[str, object]) -> None:
        self.answers = answers
        self.calls: list[dict] = []

    def __call__(self, symbol, *, interval, start, end, timeout):
        self.calls.append({"symbol": symbol, "interval": interval, "start": start, "end": end, "timeout": timeout})
        answer = self.answers[symbol]
        if callable(answer) and not isinstance(answer, pd.DataFrame):
            answer = answer(start, end)
        if isinstance(answer, BaseException):
            raise answer
        return answer


def source(answers: dict[str, object], **kwargs) -> tuple[YahooSource, FakeHistory]:
    fake = FakeHistory(answers)
    return YahooSource(history=fake, now=lambda: NOW, **kwargs), fake


AAPL_AUG_2020 = fakes.history_frame(
    [
        ("2020-08-06", 110.405, 114.4125, 109.7975, 113.9025, 202428800),
        ("2020-08-07", 113.205, 113.675, 110.2925, 111.1125, 198045600, 0.205),
        ("2020-08-28", 126.0125, 126.4425, 124.5775, 124.8075, 187630000),
        ("2020-08-31", 127.58, 131.0, 126.0, 129.04, 225702700, 0.0, 4.0),
    ],
    tz="America/New_York",
)


# --------------------------------------------------------------------------- mapping frames


def test_stock_daily_maps_ohlc_dividends_splits_and_session_dates():
    src, fake = source({"AAPL": AAPL_AUG_2020})
    (bars,) = src.fetch(FetchRequest(("AAPL",), start=dt.datetime(2020, 8, 1), end=dt.datetime(2020, 9, 1)))
    assert bars.schema == pl.Schema(BAR_SCHEMA)
    # local midnight in New York (04:00 UTC) is read as the session date, 00:00 UTC
    assert bars["ts"].to_list() == [utc(2020, 8, 6), utc(2020, 8, 7), utc(2020, 8, 28), utc(2020, 8, 31)]
    assert bars["close"].to_list() == [113.9025, 111.1125, 124.8075, 129.04]  # "Close", not "Adj Close"
    assert bars["open"].to_list()[1] == 113.205
    assert bars["dividend"].to_list() == [0.0, 0.205, 0.0, 0.0]
    assert bars["split_ratio"].to_list() == [1.0, 1.0, 1.0, 4.0]  # Yahoo's 0 = no split -> 1.0
    assert bars["volume"].to_list()[3] == 225702700.0
    assert set(bars["symbol"]) == {"AAPL"} and set(bars["interval"]) == {"1d"}
    # daily windows go out as exchange-local session dates, end exclusive
    assert fake.calls[0]["start"] == dt.date(2020, 8, 1) and fake.calls[0]["end"] == dt.date(2020, 9, 1)
    assert fake.calls[0]["timeout"] == 20.0


def test_fx_daily_bar_at_london_midnight_keeps_its_date():
    # Yahoo labels EURUSD=X daily bars 00:00 Europe/London, which is 23:00 UTC the day before in summer
    frame = fakes.history_frame(
        [("2024-06-03", 1.0847, 1.0916, 1.0833, 1.0902, 0), ("2024-06-04", 1.0903, 1.0910, 1.0861, 1.0876, 0)],
        tz="Europe/London",
    )
    src, _ = source({"EURUSD=X": frame})
    (bars,) = src.fetch(FetchRequest(("EURUSD=X",), start=dt.datetime(2024, 6, 3), end=dt.datetime(2024, 6, 5)))
    assert bars["ts"].to_list() == [utc(2024, 6, 3), utc(2024, 6, 4)]
    assert bars["volume"].to_list() == [0.0, 0.0]
    assert bars["close"].to_list() == [1.0902, 1.0876]


def test_crypto_daily_includes_weekends_and_fund_capital_gains_are_dropped():
    btc = fakes.history_frame(
        [("2024-06-01", 67489.6, 67839.8, 67386.2, 67706.9, 11641495604),
         ("2024-06-02", 67707.0, 68409.2, 67315.5, 67751.6, 17110588415)],
        tz="UTC",
    )
    spy = fakes.history_frame([("2024-06-03", 529.02, 529.31, 522.6, 527.8, 46835700, 0.0)], tz="America/New_York",
                              capital_gains=True)
    src, _ = source({"BTC-USD": btc, "SPY": spy})
    frames = list(src.fetch(FetchRequest(("BTC-USD", "SPY"), start=dt.datetime(2024, 6, 1), end=dt.datetime(2024, 6, 4))))
    assert [f["symbol"][0] for f in frames] == ["BTC-USD", "SPY"]
    assert frames[0]["ts"].to_list() == [utc(2024, 6, 1), utc(2024, 6, 2)]  # Saturday and Sunday
    assert frames[1].columns == list(BAR_SCHEMA)  # no "capital gains" column leaks through


def test_intraday_bars_carry_the_utc_instant():
    frame = fakes.history_frame(
        [("2024-06-03 13:30", 192.9, 193.3, 192.5, 193.0, 1523000), ("2024-06-03 13:35", 193.0, 193.6, 192.9, 193.4, 801000)],
        tz="America/New_York", intraday=True,
    )
    src, fake = source({"AAPL": frame})
    (bars,) = src.fetch(FetchRequest(("AAPL",), interval="5m", start=dt.datetime(2024, 6, 3, 13), end=dt.datetime(2024, 6, 3, 21)))
    assert bars["ts"].to_list() == [utc(2024, 6, 3, 13, 30), utc(2024, 6, 3, 13, 35)]
    assert fake.calls[0]["start"] == pd.Timestamp("2024-06-03 13:00", tz="UTC")
    assert fake.calls[0]["end"] == pd.Timestamp("2024-06-03 21:00", tz="UTC")


def test_rows_outside_the_requested_range_are_dropped():
    src, _ = source({"AAPL": AAPL_AUG_2020})
    (bars,) = src.fetch(FetchRequest(("AAPL",), start=dt.datetime(2020, 8, 7), end=dt.datetime(2020, 8, 31)))
    assert bars["ts"].to_list() == [utc(2020, 8, 7), utc(2020, 8, 28)]


def test_multi_symbol_batch_calls_once_per_symbol_in_order():
    eur = fakes.history_frame([("2020-08-06", 1.186, 1.192, 1.184, 1.1875, 0)], tz="Europe/London")
    src, fake = source({"AAPL": AAPL_AUG_2020, "EURUSD=X": eur})
    request = FetchRequest(("AAPL", "EURUSD=X"), start=dt.datetime(2020, 8, 6), end=dt.datetime(2020, 9, 1))
    frames = list(src.fetch(request))
    assert [f.height for f in frames] == [4, 1]
    assert [c["symbol"] for c in fake.calls] == ["AAPL", "EURUSD=X"]
    assert src.request_cost(request) == 2


def test_download_shaped_multiindex_frame_is_accepted():
    wide = fakes.download_frame({"AAPL": AAPL_AUG_2020, "MSFT": None})
    bars = history_to_bars(wide, symbol="AAPL", interval="1d")
    assert bars["ts"].to_list()[0] == utc(2020, 8, 6) and bars["split_ratio"].to_list()[-1] == 4.0


# --------------------------------------------------------------------------- empty and partial answers


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param(fakes.empty_history(), id="yfinance-empty_df"),
        pytest.param(pd.DataFrame(), id="no-columns"),
        pytest.param(fakes.download_frame({"AAPL": AAPL_AUG_2020, "MSFT": None}), id="batch-with-symbol-all-nan"),
        pytest.param(fakes.download_frame({"AAPL": AAPL_AUG_2020}), id="batch-without-symbol"),
    ],
)
def test_empty_or_partial_answer_is_a_transient_failure_not_no_data(answer):
    src, _ = source({"MSFT": answer})
    with pytest.raises(EmptyDataError) as info:
        list(src.fetch(FetchRequest(("MSFT",), start=dt.datetime(2020, 8, 3), end=dt.datetime(2020, 9, 1))))
    assert isinstance(info.value, TransientSourceError)
    assert info.value.symbol == "MSFT" and info.value.source == "yahoo"


def test_all_nan_rows_are_empty():
    frame = AAPL_AUG_2020.copy()
    frame[["Open", "High", "Low", "Close"]] = float("nan")
    with pytest.raises(EmptyDataError, match="all-NaN"):
        history_to_bars(frame, symbol="AAPL", interval="1d")


def test_partial_batch_fails_for_the_missing_symbol_after_serving_the_others():
    src, _ = source({"AAPL": AAPL_AUG_2020, "MSFT": fakes.empty_history()})
    got = []
    with pytest.raises(EmptyDataError) as info:
        for frame in src.fetch(FetchRequest(("AAPL", "MSFT"), start=dt.datetime(2020, 8, 3), end=dt.datetime(2020, 9, 1))):
            got.append(frame["symbol"][0])
    assert got == ["AAPL"]
    assert info.value.symbol == "MSFT"


def test_empty_answer_for_a_weekend_is_no_data_but_for_a_weekday_is_a_failure():
    src, _ = source({"AAPL": fakes.empty_history()})
    weekend = FetchRequest(("AAPL",), start=dt.datetime(2024, 6, 8), end=dt.datetime(2024, 6, 10))
    assert list(src.fetch(weekend)) == []
    with pytest.raises(EmptyDataError):
        list(src.fetch(FetchRequest(("AAPL",), start=dt.datetime(2024, 6, 7), end=dt.datetime(2024, 6, 10))))


@pytest.mark.parametrize(
    ("symbol", "interval", "start", "end", "expected"),
    [
        ("AAPL", "1d", dt.datetime(2024, 6, 8), dt.datetime(2024, 6, 10), False),  # Sat, Sun
        ("AAPL", "1d", dt.datetime(2024, 6, 8), dt.datetime(2024, 6, 10, 1), True),  # reaches Monday
        ("AAPL", "1d", dt.datetime(2024, 6, 7, 12), dt.datetime(2024, 6, 10), False),  # Friday's bar is before start
        ("BTC-USD", "1d", dt.datetime(2024, 6, 8), dt.datetime(2024, 6, 9), True),
        ("AAPL", "1wk", dt.datetime(2024, 6, 4), dt.datetime(2024, 6, 10), False),  # no Monday
        ("AAPL", "1mo", dt.datetime(2024, 6, 2), dt.datetime(2024, 7, 1), False),
        ("AAPL", "1mo", dt.datetime(2024, 6, 2), dt.datetime(2024, 7, 2), True),
        ("AAPL", "1h", dt.datetime(2024, 6, 3, 20), dt.datetime(2024, 6, 4, 6), False),  # overnight
        ("AAPL", "1h", dt.datetime(2024, 6, 3), dt.datetime(2024, 6, 4), True),  # a whole Monday
        ("AAPL", "1d", None, dt.datetime(2024, 6, 9), True),
    ],
)
def test_expects_bars(symbol, interval, start, end, expected):
    assert expects_bars(symbol, interval, start, end) is expected


# --------------------------------------------------------------------------- Yahoo's history limits


def test_one_minute_range_is_split_into_8_day_requests():
    src, fake = source({"AAPL": lambda start, end: fakes.history_frame(
        [(str(start.tz_convert(None) + pd.Timedelta(hours=14)), 1, 1, 1, 1, 10)], tz="America/New_York", intraday=True)})
    request = FetchRequest(("AAPL",), interval="1m", start=dt.datetime(2024, 5, 20), end=dt.datetime(2024, 6, 9))
    (bars,) = src.fetch(request)
    windows = [(c["start"], c["end"]) for c in fake.calls]
    assert windows == [
        (pd.Timestamp("2024-05-20", tz="UTC"), pd.Timestamp("2024-05-28", tz="UTC")),
        (pd.Timestamp("2024-05-28", tz="UTC"), pd.Timestamp("2024-06-05", tz="UTC")),
        (pd.Timestamp("2024-06-05", tz="UTC"), pd.Timestamp("2024-06-09", tz="UTC")),
    ]
    assert bars.height == 3 and bars["ts"].is_sorted()
    assert src.request_cost(request) == 3


@pytest.mark.parametrize(
    ("interval", "days_back", "limit"),
    [("1m", 31, 30), ("2m", 61, 60), ("5m", 61, 60), ("15m", 61, 60), ("30m", 61, 60), ("90m", 61, 60),
     ("60m", 731, 730), ("1h", 731, 730)],
)
def test_intraday_start_beyond_yahoo_lookback_is_moved_up_with_a_warning(interval, days_back, limit, caplog):
    src, fake = source({"AAPL": AAPL_AUG_2020})
    start = NOW.replace(tzinfo=None) - dt.timedelta(days=days_back)
    with caplog.at_level("WARNING", logger="alphatwin.sources.yahoo"):
        windows = src.windows(FetchRequest(("AAPL",), interval=interval, start=start))
    earliest = NOW.replace(tzinfo=None) - dt.timedelta(days=limit)
    assert windows[0][0] == earliest + dt.timedelta(minutes=5)
    assert f"last {limit} days only: fetching from" in caplog.text
    assert fake.calls == []


@pytest.mark.parametrize(("interval", "limit"), [("1m", 30), ("5m", 60), ("1h", 730)])
def test_a_range_wholly_beyond_yahoo_lookback_is_an_input_error_before_any_request(interval, limit):
    src, fake = source({"AAPL": AAPL_AUG_2020})
    end = NOW.replace(tzinfo=None) - dt.timedelta(days=limit + 1)
    with pytest.raises(InputError, match=f"last {limit} days"):
        list(src.fetch(FetchRequest(("AAPL",), interval=interval, start=end - dt.timedelta(days=3), end=end)))
    assert fake.calls == []


def test_intraday_within_lookback_and_daily_without_limit_are_accepted():
    src, _ = source({})
    assert src.windows(FetchRequest(("A",), interval="1h", start=dt.datetime(2022, 7, 1))) == [
        (dt.datetime(2022, 7, 1), NOW.replace(tzinfo=None))]
    assert src.windows(FetchRequest(("A",), interval="1d", start=dt.datetime(1980, 1, 1))) == [(dt.datetime(1980, 1, 1), None)]
    (start, end), = src.windows(FetchRequest(("A",), interval="5m"))  # open start -> the lookback edge
    assert end - start < dt.timedelta(days=60) and end == NOW.replace(tzinfo=None)


def test_no_symbols_is_an_input_error():
    src, _ = source({})
    with pytest.raises(InputError, match="at least one symbol"):
        list(src.fetch(FetchRequest(())))


# --------------------------------------------------------------------------- error mapping


def _http_error(status: int) -> requests.HTTPError:
    response = requests.Response()
    response.status_code = status
    return requests.HTTPError(f"{status} Error", response=response)


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (yfe.YFRateLimitError(), RateLimitedError),
        (yfe.YFTzMissingError("ZZZZ"), SymbolNotFoundError),
        (yfe.YFPricesMissingError("ZZZZ", "", yahoo_reason="No data found, symbol may be delisted"), SymbolNotFoundError),
        (yfe.YFPricesMissingError("AAPL", "(1d 2024-01-02 -> 2024-01-05)"), EmptyDataError),
        (yfe.YFPricesMissingError("AAPL", "", yahoo_reason="1m data not available for startTime=1. The requested range must be within the last 30 days."), InputError),
        (yfe.YFDataException("*** YAHOO! FINANCE IS CURRENTLY DOWN! ***"), TransientSourceError),
        (requests.ReadTimeout("read timed out"), TransientSourceError),
        (requests.ConnectionError("connection reset by peer"), TransientSourceError),
        (curl_exc.Timeout("curl: (28) Operation timed out"), TransientSourceError),
        (TimeoutError(), TransientSourceError),
        (_http_error(429), RateLimitedError),
        (_http_error(404), SymbolNotFoundError),
        (_http_error(502), TransientSourceError),
        (json.JSONDecodeError("Expecting value", "<html>", 0), TransientSourceError),
        (KeyError("chart"), TransientSourceError),
    ],
)
def test_yfinance_exceptions_map_onto_the_error_hierarchy(exc, expected):
    src, _ = source({"AAPL": exc})
    with pytest.raises(expected) as info:
        list(src.fetch(FetchRequest(("AAPL",), start=dt.datetime(2024, 1, 2), end=dt.datetime(2024, 1, 5))))
    if isinstance(info.value, SourceError):
        assert info.value.symbol == "AAPL" and info.value.source == "yahoo"
    assert info.value.__cause__ is exc


def test_client_http_error_is_not_transient():
    mapped = map_yfinance_error(_http_error(401), symbol="AAPL")
    assert type(mapped) is SourceError


def test_programming_errors_are_not_disguised_as_provider_failures():
    src, _ = source({"AAPL": RuntimeError("bug")})
    with pytest.raises(RuntimeError, match="bug"):
        list(src.fetch(FetchRequest(("AAPL",), start=dt.datetime(2024, 1, 2), end=dt.datetime(2024, 1, 5))))


@pytest.mark.parametrize(
    ("answer", "match"),
    [
        (AAPL_AUG_2020.drop(columns=["Close"]), "lacks column"),
        (AAPL_AUG_2020.reset_index(), "no datetime index"),
        ({"chart": None}, "not a frame"),
    ],
)
def test_malformed_frames_are_transient(answer, match):
    with pytest.raises(TransientSourceError, match=match):
        history_to_bars(answer, symbol="AAPL", interval="1d")


def test_intraday_frame_without_time_zone_is_malformed():
    frame = fakes.history_frame([("2024-06-03 13:30", 1, 1, 1, 1, 1)], tz="UTC", intraday=True)
    frame.index = frame.index.tz_localize(None)
    with pytest.raises(TransientSourceError, match="time zone"):
        history_to_bars(frame, symbol="AAPL", interval="5m")


# --------------------------------------------------------------------------- the real yfinance code path, offline


@pytest.fixture
def offline_yfinance(monkeypatch):
    """Keep yfinance's caches and its session singleton away from the user's machine."""
    monkeypatch.setattr(yfinance.cache, "get_tz_cache", lambda: yfinance.cache._TzCacheDummy())
    monkeypatch.setattr(yfinance.cache, "get_cookie_cache", lambda: yfinance.cache._CookieCacheDummy())
    monkeypatch.setattr(yfinance.data.SingletonMeta, "_instances", {})
    monkeypatch.setattr(yfinance.base, "_tz_info_fetch_ctr", 0)
    assert yfinance.config.debug.hide_exceptions is True


def real_source(http: fakes.FakeYahooHTTP) -> YahooSource:
    return YahooSource(history=functools.partial(yahoo_history, session=http), now=lambda: NOW, timeout=7.0)


pytestmark_yf = pytest.mark.filterwarnings("ignore::Warning:yfinance.*")


@pytestmark_yf
def test_real_yfinance_path_parses_a_recorded_daily_answer(offline_yfinance):
    http = fakes.FakeYahooHTTP((200, fakes.recorded("yahoo_chart_aapl_1d_2020-08-27.json")))
    (bars,) = real_source(http).fetch(FetchRequest(("AAPL",), start=dt.datetime(2020, 8, 27), end=dt.datetime(2020, 9, 3)))
    assert bars["ts"].to_list() == [utc(2020, 8, 27), utc(2020, 8, 28), utc(2020, 8, 31), utc(2020, 9, 1), utc(2020, 9, 2)]
    assert bars["split_ratio"].to_list() == [1.0, 1.0, 4.0, 1.0, 1.0]
    assert bars["close"].to_list()[2] == pytest.approx(129.0399932861328, rel=1e-12)
    assert bars["volume"].to_list()[0] == 155552400.0
    (call,) = http.chart_calls()
    # session dates become New York midnights: 2020-08-27 00:00 EDT .. 2020-09-03 00:00 EDT
    assert (call["period1"], call["period2"]) == (1598500800, 1599105600)
    assert call["events"] == "div,splits,capitalGains"
    assert yfinance.config.debug.hide_exceptions is True  # restored after the call


@pytestmark_yf
def test_real_yfinance_path_parses_a_recorded_intraday_fx_answer(offline_yfinance):
    http = fakes.FakeYahooHTTP((200, fakes.recorded("yahoo_chart_eurusd_1h_2024-06-03.json")))
    request = FetchRequest(("EURUSD=X",), interval="1h", start=dt.datetime(2024, 6, 3, 6), end=dt.datetime(2024, 6, 3, 12))
    (bars,) = real_source(http).fetch(request)
    assert bars["ts"].to_list() == [utc(2024, 6, 3, h) for h in (7, 8, 9, 10)]
    assert bars["close"].to_list() == [1.0858, 1.0870, 1.0867, 1.0877]


@pytestmark_yf
def test_fake_frames_match_real_yfinance_output(offline_yfinance):
    """Guards the fakes: same columns, dtypes, index name, zone and resolution as yfinance's."""
    cases = [
        ("AAPL", "1d", dt.date(2020, 8, 27), dt.date(2020, 9, 3), "yahoo_chart_aapl_1d_2020-08-27.json",
         fakes.history_frame([("2020-08-27", 1, 1, 1, 1, 1)], tz="America/New_York")),
        ("EURUSD=X", "1h", pd.Timestamp("2024-06-03 06:00", tz="UTC"), pd.Timestamp("2024-06-03 12:00", tz="UTC"),
         "yahoo_chart_eurusd_1h_2024-06-03.json",
         fakes.history_frame([("2024-06-03 07:00", 1, 1, 1, 1, 0)], tz="Europe/London", intraday=True)),
    ]
    for symbol, interval, start, end, recording, fake in cases:
        yfinance.data.SingletonMeta._instances.clear()
        real = yahoo_history(symbol, interval=interval, start=start, end=end, timeout=5,
                             session=fakes.FakeYahooHTTP((200, fakes.recorded(recording))))
        assert list(real.columns) == list(fake.columns)
        assert list(real.dtypes) == list(fake.dtypes)
        assert (real.index.name, str(real.index.dtype)) == (fake.index.name, str(fake.index.dtype))


@pytestmark_yf
def test_real_yfinance_path_unknown_symbol_is_not_found(offline_yfinance):
    http = fakes.FakeYahooHTTP((404, fakes.recorded("yahoo_chart_not_found.json")))
    with pytest.raises(SymbolNotFoundError) as info:
        list(real_source(http).fetch(FetchRequest(("ZZZZNOPE",), start=dt.datetime(2024, 1, 2), end=dt.datetime(2024, 1, 5))))
    assert info.value.symbol == "ZZZZNOPE"


@pytestmark_yf
def test_real_yfinance_path_429_is_rate_limited(offline_yfinance):
    http = fakes.FakeYahooHTTP((429, "Too Many Requests"))
    with pytest.raises(RateLimitedError):
        list(real_source(http).fetch(FetchRequest(("AAPL",), start=dt.datetime(2024, 1, 2), end=dt.datetime(2024, 1, 5))))
    assert yfinance.config.debug.hide_exceptions is True


@pytestmark_yf
@pytest.mark.parametrize("status", [500, 503])
def test_real_yfinance_path_5xx_html_is_transient(offline_yfinance, status):
    http = fakes.FakeYahooHTTP((status, "<html><body>Bad gateway</body></html>"))
    with pytest.raises(TransientSourceError) as info:
        list(real_source(http).fetch(FetchRequest(("AAPL",), start=dt.datetime(2024, 1, 2), end=dt.datetime(2024, 1, 5))))
    assert not isinstance(info.value, SymbolNotFoundError)


@pytestmark_yf
def test_real_yfinance_path_timeout_is_transient_not_possibly_delisted(offline_yfinance):
    """With yfinance's default hide_exceptions, a timeout during its time-zone probe becomes
    "possibly delisted; no timezone found"; the source must report a transient failure."""
    http = fakes.FakeYahooHTTP(requests.ConnectTimeout("connect timed out"))
    with pytest.raises(TransientSourceError) as info:
        list(real_source(http).fetch(FetchRequest(("AAPL",), start=dt.datetime(2024, 1, 2), end=dt.datetime(2024, 1, 5))))
    assert isinstance(info.value.__cause__, requests.ConnectTimeout)
    assert yfinance.config.debug.hide_exceptions is True
