CREATE TABLE counters (
    tenant_id TEXT NOT NULL,
    name TEXT NOT NULL,
    value BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, name)
);

CREATE TABLE incidents (
    seq $SEQ_PRIMARY_KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    incident_key TEXT NOT NULL,
    incident_id BIGINT NOT NULL,
    created_time BIGINT NOT NULL,
    last_update_time BIGINT NOT NULL,
    status TEXT NOT NULL,
    assigned_to TEXT,
    severity TEXT NOT NULL,
    row_version BIGINT NOT NULL DEFAULT 0,
    body TEXT NOT NULL
);
CREATE UNIQUE INDEX incidents_key ON incidents (tenant_id, incident_key);
CREATE INDEX incidents_updated ON incidents (tenant_id, last_update_time, seq);
CREATE INDEX incidents_created ON incidents (tenant_id, created_time, seq);
CREATE INDEX incidents_status ON incidents (tenant_id, status, seq);

CREATE TABLE investigations (
    seq $SEQ_PRIMARY_KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    id TEXT NOT NULL,
    start_time BIGINT,
    state TEXT NOT NULL,
    machine_id TEXT,
    triggering_alert_id TEXT,
    row_version BIGINT NOT NULL DEFAULT 0,
    body TEXT NOT NULL
);
CREATE UNIQUE INDEX investigations_id ON investigations (tenant_id, id);
CREATE INDEX investigations_start ON investigations (tenant_id, start_time, seq);
CREATE INDEX investigations_machine ON investigations (tenant_id, machine_id, seq);
