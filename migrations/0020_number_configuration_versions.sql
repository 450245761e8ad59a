-- 0020: versioned number configuration (issue 12, docs/ROUTING.md).
--
-- number_configurations (0003) keeps the CURRENT configuration of a number,
-- one jsonb document per section, and its version. Every accepted change
-- (a command through Kafka to the provisioning worker) writes a new row here
-- with the whole section as sent, and bumps number_configurations.version in
-- the same transaction; GET .../configuration/versions reads this table.
--
-- Section documents (the API's bodies, validated by the ingress):
--   routing         {primary_destination, failover_destination,
--                    business_hours_destination, after_hours_destination,
--                    timeout_s, enabled}          -> call_forwarding column
--   business_hours  the vox_schedule document (common/vox_schedule.h)
--                                                 -> business_hours column
--   voicemail       {enabled, greeting_text | greeting_audio_id, pin_hash
--                    (never the PIN), max_message_s, transcription, emails}
--                                                 -> voicemail column
--
-- Carrier sync: the forwarding part of routing is pushed to the carrier.
-- carrier_version is the configuration version the carrier last confirmed;
-- carrier_status says whether a push is owed. The latest version wins: a
-- push carries the version, and a confirmation only moves carrier_version
-- forward (never back to an older version arriving late).

CREATE TABLE number_configuration_versions (
    number_id    uuid        NOT NULL,
    version      int         NOT NULL CHECK (version >= 1),
    account_id   uuid        NOT NULL REFERENCES accounts (id),
    section      text        NOT NULL
                             CHECK (section IN ('routing', 'business_hours', 'voicemail')),
    config       jsonb       NOT NULL CHECK (jsonb_typeof(config) = 'object'),
    operation_id uuid        REFERENCES operations (id),
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (number_id, version)
);

CREATE INDEX number_configuration_versions_account_idx
    ON number_configuration_versions (account_id, number_id, version DESC);

ALTER TABLE number_configurations
    ADD COLUMN carrier_version int NOT NULL DEFAULT 0 CHECK (carrier_version >= 0),
    ADD COLUMN carrier_status text NOT NULL DEFAULT 'synced'
        CHECK (carrier_status IN ('synced', 'pending_carrier')),
    ADD COLUMN carrier_attempts int NOT NULL DEFAULT 0,
    ADD COLUMN carrier_next_at timestamptz,
    ADD COLUMN carrier_error text;

-- the sync loop's work list
CREATE INDEX number_configurations_pending_idx ON number_configurations (carrier_next_at)
    WHERE carrier_status = 'pending_carrier';

-- The ingress keeps routing decisions in memory (no database round trip per
-- call): it LISTENs on vox_routing and reloads the number whose id is the
-- payload. Delivered at commit, like the other cache notifications (0008).
CREATE FUNCTION notify_routing_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('vox_routing', COALESCE(NEW.number_id, OLD.number_id)::text);
    RETURN NULL;
END
$$;

CREATE TRIGGER number_configurations_notify
    AFTER INSERT OR DELETE OR UPDATE OF call_forwarding, business_hours, voicemail, version
    ON number_configurations
    FOR EACH ROW EXECUTE FUNCTION notify_routing_change();
