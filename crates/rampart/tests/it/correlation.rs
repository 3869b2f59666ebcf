//! Correlation on both stores: device alerts and external alerts join one incident through
//! the entities they share, a linking alert merges incidents (the absorbed one `Redirected`),
//! each alert's reason is on the incident, and the tenant's policy (window, entity kinds)
//! decides.

use crate::harness::{Backend, Server, assert_mde_error, backends, seed_machine};
use rampart_core::alert::{Alert, Evidence};
use rampart_core::audit::AuditContext;
use serde_json::{Value, json};
use time::{Duration, OffsetDateTime};

/// Stores an alert of `machine` as a detection would (through the store, which correlates).
pub(crate) async fn device_alert(
    b: &Backend,
    s: &Server,
    n: u64,
    machine: &str,
    category: &str,
    at: OffsetDateTime,
    evidence: Vec<Evidence>,
) -> Alert {
    use rampart_store::prelude::*;
    let tenant = s.tenant.parse().unwrap();
    let mut a = rampart_core::alert::synthetic(n, tenant, at, 1);
    a.id = format!("da-corr-{n}");
    a.machine_id = Some(machine.to_owned());
    a.computer_dns_name = None;
    a.category = category.to_owned();
    a.title = format!("{category} alert {n}");
    a.status = rampart_core::alert::AlertStatus::New;
    a.first_event_time = Some(at);
    a.alert_creation_time = Some(at);
    a.related_user = None;
    a.evidence = evidence;
    let store = b.store().await;
    store
        .insert_alerts(&AuditContext::system("test-detect"), tenant, &[a])
        .await
        .unwrap()
        .remove(0)
}

fn device_id(n: u32) -> String {
    format!("{n:040x}")
}

pub(crate) fn file(sha256: &str) -> Evidence {
    Evidence {
        entity_type: "File".into(),
        sha256: Some(sha256.into()),
        ..Default::default()
    }
}

fn user(name: &str) -> Evidence {
    Evidence {
        entity_type: "User".into(),
        account_name: Some(name.into()),
        domain_name: Some("CORP".into()),
        ..Default::default()
    }
}

async fn incident(s: &Server, token: &str, id: i64) -> Value {
    let (st, v) = s.get(&format!("/api/incidents/{id}"), Some(token)).await;
    assert_eq!(st, 200, "{v}");
    v
}

fn reason<'a>(incident: &'a Value, alert: &str) -> &'a Value {
    incident["correlationReasons"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["alertId"] == alert)
        .unwrap_or_else(|| panic!("no reason for {alert}: {incident}"))
}

#[tokio::test]
async fn alerts_that_share_entities_tell_one_story() {
    let dir = tempfile::tempdir().unwrap();
    for b in backends(dir.path()) {
        let s = Server::start_with(&b, &["--no-rate-limits"]);
        let token = s.token_with("Alert.ReadWrite.All,Incident.Read.All").await;
        // Only web is a known machine (its address, 10.1.2.3, resolves external alerts); the
        // other devices need only an id for their alerts.
        let web = seed_machine(&b, &s.tenant, "web-1.corp.example").await;
        let (db, app, fresh) = (device_id(1), device_id(2), device_id(3));
        let now = OffsetDateTime::now_utc();
        let payload = "ab".repeat(32);

        // A device alert on web opens an incident.
        let first = device_alert(&b, &s, 1, &web.id, "Execution", now, vec![file(&payload)]).await;
        let a = first.incident_id.unwrap();

        // A network sensor's alert about C2 traffic from web's address joins it: the device,
        // resolved by IP at the event time, is the shared entity.
        let (st, res) = s
            .post(
                "/api/alerts/import",
                &token,
                json!({"Alerts": [{"sourceProduct": "Contoso NDR", "externalId": "ndr-c2-1",
                    "title": "C2 traffic from 10.1.2.3 to 198.51.100.7", "severity": "High",
                    "category": "CommandAndControl",
                    "lastEventTime": rampart_core::timefmt::format(now),
                    "evidence": [{"entityType": "Device", "ipAddress": "10.1.2.3"},
                                 {"entityType": "Ip", "ipAddress": "198.51.100.7"}]}]}),
            )
            .await;
        assert_eq!(st, 200, "{}: {res}", b.name);
        let external = res["value"][0]["id"].as_str().unwrap().to_owned();
        let (_, ext) = s
            .get(&format!("/api/alerts/{external}"), Some(&token))
            .await;
        assert_eq!(ext["incidentId"], a, "{ext}");

        // The same file on a second device: across devices, by hash.
        let spread = device_alert(&b, &s, 2, &db, "Execution", now, vec![file(&payload)]).await;
        assert_eq!(spread.incident_id, Some(a));

        let i = incident(&s, &token, a).await;
        assert_eq!(
            i["incidentName"],
            "Execution and command-and-control on 2 endpoints"
        );
        assert_eq!(i["severity"], "High", "the highest of its alerts");
        assert_eq!(i["alerts"].as_array().unwrap().len(), 3, "{i}");
        assert!(reason(&i, &first.id)["entityType"].is_null(), "opened it");
        let r = reason(&i, &external);
        assert_eq!(
            (r["entityType"].as_str(), r["linkedAlertId"].as_str()),
            (Some("Device"), Some(first.id.as_str()))
        );
        assert_eq!(r["entityValue"], web.id);
        let r = reason(&i, &spread.id);
        assert_eq!(r["entityType"], "File");
        assert_eq!(r["entityValue"], payload);
        // What the incident's alerts link by, and its devices.
        let entities: Vec<(&str, &str)> = i["entities"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["entityType"].as_str().unwrap(),
                    e["value"].as_str().unwrap(),
                )
            })
            .collect();
        for expected in [
            ("Device", web.id.as_str()),
            ("Device", db.as_str()),
            ("File", payload.as_str()),
            ("Ip", "198.51.100.7"),
        ] {
            assert!(entities.contains(&expected), "{expected:?} in {entities:?}");
        }
        assert_eq!(i["devices"].as_array().unwrap().len(), 2, "{i}");

        // An unrelated alert on a third device opens its own incident; an alert that shares
        // its user and web's device links both, and merges the newer into the older.
        let lone = device_alert(&b, &s, 3, &app, "CredentialAccess", now, vec![user("bob")]).await;
        let bi = lone.incident_id.unwrap();
        assert_ne!(bi, a);
        let link = device_alert(
            &b,
            &s,
            4,
            &web.id,
            "LateralMovement",
            now,
            vec![user("Bob")],
        )
        .await;
        assert_eq!(link.incident_id, Some(a));
        let absorbed = incident(&s, &token, bi).await;
        assert_eq!(absorbed["status"], "Redirected", "{absorbed}");
        assert_eq!(absorbed["redirectIncidentId"], a);
        let (_, moved) = s
            .get(&format!("/api/alerts/{}", lone.id), Some(&token))
            .await;
        assert_eq!(
            moved["incidentId"], a,
            "the absorbed incident's alert moved"
        );
        let i = incident(&s, &token, a).await;
        assert_eq!(i["alerts"].as_array().unwrap().len(), 5);
        assert_eq!(reason(&i, &lone.id)["mergedFromIncidentId"], bi);
        assert_eq!(
            i["incidentName"],
            "Execution, credential access and 2 more on 3 endpoints"
        );

        // Outside the window (24 hours by default): a story of its own.
        let old = device_alert(
            &b,
            &s,
            5,
            &web.id,
            "Execution",
            now - Duration::days(3),
            vec![],
        )
        .await;
        assert_ne!(old.incident_id, Some(a));

        // A false positive links nothing.
        let (st, v) = s
            .send(
                "PATCH",
                &format!("/api/alerts/{}", old.id),
                &token,
                Some(json!({"classification": "FalsePositive", "determination": "Other"})),
            )
            .await;
        assert_eq!(st, 200, "{v}");
        let after_fp = device_alert(
            &b,
            &s,
            6,
            &web.id,
            "Execution",
            now - Duration::days(3),
            vec![],
        )
        .await;
        assert_ne!(after_fp.incident_id, old.incident_id);

        // The policy: only the same device links now, within an hour.
        let admin = s.token_with("SecurityConfiguration.ReadWrite.All").await;
        let (st, p) = s.get("/api/correlationpolicy", Some(&admin)).await;
        assert_eq!(st, 200);
        assert_eq!(p["windowHours"], 24);
        assert_eq!(p["linkBy"].as_array().unwrap().len(), 6);
        let (st, p) = s
            .send(
                "PUT",
                "/api/correlationpolicy",
                &admin,
                Some(json!({"windowHours": 1, "linkBy": ["Device"]})),
            )
            .await;
        assert_eq!(st, 200, "{p}");
        for bad in [
            json!({"windowHours": 0, "linkBy": []}),
            json!({"windowHours": 24, "linkBy": ["Galaxy"]}),
            json!({"windowHours": 24}),
        ] {
            let (st, e) = s
                .send("PUT", "/api/correlationpolicy", &admin, Some(bad.clone()))
                .await;
            assert_eq!(st, 400, "{bad}: {e}");
            assert_mde_error(&e, "InvalidRequestBody");
        }
        let by_hash = device_alert(&b, &s, 7, &fresh, "Execution", now, vec![file(&payload)]).await;
        assert_ne!(by_hash.incident_id, Some(a), "files no longer link");
        let by_device = device_alert(&b, &s, 8, &db, "Discovery", now, vec![]).await;
        assert_eq!(by_device.incident_id, Some(a), "devices still do");
    }
}

/// A row's key as labels name it: device, table, ReportId, Timestamp (ns).
type RowKey = (String, &'static str, i64, i64);

/// Keeps the simulator's labelled rows: each label names a row written just before it.
#[derive(Default)]
struct LabelledRows {
    recent: std::collections::VecDeque<(RowKey, serde_json::Map<String, Value>)>,
    labelled: Vec<(rampart_simulate::Label, serde_json::Map<String, Value>)>,
    /// Every 1,000th row with a ReportId: normal activity, unless a label claims it.
    sampled: Vec<(&'static str, serde_json::Map<String, Value>)>,
    seen: u64,
}

impl rampart_simulate::Sink for LabelledRows {
    fn row(
        &mut self,
        _device: usize,
        table: &'static rampart_simulate::Table,
        cells: &[(usize, rampart_simulate::Cell<'_>)],
    ) -> std::io::Result<()> {
        let mut cols = serde_json::Map::new();
        for (i, c) in cells {
            cols.insert(
                table.columns[*i].name.to_owned(),
                rampart_simulate::sinks::cell_value(c),
            );
        }
        let (Some(device), Some(report)) = (
            cols.get("DeviceId")
                .and_then(Value::as_str)
                .map(str::to_owned),
            cols.get("ReportId").and_then(Value::as_i64),
        ) else {
            return Ok(());
        };
        let ts = cols
            .get("Timestamp")
            .and_then(Value::as_str)
            .and_then(rampart_telemetry::rows::parse_datetime)
            .unwrap_or_default();
        self.seen += 1;
        if self.seen.is_multiple_of(1000) {
            self.sampled.push((table.name, cols.clone()));
        }
        self.recent
            .push_back(((device, table.name, report, ts), cols));
        if self.recent.len() > 256 {
            self.recent.pop_front();
        }
        Ok(())
    }

    fn label(&mut self, l: &rampart_simulate::Label) -> std::io::Result<()> {
        let row = self
            .recent
            .iter()
            .rev()
            .find(|((d, t, r, ts), _)| {
                *d == l.device_id && *t == l.table && *r == l.report_id && *ts == l.timestamp_ns
            })
            .map(|(_, cols)| cols.clone())
            .unwrap_or_else(|| panic!("no row for label {l:?}"));
        self.labelled.push((l.clone(), row));
        Ok(())
    }
}

/// The simulator's attack stories, mixed with a fleet's normal activity, each raise alerts (one
/// per labelled step, with the entities of its row, as a perfect detector would); correlation
/// must put each story in one incident and no two stories together: pairwise precision and
/// recall against the ground truth at least 0.95.
#[tokio::test]
async fn simulated_attacks_land_each_in_one_incident() {
    use rampart_store::prelude::*;
    let dir = tempfile::tempdir().unwrap();
    let b = &backends(dir.path())[0];
    let s = Server::start_with(b, &["--no-rate-limits"]);
    let spec = rampart_simulate::FleetSpec {
        devices: 40,
        days: 1.0,
        seed: 11,
        start_ns: 1_784_505_600_000_000_000,
        scenarios: ["phishing", "credential-theft", "ransomware", "ssh-miner"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect(),
    };
    let mut sink = LabelledRows::default();
    rampart_simulate::generate(&spec, &mut sink).unwrap();
    let tenant: rampart_core::TenantId = s.tenant.parse().unwrap();
    let mut alerts = Vec::new();
    let mut truth = std::collections::HashMap::new();
    // The attacks' alerts, and a sample of normal activity on devices no attack touched as
    // false positives: they must not join the attacks' incidents.
    let attacked: std::collections::HashSet<&str> = sink
        .labelled
        .iter()
        .map(|(l, _)| l.device_id.as_str())
        .collect();
    let mut raised: Vec<(String, &'static str, &serde_json::Map<String, Value>)> = sink
        .labelled
        .iter()
        .map(|(l, row)| (l.scenario.clone(), l.table, row))
        .collect();
    for (i, (table, row)) in sink.sampled.iter().enumerate() {
        let device = row.get("DeviceId").and_then(Value::as_str).unwrap_or("");
        if !attacked.contains(device) {
            // Alerts of one device within a day are one story by the rules: benign ones too.
            let _ = i;
            raised.push((format!("benign:{device}"), *table, row));
        }
    }
    for (n, (story, table, row)) in raised.iter().enumerate() {
        let text = |c: &str| row.get(c).and_then(Value::as_str).filter(|v| !v.is_empty());
        let ts = text("Timestamp")
            .and_then(rampart_telemetry::rows::parse_datetime)
            .unwrap();
        let at = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ts)).unwrap();
        let mut a = rampart_core::alert::synthetic(n as u64, tenant, at, 1);
        a.id = format!("sim-{n:05}");
        a.machine_id = text("DeviceId").map(str::to_owned);
        a.computer_dns_name = None;
        a.title = format!("{story} on {table}");
        a.first_event_time = Some(at);
        a.alert_creation_time = Some(at);
        a.related_user = None;
        // What a detector names: the file it saw written, the process it saw run, the peer
        // it saw contacted, the account that signed in.
        let kind = match *table {
            "DeviceFileEvents" => "File",
            "DeviceNetworkEvents" => "Ip",
            "DeviceLogonEvents" => "User",
            _ => "Process",
        };
        a.evidence = vec![Evidence {
            entity_type: kind.into(),
            sha256: text("SHA256").map(str::to_owned),
            ip_address: text("RemoteIP").map(str::to_owned),
            url: text("RemoteUrl").map(str::to_owned),
            account_name: text("AccountName").map(str::to_owned),
            domain_name: text("AccountDomain").map(str::to_owned),
            ..Default::default()
        }];
        truth.insert(a.id.clone(), story.clone());
        alerts.push(a);
    }
    alerts.sort_by_key(|a| (a.first_event_time, a.id.clone()));
    let stories: std::collections::BTreeSet<&String> = truth
        .values()
        .filter(|s| !s.starts_with("benign:"))
        .collect();
    assert_eq!(stories.len(), 4, "every attack raised alerts");
    let store = b.store().await;
    let stored = store
        .insert_alerts(&AuditContext::system("test-detect"), tenant, &alerts)
        .await
        .unwrap();
    // Merges move earlier alerts: read where each ended up.
    let mut placed = std::collections::HashMap::new();
    for a in &stored {
        let now = store.get_alert_doc(tenant, &a.id).await.unwrap().unwrap();
        placed.insert(a.id.clone(), now.incident_id.unwrap());
    }
    let ids: Vec<&String> = truth.keys().collect();
    let (mut both, mut same_story, mut same_incident) = (0u64, 0u64, 0u64);
    for (i, x) in ids.iter().enumerate() {
        for y in &ids[i + 1..] {
            // Pairs with an attack alert: how benign alerts group among themselves is not
            // what this measures.
            if truth[*x].starts_with("benign:") && truth[*y].starts_with("benign:") {
                continue;
            }
            let story = truth[*x] == truth[*y];
            let incident = placed[*x] == placed[*y];
            both += u64::from(story && incident);
            same_story += u64::from(story);
            same_incident += u64::from(incident);
        }
    }
    let precision = both as f64 / same_incident.max(1) as f64;
    let recall = both as f64 / same_story.max(1) as f64;
    let incidents: std::collections::BTreeSet<i64> = placed.values().copied().collect();
    eprintln!(
        "{} alerts of {} stories in {} incidents: pairwise precision {precision:.3}, recall {recall:.3}",
        ids.len(),
        stories.len(),
        incidents.len()
    );
    // Which stories each incident holds, and the links that crossed stories.
    let mut held: std::collections::BTreeMap<i64, std::collections::BTreeSet<&String>> =
        Default::default();
    for (id, story) in &truth {
        held.entry(placed[id]).or_default().insert(story);
    }
    let all: Vec<i64> = held.keys().copied().collect();
    let crossing: Vec<_> = store
        .correlation_reasons(tenant, &all)
        .await
        .unwrap()
        .into_iter()
        .filter(|(_, r)| {
            r.linked_alert_id.as_ref().is_some_and(|l| {
                truth[l] != truth[&r.alert_id]
                    && !(truth[l].starts_with("benign:")
                        && truth[&r.alert_id].starts_with("benign:"))
            })
        })
        .map(|(_, r)| (r.entity_type, r.entity_value, truth[&r.alert_id].clone()))
        .collect();
    assert!(
        precision >= 0.95,
        "precision {precision:.3}; links into or out of attacks: {crossing:?}"
    );
    // And plainly: each attack in one incident of its own.
    for story in &stories {
        let homes: Vec<_> = held.iter().filter(|(_, h)| h.contains(story)).collect();
        assert_eq!(homes.len(), 1, "{story} is in one incident: {homes:?}");
        assert_eq!(
            homes[0].1.len(),
            1,
            "{story} shares its incident: {homes:?}"
        );
    }
    assert!(recall >= 0.95, "recall {recall:.3}");
}
