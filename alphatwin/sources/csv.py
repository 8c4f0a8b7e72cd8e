"""Bars from CSV files: Yahoo's own export format, or any layout through a column mapping.

Yahoo's format is ``Date,Open,High,Low,Close,Adj Close,Volume`` (optionally ``Dividends`` and
``Stock Splits``), with dates such as ``2004-08-19`` or US-style ``1/4/1999``, intraday
timestamps such as ``2024-01-02 09:30:00-05:00`` (a naive one is read in the ``tz`` zone) and
the string ``null`` for a missing value. ``Adj Close`` is accepted and ignored: adjustment
happens downstream. Other layouts map their columns onto the bar fields with ``columns=``.

Parsing is strict: anything that cannot be read (a ragged row, a bad date, a non-numeric price,
a missing column, a wrong encoding) fails the whole file with an :class:`InputError` naming
the file and, where it makes sense, the 1-based line (the header is line 1). With
``bad_lines="quarantine"`` a line that cannot be read (a ragged row, a bad date or number, an
oversized field) is set aside in :attr:`CsvSource.rejected` with its reason and text instead,
and the other rows proceed; problems of the whole file (encoding, header, columns) still fail
it. Values that parse but are implausible (a negative price, high < low) pass through to the
quality layer. What parsing did silently (all-null rows skipped, rows re-sorted, columns
ignored) is listed in :attr:`CsvSource.notes`.

>>> from alphatwin.sources.base import FetchRequest
>>> from alphatwin.sources.sample import sample_files
>>> sp500 = sample_files()[0]
>>> frame = next(CsvSource(sp500.path, symbol=sp500.symbol).fetch(FetchRequest()))
>>> frame.height, frame["symbol"][0]
(5031, '^GSPC')
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import polars as pl

from alphatwin.errors import InputError, SymbolNotFoundError
from alphatwin.sources._csv_read import ISO_DATE, ISO_DATETIME, LINE, MAX_FILE_BYTES, SLASH_DATE, read_bytes, read_frame
from alphatwin.sources.base import (
    BAR_SCHEMA,
    DAILY_INTERVALS,
    SYMBOL_FORM,
    FetchRequest,
    check_symbol,
    conform,
    interval_duration,
)

__all__ = ["CsvSource", "RejectedLine", "BADLINES", "MAX_FIELD_CHARS", "MAX_FILE_BYTES", "MAX_BADLINES"]

BADLINES = ("error", "quarantine")
MAX_FIELD_CHARS = 256  # a price, a date or a symbol is never longer; a 5 MB "number" is an attack or a bug
MAX_BADLINES = 1000  # with bad_lines="quarantine": more than this and the file is wrong, not a line
_TEXT_CHARS = 200  # of a rejected line kept in RejectedLine.text
_DELIMITERS = {";": "';'", "\t": "tab ('\\t')", "|": "'|'"}

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
    bad_lines
        ``"error"`` (default): a line that cannot be read fails the file. ``"quarantine"``: it is
        set aside in :attr:`rejected` (file, line, reason, text) and the other rows proceed;
        more than ``max_bad_lines`` such lines, or no readable row at all, still fail the file.
    max_field_chars
        Longest field accepted (characters); a longer one is a bad line.
    max_file_bytes
        Largest file accepted (bytes, after gunzip).
    max_bad_lines
        Most lines ``bad_lines="quarantine"`` sets aside per file.

    Attributes
    ----------
    notes
        What reading did besides parsing, one sentence each: all-null rows skipped, rows out of
        order (re-sorted), columns ignored.
    rejected
        The :class:`RejectedLine` s set aside with ``bad_lines="quarantine"``.

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
        bad_lines: str = "error",
        max_field_chars: int = MAX_FIELD_CHARS,
        max_file_bytes: int = MAX_FILE_BYTES,
        max_bad_lines: int = MAX_BADLINES,
    ) -> None:
        if symbol is not None and symbol_column is not None:
            raise InputError("pass either `symbol` or `symbol_column`, not both")
        if isinstance(symbol, str):
            check_symbol(symbol, "--symbol")
        elif symbol is not None:
            for value in symbol.values():
                check_symbol(value, "symbol")
        if bad_lines not in BADLINES:
            raise InputError(f"`--bad-lines` must be one of {', '.join(BADLINES)}, got {bad_lines!r}")
        for name, value in (("--max-field-chars", max_field_chars), ("--max-file-bytes", max_file_bytes),
                            ("--max-bad-lines", max_bad_lines)):
            if not isinstance(value, int) or value < 1:
                raise InputError(f"`{name}` must be a positive whole number, got {value!r}")
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
        self.bad_lines, self.max_field_chars = bad_lines, max_field_chars
        self.max_file_bytes, self.max_bad_lines = max_file_bytes, max_bad_lines
        self.notes: list[str] = []
        self.rejected: list[RejectedLine] = []

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
        where_file = str(path)
        symbol = self.symbol_of(path)
        if symbol is not None and self.symbol is None:
            try:
                check_symbol(symbol)
            except InputError:
                raise InputError(f"the file name gives symbol {symbol!r}, which is not {SYMBOL_FORM}; pass --symbol",
                                 path=where_file) from None
        data = read_bytes(path, self.max_file_bytes)
        quarantine = self.bad_lines == "quarantine"
        raw, ragged = read_frame(data, where_file, self.delimiter, keep_ragged=quarantine)
        fields = _map_columns(raw.columns, self.columns, self.symbol_column, where_file, self.delimiter)
        self._note_ignored(raw.columns, fields, where_file)
        bad = [_BadRow(line, reason) for line, reason in ragged]
        raw = self._cap_fields(raw, where_file, bad)
        before = raw.get_column(LINE)
        raw = _drop_empty_bars(raw, fields)
        if raw.height < before.len():
            skipped = before.filter(~before.is_in(raw.get_column(LINE).implode()))
            self.notes.append(f"{where_file}: {before.len() - raw.height} all-null row(s) skipped (no trading; "
                              f"Yahoo's placeholder){_at_lines(skipped)}")
        while True:
            if raw.height == 0 and not bad:  # nothing but Yahoo's "null" placeholder rows
                return pl.DataFrame(schema=BAR_SCHEMA)
            try:
                if raw.height == 0:
                    raise InputError("no readable row", path=where_file)
                frame = self._parse(raw, fields, where_file, interval)
                break
            except _BadRows as exc:
                if not quarantine:
                    raise InputError(exc.reason + _hint(len(exc.rows), raw.height), path=where_file,
                                     line=exc.line) from None
                raw = self._set_aside(raw, exc, bad, where_file)
        if bad:
            self._reject(bad, data, where_file)
        self._note_order(frame, where_file)
        return conform(frame)

    def _set_aside(self, raw: pl.DataFrame, exc: _BadRows, bad: list[_BadRow], path: str) -> pl.DataFrame:
        """Drop the rows of ``exc`` from ``raw`` into ``bad``; fail when there are too many."""
        lines = raw.get_column(LINE)
        bad.extend(_BadRow(lines[i], reason) for i, reason in zip(exc.rows, exc.reasons, strict=True))
        if len(exc.rows) >= raw.height:
            raise InputError(f"no line of the file can be read; the first: {exc.reason}", path=path,
                             line=exc.line) from None
        if len(bad) > self.max_bad_lines:
            raise InputError(f"more than {self.max_bad_lines} lines cannot be read (--max-bad-lines); the first: "
                             f"{bad[0].reason}", path=path, line=bad[0].line) from None
        keep = np.ones(raw.height, dtype=bool)
        keep[exc.rows] = False
        return raw.filter(pl.Series(keep))

    def _reject(self, bad: list[_BadRow], data: bytes, path: str) -> None:
        text = data.decode("utf-8").split("\n")
        bad = sorted(bad, key=lambda b: (b.line is None, b.line or 0))
        for row in bad:
            raw_text = None if row.line is None else text[row.line - 1].rstrip("\r")
            if raw_text is not None and len(raw_text) > _TEXT_CHARS:
                raw_text = raw_text[:_TEXT_CHARS] + f"... ({len(raw_text)} characters)"
            self.rejected.append(RejectedLine(path, row.line, row.reason, raw_text))
        self.notes.append(f"{path}: {len(bad)} line(s) that cannot be read set aside (quality.rejected_lines)"
                          f"{_at_lines(pl.Series([b.line for b in bad], dtype=pl.Int64))}")

    def _cap_fields(self, raw: pl.DataFrame, path: str, bad: list[_BadRow]) -> pl.DataFrame:
        """Rows holding a field longer than ``max_field_chars``: an error, or set aside."""
        cols = [c for c in raw.columns if c != LINE]
        too_long = raw.select(pl.any_horizontal(pl.col(c).str.len_chars().fill_null(0) > self.max_field_chars
                                                for c in cols)).to_series()
        if not too_long.any():
            return raw
        hits = raw.filter(too_long)
        reasons = []
        for row in hits.iter_rows(named=True):
            col = next(c for c in cols if row[c] is not None and len(row[c]) > self.max_field_chars)
            reasons.append(f"field of {len(row[col]):,} characters in column {col!r} exceeds the limit of "
                           f"{self.max_field_chars} (--max-field-chars)")
        if self.bad_lines != "quarantine":
            raise InputError(reasons[0] + _hint(hits.height, raw.height), path=path, line=hits[LINE][0])
        bad.extend(_BadRow(line, reason) for line, reason in zip(hits[LINE], reasons, strict=True))
        if len(bad) > self.max_bad_lines or hits.height == raw.height:
            raise InputError(reasons[0], path=path, line=hits[LINE][0])
        return raw.filter(~too_long)

    def _note_ignored(self, found: list[str], fields: dict[str, str], path: str) -> None:
        used = set(fields.values()) | {self.symbol_column} | set(self.columns)
        ignored = [c for c in found if c != LINE and c not in used and c.strip().lower() not in _ALIASES]
        if ignored:
            self.notes.append(f"{path}: column(s) {', '.join(repr(c) for c in ignored)} ignored (not a bar field; "
                              "map one with --map COLUMN=field)")

    def _note_order(self, frame: pl.DataFrame, path: str) -> None:
        late = frame.select(
            (pl.col("ts") < pl.col("ts").cum_max().shift(1).over("symbol")).fill_null(False).sum()).item()
        if late:
            self.notes.append(f"{path}: {late} row(s) earlier than a row above them; sorted by time "
                              "(rows are stored in time order)")

    def _parse(self, raw: pl.DataFrame, fields: dict[str, str], path: str, interval: str) -> pl.DataFrame:
        where = _Where(path, raw.get_column(LINE))
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
        out["symbol"] = _symbols(raw, self.symbol_column, self.symbol_of(Path(path)), where)
        return pl.DataFrame(out).with_columns(pl.lit(interval).alias("interval"))


@dataclass(frozen=True)
class RejectedLine:
    """A line set aside by ``bad_lines="quarantine"``: the file, its 1-based line (``None`` when
    quoted fields spanning lines hid it), why, and its text (cut at 200 characters)."""

    path: str
    line: int | None
    reason: str
    text: str | None


@dataclass(frozen=True)
class _BadRow:
    line: int | None
    reason: str


class _BadRows(Exception):
    """Rows (indices into the frame being parsed) that cannot be read, each with its reason."""

    def __init__(self, rows: list[int], reasons: list[str], lines: pl.Series) -> None:
        super().__init__(reasons[0])
        self.rows, self.reasons = rows, reasons
        self.reason = reasons[0]
        first = lines[rows[0]]
        self.line = None if first is None else int(first)
        if self.line is None:  # quoted fields spanning lines left the physical line unknown
            self.reason = f"data row {rows[0] + 1}: {self.reason}"


class _Where:
    """Locates a row of the file being parsed, for error messages."""

    def __init__(self, path: str, lines: pl.Series) -> None:
        self.path, self.lines = path, lines

    def error(self, row: int, message: str) -> InputError:
        """An error of the whole file, shown at ``row``."""
        line = self.lines[row]
        if line is None:  # quoted fields spanning lines left the physical line unknown
            return InputError(f"data row {row + 1}: {message}", path=self.path)
        return InputError(message, path=self.path, line=int(line))

    def rows(self, rows: pl.Series | list[int], message: Callable[[int], str]) -> _BadRows:
        """Rows that cannot be read (``message(i)`` says why): the file fails at the first, or
        ``bad_lines="quarantine"`` sets them all aside."""
        rows = [int(i) for i in rows]
        return _BadRows(rows, [message(i) for i in rows], self.lines)


def _hint(bad: int, rows: int) -> str:
    """For a few bad lines in a large file: how to keep the good rows."""
    if rows >= 100 and bad * 100 <= rows:
        return f" ({bad} of {rows:,} rows; --bad-lines quarantine sets such lines aside and keeps the others)"
    return ""


def _at_lines(lines: pl.Series) -> str:
    shown = [str(x) for x in lines.drop_nulls().head(10).to_list()]
    if not shown:
        return ""
    more = ", ..." if lines.len() > len(shown) else ""
    return f" at line{'s' if len(shown) > 1 else ''} {', '.join(shown)}{more}"


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


# --------------------------------------------------------------------------- columns


def _map_columns(
    found: list[str], mapping: Mapping[str, str], symbol_column: str | None, path: str, delimiter: str = ","
) -> dict[str, str]:
    """Bar field -> the file's column, from ``mapping`` first, then Yahoo's names."""
    names = [c for c in found if c != LINE]
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
        raise InputError(f"missing required column(s) {wanted}; found: {', '.join(names)}{_delimiter_hint(names, delimiter)}",
                         path=path, line=1)
    return fields


def _delimiter_hint(names: list[str], delimiter: str) -> str:
    """A hint when the header seems split by another delimiter (``Date;Open;High``)."""
    if len(names) != 1:
        return ""
    for sep, shown in _DELIMITERS.items():
        if sep != delimiter and names[0].count(sep) >= 2:
            return f"; the header looks {shown}-separated: pass --delimiter {sep!r}"
    return ""


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
        raise where.rows(bad, lambda i: f"non-numeric value {values[i]!r} in column {values.name!r}")
    return out


def _parse_splits(values: pl.Series, where: _Where) -> pl.Series:
    """Split ratios: ``2:1`` or ``2/1`` (Yahoo) or a float (yfinance, 0 = none); null -> 1.0."""
    s = _cleaned(values)
    parts = s.str.extract_groups(r"^(\d+(?:\.\d+)?)\s*[:/]\s*(\d+(?:\.\d+)?)$").struct.unnest()
    ratio = parts[:, 0].cast(pl.Float64) / parts[:, 1].cast(pl.Float64)
    out = pl.select(pl.when(s.str.contains("[:/]")).then(ratio).otherwise(s.cast(pl.Float64, strict=False))).to_series()
    bad = ((out.is_null() | out.is_infinite()) & s.is_not_null()).arg_true()
    if len(bad):
        raise where.rows(bad, lambda i: f"split ratio {values[i]!r} in column {values.name!r} is neither a number nor like 2:1")
    return pl.select(pl.when(out.is_null() | (out == 0.0)).then(1.0).otherwise(out)).to_series()


def _symbols(raw: pl.DataFrame, column: str | None, symbol: str | None, where: _Where) -> pl.Series:
    if column is None:
        return pl.repeat(symbol, raw.height, eager=True, dtype=pl.String)
    s = _cleaned(raw.get_column(column))
    missing = s.is_null().arg_true()
    if len(missing):
        raise where.rows(missing, lambda i: f"missing symbol in column {column!r}")
    return s


# --------------------------------------------------------------------------- timestamps


def _parse_timestamps(
    values: pl.Series, where: _Where, interval: str, date_format: str | None, tz: str
) -> pl.Series:
    """UTC timestamps: dates at 00:00 for daily-and-longer intervals, bar-open instants otherwise."""
    s = _cleaned(values)
    missing = s.is_null().arg_true()
    if len(missing):
        raise where.rows(missing, lambda i: f"missing date in column {values.name!r}")
    daily = interval in DAILY_INTERVALS
    if date_format is not None:
        parsed = s.str.to_datetime(date_format, strict=False)
        _fail_unparsed(parsed, s, where, f"does not match date_format {date_format!r}")
        if parsed.dtype.time_zone is None and not daily:
            parsed = _localize(parsed, s, where, tz)
        return _finish(parsed, s, where, interval)
    known = s.str.contains(ISO_DATE) | s.str.contains(SLASH_DATE) | s.str.contains(ISO_DATETIME)
    if not known[0]:  # the first date decides the form: report the lines before the first readable one
        upto = int(known.arg_true()[0]) if known.any() else s.len()
        raise where.rows(list(range(upto)), lambda i: f"cannot parse date {s[i]!r}: expected {_FORMS} (or pass date_format)")
    first = s[0]
    if pl.Series([first]).str.contains(ISO_DATE)[0]:
        return _dates(s.str.to_date("%Y-%m-%d", strict=False), s, where, interval)
    if pl.Series([first]).str.contains(SLASH_DATE)[0]:
        return _dates(_slash_dates(s, where), s, where, interval)
    return _finish(_datetimes(s, where, tz, local_only=daily), s, where, interval)


def _fail_unparsed(parsed: pl.Series, s: pl.Series, where: _Where, why: str) -> None:
    bad = parsed.is_null().arg_true()
    if len(bad):
        raise where.rows(bad, lambda i: f"cannot parse date {s[i]!r}: {why}")


def _dates(parsed: pl.Series, s: pl.Series, where: _Where, interval: str) -> pl.Series:
    _fail_unparsed(parsed, s, where, f"expected the same form as {s[0]!r} (line {where.lines[0]})")
    if interval not in DAILY_INTERVALS:
        raise where.error(0, f"date {s[0]!r} has no time of day, but interval {interval!r} needs intraday timestamps")
    return parsed.cast(pl.Datetime("us")).dt.replace_time_zone("UTC")


def _slash_dates(s: pl.Series, where: _Where) -> pl.Series:
    """Month/day/year (Yahoo, US) or day/month/year, decided by the data; refuses to guess."""
    parts = s.str.extract_groups(SLASH_DATE).struct.unnest()
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
    parts = s.str.extract_groups(ISO_DATETIME).struct.unnest()
    day, clock, zone = parts[:, 0], parts[:, 1], parts[:, 2]
    clock = pl.select(pl.when(clock.str.len_chars() == 5).then(clock + ":00").otherwise(clock)).to_series()
    local = (day + " " + clock).str.to_datetime("%Y-%m-%d %H:%M:%S%.f", strict=False)
    _fail_unparsed(local, s, where, f"expected the same form as {s[0]!r} (line {where.lines[0]})")
    if local_only:
        return local
    has_zone = zone.is_not_null()
    if has_zone.any() and not has_zone.all():
        raise where.rows(
            (has_zone != has_zone[0]).arg_true(),
            lambda i: f"ambiguous timestamps: {s[i]!r} and {s[0]!r} (line {where.lines[0]}) differ in having a UTC offset",
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
        raise where.rows(bad, lambda i: f"timestamp {s[i]!r} is ambiguous or does not exist in {tz} (a DST change)")
    return zoned.dt.convert_time_zone("UTC")


def _finish(parsed: pl.Series, s: pl.Series, where: _Where, interval: str) -> pl.Series:
    """Daily intervals: the written date at 00:00 UTC (a time must be midnight). Else UTC instants."""
    if interval not in DAILY_INTERVALS:
        return parsed if parsed.dtype.time_zone is not None else parsed.dt.replace_time_zone("UTC")
    off_midnight = (parsed.dt.truncate("1d") != parsed).arg_true()
    if len(off_midnight):
        raise where.rows(off_midnight, lambda i: f"timestamp {s[i]!r} has a time of day, but interval {interval!r} expects dates")
    naive = parsed if parsed.dtype.time_zone is None else parsed.dt.replace_time_zone(None)
    return naive.dt.replace_time_zone("UTC")
