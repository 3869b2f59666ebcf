//! Incidents (reference §6): alerts that tell one story, put together by
//! [`crate::correlation`].

use crate::alert::{Alert, AlertComment, AlertStatus, Classification, Determination, Severity};
use crate::correlation::{highest_severity, incident_name, insert_sorted, severity_rank};
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
    /// The machine ids of its alerts, sorted (Rampart's own).
    #[serde(default)]
    pub devices: Vec<String>,
    /// The categories of its alerts, sorted (Rampart's own).
    #[serde(default)]
    pub categories: Vec<String>,
}

impl Incident {
    /// The incident a lone alert opens.
    pub fn for_alert(id: i64, alert: &Alert, now: OffsetDateTime) -> Incident {
        Incident {
            incident_id: id,
            redirect_incident_id: None,
            incident_name: incident_name(Some(alert), &[], 1),
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
            devices: alert.machine_id.iter().cloned().collect(),
            categories: vec![alert.category.clone()],
        }
    }

    /// Takes in an alert that correlation placed here. (The alerts themselves, and why each
    /// is here, are kept beside the incident, not in it: joining a large incident costs no
    /// more than joining a small one.)
    pub fn add_alert(&mut self, alert: &Alert, now: OffsetDateTime) {
        if let Some(m) = &alert.machine_id {
            insert_sorted(&mut self.devices, m);
        }
        insert_sorted(&mut self.categories, &alert.category);
        if severity_rank(alert.severity) > severity_rank(self.severity) {
            self.severity = alert.severity;
        }
        if alert.status != AlertStatus::Resolved && self.status == IncidentStatus::Resolved {
            self.status = IncidentStatus::Active;
        }
        self.rename(None);
        self.last_update_time = now;
    }

    /// Takes in the summary of `other`, which is being merged into this one: devices,
    /// categories, severity.
    pub fn absorb(&mut self, other: &Incident, now: OffsetDateTime) {
        for d in &other.devices {
            insert_sorted(&mut self.devices, d);
        }
        for c in &other.categories {
            insert_sorted(&mut self.categories, c);
        }
        if severity_rank(other.severity) > severity_rank(self.severity) {
            self.severity = other.severity;
        }
        if other.status == IncidentStatus::Active && self.status == IncidentStatus::Resolved {
            self.status = IncidentStatus::Active;
        }
        self.rename(None);
        self.last_update_time = now;
    }

    /// Marks this incident as merged into `survivor`.
    pub fn redirect_to(&mut self, survivor: i64, now: OffsetDateTime) {
        self.devices.clear();
        self.categories.clear();
        self.status = IncidentStatus::Redirected;
        self.redirect_incident_id = Some(survivor);
        self.last_update_time = now;
    }

    fn rename(&mut self, lone: Option<&Alert>) {
        self.incident_name = incident_name(lone, &self.categories, self.devices.len());
    }

    /// Takes severity (the highest), resolution (all alerts resolved), devices, categories and
    /// name from its alerts.
    pub fn follow_alerts(&mut self, alerts: &[Alert], now: OffsetDateTime) {
        if alerts.is_empty() {
            return;
        }
        let before = (self.severity, self.status, self.incident_name.clone());
        if let Some(max) = highest_severity(alerts) {
            self.severity = max;
        }
        let all_resolved = alerts.iter().all(|a| a.status == AlertStatus::Resolved);
        self.status = match (self.status, all_resolved) {
            (IncidentStatus::Redirected, _) => IncidentStatus::Redirected,
            (_, true) => IncidentStatus::Resolved,
            (IncidentStatus::Resolved, false) => IncidentStatus::Active,
            (s, false) => s,
        };
        self.devices.clear();
        self.categories.clear();
        for a in alerts {
            if let Some(m) = &a.machine_id {
                insert_sorted(&mut self.devices, m);
            }
            insert_sorted(&mut self.categories, &a.category);
        }
        match alerts {
            [alone] => self.rename(Some(alone)),
            _ => self.rename(None),
        }
        if before != (self.severity, self.status, self.incident_name.clone()) {
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
