-- 0027: the billing cycle (docs/BILLING.md): billing settings per account,
-- number ownership history (what the monthly lines prorate), invoices with
-- a gapless number per account, credit notes, payment attempts against the
-- payment gateway, gateway events, and dunning as data.

-- ---------------------------------------------------------------- dunning_plans
-- The ladder as data: steps run in order of after_days, counted from the
-- invoice's due_at. action: remind (a notification), suspend (the
-- account's numbers answer reject and purchases are refused), release (the
-- numbers go back to the carrier).
CREATE TABLE dunning_plans (
    name        text        PRIMARY KEY CHECK (name ~ '^[a-z0-9_-]{1,64}$'),
    steps       jsonb       NOT NULL CHECK (jsonb_typeof(steps) = 'array'),
    created_at  timestamptz NOT NULL DEFAULT now()
);

INSERT INTO dunning_plans (name, steps) VALUES
    ('standard', '[{"after_days": 1, "action": "remind"},
                   {"after_days": 7, "action": "remind"},
                   {"after_days": 14, "action": "suspend"},
                   {"after_days": 60, "action": "release"}]'),
    ('lenient', '[{"after_days": 1, "action": "remind"},
                  {"after_days": 14, "action": "remind"},
                  {"after_days": 30, "action": "suspend"},
                  {"after_days": 90, "action": "release"}]');

-- ---------------------------------------------------------------- billing_accounts
-- One row per billed account (made on first use with the defaults).
-- anchor_day: the day of the month periods start on, in the account's time
-- zone (accounts.timezone); a month shorter than it starts on its last day.
-- tax_rate_ppm: parts per million of the subtotal (80000 = 8 %).
-- standing: good; past_due (an invoice is unpaid past its due date);
-- suspended (a suspend step ran: numbers held, purchases refused).
CREATE TABLE billing_accounts (
    account_id          uuid        PRIMARY KEY REFERENCES accounts (id),
    anchor_day          smallint    NOT NULL DEFAULT 1 CHECK (anchor_day BETWEEN 1 AND 31),
    tax_rate_ppm        int         NOT NULL DEFAULT 0 CHECK (tax_rate_ppm BETWEEN 0 AND 1000000),
    grace_days          smallint    NOT NULL DEFAULT 3 CHECK (grace_days BETWEEN 0 AND 31),
    payment_terms_days  smallint    NOT NULL DEFAULT 0 CHECK (payment_terms_days BETWEEN 0 AND 90),
    dunning_plan        text        NOT NULL DEFAULT 'standard' REFERENCES dunning_plans (name),
    standing            text        NOT NULL DEFAULT 'good'
                                    CHECK (standing IN ('good', 'past_due', 'suspended')),
    suspended_at        timestamptz,
    -- Credit notes on paid invoices become credit, taken off the next invoices.
    credit_balance_micros bigint    NOT NULL DEFAULT 0 CHECK (credit_balance_micros >= 0),
    next_invoice_seq    int         NOT NULL DEFAULT 1 CHECK (next_invoice_seq >= 1),
    next_credit_note_seq int        NOT NULL DEFAULT 1 CHECK (next_credit_note_seq >= 1),
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now()
);

CREATE TRIGGER billing_accounts_set_updated_at BEFORE UPDATE ON billing_accounts
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- The billing period containing instant `at` for an anchor day in a time
-- zone: [start, end), both local midnights of the anchor day (clamped to
-- the month's last day). One definition for the ingress and the worker.
CREATE FUNCTION billing_period_start_on(local_month date, anchor smallint, tz text)
RETURNS timestamptz LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT ((date_trunc('month', local_month)::date
             + (LEAST(anchor::int,
                      EXTRACT(day FROM date_trunc('month', local_month)
                                       + interval '1 month - 1 day')::int) - 1))::timestamp
            AT TIME ZONE tz)
$$;

CREATE FUNCTION billing_period_of(at timestamptz, anchor smallint, tz text,
                                  OUT period_start timestamptz, OUT period_end timestamptz)
LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
DECLARE
    m date := date_trunc('month', (at AT TIME ZONE tz))::date;
BEGIN
    period_start := billing_period_start_on(m, anchor, tz);
    IF period_start > at THEN
        m := (m - interval '1 month')::date;
        period_start := billing_period_start_on(m, anchor, tz);
    END IF;
    period_end := billing_period_start_on((m + interval '1 month')::date, anchor, tz);
END
$$;

-- ---------------------------------------------------------------- number_ownerships
-- Who owned which number when, kept by a trigger on numbers so that every
-- path (orders, releases, ports, imports) is recorded the same way. A
-- number is owned while purchased, active or suspended; an interval opens
-- when it becomes owned (or changes account) and closes when it stops.
-- The price is the number's when the interval opened. Invoices prorate
-- monthly_rate_micros by the days of [started_at, ended_at) in the period,
-- and charge setup_fee_micros once, in the period started_at falls in,
-- when source = 'purchase'.
CREATE TABLE number_ownerships (
    id                  bigserial   PRIMARY KEY,
    number_id           uuid        NOT NULL,
    country             text        NOT NULL,
    e164                text        NOT NULL,
    account_id          uuid        NOT NULL REFERENCES accounts (id),
    started_at          timestamptz NOT NULL,
    ended_at            timestamptz,
    source              text        NOT NULL CHECK (source IN ('purchase', 'port_in', 'other')),
    monthly_rate_micros bigint      NOT NULL CHECK (monthly_rate_micros >= 0),
    setup_fee_micros    bigint      NOT NULL CHECK (setup_fee_micros >= 0),
    currency            char(3)     NOT NULL,
    CONSTRAINT number_ownerships_interval_check CHECK (ended_at IS NULL OR ended_at >= started_at)
);

CREATE UNIQUE INDEX number_ownerships_open_key ON number_ownerships (number_id) WHERE ended_at IS NULL;
CREATE INDEX number_ownerships_account_idx ON number_ownerships (account_id, started_at);

CREATE FUNCTION number_ownership_track() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    was_owned boolean := TG_OP = 'UPDATE'
        AND OLD.status IN ('purchased', 'active', 'suspended') AND OLD.account_id IS NOT NULL;
    is_owned boolean := NEW.status IN ('purchased', 'active', 'suspended')
        AND NEW.account_id IS NOT NULL;
    src text := 'other';
BEGIN
    IF was_owned AND (NOT is_owned OR OLD.account_id IS DISTINCT FROM NEW.account_id) THEN
        UPDATE number_ownerships SET ended_at = now()
         WHERE number_id = OLD.id AND ended_at IS NULL;
    END IF;
    IF is_owned AND (NOT was_owned OR OLD.account_id IS DISTINCT FROM NEW.account_id) THEN
        -- A writer may name the source (the porting worker sets
        -- vox.ownership_source = 'port_in' in its transaction).
        src := COALESCE(NULLIF(current_setting('vox.ownership_source', true), ''),
                        CASE WHEN TG_OP = 'UPDATE' AND OLD.status = 'porting' THEN 'port_in'
                             WHEN TG_OP = 'UPDATE' AND OLD.status IN ('available', 'reserved')
                             THEN 'purchase'
                             ELSE 'other' END);
        UPDATE number_ownerships SET ended_at = now()
         WHERE number_id = NEW.id AND ended_at IS NULL;
        INSERT INTO number_ownerships (number_id, country, e164, account_id, started_at, source,
                                       monthly_rate_micros, setup_fee_micros, currency)
        VALUES (NEW.id, NEW.country, NEW.e164, NEW.account_id, now(), src,
                NEW.monthly_rate_micros, NEW.setup_fee_micros, NEW.currency);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER numbers_ownership_update
    AFTER UPDATE OF status, account_id ON numbers
    FOR EACH ROW
    WHEN (OLD.status IS DISTINCT FROM NEW.status OR OLD.account_id IS DISTINCT FROM NEW.account_id)
    EXECUTE FUNCTION number_ownership_track();

CREATE TRIGGER numbers_ownership_insert
    AFTER INSERT ON numbers
    FOR EACH ROW
    WHEN (NEW.account_id IS NOT NULL AND NEW.status IN ('purchased', 'active', 'suspended'))
    EXECUTE FUNCTION number_ownership_track();

-- Numbers owned before this migration: an open interval from when they
-- were bought (or made).
INSERT INTO number_ownerships (number_id, country, e164, account_id, started_at, source,
                               monthly_rate_micros, setup_fee_micros, currency)
SELECT id, country, e164, account_id, COALESCE(purchased_at, created_at),
       CASE WHEN purchased_at IS NOT NULL THEN 'purchase' ELSE 'other' END,
       monthly_rate_micros, setup_fee_micros, currency
  FROM numbers
 WHERE account_id IS NOT NULL AND status IN ('purchased', 'active', 'suspended');

-- ---------------------------------------------------------------- billing hold
-- Set on an owned number by a dunning suspend step, cleared when the
-- balance is paid. The routing decision answers reject (rule
-- billing_suspended) while it is set; the number keeps its status and
-- configuration. The routing trigger of 0023 also fires on it.
ALTER TABLE numbers ADD COLUMN billing_hold_at timestamptz;

DROP TRIGGER numbers_routing_status_notify ON numbers;
CREATE TRIGGER numbers_routing_status_notify
    AFTER UPDATE OF status, e164, account_id, billing_hold_at ON numbers
    FOR EACH ROW
    WHEN (OLD.status IS DISTINCT FROM NEW.status
          OR OLD.e164 IS DISTINCT FROM NEW.e164
          OR OLD.account_id IS DISTINCT FROM NEW.account_id
          OR OLD.billing_hold_at IS DISTINCT FROM NEW.billing_hold_at)
    EXECUTE FUNCTION notify_routing_number_status();

-- ---------------------------------------------------------------- invoices
-- number: unique per account (gapless: billing_accounts.next_invoice_seq is
-- taken in the finalizing transaction). grace_until: a draft is refreshed
-- until then and finalized after. usage_cutoff: records created after it
-- (late CDRs of a finalized period) go on the next invoice.
-- amount_due_micros: total minus credit applied and credit notes, rounded
-- half up to the currency's minor unit (the gateway charges minor units).
ALTER TABLE invoices DROP CONSTRAINT invoices_number_key;
ALTER TABLE invoices
    ADD COLUMN seq int CHECK (seq IS NULL OR seq >= 1),
    ADD COLUMN grace_until timestamptz,
    ADD COLUMN refreshed_at timestamptz,
    ADD COLUMN usage_cutoff timestamptz,
    ADD COLUMN credit_applied_micros bigint NOT NULL DEFAULT 0 CHECK (credit_applied_micros >= 0),
    ADD COLUMN credited_micros bigint NOT NULL DEFAULT 0 CHECK (credited_micros >= 0),
    ADD COLUMN amount_due_micros bigint NOT NULL DEFAULT 0,
    ADD COLUMN tax_rate_ppm int NOT NULL DEFAULT 0 CHECK (tax_rate_ppm BETWEEN 0 AND 1000000),
    ADD COLUMN timezone text,
    ADD COLUMN marked_uncollectible_at timestamptz,
    ADD COLUMN version int NOT NULL DEFAULT 1;
ALTER TABLE invoices ADD CONSTRAINT invoices_account_number_key UNIQUE (account_id, number);
ALTER TABLE invoices ADD CONSTRAINT invoices_account_seq_key UNIQUE (account_id, seq);
CREATE INDEX invoices_drafts_idx ON invoices (grace_until) WHERE status = 'draft';

-- Usage lines carry the category (event_type); late usage of an earlier
-- period names it in metadata.
ALTER TABLE invoice_lines DROP CONSTRAINT invoice_lines_kind_check;
ALTER TABLE invoice_lines ADD CONSTRAINT invoice_lines_kind_check
    CHECK (kind IN ('number_monthly', 'number_setup', 'usage', 'late_usage', 'porting',
                    'credit', 'adjustment'));
ALTER TABLE invoice_lines ADD COLUMN number_id uuid;
ALTER TABLE invoice_lines ADD COLUMN days int CHECK (days IS NULL OR days >= 0);
ALTER TABLE invoice_lines ADD COLUMN period_days int CHECK (period_days IS NULL OR period_days >= 1);

-- ---------------------------------------------------------------- credit_notes
CREATE TABLE credit_notes (
    id            uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    account_id    uuid        NOT NULL REFERENCES accounts (id),
    invoice_id    uuid        NOT NULL,
    seq           int         NOT NULL CHECK (seq >= 1),
    number        text        NOT NULL,
    amount_micros bigint      NOT NULL CHECK (amount_micros > 0),
    currency      char(3)     NOT NULL,
    reason        text        NOT NULL CHECK (length(reason) BETWEEN 1 AND 500),
    -- where the credit went: off the invoice's amount due, or to the
    -- account's credit balance (the invoice was paid).
    applied_to    text        NOT NULL CHECK (applied_to IN ('invoice', 'balance')),
    created_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT credit_notes_invoice_fkey FOREIGN KEY (invoice_id, account_id)
        REFERENCES invoices (id, account_id),
    CONSTRAINT credit_notes_account_seq_key UNIQUE (account_id, seq),
    CONSTRAINT credit_notes_account_number_key UNIQUE (account_id, number)
);
CREATE INDEX credit_notes_invoice_idx ON credit_notes (invoice_id);

-- ---------------------------------------------------------------- payment_methods
-- A token from the payment gateway, attached asynchronously: pending until
-- the worker has read it at the gateway, then active (or failed, with why).
ALTER TABLE payment_methods
    ADD COLUMN status text NOT NULL DEFAULT 'active'
        CHECK (status IN ('pending', 'active', 'failed')),
    ADD COLUMN failure_reason text;

-- ---------------------------------------------------------------- payments
-- One payment per invoice charge; attempts are its calls to the gateway.
-- payments.gateway_request_key stays the payment's own key; every attempt
-- has its own Idempotency-Key (a retry after a timeout reuses its
-- attempt's key, so the gateway charges at most once per attempt; a
-- scheduled retry after a soft decline is a new attempt with a new key).
ALTER TABLE payments DROP CONSTRAINT payments_status_check;
ALTER TABLE payments ADD CONSTRAINT payments_status_check
    CHECK (status IN ('pending', 'processing', 'succeeded', 'failed', 'refunded'));
ALTER TABLE payments ADD COLUMN decline_hard boolean;
DROP INDEX payments_one_pending_key;
CREATE UNIQUE INDEX payments_one_open_key ON payments (invoice_id)
    WHERE status IN ('pending', 'processing');

CREATE TABLE payment_attempts (
    id               bigserial   PRIMARY KEY,
    payment_id       uuid        NOT NULL REFERENCES payments (id),
    attempt_no       int         NOT NULL CHECK (attempt_no >= 1),
    idempotency_key  text        NOT NULL UNIQUE,
    status           text        NOT NULL DEFAULT 'started'
                                 CHECK (status IN ('started', 'succeeded', 'processing',
                                                   'declined', 'error')),
    gateway_intent_id text,
    decline_code     text,
    message          text,
    started_at       timestamptz NOT NULL DEFAULT now(),
    finished_at      timestamptz,
    CONSTRAINT payment_attempts_payment_attempt_key UNIQUE (payment_id, attempt_no)
);

-- ---------------------------------------------------------------- gateway_events
-- Webhooks of the payment gateway, applied once (its event id).
CREATE TABLE gateway_events (
    id          text        PRIMARY KEY,
    type        text        NOT NULL,
    intent_id   text,
    payload     jsonb       NOT NULL,
    applied     boolean     NOT NULL DEFAULT false,
    note        text,
    received_at timestamptz NOT NULL DEFAULT now()
);

-- ---------------------------------------------------------------- dunning_steps_done
-- Each ladder step runs once per invoice (the unique key), re-checking in
-- its transaction that the invoice is still unpaid.
CREATE TABLE dunning_steps_done (
    invoice_id  uuid        NOT NULL REFERENCES invoices (id),
    step_no     int         NOT NULL CHECK (step_no >= 0),
    action      text        NOT NULL CHECK (action IN ('remind', 'suspend', 'release')),
    done_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (invoice_id, step_no)
);
