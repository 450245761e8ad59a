-- 0001: shared helpers, tenants, users, API keys, idempotency keys.
--
-- Conventions for every migration file (see docs/DATA_MODEL.md):
--   * applied by `voxctl migrate`, one file per transaction: no BEGIN/COMMIT,
--     nothing that cannot run inside a transaction (no CONCURRENTLY, no VACUUM);
--   * ids are uuid (the application generates UUIDv7; gen_random_uuid() is
--     only a fallback default); times are timestamptz (UTC);
--   * money is bigint micro-units (1/1,000,000 of the currency unit) next to a
--     char(3) ISO 4217 currency code; never float/numeric;
--   * statuses are text + CHECK (no enum types, so they can evolve by
--     replacing a constraint);
--   * tenant tables carry account_id and have indexes leading with it;
--   * no extensions: only built-in PostgreSQL 15.

-- Keeps updated_at current on UPDATE. An explicit assignment by the caller
-- (SET updated_at = ...) is respected; otherwise it becomes now()
-- (the transaction timestamp).
CREATE OR REPLACE FUNCTION set_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.updated_at IS NOT DISTINCT FROM OLD.updated_at THEN
        NEW.updated_at := now();
    END IF;
    RETURN NEW;
END
$$;

COMMENT ON FUNCTION set_updated_at() IS
    'BEFORE UPDATE row trigger: sets updated_at = now() unless the UPDATE set it explicitly.';

-- ---------------------------------------------------------------- accounts
CREATE TABLE accounts (
    id          uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    name        text        NOT NULL CHECK (length(btrim(name)) BETWEEN 1 AND 200),
    status      text        NOT NULL DEFAULT 'active'
                            CHECK (status IN ('active', 'suspended', 'closed')),
    currency    char(3)     NOT NULL DEFAULT 'USD' CHECK (currency ~ '^[A-Z]{3}$'),
    -- IANA zone name, used only at the edges (business hours, invoice display).
    timezone    text        NOT NULL DEFAULT 'UTC' CHECK (length(timezone) BETWEEN 1 AND 64),
    suspended_at timestamptz,
    closed_at   timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

COMMENT ON COLUMN accounts.currency IS 'Billing currency (ISO 4217); all invoices of the account use it.';

CREATE TRIGGER accounts_set_updated_at BEFORE UPDATE ON accounts
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- ---------------------------------------------------------------- users
CREATE TABLE users (
    id          uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    account_id  uuid        NOT NULL REFERENCES accounts (id),
    email       text        NOT NULL CHECK (email ~ '^[^@[:space:]]+@[^@[:space:]]+$'
                                            AND length(email) <= 320),
    name        text        CHECK (name IS NULL OR length(name) <= 200),
    role        text        NOT NULL DEFAULT 'viewer'
                            CHECK (role IN ('owner', 'admin', 'developer', 'billing', 'viewer')),
    status      text        NOT NULL DEFAULT 'active'
                            CHECK (status IN ('active', 'disabled')),
    -- Subject of the identity provider's JWTs ("sub"), when users log in via JWT.
    external_subject text   UNIQUE,
    last_login_at timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    -- Target for composite (user_id, account_id) foreign keys, so a child row
    -- can never point at another tenant's user.
    CONSTRAINT users_id_account_key UNIQUE (id, account_id)
);

-- Email is unique per account, case-insensitively.
CREATE UNIQUE INDEX users_account_email_key ON users (account_id, lower(email));

CREATE TRIGGER users_set_updated_at BEFORE UPDATE ON users
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- ---------------------------------------------------------------- api_keys
-- The secret is a random 256-bit value shown once; only its SHA-256 is kept.
-- Lookup on every request: WHERE secret_hash = $1 AND revoked_at IS NULL
--   AND (expires_at IS NULL OR expires_at > now()).
CREATE TABLE api_keys (
    id           uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    account_id   uuid        NOT NULL REFERENCES accounts (id),
    prefix       text        NOT NULL CHECK (length(prefix) BETWEEN 4 AND 32),
    secret_hash  bytea       NOT NULL UNIQUE CHECK (octet_length(secret_hash) = 32),
    role         text        NOT NULL
                             CHECK (role IN ('owner', 'admin', 'developer', 'billing', 'viewer')),
    description  text        CHECK (description IS NULL OR length(description) <= 500),
    created_by   uuid,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    revoked_at   timestamptz,
    expires_at   timestamptz,
    CONSTRAINT api_keys_created_by_fkey FOREIGN KEY (created_by, account_id)
        REFERENCES users (id, account_id),
    CONSTRAINT api_keys_expiry_check CHECK (expires_at IS NULL OR expires_at > created_at)
);

COMMENT ON COLUMN api_keys.prefix IS 'First characters of the key (e.g. vox_ab12cd), shown to users to tell keys apart.';
COMMENT ON COLUMN api_keys.secret_hash IS 'SHA-256 of the full secret (32 bytes). The secret itself is never stored.';

CREATE INDEX api_keys_account_idx ON api_keys (account_id, created_at DESC);

-- ---------------------------------------------------------------- idempotency_keys
-- Stripe semantics, 24 h: same key + same request_hash replays status_code and
-- response_body; same key + different hash -> 422; a row whose status_code is
-- still NULL is in flight -> 409 for a concurrent duplicate.
CREATE TABLE idempotency_keys (
    account_id    uuid        NOT NULL REFERENCES accounts (id),
    key           text        NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
    method        text        NOT NULL CHECK (method IN ('POST', 'PUT', 'PATCH', 'DELETE')),
    path          text        NOT NULL CHECK (length(path) BETWEEN 1 AND 2048),
    request_hash  bytea       NOT NULL CHECK (octet_length(request_hash) = 32),
    status_code   int         CHECK (status_code IS NULL OR status_code BETWEEN 100 AND 599),
    -- Exact bytes of the first answer (JSON text), replayed verbatim.
    response_body text,
    operation_id  uuid,
    created_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL DEFAULT now() + interval '24 hours',
    PRIMARY KEY (account_id, key),
    CONSTRAINT idempotency_keys_expiry_check CHECK (expires_at > created_at)
);

COMMENT ON COLUMN idempotency_keys.request_hash IS 'SHA-256 over method, path and canonical body.';
COMMENT ON COLUMN idempotency_keys.status_code IS 'NULL while the first request is still being processed.';

-- Purge job: DELETE FROM idempotency_keys WHERE expires_at < now().
CREATE INDEX idempotency_keys_expires_idx ON idempotency_keys (expires_at);
