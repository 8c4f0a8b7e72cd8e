"""Bars from CSV files: Yahoo's own export format, or any layout through a column mapping.

Yahoo's format is ``Date,Open,High,Low,Close,Adj Close,Volume`` (optionally ``Dividends`` and
``Stock Splits``), with dates such as ``2004-08-19`` or US-style ``1/4/1999``, intraday
timestamps such as ``2024-01-02 09:30:00-05:00`` (a naive one is read in the ``tz`` zone) and
the string ``null`` for a missing value. ``Adj Close`` is accepted and ignored: adjustment
happens downstream. Other layouts map their columns onto the bar fields with ``columns=``.

Parsing is strict: anything that cannot be read (a ragged row, a bad date, a non-numeric price,
a missing column, a wrong encoding) fails the whole file with an :class:`InputError` naming
the file and, where it makes sense, the 1-based line (the header is line 1). Values that parse
but are implausible (a negative price, high < low) pass through to the quality layer.

>>> from alphatwin.sources.base import FetchRequest
>>> from alphatwin.sources.sample import sample_files
>>> sp500 = sample_files()[0]
>>> frame = next(CsvSource(sp500.path, symbol=sp500.symbol).fetch(FetchRequest()))
>>> frame.height, frame["symbol"][0]
(5031, '^GSPC')
"""

from __future__ import annotations

import csv as _csv
import datetime as dt
import gzip
import io
import os
import zlib
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import polars as pl

from alphatwin.errors import InputError, SymbolNotFoundError
from alphatwin.sources.base import BAR_SCHEMA, DAILY_INTERVALS, FetchRequest, conform, interval_duration

__all__ = ["CsvSource"]

PathArg = str | os.PathLike[str]

_REQUIRED = ("ts", "open", "high", "low", "close")
_TARGETS = ("ts", "open", "high", "low", "close", "volume", "dividend", "split_ratio", "ignore")
# Yahoo's (and yfinance's) header names, compared case-insensitively; None = known but unused.
_ALIASES: dict[str, str | None] = {
    "date": "ts", "datetime": "ts", "timestamp": "ts",
    "open": "open", "high": "high", "low": "low", "close": "close", "volume": "volume",
    "adj close": None, "adj_close": None, "adjclose": None,
    "dividends": "dividend", "dividend": "dividend",
    "stock splits": "split_ratio", "stock_splits": "split_ratio", "splits": "split_ratio", "split_ratio": "split_ratio",
}
_EXPECTED = {"ts": "Date", "open": "Open", "high": "High", "low": "Low", "close": "Close"}
_NULLS = ["", "null", "NULL", "Null", "NaN", "nan", "N/A", "n/a", "NA", "None"]
_LINE = "__line"

_ISO_DATE = r"^\d{4}-\d{1,2}-\d{1,2}$"
_SLASH_DATE = r"^(\d{1,2})/(\d{1,2})/(\d{4})$"
_ISO_DATETIME = r"^(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?)\s*(Z|[+-]\d{2}:?\d{2})?$"
_OFFSET = r"^([+-])(\d{2}):?(\d{2})$"
_FORMS = "a date like 2004-08-19 or 1/4/1999, or a timestamp like 2024-01-02 09:30:00-05:00"


class CsvSource:
    """Read bars from one CSV file, several, or a directory of ``*.csv`` / ``*.csv.gz`` files.

    Parameters
    ----------
    path
        A file, a directory (its ``*.csv`` and ``*.csv.gz`` files, not recursive) or a list of
        them. Gzip is recognised by content, so any file name works.
    symbol
        The symbol of every file, or a mapping from a file's stem (``GOOG`` for ``GOOG.csv.gz``)
        to its symbol. Without it (and without ``symbol_column``) the stem is the symbol.
    symbol_column
        A column holding each row's symbol (one file with many symbols).
    columns
        Source column name -> bar field (``ts``, ``open``, ``high``, ``low``, ``close``,
        ``volume``, ``dividend``, ``split_ratio``, or ``ignore``), on top of Yahoo's names.
    date_format
        A strftime-style format for the timestamp column (``%d.%m.%Y``); inferred otherwise.
    tz
        Zone of timestamps written without an offset (IANA name, default UTC).
    delimiter
        Field separator, one character.

    Examples
    --------
    >>> src = CsvSource("prices/", columns={"timestamp": "ts", "px_open": "open"}, tz="America/New_York")
    >>> frames = src.fetch(FetchRequest(interval="5m"))  # doctest: +SKIP
    """

    name = "csv"
    network = False

    def __init__(
        self,
        path: PathArg | Sequence[PathArg],
        *,
        symbol: str | Mapping[str, str] | None = None,
        symbol_column: str | None = None,
        columns: Mapping[str, str] | None = None,
        date_format: str | None = None,
        tz: str = "UTC",
        delimiter: str = ",",
    ) -> None:
        if symbol is not None and symbol_column is not None:
            raise InputError("pass either `symbol` or `symbol_column`, not both")
        if len(delimiter) != 1 or delimiter in "\r\n\"":
            raise InputError(f"`delimiter` must be one character other than a quote or newline, got {delimiter!r}")
        bad = {k: v for k, v in (columns or {}).items() if v not in _TARGETS}
        if bad:
            raise InputError(f"`columns` must map to one of {', '.join(_TARGETS)}; got {bad}")
        try:
            ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError):
            raise InputError(f"`tz` must be an IANA time zone like America/New_York, got {tz!r}") from None
        self.paths = [Path(p) for p in ([path] if isinstance(path, (str, os.PathLike)) else path)]
        self.symbol, self.symbol_column = symbol, symbol_column
        self.columns = dict(columns or {})
        self.date_format, self.tz, self.delimiter = date_format, tz, delimiter

    def files(self) -> list[Path]:
        """The files this source reads, in order; raises :class:`InputError` if there are none."""
        found: list[Path] = []
        for p in self.paths:
            if p.is_dir():
                inside = sorted(f for f in p.iterdir() if f.is_file() and f.name.lower().endswith((".csv", ".csv.gz")))
                if not inside:
                    raise InputError("directory has no CSV files (*.csv, *.csv.gz)", path=str(p))
                found.extend(inside)
            elif p.exists():
                found.append(p)
            else:
                raise InputError("no such file or directory", path=str(p))
        return found

    def symbol_of(self, path: Path) -> str | None:
        """The symbol a file's rows get (``None`` when it comes from ``symbol_column``)."""
        if self.symbol_column is not None:
            return None
        stem = _stem(path)
        if isinstance(self.symbol, str):
            return self.symbol
        if self.symbol is not None:
            return self.symbol.get(stem, stem)
        return stem

    def fetch(self, request: FetchRequest) -> Iterator[pl.DataFrame]:
        """Yield one frame per file, in :data:`BAR_SCHEMA`, within the request's range.

        ``request.symbols``, when given, selects symbols; with symbols named by files (not by a
        column) an unknown one raises :class:`SymbolNotFoundError` before anything is read.
        """
        files = self.files()
        wanted = set(request.symbols)
        if wanted and self.symbol_column is None:
            known = {self.symbol_of(f) for f in files}
            missing = sorted(wanted - known)
            if missing:
                raise SymbolNotFoundError(
                    f"no CSV file holds symbol {missing[0]!r}", source=self.name, symbol=missing[0]
                )
            files = [f for f in files if self.symbol_of(f) in wanted]
        for f in files:
            frame = _within(self.read(f, interval=request.interval), request, wanted)
            if frame.height:
                yield frame

    def read(self, path: PathArg, *, interval: str = "1d") -> pl.DataFrame:
        """Parse one file into :data:`BAR_SCHEMA` (all its rows, sorted by ``symbol, ts``)."""
        interval_duration(interval)
        path = Path(path)
        raw = _read_frame(_read_bytes(path), str(path), self.delimiter)
        fields = _map_columns(raw.columns, self.columns, self.symbol_column, str(path))
        raw = _drop_empty_bars(raw, fields)
        if raw.height == 0:  # nothing but Yahoo's "null" placeholder rows
            return pl.DataFrame(schema=BAR_SCHEMA)
        where = _Where(str(path), raw.get_column(_LINE))
        out = {
            "ts": _parse_timestamps(raw.get_column(fields["ts"]), where, interval, self.date_format, self.tz),
            **{
                t: _parse_numbers(raw.get_column(fields[t]), where)
                for t in ("open", "high", "low", "close", "volume", "dividend")
                if t in fields
            },
        }
        if "split_ratio" in fields:
            out["split_ratio"] = _parse_splits(raw.get_column(fields["split_ratio"]), where)
        out["symbol"] = _symbols(raw, self.symbol_column, self.symbol_of(path), where)
        return conform(pl.DataFrame(out).with_columns(pl.lit(interval).alias("interval")))


class _Where:
    """Locates a row of the file being parsed, for error messages."""

    def __init__(self, path: str, lines: pl.Series) -> None:
        self.path, self.lines = path, lines

    def error(self, row: int, message: str) -> InputError:
        line = self.lines[row]
        if line is None:  # quoted fields spanning lines left the physical line unknown
            return InputError(f"data row {row + 1}: {message}", path=self.path)
        return InputError(message, path=self.path, line=int(line))


def _stem(path: Path) -> str:
    """``GOOG`` for ``GOOG.csv``, ``GOOG.csv.gz`` or ``GOOG.txt``; ``BRK.B`` for ``BRK.B.csv``."""
    name = path.name
    if name.lower().endswith(".gz"):
        name = name[:-3]
    for suffix in (".csv", ".txt", ".tsv"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def _within(frame: pl.DataFrame, request: FetchRequest, symbols: set[str]) -> pl.DataFrame:
    """Rows in ``[request.start, request.end)`` (naive UTC bounds) and, if given, ``symbols``."""
    utc = dt.timezone.utc
    if request.start is not None:
        frame = frame.filter(pl.col("ts") >= request.start.replace(tzinfo=request.start.tzinfo or utc))
    if request.end is not None:
        frame = frame.filter(pl.col("ts") < request.end.replace(tzinfo=request.end.tzinfo or utc))
    if symbols:
        frame = frame.filter(pl.col("symbol").is_in(sorted(symbols)))
    return frame


# --------------------------------------------------------------------------- bytes and rows


def _read_bytes(path: Path) -> bytes:
    """The file's bytes (gunzipped), checked to be non-empty UTF-8 text."""
    where = str(path)
    try:
        data = path.read_bytes()
        if data[:2] == b"\x1f\x8b":
            data = gzip.decompress(data)
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise InputError(f"not a valid gzip file ({exc})", path=where) from None
    except OSError as exc:
        raise InputError(f"cannot read file: {exc.strerror or exc}", path=where) from None
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        raise InputError("file is UTF-16 encoded; save it as UTF-8", path=where)
    data = data.removeprefix(b"\xef\xbb\xbf")
    if not data.strip():
        raise InputError("file is empty", path=where)
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise InputError(
            f"not valid UTF-8 (byte 0x{data[exc.start]:02x}); save the file as UTF-8", path=where, line=line
        ) from None
    if b"\x00" in data:
        line = data.count(b"\n", 0, data.index(b"\x00")) + 1
        raise InputError("contains NUL bytes; not a text CSV file (UTF-16?)", path=where, line=line)
    return data


def _read_frame(data: bytes, path: str, delimiter: str) -> pl.DataFrame:
    """All cells as strings, plus the 1-based line of each row; blank lines dropped."""
    lines, blank = _row_lines(data, path, delimiter)
    try:
        raw = pl.read_csv(io.BytesIO(data), infer_schema=False, separator=delimiter, has_header=True)
    except pl.exceptions.PolarsError as exc:
        stray = _stray_quote_line(data, delimiter)
        if stray is not None:
            raise InputError("malformed CSV: a quote character inside an unquoted field", path=path, line=stray) from None
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"malformed CSV: {first}", path=path) from None
    dups = [c for c in raw.columns if "_duplicated_" in c]
    if dups:
        raise InputError(f"duplicate column {dups[0].split('_duplicated_')[0]!r} in the header", path=path, line=1)
    if lines is None or len(lines) != raw.height:
        lines, blank = None, np.zeros(raw.height, dtype=bool)
    line_col = pl.Series(_LINE, lines, dtype=pl.Int64) if lines is not None else pl.lit(None, pl.Int64).alias(_LINE)
    raw = raw.with_columns(line_col).filter(~pl.Series(blank, dtype=pl.Boolean))
    if raw.height == 0:
        raise InputError("file has a header but no data rows", path=path, line=1)
    return raw


def _row_lines(data: bytes, path: str, delimiter: str) -> tuple[np.ndarray | None, np.ndarray]:
    """Line number of each data row and whether it is blank; raises on a ragged row.

    Without quote characters every physical line is one row and a vectorised count of
    delimiters per line finds ragged rows; with quotes the standard ``csv`` module walks the
    records (fields may then hold delimiters and newlines).
    """
    if b'"' in data:
        return _row_lines_quoted(data.decode("utf-8"), path, delimiter)
    buf = np.frombuffer(data, dtype=np.uint8)
    ends = np.flatnonzero(buf == 10)
    if len(ends) == 0 or ends[-1] != len(buf) - 1:
        ends = np.append(ends, len(buf))
    starts = np.concatenate(([0], ends[:-1] + 1))
    seps = np.flatnonzero(buf == ord(delimiter))
    fields = np.diff(np.searchsorted(seps, np.concatenate((starts, [len(buf) + 1])))) + 1
    content = np.ones(len(starts), dtype=bool)
    short = np.flatnonzero(ends - starts <= 1)
    content[short] = [bool(data[starts[i] : ends[i]].strip()) for i in short]
    header = int(np.argmax(content))
    odd = np.flatnonzero(fields != fields[header])
    for i in odd[odd > header]:
        if data[starts[i] : ends[i]].strip():
            raise InputError(
                f"malformed CSV: row has {fields[i]} fields, the header has {fields[header]}",
                path=path, line=int(i) + 1,
            )
        content[i] = False
    return np.arange(header + 2, len(starts) + 1), ~content[header + 1 :]


def _row_lines_quoted(text: str, path: str, delimiter: str) -> tuple[np.ndarray, np.ndarray]:
    reader = _csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    lines: list[int] = []
    blank: list[bool] = []
    width, prev = None, 0
    try:
        for record in reader:
            line, prev = prev + 1, reader.line_num
            empty = not record or (len(record) == 1 and not record[0].strip())
            if width is None:
                if not empty:
                    width = len(record)
                continue
            if not empty and len(record) != width:
                raise InputError(
                    f"malformed CSV: row has {len(record)} fields, the header has {width}", path=path, line=line
                )
            lines.append(line)
            blank.append(empty)
    except _csv.Error as exc:
        if "unexpected end of data" in str(exc):
            raise InputError("malformed CSV: a quoted field is never closed", path=path, line=prev + 1) from None
        raise InputError(f"malformed CSV: {exc}", path=path, line=reader.line_num) from None
    return np.asarray(lines, dtype=np.int64), np.asarray(blank, dtype=bool)


def _stray_quote_line(data: bytes, delimiter: str) -> int | None:
    """The first line with a quote in the middle of a field (Polars' error does not say where)."""
    sep = delimiter.encode()
    for number, line in enumerate(data.splitlines(), start=1):
        if b'"' in line and any(b'"' in f and not f.strip().startswith(b'"') for f in line.split(sep)):
            return number
    return None


# --------------------------------------------------------------------------- columns


def _map_columns(
    found: list[str], mapping: Mapping[str, str], symbol_column: str | None, path: str
) -> dict[str, str]:
    """Bar field -> the file's column, from ``mapping`` first, then Yahoo's names."""
    names = [c for c in found if c != _LINE]
    fields: dict[str, str] = {}
    for source, target in mapping.items():
        if source not in names:
            raise InputError(
                f"column {source!r} (mapped to {target}) not found; found: {', '.join(names)}", path=path, line=1
            )
        if target != "ignore":
            fields[target] = source
    for col in names:
        target = _ALIASES.get(col.strip().lower())
        if col in mapping or target is None or target in fields:
            continue
        fields[target] = col
    if symbol_column is not None and symbol_column not in names:
        raise InputError(f"symbol column {symbol_column!r} not found; found: {', '.join(names)}", path=path, line=1)
    missing = [f for f in _REQUIRED if f not in fields]
    if missing:
        wanted = ", ".join(_EXPECTED[f] for f in missing)
        raise InputError(f"missing required column(s) {wanted}; found: {', '.join(names)}", path=path, line=1)
    return fields


def _drop_empty_bars(raw: pl.DataFrame, fields: dict[str, str]) -> pl.DataFrame:
    """Drop Yahoo's placeholder rows whose open, high, low and close are all missing."""
    prices = [pl.col(fields[f]).str.strip_chars().is_in(_NULLS) | pl.col(fields[f]).is_null() for f in _REQUIRED[1:]]
    return raw.filter(~pl.all_horizontal(prices))


def _cleaned(values: pl.Series) -> pl.Series:
    """Stripped strings with the missing-value spellings turned into nulls."""
    s = values.str.strip_chars()
    return pl.select(pl.when(s.is_in(_NULLS)).then(None).otherwise(s)).to_series()


def _parse_numbers(values: pl.Series, where: _Where) -> pl.Series:
    s = _cleaned(values)
    out = s.cast(pl.Float64, strict=False)
    bad = (out.is_null() & s.is_not_null()).arg_true()
    if len(bad):
        i = int(bad[0])
        raise where.error(i, f"non-numeric value {values[i]!r} in column {values.name!r}")
    return out


def _parse_splits(values: pl.Series, where: _Where) -> pl.Series:
    """Split ratios: ``2:1`` or ``2/1`` (Yahoo) or a float (yfinance, 0 = none); null -> 1.0."""
    s = _cleaned(values)
    parts = s.str.extract_groups(r"^(\d+(?:\.\d+)?)\s*[:/]\s*(\d+(?:\.\d+)?)$").struct.unnest()
    ratio = parts[:, 0].cast(pl.Float64) / parts[:, 1].cast(pl.Float64)
    out = pl.select(pl.when(s.str.contains("[:/]")).then(ratio).otherwise(s.cast(pl.Float64, strict=False))).to_series()
    bad = ((out.is_null() | out.is_infinite()) & s.is_not_null()).arg_true()
    if len(bad):
        i = int(bad[0])
        raise where.error(i, f"split ratio {values[i]!r} in column {values.name!r} is neither a number nor like 2:1")
    return pl.select(pl.when(out.is_null() | (out == 0.0)).then(1.0).otherwise(out)).to_series()


def _symbols(raw: pl.DataFrame, column: str | None, symbol: str | None, where: _Where) -> pl.Series:
    if column is None:
        return pl.repeat(symbol, raw.height, eager=True, dtype=pl.String)
    s = _cleaned(raw.get_column(column))
    missing = s.is_null().arg_true()
    if len(missing):
        raise where.error(int(missing[0]), f"missing symbol in column {column!r}")
    return s


# --------------------------------------------------------------------------- timestamps


def _parse_timestamps(
    values: pl.Series, where: _Where, interval: str, date_format: str | None, tz: str
) -> pl.Series:
    """UTC timestamps: dates at 00:00 for daily-and-longer intervals, bar-open instants otherwise."""
    s = _cleaned(values)
    missing = s.is_null().arg_true()
    if len(missing):
        raise where.error(int(missing[0]), f"missing date in column {values.name!r}")
    daily = interval in DAILY_INTERVALS
    if date_format is not None:
        parsed = s.str.to_datetime(date_format, strict=False)
        _fail_unparsed(parsed, s, where, f"does not match date_format {date_format!r}")
        if parsed.dtype.time_zone is None and not daily:
            parsed = _localize(parsed, s, where, tz)
        return _finish(parsed, s, where, interval)
    first = s[0]
    if pl.Series([first]).str.contains(_ISO_DATE)[0]:
        return _dates(s.str.to_date("%Y-%m-%d", strict=False), s, where, interval)
    if pl.Series([first]).str.contains(_SLASH_DATE)[0]:
        return _dates(_slash_dates(s, where), s, where, interval)
    if pl.Series([first]).str.contains(_ISO_DATETIME)[0]:
        return _finish(_datetimes(s, where, tz, local_only=daily), s, where, interval)
    raise where.error(0, f"cannot parse date {first!r}: expected {_FORMS} (or pass date_format)")


def _fail_unparsed(parsed: pl.Series, s: pl.Series, where: _Where, why: str) -> None:
    bad = parsed.is_null().arg_true()
    if len(bad):
        i = int(bad[0])
        raise where.error(i, f"cannot parse date {s[i]!r}: {why}")


def _dates(parsed: pl.Series, s: pl.Series, where: _Where, interval: str) -> pl.Series:
    _fail_unparsed(parsed, s, where, f"expected the same form as {s[0]!r} (line {where.lines[0]})")
    if interval not in DAILY_INTERVALS:
        raise where.error(0, f"date {s[0]!r} has no time of day, but interval {interval!r} needs intraday timestamps")
    return parsed.cast(pl.Datetime("us")).dt.replace_time_zone("UTC")


def _slash_dates(s: pl.Series, where: _Where) -> pl.Series:
    """Month/day/year (Yahoo, US) or day/month/year, decided by the data; refuses to guess."""
    parts = s.str.extract_groups(_SLASH_DATE).struct.unnest()
    a, b = parts[:, 0].cast(pl.Int32), parts[:, 1].cast(pl.Int32)
    day_first, month_first = (a > 12).arg_true(), (b > 12).arg_true()
    if len(day_first) and len(month_first):
        i, j = int(day_first[0]), int(month_first[0])
        raise where.error(
            max(i, j),
            f"ambiguous date format: {s[i]!r} (line {where.lines[i]}) reads day/month/year but "
            f"{s[j]!r} (line {where.lines[j]}) reads month/day/year; pass date_format",
        )
    if not len(day_first) and not len(month_first):
        raise where.error(
            0,
            f"ambiguous date format: dates like {s[0]!r} read as month/day/year and as day/month/year; "
            "pass date_format='%m/%d/%Y' (Yahoo, US) or '%d/%m/%Y'",
        )
    return s.str.to_date("%d/%m/%Y" if len(day_first) else "%m/%d/%Y", strict=False)


def _datetimes(s: pl.Series, where: _Where, tz: str, *, local_only: bool) -> pl.Series:
    """ISO timestamps with an offset (converted to UTC) or without (read in ``tz``).

    With ``local_only`` the wall-clock time as written is returned (naive), offsets ignored.
    """
    parts = s.str.extract_groups(_ISO_DATETIME).struct.unnest()
    day, clock, zone = parts[:, 0], parts[:, 1], parts[:, 2]
    clock = pl.select(pl.when(clock.str.len_chars() == 5).then(clock + ":00").otherwise(clock)).to_series()
    local = (day + " " + clock).str.to_datetime("%Y-%m-%d %H:%M:%S%.f", strict=False)
    _fail_unparsed(local, s, where, f"expected the same form as {s[0]!r} (line {where.lines[0]})")
    if local_only:
        return local
    has_zone = zone.is_not_null()
    if has_zone.any() and not has_zone.all():
        i = int((has_zone != has_zone[0]).arg_true()[0])
        raise where.error(
            i, f"ambiguous timestamps: {s[i]!r} and {s[0]!r} (line {where.lines[0]}) differ in having a UTC offset"
        )
    if not has_zone[0]:
        return _localize(local, s, where, tz)
    off = zone.str.replace("Z", "+00:00").str.extract_groups(_OFFSET).struct.unnest()
    minutes = off[:, 1].cast(pl.Int64) * 60 + off[:, 2].cast(pl.Int64)
    signed = pl.select(pl.when(off[:, 0] == "-").then(-minutes).otherwise(minutes)).to_series()
    utc = local - pl.select(pl.duration(minutes=signed)).to_series()
    return utc.dt.replace_time_zone("UTC")


def _localize(local: pl.Series, s: pl.Series, where: _Where, tz: str) -> pl.Series:
    """Read naive wall-clock times in ``tz``; a time that is ambiguous or skipped by DST fails."""
    zoned = local.dt.replace_time_zone(tz, ambiguous="null", non_existent="null")
    bad = zoned.is_null().arg_true()
    if len(bad):
        i = int(bad[0])
        raise where.error(i, f"timestamp {s[i]!r} is ambiguous or does not exist in {tz} (a DST change)")
    return zoned.dt.convert_time_zone("UTC")


def _finish(parsed: pl.Series, s: pl.Series, where: _Where, interval: str) -> pl.Series:
    """Daily intervals: the written date at 00:00 UTC (a time must be midnight). Else UTC instants."""
    if interval not in DAILY_INTERVALS:
        return parsed if parsed.dtype.time_zone is not None else parsed.dt.replace_time_zone("UTC")
    off_midnight = (parsed.dt.truncate("1d") != parsed).arg_true()
    if len(off_midnight):
        i = int(off_midnight[0])
        raise where.error(i, f"timestamp {s[i]!r} has a time of day, but interval {interval!r} expects dates")
    naive = parsed if parsed.dtype.time_zone is None else parsed.dt.replace_time_zone(None)
    return naive.dt.replace_time_zone("UTC")
