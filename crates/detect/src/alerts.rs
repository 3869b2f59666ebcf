//! From a rule's result rows to alerts: rows are grouped by the entities they name (one alert
//! per device, file, user … combination), groups already alerted on inside the dedupe window
//! are suppressed, and each new alert may trigger the rule's machine actions.

use crate::rule::CompiledRule;
use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, TimeUnit, TimestampNanosecondType};
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use rampart_core::alert::{
    ALERT_CATEGORIES, Alert, AlertStatus, Evidence, RelatedUser, new_alert_id,
};
use rampart_core::audit::AuditContext;
use rampart_core::detection_rule::{
    DetectionRule, DetectionRun, EntityKind, RunStatus, RunTrigger,
};
use rampart_core::machine_action::{ActionRequest, ActionSubmission};
use rampart_core::{TenantId, schema};
use rampart_kql::plan::HuntResult;
use rampart_store::{DetectionHit, Store, StoreError};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use time::OffsetDateTime;

/// Most alerts one run raises (as Defender's custom detections). Groups past it raise nothing
/// now and are not recorded as alerted on, so a later run raises them.
pub const MAX_ALERTS_PER_RUN: usize = 150;

/// The `detectionSource` of alerts from custom detection rules, as in MDE.
pub const DETECTION_SOURCE: &str = "CustomDetection";

/// The rows of a result that name the same entities.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntityGroup {
    pub entities: BTreeMap<EntityKind, String>,
    /// Earliest and latest `Timestamp` of its rows (nanoseconds).
    pub first_ns: i64,
    pub last_ns: i64,
    pub rows: u64,
}

impl EntityGroup {
    /// The dedupe key: 8 bytes of SHA-256 over the rule and the entity values (each after its
    /// kind's position in [`EntityKind`], which is why that enum only ever grows at the end).
    pub fn key(&self, rule_id: &str) -> i64 {
        let mut h = Sha256::new();
        h.update(rule_id.as_bytes());
        for (kind, value) in &self.entities {
            h.update([0u8, *kind as u8]);
            h.update(value.as_bytes());
        }
        let digest = h.finalize();
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        i64::from_be_bytes(first)
    }

    fn get(&self, kind: EntityKind) -> Option<&str> {
        self.entities.get(&kind).map(String::as_str)
    }
}

/// Groups a result's rows by their mapped entity values, in order of first appearance.
pub fn group_rows(result: &HuntResult, rule: &CompiledRule) -> Result<Vec<EntityGroup>, String> {
    let mut groups: Vec<EntityGroup> = Vec::new();
    let mut index: HashMap<BTreeMap<EntityKind, String>, usize> = HashMap::new();
    let options = FormatOptions::default();
    for batch in &result.batches {
        let schema = batch.schema();
        let ts_index = schema
            .index_of(schema::TIMESTAMP)
            .map_err(|_| "the result has no Timestamp column".to_owned())?;
        let ts = cast(
            batch.column(ts_index),
            &DataType::Timestamp(TimeUnit::Nanosecond, None),
        )
        .map_err(|e| format!("Timestamp: {e}"))?;
        let ts = ts.as_primitive::<TimestampNanosecondType>();
        let mut formatters = Vec::with_capacity(rule.entities.len());
        for (kind, column) in &rule.entities {
            let i = schema
                .index_of(column)
                .map_err(|_| format!("the result has no column '{column}'"))?;
            let array = batch.column(i);
            let f = ArrayFormatter::try_new(array.as_ref(), &options)
                .map_err(|e| format!("{column}: {e}"))?;
            formatters.push((*kind, array.clone(), f));
        }
        for row in 0..batch.num_rows() {
            let mut entities = BTreeMap::new();
            for (kind, array, f) in &formatters {
                if array.is_null(row) {
                    continue;
                }
                let v = f.value(row).to_string();
                if !v.is_empty() {
                    entities.insert(*kind, v);
                }
            }
            let at = if ts.is_null(row) { 0 } else { ts.value(row) };
            match index.get(&entities) {
                Some(&g) => {
                    let g = &mut groups[g];
                    g.first_ns = g.first_ns.min(at);
                    g.last_ns = g.last_ns.max(at);
                    g.rows += 1;
                }
                None => {
                    index.insert(entities.clone(), groups.len());
                    groups.push(EntityGroup {
                        entities,
                        first_ns: at,
                        last_ns: at,
                        rows: 1,
                    });
                }
            }
        }
    }
    Ok(groups)
}

/// What one evaluation of a rule looked at and found, before alerts are raised.
pub struct Evaluation {
    pub trigger: RunTrigger,
    pub started: OffsetDateTime,
    pub window: Option<(OffsetDateTime, OffsetDateTime)>,
    /// The groups found, or why the query failed.
    pub outcome: Result<(u64, Vec<EntityGroup>), String>,
}

/// Raises the alerts of an evaluation (skipping groups alerted on inside the rule's dedupe
/// window) and writes them as `AlertInfo`/`AlertEvidence` rows, takes the rule's response actions on their devices, and records the run. Returns
/// the run as recorded.
pub async fn raise(
    store: &dyn Store,
    events: &rampart_telemetry::EventStore,
    tenant: TenantId,
    rule: &DetectionRule,
    eval: Evaluation,
) -> Result<DetectionRun, StoreError> {
    let ctx = AuditContext::system(&format!("detection-rule:{}", rule.id));
    let mut run = DetectionRun {
        id: uuid::Uuid::new_v4().to_string(),
        rule_id: rule.id.clone(),
        trigger: eval.trigger,
        start_date_time: eval.started,
        end_date_time: eval.started,
        window_start: eval.window.map(|w| w.0),
        window_end: eval.window.map(|w| w.1),
        status: RunStatus::Succeeded,
        failure_reason: None,
        row_count: 0,
        alerts_created: 0,
        alerts_suppressed: 0,
        alert_ids: Vec::new(),
        machine_action_ids: Vec::new(),
    };
    let mut hits = Vec::new();
    match eval.outcome {
        Err(reason) => {
            run.status = RunStatus::Failed;
            run.failure_reason = Some(reason);
        }
        Ok((rows, groups)) => {
            run.row_count = rows;
            let now = OffsetDateTime::now_utc();
            let keys: Vec<i64> = groups.iter().map(|g| g.key(&rule.id)).collect();
            let since = now - rule.schedule.period.dedupe_window();
            let seen = store
                .recent_detection_hits(tenant, &rule.id, &keys, since)
                .await?;
            let mut alerts = Vec::new();
            for (group, key) in groups.iter().zip(&keys) {
                if seen.contains(key) {
                    run.alerts_suppressed += 1;
                    continue;
                }
                if alerts.len() == MAX_ALERTS_PER_RUN {
                    break;
                }
                alerts.push((build_alert(store, tenant, rule, group, now).await?, *key));
            }
            let (docs, keys): (Vec<Alert>, Vec<i64>) = alerts.into_iter().unzip();
            let stored = if docs.is_empty() {
                Vec::new()
            } else {
                store.insert_alerts(&ctx, tenant, &docs).await?
            };
            for (alert, key) in stored.iter().zip(keys) {
                crate::alert_rows::write(events, tenant, alert).await;
                hits.push(DetectionHit {
                    entity_key: key,
                    alert_id: alert.id.clone(),
                });
                run.alert_ids.push(alert.id.clone());
                run.machine_action_ids
                    .extend(respond(store, &ctx, tenant, rule, alert).await);
            }
            run.alerts_created = stored.len() as u64;
        }
    }
    run.end_date_time = OffsetDateTime::now_utc();
    store
        .record_detection_run(&ctx, tenant, &run, &hits)
        .await?;
    Ok(run)
}

fn time_of(ns: i64) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(ns as i128).ok()
}

async fn build_alert(
    store: &dyn Store,
    tenant: TenantId,
    rule: &DetectionRule,
    group: &EntityGroup,
    now: OffsetDateTime,
) -> Result<Alert, StoreError> {
    let template = &rule.detection_action.alert_template;
    let mut machine = None;
    for kind in [EntityKind::DeviceId, EntityKind::DeviceName] {
        if let Some(v) = group.get(kind)
            && let Some(m) = store.get_machine(tenant, v).await?
        {
            machine = Some(m);
            break;
        }
    }
    let mut evidence = Vec::new();
    let base = Evidence {
        evidence_creation_time: Some(now),
        detection_status: Some("Detected".into()),
        ..Evidence::default()
    };
    let file = [
        EntityKind::FileSha1,
        EntityKind::FileSha256,
        EntityKind::FileName,
        EntityKind::FolderPath,
    ];
    if file.iter().any(|k| group.get(*k).is_some()) {
        evidence.push(Evidence {
            entity_type: "File".into(),
            sha1: group.get(EntityKind::FileSha1).map(str::to_ascii_lowercase),
            sha256: group
                .get(EntityKind::FileSha256)
                .map(str::to_ascii_lowercase),
            file_name: group.get(EntityKind::FileName).map(Into::into),
            file_path: group.get(EntityKind::FolderPath).map(Into::into),
            ..base.clone()
        });
    }
    let command_line = group.get(EntityKind::ProcessCommandLine);
    let process_id = group
        .get(EntityKind::ProcessId)
        .and_then(|p| p.parse::<i64>().ok());
    if command_line.is_some() || process_id.is_some() {
        evidence.push(Evidence {
            entity_type: "Process".into(),
            process_id,
            process_command_line: command_line.map(Into::into),
            file_name: group.get(EntityKind::FileName).map(Into::into),
            file_path: group.get(EntityKind::FolderPath).map(Into::into),
            sha1: group.get(EntityKind::FileSha1).map(str::to_ascii_lowercase),
            ..base.clone()
        });
    }
    let account = group.get(EntityKind::AccountName);
    let domain = group.get(EntityKind::AccountDomain);
    if account.is_some() {
        evidence.push(Evidence {
            entity_type: "User".into(),
            account_name: account.map(Into::into),
            domain_name: domain.map(Into::into),
            ..base.clone()
        });
    }
    if let Some(ip) = group.get(EntityKind::RemoteIp) {
        evidence.push(Evidence {
            entity_type: "Ip".into(),
            ip_address: Some(ip.into()),
            ..base.clone()
        });
    }
    if let Some(url) = group.get(EntityKind::RemoteUrl) {
        evidence.push(Evidence {
            entity_type: "Url".into(),
            url: Some(url.into()),
            ..base.clone()
        });
    }
    let category = ALERT_CATEGORIES
        .iter()
        .find(|c| c.eq_ignore_ascii_case(&template.category))
        .map_or_else(|| template.category.clone(), |c| (*c).to_owned());
    let mut description = template.description.clone();
    if let Some(r) = template
        .recommended_actions
        .as_deref()
        .filter(|r| !r.is_empty())
    {
        if !description.is_empty() {
            description.push_str("\n\n");
        }
        description.push_str("Recommended actions: ");
        description.push_str(r);
    }
    Ok(Alert {
        id: new_alert_id(now, rand::random()),
        incident_id: None,
        investigation_id: None,
        investigation_state: None,
        assigned_to: None,
        severity: template.severity,
        status: AlertStatus::New,
        classification: None,
        determination: None,
        detection_source: DETECTION_SOURCE.into(),
        detector_id: Some(rule.id.clone()),
        category,
        threat_family_name: None,
        threat_name: None,
        title: template.title.clone(),
        description,
        alert_creation_time: Some(now),
        first_event_time: time_of(group.first_ns),
        last_event_time: time_of(group.last_ns),
        last_update_time: Some(now),
        resolved_time: None,
        machine_id: machine.as_ref().map(|m| m.id.clone()),
        computer_dns_name: machine
            .as_ref()
            .map(|m| m.computer_dns_name.clone())
            .or_else(|| group.get(EntityKind::DeviceName).map(Into::into)),
        rbac_group_name: machine.and_then(|m| m.rbac_group_name),
        aad_tenant_id: tenant.to_string(),
        mitre_techniques: template.mitre_techniques.clone(),
        related_user: account.map(|a| RelatedUser {
            user_name: Some(a.into()),
            domain_name: domain.map(Into::into),
        }),
        comments: Vec::new(),
        external_id: None,
        event_count: None,
        evidence,
    })
}

/// Submits the rule's response actions for a new alert's device; returns the action ids.
/// A refused action (an OS that cannot run it, a file hash the alert lacks) is logged and
/// skipped: the alert stands either way.
async fn respond(
    store: &dyn Store,
    ctx: &AuditContext,
    tenant: TenantId,
    rule: &DetectionRule,
    alert: &Alert,
) -> Vec<String> {
    let mut ids = Vec::new();
    let Some(machine_id) = &alert.machine_id else {
        return ids;
    };
    let sha1 = alert.evidence.iter().find_map(|e| e.sha1.as_deref());
    for action in &rule.detection_action.response_actions {
        let Some(requested) = action.kind().ok().and_then(|k| k.requested(sha1)) else {
            tracing::warn!(rule = %rule.id, alert = %alert.id, "response action {} skipped: the alert names no file", action.action_type);
            continue;
        };
        let comment = format!(
            "Custom detection rule {} ({}) raised alert {}",
            rule.id, rule.display_name, alert.id
        );
        let request = match ActionRequest::new(requested, Some(comment), Some(alert.id.clone())) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(rule = %rule.id, "response action refused: {}", e.message);
                continue;
            }
        };
        let submission = ActionSubmission {
            machine_id: machine_id.clone(),
            request,
            requestor: format!("{DETECTION_SOURCE}:{}", rule.id),
            request_source: Some("Custom detection rule".into()),
            idempotency: None,
        };
        match store.submit_machine_action(ctx, tenant, &submission).await {
            Ok(s) => ids.push(s.action.id.clone()),
            Err(e) => {
                tracing::warn!(rule = %rule.id, alert = %alert.id, "response action not submitted: {e}")
            }
        }
    }
    ids
}
