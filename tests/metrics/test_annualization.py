"""Bars per year of every interval and calendar, and the docs table that shows them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from alphatwin.errors import InputError
from alphatwin.metrics import annualization as an
from alphatwin.sources.base import INTERVALS

DOCS = Path(__file__).parents[2] / "docs" / "metrics.md"


@pytest.mark.parametrize(("interval", "calendar", "expected"), [
    ("1d", "XNYS", 252), ("1d", "24/7", 365), ("1d", "weekdays", 260), ("1d", "XLON", 252),
    ("5d", "XNYS", 252 / 5), ("5d", "24/7", 73), ("5d", "weekdays", 52),
    ("1wk", "XNYS", 52), ("1wk", "24/7", 52), ("1mo", "weekdays", 12), ("3mo", "XTKS", 4),
    ("1h", "XNYS", 252 * 7),  # 390 minutes: 9:30, 10:30, ..., 15:30 -> 7 bars
    ("60m", "XNYS", 252 * 7), ("90m", "XNYS", 252 * 5), ("30m", "XNYS", 252 * 13),
    ("1m", "XNYS", 252 * 390), ("2m", "XNYS", 252 * 195), ("5m", "XNYS", 252 * 78), ("15m", "XNYS", 252 * 26),
    ("1h", "24/7", 365 * 24), ("1m", "24/7", 365 * 1440), ("90m", "24/7", 365 * 16),
    ("1h", "weekdays", 260 * 24), ("5m", "weekdays", 260 * 288),
    ("1h", "XLON", 252 * 9),  # 8:00-16:30 = 510 minutes -> ceil(8.5) = 9 bars
    ("1h", "XTKS", 252 * 6),  # 9:00-15:30 minus the 11:30-12:30 lunch = 330 minutes -> 6 bars
    ("1d", "NYSE", 252),  # an exchange_calendars alias
])
def test_periods_per_year_table(interval, calendar, expected):
    assert an.periods_per_year(interval, calendar) == expected


def test_every_project_interval_is_covered():
    for interval in INTERVALS:
        assert an.periods_per_year(interval, "24/7") > 0


@pytest.mark.parametrize(("calendar", "minutes"), [
    ("24/7", 1440), ("weekdays", 1440), ("XNYS", 390), ("XLON", 510), ("XTKS", 330), ("XHKG", 330),
])
def test_session_minutes(calendar, minutes):
    assert an.session_minutes(calendar) == minutes


def test_unknown_interval_or_calendar_is_an_input_error_naming_it():
    with pytest.raises(InputError, match="'4h'"):
        an.periods_per_year("4h", "XNYS")
    with pytest.raises(InputError, match="'XXXX'"):
        an.periods_per_year("1d", "XXXX")
    with pytest.raises(InputError, match="'XXXX'"):
        an.periods_per_year("1wk", "XXXX")
    with pytest.raises(InputError, match="'moon'"):
        an.periods_per_year("1h", "moon")


def test_combine_periods_takes_the_busiest_calendar():
    assert an.combine_periods([252.0, 365.0, 260.0]) == 365.0
    assert an.combine_periods(iter([1764.0])) == 1764.0
    with pytest.raises(InputError, match="none"):
        an.combine_periods([])
    with pytest.raises(InputError, match="positive"):
        an.combine_periods([252.0, 0.0])


def test_docs_session_table_matches_the_code():
    """Every row ``| XNYS | 390 | 7 | 1764 |`` of docs/metrics.md's exchange table is what the code says."""
    pattern = r"^\| `([A-Z]{4}|24/7|weekdays)` \| (\d+) \| (\d+) \| (\d+) \|$"
    rows = re.findall(pattern, DOCS.read_text(), re.M)
    assert len(rows) >= 8, "the exchange table of docs/metrics.md was not found"
    for calendar, minutes, bars, per_year in rows:
        assert an.session_minutes(calendar) == int(minutes), calendar
        assert an.periods_per_year("1h", calendar) == int(bars) * an.sessions_per_year(calendar), calendar
        assert an.periods_per_year("1h", calendar) == int(per_year), calendar


def test_docs_interval_table_matches_the_code():
    """Every row ``| `1h` | 8760 | 6240 | 1764 |`` of docs/metrics.md's interval table."""
    pattern = r"^\| `(\d+[a-z]+)`(?:, `(\d+[a-z]+)`)? \| ([\d.]+) \| ([\d.]+) \| ([\d.]+) \|$"
    rows = re.findall(pattern, DOCS.read_text(), re.M)
    documented = {name for row in rows for name in row[:2] if name}
    assert documented == set(INTERVALS)
    for first, second, *values in rows:
        for interval in filter(None, (first, second)):
            got = [an.periods_per_year(interval, c) for c in ("24/7", "weekdays", "XNYS")]
            assert got == [float(v) for v in values], interval
