//! Alerts.

use crate::SqlStore;
use crate::document::{Document, int, text, time};
use crate::error::Result;
use crate::sql::SqlValue;
use async_trait::async_trait;
use rampart_core::TenantId;
use rampart_core::alert::{ALERTS, Alert};
use rampart_core::audit::AuditContext;

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
        ]
    }
}

#[async_trait]
pub trait AlertStore: Send + Sync {
    /// Stores new alerts (ids must be new in the tenant).
    async fn insert_alerts(
        &self,
        ctx: &AuditContext,
        tenant: TenantId,
        alerts: &[Alert],
    ) -> Result<()>;
    /// One alert's stored JSON.
    async fn get_alert(&self, tenant: TenantId, id: &str) -> Result<Option<String>>;
}

#[async_trait]
impl AlertStore for SqlStore {
    async fn insert_alerts(
        &self,
        ctx: &AuditContext,
        tenant: TenantId,
        alerts: &[Alert],
    ) -> Result<()> {
        self.insert_docs(ctx, tenant, alerts).await
    }

    async fn get_alert(&self, tenant: TenantId, id: &str) -> Result<Option<String>> {
        self.get_doc_raw::<Alert>(tenant, id).await
    }
}
