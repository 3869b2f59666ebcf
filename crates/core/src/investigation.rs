//! Automated investigations (reference §5.1): the resource and its state. The engine that runs
//! them is a later capability; here an investigation is created `Queued`.

use crate::alert::InvestigationState;
use crate::odata::{EntitySet, Field, FieldType};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Investigation {
    /// A number as a string, e.g. `"63004"`.
    pub id: String,
    #[serde(with = "crate::timefmt::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub start_time: Option<OffsetDateTime>,
    #[serde(with = "crate::timefmt::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub end_time: Option<OffsetDateTime>,
    pub cancelled_by: Option<String>,
    pub state: InvestigationState,
    pub status_details: Option<String>,
    pub machine_id: Option<String>,
    pub computer_dns_name: Option<String>,
    pub triggering_alert_id: Option<String>,
    /// Who asked for it and why (Rampart): `startInvestigation`'s requestor and `Comment`.
    pub requestor: Option<String>,
    pub requestor_comment: Option<String>,
}

pub static INVESTIGATIONS: EntitySet = EntitySet {
    name: "Investigations",
    fields: &[
        Field::new("id", FieldType::String).not_null(),
        Field::new("startTime", FieldType::DateTime),
        Field::new("state", FieldType::Enum(InvestigationState::VARIANTS)).not_null(),
        Field::new("machineId", FieldType::String),
        Field::new("triggeringAlertId", FieldType::String),
    ],
    expand: &[],
};
