-- voxctl:no-transaction
-- 0037: what `voxctl housekeep` (docs/HOUSEKEEPING.md) needs to prune old
-- rows in short batches without scanning the hot tables from the start.
--
-- This file runs outside a transaction (the marker on its first line,
-- docs/VOXCTL.md "voxctl migrate"), one statement at a time, so that the
-- indexes are built CONCURRENTLY: a plain CREATE INDEX holds a SHARE lock
-- that stops every insert into inbox, outbox and operations for as long
-- as the build takes (minutes on a large inbox); CONCURRENTLY lets writers
-- go on and only waits for the transactions already running. Each index is
-- dropped first if it exists: a CONCURRENTLY build that failed half-way
-- leaves an INVALID index behind, and running the migration again then
-- builds it afresh.
--
-- B-trees on insert-time columns that are never updated: the new key of
-- each insert lands on the rightmost leaf (the cheapest B-tree insert), and
-- updates of those rows stay HOT. BRIN would be cheaper still to insert,
-- but its ranges keep the minimum of rows long deleted, so once pruning
-- frees pages for new rows every range matches "older than" and a batch
-- would read the whole table.

-- Per-pass bookkeeping: how far the usage_dedup sweep got (it has no index
-- on started_at on purpose, 0015) and the usage partitions archived to the
-- object store.
CREATE TABLE IF NOT EXISTS housekeep_state (
    name       text        PRIMARY KEY,
    value      text        NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS usage_archives (
    partition   text        PRIMARY KEY,   -- usage_records_yYYYYmMM
    month       date        NOT NULL,
    bucket      text        NOT NULL,
    object_key  text        NOT NULL,
    rows        bigint      NOT NULL,
    bytes       bigint      NOT NULL,      -- the gzip object
    sha256      text        NOT NULL,      -- of the gzip object
    archived_at timestamptz NOT NULL DEFAULT now()
);

-- inbox: pruned per topic (the topic's Kafka retention decides how long a
-- redelivery is possible), oldest first.
DROP INDEX CONCURRENTLY IF EXISTS inbox_topic_processed_idx;
CREATE INDEX CONCURRENTLY inbox_topic_processed_idx ON inbox (topic, processed_at);

-- outbox: published rows older than the retention; published_at >=
-- created_at, so created_at bounds the scan (an index on published_at
-- would make the relay's UPDATE of every row non-HOT).
DROP INDEX CONCURRENTLY IF EXISTS outbox_created_idx;
CREATE INDEX CONCURRENTLY outbox_created_idx ON outbox (created_at);

-- operations: terminal ones older than the retention (created_at <=
-- completed_at bounds the scan).
DROP INDEX CONCURRENTLY IF EXISTS operations_created_idx;
CREATE INDEX CONCURRENTLY operations_created_idx ON operations (created_at);

-- The rows that reference an operation without ON DELETE: an operation
-- they name is kept, and deleting one that is not must not scan these
-- tables once per row for the foreign key check. (orders has
-- orders_operation_idx already.)
DROP INDEX CONCURRENTLY IF EXISTS reservations_operation_idx;
CREATE INDEX CONCURRENTLY reservations_operation_idx ON reservations (operation_id)
    WHERE operation_id IS NOT NULL;
DROP INDEX CONCURRENTLY IF EXISTS number_configuration_versions_operation_idx;
CREATE INDEX CONCURRENTLY number_configuration_versions_operation_idx
    ON number_configuration_versions (operation_id) WHERE operation_id IS NOT NULL;
DROP INDEX CONCURRENTLY IF EXISTS porting_orders_operation_idx;
CREATE INDEX CONCURRENTLY porting_orders_operation_idx ON porting_orders (operation_id)
    WHERE operation_id IS NOT NULL;
