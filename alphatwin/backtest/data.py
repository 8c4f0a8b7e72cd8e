"""Read the bars a backtest trades from the warehouse and record exactly which data that was.

One query joins ``features.bars`` (the bar as traded, its flags, ``atr_14``, ``vol_20``) with
``clean.bars`` (``split_ratio``, ``dividend``, ``adj_close``, the row's ``ingest_id``,
``calendar``); the symbols are aligned on the union of their timestamps. A bar that was filled
in for a missing session (``is_imputed``) or that is a halt (``is_halt``) cannot be traded: its
prices are NaN in the :class:`~alphatwin.backtest.params.Market`, while the signal series
(``adj_close``) keeps every row, as ``features.bars`` does.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from alphatwin.backtest.params import Market
from alphatwin.errors import InputError

__all__ = ["Loaded", "load_market", "ADV_WINDOW"]

#: Bars in the average daily volume of the impact model.
ADV_WINDOW = 20

_QUERY = """
SELECT f.symbol, f.ts, f.open, f.high, f.low, f.close, f.volume::DOUBLE AS volume,
       f.is_imputed, f.is_halt, f.atr_14, f.vol_20,
       c.split_ratio, c.dividend, c.adj_close, c.ingest_id, c.calendar
FROM features.bars f
JOIN clean.bars c USING (symbol, interval, ts)
WHERE f.interval = ? AND f.symbol IN ({symbols}) {until}
ORDER BY f.symbol, f.ts
"""


@dataclass(frozen=True)
class Loaded:
    """A market, the signal closes and the provenance of the rows they came from."""

    market: Market
    signal_close: np.ndarray  #: (n, m) backward-adjusted closes, NaN where a symbol has no row
    start: int  #: index of the first bar of the run (bars before it are history for signals)
    interval: str
    calendars: dict[str, str]
    ingest_ids: list[str]
    validation: list[dict[str, Any]]
    data_sha256: str

    @property
    def ts(self) -> np.ndarray:
        return self.market.ts


def _rolling_mean(x: np.ndarray, window: int) -> np.ndarray:
    """Trailing mean of the last ``window`` values (NaN before a full window); row t reads <= t."""
    out = np.full(x.shape, np.nan)
    if x.shape[0] >= window:
        c = np.cumsum(np.nan_to_num(x), dtype=np.float64)
        out[window - 1] = c[window - 1] / window
        out[window:] = (c[window:] - c[:-window]) / window
    return out


def load_market(con: Any, symbols: list[str], interval: str = "1d", *,
                start: dt.datetime | None = None, end: dt.datetime | None = None) -> Loaded:
    """Bars of ``symbols`` up to ``end`` (all history: signals warm up before ``start``).

    Raises
    ------
    InputError
        A symbol has no built bars (names it and the command that builds them), or nothing
        is left in [start, end].
    """
    if not symbols:
        raise InputError("`--symbols` must name at least one symbol")
    placeholders = ", ".join("?" for _ in symbols)
    until = "AND f.ts <= ?" if end is not None else ""
    params: list[Any] = [interval, *symbols] + ([end] if end is not None else [])
    try:
        frame = con.sql(_QUERY.format(symbols=placeholders, until=until), params=params).pl()
    except Exception as exc:  # the tables do not exist yet
        if "does not exist" in str(exc):
            raise InputError("the warehouse has no features.bars yet: run `alphatwin build` first") from None
        raise
    present = set(frame["symbol"].unique().to_list())
    missing = [s for s in symbols if s not in present]
    if missing:
        if end is not None and con.execute(
                f"SELECT count(*) FROM features.bars WHERE interval = ? AND symbol IN ({', '.join('?' for _ in missing)})",
                [interval, *missing]).fetchall()[0][0]:
            raise InputError(f"no {interval} bars for {', '.join(missing)} on or before `--end` {end:%Y-%m-%d}")
        raise InputError(f"no {interval} bars for {', '.join(missing)} in features.bars "
                         "(ingest them, then `alphatwin build`)")
    ts = np.unique(frame["ts"].to_numpy())
    n, m = ts.shape[0], len(symbols)
    first = 0 if start is None else int(np.searchsorted(ts, np.datetime64(start), side="left"))
    if first >= n:
        raise InputError(f"no bars on or after {start:%Y-%m-%d} (last bar {ts[-1]})")
    arrays = {k: np.full((n, m), np.nan) for k in ("open", "high", "low", "close", "volume", "atr",
                                                    "sigma", "adv", "signal")}
    split = np.ones((n, m))
    dividend = np.zeros((n, m))
    calendars: dict[str, str] = {}
    for j, symbol in enumerate(symbols):
        part = frame.filter(pl.col("symbol") == symbol)
        rows = np.searchsorted(ts, part["ts"].to_numpy())
        tradable = ~(part["is_imputed"].to_numpy() | part["is_halt"].to_numpy())
        for key, col in (("open", "open"), ("high", "high"), ("low", "low"), ("close", "close"),
                         ("volume", "volume")):
            values = part[col].to_numpy().astype(np.float64)
            arrays[key][rows[tradable], j] = values[tradable]
        arrays["atr"][rows, j] = part["atr_14"].to_numpy().astype(np.float64)
        arrays["sigma"][rows, j] = part["vol_20"].to_numpy().astype(np.float64)
        arrays["adv"][rows, j] = _rolling_mean(part["volume"].to_numpy().astype(np.float64), ADV_WINDOW)
        arrays["signal"][rows, j] = part["adj_close"].to_numpy().astype(np.float64)
        split[rows, j] = part["split_ratio"].fill_null(1.0).to_numpy()
        dividend[rows, j] = part["dividend"].fill_null(0.0).to_numpy()
        calendars[symbol] = part["calendar"][0]
    market = Market(ts=ts, symbols=tuple(symbols), open=arrays["open"], high=arrays["high"],
                    low=arrays["low"], close=arrays["close"], volume=arrays["volume"],
                    split_ratio=split, dividend=dividend, atr=arrays["atr"], sigma=arrays["sigma"],
                    adv=arrays["adv"])
    ingest_ids = sorted(frame["ingest_id"].unique().drop_nulls().to_list())
    return Loaded(market=market, signal_close=arrays["signal"], start=first, interval=interval,
                  calendars=calendars, ingest_ids=ingest_ids,
                  validation=_validation(con, ingest_ids), data_sha256=_digest(frame))


def _validation(con: Any, ingest_ids: list[str]) -> list[dict[str, Any]]:
    """The current validation verdict of each ingest the rows came from."""
    if not ingest_ids:
        return []
    rows = con.execute(
        "SELECT i.ingest_id, i.source, i.status, v.validation_id, v.success, v.rows_accepted, "
        "v.rows_quarantined, v.rows_flagged FROM meta.ingest_runs i "
        "LEFT JOIN meta.validation_runs v ON v.ingest_id = i.ingest_id AND v.current "
        f"WHERE i.ingest_id IN ({', '.join('?' for _ in ingest_ids)}) ORDER BY i.ingest_id",
        ingest_ids).fetchall()
    out = []
    for ingest_id, source, status, vid, success, accepted, quarantined, flagged in rows:
        out.append({"ingest_id": ingest_id, "source": source, "ingest_status": status,
                    "validation_id": vid,
                    "validation": ("not validated" if vid is None else "passed" if success else "failed"),
                    "rows_accepted": accepted, "rows_quarantined": quarantined, "rows_flagged": flagged})
    return out


def _digest(frame: pl.DataFrame) -> str:
    """sha256 of the rows read (row hashes of the sorted frame, seeded): equal digests mean
    equal data for one Polars version."""
    h = hashlib.sha256(json.dumps(frame.columns).encode())
    h.update(frame.hash_rows(seed=0).to_numpy().tobytes())
    return h.hexdigest()
