-- A tenant's indicator generation: bumped by every transaction that changes its indicators, so
-- that servers sharing the store notice changes made through another one with a one-row read.
ALTER TABLE indicator_counters ADD COLUMN generation BIGINT NOT NULL DEFAULT 0;
