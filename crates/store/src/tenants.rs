//! Tenants, apps (OAuth2 clients) and token-signing keys.

use crate::SqlStore;
use crate::audit::{Change, record};
use crate::error::{Result, StoreError};
use crate::util::{now_micros, parse_tenant_id};
use async_trait::async_trait;
use rampart_core::app::App;
use rampart_core::audit::AuditContext;
use rampart_core::tenant::Tenant;
use rampart_core::timefmt::{from_micros, to_micros};
use rampart_core::{ClientId, Permission, TenantId};
use sqlx::Row;
use sqlx::any::AnyRow;
use time::OffsetDateTime;

/// A token-signing key of a tenant (ES256, P-256). The private half never leaves the store and
/// the server process.
#[derive(Clone, Debug, PartialEq)]
pub struct SigningKey {
    pub tenant_id: TenantId,
    pub kid: String,
    /// PKCS#8 PEM of the private key.
    pub private_pem: String,
    /// Base64url of the public point's coordinates, as a JWK publishes them.
    pub public_x: String,
    pub public_y: String,
    pub created_time: OffsetDateTime,
}

#[async_trait]
pub trait TenantStore: Send + Sync {
    /// Creates a tenant. Only one tenant may be the default.
    async fn create_tenant(
        &self,
        ctx: &AuditContext,
        name: &str,
        is_default: bool,
    ) -> Result<Tenant>;
    /// The default tenant, creating it (named `Default`) on first call.
    async fn ensure_default_tenant(&self) -> Result<Tenant>;
    async fn get_tenant(&self, id: TenantId) -> Result<Option<Tenant>>;
    async fn list_tenants(&self) -> Result<Vec<Tenant>>;

    /// Registers an app whose secret hash is `secret_hash` (an argon2 PHC string).
    async fn create_app(&self, ctx: &AuditContext, app: &App, secret_hash: &str) -> Result<()>;
    /// Apps of one tenant, or of all tenants.
    async fn list_apps(&self, tenant: Option<TenantId>) -> Result<Vec<App>>;
    /// An app and its secret hash, for the token endpoint.
    async fn app_credentials(
        &self,
        tenant: TenantId,
        client_id: ClientId,
    ) -> Result<Option<(App, String)>>;
    /// Replaces an app's secret hash; false when the app does not exist in that tenant.
    async fn set_app_secret(
        &self,
        ctx: &AuditContext,
        tenant: TenantId,
        client_id: ClientId,
        secret_hash: &str,
    ) -> Result<bool>;
    /// Deletes an app; false when it does not exist in that tenant.
    async fn delete_app(
        &self,
        ctx: &AuditContext,
        tenant: TenantId,
        client_id: ClientId,
    ) -> Result<bool>;

    async fn insert_signing_key(&self, ctx: &AuditContext, key: &SigningKey) -> Result<()>;
    /// Every tenant's signing keys, oldest first.
    async fn signing_keys(&self) -> Result<Vec<SigningKey>>;
}

fn tenant_from_row(row: &AnyRow) -> Result<Tenant> {
    Ok(Tenant {
        id: parse_tenant_id(&row.try_get::<String, _>("id")?)?,
        name: row.try_get("name")?,
        is_default: row.try_get::<i64, _>("is_default")? != 0,
        created_time: from_micros(row.try_get("created_time")?),
    })
}

fn app_from_row(row: &AnyRow) -> Result<App> {
    let roles: String = row.try_get("roles")?;
    let client: String = row.try_get("client_id")?;
    Ok(App {
        tenant_id: parse_tenant_id(&row.try_get::<String, _>("tenant_id")?)?,
        client_id: client
            .parse()
            .map_err(|_| StoreError::Corrupt(format!("client id '{client}' is not a GUID")))?,
        name: row.try_get("name")?,
        roles: roles
            .split(',')
            .filter(|r| !r.is_empty())
            .map(|r| {
                r.parse::<Permission>()
                    .map_err(|e| StoreError::Corrupt(e.to_string()))
            })
            .collect::<Result<_>>()?,
        created_time: from_micros(row.try_get("created_time")?),
        secret_updated_time: from_micros(row.try_get("secret_updated_time")?),
    })
}

fn roles_text(roles: &[Permission]) -> String {
    roles.iter().map(|r| r.name()).collect::<Vec<_>>().join(",")
}

const APP_COLUMNS: &str = "client_id, tenant_id, name, roles, created_time, secret_updated_time";

#[async_trait]
impl TenantStore for SqlStore {
    async fn create_tenant(
        &self,
        ctx: &AuditContext,
        name: &str,
        is_default: bool,
    ) -> Result<Tenant> {
        let tenant = Tenant {
            id: TenantId::new_random(),
            name: name.to_owned(),
            is_default,
            created_time: from_micros(now_micros()),
        };
        let mut tx = self.pool.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO tenants (id, name, is_default, created_time) VALUES ($1, $2, $3, $4)",
        )
        .bind(tenant.id.to_string())
        .bind(name)
        .bind(i64::from(is_default))
        .bind(to_micros(tenant.created_time))
        .execute(&mut *tx)
        .await;
        if let Err(sqlx::Error::Database(e)) = &inserted
            && e.is_unique_violation()
        {
            return Err(StoreError::Conflict(
                "a default tenant exists already".into(),
            ));
        }
        inserted?;
        let after = serde_json::to_value(&tenant).ok();
        let id = tenant.id.to_string();
        record(
            &mut tx,
            ctx,
            Change {
                tenant: tenant.id,
                action: "Create",
                entity_type: "Tenant",
                entity_id: &id,
                before: None,
                after,
            },
        )
        .await?;
        tx.commit().await?;
        Ok(tenant)
    }

    async fn ensure_default_tenant(&self) -> Result<Tenant> {
        let existing = sqlx::query(
            "SELECT id, name, is_default, created_time FROM tenants WHERE is_default = 1",
        )
        .fetch_optional(&self.pool)
        .await?;
        if let Some(row) = existing {
            return tenant_from_row(&row);
        }
        match self
            .create_tenant(&AuditContext::system("startup"), "Default", true)
            .await
        {
            // Another process created it between our read and our write.
            Err(StoreError::Conflict(_)) => {
                let row = sqlx::query(
                    "SELECT id, name, is_default, created_time FROM tenants WHERE is_default = 1",
                )
                .fetch_one(&self.pool)
                .await?;
                tenant_from_row(&row)
            }
            other => other,
        }
    }

    async fn get_tenant(&self, id: TenantId) -> Result<Option<Tenant>> {
        let row =
            sqlx::query("SELECT id, name, is_default, created_time FROM tenants WHERE id = $1")
                .bind(id.to_string())
                .fetch_optional(&self.pool)
                .await?;
        row.as_ref().map(tenant_from_row).transpose()
    }

    async fn list_tenants(&self) -> Result<Vec<Tenant>> {
        let rows = sqlx::query(
            "SELECT id, name, is_default, created_time FROM tenants ORDER BY created_time, id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(tenant_from_row).collect()
    }

    async fn create_app(&self, ctx: &AuditContext, app: &App, secret_hash: &str) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO apps (client_id, tenant_id, name, roles, secret_hash, created_time, secret_updated_time) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(app.client_id.to_string())
        .bind(app.tenant_id.to_string())
        .bind(app.name.as_str())
        .bind(roles_text(&app.roles))
        .bind(secret_hash)
        .bind(to_micros(app.created_time))
        .bind(to_micros(app.secret_updated_time))
        .execute(&mut *tx)
        .await?;
        let id = app.client_id.to_string();
        record(
            &mut tx,
            ctx,
            Change {
                tenant: app.tenant_id,
                action: "Create",
                entity_type: "App",
                entity_id: &id,
                before: None,
                after: serde_json::to_value(app).ok(),
            },
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn list_apps(&self, tenant: Option<TenantId>) -> Result<Vec<App>> {
        let rows = match tenant {
            Some(t) => {
                sqlx::query(&format!("SELECT {APP_COLUMNS} FROM apps WHERE tenant_id = $1 ORDER BY created_time, client_id"))
                    .bind(t.to_string())
                    .fetch_all(&self.pool)
                    .await?
            }
            None => sqlx::query(&format!("SELECT {APP_COLUMNS} FROM apps ORDER BY tenant_id, created_time, client_id"))
                .fetch_all(&self.pool)
                .await?,
        };
        rows.iter().map(app_from_row).collect()
    }

    async fn app_credentials(
        &self,
        tenant: TenantId,
        client_id: ClientId,
    ) -> Result<Option<(App, String)>> {
        let row = sqlx::query(&format!(
            "SELECT {APP_COLUMNS}, secret_hash FROM apps WHERE tenant_id = $1 AND client_id = $2"
        ))
        .bind(tenant.to_string())
        .bind(client_id.to_string())
        .fetch_optional(&self.pool)
        .await?;
        match row {
            None => Ok(None),
            Some(row) => Ok(Some((app_from_row(&row)?, row.try_get("secret_hash")?))),
        }
    }

    async fn set_app_secret(
        &self,
        ctx: &AuditContext,
        tenant: TenantId,
        client_id: ClientId,
        secret_hash: &str,
    ) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query("UPDATE apps SET secret_hash = $1, secret_updated_time = $2 WHERE tenant_id = $3 AND client_id = $4")
            .bind(secret_hash)
            .bind(now_micros())
            .bind(tenant.to_string())
            .bind(client_id.to_string())
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        let id = client_id.to_string();
        record(
            &mut tx,
            ctx,
            Change {
                tenant,
                action: "RotateSecret",
                entity_type: "App",
                entity_id: &id,
                before: None,
                after: None,
            },
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn delete_app(
        &self,
        ctx: &AuditContext,
        tenant: TenantId,
        client_id: ClientId,
    ) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query(&format!(
            "SELECT {APP_COLUMNS} FROM apps WHERE tenant_id = $1 AND client_id = $2"
        ))
        .bind(tenant.to_string())
        .bind(client_id.to_string())
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else { return Ok(false) };
        let before = serde_json::to_value(app_from_row(&row)?).ok();
        sqlx::query("DELETE FROM apps WHERE tenant_id = $1 AND client_id = $2")
            .bind(tenant.to_string())
            .bind(client_id.to_string())
            .execute(&mut *tx)
            .await?;
        let id = client_id.to_string();
        record(
            &mut tx,
            ctx,
            Change {
                tenant,
                action: "Delete",
                entity_type: "App",
                entity_id: &id,
                before,
                after: None,
            },
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn insert_signing_key(&self, ctx: &AuditContext, key: &SigningKey) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("INSERT INTO signing_keys (kid, tenant_id, private_pem, public_x, public_y, created_time) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(key.kid.as_str())
            .bind(key.tenant_id.to_string())
            .bind(key.private_pem.as_str())
            .bind(key.public_x.as_str())
            .bind(key.public_y.as_str())
            .bind(to_micros(key.created_time))
            .execute(&mut *tx)
            .await?;
        let after = serde_json::json!({ "kid": key.kid, "kty": "EC", "crv": "P-256", "x": key.public_x, "y": key.public_y });
        record(
            &mut tx,
            ctx,
            Change {
                tenant: key.tenant_id,
                action: "Create",
                entity_type: "SigningKey",
                entity_id: &key.kid,
                before: None,
                after: Some(after),
            },
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn signing_keys(&self) -> Result<Vec<SigningKey>> {
        let rows = sqlx::query("SELECT kid, tenant_id, private_pem, public_x, public_y, created_time FROM signing_keys ORDER BY created_time, kid")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                Ok(SigningKey {
                    tenant_id: parse_tenant_id(&row.try_get::<String, _>("tenant_id")?)?,
                    kid: row.try_get("kid")?,
                    private_pem: row.try_get("private_pem")?,
                    public_x: row.try_get("public_x")?,
                    public_y: row.try_get("public_y")?,
                    created_time: from_micros(row.try_get("created_time")?),
                })
            })
            .collect()
    }
}
