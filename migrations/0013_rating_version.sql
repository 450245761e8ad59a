-- 0013: what the metering worker needs beside 0012.
-- rating_version: one counter bumped by any change to rate cards, rates or
-- account assignments, so the worker (which keeps the cards in memory)
-- reloads them on the next batch after a change, and only then.
CREATE TABLE rating_version (
    only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    version  bigint  NOT NULL
);
INSERT INTO rating_version VALUES (true, 1);

CREATE FUNCTION rating_version_bump() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE rating_version SET version = version + 1;
    RETURN NULL;
END
$$;

CREATE TRIGGER rate_cards_version AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON rate_cards
    FOR EACH STATEMENT EXECUTE FUNCTION rating_version_bump();
CREATE TRIGGER rates_version AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON rates
    FOR EACH STATEMENT EXECUTE FUNCTION rating_version_bump();
CREATE TRIGGER account_rate_cards_version AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON account_rate_cards
    FOR EACH STATEMENT EXECUTE FUNCTION rating_version_bump();

-- The event types a usage trigger category counts.
CREATE FUNCTION usage_category_types(category text) RETURNS text[]
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE category
        WHEN 'all' THEN ARRAY['inbound_call', 'outbound_call', 'sms_received', 'sms_sent']
        WHEN 'calls' THEN ARRAY['inbound_call', 'outbound_call']
        WHEN 'calls_inbound' THEN ARRAY['inbound_call']
        WHEN 'calls_outbound' THEN ARRAY['outbound_call']
        WHEN 'sms' THEN ARRAY['sms_received', 'sms_sent']
        WHEN 'sms_inbound' THEN ARRAY['sms_received']
        WHEN 'sms_outbound' THEN ARRAY['sms_sent']
    END
$$;
