//! Incidents and automated investigations.

use crate::SqlStore;
use crate::document::{Document, text, time};
use crate::error::Result;
use crate::machines::Change;
use crate::sql::SqlValue;
use async_trait::async_trait;
use rampart_core::TenantId;
use rampart_core::audit::AuditContext;
use rampart_core::correlation::{CorrelationPolicy, CorrelationReason, Entity};
use rampart_core::incident::{INCIDENTS, Incident};
use rampart_core::investigation::{INVESTIGATIONS, Investigation};
use rampart_core::signal::SharingPolicy;

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
    /// The entities the alerts of these incidents link by, by incident.
    async fn incident_entities(
        &self,
        tenant: TenantId,
        incidents: &[i64],
    ) -> Result<Vec<(i64, Entity)>>;
    /// How the tenant correlates alerts into incidents (the default until one is set).
    async fn correlation_policy(&self, tenant: TenantId) -> Result<CorrelationPolicy>;
    /// Sets it; alerts stored from now on are correlated by it.
    async fn set_correlation_policy(
        &self,
        ctx: &AuditContext,
        tenant: TenantId,
        policy: &CorrelationPolicy,
    ) -> Result<()>;
    /// What the tenant shares when something is known malicious (the default until one is set).
    async fn signal_sharing_policy(&self, tenant: TenantId) -> Result<SharingPolicy>;
    async fn set_signal_sharing_policy(
        &self,
        ctx: &AuditContext,
        tenant: TenantId,
        policy: &SharingPolicy,
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

    async fn incident_entities(
        &self,
        tenant: TenantId,
        incidents: &[i64],
    ) -> Result<Vec<(i64, Entity)>> {
        let mut conn = self.pool.acquire().await?;
        crate::correlate::incident_entities(&mut conn, tenant, incidents).await
    }

    async fn correlation_policy(&self, tenant: TenantId) -> Result<CorrelationPolicy> {
        self.setting(tenant, &crate::settings::CORRELATION).await
    }

    async fn set_correlation_policy(
        &self,
        ctx: &AuditContext,
        tenant: TenantId,
        policy: &CorrelationPolicy,
    ) -> Result<()> {
        self.put_setting(ctx, tenant, &crate::settings::CORRELATION, policy)
            .await
    }

    async fn signal_sharing_policy(&self, tenant: TenantId) -> Result<SharingPolicy> {
        self.setting(tenant, &crate::settings::SIGNAL_SHARING).await
    }

    async fn set_signal_sharing_policy(
        &self,
        ctx: &AuditContext,
        tenant: TenantId,
        policy: &SharingPolicy,
    ) -> Result<()> {
        self.put_setting(ctx, tenant, &crate::settings::SIGNAL_SHARING, policy)
            .await
    }
}
