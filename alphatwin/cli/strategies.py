"""``alphatwin strategies`` (the registry) and ``alphatwin pairs`` (Engle-Granger pair ranking)."""

from __future__ import annotations

from typing import Annotated

import typer

from alphatwin.cli.common import emit, parse_when, progress_rows, state
from alphatwin.errors import InputError

__all__ = ["strategies_command", "pairs_command"]


def strategies_command(
    ctx: typer.Context,
    fmt: Annotated[str, typer.Option("--format", "-f", help="Output: table, csv or json.")] = "table",
) -> None:
    """List every strategy (Python and sql/signals/*.sql): family, inputs, parameters with
    defaults and ranges, and what its signal column holds. docs/strategies/ has a page per strategy.

    Example: alphatwin strategies --format json
    """
    import polars as pl

    from alphatwin.models.registry import default_sql_root
    from alphatwin.signals.base import all_strategies

    rows = []
    for name, s in all_strategies(default_sql_root(state(ctx).settings.config_file)).items():
        rows.append({
            "name": name, "family": s.family, "source": s.source, "shape": "panel" if s.panel else "series",
            "symbols": (f"{s.min_symbols}" if s.max_symbols == s.min_symbols
                        else f">={s.min_symbols}" if s.max_symbols is None else f"{s.min_symbols}-{s.max_symbols}"),
            "inputs": ", ".join(s.inputs) if s.source == "python" else "signals." + name,
            "params": ", ".join(f"{p.name}={p.default} [{p.low}, {p.high}]" for p in s.params),
            "summary": s.summary,
        })
    emit(pl.DataFrame(rows), fmt)


def pairs_command(
    ctx: typer.Context,
    symbols: Annotated[str, typer.Option("--symbols", help="Comma-separated symbols (at least 2); every unordered pair is tested.", show_default=False)],
    interval: Annotated[str, typer.Option("--interval", help="Bar interval in the warehouse.")] = "1d",
    start: Annotated[str | None, typer.Option("--start", help="First bar of the test window, like 2015-01-02.", show_default=False)] = None,
    end: Annotated[str | None, typer.Option("--end", help="Last bar of the test window.", show_default=False)] = None,
    pvalue: Annotated[float, typer.Option("--pvalue", help="Significance level for `cointegrated`.")] = 0.05,
    min_obs: Annotated[int, typer.Option("--min-obs", help="Fewest common bars for a pair to be tested (>= 30).")] = 60,
    fmt: Annotated[str, typer.Option("--format", "-f", help="Output: table, csv or json.")] = "table",
) -> None:
    """Rank pairs for the `pairs` strategy with the Engle-Granger cointegration test
    (statsmodels `coint`) on log backward-adjusted closes, over the bars where both have a close:
    test statistic, p-value, hedge ratio (OLS beta), spread half-life; best p-value first.
    Test on one window and trade on a later one (`--end` here, `--start` in the backtest) to
    keep the choice of pair out of sample.

    Example: alphatwin pairs --symbols KO,PEP,XOM,CVX --end 2019-12-31
    """
    from alphatwin.backtest.data import load_market
    from alphatwin.lake import catalog
    from alphatwin.signals.cointegration import rank_pairs

    names = [s.strip() for s in symbols.split(",") if s.strip()]
    if len(set(names)) < 2:
        raise InputError("`--symbols` must name at least 2 different symbols, like KO,PEP")
    if not 0 < pvalue < 1:
        raise InputError(f"`--pvalue` must be in (0, 1), got {pvalue}")
    st = state(ctx)
    st.start_logging()
    with catalog.connect(st.paths, read_only=True) as con:
        loaded = load_market(con, names, interval, start=parse_when(start, "--start"), end=parse_when(end, "--end"))
    closes = loaded.signal_close[loaded.start:]
    n_pairs = len(names) * (len(names) - 1) // 2
    with progress_rows(f"testing {n_pairs} pair(s)", n_pairs) as advance:
        table = rank_pairs(closes, names, pvalue=pvalue, min_obs=min_obs)
        advance(n_pairs)
    emit(table, fmt)
