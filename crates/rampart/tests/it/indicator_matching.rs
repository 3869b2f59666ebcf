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
    s.post(path, token, body).await
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
            .token_with("Ti.ReadWrite.All,Alert.Read.All,Machine.Read.All,Event.Write,AdvancedQuery.Read.All")
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
        assert_eq!(file["eventCount"], 2, "{}: and counts them", b.name);
        let net = by_title("Bad hosting range");
        assert_eq!(net["category"], "CommandAndControl");
        assert_eq!(net["evidence"][0]["ipAddress"], "203.0.113.9");
        assert_eq!(net["machineId"], device('a'));
        assert_eq!(net["eventCount"], 1);

        // The alerts are hunting rows too, joined to their evidence.
        let q = "AlertInfo | where DetectionSource == 'CustomTI' \
                 | join kind=inner (AlertEvidence | where EntityType != 'Machine') on AlertId \
                 | project Title, Category, EntityType, SHA256, RemoteIP, DeviceId, ServiceSource \
                 | sort by Title asc";
        // Written just after the alert itself.
        let mut v = Value::Null;
        for _ in 0..50 {
            let (st, got) = post(&s, &token, "/api/advancedqueries/run", json!({"Query": q})).await;
            assert_eq!(st, 200, "{}: {got}", b.name);
            v = got;
            if v["Results"].as_array().is_some_and(|r| r.len() >= 2) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let rows = v["Results"].as_array().unwrap();
        assert_eq!(rows.len(), 2, "{}: {v}", b.name);
        assert_eq!(rows[0]["Title"], "Bad hosting range");
        assert_eq!(rows[0]["EntityType"], "Ip");
        assert_eq!(rows[0]["RemoteIP"], "203.0.113.9");
        assert_eq!(rows[0]["DeviceId"], device('a'));
        assert_eq!(rows[1]["Title"], "Known bad tool");
        assert_eq!(rows[1]["Category"], "Malware");
        assert_eq!(rows[1]["SHA256"], SHA256.to_ascii_lowercase());
        assert_eq!(rows[1]["ServiceSource"], "Rampart");

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
        let widened = alerts
            .iter()
            .find(|x| x["title"] == "Known bad tool")
            .unwrap();
        assert_eq!(widened["eventCount"], 3, "{}: {widened}", b.name);

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

/// Each alert's title and device, sorted.
fn titles_and_devices(alerts: &[Value]) -> Vec<(String, String)> {
    let mut found: Vec<(String, String)> = alerts
        .iter()
        .map(|a| {
            (
                a["title"].as_str().unwrap().to_owned(),
                a["machineId"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    found.sort();
    found
}

fn days_ago(days: i64) -> String {
    let t = time::OffsetDateTime::now_utc() - time::Duration::days(days);
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

/// Indicators submitted after the telemetry arrived are searched for in it: on submission
/// (gathered into one hunt) and on demand, with the matcher's precedence and the lookback bound.
#[tokio::test]
async fn new_indicators_are_hunted_for_in_stored_telemetry() {
    const MD5: &str = "0123456789abcdef0123456789abcdef";
    let dir = tempfile::tempdir().unwrap();
    for b in backends(dir.path()) {
        let s = Server::start_with(&b, &["--no-rate-limits"]);
        let token = s
            .token_with("Ti.ReadWrite.All,Alert.Read.All,Machine.Read.All,Event.Write")
            .await;
        // Upper-case hashes as some agents send them; one row three days old.
        let mut old = process(0, 'e', SHA256, 1);
        old["Timestamp"] = json!(days_ago(3));
        let mut allowed = process(20, 'b', OTHER_SHA256, 3);
        allowed["MD5"] = json!(MD5);
        s.import(
            &token,
            "DeviceProcessEvents",
            &[old, process(10, 'a', SHA256, 2), allowed],
        )
        .await;
        s.import(
            &token,
            "DeviceNetworkEvents",
            &[
                connection(30, 'c', "198.51.100.23", "", 4),
                connection(
                    40,
                    'd',
                    "192.0.2.1",
                    "https://WWW.Evil.Example:443/dl/x.bin",
                    5,
                ),
                connection(50, 'f', "192.0.2.2", "https://notevil.example/", 6),
            ],
        )
        .await;
        assert!(ti_alerts(&s, &token).await.is_empty());

        let submit = |value: &str, kind: &str, action: &str, alert: bool| {
            json!({"indicatorValue": value, "indicatorType": kind, "action": action,
                   "title": format!("{kind} {action}"), "description": "retro test",
                   "generateAlert": alert})
        };
        // The SHA-256 of ws-b's file is allowed, so its MD5 block decides nothing there.
        let (st, _) = post(
            &s,
            &token,
            "/api/indicators",
            submit(OTHER_SHA256, "FileSha256", "Allowed", false),
        )
        .await;
        assert_eq!(st, 200);
        let (st, body) = post(
            &s,
            &token,
            "/api/indicators/import",
            json!({"Indicators": [
                submit(SHA256, "FileSha256", "Audit", true),
                submit("198.51.100.0/24", "IpAddress", "Block", true),
                submit("evil.example", "DomainName", "Warn", true),
                submit(MD5, "FileMd5", "Block", true),
            ]}),
        )
        .await;
        assert_eq!(st, 200, "{}: {body}", b.name);
        let ids: Vec<String> = body["value"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_owned())
            .collect();

        let alerts = wait_alerts(&s, &token, |a| a.len() >= 4).await;
        let found = titles_and_devices(&alerts);
        let expected: Vec<(String, String)> = [
            ("DomainName Warn", 'd'),
            ("FileSha256 Audit", 'a'),
            ("FileSha256 Audit", 'e'),
            ("IpAddress Block", 'c'),
        ]
        .iter()
        .map(|(t, d)| (t.to_string(), device(*d)))
        .collect();
        assert_eq!(found, expected, "{}", b.name);
        for a in &alerts {
            let d = a["description"].as_str().unwrap();
            assert!(d.contains("Retrospective"), "{}: {d}", b.name);
        }
        let old_alert = alerts
            .iter()
            .find(|a| a["machineId"] == device('e'))
            .unwrap();
        assert!(
            old_alert["firstEventTime"].as_str().unwrap() < days_ago(2).as_str(),
            "{}: {old_alert}",
            b.name
        );

        // On demand, one day back: the three-day-old row is outside; the alert on ws-a is the
        // one already raised.
        let (st, report) = post(
            &s,
            &token,
            &format!("/api/indicators/{}/retrohunt", ids[0]),
            json!({"lookbackDays": 1}),
        )
        .await;
        assert_eq!(st, 200, "{}: {report}", b.name);
        let hits = report["hits"].as_array().unwrap();
        assert_eq!(hits.len(), 1, "{}: {report}", b.name);
        assert_eq!(hits[0]["deviceId"], device('a'));
        assert_eq!(hits[0]["indicatorId"], ids[0]);
        assert!(report["rowsChecked"].as_u64().unwrap() >= 1);
        let on_a = alerts
            .iter()
            .find(|a| a["machineId"] == device('a'))
            .unwrap();
        assert_eq!(report["alertIds"], json!([on_a["id"]]), "{}", b.name);
        assert_eq!(hits[0]["events"], 1, "{}: {report}", b.name);
        let after = ti_alerts(&s, &token).await;
        assert_eq!(after.len(), 4, "{}: no new alert", b.name);
        let on_a = after
            .iter()
            .find(|a| a["machineId"] == device('a'))
            .unwrap();
        assert_eq!(
            on_a["eventCount"], 1,
            "{}: a second hunt over the same row recounts it, never adds it again",
            b.name
        );

        // Without generateAlert a hunt reports what it found and raises nothing.
        let (st, body) = post(
            &s,
            &token,
            "/api/indicators",
            submit("notevil.example", "DomainName", "Audit", false),
        )
        .await;
        // Audit requires generateAlert.
        assert_eq!(st, 400, "{body}");
        let (st, body) = post(
            &s,
            &token,
            "/api/indicators",
            submit("notevil.example", "DomainName", "Block", false),
        )
        .await;
        assert_eq!(st, 200, "{body}");
        let quiet = body["id"].as_str().unwrap().to_owned();
        let (st, report) = post(
            &s,
            &token,
            &format!("/api/indicators/{quiet}/retrohunt"),
            json!({}),
        )
        .await;
        assert_eq!(st, 200, "{report}");
        assert_eq!(report["hits"].as_array().unwrap().len(), 1, "{report}");
        assert_eq!(report["hits"][0]["deviceId"], device('f'));
        assert_eq!(report["alertIds"], json!([]));

        // Bad requests.
        let (st, body) = post(&s, &token, "/api/indicators/999999/retrohunt", json!({})).await;
        assert_eq!(st, 404, "{body}");
        let (st, body) = post(
            &s,
            &token,
            &format!("/api/indicators/{}/retrohunt", ids[0]),
            json!({"lookbackDays": 0}),
        )
        .await;
        assert_eq!(st, 400, "{body}");
        crate::harness::assert_mde_error(&body, "InvalidInput");
        let (st, body) = post(
            &s,
            &token,
            &format!("/api/indicators/{}/retrohunt", ids[0]),
            json!({"lookback": 3}),
        )
        .await;
        assert_eq!(st, 400, "{body}");
    }
}

/// A feed-sized import is hunted for as one set (not an `IN` list of every value): the rows
/// holding one of its hashes (in upper case) or addresses still raise their alerts, and the
/// decoys beside them raise none.
#[tokio::test]
async fn a_feed_sized_import_is_hunted_for_as_one_set() {
    let dir = tempfile::tempdir().unwrap();
    for b in backends(dir.path()) {
        let s = Server::start_with(&b, &["--no-rate-limits"]);
        let token = s
            .token_with("Ti.ReadWrite.All,Alert.Read.All,Machine.Read.All,Event.Write")
            .await;
        s.import(
            &token,
            "DeviceProcessEvents",
            &[process(10, 'a', SHA256, 1)],
        )
        .await;
        s.import(
            &token,
            "DeviceNetworkEvents",
            &[
                connection(20, 'b', "203.0.113.77", "", 2),
                connection(30, 'c', "203.0.113.78", "", 3),
            ],
        )
        .await;
        let item = |value: String, kind: &str| {
            json!({"indicatorValue": value, "indicatorType": kind, "action": "Audit",
                   "title": format!("feed {kind}"), "description": "feed", "generateAlert": true})
        };
        let mut items: Vec<Value> = (0..300u32)
            .map(|n| item(format!("{n:064x}"), "FileSha256"))
            .collect();
        items.extend(
            (1..=150u32).map(|n| item(format!("198.51.{}.{}", n / 100, n % 100 + 1), "IpAddress")),
        );
        items.push(item(SHA256.to_ascii_lowercase(), "FileSha256"));
        items.push(item("203.0.113.77".into(), "IpAddress"));
        let (st, body) = post(
            &s,
            &token,
            "/api/indicators/import",
            json!({"Indicators": items}),
        )
        .await;
        assert_eq!(st, 200, "{}: {body}", b.name);
        assert!(
            body["value"]
                .as_array()
                .unwrap()
                .iter()
                .all(|r| r["isFailed"] == false),
            "{}: {body}",
            b.name
        );
        let alerts = wait_alerts(&s, &token, |a| a.len() >= 2).await;
        let found = titles_and_devices(&alerts);
        assert_eq!(
            found,
            [
                ("feed FileSha256".to_owned(), device('a')),
                ("feed IpAddress".to_owned(), device('b')),
            ],
            "{}",
            b.name
        );
    }
}

/// A file blocked with remediation is quarantined where it is seen: a StopAndQuarantineFile
/// action for the device (its SHA-1 from the row), once while it is open, even without alerts.
#[tokio::test]
async fn blocked_and_remediated_files_are_quarantined() {
    const SHA1: &str = "aaaaaaaaaabbbbbbbbbbccccccccccdddddddddd";
    let dir = tempfile::tempdir().unwrap();
    for b in backends(dir.path()) {
        let s = Server::start_with(&b, &["--no-rate-limits"]);
        let token = s
            .token_with("Ti.ReadWrite.All,Alert.Read.All,Machine.Read.All,Event.Write")
            .await;
        s.import(&token, "DeviceInfo",
            &[json!({"Timestamp": ts(0), "DeviceId": device('9'), "DeviceName": "ws-9", "OSPlatform": "Ubuntu"})],
        )
        .await;
        let (st, body) = post(&s, &token, "/api/indicators",
            json!({"indicatorValue": SHA256, "indicatorType": "FileSha256", "action": "BlockAndRemediate",
                   "title": "Ransomware", "description": "test", "generateAlert": false})).await;
        assert_eq!(st, 200, "{body}");
        let id = body["id"].as_str().unwrap().to_owned();
        let mut row = process(10, '9', SHA256, 1);
        row["SHA1"] = json!(SHA1);
        s.import(&token, "DeviceProcessEvents", &[row.clone()])
            .await;
        let mut actions = Vec::new();
        for _ in 0..100 {
            let (st, v) = s
                .get(
                    "/api/machineactions?$filter=type%20eq%20'StopAndQuarantineFile'",
                    Some(&token),
                )
                .await;
            assert_eq!(st, 200, "{v}");
            actions = v["value"].as_array().cloned().unwrap_or_default();
            if !actions.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(actions.len(), 1, "{}: {actions:?}", b.name);
        let a = &actions[0];
        assert_eq!(a["machineId"], device('9'));
        assert_eq!(a["requestor"], format!("CustomTI:{id}"));
        assert_eq!(a["status"], "Pending");
        assert!(a["relatedFileInfo"].to_string().contains(SHA1), "{a}");
        // No alert without generateAlert; a second sighting while the action is open adds none.
        row["ReportId"] = json!(2);
        s.import(&token, "DeviceProcessEvents", &[row]).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let (_, v) = s
            .get(
                "/api/machineactions?$filter=type%20eq%20'StopAndQuarantineFile'",
                Some(&token),
            )
            .await;
        assert_eq!(v["value"].as_array().unwrap().len(), 1, "{}: {v}", b.name);
        assert!(ti_alerts(&s, &token).await.is_empty());
    }
}

/// Servers sharing one state store (and the CLI writing into it) see each other's indicator
/// changes within a few seconds: a submission through one server matches rows ingested by the
/// other, a deletion stops it, and a feed the CLI imports matches on a running server.
#[tokio::test]
async fn indicator_changes_reach_every_server_sharing_the_store() {
    let dir = tempfile::tempdir().unwrap();
    for b in backends(dir.path()) {
        let a = Server::start_with(&b, &["--no-rate-limits"]);
        let mut other = b.clone();
        other.data_dir = dir.path().join(format!("{}-second", b.name));
        let s2 = Server::start_with(&other, &["--no-rate-limits"]);
        let roles = "Ti.ReadWrite.All,Alert.Read.All,Machine.Read.All,Event.Write";
        let (ta, t2) = (a.token_with(roles).await, s2.token_with(roles).await);
        let (st, body) = post(
            &a,
            &ta,
            "/api/indicators",
            json!({"indicatorValue": SHA256, "indicatorType": "FileSha256", "action": "Block",
                   "title": "Shared", "description": "test", "generateAlert": true}),
        )
        .await;
        assert_eq!(st, 200, "{body}");
        let id = body["id"].as_str().unwrap().to_owned();

        // The second server ingests until its matcher has the indicator.
        let mut alerts = Vec::new();
        for report in 1..100 {
            s2.import(
                &t2,
                "DeviceProcessEvents",
                &[process(report, 'a', SHA256, report)],
            )
            .await;
            tokio::time::sleep(Duration::from_millis(100)).await;
            alerts = ti_alerts(&s2, &t2).await;
            if !alerts.is_empty() {
                break;
            }
        }
        assert_eq!(
            alerts.len(),
            1,
            "{}: the second server never matched",
            b.name
        );

        // Deleted through the first: the second stops matching.
        let resp = a
            .http
            .delete(format!("{}/api/indicators/{id}", a.url))
            .bearer_auth(&ta)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 204);
        tokio::time::sleep(Duration::from_millis(3000)).await;
        s2.import(
            &t2,
            "DeviceProcessEvents",
            &[process(200, 'c', SHA256, 200)],
        )
        .await;
        tokio::time::sleep(Duration::from_millis(1000)).await;
        let alerts = ti_alerts(&s2, &t2).await;
        assert!(
            !alerts
                .iter()
                .any(|x| x["machineId"] == device('c') || x["computerDnsName"] == "ws-c"),
            "{}: a deleted indicator matched on the second server: {alerts:?}",
            b.name
        );

        // A feed imported by the CLI into the running servers' store.
        let feed = dir.path().join(format!("{}-feed.txt", b.name));
        std::fs::write(&feed, "cli-feed.example\n").unwrap();
        let out = b.cli(&[
            "indicators",
            "import",
            "--source",
            "cli-feed",
            feed.to_str().unwrap(),
        ]);
        assert!(out.contains("1 created"), "{out}");
        let mut found = false;
        for report in 300..400 {
            a.import(
                &ta,
                "DeviceNetworkEvents",
                &[connection(
                    report,
                    'd',
                    "192.0.2.9",
                    "https://x.cli-feed.example/",
                    report,
                )],
            )
            .await;
            tokio::time::sleep(Duration::from_millis(100)).await;
            if ti_alerts(&a, &ta)
                .await
                .iter()
                .any(|x| x["title"] != "Shared")
            {
                found = true;
                break;
            }
        }
        assert!(
            found,
            "{}: the CLI's indicator never matched on the running server",
            b.name
        );
    }
}
