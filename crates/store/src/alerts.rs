//! Alerts, and the incident each new alert opens.

use crate::SqlStore;
use crate::document::{self, Document, int, text, time};
use crate::error::{Result, StoreError};
use crate::machines::Change;
use crate::sql::SqlValue;
use async_trait::async_trait;
use rampart_core::TenantId;
use rampart_core::alert::{ALERTS, Alert};
use rampart_core::audit::AuditContext;
use rampart_core::incident::Incident;
use time::OffsetDateTime;

/// The unique key of an imported alert: its product and its id there.
pub(crate) fn external_key(a: &Alert) -> Option<String> {
    a.external_id
        .as_ref()
        .map(|id| format!("{}\u{1f}{id}", a.detection_source))
}

impl Document for Alert {
    const TABLE: &'static str = "alerts";
    const ENTITY: &'static str = "Alert";
    const KEY_COLUMN: &'static str = "id";
    const SET: &'static rampart_core::odata::EntitySet = &ALERTS;

    fn key(&self) -> String {
        self.id.clone()
    }

    fn columns(&self) -> Vec<(&'static str, SqlValue)> {
        vec![
            ("alert_creation_time", time(self.alert_creation_time)),
            ("last_update_time", time(self.last_update_time)),
            ("first_event_time", time(self.first_event_time)),
            ("last_event_time", time(self.last_event_time)),
            ("incident_id", int(self.incident_id)),
            ("investigation_id", int(self.investigation_id)),
            ("assigned_to", text(&self.assigned_to)),
            (
                "detection_source",
                SqlValue::Text(self.detection_source.clone()),
            ),
            ("status", SqlValue::Text(self.status.as_str().to_owned())),
            (
                "severity",
                SqlValue::Text(self.severity.as_str().to_owned()),
            ),
            ("category", SqlValue::Text(self.category.clone())),
            ("machine_id", text(&self.machine_id)),
            ("external_key", text(&external_key(self))),
        ]
    }
}

#[async_trait]
pub trait AlertStore: Send + Sync {
    /// Stores new alerts (ids must be new in the tenant). Each alert without an incident is
    /// correlated into one, and each alert of a machine whose group allows automation gets a
    /// queued automated investigation, in the same transaction.
    async fn insert_alerts(
        &self,
        ctx: &AuditContext,
        tenant: TenantId,
        alerts: &[Alert],
    ) -> Result<Vec<Alert>>;
    /// One alert's stored JSON.
    async fn get_alert(&self, tenant: TenantId, id: &str) -> Result<Option<String>>;
    async fn get_alert_doc(&self, tenant: TenantId, id: &str) -> Result<Option<Alert>>;
    /// Applies a change to an alert (never losing a concurrent one) and lets its incident follow.
    async fn update_alert(
        &self,
        ctx: &AuditContext,
        tenant: TenantId,
        id: &str,
        action: &str,
        change: Change<'_, Alert>,
    ) -> Result<Option<Alert>>;
    /// The alerts of some incidents.
    async fn alerts_of_incidents(
        &self,
        tenant: TenantId,
        incident_ids: &[i64],
    ) -> Result<Vec<Alert>>;
    /// Stores an alert from another product, idempotently on (`detectionSource`, `externalId`):
    /// a re-sent alert widens the existing one (event times, event count: `Alert::absorb_resent`)
    /// instead of adding a second.
    /// Returns the stored alert and whether it was new.
    async fn import_alert(
        &self,
        ctx: &AuditContext,
        tenant: TenantId,
        alert: Alert,
    ) -> Result<(Alert, bool)>;
}

impl SqlStore {
    /// Lets an incident follow the current state of its alerts.
    pub(crate) async fn refresh_incident(
        &self,
        ctx: &AuditContext,
        tenant: TenantId,
        incident_id: i64,
    ) -> Result<()> {
        let alerts = self.alerts_of_incidents(tenant, &[incident_id]).await?;
        let now = OffsetDateTime::now_utc();
        self.update_doc::<Incident>(ctx, tenant, &incident_id.to_string(), "FollowAlerts", |i| {
            i.follow_alerts(&alerts, now);
            Ok(())
        })
        .await?;
        Ok(())
    }
}

#[async_trait]
impl AlertStore for SqlStore {
    async fn insert_alerts(
        &self,
        ctx: &AuditContext,
        tenant: TenantId,
        alerts: &[Alert],
    ) -> Result<Vec<Alert>> {
        let now = OffsetDateTime::now_utc();
        // A write transaction from the start: correlation reads, then writes, and what it
        // read must stay true until it commits.
        let mut tx = self.write_tx().await?;
        crate::correlate::lock_tenant(&mut tx, self.dialect, tenant).await?;
        let policy = crate::correlate::policy(&mut tx, tenant).await?;
        let mut stored = Vec::with_capacity(alerts.len());
        for a in alerts {
            let mut a = a.clone();
            crate::investigations::queue_for_alert(&mut tx, ctx, tenant, &mut a, now).await?;
            let a = if a.incident_id.is_some() {
                // Placed by the caller: stored and indexed where it says.
                document::insert(&mut tx, ctx, tenant, std::slice::from_ref(&a)).await?;
                let at = rampart_core::correlation::alert_time(&a).unwrap_or(now);
                let entities = rampart_core::correlation::entities(&a);
                crate::correlate::index(&mut tx, tenant, &a, &entities, at).await?;
                a
            } else {
                crate::correlate::place_and_insert(&mut tx, ctx, tenant, &policy, a, now).await?
            };
            stored.push(a);
        }
        tx.commit().await?;
        Ok(stored)
    }

    async fn get_alert(&self, tenant: TenantId, id: &str) -> Result<Option<String>> {
        self.get_doc_raw::<Alert>(tenant, id).await
    }

    async fn get_alert_doc(&self, tenant: TenantId, id: &str) -> Result<Option<Alert>> {
        self.get_doc::<Alert>(tenant, id).await
    }

    async fn update_alert(
        &self,
        ctx: &AuditContext,
        tenant: TenantId,
        id: &str,
        action: &str,
        mut change: Change<'_, Alert>,
    ) -> Result<Option<Alert>> {
        // Whether the alert links others changes only with a false-positive verdict given or
        // taken back; only then do its index rows change (not on every re-sighting).
        let mut linked_before = None;
        let updated = self
            .update_doc::<Alert>(ctx, tenant, id, action, |a| {
                linked_before = Some(rampart_core::correlation::links_others(a));
                change(a)
            })
            .await?;
        if let Some(alert) = &updated
            && linked_before != Some(rampart_core::correlation::links_others(alert))
        {
            let mut conn = self.pool.acquire().await?;
            crate::correlate::reindex(&mut conn, tenant, alert).await?;
        }
        if let Some(incident) = updated.as_ref().and_then(|a| a.incident_id) {
            self.refresh_incident(ctx, tenant, incident).await?;
        }
        Ok(updated)
    }

    async fn alerts_of_incidents(
        &self,
        tenant: TenantId,
        incident_ids: &[i64],
    ) -> Result<Vec<Alert>> {
        if incident_ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut b = crate::sql::SqlBuilder::new(self.dialect);
        b.push("SELECT body FROM alerts WHERE tenant_id = ")
            .push_param(SqlValue::Text(tenant.to_string()));
        b.push(" AND incident_id IN ")
            .push_list(incident_ids.iter().map(|id| SqlValue::Int(*id)))
            .push(" ORDER BY seq");
        let rows = b.query().fetch_all(&self.pool).await?;
        use sqlx::Row;
        rows.iter()
            .map(|r| {
                let body: String = r.try_get("body")?;
                serde_json::from_str(&body)
                    .map_err(|e| StoreError::Corrupt(format!("stored alert: {e}")))
            })
            .collect()
    }

    async fn import_alert(
        &self,
        ctx: &AuditContext,
        tenant: TenantId,
        alert: Alert,
    ) -> Result<(Alert, bool)> {
        let key = external_key(&alert)
            .ok_or_else(|| StoreError::Corrupt("an imported alert needs its external id".into()))?;
        for _ in 0..3 {
            let existing: Option<String> = sqlx::query_scalar(
                "SELECT id FROM alerts WHERE tenant_id = $1 AND external_key = $2",
            )
            .bind(tenant.to_string())
            .bind(key.as_str())
            .fetch_optional(&self.pool)
            .await?;
            if let Some(id) = existing {
                let resent = alert.clone();
                let updated = self
                    .update_alert(
                        ctx,
                        tenant,
                        &id,
                        "Reimport",
                        Box::new(move |a: &mut Alert| {
                            a.absorb_resent(&resent);
                            Ok(())
                        }),
                    )
                    .await?;
                if let Some(a) = updated {
                    return Ok((a, false));
                }
                continue;
            }
            match self
                .insert_alerts(ctx, tenant, std::slice::from_ref(&alert))
                .await
            {
                Ok(mut stored) => return Ok((stored.remove(0), true)),
                // Sent twice at once: the other copy won; answer with it.
                Err(StoreError::Conflict(_)) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(StoreError::Conflict(format!(
            "alert {key} is being imported concurrently; try again"
        )))
    }
}
