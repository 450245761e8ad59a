-- 0002: asynchronous operations and the exactly-once messaging tables
-- (inbox / outbox). The shapes of operations, operation_events, inbox and
-- outbox are fixed: the C code (ingress, workers, relay) depends on them.

-- ---------------------------------------------------------------- operations
-- One row per accepted command (202 Accepted + operation id).
CREATE TABLE operations (
  id uuid PRIMARY KEY,
  account_id uuid REFERENCES accounts(id),
  kind text NOT NULL,
  status text NOT NULL CHECK (status IN ('accepted','running','completed','failed')),
  subject text,
  request jsonb,
  result jsonb,
  error_code text,
  error_message text,
  request_id text,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  completed_at timestamptz
);
CREATE INDEX operations_account_created_idx ON operations (account_id, created_at DESC);

-- Respects an explicit SET updated_at = ...; only fills it in when omitted.
CREATE TRIGGER operations_set_updated_at BEFORE UPDATE ON operations
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- Status history of an operation (append-only).
CREATE TABLE operation_events (
  id bigserial PRIMARY KEY,
  operation_id uuid NOT NULL REFERENCES operations(id) ON DELETE CASCADE,
  status text NOT NULL,
  detail jsonb,
  at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX operation_events_op_idx ON operation_events (operation_id, id);

-- ---------------------------------------------------------------- inbox
-- Consumer-side deduplication: a handler inserts (consumer, message_id) in the
-- same transaction as its effect; a redelivered message hits the primary key
-- and is skipped. Offsets are committed to Kafka only after that commit.
CREATE TABLE inbox (
  consumer text NOT NULL,
  message_id text NOT NULL,
  topic text,
  kafka_partition int,
  kafka_offset bigint,
  processed_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (consumer, message_id)
);

-- ---------------------------------------------------------------- outbox
-- Producer side: events are written here in the effect's transaction and
-- relayed to Kafka in id order; published_at is set after the broker acks.
CREATE TABLE outbox (
  id bigserial PRIMARY KEY,
  topic text NOT NULL,
  message_key text,
  payload text NOT NULL,
  headers jsonb,
  created_at timestamptz NOT NULL DEFAULT now(),
  published_at timestamptz
);
CREATE INDEX outbox_unpublished_idx ON outbox (id) WHERE published_at IS NULL;
