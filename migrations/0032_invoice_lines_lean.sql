-- 0032: invoice lines without the composite foreign key to invoices.
-- Lines are written by one statement only, the invoicing worker's
-- recompute (workers/invoicing/lines.c), which takes invoice_id and
-- currency from the invoice row it has locked, and deleted only with their
-- draft's recompute; invoices are never deleted. The per-row check cost
-- half of the insert of a batch's lines (bench/invoicing: 70,000 lines,
-- 1.0 s with the check, 0.5 s without), and the generation of a month's
-- invoices is the hot path of billing. The unique (invoice_id, line_no)
-- index stays and serves the lookups by invoice.
ALTER TABLE invoice_lines DROP CONSTRAINT invoice_lines_invoice_fkey;
