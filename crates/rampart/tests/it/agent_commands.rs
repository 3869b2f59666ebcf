//! The agents' command channel over HTTP, on every backend: machine actions handed out as
//! commands by the long poll (at once when one is queued while the poll waits), sent again when
//! the agent does not list them, cancellations named, results completing the actions, and
//! every refusal in MDE's error shape.

use crate::harness::{Server, assert_mde_error, backends, seed_group};
use crate::telemetry::{Device, enroll};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const ROLES: &str = "Machine.Read.All,Machine.Isolate,Machine.Scan";

pub(crate) async fn device_post(
    s: &Server,
    device: &Device,
    path: &str,
    body: Value,
) -> (u16, Value) {
    let resp = s
        .http
        .post(format!("{}{path}", s.url))
        .header("authorization", &device.auth)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

pub(crate) async fn poll(s: &Server, device: &Device, wait: u32, running: &[&str]) -> Value {
    let (st, v) = device_post(
        s,
        device,
        "/agent/v1/commands/poll",
        json!({ "waitSeconds": wait, "running": running }),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    v
}

pub(crate) async fn report(
    s: &Server,
    device: &Device,
    id: &str,
    state: &str,
    detail: &str,
) -> (u16, Value) {
    device_post(
        s,
        device,
        &format!("/agent/v1/commands/{id}"),
        json!({ "commandId": id, "state": state, "detail": detail }),
    )
    .await
}

/// A poll held in the background: its answer, and how long it was held.
fn held_poll(
    s: &Server,
    device: &Device,
    body: Value,
) -> tokio::task::JoinHandle<(Value, Duration)> {
    let (http, url, auth) = (s.http.clone(), s.url.clone(), device.auth.clone());
    tokio::spawn(async move {
        let started = Instant::now();
        let v: Value = http
            .post(format!("{url}/agent/v1/commands/poll"))
            .header("authorization", auth)
            .json(&body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        (v, started.elapsed())
    })
}

async fn act(s: &Server, token: &str, machine: &str, action: &str, body: Value) -> String {
    let (st, v) = s
        .post(&format!("/api/machines/{machine}/{action}"), token, body)
        .await;
    assert_eq!(st, 201, "{action}: {v}");
    v["id"].as_str().unwrap().to_owned()
}

async fn status_of(s: &Server, token: &str, id: &str) -> Value {
    let (st, v) = s
        .get(&format!("/api/machineactions/{id}"), Some(token))
        .await;
    assert_eq!(st, 200, "{v}");
    v
}

#[tokio::test]
async fn actions_reach_the_agent_as_commands_and_its_results_complete_them() {
    let dir = tempfile::tempdir().unwrap();
    for b in backends(dir.path()) {
        let s = Server::start_with(&b, &["--no-rate-limits"]);
        let device = enroll(&s, "web-1.corp.example").await;
        let other = enroll(&s, "web-2.corp.example").await;
        let token = s.token_with(ROLES).await;
        let n = b.name;

        // Nothing queued: an empty answer.
        let v = poll(&s, &device, 0, &[]).await;
        assert_eq!(v["commands"], json!([]), "{n}");

        let isolate = act(
            &s,
            &token,
            &device.id,
            "isolate",
            json!({"Comment": "c2", "IsolationType": "Selective"}),
        )
        .await;
        let v = poll(&s, &device, 0, &[]).await;
        assert_eq!(
            v["commands"],
            json!([{ "id": isolate, "machineActionId": isolate,
                     "kind": { "type": "Isolate", "isolationType": "Selective" } }]),
            "{n}"
        );
        assert_eq!(
            status_of(&s, &token, &isolate).await["status"],
            "InProgress",
            "{n}"
        );
        // The unisolation waits in its lane until the running isolation is done.
        let unisolate = act(
            &s,
            &token,
            &device.id,
            "unisolate",
            json!({"Comment": "clean"}),
        )
        .await;
        // The answer was lost: the agent does not list it, so it comes again.
        let v = poll(&s, &device, 0, &[]).await;
        assert_eq!(v["commands"][0]["id"], isolate.as_str(), "{n}");
        // Listed: not again, and nothing else to do.
        let v = poll(&s, &device, 0, &[&isolate]).await;
        assert_eq!(
            v,
            json!({ "commands": [], "cancelled": [], "indicatorGeneration": 0 }),
            "{n}"
        );
        // Another device sees none of it, and cannot report on it.
        assert_eq!(poll(&s, &other, 0, &[]).await["commands"], json!([]), "{n}");
        let (st, v) = report(&s, &other, &isolate, "Succeeded", "").await;
        assert_eq!(st, 404, "{n}: {v}");
        assert_mde_error(&v, "ResourceNotFound");

        let (st, v) = report(&s, &device, &isolate, "InProgress", "applying").await;
        assert_eq!(
            (st, v["status"].as_str()),
            (200, Some("InProgress")),
            "{n}: {v}"
        );
        let (st, v) = report(&s, &device, &isolate, "Succeeded", "isolated").await;
        assert_eq!(
            (st, v["status"].as_str()),
            (200, Some("Succeeded")),
            "{n}: {v}"
        );
        assert_eq!(
            status_of(&s, &token, &isolate).await["status"],
            "Succeeded",
            "{n}"
        );
        // Reported twice: the action is finished.
        let (st, v) = report(&s, &device, &isolate, "Succeeded", "").await;
        assert_eq!(st, 409, "{n}: {v}");
        assert_mde_error(&v, "Conflict");

        // The lane is free: the unisolation comes next, and a failure carries its reason.
        let v = poll(&s, &device, 0, &[]).await;
        assert_eq!(v["commands"][0]["id"], unisolate.as_str(), "{n}: {v}");
        assert_eq!(
            v["commands"][0]["kind"],
            json!({"type": "Unisolate"}),
            "{n}"
        );
        let (st, v) = report(
            &s,
            &device,
            &unisolate,
            "Failed",
            "nft failed: no such table",
        )
        .await;
        assert_eq!(
            (st, v["status"].as_str()),
            (200, Some("Failed")),
            "{n}: {v}"
        );
        let a = status_of(&s, &token, &unisolate).await;
        assert_eq!(a["status"], "Failed", "{n}");
        assert_eq!(
            a["troubleshootInfo"], "nft failed: no such table",
            "{n}: {a}"
        );

        // A poll that waits answers as soon as an action is queued, not when its wait ends.
        let waiting = held_poll(&s, &device, json!({ "waitSeconds": 30 }));
        tokio::time::sleep(Duration::from_millis(300)).await;
        let scan = act(
            &s,
            &token,
            &device.id,
            "runAntiVirusScan",
            json!({"Comment": "sweep", "ScanType": "Quick"}),
        )
        .await;
        let (v, waited) = waiting.await.unwrap();
        assert_eq!(v["commands"][0]["id"], scan.as_str(), "{n}: {v}");
        assert_eq!(
            v["commands"][0]["kind"],
            json!({"type": "RunAntiVirusScan", "scanType": "Quick"}),
            "{n}"
        );
        // Well before the wait (30 s) and the fallback look (5 s): the bell woke it.
        assert!(
            waited < Duration::from_secs(4),
            "{n}: answered after {waited:?}"
        );

        // Cancelled while running: the next poll names it.
        let (st, v) = s
            .post(
                &format!("/api/machineactions/{scan}/cancel"),
                &token,
                json!({"Comment": "not needed"}),
            )
            .await;
        assert_eq!(st, 200, "{n}: {v}");
        let v = poll(&s, &device, 0, &[&scan]).await;
        assert_eq!(v["cancelled"], json!([scan]), "{n}: {v}");
        let (st, _) = report(&s, &device, &scan, "Succeeded", "").await;
        assert_eq!(st, 409, "{n}");
    }
}

#[tokio::test]
async fn bad_polls_and_updates_get_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    for b in backends(dir.path()) {
        let s = Server::start_with(&b, &["--no-rate-limits"]);
        let device = enroll(&s, "db-1.corp.example").await;
        let n = b.name;

        // No credential, a wrong secret.
        let resp = s
            .http
            .post(format!("{}/agent/v1/commands/poll", s.url))
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 401, "{n}");
        let forged = Device {
            id: device.id.clone(),
            auth: format!("Device {}:rpd_wrong", device.id),
        };
        let (st, v) = device_post(&s, &forged, "/agent/v1/commands/poll", json!({})).await;
        assert_eq!(st, 401, "{n}: {v}");
        assert_mde_error(&v, "Unauthorized");

        // Bodies that are not a poll or an update.
        for body in [
            json!({"waitSeconds": "soon"}),
            json!({"running": "x"}),
            json!("poll"),
        ] {
            let (st, v) = device_post(&s, &device, "/agent/v1/commands/poll", body.clone()).await;
            assert_eq!(st, 400, "{n}: {body}: {v}");
            assert_mde_error(&v, "InvalidRequestBody");
        }
        let too_many: Vec<String> = (0..65).map(|i| format!("id-{i}")).collect();
        let (st, v) = device_post(
            &s,
            &device,
            "/agent/v1/commands/poll",
            json!({"running": too_many}),
        )
        .await;
        assert_eq!(st, 400, "{n}: {v}");
        // An empty body is a poll that does not wait.
        let resp = s
            .http
            .post(format!("{}/agent/v1/commands/poll", s.url))
            .header("authorization", &device.auth)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{n}");

        let id = "0f8a5a2e-8f53-4d5e-9f8e-3d2b1c0a9e77";
        for body in [
            json!({"commandId": id, "state": "Done"}),
            json!({"commandId": id}),
            json!("Succeeded"),
        ] {
            let (st, v) = device_post(
                &s,
                &device,
                &format!("/agent/v1/commands/{id}"),
                body.clone(),
            )
            .await;
            assert_eq!(st, 400, "{n}: {body}: {v}");
            assert_mde_error(&v, "InvalidRequestBody");
        }
        let (st, v) = device_post(
            &s,
            &device,
            &format!("/agent/v1/commands/{id}"),
            json!({"commandId": "another", "state": "Succeeded"}),
        )
        .await;
        assert_eq!(st, 400, "{n}: {v}");
        assert_mde_error(&v, "InvalidInput");
        let (st, v) = report(&s, &device, id, "Succeeded", "").await;
        assert_eq!(st, 404, "{n}: {v}");
        assert_mde_error(&v, "ResourceNotFound");
    }
}

pub(crate) async fn enforcement_set(
    s: &Server,
    device: &Device,
    etag: Option<&str>,
) -> (u16, Option<String>, Value) {
    let mut req = s
        .http
        .get(format!("{}/agent/v1/indicators", s.url))
        .header("authorization", &device.auth);
    if let Some(e) = etag {
        req = req.header("if-none-match", e);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let etag = resp
        .headers()
        .get("etag")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, etag, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn devices_get_the_indicators_they_enforce_versioned_by_etag() {
    let dir = tempfile::tempdir().unwrap();
    for b in backends(dir.path()) {
        let s = Server::start_with(&b, &["--no-rate-limits"]);
        let device = enroll(&s, "db-1.corp.example").await;
        let n = b.name;
        // A group this device is not in (its rule takes web-* machines).
        seed_group(&b, &s.tenant, "Some other group").await;
        let ti = s.token_with("Ti.ReadWrite.All").await;
        let submit = |value: &str, ty: &'static str, action: &'static str, extra: Value| {
            let value = value.to_owned();
            let (s, ti) = (&s, &ti);
            async move {
                let mut body = json!({ "indicatorValue": value, "indicatorType": ty, "action": action,
                    "title": format!("{ty} {value}"), "description": "test" });
                for (k, v) in extra.as_object().unwrap() {
                    body[k] = v.clone();
                }
                let (st, v) = s.post("/api/indicators", ti, body).await;
                assert_eq!(st, 200, "{v}");
                v["id"].as_str().unwrap().to_owned()
            }
        };
        let sha256 = "a".repeat(64);
        let blocked = submit(&sha256, "FileSha256", "Block", json!({})).await;
        let sha1 = "b".repeat(40);
        let allowed = submit(&sha1, "FileSha1", "Allowed", json!({})).await;
        submit(
            "cccccccccccccccccccccccccccccccc",
            "FileMd5",
            "Audit",
            json!({ "generateAlert": true }),
        )
        .await;
        let ip = submit("198.51.100.7", "IpAddress", "Block", json!({})).await;
        let domain = submit("evil.example", "DomainName", "Block", json!({})).await;
        // URLs: a whole site is enforced as its host; a page of a site is not (its host
        // serves the rest of the site too).
        let site = submit("https://Phish.Example/", "Url", "Block", json!({})).await;
        let c2_url = submit("http://203.0.113.9", "Url", "Block", json!({})).await;
        submit(
            "https://docs.example/share/payload.js",
            "Url",
            "Block",
            json!({}),
        )
        .await;
        submit("https://cdn.example:8443/", "Url", "Block", json!({})).await;
        submit(
            "dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd",
            "FileSha256",
            "Block",
            json!({ "rbacGroupNames": ["Some other group"] }),
        )
        .await;

        let (st, etag, set) = enforcement_set(&s, &device, None).await;
        assert_eq!(st, 200, "{n}: {set}");
        let etag = etag.expect("an ETag");
        assert_eq!(
            etag,
            format!("\"{}\"", set["version"].as_str().unwrap()),
            "{n}"
        );
        assert_eq!(
            set["files"],
            json!([
                { "algorithm": "Sha256", "hash": sha256, "action": "Block", "indicatorId": blocked, "title": format!("FileSha256 {sha256}") },
                { "algorithm": "Sha1", "hash": sha1, "action": "Allow", "indicatorId": allowed, "title": format!("FileSha1 {sha1}") },
            ]),
            "{n}: audit, domain and other groups' indicators are not enforced here"
        );
        assert_eq!(
            set["networks"],
            json!([
                { "value": "198.51.100.7", "action": "Block", "indicatorId": ip, "title": "IpAddress 198.51.100.7" },
                { "value": "203.0.113.9", "action": "Block", "indicatorId": c2_url, "title": "Url http://203.0.113.9" },
            ]),
            "{n}"
        );
        assert_eq!(
            set["domains"],
            json!([
                { "domain": "evil.example", "action": "Block", "indicatorId": domain, "title": "DomainName evil.example" },
                { "domain": "phish.example", "action": "Block", "indicatorId": site, "title": "Url https://Phish.Example/" },
            ]),
            "{n}"
        );
        // Unchanged: 304 with the same ETag.
        let (st, again, _) = enforcement_set(&s, &device, Some(&etag)).await;
        assert_eq!((st, again.as_deref()), (304, Some(etag.as_str())), "{n}");
        // A new blocking indicator: a new set.
        submit("203.0.113.0/24", "IpAddress", "Block", json!({})).await;
        let (st, newer, set) = enforcement_set(&s, &device, Some(&etag)).await;
        assert_eq!(st, 200, "{n}: {set}");
        assert_ne!(newer.as_deref(), Some(etag.as_str()), "{n}");
        assert_eq!(set["networks"].as_array().unwrap().len(), 3, "{n}: {set}");

        let resp = s
            .http
            .get(format!("{}/agent/v1/indicators", s.url))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 401, "{n}");
    }
}

async fn upload(s: &Server, device: &Device, id: &str, body: Vec<u8>) -> (u16, Value) {
    let resp = s
        .http
        .put(format!("{}/agent/v1/commands/{id}/package", s.url))
        .header("authorization", &device.auth)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_package_is_taken_only_for_a_running_collection_of_its_own_device() {
    let dir = tempfile::tempdir().unwrap();
    for b in backends(dir.path()) {
        let s = Server::start_with(&b, &["--no-rate-limits"]);
        let device = enroll(&s, "web-1.corp.example").await;
        let other = enroll(&s, "web-2.corp.example").await;
        let token = s
            .token_with("Machine.Read.All,Machine.CollectForensics,Machine.Scan")
            .await;
        let n = b.name;
        let collect = act(
            &s,
            &token,
            &device.id,
            "collectInvestigationPackage",
            json!({"Comment": "pkg"}),
        )
        .await;
        // Not claimed yet: not running, no package taken.
        let (st, v) = upload(&s, &device, &collect, b"x".to_vec()).await;
        assert_eq!(st, 409, "{n}: {v}");
        assert_mde_error(&v, "Conflict");
        poll(&s, &device, 0, &[]).await;
        let (st, v) = upload(&s, &other, &collect, b"x".to_vec()).await;
        assert_eq!(st, 404, "{n}: another device's command: {v}");
        let (st, v) = upload(&s, &device, &collect, Vec::new()).await;
        assert_eq!(st, 400, "{n}: {v}");
        assert!(assert_mde_error(&v, "BadRequest").contains("empty"), "{v}");

        // Success claimed without a package: the collection failed.
        let (st, v) = report(&s, &device, &collect, "Succeeded", "done").await;
        assert_eq!(st, 200, "{n}: {v}");
        let a = status_of(&s, &token, &collect).await;
        assert_eq!(a["status"], "Failed", "{n}: {a}");
        let (st, _) = s
            .get(
                &format!("/api/machineactions/{collect}/GetPackageUri"),
                Some(&token),
            )
            .await;
        assert_eq!(st, 404, "{n}");

        // A scan takes no package either.
        let scan = act(
            &s,
            &token,
            &device.id,
            "runAntiVirusScan",
            json!({"Comment": "s", "ScanType": "Quick"}),
        )
        .await;
        poll(&s, &device, 0, &[]).await;
        let (st, v) = upload(&s, &device, &scan, b"x".to_vec()).await;
        assert_eq!(st, 409, "{n}: {v}");

        // Uploaded, then reported: the link serves exactly what was uploaded.
        let again = act(
            &s,
            &token,
            &device.id,
            "collectInvestigationPackage",
            json!({"Comment": "pkg 2"}),
        )
        .await;
        poll(&s, &device, 0, &[&scan]).await;
        let body: Vec<u8> = (0..300_000u32).flat_map(|i| i.to_le_bytes()).collect();
        let (st, v) = upload(&s, &device, &again, body.clone()).await;
        assert_eq!(st, 200, "{n}: {v}");
        assert_eq!(v["bytes"], body.len(), "{n}");
        let (st, v) = report(&s, &device, &again, "Succeeded", "uploaded").await;
        assert_eq!(st, 200, "{n}: {v}");
        let (st, v) = s
            .get(
                &format!("/api/machineactions/{again}/GetPackageUri"),
                Some(&token),
            )
            .await;
        assert_eq!(st, 200, "{n}: {v}");
        let got = s
            .http
            .get(v["value"].as_str().unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(got.status().as_u16(), 200, "{n}");
        assert_eq!(got.bytes().await.unwrap().to_vec(), body, "{n}");
    }
}

/// Signal sharing's promise: a new block reaches connected devices at once. A held poll that
/// names the indicator generation its agent enforces is answered as soon as the tenant's moves
/// on, with the new one, and the agent's next indicator sync has the new indicator.
#[tokio::test]
async fn a_held_poll_answers_when_the_tenants_indicators_change() {
    let dir = tempfile::tempdir().unwrap();
    for b in backends(dir.path()) {
        let s = Server::start_with(&b, &["--no-rate-limits"]);
        let device = enroll(&s, "web-1.corp.example").await;
        let n = b.name;
        let first = poll(&s, &device, 0, &[]).await;
        let known = first["indicatorGeneration"]
            .as_i64()
            .unwrap_or_else(|| panic!("{n}: every answer names the generation: {first}"));
        // Holding with the current generation: nothing to say, so it waits.
        let held = {
            let (s, device) = (&s, &device);
            async move {
                let started = Instant::now();
                let v = device_post(
                    s,
                    device,
                    "/agent/v1/commands/poll",
                    json!({ "waitSeconds": 25, "running": [], "indicatorGeneration": known }),
                )
                .await;
                (v, started.elapsed())
            }
        };
        let ti = s.token_with("Ti.ReadWrite.All").await;
        let submit = async {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let (st, v) = s
                .post(
                    "/api/indicators",
                    &ti,
                    json!({"indicatorValue": "a1".repeat(32), "indicatorType": "FileSha256",
                           "action": "Block", "title": "t", "description": "d"}),
                )
                .await;
            assert_eq!(st, 200, "{v}");
        };
        let ((st, answer), waited) = tokio::join!(held, submit).0;
        assert_eq!(st, 200, "{n}: {answer}");
        assert_eq!(answer["commands"], json!([]), "{n}");
        assert!(
            answer["indicatorGeneration"].as_i64() > Some(known),
            "{n}: {answer}"
        );
        assert!(
            waited < Duration::from_secs(20),
            "{n}: the poll was held to its end ({waited:?}) instead of answering the change"
        );
        let (_, _, set) = enforcement_set(&s, &device, None).await;
        assert!(
            set["files"]
                .as_array()
                .unwrap()
                .iter()
                .any(|f| f["hash"] == "a1".repeat(32).as_str()),
            "{n}: {set}"
        );
        // Naming the current generation again: held to its end, even while another tenant's
        // indicators change (that news is not this device's).
        let other = b.create_tenant("Other");
        let other_ti = s
            .token(&b.create_app(Some(&other), "Ti.ReadWrite.All"))
            .await;
        let held = async {
            let started = Instant::now();
            let v = device_post(
                &s,
                &device,
                "/agent/v1/commands/poll",
                json!({ "waitSeconds": 2, "running": [],
                        "indicatorGeneration": answer["indicatorGeneration"] }),
            )
            .await;
            (v, started.elapsed())
        };
        let elsewhere = async {
            tokio::time::sleep(Duration::from_millis(300)).await;
            let (st, v) = s
                .post(
                    "/api/indicators",
                    &other_ti,
                    json!({"indicatorValue": "b2".repeat(32), "indicatorType": "FileSha256",
                           "action": "Block", "title": "t", "description": "d"}),
                )
                .await;
            assert_eq!(st, 200, "{v}");
        };
        let ((v, waited), ()) = tokio::join!(held, elsewhere);
        assert_eq!(
            v.1["indicatorGeneration"], answer["indicatorGeneration"],
            "{n}"
        );
        assert!(
            waited >= Duration::from_millis(1900),
            "{n}: another tenant's change answered the poll after {waited:?}"
        );
    }
}

/// The NATS server of the cluster-bus test: `RAMPART_TEST_NATS_URL` (set by `.ci/run`, which
/// makes the test required), else the local one when it answers.
pub(crate) fn nats_url() -> Option<String> {
    if let Ok(url) = std::env::var("RAMPART_TEST_NATS_URL") {
        return Some(url);
    }
    match std::net::TcpStream::connect(("127.0.0.1", 4222)) {
        Ok(_) => Some("nats://127.0.0.1:4222".into()),
        Err(_) => {
            eprintln!("skipping the cluster bus test: no NATS server on 127.0.0.1:4222");
            None
        }
    }
}

/// Servers sharing the database and a cluster bus: an action submitted through one reaches an
/// agent whose poll the other holds at once, and so does an indicator change — although the
/// held poll's own look at the queue, and the second server's reading of the indicator
/// generations, are set to a minute, longer than the poll waits: only the bus can wake it.
#[tokio::test]
async fn a_command_reaches_an_agent_polling_another_server_through_the_cluster_bus() {
    let Some(nats) = nats_url() else { return };
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("rampart.toml");
    std::fs::write(
        &config,
        "[api]\npoll_recheck_secs = 60\nindicator_sync_secs = 60\n",
    )
    .unwrap();
    let cluster = format!("test-{}", uuid::Uuid::new_v4().simple());
    for b in backends(dir.path()) {
        let serve = |backend: &crate::harness::Backend| {
            Server::start_opts(
                backend,
                &["--config", config.to_str().unwrap()],
                &[
                    "--no-rate-limits",
                    "--nats-url",
                    &nats,
                    "--cluster-name",
                    &cluster,
                ],
            )
        };
        let a = serve(&b);
        let mut second = b.clone();
        second.data_dir = dir.path().join(format!("{}-second", b.name));
        let s2 = serve(&second);
        let device = enroll(&a, &format!("bus-{}.corp.example", b.name)).await;
        let token = a.token_with(ROLES).await;

        // The agent's poll is held by the second server; the action goes through the first.
        let held = held_poll(&s2, &device, json!({"waitSeconds": 30, "running": []}));
        tokio::time::sleep(Duration::from_millis(500)).await;
        let isolate = act(&a, &token, &device.id, "isolate", json!({"Comment": "c2"})).await;
        let (v, waited) = held.await.unwrap();
        assert_eq!(v["commands"][0]["id"], isolate.as_str(), "{}: {v}", b.name);
        assert!(
            waited < Duration::from_secs(25),
            "{}: the poll was answered by its own wait ending, not the bus ({waited:?})",
            b.name
        );

        // An indicator added through the first server: the poll held by the second answers
        // with the new generation.
        let generation = poll(&s2, &device, 0, &[&isolate]).await["indicatorGeneration"].clone();
        let held = held_poll(
            &s2,
            &device,
            json!({"waitSeconds": 30, "running": [isolate], "indicatorGeneration": generation}),
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
        let ti = a.token_with("Ti.ReadWrite.All").await;
        let (st, body) = a
            .post(
                "/api/indicators",
                &ti,
                json!({"indicatorValue": "203.0.113.77", "indicatorType": "IpAddress",
                       "action": "Block", "title": "bus", "description": "test"}),
            )
            .await;
        assert_eq!(st, 200, "{body}");
        let (v, _) = held.await.unwrap();
        assert_ne!(
            v["indicatorGeneration"], generation,
            "{}: the poll was answered by its own wait ending, not the bus: {v}",
            b.name
        );
    }
}

/// `rampart simulate --agents`: simulated agents enroll, hold their polls, get every submitted
/// action and report it done; the server's `/metrics` counts the held polls and its memory.
#[tokio::test]
async fn simulated_agents_hold_the_channel_and_measure_the_push() {
    let dir = tempfile::tempdir().unwrap();
    for b in backends(dir.path()) {
        let s = Server::start_with(&b, &["--no-rate-limits"]);
        let app = b.create_app(None, "Machine.Isolate,SecurityConfiguration.ReadWrite.All");
        let (agents, commands) = (8, 16);
        let agents_flag = agents.to_string();
        let commands_flag = commands.to_string();
        let out = b.cli(
            &[
                &[
                    "simulate",
                    "--agents",
                    &agents_flag,
                    "--commands",
                    &commands_flag,
                    "--rate",
                    "40",
                    "--wait",
                    "5",
                    "--idle-seconds",
                    "1",
                    "--json",
                ][..],
                &app.remote_args(&s.url),
            ]
            .concat(),
        );
        let r: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
        assert_eq!(r["agents"], agents, "{}: {r}", b.name);
        assert_eq!(r["commandsSubmitted"], commands, "{}: {r}", b.name);
        assert_eq!(r["submissionsFailed"], 0, "{}: {r}", b.name);
        assert_eq!(r["delivered"], commands, "{}: {r}", b.name);
        assert_eq!(r["missing"], 0, "{}: {r}", b.name);
        assert_eq!(r["completed"], commands, "{}: {r}", b.name);
        assert!(r["server"]["pollsHeld"].as_u64().unwrap() >= agents, "{r}");
        assert!(r["server"]["rssHeldBytes"].as_u64().unwrap() > 0, "{r}");
        assert!(r["server"]["rssPerAgentBytes"].is_u64(), "{r}");
        assert!(r["server"]["idleCpuPercent"].is_number(), "{r}");
        let p99 = r["pushLatencyMs"]["p99"].as_f64().unwrap();
        assert!(
            p99 > 0.0 && p99 <= r["pushLatencyMs"]["max"].as_f64().unwrap(),
            "{r}"
        );
        assert_eq!(r["baselineMs"].as_object().map(|o| o.len()), Some(4), "{r}");

        // The server's side: every simulated device enrolled, every action done, isolations
        // on the first round through the fleet and releases on the second.
        let token = s.token_with("Machine.Read.All").await;
        let (st, machines) = s.get("/api/machines", Some(&token)).await;
        assert_eq!(st, 200);
        let simulated = machines["value"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["computerDnsName"].as_str().unwrap().starts_with("sim-"))
            .count();
        assert_eq!(simulated, agents as usize, "{}", b.name);
        let (st, actions) = s.get("/api/machineactions", Some(&token)).await;
        assert_eq!(st, 200);
        let actions = actions["value"].as_array().unwrap();
        let count = |kind: &str| {
            actions
                .iter()
                .filter(|a| a["type"] == kind && a["status"] == "Succeeded")
                .count()
        };
        assert_eq!(count("Isolate"), agents as usize, "{}: {actions:?}", b.name);
        assert_eq!(
            count("Unisolate"),
            agents as usize,
            "{}: {actions:?}",
            b.name
        );

        // The agents are gone: the server stops counting their polls.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let metrics = s.metrics().await;
            if metrics.contains("\nrampart_agent_polls_held 0\n") {
                assert!(metrics.contains("\nprocess_resident_memory_bytes "));
                assert!(metrics.contains("\nprocess_cpu_seconds_total "));
                break;
            }
            assert!(Instant::now() < deadline, "polls still held: {metrics}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// `simulate --agents` says what it is missing instead of guessing.
#[tokio::test]
async fn simulated_agents_need_a_server() {
    let dir = tempfile::tempdir().unwrap();
    let b = &backends(dir.path())[0];
    for (args, expected) in [
        (&["simulate", "--agents", "5"][..], "--server"),
        (
            &[
                "simulate",
                "--agents",
                "5",
                "--out",
                "x",
                "--server",
                "http://127.0.0.1:9",
            ][..],
            "--out",
        ),
        (&["simulate"][..], "--out"),
        (
            &[
                "simulate",
                "--agents",
                "0",
                "--server",
                "http://127.0.0.1:9",
            ][..],
            "at least 1",
        ),
        (
            &[
                "simulate",
                "--agents",
                "5",
                "--server",
                "http://127.0.0.1:9",
                "--wait",
                "90",
            ][..],
            "50 s at most",
        ),
        (
            &[
                "simulate",
                "--agents",
                "5",
                "--server",
                "http://127.0.0.1:9",
            ][..],
            "--client-id",
        ),
    ] {
        let out = b.cli_raw(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
}
