-- 0004: number porting (port-in requests, supporting documents, history).

-- The carrier account number and PIN are encrypted by the application
-- (AES-256-GCM, key from the environment) before they reach the database;
-- the expected layout is nonce(12) || ciphertext || tag(16), so anything
-- shorter than 29 bytes cannot be a valid ciphertext.
CREATE TABLE porting_requests (
    id                   uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    account_id           uuid        NOT NULL REFERENCES accounts (id),
    e164                 text        NOT NULL CHECK (e164 ~ '^\+[1-9][0-9]{6,14}$'),
    country              text        CHECK (country IS NULL OR country ~ '^[A-Z]{2}$'),
    current_carrier      text        NOT NULL CHECK (length(current_carrier) BETWEEN 1 AND 200),
    account_number_enc   bytea       NOT NULL CHECK (octet_length(account_number_enc) >= 29),
    pin_enc              bytea       CHECK (pin_enc IS NULL OR octet_length(pin_enc) >= 29),
    authorized_name      text        NOT NULL CHECK (length(authorized_name) BETWEEN 1 AND 200),
    service_address      jsonb       CHECK (service_address IS NULL
                                            OR jsonb_typeof(service_address) = 'object'),
    status               text        NOT NULL DEFAULT 'submitted'
                                     CHECK (status IN ('submitted', 'processing', 'approved',
                                                       'completed', 'failed', 'cancelled')),
    -- What the losing/gaining carrier reports, verbatim.
    carrier              text,
    carrier_port_id      text,
    carrier_status       text,
    carrier_status_at    timestamptz,
    foc_date             timestamptz,  -- firm order commitment (scheduled port time)
    estimated_completion timestamptz,
    rejection_code       text,
    rejection_reason     text,
    operation_id         uuid        REFERENCES operations (id),
    submitted_at         timestamptz,
    completed_at         timestamptz,
    cancelled_at         timestamptz,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now()
);

COMMENT ON COLUMN porting_requests.account_number_enc IS 'AES-256-GCM ciphertext (nonce||ct||tag) of the account number at the losing carrier.';
COMMENT ON COLUMN porting_requests.pin_enc IS 'AES-256-GCM ciphertext (nonce||ct||tag) of the port-out PIN.';

-- One open port per number.
CREATE UNIQUE INDEX porting_requests_open_e164_key ON porting_requests (e164)
    WHERE status IN ('submitted', 'processing', 'approved');
CREATE INDEX porting_requests_account_idx ON porting_requests (account_id, created_at DESC);
CREATE INDEX porting_requests_account_status_idx ON porting_requests (account_id, status);
-- Carrier webhooks identify the port by the carrier's id.
CREATE UNIQUE INDEX porting_requests_carrier_port_key ON porting_requests (carrier, carrier_port_id)
    WHERE carrier_port_id IS NOT NULL;

CREATE TRIGGER porting_requests_set_updated_at BEFORE UPDATE ON porting_requests
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- Supporting documents (letter of authorization, bill copy, ...). The bytes
-- live in object storage under storage_key; sha256 pins the content.
CREATE TABLE porting_documents (
    id                 uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    porting_request_id uuid        NOT NULL REFERENCES porting_requests (id) ON DELETE CASCADE,
    kind               text        NOT NULL
                                   CHECK (kind IN ('loa', 'bill', 'id', 'csr', 'other')),
    filename           text        NOT NULL CHECK (length(filename) BETWEEN 1 AND 255),
    content_type       text,
    size_bytes         bigint      CHECK (size_bytes IS NULL OR size_bytes >= 0),
    sha256             bytea       NOT NULL CHECK (octet_length(sha256) = 32),
    storage_key        text        NOT NULL UNIQUE,
    created_at         timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX porting_documents_request_idx ON porting_documents (porting_request_id, created_at);

-- Append-only history of status changes (ours and the carrier's).
CREATE TABLE porting_events (
    id                 bigserial   PRIMARY KEY,
    porting_request_id uuid        NOT NULL REFERENCES porting_requests (id) ON DELETE CASCADE,
    status             text        NOT NULL,
    carrier_status     text,
    source             text        NOT NULL DEFAULT 'system'
                                   CHECK (source IN ('api', 'carrier', 'system')),
    detail             jsonb,
    at                 timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX porting_events_request_idx ON porting_events (porting_request_id, id);
