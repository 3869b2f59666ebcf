//! Signal sharing, the rules: what an alert known to be malicious turns into — a tenant-wide
//! indicator for each of its malicious entities (file hashes, remote public addresses, URLs),
//! blocking, alerting, and expiring after the tenant's sharing period. (`rampart-respond`
//! stores them and starts the retro-hunts.)

use crate::alert::{Alert, Classification, Determination, Severity};
use crate::indicator::{IndicatorAction, IndicatorRequest, IndicatorType, RequestedAction};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// How long a shared indicator lives unless renewed.
pub const DEFAULT_SHARING_DAYS: u32 = 30;
/// The longest a tenant may have shared indicators live.
pub const MAX_SHARING_DAYS: u32 = 365;

/// What a tenant shares (`/api/signalsharingpolicy`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SharingPolicy {
    /// Off: verdicts share nothing.
    pub enabled: bool,
    /// How long shared indicators live.
    pub expiry_days: u32,
    /// The indicator types shared: `FileSha256`/`FileSha1` (as one: files), `IpAddress`, `Url`.
    #[schema(value_type = Vec<String>)]
    pub types: Vec<IndicatorType>,
}

impl Default for SharingPolicy {
    fn default() -> Self {
        SharingPolicy {
            enabled: true,
            expiry_days: DEFAULT_SHARING_DAYS,
            types: vec![
                IndicatorType::FileSha256,
                IndicatorType::FileSha1,
                IndicatorType::IpAddress,
                IndicatorType::Url,
            ],
        }
    }
}

impl SharingPolicy {
    pub fn check(&self) -> Result<(), crate::Rejection> {
        let bad = |m: String| crate::Rejection::new(crate::ErrorCode::InvalidRequestBody, m);
        if self.expiry_days == 0 || self.expiry_days > MAX_SHARING_DAYS {
            return Err(bad(format!("expiryDays: 1 to {MAX_SHARING_DAYS}")));
        }
        if let Some(t) = self.types.iter().find(|t| {
            !matches!(
                t,
                IndicatorType::FileSha256
                    | IndicatorType::FileSha1
                    | IndicatorType::IpAddress
                    | IndicatorType::Url
            )
        }) {
            return Err(bad(format!(
                "types: {} is not shared; use FileSha256, FileSha1, IpAddress, Url",
                t.as_str()
            )));
        }
        Ok(())
    }

    fn shares(&self, t: IndicatorType) -> bool {
        self.types.contains(&t)
    }
}

/// Who the shared indicators name as their source.
pub const SOURCE_NAME: &str = "Rampart signal sharing";

/// What a shared indicator names as its origin: the alert or investigation that found the
/// entity malicious.
#[derive(Clone, Debug)]
pub struct Origin {
    /// E.g. `alert da123…` or `investigation 7`.
    pub label: String,
    pub title: String,
    /// The indicators' `externalId`, one per origin.
    pub external_id: String,
    pub severity: Severity,
}

/// What a shared indicator of `kind` does: files are blocked and remediated, addresses and
/// URLs blocked.
pub fn shared_action(kind: IndicatorType) -> IndicatorAction {
    match kind {
        IndicatorType::FileSha256 | IndicatorType::FileSha1 | IndicatorType::FileMd5 => {
            IndicatorAction::BlockAndRemediate
        }
        _ => IndicatorAction::Block,
    }
}

/// The request that shares one malicious entity under `policy`: blocking (see
/// [`shared_action`]), alerting (so a sighting anywhere raises an alert, and a retro-hunt
/// looks back), expiring after the policy's days. `None` when sharing is off or the policy
/// does not share the type.
pub fn entity_request(
    kind: IndicatorType,
    value: &str,
    origin: &Origin,
    why: &str,
    now: OffsetDateTime,
    policy: &SharingPolicy,
) -> Option<IndicatorRequest> {
    let value = value.trim();
    if !policy.enabled || value.is_empty() || !policy.shares(kind) {
        return None;
    }
    let severity = match origin.severity {
        Severity::UnSpecified | Severity::Informational => Severity::Medium,
        s => s,
    };
    Some(IndicatorRequest {
        indicator_value: Some(value.to_owned()),
        indicator_type: Some(kind),
        action: Some(RequestedAction::Current(shared_action(kind))),
        title: Some(format!("Malicious {} from {}", kind.as_str(), origin.label)),
        description: Some(format!(
            "{SOURCE_NAME}: {why} {} \"{}\".",
            capitalized(&origin.label),
            origin.title
        )),
        application: None,
        external_id: Some(origin.external_id.clone()),
        expiration_time: Some(now + time::Duration::days(i64::from(policy.expiry_days))),
        severity: Some(severity),
        recommended_actions: None,
        rbac_group_names: None,
        rbac_group_ids: None,
        generate_alert: Some(true),
        educate_url: None,
        allow_internal: None,
    })
}

fn capitalized(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

/// Whether an analyst's verdict on an alert makes its entities known malicious: a true
/// positive that is malware.
pub fn verdict_is_malicious(alert: &Alert) -> bool {
    alert.classification == Some(Classification::TruePositive)
        && alert.determination == Some(Determination::Malware)
}

/// The indicator requests the malicious entities of `alert` become under `policy`: files
/// blocked and remediated, remote addresses and URLs blocked; all alerting (so a sighting
/// anywhere raises an alert, and a retro-hunt looks back), expiring after the policy's days.
/// Private and other internal addresses are left out: blocking them tenant-wide could cut
/// devices off their own network (the indicator rules refuse them anyway).
pub fn indicator_requests(
    alert: &Alert,
    why: &str,
    now: OffsetDateTime,
    policy: &SharingPolicy,
) -> Vec<IndicatorRequest> {
    let mut out: Vec<IndicatorRequest> = Vec::new();
    if !policy.enabled {
        return out;
    }
    let origin = Origin {
        label: format!("alert {}", alert.id),
        title: alert.title.clone(),
        external_id: format!("rampart-signal:{}", alert.id),
        severity: alert.severity,
    };
    let mut add = |kind: IndicatorType, value: &str| {
        let value = value.trim();
        if out.iter().any(|r| {
            r.indicator_type == Some(kind)
                && r.indicator_value
                    .as_deref()
                    .is_some_and(|v| v.eq_ignore_ascii_case(value))
        }) {
            return;
        }
        out.extend(entity_request(kind, value, &origin, why, now, policy));
    };
    for e in &alert.evidence {
        match (&e.sha256, &e.sha1) {
            (Some(h), _) if h.len() == 64 => add(IndicatorType::FileSha256, h),
            (_, Some(h)) if h.len() == 40 => add(IndicatorType::FileSha1, h),
            _ => {}
        }
        if let Some(ip) = e.ip_address.as_deref().filter(|_| !e.names_device())
            && ip
                .trim()
                .parse::<std::net::IpAddr>()
                .is_ok_and(|a| !crate::indicator::is_internal_ip(a))
        {
            add(IndicatorType::IpAddress, ip);
        }
        if let Some(url) = &e.url {
            add(IndicatorType::Url, url);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::Evidence;

    #[test]
    fn a_malware_verdict_blocks_files_public_addresses_and_urls() {
        let now = OffsetDateTime::UNIX_EPOCH;
        let mut a = crate::alert::synthetic(1, crate::TenantId::new_random(), now, 1);
        a.severity = Severity::Informational;
        a.evidence = vec![
            Evidence {
                entity_type: "File".into(),
                sha256: Some("ab".repeat(32)),
                sha1: Some("cd".repeat(20)),
                ..Default::default()
            },
            Evidence {
                entity_type: "File".into(),
                sha1: Some("ef".repeat(20)),
                ..Default::default()
            },
            Evidence {
                entity_type: "Device".into(),
                ip_address: Some("203.0.113.9".into()),
                ..Default::default()
            },
            Evidence {
                entity_type: "Ip".into(),
                ip_address: Some("198.51.100.7".into()),
                ..Default::default()
            },
            Evidence {
                entity_type: "Ip".into(),
                ip_address: Some("10.1.2.3".into()),
                ..Default::default()
            },
            Evidence {
                entity_type: "Url".into(),
                url: Some("https://c2.evil.example/beacon".into()),
                ..Default::default()
            },
        ];
        assert!(!verdict_is_malicious(&a));
        a.classification = Some(Classification::TruePositive);
        a.determination = Some(Determination::Malware);
        assert!(verdict_is_malicious(&a));
        let policy = SharingPolicy::default();
        let got: Vec<(IndicatorType, String, bool)> = indicator_requests(&a, "why.", now, &policy)
            .into_iter()
            .map(|r| {
                assert_eq!(r.severity, Some(Severity::Medium));
                assert_eq!(r.generate_alert, Some(true));
                assert_eq!(r.expiration_time, Some(now + time::Duration::days(30)));
                let blocks_files =
                    r.action == Some(RequestedAction::Current(IndicatorAction::BlockAndRemediate));
                (
                    r.indicator_type.unwrap(),
                    r.indicator_value.unwrap(),
                    blocks_files,
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                (IndicatorType::FileSha256, "ab".repeat(32), true),
                (IndicatorType::FileSha1, "ef".repeat(20), true),
                (IndicatorType::IpAddress, "198.51.100.7".into(), false),
                (
                    IndicatorType::Url,
                    "https://c2.evil.example/beacon".into(),
                    false
                ),
            ]
        );
        // The policy decides what, how long, and whether at all.
        let files_for_a_week = SharingPolicy {
            expiry_days: 7,
            types: vec![IndicatorType::FileSha256],
            ..SharingPolicy::default()
        };
        let got = indicator_requests(&a, "why.", now, &files_for_a_week);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].indicator_type, Some(IndicatorType::FileSha256));
        assert_eq!(got[0].expiration_time, Some(now + time::Duration::days(7)));
        let off = SharingPolicy {
            enabled: false,
            ..SharingPolicy::default()
        };
        assert!(indicator_requests(&a, "why.", now, &off).is_empty());
        assert!(
            SharingPolicy {
                types: vec![IndicatorType::DomainName],
                ..SharingPolicy::default()
            }
            .check()
            .is_err()
        );
        assert!(SharingPolicy::default().check().is_ok());
    }
}
