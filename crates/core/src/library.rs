//! The live response library (MDE's `/api/libraryfiles`): the scripts and files a live response
//! session may put on a device (`PutFile`) or run there (`RunScript`). Only files in the library
//! can reach a device this way, so what runs on endpoints is what someone with
//! `Library.Manage` uploaded — and, because a command is bound to the library file's SHA-256
//! when it is handed to the agent, exactly those bytes.

use crate::Rejection;
use crate::error::ErrorCode;
use crate::odata::{EntitySet, Field, FieldType};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// Largest library file (MDE's limit for live response uploads).
pub const MAX_FILE_BYTES: u64 = 250 << 20;
/// Longest description or parameters description.
pub const MAX_DESCRIPTION_LEN: usize = 4096;

/// A file of the live response library, in MDE's shape.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LibraryFile {
    /// The name commands use (`FileName`, `ScriptName`); unique per tenant, ignoring case.
    pub file_name: String,
    /// SHA-256 of the content, lower-case hex.
    pub sha256: String,
    pub description: Option<String>,
    #[serde(with = "crate::timefmt::required")]
    #[schema(value_type = String, format = DateTime)]
    pub creation_time: OffsetDateTime,
    #[serde(with = "crate::timefmt::required")]
    #[schema(value_type = String, format = DateTime)]
    pub last_updated_time: OffsetDateTime,
    pub created_by: String,
    /// Whether the script takes arguments (`Args` of `RunScript`).
    pub has_parameters: bool,
    pub parameters_description: Option<String>,
    /// Size of the content in bytes (Rampart's own).
    pub size: u64,
}

impl LibraryFile {
    /// The key the name is unique by: names are compared ignoring ASCII case, as MDE does.
    pub fn key(&self) -> String {
        name_key(&self.file_name)
    }
}

/// The key of a library file name.
pub fn name_key(name: &str) -> String {
    name.to_ascii_lowercase()
}

/// Checks a library file name: a plain name, no path, at most 255 bytes. `what` names the
/// field in the error.
pub fn check_file_name(what: &str, v: &str) -> Result<(), Rejection> {
    if v.is_empty()
        || v.len() > 255
        || v.contains(['/', '\\', '\0'])
        || v == "."
        || v == ".."
        || v.chars().any(char::is_control)
    {
        return Err(Rejection::new(
            ErrorCode::InvalidInput,
            format!(
                "{what} must be the name of a file in the live response library (no path, no control characters, 1 to 255 bytes); got '{}'",
                v.chars().take(60).collect::<String>()
            ),
        ));
    }
    Ok(())
}

pub static LIBRARY_FILES: EntitySet = EntitySet {
    name: "LibraryFiles",
    fields: &[
        Field::new("fileName", FieldType::String).not_null(),
        Field::new("sha256", FieldType::String).not_null(),
        Field::new("creationTime", FieldType::DateTime).not_null(),
        Field::new("lastUpdatedTime", FieldType::DateTime).not_null(),
    ],
    expand: &[],
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_plain_names() {
        for ok in ["collect.sh", "Get-Info.ps1", "a b.txt", ".hidden"] {
            assert!(check_file_name("FileName", ok).is_ok(), "{ok}");
        }
        let long = "x".repeat(256);
        for bad in ["", ".", "..", "a/b", "..\\x", "a\0b", "a\nb", long.as_str()] {
            assert!(check_file_name("FileName", bad).is_err(), "{bad:?}");
        }
        assert_eq!(name_key("Collect.SH"), "collect.sh");
    }
}
