"""CsvSource: Yahoo's export format, generic mappings, directories, and one-line errors."""

from __future__ import annotations

import datetime as dt
import gzip
import shutil
from pathlib import Path

import polars as pl
import pytest

from alphatwin.errors import InputError, SymbolNotFoundError
from alphatwin.sources.base import BAR_SCHEMA, FetchRequest, Source
from alphatwin.sources.csv import CsvSource
from alphatwin.sources.sample import sample_files, sample_source

FIXTURES = Path(__file__).parent / "fixtures"
GOOG = FIXTURES / "GOOG.csv"
YAHOO_HEADER = "Date,Open,High,Low,Close,Adj Close,Volume\n"
UTC = dt.timezone.utc


def write(tmp_path: Path, name: str, text: str | bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


def fetch_all(src: CsvSource, **request: object) -> pl.DataFrame:
    frames = list(src.fetch(FetchRequest(**request)))
    return pl.concat(frames) if frames else pl.DataFrame(schema=BAR_SCHEMA)


def error_of(src: CsvSource, **request: object) -> InputError:
    with pytest.raises(InputError) as info:
        fetch_all(src, **request)
    return info.value


# --------------------------------------------------------------------------- real files


def test_arch_sp500_file_reads_in_full() -> None:
    sp500 = sample_files()[0]
    src = CsvSource(sp500.path, symbol=sp500.symbol)
    assert isinstance(src, Source) and src.name == "csv" and src.network is False
    frame = fetch_all(src)
    assert frame.schema == pl.Schema(BAR_SCHEMA)
    assert frame.height == 5031
    assert frame["symbol"].unique().to_list() == ["^GSPC"]
    first, last = frame.row(0, named=True), frame.row(-1, named=True)
    assert first["ts"] == dt.datetime(1999, 1, 4, tzinfo=UTC)
    assert (first["open"], first["high"], first["low"], first["close"]) == (1229.22998, 1248.810059, 1219.099976, 1228.099976)
    assert first["volume"] == 877000000.0
    assert last["ts"] == dt.datetime(2018, 12, 31, tzinfo=UTC)
    assert last["close"] == 2506.850098
    assert frame["ts"].is_sorted()
    assert (frame["dividend"] == 0.0).all() and (frame["split_ratio"] == 1.0).all()


def test_sample_source_names_both_indices() -> None:
    files = sample_files()
    assert [f.symbol for f in files] == ["^GSPC", "^IXIC"]
    assert all(f.path.is_file() and f.path.name.endswith(".csv.gz") for f in files)
    frame = fetch_all(sample_source())
    counts = dict(frame.group_by("symbol").len().iter_rows())
    assert counts == {"^GSPC": 5031, "^IXIC": 5031}


def test_symbol_defaults_to_file_stem() -> None:
    frame = fetch_all(CsvSource(sample_files()[1].path))
    assert frame["symbol"][0] == "nasdaq"


def test_goog_fixture_iso_dates_and_null_row() -> None:
    frame = fetch_all(CsvSource(GOOG))
    assert frame["symbol"].unique().to_list() == ["GOOG"]
    assert frame.height == 9  # Yahoo's all-"null" row for 2004-08-28 is dropped
    assert frame["ts"][0] == dt.datetime(2004, 8, 19, tzinfo=UTC)
    assert dt.datetime(2004, 8, 28, tzinfo=UTC) not in frame["ts"].to_list()
    assert frame.row(0) == ("GOOG", "1d", dt.datetime(2004, 8, 19, tzinfo=UTC), 100.01, 104.06, 95.96, 100.34, 44659000.0, 0.0, 1.0)
    assert "Adj Close" not in frame.columns


def test_symbol_from_flag_and_gzip_stem(tmp_path: Path) -> None:
    assert fetch_all(CsvSource(GOOG, symbol="GOOGL"))["symbol"][0] == "GOOGL"
    gz = write(tmp_path, "BTC-USD.csv.gz", gzip.compress(GOOG.read_bytes()))
    frame = fetch_all(CsvSource(gz))
    assert frame["symbol"][0] == "BTC-USD" and frame.height == 9
    assert fetch_all(CsvSource(gz, symbol={"BTC-USD": "XBT"}))["symbol"][0] == "XBT"


def test_symbol_from_column(tmp_path: Path) -> None:
    path = write(
        tmp_path, "mixed.csv",
        "Symbol,Date,Open,High,Low,Close,Volume\n"
        "MSFT,2024-01-03,10,11,9,10.5,100\n"
        "AAPL,2024-01-02,20,21,19,20.5,200\n"
        "MSFT,2024-01-02,11,12,10,11.5,300\n",
    )
    frame = fetch_all(CsvSource(path, symbol_column="Symbol"))
    assert frame.select("symbol", "close").rows() == [("AAPL", 20.5), ("MSFT", 11.5), ("MSFT", 10.5)]
    only = fetch_all(CsvSource(path, symbol_column="Symbol"), symbols=("MSFT",))
    assert only["symbol"].unique().to_list() == ["MSFT"]


# --------------------------------------------------------------------------- timestamps


def test_intraday_with_offsets_converts_to_utc(tmp_path: Path) -> None:
    path = write(
        tmp_path, "SPY.csv",
        "Datetime,Open,High,Low,Close,Adj Close,Volume\n"
        "2024-03-08 15:55:00-05:00,511,512,510,511.5,511.5,1000\n"
        "2024-03-11 09:30:00-04:00,510,511,509,510.5,510.5,2000\n"
        "2024-03-11 09:35:00-04:00,510.5,511,510,510.8,510.8,1500\n",
    )
    frame = fetch_all(CsvSource(path), interval="5m")
    assert frame["ts"].to_list() == [
        dt.datetime(2024, 3, 8, 20, 55, tzinfo=UTC),
        dt.datetime(2024, 3, 11, 13, 30, tzinfo=UTC),
        dt.datetime(2024, 3, 11, 13, 35, tzinfo=UTC),
    ]
    assert frame["interval"].unique().to_list() == ["5m"]


def test_intraday_without_zone_uses_tz_option(tmp_path: Path) -> None:
    path = write(
        tmp_path, "SPY.csv",
        "Datetime,Open,High,Low,Close,Volume\n2024-01-02 09:30,1,2,0.5,1.5,10\n2024-07-01 09:30:00,1,2,0.5,1.5,10\n",
    )
    ny = fetch_all(CsvSource(path, tz="America/New_York"), interval="1m")["ts"].to_list()
    assert ny == [dt.datetime(2024, 1, 2, 14, 30, tzinfo=UTC), dt.datetime(2024, 7, 1, 13, 30, tzinfo=UTC)]
    utc = fetch_all(CsvSource(path), interval="1m")["ts"].to_list()
    assert utc == [dt.datetime(2024, 1, 2, 9, 30, tzinfo=UTC), dt.datetime(2024, 7, 1, 9, 30, tzinfo=UTC)]


def test_daily_timestamps_at_local_midnight_keep_their_date(tmp_path: Path) -> None:
    # yfinance's DataFrame.to_csv writes daily bars as local midnight with an offset
    path = write(tmp_path, "AAPL.csv", "Date,Open,High,Low,Close,Volume\n2024-01-02 00:00:00-05:00,1,2,0.5,1.5,10\n")
    assert fetch_all(CsvSource(path))["ts"].to_list() == [dt.datetime(2024, 1, 2, tzinfo=UTC)]


def test_day_first_slash_dates_are_inferred(tmp_path: Path) -> None:
    path = write(tmp_path, "X.csv", YAHOO_HEADER + "2/1/2024,1,2,0.5,1.5,1.5,10\n13/1/2024,1,2,0.5,1.5,1.5,10\n")
    assert fetch_all(CsvSource(path))["ts"].to_list() == [
        dt.datetime(2024, 1, 2, tzinfo=UTC), dt.datetime(2024, 1, 13, tzinfo=UTC)
    ]
    explicit = fetch_all(CsvSource(path, date_format="%d/%m/%Y"))
    assert explicit["ts"][0] == dt.datetime(2024, 1, 2, tzinfo=UTC)


# --------------------------------------------------------------------------- mapping, directories, ranges


def test_generic_mapping_with_date_format(tmp_path: Path) -> None:
    path = write(
        tmp_path, "export.csv",
        "ticker;timestamp;px_open;px_high;px_low;px_last;qty;note\n"
        "ABC;02.01.2024;10;11;9;10.5;100;x\n"
        "ABC;03.01.2024;10.5;12;10;11;150;y\n",
    )
    src = CsvSource(
        path,
        columns={"timestamp": "ts", "px_open": "open", "px_high": "high", "px_low": "low", "px_last": "close", "qty": "volume"},
        symbol_column="ticker",
        date_format="%d.%m.%Y",
        delimiter=";",
    )
    frame = fetch_all(src)
    assert frame.rows() == [
        ("ABC", "1d", dt.datetime(2024, 1, 2, tzinfo=UTC), 10.0, 11.0, 9.0, 10.5, 100.0, 0.0, 1.0),
        ("ABC", "1d", dt.datetime(2024, 1, 3, tzinfo=UTC), 10.5, 12.0, 10.0, 11.0, 150.0, 0.0, 1.0),
    ]


def test_mapping_overrides_yahoo_names(tmp_path: Path) -> None:
    path = write(tmp_path, "X.csv", "Date,Open,High,Low,Close,Last,Volume\n2024-01-02,1,2,0.5,1.5,1.6,10\n")
    assert fetch_all(CsvSource(path, columns={"Last": "close", "Close": "ignore"}))["close"][0] == 1.6


def test_directory_of_files(tmp_path: Path) -> None:
    shutil.copy(GOOG, tmp_path / "GOOG.csv")
    (tmp_path / "MSFT.csv.gz").write_bytes(gzip.compress(GOOG.read_bytes()))
    (tmp_path / "notes.txt").write_text("not a csv")
    src = CsvSource(tmp_path)
    assert [f.name for f in src.files()] == ["GOOG.csv", "MSFT.csv.gz"]
    frame = fetch_all(src)
    assert dict(frame.group_by("symbol").len().iter_rows()) == {"GOOG": 9, "MSFT": 9}
    assert fetch_all(src, symbols=("MSFT",))["symbol"].unique().to_list() == ["MSFT"]
    with pytest.raises(SymbolNotFoundError, match="'IBM'"):
        fetch_all(src, symbols=("IBM",))


def test_range_is_half_open(tmp_path: Path) -> None:
    frame = fetch_all(CsvSource(GOOG), start=dt.datetime(2004, 8, 20), end=dt.datetime(2004, 8, 25))
    assert frame["ts"].dt.date().to_list() == [dt.date(2004, 8, 20), dt.date(2004, 8, 23), dt.date(2004, 8, 24)]
    sp500 = fetch_all(CsvSource(sample_files()[0].path), start=dt.datetime(2018, 1, 1), end=dt.datetime(2019, 1, 1))
    assert sp500.height == 251 and sp500["ts"].min() == dt.datetime(2018, 1, 2, tzinfo=UTC)
    assert list(CsvSource(GOOG).fetch(FetchRequest(start=dt.datetime(2010, 1, 1)))) == []


def test_dividends_and_splits_columns(tmp_path: Path) -> None:
    path = write(
        tmp_path, "AAPL.csv",
        "Date,Open,High,Low,Close,Volume,Dividends,Stock Splits\n"
        "2020-08-28,500,510,495,499,100,0,0\n"
        "2020-08-31,127,131,126,129,400,0,4:1\n"
        "2020-11-06,118,119,116,118.7,100,0.205,0.0\n"
        "2021-01-04,133,133.6,126.8,129.4,100,,2.0\n"
        "2021-01-05,129,131,128,131,100,null,3/2\n",
    )
    frame = fetch_all(CsvSource(path))
    assert frame["split_ratio"].to_list() == [1.0, 4.0, 1.0, 2.0, 1.5]
    assert frame["dividend"].to_list() == [0.0, 0.0, 0.205, 0.0, 0.0]


def test_parseable_but_implausible_values_pass_through(tmp_path: Path) -> None:
    path = write(tmp_path, "X.csv", YAHOO_HEADER + "2024-01-02,-1,0.5,2,1,1,-5\n2024-01-03,1,2,0.5,null,1,10\n")
    frame = fetch_all(CsvSource(path))
    assert frame["open"].to_list() == [-1.0, 1.0] and frame["volume"][0] == -5.0
    assert frame["close"].to_list() == [1.0, None]


def test_blank_lines_and_crlf_keep_line_numbers(tmp_path: Path) -> None:
    ok = write(tmp_path, "OK.csv", (YAHOO_HEADER + "\n2024-01-02,1,2,0.5,1.5,1.5,10\n  \n").replace("\n", "\r\n"))
    assert fetch_all(CsvSource(ok)).height == 1
    bad = write(tmp_path, "BAD.csv", YAHOO_HEADER + "2024-01-02,1,2,0.5,1.5,1.5,10\n\n2024-01-03,1,2,0.5,1.5,1.5,10\n2024-01-0x,1,2,0.5,1.5,1.5,10\n")
    err = error_of(CsvSource(bad))
    assert err.line == 5 and str(err).startswith(f"{bad}:5: cannot parse date '2024-01-0x'")


# --------------------------------------------------------------------------- errors


def test_ragged_row_names_line(tmp_path: Path) -> None:
    path = write(tmp_path, "X.csv", YAHOO_HEADER + "2024-01-02,1,2,0.5,1.5,1.5,10\n2024-01-03,1,2,0.5,1.5,10\n")
    assert str(error_of(CsvSource(path))) == f"{path}:3: malformed CSV: row has 6 fields, the header has 7"
    longer = write(tmp_path, "Y.csv", YAHOO_HEADER + "2024-01-02,1,2,0.5,1.5,1.5,10,99\n")
    assert str(error_of(CsvSource(longer))) == f"{longer}:2: malformed CSV: row has 8 fields, the header has 7"


def test_ragged_row_in_quoted_file_names_line(tmp_path: Path) -> None:
    path = write(
        tmp_path, "Q.csv",
        'Date,Open,High,Low,Close,Note\n2024-01-02,1,2,0.5,1.5,"a, b"\n2024-01-03,1,2,0.5,1.5,"multi\nline"\n2024-01-04,1,2\n',
    )
    assert str(error_of(CsvSource(path))) == f"{path}:5: malformed CSV: row has 3 fields, the header has 6"
    fine = write(tmp_path, "R.csv", 'Date,Open,High,Low,Close,Note\n2024-01-02,1,2,0.5,1.5,"x\ny"\n2024-01-0x,1,2,0.5,1.5,z\n')
    assert error_of(CsvSource(fine)).line == 4


def test_bad_quoting_names_line(tmp_path: Path) -> None:
    open_quote = write(tmp_path, "O.csv", 'Date,Open,High,Low,Close\n2024-01-02,1,2,0.5,1.5\n2024-01-03,"1,2,0.5,1.5\n2024-01-04,1,2,0.5,1.5\n')
    assert str(error_of(CsvSource(open_quote))) == f"{open_quote}:3: malformed CSV: a quoted field is never closed"
    stray = write(tmp_path, "S.csv", 'Date,Open,High,Low,Close\n2024-01-02,1,2,0.5,1.5\n2024-01-03,1"x,2,0.5,1.5\n')
    assert str(error_of(CsvSource(stray))) == f"{stray}:3: malformed CSV: a quote character inside an unquoted field"


def test_unparseable_date_names_line_and_value(tmp_path: Path) -> None:
    path = write(tmp_path, "X.csv", YAHOO_HEADER + "2024-01-02,1,2,0.5,1.5,1.5,10\n2024-02-30,1,2,0.5,1.5,1.5,10\n")
    err = error_of(CsvSource(path))
    assert err.path == str(path) and err.line == 3
    assert str(err).startswith(f"{path}:3: cannot parse date '2024-02-30'")
    first = write(tmp_path, "Y.csv", YAHOO_HEADER + "yesterday,1,2,0.5,1.5,1.5,10\n")
    assert str(error_of(CsvSource(first))).startswith(f"{first}:2: cannot parse date 'yesterday': expected a date like")
    fmt = write(tmp_path, "Z.csv", YAHOO_HEADER + "02.01.2024,1,2,0.5,1.5,1.5,10\n2024-01-03,1,2,0.5,1.5,1.5,10\n")
    assert str(error_of(CsvSource(fmt, date_format="%d.%m.%Y"))) == (
        f"{fmt}:3: cannot parse date '2024-01-03': does not match date_format '%d.%m.%Y'"
    )


def test_non_numeric_price_names_line_column_value(tmp_path: Path) -> None:
    path = write(tmp_path, "X.csv", YAHOO_HEADER + "2024-01-02,1,2,0.5,1.5,1.5,10\n2024-01-03,1,2,abc,1.5,1.5,10\n")
    assert str(error_of(CsvSource(path))) == f"{path}:3: non-numeric value 'abc' in column 'Low'"
    split = write(tmp_path, "S.csv", "Date,Open,High,Low,Close,Stock Splits\n2024-01-02,1,2,0.5,1.5,two\n")
    assert error_of(CsvSource(split)).line == 2


def test_missing_required_columns_lists_found(tmp_path: Path) -> None:
    path = write(tmp_path, "X.csv", "Date,Open,High,Volume\n2024-01-02,1,2,10\n")
    assert str(error_of(CsvSource(path))) == f"{path}:1: missing required column(s) Low, Close; found: Date, Open, High, Volume"
    mapped = write(tmp_path, "Y.csv", "ts,o,h,l,c\n2024-01-02,1,2,0.5,1.5\n")
    err = error_of(CsvSource(mapped, columns={"time": "ts"}))
    assert str(err) == f"{mapped}:1: column 'time' (mapped to ts) not found; found: ts, o, h, l, c"
    col = error_of(CsvSource(GOOG, symbol_column="Ticker"))
    assert str(col) == f"{GOOG}:1: symbol column 'Ticker' not found; found: Date, Open, High, Low, Close, Adj Close, Volume"


def test_empty_and_header_only_files(tmp_path: Path) -> None:
    empty = write(tmp_path, "E.csv", "")
    assert str(error_of(CsvSource(empty))) == f"{empty}: file is empty"
    blank = write(tmp_path, "B.csv", "\n \n")
    assert str(error_of(CsvSource(blank))) == f"{blank}: file is empty"
    header = write(tmp_path, "H.csv", YAHOO_HEADER)
    assert str(error_of(CsvSource(header))) == f"{header}:1: file has a header but no data rows"
    trailing = write(tmp_path, "T.csv", YAHOO_HEADER + "\n\n")
    assert str(error_of(CsvSource(trailing))) == f"{trailing}:1: file has a header but no data rows"
    nulls = write(tmp_path, "N.csv", YAHOO_HEADER + "2024-01-02,null,null,null,null,null,null\n")
    assert list(CsvSource(nulls).fetch(FetchRequest())) == []


def test_wrong_encodings(tmp_path: Path) -> None:
    latin = write(tmp_path, "L.csv", (YAHOO_HEADER + "2024-01-02,1,2,0.5,1.5,1.5,10\n2024-01-03,1,2,0.5,1.5,1.5,10 é\n").encode("latin-1"))
    assert str(error_of(CsvSource(latin))) == f"{latin}:3: not valid UTF-8 (byte 0xe9); save the file as UTF-8"
    utf16 = write(tmp_path, "U.csv", (YAHOO_HEADER + "2024-01-02,1,2,0.5,1.5,1.5,10\n").encode("utf-16"))
    assert str(error_of(CsvSource(utf16))) == f"{utf16}: file is UTF-16 encoded; save it as UTF-8"
    bom = write(tmp_path, "BOM.csv", b"\xef\xbb\xbf" + (YAHOO_HEADER + "2024-01-02,1,2,0.5,1.5,1.5,10\n").encode())
    assert fetch_all(CsvSource(bom)).height == 1


def test_unreadable_inputs(tmp_path: Path) -> None:
    missing = tmp_path / "nope.csv"
    assert str(error_of(CsvSource(missing))) == f"{missing}: no such file or directory"
    gz = write(tmp_path, "X.csv.gz", b"\x1f\x8b\x08\x00garbage")
    assert str(error_of(CsvSource(gz))).startswith(f"{gz}: not a valid gzip file")
    folder = tmp_path / "folder.csv"
    folder.mkdir()
    with pytest.raises(InputError, match=r"folder\.csv: cannot read file: Is a directory"):
        CsvSource(tmp_path).read(folder)


def test_directory_without_csv_files(tmp_path: Path) -> None:
    (tmp_path / "readme.txt").write_text("nothing here")
    assert str(error_of(CsvSource(tmp_path))) == f"{tmp_path}: directory has no CSV files (*.csv, *.csv.gz)"


def test_ambiguous_slash_dates(tmp_path: Path) -> None:
    path = write(tmp_path, "X.csv", YAHOO_HEADER + "1/4/1999,1,2,0.5,1.5,1.5,10\n1/5/1999,1,2,0.5,1.5,1.5,10\n")
    err = error_of(CsvSource(path))
    assert str(err).startswith(f"{path}:2: ambiguous date format: dates like '1/4/1999' read as month/day/year and as day/month/year")
    assert fetch_all(CsvSource(path, date_format="%m/%d/%Y"))["ts"][0] == dt.datetime(1999, 1, 4, tzinfo=UTC)
    mixed = write(tmp_path, "M.csv", YAHOO_HEADER + "13/1/1999,1,2,0.5,1.5,1.5,10\n1/2/1999,1,2,0.5,1.5,1.5,10\n1/14/1999,1,2,0.5,1.5,1.5,10\n")
    assert str(error_of(CsvSource(mixed))) == (
        f"{mixed}:4: ambiguous date format: '13/1/1999' (line 2) reads day/month/year but "
        "'1/14/1999' (line 4) reads month/day/year; pass date_format"
    )


def test_interval_and_timestamp_kind_must_agree(tmp_path: Path) -> None:
    err = error_of(CsvSource(GOOG), interval="5m")
    assert str(err) == f"{GOOG}:2: date '2004-08-19' has no time of day, but interval '5m' needs intraday timestamps"
    intraday = write(tmp_path, "I.csv", "Datetime,Open,High,Low,Close\n2024-01-02 00:00:00,1,2,0.5,1.5\n2024-01-02 09:30:00,1,2,0.5,1.5\n")
    assert str(error_of(CsvSource(intraday))) == (
        f"{intraday}:3: timestamp '2024-01-02 09:30:00' has a time of day, but interval '1d' expects dates"
    )


def test_zone_problems(tmp_path: Path) -> None:
    mixed = write(tmp_path, "M.csv", "Datetime,Open,High,Low,Close\n2024-01-02 09:30:00-05:00,1,2,0.5,1.5\n2024-01-02 09:35:00,1,2,0.5,1.5\n")
    assert error_of(CsvSource(mixed), interval="5m").line == 3
    dst = write(tmp_path, "D.csv", "Datetime,Open,High,Low,Close\n2024-03-10 01:30:00,1,2,0.5,1.5\n2024-03-10 02:30:00,1,2,0.5,1.5\n")
    err = error_of(CsvSource(dst, tz="America/New_York"), interval="30m")
    assert str(err) == f"{dst}:3: timestamp '2024-03-10 02:30:00' is ambiguous or does not exist in America/New_York (a DST change)"


def test_duplicate_header_and_missing_symbol(tmp_path: Path) -> None:
    dup = write(tmp_path, "D.csv", "Date,Open,High,Low,Close,Close\n2024-01-02,1,2,0.5,1.5,1.5\n")
    assert str(error_of(CsvSource(dup))) == f"{dup}:1: duplicate column 'Close' in the header"
    sym = write(tmp_path, "S.csv", "Symbol,Date,Open,High,Low,Close\nA,2024-01-02,1,2,0.5,1.5\n,2024-01-03,1,2,0.5,1.5\n")
    assert str(error_of(CsvSource(sym, symbol_column="Symbol"))) == f"{sym}:3: missing symbol in column 'Symbol'"
    nodate = write(tmp_path, "N.csv", YAHOO_HEADER + "2024-01-02,1,2,0.5,1.5,1.5,10\n,1,2,0.5,1.5,1.5,10\n")
    assert str(error_of(CsvSource(nodate))) == f"{nodate}:3: missing date in column 'Date'"


def test_bad_options() -> None:
    with pytest.raises(InputError, match="either `symbol` or `symbol_column`"):
        CsvSource(GOOG, symbol="A", symbol_column="B")
    with pytest.raises(InputError, match="`tz` must be an IANA time zone"):
        CsvSource(GOOG, tz="Mars/Olympus")
    with pytest.raises(InputError, match="`columns` must map to one of"):
        CsvSource(GOOG, columns={"px": "price"})
    with pytest.raises(InputError, match="`delimiter`"):
        CsvSource(GOOG, delimiter=";;")
