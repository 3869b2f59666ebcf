-- Enrollment tokens and the device credentials they hand out (agent enrollment).
--
-- A token's secret is kept only as its SHA-256 (hex): it is 240 random bits, so a fast hash is
-- as safe as a slow one and lets enrollment look the token up by an index instead of trying
-- every hash of the tenant. `id` is the public id the API and the audit log name it by.
CREATE TABLE enrollment_tokens (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    name TEXT NOT NULL,
    token_hash TEXT NOT NULL,
    created_time BIGINT NOT NULL,
    expires_time BIGINT,
    max_uses BIGINT,
    uses BIGINT NOT NULL DEFAULT 0,
    revoked BIGINT NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX enrollment_tokens_hash ON enrollment_tokens (token_hash);
CREATE INDEX enrollment_tokens_tenant ON enrollment_tokens (tenant_id, created_time);

-- One row per enrolled device: its secret's SHA-256 (hex; 240 random bits as well), checked on
-- every batch the agent sends. The device id is global, not per tenant, because the agent
-- presents only its id and secret and the tenant is looked up from them.
-- enrollment_token_id names the token that enrolled the device, without a foreign key: tokens
-- are an administrative record and may one day be purged while their devices stay enrolled.
CREATE TABLE device_credentials (
    device_id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    secret_hash TEXT NOT NULL,
    enrollment_token_id TEXT NOT NULL,
    created_time BIGINT NOT NULL
);
CREATE INDEX device_credentials_tenant ON device_credentials (tenant_id);
