-- The live response library: scripts and files live response may put on devices or run there.
-- The content is in the object store beside the telemetry, addressed by its SHA-256.
CREATE TABLE library_files (
    seq $SEQ_PRIMARY_KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    file_key TEXT NOT NULL,
    file_name TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    creation_time BIGINT NOT NULL,
    last_updated_time BIGINT NOT NULL,
    row_version BIGINT NOT NULL DEFAULT 0,
    body TEXT NOT NULL
);
CREATE UNIQUE INDEX library_files_key ON library_files (tenant_id, file_key);
CREATE INDEX library_files_sha256 ON library_files (tenant_id, sha256);
