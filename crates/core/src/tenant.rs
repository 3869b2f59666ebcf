//! Tenants: the unit of isolation. Every stored entity belongs to exactly one.

use crate::ids::TenantId;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tenant {
    pub id: TenantId,
    pub name: String,
    /// The tenant created on first start, which `rampart demo` and flag-less commands use.
    pub is_default: bool,
    #[serde(with = "crate::timefmt::required")]
    pub created_time: OffsetDateTime,
}
