-- 0026: porting orders (docs/PORTING.md). The per-number porting_requests of
-- 0004 never had code behind them and no rows; they give way to orders with
-- children per losing carrier, per-number status, history and documents.

DROP TABLE porting_events;
DROP TABLE porting_documents;
DROP TABLE porting_requests;

-- Documents (LOA, invoice...) of an account. The bytes live in the object
-- store under storage_key; sha256 pins the content.
CREATE TABLE documents (
    id           uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    account_id   uuid        NOT NULL REFERENCES accounts (id),
    kind         text        NOT NULL DEFAULT 'other'
                             CHECK (kind IN ('loa', 'invoice', 'other')),
    filename     text        NOT NULL CHECK (length(filename) BETWEEN 1 AND 255),
    content_type text        NOT NULL
                             CHECK (content_type IN ('application/pdf', 'image/png', 'image/jpeg')),
    size_bytes   bigint      NOT NULL CHECK (size_bytes > 0),
    sha256       bytea       NOT NULL CHECK (octet_length(sha256) = 32),
    storage_key  text        NOT NULL UNIQUE,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX documents_account_idx ON documents (account_id, created_at DESC, id);

CREATE TABLE porting_orders (
    id                   uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    account_id           uuid        NOT NULL REFERENCES accounts (id),
    -- A child (one losing carrier) of a split order; NULL for a top order.
    parent_id            uuid        REFERENCES porting_orders (id),
    status               text        NOT NULL DEFAULT 'draft'
                                     CHECK (status IN ('draft', 'submitted', 'in-process', 'exception',
                                                       'foc-date-confirmed', 'ported',
                                                       'cancel-pending', 'cancelled')),
    -- Raised by every PATCH: a submit carries the version it was asked on.
    version              integer     NOT NULL DEFAULT 1 CHECK (version > 0),
    losing_carrier       text        CHECK (losing_carrier IS NULL OR length(losing_carrier) BETWEEN 1 AND 200),
    authorized_name      text        CHECK (authorized_name IS NULL OR length(authorized_name) BETWEEN 1 AND 200),
    business_name        text        CHECK (business_name IS NULL OR length(business_name) BETWEEN 1 AND 200),
    service_address      jsonb       CHECK (service_address IS NULL OR jsonb_typeof(service_address) = 'object'),
    -- vox_crypto sealed (AES-256-GCM, key id || nonce || ct || tag), bound
    -- to 'porting_orders.<field>:<id>:<account_id>'; never in clear.
    account_number_enc   bytea       CHECK (account_number_enc IS NULL OR octet_length(account_number_enc) >= 29),
    account_number_last2 text        CHECK (account_number_last2 IS NULL OR length(account_number_last2) <= 2),
    pin_enc              bytea       CHECK (pin_enc IS NULL OR octet_length(pin_enc) >= 29),
    pin_last2            text        CHECK (pin_last2 IS NULL OR length(pin_last2) <= 2),
    requested_foc_date   date,
    foc_date             timestamptz, -- confirmed by the losing carrier
    loa_document_id      uuid        REFERENCES documents (id),
    invoice_document_id  uuid        REFERENCES documents (id),
    customer_reference   text        CHECK (customer_reference IS NULL OR length(customer_reference) <= 200),
    -- [{code, field, message}] of the last exception
    exceptions           jsonb       NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(exceptions) = 'array'),
    cancel_reason        text,
    carrier_order_id     text,       -- the carrier's porting order (leaf orders)
    operation_id         uuid        REFERENCES operations (id),
    expires_at           timestamptz NOT NULL DEFAULT now() + interval '30 days',
    submitted_at         timestamptz,
    foc_confirmed_at     timestamptz,
    ported_at            timestamptz,
    cancelled_at         timestamptz,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now()
);

COMMENT ON COLUMN porting_orders.account_number_enc IS 'vox_crypto sealed account number at the losing carrier (aad porting_orders.account_number:<id>:<account_id>).';
COMMENT ON COLUMN porting_orders.pin_enc IS 'vox_crypto sealed port-out PIN (aad porting_orders.pin:<id>:<account_id>).';

CREATE INDEX porting_orders_account_idx ON porting_orders (account_id, created_at DESC, id);
CREATE INDEX porting_orders_account_status_idx ON porting_orders (account_id, status);
CREATE INDEX porting_orders_parent_idx ON porting_orders (parent_id) WHERE parent_id IS NOT NULL;
CREATE INDEX porting_orders_draft_expiry_idx ON porting_orders (expires_at) WHERE status = 'draft';
CREATE UNIQUE INDEX porting_orders_carrier_order_key ON porting_orders (carrier_order_id)
    WHERE carrier_order_id IS NOT NULL;

CREATE TRIGGER porting_orders_set_updated_at BEFORE UPDATE ON porting_orders
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- The numbers of a leaf order (a draft, an unsplit order or a child). On a
-- split they move from the parent to its children.
CREATE TABLE porting_order_numbers (
    order_id          uuid        NOT NULL REFERENCES porting_orders (id) ON DELETE CASCADE,
    e164              text        NOT NULL CHECK (e164 ~ '^\+[1-9][0-9]{6,14}$'),
    country           text        NOT NULL CHECK (country ~ '^[A-Z]{2}$'),
    number_type       text        NOT NULL DEFAULT 'local'
                                  CHECK (number_type IN ('local', 'mobile', 'toll_free')),
    losing_carrier    text,
    status            text        NOT NULL DEFAULT 'draft'
                                  CHECK (status IN ('draft', 'submitted', 'in-process', 'exception',
                                                    'foc-date-confirmed', 'ported',
                                                    'cancel-pending', 'cancelled')),
    carrier_number_id text,       -- the carrier's id once ported
    number_id         uuid,       -- numbers.id once ported
    updated_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (order_id, e164)
);

-- One open port per number, whichever order holds it.
CREATE UNIQUE INDEX porting_order_numbers_open_key ON porting_order_numbers (e164)
    WHERE status IN ('submitted', 'in-process', 'exception', 'foc-date-confirmed', 'cancel-pending');

-- History: every applied move, and carrier events that moved nothing.
CREATE TABLE porting_order_events (
    id               bigserial   PRIMARY KEY,
    order_id         uuid        NOT NULL REFERENCES porting_orders (id) ON DELETE CASCADE,
    from_status      text,
    to_status        text        NOT NULL,
    applied          boolean     NOT NULL DEFAULT true,
    source           text        NOT NULL CHECK (source IN ('api', 'carrier', 'system')),
    carrier_event_id text,
    reason           text,
    detail           jsonb,
    at               timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX porting_order_events_order_idx ON porting_order_events (order_id, id);
-- A carrier event is applied once, however often it is delivered.
CREATE UNIQUE INDEX porting_order_events_carrier_key ON porting_order_events (carrier_event_id)
    WHERE carrier_event_id IS NOT NULL;
