"""How many bars make a year: the annualization factor of a bar interval on a trading calendar.

A year has ``sessions`` sessions (trading days) of the calendar, and a session of ``minutes``
trading minutes holds ``ceil(minutes / interval_minutes)`` intraday bars (the last bar of a
session may be short, as Yahoo's hourly bars 9:30 ... 15:30 on the NYSE are):

===============  ==================  ============================================
calendar         sessions per year   minutes per session
===============  ==================  ============================================
``24/7``         365                 1440 (crypto)
``weekdays``     260 (5 x 52)        1440 (the FX week; AlphaTwin's synthetic data)
an exchange MIC  252                 its regular hours, minus a lunch break, from
                                     ``exchange_calendars`` (XNYS 390, XLON 510 ...)
===============  ==================  ============================================

Intervals of a day or longer do not depend on the session length: ``1d`` = sessions,
``5d`` = sessions / 5, ``1wk`` = 52, ``1mo`` = 12, ``3mo`` = 4. See ``docs/metrics.md``.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import warnings
from collections.abc import Iterable

from alphatwin.errors import ConfigError, InputError

__all__ = [
    "periods_per_year",
    "combine_periods",
    "sessions_per_year",
    "session_minutes",
    "INTRADAY_MINUTES",
    "PER_YEAR",
]

#: Intraday intervals (Yahoo's spelling) and their length in minutes.
INTRADAY_MINUTES: dict[str, int] = {
    "1m": 1, "2m": 2, "5m": 5, "15m": 15, "30m": 30, "60m": 60, "90m": 90, "1h": 60,
}
#: Bars per year of intervals that do not depend on the calendar.
PER_YEAR: dict[str, float] = {"1wk": 52.0, "1mo": 12.0, "3mo": 4.0}
_SESSIONS_PER_BAR = {"1d": 1, "5d": 5}

_BUILTIN_SESSIONS = {"24/7": 365.0, "weekdays": 260.0}
_BUILTIN_MINUTES = {"24/7": 1440, "weekdays": 1440}
_EXCHANGE_SESSIONS = 252.0


def _intervals() -> tuple[str, ...]:
    return (*INTRADAY_MINUTES, *_SESSIONS_PER_BAR, *PER_YEAR)


def _check_calendar(calendar: str) -> None:
    from alphatwin.transforms.calendars import check_calendar

    try:
        check_calendar(calendar)
    except ConfigError as exc:
        raise InputError(str(exc)) from None


def sessions_per_year(calendar: str) -> float:
    """Sessions (trading days) in a year of ``calendar``: 365, 260, or 252 for any exchange.

    Raises
    ------
    InputError
        ``calendar`` is neither ``24/7``, ``weekdays`` nor an exchange ``exchange_calendars`` knows.
    """
    if calendar in _BUILTIN_SESSIONS:
        return _BUILTIN_SESSIONS[calendar]
    _check_calendar(calendar)
    return _EXCHANGE_SESSIONS


def session_minutes(calendar: str) -> int:
    """Trading minutes of a regular session of ``calendar``.

    1440 for ``24/7`` and ``weekdays``; for an exchange, its current regular open to close
    (``exchange_calendars``' latest ``open_times`` / ``close_times`` and day offsets) minus its
    current lunch break, if any.

    Examples
    --------
    >>> session_minutes("XNYS"), session_minutes("24/7")
    (390, 1440)
    """
    if calendar in _BUILTIN_MINUTES:
        return _BUILTIN_MINUTES[calendar]
    _check_calendar(calendar)
    return _exchange_minutes(calendar)


@functools.lru_cache(maxsize=None)
def _exchange_minutes(calendar: str) -> int:
    import exchange_calendars as xc

    with warnings.catch_warnings():  # pandas deprecations raised inside exchange_calendars
        warnings.simplefilter("ignore")
        cal = xc.get_calendar(calendar, start="2024-01-02", end="2024-01-31")  # a short range: cheap

    def latest(times: object) -> dt.time | None:
        return times[-1][1] if times else None  # type: ignore[index]

    def minutes(t: dt.time) -> int:
        return t.hour * 60 + t.minute

    open_, close = latest(cal.open_times), latest(cal.close_times)
    assert open_ is not None and close is not None, calendar
    total = (minutes(close) + 1440 * cal.close_offset) - (minutes(open_) + 1440 * cal.open_offset)
    start, end = latest(cal.break_start_times), latest(cal.break_end_times)
    if start is not None and end is not None:
        total -= minutes(end) - minutes(start)
    return int(total)


def periods_per_year(interval: str, calendar: str) -> float:
    """Bars of ``interval`` in a year of ``calendar``: the annualization factor of its returns.

    Parameters
    ----------
    interval : str
        A bar interval in Yahoo's spelling: ``1m 2m 5m 15m 30m 60m 90m 1h 1d 5d 1wk 1mo 3mo``.
    calendar : str
        ``24/7`` (crypto), ``weekdays`` (FX, synthetic) or an exchange MIC such as ``XNYS``.

    Returns
    -------
    float
        ``sessions x ceil(session_minutes / interval_minutes)`` for an intraday interval,
        ``sessions`` for ``1d``, ``sessions / 5`` for ``5d``, and 52, 12, 4 for ``1wk``,
        ``1mo``, ``3mo``.

    Raises
    ------
    InputError
        An unknown interval or calendar (the message names it).

    Examples
    --------
    >>> periods_per_year("1d", "XNYS"), periods_per_year("1d", "24/7"), periods_per_year("1h", "XNYS")
    (252.0, 365.0, 1764.0)
    """
    if interval in PER_YEAR:
        if calendar not in _BUILTIN_SESSIONS:
            _check_calendar(calendar)
        return PER_YEAR[interval]
    if interval in _SESSIONS_PER_BAR:
        return sessions_per_year(calendar) / _SESSIONS_PER_BAR[interval]
    if interval in INTRADAY_MINUTES:
        sessions = sessions_per_year(calendar)
        bars = math.ceil(session_minutes(calendar) / INTRADAY_MINUTES[interval])
        return sessions * bars
    raise InputError(f"`interval` must be one of {', '.join(_intervals())}, got {interval!r}")


def combine_periods(values: Iterable[float]) -> float:
    """The annualization factor of a portfolio whose symbols have factors ``values``.

    Symbols on different calendars (a stock and a coin) are aligned on the union of their
    timestamps, which has as many bars a year as the busiest calendar: the largest value.

    Raises
    ------
    InputError
        ``values`` is empty or holds a value that is not a positive finite number.

    Examples
    --------
    >>> combine_periods([252.0, 365.0])
    365.0
    """
    items = [float(v) for v in values]
    if not items:
        raise InputError("`values` must hold at least one periods-per-year value, got none")
    bad = [v for v in items if not (math.isfinite(v) and v > 0)]
    if bad:
        raise InputError(f"periods per year must be positive finite numbers, got {bad[0]!r}")
    return max(items)
