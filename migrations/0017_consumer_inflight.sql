-- 0017: in-flight marks of the consumers (docs/ARCHITECTURE.md, "A message
-- that kills the worker"). Before a batch (or one message) runs, the
-- consumer records here, autocommitted and outside the batch transaction,
-- the offsets it is about to process per partition and the PostgreSQL
-- backend that wrote the mark; it deletes the mark after the commit. A mark
-- that is still here while its backend is gone was left by a process that
-- died on those offsets: the next worker to get them runs them in pieces,
-- narrows the crash down to one record and dead-letters it.
-- Rows live for one batch: the table stays tiny.
CREATE SEQUENCE consumer_inflight_mark_seq;

CREATE TABLE consumer_inflight (
    mark bigint NOT NULL,            -- one per batch or piece; one row per partition
    consumer text NOT NULL,          -- consumer group (inbox name)
    topic text NOT NULL,
    partition int NOT NULL,
    first_offset bigint NOT NULL,
    last_offset bigint NOT NULL,
    -- 1 for a fresh batch; for a piece of one record, the times that
    -- record has been run alone (the last try before it is dead-lettered)
    attempts int NOT NULL,
    owner text NOT NULL,             -- the consumer process (a uuid per start)
    owner_pid int NOT NULL,          -- pg_backend_pid() of the writing connection
    owner_start timestamptz,         -- its backend_start (pid reuse)
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (mark, topic, partition),
    CHECK (first_offset <= last_offset)
);
CREATE INDEX consumer_inflight_partition_idx
    ON consumer_inflight (consumer, topic, partition);
