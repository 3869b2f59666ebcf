//! Alerts as advanced-hunting rows: one `AlertInfo` row per alert and one `AlertEvidence` row
//! per entity (its evidence, and the device it is on), so hunting can join alerts to telemetry
//! on `AlertId`, `DeviceId`, `SHA256`, `RemoteIP`…
//!
//! The rows are written once, when the alert is created (as Defender writes them); the batch id
//! is the alert's, so a retried write never stores them twice.

use datafusion::arrow::array::RecordBatch;
use rampart_core::TenantId;
use rampart_core::alert::{Alert, Evidence};
use rampart_core::schema::{self, Table};
use rampart_telemetry::{EventStore, RowRejection, TableBatchBuilder};
use serde_json::{Map, Value, json};

/// `ServiceSource` of Rampart's alerts.
pub const SERVICE_SOURCE: &str = "Rampart";

/// Writes `alert` as `AlertInfo` and `AlertEvidence` rows; failures are logged (the alert
/// itself is stored already, and the rows are a view of it).
pub async fn write(events: &EventStore, tenant: TenantId, alert: &Alert) {
    let tables = match rows(alert) {
        Ok(t) => t,
        Err(e) => {
            tracing::error!(alert = %alert.id, "alert rows not built: {e}");
            return;
        }
    };
    if let Err(e) = events
        .append(tenant, &format!("alert:{}", alert.id), tables)
        .await
    {
        tracing::warn!(alert = %alert.id, "alert rows not stored: {e}");
    }
}

/// The rows of `alert`.
pub fn rows(alert: &Alert) -> Result<Vec<(&'static Table, RecordBatch)>, RowRejection> {
    let at = alert
        .alert_creation_time
        .map(rampart_core::timefmt::format)
        .unwrap_or_default();
    let techniques = serde_json::to_string(&alert.mitre_techniques).unwrap_or_default();
    let common = |row: &mut Map<String, Value>| {
        row.insert("Timestamp".into(), json!(at));
        row.insert("AlertId".into(), json!(alert.id));
        row.insert("Title".into(), json!(alert.title));
        row.insert("AttackTechniques".into(), json!(techniques));
        row.insert("ServiceSource".into(), json!(SERVICE_SOURCE));
        row.insert("DetectionSource".into(), json!(alert.detection_source));
        row.insert("Severity".into(), json!(alert.severity.as_str()));
    };
    let mut info_row = Map::new();
    common(&mut info_row);
    info_row.insert("Category".into(), json!(alert.category));
    let mut info = TableBatchBuilder::new(&schema::ALERT_INFO);
    info.push_json(&info_row)?;

    let mut evidence = TableBatchBuilder::new(&schema::ALERT_EVIDENCE);
    let categories = serde_json::to_string(&[&alert.category]).unwrap_or_default();
    let mut push = |fields: Map<String, Value>| -> Result<(), RowRejection> {
        let mut row = Map::new();
        common(&mut row);
        row.insert("Categories".into(), json!(categories));
        if let Some(d) = &alert.machine_id {
            row.insert("DeviceId".into(), json!(d));
        }
        if let Some(n) = &alert.computer_dns_name {
            row.insert("DeviceName".into(), json!(n));
        }
        row.extend(fields);
        evidence.push_json(&row)
    };
    if alert.machine_id.is_some() {
        push(Map::from_iter([
            ("EntityType".into(), json!("Machine")),
            ("EvidenceRole".into(), json!("Impacted")),
        ]))?;
    }
    for e in &alert.evidence {
        push(evidence_fields(e))?;
    }
    Ok(vec![
        (&schema::ALERT_INFO, info.finish()),
        (&schema::ALERT_EVIDENCE, evidence.finish()),
    ])
}

/// The columns of one evidence entity.
fn evidence_fields(e: &Evidence) -> Map<String, Value> {
    let mut row = Map::new();
    row.insert("EntityType".into(), json!(e.entity_type));
    let role = match e.entity_type.as_str() {
        "User" | "Machine" => "Impacted",
        _ => "Related",
    };
    row.insert("EvidenceRole".into(), json!(role));
    let mut set = |name: &str, v: &Option<String>| {
        if let Some(v) = v.as_deref().filter(|v| !v.is_empty()) {
            row.insert(name.into(), json!(v));
        }
    };
    set("SHA1", &e.sha1);
    set("SHA256", &e.sha256);
    set("FileName", &e.file_name);
    set("FolderPath", &e.file_path);
    set("ProcessCommandLine", &e.process_command_line);
    set("RemoteIP", &e.ip_address);
    set("RemoteUrl", &e.url);
    set("RegistryKey", &e.registry_key);
    set("RegistryValueData", &e.registry_value);
    set("AccountName", &e.account_name);
    set("AccountDomain", &e.domain_name);
    set("AccountSid", &e.user_sid);
    set("AccountObjectId", &e.aad_user_id);
    set("AccountUpn", &e.user_principal_name);
    row
}
