"""Reading a CSV file into rows of text for :mod:`alphatwin.sources.csv`: the bytes (gunzipped,
size-capped, checked to be UTF-8 text), the header, and each row's 1-based physical line (for
error messages), quoted fields spanning lines included."""

from __future__ import annotations

import csv as _csv
import gzip
import io
import zlib
from pathlib import Path

import numpy as np
import polars as pl

from alphatwin.errors import InputError

__all__ = ["read_bytes", "read_frame", "LINE", "MAX_FILE_BYTES", "ISO_DATE", "ISO_DATETIME", "SLASH_DATE"]

MAX_FILE_BYTES = 2 * 1024**3  # per file, after gunzip (a gzip bomb stops here too)
LINE = "__line"  # the column holding each row's 1-based physical line
ISO_DATE = r"^\d{4}-\d{1,2}-\d{1,2}$"
SLASH_DATE = r"^(\d{1,2})/(\d{1,2})/(\d{4})$"
ISO_DATETIME = r"^(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?)\s*(Z|[+-]\d{2}:?\d{2})?$"

def read_bytes(path: Path, limit: int = MAX_FILE_BYTES) -> bytes:
    """The file's bytes (gunzipped), checked to be non-empty UTF-8 text of at most ``limit`` bytes."""
    where = str(path)
    too_big = f"file is larger than the limit of {limit:,} bytes (--max-file-bytes); split it or raise the limit"
    try:
        if path.stat().st_size > limit:
            raise InputError(too_big, path=where)
        data = path.read_bytes()
        if data[:2] == b"\x1f\x8b":
            with gzip.GzipFile(fileobj=io.BytesIO(data)) as unzipped:
                data = unzipped.read(limit + 1)
            if len(data) > limit:
                raise InputError(f"gunzipped {too_big}", path=where)
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


def read_frame(
    data: bytes, path: str, delimiter: str, *, keep_ragged: bool = False
) -> tuple[pl.DataFrame, list[tuple[int, str]]]:
    """All cells as strings, plus the 1-based line of each row; blank lines dropped.

    A ragged row fails the file, or with ``keep_ragged`` is blanked out and returned as
    ``(line, reason)``.
    """
    lines, blank, ragged = _row_lines(data, path, delimiter, keep_ragged=keep_ragged)
    if ragged:
        text = data.split(b"\n")
        for first, last, _ in ragged:
            for i in range(first - 1, last):
                text[i] = b""
        data = b"\n".join(text)
    _check_header(data, path, delimiter)
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
    line_col = pl.Series(LINE, lines, dtype=pl.Int64) if lines is not None else pl.lit(None, pl.Int64).alias(LINE)
    raw = raw.with_columns(line_col).filter(~pl.Series(blank, dtype=pl.Boolean))
    if raw.height == 0 and not ragged:
        raise InputError("file has a header but no data rows", path=path, line=1)
    return raw, [(first, reason) for first, _, reason in ragged]


def _check_header(data: bytes, path: str, delimiter: str) -> None:
    """Refuse a file whose first line is data (no header), before its values pass for column names."""
    first = next((ln for ln in data.splitlines() if ln.strip()), b"").decode("utf-8", "replace")
    cells = [c.strip().strip('"') for c in first.split(delimiter)]
    dated = any(pl.Series(cells[:1], dtype=pl.String).str.contains(f"{ISO_DATE}|{SLASH_DATE}|{ISO_DATETIME[:-1]}"))
    numbers = sum(_is_number(c) for c in cells)
    if len(cells) > 1 and (dated or numbers > len(cells) // 2):
        raise InputError(
            f"the first line looks like data, not a header ({first[:60]!r}); add a header line like "
            "Date,Open,High,Low,Close,Volume", path=path, line=1)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _row_lines(
    data: bytes, path: str, delimiter: str, *, keep_ragged: bool = False
) -> tuple[np.ndarray | None, np.ndarray, list[tuple[int, int, str]]]:
    """Line number of each data row and whether it is blank; raises on a ragged row.

    Without quote characters every physical line is one row and a vectorised count of
    delimiters per line finds ragged rows; with quotes the standard ``csv`` module walks the
    records (fields may then hold delimiters and newlines).
    """
    if b'"' in data:
        return _row_lines_quoted(data.decode("utf-8"), path, delimiter, keep_ragged)
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
    ragged: list[tuple[int, int, str]] = []
    for i in odd[odd > header]:
        if data[starts[i] : ends[i]].strip():
            reason = f"malformed CSV: row has {fields[i]} fields, the header has {fields[header]}"
            if not keep_ragged:
                raise InputError(reason, path=path, line=int(i) + 1)
            ragged.append((int(i) + 1, int(i) + 1, reason))
        content[i] = False
    return np.arange(header + 2, len(starts) + 1), ~content[header + 1 :], ragged


def _row_lines_quoted(
    text: str, path: str, delimiter: str, keep_ragged: bool = False
) -> tuple[np.ndarray, np.ndarray, list[tuple[int, int, str]]]:
    reader = _csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    lines: list[int] = []
    blank: list[bool] = []
    ragged: list[tuple[int, int, str]] = []
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
                reason = f"malformed CSV: row has {len(record)} fields, the header has {width}"
                if not keep_ragged:
                    raise InputError(reason, path=path, line=line)
                ragged.append((line, reader.line_num, reason))
                lines.extend(range(line, reader.line_num + 1))
                blank.extend([True] * (reader.line_num - line + 1))
                continue
            lines.append(line)
            blank.append(empty)
    except _csv.Error as exc:
        if "unexpected end of data" in str(exc):
            raise InputError("malformed CSV: a quoted field is never closed", path=path, line=prev + 1) from None
        raise InputError(f"malformed CSV: {exc}", path=path, line=reader.line_num) from None
    return np.asarray(lines, dtype=np.int64), np.asarray(blank, dtype=bool), ragged


def _stray_quote_line(data: bytes, delimiter: str) -> int | None:
    """The first line with a quote in the middle of a field (Polars' error does not say where)."""
    sep = delimiter.encode()
    for number, line in enumerate(data.splitlines(), start=1):
        if b'"' in line and any(b'"' in f and not f.strip().startswith(b'"') for f in line.split(sep)):
            return number
    return None
