"""The expected trading calendar of a symbol: which daily sessions should have a bar.

``clean.bars`` fills a missing bar when a session of the symbol's calendar has no row between
two rows that exist. Calendars:

``24/7``
    Every day (crypto).
``weekdays``
    Monday to Friday (FX, and AlphaTwin's synthetic exchange).
an ISO 10383 MIC (``XNYS``, ``XLON`` ...)
    The exchange's sessions from the ``exchange_calendars`` package (holidays and special
    closures included).

A symbol's calendar is the first match of: the ``[calendars]`` globs of ``alphatwin.toml``
(``"SYN*" = "weekdays"``), then the source (``synthetic`` -> ``weekdays``), then Yahoo's
conventions (``BTC-USD`` -> 24/7, ``EURUSD=X`` -> weekdays, ``VOD.L`` -> XLON, ...), then
``XNYS``.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import functools
import re
import warnings

import numpy as np

from alphatwin.errors import ConfigError

__all__ = ["calendar_for", "sessions", "check_calendar", "BUILTIN", "YAHOO_SUFFIXES"]

BUILTIN = ("24/7", "weekdays")

# Yahoo ticker suffix -> exchange (MIC) for the markets exchange_calendars knows.
YAHOO_SUFFIXES = {
    ".L": "XLON", ".DE": "XETR", ".F": "XFRA", ".PA": "XPAR", ".AS": "XAMS", ".BR": "XBRU",
    ".MI": "XMIL", ".MC": "XMAD", ".SW": "XSWX", ".ST": "XSTO", ".OL": "XOSL", ".CO": "XCSE",
    ".HE": "XHEL", ".VI": "XWBO", ".LS": "XLIS", ".IR": "XDUB", ".T": "XTKS", ".HK": "XHKG",
    ".SS": "XSHG", ".SZ": "XSHG", ".KS": "XKRX", ".AX": "XASX", ".NZ": "XNZE", ".TO": "XTSE",
    ".V": "XTSE", ".SA": "BVMF", ".MX": "XMEX", ".JO": "XJSE", ".NS": "XBOM", ".BO": "XBOM",
    ".TW": "XTAI", ".SI": "XSES",
}
_CRYPTO = re.compile(r"^[A-Z0-9]+-(USD|USDT|USDC|EUR|GBP|BTC|ETH|JPY)$")
_FIRST_SESSION = dt.date(1970, 1, 1)
_EPOCH = np.datetime64("1970-01-01", "D")


def check_calendar(name: str, *, where: str = "calendar") -> None:
    """Raise :class:`ConfigError` unless ``name`` is a built-in calendar or a known exchange."""
    if name in BUILTIN:
        return
    import exchange_calendars as xc

    if name not in xc.get_calendar_names(include_aliases=True):
        raise ConfigError(f"{where}: unknown calendar {name!r}; use 24/7, weekdays or an exchange code "
                          "such as XNYS (see exchange_calendars.get_calendar_names())")


def calendar_for(symbol: str, source: str | None, overrides: tuple[tuple[str, str], ...] = ()) -> str:
    """The calendar name of ``symbol`` (see the module docstring for the rules).

    Examples
    --------
    >>> calendar_for("BTC-USD", "yahoo"), calendar_for("EURUSD=X", "yahoo"), calendar_for("VOD.L", "yahoo")
    ('24/7', 'weekdays', 'XLON')
    >>> calendar_for("AAPL", "yahoo"), calendar_for("SYN00001", "synthetic")
    ('XNYS', 'weekdays')
    """
    for pattern, name in overrides:
        if fnmatch.fnmatchcase(symbol, pattern):
            return name
    if source == "synthetic":
        return "weekdays"
    upper = symbol.upper()
    if _CRYPTO.match(upper):
        return "24/7"
    if upper.endswith("=X"):
        return "weekdays"
    for suffix, mic in YAHOO_SUFFIXES.items():
        if upper.endswith(suffix):
            return mic
    return "XNYS"


def sessions(name: str, first: dt.date, last: dt.date) -> np.ndarray:
    """Session dates of calendar ``name`` in ``[first, last]`` as int64 days since 1970-01-01, sorted."""
    lo = (np.datetime64(first, "D") - _EPOCH).astype(np.int64)
    hi = (np.datetime64(last, "D") - _EPOCH).astype(np.int64)
    days = _all_sessions(name)
    return days[np.searchsorted(days, lo, "left"): np.searchsorted(days, hi, "right")]


@functools.lru_cache(maxsize=64)
def _all_sessions(name: str) -> np.ndarray:
    """Every session of ``name`` from 1970 to two years from today (cached; read-only array)."""
    end = dt.date.today() + dt.timedelta(days=730)
    days = np.arange(0, (np.datetime64(end, "D") - _EPOCH).astype(np.int64) + 1, dtype=np.int64)
    if name == "24/7":
        out = days
    elif name == "weekdays":
        out = days[((days + 3) % 7) < 5]  # 1970-01-01 was a Thursday: (d + 3) % 7 is 0 on Mondays
    else:
        import exchange_calendars as xc

        check_calendar(name)
        with warnings.catch_warnings():  # pandas deprecations raised inside exchange_calendars
            warnings.simplefilter("ignore")
            cal = xc.get_calendar(name, start=max(_FIRST_SESSION, dt.date(1990, 1, 1)).isoformat(),
                                  end=end.isoformat())
            stamps = np.asarray(cal.sessions.to_numpy(), dtype="datetime64[D]")
        out = (stamps - _EPOCH).astype(np.int64)
        # Before the package's first session, fall back to weekdays so old data is still judged.
        first = out[0] if out.size else days[-1] + 1
        older = days[(days < first) & (((days + 3) % 7) < 5)]
        out = np.concatenate([older, out])
    out = np.ascontiguousarray(out)
    out.setflags(write=False)
    return out
