//! Incidents and automated investigations.

use crate::SqlStore;
use crate::document::{Document, text, time};
use crate::error::Result;
use crate::machines::Change;
use crate::sql::SqlValue;
use async_trait::async_trait;
use rampart_core::TenantId;
use rampart_core::audit::AuditContext;
use rampart_core::correlation::{CorrelationPolicy, CorrelationReason};
use rampart_core::incident::{INCIDENTS, Incident};
use rampart_core::investigation::{INVESTIGATIONS, Investigation};

impl Document for Incident {
    const TABLE: &'static str = "incidents";
    const ENTITY: &'static str = "Incident";
    const KEY_COLUMN: &'static str = "incident_key";
    const SET: &'static rampart_core::odata::EntitySet = &INCIDENTS;

    fn key(&self) -> String {
        self.incident_id.to_string()
    }

    fn columns(&self) -> Vec<(&'static str, SqlValue)> {
        vec![
            ("incident_id", SqlValue::Int(self.incident_id)),
            ("created_time", time(Some(self.created_time))),
            ("last_update_time", time(Some(self.last_update_time))),
            ("status", SqlValue::Text(self.status.as_str().into())),
            ("assigned_to", text(&self.assigned_to)),
            ("severity", SqlValue::Text(self.severity.as_str().into())),
        ]
    }
}

impl Document for Investigation {
    const TABLE: &'static str = "investigations";
    const ENTITY: &'static str = "Investigation";
    const KEY_COLUMN: &'static str = "id";
    const SET: &'static rampart_core::odata::EntitySet = &INVESTIGATIONS;

    fn key(&self) -> String {
        self.id.clone()
    }

    fn columns(&self) -> Vec<(&'static str, SqlValue)> {
        vec![
            ("start_time", time(self.start_time)),
            ("state", SqlValue::Text(self.state.as_str().into())),
            ("machine_id", text(&self.machine_id)),
            ("triggering_alert_id", text(&self.triggering_alert_id)),
        ]
    }
}

#[async_trait]
pub trait IncidentStore: Send + Sync {
    async fn get_incident(&self, tenant: TenantId, id: i64) -> Result<Option<Incident>>;
    async fn update_incident(
        &self,
        ctx: &AuditContext,
        tenant: TenantId,
        id: i64,
        change: Change<'_, Incident>,
    ) -> Result<Option<Incident>>;
    /// Stores a new investigation, giving it the tenant's next id.
    async fn create_investigation(
        &self,
        ctx: &AuditContext,
        tenant: TenantId,
        investigation: Investigation,
    ) -> Result<Investigation>;
    async fn get_investigation(&self, tenant: TenantId, id: &str) -> Result<Option<Investigation>>;
    /// Why each alert of these incidents is in it, by incident, in the order they came.
    async fn correlation_reasons(
        &self,
        tenant: TenantId,
        incidents: &[i64],
    ) -> Result<Vec<(i64, CorrelationReason)>>;
    /// How the tenant correlates alerts into incidents (the default until one is set).
    async fn correlation_policy(&self, tenant: TenantId) -> Result<CorrelationPolicy>;
    /// Sets it; alerts stored from now on are correlated by it.
    async fn set_correlation_policy(
        &self,
        ctx: &AuditContext,
        tenant: TenantId,
        policy: &CorrelationPolicy,
    ) -> Result<()>;
}

#[async_trait]
impl IncidentStore for SqlStore {
    async fn get_incident(&self, tenant: TenantId, id: i64) -> Result<Option<Incident>> {
        self.get_doc::<Incident>(tenant, &id.to_string()).await
    }

    async fn update_incident(
        &self,
        ctx: &AuditContext,
        tenant: TenantId,
        id: i64,
        mut change: Change<'_, Incident>,
    ) -> Result<Option<Incident>> {
        self.update_doc::<Incident>(ctx, tenant, &id.to_string(), "Update", |i| change(i))
            .await
    }

    async fn create_investigation(
        &self,
        ctx: &AuditContext,
        tenant: TenantId,
        mut investigation: Investigation,
    ) -> Result<Investigation> {
        let mut tx = self.pool.begin().await?;
        investigation.id = crate::counters::reserve(&mut tx, tenant, "investigation", 1)
            .await?
            .to_string();
        crate::document::insert(&mut tx, ctx, tenant, std::slice::from_ref(&investigation)).await?;
        tx.commit().await?;
        Ok(investigation)
    }

    async fn get_investigation(&self, tenant: TenantId, id: &str) -> Result<Option<Investigation>> {
        self.get_doc::<Investigation>(tenant, id).await
    }

    async fn correlation_reasons(
        &self,
        tenant: TenantId,
        incidents: &[i64],
    ) -> Result<Vec<(i64, CorrelationReason)>> {
        let mut conn = self.pool.acquire().await?;
        crate::correlate::reasons(&mut conn, tenant, incidents).await
    }

    async fn correlation_policy(&self, tenant: TenantId) -> Result<CorrelationPolicy> {
        let mut conn = self.pool.acquire().await?;
        crate::correlate::policy(&mut conn, tenant).await
    }

    async fn set_correlation_policy(
        &self,
        ctx: &AuditContext,
        tenant: TenantId,
        policy: &CorrelationPolicy,
    ) -> Result<()> {
        let mut tx = self.write_tx().await?;
        let before = crate::correlate::policy(&mut tx, tenant).await?;
        let body = crate::util::to_json(policy)?;
        sqlx::query("DELETE FROM correlation_policies WHERE tenant_id = $1")
            .bind(tenant.to_string())
            .execute(&mut *tx)
            .await?;
        sqlx::query("INSERT INTO correlation_policies (tenant_id, body) VALUES ($1, $2)")
            .bind(tenant.to_string())
            .bind(body)
            .execute(&mut *tx)
            .await?;
        crate::audit::record(
            &mut tx,
            ctx,
            crate::audit::Change {
                tenant,
                action: "Update",
                entity_type: "CorrelationPolicy",
                entity_id: &tenant.to_string(),
                before: serde_json::to_value(&before).ok(),
                after: serde_json::to_value(policy).ok(),
            },
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }
}
