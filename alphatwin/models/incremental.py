"""Incremental builds: what changed in the lake since a model was last built, and its saved state.

A model built incrementally (``@model(incremental=update)``) keeps, besides its table:

- ``meta.model_watermarks``: the ingests and validation runs already folded into it;
- ``meta.model_state``: one row per (symbol, interval) with the last ``ts`` built, the number of
  rows of that key, and the model's own state vector (e.g. the recursive indicator values at the
  last bar) so the next build continues exactly where this one stopped.

:func:`source_changes` turns the ingests and validation runs not yet folded into one row per
affected (symbol, interval) with ``since``, the earliest ``ts`` they touch (every key of a
re-validated ingest counts: its verdicts may have changed). The model's ``update`` decides per key
whether it can append after its last bar (``since`` later than it) or must rebuild the key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from alphatwin.paths import WarehousePaths

__all__ = ["available", "IncrementalContext", "Changes", "DDL", "source_changes", "record_watermarks", "write_state", "delete_keys",
           "forget_state", "append_rows", "commit_update",
           "read_state", "has_watermark"]

DDL = [
    """CREATE TABLE IF NOT EXISTS meta.model_watermarks (
        model VARCHAR NOT NULL,
        kind VARCHAR NOT NULL,        -- built | ingest | validation
        id VARCHAR NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS meta.model_state (
        model VARCHAR NOT NULL,
        symbol VARCHAR NOT NULL,
        interval VARCHAR NOT NULL,
        ts TIMESTAMPTZ NOT NULL,      -- the last row built for the key
        rows BIGINT NOT NULL,         -- rows of the key in the model's table
        state DOUBLE[],               -- the model's own state after that row
        label VARCHAR                 -- and its text state (clean.bars: calendar and last source)
    )""",
    "ALTER TABLE meta.model_state ADD COLUMN IF NOT EXISTS label VARCHAR",
]

_STATE_COLUMNS = ("symbol", "interval", "ts", "rows", "state", "label")


@dataclass
class Changes:
    """What an incremental update did: keys rebuilt from their first bar, keys appended to."""

    rebuilt: int = 0
    appended: int = 0
    rows: int = 0
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass
class IncrementalContext:
    """Everything an ``update`` function needs; it runs inside the model's transaction.

    Attributes
    ----------
    con
        The warehouse connection (inside the model's transaction).
    model
        The :class:`~alphatwin.models.registry.Model` being updated.
    settings
        The :class:`~alphatwin.config.Settings` of the build.
    changes
        Polars frame ``(symbol, interval, since)``: one row per key touched since the last build.
    ingests
        Ids of the ingests whose rows may have changed (new, or re-validated).
    """

    con: Any
    model: Any
    settings: Any
    changes: Any
    ingests: list[str]
    paths: WarehousePaths | None = None

    def state(self) -> Any:
        """This model's saved state, one row per (symbol, interval), as a Polars frame."""
        return read_state(self.con, self.model.name)

    def save_state(self, frame: Any) -> None:
        """Replace the saved state of the keys in ``frame`` (symbol, interval, ts, rows, state[, label])."""
        write_state(self.con, self.model.name, frame, replace_all=False)


def has_watermark(con: Any, model: str) -> bool:
    """True when ``model`` was built with watermarks (a full build records a ``built`` row)."""
    rows = con.execute("SELECT count(*) FROM meta.model_watermarks WHERE model = ? AND kind = 'built'",
                       [model]).fetchall()
    return bool(rows[0][0])


def available(con: Any, upstream: tuple[str, ...] = ()) -> tuple[list[str], list[str]]:
    """The ingests (with bar files) and validation runs a model may fold in: all of them, or for a
    model reading incremental models (``upstream``), only those every one of them has folded in,
    so ``features.bars`` never records data that ``clean.bars`` does not hold yet."""
    ingests = [r[0] for r in con.execute(
        "SELECT DISTINCT ingest_id FROM meta.lake_files WHERE dataset = 'bars' ORDER BY 1").fetchall()]
    validations = [r[0] for r in con.execute(
        "SELECT validation_id FROM meta.validation_runs ORDER BY 1").fetchall()] \
        if _exists(con, "meta", "validation_runs") else []
    for up in upstream:
        folded = {(k, i) for k, i in con.execute(
            "SELECT kind, id FROM meta.model_watermarks WHERE model = ?", [up]).fetchall()}
        ingests = [i for i in ingests if ("ingest", i) in folded]
        validations = [v for v in validations if ("validation", v) in folded]
    return ingests, validations


def _unfolded(con: Any, model: str, upstream: tuple[str, ...]) -> tuple[list[str], list[str]]:
    """Available ingests and validation runs (see :func:`available`) not folded into ``model`` yet."""
    ingests, validations = available(con, upstream)
    folded = {(k, i) for k, i in con.execute(
        "SELECT kind, id FROM meta.model_watermarks WHERE model = ?", [model]).fetchall()}
    return ([i for i in ingests if ("ingest", i) not in folded],
            [v for v in validations if ("validation", v) not in folded])


def _exists(con: Any, schema: str, table: str) -> bool:
    rows = con.execute("SELECT count(*) FROM duckdb_tables() WHERE database_name = current_database() "
                       "AND schema_name = ? AND table_name = ?", [schema, table]).fetchall()
    return bool(rows[0][0])


def source_changes(con: Any, model: str, paths: WarehousePaths,
                   upstream: tuple[str, ...] = ()) -> tuple[Any, list[str], list[str], list[str]]:
    """The keys touched since ``model`` was last built.

    Returns
    -------
    changes, ingests, new_ingests, new_validations
        ``changes`` is a Polars frame ``(symbol, interval, since)``; ``ingests`` every ingest
        whose rows may have changed (new ones and re-validated ones); the last two are the ids
        to fold into the watermark once the update has committed.
    """
    import polars as pl

    new_ingests, new_validations = _unfolded(con, model, upstream)
    revalidated = []
    if new_validations:
        placeholders = ", ".join("?" for _ in new_validations)
        revalidated = [r[0] for r in con.execute(
            f"SELECT DISTINCT ingest_id FROM meta.validation_runs WHERE validation_id IN ({placeholders})",
            new_validations).fetchall()]
    ingests = sorted(set(new_ingests) | set(revalidated))
    empty = pl.DataFrame(schema={"symbol": pl.String, "interval": pl.String, "since": pl.Datetime("us", "UTC")})
    if not ingests:
        return empty, [], new_ingests, new_validations
    placeholders = ", ".join("?" for _ in ingests)
    files = [(paths.root / r[0]).as_posix() for r in con.execute(
        f"SELECT path FROM meta.lake_files WHERE dataset = 'bars' AND ingest_id IN ({placeholders}) ORDER BY 1",
        ingests).fetchall()]
    if not files:
        return empty, ingests, new_ingests, new_validations
    listed = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
    changes = con.sql(
        f"SELECT symbol, interval, min(ts) AS since FROM read_parquet([{listed}], union_by_name = true) "
        "WHERE symbol IS NOT NULL AND interval IS NOT NULL AND ts IS NOT NULL GROUP BY ALL ORDER BY ALL").pl()
    return changes.cast({"since": pl.Datetime("us", "UTC")}), ingests, new_ingests, new_validations


def record_watermarks(con: Any, model: str, *, full: bool, ingests: list[str] | None = None,
                      validations: list[str] | None = None, upstream: tuple[str, ...] = ()) -> None:
    """Fold ingests and validation runs into ``model``'s watermark (on a full build: every one
    :func:`available` to it)."""
    if full:
        con.execute("DELETE FROM meta.model_watermarks WHERE model = ?", [model])
        con.execute("INSERT INTO meta.model_watermarks VALUES (?, 'built', 'full')", [model])
        ingests, validations = available(con, upstream)
    for kind, ids in (("ingest", ingests or []), ("validation", validations or [])):
        if ids:
            con.executemany("INSERT INTO meta.model_watermarks VALUES (?, ?, ?)", [[model, kind, i] for i in ids])


def read_state(con: Any, model: str) -> Any:
    """``model``'s saved state as a Polars frame (symbol, interval, ts, rows, state)."""
    return con.sql("SELECT symbol, interval, ts, rows, state, label FROM meta.model_state WHERE model = ?",
                   params=[model]).pl()


_FRAME = "__alphatwin_state_frame"


def write_state(con: Any, model: str, frame: Any, *, replace_all: bool) -> None:
    """Store ``frame`` as ``model``'s state: all of it (``replace_all``) or the keys it holds."""
    if replace_all:
        con.execute("DELETE FROM meta.model_state WHERE model = ?", [model])
    if frame is None or frame.height == 0:
        return
    import polars as pl

    if "label" not in frame.columns:
        frame = frame.with_columns(pl.lit(None, pl.String).alias("label"))
    con.register(_FRAME, frame.select(*_STATE_COLUMNS).to_arrow())
    try:
        if not replace_all:
            con.execute(f"DELETE FROM meta.model_state AS m WHERE model = ? AND EXISTS (SELECT 1 FROM {_FRAME} AS f "
                        "WHERE f.symbol = m.symbol AND f.interval = m.interval)", [model])
        con.execute(f"INSERT INTO meta.model_state (model, symbol, interval, ts, rows, state, label) "
                    f"SELECT ?, symbol, interval, ts, rows, state, label FROM {_FRAME}", [model])
    finally:
        con.unregister(_FRAME)


def _with_keys(con: Any, keys: Any, statement: str, params: list[Any] | None = None) -> None:
    con.register("__alphatwin_keys", keys.select("symbol", "interval").to_arrow())
    try:
        con.execute(statement, params or [])
    finally:
        con.unregister("__alphatwin_keys")


def delete_keys(con: Any, table: str, keys: Any) -> None:
    """Delete every row of ``keys`` (a frame of symbol, interval) from ``table`` (``schema.table``)."""
    schema, name = table.split(".", 1)
    _with_keys(con, keys, f'DELETE FROM "{schema}"."{name}" AS t WHERE EXISTS (SELECT 1 FROM __alphatwin_keys AS k '
               "WHERE k.symbol = t.symbol AND k.interval = t.interval)")


def forget_state(con: Any, model: str, keys: Any) -> None:
    """Drop ``model``'s saved state of ``keys`` (keys left with no rows)."""
    _with_keys(con, keys, "DELETE FROM meta.model_state AS m WHERE model = ? AND EXISTS (SELECT 1 FROM "
               "__alphatwin_keys AS k WHERE k.symbol = m.symbol AND k.interval = m.interval)", [model])


def append_rows(con: Any, table: str, frame: Any, *, virtual: tuple[str, ...] = ()) -> int:
    """Append ``frame`` to ``table`` (``schema.table``, quoted or not) by column name, leaving out
    its ``virtual`` (generated) columns; the rows appended."""
    if frame.height == 0:
        return 0
    quoted = table if table.startswith('"') else ".".join(f'"{p}"' for p in table.split(".", 1))
    con.register("__alphatwin_rows", frame.drop([c for c in virtual if c in frame.columns]).to_arrow())
    try:
        con.execute(f"INSERT INTO {quoted} BY NAME SELECT * FROM __alphatwin_rows")
    finally:
        con.unregister("__alphatwin_rows")
    return int(frame.height)


def commit_update(ctx: IncrementalContext, table: str, done: Changes, *, rebuilt: Any, parts: list[Any],
                  states: list[Any]) -> Changes:
    """Finish an update of ``table``: delete the ``rebuilt`` keys' old rows, append ``parts``, save
    ``states`` (and forget the state of rebuilt keys left with no rows)."""
    import polars as pl

    if rebuilt is not None and rebuilt.height:
        delete_keys(ctx.con, table, rebuilt)
        kept = pl.concat(states).select("symbol", "interval") if states else rebuilt.clear()
        gone = rebuilt.join(kept, on=["symbol", "interval"], how="anti")
        if gone.height:
            forget_state(ctx.con, ctx.model.name, gone)
    virtual = tuple(name for name, _ in ctx.model.virtual)
    for part in parts:
        done.rows += append_rows(ctx.con, table, part, virtual=virtual)
    if states:
        ctx.save_state(pl.concat(states))
    return done
