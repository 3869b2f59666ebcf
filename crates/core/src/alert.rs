//! The MDE alert entity (reference §1.1) and its enums.

use crate::odata::{EntitySet, Field, FieldType};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

#[allow(unused_imports)] // the path other modules may name the macro by
pub(crate) use crate::macros::string_enum;

string_enum!(
    /// Alert severity.
    Severity { UnSpecified, Informational, Low, Medium, High }
);
string_enum!(
    /// Alert status.
    AlertStatus { Unknown, New, InProgress, Resolved }
);
string_enum!(
    /// Analyst classification of an alert.
    Classification { TruePositive, InformationalExpectedActivity, FalsePositive }
);
string_enum!(
    /// Analyst determination of an alert; which values go with which classification is §1.2.
    Determination {
        MultiStagedAttack, MaliciousUserActivity, CompromisedUser, Malware, Phishing,
        UnwantedSoftware, SecurityTesting, LineOfBusinessApplication, ConfirmedUserActivity,
        Clean, InsufficientData, Other, Apt, SecurityPersonnel
    }
);
string_enum!(
    /// State of the automated investigation attached to an alert.
    InvestigationState {
        Unknown, Terminated, SuccessfullyRemediated, Benign, Failed, PartiallyRemediated, Running,
        PendingApproval, PendingResource, PartiallyInvestigated, TerminatedByUser,
        TerminatedBySystem, Queued, InnerFailure, PreexistingAlert, UnsupportedOs,
        UnsupportedAlertType, SuppressedAlert
    }
);

/// `relatedUser` of an alert.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RelatedUser {
    pub user_name: Option<String>,
    pub domain_name: Option<String>,
}

/// One analyst comment on an alert.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AlertComment {
    pub comment: String,
    pub created_by: Option<String>,
    #[serde(with = "crate::timefmt::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub created_time: Option<OffsetDateTime>,
}

/// One evidence entity of an alert (reference §1.3). Absent facts are `null`, as in MDE.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Evidence {
    pub entity_type: String,
    #[serde(with = "crate::timefmt::option", default)]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub evidence_creation_time: Option<OffsetDateTime>,
    pub sha1: Option<String>,
    pub sha256: Option<String>,
    pub file_name: Option<String>,
    pub file_path: Option<String>,
    pub process_id: Option<i64>,
    pub process_command_line: Option<String>,
    #[serde(with = "crate::timefmt::option", default)]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub process_creation_time: Option<OffsetDateTime>,
    pub parent_process_id: Option<i64>,
    #[serde(with = "crate::timefmt::option", default)]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub parent_process_creation_time: Option<OffsetDateTime>,
    pub parent_process_file_name: Option<String>,
    pub parent_process_file_path: Option<String>,
    pub ip_address: Option<String>,
    pub url: Option<String>,
    pub registry_key: Option<String>,
    pub registry_hive: Option<String>,
    pub registry_value_type: Option<String>,
    pub registry_value: Option<String>,
    pub account_name: Option<String>,
    pub domain_name: Option<String>,
    pub user_sid: Option<String>,
    pub aad_user_id: Option<String>,
    pub user_principal_name: Option<String>,
    pub detection_status: Option<String>,
}

impl Evidence {
    /// Whether this entity is the alert's device itself (whose address is its own, not a
    /// remote peer's).
    pub fn names_device(&self) -> bool {
        ["Device", "Machine"]
            .iter()
            .any(|k| self.entity_type.eq_ignore_ascii_case(k))
    }
}

/// The MDE alert entity, field for field.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Alert {
    pub id: String,
    pub incident_id: Option<i64>,
    pub investigation_id: Option<i64>,
    pub investigation_state: Option<InvestigationState>,
    pub assigned_to: Option<String>,
    pub severity: Severity,
    pub status: AlertStatus,
    pub classification: Option<Classification>,
    pub determination: Option<Determination>,
    pub detection_source: String,
    pub detector_id: Option<String>,
    pub category: String,
    pub threat_family_name: Option<String>,
    pub threat_name: Option<String>,
    pub title: String,
    pub description: String,
    #[serde(with = "crate::timefmt::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub alert_creation_time: Option<OffsetDateTime>,
    #[serde(with = "crate::timefmt::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub first_event_time: Option<OffsetDateTime>,
    #[serde(with = "crate::timefmt::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_event_time: Option<OffsetDateTime>,
    #[serde(with = "crate::timefmt::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_update_time: Option<OffsetDateTime>,
    #[serde(with = "crate::timefmt::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub resolved_time: Option<OffsetDateTime>,
    pub machine_id: Option<String>,
    pub computer_dns_name: Option<String>,
    pub rbac_group_name: Option<String>,
    pub aad_tenant_id: String,
    pub mitre_techniques: Vec<String>,
    pub related_user: Option<RelatedUser>,
    pub comments: Vec<AlertComment>,
    /// Rampart: the alert's id in the product that raised it, for alerts imported from other
    /// security products (with `detectionSource` naming the product). Absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    /// Rampart: how many events this alert stands for, where one alert gathers repeated
    /// events (an indicator matching again on the same device). Absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_count: Option<u64>,
    /// Kept last: the list trims it unless `$expand=evidence`.
    pub evidence: Vec<Evidence>,
}

/// The alert categories Rampart accepts (CreateAlertByReference's list).
pub const ALERT_CATEGORIES: &[&str] = &[
    "General",
    "CommandAndControl",
    "Collection",
    "CredentialAccess",
    "DefenseEvasion",
    "Discovery",
    "Exfiltration",
    "Exploit",
    "Execution",
    "InitialAccess",
    "LateralMovement",
    "Malware",
    "Persistence",
    "PrivilegeEscalation",
    "Ransomware",
    "SuspiciousActivity",
];

/// `/api/alerts`: the filterable properties of reference §1.4, plus `machineId` and
/// `firstEventTime`, which Rampart also indexes.
pub static ALERTS: EntitySet = EntitySet {
    name: "Alerts",
    fields: &[
        Field::new("id", FieldType::String).not_null(),
        Field::new("alertCreationTime", FieldType::DateTime).not_null(),
        Field::new("lastUpdateTime", FieldType::DateTime).not_null(),
        Field::new("firstEventTime", FieldType::DateTime),
        Field::new("lastEventTime", FieldType::DateTime),
        Field::new("incidentId", FieldType::Int),
        Field::new("investigationId", FieldType::Int),
        Field::new("assignedTo", FieldType::String),
        Field::new("detectionSource", FieldType::String).not_null(),
        Field::new("status", FieldType::Enum(AlertStatus::VARIANTS)).not_null(),
        Field::new("severity", FieldType::Enum(Severity::VARIANTS)).not_null(),
        Field::new("category", FieldType::String).not_null(),
        Field::new("machineId", FieldType::String),
    ],
    expand: &["evidence"],
};

/// A plausible alert, deterministic in `n`: for demos, benchmarks and tests that need volume.
/// Severities, statuses, categories and times vary with `n`; times fall in the `span_secs`
/// before `now`.
pub fn synthetic(n: u64, tenant: crate::TenantId, now: OffsetDateTime, span_secs: i64) -> Alert {
    // A cheap integer hash (splitmix64) spreads consecutive n over every field.
    let mut x = n.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^= x >> 31;
    const CATEGORIES: &[&str] = &[
        "Execution",
        "CommandAndControl",
        "CredentialAccess",
        "Persistence",
        "DefenseEvasion",
        "Malware",
        "SuspiciousActivity",
    ];
    const TITLES: &[&str] = &[
        "Suspicious PowerShell command line",
        "Connection to a known command-and-control server",
        "Credential dumping from LSASS memory",
        "New scheduled task for persistence",
        "Security tool tampering",
        "Malware detected: Trojan:Linux/Mirai",
        "Unusual process spawned by web server",
    ];
    let severity = [
        Severity::Informational,
        Severity::Low,
        Severity::Medium,
        Severity::High,
    ][(x % 4) as usize];
    let status = [
        AlertStatus::New,
        AlertStatus::New,
        AlertStatus::InProgress,
        AlertStatus::Resolved,
    ][((x >> 8) % 4) as usize];
    let kind = ((x >> 16) % CATEGORIES.len() as u64) as usize;
    let created = now - time::Duration::seconds(((x >> 24) % span_secs.max(1) as u64) as i64);
    let machine = format!("{:040x}", (x >> 32) % 500);
    Alert {
        id: format!("da{:018}_{}", created.unix_timestamp_nanos() / 100, n),
        incident_id: None,
        investigation_id: None,
        investigation_state: None,
        assigned_to: None,
        severity,
        status,
        classification: None,
        determination: None,
        detection_source: "WindowsDefenderAtp".into(),
        detector_id: None,
        category: CATEGORIES[kind].into(),
        threat_family_name: None,
        threat_name: None,
        title: TITLES[kind].into(),
        description: format!("Synthetic alert {n} ({}).", TITLES[kind]),
        alert_creation_time: Some(created),
        first_event_time: Some(created - time::Duration::seconds(30)),
        last_event_time: Some(created - time::Duration::seconds(5)),
        last_update_time: Some(created),
        resolved_time: (status == AlertStatus::Resolved).then_some(created),
        machine_id: Some(machine),
        computer_dns_name: Some(format!("host-{:03}.corp.example", (x >> 32) % 500)),
        rbac_group_name: None,
        aad_tenant_id: tenant.to_string(),
        mitre_techniques: vec!["T1059".into()],
        related_user: None,
        comments: Vec::new(),
        external_id: None,
        event_count: None,
        evidence: Vec::new(),
    }
}

/// The determination a spelling names, accepting the variants MDE's own pages use
/// (`ConfirmedActivity`, `NotMalicious`, `CompromisedAccount`, `NoEnoughDataToValidate`).
pub fn parse_determination(s: &str) -> Result<Determination, String> {
    let alias = match s.to_ascii_lowercase().as_str() {
        "confirmedactivity" => Some(Determination::ConfirmedUserActivity),
        "notmalicious" => Some(Determination::Clean),
        "compromisedaccount" => Some(Determination::CompromisedUser),
        "noenoughdatatovalidate" => Some(Determination::InsufficientData),
        _ => None,
    };
    alias.map_or_else(|| s.parse(), Ok)
}

/// The determinations that go with a classification (reference §1.2).
pub fn determinations_of(c: Classification) -> &'static [Determination] {
    use Determination::*;
    match c {
        Classification::TruePositive => &[
            MultiStagedAttack,
            MaliciousUserActivity,
            CompromisedUser,
            Malware,
            Phishing,
            UnwantedSoftware,
            Other,
        ],
        Classification::InformationalExpectedActivity => &[
            SecurityTesting,
            LineOfBusinessApplication,
            ConfirmedUserActivity,
            Other,
        ],
        Classification::FalsePositive => &[Clean, InsufficientData, Other],
    }
}

/// What an analyst changes on an alert (`PATCH /api/alerts/{id}`, `batchUpdate`), already
/// parsed; `None` keeps the current value.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AlertChange {
    pub status: Option<AlertStatus>,
    pub assigned_to: Option<String>,
    pub classification: Option<Classification>,
    pub determination: Option<Determination>,
    pub comment: Option<String>,
}

impl Alert {
    /// Folds a re-sent copy of this alert (same source and external id) into it: the event
    /// times widen, and the events of a copy that come after all those counted add to the
    /// count. A copy reaching back into the counted span is a recount of (some of) them — a
    /// retro-hunt over stored telemetry, a re-sent batch — so the larger count stands: the
    /// count is never inflated by seeing an event twice, at the price of under-counting rows
    /// that arrive out of order.
    pub fn absorb_resent(&mut self, resent: &Alert) {
        self.event_count = match (self.event_count, resent.event_count) {
            (Some(mine), Some(theirs)) => {
                let later = match (self.last_event_time, resent.first_event_time) {
                    (Some(last), Some(first)) => first > last,
                    _ => false,
                };
                Some(if later {
                    mine + theirs
                } else {
                    mine.max(theirs)
                })
            }
            (mine, theirs) => mine.or(theirs),
        };
        self.first_event_time = self
            .first_event_time
            .min(resent.first_event_time)
            .or(resent.first_event_time);
        self.last_event_time = self.last_event_time.max(resent.last_event_time);
    }

    /// Applies an analyst's change by `who` at `now`, refusing a determination that does not go
    /// with the (new or current) classification.
    pub fn apply(
        &mut self,
        change: &AlertChange,
        who: &str,
        now: OffsetDateTime,
    ) -> Result<(), crate::Rejection> {
        let classification = change.classification.or(self.classification);
        if let Some(d) = change.determination {
            let Some(c) = classification else {
                return Err(crate::Rejection::new(
                    crate::ErrorCode::InvalidInput,
                    "determination needs a classification (in the same request or already on the alert)",
                ));
            };
            if !determinations_of(c).contains(&d) {
                let valid: Vec<&str> = determinations_of(c).iter().map(|d| d.as_str()).collect();
                return Err(crate::Rejection::new(
                    crate::ErrorCode::InvalidInput,
                    format!(
                        "determination '{}' does not go with classification '{}'; valid: {}",
                        d.as_str(),
                        c.as_str(),
                        valid.join(", ")
                    ),
                ));
            }
        } else if let (Some(new), Some(d)) = (change.classification, self.determination) {
            // A new classification drops a determination that no longer fits it.
            if !determinations_of(new).contains(&d) {
                self.determination = None;
            }
        }
        if let Some(s) = change.status {
            if s != self.status {
                self.resolved_time = (s == AlertStatus::Resolved).then_some(now);
            }
            self.status = s;
        }
        if let Some(a) = &change.assigned_to {
            self.assigned_to = Some(a.clone()).filter(|a| !a.is_empty());
        }
        if change.classification.is_some() {
            self.classification = change.classification;
        }
        if change.determination.is_some() {
            self.determination = change.determination;
        }
        if let Some(c) = &change.comment {
            self.comments.push(AlertComment {
                comment: c.clone(),
                created_by: Some(who.to_owned()),
                created_time: Some(now),
            });
        }
        self.last_update_time = Some(now);
        Ok(())
    }
}

/// A new alert id in MDE's style: `da` + creation time in .NET ticks + `_` + a random number.
pub fn new_alert_id(now: OffsetDateTime, random: u32) -> String {
    // .NET ticks: 100 ns since 0001-01-01.
    const TICKS_TO_UNIX: i128 = 621_355_968_000_000_000;
    let ticks = now.unix_timestamp_nanos() / 100 + TICKS_TO_UNIX;
    format!("da{ticks}_{random}")
}

#[cfg(test)]
mod change_tests {
    use super::*;

    fn alert() -> Alert {
        synthetic(
            1,
            crate::TenantId::new_random(),
            OffsetDateTime::now_utc(),
            60,
        )
    }

    #[test]
    fn resent_copies_widen_and_count_without_counting_twice() {
        let t0 = OffsetDateTime::UNIX_EPOCH + time::Duration::days(20_000);
        let at = |s: i64| Some(t0 + time::Duration::seconds(s));
        let copy = |first: i64, last: i64, n: Option<u64>| {
            let mut a = alert();
            a.first_event_time = at(first);
            a.last_event_time = at(last);
            a.event_count = n;
            a
        };
        let mut a = copy(10, 20, Some(2));
        a.absorb_resent(&copy(30, 40, Some(3)));
        assert_eq!(
            (a.first_event_time, a.last_event_time, a.event_count),
            (at(10), at(40), Some(5)),
            "later events add"
        );
        a.absorb_resent(&copy(0, 40, Some(4)));
        assert_eq!(
            (a.first_event_time, a.event_count),
            (at(0), Some(5)),
            "a recount of the span keeps the larger count"
        );
        a.absorb_resent(&copy(0, 50, Some(9)));
        assert_eq!((a.last_event_time, a.event_count), (at(50), Some(9)));
        a.absorb_resent(&copy(60, 60, None));
        assert_eq!(
            (a.last_event_time, a.event_count),
            (at(60), Some(9)),
            "an uncounted copy leaves the count"
        );
        let mut b = copy(0, 0, None);
        b.absorb_resent(&copy(5, 5, Some(1)));
        assert_eq!(b.event_count, Some(1));
    }

    #[test]
    fn determinations_must_fit_the_classification() {
        let mut a = alert();
        let now = OffsetDateTime::now_utc();
        let bad = AlertChange {
            classification: Some(Classification::FalsePositive),
            determination: Some(Determination::Malware),
            ..Default::default()
        };
        assert!(a.apply(&bad, "x", now).is_err());
        let only_d = AlertChange {
            determination: Some(Determination::Malware),
            ..Default::default()
        };
        assert!(a.apply(&only_d, "x", now).is_err(), "no classification yet");
        let good = AlertChange {
            classification: Some(Classification::TruePositive),
            determination: Some(Determination::Malware),
            status: Some(AlertStatus::Resolved),
            comment: Some("done".into()),
            ..Default::default()
        };
        a.apply(&good, "soar", now).unwrap();
        assert_eq!(a.determination, Some(Determination::Malware));
        assert_eq!(a.resolved_time, Some(now));
        assert_eq!(
            a.comments.last().unwrap().created_by.as_deref(),
            Some("soar")
        );
        // Reclassifying drops the determination that no longer fits.
        a.apply(
            &AlertChange {
                classification: Some(Classification::FalsePositive),
                ..Default::default()
            },
            "x",
            now,
        )
        .unwrap();
        assert_eq!(a.determination, None);
    }

    #[test]
    fn spelling_variants_are_accepted() {
        assert_eq!(
            parse_determination("NotMalicious").unwrap(),
            Determination::Clean
        );
        assert_eq!(
            parse_determination("ConfirmedActivity").unwrap(),
            Determination::ConfirmedUserActivity
        );
        assert_eq!(
            parse_determination("compromisedaccount").unwrap(),
            Determination::CompromisedUser
        );
        assert!(parse_determination("Bogus").is_err());
        assert!(new_alert_id(OffsetDateTime::now_utc(), 7).starts_with("da6"));
    }
}
