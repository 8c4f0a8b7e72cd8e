-- golden_cross: long while the 50-bar SMA of the backward-adjusted close is above the 200-bar SMA
-- (short below it when backtested with --direction short or both); one row per clean.bars row.
-- A SQL strategy (docs/strategies/sql.md): it yields symbol, interval, ts and target (the
-- direction wanted from that bar's close on; the risk manager sizes it), plus the signal it
-- thresholds. Point in time: each window reads the current and earlier rows only, and a ratio
-- of two averages of backward-adjusted closes does not move when a later split or dividend
-- rescales all of them. Both windows must be full (200 rows of the symbol), else target 0.
-- Try: alphatwin backtest golden_cross --symbols ^GSPC --direction both
-- A view: computed when read, for the symbols read (a build costs nothing on a large warehouse).
-- materialized: view
WITH w AS (
    SELECT symbol, interval, ts,
           avg(adj_close) OVER (PARTITION BY symbol, interval ORDER BY ts
                                ROWS BETWEEN 49 PRECEDING AND CURRENT ROW) AS sma_50,
           avg(adj_close) OVER (PARTITION BY symbol, interval ORDER BY ts
                                ROWS BETWEEN 199 PRECEDING AND CURRENT ROW) AS sma_200,
           row_number() OVER (PARTITION BY symbol, interval ORDER BY ts) AS n
    FROM clean.bars
)
SELECT symbol, interval, ts,
       CASE WHEN n >= 200 THEN sma_50 / sma_200 - 1 END AS signal,
       CASE WHEN n < 200 THEN 0.0
            WHEN sma_50 > sma_200 THEN 1.0
            WHEN sma_50 < sma_200 THEN -1.0
            ELSE 0.0 END AS target,
       'golden_cross' AS strategy,
       '{"fast": 50, "slow": 200}' AS params
FROM w
