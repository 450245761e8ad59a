-- 0031: dunning (docs/BILLING.md "Dunning"): what a ladder step did, a
-- hold that never outlives the number's ownership, and the index the
-- worker's tick walks.

-- outcome: done (the step acted), skipped (a reminder that came due
-- together with a later step of the same invoice: the later step's notice
-- supersedes it; recorded so that it is never sent late).
ALTER TABLE dunning_steps_done
    ADD COLUMN outcome text NOT NULL DEFAULT 'done'
        CHECK (outcome IN ('done', 'skipped'));

-- A billing hold belongs to the account that did not pay: when a number
-- leaves the account (released by the release step or by its owner,
-- ported out, given to another account) its hold is cleared, so the pool
-- never hands out a held number. Every path that moves a number goes
-- through this trigger; the routing trigger of 0027 still sees the change.
CREATE FUNCTION numbers_billing_hold_clear() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.billing_hold_at IS NOT NULL
       AND (NEW.account_id IS NULL
            OR NEW.account_id IS DISTINCT FROM OLD.account_id
            OR NEW.status NOT IN ('purchased', 'active', 'suspended')) THEN
        NEW.billing_hold_at := NULL;
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER numbers_billing_hold_clear
    BEFORE UPDATE OF status, account_id ON numbers
    FOR EACH ROW EXECUTE FUNCTION numbers_billing_hold_clear();

-- The tick's question: unpaid invoices past their due date.
CREATE INDEX invoices_dunning_idx ON invoices (due_at)
    WHERE status IN ('finalized', 'uncollectible') AND amount_due_micros > 0;

-- The lift's and the release step's question: the account's held numbers.
CREATE INDEX numbers_billing_hold_idx ON numbers (account_id)
    WHERE billing_hold_at IS NOT NULL;

-- A plan's steps as the worker reads them: objects with an integer
-- after_days (0..99999 days after the due date) and an action. A plan
-- that is not so is refused when it is written, not skipped at run time.
CREATE FUNCTION dunning_steps_valid(steps jsonb) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT jsonb_typeof(steps) = 'array'
       AND coalesce(bool_and(jsonb_typeof(s) = 'object'
                             AND jsonb_typeof(s->'after_days') = 'number'
                             AND s->>'after_days' ~ '^[0-9]{1,5}$'
                             AND s->>'action' IN ('remind', 'suspend', 'release')), true)
      FROM jsonb_array_elements(CASE WHEN jsonb_typeof(steps) = 'array'
                                     THEN steps ELSE '[]'::jsonb END) AS s
$$;

ALTER TABLE dunning_plans ADD CONSTRAINT dunning_plans_steps_valid
    CHECK (dunning_steps_valid(steps));
