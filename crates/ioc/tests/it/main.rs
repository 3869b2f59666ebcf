//! The indicator matcher end to end: indicators as the store returns them, matched against
//! observations as ingestion extracts them from rows.

mod matching;
mod precedence;
mod updates;

use rampart_core::indicator::Indicator;

/// An indicator as the store holds it; `extra` overrides or adds fields.
pub fn indicator(
    id: u64,
    kind: &str,
    value: &str,
    action: &str,
    extra: serde_json::Value,
) -> Indicator {
    let mut doc = serde_json::json!({
        "id": id.to_string(),
        "indicatorValue": value,
        "indicatorType": kind,
        "action": action,
        "application": null,
        "source": null,
        "sourceType": "AadApp",
        "title": format!("indicator {id}"),
        "description": "test",
        "recommendedActions": null,
        "externalID": null,
        "createdBy": "app",
        "createdBySource": null,
        "createdByDisplayName": null,
        "creationTimeDateTimeUtc": "2026-12-01T00:00:00Z",
        "expirationTime": null,
        "lastUpdateTime": "2026-12-01T00:00:00Z",
        "lastUpdatedBy": null,
        "severity": "High",
        "generateAlert": true,
        "educateUrl": null,
        "rbacGroupNames": [],
        "rbacGroupIds": [],
    });
    if let (Some(d), Some(e)) = (doc.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            d.insert(k.clone(), v.clone());
        }
    }
    serde_json::from_value(doc).expect("a valid indicator document")
}

/// 2026-12-03T12:00:00Z in Unix seconds.
pub const NOW: i64 = 1_796_299_200;
