-- 0033: per-domain event topics and per-key sequences (issue 16,
-- docs/EVENTS.md "Topics and ordering").
--
-- An event row of the outbox names its domain topic (vox.events.numbers,
-- .usage, .billing, .porting, .notifications; NULL for a type without one),
-- where the relay publishes it too, and its sequence scope (the domain
-- topic, or vox.events; NULL for commands). The relay gives each such row,
-- when it first takes it, the next number of its (scope, key) from
-- event_sequences and keeps it in outbox.sequence, so a row published again
-- after a failure carries the same number. One relay runs at a time (its
-- advisory lock) and it publishes a key's rows in the order it numbers
-- them, so within a topic partition a key's events arrive with sequence
-- 1, 2, 3, ... without gaps: a reader that sees a gap missed an event, one
-- that sees a number again got a duplicate (same CloudEvents id).
ALTER TABLE outbox
  ADD COLUMN domain_topic text,
  ADD COLUMN seq_scope text,
  ADD COLUMN sequence bigint;

CREATE TABLE event_sequences (
  scope text NOT NULL,
  message_key text NOT NULL,
  last_sequence bigint NOT NULL,
  PRIMARY KEY (scope, message_key)
);
