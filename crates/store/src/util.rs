//! Small conversions shared by the store's modules.

use crate::error::{Result, StoreError};
use rampart_core::TenantId;
use rampart_core::timefmt::to_micros;
use serde::Serialize;
use time::OffsetDateTime;

pub(crate) fn now_micros() -> i64 {
    to_micros(OffsetDateTime::now_utc())
}

pub(crate) fn to_json<T: Serialize + ?Sized>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(|e| StoreError::Corrupt(format!("cannot encode JSON: {e}")))
}

pub(crate) fn parse_tenant_id(s: &str) -> Result<TenantId> {
    s.parse()
        .map_err(|_| StoreError::Corrupt(format!("tenant id '{s}' is not a GUID")))
}

/// Whether a database error is a unique-constraint violation.
pub(crate) fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}
