//! Indicators matched on the ingestion path: a submitted indicator takes effect on the next
//! ingested rows, one alert per indicator and device widens with later matches, an `Allowed`
//! indicator suppresses, a deleted one stops, and a restarted server loads them all again.

use crate::harness::{Server, backends};
use serde_json::{Value, json};
use std::time::Duration;

const SHA256: &str = "4E1B0A4FB7C47E6D2D1E1EC6A0F6C7F2B0A5D2A3E8D4C1B9A7F6E5D4C3B2A190";
const OTHER_SHA256: &str = "1111111111111111111111111111111111111111111111111111111111111111";

fn ts(offset_s: i64) -> String {
    let t = time::OffsetDateTime::now_utc() - time::Duration::minutes(10)
        + time::Duration::seconds(offset_s);
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

fn device(c: char) -> String {
    c.to_string().repeat(40)
}

async fn post(s: &Server, token: &str, path: &str, body: Value) -> (u16, Value) {
    let resp = s
        .http
        .post(format!("{}{path}", s.url))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// The tenant's indicator alerts, by external id.
async fn ti_alerts(s: &Server, token: &str) -> Vec<Value> {
    let resp = s
        .http
        .get(format!(
            "{}/api/alerts?$filter=detectionSource%20eq%20'CustomTI'&$expand=evidence",
            s.url
        ))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let v: Value = resp.json().await.unwrap();
    let mut alerts = v["value"].as_array().cloned().unwrap_or_default();
    alerts.sort_by_key(|a| a["externalId"].as_str().unwrap_or_default().to_owned());
    alerts
}

/// Waits until `count` indicator alerts exist whose `lastEventTime`s satisfy `done`.
async fn wait_alerts(s: &Server, token: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let mut last = Vec::new();
    for _ in 0..100 {
        last = ti_alerts(s, token).await;
        if done(&last) {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the indicator alerts never got there: {last:?}");
}

fn process(offset: i64, dev: char, sha256: &str, report: i64) -> Value {
    json!({"Timestamp": ts(offset), "DeviceId": device(dev), "DeviceName": format!("ws-{dev}"),
           "ActionType": "ProcessCreated", "FileName": "tool.exe",
           "FolderPath": "C:\\Users\\bob\\tool.exe", "SHA256": sha256,
           "ProcessCommandLine": "tool.exe --quiet", "AccountName": "bob", "ReportId": report})
}

fn connection(offset: i64, dev: char, ip: &str, url: &str, report: i64) -> Value {
    json!({"Timestamp": ts(offset), "DeviceId": device(dev), "DeviceName": format!("ws-{dev}"),
           "ActionType": "ConnectionSuccess", "RemoteIP": ip, "RemoteUrl": url, "RemotePort": 443,
           "ReportId": report})
}

#[tokio::test]
async fn ingested_rows_are_matched_against_indicators() {
    let dir = tempfile::tempdir().unwrap();
    for b in backends(dir.path()) {
        let s = Server::start_with(&b, &["--no-rate-limits"]);
        let token = s
            .token_with("Ti.ReadWrite.All,Alert.Read.All,Machine.Read.All,Event.Write")
            .await;
        for dev in ['a', 'b'] {
            s.import(&token,
                "DeviceInfo",
                &[json!({"Timestamp": ts(0), "DeviceId": device(dev), "DeviceName": format!("ws-{dev}"), "OSPlatform": "Windows11"})],
            )
            .await;
        }
        for (value, kind, action, title) in [
            (SHA256, "FileSha256", "Audit", "Known bad tool"),
            ("203.0.113.0/24", "IpAddress", "Block", "Bad hosting range"),
            ("safe.example", "DomainName", "Allowed", "Our CDN"),
        ] {
            let (st, body) = post(
                &s,
                &token,
                "/api/indicators",
                json!({"indicatorValue": value, "indicatorType": kind, "action": action,
                       "title": title, "description": "test", "severity": "Medium",
                       "generateAlert": true, "recommendedActions": "Collect the file"}),
            )
            .await;
            assert_eq!(st, 200, "{}: {body}", b.name);
        }

        // Two rows of the bad tool on ws-a, a connection into the range from ws-a, and from
        // ws-b one into the range to the allowed domain (allow beats block: no alert).
        s.import(
            &token,
            "DeviceProcessEvents",
            &[
                process(10, 'a', SHA256, 1),
                process(20, 'a', SHA256, 2),
                process(30, 'b', OTHER_SHA256, 3),
            ],
        )
        .await;
        s.import(
            &token,
            "DeviceNetworkEvents",
            &[
                connection(40, 'a', "203.0.113.9", "", 4),
                connection(
                    50,
                    'b',
                    "203.0.113.10",
                    "https://cdn.safe.example/app.js",
                    5,
                ),
            ],
        )
        .await;
        let alerts = wait_alerts(&s, &token, |a| a.len() >= 2).await;
        assert_eq!(alerts.len(), 2, "{}: {alerts:?}", b.name);
        let by_title = |t: &str| {
            alerts
                .iter()
                .find(|a| a["title"] == t)
                .unwrap_or_else(|| panic!("{}: no alert '{t}' in {alerts:?}", b.name))
        };
        let file = by_title("Known bad tool");
        assert_eq!(file["severity"], "Medium");
        assert_eq!(file["category"], "Malware");
        assert_eq!(file["machineId"], device('a'));
        assert_eq!(file["computerDnsName"], "ws-a");
        assert!(
            file["description"]
                .as_str()
                .unwrap()
                .contains("Recommended actions: Collect the file")
        );
        let ev = &file["evidence"][0];
        assert_eq!(ev["entityType"], "File");
        assert_eq!(ev["sha256"], SHA256.to_ascii_lowercase());
        assert_eq!(ev["fileName"], "tool.exe");
        assert_eq!(ev["processCommandLine"], "tool.exe --quiet");
        assert_eq!(ev["accountName"], "bob");
        let at = |a: &Value, f: &str| {
            time::OffsetDateTime::parse(
                a[f].as_str().unwrap(),
                &time::format_description::well_known::Rfc3339,
            )
            .unwrap()
        };
        assert_eq!(
            (at(file, "lastEventTime") - at(file, "firstEventTime")).whole_seconds(),
            10,
            "{}: one alert spans both rows",
            b.name
        );
        let net = by_title("Bad hosting range");
        assert_eq!(net["category"], "CommandAndControl");
        assert_eq!(net["evidence"][0]["ipAddress"], "203.0.113.9");
        assert_eq!(net["machineId"], device('a'));

        // A later row widens the same alert instead of adding one.
        let before = at(file, "lastEventTime");
        s.import(
            &token,
            "DeviceProcessEvents",
            &[process(100, 'a', SHA256, 6)],
        )
        .await;
        let alerts = wait_alerts(&s, &token, |a| {
            a.iter()
                .any(|x| x["title"] == "Known bad tool" && at(x, "lastEventTime") > before)
        })
        .await;
        assert_eq!(alerts.len(), 2, "{}: {alerts:?}", b.name);

        // Deleted: the next row on another device raises nothing. Submitted meanwhile: a new
        // indicator matches the very next batch.
        let id = file["detectorId"].as_str().unwrap().to_owned();
        let resp = s
            .http
            .delete(format!("{}/api/indicators/{id}", s.url))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 204);
        let (st, _) = post(
            &s,
            &token,
            "/api/indicators",
            json!({"indicatorValue": OTHER_SHA256, "indicatorType": "FileSha256", "action": "Block",
                   "title": "Second tool", "description": "test", "generateAlert": true}),
        )
        .await;
        assert_eq!(st, 200);
        s.import(
            &token,
            "DeviceProcessEvents",
            &[
                process(110, 'b', SHA256, 7),
                process(120, 'b', OTHER_SHA256, 8),
            ],
        )
        .await;
        let alerts = wait_alerts(&s, &token, |a| a.len() >= 3).await;
        let titles: Vec<&str> = alerts.iter().filter_map(|a| a["title"].as_str()).collect();
        assert_eq!(alerts.len(), 3, "{}: {titles:?}", b.name);
        assert!(titles.contains(&"Second tool"), "{titles:?}");
        assert!(
            !alerts
                .iter()
                .any(|a| a["title"] == "Known bad tool" && a["machineId"] == device('b')),
            "{}: a deleted indicator matched",
            b.name
        );

        // A restarted server loads the stored indicators before it ingests.
        drop(s);
        let s = Server::start_with(&b, &["--no-rate-limits"]);
        // A token names the server's URL, and the port is new.
        let token = s
            .token_with("Ti.ReadWrite.All,Alert.Read.All,Machine.Read.All,Event.Write")
            .await;
        s.import(
            &token,
            "DeviceNetworkEvents",
            &[connection(130, 'b', "203.0.113.77", "", 9)],
        )
        .await;
        let alerts = wait_alerts(&s, &token, |a| a.len() >= 4).await;
        assert!(
            alerts
                .iter()
                .any(|a| a["title"] == "Bad hosting range" && a["machineId"] == device('b')),
            "{}: {alerts:?}",
            b.name
        );
    }
}
