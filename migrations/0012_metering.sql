-- 0012: usage metering (docs/METERING.md): carrier credentials for signed
-- CDR pushes, replay protection, rating exceptions, per-day aggregates kept
-- in step with usage_records, usage triggers, a default rate card, and the
-- function that creates usage_records' monthly partitions ahead of time.

-- ---------------------------------------------------------------- carriers
-- A carrier pushing CDRs authenticates with a bearer credential (stored as
-- its SHA-256, like API keys) and signs each request with HMAC-SHA256 over
-- "timestamp.body" using signing_secret. The secret must be readable to
-- check signatures, so it is stored as given (like any webhook secret).
CREATE TABLE carrier_credentials (
    id             uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    carrier        text        NOT NULL CHECK (carrier ~ '^[a-z0-9][a-z0-9_-]{0,62}$'),
    key_prefix     text        NOT NULL,
    key_hash       bytea       NOT NULL UNIQUE CHECK (length(key_hash) = 32),
    signing_secret text        NOT NULL CHECK (length(signing_secret) >= 16),
    status         text        NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'revoked')),
    created_at     timestamptz NOT NULL DEFAULT now(),
    revoked_at     timestamptz
);

CREATE INDEX carrier_credentials_carrier_idx ON carrier_credentials (carrier);

-- Signatures already accepted, so a replayed request is refused. Rows older
-- than the timestamp tolerance (5 min) can be deleted: a replay of them is
-- refused as stale anyway.
CREATE TABLE cdr_push_signatures (
    carrier     text        NOT NULL,
    signature   text        NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (carrier, signature)
);

CREATE INDEX cdr_push_signatures_received_idx ON cdr_push_signatures (received_at);

-- ---------------------------------------------------------------- usage_exceptions
-- CDRs the metering worker could not rate (unknown number, no rate, bad
-- fields): kept with their reason, never dropped. `voxctl usage rerate`
-- sends open ones back through vox.cdr.raw; a later success resolves them.
CREATE TABLE usage_exceptions (
    id             bigserial   PRIMARY KEY,
    carrier        text        NOT NULL,
    carrier_cdr_id text,       -- NULL when the record had no usable id
    e164           text,
    reason_code    text        NOT NULL,
    reason         text        NOT NULL,
    record         jsonb       NOT NULL,  -- the CDR as received (event data)
    source_topic   text,
    source_partition int,
    source_offset  bigint,
    status         text        NOT NULL DEFAULT 'open'
                               CHECK (status IN ('open', 'requeued', 'resolved')),
    seen_count     int         NOT NULL DEFAULT 1,
    first_seen_at  timestamptz NOT NULL DEFAULT now(),
    last_seen_at   timestamptz NOT NULL DEFAULT now(),
    resolved_at    timestamptz,
    usage_id       uuid
);

-- One exception per carrier record: a bad record redelivered or re-pushed
-- bumps seen_count instead of adding rows.
CREATE UNIQUE INDEX usage_exceptions_cdr_key ON usage_exceptions (carrier, carrier_cdr_id)
    WHERE carrier_cdr_id IS NOT NULL;
CREATE INDEX usage_exceptions_open_idx ON usage_exceptions (reason_code, id) WHERE status <> 'resolved';

-- ---------------------------------------------------------------- usage_daily
-- Running per-account, per-UTC-day aggregates, updated in the same
-- transaction as the usage_records they sum (GET /v1/usage reads them).
CREATE TABLE usage_daily (
    account_id  uuid    NOT NULL REFERENCES accounts (id),
    day         date    NOT NULL,
    e164        text    NOT NULL,
    event_type  text    NOT NULL CHECK (event_type IN ('inbound_call', 'outbound_call',
                                                        'sms_received', 'sms_sent')),
    currency    char(3) NOT NULL,
    records     bigint  NOT NULL DEFAULT 0,
    duration_s  bigint  NOT NULL DEFAULT 0,
    billable_s  bigint  NOT NULL DEFAULT 0,
    units       bigint  NOT NULL DEFAULT 0,
    cost_micros bigint  NOT NULL DEFAULT 0,
    PRIMARY KEY (account_id, day, e164, event_type, currency)
);

-- ---------------------------------------------------------------- usage_triggers
-- Twilio-style usage triggers. category: which records count; trigger_by:
-- count (records), usage (billable seconds for calls, segments for
-- messages, both for "all"), price (cost in micro-units). A trigger fires
-- once per period (UTC day, UTC month, or once ever for 'none', counting
-- from the day it was created) when the value reaches threshold.
CREATE TABLE usage_triggers (
    id            uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    account_id    uuid        NOT NULL REFERENCES accounts (id),
    category      text        NOT NULL CHECK (category IN ('all', 'calls', 'calls_inbound',
                                    'calls_outbound', 'sms', 'sms_inbound', 'sms_outbound')),
    trigger_by    text        NOT NULL CHECK (trigger_by IN ('count', 'usage', 'price')),
    threshold     bigint      NOT NULL CHECK (threshold > 0),
    recurring     text        NOT NULL CHECK (recurring IN ('daily', 'monthly', 'none')),
    callback_url  text        NOT NULL CHECK (length(callback_url) BETWEEN 8 AND 2048),
    friendly_name text        CHECK (friendly_name IS NULL OR length(friendly_name) <= 200),
    created_at    timestamptz NOT NULL DEFAULT now(),
    deleted_at    timestamptz
);

CREATE INDEX usage_triggers_account_idx ON usage_triggers (account_id) WHERE deleted_at IS NULL;

CREATE TABLE usage_trigger_fires (
    trigger_id   uuid        NOT NULL REFERENCES usage_triggers (id),
    period_start date        NOT NULL,
    value        bigint      NOT NULL,
    fired_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (trigger_id, period_start)
);

-- ---------------------------------------------------------------- partitions
-- Creates the monthly usage_records partitions from this month through
-- months_ahead months ahead (the metering worker calls it once a day and at
-- start). A month whose rows already sit in the DEFAULT partition cannot be
-- created (PostgreSQL checks); that month is skipped with a NOTICE.
CREATE FUNCTION usage_ensure_partitions(months_ahead int) RETURNS int
LANGUAGE plpgsql AS $$
DECLARE
    m date := date_trunc('month', now() AT TIME ZONE 'UTC')::date;
    last date := (date_trunc('month', now() AT TIME ZONE 'UTC') + make_interval(months => months_ahead))::date;
    name text;
    made int := 0;
BEGIN
    WHILE m <= last LOOP
        name := 'usage_records_y' || to_char(m, 'YYYY') || 'm' || to_char(m, 'MM');
        IF to_regclass(name) IS NULL THEN
            BEGIN
                EXECUTE format(
                    'CREATE TABLE %I PARTITION OF usage_records FOR VALUES FROM (%L) TO (%L)',
                    name, (m::timestamp AT TIME ZONE 'UTC'),
                    ((m + interval '1 month')::timestamp AT TIME ZONE 'UTC'));
                made := made + 1;
            EXCEPTION WHEN check_violation THEN
                RAISE NOTICE 'usage partition % not created: rows for it are in the default partition', name;
            END;
        END IF;
        m := (m + interval '1 month')::date;
    END LOOP;
    RETURN made;
END
$$;

SELECT usage_ensure_partitions(3);

-- ---------------------------------------------------------------- default rate card
-- The card that prices every account without an account_rate_cards row
-- (docs/METERING.md lists it). Outbound and messages rate on the
-- destination prefix, inbound on our number's prefix (the "to" party).
INSERT INTO rate_cards (id, name, currency, effective_from, is_default)
VALUES ('00000000-0000-4000-8000-000000000001', 'Standard (USD)', 'USD',
        '2020-01-01T00:00:00Z', true);

INSERT INTO rates (rate_card_id, currency, event_type, prefix, description,
                   per_minute_micros, per_unit_micros, setup_micros,
                   first_increment_s, next_increment_s) VALUES
  ('00000000-0000-4000-8000-000000000001', 'USD', 'inbound_call', '', 'Inbound, any', 10000, 0, 0, 60, 60),
  ('00000000-0000-4000-8000-000000000001', 'USD', 'inbound_call', '1', 'Inbound, US/CA', 8500, 0, 0, 60, 60),
  ('00000000-0000-4000-8000-000000000001', 'USD', 'inbound_call', '1800', 'Inbound, toll-free 800', 22000, 0, 0, 60, 60),
  ('00000000-0000-4000-8000-000000000001', 'USD', 'inbound_call', '1888', 'Inbound, toll-free 888', 22000, 0, 0, 60, 60),
  ('00000000-0000-4000-8000-000000000001', 'USD', 'inbound_call', '44', 'Inbound, GB', 10000, 0, 0, 1, 1),
  ('00000000-0000-4000-8000-000000000001', 'USD', 'outbound_call', '', 'Outbound, rest of world', 250000, 0, 0, 60, 60),
  ('00000000-0000-4000-8000-000000000001', 'USD', 'outbound_call', '1', 'Outbound, US/CA', 14000, 0, 0, 60, 60),
  ('00000000-0000-4000-8000-000000000001', 'USD', 'outbound_call', '44', 'Outbound, GB', 20000, 0, 0, 1, 1),
  ('00000000-0000-4000-8000-000000000001', 'USD', 'outbound_call', '447', 'Outbound, GB mobile', 90000, 0, 10000, 1, 1),
  ('00000000-0000-4000-8000-000000000001', 'USD', 'outbound_call', '49', 'Outbound, DE', 25000, 0, 0, 6, 6),
  ('00000000-0000-4000-8000-000000000001', 'USD', 'outbound_call', '33', 'Outbound, FR', 25000, 0, 0, 6, 6),
  ('00000000-0000-4000-8000-000000000001', 'USD', 'outbound_call', '61', 'Outbound, AU', 40000, 0, 0, 60, 60),
  ('00000000-0000-4000-8000-000000000001', 'USD', 'sms_received', '', 'Message received, any', 0, 7900, 0, 60, 60),
  ('00000000-0000-4000-8000-000000000001', 'USD', 'sms_sent', '', 'Message sent, rest of world', 0, 60000, 0, 60, 60),
  ('00000000-0000-4000-8000-000000000001', 'USD', 'sms_sent', '1', 'Message sent, US/CA', 0, 7900, 0, 60, 60),
  ('00000000-0000-4000-8000-000000000001', 'USD', 'sms_sent', '44', 'Message sent, GB', 0, 40000, 0, 60, 60);
