"""``alphatwin ingest {yahoo,stooq,auto,csv,synthetic,sample}``: sources -> raw lake."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from alphatwin.cli.common import parse_when, progress_rows, state
from alphatwin.errors import InputError

if TYPE_CHECKING:
    from alphatwin.cli.common import State

app = typer.Typer(
    help="Ingest bars from a source into the immutable raw lake (recorded in meta.ingest_runs).\n\n"
    "Example: alphatwin ingest csv data/GOOG.csv --symbol GOOG --interval 1d",
    no_args_is_help=True,
)

Interval = Annotated[str, typer.Option("--interval", "-i", help="Bar interval: 1m 2m 5m 15m 30m 60m 90m 1h 1d 5d 1wk 1mo 3mo.")]
Start = Annotated[str | None, typer.Option("--start", help="First bar to fetch (inclusive), e.g. 2020-01-31.", show_default=False)]
End = Annotated[str | None, typer.Option("--end", help="End of the range (exclusive), e.g. 2024-12-31.", show_default=False)]
Fmt = Annotated[str, typer.Option("--format", "-f", help="Summary format: table or json.")]
NoValidate = Annotated[bool, typer.Option("--no-validate", help="Skip the quality gate (validate later with `alphatwin validate`).")]
NoFallback = Annotated[bool, typer.Option("--no-fallback", help="Fail instead of falling back to data already in the lake.")]


def _request(symbols: list[str] | tuple[str, ...], interval: str, start: str | None, end: str | None) -> Any:
    from alphatwin.sources.base import FetchRequest, check_symbol

    for symbol in symbols:
        check_symbol(symbol, "SYMBOLS")
    return FetchRequest(tuple(symbols), interval, parse_when(start, "--start"), parse_when(end, "--end"))


def run_ingest(st: State, source: Any, request: Any, *, fmt: str = "table", fallback: bool = True,
               total: int | None = None, command: str = "", validate: bool = True) -> Any:
    """Run one ingest (validated by the quality gate unless ``validate`` is false) with a
    progress bar, and print its summary (shared by every sub-command)."""
    from alphatwin.lake.ingest import ingest

    st.start_logging()
    gate = None
    if validate:
        from alphatwin.quality.gate import QualityGate

        gate = QualityGate(st.paths, request, quarantine_outliers=st.settings.quarantine_outliers)
    from alphatwin.quality.store import WithRejectedLines

    rejected = getattr(source, "rejected", None)
    with progress_rows(f"ingest {source.name}", total) as advance:
        result = ingest(source, request, st.paths, progress=advance, command=command,
                        fallback_to_lake=fallback and st.settings.fallback_to_lake,
                        gate=WithRejectedLines(gate, rejected) if rejected is not None else gate)
    _summary(result, fmt, gate, getattr(source, "notes", None))
    if result.failed and set(result.failed) - set(result.stale):
        missing = sorted(set(result.failed) - set(result.stale))
        raise InputError(f"no data for {', '.join(missing)}: " + "; ".join(result.failed[s] for s in missing))
    return result


def _summary(result: Any, fmt: str, gate: Any = None, notes: list[str] | None = None) -> None:
    quality = None
    if gate is not None and gate.counts.received:
        c = gate.counts
        quality = {"validation_id": gate.validation_id, "suite": gate.suite, "received": c.received,
                   "accepted": c.accepted, "quarantined": c.quarantined, "collapsed": c.collapsed,
                   "flagged": c.flagged, "restated": c.restated}
    if fmt == "json":
        typer.echo(json.dumps({**result.as_dict(), "quality": quality, "notes": list(notes or [])}, indent=2))
        return
    rate = result.rows / result.wall_s if result.wall_s else 0.0
    typer.echo(
        f"ingest {result.ingest_id}: {result.status}, {result.rows:,} rows in {result.files} file(s) "
        f"from {result.source} in {result.wall_s:.2f}s ({rate:,.0f} rows/s)"
    )
    if quality is not None:
        typer.echo(
            f"  validated ({quality['suite']}): {quality['accepted']:,} accepted, {quality['quarantined']:,} "
            f"quarantined ({quality['collapsed']:,} duplicate copies), {quality['flagged']:,} flagged, "
            f"{quality['restated']:,} restated"
        )
    for note in notes or []:
        typer.echo(f"  note: {note}")
    for symbol, reason in sorted(result.failed.items()):
        held = result.stale.get(symbol)
        note = f"; serving lake data up to {held:%Y-%m-%d %H:%M}" if held else ""
        typer.echo(f"  {symbol}: failed ({reason}){note}", err=True)


def _network(ctx: typer.Context, names: list[str], symbols: list[str], interval: str, start: str | None,
             end: str | None, fmt: str, no_fallback: bool, command: str, no_validate: bool) -> None:
    from alphatwin.sources.resilience import build_network_source

    st = state(ctx)
    symbols = symbols or list(st.settings.universe)
    source = build_network_source(names, st.settings, st.paths.state)
    run_ingest(st, source, _request(symbols, interval, start, end), fmt=fmt, fallback=not no_fallback,
               command=command, validate=not no_validate)


@app.command("yahoo")
def yahoo(
    ctx: typer.Context,
    symbols: Annotated[list[str] | None, typer.Argument(help="Yahoo symbols: AAPL, EURUSD=X, BTC-USD... (default: [universe] symbols).", show_default=False)] = None,
    interval: Interval = "1d",
    start: Start = None,
    end: End = None,
    failover: Annotated[bool, typer.Option("--failover/--no-failover", help="On failure, try the rest of the configured source chain.")] = True,
    no_fallback: NoFallback = False,
    fmt: Fmt = "table",
    no_validate: NoValidate = False,
) -> None:
    """Download bars from Yahoo Finance (rate-limited, retried, circuit-broken).

    Example: alphatwin ingest yahoo EURUSD=X --interval 1h --start 2024-01-01
    """
    chain = list(state(ctx).settings.source_chain)
    names = ["yahoo"] + [n for n in chain if n != "yahoo"] if failover else ["yahoo"]
    _network(ctx, names, symbols or [], interval, start, end, fmt, no_fallback, "ingest yahoo", no_validate)


@app.command("stooq")
def stooq(
    ctx: typer.Context,
    symbols: Annotated[list[str], typer.Argument(help="Equity symbols, e.g. AAPL MSFT.")],
    interval: Interval = "1d",
    start: Start = None,
    end: End = None,
    no_fallback: NoFallback = False,
    fmt: Fmt = "table",
    no_validate: NoValidate = False,
) -> None:
    """Download daily equity bars from Stooq (the fallback HTTP source; split-adjusted prices).

    Example: alphatwin ingest stooq AAPL MSFT --start 2020-01-01
    """
    _network(ctx, ["stooq"], symbols, interval, start, end, fmt, no_fallback, "ingest stooq", no_validate)


@app.command("auto")
def auto(
    ctx: typer.Context,
    symbols: Annotated[list[str] | None, typer.Argument(help="Symbols (default: [universe] symbols).", show_default=False)] = None,
    interval: Interval = "1d",
    start: Start = None,
    end: End = None,
    no_fallback: NoFallback = False,
    fmt: Fmt = "table",
    no_validate: NoValidate = False,
) -> None:
    """Fetch along the configured source chain ([sources] chain), failing over per symbol.

    Example: alphatwin ingest auto AAPL MSFT --start 2023-01-01
    """
    names = list(state(ctx).settings.source_chain)
    _network(ctx, names, symbols or [], interval, start, end, fmt, no_fallback, "ingest auto", no_validate)


def _mapping(items: list[str] | None) -> dict[str, str] | None:
    if not items:
        return None
    out: dict[str, str] = {}
    for item in items:
        if "=" not in item:
            raise InputError(f"`--map` must look like FILE_COLUMN=field (e.g. px_last=close), got {item!r}")
        src, dst = item.split("=", 1)
        out[src.strip()] = dst.strip()
    return out


@app.command("csv")
def csv(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="A CSV file (.csv or .csv.gz) or a directory of them.")],
    symbol: Annotated[str | None, typer.Option("--symbol", "-s", help="Symbol for every row (default: a symbol column, else the file name).", show_default=False)] = None,
    symbol_column: Annotated[str | None, typer.Option("--symbol-column", help="Column holding the symbol.", show_default=False)] = None,
    interval: Interval = "1d",
    start: Start = None,
    end: End = None,
    tz: Annotated[str, typer.Option("--tz", help="Zone of timestamps that carry none (e.g. America/New_York).")] = "UTC",
    column_map: Annotated[list[str] | None, typer.Option("--map", help="Generic mapping FILE_COLUMN=field, repeatable (fields: ts open high low close volume dividend split_ratio symbol).", show_default=False)] = None,
    date_format: Annotated[str | None, typer.Option("--date-format", help="strftime format of the date column, e.g. %d.%m.%Y.", show_default=False)] = None,
    delimiter: Annotated[str, typer.Option("--delimiter", help="Field separator, one character (e.g. ';').")] = ",",
    bad_lines: Annotated[str, typer.Option("--bad-lines", help="A line that cannot be read: error (fail the file) or quarantine (set it aside in quality.rejected_lines with its reason; the other rows proceed).")] = "error",
    max_field_chars: Annotated[int, typer.Option("--max-field-chars", help="Longest field accepted, in characters.")] = 256,
    max_file_bytes: Annotated[int, typer.Option("--max-file-bytes", help="Largest file accepted, in bytes after gunzip (default 2 GiB).")] = 2 * 1024**3,
    fmt: Fmt = "table",
    no_validate: NoValidate = False,
) -> None:
    """Import Yahoo-format CSV exports (Date,Open,High,Low,Close,Adj Close,Volume) or mapped CSVs.

    Example: alphatwin ingest csv path/GOOG.csv --symbol GOOG --interval 1d
    """
    from alphatwin.sources.csv import CsvSource

    st = state(ctx)
    source = CsvSource(path, symbol=symbol, symbol_column=symbol_column, columns=_mapping(column_map),
                       tz=tz, date_format=date_format, delimiter=delimiter, bad_lines=bad_lines,
                       max_field_chars=max_field_chars, max_file_bytes=max_file_bytes)
    run_ingest(st, source, _request((), interval, start, end), fmt=fmt, fallback=False, command="ingest csv",
               validate=not no_validate)


@app.command("synthetic")
def synthetic(
    ctx: typer.Context,
    symbols: Annotated[int, typer.Option("--symbols", "-n", help="Number of symbols (SYN00001...).")] = 10,
    bars: Annotated[int, typer.Option("--bars", "-m", help="Bars per symbol.")] = 2520,
    interval: Interval = "1d",
    start: Annotated[str, typer.Option("--start", help="First bar (5,000 daily bars from 2000-01-03 end in 2019).")] = "2000-01-03",
    seed: Annotated[int, typer.Option("--seed", help="Random seed (same seed, same market).")] = 42,
    defects: Annotated[str | None, typer.Option("--defects", help="Inject defects at per-bar rates, e.g. gap=0.001,duplicate=0.001,broken_ohlc=0.001,spike=0.0005,zero_volume_halt=0.0005.", show_default=False)] = None,
    fmt: Fmt = "table",
    no_validate: NoValidate = False,
) -> None:
    """Generate a deterministic synthetic market and ingest it (offline; scale tests).

    Example: alphatwin ingest synthetic --symbols 500 --bars 5000 --seed 7
    """
    from alphatwin.sources.synthetic import SyntheticSource

    st = state(ctx)
    first = parse_when(start, "--start")
    assert first is not None
    source = SyntheticSource(n_symbols=symbols, n_bars=bars, seed=seed, start=first.date(),
                             defects=_rates(defects))
    run_ingest(st, source, _request((), interval, None, None), fmt=fmt, fallback=False,
               total=symbols * bars, command="ingest synthetic", validate=not no_validate)


def _rates(text: str | None) -> dict[str, float] | None:
    if not text:
        return None
    rates: dict[str, float] = {}
    for part in text.split(","):
        name, _, value = part.partition("=")
        try:
            rates[name.strip()] = float(value)
        except ValueError:
            raise InputError(f"`--defects` must look like gap=0.001,spike=0.0005, got {part!r}") from None
    return rates


@app.command("sample")
def sample(ctx: typer.Context, fmt: Fmt = "table", no_validate: NoValidate = False) -> None:
    """Ingest the embedded real sample: S&P 500 (^GSPC) and NASDAQ Composite (^IXIC) daily bars,
    1999-2018, in Yahoo's CSV format (shipped by the `arch` package, NCSA licence).

    Example: alphatwin ingest sample
    """
    from alphatwin.sources.sample import sample_source

    run_ingest(state(ctx), sample_source(), _request((), "1d", None, None), fmt=fmt, fallback=False,
               command="ingest sample", validate=not no_validate)
