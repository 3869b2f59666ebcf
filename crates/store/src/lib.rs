//! Rampart's state store.
//!
//! All durable state except telemetry — tenants, apps, signing keys, alerts, the audit log — sits
//! behind the [`Store`] trait. [`SqlStore`] implements it for SQLite (the embedded default: one
//! file in the data dir, WAL mode) and PostgreSQL (scale-out); the same statements run on both
//! because values are always bound as `$N` parameters and the few dialect differences live in
//! [`sql::Dialect`]. Collections are read through one OData-driven [`Store::list`] with keyset
//! paging, so every resource pages the same way.
//!
//! Every mutating call takes an [`AuditContext`](rampart_core::audit::AuditContext) and writes its
//! audit entry in the same transaction as the change: there is no change without its record.

mod error;
mod list;
mod migrate;
pub mod odata_sql;
pub mod sql;
mod sql_store;

pub use error::{Result, StoreError};
pub use sql::Dialect;
pub use sql_store::SqlStore;

use async_trait::async_trait;
use rampart_core::alert::Alert;
use rampart_core::app::App;
use rampart_core::audit::AuditContext;
use rampart_core::odata::{EntitySet, QueryOptions};
use rampart_core::tenant::Tenant;
use rampart_core::{ClientId, TenantId};
use time::OffsetDateTime;

/// A collection that [`Store::list`] can page through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Collection {
    Alerts,
    Audit,
}

impl Collection {
    pub fn table(self) -> &'static str {
        match self {
            Collection::Alerts => "alerts",
            Collection::Audit => "audit",
        }
    }

    pub fn entity_set(self) -> &'static EntitySet {
        match self {
            Collection::Alerts => &rampart_core::alert::ALERTS,
            Collection::Audit => &rampart_core::audit::AUDIT,
        }
    }
}

/// One row of a page: its insertion number and its stored JSON document.
#[derive(Clone, Debug, PartialEq)]
pub struct PageRow {
    pub seq: i64,
    pub body: String,
}

/// One page of a collection.
#[derive(Clone, Debug, PartialEq)]
pub struct Page {
    pub rows: Vec<PageRow>,
    /// The `$skiptoken` of the next page, when more rows match.
    pub next_token: Option<String>,
    /// All matching rows, when `$count=true` was asked.
    pub count: Option<i64>,
}

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

/// The state store.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    fn dialect(&self) -> Dialect;

    /// Succeeds when the database answers (for `/readyz`).
    async fn ping(&self) -> Result<()>;

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

    /// Stores new alerts (ids must be new in the tenant).
    async fn insert_alerts(
        &self,
        ctx: &AuditContext,
        tenant: TenantId,
        alerts: &[Alert],
    ) -> Result<()>;
    /// One alert's stored JSON.
    async fn get_alert(&self, tenant: TenantId, id: &str) -> Result<Option<String>>;

    /// One page of a collection of one tenant, as the checked OData options ask.
    async fn list(
        &self,
        tenant: TenantId,
        collection: Collection,
        query: &QueryOptions,
    ) -> Result<Page>;
}
