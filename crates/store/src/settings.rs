//! Per-tenant settings: one JSON document per name in `tenant_settings`, the default until a
//! tenant sets one. Changes are audited like any other.

use crate::SqlStore;
use crate::error::{Result, StoreError};
use rampart_core::TenantId;
use rampart_core::audit::AuditContext;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// A setting: its name in the table and the entity type its audit entries name.
pub(crate) struct Setting {
    pub name: &'static str,
    pub entity: &'static str,
}

pub(crate) const CORRELATION: Setting = Setting {
    name: "correlation",
    entity: "CorrelationPolicy",
};

pub(crate) const SIGNAL_SHARING: Setting = Setting {
    name: "signal-sharing",
    entity: "SignalSharingPolicy",
};

/// The tenant's value of `setting`, or the default.
pub(crate) async fn get<T: DeserializeOwned + Default>(
    conn: &mut sqlx::AnyConnection,
    tenant: TenantId,
    setting: &Setting,
) -> Result<T> {
    let body: Option<String> =
        sqlx::query_scalar("SELECT body FROM tenant_settings WHERE tenant_id = $1 AND name = $2")
            .bind(tenant.to_string())
            .bind(setting.name)
            .fetch_optional(&mut *conn)
            .await?;
    match body {
        None => Ok(T::default()),
        Some(b) => serde_json::from_str(&b)
            .map_err(|e| StoreError::Corrupt(format!("setting {}: {e}", setting.name))),
    }
}

impl SqlStore {
    /// Sets the tenant's value of `setting`, with its audit entry.
    pub(crate) async fn put_setting<T: Serialize + DeserializeOwned + Default>(
        &self,
        ctx: &AuditContext,
        tenant: TenantId,
        setting: &Setting,
        value: &T,
    ) -> Result<()> {
        let mut tx = self.write_tx().await?;
        let before: T = get(&mut tx, tenant, setting).await?;
        sqlx::query("DELETE FROM tenant_settings WHERE tenant_id = $1 AND name = $2")
            .bind(tenant.to_string())
            .bind(setting.name)
            .execute(&mut *tx)
            .await?;
        sqlx::query("INSERT INTO tenant_settings (tenant_id, name, body) VALUES ($1, $2, $3)")
            .bind(tenant.to_string())
            .bind(setting.name)
            .bind(crate::util::to_json(value)?)
            .execute(&mut *tx)
            .await?;
        crate::audit::record(
            &mut tx,
            ctx,
            crate::audit::Change {
                tenant,
                action: "Update",
                entity_type: setting.entity,
                entity_id: &tenant.to_string(),
                before: serde_json::to_value(&before).ok(),
                after: serde_json::to_value(value).ok(),
            },
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The tenant's value of `setting`, or the default.
    pub(crate) async fn setting<T: DeserializeOwned + Default>(
        &self,
        tenant: TenantId,
        setting: &Setting,
    ) -> Result<T> {
        let mut conn = self.pool.acquire().await?;
        get(&mut conn, tenant, setting).await
    }
}
