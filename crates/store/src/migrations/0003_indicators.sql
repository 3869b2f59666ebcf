-- Indicators of compromise (reference §3). `id` is the MDE id, a number as text, allocated per
-- tenant from indicator_counters. (tenant_id, indicator_value, indicator_type) is unique, which
-- is what makes "submit again to update" race-free.
CREATE TABLE indicators (
    seq $SEQ_PRIMARY_KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    id TEXT NOT NULL,
    indicator_value TEXT NOT NULL,
    indicator_type TEXT NOT NULL,
    action TEXT NOT NULL,
    application TEXT,
    title TEXT NOT NULL,
    severity TEXT NOT NULL,
    generate_alert BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    created_by_display_name TEXT,
    creation_time_date_time_utc BIGINT NOT NULL,
    expiration_time BIGINT,
    row_version BIGINT NOT NULL DEFAULT 0,
    body TEXT NOT NULL
);
CREATE UNIQUE INDEX indicators_id ON indicators (tenant_id, id);
CREATE UNIQUE INDEX indicators_value ON indicators (tenant_id, indicator_value, indicator_type);
CREATE INDEX indicators_tenant ON indicators (tenant_id, seq);
CREATE INDEX indicators_created_by ON indicators (tenant_id, created_by, seq);
CREATE INDEX indicators_created ON indicators (tenant_id, creation_time_date_time_utc, seq);
CREATE INDEX indicators_expiration ON indicators (tenant_id, expiration_time, seq);

CREATE TABLE indicators_rbac_group_names (
    entity_seq BIGINT NOT NULL REFERENCES indicators (seq) ON DELETE CASCADE,
    value TEXT NOT NULL
);
CREATE INDEX indicators_rbac_group_names_entity ON indicators_rbac_group_names (entity_seq);
CREATE INDEX indicators_rbac_group_names_value ON indicators_rbac_group_names (value, entity_seq);

CREATE TABLE indicators_rbac_group_ids (
    entity_seq BIGINT NOT NULL REFERENCES indicators (seq) ON DELETE CASCADE,
    value TEXT NOT NULL
);
CREATE INDEX indicators_rbac_group_ids_entity ON indicators_rbac_group_ids (entity_seq);
CREATE INDEX indicators_rbac_group_ids_value ON indicators_rbac_group_ids (value, entity_seq);

-- The last indicator id handed out in each tenant.
CREATE TABLE indicator_counters (
    tenant_id TEXT PRIMARY KEY REFERENCES tenants (id),
    last_id BIGINT NOT NULL
);
