-- 0005: rate cards, rates, per-account assignment, and usage records
-- (RANGE-partitioned by month) with the cross-partition CDR dedup table.

-- ---------------------------------------------------------------- rate_cards
CREATE TABLE rate_cards (
    id             uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    name           text        NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    currency       char(3)     NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    effective_from timestamptz NOT NULL,
    effective_to   timestamptz,
    is_default     boolean     NOT NULL DEFAULT false,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT rate_cards_effective_check CHECK (effective_to IS NULL OR effective_to > effective_from),
    -- Target for (rate_card_id, currency) foreign keys: rates share the card's currency.
    CONSTRAINT rate_cards_id_currency_key UNIQUE (id, currency)
);

CREATE INDEX rate_cards_default_idx ON rate_cards (currency, effective_from) WHERE is_default;

CREATE TRIGGER rate_cards_set_updated_at BEFORE UPDATE ON rate_cards
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- ---------------------------------------------------------------- rates
-- Destination rating is longest-prefix match on `prefix` (E.164 digits
-- without '+'; '' is the catch-all):
--   SELECT ... FROM rates WHERE rate_card_id = $1 AND event_type = $2
--     AND prefix = ANY($3)      -- all prefixes of the destination digits
--   ORDER BY length(prefix) DESC LIMIT 1;
-- Inbound rating can instead match on (country, number_type) of our number.
-- Calls: charge = setup_micros + per_minute_micros * billable_s / 60, where
-- billable_s rounds the duration up to first_increment_s, then to multiples
-- of next_increment_s (60/60 per-minute, 1/1 per-second, 30/6 ...).
-- Messages: charge = setup_micros + per_unit_micros * units.
CREATE TABLE rates (
    id                bigserial   PRIMARY KEY,
    rate_card_id      uuid        NOT NULL,
    currency          char(3)     NOT NULL,
    event_type        text        NOT NULL
                                  CHECK (event_type IN ('inbound_call', 'outbound_call',
                                                        'sms_received', 'sms_sent')),
    prefix            text        NOT NULL DEFAULT '' CHECK (prefix ~ '^[0-9]{0,15}$'),
    country           text        CHECK (country IS NULL OR country ~ '^[A-Z]{2}$'),
    number_type       text        CHECK (number_type IS NULL
                                         OR number_type IN ('local', 'mobile', 'toll_free')),
    description       text,
    per_minute_micros bigint      NOT NULL DEFAULT 0 CHECK (per_minute_micros >= 0),
    per_unit_micros   bigint      NOT NULL DEFAULT 0 CHECK (per_unit_micros >= 0),
    setup_micros      bigint      NOT NULL DEFAULT 0 CHECK (setup_micros >= 0),
    first_increment_s int         NOT NULL DEFAULT 60 CHECK (first_increment_s BETWEEN 1 AND 3600),
    next_increment_s  int         NOT NULL DEFAULT 60 CHECK (next_increment_s BETWEEN 1 AND 3600),
    created_at        timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT rates_rate_card_fkey FOREIGN KEY (rate_card_id, currency)
        REFERENCES rate_cards (id, currency) ON DELETE CASCADE,
    -- NULL country / number_type mean "any"; NULLS NOT DISTINCT (PG15) keeps
    -- the "any" row unique too. Leading columns serve the prefix lookup.
    CONSTRAINT rates_match_key UNIQUE NULLS NOT DISTINCT
        (rate_card_id, event_type, prefix, country, number_type)
);

-- ---------------------------------------------------------------- account_rate_cards
-- Which rate card prices an account's usage, over time. The card in force at
-- time t: WHERE account_id = $1 AND effective_from <= t
--   AND (effective_to IS NULL OR effective_to > t) ORDER BY effective_from DESC LIMIT 1.
CREATE TABLE account_rate_cards (
    account_id     uuid        NOT NULL REFERENCES accounts (id),
    rate_card_id   uuid        NOT NULL REFERENCES rate_cards (id),
    effective_from timestamptz NOT NULL,
    effective_to   timestamptz,
    created_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, effective_from),
    CONSTRAINT account_rate_cards_effective_check
        CHECK (effective_to IS NULL OR effective_to > effective_from)
);

CREATE INDEX account_rate_cards_card_idx ON account_rate_cards (rate_card_id);

-- ---------------------------------------------------------------- usage_records
-- One row per rated (or to-be-rated) call/message. RANGE-partitioned by
-- month on started_at: queries are almost always "one account, one period",
-- old months can be detached/archived cheaply, and the hot month stays small.
-- The primary key must contain the partition key: (started_at, id).
-- number_id has no foreign key (numbers' key is (country, id) and usage must
-- outlive number releases); e164 is the stable reference.
CREATE TABLE usage_records (
    id             uuid        NOT NULL DEFAULT gen_random_uuid(),
    account_id     uuid        NOT NULL REFERENCES accounts (id),
    number_id      uuid,
    e164           text        NOT NULL CHECK (e164 ~ '^\+[1-9][0-9]{6,14}$'),
    event_type     text        NOT NULL
                               CHECK (event_type IN ('inbound_call', 'outbound_call',
                                                     'sms_received', 'sms_sent')),
    direction      text        NOT NULL CHECK (direction IN ('inbound', 'outbound')),
    carrier        text        NOT NULL,
    carrier_cdr_id text        NOT NULL,
    from_number    text,       -- as reported (may be anonymous / short code)
    to_number      text,
    started_at     timestamptz NOT NULL,
    ended_at       timestamptz,
    duration_s     int         NOT NULL DEFAULT 0 CHECK (duration_s >= 0),
    billable_s     int         NOT NULL DEFAULT 0 CHECK (billable_s >= 0),
    units          int         NOT NULL DEFAULT 0 CHECK (units >= 0),
    rate_card_id   uuid,
    rate_id        bigint,
    rate_micros    bigint      CHECK (rate_micros IS NULL OR rate_micros >= 0),
    cost_micros    bigint      CHECK (cost_micros IS NULL OR cost_micros >= 0),
    currency       char(3)     NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    rated_at       timestamptz,
    metadata       jsonb       NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(metadata) = 'object'),
    created_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT usage_records_pkey PRIMARY KEY (started_at, id),
    CONSTRAINT usage_records_event_direction_check CHECK (
        (event_type IN ('inbound_call', 'sms_received') AND direction = 'inbound')
        OR (event_type IN ('outbound_call', 'sms_sent') AND direction = 'outbound')),
    CONSTRAINT usage_records_rated_check CHECK (rated_at IS NULL OR cost_micros IS NOT NULL),
    CONSTRAINT usage_records_ended_check CHECK (ended_at IS NULL OR ended_at >= started_at)
) PARTITION BY RANGE (started_at);

COMMENT ON COLUMN usage_records.cost_micros IS 'Rated cost in currency micro-units; NULL until rated.';

-- Monthly partitions 2025-01 .. 2027-12 (usage_records_yYYYYmMM) and a DEFAULT
-- for anything outside. Add later months with the same naming BEFORE rows
-- for them arrive: creating a partition scans the DEFAULT partition and fails
-- if it already holds rows of the new range.
DO $$
DECLARE
    m date := date '2025-01-01';
BEGIN
    WHILE m < date '2028-01-01' LOOP
        EXECUTE format(
            'CREATE TABLE %I PARTITION OF usage_records FOR VALUES FROM (%L) TO (%L)',
            'usage_records_y' || to_char(m, 'YYYY') || 'm' || to_char(m, 'MM'),
            (m::timestamp AT TIME ZONE 'UTC'),
            ((m + interval '1 month')::timestamp AT TIME ZONE 'UTC'));
        m := (m + interval '1 month')::date;
    END LOOP;
END
$$;

CREATE TABLE usage_records_default PARTITION OF usage_records DEFAULT;

CREATE INDEX usage_records_account_started_idx ON usage_records (account_id, started_at);
CREATE INDEX usage_records_e164_started_idx    ON usage_records (e164, started_at);
CREATE INDEX usage_records_event_started_idx   ON usage_records (event_type, started_at);
-- Rating backlog (re-rating sweeps).
CREATE INDEX usage_records_unrated_idx         ON usage_records (started_at) WHERE rated_at IS NULL;

-- ---------------------------------------------------------------- usage_dedup
-- Exactly-once per carrier CDR across all partitions (a unique index on the
-- partitioned table would have to include started_at, and a CDR re-sent with
-- a corrected start time would slip through). The metering worker, in the
-- same transaction as the usage insert:
--   INSERT INTO usage_dedup (carrier, carrier_cdr_id, usage_id, started_at)
--   VALUES (...) ON CONFLICT DO NOTHING RETURNING usage_id;
-- no row returned => duplicate CDR, skip. No FK to usage_records, so old
-- usage partitions can be detached; prune dedup rows by started_at alongside.
CREATE TABLE usage_dedup (
    carrier        text        NOT NULL,
    carrier_cdr_id text        NOT NULL,
    usage_id       uuid        NOT NULL,
    started_at     timestamptz NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (carrier, carrier_cdr_id)
);

CREATE INDEX usage_dedup_started_idx ON usage_dedup (started_at);
