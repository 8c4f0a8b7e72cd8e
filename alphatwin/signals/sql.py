"""SQL strategies: ``sql/signals/<name>.sql`` is a model built into ``signals.<name>`` by
``alphatwin build``; it must yield ``symbol, interval, ts, target`` (and may yield ``signal``,
``strategy``, ``params``). A backtest of ``<name>`` reads its targets from that table:
``target`` is the weight wanted from the close of ``ts`` on (NaN or a missing row: keep the
current one), in [-1, 1] per symbol, sized and allocated by the risk manager like any
strategy's direction.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import polars as pl

from alphatwin.errors import InputError
from alphatwin.signals.base import Strategy

__all__ = ["sql_strategies", "sql_targets", "REQUIRED_COLUMNS"]

#: Columns every ``signals.<name>`` SQL model must yield.
REQUIRED_COLUMNS = ("symbol", "interval", "ts", "target")


def _root(sql_root: Any) -> Path:
    if sql_root is not None:
        return Path(sql_root)
    from alphatwin.models.registry import default_sql_root

    return default_sql_root()


def _summary(path: Path) -> str:
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line.startswith("--"):
            return line.lstrip("- ").strip()
    return f"SQL strategy {path.name}"


def sql_strategies(sql_root: Any = None) -> dict[str, Strategy]:
    """A :class:`Strategy` (``source="sql"``) per ``sql/signals/*.sql``."""
    folder = _root(sql_root) / "signals"
    if not folder.is_dir():
        return {}
    return {p.stem: Strategy(name=p.stem, summary=_summary(p), params=(), compute=None, source="sql",
                             family="sql", signal_doc="the query's `signal` column (NULL when absent)")
            for p in sorted(folder.glob("*.sql"))}


def sql_targets(con: Any, name: str, interval: str, symbols: list[str], ts: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray]:
    """``(signal, target)`` (bars x symbols) from ``signals.<name>``, aligned on ``ts``; NaN where
    the table has no row. Raises InputError when the table is missing or lacks a column."""
    try:
        cols = [r[0] for r in con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = 'signals' "
            "AND table_name = ?", [name]).fetchall()]
    except Exception as exc:  # pragma: no cover - the catalog query itself failing
        raise InputError(f"cannot read signals.{name}: {exc}") from None
    if not cols:
        raise InputError(f"signals.{name} is not built yet: run `alphatwin build --select signals.{name}`")
    missing = [c for c in REQUIRED_COLUMNS if c not in cols]
    if missing:
        raise InputError(f"sql/signals/{name}.sql must yield {', '.join(REQUIRED_COLUMNS)}; "
                         f"signals.{name} lacks {', '.join(missing)}")
    signal = "signal::DOUBLE" if "signal" in cols else "NULL::DOUBLE"
    try:
        frame = con.sql(
            f'SELECT symbol, ts, {signal} AS signal, target::DOUBLE AS target FROM signals."{name}" '
            f"WHERE interval = ? AND symbol IN ({', '.join('?' for _ in symbols)}) ORDER BY symbol, ts",
            params=[interval, *symbols]).pl()
    except duckdb.Error as exc:  # e.g. a text target that is not a number
        first = str(exc).splitlines()[0]
        raise InputError(f"signals.{name}: `target` and `signal` must be numbers ({first})") from None
    n, m = ts.shape[0], len(symbols)
    sig = np.full((n, m), np.nan)
    tgt = np.full((n, m), np.nan)
    if frame["ts"].n_unique() != frame.height and frame.select(pl.struct("symbol", "ts").is_duplicated().any()).item():
        raise InputError(f"signals.{name} has more than one row per (symbol, interval, ts)")
    for j, symbol in enumerate(symbols):
        part = frame.filter(pl.col("symbol") == symbol)
        t = part["ts"].to_numpy()
        rows = np.searchsorted(ts, t)
        ok = (rows < n) & (ts[np.minimum(rows, n - 1)] == t)
        sig[rows[ok], j] = part["signal"].to_numpy().astype(np.float64)[ok]
        tgt[rows[ok], j] = part["target"].to_numpy().astype(np.float64)[ok]
    bad = np.isinf(tgt) | (np.abs(np.nan_to_num(tgt)) > 1.0)
    if bad.any():
        i, j = np.argwhere(bad)[0]
        raise InputError(f"signals.{name}: target {tgt[i, j]} for {symbols[j]} at {str(ts[i])[:19]} "
                         "is outside [-1, 1]")
    return sig, tgt
