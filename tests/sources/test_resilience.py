"""The resilience layer: token bucket, backoff, circuit breaker, fail-over chain and factory.

Clocks and sleeps are fakes (``FakeClock.sleep`` advances the clock), so nothing really waits.
Sources are the real YahooSource / StooqSource over faked network boundaries, or tiny scripted
sources where only the wrapper's behaviour matters.
"""

from __future__ import annotations

import datetime as dt
import random

import polars as pl
import pytest
import requests
from yfinance import exceptions as yfe

from alphatwin.config import BreakerSettings, RateLimitSettings, RetrySettings, Settings
from alphatwin.errors import (
    CircuitOpenError,
    ConfigError,
    EmptyDataError,
    InputError,
    RateLimitedError,
    SourceError,
    SymbolNotFoundError,
    TransientSourceError,
)
from alphatwin.sources.base import FetchRequest, conform
from alphatwin.sources.resilience import (
    LIMITER_FILE,
    CircuitBreaker,
    Outcome,
    RateLimiter,
    ResilientSource,
    SourceChain,
    build_network_source,
)
from alphatwin.sources.stooq import StooqSource
from alphatwin.sources.yahoo import YahooSource


from tests.sources.fixtures import fakes  # noqa: E402
REQ = FetchRequest(("AAPL",), start=dt.datetime(2024, 1, 2), end=dt.datetime(2024, 1, 13))
STOOQ_JAN = fakes.text("stooq_aapl_d_2024-01.csv")


def bars(symbol: str = "AAPL", n: int = 2) -> pl.DataFrame:
    return conform(pl.DataFrame({
        "symbol": [symbol] * n, "interval": ["1d"] * n,
        "ts": [dt.datetime(2024, 1, 2) + dt.timedelta(days=i) for i in range(n)],
        "open": [1.0] * n, "high": [1.0] * n, "low": [1.0] * n, "close": [1.0] * n,
    }))


class Scripted:
    """A source that answers each call from a script (an exception or a list of frames)."""

    network = True

    def __init__(self, name: str, *script, per_symbol: dict | None = None) -> None:
        self.name = name
        self.script = list(script)
        self.per_symbol = per_symbol or {}
        self.calls: list[str] = []

    def fetch(self, request):
        (symbol,) = request.symbols
        self.calls.append(symbol)
        queue = self.per_symbol.get(symbol, self.script)
        answer = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(answer, BaseException):
            raise answer
        return iter(answer)


class UpperBound(random.Random):
    """Full jitter picks uniform(0, cap); this 'random' source always picks the cap."""

    def uniform(self, a, b):
        return b


def resilient(src, clock, *, attempts=5, base=1.0, max_delay=60.0, fail_max=5, reset=60.0, limiter=None, rng=None):
    return ResilientSource(
        src, limiter=limiter, retry=RetrySettings(max_attempts=attempts, base_delay=base, max_delay=max_delay),
        breaker=CircuitBreaker(src.name, fail_max=fail_max, reset_timeout=reset, clock=clock),
        sleep=clock.sleep, rng=rng if rng is not None else UpperBound(),
    )


# --------------------------------------------------------------------------- rate limiter


def test_limiter_enforces_2000_per_hour_after_a_burst_of_20(tmp_path):
    clock = fakes.FakeClock()
    limiter = RateLimiter(requests_per_hour=2000, burst=20, state_file=tmp_path / LIMITER_FILE,
                          clock=clock, sleep=clock.sleep)
    start = clock.t
    for _ in range(20):
        assert limiter.acquire() == 0.0  # the burst goes through at once
    assert clock.t == start
    assert limiter.acquire() == pytest.approx(1.8, abs=0.002)  # then one token per 3600/2000 s
    for _ in range(1999):
        limiter.acquire()
    assert clock.t - start == pytest.approx(3600.0, abs=0.01)  # 2,000 + burst requests take an hour
    assert max(clock.sleeps) <= 1.8 + 0.002
    limiter.acquire()
    assert clock.t - start == pytest.approx(3601.8, abs=0.01)


def test_limiter_refills_while_idle_but_never_beyond_the_burst():
    clock = fakes.FakeClock()
    limiter = RateLimiter(requests_per_hour=3600, burst=5, clock=clock, sleep=clock.sleep)
    limiter.acquire(5)
    clock.t += 3600  # an idle hour refills at most `burst` tokens
    assert limiter.acquire(5) == 0.0
    assert limiter.acquire() == pytest.approx(1.0, abs=0.002)


def test_limiter_state_persists_across_instances_and_processes_share_it(tmp_path):
    clock = fakes.FakeClock()
    first = RateLimiter(requests_per_hour=3600, burst=3, state_file=tmp_path / LIMITER_FILE, clock=clock, sleep=clock.sleep)
    first.acquire(3)
    first.close()
    second = RateLimiter(requests_per_hour=3600, burst=3, state_file=tmp_path / LIMITER_FILE, clock=clock, sleep=clock.sleep)
    assert second.acquire() == pytest.approx(1.0, abs=0.002)  # the budget spent by the first run counts
    third = RateLimiter(requests_per_hour=3600, burst=3, clock=clock, sleep=clock.sleep)  # not persisted
    assert third.acquire() == 0.0
    # two live instances on one file (two CLI processes) draw from one bucket
    other = RateLimiter(requests_per_hour=3600, burst=3, state_file=tmp_path / LIMITER_FILE, clock=clock, sleep=clock.sleep)
    assert other.acquire() == pytest.approx(1.0, abs=0.002)
    assert second.acquire() == pytest.approx(1.0, abs=0.002)


def test_limiter_wall_clock_stepping_back_waits_at_most_one_burst(tmp_path):
    clock = fakes.FakeClock()
    limiter = RateLimiter(requests_per_hour=3600, burst=2, state_file=tmp_path / LIMITER_FILE, clock=clock, sleep=clock.sleep)
    limiter.acquire(2)
    clock.t -= 7200  # NTP step: two hours back
    assert limiter.acquire() == pytest.approx(1.0, abs=0.002)  # not 7,201 s
    assert limiter.acquire() == pytest.approx(1.0, abs=0.002)


def test_limiter_rejects_nonsense_settings(tmp_path):
    with pytest.raises(ConfigError, match="requests_per_hour"):
        RateLimiter(requests_per_hour=0)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ConfigError, match="rate-limit state file"):
        RateLimiter(state_file=blocker / "sub" / LIMITER_FILE)


# --------------------------------------------------------------------------- retry with backoff


def test_429s_then_success_backs_off_exponentially_and_is_bounded():
    clock = fakes.FakeClock()
    limited = RateLimitedError("429", source="yahoo", symbol="AAPL")
    src = Scripted("yahoo", limited, limited, limited, limited, limited, limited, [bars()])
    wrapped = resilient(src, clock, attempts=8, base=1.0, max_delay=5.0, fail_max=10)
    frames = list(wrapped.fetch(REQ))
    assert frames[0].height == 2
    assert len(src.calls) == 7 and wrapped.attempts["AAPL"] == 7
    assert clock.sleeps == [1.0, 2.0, 4.0, 5.0, 5.0, 5.0]  # caps of 1 * 2**k, bounded by max_delay


def test_backoff_is_fully_jittered_within_the_growing_window():
    clock = fakes.FakeClock()
    src = Scripted("yahoo", TransientSourceError("503"))
    wrapped = resilient(src, clock, attempts=7, base=0.5, max_delay=8.0, fail_max=100, rng=random.Random(7))
    with pytest.raises(TransientSourceError, match="503"):
        list(wrapped.fetch(REQ))
    caps = [min(8.0, 0.5 * 2**k) for k in range(6)]
    assert len(clock.sleeps) == 6
    assert all(0.0 <= s <= cap for s, cap in zip(clock.sleeps, caps, strict=True))
    assert len(set(clock.sleeps)) == 6 and clock.sleeps != caps  # jittered, not the bare exponential


@pytest.mark.parametrize(
    "failure",
    [TransientSourceError("yahoo request failed (ReadTimeout)"), EmptyDataError("empty frame"),
     TransientSourceError("HTTP 502")],
)
def test_transient_failures_are_retried_then_succeed(failure):
    clock = fakes.FakeClock()
    src = Scripted("yahoo", failure, [bars()])
    assert len(list(resilient(src, clock).fetch(REQ))) == 1
    assert len(src.calls) == 2 and len(clock.sleeps) == 1


def test_retries_stop_after_max_attempts_and_raise_the_last_error():
    clock = fakes.FakeClock()
    src = Scripted("stooq", TransientSourceError("HTTP 503", source="stooq", symbol="AAPL"))
    with pytest.raises(TransientSourceError, match="HTTP 503") as info:
        list(resilient(src, clock, attempts=3, fail_max=10).fetch(REQ))
    assert len(src.calls) == 3 and info.value.symbol == "AAPL"


@pytest.mark.parametrize("failure", [SymbolNotFoundError("no such symbol"), InputError("bad range")])
def test_unknown_symbols_and_bad_input_are_not_retried(failure):
    clock = fakes.FakeClock()
    src = Scripted("yahoo", failure)
    with pytest.raises(type(failure)):
        list(resilient(src, clock).fetch(REQ))
    assert len(src.calls) == 1 and clock.sleeps == []


def test_real_yahoo_unknown_symbol_is_tried_once():
    calls = []

    def history(symbol, **kwargs):
        calls.append(symbol)
        raise yfe.YFTzMissingError(symbol)

    clock = fakes.FakeClock()
    with pytest.raises(SymbolNotFoundError):
        list(resilient(YahooSource(history=history), clock).fetch(FetchRequest(("ZZZZ",), start=dt.datetime(2024, 1, 2))))
    assert calls == ["ZZZZ"] and clock.sleeps == []


def test_each_attempt_takes_a_token_per_provider_request():
    clock = fakes.FakeClock()
    limiter = RateLimiter(requests_per_hour=3600, burst=100, clock=clock, sleep=clock.sleep)
    yahoo = YahooSource(history=lambda *a, **k: (_ for _ in ()).throw(requests.ReadTimeout("slow")),
                        now=lambda: dt.datetime(2024, 6, 10, tzinfo=dt.UTC))
    one_minute = FetchRequest(("AAPL",), interval="1m", start=dt.datetime(2024, 5, 20), end=dt.datetime(2024, 6, 9))
    with pytest.raises(TransientSourceError):
        list(resilient(yahoo, clock, attempts=2, fail_max=10, limiter=limiter).fetch(one_minute))
    # 3 windows of <= 8 days: 3 tokens are taken up front for each of the 2 attempts
    assert limiter.acquired == 6


# --------------------------------------------------------------------------- circuit breaker


def test_breaker_opens_after_fail_max_fails_fast_then_half_opens():
    clock = fakes.FakeClock()
    src = Scripted("yahoo", TransientSourceError("HTTP 503"))
    wrapped = resilient(src, clock, attempts=1, fail_max=3, reset=60.0)
    for _ in range(3):
        with pytest.raises(TransientSourceError):
            list(wrapped.fetch(REQ))
    assert wrapped.breaker.state == "open" and len(src.calls) == 3
    with pytest.raises(CircuitOpenError, match="circuit open after 3 consecutive failures") as info:
        list(wrapped.fetch(REQ))
    assert len(src.calls) == 3  # failed fast: the provider was not called
    assert (info.value.source, info.value.symbol) == ("yahoo", "AAPL")
    clock.t += 59.0
    with pytest.raises(CircuitOpenError):
        list(wrapped.fetch(REQ))
    clock.t += 1.0
    assert wrapped.breaker.state == "half_open"
    src.script = [[bars()]]
    assert len(list(wrapped.fetch(REQ))) == 1  # the trial call succeeds ...
    assert wrapped.breaker.state == "closed" and wrapped.breaker.failures == 0  # ... and closes the circuit


def test_failed_trial_call_reopens_the_circuit_at_once():
    clock = fakes.FakeClock()
    src = Scripted("yahoo", TransientSourceError("HTTP 503"))
    wrapped = resilient(src, clock, attempts=1, fail_max=2, reset=30.0)
    for _ in range(2):
        with pytest.raises(TransientSourceError):
            list(wrapped.fetch(REQ))
    clock.t += 30.0
    with pytest.raises(TransientSourceError):  # the one trial call goes through and fails
        list(wrapped.fetch(REQ))
    assert wrapped.breaker.state == "open" and len(src.calls) == 3
    with pytest.raises(CircuitOpenError):
        list(wrapped.fetch(REQ))


def test_open_circuit_stops_the_retries():
    clock = fakes.FakeClock()
    src = Scripted("yahoo", RateLimitedError("429"))
    with pytest.raises(CircuitOpenError):
        list(resilient(src, clock, attempts=5, fail_max=2).fetch(REQ))
    assert len(src.calls) == 2 and len(clock.sleeps) == 2


def test_not_found_answers_prove_the_provider_is_up():
    clock = fakes.FakeClock()
    src = Scripted("yahoo", TransientSourceError("503"), TransientSourceError("503"), SymbolNotFoundError("nope"),
                   TransientSourceError("503"))
    wrapped = resilient(src, clock, attempts=1, fail_max=3)
    for expected in (TransientSourceError, TransientSourceError, SymbolNotFoundError, TransientSourceError):
        with pytest.raises(expected):
            list(wrapped.fetch(REQ))
    assert wrapped.breaker.state == "closed" and wrapped.breaker.failures == 1


# --------------------------------------------------------------------------- fail-over chain


def yahoo_failing(exc: BaseException) -> YahooSource:
    def history(symbol, **kwargs):
        raise exc
    return YahooSource(history=history)


def test_failover_from_yahoo_to_stooq_records_who_served_what():
    clock = fakes.FakeClock()
    yahoo = resilient(yahoo_failing(requests.ReadTimeout("read timed out")), clock, attempts=2)
    stooq = resilient(StooqSource(session=fakes.FakeHTTP((200, STOOQ_JAN))), clock)
    chain = SourceChain([yahoo, stooq])
    tagged = list(chain.fetch_tagged(REQ))
    assert [(name, frame.height) for name, frame in tagged] == [("stooq", 9)]
    assert chain.served_by == {"AAPL": "stooq"}
    (y, s) = chain.outcomes["AAPL"]
    assert (y.source, y.status) == ("yahoo", "failed") and "ReadTimeout" in y.message
    assert s == Outcome("stooq", "served", "9 rows")
    assert chain.name == "yahoo+stooq"


def test_all_sources_down_raises_a_source_error_naming_every_reason():
    clock = fakes.FakeClock()
    yahoo = resilient(yahoo_failing(yfe.YFRateLimitError()), clock, attempts=2)
    stooq = resilient(StooqSource(session=fakes.FakeHTTP((503, "Service Unavailable"))), clock, attempts=2)
    chain = SourceChain([yahoo, stooq])
    with pytest.raises(SourceError) as info:
        list(chain.fetch(REQ))
    message = str(info.value)
    assert "every source failed for AAPL" in message
    assert "yahoo: yahoo rate-limited" in message and "stooq: stooq answered HTTP 503" in message
    assert info.value.symbol == "AAPL"
    assert [o.status for o in chain.outcomes["AAPL"]] == ["failed", "failed"]
    assert "AAPL" not in chain.served_by


def test_symbol_not_found_does_not_fail_over():
    clock = fakes.FakeClock()
    http = fakes.FakeHTTP((200, STOOQ_JAN))
    chain = SourceChain([resilient(yahoo_failing(yfe.YFTzMissingError("ZZZZ")), clock),
                         resilient(StooqSource(session=http), clock)])
    with pytest.raises(SymbolNotFoundError):
        list(chain.fetch(FetchRequest(("ZZZZ",), start=dt.datetime(2024, 1, 2))))
    assert http.calls == []
    assert [o.status for o in chain.outcomes["ZZZZ"]] == ["not_found"]


def test_partial_batch_serves_the_others_and_names_the_failed_symbol():
    clock = fakes.FakeClock()
    yahoo = Scripted("yahoo", [bars()], per_symbol={"MSFT": [TransientSourceError("empty frame for MSFT")]})
    stooq = Scripted("stooq", [bars("X")], per_symbol={"MSFT": [SymbolNotFoundError("No data")]})
    chain = SourceChain([resilient(yahoo, clock, attempts=1), resilient(stooq, clock, attempts=1)])
    served = []
    with pytest.raises(SourceError) as info:
        for frame in chain.fetch(FetchRequest(("AAPL", "MSFT", "SPY"), start=dt.datetime(2024, 1, 2))):
            served.append(frame["symbol"][0])
    assert served == ["AAPL"] and info.value.symbol == "MSFT"
    assert "yahoo: empty frame for MSFT" in str(info.value) and "stooq: No data" in str(info.value)
    # the caller asks again without the failed symbol
    assert [f["symbol"][0] for f in chain.fetch(FetchRequest(("SPY",), start=dt.datetime(2024, 1, 2)))] == ["AAPL"]
    assert chain.served_by == {"AAPL": "yahoo", "SPY": "yahoo"}


def test_open_circuit_sends_later_symbols_straight_to_the_next_source():
    clock = fakes.FakeClock()
    yahoo = Scripted("yahoo", TransientSourceError("HTTP 503"))
    stooq = Scripted("stooq", [bars()])
    chain = SourceChain([resilient(yahoo, clock, attempts=2, fail_max=2), resilient(stooq, clock)])
    frames = list(chain.fetch(FetchRequest(("AAPL", "MSFT", "SPY"), start=dt.datetime(2024, 1, 2))))
    assert len(frames) == 3 and len(yahoo.calls) == 2  # AAPL opened the circuit; MSFT, SPY skipped yahoo
    assert [o.status for o in chain.outcomes["MSFT"]] == ["circuit_open", "served"]


def test_every_source_refusing_the_request_is_an_input_error():
    clock = fakes.FakeClock()
    yahoo = YahooSource(history=lambda *a, **k: None, now=lambda: dt.datetime(2024, 6, 10, tzinfo=dt.UTC))
    chain = SourceChain([resilient(yahoo, clock), resilient(StooqSource(session=fakes.FakeHTTP((200, ""))), clock)])
    with pytest.raises(InputError, match="no source can serve AAPL") as info:
        list(chain.fetch(FetchRequest(("AAPL",), interval="1m", start=dt.datetime(2024, 1, 2), end=dt.datetime(2024, 1, 9))))
    assert "last 30 days" in str(info.value) and "stooq serves only" in str(info.value)
    assert [o.status for o in chain.outcomes["AAPL"]] == ["unsupported", "unsupported"]


def test_empty_chain_is_a_config_error():
    with pytest.raises(ConfigError):
        SourceChain([])


# --------------------------------------------------------------------------- factory


def settings(**retry) -> Settings:
    return Settings(rate_limit=RateLimitSettings(requests_per_hour=2000, burst=20),
                    retry=RetrySettings(**({"max_attempts": 3, "base_delay": 1.0, "max_delay": 10.0} | retry)),
                    breaker=BreakerSettings(fail_max=5, reset_timeout=60.0), http_timeout=9.0)


def test_factory_builds_a_resilient_chain_sharing_one_persisted_limiter(tmp_path):
    clock = fakes.FakeClock()
    answers = iter([yfe.YFRateLimitError(), yfe.YFRateLimitError(), yfe.YFRateLimitError()])

    def yf_download(symbol, *, interval, start, end, timeout):
        assert timeout == 9.0
        raise next(answers)

    http = fakes.FakeHTTP((200, STOOQ_JAN))
    chain = build_network_source(["yahoo", "stooq"], settings(), tmp_path, http=http, yf_download=yf_download,
                                 clock=clock, sleep=clock.sleep, rng=UpperBound())
    assert isinstance(chain, SourceChain) and chain.name == "yahoo+stooq"
    (frame,) = chain.fetch(REQ)
    assert frame.height == 9 and chain.served_by == {"AAPL": "stooq"}
    assert clock.sleeps == [1.0, 2.0]  # yahoo: 3 attempts, backoff 1 s then 2 s
    assert http.calls[0]["timeout"] == 9.0
    assert (tmp_path / LIMITER_FILE).exists()
    limiters = {id(member.limiter) for member in chain.sources}
    assert len(limiters) == 1  # one budget for every network source
    assert chain.sources[0].limiter.acquired == 4  # 3 yahoo attempts + 1 stooq request


def test_factory_single_source_keeps_its_name(tmp_path):
    chain = build_network_source(["stooq"], settings(), tmp_path, http=fakes.FakeHTTP((200, STOOQ_JAN)))
    assert chain.name == "stooq" and chain.network is True
    assert next(iter(chain.fetch(REQ))).height == 9


@pytest.mark.parametrize("names", [[], ["bloomberg"], ["yahoo", "yahoo"]])
def test_factory_rejects_bad_chains(tmp_path, names):
    with pytest.raises(ConfigError, match="source"):
        build_network_source(names, settings(), tmp_path)
