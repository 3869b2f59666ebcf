//! The alert write side and external alerts over HTTP.

use crate::harness::{Server, assert_mde_error, backends, seed_alerts, seed_machine};
use serde_json::json;

async fn send(
    s: &Server,
    method: &str,
    path: &str,
    token: &str,
    body: serde_json::Value,
) -> (u16, serde_json::Value) {
    let r = s
        .http
        .request(method.parse().unwrap(), format!("{}{path}", s.url))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let st = r.status().as_u16();
    (st, r.json().await.unwrap_or(serde_json::Value::Null))
}

#[tokio::test]
async fn patch_and_batch_update_validate_and_never_lose_a_concurrent_update() {
    let dir = tempfile::tempdir().unwrap();
    for b in backends(dir.path()) {
        let s = Server::start_with(&b, &["--no-rate-limits"]);
        let alerts = seed_alerts(&b, &s.tenant, 0, 5).await;
        let w = s.token_with("Alert.ReadWrite.All").await;
        let id = &alerts[0].id;

        let (st, a) = send(&s, "PATCH", &format!("/api/alerts/{id}"), &w, json!({"status": "InProgress", "assignedTo": "secops@contoso.com", "classification": "TruePositive", "determination": "Malware", "comment": "looking"})).await;
        assert_eq!(st, 200, "{}: {a}", b.name);
        assert_eq!(
            (a["status"].as_str(), a["determination"].as_str()),
            (Some("InProgress"), Some("Malware"))
        );
        assert_eq!(a["comments"][0]["comment"], "looking");
        // Spelling variants are accepted and stored canonically.
        let (_, a) = send(
            &s,
            "PATCH",
            &format!("/api/alerts/{id}"),
            &w,
            json!({"classification": "FalsePositive", "determination": "NotMalicious"}),
        )
        .await;
        assert_eq!(a["determination"], "Clean");
        for (body, code) in [
            (
                json!({"classification": "FalsePositive", "determination": "Malware"}),
                "InvalidInput",
            ),
            (json!({"status": "Closed"}), "InvalidRequestBody"),
            (json!({"determination": "Whatever"}), "InvalidRequestBody"),
        ] {
            let (st, e) = send(&s, "PATCH", &format!("/api/alerts/{id}"), &w, body.clone()).await;
            assert_eq!(st, 400, "{body}");
            assert_mde_error(&e, code);
        }
        let (st, _) = send(
            &s,
            "PATCH",
            "/api/alerts/nope",
            &w,
            json!({"status": "New"}),
        )
        .await;
        assert_eq!(st, 404);

        // Twenty analysts comment at once: every comment lands.
        let mut tasks = Vec::new();
        for n in 0..20 {
            let (http, url, w) = (
                s.http.clone(),
                format!("{}/api/alerts/{}", s.url, alerts[1].id),
                w.clone(),
            );
            tasks.push(tokio::spawn(async move {
                http.patch(url)
                    .bearer_auth(w)
                    .json(&json!({"comment": format!("note {n}")}))
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16()
            }));
        }
        for t in tasks {
            assert_eq!(t.await.unwrap(), 200);
        }
        let (_, a) = s
            .get(&format!("/api/alerts/{}", alerts[1].id), Some(&w))
            .await;
        assert_eq!(
            a["comments"].as_array().unwrap().len(),
            20,
            "{}: no update lost",
            b.name
        );

        // batchUpdate: all or nothing.
        let ids: Vec<&str> = alerts.iter().map(|a| a.id.as_str()).collect();
        let (st, e) = send(
            &s,
            "POST",
            "/api/alerts/batchUpdate",
            &w,
            json!({"alertIds": [ids[2], "missing"], "status": "Resolved"}),
        )
        .await;
        assert_eq!(st, 404, "{e}");
        let (_, a) = s.get(&format!("/api/alerts/{}", ids[2]), Some(&w)).await;
        assert_ne!(a["status"], "Resolved");
        let (st, _) = send(
            &s,
            "POST",
            "/api/alerts/batchUpdate",
            &w,
            json!({"alertIds": ids, "status": "Resolved", "comment": "bulk"}),
        )
        .await;
        assert_eq!(st, 200);
        let (_, resolved) = s
            .get(
                "/api/alerts?$filter=status eq 'Resolved'&$count=true",
                Some(&w),
            )
            .await;
        assert_eq!(resolved["@odata.count"], 5);
        assert!(resolved["value"][0]["resolvedTime"].is_string());
        let (st, e) = send(
            &s,
            "POST",
            "/api/alerts/batchUpdate",
            &w,
            json!({"status": "Resolved"}),
        )
        .await;
        assert_eq!(st, 400);
        assert_mde_error(&e, "MissingRequiredParameter");
        let many: Vec<String> = (0..501).map(|n| n.to_string()).collect();
        let (st, e) = send(
            &s,
            "POST",
            "/api/alerts/batchUpdate",
            &w,
            json!({"alertIds": many}),
        )
        .await;
        assert_eq!(st, 400);
        assert!(
            assert_mde_error(&e, "MaximumBatchSizeExceeded")
                .contains("Received: 501, allowed: 500")
        );
    }
}

#[tokio::test]
async fn external_alerts_are_idempotent_resolve_their_device_and_list_beside_device_alerts() {
    let dir = tempfile::tempdir().unwrap();
    for b in backends(dir.path()) {
        let s = Server::start_with(&b, &["--no-rate-limits"]);
        let web = seed_machine(&b, &s.tenant, "web-1.corp.example").await;
        seed_alerts(&b, &s.tenant, 0, 3).await;
        let w = s.token_with("Alert.ReadWrite.All").await;
        let now = rampart_core::timefmt::format(time::OffsetDateTime::now_utc());
        let batch = json!({"Alerts": [
            {"sourceProduct": "Contoso NDR", "externalId": "ndr-1", "title": "Beaconing to known C2", "severity": "High",
             "category": "CommandAndControl", "lastEventTime": now, "mitreTechniques": ["T1071"],
             "evidence": [{"entityType": "Device", "ipAddress": "10.1.2.3"}, {"entityType": "Ip", "ipAddress": "203.0.113.7"},
                          {"entityType": "Url", "url": "https://c2.evil.example/beacon"}]},
            {"sourceProduct": "Contoso Mail", "externalId": "m-9", "title": "Phishing link clicked", "severity": "Medium",
             "evidence": [{"entityType": "Device", "computerDnsName": "web-1.corp.example"}, {"entityType": "User", "accountName": "alice", "domainName": "corp"},
                          {"entityType": "File", "sha256": "AB".repeat(32)}]},
            {"sourceProduct": "Contoso Mail", "externalId": "m-10", "title": "No severity"},
            {"sourceProduct": "Other EDR", "externalId": "e-1", "title": "Unknown device", "severity": "Low",
             "evidence": [{"entityType": "Device", "machineId": "ff".repeat(20)}]}
        ]});
        let (st, res) = send(&s, "POST", "/api/alerts/import", &w, batch.clone()).await;
        assert_eq!(st, 200, "{}: {res}", b.name);
        let items = res["value"].as_array().unwrap();
        assert_eq!(items.len(), 4);
        assert_eq!(
            (
                items[0]["isFailed"].as_bool(),
                items[0]["created"].as_bool()
            ),
            (Some(false), Some(true))
        );
        assert_eq!(
            items[0]["machineId"], web.id,
            "resolved by IP at the event time"
        );
        assert_eq!(items[1]["machineId"], web.id, "resolved by name");
        assert_eq!(items[2]["isFailed"], true);
        assert!(
            items[2]["failureReason"]
                .as_str()
                .unwrap()
                .contains("severity")
        );
        assert!(items[3]["machineId"].is_null());

        // Re-sending never duplicates.
        let (_, again) = send(&s, "POST", "/api/alerts/import", &w, batch).await;
        assert_eq!(again["value"][0]["id"], items[0]["id"]);
        assert_eq!(again["value"][0]["created"], false);
        let (_, ndr) = s
            .get(
                "/api/alerts?$filter=detectionSource eq 'Contoso NDR'&$count=true",
                Some(&w),
            )
            .await;
        assert_eq!(ndr["@odata.count"], 1);
        let (_, all) = s.get("/api/alerts?$count=true", Some(&w)).await;
        assert_eq!(
            all["@odata.count"], 6,
            "three device alerts and three imported ones, side by side"
        );

        // Their entities answer the related-entity routes.
        let id = items[0]["id"].as_str().unwrap();
        let (st, ips) = s
            .get(
                &format!("/api/alerts/{id}/ips"),
                Some(&s.token_with("Ip.Read.All").await),
            )
            .await;
        assert_eq!(
            (st, ips["value"].clone()),
            (200, json!([{"id": "203.0.113.7"}]))
        );
        let (_, domains) = s
            .get(
                &format!("/api/alerts/{id}/domains"),
                Some(&s.token_with("Url.Read.All").await),
            )
            .await;
        assert_eq!(domains["value"], json!([{"host": "c2.evil.example"}]));
        let (_, machine) = s
            .get(
                &format!("/api/alerts/{id}/machine"),
                Some(&s.token_with("Machine.Read.All").await),
            )
            .await;
        assert_eq!(machine["id"], web.id);
        let mail = items[1]["id"].as_str().unwrap();
        let (_, files) = s
            .get(
                &format!("/api/alerts/{mail}/files"),
                Some(&s.token_with("File.Read.All").await),
            )
            .await;
        assert_eq!(files["value"][0]["sha256"], "ab".repeat(32));
        let (_, user) = s
            .get(
                &format!("/api/alerts/{mail}/user"),
                Some(&s.token_with("User.Read.All").await),
            )
            .await;
        assert_eq!(user["id"], "corp\\alice");
        let (st, _) = s
            .get(
                &format!("/api/alerts/{id}/user"),
                Some(&s.token_with("User.Read.All").await),
            )
            .await;
        assert_eq!(st, 404, "no user on that alert");
        let (_, expanded) = s
            .get(
                "/api/alerts?$expand=evidence&$filter=detectionSource eq 'Contoso NDR'",
                Some(&w),
            )
            .await;
        assert_eq!(
            expanded["value"][0]["evidence"].as_array().unwrap().len(),
            2
        );

        let too_many = json!({"Alerts": vec![json!({}); 501]});
        let (st, e) = send(&s, "POST", "/api/alerts/import", &w, too_many).await;
        assert_eq!(st, 400);
        assert_mde_error(&e, "MaximumBatchSizeExceeded");
    }
}

#[tokio::test]
async fn create_alert_by_reference_checks_its_body_and_needs_a_recorded_event() {
    let dir = tempfile::tempdir().unwrap();
    let b = &backends(dir.path())[0];
    let s = Server::start_with(b, &["--no-rate-limits"]);
    let web = seed_machine(b, &s.tenant, "web-1.corp.example").await;
    let w = s.token_with("Alert.ReadWrite.All").await;
    let body = json!({"eventTime": "2024-08-03T16:45:21.7115183Z", "reportId": "20776", "machineId": web.id, "severity": "Low",
                      "title": "t", "description": "d", "recommendedAction": "r", "category": "Exploit"});
    let (st, e) = send(
        &s,
        "POST",
        "/api/alerts/CreateAlertByReference",
        &w,
        body.clone(),
    )
    .await;
    assert_eq!(st, 404);
    assert!(assert_mde_error(&e, "ResourceNotFound").contains("20776"));
    let mut missing = body.clone();
    missing.as_object_mut().unwrap().remove("recommendedAction");
    let (st, e) = send(
        &s,
        "POST",
        "/api/alerts/CreateAlertByReference",
        &w,
        missing,
    )
    .await;
    assert_eq!(st, 400);
    assert!(assert_mde_error(&e, "MissingRequiredParameter").contains("recommendedAction"));
    let mut bad = body.clone();
    bad["category"] = json!("Nonsense");
    assert_eq!(
        send(&s, "POST", "/api/alerts/CreateAlertByReference", &w, bad)
            .await
            .0,
        400
    );
    let mut unknown = body;
    unknown["machineId"] = json!("00".repeat(20));
    assert_eq!(
        send(
            &s,
            "POST",
            "/api/alerts/CreateAlertByReference",
            &w,
            unknown
        )
        .await
        .0,
        404
    );
}
