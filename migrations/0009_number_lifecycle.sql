-- The number lifecycle of the numbers API (docs/NUMBERS.md):
--   available -> reserved (held 15 min) -> purchased (ordered, owned, not
--   routing calls) -> active <-> suspended -> released to the carrier
--   (back to available).
-- A reservation request may hold several numbers: its rows share group_id,
-- which is the reservation id clients see.

ALTER TABLE numbers DROP CONSTRAINT numbers_owner_status_check;
ALTER TABLE numbers DROP CONSTRAINT numbers_status_check;
ALTER TABLE numbers ADD CONSTRAINT numbers_status_check CHECK (
    status IN ('available', 'reserved', 'purchased', 'active', 'suspended', 'porting', 'released'));
ALTER TABLE numbers ADD CONSTRAINT numbers_owner_status_check CHECK (
    (status = 'available' AND account_id IS NULL)
    OR (status IN ('purchased', 'active', 'suspended', 'porting') AND account_id IS NOT NULL)
    OR status IN ('reserved', 'released'));

ALTER TABLE reservations ADD COLUMN group_id uuid;
UPDATE reservations SET group_id = id WHERE group_id IS NULL;
ALTER TABLE reservations ALTER COLUMN group_id SET NOT NULL;
CREATE INDEX reservations_group_idx ON reservations (group_id);

-- Search: the available pool by country, with the common filters.
CREATE INDEX numbers_available_e164_idx ON numbers (country, e164) WHERE status = 'available';
CREATE INDEX numbers_owned_idx ON numbers (account_id, e164) WHERE account_id IS NOT NULL;

-- The API addresses numbers by id alone (the primary key leads with the
-- partition key, country).
CREATE INDEX numbers_id_idx ON numbers (id);
