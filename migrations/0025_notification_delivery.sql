-- 0025: the notifications worker's delivery state (docs/NOTIFICATIONS.md).
--
-- A notification is one event to tell an account about (a usage trigger
-- fired, a number was activated, an endpoint was disabled). It walks the
-- account's channel order for its event type (notification_chains: default
-- email -> sms -> webhook); each step becomes one notifications row per
-- recipient (an email address, a phone, a webhook endpoint), and every try
-- of a row is a notification_attempts row. A usage trigger's callback_url is
-- a row of channel 'callback' outside any chain.
--
-- Crash safety: a sender claims a row (lease_until, attempts + 1, an
-- attempt row 'sending') and COMMITS before it sends; a sender that dies
-- leaves the lease to expire and the row is claimed again as the next
-- attempt (the old attempt row becomes 'abandoned'). So an attempt is sent
-- at most once, and a notification is never lost.

-- ---------------------------------------------------------------- contacts
-- The language notifications are written in (templates fall back to 'en').
ALTER TABLE accounts ADD COLUMN language text NOT NULL DEFAULT 'en'
    CHECK (language ~ '^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$');
-- Where a user gets SMS notifications (E.164); NULL: no SMS.
ALTER TABLE users ADD COLUMN phone text
    CHECK (phone IS NULL OR phone ~ '^\+[1-9][0-9]{6,14}$');

-- ---------------------------------------------------------------- endpoints
-- Rotation keeps the previous secret for 24 h: deliveries are signed with
-- both. failing_since: the first failure after the last success (5 days of
-- failures disable the endpoint).
ALTER TABLE webhook_endpoints
    ADD COLUMN secret_old_enc bytea CHECK (secret_old_enc IS NULL OR octet_length(secret_old_enc) >= 29),
    ADD COLUMN secret_old_expires_at timestamptz,
    ADD COLUMN failing_since timestamptz,
    ADD COLUMN disabled_at timestamptz,
    ADD COLUMN deleted_at timestamptz;

-- ---------------------------------------------------------------- usage trigger callbacks
-- The whsec_ secret a trigger's callback is signed with (shown once when
-- the trigger is created; NULL for triggers made before 0025: unsigned).
ALTER TABLE usage_triggers ADD COLUMN callback_secret_enc bytea
    CHECK (callback_secret_enc IS NULL OR octet_length(callback_secret_enc) >= 29);

-- ---------------------------------------------------------------- chains
CREATE TABLE notification_chains (
    id              uuid        PRIMARY KEY,      -- webhook-id: msg_<32 hex>
    account_id      uuid        NOT NULL REFERENCES accounts (id),
    source_event_id text        NOT NULL UNIQUE CHECK (length(source_event_id) BETWEEN 1 AND 300),
    event_type      text        NOT NULL CHECK (length(event_type) BETWEEN 1 AND 200),
    -- per-resource order: events of one ordering_key (a number id, a
    -- trigger id) get increasing sequence numbers, delivered in order per
    -- endpoint.
    ordering_key    text        NOT NULL CHECK (length(ordering_key) BETWEEN 1 AND 300),
    sequence        bigint      NOT NULL CHECK (sequence > 0),
    payload         jsonb       NOT NULL,         -- {type, timestamp, sequence, data}
    channels        text[]      NOT NULL CHECK (cardinality(channels) BETWEEN 1 AND 3
                                   AND channels <@ ARRAY['email', 'sms', 'webhook']::text[]),
    step            int         NOT NULL DEFAULT 0 CHECK (step >= 0),
    status          text        NOT NULL DEFAULT 'active'
                                CHECK (status IN ('active', 'delivered', 'exhausted')),
    step_deadline_at timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX notification_chains_active_idx ON notification_chains (step_deadline_at)
    WHERE status = 'active';
CREATE INDEX notification_chains_account_idx ON notification_chains (account_id, created_at DESC);

CREATE TRIGGER notification_chains_set_updated_at BEFORE UPDATE ON notification_chains
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- The last sequence number handed out per (account, ordering_key).
CREATE TABLE notification_sequences (
    account_id   uuid   NOT NULL REFERENCES accounts (id),
    ordering_key text   NOT NULL,
    last         bigint NOT NULL,
    PRIMARY KEY (account_id, ordering_key)
);

-- ---------------------------------------------------------------- deliveries
ALTER TABLE notifications DROP CONSTRAINT notifications_channel_check;
ALTER TABLE notifications ADD CONSTRAINT notifications_channel_check
    CHECK (channel IN ('email', 'sms', 'webhook', 'callback'));
ALTER TABLE notifications DROP CONSTRAINT notifications_status_check;
-- queued: to send (again) at next_attempt_at; sent: handed over (SMTP
-- accepted, SMS provider queued it); delivered: the end (webhook 2xx,
-- email accepted, SMS receipt 'delivered'); failed: no more attempts;
-- cancelled: its chain moved on before it was sent.
ALTER TABLE notifications ADD CONSTRAINT notifications_status_check
    CHECK (status IN ('queued', 'sent', 'delivered', 'failed', 'cancelled'));
ALTER TABLE notifications DROP CONSTRAINT notifications_sent_check;
ALTER TABLE notifications ADD CONSTRAINT notifications_sent_check
    CHECK (status NOT IN ('sent', 'delivered') OR sent_at IS NOT NULL);
ALTER TABLE notifications
    ADD COLUMN chain_id uuid REFERENCES notification_chains (id),
    ADD COLUMN step int,
    ADD COLUMN message_id text CHECK (message_id IS NULL OR length(message_id) <= 64),
    ADD COLUMN ordering_key text,
    ADD COLUMN sequence bigint,
    ADD COLUMN lease_until timestamptz,
    ADD COLUMN last_status_code int,
    ADD COLUMN delivered_at timestamptz,
    ADD COLUMN trigger_id uuid,
    -- attempts (0007) is the position in the retry schedule, set back to 0
    -- when a delivery is recovered or resent; tries counts every attempt
    -- ever made and numbers the attempt rows.
    ADD COLUMN tries int NOT NULL DEFAULT 0 CHECK (tries >= 0);

-- What a sender claims: due, queued rows (the partial index from 0007,
-- notifications_due_idx, covers next_attempt_at). Per-endpoint order: the
-- earliest queued row of an (endpoint, ordering_key) goes first.
CREATE INDEX notifications_order_idx ON notifications (webhook_endpoint_id, ordering_key, sequence)
    WHERE status = 'queued';
CREATE INDEX notifications_callback_order_idx ON notifications (trigger_id, ordering_key, sequence)
    WHERE status = 'queued' AND channel = 'callback';
CREATE INDEX notifications_chain_idx ON notifications (chain_id, step);
CREATE INDEX notifications_provider_idx ON notifications (provider_message_id)
    WHERE provider_message_id IS NOT NULL;

-- ---------------------------------------------------------------- attempts
CREATE TABLE notification_attempts (
    id              uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    notification_id uuid        NOT NULL REFERENCES notifications (id) ON DELETE CASCADE,
    account_id      uuid        NOT NULL REFERENCES accounts (id),
    attempt         int         NOT NULL CHECK (attempt >= 1),
    channel         text        NOT NULL,
    -- sending: claimed and being sent; abandoned: its sender died (the
    -- receiver may or may not have seen it).
    outcome         text        NOT NULL DEFAULT 'sending'
                                CHECK (outcome IN ('sending', 'succeeded', 'failed', 'abandoned')),
    status_code     int,
    duration_ms     int,
    error           text        CHECK (error IS NULL OR length(error) <= 1000),
    next_attempt_at timestamptz,
    started_at      timestamptz NOT NULL DEFAULT now(),
    finished_at     timestamptz,
    UNIQUE (notification_id, attempt)
);

CREATE INDEX notification_attempts_account_idx ON notification_attempts (account_id, started_at DESC);

-- ---------------------------------------------------------------- wakeups
-- Senders LISTEN on vox_notify: a row made due now wakes them at commit
-- (the intake's fan-out, the API's recover/resend/test). Only rows that
-- become due: a completion (delivered, failed, a retry later) wakes no one,
-- or every sender would run an empty claim after every delivery; a sender
-- claims again at once after a batch, which picks up the next row of an
-- ordered resource. NOTIFY folds identical payloads of one transaction.
CREATE FUNCTION notify_notification_due() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('vox_notify', '');
    RETURN NULL;
END
$$;

CREATE TRIGGER notifications_notify_due
    AFTER INSERT OR UPDATE OF status, next_attempt_at ON notifications
    FOR EACH ROW WHEN (NEW.status = 'queued' AND NEW.next_attempt_at <= now())
    EXECUTE FUNCTION notify_notification_due();
