-- One row per accepted raw bar: quality.accepted_bars (raw.bars minus quarantined rows, exact
-- copies collapsed) with when its ingest was committed and whether the quality gate flagged it
-- as an outlier (return_outlier or unexplained_jump, current validation only).
-- A key may still have several rows here (a later ingest restating it); clean.bars keeps the
-- row of the latest committed ingest. Kept as a view: filters on symbol or ingest_id reach the
-- Parquet scan, so an incremental build reads only what changed.
-- materialized: view
WITH outliers AS (
    SELECT DISTINCT f.ingest_id, f.symbol, f.interval, f.ts
    FROM quality.flags AS f
    JOIN meta.validation_runs AS v ON v.validation_id = f.validation_id
    WHERE v.current AND list_has_any(f.reasons, ['return_outlier', 'unexplained_jump'])
)
SELECT b.symbol, b.interval, b.ts, b.open, b.high, b.low, b.close, b.volume, b.dividend,
       b.split_ratio, b.ingest_id, b.source, r.finished AS committed,
       o.ingest_id IS NOT NULL AS is_outlier
FROM quality.accepted_bars AS b
JOIN meta.ingest_runs AS r ON r.ingest_id = b.ingest_id
LEFT JOIN outliers AS o
    ON o.ingest_id = b.ingest_id AND o.symbol = b.symbol AND o.interval = b.interval AND o.ts = b.ts
