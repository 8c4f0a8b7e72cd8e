"""The resilience layer around network sources: rate limit, retry with backoff, circuit breaker, fail-over.

Per symbol request, from the outside in::

    SourceChain        tries each source in the configured order until one serves the symbol
      ResilientSource  per source:
        retry          exponential backoff with full jitter on RateLimitedError / TransientSourceError
          breaker      fails fast with CircuitOpenError after ``fail_max`` straight failures
            limiter    waits for a token (one per provider request), shared by every source
              source   YahooSource / StooqSource: one symbol, one provider call

* :class:`RateLimiter`: pyrate-limiter's ``TokenBucket`` (GCRA) in a ``StateBucket`` whose state
  :class:`SQLiteStateStore` keeps in the warehouse's state folder, so separate CLI runs share one
  budget (2,000 requests/hour, burst 20 by default). pyrate-limiter's ``SQLiteBucket`` does not
  fit: it is a sliding-window log (no burst), reads the wall clock itself, and its ``Limiter``
  sleeps for real; tests need an injected clock and sleep.
* Retries: tenacity, with an injectable ``sleep`` and random source. Every attempt costs tokens.
* :class:`CircuitBreaker`: ~60 lines of our own with pybreaker's semantics (closed -> open after
  ``fail_max`` consecutive failures -> half-open after ``reset_timeout``, one trial call ->
  closed or open again). pybreaker 1.4 reads ``datetime.now(UTC)`` itself when opening and when
  checking the timeout, so its timing cannot follow an injected clock. ``SymbolNotFoundError``
  and ``InputError`` prove the provider answered, so they count as successes.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import random
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, NamedTuple

import polars as pl
from pyrate_limiter import AbstractClock, Duration, Rate, RateItem, StateAlgorithm, StateBucket, StateStore, TokenBucket
from pyrate_limiter.abstracts.algorithm import Decision, State
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from alphatwin.config import BreakerSettings, RetrySettings, Settings
from alphatwin.errors import (
    AlphaTwinError,
    CircuitOpenError,
    ConfigError,
    InputError,
    SourceError,
    SymbolNotFoundError,
    TransientSourceError,
)
from alphatwin.sources.base import FetchRequest, Source
from alphatwin.sources.stooq import StooqSource
from alphatwin.sources.yahoo import YahooSource

__all__ = [
    "RateLimiter",
    "SQLiteStateStore",
    "CircuitBreaker",
    "FullJitter",
    "ResilientSource",
    "SourceChain",
    "Outcome",
    "build_network_source",
    "NETWORK_SOURCES",
    "LIMITER_FILE",
]

log = logging.getLogger(__name__)

Clock = Callable[[], float]
Sleep = Callable[[float], None]

#: File (under the caller's state folder) holding the shared token bucket.
LIMITER_FILE = "rate_limit.sqlite"


# --------------------------------------------------------------------------- rate limiter


class _ClockAdapter(AbstractClock):
    """pyrate-limiter wants epoch milliseconds; we take a seconds clock (``time.time``)."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock

    def now(self) -> int:
        return int(math.floor(self._clock() * 1000))


class SQLiteStateStore(StateStore):
    """A pyrate-limiter state store in one SQLite row, atomic across processes.

    ``check`` runs in a ``BEGIN IMMEDIATE`` transaction, so two processes never both spend
    the same token. A state from the future (the wall clock stepped back) is clamped to at
    most one burst ahead, so a clock change never blocks for longer than a burst's refill.
    """

    is_async = False

    def __init__(self, path: Path, *, key: str = "network") -> None:
        self.path = Path(path)
        self.key = key
        self._lock = threading.RLock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._conn: sqlite3.Connection | None = sqlite3.connect(
                str(self.path), timeout=30.0, isolation_level=None, check_same_thread=False
            )
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.execute("CREATE TABLE IF NOT EXISTS bucket_state (key TEXT PRIMARY KEY, state TEXT NOT NULL)")
        except (OSError, sqlite3.Error) as exc:
            raise ConfigError(f"cannot open the rate-limit state file {self.path}: {exc}") from None

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            raise ConfigError(f"rate-limit state file {self.path} is closed")
        return self._conn

    def _load(self, algorithm: StateAlgorithm, rates: list[Rate]) -> State:
        row = self.conn.execute("SELECT state FROM bucket_state WHERE key = ?", (self.key,)).fetchone()
        values = row[0].split(",") if row is not None and row[0] else []
        if len(values) != len(rates):  # never used, or the configured rates changed: start afresh
            return algorithm.initial(rates)
        return algorithm.decode(values)

    @staticmethod
    def _clamp(state: State, rates: list[Rate], now: int) -> State:
        """GCRA keeps a theoretical arrival time (us) at most one burst ahead of ``now``."""
        caps = [now * 1000 + r.burst * max(1, math.ceil(r.interval * 1000 / r.limit)) for r in rates]
        return tuple(type(v)(min(v, cap)) for v, cap in zip(state, caps, strict=True))

    def _save(self, state: State) -> None:
        self.conn.execute(
            "INSERT INTO bucket_state (key, state) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET state = excluded.state",
            (self.key, ",".join(str(v) for v in state)),
        )

    def check(self, algorithm: StateAlgorithm, rates: list[Rate], now: int, weight: int) -> Decision:
        with self._lock:
            conn = self.conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                stored = self._load(algorithm, rates)
                state = self._clamp(stored, rates, now)
                new_state, decision = algorithm.step(rates, state, now, weight)
                if decision.allowed or state != stored:
                    self._save(new_state if decision.allowed else state)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            return decision

    def read(self, algorithm: StateAlgorithm, rates: list[Rate]) -> State:
        with self._lock:
            return self._load(algorithm, rates)

    def reset(self) -> None:
        with self._lock:
            self.conn.execute("DELETE FROM bucket_state WHERE key = ?", (self.key,))

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


class RateLimiter:
    """A token bucket: ``requests_per_hour`` sustained, ``burst`` at once; blocks until a token is free.

    Parameters
    ----------
    requests_per_hour, burst
        The budget (``Settings.rate_limit``).
    state_file
        SQLite file persisting the bucket so several processes share it; ``None`` keeps it in memory.
    clock, sleep
        Wall-clock seconds (``time.time``) and the sleep function; tests inject fakes.

    Examples
    --------
    >>> t = [0.0]
    >>> lim = RateLimiter(requests_per_hour=3600, burst=2, clock=lambda: t[0],
    ...                   sleep=lambda s: t.__setitem__(0, t[0] + s))
    >>> [lim.acquire() for _ in range(3)], t[0]
    ([0.0, 0.0, 1.0], 1.0)
    """

    def __init__(
        self,
        *,
        requests_per_hour: int = 2000,
        burst: int = 20,
        state_file: Path | None = None,
        clock: Clock = time.time,
        sleep: Sleep = time.sleep,
    ) -> None:
        if requests_per_hour < 1 or burst < 1:
            raise ConfigError(
                f"[sources.rate_limit] needs requests_per_hour >= 1 and burst >= 1, got {requests_per_hour} and {burst}"
            )
        self.rate = Rate(requests_per_hour, Duration.HOUR, burst=burst)
        self.store: StateStore | None = SQLiteStateStore(state_file) if state_file is not None else None
        self._bucket = StateBucket([self.rate], algorithm=TokenBucket(), store=self.store, clock=_ClockAdapter(clock))
        self._clock = clock
        self._sleep = sleep
        self.waited = 0.0
        self.acquired = 0

    @classmethod
    def from_settings(cls, settings: Settings, state_dir: Path | None, *, clock: Clock = time.time,
                      sleep: Sleep = time.sleep) -> RateLimiter:
        """The limiter ``settings.rate_limit`` describes, persisted in ``state_dir / LIMITER_FILE``."""
        rl = settings.rate_limit
        path = Path(state_dir) / LIMITER_FILE if state_dir is not None else None
        return cls(requests_per_hour=rl.requests_per_hour, burst=rl.burst, state_file=path, clock=clock, sleep=sleep)

    def acquire(self, tokens: int = 1, *, name: str = "request") -> float:
        """Take ``tokens`` tokens, sleeping as needed; return the seconds slept.

        ``acquired`` and ``waited`` count the tokens taken and seconds slept by this instance.
        """
        slept = 0.0
        for _ in range(tokens):
            while True:
                item = RateItem(name, self._bucket.now(), 1)
                decision = self._bucket.put_decision(item)
                if decision.allowed:
                    self.acquired += 1
                    break
                wait_ms = decision.retry_after_ms
                if wait_ms is None:
                    wait_ms = self._bucket.waiting(item)
                delay = max(int(wait_ms), 1) / 1000.0
                log.debug("rate limit: waiting %.3fs for a token", delay)
                self._sleep(delay)
                slept += delay
        self.waited += slept
        return slept

    def close(self) -> None:
        """Close the state file (if any)."""
        self._bucket.close()


# --------------------------------------------------------------------------- circuit breaker


class CircuitBreaker:
    """Closed -> open after ``fail_max`` consecutive failures -> half-open after ``reset_timeout``.

    Examples
    --------
    >>> t = [0.0]
    >>> cb = CircuitBreaker("demo", fail_max=1, reset_timeout=10, clock=lambda: t[0])
    >>> cb.record_failure(TimeoutError("x")); cb.state
    'open'
    >>> t[0] = 10.0; cb.state
    'half_open'
    """

    def __init__(
        self, name: str, *, fail_max: int = 5, reset_timeout: float = 60.0, clock: Clock = time.monotonic
    ) -> None:
        if fail_max < 1 or reset_timeout < 0:
            raise ConfigError(
                "[sources.circuit_breaker] needs fail_max >= 1 and reset_timeout >= 0, "
                f"got {fail_max} and {reset_timeout}"
            )
        self.name = name
        self.fail_max = fail_max
        self.reset_timeout = reset_timeout
        self._clock = clock
        self._lock = threading.Lock()
        self.failures = 0
        self.opened_at: float | None = None
        self.last_error = ""
        self._trial = False

    @classmethod
    def from_settings(cls, name: str, settings: BreakerSettings, *, clock: Clock = time.monotonic) -> CircuitBreaker:
        """The breaker ``Settings.breaker`` describes."""
        return cls(name, fail_max=settings.fail_max, reset_timeout=settings.reset_timeout, clock=clock)

    @property
    def state(self) -> str:
        """``"closed"``, ``"open"`` or ``"half_open"``."""
        if self.opened_at is None:
            return "closed"
        return "half_open" if self._clock() - self.opened_at >= self.reset_timeout else "open"

    def before_call(self, *, symbol: str | None = None) -> None:
        """Raise :class:`CircuitOpenError` unless a call may go through now."""
        with self._lock:
            state = self.state
            if state == "closed":
                return
            if state == "half_open" and not self._trial:
                self._trial = True  # exactly one trial call while half-open
                return
            assert self.opened_at is not None
            wait = max(0.0, self.opened_at + self.reset_timeout - self._clock())
            raise CircuitOpenError(
                f"{self.name}: circuit open after {self.failures} consecutive failures "
                f"(last: {self.last_error}); next try in {wait:.0f}s",
                source=self.name, symbol=symbol,
            )

    def record_success(self) -> None:
        """The provider answered: close the circuit and reset the count."""
        with self._lock:
            self.failures, self.opened_at, self._trial = 0, None, False

    def record_failure(self, exc: BaseException) -> None:
        """Count a failure; open (or re-open, from half-open) the circuit when due."""
        with self._lock:
            self.failures += 1
            self.last_error = str(exc) or type(exc).__name__
            if self._trial or self.failures >= self.fail_max:
                if self.opened_at is None or self._trial:
                    log.warning("%s: circuit opened after %d failure(s): %s", self.name, self.failures, self.last_error)
                self.opened_at = self._clock()
            self._trial = False

    def call(self, fn: Callable[[], Any], *, symbol: str | None = None) -> Any:
        """Run ``fn`` under the breaker."""
        self.before_call(symbol=symbol)
        try:
            result = fn()
        except (SymbolNotFoundError, InputError):
            self.record_success()
            raise
        except CircuitOpenError:
            raise
        except Exception as exc:
            self.record_failure(exc)
            raise
        self.record_success()
        return result


# --------------------------------------------------------------------------- retry


class FullJitter(wait_exponential):
    """tenacity wait: uniform in ``[0, min(max_delay, base * 2**(attempt-1))]`` ("full jitter").

    Same as :class:`tenacity.wait_random_exponential` but with an injectable random source.
    """

    def __init__(self, base: float, max_delay: float, rng: random.Random | None = None) -> None:
        super().__init__(multiplier=base, max=max_delay, exp_base=2, min=0)
        self._rng = rng if rng is not None else random.Random()

    def __call__(self, retry_state: Any) -> float:
        high = super().__call__(retry_state=retry_state)
        return self._rng.uniform(0, high)


def _log_retry(source: str, symbol: str) -> Callable[[Any], None]:
    def before_sleep(state: Any) -> None:
        exc = state.outcome.exception() if state.outcome is not None else None
        log.warning("%s: %s failed (attempt %d: %s); retrying in %.1fs",
                    source, symbol, state.attempt_number, exc, state.upcoming_sleep)
    return before_sleep


# --------------------------------------------------------------------------- resilient source


class ResilientSource:
    """Wrap a network source with limiter, retries and breaker, one symbol request at a time.

    Same protocol and ``name`` as the wrapped source. ``fetch`` yields each symbol's frames
    and stops at the first symbol that still fails after the retries, raising its error.
    A source may define ``request_cost(request) -> int`` (provider calls for the request);
    that many tokens are taken per attempt, else one.
    """

    def __init__(
        self,
        source: Source,
        *,
        limiter: RateLimiter | None = None,
        retry: RetrySettings | None = None,
        breaker: CircuitBreaker | None = None,
        sleep: Sleep = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.source = source
        self.name = source.name
        self.network = source.network
        self.limiter = limiter
        self.retry = retry if retry is not None else RetrySettings()
        self.breaker = breaker if breaker is not None else CircuitBreaker(source.name)
        self._sleep = sleep
        self._rng = rng
        self.attempts: dict[str, int] = {}

    def fetch(self, request: FetchRequest) -> Iterator[pl.DataFrame]:
        """Yield the frames of every symbol in ``request``; see the class docstring."""
        if not request.symbols:
            raise InputError(f"{self.name} needs at least one symbol")
        for symbol in request.symbols:
            yield from self.fetch_symbol(replace(request, symbols=(symbol,)))

    def fetch_symbol(self, request: FetchRequest) -> list[pl.DataFrame]:
        """All frames for a one-symbol ``request``, after limiter, breaker and retries."""
        (symbol,) = request.symbols
        cost_fn = getattr(self.source, "request_cost", None)
        cost = int(cost_fn(request)) if callable(cost_fn) else 1
        retrying = Retrying(
            stop=stop_after_attempt(max(1, self.retry.max_attempts)),
            wait=FullJitter(self.retry.base_delay, self.retry.max_delay, self._rng),
            retry=retry_if_exception_type(TransientSourceError),
            sleep=self._sleep,
            reraise=True,
            before_sleep=_log_retry(self.name, symbol),
        )
        self.attempts[symbol] = 0
        return retrying(self._attempt, request, symbol, cost)

    def _attempt(self, request: FetchRequest, symbol: str, cost: int) -> list[pl.DataFrame]:
        self.attempts[symbol] += 1

        def call() -> list[pl.DataFrame]:
            if self.limiter is not None:
                self.limiter.acquire(cost, name=self.name)
            return list(self.source.fetch(request))

        return self.breaker.call(call, symbol=symbol)


# --------------------------------------------------------------------------- fail-over chain


class Outcome(NamedTuple):
    """One source's answer for one symbol: ``status`` is served, failed, not_found,
    circuit_open or unsupported; ``message`` the reason (or the row count)."""

    source: str
    status: str
    message: str


def _status(exc: AlphaTwinError) -> str:
    if isinstance(exc, SymbolNotFoundError):
        return "not_found"
    if isinstance(exc, CircuitOpenError):
        return "circuit_open"
    if isinstance(exc, InputError):
        return "unsupported"
    return "failed"


@dataclass
class _Failure:
    errors: list[tuple[str, AlphaTwinError]]

    def error(self, symbol: str) -> AlphaTwinError:
        reasons = "; ".join(f"{name}: {exc}" for name, exc in self.errors)
        if len(self.errors) == 1:
            return self.errors[0][1]
        if all(isinstance(e, InputError) for _, e in self.errors):
            return InputError(f"no source can serve {symbol}: {reasons}")
        return SourceError(f"every source failed for {symbol}: {reasons}", source="+".join(n for n, _ in self.errors),
                           symbol=symbol)


class SourceChain:
    """Fail-over across sources, per symbol, in the given order.

    For each symbol the sources are tried in turn until one serves it; the frames are
    yielded as they come. :attr:`outcomes` records every source's answer per symbol,
    :attr:`served_by` which source delivered it. A ``SymbolNotFoundError`` ends the chain for
    that symbol (the provider answered; there is nothing to fail over from). When no source
    serves a symbol, ``fetch`` raises (with ``symbol`` set): the one source's own error,
    :class:`InputError` when every source refused the request as such, or a
    :class:`SourceError` naming every source's reason; the caller may then ask again
    for the remaining symbols. Outcomes accumulate across calls.
    """

    def __init__(self, sources: Sequence[Source]) -> None:
        if not sources:
            raise ConfigError("a source chain needs at least one source")
        self.sources = list(sources)
        self.name = "+".join(s.name for s in self.sources)
        self.network = any(s.network for s in self.sources)
        self.outcomes: dict[str, list[Outcome]] = {}
        self.served_by: dict[str, str] = {}

    def fetch(self, request: FetchRequest) -> Iterator[pl.DataFrame]:
        """Yield every symbol's frames, each from the first source that serves it."""
        for _, frame in self.fetch_tagged(request):
            yield frame

    def fetch_tagged(self, request: FetchRequest) -> Iterator[tuple[str, pl.DataFrame]]:
        """Like :meth:`fetch`, yielding ``(source name, frame)`` pairs for provenance."""
        if not request.symbols:
            raise InputError(f"{self.name} needs at least one symbol")
        for symbol in request.symbols:
            name, frames = self._serve(replace(request, symbols=(symbol,)), symbol)
            for frame in frames:
                yield name, frame

    def _serve(self, request: FetchRequest, symbol: str) -> tuple[str, list[pl.DataFrame]]:
        record = self.outcomes.setdefault(symbol, [])
        failure = _Failure([])
        for source in self.sources:
            try:
                frames = list(source.fetch(request))
            except (SourceError, InputError) as exc:
                record.append(Outcome(source.name, _status(exc), str(exc)))
                failure.errors.append((source.name, exc))
                if isinstance(exc, SymbolNotFoundError):
                    break
                continue
            rows = sum(f.height for f in frames)
            record.append(Outcome(source.name, "served", f"{rows} rows"))
            self.served_by[symbol] = source.name
            return source.name, frames
        raise failure.error(symbol)


# --------------------------------------------------------------------------- factory

NETWORK_SOURCES = ("yahoo", "stooq")


def _make_source(name: str, settings: Settings, *, http: Any, yf_download: Any, clock: Clock | None) -> Source:
    if name == "yahoo":
        now = (lambda: dt.datetime.fromtimestamp(clock(), dt.UTC)) if clock is not None else None
        return YahooSource(history=yf_download, timeout=settings.http_timeout, now=now)
    return StooqSource(session=http, timeout=settings.http_timeout)


def build_network_source(
    names: Sequence[str],
    settings: Settings,
    state_dir: Path,
    *,
    http: Any = None,
    yf_download: Any = None,
    clock: Clock | None = None,
    sleep: Sleep | None = None,
    rng: random.Random | None = None,
) -> SourceChain:
    """Build the resilient source (chain) the CLI fetches from.

    Parameters
    ----------
    names
        Source names in fail-over order, e.g. ``["yahoo", "stooq"]`` or ``["stooq"]``.
    settings
        Rate limit, retry, breaker and HTTP timeout.
    state_dir
        Folder for the persisted rate-limit bucket (shared by all sources and runs).
    http
        A ``requests.Session`` for Stooq (tests pass a fake).
    yf_download
        The Yahoo network call (:class:`~alphatwin.sources.yahoo.HistoryFn`, per symbol);
        defaults to the real yfinance call.
    clock, sleep, rng
        Wall-clock seconds, sleep and random source, injectable for tests.

    Returns a :class:`SourceChain` (named like its only source when there is one).
    """
    names = [n.strip().lower() for n in names]
    if not names:
        raise ConfigError("no network source named; expected some of: " + ", ".join(NETWORK_SOURCES))
    unknown = [n for n in names if n not in NETWORK_SOURCES]
    if unknown or len(set(names)) != len(names):
        raise ConfigError(
            f"source chain must name distinct sources among {', '.join(NETWORK_SOURCES)}, got {', '.join(names)}"
        )
    wall = clock if clock is not None else time.time
    pause = sleep if sleep is not None else time.sleep
    limiter = RateLimiter.from_settings(settings, state_dir, clock=wall, sleep=pause)
    members: list[Source] = []
    for name in names:
        source = _make_source(name, settings, http=http, yf_download=yf_download, clock=clock)
        breaker = CircuitBreaker.from_settings(name, settings.breaker, clock=clock or time.monotonic)
        members.append(
            ResilientSource(source, limiter=limiter, retry=settings.retry, breaker=breaker, sleep=pause, rng=rng)
        )
    return SourceChain(members)
