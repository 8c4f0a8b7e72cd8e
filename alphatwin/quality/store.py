"""Where quality verdicts live in the catalog: validation runs and results, quarantine, flags.

``quality.quarantine`` lists rows excluded downstream, keyed by ``(ingest_id, symbol, interval,
ts)``; the raw lake keeps them untouched. ``collapsed`` rows are extra copies of an exact
duplicate: the key itself stays accepted through its first copy. ``quality.flags`` lists rows
kept but flagged (outliers). ``quality.restatements`` records accepted bars that a newer ingest
restated (the newer row supersedes the older one downstream). ``quality.accepted_bars`` is
``raw.bars`` minus quarantined rows, with exact duplicate copies collapsed to one row.
"""

from __future__ import annotations

from typing import Any

__all__ = ["QUALITY_DDL", "ACCEPTED_VIEW", "ensure_quality_schema", "WithRejectedLines"]

QUALITY_DDL = [
    "CREATE SCHEMA IF NOT EXISTS quality",
    """CREATE TABLE IF NOT EXISTS meta.validation_runs (
        validation_id VARCHAR PRIMARY KEY,
        ingest_id VARCHAR NOT NULL,
        suite VARCHAR NOT NULL,
        suite_sha256 VARCHAR NOT NULL,
        trigger VARCHAR NOT NULL,          -- ingest | validate
        started TIMESTAMPTZ NOT NULL,
        finished TIMESTAMPTZ,
        wall_s DOUBLE,
        rows_received BIGINT,
        rows_accepted BIGINT,
        rows_quarantined BIGINT,
        rows_collapsed BIGINT,             -- exact duplicate copies (counted in rows_quarantined)
        rows_flagged BIGINT,
        rows_restated BIGINT,
        success BOOLEAN,
        batch_error VARCHAR,
        current BOOLEAN NOT NULL DEFAULT true  -- the latest validation of its ingest
    )""",
    """CREATE TABLE IF NOT EXISTS meta.validation_results (
        validation_id VARCHAR NOT NULL,
        expectation VARCHAR NOT NULL,      -- short stable name, e.g. high_ge_max_open_close
        expectation_type VARCHAR NOT NULL, -- GX type, e.g. expect_column_values_to_not_be_null
        columns VARCHAR,
        severity VARCHAR NOT NULL,         -- error (quarantine) | warning (flag) | info (record)
        success BOOLEAN NOT NULL,
        element_count BIGINT,
        unexpected_count BIGINT,
        unexpected_percent DOUBLE,
        sample_values VARCHAR,             -- JSON: a few offending values
        sample_ts VARCHAR,                 -- JSON: their symbols and timestamps
        kwargs VARCHAR                     -- JSON: the expectation's arguments
    )""",
    """CREATE TABLE IF NOT EXISTS quality.quarantine (
        ingest_id VARCHAR NOT NULL,
        symbol VARCHAR,
        interval VARCHAR,
        ts TIMESTAMPTZ,
        row_nr BIGINT NOT NULL,            -- position of the row in its ingest (0-based)
        reasons VARCHAR[] NOT NULL,        -- failed expectations
        detail VARCHAR,                    -- the offending values
        collapsed BOOLEAN NOT NULL DEFAULT false,
        validation_id VARCHAR NOT NULL,
        quarantined_at TIMESTAMPTZ NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS quality.flags (
        ingest_id VARCHAR NOT NULL,
        symbol VARCHAR,
        interval VARCHAR,
        ts TIMESTAMPTZ,
        row_nr BIGINT NOT NULL,
        reasons VARCHAR[] NOT NULL,
        detail VARCHAR,
        validation_id VARCHAR NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS quality.restatements (
        symbol VARCHAR NOT NULL,
        interval VARCHAR NOT NULL,
        ts TIMESTAMPTZ NOT NULL,
        ingest_id VARCHAR NOT NULL,        -- the restating (newer) ingest
        superseded_ingest_id VARCHAR,      -- the accepted row it supersedes
        detail VARCHAR,
        validation_id VARCHAR NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS quality.rejected_lines (
        ingest_id VARCHAR NOT NULL,        -- the ingest that set the line aside
        path VARCHAR NOT NULL,             -- the file
        line BIGINT,                       -- its 1-based line number
        reason VARCHAR NOT NULL,           -- why it could not be read
        raw_text VARCHAR                   -- the line as it was (cut to a bounded length by the reader)
    )""",
]

ACCEPTED_VIEW = """CREATE OR REPLACE VIEW quality.accepted_bars AS
WITH excluded AS (        -- keys whose rows are all quarantined (collapsed copies are handled below)
    SELECT DISTINCT ingest_id, symbol, interval, ts FROM quality.quarantine WHERE NOT collapsed
), collapsed AS (         -- keys with exact duplicate copies inside one ingest: keep one copy
    SELECT DISTINCT ingest_id, symbol, interval, ts FROM quality.quarantine WHERE collapsed
)
SELECT b.* FROM raw.bars AS b
WHERE NOT EXISTS (SELECT 1 FROM excluded AS q WHERE q.ingest_id = b.ingest_id AND q.symbol = b.symbol
                  AND q.interval IS NOT DISTINCT FROM b.interval AND q.ts IS NOT DISTINCT FROM b.ts)
  AND NOT EXISTS (SELECT 1 FROM collapsed AS c WHERE c.ingest_id = b.ingest_id AND c.symbol = b.symbol
                  AND c.interval = b.interval AND c.ts = b.ts)
UNION ALL
SELECT DISTINCT b.* FROM raw.bars AS b
JOIN collapsed AS c ON c.ingest_id = b.ingest_id AND c.symbol = b.symbol AND c.interval = b.interval AND c.ts = b.ts
WHERE NOT EXISTS (SELECT 1 FROM excluded AS q WHERE q.ingest_id = b.ingest_id AND q.symbol = b.symbol
                  AND q.interval = b.interval AND q.ts = b.ts)"""


class WithRejectedLines:
    """The quality gate (or none), plus the lines a file source set aside (``--bad-lines
    quarantine``), written to ``quality.rejected_lines`` in the ingest's commit."""

    def __init__(self, gate: Any, rejected: list[Any]) -> None:
        self.gate, self.rejected = gate, rejected

    def check(self, bars: Any, *, row_offset: int) -> None:
        if self.gate is not None:
            self.gate.check(bars, row_offset=row_offset)

    def persist(self, con: Any, ingest_id: str) -> None:
        if self.gate is not None:
            self.gate.persist(con, ingest_id)
        if self.rejected:
            ensure_quality_schema(con)
            con.executemany("INSERT INTO quality.rejected_lines VALUES (?, ?, ?, ?, ?)",
                            [[ingest_id, r.path, r.line, r.reason, r.text] for r in self.rejected])


def ensure_quality_schema(con: Any) -> None:
    """Create the quality schema's tables and the ``quality.accepted_bars`` view if missing."""
    for statement in QUALITY_DDL:
        con.execute(statement)
    con.execute(ACCEPTED_VIEW)
