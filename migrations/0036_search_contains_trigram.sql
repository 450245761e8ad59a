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
CREATE INDEX numbers_available_contains_idx ON numbers
    USING gin (area_code, e164 gin_trgm_ops) WHERE status = 'available';
