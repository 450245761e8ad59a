-- 0016: usage_records loses its (event_type, started_at) index. Every
-- rated record paid for it (bench/metering: one B-tree insert of four),
-- and nothing reads it: per-type sums come from usage_daily, record
-- listings go by account or number and time (the other two indexes).
DROP INDEX usage_records_event_started_idx;
