//! Signal sharing: an analyst's malware verdict on an alert makes its file and remote address
//! tenant-wide blocking indicators, which devices get in their enforcement set and which a
//! retro-hunt looks for in stored telemetry — the device that ran the file before gets an alert.

use crate::correlation::{device_alert, file};
use crate::harness::{Server, backends};
use rampart_core::alert::Evidence;
use serde_json::{Value, json};
use std::time::Duration;
use time::OffsetDateTime;

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

async fn indicator(s: &Server, token: &str, value: &str) -> Option<Value> {
    let (st, v) = s
        .get(
            &format!("/api/indicators?$filter=indicatorValue eq '{value}'"),
            Some(token),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    v["value"].as_array().unwrap().first().cloned()
}

#[tokio::test]
async fn a_malware_verdict_blocks_what_the_alert_names_and_finds_where_it_was_seen() {
    let dir = tempfile::tempdir().unwrap();
    for b in backends(dir.path()) {
        let s = Server::start_with(&b, &["--no-rate-limits"]);
        let token = s
            .token_with("Alert.ReadWrite.All,Ti.ReadWrite.All,Machine.Read.All,Event.Write")
            .await;
        let sha256 = format!("{:064x}", 0x5ead_u64 + u64::from(b.name == "postgres"));
        let enrolled = crate::telemetry::enroll(&s, "ws-seen.corp.example").await;
        let (patient_zero, seen) = (format!("{:040x}", 0xa1), enrolled.id.clone());
        // The file ran on another device two hours ago, before anyone knew.
        let now = OffsetDateTime::now_utc();
        s.import(
            &token,
            "DeviceProcessEvents",
            &[
                json!({"Timestamp": rfc3339(now - time::Duration::hours(2)), "DeviceId": seen,
                     "DeviceName": "ws-seen", "ActionType": "ProcessCreated", "FileName": "dropper",
                     "FolderPath": "/tmp/dropper", "SHA256": sha256, "ReportId": 1}),
            ],
        )
        .await;

        let alert = device_alert(
            &b,
            &s,
            1,
            &patient_zero,
            "Malware",
            now,
            vec![
                file(&sha256),
                Evidence {
                    entity_type: "Ip".into(),
                    ip_address: Some("198.51.100.77".into()),
                    ..Default::default()
                },
                Evidence {
                    entity_type: "Ip".into(),
                    ip_address: Some("10.0.0.5".into()),
                    ..Default::default()
                },
            ],
        )
        .await;
        assert!(indicator(&s, &token, &sha256).await.is_none());

        // Classified, but not malware: nothing is shared.
        let patch = |body: Value| {
            let (s, token, id) = (&s, &token, alert.id.clone());
            async move {
                let (st, v) = s
                    .send("PATCH", &format!("/api/alerts/{id}"), token, Some(body))
                    .await;
                assert_eq!(st, 200, "{v}");
            }
        };
        patch(json!({"classification": "TruePositive", "determination": "Phishing"})).await;
        assert!(indicator(&s, &token, &sha256).await.is_none());
        patch(json!({"determination": "Malware"})).await;

        let shared = indicator(&s, &token, &sha256)
            .await
            .expect("the file is shared");
        assert_eq!(shared["indicatorType"], "FileSha256");
        assert_eq!(shared["action"], "BlockAndRemediate");
        assert_eq!(shared["generateAlert"], true);
        assert_eq!(shared["createdByDisplayName"], "Rampart signal sharing");
        assert!(
            shared["description"].as_str().unwrap().contains(&alert.id),
            "{shared}"
        );
        let expires = OffsetDateTime::parse(
            shared["expirationTime"].as_str().unwrap(),
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap();
        assert!((expires - now - time::Duration::days(30)).abs() < time::Duration::hours(1));
        let ip = indicator(&s, &token, "198.51.100.77")
            .await
            .expect("the C2 address");
        assert_eq!(ip["action"], "Block");
        assert!(
            indicator(&s, &token, "10.0.0.5").await.is_none(),
            "internal addresses are never blocked tenant-wide"
        );

        // Every device enforces it from its next sync.
        let resp = s
            .http
            .get(format!("{}/agent/v1/indicators", s.url))
            .header("authorization", &enrolled.auth)
            .send()
            .await
            .unwrap();
        let set: Value = resp.json().await.unwrap();
        assert!(
            set["files"]
                .as_array()
                .unwrap()
                .iter()
                .any(|f| f["hash"] == sha256.as_str() && f["action"] == "Block"),
            "{set}"
        );

        // The retro-hunt finds the device that ran it before.
        let mut found = Value::Null;
        for _ in 0..100 {
            let (_, v) = s
                .get(
                    &format!("/api/alerts?$filter=machineId eq '{seen}'"),
                    Some(&token),
                )
                .await;
            if let Some(a) = v["value"].as_array().and_then(|a| a.first()) {
                found = a.clone();
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(
            found["description"]
                .as_str()
                .is_some_and(|d| d.contains("Retrospective")),
            "{}: {found}",
            b.name
        );
    }
}

#[tokio::test]
async fn a_high_confidence_external_alert_is_shared_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let b = &backends(dir.path())[0];
    let s = Server::start_with(b, &["--no-rate-limits"]);
    let token = s.token_with("Alert.ReadWrite.All,Ti.ReadWrite.All").await;
    let now = rfc3339(OffsetDateTime::now_utc());
    let item = |id: &str, confidence: &str, url: &str| {
        json!({"sourceProduct": "Contoso Mail", "externalId": id, "title": "Malicious link",
               "severity": "High", "category": "InitialAccess", "lastEventTime": now,
               "confidence": confidence, "evidence": [{"entityType": "Url", "url": url}]})
    };
    let (st, v) = s
        .post(
            "/api/alerts/import",
            &token,
            json!({"Alerts": [
                item("m-1", "High", "https://phish.example/login"),
                item("m-2", "Medium", "https://maybe.example/x"),
                item("m-3", "Certain", "https://never.example/x"),
            ]}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["value"][2]["isFailed"], true);
    assert!(
        v["value"][2]["failureReason"]
            .as_str()
            .unwrap()
            .contains("confidence")
    );
    let shared = indicator(&s, &token, "https://phish.example/login")
        .await
        .expect("the high-confidence URL is shared");
    assert_eq!(shared["indicatorType"], "Url");
    assert_eq!(shared["action"], "Block");
    assert!(
        shared["description"]
            .as_str()
            .unwrap()
            .contains("Contoso Mail reported it with high confidence")
    );
    assert!(
        indicator(&s, &token, "https://maybe.example/x")
            .await
            .is_none()
    );
}

#[tokio::test]
async fn the_tenant_decides_what_is_shared_and_for_how_long() {
    let dir = tempfile::tempdir().unwrap();
    let b = &backends(dir.path())[0];
    let s = Server::start_with(b, &["--no-rate-limits"]);
    let token = s.token_with("Alert.ReadWrite.All,Ti.ReadWrite.All").await;
    let admin = s.token_with("SecurityConfiguration.ReadWrite.All").await;
    let (st, p) = s.get("/api/signalsharingpolicy", Some(&admin)).await;
    assert_eq!(st, 200);
    assert_eq!(
        p,
        json!({"enabled": true, "expiryDays": 30, "types": ["FileSha256", "FileSha1", "IpAddress", "Url"]})
    );
    for bad in [
        json!({"enabled": true, "expiryDays": 0, "types": []}),
        json!({"enabled": true, "expiryDays": 7, "types": ["DomainName"]}),
        json!({"enabled": true, "expiryDays": 7, "types": ["Nope"]}),
        json!({"enabled": true}),
    ] {
        let (st, e) = s
            .send("PUT", "/api/signalsharingpolicy", &admin, Some(bad.clone()))
            .await;
        assert_eq!(st, 400, "{bad}: {e}");
    }
    let set = |policy: Value| {
        let (s, admin) = (&s, &admin);
        async move {
            let (st, v) = s
                .send("PUT", "/api/signalsharingpolicy", admin, Some(policy))
                .await;
            assert_eq!(st, 200, "{v}");
        }
    };
    let verdict = |n: u64, sha256: String, ip: &'static str| {
        let (s, b, token) = (&s, b, &token);
        async move {
            let alert = device_alert(
                b,
                s,
                n,
                &format!("{n:040x}"),
                "Malware",
                OffsetDateTime::now_utc(),
                vec![
                    file(&sha256),
                    Evidence {
                        entity_type: "Ip".into(),
                        ip_address: Some(ip.into()),
                        ..Default::default()
                    },
                ],
            )
            .await;
            let (st, v) = s
                .send(
                    "PATCH",
                    &format!("/api/alerts/{}", alert.id),
                    token,
                    Some(json!({"classification": "TruePositive", "determination": "Malware"})),
                )
                .await;
            assert_eq!(st, 200, "{v}");
        }
    };

    // Files only, for a week.
    set(json!({"enabled": true, "expiryDays": 7, "types": ["FileSha256"]})).await;
    let (week_file, week_ip) = ("7a".repeat(32), "198.51.100.71");
    verdict(1, week_file.clone(), week_ip).await;
    let shared = indicator(&s, &token, &week_file).await.expect("the file");
    let expires = OffsetDateTime::parse(
        shared["expirationTime"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let left = expires - OffsetDateTime::now_utc();
    assert!(
        left > time::Duration::days(6) && left <= time::Duration::days(7),
        "{shared}"
    );
    assert!(
        indicator(&s, &token, week_ip).await.is_none(),
        "addresses are not shared"
    );

    // Off: nothing.
    set(json!({"enabled": false, "expiryDays": 30, "types": ["FileSha256", "IpAddress"]})).await;
    let off_file = "0f".repeat(32);
    verdict(2, off_file.clone(), "198.51.100.72").await;
    assert!(indicator(&s, &token, &off_file).await.is_none());
    assert!(indicator(&s, &token, "198.51.100.72").await.is_none());
}
