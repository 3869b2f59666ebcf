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
    pub evidence: Vec<Evidence>,
}

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
        detection_source: "CustomDetection".into(),
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
        evidence: Vec::new(),
    }
}
