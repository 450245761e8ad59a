-- 0014: storage settings for the metering write path.
-- Outbox payloads compressed with lz4 instead of pglz: vox.usage.rated
-- the metering worker's own work on the records (perf, bench/metering).
-- Servers built without lz4 keep pglz.
DO $$
BEGIN
    ALTER TABLE outbox ALTER COLUMN payload SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported OR invalid_parameter_value THEN
    RAISE NOTICE 'lz4 not available: outbox payloads stay pglz';
END
$$;

-- usage_daily rows are updated by every metering batch that touches their
-- day: leave room on each page so those updates stay HOT (no new index
-- entries, no index bloat to clean up).
ALTER TABLE usage_daily SET (fillfactor = 50);
