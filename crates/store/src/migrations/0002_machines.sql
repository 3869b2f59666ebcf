CREATE TABLE machines (
    seq $SEQ_PRIMARY_KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    id TEXT NOT NULL,
    computer_dns_name TEXT NOT NULL,
    version TEXT,
    device_value TEXT NOT NULL,
    aad_device_id TEXT,
    last_seen BIGINT,
    first_seen BIGINT,
    exposure_level TEXT,
    onboarding_status TEXT NOT NULL,
    last_ip_address TEXT,
    health_status TEXT NOT NULL,
    os_platform TEXT NOT NULL,
    risk_score TEXT,
    rbac_group_id BIGINT NOT NULL,
    row_version BIGINT NOT NULL DEFAULT 0,
    body TEXT NOT NULL
);
CREATE UNIQUE INDEX machines_id ON machines (tenant_id, id);
CREATE INDEX machines_name ON machines (tenant_id, computer_dns_name, seq);
CREATE INDEX machines_last_seen ON machines (tenant_id, last_seen, seq);
CREATE INDEX machines_health ON machines (tenant_id, health_status, seq);
CREATE INDEX machines_group ON machines (tenant_id, rbac_group_id, seq);

CREATE TABLE machines_machine_tags (
    entity_seq BIGINT NOT NULL,
    value TEXT NOT NULL
);
CREATE INDEX machines_machine_tags_entity ON machines_machine_tags (entity_seq);
CREATE INDEX machines_machine_tags_value ON machines_machine_tags (value, entity_seq);

CREATE TABLE machine_ips (
    tenant_id TEXT NOT NULL,
    machine_id TEXT NOT NULL,
    ip TEXT NOT NULL,
    first_seen BIGINT NOT NULL,
    last_seen BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, machine_id, ip)
);
CREATE INDEX machine_ips_ip ON machine_ips (tenant_id, ip, last_seen);

CREATE TABLE machine_groups (
    seq $SEQ_PRIMARY_KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    group_key TEXT NOT NULL,
    id BIGINT NOT NULL,
    name TEXT NOT NULL,
    rank BIGINT NOT NULL,
    automation_level TEXT NOT NULL,
    row_version BIGINT NOT NULL DEFAULT 0,
    body TEXT NOT NULL
);
CREATE UNIQUE INDEX machine_groups_key ON machine_groups (tenant_id, group_key);
CREATE UNIQUE INDEX machine_groups_name ON machine_groups (tenant_id, name);
