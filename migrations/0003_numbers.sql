-- 0003: number inventory (partitioned by country), per-number configuration,
-- reservations, orders.

-- ---------------------------------------------------------------- numbers
-- LIST-partitioned by ISO 3166-1 alpha-2 country. Unique constraints on a
-- partitioned table must contain the partition key, hence PRIMARY KEY
-- (country, id) and UNIQUE (country, e164). Because each partition carries a
-- CHECK tying e164 to the country's calling code (+1, +44, +49, +33, +61),
-- the same E.164 can only collide between +1 countries (US/CA) or inside the
-- DEFAULT partition; the application derives country from the number with
-- libphonenumber, which makes the pair (country, e164) globally unique.
CREATE TABLE numbers (
    id                  uuid        NOT NULL DEFAULT gen_random_uuid(),
    e164                text        NOT NULL CHECK (e164 ~ '^\+[1-9][0-9]{6,14}$'),
    country             text        NOT NULL CHECK (country ~ '^[A-Z]{2}$'),
    area_code           text        CHECK (area_code IS NULL OR area_code ~ '^[0-9]{1,6}$'),
    city                text,
    region              text,
    number_type         text        NOT NULL DEFAULT 'local'
                                    CHECK (number_type IN ('local', 'mobile', 'toll_free')),
    features            text[]      NOT NULL DEFAULT '{voice}'
                                    CHECK (features <@ ARRAY['voice', 'sms', 'mms']::text[]
                                           AND array_position(features, NULL) IS NULL),
    status              text        NOT NULL DEFAULT 'available'
                                    CHECK (status IN ('available', 'reserved', 'active',
                                                      'suspended', 'porting', 'released')),
    account_id          uuid        REFERENCES accounts (id),
    carrier             text,
    carrier_number_id   text,
    monthly_rate_micros bigint      NOT NULL DEFAULT 0 CHECK (monthly_rate_micros >= 0),
    setup_fee_micros    bigint      NOT NULL DEFAULT 0 CHECK (setup_fee_micros >= 0),
    currency            char(3)     NOT NULL DEFAULT 'USD' CHECK (currency ~ '^[A-Z]{3}$'),
    purchased_at        timestamptz,
    activated_at        timestamptz,
    released_at         timestamptz,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT numbers_pkey PRIMARY KEY (country, id),
    CONSTRAINT numbers_country_e164_key UNIQUE (country, e164),
    -- Ownership follows status: nobody owns an available number; an
    -- active/suspended/porting number always has an owner.
    CONSTRAINT numbers_owner_status_check CHECK (
        (status = 'available' AND account_id IS NULL)
        OR (status IN ('active', 'suspended', 'porting') AND account_id IS NOT NULL)
        OR status IN ('reserved', 'released'))
) PARTITION BY LIST (country);

COMMENT ON COLUMN numbers.country IS 'ISO 3166-1 alpha-2 region (partition key), e.g. US, CA, GB.';
COMMENT ON COLUMN numbers.account_id IS 'Owning account; NULL while in the available pool.';

CREATE TABLE numbers_us PARTITION OF numbers
    (CONSTRAINT numbers_us_e164_cc_check CHECK (e164 LIKE '+1%')) FOR VALUES IN ('US');
CREATE TABLE numbers_ca PARTITION OF numbers
    (CONSTRAINT numbers_ca_e164_cc_check CHECK (e164 LIKE '+1%')) FOR VALUES IN ('CA');
CREATE TABLE numbers_gb PARTITION OF numbers
    (CONSTRAINT numbers_gb_e164_cc_check CHECK (e164 LIKE '+44%')) FOR VALUES IN ('GB');
CREATE TABLE numbers_de PARTITION OF numbers
    (CONSTRAINT numbers_de_e164_cc_check CHECK (e164 LIKE '+49%')) FOR VALUES IN ('DE');
CREATE TABLE numbers_fr PARTITION OF numbers
    (CONSTRAINT numbers_fr_e164_cc_check CHECK (e164 LIKE '+33%')) FOR VALUES IN ('FR');
CREATE TABLE numbers_au PARTITION OF numbers
    (CONSTRAINT numbers_au_e164_cc_check CHECK (e164 LIKE '+61%')) FOR VALUES IN ('AU');
CREATE TABLE numbers_default PARTITION OF numbers DEFAULT;

-- Indexes from the original design, created on the parent so every partition
-- (present and future) gets them.
CREATE INDEX numbers_e164_idx           ON numbers (e164);
CREATE INDEX numbers_account_idx        ON numbers (account_id, status) WHERE account_id IS NOT NULL;
CREATE INDEX numbers_status_idx         ON numbers (status);
CREATE INDEX numbers_country_area_idx   ON numbers (country, area_code);
-- Search: available inventory by country/area code.
CREATE INDEX numbers_available_search_idx ON numbers (country, area_code, number_type)
    WHERE status = 'available';
-- Carrier callbacks identify numbers by the carrier's own id.
CREATE INDEX numbers_carrier_idx        ON numbers (carrier, carrier_number_id)
    WHERE carrier_number_id IS NOT NULL;

CREATE TRIGGER numbers_set_updated_at BEFORE UPDATE ON numbers
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- ---------------------------------------------------------------- number_configurations
-- One configuration per number (call routing, voicemail, business hours,
-- notifications). `version` is for optimistic locking:
--   UPDATE ... SET ..., version = version + 1 WHERE number_id = $1 AND version = $2.
CREATE TABLE number_configurations (
    id              uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    account_id      uuid        NOT NULL REFERENCES accounts (id),
    number_country  text        NOT NULL,
    number_id       uuid        NOT NULL,
    call_forwarding jsonb       NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(call_forwarding) = 'object'),
    voicemail       jsonb       NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(voicemail) = 'object'),
    business_hours  jsonb       NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(business_hours) = 'object'),
    notifications   jsonb       NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(notifications) = 'object'),
    version         int         NOT NULL DEFAULT 1 CHECK (version >= 1),
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT number_configurations_number_key UNIQUE (number_id),
    CONSTRAINT number_configurations_number_fkey FOREIGN KEY (number_country, number_id)
        REFERENCES numbers (country, id) ON DELETE CASCADE
);

CREATE INDEX number_configurations_account_idx ON number_configurations (account_id);

CREATE TRIGGER number_configurations_set_updated_at BEFORE UPDATE ON number_configurations
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- ---------------------------------------------------------------- reservations
-- A short hold on an available number while the customer completes purchase.
CREATE TABLE reservations (
    id          uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    account_id  uuid        NOT NULL REFERENCES accounts (id),
    country     text        NOT NULL,
    e164        text        NOT NULL CHECK (e164 ~ '^\+[1-9][0-9]{6,14}$'),
    status      text        NOT NULL DEFAULT 'active'
                            CHECK (status IN ('active', 'expired', 'converted', 'released')),
    operation_id uuid       REFERENCES operations (id),
    expires_at  timestamptz NOT NULL,
    closed_at   timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT reservations_number_fkey FOREIGN KEY (country, e164)
        REFERENCES numbers (country, e164),
    CONSTRAINT reservations_expiry_check CHECK (expires_at > created_at)
);

-- At most one active reservation per number.
CREATE UNIQUE INDEX reservations_one_active_key ON reservations (e164) WHERE status = 'active';
CREATE INDEX reservations_account_idx ON reservations (account_id, created_at DESC);
-- Expiry sweeper: WHERE status = 'active' AND expires_at <= now().
CREATE INDEX reservations_expiry_idx ON reservations (expires_at) WHERE status = 'active';

CREATE TRIGGER reservations_set_updated_at BEFORE UPDATE ON reservations
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- ---------------------------------------------------------------- orders
CREATE TABLE orders (
    id              uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    account_id      uuid        NOT NULL REFERENCES accounts (id),
    kind            text        NOT NULL DEFAULT 'purchase'
                                CHECK (kind IN ('purchase', 'port_in', 'release')),
    status          text        NOT NULL DEFAULT 'pending'
                                CHECK (status IN ('pending', 'processing', 'completed',
                                                  'partially_completed', 'failed', 'cancelled')),
    total_micros    bigint      NOT NULL DEFAULT 0 CHECK (total_micros >= 0),
    currency        char(3)     NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    operation_id    uuid        REFERENCES operations (id),
    failure_reason  text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    completed_at    timestamptz,
    CONSTRAINT orders_id_currency_key UNIQUE (id, currency)
);

CREATE INDEX orders_account_idx ON orders (account_id, created_at DESC);
CREATE INDEX orders_operation_idx ON orders (operation_id) WHERE operation_id IS NOT NULL;

CREATE TRIGGER orders_set_updated_at BEFORE UPDATE ON orders
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- Child of orders; reached through its (account-scoped) order.
CREATE TABLE order_items (
    id                  uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    order_id            uuid        NOT NULL,
    country             text        NOT NULL CHECK (country ~ '^[A-Z]{2}$'),
    e164                text        NOT NULL CHECK (e164 ~ '^\+[1-9][0-9]{6,14}$'),
    number_id           uuid,
    reservation_id      uuid        REFERENCES reservations (id),
    status              text        NOT NULL DEFAULT 'pending'
                                    CHECK (status IN ('pending', 'provisioned', 'failed', 'cancelled')),
    setup_fee_micros    bigint      NOT NULL DEFAULT 0 CHECK (setup_fee_micros >= 0),
    monthly_rate_micros bigint      NOT NULL DEFAULT 0 CHECK (monthly_rate_micros >= 0),
    currency            char(3)     NOT NULL,
    failure_reason      text,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    -- Same currency as the order.
    CONSTRAINT order_items_order_fkey FOREIGN KEY (order_id, currency)
        REFERENCES orders (id, currency) ON DELETE CASCADE,
    CONSTRAINT order_items_order_e164_key UNIQUE (order_id, e164)
);

CREATE INDEX order_items_e164_idx ON order_items (e164);

CREATE TRIGGER order_items_set_updated_at BEFORE UPDATE ON order_items
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
