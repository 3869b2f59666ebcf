//! Alerts from the agents' antivirus findings: each ingested DeviceEvents `AntivirusDetection`
//! row becomes an alert (detection source `Antivirus`), one per device, file and threat —
//! a later scan finding the same file again updates that alert instead of adding one.
//!
//! Findings by a blocked hash are left to the indicator matcher, which already alerts on the
//! same row with the indicator's own severity and settings; this module takes the rest (YARA
//! rules today).

use datafusion::arrow::array::{Array, AsArray, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, TimestampNanosecondType};
use rampart_core::TenantId;
use rampart_core::alert::{Alert, AlertStatus, Evidence, Severity, new_alert_id};
use rampart_core::audit::AuditContext;
use rampart_core::schema::{DEVICE_EVENTS, Table};
use rampart_store::{Store, StoreError};
use rampart_telemetry::EventStore;
use serde_json::Value;
use std::sync::Arc;
use time::OffsetDateTime;

/// `detectionSource` of these alerts.
pub const DETECTION_SOURCE: &str = "Antivirus";

/// One `AntivirusDetection` row, as far as an alert needs it.
#[derive(Clone, Debug, PartialEq)]
pub struct Finding {
    pub device_id: String,
    pub device_name: Option<String>,
    pub time: Option<OffsetDateTime>,
    pub threat: String,
    /// The YARA rule set (or other source) that named the threat.
    pub detector: Option<String>,
    pub sha1: Option<String>,
    pub sha256: Option<String>,
    pub file_name: Option<String>,
    pub folder_path: Option<String>,
    pub process_id: Option<i64>,
    pub was_executing: bool,
}

/// The findings in `tables` that no indicator alert covers.
pub fn findings(tables: &[(&'static Table, RecordBatch)]) -> Vec<Finding> {
    let mut out = Vec::new();
    for (table, batch) in tables {
        if table.name != DEVICE_EVENTS.name {
            continue;
        }
        let text = |name: &str| -> Option<&StringArray> {
            let c = batch.column_by_name(name)?;
            (c.data_type() == &DataType::Utf8).then(|| c.as_string::<i32>())
        };
        let (Some(action), Some(fields), Some(device)) = (
            text("ActionType"),
            text("AdditionalFields"),
            text("DeviceId"),
        ) else {
            continue;
        };
        let get = |c: Option<&StringArray>, row: usize| {
            c.filter(|c| c.is_valid(row))
                .map(|c| c.value(row).to_owned())
                .filter(|s| !s.is_empty())
        };
        let time = batch
            .column_by_name("Timestamp")
            .and_then(|c| c.as_primitive_opt::<TimestampNanosecondType>());
        let pid = batch
            .column_by_name("ProcessId")
            .and_then(|c| c.as_primitive_opt::<datafusion::arrow::datatypes::Int64Type>());
        for row in 0..batch.num_rows() {
            if !action.is_valid(row) || action.value(row) != "AntivirusDetection" {
                continue;
            }
            let Some(device_id) = get(Some(device), row) else {
                continue;
            };
            let extra: Value = get(Some(fields), row)
                .and_then(|f| serde_json::from_str(&f).ok())
                .unwrap_or(Value::Null);
            if extra["DetectionSource"] == "Indicator" {
                continue;
            }
            let Some(threat) = extra["ThreatName"].as_str().filter(|t| !t.is_empty()) else {
                continue;
            };
            out.push(Finding {
                device_id,
                device_name: get(text("DeviceName"), row),
                time: time.filter(|t| t.is_valid(row)).and_then(|t| {
                    OffsetDateTime::from_unix_timestamp_nanos(i128::from(t.value(row))).ok()
                }),
                threat: threat.to_owned(),
                detector: extra["RuleSet"].as_str().map(String::from),
                sha1: get(text("SHA1"), row),
                sha256: get(text("SHA256"), row),
                file_name: get(text("FileName"), row),
                folder_path: get(text("FolderPath"), row),
                process_id: pid.filter(|p| p.is_valid(row)).map(|p| p.value(row)),
                was_executing: extra["WasExecutingWhileDetected"] == true,
            });
        }
    }
    out
}

/// Raises the alerts of antivirus findings.
pub struct AntivirusAlerts {
    store: Arc<dyn Store>,
    events: EventStore,
}

impl AntivirusAlerts {
    pub fn new(store: Arc<dyn Store>, events: EventStore) -> AntivirusAlerts {
        AntivirusAlerts { store, events }
    }

    /// Raises (or updates) the alert of each finding in `tables`, off the caller's task: an
    /// ingestion call does not wait for the state store.
    pub fn observe(self: &Arc<Self>, tenant: TenantId, tables: &[(&'static Table, RecordBatch)]) {
        let found = findings(tables);
        if found.is_empty() {
            return;
        }
        let this = Arc::clone(self);
        tokio::spawn(async move {
            for f in found {
                if let Err(e) = this.raise(tenant, f).await {
                    tracing::error!(%tenant, "antivirus alert not raised: {e}");
                }
            }
        });
    }

    /// Raises the alert of one finding, or updates the one already raised for the same device,
    /// file and threat. Returns its id.
    pub async fn raise(&self, tenant: TenantId, f: Finding) -> Result<String, StoreError> {
        let machine = self.store.get_machine(tenant, &f.device_id).await?;
        let now = OffsetDateTime::now_utc();
        let file = f
            .sha1
            .clone()
            .or_else(|| f.folder_path.clone())
            .unwrap_or_default();
        let mut description = format!(
            "An antivirus scan found '{}' in {}.",
            f.threat,
            f.folder_path.as_deref().unwrap_or("a file")
        );
        if let Some(d) = &f.detector {
            description.push_str(&format!(" Rule set: {d}."));
        }
        if f.was_executing {
            description.push_str(" The file was running when it was found.");
        }
        description.push_str(
            " The file was not remediated: quarantine it (StopAndQuarantineFile) once confirmed.",
        );
        let alert = Alert {
            id: new_alert_id(now, rand::random()),
            incident_id: None,
            investigation_id: None,
            investigation_state: None,
            assigned_to: None,
            severity: if f.was_executing {
                Severity::High
            } else {
                Severity::Medium
            },
            status: AlertStatus::New,
            classification: None,
            determination: None,
            detection_source: DETECTION_SOURCE.into(),
            detector_id: f.detector.clone(),
            category: "Malware".into(),
            threat_family_name: None,
            threat_name: Some(f.threat.clone()),
            title: format!("'{}' malware was detected", f.threat),
            description,
            alert_creation_time: Some(now),
            first_event_time: f.time,
            last_event_time: f.time,
            last_update_time: Some(now),
            resolved_time: None,
            machine_id: machine.as_ref().map(|m| m.id.clone()),
            computer_dns_name: machine
                .as_ref()
                .map(|m| m.computer_dns_name.clone())
                .or(f.device_name.clone()),
            rbac_group_name: machine.and_then(|m| m.rbac_group_name),
            aad_tenant_id: tenant.to_string(),
            mitre_techniques: Vec::new(),
            related_user: None,
            comments: Vec::new(),
            external_id: Some(format!("{}:{file}:{}", f.device_id, f.threat)),
            event_count: Some(1),
            evidence: vec![Evidence {
                entity_type: "File".into(),
                evidence_creation_time: Some(now),
                sha1: f.sha1,
                sha256: f.sha256,
                file_name: f.file_name,
                file_path: f.folder_path,
                process_id: f.process_id,
                detection_status: Some("Detected".into()),
                ..Evidence::default()
            }],
        };
        let ctx = AuditContext::system("antivirus");
        let (alert, created) = self.store.import_alert(&ctx, tenant, alert).await?;
        if created {
            crate::alert_rows::write(&self.events, tenant, &alert).await;
        }
        Ok(alert.id)
    }
}
