-- Change notifications the ingress listens to (LISTEN), so its caches and
-- waiting requests follow the database without polling:
--   vox_keys     an API key changed (revoked, expired, deleted): payload is
--                the hex SHA-256 of the key, the ingress's cache key
--   vox_accounts an account changed status: payload is its id
--   vox_ops      an operation reached completed or failed: payload is its id
--                (answers requests that sent Prefer: wait=N)
-- pg_notify is delivered at commit, so nobody hears of a rolled-back change.

CREATE FUNCTION notify_api_key_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('vox_keys', encode(OLD.secret_hash, 'hex'));
    RETURN NULL;
END
$$;

-- Not on last_used_at: the ingress touches that itself once a minute.
CREATE TRIGGER api_keys_notify
    AFTER UPDATE OF revoked_at, expires_at, role, account_id, secret_hash OR DELETE ON api_keys
    FOR EACH ROW EXECUTE FUNCTION notify_api_key_change();

CREATE FUNCTION notify_account_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status IS DISTINCT FROM OLD.status THEN
        PERFORM pg_notify('vox_accounts', NEW.id::text);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER accounts_notify AFTER UPDATE ON accounts
    FOR EACH ROW EXECUTE FUNCTION notify_account_change();

CREATE FUNCTION notify_operation_done() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status IN ('completed', 'failed') AND
       (TG_OP = 'INSERT' OR OLD.status IS DISTINCT FROM NEW.status) THEN
        PERFORM pg_notify('vox_ops', NEW.id::text);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER operations_notify_done AFTER INSERT OR UPDATE OF status ON operations
    FOR EACH ROW EXECUTE FUNCTION notify_operation_done();

-- Listing an account's operations newest first, keyset-paginated by id
-- (UUIDv7 ids are time-ordered).
CREATE INDEX operations_account_id_idx ON operations (account_id, id DESC);

-- Times leave the database as RFC 3339 UTC with microseconds, whatever the
-- session's TimeZone: 2026-11-24T16:02:17.123456Z.
CREATE FUNCTION vox_iso(ts timestamptz) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
$$;
