-- 0007: outbound notifications, customer webhook endpoints, preferences.

-- ---------------------------------------------------------------- webhook_endpoints
-- Customer endpoints for outbound (Standard Webhooks signed) events. The
-- signing secret is encrypted by the application (AES-256-GCM,
-- nonce||ct||tag). events: event types subscribed to; '{*}' = all.
CREATE TABLE webhook_endpoints (
    id              uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    account_id      uuid        NOT NULL REFERENCES accounts (id),
    url             text        NOT NULL CHECK (url ~ '^https?://' AND length(url) <= 2048),
    description     text,
    secret_enc      bytea       NOT NULL CHECK (octet_length(secret_enc) >= 29),
    events          text[]      NOT NULL DEFAULT '{*}'
                                CHECK (cardinality(events) >= 1
                                       AND array_position(events, NULL) IS NULL),
    enabled         boolean     NOT NULL DEFAULT true,
    failure_count   int         NOT NULL DEFAULT 0 CHECK (failure_count >= 0),
    disabled_reason text,
    last_success_at timestamptz,
    last_failure_at timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT webhook_endpoints_id_account_key UNIQUE (id, account_id)
);

CREATE INDEX webhook_endpoints_account_idx ON webhook_endpoints (account_id) WHERE enabled;

CREATE TRIGGER webhook_endpoints_set_updated_at BEFORE UPDATE ON webhook_endpoints
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- ---------------------------------------------------------------- notifications
-- One row per delivery (email, SMS or webhook call). dedup_key (e.g.
-- "<event id>:<channel>:<recipient>") makes fan-out from a redelivered event
-- a no-op: INSERT ... ON CONFLICT (dedup_key) DO NOTHING.
CREATE TABLE notifications (
    id                  uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    account_id          uuid        NOT NULL REFERENCES accounts (id),
    user_id             uuid,
    webhook_endpoint_id uuid,
    channel             text        NOT NULL CHECK (channel IN ('email', 'sms', 'webhook')),
    recipient           text        NOT NULL CHECK (length(recipient) BETWEEN 1 AND 2048),
    event_type          text,
    template            text        NOT NULL,
    payload             jsonb       NOT NULL DEFAULT '{}',
    dedup_key           text        UNIQUE,
    status              text        NOT NULL DEFAULT 'queued'
                                    CHECK (status IN ('queued', 'sent', 'failed')),
    attempts            int         NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at     timestamptz,
    last_error          text,
    provider_message_id text,
    sent_at             timestamptz,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT notifications_user_fkey FOREIGN KEY (user_id, account_id)
        REFERENCES users (id, account_id),
    CONSTRAINT notifications_webhook_endpoint_fkey FOREIGN KEY (webhook_endpoint_id, account_id)
        REFERENCES webhook_endpoints (id, account_id) ON DELETE CASCADE,
    CONSTRAINT notifications_webhook_check
        CHECK (channel <> 'webhook' OR webhook_endpoint_id IS NOT NULL),
    CONSTRAINT notifications_sent_check CHECK (status <> 'sent' OR sent_at IS NOT NULL)
);

CREATE INDEX notifications_account_idx ON notifications (account_id, created_at DESC);
-- Delivery/retry scheduler.
CREATE INDEX notifications_due_idx ON notifications (next_attempt_at)
    WHERE status = 'queued';
CREATE INDEX notifications_endpoint_idx ON notifications (webhook_endpoint_id, created_at DESC)
    WHERE webhook_endpoint_id IS NOT NULL;

CREATE TRIGGER notifications_set_updated_at BEFORE UPDATE ON notifications
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- ---------------------------------------------------------------- notification_preferences
-- Which channels deliver which event types. user_id NULL = account-wide
-- default; a user's row overrides it. event_type '*' = all events.
CREATE TABLE notification_preferences (
    id          uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    account_id  uuid        NOT NULL REFERENCES accounts (id),
    user_id     uuid,
    event_type  text        NOT NULL CHECK (length(event_type) BETWEEN 1 AND 200),
    channels    text[]      NOT NULL DEFAULT '{email}'
                            CHECK (channels <@ ARRAY['email', 'sms', 'webhook']::text[]
                                   AND array_position(channels, NULL) IS NULL),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT notification_preferences_user_fkey FOREIGN KEY (user_id, account_id)
        REFERENCES users (id, account_id) ON DELETE CASCADE,
    CONSTRAINT notification_preferences_scope_key UNIQUE NULLS NOT DISTINCT
        (account_id, user_id, event_type)
);

CREATE TRIGGER notification_preferences_set_updated_at BEFORE UPDATE ON notification_preferences
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
