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
