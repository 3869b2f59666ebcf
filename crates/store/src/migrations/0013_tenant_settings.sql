-- Per-tenant settings, one JSON document per name (the correlation policy, the signal-sharing
-- policy…), instead of one table per setting.
CREATE TABLE tenant_settings (
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    name TEXT NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (tenant_id, name)
);
INSERT INTO tenant_settings (tenant_id, name, body)
    SELECT tenant_id, 'correlation', body FROM correlation_policies;
DROP TABLE correlation_policies;
