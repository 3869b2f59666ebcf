//! Automated investigations as the investigator works them, and the action center's
//! remediation actions.
//!
//! An investigation is queued in the transaction that stores its alert (see
//! [`queue_for_alert`]; or the alert joins its machine's investigation that is still queued),
//! so no alert of a machine whose group allows automation is ever left uninvestigated,
//! whichever path raised it; the investigator (`rampart-respond`) picks queued
//! ones up by state, across tenants.

use crate::SqlStore;
use crate::document::{Document, decode, time as time_column};
use crate::error::{Result, StoreError};
use crate::machines::Change;
use crate::sql::SqlValue;
use async_trait::async_trait;
use rampart_core::TenantId;
use rampart_core::alert::{Alert, AlertStatus, InvestigationState};
use rampart_core::audit::AuditContext;
use rampart_core::investigation::Investigation;
use rampart_core::machine::{AutomationLevel, UNGROUPED_AUTOMATION};
use rampart_core::machine_action::{ActionStatus, ActionType, MachineAction};
use rampart_core::remediation::{REMEDIATION_ACTIONS, RemediationAction, RemediationStatus};
use sqlx::Row;
use time::OffsetDateTime;

impl Document for RemediationAction {
    const TABLE: &'static str = "remediation_actions";
    const ENTITY: &'static str = "RemediationAction";
    const KEY_COLUMN: &'static str = "id";
    const SET: &'static rampart_core::odata::EntitySet = &REMEDIATION_ACTIONS;

    fn key(&self) -> String {
        self.id.clone()
    }

    fn columns(&self) -> Vec<(&'static str, SqlValue)> {
        vec![
            (
                "investigation_id",
                SqlValue::Text(self.investigation_id.clone()),
            ),
            ("machine_id", SqlValue::Text(self.machine_id.clone())),
            (
                "action_type",
                SqlValue::Text(self.action_type.as_str().into()),
            ),
            ("status", SqlValue::Text(self.status.as_str().into())),
            ("created_time", time_column(Some(self.created_time))),
        ]
    }
}

#[async_trait]
pub trait InvestigationStore: Send + Sync {
    async fn update_investigation(
        &self,
        ctx: &AuditContext,
        tenant: TenantId,
        id: &str,
        action: &str,
        change: Change<'_, Investigation>,
    ) -> Result<Option<Investigation>>;
    /// Investigations of any tenant in one of `states`, oldest first.
    async fn investigations_in(
        &self,
        states: &[InvestigationState],
        limit: u32,
    ) -> Result<Vec<(TenantId, Investigation)>>;
    /// The automation level of a machine's device group; `None` when the machine is unknown.
    async fn automation_level(
        &self,
        tenant: TenantId,
        machine_id: &str,
    ) -> Result<Option<AutomationLevel>>;
    /// The newest alerts of a machine that are not resolved, newest first: what an
    /// investigation an analyst started on the machine looks into.
    async fn open_alerts_of_machine(
        &self,
        tenant: TenantId,
        machine_id: &str,
        limit: u32,
    ) -> Result<Vec<Alert>>;
    /// The alerts an investigation looks into (the one that queued it and those that joined
    /// it while it waited), oldest first.
    async fn alerts_of_investigation(
        &self,
        tenant: TenantId,
        investigation_id: i64,
        limit: u32,
    ) -> Result<Vec<Alert>>;
    /// Stores new remediation actions, giving each the tenant's next id.
    async fn create_remediation_actions(
        &self,
        ctx: &AuditContext,
        tenant: TenantId,
        actions: Vec<RemediationAction>,
    ) -> Result<Vec<RemediationAction>>;
    async fn get_remediation_action(
        &self,
        tenant: TenantId,
        id: &str,
    ) -> Result<Option<RemediationAction>>;
    async fn update_remediation_action(
        &self,
        ctx: &AuditContext,
        tenant: TenantId,
        id: &str,
        action: &str,
        change: Change<'_, RemediationAction>,
    ) -> Result<Option<RemediationAction>>;
    /// The remediation actions of one investigation, in the order they were proposed.
    async fn remediation_actions_of(
        &self,
        tenant: TenantId,
        investigation_id: &str,
    ) -> Result<Vec<RemediationAction>>;
    /// The newest remediation actions of a machine (at most `limit`), newest first.
    async fn remediation_actions_of_machine(
        &self,
        tenant: TenantId,
        machine_id: &str,
        limit: u32,
    ) -> Result<Vec<RemediationAction>>;
    /// Pending and running remediation actions of any tenant, oldest first.
    async fn open_remediation_actions(
        &self,
        limit: u32,
    ) -> Result<Vec<(TenantId, RemediationAction)>>;
    /// How many machines the tenant has: the fleet a file's prevalence is measured against.
    async fn machine_count(&self, tenant: TenantId) -> Result<u64>;
    /// The quarantines and restores asked of a machine that were not cancelled and did not
    /// fail, newest first (500 at most), as (SHA-1, type, status): what automation must not
    /// repeat or undo.
    async fn quarantine_history(
        &self,
        tenant: TenantId,
        machine_id: &str,
    ) -> Result<Vec<(String, ActionType, ActionStatus)>>;
}

fn tenant_of(row: &sqlx::any::AnyRow) -> Result<TenantId> {
    let t: String = row.try_get("tenant_id")?;
    t.parse()
        .map_err(|_| StoreError::Corrupt(format!("tenant id '{t}'")))
}

async fn automation_level_on(
    conn: &mut sqlx::AnyConnection,
    tenant: TenantId,
    machine_id: &str,
) -> Result<Option<AutomationLevel>> {
    let row = sqlx::query(
        "SELECT g.automation_level AS level FROM machines m LEFT JOIN machine_groups g \
         ON g.tenant_id = m.tenant_id AND g.id = m.rbac_group_id \
         WHERE m.tenant_id = $1 AND m.id = $2",
    )
    .bind(tenant.to_string())
    .bind(machine_id.to_ascii_lowercase())
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let level: Option<String> = row.try_get("level")?;
    Ok(Some(match level {
        Some(l) => l
            .parse()
            .map_err(|e| StoreError::Corrupt(format!("automation level: {e}")))?,
        None => UNGROUPED_AUTOMATION,
    }))
}

/// Queues an automated investigation of a new alert when its machine is known and its group's
/// automation level lets investigations run, and links the alert to it (`investigationId`,
/// `investigationState`). Runs in the transaction that stores the alert.
pub(crate) async fn queue_for_alert(
    conn: &mut sqlx::AnyConnection,
    ctx: &AuditContext,
    tenant: TenantId,
    alert: &mut Alert,
    now: OffsetDateTime,
) -> Result<()> {
    let Some(machine) = alert.machine_id.clone() else {
        return Ok(());
    };
    if alert.investigation_id.is_some() || alert.status == AlertStatus::Resolved {
        return Ok(());
    }
    match automation_level_on(conn, tenant, &machine).await? {
        None | Some(AutomationLevel::NoAutomatedResponse) => return Ok(()),
        Some(_) => {}
    }
    if let Some(id) = join_queued(conn, tenant, &machine).await? {
        alert.investigation_id = Some(id);
        alert.investigation_state = Some(InvestigationState::Queued);
        return Ok(());
    }
    let id = crate::counters::reserve(conn, tenant, "investigation", 1).await?;
    let mut inv = Investigation::queued(&machine, alert.computer_dns_name.clone(), now);
    inv.id = id.to_string();
    inv.triggering_alert_id = Some(alert.id.clone());
    inv.requestor = Some("Automated investigation".into());
    crate::document::insert(conn, ctx, tenant, std::slice::from_ref(&inv)).await?;
    alert.investigation_id = Some(id);
    alert.investigation_state = Some(InvestigationState::Queued);
    Ok(())
}

/// The machine's investigation that is still `Queued`, if any, taken for an alert to join: as
/// MDE adds a device's new alerts to its ongoing investigation, one analysis then covers the
/// burst of alerts an attack raises on a device instead of one analysis each (an indicator
/// feed's hits raised 79 alerts on 13 devices in the ingestion benchmark). Only a queued one:
/// a running analysis has read its alerts already. Its version moves, which orders the join
/// against the investigator's claim: a claim that commits first leaves the investigation
/// `Running` and no row here, so the alert gets an investigation of its own; a claim that
/// comes second reads again and finds the alert.
async fn join_queued(
    conn: &mut sqlx::AnyConnection,
    tenant: TenantId,
    machine_id: &str,
) -> Result<Option<i64>> {
    let queued = InvestigationState::Queued.as_str();
    let id: Option<String> = sqlx::query_scalar(
        "UPDATE investigations SET row_version = row_version + 1 \
         WHERE seq = (SELECT max(seq) FROM investigations \
                      WHERE tenant_id = $1 AND machine_id = $2 AND state = $3) \
         AND state = $3 RETURNING id",
    )
    .bind(tenant.to_string())
    .bind(machine_id)
    .bind(queued)
    .fetch_optional(&mut *conn)
    .await?;
    id.map(|id| {
        id.parse()
            .map_err(|_| StoreError::Corrupt(format!("investigation id '{id}'")))
    })
    .transpose()
}

impl SqlStore {
    /// Documents of any tenant whose `column` holds one of `states`, oldest first.
    async fn in_states<D: Document>(
        &self,
        column: &str,
        states: impl Iterator<Item = &'static str>,
        limit: u32,
    ) -> Result<Vec<(TenantId, D)>> {
        let states: Vec<&'static str> = states.collect();
        // `IN ()` is not SQL: no state asked for, no document.
        if states.is_empty() {
            return Ok(Vec::new());
        }
        let mut b = crate::sql::SqlBuilder::new(self.dialect);
        b.push("SELECT tenant_id, body FROM ")
            .push(D::TABLE)
            .push(" WHERE ")
            .push(column)
            .push(" IN ")
            .push_list(states.into_iter().map(|s| SqlValue::Text(s.into())))
            .push(" ORDER BY seq LIMIT ")
            .push_param(SqlValue::Int(i64::from(limit)));
        let rows = b.query().fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| Ok((tenant_of(r)?, decode(&r.try_get::<String, _>("body")?)?)))
            .collect()
    }
}

#[async_trait]
impl InvestigationStore for SqlStore {
    async fn update_investigation(
        &self,
        ctx: &AuditContext,
        tenant: TenantId,
        id: &str,
        action: &str,
        mut change: Change<'_, Investigation>,
    ) -> Result<Option<Investigation>> {
        self.update_doc::<Investigation>(ctx, tenant, id, action, |i| change(i))
            .await
    }

    async fn investigations_in(
        &self,
        states: &[InvestigationState],
        limit: u32,
    ) -> Result<Vec<(TenantId, Investigation)>> {
        self.in_states("state", states.iter().map(|s| s.as_str()), limit)
            .await
    }

    async fn automation_level(
        &self,
        tenant: TenantId,
        machine_id: &str,
    ) -> Result<Option<AutomationLevel>> {
        let mut conn = self.pool.acquire().await?;
        automation_level_on(&mut conn, tenant, machine_id).await
    }

    async fn open_alerts_of_machine(
        &self,
        tenant: TenantId,
        machine_id: &str,
        limit: u32,
    ) -> Result<Vec<Alert>> {
        let rows: Vec<String> = sqlx::query_scalar(
            "SELECT body FROM alerts WHERE tenant_id = $1 AND machine_id = $2 AND status <> $3 ORDER BY seq DESC LIMIT $4",
        )
        .bind(tenant.to_string())
        .bind(machine_id.to_ascii_lowercase())
        .bind(AlertStatus::Resolved.as_str())
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|b| decode(b)).collect()
    }

    async fn alerts_of_investigation(
        &self,
        tenant: TenantId,
        investigation_id: i64,
        limit: u32,
    ) -> Result<Vec<Alert>> {
        let rows: Vec<String> = sqlx::query_scalar(
            "SELECT body FROM alerts WHERE tenant_id = $1 AND investigation_id = $2 ORDER BY seq LIMIT $3",
        )
        .bind(tenant.to_string())
        .bind(investigation_id)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|b| decode(b)).collect()
    }

    async fn create_remediation_actions(
        &self,
        ctx: &AuditContext,
        tenant: TenantId,
        mut actions: Vec<RemediationAction>,
    ) -> Result<Vec<RemediationAction>> {
        if actions.is_empty() {
            return Ok(actions);
        }
        let mut tx = self.pool.begin().await?;
        let n = i64::try_from(actions.len()).unwrap_or(i64::MAX);
        let first = crate::counters::reserve(&mut tx, tenant, "remediation", n).await?;
        for (a, id) in actions.iter_mut().zip(first..) {
            a.id = id.to_string();
        }
        crate::document::insert(&mut tx, ctx, tenant, &actions).await?;
        tx.commit().await?;
        Ok(actions)
    }

    async fn get_remediation_action(
        &self,
        tenant: TenantId,
        id: &str,
    ) -> Result<Option<RemediationAction>> {
        self.get_doc::<RemediationAction>(tenant, id).await
    }

    async fn update_remediation_action(
        &self,
        ctx: &AuditContext,
        tenant: TenantId,
        id: &str,
        action: &str,
        mut change: Change<'_, RemediationAction>,
    ) -> Result<Option<RemediationAction>> {
        self.update_doc::<RemediationAction>(ctx, tenant, id, action, |a| change(a))
            .await
    }

    async fn remediation_actions_of(
        &self,
        tenant: TenantId,
        investigation_id: &str,
    ) -> Result<Vec<RemediationAction>> {
        let rows: Vec<String> = sqlx::query_scalar(
            "SELECT body FROM remediation_actions WHERE tenant_id = $1 AND investigation_id = $2 ORDER BY seq",
        )
        .bind(tenant.to_string())
        .bind(investigation_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|b| decode(b)).collect()
    }

    async fn remediation_actions_of_machine(
        &self,
        tenant: TenantId,
        machine_id: &str,
        limit: u32,
    ) -> Result<Vec<RemediationAction>> {
        let rows: Vec<String> = sqlx::query_scalar(
            "SELECT body FROM remediation_actions WHERE tenant_id = $1 AND machine_id = $2 ORDER BY seq DESC LIMIT $3",
        )
        .bind(tenant.to_string())
        .bind(machine_id)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|b| decode(b)).collect()
    }

    async fn machine_count(&self, tenant: TenantId) -> Result<u64> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM machines WHERE tenant_id = $1")
            .bind(tenant.to_string())
            .fetch_one(&self.pool)
            .await?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn quarantine_history(
        &self,
        tenant: TenantId,
        machine_id: &str,
    ) -> Result<Vec<(String, ActionType, ActionStatus)>> {
        let rows: Vec<String> = sqlx::query_scalar(
            "SELECT body FROM machine_actions WHERE tenant_id = $1 AND machine_id = $2 \
             AND type IN ($3, $4) AND status NOT IN ($5, $6) ORDER BY seq DESC LIMIT 500",
        )
        .bind(tenant.to_string())
        .bind(machine_id.to_ascii_lowercase())
        .bind(ActionType::StopAndQuarantineFile.as_str())
        .bind(ActionType::RestoreQuarantinedFile.as_str())
        .bind(ActionStatus::Cancelled.as_str())
        .bind(ActionStatus::Failed.as_str())
        .fetch_all(&self.pool)
        .await?;
        let mut history = Vec::new();
        for body in &rows {
            let action: MachineAction = decode(body)?;
            if let Some(h) = action.sha1() {
                history.push((h.to_ascii_lowercase(), action.action_type, action.status()));
            }
        }
        Ok(history)
    }

    async fn open_remediation_actions(
        &self,
        limit: u32,
    ) -> Result<Vec<(TenantId, RemediationAction)>> {
        let open = [
            RemediationStatus::PendingApproval,
            RemediationStatus::Running,
        ];
        self.in_states("status", open.iter().map(|s| s.as_str()), limit)
            .await
    }
}
