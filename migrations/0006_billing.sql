-- 0006: invoices, invoice lines, payment methods, payments.

-- ---------------------------------------------------------------- invoices
-- One invoice per account and billing period: UNIQUE (account_id,
-- period_start) makes generation idempotent
--   (INSERT ... ON CONFLICT ON CONSTRAINT invoices_account_period_key DO NOTHING).
-- Drafts may have no number yet; every issued invoice has one.
CREATE TABLE invoices (
    id              uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    account_id      uuid        NOT NULL REFERENCES accounts (id),
    number          text        UNIQUE CHECK (number IS NULL OR length(number) BETWEEN 1 AND 64),
    period_start    timestamptz NOT NULL,
    period_end      timestamptz NOT NULL,
    status          text        NOT NULL DEFAULT 'draft'
                                CHECK (status IN ('draft', 'finalized', 'paid', 'void',
                                                  'uncollectible')),
    subtotal_micros bigint      NOT NULL DEFAULT 0,
    tax_micros      bigint      NOT NULL DEFAULT 0 CHECK (tax_micros >= 0),
    total_micros    bigint      NOT NULL DEFAULT 0,
    amount_paid_micros bigint   NOT NULL DEFAULT 0 CHECK (amount_paid_micros >= 0),
    currency        char(3)     NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    issued_at       timestamptz,
    due_at          timestamptz,
    paid_at         timestamptz,
    voided_at       timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT invoices_account_period_key UNIQUE (account_id, period_start),
    CONSTRAINT invoices_period_check CHECK (period_end > period_start),
    CONSTRAINT invoices_total_check CHECK (total_micros = subtotal_micros + tax_micros),
    CONSTRAINT invoices_number_required_check CHECK (status = 'draft' OR number IS NOT NULL),
    CONSTRAINT invoices_issued_check CHECK (status = 'draft' OR issued_at IS NOT NULL),
    -- Targets for composite foreign keys from lines (same currency) and
    -- payments (same account).
    CONSTRAINT invoices_id_currency_key UNIQUE (id, currency),
    CONSTRAINT invoices_id_account_key UNIQUE (id, account_id)
);

CREATE INDEX invoices_account_idx ON invoices (account_id, period_start DESC);
-- Dunning / reminders.
CREATE INDEX invoices_open_due_idx ON invoices (due_at) WHERE status = 'finalized';

CREATE TRIGGER invoices_set_updated_at BEFORE UPDATE ON invoices
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- ---------------------------------------------------------------- invoice_lines
-- Child of invoices. amount_micros = quantity * unit_price_micros for priced
-- lines; credits/adjustments may be negative. Usage lines aggregate
-- usage_records of [period_start, period_end).
CREATE TABLE invoice_lines (
    id                uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    invoice_id        uuid        NOT NULL,
    line_no           int         NOT NULL CHECK (line_no >= 1),
    kind              text        NOT NULL
                                  CHECK (kind IN ('number_monthly', 'number_setup', 'usage',
                                                  'porting', 'credit', 'adjustment')),
    description       text        NOT NULL,
    e164              text        CHECK (e164 IS NULL OR e164 ~ '^\+[1-9][0-9]{6,14}$'),
    event_type        text        CHECK (event_type IS NULL
                                         OR event_type IN ('inbound_call', 'outbound_call',
                                                           'sms_received', 'sms_sent')),
    quantity          bigint      NOT NULL DEFAULT 1,
    unit              text        NOT NULL DEFAULT 'each'
                                  CHECK (unit IN ('each', 'month', 'minute', 'second', 'message')),
    unit_price_micros bigint      NOT NULL DEFAULT 0,
    amount_micros     bigint      NOT NULL,
    currency          char(3)     NOT NULL,
    period_start      timestamptz,
    period_end        timestamptz,
    metadata          jsonb,
    created_at        timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT invoice_lines_invoice_fkey FOREIGN KEY (invoice_id, currency)
        REFERENCES invoices (id, currency) ON DELETE CASCADE,
    CONSTRAINT invoice_lines_invoice_line_key UNIQUE (invoice_id, line_no),
    CONSTRAINT invoice_lines_period_check
        CHECK (period_end IS NULL OR period_start IS NULL OR period_end > period_start)
);

-- ---------------------------------------------------------------- payment_methods
-- Only the gateway's token is stored; card data never reaches us.
CREATE TABLE payment_methods (
    id            uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    account_id    uuid        NOT NULL REFERENCES accounts (id),
    gateway       text        NOT NULL,
    gateway_token text        NOT NULL,
    brand         text,
    last4         char(4)     CHECK (last4 IS NULL OR last4 ~ '^[0-9]{4}$'),
    exp_month     smallint    CHECK (exp_month IS NULL OR exp_month BETWEEN 1 AND 12),
    exp_year      smallint    CHECK (exp_year IS NULL OR exp_year BETWEEN 2000 AND 2100),
    is_default    boolean     NOT NULL DEFAULT false,
    deleted_at    timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT payment_methods_gateway_token_key UNIQUE (gateway, gateway_token),
    CONSTRAINT payment_methods_id_account_key UNIQUE (id, account_id)
);

-- At most one default (live) method per account.
CREATE UNIQUE INDEX payment_methods_one_default_key ON payment_methods (account_id)
    WHERE is_default AND deleted_at IS NULL;
CREATE INDEX payment_methods_account_idx ON payment_methods (account_id, created_at DESC);

CREATE TRIGGER payment_methods_set_updated_at BEFORE UPDATE ON payment_methods
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- ---------------------------------------------------------------- payments
-- gateway_request_key is sent to the gateway as its Idempotency-Key, so a
-- retried charge can never be taken twice; gateway_payment_id is the
-- gateway's id once known (webhooks look payments up by it).
CREATE TABLE payments (
    id                  uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    account_id          uuid        NOT NULL REFERENCES accounts (id),
    invoice_id          uuid        NOT NULL,
    payment_method_id   uuid,
    amount_micros       bigint      NOT NULL CHECK (amount_micros > 0),
    currency            char(3)     NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    status              text        NOT NULL DEFAULT 'pending'
                                    CHECK (status IN ('pending', 'succeeded', 'failed', 'refunded')),
    gateway             text        NOT NULL,
    gateway_request_key text        NOT NULL UNIQUE,
    gateway_payment_id  text        UNIQUE,
    failure_code        text,
    failure_reason      text,
    attempts            int         NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at     timestamptz,
    succeeded_at        timestamptz,
    refunded_at         timestamptz,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT payments_invoice_fkey FOREIGN KEY (invoice_id, account_id)
        REFERENCES invoices (id, account_id),
    CONSTRAINT payments_payment_method_fkey FOREIGN KEY (payment_method_id, account_id)
        REFERENCES payment_methods (id, account_id)
);

-- At most one charge in flight per invoice.
CREATE UNIQUE INDEX payments_one_pending_key ON payments (invoice_id) WHERE status = 'pending';
CREATE INDEX payments_account_idx ON payments (account_id, created_at DESC);
CREATE INDEX payments_invoice_idx ON payments (invoice_id);
-- Retry scheduler.
CREATE INDEX payments_retry_idx ON payments (next_attempt_at)
    WHERE status = 'pending' AND next_attempt_at IS NOT NULL;

CREATE TRIGGER payments_set_updated_at BEFORE UPDATE ON payments
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
