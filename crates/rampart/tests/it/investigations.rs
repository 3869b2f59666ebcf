//! Automated investigation and remediation end to end, against a real server with simulated
//! agents and telemetry: a network sensor's C2 alert lands on the device that had the address,
//! beside its device alert in one incident; the investigation finds the process and file
//! behind the connection and the persistence it created, remediates under the device group's
//! automation level (unattended under Full, through the action center under Semi), blocks the
//! hash for every agent, and the retro-hunt finds and remediates the second device.

use crate::agent_commands::{enforcement_set, poll, report};
use crate::harness::{Backend, Server, assert_mde_error, backends};
use crate::telemetry::{Device, enroll};
use rampart_core::alert::{Alert, Evidence, Severity};
use rampart_core::audit::AuditContext;
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use time::OffsetDateTime;

const ROLES: &str =
    "Alert.ReadWrite.All,Ti.ReadWrite.All,Machine.Read.All,Event.Write,Incident.Read.All";
const C2: &str = "198.51.100.7";
const UNIT: &str = "/etc/systemd/system/implant-update.service";

fn at(t: OffsetDateTime) -> String {
    rampart_core::timefmt::format(t)
}

/// The attack as telemetry saw it: on `a` (10.1.2.3), bash started an implant from a temp
/// folder, which installed a systemd unit and is talking to the C2 address right now; `b` ran
/// the same implant three hours ago.
struct Story {
    a: Device,
    b: Device,
    implant_sha1: String,
    implant_sha256: String,
}

async fn stage(s: &Server, token: &str, prefix: &str, seed: u64) -> Story {
    let a = enroll(s, &format!("{prefix}-a.corp.example")).await;
    let b = enroll(s, &format!("{prefix}-b.corp.example")).await;
    let implant_sha1 = format!("{:040x}", 0x1a11_0000 + seed);
    let implant_sha256 = format!("{:064x}", 0x1a11_0000 + seed);
    let unit_sha1 = format!("{:040x}", 0x5e71_0000 + seed);
    let bash_sha1 = format!("{:040x}", 0xba5b);
    let now = OffsetDateTime::now_utc();
    let ago = |m: i64| at(now - time::Duration::minutes(m));
    s.import(
        token,
        "DeviceNetworkInfo",
        &[json!({"Timestamp": ago(30), "DeviceId": a.id, "DeviceName": format!("{prefix}-a"),
                 "IPAddresses": "[{\"IPAddress\":\"10.1.2.3\",\"SubnetPrefix\":24,\"AddressType\":\"Private\"}]"})],
    )
    .await;
    s.import(
        token,
        "DeviceProcessEvents",
        &[
            json!({"Timestamp": ago(20), "DeviceId": a.id, "DeviceName": format!("{prefix}-a"),
                   "ActionType": "ProcessCreated", "FileName": "implant",
                   "FolderPath": "/tmp/.cache/implant", "SHA1": implant_sha1, "SHA256": implant_sha256,
                   "ProcessId": 4242, "ProcessCommandLine": "/tmp/.cache/implant --beacon",
                   "InitiatingProcessId": 4000, "InitiatingProcessFileName": "bash",
                   "InitiatingProcessFolderPath": "/usr/bin/bash", "InitiatingProcessSHA1": bash_sha1,
                   "ReportId": 1}),
            json!({"Timestamp": ago(180), "DeviceId": b.id, "DeviceName": format!("{prefix}-b"),
                   "ActionType": "ProcessCreated", "FileName": "implant",
                   "FolderPath": "/var/tmp/implant", "SHA1": implant_sha1, "SHA256": implant_sha256,
                   "ProcessId": 777, "ReportId": 2}),
        ],
    )
    .await;
    s.import(
        token,
        "DeviceFileEvents",
        &[
            json!({"Timestamp": ago(15), "DeviceId": a.id, "DeviceName": format!("{prefix}-a"),
                 "ActionType": "FileCreated", "FileName": "implant-update.service",
                 "FolderPath": "/etc/systemd/system/implant-update.service", "SHA1": unit_sha1,
                 "InitiatingProcessId": 4242, "InitiatingProcessFileName": "implant",
                 "ReportId": 3}),
        ],
    )
    .await;
    s.import(
        token,
        "DeviceNetworkEvents",
        &[
            json!({"Timestamp": ago(2), "DeviceId": a.id, "DeviceName": format!("{prefix}-a"),
                 "ActionType": "ConnectionSuccess", "RemoteIP": C2, "RemotePort": 443,
                 "LocalIP": "10.1.2.3", "InitiatingProcessId": 4242,
                 "InitiatingProcessFileName": "implant",
                 "InitiatingProcessFolderPath": "/tmp/.cache/implant",
                 "InitiatingProcessSHA1": implant_sha1, "InitiatingProcessSHA256": implant_sha256,
                 "ReportId": 4}),
        ],
    )
    .await;
    Story {
        a,
        b,
        implant_sha1,
        implant_sha256,
    }
}

/// A medium-severity device alert on `machine` about the implant file, stored as a detection
/// would (through the store, which correlates it and queues its investigation).
async fn device_alert(b: &Backend, s: &Server, id: &str, machine: &str, story: &Story) -> Alert {
    use rampart_store::prelude::*;
    let tenant = s.tenant.parse().unwrap();
    let now = OffsetDateTime::now_utc();
    let mut a = rampart_core::alert::synthetic(1, tenant, now, 1);
    a.id = id.into();
    a.machine_id = Some(machine.to_owned());
    a.computer_dns_name = None;
    a.severity = Severity::Medium;
    a.category = "Execution".into();
    a.title = "Unknown binary run from a hidden temp folder".into();
    a.detection_source = "CustomDetection".into();
    a.status = rampart_core::alert::AlertStatus::New;
    a.first_event_time = Some(now - time::Duration::minutes(20));
    a.alert_creation_time = Some(now);
    a.related_user = None;
    a.evidence = vec![Evidence {
        entity_type: "File".into(),
        sha1: Some(story.implant_sha1.clone()),
        sha256: Some(story.implant_sha256.clone()),
        file_name: Some("implant".into()),
        file_path: Some("/tmp/.cache".into()),
        ..Default::default()
    }];
    b.store()
        .await
        .insert_alerts(&AuditContext::system("test-detect"), tenant, &[a])
        .await
        .unwrap()
        .remove(0)
}

async fn import_c2_alert(s: &Server, token: &str, external_id: &str) -> Value {
    let (st, res) = s
        .post(
            "/api/alerts/import",
            token,
            json!({"Alerts": [{"sourceProduct": "Contoso NDR", "externalId": external_id,
                "title": format!("C2 traffic from 10.1.2.3 to {C2}"), "severity": "High",
                "category": "CommandAndControl",
                "lastEventTime": at(OffsetDateTime::now_utc() - time::Duration::minutes(2)),
                "evidence": [{"entityType": "Device", "ipAddress": "10.1.2.3"},
                             {"entityType": "Ip", "ipAddress": C2}]}]}),
        )
        .await;
    assert_eq!(st, 200, "{res}");
    assert_eq!(res["value"][0]["isFailed"], false, "{res}");
    let id = res["value"][0]["id"].as_str().unwrap();
    let (st, alert) = s.get(&format!("/api/alerts/{id}"), Some(token)).await;
    assert_eq!(st, 200, "{alert}");
    alert
}

/// Asks `probe` again until it gives something, for up to 30 s.
async fn eventually<F, Fut>(what: &str, mut probe: F) -> Value
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<Value>>,
{
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The investigation of an alert, once it ran (it is `Running` from its claim) and is in
/// one of `states`.
async fn investigation(s: &Server, token: &str, alert: &str, states: &[&str]) -> Value {
    eventually(
        &format!("the investigation of {alert} in {states:?}"),
        || async {
            let (_, a) = s.get(&format!("/api/alerts/{alert}"), Some(token)).await;
            let id = a["investigationId"].as_i64()?;
            let (st, inv) = s
                .get(&format!("/api/investigations/{id}"), Some(token))
                .await;
            assert_eq!(st, 200, "{inv}");
            (!inv["automationLevel"].is_null()
                && states.contains(&inv["state"].as_str().unwrap_or_default()))
            .then_some(inv)
        },
    )
    .await
}

fn entity<'a>(inv: &'a Value, name: &str) -> &'a Value {
    inv["entities"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == name)
        .unwrap_or_else(|| panic!("no entity {name} in {inv}"))
}

async fn remediation_actions(s: &Server, token: &str, investigation: &Value) -> Vec<Value> {
    let (st, v) = s
        .get(
            &format!(
                "/api/remediationactions?$filter=investigationId eq '{}'",
                investigation["id"].as_str().unwrap()
            ),
            Some(token),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    v["value"].as_array().unwrap().clone()
}

fn of_type<'a>(actions: &'a [Value], t: &str, value: Option<&str>) -> &'a Value {
    actions
        .iter()
        .find(|a| {
            a["actionType"] == t
                && value.is_none_or(|v| {
                    a["indicatorValue"] == v || a["sha1"] == v || a["filePath"] == v
                })
        })
        .unwrap_or_else(|| panic!("no {t} {value:?} in {actions:?}"))
}

/// The machine actions automated investigations asked of a device, as (type, sha1). (Others
/// come too: a shared hash that blocks with remediation quarantines where it is seen.)
async fn machine_actions(s: &Server, token: &str, machine: &str) -> Vec<(String, String)> {
    let (st, v) = s
        .get(
            &format!("/api/machineactions?$filter=machineId eq '{machine}'"),
            Some(token),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    v["value"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["requestSource"] == "AutomatedInvestigation")
        .map(|a| {
            (
                a["type"].as_str().unwrap().to_owned(),
                a["relatedFileInfo"]["fileIdentifier"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            )
        })
        .collect()
}

/// Plays the agent: carries out every command handed to `device` until none come for a
/// second. A live look, which an investigation asks of a device that holds a poll (this loop
/// polls, so one started meanwhile may), fails: a success must say what it saw, and this agent
/// sees nothing.
async fn agent_completes_everything(s: &Server, device: &Device) -> usize {
    let mut done = 0;
    let mut idle_since = Instant::now();
    while idle_since.elapsed() < Duration::from_secs(1) {
        let v = poll(s, device, 0, &[]).await;
        let commands = v["commands"].as_array().cloned().unwrap_or_default();
        if commands.is_empty() {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        }
        for c in commands {
            let id = c["id"].as_str().unwrap();
            let (st, r) = if c["kind"]["type"] == "CollectLiveEvidence" {
                report(s, device, id, "Failed", "the test's agent does not look").await
            } else {
                report(s, device, id, "Succeeded", "done").await
            };
            assert_eq!(st, 200, "{r}");
            done += 1;
        }
        idle_since = Instant::now();
    }
    done
}

/// The machine action `field` of `of` names.
async fn machine_action(s: &Server, token: &str, of: &Value, field: &str) -> Value {
    let id = of[field]
        .as_str()
        .unwrap_or_else(|| panic!("no {field} in {of}"));
    let (st, a) = s
        .get(&format!("/api/machineactions/{id}"), Some(token))
        .await;
    assert_eq!(st, 200, "{a}");
    a
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
async fn under_full_automation_a_c2_alert_is_investigated_and_remediated_unattended() {
    let dir = tempfile::tempdir().unwrap();
    for (n, b) in backends(dir.path()).into_iter().enumerate() {
        let s = Server::start_with(&b, &["--no-rate-limits"]);
        let token = s.token_with(ROLES).await;
        let story = stage(&s, &token, "full", n as u64).await;
        let name = b.name;

        // The device's own alert: a medium-severity finding makes the file suspicious, and
        // nothing more — the investigation finds no threat.
        let first = device_alert(&b, &s, &format!("da-air-{n}"), &story.a.id, &story).await;
        let benign = investigation(&s, &token, &first.id, &["Benign"]).await;
        assert_eq!(
            entity(&benign, "/tmp/.cache/implant")["verdict"],
            "Suspicious",
            "{name}"
        );
        assert_eq!(benign["automationLevel"], "FullRemediation");
        // No agent holds a poll for the device: the investigation says what it could not see.
        assert_eq!(
            benign["notExamined"],
            json!(["live evidence (the device's agent is not connected)"]),
            "{name}: {benign}"
        );

        // The network sensor's alert lands on the device that had 10.1.2.3, in the incident
        // of its device alert.
        let c2 = import_c2_alert(&s, &token, &format!("ndr-{n}")).await;
        assert_eq!(c2["machineId"], story.a.id.as_str(), "{name}: {c2}");
        assert_eq!(c2["incidentId"], json!(first.incident_id), "{name}: {c2}");

        // The investigation: the C2 address named by a High alert condemns the process that
        // contacted it, its image and the unit it installed; bash, its parent, is clean.
        let inv = investigation(
            &s,
            &token,
            c2["id"].as_str().unwrap(),
            &["Running", "SuccessfullyRemediated"],
        )
        .await;
        assert_eq!(entity(&inv, C2)["verdict"], "Malicious", "{name}: {inv}");
        let implant = entity(&inv, "implant (pid 4242)");
        assert_eq!(implant["verdict"], "Malicious");
        assert_eq!(
            implant["reasons"][0],
            format!("connected to malicious {C2}")
        );
        let file = entity(&inv, "/tmp/.cache/implant");
        assert_eq!(file["verdict"], "Malicious");
        assert_eq!(file["sha1"], story.implant_sha1.as_str());
        assert_eq!(file["prevalence"], 2, "both devices ran it: {file}");
        assert_eq!(
            entity(
                &inv,
                "systemd unit /etc/systemd/system/implant-update.service"
            )["verdict"],
            "Malicious"
        );
        assert_eq!(entity(&inv, "bash (pid 4000)")["verdict"], "Clean");
        assert_eq!(entity(&inv, "/usr/bin/bash")["verdict"], "Clean");
        assert!(
            inv["relations"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r["kind"] == "ConnectedTo"
                    && r["from"] == implant["id"]
                    && r["to"] == entity(&inv, C2)["id"]),
            "{inv}"
        );

        // Every remediation ran without asking: quarantine (which stops the process), the
        // unit removed, the hash and the address blocked, the device isolated.
        let actions = remediation_actions(&s, &token, &inv).await;
        assert_eq!(actions.len(), 5, "{name}: {actions:?}");
        assert!(actions.iter().all(|a| a["approvalRequired"] == false));
        of_type(&actions, "QuarantineFile", Some(&story.implant_sha1));
        of_type(&actions, "RemovePersistence", Some(UNIT));
        of_type(&actions, "IsolateDevice", None);
        let block = of_type(&actions, "BlockIndicator", Some(&story.implant_sha256));
        assert_eq!(block["status"], "Completed");
        assert_eq!(
            of_type(&actions, "BlockIndicator", Some(C2))["status"],
            "Completed"
        );
        let mut on_a = machine_actions(&s, &token, &story.a.id).await;
        on_a.sort();
        let mut expected = vec![
            ("Isolate".to_owned(), String::new()),
            (
                "StopAndQuarantineFile".to_owned(),
                story.implant_sha1.clone(),
            ),
            ("RemovePersistence".to_owned(), String::new()),
        ];
        expected.sort();
        assert_eq!(on_a, expected, "{name}");

        // The hash is blocked tenant-wide, and every agent gets it.
        let shared = indicator(&s, &token, &story.implant_sha256)
            .await
            .expect("the hash is blocked");
        assert_eq!(shared["action"], "BlockAndRemediate");
        assert_eq!(shared["id"], block["indicatorId"]);
        assert_eq!(indicator(&s, &token, C2).await.unwrap()["action"], "Block");
        for device in [&story.a, &story.b] {
            let (_, _, set) = enforcement_set(&s, device, None).await;
            assert!(
                set["files"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|f| f["hash"] == story.implant_sha256.as_str()),
                "{name}: {set}"
            );
        }

        // The agent carries the actions out; the investigation ends remediated.
        assert!(
            agent_completes_everything(&s, &story.a).await >= 3,
            "{name}"
        );
        investigation(
            &s,
            &token,
            c2["id"].as_str().unwrap(),
            &["SuccessfullyRemediated"],
        )
        .await;
        // The alert follows its investigation right after it (not in one transaction).
        eventually("the C2 alert following its investigation", || async {
            let (_, a) = s
                .get(
                    &format!("/api/alerts/{}", c2["id"].as_str().unwrap()),
                    Some(&token),
                )
                .await;
            (a["investigationState"] == "SuccessfullyRemediated").then_some(a)
        })
        .await;

        // The retro-hunt of the blocked hash finds the second device; its alert joins the
        // incident and its own investigation quarantines the file there.
        let on_b = eventually("the retro-hunt alert on the second device", || async {
            let (_, v) = s
                .get(
                    &format!("/api/alerts?$filter=machineId eq '{}'", story.b.id),
                    Some(&token),
                )
                .await;
            v["value"].as_array().and_then(|a| a.first()).cloned()
        })
        .await;
        assert_eq!(
            on_b["incidentId"],
            json!(first.incident_id),
            "{name}: {on_b}"
        );
        let inv_b = investigation(
            &s,
            &token,
            on_b["id"].as_str().unwrap(),
            &["Running", "SuccessfullyRemediated"],
        )
        .await;
        assert_eq!(
            entity(&inv_b, "/var/tmp/implant")["verdict"],
            "Malicious",
            "{inv_b}"
        );
        let on_b_actions = remediation_actions(&s, &token, &inv_b).await;
        let quarantine = of_type(&on_b_actions, "QuarantineFile", Some(&story.implant_sha1));
        let ma = machine_action(&s, &token, quarantine, "machineActionId").await;
        assert_eq!(
            (ma["type"].as_str(), ma["machineId"].as_str()),
            (Some("StopAndQuarantineFile"), Some(story.b.id.as_str()))
        );
        assert!(
            on_b_actions
                .iter()
                .all(|a| a["actionType"] != "BlockIndicator"),
            "the hash is blocked already: {on_b_actions:?}"
        );

        // Undo: the isolation is released.
        let isolation = of_type(&actions, "IsolateDevice", None)["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let undo = |comment: Value| {
            let (s, token, id) = (&s, &token, isolation.clone());
            async move {
                s.post(
                    &format!("/api/remediationactions/{id}/undo"),
                    token,
                    comment,
                )
                .await
            }
        };
        let (st, e) = undo(json!({})).await;
        assert_eq!(st, 400, "{e}");
        assert_mde_error(&e, "MissingRequiredParameter");
        let (st, undone) = undo(json!({"Comment": "false alarm on the isolation"})).await;
        assert_eq!(st, 200, "{name}: {undone}");
        assert_eq!(undone["status"], "Undone");
        assert!(undone["undoMachineActionId"].is_string());
        assert!(
            machine_actions(&s, &token, &story.a.id)
                .await
                .contains(&("Unisolate".to_owned(), String::new()))
        );
        let (st, e) = undo(json!({"Comment": "again"})).await;
        assert_eq!(st, 409, "{e}");
    }
}

#[tokio::test]
async fn under_semi_automation_actions_wait_in_the_action_center() {
    let dir = tempfile::tempdir().unwrap();
    let b = &backends(dir.path())[0];
    let s = Server::start_with(b, &["--no-rate-limits"]);
    let token = s.token_with(ROLES).await;
    let admin = s.token_with("SecurityConfiguration.ReadWrite.All").await;
    for (name, pattern, level) in [
        ("Semi", "semi-*", "SemiApprovalNonTempFolders"),
        ("Hands off", "hands-*", "NoAutomatedResponse"),
    ] {
        let (st, g) = s
            .send(
                "POST",
                "/api/machinegroups",
                &admin,
                Some(
                    json!({"name": name, "rank": 1 + u64::from(level == "NoAutomatedResponse"),
                    "rules": [{"kind": "NamePattern", "value": pattern}],
                    "automationLevel": level}),
                ),
            )
            .await;
        assert_eq!(st, 201, "{g}");
    }
    let story = stage(&s, &token, "semi", 9).await;

    // No automated response: the alert gets no investigation, and none can be started.
    let hands = enroll(&s, "hands-1.corp.example").await;
    let untouched = device_alert(b, &s, "da-hands", &hands.id, &story).await;
    assert!(untouched.investigation_id.is_none());
    let (st, e) = s
        .post(
            &format!("/api/machines/{}/startInvestigation", hands.id),
            &token,
            json!({"Comment": "look"}),
        )
        .await;
    assert_eq!(st, 403, "{e}");
    assert!(assert_mde_error(&e, "DisallowedOperation").contains("NoAutomatedResponse"));

    let c2 = import_c2_alert(&s, &token, "ndr-semi").await;
    let inv = investigation(&s, &token, c2["id"].as_str().unwrap(), &["PendingApproval"]).await;
    assert_eq!(inv["automationLevel"], "SemiApprovalNonTempFolders");
    let actions = remediation_actions(&s, &token, &inv).await;
    // The implant is in a temp folder: quarantined and blocked at once. The unit (a core
    // folder), the address and the isolation wait for an analyst.
    let status = |t: &str, v: Option<&str>| of_type(&actions, t, v)["status"].clone();
    assert_eq!(
        status("QuarantineFile", Some(&story.implant_sha1)),
        "Running"
    );
    assert_eq!(
        status("BlockIndicator", Some(&story.implant_sha256)),
        "Completed"
    );
    for (t, v) in [
        ("RemovePersistence", Some(UNIT)),
        ("BlockIndicator", Some(C2)),
        ("IsolateDevice", None),
    ] {
        let a = of_type(&actions, t, v);
        assert_eq!(
            (a["status"].as_str(), a["approvalRequired"].as_bool()),
            (Some("PendingApproval"), Some(true)),
            "{a}"
        );
        assert!(a["expirationTime"].is_string());
    }
    assert!(
        indicator(&s, &token, C2).await.is_none(),
        "not before approval"
    );
    assert_eq!(
        machine_actions(&s, &token, &story.a.id).await,
        vec![(
            "StopAndQuarantineFile".to_owned(),
            story.implant_sha1.clone()
        )]
    );
    let (st, pending) = s
        .get(
            "/api/remediationactions?$filter=status eq 'PendingApproval'",
            Some(&token),
        )
        .await;
    assert_eq!((st, pending["value"].as_array().unwrap().len()), (200, 3));

    let decide = |t: &'static str, v: Option<String>, verb: &'static str, body: Value| {
        let id = of_type(&actions, t, v.as_deref())["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let (s, token) = (&s, &token);
        async move {
            s.post(&format!("/api/remediationactions/{id}/{verb}"), token, body)
                .await
        }
    };
    let reader = s.token_with("Alert.Read.All").await;
    let id = of_type(&actions, "IsolateDevice", None)["id"]
        .as_str()
        .unwrap();
    let (st, _) = s
        .post(
            &format!("/api/remediationactions/{id}/reject"),
            &reader,
            json!({"Comment": "no"}),
        )
        .await;
    assert_eq!(st, 403, "deciding needs Alert.ReadWrite");

    let (st, r) = decide(
        "IsolateDevice",
        None,
        "reject",
        json!({"Comment": "a server; contain it by hand"}),
    )
    .await;
    assert_eq!((st, r["status"].as_str()), (200, Some("Rejected")), "{r}");
    assert_eq!(r["decisionComment"], "a server; contain it by hand");
    let (st, e) = decide(
        "IsolateDevice",
        None,
        "approve",
        json!({"Comment": "changed my mind"}),
    )
    .await;
    assert_eq!(st, 409, "a decided action stays decided: {e}");
    let (st, r) = decide(
        "RemovePersistence",
        Some(UNIT.to_owned()),
        "approve",
        json!({"Comment": "remove it"}),
    )
    .await;
    assert_eq!((st, r["status"].as_str()), (200, Some("Running")), "{r}");
    assert!(r["machineActionId"].is_string());
    let (st, r) = decide(
        "BlockIndicator",
        Some(C2.into()),
        "approve",
        json!({"Comment": "block"}),
    )
    .await;
    assert_eq!((st, r["status"].as_str()), (200, Some("Completed")), "{r}");
    assert_eq!(indicator(&s, &token, C2).await.unwrap()["action"], "Block");
    let (st, e) = s
        .post(
            "/api/remediationactions/999999/approve",
            &token,
            json!({"Comment": "x"}),
        )
        .await;
    assert_eq!(st, 404, "{e}");

    // The agent quarantines both files; one action rejected: partially remediated.
    let carried = agent_completes_everything(&s, &story.a).await;
    let (_, all) = s
        .get(
            &format!("/api/machineactions?$filter=machineId eq '{}'", story.a.id),
            Some(&token),
        )
        .await;
    assert!(carried >= 2, "{all}");
    let done = investigation(
        &s,
        &token,
        c2["id"].as_str().unwrap(),
        &["PartiallyRemediated"],
    )
    .await;
    assert!(done["endTime"].is_string(), "{done}");
}

/// A server that stopped in the middle of an investigation leaves it `Running`; the next
/// server to start finds it abandoned, queues it again and runs it to its end.
#[tokio::test]
async fn an_investigation_abandoned_mid_way_is_run_again() {
    use rampart_store::prelude::*;
    let dir = tempfile::tempdir().unwrap();
    let b = &backends(dir.path())[0];
    let store = b.store().await;
    let tenant = store.ensure_default_tenant().await.unwrap().id;
    let machine = crate::harness::seed_machine(b, &tenant.to_string(), "web-9.corp.example").await;
    let long_ago = OffsetDateTime::now_utc() - time::Duration::minutes(11);
    let mut abandoned = rampart_core::investigation::Investigation::queued(
        &machine.id,
        Some(machine.computer_dns_name.clone()),
        long_ago,
    );
    abandoned.state = rampart_core::alert::InvestigationState::Running;
    abandoned.claimed_time = Some(long_ago);
    let ctx = AuditContext::system("test-seed");
    let abandoned = store
        .create_investigation(&ctx, tenant, abandoned)
        .await
        .unwrap();
    // One claimed a moment ago is still being worked on: left alone.
    let mut busy = rampart_core::investigation::Investigation::queued(&machine.id, None, long_ago);
    busy.state = rampart_core::alert::InvestigationState::Running;
    busy.claimed_time = Some(OffsetDateTime::now_utc());
    let busy = store
        .create_investigation(&ctx, tenant, busy)
        .await
        .unwrap();
    drop(store);

    let s = Server::start_with(b, &["--no-rate-limits"]);
    let token = s.token_with("Alert.Read.All").await;
    let done = eventually("the abandoned investigation to be run again", || async {
        let (_, i) = s
            .get(
                &format!("/api/investigations/{}", abandoned.id),
                Some(&token),
            )
            .await;
        (!i["automationLevel"].is_null()).then_some(i)
    })
    .await;
    // Nothing to look into on the machine: no threats found.
    assert_eq!(done["state"], "Benign", "{done}");
    let claimed = OffsetDateTime::parse(
        done["claimedTime"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert!(claimed > long_ago + time::Duration::minutes(5), "{done}");
    let (_, still) = s
        .get(&format!("/api/investigations/{}", busy.id), Some(&token))
        .await;
    assert_eq!(
        (still["state"].as_str(), still["automationLevel"].is_null()),
        (Some("Running"), true),
        "{still}"
    );
}

/// An action nobody approved within 7 days expires (treated as rejected), and its
/// investigation, with nothing else to do, ends terminated by the system.
#[tokio::test]
async fn pending_actions_expire_and_their_investigation_ends() {
    use rampart_store::prelude::*;
    let dir = tempfile::tempdir().unwrap();
    let b = &backends(dir.path())[0];
    let s = Server::start_with(b, &["--no-rate-limits"]);
    let machine = crate::harness::seed_machine(b, &s.tenant, "web-8.corp.example").await;
    let store = b.store().await;
    let tenant = s.tenant.parse().unwrap();
    let now = OffsetDateTime::now_utc();
    let mut waiting = rampart_core::investigation::Investigation::queued(
        &machine.id,
        None,
        now - time::Duration::days(8),
    );
    // As the investigator leaves one that waits for an analyst.
    waiting.state = rampart_core::alert::InvestigationState::PendingApproval;
    waiting.claimed_time = Some(now - time::Duration::days(8));
    waiting.automation_level = Some(rampart_core::machine::AutomationLevel::SemiApprovalAllFolders);
    waiting.status_details = Some("1 entities examined: 1 malicious, 0 suspicious.".into());
    let waiting = store
        .create_investigation(&AuditContext::system("test-seed"), tenant, waiting)
        .await
        .unwrap();
    let expired = crate::harness::seed_pending_remediation(
        b,
        &s.tenant,
        &machine,
        &waiting,
        now - time::Duration::minutes(1),
    )
    .await;
    let token = s.token_with("Alert.ReadWrite.All").await;
    let action = eventually("the action to expire", || async {
        let (_, a) = s
            .get(&format!("/api/remediationactions/{expired}"), Some(&token))
            .await;
        (a["status"] == "Expired").then_some(a)
    })
    .await;
    assert_eq!(action["statusDetails"], "Not approved within 7 days.");
    let (st, e) = s
        .post(
            &format!("/api/remediationactions/{expired}/approve"),
            &token,
            json!({"Comment": "too late"}),
        )
        .await;
    assert_eq!(st, 409, "{e}");
    let inv = eventually("the investigation to end", || async {
        let (_, i) = s
            .get(&format!("/api/investigations/{}", waiting.id), Some(&token))
            .await;
        (i["state"] == "TerminatedBySystem").then_some(i)
    })
    .await;
    assert!(inv["endTime"].is_string(), "{inv}");
    assert!(
        inv["statusDetails"].as_str().unwrap().contains("1 expired"),
        "{inv}"
    );
}

/// An analyst who asked for a file back from quarantine has the last word: an investigation
/// that finds it malicious again does not quarantine it again (it still blocks it, and does
/// the rest).
#[tokio::test]
async fn a_file_an_analyst_restored_is_not_quarantined_again() {
    let dir = tempfile::tempdir().unwrap();
    let b = &backends(dir.path())[0];
    let s = Server::start_with(b, &["--no-rate-limits"]);
    let token = s.token_with(ROLES).await;
    let story = stage(&s, &token, "restored", 21).await;
    let analyst = s.token_with("Machine.StopAndQuarantine").await;
    let (st, v) = s
        .post(
            &format!("/api/machines/{}/restoreQuarantinedFile", story.a.id),
            &analyst,
            json!({"Comment": "our own build tool", "Sha1": story.implant_sha1}),
        )
        .await;
    assert_eq!(st, 201, "{v}");

    remediated_without_quarantine(&s, &token, &story, "ndr-restored").await;
}

/// A file an analyst already quarantined on the device is not quarantined again by an
/// investigation that finds it malicious afterwards (the agent would search for a file that is
/// gone, and an analyst's restore would collide with it); the rest is still done.
#[tokio::test]
async fn a_file_already_in_quarantine_is_not_quarantined_again() {
    let dir = tempfile::tempdir().unwrap();
    let b = &backends(dir.path())[0];
    let s = Server::start_with(b, &["--no-rate-limits"]);
    let token = s.token_with(ROLES).await;
    let story = stage(&s, &token, "quarantined", 22).await;
    let analyst = s.token_with("Machine.StopAndQuarantine").await;
    let (st, v) = s
        .post(
            &format!("/api/machines/{}/StopAndQuarantineFile", story.a.id),
            &analyst,
            json!({"Comment": "contain it now", "Sha1": story.implant_sha1}),
        )
        .await;
    assert_eq!(st, 201, "{v}");
    assert_eq!(agent_completes_everything(&s, &story.a).await, 1);

    remediated_without_quarantine(&s, &token, &story, "ndr-quarantined").await;
}

/// Imports a C2 alert and waits for its investigation, which must find the implant
/// malicious, block it and remove its persistence, but not quarantine it.
async fn remediated_without_quarantine(s: &Server, token: &str, story: &Story, external_id: &str) {
    let c2 = import_c2_alert(s, token, external_id).await;
    let inv = investigation(
        s,
        token,
        c2["id"].as_str().unwrap(),
        &["Running", "SuccessfullyRemediated"],
    )
    .await;
    assert_eq!(entity(&inv, "/tmp/.cache/implant")["verdict"], "Malicious");
    let actions = remediation_actions(s, token, &inv).await;
    assert!(
        actions.iter().all(|a| a["actionType"] != "QuarantineFile"),
        "{actions:?}"
    );
    of_type(&actions, "BlockIndicator", Some(&story.implant_sha256));
    of_type(&actions, "RemovePersistence", Some(UNIT));
}

/// Plays a connected agent in the background: holds a poll open all the time, answers each
/// live look from `running` (pids) and `present` (paths) — or, with `running` `None`, never
/// answers one — and carries out every other command, recording its kind.
fn connected_agent(
    s: &Server,
    device: &Device,
    running: Option<&'static [u32]>,
    present: &'static [&'static str],
) -> (
    tokio::task::JoinHandle<()>,
    std::sync::Arc<std::sync::Mutex<Vec<Value>>>,
) {
    let (http, url, auth) = (s.http.clone(), s.url.clone(), device.auth.clone());
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let record = seen.clone();
    let task = tokio::spawn(async move {
        loop {
            let answer: Value = http
                .post(format!("{url}/agent/v1/commands/poll"))
                .header("authorization", &auth)
                .json(&json!({"waitSeconds": 5, "running": []}))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            for c in answer["commands"].as_array().cloned().unwrap_or_default() {
                let id = c["id"].as_str().unwrap().to_owned();
                let kind = &c["kind"];
                let mut update = json!({"commandId": id, "state": "Succeeded", "detail": "done"});
                if kind["type"] == "CollectLiveEvidence" {
                    let Some(running) = running else { continue };
                    let processes: Vec<Value> = kind["processes"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|p| {
                            let pid = p["pid"].as_u64().unwrap() as u32;
                            json!({"pid": pid, "running": running.contains(&pid)})
                        })
                        .collect();
                    let files: Vec<Value> = kind["files"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|f| {
                            let there = present.contains(&f["path"].as_str().unwrap());
                            let sha1 = if there {
                                f["sha1"].clone()
                            } else {
                                Value::Null
                            };
                            json!({"path": f["path"], "exists": there, "sha1": sha1})
                        })
                        .collect();
                    update["evidence"] = json!({"processes": processes, "files": files});
                }
                let st = http
                    .post(format!("{url}/agent/v1/commands/{id}"))
                    .header("authorization", &auth)
                    .json(&update)
                    .send()
                    .await
                    .unwrap()
                    .status();
                assert_eq!(st, 200, "{update}");
                record.lock().unwrap().push(kind.clone());
            }
        }
    });
    (task, seen)
}

/// A connected device is asked what is still there before anything is remediated: a shell
/// the implant started still runs and is killed (its image, bash, is everyone's and stays); a
/// `sleep` it started has ended and is left; the SSH key it added is taken out of
/// `authorized_keys`, and only that key.
#[tokio::test]
async fn a_connected_device_is_looked_at_live_and_only_what_is_still_there_is_remediated() {
    let dir = tempfile::tempdir().unwrap();
    for (n, b) in backends(dir.path()).into_iter().enumerate() {
        let s = Server::start_with(&b, &["--no-rate-limits"]);
        let token = s.token_with(ROLES).await;
        let story = stage(&s, &token, "live", 40 + n as u64).await;
        let name = b.name;
        let key = "AAAAC3NzaC1lZDI1NTE5AAAAIEvilEvilEvilEvilEvilEvilEvilEvilEvil";
        let shell_cmd = format!(
            "bash -c \"echo 'ssh-ed25519 {key} evil@c2' >> /root/.ssh/authorized_keys; exec bash -i\""
        );
        let ago = |m: i64| at(OffsetDateTime::now_utc() - time::Duration::minutes(m));
        // bash has the hash of the story's bash (the implant's parent): one file, two processes.
        let child = |pid: u32, file: &str, folder: &str, sha1: u64, cmd: &str, report: u32| {
            json!({"Timestamp": ago(10), "DeviceId": story.a.id, "DeviceName": "live-a",
                   "ActionType": "ProcessCreated", "FileName": file, "FolderPath": folder,
                   "SHA1": format!("{sha1:040x}"), "ProcessId": pid,
                   "ProcessCommandLine": cmd, "InitiatingProcessId": 4242,
                   "InitiatingProcessFileName": "implant",
                   "InitiatingProcessFolderPath": "/tmp/.cache/implant",
                   "InitiatingProcessSHA1": story.implant_sha1, "ReportId": report})
        };
        s.import(
            &token,
            "DeviceProcessEvents",
            &[
                child(4300, "bash", "/usr/bin/bash", 0xba5b, &shell_cmd, 10),
                child(4301, "sleep", "/usr/bin/sleep", 0x51ee9, "sleep 5", 11),
            ],
        )
        .await;
        s.import(
            &token,
            "DeviceFileEvents",
            &[
                json!({"Timestamp": ago(9), "DeviceId": story.a.id, "DeviceName": "live-a",
                     "ActionType": "FileModified", "FileName": "authorized_keys",
                     "FolderPath": "/root/.ssh/authorized_keys", "InitiatingProcessId": 4300,
                     "InitiatingProcessFileName": "bash",
                     "InitiatingProcessCommandLine": shell_cmd, "ReportId": 12}),
            ],
        )
        .await;
        let (agent, commands) = connected_agent(
            &s,
            &story.a,
            Some(&[4242, 4300]),
            &["/tmp/.cache/implant", UNIT, "/root/.ssh/authorized_keys"],
        );
        // The agent's poll is held before the alert arrives.
        tokio::time::sleep(Duration::from_millis(300)).await;

        let c2 = import_c2_alert(&s, &token, &format!("ndr-live-{n}")).await;
        let inv = investigation(
            &s,
            &token,
            c2["id"].as_str().unwrap(),
            &["Running", "SuccessfullyRemediated"],
        )
        .await;
        assert_eq!(inv["notExamined"], json!([]), "{name}: {inv}");
        let look = machine_action(&s, &token, &inv, "liveEvidenceActionId").await;
        assert_eq!(
            (look["type"].as_str(), look["status"].as_str()),
            (Some("CollectLiveEvidence"), Some("Succeeded")),
            "{look}"
        );
        assert_eq!(
            look["liveEvidence"]["processes"].as_array().unwrap().len(),
            3
        );
        let shell = entity(&inv, "bash (pid 4300)");
        assert_eq!(
            (shell["verdict"].as_str(), shell["liveState"].as_str()),
            (Some("Malicious"), Some("Running")),
            "{shell}"
        );
        assert_eq!(entity(&inv, "sleep (pid 4301)")["liveState"], "NotRunning");
        assert_eq!(entity(&inv, "/usr/bin/bash")["verdict"], "Clean");
        let keys = entity(&inv, "authorized key /root/.ssh/authorized_keys");
        assert_eq!(
            (keys["verdict"].as_str(), &keys["entries"]),
            (Some("Malicious"), &json!([key])),
            "{keys}"
        );

        let actions = remediation_actions(&s, &token, &inv).await;
        let kills: Vec<_> = actions
            .iter()
            .filter(|a| a["actionType"] == "KillProcess")
            .collect();
        assert_eq!(
            kills.len(),
            1,
            "{name}: only the shell still runs: {actions:?}"
        );
        assert_eq!(
            (
                kills[0]["processId"].as_u64(),
                kills[0]["filePath"].as_str()
            ),
            (Some(4300), Some("/usr/bin/bash"))
        );
        let removal = of_type(
            &actions,
            "RemovePersistence",
            Some("/root/.ssh/authorized_keys"),
        );
        assert_eq!(removal["entries"], json!([key]));
        of_type(&actions, "RemovePersistence", Some(UNIT));
        of_type(&actions, "QuarantineFile", Some(&story.implant_sha1));
        assert!(
            actions
                .iter()
                .all(|a| a["actionType"] != "QuarantineFile"
                    || a["sha1"] == story.implant_sha1.as_str()),
            "bash and sleep are not quarantined: {actions:?}"
        );

        // The agent got exactly what to do, and the investigation ends remediated.
        investigation(
            &s,
            &token,
            c2["id"].as_str().unwrap(),
            &["SuccessfullyRemediated"],
        )
        .await;
        let got = commands.lock().unwrap().clone();
        agent.abort();
        assert!(
            got.contains(
                &json!({"type": "KillProcess", "pid": 4300, "imagePath": "/usr/bin/bash"})
            ),
            "{name}: {got:?}"
        );
        assert!(
            got.contains(&json!({"type": "RemovePersistence",
                                 "path": "/root/.ssh/authorized_keys", "entries": [key]})),
            "{name}: {got:?}"
        );
        let (st, e) = s
            .post(
                &format!(
                    "/api/remediationactions/{}/undo",
                    kills[0]["id"].as_str().unwrap()
                ),
                &token,
                json!({"Comment": "oops"}),
            )
            .await;
        assert_eq!(st, 409, "a killed process cannot be brought back: {e}");
    }
}

/// A device whose agent is connected but does not answer the live look within the configured
/// wait: the look is cancelled and the investigation goes on with telemetry alone, saying so.
#[tokio::test]
async fn an_unanswered_live_look_is_given_up_and_the_investigation_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("rampart.toml");
    std::fs::write(&config, "[api]\nlive_evidence_wait_secs = 1\n").unwrap();
    let b = &backends(dir.path())[0];
    let s = Server::start_opts(
        b,
        &["--config", config.to_str().unwrap()],
        &["--no-rate-limits"],
    );
    let token = s.token_with(ROLES).await;
    let story = stage(&s, &token, "mute", 60).await;
    let (agent, commands) = connected_agent(&s, &story.a, None, &[]);
    tokio::time::sleep(Duration::from_millis(300)).await;

    let c2 = import_c2_alert(&s, &token, "ndr-mute").await;
    let inv = investigation(
        &s,
        &token,
        c2["id"].as_str().unwrap(),
        &["Running", "SuccessfullyRemediated"],
    )
    .await;
    assert_eq!(
        inv["notExamined"],
        json!(["live evidence (the device did not answer within 1 s)"]),
        "{inv}"
    );
    assert!(entity(&inv, "implant (pid 4242)")["liveState"].is_null());
    let look = machine_action(&s, &token, &inv, "liveEvidenceActionId").await;
    assert_eq!(look["status"], "Cancelled", "{look}");
    // Without the device's word, everything telemetry condemned is remediated.
    let actions = remediation_actions(&s, &token, &inv).await;
    of_type(&actions, "QuarantineFile", Some(&story.implant_sha1));
    of_type(&actions, "RemovePersistence", Some(UNIT));
    // The connected agent carries the rest out.
    investigation(
        &s,
        &token,
        c2["id"].as_str().unwrap(),
        &["SuccessfullyRemediated"],
    )
    .await;
    let got = commands.lock().unwrap().clone();
    assert!(
        got.contains(&json!({"type": "StopAndQuarantineFile", "sha1": story.implant_sha1})),
        "{got:?}"
    );
    agent.abort();
}

/// Servers sharing the database and a cluster bus: the agent holds its poll on one that runs
/// no investigations, so the investigation runs on the other — which asks the bus whether the
/// device is connected, and looks at it live through the command its poll receives.
#[tokio::test]
async fn the_live_look_reaches_an_agent_connected_to_another_server_of_the_cluster() {
    let Some(nats) = crate::agent_commands::nats_url() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let cluster = format!("test-{}", uuid::Uuid::new_v4().simple());
    let front = dir.path().join("front.toml");
    std::fs::write(&front, "[api]\ninvestigations = false\n").unwrap();
    for b in backends(dir.path()) {
        let flags = [
            "--no-rate-limits",
            "--nats-url",
            &nats,
            "--cluster-name",
            &cluster,
        ];
        let worker = Server::start_with(&b, &flags);
        let mut second = b.clone();
        second.data_dir = dir.path().join(format!("{}-front", b.name));
        let agents = Server::start_opts(&second, &["--config", front.to_str().unwrap()], &flags);
        let token = worker.token_with(ROLES).await;
        let story = stage(&worker, &token, "bus", 80).await;
        let (agent, _) = connected_agent(&agents, &story.a, Some(&[4242]), &[UNIT]);
        tokio::time::sleep(Duration::from_millis(300)).await;

        let c2 = import_c2_alert(&worker, &token, &format!("ndr-bus-{}", b.name)).await;
        let inv = investigation(
            &worker,
            &token,
            c2["id"].as_str().unwrap(),
            &["Running", "SuccessfullyRemediated"],
        )
        .await;
        agent.abort();
        assert_eq!(inv["notExamined"], json!([]), "{}: {inv}", b.name);
        let look = machine_action(&worker, &token, &inv, "liveEvidenceActionId").await;
        assert_eq!(look["status"], "Succeeded", "{look}");
        assert_eq!(
            entity(&inv, "implant (pid 4242)")["liveState"],
            "Running",
            "{inv}"
        );
        // The implant's file is gone from the device: no quarantine, its process killed.
        let actions = remediation_actions(&worker, &token, &inv).await;
        assert!(
            actions.iter().all(|a| a["actionType"] != "QuarantineFile"),
            "{actions:?}"
        );
        let kill = of_type(&actions, "KillProcess", None);
        assert_eq!(kill["processId"], 4242, "{kill}");
    }
}

/// Alerts raised on a device while its investigation waits in the queue join it, as MDE adds a
/// device's alerts to its ongoing investigation: one investigation looks into all of them and
/// every one of them follows its state. Once it has started, the device's next alert gets an
/// investigation of its own.
#[tokio::test]
async fn alerts_of_a_device_join_its_queued_investigation() {
    let dir = tempfile::tempdir().unwrap();
    let paused = dir.path().join("paused.toml");
    std::fs::write(&paused, "[api]\ninvestigations = false\n").unwrap();
    for b in backends(dir.path()) {
        let name = b.name;
        // No investigator yet: what the alerts queue stays queued.
        let s = Server::start_opts(
            &b,
            &["--config", paused.to_str().unwrap()],
            &["--no-rate-limits"],
        );
        let token = s.token_with(ROLES).await;
        let story = stage(&s, &token, &format!("join-{name}"), 90).await;
        let first = device_alert(&b, &s, &format!("da-join-{name}"), &story.a.id, &story).await;
        let queued = first.investigation_id.expect("an investigation is queued");
        let c2 = import_c2_alert(&s, &token, &format!("ndr-join-{name}")).await;
        assert_eq!(c2["machineId"], story.a.id.as_str(), "{name}: {c2}");
        assert_eq!(c2["investigationId"], queued, "{name}: {c2}");
        assert_eq!(c2["investigationState"], "Queued", "{name}: {c2}");
        let (st, list) = s
            .get(
                &format!("/api/investigations?$filter=machineId eq '{}'", story.a.id),
                Some(&token),
            )
            .await;
        assert_eq!(st, 200, "{list}");
        assert_eq!(list["value"].as_array().unwrap().len(), 1, "{name}: {list}");
        drop(s);

        // The same server with its investigator: one analysis of both alerts' evidence.
        let s = Server::start_with(&b, &["--no-rate-limits"]);
        let token = s.token_with(ROLES).await;
        let inv = investigation(
            &s,
            &token,
            &first.id,
            &["Running", "SuccessfullyRemediated"],
        )
        .await;
        assert_eq!(inv["id"], queued.to_string(), "{name}: {inv}");
        assert_eq!(inv["triggeringAlertId"], first.id.as_str(), "{name}: {inv}");
        // The C2 address came only with the network sensor's alert, the implant's file with the
        // device's.
        assert_eq!(entity(&inv, C2)["verdict"], "Malicious", "{name}: {inv}");
        assert_eq!(
            entity(&inv, "/tmp/.cache/implant")["verdict"],
            "Malicious",
            "{name}: {inv}"
        );
        let c2_id = c2["id"].as_str().unwrap();
        let state = eventually("both alerts following the investigation", || async {
            let (_, inv) = s
                .get(&format!("/api/investigations/{queued}"), Some(&token))
                .await;
            let (_, a) = s
                .get(&format!("/api/alerts/{}", first.id), Some(&token))
                .await;
            let (_, c) = s.get(&format!("/api/alerts/{c2_id}"), Some(&token)).await;
            (a["investigationState"] == inv["state"] && c["investigationState"] == inv["state"])
                .then_some(inv["state"].clone())
        })
        .await;
        assert_ne!(state, "Queued", "{name}");

        // Started: the device's next alert is investigated on its own.
        let next = device_alert(&b, &s, &format!("da-join-next-{name}"), &story.a.id, &story).await;
        let next_id = next.investigation_id.expect("an investigation is queued");
        assert_ne!(next_id, queued, "{name}");
    }
}
