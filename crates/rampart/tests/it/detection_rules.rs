//! Custom detection rules end to end: rules checked on create, a continuous rule alerting on
//! ingested rows (with dedupe and a response action), scheduled rules run on demand and by the
//! scheduler, and a failing rule paused with its reason and resumed.

use crate::harness::{Server, assert_mde_error, backends};
use serde_json::{Value, json};
use std::time::Duration;

fn ts(offset_s: i64) -> String {
    let t = time::OffsetDateTime::now_utc() - time::Duration::minutes(10)
        + time::Duration::seconds(offset_s);
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

fn device(c: char) -> String {
    c.to_string().repeat(40)
}

fn process(
    offset: i64,
    dev: char,
    name: &str,
    file: &str,
    command_line: &str,
    report: i64,
) -> Value {
    json!({"Timestamp": ts(offset), "DeviceId": device(dev), "DeviceName": name,
           "ActionType": "ProcessCreated", "FileName": file,
           "SHA1": "3395856ce81f2b7382dee72602f798b642f14140",
           "ProcessCommandLine": command_line, "AccountName": "alice", "ReportId": report})
}

fn rule(name: &str, period: &str, query: &str) -> Value {
    json!({
        "displayName": name,
        "queryCondition": { "queryText": query },
        "schedule": { "period": period },
        "detectionAction": {
            "alertTemplate": {
                "title": format!("{name} detected"),
                "description": "Raised by a test rule",
                "severity": "High",
                "category": "execution",
                "mitreTechniques": ["T1059.001"],
                "recommendedActions": "Isolate the device"
            }
        }
    })
}

/// Polls `path` until `done` holds (at most 20 s).
async fn wait_for(s: &Server, path: &str, token: &str, done: impl Fn(&Value) -> bool) -> Value {
    let mut last = Value::Null;
    for _ in 0..200 {
        let (st, v) = s.send("GET", path, token, None).await;
        if st == 200 && done(&v) {
            return v;
        }
        last = v;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{path} never got there: {last}");
}

const ENCODED: &str =
    "DeviceProcessEvents\n| where FileName =~ 'powershell.exe' and ProcessCommandLine has '-enc'";

#[tokio::test]
async fn rules_are_checked_before_they_are_stored() {
    let dir = tempfile::tempdir().unwrap();
    for b in backends(dir.path()) {
        let s = Server::start_with(&b, &["--no-rate-limits"]);
        let rw = s.token_with("CustomDetection.ReadWrite.All").await;
        let cases = [
            (
                rule(
                    "typo",
                    "1H",
                    "DeviceProcessEvents\n| where ProcessCmd has 'x'",
                ),
                "InvalidRequestBody",
                vec!["queryCondition.queryText", "line 2", "ProcessCommandLine"],
            ),
            (
                rule(
                    "no device",
                    "1H",
                    "DeviceProcessEvents | project Timestamp, FileName",
                ),
                "InvalidRequestBody",
                vec!["DeviceId or DeviceName"],
            ),
            (
                rule("no time", "1H", "DeviceProcessEvents | project DeviceId"),
                "InvalidRequestBody",
                vec!["Timestamp"],
            ),
            (
                rule(
                    "summary",
                    "0",
                    "DeviceProcessEvents | summarize Timestamp = max(Timestamp) by DeviceId",
                ),
                "InvalidRequestBody",
                vec!["continuous rule must filter one table"],
            ),
            (
                rule(
                    "two tables",
                    "0",
                    "DeviceProcessEvents | where DeviceId in ((DeviceNetworkEvents | project DeviceId))",
                ),
                "InvalidRequestBody",
                vec!["may read only DeviceProcessEvents"],
            ),
            (
                rule("period", "2H", ENCODED),
                "InvalidRequestBody",
                vec!["5M, 1H"],
            ),
        ];
        for (body, code, needles) in cases {
            let (st, v) = s.send("POST", "/api/detectionrules", &rw, Some(body)).await;
            assert_eq!(st, 400, "{}: {v}", b.name);
            let message = assert_mde_error(&v, code);
            for n in needles {
                assert!(message.contains(n), "{}: {message} lacks {n}", b.name);
            }
        }
        // A mapping to a column the query does not return.
        let mut body = rule("mapping", "1H", ENCODED);
        body["detectionAction"]["entityMapping"] = json!({ "remoteIp": "RemoteIP" });
        let (st, v) = s.send("POST", "/api/detectionrules", &rw, Some(body)).await;
        assert_eq!(st, 400, "{v}");
        assert!(
            assert_mde_error(&v, "InvalidRequestBody").contains("remoteIp"),
            "{v}"
        );
        let mut body = rule("category", "1H", ENCODED);
        body["detectionAction"]["alertTemplate"]["category"] = json!("Mischief");
        let (st, v) = s.send("POST", "/api/detectionrules", &rw, Some(body)).await;
        assert_eq!(st, 400, "{v}");
        assert!(
            assert_mde_error(&v, "InvalidRequestBody").contains("category"),
            "{v}"
        );

        // Reading needs a read permission, writing the write one.
        let ro = s.token_with("CustomDetection.Read.All").await;
        let (st, v) = s
            .send(
                "POST",
                "/api/detectionrules",
                &ro,
                Some(rule("x", "1H", ENCODED)),
            )
            .await;
        assert_eq!(st, 403, "{v}");
        let (st, v) = s.send("GET", "/api/detectionrules", &ro, None).await;
        assert_eq!(st, 200, "{v}");
        assert_eq!(v["value"], json!([]), "nothing refused was stored");
        let alerts_only = s.token_with("Alert.Read.All").await;
        let (st, _) = s
            .send("GET", "/api/detectionrules", &alerts_only, None)
            .await;
        assert_eq!(st, 403);
    }
}

#[tokio::test]
async fn continuous_rules_alert_on_ingested_rows_once_per_entity_group() {
    let dir = tempfile::tempdir().unwrap();
    for b in backends(dir.path()) {
        let s = Server::start_with(&b, &["--no-rate-limits"]);
        let rw = s
            .token_with("CustomDetection.ReadWrite.All,Alert.Read.All,Machine.Read.All,Event.Write,AdvancedQuery.Read.All")
            .await;
        s.import(&rw,
            "DeviceInfo",
            &[json!({"Timestamp": ts(0), "DeviceId": device('a'), "DeviceName": "ws-1", "OSPlatform": "Windows11"})],
        )
        .await;
        let mut body = rule("Encoded PowerShell", "0", ENCODED);
        body["detectionAction"]["responseActions"] =
            json!([{ "actionType": "isolateDevice", "isolationType": "Selective" }]);
        let (st, created) = s.send("POST", "/api/detectionrules", &rw, Some(body)).await;
        assert_eq!(st, 201, "{}: {created}", b.name);
        let id = created["id"].as_str().unwrap().to_owned();
        assert_eq!(created["status"], "Active");
        assert_eq!(created["schedule"]["period"], "0");
        assert_eq!(created["continuousTable"], "DeviceProcessEvents");
        assert_eq!(created["schedule"]["nextRunDateTime"], Value::Null);

        // Two matching rows of one process on ws-1 and one other process: one alert.
        s.import(
            &rw,
            "DeviceProcessEvents",
            &[
                process(
                    10,
                    'a',
                    "ws-1",
                    "powershell.exe",
                    "powershell -enc SQBFAFgA",
                    1,
                ),
                process(
                    20,
                    'a',
                    "ws-1",
                    "powershell.exe",
                    "powershell -enc SQBFAFgA",
                    2,
                ),
                process(
                    30,
                    'b',
                    "ws-2",
                    "powershell.exe",
                    "powershell Get-Process",
                    3,
                ),
            ],
        )
        .await;
        let filter =
            "/api/alerts?$filter=detectionSource%20eq%20'CustomDetection'&$expand=evidence";
        let alerts = wait_for(&s, filter, &rw, |v| {
            v["value"].as_array().is_some_and(|a| !a.is_empty())
        })
        .await;
        let alerts = alerts["value"].as_array().unwrap();
        assert_eq!(alerts.len(), 1, "{}: {alerts:?}", b.name);
        let a = &alerts[0];
        assert_eq!(a["title"], "Encoded PowerShell detected");
        assert_eq!(a["severity"], "High");
        assert_eq!(
            a["category"], "Execution",
            "stored in its canonical spelling"
        );
        assert_eq!(a["detectorId"], id.as_str());
        assert_eq!(a["machineId"], device('a'));
        assert_eq!(a["computerDnsName"], "ws-1");
        assert_eq!(a["mitreTechniques"], json!(["T1059.001"]));
        assert!(a["incidentId"].is_i64(), "{a}");
        assert_eq!(a["relatedUser"]["userName"], "alice");
        let at = |f: &str| {
            time::OffsetDateTime::parse(
                a[f].as_str().unwrap(),
                &time::format_description::well_known::Rfc3339,
            )
            .unwrap()
        };
        assert_eq!(
            (at("lastEventTime") - at("firstEventTime")).whole_seconds(),
            10,
            "{a}"
        );
        let kinds: Vec<&str> = a["evidence"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["entityType"].as_str().unwrap())
            .collect();
        assert_eq!(kinds, ["File", "Process", "User"], "{a}");
        assert_eq!(
            a["evidence"][1]["processCommandLine"],
            "powershell -enc SQBFAFgA"
        );

        // Hunting sees the alert as AlertInfo and AlertEvidence rows (written just after it).
        let q = format!(
            "AlertInfo | where AlertId == '{}' | join kind=inner AlertEvidence on AlertId \
             | project Title, DetectionSource, EntityType | sort by EntityType asc",
            a["id"].as_str().unwrap()
        );
        let mut rows = Vec::new();
        for _ in 0..50 {
            let (st, v) = s
                .send(
                    "POST",
                    "/api/advancedqueries/run",
                    &rw,
                    Some(json!({"Query": q})),
                )
                .await;
            assert_eq!(st, 200, "{v}");
            rows = v["Results"].as_array().cloned().unwrap_or_default();
            if rows.len() >= 4 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        let kinds: Vec<&str> = rows
            .iter()
            .map(|r| r["EntityType"].as_str().unwrap())
            .collect();
        assert_eq!(
            kinds,
            ["File", "Machine", "Process", "User"],
            "{}: {rows:?}",
            b.name
        );
        assert_eq!(rows[0]["DetectionSource"], "CustomDetection");
        assert_eq!(rows[0]["Title"], "Encoded PowerShell detected");

        // The response action isolated the device, naming the rule and the alert.
        let actions = wait_for(&s, "/api/machineactions", &rw, |v| {
            v["value"].as_array().is_some_and(|a| !a.is_empty())
        })
        .await;
        let action = &actions["value"][0];
        assert_eq!(action["type"], "Isolate");
        assert_eq!(action["scope"], "Selective");
        assert_eq!(action["machineId"], device('a'));
        assert_eq!(action["requestor"], format!("CustomDetection:{id}"));
        assert_eq!(action["externalID"], a["id"]);

        // The same process again in a later batch: suppressed, not a second alert.
        s.import(
            &rw,
            "DeviceProcessEvents",
            &[process(
                40,
                'a',
                "ws-1",
                "powershell.exe",
                "powershell -enc SQBFAFgA",
                4,
            )],
        )
        .await;
        let runs = wait_for(&s, &format!("/api/detectionrules/{id}/runs"), &rw, |v| {
            v["value"].as_array().is_some_and(|a| a.len() == 2)
        })
        .await;
        let latest = &runs["value"][0];
        assert_eq!(latest["trigger"], "Continuous");
        assert_eq!(latest["status"], "Succeeded");
        assert_eq!(latest["alertsCreated"], 0);
        assert_eq!(latest["alertsSuppressed"], 1);
        assert_eq!(runs["value"][1]["alertIds"], json!([a["id"]]));
        let (_, v) = s.send("GET", filter, &rw, None).await;
        assert_eq!(v["value"].as_array().unwrap().len(), 1, "{}", b.name);
        let (_, r) = s
            .send("GET", &format!("/api/detectionrules/{id}"), &rw, None)
            .await;
        assert_eq!(r["lastRunDetails"]["status"], "Succeeded", "{r}");

        // A disabled rule sees nothing.
        let (st, r) = s
            .send(
                "PATCH",
                &format!("/api/detectionrules/{id}"),
                &rw,
                Some(json!({"isEnabled": false})),
            )
            .await;
        assert_eq!(st, 200, "{r}");
        assert_eq!(r["status"], "Disabled");
        s.import(
            &rw,
            "DeviceProcessEvents",
            &[process(
                50,
                'b',
                "ws-2",
                "powershell.exe",
                "powershell -enc AAAA",
                5,
            )],
        )
        .await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let (_, v) = s.send("GET", filter, &rw, None).await;
        assert_eq!(v["value"].as_array().unwrap().len(), 1, "{}", b.name);

        // Deleting takes the history along.
        let (st, _) = s
            .send("DELETE", &format!("/api/detectionrules/{id}"), &rw, None)
            .await;
        assert_eq!(st, 204);
        let (st, v) = s
            .send("GET", &format!("/api/detectionrules/{id}/runs"), &rw, None)
            .await;
        assert_eq!(st, 404, "{v}");
        assert_mde_error(&v, "ResourceNotFound");
    }
}

#[tokio::test]
async fn scheduled_rules_run_on_demand_and_when_due_and_pause_on_failure() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("rampart.toml");
    std::fs::write(&config, "[api]\ndetection_tick_secs = 1\n").unwrap();
    for b in backends(dir.path()) {
        let s = Server::start_opts(
            &b,
            &["--config", config.to_str().unwrap()],
            &["--no-rate-limits"],
        );
        let rw = s
            .token_with("CustomDetection.ReadWrite.All,Alert.Read.All,Event.Write")
            .await;
        s.import(&rw,
            "DeviceProcessEvents",
            &[
                process(10, 'a', "ws-1", "cmd.exe", "cmd /c whoami", 1),
                process(20, 'a', "ws-1", "cmd.exe", "cmd /c net user", 2),
                process(30, 'b', "ws-2", "cmd.exe", "cmd /c echo (", 3),
                // Older than the hourly rule's 4-hour lookback: never seen by it.
                json!({"Timestamp": (time::OffsetDateTime::now_utc() - time::Duration::hours(5)).format(&time::format_description::well_known::Rfc3339).unwrap(),
                       "DeviceId": device('c'), "DeviceName": "ws-3", "FileName": "cmd.exe", "ProcessCommandLine": "cmd", "ReportId": 4}),
            ],
        )
        .await;
        let busy = "DeviceProcessEvents\n| summarize Timestamp = max(Timestamp), Commands = count() by DeviceId, DeviceName\n| where Commands >= 1";
        // Disabled, so that only the manual runs below run it.
        let mut body = rule("Busy shell", "1H", busy);
        body["isEnabled"] = json!(false);
        let (st, r) = s.send("POST", "/api/detectionrules", &rw, Some(body)).await;
        assert_eq!(st, 201, "{}: {r}", b.name);
        let id = r["id"].as_str().unwrap().to_owned();
        let (st, run) = s
            .send("POST", &format!("/api/detectionrules/{id}/run"), &rw, None)
            .await;
        assert_eq!(st, 200, "{run}");
        assert_eq!(run["trigger"], "Manual");
        assert_eq!(run["status"], "Succeeded", "{run}");
        assert_eq!(
            run["rowCount"], 2,
            "ws-3's row is outside the lookback: {run}"
        );
        assert_eq!(run["alertsCreated"], 2, "{run}");
        let (_, run) = s
            .send("POST", &format!("/api/detectionrules/{id}/run"), &rw, None)
            .await;
        assert_eq!(run["alertsCreated"], 0, "{run}");
        assert_eq!(run["alertsSuppressed"], 2, "{run}");
        let (_, v) = s
            .send(
                "GET",
                "/api/alerts?$filter=detectionSource%20eq%20'CustomDetection'",
                &rw,
                None,
            )
            .await;
        let mut names: Vec<&str> = v["value"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["computerDnsName"].as_str().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["ws-1", "ws-2"], "{}", b.name);

        // The scheduler runs a due rule by itself (created due now; ticks every second) and
        // moves its next run a period on.
        let (st, r) = s
            .send(
                "POST",
                "/api/detectionrules",
                &rw,
                Some(rule(
                    "Any shell",
                    "5M",
                    "DeviceProcessEvents | where FileName == 'cmd.exe'",
                )),
            )
            .await;
        assert_eq!(st, 201, "{r}");
        let every5 = r["id"].as_str().unwrap().to_owned();
        let r = wait_for(&s, &format!("/api/detectionrules/{every5}"), &rw, |v| {
            !v["lastRunDetails"].is_null()
        })
        .await;
        assert_eq!(r["lastRunDetails"]["status"], "Succeeded", "{r}");
        let next = r["schedule"]["nextRunDateTime"].as_str().unwrap();
        let last = r["lastRunDetails"]["lastRunDateTime"].as_str().unwrap();
        let parse = |t: &str| {
            time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).unwrap()
        };
        let gap = parse(next) - parse(last);
        assert!(
            gap >= time::Duration::minutes(5) && gap < time::Duration::minutes(6),
            "{r}"
        );
        let (_, runs) = s
            .send(
                "GET",
                &format!("/api/detectionrules/{every5}/runs"),
                &rw,
                None,
            )
            .await;
        assert_eq!(
            runs["value"].as_array().unwrap().len(),
            1,
            "one slot, one run: {runs}"
        );
        assert_eq!(runs["value"][0]["trigger"], "Scheduled");

        // A rule that fails at run time (a pattern built from data that is not a regex) is
        // paused by its first scheduled run, with the reason; enabling it again resumes it.
        let broken = "DeviceProcessEvents | where FileName matches regex ProcessCommandLine";
        let (st, r) = s
            .send(
                "POST",
                "/api/detectionrules",
                &rw,
                Some(rule("Broken", "24H", broken)),
            )
            .await;
        assert_eq!(st, 201, "{r}");
        let bad = r["id"].as_str().unwrap().to_owned();
        let r = wait_for(&s, &format!("/api/detectionrules/{bad}"), &rw, |v| {
            v["status"] == "Paused"
        })
        .await;
        assert_eq!(r["lastRunDetails"]["status"], "Failed", "{r}");
        let reason = r["pausedReason"].as_str().unwrap();
        assert!(reason.contains("regular expression"), "{reason}");
        assert_eq!(r["lastRunDetails"]["failureReason"], reason);
        assert_eq!(r["schedule"]["nextRunDateTime"], Value::Null);
        let (st, r) = s
            .send(
                "PATCH",
                &format!("/api/detectionrules/{bad}"),
                &rw,
                Some(json!({"isEnabled": true})),
            )
            .await;
        assert_eq!(st, 200, "{r}");
        assert_eq!(r["status"], "Active", "{r}");
        assert_eq!(r["pausedReason"], Value::Null);

        // The list is an OData collection.
        let (st, v) = s
            .send(
                "GET",
                "/api/detectionrules?$filter=displayName%20ne%20'x'&$orderby=createdDateTime",
                &rw,
                None,
            )
            .await;
        assert_eq!(st, 200, "{v}");
        let listed: Vec<&str> = v["value"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap())
            .collect();
        assert_eq!(
            listed,
            [id.as_str(), every5.as_str(), bad.as_str()],
            "{}",
            b.name
        );
    }
}

/// A stored hourly rule in `tenant` (for the route-table test); returns its id.
pub async fn seed_detection_rule(backend: &crate::harness::Backend, tenant: &str) -> String {
    use rampart_core::detection_rule::*;
    use rampart_store::prelude::*;
    let store = backend.store().await;
    let rule = DetectionRule::new(
        "seeded",
        ENCODED,
        RunFrequency::OneHour,
        DetectionAction::alert(AlertTemplate::new(
            "seeded",
            rampart_core::alert::Severity::Low,
            "Execution",
        )),
        "test-seed",
        time::OffsetDateTime::now_utc(),
    );
    store
        .create_detection_rule(
            &rampart_core::audit::AuditContext::system("test-seed"),
            tenant.parse().unwrap(),
            rule,
        )
        .await
        .unwrap()
        .id
}
