//! The audit record: who changed what, when, and how the entity looked before and after.

use crate::ids::TenantId;
use crate::odata::{EntitySet, Field, FieldType};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// Who made a change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Actor {
    /// `App` (an OAuth2 client), `User` (a delegated caller) or `System` (the CLI, the server itself).
    pub kind: ActorKind,
    /// The app's client id, the user's name, or the system component.
    pub id: String,
    pub name: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub enum ActorKind {
    App,
    User,
    System,
}

impl Actor {
    pub fn system(component: &str) -> Actor {
        Actor {
            kind: ActorKind::System,
            id: component.to_owned(),
            name: None,
        }
    }
}

/// A state change about to be recorded, passed to every mutating store call.
#[derive(Clone, Debug)]
pub struct AuditContext {
    pub actor: Actor,
    /// The request's correlation id (`target` of error bodies, `x-correlation-id` header).
    pub correlation_id: String,
}

impl AuditContext {
    pub fn system(component: &str) -> AuditContext {
        AuditContext {
            actor: Actor::system(component),
            correlation_id: uuid::Uuid::new_v4().to_string(),
        }
    }
}

/// One recorded change, as `GET /api/audit` returns it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditEntry {
    /// Monotonic per server; also the order entries were written in.
    pub id: i64,
    #[schema(value_type = String)]
    pub tenant_id: TenantId,
    #[serde(with = "crate::timefmt::required")]
    #[schema(value_type = String, format = DateTime)]
    pub time: OffsetDateTime,
    pub actor: Actor,
    /// e.g. `Create`, `Update`, `Delete`, `RotateSecret`.
    pub action: String,
    /// e.g. `App`, `Alert`, `Tenant`.
    pub entity_type: String,
    pub entity_id: String,
    pub before: Option<serde_json::Value>,
    pub after: Option<serde_json::Value>,
    pub correlation_id: String,
}

pub static AUDIT: EntitySet = EntitySet {
    name: "AuditEntries",
    fields: &[
        Field::new("time", FieldType::DateTime).not_null(),
        Field::new("action", FieldType::String).not_null(),
        Field::new("entityType", FieldType::String).not_null(),
        Field::new("entityId", FieldType::String).not_null(),
        Field::new("actorId", FieldType::String).not_null(),
        Field::new("correlationId", FieldType::String).not_null(),
    ],
    expand: &[],
};
