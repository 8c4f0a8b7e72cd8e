"""The real offline sample: S&P 500 and NASDAQ Composite daily bars shipped with ``arch``.

The ``arch`` package (Copyright (c) 2017 Kevin Sheppard, University of Illinois/NCSA Open
Source License, https://github.com/bashtage/arch) ships two Yahoo Finance exports,
``arch/data/sp500/sp500.csv.gz`` and ``arch/data/nasdaq/nasdaq.csv.gz``: daily
``Date,Open,High,Low,Close,Adj Close,Volume`` bars from 1999-01-04 to 2018-12-31 with US-style
dates (``1/4/1999``). They let the demo run on real market data without a network; credit
``arch`` (and Yahoo Finance as the original source) wherever they are shown.

The files are found through the import system (:func:`importlib.util.find_spec`) without
importing ``arch`` itself, which takes seconds.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import NamedTuple

from alphatwin.errors import InputError
from alphatwin.sources.csv import CsvSource

__all__ = ["SampleFile", "sample_files", "sample_source"]

_FILES = (("^GSPC", "sp500", "sp500.csv.gz"), ("^IXIC", "nasdaq", "nasdaq.csv.gz"))


class SampleFile(NamedTuple):
    """One sample file and the Yahoo symbol of its index."""

    symbol: str
    path: Path


def sample_files() -> tuple[SampleFile, ...]:
    """The two ``arch`` CSV files: ``^GSPC`` (S&P 500) and ``^IXIC`` (NASDAQ Composite).

    Returns
    -------
    tuple of SampleFile
        ``(symbol, path)`` pairs inside the installed ``arch`` package.

    Raises
    ------
    InputError
        ``arch`` is not installed or no longer ships the files.

    Examples
    --------
    >>> [f.symbol for f in sample_files()]
    ['^GSPC', '^IXIC']
    """
    spec = importlib.util.find_spec("arch")
    if spec is None or not spec.submodule_search_locations:
        raise InputError("the offline sample needs the `arch` package (pip install arch)")
    root = Path(next(iter(spec.submodule_search_locations)))
    found = []
    for symbol, package, name in _FILES:
        path = root / "data" / package / name
        if not path.is_file():
            raise InputError(f"the `arch` package does not ship {name} any more", path=str(path))
        found.append(SampleFile(symbol, path))
    return tuple(found)


def sample_source() -> CsvSource:
    """A :class:`CsvSource` over both sample files, with their index symbols."""
    files = sample_files()
    return CsvSource([f.path for f in files], symbol={_stem(f.path): f.symbol for f in files})


def _stem(path: Path) -> str:
    return path.name.removesuffix(".gz").removesuffix(".csv")
