//! Enrollment: how an agent becomes a known device of a tenant.
//!
//! An administrator creates an [`EnrollmentToken`] for a tenant; the token's secret (shown once,
//! `rpe_…`) is baked into the agent's installation. On first start the agent presents it and
//! receives a device id and a device secret (`rpd_…`), which authenticate everything it sends
//! afterwards. The token may be limited in uses and in time, and revoked; revoking it stops new
//! enrollments but leaves the devices it enrolled in place.

use crate::ids::TenantId;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// The prefix of an enrollment token's secret, so that a leaked one is recognisable (secret
/// scanners, logs) and cannot be mistaken for a device secret.
pub const ENROLLMENT_TOKEN_PREFIX: &str = "rpe_";

/// The prefix of a device secret.
pub const DEVICE_SECRET_PREFIX: &str = "rpd_";

/// Longest enrollment token name.
pub const MAX_NAME_LEN: usize = 200;

/// An enrollment token as stored and listed; its secret is never part of it (the store keeps
/// only the secret's hash).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EnrollmentToken {
    /// The token's public id (a GUID), which names it in the API and the audit log.
    pub id: String,
    #[schema(value_type = String)]
    pub tenant_id: TenantId,
    pub name: String,
    #[serde(with = "crate::timefmt::required")]
    #[schema(value_type = String, format = DateTime)]
    pub created_time: OffsetDateTime,
    /// After this time the token enrolls no more devices; never when null.
    #[serde(with = "crate::timefmt::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_time: Option<OffsetDateTime>,
    /// How many devices the token may enroll; unlimited when null.
    pub max_uses: Option<i64>,
    /// How many devices it has enrolled.
    pub uses: i64,
    pub revoked: bool,
}

impl EnrollmentToken {
    /// Whether the token would enroll one more device at `now`.
    pub fn is_usable(&self, now: OffsetDateTime) -> bool {
        !self.revoked
            && self.expires_time.is_none_or(|t| t > now)
            && self.max_uses.is_none_or(|m| self.uses < m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usability_follows_revocation_expiry_and_uses() {
        let now = OffsetDateTime::now_utc();
        let mut t = EnrollmentToken {
            id: "x".into(),
            tenant_id: TenantId::new_random(),
            name: "n".into(),
            created_time: now,
            expires_time: None,
            max_uses: None,
            uses: 5,
            revoked: false,
        };
        assert!(t.is_usable(now));
        t.max_uses = Some(5);
        assert!(!t.is_usable(now));
        t.max_uses = Some(6);
        t.expires_time = Some(now);
        assert!(!t.is_usable(now));
        t.expires_time = Some(now + time::Duration::hours(1));
        assert!(t.is_usable(now));
        t.revoked = true;
        assert!(!t.is_usable(now));
    }

    #[test]
    fn json_is_camel_case_with_mde_times() {
        let t = EnrollmentToken {
            id: "x".into(),
            tenant_id: TenantId::new_random(),
            name: "n".into(),
            created_time: OffsetDateTime::UNIX_EPOCH,
            expires_time: None,
            max_uses: Some(3),
            uses: 0,
            revoked: false,
        };
        let v = serde_json::to_value(&t).unwrap();
        assert_eq!(v["createdTime"], "1970-01-01T00:00:00Z");
        assert_eq!(v["maxUses"], 3);
        assert!(v["expiresTime"].is_null());
        assert!(v.get("tenantId").is_some());
    }
}
