-- A search with `contains` (digits anywhere in the number) read its area
-- code's entries in E.164 order and fetched every row to test LIKE '%ddd%'
-- until 21 matched: ~2.4 ms of PostgreSQL CPU a search (bench/numbers,
-- 1,000,000 numbers; ~4,000 rows for three digits). A trigram index over
-- the E.164, with the area code beside it (btree_gin), finds the few rows
-- that match: ~0.4 ms (planning included). Both extensions are trusted: the
-- database owner creates them. Patterns shorter than three digits have no
-- trigram and keep using numbers_available_area_e164_idx.
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE EXTENSION IF NOT EXISTS btree_gin;
-- fastupdate off: with GIN's pending list, new numbers (carrier refills)
-- would first go to an unindexed list that every search scans until
-- (auto)vacuum or an unlucky insert flushes it (likely why, in a
-- bench/numbers run, cold searches right after loading the inventory were
-- answered at 228/s, and at 1,562/s a minute later). Off, an insert costs
-- ~40 us a row more (4 ms for a refill of 100).
CREATE INDEX numbers_available_contains_idx ON numbers
    USING gin (area_code, e164 gin_trgm_ops) WITH (fastupdate = off)
    WHERE status = 'available';
