//! [`Store`] on SQLite or PostgreSQL through sqlx's `Any` driver.

use crate::error::{Result, StoreError};
use crate::sql::Dialect;
use crate::{Collection, Page, SigningKey, Store};
use async_trait::async_trait;
use rampart_core::alert::Alert;
use rampart_core::app::App;
use rampart_core::audit::{AuditContext, AuditEntry};
use rampart_core::odata::QueryOptions;
use rampart_core::tenant::Tenant;
use rampart_core::timefmt::{from_micros, to_micros};
use rampart_core::{ClientId, Permission, TenantId};
use serde::Serialize;
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Row};
use std::sync::Once;
use std::time::Duration;
use time::OffsetDateTime;

/// The SQL implementation of [`Store`].
#[derive(Clone, Debug)]
pub struct SqlStore {
    pub(crate) pool: AnyPool,
    pub(crate) dialect: Dialect,
}

/// Rows per multi-row INSERT: below SQLite's and PostgreSQL's bound-parameter limits.
const INSERT_CHUNK: usize = 500;

impl SqlStore {
    /// Opens (creating if needed) the store at `url` and applies pending migrations.
    ///
    /// `sqlite://PATH` opens a file in WAL mode; `postgres://…` a PostgreSQL database (its
    /// `options` parameter may set a `search_path`).
    pub async fn connect(url: &str) -> Result<SqlStore> {
        static DRIVERS: Once = Once::new();
        DRIVERS.call_once(sqlx::any::install_default_drivers);

        let (dialect, url) = if let Some(rest) = url.strip_prefix("sqlite:") {
            // Make the file on first start; keep an explicit mode the caller gave.
            let mut u = format!("sqlite:{rest}");
            if !rest.contains("mode=") {
                u.push_str(if rest.contains('?') {
                    "&mode=rwc"
                } else {
                    "?mode=rwc"
                });
            }
            (Dialect::Sqlite, u)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            (Dialect::Postgres, url.to_owned())
        } else {
            return Err(StoreError::UnsupportedUrl(url.to_owned()));
        };

        let options = AnyPoolOptions::new().acquire_timeout(Duration::from_secs(10));
        let options = match dialect {
            Dialect::Sqlite => options.max_connections(8).after_connect(|conn, _meta| {
                Box::pin(async move {
                    use sqlx::Executor;
                    // WAL lets readers run beside the single writer; NORMAL sync is durable
                    // across process crashes and loses at most the last commit on power loss.
                    conn.execute("PRAGMA journal_mode = WAL").await?;
                    conn.execute("PRAGMA synchronous = NORMAL").await?;
                    conn.execute("PRAGMA busy_timeout = 10000").await?;
                    conn.execute("PRAGMA foreign_keys = ON").await?;
                    Ok(())
                })
            }),
            Dialect::Postgres => options.max_connections(16),
        };
        let pool = options
            .connect(&url)
            .await
            .map_err(|source| StoreError::Connect {
                url: redact(&url),
                source,
            })?;
        crate::migrate::run(&pool, dialect).await?;
        Ok(SqlStore { pool, dialect })
    }
}

/// The URL without its password, for error messages and logs.
fn redact(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.find(':') {
                Some(c) => format!("{}{}:***{}", &url[..s + 3], &creds[..c], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

fn now_micros() -> i64 {
    to_micros(OffsetDateTime::now_utc())
}

fn to_json<T: Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(|e| StoreError::Corrupt(format!("cannot encode JSON: {e}")))
}

/// What one audit entry says about a change.
struct Change<'a> {
    tenant: TenantId,
    action: &'a str,
    entity_type: &'a str,
    entity_id: &'a str,
    before: Option<serde_json::Value>,
    after: Option<serde_json::Value>,
}

/// Writes the audit entry of a change inside the change's transaction.
async fn record(
    conn: &mut sqlx::AnyConnection,
    ctx: &AuditContext,
    change: Change<'_>,
) -> Result<()> {
    let time = OffsetDateTime::now_utc();
    let entry = AuditEntry {
        // The entry's id is its `seq`, assigned by the database and filled in when read.
        id: 0,
        tenant_id: change.tenant,
        time,
        actor: ctx.actor.clone(),
        action: change.action.to_owned(),
        entity_type: change.entity_type.to_owned(),
        entity_id: change.entity_id.to_owned(),
        before: change.before,
        after: change.after,
        correlation_id: ctx.correlation_id.clone(),
    };
    sqlx::query(
        "INSERT INTO audit (tenant_id, time, action, entity_type, entity_id, actor_id, correlation_id, body) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(change.tenant.to_string())
    .bind(to_micros(time))
    .bind(change.action)
    .bind(change.entity_type)
    .bind(change.entity_id)
    .bind(ctx.actor.id.as_str())
    .bind(ctx.correlation_id.as_str())
    .bind(to_json(&entry)?)
    .execute(conn)
    .await?;
    Ok(())
}

fn parse_tenant_id(s: &str) -> Result<TenantId> {
    s.parse()
        .map_err(|_| StoreError::Corrupt(format!("tenant id '{s}' is not a GUID")))
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
impl Store for SqlStore {
    fn dialect(&self) -> Dialect {
        self.dialect
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

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
        if let Err(sqlx::Error::Database(e)) = &inserted {
            if e.is_unique_violation() {
                return Err(StoreError::Conflict(
                    "a default tenant exists already".into(),
                ));
            }
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

    async fn insert_alerts(
        &self,
        ctx: &AuditContext,
        tenant: TenantId,
        alerts: &[Alert],
    ) -> Result<()> {
        if alerts.is_empty() {
            return Ok(());
        }
        let tenant_text = tenant.to_string();
        let mut tx = self.pool.begin().await?;
        for chunk in alerts.chunks(INSERT_CHUNK) {
            let mut b = crate::sql::SqlBuilder::new(self.dialect);
            b.push(
                "INSERT INTO alerts (tenant_id, id, alert_creation_time, last_update_time, first_event_time, \
                 last_event_time, incident_id, investigation_id, assigned_to, detection_source, status, severity, \
                 category, machine_id, body) VALUES ",
            );
            for (i, a) in chunk.iter().enumerate() {
                use crate::sql::SqlValue::{Int, Null, Text};
                let time = |t: Option<OffsetDateTime>| t.map(|t| Int(to_micros(t))).unwrap_or(Null);
                let int = |v: Option<i64>| v.map(Int).unwrap_or(Null);
                let text = |v: &Option<String>| v.clone().map(Text).unwrap_or(Null);
                b.push(if i == 0 { "(" } else { ", (" });
                let values = [
                    Text(tenant_text.clone()),
                    Text(a.id.clone()),
                    time(a.alert_creation_time),
                    time(a.last_update_time),
                    time(a.first_event_time),
                    time(a.last_event_time),
                    int(a.incident_id),
                    int(a.investigation_id),
                    text(&a.assigned_to),
                    Text(a.detection_source.clone()),
                    Text(a.status.as_str().to_owned()),
                    Text(a.severity.as_str().to_owned()),
                    Text(a.category.clone()),
                    text(&a.machine_id),
                    Text(to_json(a)?),
                ];
                for (j, v) in values.into_iter().enumerate() {
                    if j > 0 {
                        b.push(", ");
                    }
                    b.push_param(v);
                }
                b.push(")");
            }
            let done = b.query().execute(&mut *tx).await;
            if let Err(sqlx::Error::Database(e)) = &done {
                if e.is_unique_violation() {
                    return Err(StoreError::Conflict(
                        "an alert with one of these ids exists already".into(),
                    ));
                }
            }
            done?;
        }
        // One entry per batch: a fleet raises alerts in the thousands, and the entry names them.
        let ids: Vec<&str> = alerts.iter().take(100).map(|a| a.id.as_str()).collect();
        let entity_id = if alerts.len() == 1 {
            alerts[0].id.clone()
        } else {
            format!("{} alerts", alerts.len())
        };
        let after = serde_json::json!({ "count": alerts.len(), "ids": ids });
        record(
            &mut tx,
            ctx,
            Change {
                tenant,
                action: "Create",
                entity_type: "Alert",
                entity_id: &entity_id,
                before: None,
                after: Some(after),
            },
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn get_alert(&self, tenant: TenantId, id: &str) -> Result<Option<String>> {
        Ok(
            sqlx::query_scalar("SELECT body FROM alerts WHERE tenant_id = $1 AND id = $2")
                .bind(tenant.to_string())
                .bind(id)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    async fn list(
        &self,
        tenant: TenantId,
        collection: Collection,
        query: &QueryOptions,
    ) -> Result<Page> {
        crate::list::list_page(self, tenant, collection, query).await
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn redacts_passwords() {
        assert_eq!(
            super::redact("postgres://u:secret@h/db"),
            "postgres://u:***@h/db"
        );
        assert_eq!(super::redact("postgres://u@h/db"), "postgres://u@h/db");
    }
}
