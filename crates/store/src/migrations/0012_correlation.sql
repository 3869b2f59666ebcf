-- Alert correlation: the entities of every alert (the index that finds the alerts a new one
-- shares an entity with), and each tenant's correlation policy.
CREATE TABLE alert_entities (
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    kind TEXT NOT NULL,
    value TEXT NOT NULL,
    alert_id TEXT NOT NULL,
    incident_id BIGINT NOT NULL,
    event_time BIGINT NOT NULL
);
CREATE INDEX alert_entities_value ON alert_entities (tenant_id, kind, value, event_time);
CREATE INDEX alert_entities_incident ON alert_entities (tenant_id, incident_id);
-- Why each alert is in its incident (kept beside the incident so that joining a large one
-- rewrites nothing that grows with it).
CREATE TABLE incident_reasons (
    seq $SEQ_PRIMARY_KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    incident_id BIGINT NOT NULL,
    alert_id TEXT NOT NULL,
    entity_type TEXT,
    entity_value TEXT,
    linked_alert_id TEXT,
    merged_from_incident_id BIGINT
);
CREATE INDEX incident_reasons_incident ON incident_reasons (tenant_id, incident_id);
CREATE TABLE correlation_policies (
    tenant_id TEXT PRIMARY KEY REFERENCES tenants (id),
    body TEXT NOT NULL
);
