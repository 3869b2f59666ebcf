CREATE TABLE tenants (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    is_default BIGINT NOT NULL DEFAULT 0,
    created_time BIGINT NOT NULL
);
CREATE UNIQUE INDEX tenants_one_default ON tenants (is_default) WHERE is_default = 1;

CREATE TABLE apps (
    client_id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    name TEXT NOT NULL,
    roles TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    created_time BIGINT NOT NULL,
    secret_updated_time BIGINT NOT NULL
);
CREATE INDEX apps_tenant ON apps (tenant_id);

CREATE TABLE signing_keys (
    kid TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    private_pem TEXT NOT NULL,
    public_x TEXT NOT NULL,
    public_y TEXT NOT NULL,
    created_time BIGINT NOT NULL
);
CREATE INDEX signing_keys_tenant ON signing_keys (tenant_id, created_time);

CREATE TABLE alerts (
    seq $SEQ_PRIMARY_KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    id TEXT NOT NULL,
    alert_creation_time BIGINT NOT NULL,
    last_update_time BIGINT NOT NULL,
    first_event_time BIGINT,
    last_event_time BIGINT,
    incident_id BIGINT,
    investigation_id BIGINT,
    assigned_to TEXT,
    detection_source TEXT NOT NULL,
    status TEXT NOT NULL,
    severity TEXT NOT NULL,
    category TEXT NOT NULL,
    machine_id TEXT,
    external_key TEXT,
    row_version BIGINT NOT NULL DEFAULT 0,
    body TEXT NOT NULL
);
CREATE UNIQUE INDEX alerts_id ON alerts (tenant_id, id);
-- (source product, external id) of imported alerts: re-sending one never duplicates it.
CREATE UNIQUE INDEX alerts_external ON alerts (tenant_id, external_key) WHERE external_key IS NOT NULL;
CREATE INDEX alerts_created ON alerts (tenant_id, alert_creation_time, seq);
-- status trails the key so that a `status ne …` filter is checked in the index, before the row is read.
CREATE INDEX alerts_severity_created ON alerts (tenant_id, severity, alert_creation_time, seq, status);
CREATE INDEX alerts_status_created ON alerts (tenant_id, status, alert_creation_time, seq);
CREATE INDEX alerts_updated ON alerts (tenant_id, last_update_time, seq);
CREATE INDEX alerts_machine ON alerts (tenant_id, machine_id, seq);
CREATE INDEX alerts_incident ON alerts (tenant_id, incident_id, seq);

CREATE TABLE audit (
    seq $SEQ_PRIMARY_KEY,
    tenant_id TEXT NOT NULL,
    time BIGINT NOT NULL,
    action TEXT NOT NULL,
    entity_type TEXT NOT NULL,
    entity_id TEXT NOT NULL,
    actor_id TEXT NOT NULL,
    correlation_id TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX audit_tenant_time ON audit (tenant_id, time, seq);
CREATE INDEX audit_entity ON audit (tenant_id, entity_type, entity_id, seq);
