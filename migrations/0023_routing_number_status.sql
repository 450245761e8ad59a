-- 0023: the ingress's routing table (docs/ROUTING.md) holds active numbers
-- only, so it must hear when a number's status changes (activated,
-- deactivated, released) or an active number appears (an insert: imports,
-- tests), not only when its configuration does (0020). Same
-- channel and payload as 0020: the number id; the ingress reloads that
-- number and drops it when it is no longer active. Delivered at commit.

CREATE FUNCTION notify_routing_number_status() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('vox_routing', NEW.id::text);
    RETURN NULL;
END
$$;

CREATE TRIGGER numbers_routing_status_notify
    AFTER UPDATE OF status, e164, account_id ON numbers
    FOR EACH ROW
    WHEN (OLD.status IS DISTINCT FROM NEW.status
          OR OLD.e164 IS DISTINCT FROM NEW.e164
          OR OLD.account_id IS DISTINCT FROM NEW.account_id)
    EXECUTE FUNCTION notify_routing_number_status();

CREATE TRIGGER numbers_routing_insert_notify
    AFTER INSERT ON numbers
    FOR EACH ROW
    WHEN (NEW.status = 'active')
    EXECUTE FUNCTION notify_routing_number_status();
