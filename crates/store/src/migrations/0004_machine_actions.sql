-- Machine actions (reference §2.3–2.5). Columns besides the document: the OData fields of
-- §2.4, the last update (for time-outs), the queue slot, and what the agent left behind (the
-- investigation package, the live response result links), which the entity does not show.
CREATE TABLE machine_actions (
    seq $SEQ_PRIMARY_KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    id TEXT NOT NULL,
    status TEXT NOT NULL,
    machine_id TEXT NOT NULL,
    type TEXT NOT NULL,
    requestor TEXT NOT NULL,
    creation_date_time_utc BIGINT NOT NULL,
    last_update_date_time_utc BIGINT NOT NULL,
    queue_slot TEXT,
    package_uri TEXT,
    result_links TEXT,
    row_version BIGINT NOT NULL DEFAULT 0,
    body TEXT NOT NULL
);
CREATE UNIQUE INDEX machine_actions_id ON machine_actions (tenant_id, id);
-- At most one action per machine and queue slot: a state lane's pending action, a task lane's
-- open action. This is what makes duplicate submissions impossible, not merely unlikely.
CREATE UNIQUE INDEX machine_actions_slot ON machine_actions (tenant_id, machine_id, queue_slot)
    WHERE queue_slot IS NOT NULL;
CREATE INDEX machine_actions_machine ON machine_actions (tenant_id, machine_id, status, seq);
CREATE INDEX machine_actions_status ON machine_actions (tenant_id, status, seq);
CREATE INDEX machine_actions_type ON machine_actions (tenant_id, type, seq);
CREATE INDEX machine_actions_requestor ON machine_actions (tenant_id, requestor, seq);
CREATE INDEX machine_actions_created ON machine_actions (tenant_id, creation_date_time_utc, seq);
CREATE INDEX machine_actions_open ON machine_actions (status, last_update_date_time_utc);

-- One row per machine that ever had an action: every change to a machine's queue first writes
-- its row, which serialises changes to one queue across connections and servers.
CREATE TABLE machine_action_queues (
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    machine_id TEXT NOT NULL,
    version BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, machine_id)
);

-- Idempotency-Key of action requests, per tenant and app: the request it came with and the
-- action it answered with.
CREATE TABLE machine_action_idempotency (
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    client_id TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    request TEXT NOT NULL,
    action_id TEXT NOT NULL,
    created BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, client_id, idempotency_key)
);
