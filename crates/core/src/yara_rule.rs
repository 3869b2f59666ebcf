//! YARA rule sets (Rampart's own resource, `/api/yararules`): the tenant's signatures that
//! agents' antivirus scans look for beside the blocked file hashes. A set is one YARA source
//! text, which may hold many rules; whether it compiles is checked by the API before it is
//! stored (that needs the YARA engine, which this crate does not carry).

use crate::Rejection;
use crate::error::ErrorCode;
use crate::odata::{EntitySet, Field, FieldType};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// Longest rule-set name.
pub const MAX_NAME_LEN: usize = 200;
/// Longest source text: rule sets go to every agent with each change.
pub const MAX_SOURCE_BYTES: usize = 1 << 20;

/// A YARA rule set.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct YaraRuleSet {
    /// A number as a string, given by the server.
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    /// The YARA source; `include` is not allowed.
    pub source: String,
    /// The names of the rules in the source (set by the server).
    pub rule_names: Vec<String>,
    pub created_by: String,
    #[serde(with = "crate::timefmt::required")]
    #[schema(value_type = String, format = DateTime)]
    pub created_date_time: OffsetDateTime,
    pub last_modified_by: String,
    #[serde(with = "crate::timefmt::required")]
    #[schema(value_type = String, format = DateTime)]
    pub last_modified_date_time: OffsetDateTime,
}

impl YaraRuleSet {
    /// Checks what needs no YARA engine: a name, and a source of a size agents can take.
    pub fn check_shape(&self) -> Result<(), Rejection> {
        let name = self.name.trim();
        if name.is_empty() || name.chars().count() > MAX_NAME_LEN {
            return Err(Rejection::new(
                ErrorCode::InvalidRequestBody,
                format!("name: 1 to {MAX_NAME_LEN} characters"),
            ));
        }
        if self.source.trim().is_empty() {
            return Err(Rejection::new(
                ErrorCode::InvalidRequestBody,
                "source: the YARA source text is empty",
            ));
        }
        if self.source.len() > MAX_SOURCE_BYTES {
            return Err(Rejection::new(
                ErrorCode::InvalidRequestBody,
                format!(
                    "source: {} bytes, at most {MAX_SOURCE_BYTES}",
                    self.source.len()
                ),
            ));
        }
        Ok(())
    }
}

pub static YARA_RULE_SETS: EntitySet = EntitySet {
    name: "YaraRuleSets",
    fields: &[
        Field::new("id", FieldType::String).not_null(),
        Field::new("name", FieldType::String).not_null(),
        Field::new("createdDateTime", FieldType::DateTime).not_null(),
        Field::new("lastModifiedDateTime", FieldType::DateTime).not_null(),
    ],
    expand: &[],
};
