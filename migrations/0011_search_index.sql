-- Search by area code returns the available numbers in E.164 order: this
-- index serves that directly (bench/numbers: area codes deep in a
-- 1,000,000-number pool went from ~440 ms to ~0.2 ms).
CREATE INDEX numbers_available_area_e164_idx ON numbers (country, area_code, e164)
    WHERE status = 'available';
