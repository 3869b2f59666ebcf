//! Application registrations: OAuth2 clients that authenticate with client credentials and carry
//! a fixed set of MDE permissions.

use crate::ids::{ClientId, TenantId};
use crate::permission::Permission;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct App {
    pub tenant_id: TenantId,
    pub client_id: ClientId,
    pub name: String,
    pub roles: Vec<Permission>,
    #[serde(with = "crate::timefmt::required")]
    pub created_time: OffsetDateTime,
    #[serde(with = "crate::timefmt::required")]
    pub secret_updated_time: OffsetDateTime,
}
