//! Machine actions: the queue of response actions and their status machine.
//!
//! Every change to a machine's actions — a submission, a claim, a completion, a cancellation, a
//! time-out — runs in one transaction that first writes the machine's row in
//! `machine_action_queues`. That write serialises the changes to one queue (a row lock in
//! PostgreSQL, the write lock in SQLite), so each change decides on the queue as it is, and the
//! unique index on `queue_slot` turns any decision that would still break "at most one" into an
//! error instead of a second action. Submission rules live in `rampart_core::machine_action`
//! (`admit`); statuses move only through `MachineAction::apply`.

use crate::SqlStore;
use crate::audit::{Change as AuditChange, record};
use crate::bell::ActionBell;
use crate::document::{Document, get_raw, insert, time as time_col};
use crate::error::{Result, StoreError};
use crate::sql::{SqlBuilder, SqlValue};
use crate::util::{is_unique_violation, parse_tenant_id, to_json};
use async_trait::async_trait;
use rampart_core::audit::AuditContext;
use rampart_core::machine::Machine;
use rampart_core::machine_action::{
    ActionEvent, ActionOutcome, ActionResults, ActionStatus, ActionSubmission, Admission,
    MACHINE_ACTIONS, MachineAction, Submitted, admit, check_supported,
};
use rampart_core::timefmt::to_micros;
use rampart_core::{ErrorCode, Rejection, TenantId};
use sqlx::Row;
use time::OffsetDateTime;

impl Document for MachineAction {
    const TABLE: &'static str = "machine_actions";
    const ENTITY: &'static str = "MachineAction";
    const KEY_COLUMN: &'static str = "id";
    const SET: &'static rampart_core::odata::EntitySet = &MACHINE_ACTIONS;

    fn key(&self) -> String {
        self.id.clone()
    }

    fn columns(&self) -> Vec<(&'static str, SqlValue)> {
        vec![
            ("status", SqlValue::Text(self.status().as_str().into())),
            ("machine_id", SqlValue::Text(self.machine_id.clone())),
            ("type", SqlValue::Text(self.action_type.as_str().into())),
            ("requestor", SqlValue::Text(self.requestor.clone())),
            (
                "creation_date_time_utc",
                time_col(Some(self.creation_date_time_utc())),
            ),
            (
                "last_update_date_time_utc",
                time_col(Some(self.last_update_date_time_utc())),
            ),
            (
                "queue_slot",
                self.queue_slot().map_or(SqlValue::Null, SqlValue::Text),
            ),
        ]
    }
}

#[async_trait]
pub trait ActionStore: Send + Sync {
    /// Queues an action — or answers with the open action it duplicates, or with the action a
    /// replayed `Idempotency-Key` got — after cancelling the pending actions it supersedes; all
    /// in one transaction. Refuses (writing nothing) an unknown machine (`ResourceNotFound`),
    /// an action its OS cannot run (`OsPlatformNotSupported`), an action its lane refuses while
    /// another is open, and an `Idempotency-Key` reused for another request (`Conflict`).
    async fn submit_machine_action(
        &self,
        ctx: &AuditContext,
        tenant: TenantId,
        submission: &ActionSubmission,
    ) -> Result<Submitted>;
    async fn get_machine_action(&self, tenant: TenantId, id: &str)
    -> Result<Option<MachineAction>>;
    /// An action with what it left for download.
    async fn machine_action_results(
        &self,
        tenant: TenantId,
        id: &str,
    ) -> Result<Option<(MachineAction, ActionResults)>>;
    /// Cancels a pending or running action; an already cancelled one is returned unchanged, a
    /// finished one refused. `Ok(None)` when there is no such action.
    async fn cancel_machine_action(
        &self,
        ctx: &AuditContext,
        tenant: TenantId,
        id: &str,
        requestor: &str,
        comment: &str,
    ) -> Result<Option<MachineAction>>;
    /// The bell rung after every change to a machine's action queue (see [`ActionBell`]).
    fn action_bell(&self) -> &ActionBell;
    /// The agent's side: the machine's running (`InProgress`) actions, oldest first.
    async fn running_actions(
        &self,
        tenant: TenantId,
        machine_id: &str,
    ) -> Result<Vec<MachineAction>>;
    /// The agent's side: takes the oldest pending action of the machine whose lane has none
    /// running (so each lane's actions run in the order they were accepted) and marks it
    /// `InProgress`.
    async fn claim_next_action(
        &self,
        tenant: TenantId,
        machine_id: &str,
    ) -> Result<Option<MachineAction>>;
    /// The agent's side: records how a running action ended. `Ok(None)` when there is no such
    /// action; a [`Rejection`] when the action is not running or the outcome does not fit it.
    async fn complete_action(
        &self,
        tenant: TenantId,
        action_id: &str,
        outcome: ActionOutcome,
    ) -> Result<Option<MachineAction>>;
    /// Times out (in every tenant) the actions pending for longer than `timeout` since they
    /// were created, or running for longer than `timeout` since their last update; returns
    /// how many.
    async fn expire_machine_actions(
        &self,
        now: OffsetDateTime,
        timeout: time::Duration,
    ) -> Result<u64>;
}

/// How often a submission is retried when a concurrent one won a uniqueness race.
const SUBMIT_ATTEMPTS: usize = 8;

fn decode(body: &str) -> Result<MachineAction> {
    serde_json::from_str(body)
        .map_err(|e| StoreError::Corrupt(format!("stored machine action is unreadable: {e}")))
}

/// Serialises changes to one machine's queue until the transaction ends.
async fn lock_queue(
    conn: &mut sqlx::AnyConnection,
    tenant: TenantId,
    machine_id: &str,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO machine_action_queues (tenant_id, machine_id, version) VALUES ($1, $2, 1) \
         ON CONFLICT (tenant_id, machine_id) DO UPDATE SET version = machine_action_queues.version + 1",
    )
    .bind(tenant.to_string())
    .bind(machine_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// The machine's pending and running actions, oldest first.
async fn load_open(
    conn: &mut sqlx::AnyConnection,
    tenant: TenantId,
    machine_id: &str,
) -> Result<Vec<MachineAction>> {
    let rows: Vec<String> = sqlx::query_scalar(
        "SELECT body FROM machine_actions WHERE tenant_id = $1 AND machine_id = $2 AND status IN ($3, $4) ORDER BY seq",
    )
    .bind(tenant.to_string())
    .bind(machine_id)
    .bind(ActionStatus::Pending.as_str())
    .bind(ActionStatus::InProgress.as_str())
    .fetch_all(conn)
    .await?;
    rows.iter().map(|b| decode(b)).collect()
}

async fn load(
    conn: &mut sqlx::AnyConnection,
    tenant: TenantId,
    id: &str,
) -> Result<Option<MachineAction>> {
    get_raw(conn, MachineAction::TABLE, "id", tenant, id)
        .await?
        .map(|b| decode(&b))
        .transpose()
}

/// Stores a changed action (with `extra` columns) and its audit entry.
async fn save(
    conn: &mut sqlx::AnyConnection,
    ctx: &AuditContext,
    tenant: TenantId,
    before: &MachineAction,
    after: &MachineAction,
    action: &str,
    extra: Vec<(&'static str, SqlValue)>,
) -> Result<()> {
    // Plain `$N` parameters only: the statement is the same in both dialects.
    let mut b = SqlBuilder::new(crate::sql::Dialect::Sqlite);
    b.push("UPDATE machine_actions SET row_version = row_version + 1, body = ")
        .push_param(SqlValue::Text(to_json(after)?));
    for (name, value) in after.columns().into_iter().chain(extra) {
        b.push(", ").push(name).push(" = ").push_param(value);
    }
    b.push(" WHERE tenant_id = ")
        .push_param(SqlValue::Text(tenant.to_string()))
        .push(" AND id = ")
        .push_param(SqlValue::Text(after.id.clone()));
    if b.query().execute(&mut *conn).await?.rows_affected() != 1 {
        return Err(StoreError::Conflict(format!(
            "machine action {} vanished while being changed",
            after.id
        )));
    }
    record(
        conn,
        ctx,
        AuditChange {
            tenant,
            action,
            entity_type: MachineAction::ENTITY,
            entity_id: &after.id,
            before: serde_json::to_value(before).ok(),
            after: serde_json::to_value(after).ok(),
        },
    )
    .await
}

/// Applies `event` to action `id` under its machine's queue lock; with the action, whether it
/// changed. `Ok(None)` when there is no such action.
async fn change_action(
    store: &SqlStore,
    ctx: Option<&AuditContext>,
    tenant: TenantId,
    id: &str,
    event: ActionEvent,
    now: OffsetDateTime,
    // Decides, on the current action, whether to apply at all (`false` returns it unchanged).
    proceed: impl Fn(&MachineAction) -> bool + Send,
) -> Result<Option<(MachineAction, bool)>> {
    let id = id.to_ascii_lowercase();
    let machine_id: Option<String> = sqlx::query_scalar(
        "SELECT machine_id FROM machine_actions WHERE tenant_id = $1 AND id = $2",
    )
    .bind(tenant.to_string())
    .bind(id.as_str())
    .fetch_optional(&store.pool)
    .await?;
    let Some(machine_id) = machine_id else {
        return Ok(None);
    };
    let mut tx = store.pool.begin().await?;
    lock_queue(&mut tx, tenant, &machine_id).await?;
    let Some(before) = load(&mut tx, tenant, &id).await? else {
        return Ok(None);
    };
    if !proceed(&before) {
        return Ok(Some((before, false)));
    }
    let mut after = before.clone();
    let name = event.audit_name();
    let extra = match &event {
        ActionEvent::Complete(outcome) => {
            let mut extra = Vec::new();
            if let Some(uri) = outcome.package_uri() {
                extra.push(("package_uri", SqlValue::Text(uri.to_owned())));
            }
            if !before.commands().is_empty() {
                extra.push((
                    "result_links",
                    SqlValue::Text(to_json(&outcome.result_links(before.commands().len()))?),
                ));
            }
            extra
        }
        _ => Vec::new(),
    };
    after.apply(event, now)?;
    let agent_ctx;
    let ctx = match ctx {
        Some(c) => c,
        None => {
            agent_ctx = AuditContext::system(&format!("agent:{machine_id}"));
            &agent_ctx
        }
    };
    save(&mut tx, ctx, tenant, &before, &after, name, extra).await?;
    tx.commit().await?;
    // A cancelled action is news to the agent running it; a finished one may free its lane for
    // the next.
    store.bell.ring(tenant, &machine_id);
    Ok(Some((after, true)))
}

impl SqlStore {
    /// One attempt at a submission, on an open transaction.
    async fn try_submit(
        &self,
        conn: &mut sqlx::AnyConnection,
        ctx: &AuditContext,
        tenant: TenantId,
        s: &ActionSubmission,
        machine_id: &str,
        request_text: &str,
    ) -> Result<Submitted> {
        lock_queue(conn, tenant, machine_id).await?;
        if let Some(k) = &s.idempotency {
            let row = sqlx::query(
                "SELECT request, action_id FROM machine_action_idempotency WHERE tenant_id = $1 AND client_id = $2 AND idempotency_key = $3",
            )
            .bind(tenant.to_string())
            .bind(k.client_id.as_str())
            .bind(k.key.as_str())
            .fetch_optional(&mut *conn)
            .await?;
            if let Some(row) = row {
                let request: String = row.try_get("request")?;
                let action_id: String = row.try_get("action_id")?;
                if request != request_text {
                    return Err(Rejection::new(
                        ErrorCode::Conflict,
                        format!(
                            "Idempotency-Key '{}' was already used for a different request (machine action {action_id}); use a new key for a new request.",
                            k.key
                        ),
                    )
                    .into());
                }
                let action = load(conn, tenant, &action_id).await?.ok_or_else(|| {
                    StoreError::Corrupt(format!("idempotency key names missing action {action_id}"))
                })?;
                return Ok(Submitted {
                    action,
                    created: false,
                    superseded: Vec::new(),
                });
            }
        }
        let machine: Machine = match get_raw(conn, "machines", "id", tenant, machine_id).await? {
            Some(body) => serde_json::from_str(&body)
                .map_err(|e| StoreError::Corrupt(format!("stored machine: {e}")))?,
            None => {
                return Err(Rejection::new(
                    ErrorCode::ResourceNotFound,
                    format!(
                        "Machine {} was not found",
                        machine_id.chars().take(100).collect::<String>()
                    ),
                )
                .into());
            }
        };
        check_supported(&s.request.action, &machine.os_platform)?;
        let open = load_open(conn, tenant, machine_id).await?;
        let now = OffsetDateTime::now_utc();
        let (action, created, superseded) = match admit(&s.request, &open)? {
            Admission::Existing(id) => {
                let a = open.into_iter().find(|a| a.id == id).ok_or_else(|| {
                    StoreError::Corrupt(format!("admission named unknown action {id}"))
                })?;
                (a, false, Vec::new())
            }
            Admission::Queue { supersede } => {
                let new = MachineAction::new(
                    &s.request,
                    &machine.id,
                    Some(&machine.computer_dns_name),
                    &s.requestor,
                    s.request_source.as_deref(),
                    now,
                );
                for old in open.iter().filter(|a| supersede.contains(&a.id)) {
                    let mut after = old.clone();
                    after.apply(
                        ActionEvent::Cancel {
                            requestor: s.requestor.clone(),
                            comment: format!(
                                "Superseded by a later {} request (machine action {}).",
                                new.action_type.as_str(),
                                new.id
                            ),
                        },
                        now,
                    )?;
                    save(conn, ctx, tenant, old, &after, "Supersede", Vec::new()).await?;
                }
                insert(conn, ctx, tenant, std::slice::from_ref(&new)).await?;
                (new, true, supersede)
            }
        };
        if let Some(k) = &s.idempotency {
            sqlx::query(
                "INSERT INTO machine_action_idempotency (tenant_id, client_id, idempotency_key, request, action_id, created) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(tenant.to_string())
            .bind(k.client_id.as_str())
            .bind(k.key.as_str())
            .bind(request_text)
            .bind(action.id.as_str())
            .bind(to_micros(now))
            .execute(&mut *conn)
            .await?;
        }
        Ok(Submitted {
            action,
            created,
            superseded,
        })
    }
}

#[async_trait]
impl ActionStore for SqlStore {
    async fn submit_machine_action(
        &self,
        ctx: &AuditContext,
        tenant: TenantId,
        submission: &ActionSubmission,
    ) -> Result<Submitted> {
        let machine_id = submission.machine_id.to_ascii_lowercase();
        // What an Idempotency-Key is bound to: the machine and the whole request.
        let request_text = to_json(&(&machine_id, &submission.request))?;
        for _ in 0..SUBMIT_ATTEMPTS {
            let mut tx = self.pool.begin().await?;
            let result = self
                .try_submit(&mut tx, ctx, tenant, submission, &machine_id, &request_text)
                .await;
            match result {
                Ok(out) => {
                    tx.commit().await?;
                    if out.created || !out.superseded.is_empty() {
                        self.bell.ring(tenant, &machine_id);
                    }
                    return Ok(out);
                }
                // A concurrent submission got there first (a slot, or the same key for another
                // machine): start over and see what it left.
                Err(StoreError::Database(e)) if is_unique_violation(&e) => continue,
                Err(StoreError::Conflict(_)) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(StoreError::Conflict(format!(
            "actions for machine {machine_id} are being submitted concurrently; try again"
        )))
    }

    async fn get_machine_action(
        &self,
        tenant: TenantId,
        id: &str,
    ) -> Result<Option<MachineAction>> {
        self.get_doc::<MachineAction>(tenant, &id.to_ascii_lowercase())
            .await
    }

    async fn machine_action_results(
        &self,
        tenant: TenantId,
        id: &str,
    ) -> Result<Option<(MachineAction, ActionResults)>> {
        let row = sqlx::query(
            "SELECT body, package_uri, result_links FROM machine_actions WHERE tenant_id = $1 AND id = $2",
        )
        .bind(tenant.to_string())
        .bind(id.to_ascii_lowercase())
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let action = decode(&row.try_get::<String, _>("body")?)?;
        let links: Option<String> = row.try_get("result_links")?;
        let result_links = match links {
            Some(t) => serde_json::from_str(&t)
                .map_err(|e| StoreError::Corrupt(format!("stored result links: {e}")))?,
            None => Vec::new(),
        };
        Ok(Some((
            action,
            ActionResults {
                package_uri: row.try_get("package_uri")?,
                result_links,
            },
        )))
    }

    async fn cancel_machine_action(
        &self,
        ctx: &AuditContext,
        tenant: TenantId,
        id: &str,
        requestor: &str,
        comment: &str,
    ) -> Result<Option<MachineAction>> {
        let event = ActionEvent::Cancel {
            requestor: requestor.to_owned(),
            comment: comment.to_owned(),
        };
        change_action(
            self,
            Some(ctx),
            tenant,
            id,
            event,
            OffsetDateTime::now_utc(),
            |a| a.status() != ActionStatus::Cancelled,
        )
        .await
        .map(|r| r.map(|(a, _)| a))
    }

    fn action_bell(&self) -> &ActionBell {
        &self.bell
    }

    async fn running_actions(
        &self,
        tenant: TenantId,
        machine_id: &str,
    ) -> Result<Vec<MachineAction>> {
        let rows: Vec<String> = sqlx::query_scalar(
            "SELECT body FROM machine_actions WHERE tenant_id = $1 AND machine_id = $2 AND status = $3 ORDER BY seq",
        )
        .bind(tenant.to_string())
        .bind(machine_id.to_ascii_lowercase())
        .bind(ActionStatus::InProgress.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|b| decode(b)).collect()
    }

    async fn claim_next_action(
        &self,
        tenant: TenantId,
        machine_id: &str,
    ) -> Result<Option<MachineAction>> {
        let machine_id = machine_id.to_ascii_lowercase();
        // Most polls find nothing: answer those without taking the queue's lock.
        let pending: Option<i64> = sqlx::query_scalar(
            "SELECT seq FROM machine_actions WHERE tenant_id = $1 AND machine_id = $2 AND status = $3 LIMIT 1",
        )
        .bind(tenant.to_string())
        .bind(machine_id.as_str())
        .bind(ActionStatus::Pending.as_str())
        .fetch_optional(&self.pool)
        .await?;
        if pending.is_none() {
            return Ok(None);
        }
        let mut tx = self.pool.begin().await?;
        lock_queue(&mut tx, tenant, &machine_id).await?;
        let open = load_open(&mut tx, tenant, &machine_id).await?;
        let running: Vec<_> = open
            .iter()
            .filter(|a| a.status() == ActionStatus::InProgress)
            .map(MachineAction::lane)
            .collect();
        let Some(next) = open
            .iter()
            .find(|a| a.status() == ActionStatus::Pending && !running.contains(&a.lane()))
        else {
            return Ok(None);
        };
        let mut after = next.clone();
        after.apply(ActionEvent::Claim, OffsetDateTime::now_utc())?;
        let ctx = AuditContext::system(&format!("agent:{machine_id}"));
        save(&mut tx, &ctx, tenant, next, &after, "Claim", Vec::new()).await?;
        tx.commit().await?;
        Ok(Some(after))
    }

    async fn complete_action(
        &self,
        tenant: TenantId,
        action_id: &str,
        outcome: ActionOutcome,
    ) -> Result<Option<MachineAction>> {
        change_action(
            self,
            None,
            tenant,
            action_id,
            ActionEvent::Complete(outcome),
            OffsetDateTime::now_utc(),
            |_| true,
        )
        .await
        .map(|r| r.map(|(a, _)| a))
    }

    async fn expire_machine_actions(
        &self,
        now: OffsetDateTime,
        timeout: time::Duration,
    ) -> Result<u64> {
        let rows = sqlx::query(
            "SELECT tenant_id, id FROM machine_actions WHERE status IN ($1, $2) AND last_update_date_time_utc <= $3 ORDER BY seq",
        )
        .bind(ActionStatus::Pending.as_str())
        .bind(ActionStatus::InProgress.as_str())
        .bind(now.checked_sub(timeout).map_or(i64::MIN, to_micros))
        .fetch_all(&self.pool)
        .await?;
        let ctx = AuditContext::system("action-expiry");
        let mut expired = 0;
        for row in rows {
            let tenant = parse_tenant_id(&row.try_get::<String, _>("tenant_id")?)?;
            let id: String = row.try_get("id")?;
            let due = |a: &MachineAction| a.deadline(timeout).is_some_and(|d| d <= now);
            let changed =
                change_action(self, Some(&ctx), tenant, &id, ActionEvent::Expire, now, due).await?;
            // The agent may have finished it in between: then it was not due any more.
            if changed.is_some_and(|(_, changed)| changed) {
                expired += 1;
            }
        }
        Ok(expired)
    }
}
