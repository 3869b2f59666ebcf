-- YARA rule sets: the signatures agents' antivirus scans use beside the blocked hashes.
CREATE TABLE yara_rule_sets (
    seq $SEQ_PRIMARY_KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    id TEXT NOT NULL,
    name TEXT NOT NULL,
    created_date_time BIGINT NOT NULL,
    last_modified_date_time BIGINT NOT NULL,
    row_version BIGINT NOT NULL DEFAULT 0,
    body TEXT NOT NULL
);
CREATE UNIQUE INDEX yara_rule_sets_id ON yara_rule_sets (tenant_id, id);
CREATE INDEX yara_rule_sets_created ON yara_rule_sets (tenant_id, created_date_time, seq);
