-- Automated investigation and remediation: the investigator finds queued and unfinished
-- investigations by state; the action center keeps each remediation action an investigation
-- proposed.
CREATE INDEX investigations_state ON investigations (state, seq);

CREATE TABLE remediation_actions (
    seq $SEQ_PRIMARY_KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    id TEXT NOT NULL,
    investigation_id TEXT NOT NULL,
    machine_id TEXT NOT NULL,
    action_type TEXT NOT NULL,
    status TEXT NOT NULL,
    created_time BIGINT NOT NULL,
    row_version BIGINT NOT NULL DEFAULT 0,
    body TEXT NOT NULL
);
CREATE UNIQUE INDEX remediation_actions_id ON remediation_actions (tenant_id, id);
CREATE INDEX remediation_actions_investigation ON remediation_actions (tenant_id, investigation_id, seq);
CREATE INDEX remediation_actions_machine ON remediation_actions (tenant_id, machine_id, seq);
CREATE INDEX remediation_actions_status ON remediation_actions (status, seq);
CREATE INDEX remediation_actions_created ON remediation_actions (tenant_id, created_time, seq);
