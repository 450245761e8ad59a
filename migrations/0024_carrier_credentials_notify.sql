-- 0024: the ingress caches carrier credentials (with their opened signing
-- secret) by key hash, so a signed carrier request (CDR push, routing
-- decision) needs no database round trip. A change to a credential
-- (revoked, secret rotated or sealed, deleted) NOTIFYs vox_carriers with
-- the hex SHA-256 of its key, the cache's key: every ingress drops it at
-- once (pg_notify is delivered at commit). docs/CARRIER_CDRS.md.
--
-- Replay protection moved from cdr_push_signatures to Redis (SET NX with
-- the signature's remaining window as expiry): the ingress no longer
-- reads or writes that table. It is kept (empty after its last prune)
-- rather than dropped, so a rollback to an older ingress still works.

CREATE FUNCTION notify_carrier_credential_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('vox_carriers', encode(OLD.key_hash, 'hex'));
    IF TG_OP = 'UPDATE' AND NEW.key_hash IS DISTINCT FROM OLD.key_hash THEN
        PERFORM pg_notify('vox_carriers', encode(NEW.key_hash, 'hex'));
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER carrier_credentials_notify
    AFTER UPDATE OR DELETE ON carrier_credentials
    FOR EACH ROW EXECUTE FUNCTION notify_carrier_credential_change();

COMMENT ON TABLE cdr_push_signatures IS
    'Unused since 0024: replay protection of signed carrier requests is in Redis (vox:sig:<carrier>:<signature>, SET NX EX). Kept for a rollback to an older ingress.';
