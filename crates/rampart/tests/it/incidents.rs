//! Incidents and investigations over HTTP.

use crate::harness::{Server, assert_mde_error, backends, seed_alerts, seed_machine};
use serde_json::json;

#[tokio::test]
async fn every_alert_opens_an_incident_and_resolving_it_resolves_the_alerts() {
    let dir = tempfile::tempdir().unwrap();
    for b in backends(dir.path()) {
        let s = Server::start_with(&b, &["--no-rate-limits"]);
        let alerts = seed_alerts(&b, &s.tenant, 0, 150).await;
        let read = s.token_with("Incident.Read.All").await;
        let write = s.token_with("Incident.ReadWrite.All").await;

        let (st, page) = s.get("/api/incidents", Some(&read)).await;
        assert_eq!(st, 200, "{}: {page}", b.name);
        let value = page["value"].as_array().unwrap();
        assert_eq!(value.len(), 100, "pages of 100");
        assert!(page["@odata.nextLink"].is_string());
        let first = &value[0];
        assert_eq!(first["alerts"].as_array().unwrap().len(), 1);
        assert!(first.get("alertIds").is_none());
        let (st, e) = s.get("/api/incidents?$top=101", Some(&read)).await;
        assert_eq!(st, 400);
        assert_mde_error(&e, "ODataError");

        let alert = alerts
            .iter()
            .find(|a| a.status != rampart_core::alert::AlertStatus::Resolved)
            .unwrap();
        let (_, before) = s
            .get(
                "/api/incidents?$filter=status eq 'Resolved'&$top=100&$count=true",
                Some(&read),
            )
            .await;
        let resolved_before = before["@odata.count"].as_i64().unwrap();
        let (_, a) = s
            .get(
                &format!("/api/alerts/{}", alert.id),
                Some(&s.token_with("Alert.Read.All").await),
            )
            .await;
        let incident_id = a["incidentId"].as_i64().expect("the alert has an incident");
        let (st, inc) = s
            .get(&format!("/api/incidents/{incident_id}"), Some(&read))
            .await;
        assert_eq!(st, 200);
        assert_eq!(inc["alerts"][0]["alertId"], alert.id);
        assert_eq!(inc["severity"], a["severity"]);

        let patch = |body: serde_json::Value| {
            let req = s
                .http
                .patch(format!("{}/api/incidents/{incident_id}", s.url))
                .bearer_auth(&write)
                .json(&body);
            async move {
                let r = req.send().await.unwrap();
                (
                    r.status().as_u16(),
                    r.json::<serde_json::Value>().await.unwrap(),
                )
            }
        };
        let (st, e) =
            patch(json!({"classification": "FalsePositive", "determination": "Malware"})).await;
        assert_eq!(st, 400, "determination only with TruePositive: {e}");
        let (st, inc) = patch(json!({"status": "Resolved", "classification": "TruePositive", "determination": "CompromisedAccount", "tags": ["ransomware"], "comment": "contained"})).await;
        assert_eq!(st, 200, "{inc}");
        assert_eq!(
            (inc["status"].as_str(), inc["determination"].as_str()),
            (Some("Resolved"), Some("CompromisedUser"))
        );
        assert_eq!(
            inc["alerts"][0]["status"], "Resolved",
            "resolving the incident resolved its alert"
        );
        assert_eq!(inc["comments"][0]["comment"], "contained");
        let (st, _) = s.get("/api/incidents/999999", Some(&read)).await;
        assert_eq!(st, 404);
        let (_, after) = s
            .get(
                "/api/incidents?$filter=status eq 'Resolved'&$count=true",
                Some(&read),
            )
            .await;
        assert_eq!(after["@odata.count"].as_i64(), Some(resolved_before + 1));
    }
}

#[tokio::test]
async fn investigations_start_on_a_machine_and_are_listed() {
    let dir = tempfile::tempdir().unwrap();
    for b in backends(dir.path()) {
        let s = Server::start_with(&b, &["--no-rate-limits"]);
        let web = seed_machine(&b, &s.tenant, "web-1.corp.example").await;
        let w = s.token_with("Alert.ReadWrite.All").await;
        let start = |machine: String, body: serde_json::Value| {
            let req = s
                .http
                .post(format!(
                    "{}/api/machines/{machine}/startInvestigation",
                    s.url
                ))
                .bearer_auth(&w)
                .json(&body);
            async move {
                let r = req.send().await.unwrap();
                (
                    r.status().as_u16(),
                    r.json::<serde_json::Value>().await.unwrap(),
                )
            }
        };
        let (st, inv) = start(web.id.clone(), json!({"Comment": "suspicious beaconing"})).await;
        assert_eq!(st, 201, "{}: {inv}", b.name);
        assert_eq!(
            (inv["state"].as_str(), inv["machineId"].as_str()),
            (Some("Queued"), Some(web.id.as_str()))
        );
        let (st, e) = start(web.id.clone(), json!({})).await;
        assert_eq!(st, 400);
        assert_mde_error(&e, "MissingRequiredParameter");
        let (st, _) = start("00".repeat(20), json!({"Comment": "x"})).await;
        assert_eq!(st, 404);

        let read = s.token_with("Alert.Read.All").await;
        let (st, got) = s
            .get(
                &format!("/api/investigations/{}", inv["id"].as_str().unwrap()),
                Some(&read),
            )
            .await;
        assert_eq!((st, got["id"].clone()), (200, inv["id"].clone()));
        let (_, list) = s
            .get(
                &format!("/api/investigations?$filter=machineId eq '{}'", web.id),
                Some(&read),
            )
            .await;
        assert_eq!(list["value"].as_array().unwrap().len(), 1);
        assert!(
            list["@odata.context"]
                .as_str()
                .unwrap()
                .ends_with("#Investigations")
        );
    }
}
