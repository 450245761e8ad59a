-- 0030: the invoicing schedule (docs/BILLING.md "States"). The tick asks
-- for the invoice of each account's last closed period once: it records
-- which period it asked for and when, and asks again only after
-- VOX_INVOICING_REFRESH_S if no invoice came of it (a command lost to the
-- dead-letter topic, say).
ALTER TABLE billing_accounts
    ADD COLUMN generate_requested_for timestamptz,
    ADD COLUMN generate_requested_at timestamptz;
