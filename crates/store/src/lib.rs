//! Rampart's state store.
//!
//! All durable state except telemetry — tenants, apps, signing keys, alerts, machines,
//! indicators, machine actions, incidents, automated investigations and their remediation
//! actions, custom detection rules, YARA rule sets, enrollment
//! tokens and device credentials, the audit log — sits behind the [`Store`] trait.
//! [`SqlStore`] implements it for SQLite (the embedded default: one file in the data dir, WAL
//! mode) and PostgreSQL (scale-out); the same statements run on both because values are always
//! bound as `$N` parameters and the few dialect differences live in [`sql::Dialect`].
//!
//! `Store` is one trait made of one part per resource (`TenantStore`, `AlertStore`, …), each
//! declared and implemented in its own module. Resources are kept as documents ([`document`]):
//! the MDE JSON plus the columns OData filters on. Collections are read through one OData-driven
//! [`Store::list`] with keyset paging, so every resource pages the same way.
//!
//! Every mutating call takes an [`AuditContext`](rampart_core::audit::AuditContext) and writes its
//! audit entry in the same transaction as the change: there is no change without its record.

mod actions;
mod alerts;
mod audit;
mod bell;
mod correlate;
mod counters;
mod detection_rules;
mod devices;
pub mod document;
mod error;
mod generations;
mod incidents;
mod indicators;
mod investigations;
mod library;
mod list;
mod machines;
mod migrate;
pub mod odata_sql;
mod settings;
pub mod sql;
mod sql_store;
mod tenants;
mod util;
mod yara_rules;

pub use actions::ActionStore;
pub use alerts::AlertStore;
pub use bell::ActionBell;
pub use detection_rules::{DetectionHit, DetectionRuleStore};
pub use devices::DeviceStore;
pub use error::{Result, StoreError};
pub use incidents::IncidentStore;
pub use indicators::IndicatorStore;
pub use investigations::InvestigationStore;
pub use library::{LibraryPut, LibraryStore};
pub use machines::MachineStore;
pub use sql::Dialect;
pub use sql_store::SqlStore;
pub use tenants::{SigningKey, TenantStore};
pub use yara_rules::YaraRuleStore;

use async_trait::async_trait;
use rampart_core::TenantId;
use rampart_core::odata::{EntitySet, Filter, QueryOptions};

/// A collection that [`Store::list`] can page through: a table and what OData may use on it.
#[derive(Clone, Copy, Debug)]
pub struct Collection {
    pub table: &'static str,
    pub set: &'static EntitySet,
    /// A field whose equality filters an index on a hash of the value serves.
    pub hashed: Option<document::HashedField>,
}

impl Collection {
    /// The collection of a document type.
    pub const fn of<D: document::Document>() -> Collection {
        Collection {
            table: D::TABLE,
            set: D::SET,
            hashed: D::HASHED,
        }
    }

    /// The audit log.
    pub const AUDIT: Collection = Collection {
        table: "audit",
        set: &rampart_core::audit::AUDIT,
        hashed: None,
    };
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

/// The state store.
#[async_trait]
pub trait Store:
    TenantStore
    + AlertStore
    + MachineStore
    + IndicatorStore
    + ActionStore
    + IncidentStore
    + InvestigationStore
    + DeviceStore
    + DetectionRuleStore
    + YaraRuleStore
    + LibraryStore
    + Send
    + Sync
    + 'static
{
    fn dialect(&self) -> Dialect;

    /// Succeeds when the database answers (for `/readyz`).
    async fn ping(&self) -> Result<()>;

    /// One page of a collection of one tenant, as the checked OData options ask. `scope`, when
    /// given, is ANDed to the client's filter (e.g. "only the caller's own indicators").
    async fn list(
        &self,
        tenant: TenantId,
        collection: Collection,
        query: &QueryOptions,
        scope: Option<&Filter>,
    ) -> Result<Page>;
}

/// The store traits, for `use rampart_store::prelude::*` where a `dyn Store` is called.
pub mod prelude {
    pub use crate::{
        ActionStore, AlertStore, DetectionRuleStore, DeviceStore, IncidentStore, IndicatorStore,
        InvestigationStore, LibraryStore, MachineStore, Store, TenantStore, YaraRuleStore,
    };
}
