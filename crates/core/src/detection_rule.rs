//! Custom detection rules (Rampart's own resource, modelled on Defender's custom detections and
//! the Graph `detectionRule` shape): a KQL query run on a schedule — or continuously on the
//! ingestion stream — whose rows become alerts, deduplicated by the entities they name.
//!
//! This module holds the shapes and the rules that need no query engine: the schedule and its
//! lookback, the alert template, the entity mapping, the response actions, and how a rule's
//! status follows from its runs. Checking the query itself is `rampart-detect`'s job.

use crate::Rejection;
use crate::alert::Severity;
use crate::error::ErrorCode;
use crate::machine_action::{IsolationType, RequestedAction, ScanType};
use crate::odata::{EntitySet, Field, FieldType};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::{Duration, OffsetDateTime};

/// How often a rule runs. `Continuous` rules are evaluated on each batch as it is ingested;
/// the others over stored data, looking back further than their period so that late-arriving
/// events are still seen (the entity dedupe keeps the overlap from alerting twice).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RunFrequency {
    Continuous,
    FiveMinutes,
    OneHour,
    ThreeHours,
    TwelveHours,
    OneDay,
}

impl RunFrequency {
    pub const VARIANTS: &'static [&'static str] = &["0", "5M", "1H", "3H", "12H", "24H"];

    /// The Graph spelling of `schedule.period` ("0" is continuous, near-real-time).
    pub fn as_str(self) -> &'static str {
        match self {
            RunFrequency::Continuous => "0",
            RunFrequency::FiveMinutes => "5M",
            RunFrequency::OneHour => "1H",
            RunFrequency::ThreeHours => "3H",
            RunFrequency::TwelveHours => "12H",
            RunFrequency::OneDay => "24H",
        }
    }

    /// Time between runs; `None` for continuous rules.
    pub fn period(self) -> Option<Duration> {
        match self {
            RunFrequency::Continuous => None,
            RunFrequency::FiveMinutes => Some(Duration::minutes(5)),
            RunFrequency::OneHour => Some(Duration::hours(1)),
            RunFrequency::ThreeHours => Some(Duration::hours(3)),
            RunFrequency::TwelveHours => Some(Duration::hours(12)),
            RunFrequency::OneDay => Some(Duration::hours(24)),
        }
    }

    /// How far back a scheduled run looks: four periods, as Defender's custom detections do,
    /// except the daily rule, which covers the 30 days of retention.
    pub fn lookback(self) -> Option<Duration> {
        match self {
            RunFrequency::OneDay => Some(Duration::days(30)),
            other => other.period().map(|p| p * 4),
        }
    }

    /// How long the same entities do not alert twice: the lookback, and a day for continuous
    /// rules (which have none).
    pub fn dedupe_window(self) -> Duration {
        self.lookback().unwrap_or(Duration::days(1))
    }
}

impl std::str::FromStr for RunFrequency {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let f = match s.to_ascii_uppercase().as_str() {
            "0" | "NRT" | "CONTINUOUS" => RunFrequency::Continuous,
            "5M" | "PT5M" => RunFrequency::FiveMinutes,
            "1H" | "PT1H" => RunFrequency::OneHour,
            "3H" | "PT3H" => RunFrequency::ThreeHours,
            "12H" | "PT12H" => RunFrequency::TwelveHours,
            "24H" | "1D" | "P1D" | "PT24H" => RunFrequency::OneDay,
            _ => {
                return Err(format!(
                    "'{s}' is not a schedule period: use 0 (continuous), 5M, 1H, 3H, 12H or 24H"
                ));
            }
        };
        Ok(f)
    }
}

impl Serialize for RunFrequency {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for RunFrequency {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl utoipa::PartialSchema for RunFrequency {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .enum_values(Some(RunFrequency::VARIANTS.iter().copied()))
            .into()
    }
}

impl utoipa::ToSchema for RunFrequency {}

string_enum!(
    /// Whether a rule runs: `Paused` is set by Rampart when a run fails (with `pausedReason`);
    /// setting `isEnabled` again resumes it.
    RuleStatus { Active, Disabled, Paused }
);

string_enum!(
    /// What started a run.
    RunTrigger { Scheduled, Continuous, Manual }
);

string_enum!(
    /// How a run ended.
    RunStatus { Succeeded, Failed }
);

/// `queryCondition` of a rule.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct QueryCondition {
    pub query_text: String,
}

/// `schedule` of a rule.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RuleSchedule {
    pub period: RunFrequency,
    /// When the next scheduled run is due (absent for continuous and stopped rules).
    #[serde(with = "crate::timefmt::option", default)]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub next_run_date_time: Option<OffsetDateTime>,
}

/// The alert a matching row raises.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AlertTemplate {
    pub title: String,
    #[serde(default)]
    pub description: String,
    pub severity: Severity,
    pub category: String,
    #[serde(default)]
    pub mitre_techniques: Vec<String>,
    #[serde(default)]
    pub recommended_actions: Option<String>,
}

impl DetectionAction {
    /// Raise alerts like `alert_template`, with the default entity mapping and no response action.
    pub fn alert(alert_template: AlertTemplate) -> DetectionAction {
        DetectionAction {
            alert_template,
            entity_mapping: EntityMapping::default(),
            response_actions: Vec::new(),
        }
    }
}

impl AlertTemplate {
    /// A template with a title, severity and category only.
    pub fn new(title: impl Into<String>, severity: Severity, category: impl Into<String>) -> Self {
        AlertTemplate {
            title: title.into(),
            description: String::new(),
            severity,
            category: category.into(),
            mitre_techniques: Vec::new(),
            recommended_actions: None,
        }
    }
}

/// Which result columns name the alert's entities. Unset fields fall back to the advanced-
/// hunting column of the same meaning when the query returns it (`DeviceId`, `SHA1`, …).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EntityMapping {
    pub device_id: Option<String>,
    pub device_name: Option<String>,
    pub file_sha1: Option<String>,
    pub file_sha256: Option<String>,
    pub file_name: Option<String>,
    pub folder_path: Option<String>,
    pub process_command_line: Option<String>,
    pub process_id: Option<String>,
    pub account_name: Option<String>,
    pub account_domain: Option<String>,
    pub remote_ip: Option<String>,
    pub remote_url: Option<String>,
}

/// The entity kinds of a mapping, each with its default column. Dedupe keys hash each kind's
/// position: add new kinds at the end only.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EntityKind {
    DeviceId,
    DeviceName,
    FileSha1,
    FileSha256,
    FileName,
    FolderPath,
    ProcessCommandLine,
    ProcessId,
    AccountName,
    AccountDomain,
    RemoteIp,
    RemoteUrl,
}

impl EntityKind {
    pub const ALL: [EntityKind; 12] = [
        EntityKind::DeviceId,
        EntityKind::DeviceName,
        EntityKind::FileSha1,
        EntityKind::FileSha256,
        EntityKind::FileName,
        EntityKind::FolderPath,
        EntityKind::ProcessCommandLine,
        EntityKind::ProcessId,
        EntityKind::AccountName,
        EntityKind::AccountDomain,
        EntityKind::RemoteIp,
        EntityKind::RemoteUrl,
    ];

    /// The field name in `entityMapping`.
    pub fn field(self) -> &'static str {
        match self {
            EntityKind::DeviceId => "deviceId",
            EntityKind::DeviceName => "deviceName",
            EntityKind::FileSha1 => "fileSha1",
            EntityKind::FileSha256 => "fileSha256",
            EntityKind::FileName => "fileName",
            EntityKind::FolderPath => "folderPath",
            EntityKind::ProcessCommandLine => "processCommandLine",
            EntityKind::ProcessId => "processId",
            EntityKind::AccountName => "accountName",
            EntityKind::AccountDomain => "accountDomain",
            EntityKind::RemoteIp => "remoteIp",
            EntityKind::RemoteUrl => "remoteUrl",
        }
    }

    /// The advanced-hunting column used when the mapping leaves the entity unset.
    pub fn default_column(self) -> &'static str {
        match self {
            EntityKind::DeviceId => "DeviceId",
            EntityKind::DeviceName => "DeviceName",
            EntityKind::FileSha1 => "SHA1",
            EntityKind::FileSha256 => "SHA256",
            EntityKind::FileName => "FileName",
            EntityKind::FolderPath => "FolderPath",
            EntityKind::ProcessCommandLine => "ProcessCommandLine",
            EntityKind::ProcessId => "ProcessId",
            EntityKind::AccountName => "AccountName",
            EntityKind::AccountDomain => "AccountDomain",
            EntityKind::RemoteIp => "RemoteIP",
            EntityKind::RemoteUrl => "RemoteUrl",
        }
    }
}

impl EntityMapping {
    /// The column explicitly mapped to `kind`, if any.
    pub fn explicit(&self, kind: EntityKind) -> Option<&str> {
        match kind {
            EntityKind::DeviceId => self.device_id.as_deref(),
            EntityKind::DeviceName => self.device_name.as_deref(),
            EntityKind::FileSha1 => self.file_sha1.as_deref(),
            EntityKind::FileSha256 => self.file_sha256.as_deref(),
            EntityKind::FileName => self.file_name.as_deref(),
            EntityKind::FolderPath => self.folder_path.as_deref(),
            EntityKind::ProcessCommandLine => self.process_command_line.as_deref(),
            EntityKind::ProcessId => self.process_id.as_deref(),
            EntityKind::AccountName => self.account_name.as_deref(),
            EntityKind::AccountDomain => self.account_domain.as_deref(),
            EntityKind::RemoteIp => self.remote_ip.as_deref(),
            EntityKind::RemoteUrl => self.remote_url.as_deref(),
        }
    }
}

/// A machine action a rule takes on the device of each new alert.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResponseAction {
    /// `isolateDevice`, `restrictAppExecution`, `runAntivirusScan`,
    /// `collectInvestigationPackage` or `stopAndQuarantineFile` (of the alert's SHA1).
    pub action_type: String,
    /// For `isolateDevice`: `Full` (default) or `Selective`.
    #[serde(default)]
    pub isolation_type: Option<String>,
    /// For `runAntivirusScan`: `Quick` (default) or `Full`.
    #[serde(default)]
    pub scan_type: Option<String>,
}

/// What a response action asks of a device, once the alert's entities are known.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ResponseKind {
    Isolate(IsolationType),
    Restrict,
    Scan(ScanType),
    Collect,
    QuarantineFile,
}

impl ResponseAction {
    pub const TYPES: &'static [&'static str] = &[
        "isolateDevice",
        "restrictAppExecution",
        "runAntivirusScan",
        "collectInvestigationPackage",
        "stopAndQuarantineFile",
    ];

    /// The checked form.
    pub fn kind(&self) -> Result<ResponseKind, String> {
        let t = self.action_type.as_str();
        let kind = if t.eq_ignore_ascii_case("isolateDevice") {
            let isolation = match &self.isolation_type {
                None => IsolationType::Full,
                Some(v) => v.parse().map_err(|e| format!("isolationType: {e}"))?,
            };
            if isolation == IsolationType::UnManagedDevice {
                return Err("isolationType: use Full or Selective".into());
            }
            ResponseKind::Isolate(isolation)
        } else if t.eq_ignore_ascii_case("restrictAppExecution") {
            ResponseKind::Restrict
        } else if t.eq_ignore_ascii_case("runAntivirusScan") {
            ResponseKind::Scan(match &self.scan_type {
                None => ScanType::Quick,
                Some(v) => v.parse().map_err(|e| format!("scanType: {e}"))?,
            })
        } else if t.eq_ignore_ascii_case("collectInvestigationPackage") {
            ResponseKind::Collect
        } else if t.eq_ignore_ascii_case("stopAndQuarantineFile") {
            ResponseKind::QuarantineFile
        } else {
            return Err(format!(
                "actionType '{t}' is not one of {}",
                Self::TYPES.join(", ")
            ));
        };
        Ok(kind)
    }
}

impl ResponseKind {
    /// The machine action for an alert whose file entity (if any) has `sha1`; `None` when
    /// the action needs a file the alert does not name.
    pub fn requested(&self, sha1: Option<&str>) -> Option<RequestedAction> {
        Some(match self {
            ResponseKind::Isolate(isolation) => RequestedAction::Isolate {
                isolation: *isolation,
            },
            ResponseKind::Restrict => RequestedAction::RestrictCodeExecution,
            ResponseKind::Scan(scan) => RequestedAction::RunAntiVirusScan { scan: *scan },
            ResponseKind::Collect => RequestedAction::CollectInvestigationPackage,
            ResponseKind::QuarantineFile => RequestedAction::StopAndQuarantineFile {
                sha1: sha1?.to_owned(),
            },
        })
    }
}

/// `detectionAction` of a rule.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DetectionAction {
    pub alert_template: AlertTemplate,
    #[serde(default)]
    pub entity_mapping: EntityMapping,
    #[serde(default)]
    pub response_actions: Vec<ResponseAction>,
}

/// The outcome of the latest run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LastRunDetails {
    pub run_id: String,
    #[serde(with = "crate::timefmt::required")]
    #[schema(value_type = String, format = DateTime)]
    pub last_run_date_time: OffsetDateTime,
    pub status: RunStatus,
    pub failure_reason: Option<String>,
    pub alerts_created: u64,
}

/// A custom detection rule.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DetectionRule {
    /// A number as a string, given by the server.
    pub id: String,
    pub display_name: String,
    pub description: Option<String>,
    /// The owner's wish; `status` says whether it actually runs.
    pub is_enabled: bool,
    pub status: RuleStatus,
    /// Why Rampart paused the rule (its last run's failure).
    pub paused_reason: Option<String>,
    pub query_condition: QueryCondition,
    pub schedule: RuleSchedule,
    pub detection_action: DetectionAction,
    /// The one table a continuous rule filters (set by the server).
    pub continuous_table: Option<String>,
    pub created_by: String,
    #[serde(with = "crate::timefmt::required")]
    #[schema(value_type = String, format = DateTime)]
    pub created_date_time: OffsetDateTime,
    pub last_modified_by: String,
    #[serde(with = "crate::timefmt::required")]
    #[schema(value_type = String, format = DateTime)]
    pub last_modified_date_time: OffsetDateTime,
    pub last_run_details: Option<LastRunDetails>,
}

/// Longest accepted query text (a rule is a hunting query; MDE caps those far lower in practice).
pub const MAX_QUERY_LEN: usize = 64 * 1024;
/// Most response actions a rule may take.
pub const MAX_RESPONSE_ACTIONS: usize = 5;

fn invalid(msg: impl Into<String>) -> Rejection {
    Rejection::new(ErrorCode::InvalidRequestBody, msg)
}

impl DetectionRule {
    /// A new enabled rule, as `by` creates it at `now` (the store gives it its id).
    pub fn new(
        display_name: impl Into<String>,
        query_text: impl Into<String>,
        period: RunFrequency,
        detection_action: DetectionAction,
        by: &str,
        now: OffsetDateTime,
    ) -> DetectionRule {
        let mut rule = DetectionRule {
            id: String::new(),
            display_name: display_name.into(),
            description: None,
            is_enabled: true,
            status: RuleStatus::Active,
            paused_reason: None,
            query_condition: QueryCondition {
                query_text: query_text.into(),
            },
            schedule: RuleSchedule {
                period,
                next_run_date_time: None,
            },
            detection_action,
            continuous_table: None,
            created_by: by.to_owned(),
            created_date_time: now,
            last_modified_by: by.to_owned(),
            last_modified_date_time: now,
            last_run_details: None,
        };
        rule.settle(now);
        rule
    }

    /// Checks the parts that need no query engine; the caller checks the query.
    pub fn check_shape(&self) -> Result<(), Rejection> {
        if self.display_name.trim().is_empty() || self.display_name.chars().count() > 256 {
            return Err(invalid(
                "Field 'displayName' is required and at most 256 characters",
            ));
        }
        let q = &self.query_condition.query_text;
        if q.trim().is_empty() {
            return Err(invalid("Field 'queryCondition.queryText' is required"));
        }
        if q.len() > MAX_QUERY_LEN {
            return Err(invalid(format!(
                "Field 'queryCondition.queryText' is longer than {MAX_QUERY_LEN} bytes"
            )));
        }
        let t = &self.detection_action.alert_template;
        if t.title.trim().is_empty() || t.title.chars().count() > 256 {
            return Err(invalid(
                "Field 'detectionAction.alertTemplate.title' is required and at most 256 characters",
            ));
        }
        if !crate::alert::ALERT_CATEGORIES
            .iter()
            .any(|c| c.eq_ignore_ascii_case(&t.category))
        {
            return Err(invalid(format!(
                "Field 'detectionAction.alertTemplate.category' is not valid: use one of {}",
                crate::alert::ALERT_CATEGORIES.join(", ")
            )));
        }
        if let Some(bad) = t.mitre_techniques.iter().find(|m| !is_mitre_technique(m)) {
            return Err(invalid(format!(
                "Field 'detectionAction.alertTemplate.mitreTechniques' is not valid: '{}' is not a technique id like T1059 or T1059.001",
                bad.chars().take(40).collect::<String>()
            )));
        }
        let actions = &self.detection_action.response_actions;
        if actions.len() > MAX_RESPONSE_ACTIONS {
            return Err(invalid(format!(
                "Field 'detectionAction.responseActions' has more than {MAX_RESPONSE_ACTIONS} actions"
            )));
        }
        for (i, a) in actions.iter().enumerate() {
            a.kind().map_err(|e| {
                invalid(format!(
                    "Field 'detectionAction.responseActions[{i}]' is not valid: {e}"
                ))
            })?;
        }
        Ok(())
    }

    /// Sets `status` from `isEnabled` and the pause, and the next run from `now`.
    pub fn settle(&mut self, now: OffsetDateTime) {
        self.status = match (self.is_enabled, self.paused_reason.is_some()) {
            (false, _) => RuleStatus::Disabled,
            (true, true) => RuleStatus::Paused,
            (true, false) => RuleStatus::Active,
        };
        self.schedule.next_run_date_time = match (self.status, self.schedule.period.period()) {
            (RuleStatus::Active, Some(_)) => Some(self.schedule.next_run_date_time.unwrap_or(now)),
            _ => None,
        };
    }

    /// Records a finished run: a failure pauses the rule with its reason; a scheduled run
    /// moves the next one a period on from `started` (never into the past).
    pub fn after_run(&mut self, run: &DetectionRun, now: OffsetDateTime) {
        self.last_run_details = Some(LastRunDetails {
            run_id: run.id.clone(),
            last_run_date_time: run.start_date_time,
            status: run.status,
            failure_reason: run.failure_reason.clone(),
            alerts_created: run.alerts_created,
        });
        if run.status == RunStatus::Failed {
            self.paused_reason = run.failure_reason.clone();
        }
        if let Some(period) = self.schedule.period.period()
            && run.trigger == RunTrigger::Scheduled
        {
            let next = run.start_date_time + period;
            self.schedule.next_run_date_time = Some(if next < now { now } else { next });
        }
        self.settle(now);
    }
}

/// `T1234` or `T1234.001`.
fn is_mitre_technique(s: &str) -> bool {
    let Some(rest) = s.strip_prefix('T') else {
        return false;
    };
    let (main, sub) = match rest.split_once('.') {
        Some((m, s)) => (m, Some(s)),
        None => (rest, None),
    };
    main.len() == 4
        && main.bytes().all(|b| b.is_ascii_digit())
        && sub.is_none_or(|s| s.len() == 3 && s.bytes().all(|b| b.is_ascii_digit()))
}

/// One run of a rule: its window, what it found, and how it ended.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DetectionRun {
    pub id: String,
    pub rule_id: String,
    pub trigger: RunTrigger,
    #[serde(with = "crate::timefmt::required")]
    #[schema(value_type = String, format = DateTime)]
    pub start_date_time: OffsetDateTime,
    #[serde(with = "crate::timefmt::required")]
    #[schema(value_type = String, format = DateTime)]
    pub end_date_time: OffsetDateTime,
    /// The event times the run looked at (absent for continuous runs, which see one batch).
    #[serde(with = "crate::timefmt::option", default)]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub window_start: Option<OffsetDateTime>,
    #[serde(with = "crate::timefmt::option", default)]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub window_end: Option<OffsetDateTime>,
    pub status: RunStatus,
    pub failure_reason: Option<String>,
    /// Rows the query returned.
    pub row_count: u64,
    pub alerts_created: u64,
    /// Entity groups already alerted on inside the lookback.
    pub alerts_suppressed: u64,
    pub alert_ids: Vec<String>,
    /// Machine actions the response actions submitted.
    pub machine_action_ids: Vec<String>,
}

pub static DETECTION_RULES: EntitySet = EntitySet {
    name: "DetectionRules",
    fields: &[
        Field::new("id", FieldType::String).not_null(),
        Field::new("displayName", FieldType::String).not_null(),
        Field::new("status", FieldType::Enum(RuleStatus::VARIANTS)).not_null(),
        Field::new("createdDateTime", FieldType::DateTime).not_null(),
        Field::new("lastModifiedDateTime", FieldType::DateTime).not_null(),
    ],
    expand: &[],
};

pub static DETECTION_RUNS: EntitySet = EntitySet {
    name: "DetectionRuns",
    fields: &[
        Field::new("id", FieldType::String).not_null(),
        Field::new("ruleId", FieldType::String).not_null(),
        Field::new("startDateTime", FieldType::DateTime).not_null(),
        Field::new("status", FieldType::Enum(RunStatus::VARIANTS)).not_null(),
    ],
    expand: &[],
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_parse_in_graph_and_iso_spellings() {
        assert_eq!("0".parse(), Ok(RunFrequency::Continuous));
        assert_eq!("nrt".parse(), Ok(RunFrequency::Continuous));
        assert_eq!("pt1h".parse(), Ok(RunFrequency::OneHour));
        assert_eq!("24H".parse(), Ok(RunFrequency::OneDay));
        assert!("2H".parse::<RunFrequency>().unwrap_err().contains("5M, 1H"));
        assert_eq!(RunFrequency::OneHour.lookback(), Some(Duration::hours(4)));
        assert_eq!(RunFrequency::OneDay.lookback(), Some(Duration::days(30)));
        assert_eq!(RunFrequency::Continuous.lookback(), None);
    }

    #[test]
    fn mitre_ids() {
        assert!(is_mitre_technique("T1059"));
        assert!(is_mitre_technique("T1059.001"));
        assert!(!is_mitre_technique("T159"));
        assert!(!is_mitre_technique("t1059"));
        assert!(!is_mitre_technique("T1059.01"));
    }

    #[test]
    fn response_actions_check_their_arguments() {
        let a = |t: &str, iso: Option<&str>, scan: Option<&str>| ResponseAction {
            action_type: t.into(),
            isolation_type: iso.map(Into::into),
            scan_type: scan.map(Into::into),
        };
        assert_eq!(
            a("isolateDevice", None, None).kind(),
            Ok(ResponseKind::Isolate(IsolationType::Full))
        );
        assert_eq!(
            a("runAntivirusScan", None, Some("full")).kind(),
            Ok(ResponseKind::Scan(ScanType::Full))
        );
        assert!(
            a("isolateDevice", Some("UnManagedDevice"), None)
                .kind()
                .is_err()
        );
        assert!(
            a("reboot", None, None)
                .kind()
                .unwrap_err()
                .contains("isolateDevice")
        );
        assert_eq!(ResponseKind::QuarantineFile.requested(None), None);
    }
}
