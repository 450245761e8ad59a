-- The "operation finished" notification fired its function for every row
-- written to operations, accepted ones included (the ingress writes
-- thousands a second); the WHEN clauses keep it to the rows that matter.
DROP TRIGGER operations_notify_done ON operations;
CREATE TRIGGER operations_notify_done_insert AFTER INSERT ON operations
    FOR EACH ROW WHEN (NEW.status IN ('completed', 'failed'))
    EXECUTE FUNCTION notify_operation_done();
CREATE TRIGGER operations_notify_done_update AFTER UPDATE OF status ON operations
    FOR EACH ROW WHEN (NEW.status IN ('completed', 'failed') AND OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION notify_operation_done();
