//! Agent enrollment over HTTP: enrollment tokens (`/api/enrollmentTokens`) and
//! `POST /agent/v1/enroll`.

use crate::harness::{Backend, Server, assert_mde_error, backends};
use serde_json::{Value, json};

const ADMIN: &str = "SecurityConfiguration.ReadWrite.All";
const READER: &str = "SecurityConfiguration.Read.All";

async fn send(
    s: &Server,
    method: reqwest::Method,
    path: &str,
    auth: Option<&str>,
    body: Option<Value>,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let mut req = s.http.request(method, format!("{}{path}", s.url));
    if let Some(t) = auth {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    let st = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = resp.text().await.unwrap();
    (
        st,
        headers,
        serde_json::from_str(&text).unwrap_or(Value::Null),
    )
}

async fn post(s: &Server, path: &str, token: Option<&str>, body: Value) -> (u16, Value) {
    let (st, _, v) = send(s, reqwest::Method::POST, path, token, Some(body)).await;
    (st, v)
}

async fn delete(s: &Server, path: &str, token: &str) -> (u16, Value) {
    let (st, _, v) = send(s, reqwest::Method::DELETE, path, Some(token), None).await;
    (st, v)
}

/// Creates a token over HTTP and returns its JSON (with the one-time `token`).
async fn create_token(s: &Server, admin: &str, body: Value) -> Value {
    let (st, v) = post(s, "/api/enrollmentTokens", Some(admin), body).await;
    assert_eq!(st, 201, "{v}");
    v
}

/// Enrolls a device with `token`; returns status and body.
async fn enroll(s: &Server, token: &str, name: &str, device_id: Option<&str>) -> (u16, Value) {
    let mut body =
        json!({ "enrollmentToken": token, "computerDnsName": name, "osPlatform": "Linux" });
    if let Some(id) = device_id {
        body["deviceId"] = json!(id);
    }
    post(s, "/agent/v1/enroll", None, body).await
}

fn listed_tokens(list: &Value) -> Vec<Value> {
    list["value"].as_array().expect("a value array").clone()
}

/// Seeds an enrollment token into a tenant directly through the store; returns its id.
pub async fn seed_enrollment_token(backend: &Backend, tenant: &str) -> String {
    use rampart_store::prelude::*;
    let store = backend.store().await;
    let token = rampart_core::enrollment::EnrollmentToken {
        id: uuid::Uuid::new_v4().to_string(),
        tenant_id: tenant.parse().unwrap(),
        name: "seeded".into(),
        created_time: time::OffsetDateTime::now_utc(),
        expires_time: None,
        max_uses: None,
        uses: 0,
        revoked: false,
    };
    let hash = uuid::Uuid::new_v4().simple().to_string();
    store
        .create_enrollment_token(
            &rampart_core::audit::AuditContext::system("test-seed"),
            &token,
            &hash,
        )
        .await
        .unwrap();
    token.id
}

#[tokio::test]
async fn a_token_enrolls_devices_up_to_its_uses_and_they_become_machines() {
    let dir = tempfile::tempdir().unwrap();
    for b in backends(dir.path()) {
        let s = Server::start_with(&b, &["--no-rate-limits"]);
        let admin = s.token_with(ADMIN).await;
        let reader = s.token_with(READER).await;
        let machines = s.token_with("Machine.Read.All").await;

        let (st, headers, created) = send(
            &s,
            reqwest::Method::POST,
            "/api/enrollmentTokens",
            Some(&admin),
            Some(json!({ "name": "Laptops", "maxUses": 2, "expiresInHours": 24 })),
        )
        .await;
        assert_eq!(st, 201, "{}: {created}", b.name);
        assert_eq!(headers["cache-control"], "no-store");
        let secret = created["token"].as_str().unwrap().to_owned();
        assert!(secret.starts_with("rpe_") && secret.len() == 44, "{secret}");
        assert_eq!(created["name"], "Laptops");
        assert_eq!(created["maxUses"], 2);
        assert_eq!(created["uses"], 0);
        assert_eq!(created["revoked"], false);
        assert_eq!(created["tenantId"], s.tenant.as_str());
        assert!(
            created["expiresTime"]
                .as_str()
                .is_some_and(|t| t.ends_with('Z'))
        );
        let id = created["id"].as_str().unwrap().to_owned();

        // Listed without its secret, by a reader too.
        let (st, list) = s.get("/api/enrollmentTokens", Some(&reader)).await;
        assert_eq!(st, 200, "{list}");
        let tokens = listed_tokens(&list);
        assert_eq!(tokens.len(), 1);
        assert_eq!(tokens[0]["id"], id.as_str());
        assert!(tokens[0].get("token").is_none(), "{list}");
        assert!(
            !list.to_string().contains(&secret),
            "the secret is shown once"
        );
        assert_eq!(tokens[0]["createdTime"], created["createdTime"]);

        // The first device gets a new id and a secret, and is a machine of the tenant.
        let (st, first) = enroll(&s, &secret, "laptop-1.corp.example", None).await;
        assert_eq!(st, 201, "{}: {first}", b.name);
        let device_id = first["deviceId"].as_str().unwrap().to_owned();
        assert!(
            device_id.len() == 40
                && device_id
                    .bytes()
                    .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c)),
            "{device_id}"
        );
        let device_secret = first["deviceSecret"].as_str().unwrap().to_owned();
        assert!(device_secret.starts_with("rpd_") && device_secret.len() == 44);
        assert_eq!(first["tenantId"], s.tenant.as_str());

        let (st, m) = s
            .get(&format!("/api/machines/{device_id}"), Some(&machines))
            .await;
        assert_eq!(st, 200, "{}: {m}", b.name);
        assert_eq!(m["computerDnsName"], "laptop-1.corp.example");
        assert_eq!(m["osPlatform"], "Linux");
        assert_eq!(m["healthStatus"], "Active");
        let (_, all) = s.get("/api/machines", Some(&machines)).await;
        assert!(
            all["value"]
                .as_array()
                .unwrap()
                .iter()
                .any(|m| m["id"] == device_id.as_str()),
            "{all}"
        );

        // The device secret authenticates the agent; a wrong one does not.
        let agent = |secret: &str| format!("Device {device_id}:{secret}");
        let batch = |auth: String| {
            s.http
                .post(format!("{}/agent/v1/telemetry", s.url))
                .header("authorization", auth)
                .json(&json!({}))
                .send()
        };
        let st = batch(agent(&device_secret))
            .await
            .unwrap()
            .status()
            .as_u16();
        assert_ne!(st, 401, "{}: the enrolled device is authenticated", b.name);
        let resp = batch(agent("rpd_wrong")).await.unwrap();
        assert_eq!(resp.status().as_u16(), 401);
        assert_mde_error(&resp.json().await.unwrap(), "Unauthorized");

        // A re-installed agent keeps the id it has.
        let own = "AB".repeat(20);
        let (st, second) = enroll(&s, &secret, "laptop-2.corp.example", Some(&own)).await;
        assert_eq!(st, 201, "{second}");
        assert_eq!(second["deviceId"], own.to_ascii_lowercase());

        // Two uses, then the token is spent.
        let (st, body) = enroll(&s, &secret, "laptop-3.corp.example", None).await;
        assert_eq!(st, 401, "{}: {body}", b.name);
        assert_mde_error(&body, "Unauthorized");
        let (_, list) = s.get("/api/enrollmentTokens", Some(&reader)).await;
        assert_eq!(listed_tokens(&list)[0]["uses"], 2);

        // An id enrolled already is a conflict, even with a fresh token.
        let another = create_token(&s, &admin, json!({ "name": "More" })).await;
        let (st, body) = enroll(
            &s,
            another["token"].as_str().unwrap(),
            "impostor",
            Some(&device_id),
        )
        .await;
        assert_eq!(st, 409, "{body}");
        assert_mde_error(&body, "Conflict");
        let (_, list) = s.get("/api/enrollmentTokens", Some(&reader)).await;
        assert_eq!(
            listed_tokens(&list)[1]["uses"],
            0,
            "a refused enrollment uses nothing"
        );

        // Each enrollment is in the audit log.
        let (st, audit) = s
            .get("/api/audit?$filter=entityType eq 'Device'", Some(&reader))
            .await;
        assert_eq!(st, 200, "{audit}");
        let enrolled: Vec<&str> = audit["value"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["entityId"].as_str().unwrap())
            .collect();
        assert_eq!(enrolled.len(), 2, "{audit}");
        assert!(enrolled.contains(&device_id.as_str()));
    }
}

#[tokio::test]
async fn a_revoked_token_enrolls_nothing() {
    let dir = tempfile::tempdir().unwrap();
    for b in backends(dir.path()) {
        let s = Server::start_with(&b, &["--no-rate-limits"]);
        let admin = s.token_with(ADMIN).await;
        let created = create_token(&s, &admin, json!({ "name": "Servers" })).await;
        let secret = created["token"].as_str().unwrap();
        let id = created["id"].as_str().unwrap();
        let (st, _) = enroll(&s, secret, "srv-1", None).await;
        assert_eq!(st, 201);

        let (st, body) = delete(&s, &format!("/api/enrollmentTokens/{id}"), &admin).await;
        assert_eq!(st, 204, "{}: {body}", b.name);
        let (st, body) = enroll(&s, secret, "srv-2", None).await;
        assert_eq!(st, 401, "{}: {body}", b.name);
        assert_mde_error(&body, "Unauthorized");

        let (_, list) = s.get("/api/enrollmentTokens", Some(&admin)).await;
        let t = &listed_tokens(&list)[0];
        assert_eq!(
            (t["revoked"].as_bool(), t["uses"].as_i64()),
            (Some(true), Some(1))
        );

        let (st, body) = delete(&s, "/api/enrollmentTokens/no-such-token", &admin).await;
        assert_eq!(st, 404);
        assert_mde_error(&body, "ResourceNotFound");
        // Something that is not a token at all is refused the same way as a revoked one.
        let (st, _) = enroll(&s, "not-a-token", "srv-3", None).await;
        assert_eq!(st, 401);
    }
}

#[tokio::test]
async fn tokens_are_invisible_to_other_tenants() {
    let dir = tempfile::tempdir().unwrap();
    for b in backends(dir.path()) {
        let s = Server::start_with(&b, &["--no-rate-limits"]);
        let admin = s.token_with(ADMIN).await;
        let home = create_token(&s, &admin, json!({ "name": "Home" })).await;
        let home_id = home["id"].as_str().unwrap();

        let other = b.create_tenant("Other");
        let other_app = b.create_app(Some(&other), ADMIN);
        let other_admin = s.token(&other_app).await;

        let (st, list) = s.get("/api/enrollmentTokens", Some(&other_admin)).await;
        assert_eq!(st, 200, "{list}");
        assert!(listed_tokens(&list).is_empty(), "{}: {list}", b.name);
        let (st, body) = delete(
            &s,
            &format!("/api/enrollmentTokens/{home_id}"),
            &other_admin,
        )
        .await;
        assert_eq!(st, 404, "{}: {body}", b.name);
        assert_mde_error(&body, "ResourceNotFound");

        // The home token still works, and a token enrolls into its own tenant only.
        let (st, _) = enroll(&s, home["token"].as_str().unwrap(), "home-1", None).await;
        assert_eq!(st, 201);
        let theirs = create_token(&s, &other_admin, json!({ "name": "Theirs" })).await;
        assert_eq!(theirs["tenantId"], other.as_str());
        let (st, enrolled) = enroll(&s, theirs["token"].as_str().unwrap(), "other-1", None).await;
        assert_eq!(st, 201);
        assert_eq!(enrolled["tenantId"], other.as_str());
        let machines = s.token_with("Machine.Read.All").await;
        let (st, _) = s
            .get(
                &format!("/api/machines/{}", enrolled["deviceId"].as_str().unwrap()),
                Some(&machines),
            )
            .await;
        assert_eq!(st, 404, "another tenant's device is not a home machine");
    }
}

#[tokio::test]
async fn roles_and_bodies_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let b = backends(dir.path()).remove(0);
    let s = Server::start_with(&b, &["--no-rate-limits"]);
    let admin = s.token_with(ADMIN).await;
    let reader = s.token_with(READER).await;
    let machine_writer = s.token_with("Machine.ReadWrite.All").await;
    let created = create_token(&s, &admin, json!({ "name": "Checked" })).await;
    let id = created["id"].as_str().unwrap();

    // Without the role: 403; without a token: 401.
    let (st, body) = post(
        &s,
        "/api/enrollmentTokens",
        Some(&reader),
        json!({ "name": "x" }),
    )
    .await;
    assert_eq!(st, 403, "{body}");
    assert_mde_error(&body, "Forbidden");
    let (st, body) = delete(&s, &format!("/api/enrollmentTokens/{id}"), &reader).await;
    assert_eq!(st, 403, "{body}");
    let (st, body) = s.get("/api/enrollmentTokens", Some(&machine_writer)).await;
    assert_eq!(st, 403, "{body}");
    assert_mde_error(&body, "Forbidden");
    let (st, _) = s.get("/api/enrollmentTokens", None).await;
    assert_eq!(st, 401);

    // Bad token bodies: 400 naming the field.
    for (body, field, code) in [
        (json!({}), "name", "MissingRequiredParameter"),
        (json!({ "name": "  " }), "name", "InvalidInput"),
        (
            json!({ "name": "x", "maxUses": 0 }),
            "maxUses",
            "InvalidInput",
        ),
        (
            json!({ "name": "x", "expiresInHours": 0 }),
            "expiresInHours",
            "InvalidInput",
        ),
        (
            json!({ "name": "x", "expiresInHours": "soon" }),
            "expiresInHours",
            "InvalidRequestBody",
        ),
        (
            json!({ "name": "x", "maxUses": 1.5 }),
            "maxUses",
            "InvalidRequestBody",
        ),
        (
            json!({ "name": "x", "colour": "red" }),
            "colour",
            "InvalidRequestBody",
        ),
    ] {
        let (st, resp) = post(&s, "/api/enrollmentTokens", Some(&admin), body.clone()).await;
        assert_eq!(st, 400, "{body}: {resp}");
        let msg = assert_mde_error(&resp, code);
        assert!(msg.contains(field), "{body}: {msg}");
    }

    // Bad enrollments: 400 naming the field, before the token is even looked at.
    let secret = created["token"].as_str().unwrap();
    for (body, field, code) in [
        (
            json!({ "computerDnsName": "h", "osPlatform": "Linux" }),
            "enrollmentToken",
            "MissingRequiredParameter",
        ),
        (
            json!({ "enrollmentToken": secret, "osPlatform": "Linux" }),
            "computerDnsName",
            "MissingRequiredParameter",
        ),
        (
            json!({ "enrollmentToken": secret, "computerDnsName": "two words", "osPlatform": "Linux" }),
            "computerDnsName",
            "InvalidInput",
        ),
        (
            json!({ "enrollmentToken": secret, "computerDnsName": "h" }),
            "osPlatform",
            "MissingRequiredParameter",
        ),
        (
            json!({ "enrollmentToken": secret, "computerDnsName": "h", "osPlatform": "Linux", "deviceId": "xyz" }),
            "deviceId",
            "InvalidInput",
        ),
        (
            json!({ "enrollmentToken": 7, "computerDnsName": "h", "osPlatform": "Linux" }),
            "enrollmentToken",
            "InvalidRequestBody",
        ),
    ] {
        let (st, resp) = post(&s, "/agent/v1/enroll", None, body.clone()).await;
        assert_eq!(st, 400, "{body}: {resp}");
        let msg = assert_mde_error(&resp, code);
        assert!(msg.contains(field), "{body}: {msg}");
    }
    let resp = s
        .http
        .post(format!("{}/agent/v1/enroll", s.url))
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    assert_mde_error(&resp.json().await.unwrap(), "InvalidRequestBody");
    // None of the refused requests used the token.
    let (_, list) = s.get("/api/enrollmentTokens", Some(&reader)).await;
    assert_eq!(listed_tokens(&list)[0]["uses"], 0);
}
