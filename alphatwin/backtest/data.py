"""Read the bars a backtest trades from the warehouse and record exactly which data that was.

One query joins ``features.bars`` (the bar as traded, its flags, ``atr_14``, ``vol_20``) with
``clean.bars`` (``split_ratio``, ``dividend``, ``adj_close``, the row's ``ingest_id``,
``calendar``); the symbols are aligned on the union of their timestamps. A bar that was filled
in for a missing session (``is_imputed``) or that is a halt (``is_halt``) cannot be traded: its
prices are NaN in the :class:`~alphatwin.backtest.params.Market`, while the signal series
(``adj_close``) keeps every row, as ``features.bars`` does. A bar the quality gate flagged as an
outlier (``clean.bars.is_outlier``) follows the ``outliers`` policy (:data:`OUTLIER_POLICIES`).
Splits come from ``clean.bars.volume_factor``: the split ratio where the source's prices are
not already split-adjusted, 1 where they are (Yahoo, Stooq), so a split is never applied to a
position twice.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from alphatwin.backtest.params import Market
from alphatwin.errors import InputError

__all__ = ["Loaded", "load_market", "ADV_WINDOW", "OUTLIER_POLICIES"]

#: What a backtest does with bars flagged as outliers by the quality gate: ``jumps`` (default)
#: does not trade bars flagged ``unexplained_jump`` (a print that jumps and reverts: the mark of
#: a bad tick) and trades the other outliers (large moves that persisted, often real);
#: ``untradable`` trades none of them; ``trade`` trades all; ``fail`` refuses the run.
OUTLIER_POLICIES = ("jumps", "untradable", "trade", "fail")

#: Bars in the average daily volume of the impact model.
ADV_WINDOW = 20

_QUERY = """
SELECT f.symbol, f.ts, f.open, f.high, f.low, f.close, f.volume::DOUBLE AS volume,
       f.is_imputed, f.is_halt, f.atr_14, f.vol_20,
       c.is_outlier, c.volume_factor AS split_ratio, c.dividend, c.adj_close, c.adj_volume_factor,
       c.ingest_id, c.calendar{extra},
       c.is_outlier AND EXISTS (
           SELECT 1 FROM quality.flags q JOIN meta.validation_runs v ON v.validation_id = q.validation_id
           WHERE v.current AND q.ingest_id = c.ingest_id AND q.symbol = c.symbol
             AND q.interval = c.interval AND q.ts = c.ts
             AND list_contains(q.reasons, 'unexplained_jump')) AS is_jump
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
    data_quality: dict[str, Any]  #: outlier policy and counts, failed validations
    inputs: dict[str, np.ndarray] = field(default_factory=dict)  #: (n, m) strategy input columns

    def warnings(self) -> list[str]:
        """One line per data-quality fact a user should know before trusting the numbers."""
        out = []
        q = self.data_quality
        if q["outlier_bars"]:
            n, jumps = q["outlier_bars"], q["jump_bars"]
            what = {"untradable": "none of them traded (marked at the last close)",
                    "trade": "all traded as they are",
                    "jumps": f"{jumps} bad-tick jump(s) not traded, {n - jumps} other outlier(s) traded"}
            out.append(f"{n} bar(s) in the run are flagged as outliers by the quality gate "
                       f"({', '.join(q['outlier_examples'])}{', ...' if n > 3 else ''}): "
                       f"{what[q['outlier_policy']]}; see quality.flags (`--outliers` chooses)")
        for v in self.validation:
            if v["validation"] != "passed":
                out.append(f"ingest {v['ingest_id']} ({v['source']}) {v['validation']} validation "
                           f"({v['rows_quarantined'] or 0} row(s) quarantined, not used)")
        return out

    @property
    def ts(self) -> np.ndarray:
        return self.market.ts


def _adv(volume: np.ndarray, adj_volume_factor: np.ndarray, real: np.ndarray) -> np.ndarray:
    """Mean volume of the last :data:`ADV_WINDOW` real (not imputed) bars up to each row, in that
    row's basis: past volumes times the volume factors of the splits since (``adj_volume_factor``
    ratios, which involve no later event); NaN before a full window. Row t reads rows <= t."""
    adjusted = volume * adj_volume_factor
    idx = np.flatnonzero(real)
    out = np.full(volume.shape, np.nan)
    if idx.size >= ADV_WINDOW:
        c = np.cumsum(adjusted[idx])
        mean = np.full(idx.size, np.nan)
        mean[ADV_WINDOW - 1] = c[ADV_WINDOW - 1] / ADV_WINDOW
        mean[ADV_WINDOW:] = (c[ADV_WINDOW:] - c[:-ADV_WINDOW]) / ADV_WINDOW
        out[idx] = mean
        # an imputed row carries the last real mean
        last = np.maximum.accumulate(np.where(real, np.arange(volume.size), -1))
        out = np.where(last >= 0, out[np.maximum(last, 0)], np.nan)
    return out / adj_volume_factor


def load_market(con: Any, symbols: list[str], interval: str = "1d", *,
                start: dt.datetime | None = None, end: dt.datetime | None = None,
                outliers: str = "jumps", inputs: tuple[str, ...] = ("close",)) -> Loaded:
    """Bars of ``symbols`` up to ``end`` (all history: signals warm up before ``start``), with
    the strategy ``inputs`` (:mod:`alphatwin.signals.base`: ``open``..``volume`` are
    ``clean.bars.adj_*``, other names ``features.bars`` columns) as (n, m) arrays.

    Raises
    ------
    InputError
        A symbol has no built bars (names it and the command that builds them), or nothing
        is left in [start, end].
    """
    if not symbols:
        raise InputError("`--symbols` must name at least one symbol")
    if outliers not in OUTLIER_POLICIES:
        raise InputError(f"`--outliers` must be one of {', '.join(OUTLIER_POLICIES)}, got {outliers!r}")
    if start is not None and end is not None and start > end:
        raise InputError(f"`--start` {start:%Y-%m-%d} is after `--end` {end:%Y-%m-%d}")
    placeholders = ", ".join("?" for _ in symbols)
    extra = _input_columns(con, inputs)
    until = "AND f.ts <= ?" if end is not None else ""
    params: list[Any] = [interval, *symbols] + ([end] if end is not None else [])
    try:
        frame = con.sql(_QUERY.format(symbols=placeholders, until=until, extra=extra), params=params).pl()
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
    columns = {name: np.full((n, m), np.nan) for name in inputs}
    split = np.ones((n, m))
    dividend = np.zeros((n, m))
    calendars: dict[str, str] = {}
    flagged: list[tuple[np.datetime64, str, bool]] = []
    for j, symbol in enumerate(symbols):
        part = frame.filter(pl.col("symbol") == symbol)
        rows = np.searchsorted(ts, part["ts"].to_numpy())
        imputed = part["is_imputed"].to_numpy()
        outlier = part["is_outlier"].fill_null(False).to_numpy()
        jump = part["is_jump"].fill_null(False).to_numpy()
        tradable = ~(imputed | part["is_halt"].to_numpy())
        if outliers == "untradable":
            tradable &= ~outlier
        elif outliers == "jumps":
            tradable &= ~jump
        in_run = rows >= first
        flagged += [(t, symbol, bool(j)) for t, j in zip(ts[rows[outlier & in_run]], jump[outlier & in_run])]
        if rows.size and rows[-1] < first:
            raise InputError(f"no bars for {symbol} on or after {start:%Y-%m-%d} (its last bar is "
                             f"{str(ts[rows[-1]])[:10]})")
        for key in ("open", "high", "low", "close", "volume"):
            values = part[key].to_numpy().astype(np.float64)
            arrays[key][rows[tradable], j] = values[tradable]
        arrays["atr"][rows, j] = part["atr_14"].to_numpy().astype(np.float64)
        arrays["sigma"][rows, j] = part["vol_20"].to_numpy().astype(np.float64)
        arrays["adv"][rows, j] = _adv(part["volume"].to_numpy().astype(np.float64),
                                      part["adj_volume_factor"].to_numpy().astype(np.float64), ~imputed)
        arrays["signal"][rows, j] = part["adj_close"].to_numpy().astype(np.float64)
        for name in inputs:
            columns[name][rows, j] = part[f"in_{name}"].cast(pl.Float64).to_numpy()
        split[rows, j] = part["split_ratio"].fill_null(1.0).to_numpy()
        dividend[rows, j] = part["dividend"].fill_null(0.0).to_numpy()
        calendars[symbol] = part["calendar"][0]
    if flagged and outliers == "fail":
        when, symbol, _ = min(flagged)
        raise InputError(f"{len(flagged)} bar(s) in the run are flagged as outliers (first: {symbol} "
                         f"{str(when)[:10]}); `--outliers jumps` skips the bad-tick jumps, `untradable` "
                         "all of them, `trade` none")
    quality = {"outlier_policy": outliers, "outlier_bars": len(flagged),
               "jump_bars": sum(j for _, _, j in flagged),
               "outlier_examples": [f"{sym} {str(when)[:10]}" for when, sym, _ in sorted(flagged)[:3]]}
    market = Market(ts=ts, symbols=tuple(symbols), open=arrays["open"], high=arrays["high"],
                    low=arrays["low"], close=arrays["close"], volume=arrays["volume"],
                    split_ratio=split, dividend=dividend, atr=arrays["atr"], sigma=arrays["sigma"],
                    adv=arrays["adv"])
    ingest_ids = sorted(frame["ingest_id"].unique().drop_nulls().to_list())
    validation = _validation(con, ingest_ids)
    quality["failed_validations"] = [v["ingest_id"] for v in validation if v["validation"] != "passed"]
    return Loaded(market=market, signal_close=arrays["signal"], start=first, interval=interval,
                  calendars=calendars, ingest_ids=ingest_ids, validation=validation,
                  data_sha256=_digest(frame), data_quality=quality, inputs=columns)


def _input_columns(con: Any, inputs: tuple[str, ...]) -> str:
    """The SELECT list of the strategy inputs, ``in_<name>``; InputError for an unknown column."""
    from alphatwin.signals.base import BAR_INPUTS

    out = []
    features = None
    for name in inputs:
        if name in BAR_INPUTS:
            out.append(f"c.adj_{name}::DOUBLE AS in_{name}")
            continue
        if features is None:
            features = {r[0] for r in con.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = 'features' "
                "AND table_name = 'bars'").fetchall()}
        if name not in features:
            raise InputError(f"the strategy reads features.bars.{name}, which the warehouse does not have "
                             "(add it to [features] in alphatwin.toml and `alphatwin build`)")
        out.append(f'f."{name}"::DOUBLE AS "in_{name}"')
    return "".join(f", {c}" for c in out)


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
