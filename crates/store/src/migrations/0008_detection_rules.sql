-- Custom detection rules, their run history, and the entity groups they have alerted on.
--
-- next_run_time drives the scheduler (rules due across all tenants are read by it, hence the
-- index without tenant); a server claims a due rule by moving its next run on with the usual
-- row_version check, so two servers never run the same slot.
CREATE TABLE detection_rules (
    seq $SEQ_PRIMARY_KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    id TEXT NOT NULL,
    display_name TEXT NOT NULL,
    status TEXT NOT NULL,
    period TEXT NOT NULL,
    continuous_table TEXT,
    next_run_time BIGINT,
    created_date_time BIGINT NOT NULL,
    last_modified_date_time BIGINT NOT NULL,
    row_version BIGINT NOT NULL DEFAULT 0,
    body TEXT NOT NULL
);
CREATE UNIQUE INDEX detection_rules_id ON detection_rules (tenant_id, id);
CREATE INDEX detection_rules_due ON detection_rules (next_run_time);
CREATE INDEX detection_rules_created ON detection_rules (tenant_id, created_date_time, seq);
CREATE INDEX detection_rules_continuous ON detection_rules (tenant_id, continuous_table);

CREATE TABLE detection_runs (
    seq $SEQ_PRIMARY_KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    id TEXT NOT NULL,
    rule_id TEXT NOT NULL,
    start_date_time BIGINT NOT NULL,
    status TEXT NOT NULL,
    row_version BIGINT NOT NULL DEFAULT 0,
    body TEXT NOT NULL
);
CREATE UNIQUE INDEX detection_runs_id ON detection_runs (tenant_id, id);
CREATE INDEX detection_runs_rule ON detection_runs (tenant_id, rule_id, seq);

-- One row per (rule, entity group) that raised an alert: a later match of the same group inside
-- the rule's lookback is suppressed instead of alerting again. entity_key is a SHA-256 prefix
-- of the group's entity values (see detection_rules.rs).
CREATE TABLE detection_hits (
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    rule_id TEXT NOT NULL,
    entity_key BIGINT NOT NULL,
    alert_id TEXT NOT NULL,
    alerted_time BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, rule_id, entity_key)
);
