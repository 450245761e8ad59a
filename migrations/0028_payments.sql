-- 0028: what the payments part of the invoicing worker keeps beyond 0027
-- (docs/BILLING.md "Payments").
--
-- payments.operation_id: the operation of a `POST /v1/invoices/{id}/actions/pay`,
-- finished by the first outcome of the payment (succeeded, declined, or a
-- gateway refusal); NULL for payments started by finalization.
-- payment_methods.attach_operation_id / attach_default: what the attach
-- command asked, kept on the row so that the tick, which reads the token at
-- the gateway outside the command's transaction, finishes the operation
-- and honours "default": true (the command and the tick may come in
-- either order).
ALTER TABLE payments ADD COLUMN operation_id uuid;
ALTER TABLE payment_methods
    ADD COLUMN attach_operation_id uuid,
    ADD COLUMN attach_default boolean NOT NULL DEFAULT false;

-- The tick: payments due (first attempts, retries, timed-out attempts,
-- processing intents to poll) and methods to read at the gateway.
CREATE INDEX payments_due_idx ON payments (next_attempt_at)
    WHERE status IN ('pending', 'processing');
CREATE INDEX payment_methods_pending_idx ON payment_methods (created_at)
    WHERE status = 'pending' AND deleted_at IS NULL;
-- Gateway events find their attempt by the intent id.
CREATE INDEX payment_attempts_intent_idx ON payment_attempts (gateway_intent_id)
    WHERE gateway_intent_id IS NOT NULL;
