//! Incidents (reference §6): alerts that tell one story. Until correlation exists (a later
//! capability) every alert opens its own incident.

use crate::alert::{Alert, AlertComment, AlertStatus, Classification, Determination, Severity};
use crate::odata::{EntitySet, Field, FieldType};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

string_enum!(
    /// Incident status.
    IncidentStatus { Active, InProgress, Resolved, Redirected }
);

/// The stored incident; its `alerts` are filled in from the alerts table when it is read.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Incident {
    pub incident_id: i64,
    pub redirect_incident_id: Option<i64>,
    pub incident_name: String,
    #[serde(with = "crate::timefmt::required")]
    #[schema(value_type = String, format = DateTime)]
    pub created_time: OffsetDateTime,
    #[serde(with = "crate::timefmt::required")]
    #[schema(value_type = String, format = DateTime)]
    pub last_update_time: OffsetDateTime,
    pub assigned_to: Option<String>,
    pub severity: Severity,
    pub status: IncidentStatus,
    pub classification: Option<Classification>,
    pub determination: Option<Determination>,
    pub detection_source: Option<String>,
    pub tags: Vec<String>,
    pub comments: Vec<AlertComment>,
    /// The ids of its alerts (stored); the API shows the alerts themselves.
    #[serde(default)]
    pub alert_ids: Vec<String>,
}

impl Incident {
    /// The incident a lone alert opens.
    pub fn for_alert(id: i64, alert: &Alert, now: OffsetDateTime) -> Incident {
        let scope = alert
            .computer_dns_name
            .as_deref()
            .map(|n| format!(" on {n}"))
            .unwrap_or_default();
        Incident {
            incident_id: id,
            redirect_incident_id: None,
            incident_name: format!("{}{scope}", alert.title),
            created_time: alert.alert_creation_time.unwrap_or(now),
            last_update_time: now,
            assigned_to: None,
            severity: alert.severity,
            status: if alert.status == AlertStatus::Resolved {
                IncidentStatus::Resolved
            } else {
                IncidentStatus::Active
            },
            classification: None,
            determination: None,
            detection_source: Some(alert.detection_source.clone()),
            tags: Vec::new(),
            comments: Vec::new(),
            alert_ids: vec![alert.id.clone()],
        }
    }

    /// Takes severity (the highest) and resolution (all alerts resolved) from its alerts.
    pub fn follow_alerts(&mut self, alerts: &[Alert], now: OffsetDateTime) {
        if alerts.is_empty() {
            return;
        }
        let rank = |s: Severity| {
            Severity::VARIANTS
                .iter()
                .position(|v| *v == s.as_str())
                .unwrap_or(0)
        };
        if let Some(max) = alerts.iter().map(|a| a.severity).max_by_key(|s| rank(*s)) {
            self.severity = max;
        }
        let all_resolved = alerts.iter().all(|a| a.status == AlertStatus::Resolved);
        let before = self.status;
        self.status = match (self.status, all_resolved) {
            (IncidentStatus::Redirected, _) => IncidentStatus::Redirected,
            (_, true) => IncidentStatus::Resolved,
            (IncidentStatus::Resolved, false) => IncidentStatus::Active,
            (s, false) => s,
        };
        if before != self.status {
            self.last_update_time = now;
        }
    }
}

/// `/api/incidents`: filterable as reference §6.3 (`$top` at most 100).
pub static INCIDENTS: EntitySet = EntitySet {
    name: "Incidents",
    fields: &[
        Field::new("incidentId", FieldType::Int).not_null(),
        Field::new("createdTime", FieldType::DateTime).not_null(),
        Field::new("lastUpdateTime", FieldType::DateTime).not_null(),
        Field::new("status", FieldType::Enum(IncidentStatus::VARIANTS)).not_null(),
        Field::new("assignedTo", FieldType::String),
        Field::new("severity", FieldType::Enum(Severity::VARIANTS)).not_null(),
    ],
    expand: &[],
};

/// Largest incident page (MDE: 100).
pub const MAX_INCIDENT_PAGE: u32 = 100;
