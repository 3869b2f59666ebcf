//! Indicators over HTTP: every route and status code, on every backend.

use crate::harness::{Backend, Server, assert_mde_error, backends};
use rampart_core::indicator::{
    Indicator, IndicatorAction, IndicatorSubmission, IndicatorType, IndicatorWriter, SourceType,
    Submitted, Submitter,
};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use time::OffsetDateTime;

const SHA256: &str = "4E1B0A4FB7C47E6D2D1E1EC6A0F6C7F2B0A5D2A3E8D4C1B9A7F6E5D4C3B2A190";
const SHA1: &str = "220e7d15b011d7fac48f2bd61114db1022197f7f";

/// Stores an indicator directly (to set what the API refuses, e.g. a past expiration).
pub async fn seed_indicator(
    b: &Backend,
    tenant: &str,
    value: &str,
    expiration_time: Option<OffsetDateTime>,
) -> Indicator {
    use rampart_store::prelude::*;
    let store = b.store().await;
    let sub = IndicatorSubmission {
        indicator_value: value.to_owned(),
        indicator_type: IndicatorType::IpAddress,
        action: IndicatorAction::Block,
        generate_alert: false,
        title: "seeded".into(),
        description: "seeded".into(),
        application: None,
        external_id: None,
        expiration_time,
        severity: rampart_core::alert::Severity::Low,
        recommended_actions: None,
        rbac_group_names: Vec::new(),
        rbac_group_ids: Vec::new(),
        educate_url: None,
        allow_internal: false,
    };
    let writer = IndicatorWriter {
        submitter: Submitter {
            id: "seed@example.com".into(),
            name: "seed".into(),
            kind: SourceType::User,
        },
        all: true,
    };
    let mut out = store
        .submit_indicators(
            &rampart_core::audit::AuditContext::system("test-seed"),
            tenant.parse().unwrap(),
            &writer,
            vec![sub],
        )
        .await
        .unwrap();
    match out.pop() {
        Some(Submitted::Created(i) | Submitted::Updated(i)) => i,
        other => panic!("seeding failed: {other:?}"),
    }
}

async fn send(
    s: &Server,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> (u16, Value) {
    let mut req = s
        .http
        .request(method.parse().unwrap(), format!("{}{path}", s.url));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(b);
    }
    let resp = req.send().await.unwrap();
    let st = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (st, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn post(s: &Server, path: &str, token: &str, body: Value) -> (u16, Value) {
    send(s, "POST", path, Some(token), Some(&body)).await
}

fn indicator(value: &str, ty: &str, action: &str) -> Value {
    json!({
        "indicatorValue": value,
        "indicatorType": ty,
        "action": action,
        "title": format!("{ty} {value}"),
        "description": "from the test suite",
    })
}

fn with(mut v: Value, key: &str, val: Value) -> Value {
    v[key] = val;
    v
}

async fn list(s: &Server, token: &str, query: &str) -> Vec<Value> {
    let (st, v) = s.get(&format!("/api/indicators{query}"), Some(token)).await;
    assert_eq!(st, 200, "{query}: {v}");
    assert!(
        v["@odata.context"]
            .as_str()
            .is_some_and(|c| c.ends_with("/api/$metadata#Indicators")),
        "{v}"
    );
    v["value"].as_array().unwrap().clone()
}

fn values(items: &[Value]) -> BTreeSet<String> {
    items
        .iter()
        .map(|i| i["indicatorValue"].as_str().unwrap().to_owned())
        .collect()
}

async fn audit_entries(s: &Server, action: &str) -> Vec<Value> {
    let token = s.token_with("SecurityConfiguration.Read.All").await;
    let (st, v) = s
        .get(
            &format!("/api/audit?$filter=entityType eq 'Indicator' and action eq '{action}'"),
            Some(&token),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    v["value"].as_array().unwrap().clone()
}

#[tokio::test]
async fn submit_updates_in_place_lists_and_deletes() {
    let dir = tempfile::tempdir().unwrap();
    for b in backends(dir.path()) {
        let s = Server::start_with(&b, &["--no-rate-limits"]);
        let app = b.create_app(None, "Ti.ReadWrite.All");
        let token = s.token(&app).await;

        let body = with(
            with(
                indicator(SHA256, "FileSha256", "AlertAndBlock"),
                "application",
                json!("Demo"),
            ),
            "severity",
            json!("High"),
        );
        let (st, created) = post(&s, "/api/indicators", &token, body).await;
        assert_eq!(st, 200, "{}: {created}", b.name);
        assert!(
            created["@odata.context"]
                .as_str()
                .is_some_and(|c| c.ends_with("/api/$metadata#Indicators/$entity")),
            "{created}"
        );
        let id = created["id"].as_str().unwrap().to_owned();
        assert!(id.bytes().all(|c| c.is_ascii_digit()), "numeric id: {id}");
        assert_eq!(created["indicatorValue"], SHA256.to_ascii_lowercase());
        assert_eq!(created["action"], "BlockAndRemediate");
        assert_eq!(created["generateAlert"], true);
        assert_eq!(created["severity"], "High");
        assert_eq!(created["application"], "Demo");
        assert_eq!(created["createdBy"], app.client_id);
        assert_eq!(created["createdByDisplayName"], "test-app");
        assert_eq!(created["sourceType"], "AadApp");
        assert_eq!(created["expirationTime"], Value::Null);
        assert_eq!(created["rbacGroupNames"], json!([]));
        assert!(created["creationTimeDateTimeUtc"].is_string());

        // Same value (other case) and type: the same indicator, updated; application stays.
        let again = with(
            with(
                indicator(&SHA256.to_ascii_lowercase(), "FileSha256", "Allowed"),
                "application",
                json!("Other"),
            ),
            "title",
            json!("Renamed"),
        );
        let (st, updated) = post(&s, "/api/indicators", &token, again).await;
        assert_eq!(st, 200, "{updated}");
        assert_eq!(updated["id"], id.as_str());
        assert_eq!(updated["action"], "Allowed");
        assert_eq!(updated["title"], "Renamed");
        assert_eq!(updated["application"], "Demo");
        assert_eq!(updated["severity"], "Informational");
        assert_eq!(
            updated["creationTimeDateTimeUtc"],
            created["creationTimeDateTimeUtc"]
        );

        let items = list(&s, &token, "").await;
        assert_eq!(items.len(), 1, "{}: {items:?}", b.name);
        assert_eq!(items[0]["title"], "Renamed");
        assert!(items[0].get("@odata.context").is_none());
        // The versioned path serves the same resource.
        let (st, v) = s.get("/api/v1.0/indicators", Some(&token)).await;
        assert_eq!((st, v["value"].as_array().unwrap().len()), (200, 1));

        let (st, _) = send(
            &s,
            "DELETE",
            &format!("/api/indicators/{id}"),
            Some(&token),
            None,
        )
        .await;
        assert_eq!(st, 204);
        let (st, body) = send(
            &s,
            "DELETE",
            &format!("/api/indicators/{id}"),
            Some(&token),
            None,
        )
        .await;
        assert_eq!(st, 404);
        assert!(assert_mde_error(&body, "ResourceNotFound").contains(&id));
        let (st, body) = send(&s, "DELETE", "/api/indicators/abc", Some(&token), None).await;
        assert_eq!(st, 404);
        assert_mde_error(&body, "ResourceNotFound");
        assert!(list(&s, &token, "").await.is_empty());

        for action in ["Create", "Update", "Delete"] {
            let entries = audit_entries(&s, action).await;
            assert_eq!(entries.len(), 1, "{}: {action} {entries:?}", b.name);
            assert_eq!(entries[0]["entityId"], id.as_str());
            assert_eq!(entries[0]["actor"]["id"], app.client_id);
        }
        let update = &audit_entries(&s, "Update").await[0];
        assert_eq!(update["before"]["action"], "BlockAndRemediate");
        assert_eq!(update["after"]["action"], "Allowed");
    }
}

#[tokio::test]
async fn bad_input_gets_a_precise_error_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    for b in backends(dir.path()) {
        let s = Server::start_with(&b, &["--no-rate-limits"]);
        let token = s.token_with("Ti.ReadWrite.All").await;
        let audit_before = audit_entries(&s, "Create").await.len();
        let past = "2001-01-01T00:00:00Z";
        let mut missing = Vec::new();
        for field in [
            "indicatorValue",
            "indicatorType",
            "action",
            "title",
            "description",
        ] {
            let mut v = indicator("8.8.8.8", "IpAddress", "Block");
            v.as_object_mut().unwrap().remove(field);
            missing.push((v, "MissingRequiredParameter", field.to_owned()));
        }
        let cases: Vec<(Value, &str, String)> = missing
            .into_iter()
            .chain([
                (
                    indicator("8.8.8.8", "Ip", "Block"),
                    "InvalidRequestBody",
                    "indicatorType".into(),
                ),
                (
                    indicator("8.8.8.8", "IpAddress", "Destroy"),
                    "InvalidRequestBody",
                    "action".into(),
                ),
                (
                    with(
                        indicator("8.8.8.8", "IpAddress", "Block"),
                        "severity",
                        json!("Critical"),
                    ),
                    "InvalidRequestBody",
                    "severity".into(),
                ),
                (
                    with(
                        indicator("8.8.8.8", "IpAddress", "Block"),
                        "title",
                        json!(5),
                    ),
                    "InvalidRequestBody",
                    "title".into(),
                ),
                (
                    indicator(&"a".repeat(63), "FileSha256", "Block"),
                    "InvalidHashValue",
                    "64 hexadecimal".into(),
                ),
                (
                    indicator(&"z".repeat(40), "FileSha1", "Block"),
                    "InvalidHashValue",
                    "not hexadecimal".into(),
                ),
                (
                    indicator(&"a".repeat(31), "FileMd5", "Block"),
                    "InvalidHashValue",
                    "found 31".into(),
                ),
                (
                    indicator("999.1.1.1", "IpAddress", "Block"),
                    "InvalidIpAddress",
                    "999.1.1.1".into(),
                ),
                (
                    indicator("1.2.3.4-1.2.3.8", "IpAddress", "Block"),
                    "InvalidIpAddress",
                    "ranges".into(),
                ),
                (
                    indicator("10.0.0.0/33", "IpAddress", "Block"),
                    "InvalidIpAddress",
                    "prefix length".into(),
                ),
                (
                    indicator("192.168.1.1", "IpAddress", "Block"),
                    "InvalidIpAddress",
                    "allowInternal".into(),
                ),
                (
                    indicator("10.0.0.0/8", "IpAddress", "Block"),
                    "InvalidIpAddress",
                    "allowInternal".into(),
                ),
                (
                    indicator("fd12::1", "IpAddress", "Block"),
                    "InvalidIpAddress",
                    "unique local".into(),
                ),
                (
                    indicator("ftp://example.com/x", "Url", "Block"),
                    "InvalidUrl",
                    "scheme".into(),
                ),
                (
                    indicator("https://exa mple.com", "Url", "Block"),
                    "InvalidUrl",
                    "character".into(),
                ),
                (
                    indicator("https://127.0.0.1/admin", "Url", "Block"),
                    "InvalidUrl",
                    "allowInternal".into(),
                ),
                (
                    indicator("not_a_domain", "DomainName", "Block"),
                    "InvalidDomainName",
                    "two labels".into(),
                ),
                (
                    indicator("https://example.com", "DomainName", "Block"),
                    "InvalidDomainName",
                    "Url".into(),
                ),
                (
                    indicator("", "DomainName", "Block"),
                    "InvalidInput",
                    "empty".into(),
                ),
                (
                    indicator("example.com", "DomainName", "BlockAndRemediate"),
                    "InvalidInput",
                    "does not apply".into(),
                ),
                (
                    indicator(&"a".repeat(40), "CertificateThumbprint", "Block"),
                    "InvalidInput",
                    "allowed: Allowed, BlockAndRemediate".into(),
                ),
                (
                    indicator("example.com", "DomainName", "Audit"),
                    "InvalidInput",
                    "generateAlert".into(),
                ),
                (
                    with(
                        indicator("example.com", "DomainName", "Block"),
                        "expirationTime",
                        json!(past),
                    ),
                    "InvalidInput",
                    "in the past".into(),
                ),
                (
                    with(
                        indicator("example.com", "DomainName", "Block"),
                        "expirationTime",
                        json!("soon"),
                    ),
                    "InvalidRequestBody",
                    "expirationTime".into(),
                ),
                (
                    with(
                        indicator("example.com", "DomainName", "Block"),
                        "rbacGroupNames",
                        json!(["No such group"]),
                    ),
                    "InvalidInput",
                    "No such group".into(),
                ),
                (
                    with(
                        indicator("https://example.com", "Url", "Warn"),
                        "educateUrl",
                        json!("javascript:alert(1)"),
                    ),
                    "InvalidUrl",
                    "educateUrl".into(),
                ),
            ])
            .collect();
        for (body, code, needle) in cases {
            let (st, resp) = post(&s, "/api/indicators", &token, body.clone()).await;
            assert_eq!(st, 400, "{}: {body} -> {resp}", b.name);
            let msg = assert_mde_error(&resp, code);
            assert!(
                msg.contains(&needle),
                "{body}: '{msg}' should mention '{needle}'"
            );
        }
        // Not JSON at all.
        let resp = s
            .http
            .post(format!("{}/api/indicators", s.url))
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body("{nope")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400);
        assert_mde_error(&resp.json().await.unwrap(), "InvalidRequestBody");

        assert!(
            list(
                &s,
                &token,
                "?$filter=expirationTime eq null or expirationTime ne null"
            )
            .await
            .is_empty()
        );
        assert_eq!(
            audit_entries(&s, "Create").await.len(),
            audit_before,
            "nothing written"
        );
    }
}

#[tokio::test]
async fn import_writes_every_valid_item_and_reports_each_failed_one() {
    let dir = tempfile::tempdir().unwrap();
    for b in backends(dir.path()) {
        let s = Server::start_with(&b, &["--no-rate-limits"]);
        let token = s.token_with("Ti.ReadWrite").await;
        let items = json!({ "Indicators": [
            indicator(SHA1, "FileSha1", "Block"),
            indicator("abc", "FileSha1", "Block"),
            indicator("2001:DB8:0:0:1::/64", "IpAddress", "Warn"),
            indicator("10.1.2.3", "IpAddress", "Block"),
            with(indicator("10.1.2.3", "IpAddress", "Block"), "allowInternal", json!(true)),
            with(indicator(&SHA1.to_ascii_uppercase(), "FileSha1", "Alert"), "title", json!("second")),
            json!("not an object"),
            with(indicator("Evil.Example.COM", "DomainName", "Block"), "severity", json!("Medium")),
            indicator("http://Evil.Example.com/Path?x=1", "Url", "Audit"),
        ]});
        let (st, v) = post(&s, "/api/indicators/import", &token, items).await;
        assert_eq!(st, 200, "{}: {v}", b.name);
        assert!(
            v["@odata.context"]
                .as_str()
                .is_some_and(|c| c.contains("ImportIndicatorResult")),
            "{v}"
        );
        let r = v["value"].as_array().unwrap();
        assert_eq!(r.len(), 9);
        let failed: Vec<bool> = r.iter().map(|x| x["isFailed"].as_bool().unwrap()).collect();
        assert_eq!(
            failed,
            [false, true, false, true, false, false, true, false, true],
            "{v}"
        );
        for x in r {
            assert_eq!(x["isFailed"].as_bool().unwrap(), x["id"].is_null(), "{x}");
            assert_eq!(
                x["isFailed"].as_bool().unwrap(),
                x["failureReason"].is_string(),
                "{x}"
            );
        }
        assert!(
            r[1]["failureReason"]
                .as_str()
                .unwrap()
                .starts_with("InvalidHashValue")
        );
        assert_eq!(r[1]["indicator"], "abc");
        assert!(
            r[3]["failureReason"]
                .as_str()
                .unwrap()
                .contains("allowInternal")
        );
        assert_eq!(r[2]["indicator"], "2001:db8::/64");
        assert!(
            r[6]["failureReason"]
                .as_str()
                .unwrap()
                .starts_with("InvalidRequestBody")
        );
        assert!(
            r[8]["failureReason"]
                .as_str()
                .unwrap()
                .contains("generateAlert")
        );
        assert_eq!(r[7]["indicator"], "evil.example.com");
        // The second submission of the SHA-1 updated the indicator the first one created.
        assert_eq!(r[0]["id"], r[5]["id"]);
        let ids: BTreeSet<&str> = r.iter().filter_map(|x| x["id"].as_str()).collect();
        assert_eq!(ids.len(), 4);

        let stored = list(&s, &token, "").await;
        assert_eq!(
            values(&stored),
            BTreeSet::from([
                SHA1.to_owned(),
                "2001:db8::/64".to_owned(),
                "10.1.2.3".to_owned(),
                "evil.example.com".to_owned()
            ]),
            "{}",
            b.name
        );
        let sha = stored.iter().find(|i| i["indicatorValue"] == SHA1).unwrap();
        assert_eq!(
            (&sha["action"], &sha["title"], &sha["generateAlert"]),
            (&json!("Audit"), &json!("second"), &json!(true))
        );
        let internal = stored
            .iter()
            .find(|i| i["indicatorValue"] == "10.1.2.3")
            .unwrap();
        assert_eq!(internal["allowInternal"], true);

        // Importing again updates in place: same ids, no new indicators.
        let (st, v) = post(
            &s,
            "/api/indicators/import",
            &token,
            json!({ "Indicators": [with(indicator("evil.example.com", "DomainName", "Allowed"), "expirationTime", json!("2099-01-01T00:00:00Z"))] }),
        )
        .await;
        assert_eq!(st, 200);
        assert_eq!(v["value"][0]["id"], r[7]["id"]);
        assert_eq!(list(&s, &token, "").await.len(), 4);

        // Batch limits: nothing of an oversize batch is written.
        let many = |n: usize| {
            let items: Vec<Value> = (0..n)
                .map(|i| indicator(&format!("{i:064x}"), "FileSha256", "Block"))
                .collect();
            json!({ "Indicators": items })
        };
        let (st, v) = post(&s, "/api/indicators/import", &token, many(501)).await;
        assert_eq!(st, 400);
        assert_eq!(
            assert_mde_error(&v, "MaximumBatchSizeExceeded"),
            "Maximum batch size exceeded. Received: 501, allowed: 500"
        );
        assert_eq!(list(&s, &token, "").await.len(), 4);
        let (st, v) = post(
            &s,
            "/api/indicators/import",
            &token,
            json!({ "Indicators": [] }),
        )
        .await;
        assert_eq!(st, 400);
        assert_mde_error(&v, "InvalidInput");
        let (st, v) = post(
            &s,
            "/api/indicators/import",
            &token,
            json!({ "indicatorValue": "x" }),
        )
        .await;
        assert_eq!(st, 400);
        assert!(assert_mde_error(&v, "MissingRequiredParameter").contains("Indicators"));
        let (st, v) = post(
            &s,
            "/api/indicators/import",
            &token,
            json!({ "Indicators": "x" }),
        )
        .await;
        assert_eq!(st, 400);
        assert_mde_error(&v, "InvalidRequestBody");

        let (st, v) = post(&s, "/api/indicators/import", &token, many(500)).await;
        assert_eq!(st, 200);
        let r = v["value"].as_array().unwrap();
        assert_eq!(r.len(), 500);
        assert!(r.iter().all(|x| x["isFailed"] == false));
        assert_eq!(list(&s, &token, "?$count=true&$top=1").await.len(), 1);
        let (_, counted) = s
            .get("/api/indicators?$count=true&$top=0", Some(&token))
            .await;
        assert_eq!(counted["@odata.count"], 504);

        // One audit entry per import call that wrote something.
        assert_eq!(audit_entries(&s, "Import").await.len(), 2, "{}", b.name);
        assert_eq!(audit_entries(&s, "Update").await.len(), 1);
    }
}

#[tokio::test]
async fn batch_delete_is_all_or_nothing() {
    let dir = tempfile::tempdir().unwrap();
    for b in backends(dir.path()) {
        let s = Server::start_with(&b, &["--no-rate-limits"]);
        let token = s.token_with("Ti.ReadWrite.All").await;
        let mut ids = Vec::new();
        for v in ["8.8.8.8", "8.8.4.4", "9.9.9.9"] {
            let (st, i) = post(
                &s,
                "/api/indicators",
                &token,
                indicator(v, "IpAddress", "Block"),
            )
            .await;
            assert_eq!(st, 200, "{i}");
            ids.push(i["id"].as_str().unwrap().to_owned());
        }
        let path = "/api/indicators/BatchDelete";
        let (st, v) = post(
            &s,
            path,
            &token,
            json!({ "IndicatorIds": [ids[0], ids[1], "999999"] }),
        )
        .await;
        assert_eq!(st, 404, "{}: {v}", b.name);
        assert!(assert_mde_error(&v, "ResourceNotFound").contains("999999"));
        assert_eq!(list(&s, &token, "").await.len(), 3, "nothing deleted");

        for (body, code, needle) in [
            (
                json!({ "IndicatorIds": [] }),
                "InvalidInput",
                "at least one",
            ),
            (json!({ "IndicatorIds": ["abc"] }), "InvalidInput", "abc"),
            (
                json!({ "IndicatorIds": [ids[0], -1] }),
                "InvalidInput",
                "-1",
            ),
            (json!({}), "MissingRequiredParameter", "IndicatorIds"),
            (
                json!({ "IndicatorIds": (0..501).map(|i| i.to_string()).collect::<Vec<_>>() }),
                "MaximumBatchSizeExceeded",
                "Received: 501, allowed: 500",
            ),
        ] {
            let (st, v) = post(&s, path, &token, body.clone()).await;
            assert_eq!(st, 400, "{body}: {v}");
            let msg = assert_mde_error(&v, code);
            assert!(msg.contains(needle), "{msg}");
        }
        assert_eq!(list(&s, &token, "").await.len(), 3, "nothing deleted");

        let (st, v) = send(
            &s,
            "POST",
            path,
            Some(&token),
            Some(&json!({ "IndicatorIds": [ids[0], ids[1], ids[1]] })),
        )
        .await;
        assert_eq!(st, 204, "{v}");
        assert_eq!(
            values(&list(&s, &token, "").await),
            BTreeSet::from(["9.9.9.9".to_owned()])
        );
        let entries = audit_entries(&s, "BatchDelete").await;
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0]["before"]["count"], 2);
    }
}

#[tokio::test]
async fn ti_readwrite_reaches_only_its_own_indicators() {
    let dir = tempfile::tempdir().unwrap();
    for b in backends(dir.path()) {
        let s = Server::start_with(&b, &["--no-rate-limits"]);
        let a_app = b.create_app(None, "Ti.ReadWrite");
        let a = s.token(&a_app).await;
        let other = s.token_with("Ti.ReadWrite").await;
        let all = s.token_with("Ti.ReadWrite.All").await;
        let reader = s.token_with("Ti.Read.All").await;

        let (_, x) = post(
            &s,
            "/api/indicators",
            &a,
            indicator("x.example.com", "DomainName", "Block"),
        )
        .await;
        let (_, y) = post(
            &s,
            "/api/indicators",
            &other,
            indicator("y.example.com", "DomainName", "Block"),
        )
        .await;
        let x_id = x["id"].as_str().unwrap().to_owned();
        let y_id = y["id"].as_str().unwrap().to_owned();

        assert_eq!(
            values(&list(&s, &a, "").await),
            BTreeSet::from(["x.example.com".to_owned()])
        );
        assert_eq!(
            values(&list(&s, &other, "").await),
            BTreeSet::from(["y.example.com".to_owned()])
        );
        assert_eq!(list(&s, &all, "").await.len(), 2);
        assert_eq!(list(&s, &reader, "").await.len(), 2);
        // A filter cannot widen what Ti.ReadWrite sees.
        assert!(list(&s, &a, "?$filter=createdBy ne 'nobody'").await.len() == 1);

        // The other Ti.ReadWrite app can neither change nor delete x.
        let (st, v) = post(
            &s,
            "/api/indicators",
            &other,
            indicator("X.example.com", "DomainName", "Allowed"),
        )
        .await;
        assert_eq!(st, 403, "{}: {v}", b.name);
        assert!(assert_mde_error(&v, "DisallowedOperation").contains("Ti.ReadWrite.All"));
        let (st, v) = post(&s, "/api/indicators/import", &other, json!({ "Indicators": [indicator("x.example.com", "DomainName", "Allowed"), indicator("z.example.com", "DomainName", "Block")] })).await;
        assert_eq!(st, 200);
        assert_eq!(v["value"][0]["isFailed"], true);
        assert!(
            v["value"][0]["failureReason"]
                .as_str()
                .unwrap()
                .starts_with("DisallowedOperation")
        );
        assert_eq!(v["value"][1]["isFailed"], false);
        let (st, _) = send(
            &s,
            "DELETE",
            &format!("/api/indicators/{x_id}"),
            Some(&other),
            None,
        )
        .await;
        assert_eq!(st, 404);
        let (st, _) = post(
            &s,
            "/api/indicators/BatchDelete",
            &other,
            json!({ "IndicatorIds": [x_id] }),
        )
        .await;
        assert_eq!(st, 404);
        assert_eq!(list(&s, &a, "").await[0]["action"], "Block");

        // Ti.Read.All only reads.
        let (st, v) = post(
            &s,
            "/api/indicators",
            &reader,
            indicator("r.example.com", "DomainName", "Block"),
        )
        .await;
        assert_eq!(st, 403);
        assert_mde_error(&v, "Forbidden");

        // Ti.ReadWrite.All changes anyone's; the creator stays.
        let (st, v) = post(
            &s,
            "/api/indicators",
            &all,
            indicator("x.example.com", "DomainName", "Allowed"),
        )
        .await;
        assert_eq!(st, 200);
        assert_eq!(v["createdBy"], a_app.client_id);
        assert_ne!(v["lastUpdatedBy"], a_app.client_id);
        let (st, _) = send(
            &s,
            "DELETE",
            &format!("/api/indicators/{y_id}"),
            Some(&all),
            None,
        )
        .await;
        assert_eq!(st, 204);
        // And the creator still reaches its own.
        let (st, _) = send(
            &s,
            "DELETE",
            &format!("/api/indicators/{x_id}"),
            Some(&a),
            None,
        )
        .await;
        assert_eq!(st, 204);
    }
}

#[tokio::test]
async fn expired_indicators_leave_the_active_list_but_stay_readable() {
    let dir = tempfile::tempdir().unwrap();
    for b in backends(dir.path()) {
        let s = Server::start_with(&b, &["--no-rate-limits"]);
        let token = s.token_with("Ti.ReadWrite.All").await;
        let now = OffsetDateTime::now_utc();
        let expired = seed_indicator(
            &b,
            &s.tenant,
            "198.51.100.7",
            Some(now - time::Duration::hours(1)),
        )
        .await;
        seed_indicator(
            &b,
            &s.tenant,
            "198.51.100.8",
            Some(now + time::Duration::days(1)),
        )
        .await;
        seed_indicator(&b, &s.tenant, "198.51.100.9", None).await;

        let active = values(&list(&s, &token, "").await);
        assert_eq!(
            active,
            BTreeSet::from(["198.51.100.8".to_owned(), "198.51.100.9".to_owned()]),
            "{}",
            b.name
        );
        let (_, counted) = s.get("/api/indicators?$count=true", Some(&token)).await;
        assert_eq!(counted["@odata.count"], 2);
        // Naming expirationTime in $filter lifts the active-only default.
        let stamp = rampart_core::timefmt::format(now);
        let old = list(&s, &token, &format!("?$filter=expirationTime lt {stamp}")).await;
        assert_eq!(values(&old), BTreeSet::from(["198.51.100.7".to_owned()]));
        assert_eq!(old[0]["id"], expired.id.as_str());
        let everything = list(
            &s,
            &token,
            "?$filter=expirationTime eq null or expirationTime ne null",
        )
        .await;
        assert_eq!(everything.len(), 3);
        // Other filters keep the default.
        assert_eq!(
            list(&s, &token, "?$filter=indicatorType eq 'IpAddress'")
                .await
                .len(),
            2
        );

        // Submitting the expired value again revives the same indicator.
        let (st, v) = post(
            &s,
            "/api/indicators",
            &token,
            indicator("198.51.100.7", "IpAddress", "Block"),
        )
        .await;
        assert_eq!(st, 200);
        assert_eq!(v["id"], expired.id.as_str());
        assert_eq!(list(&s, &token, "").await.len(), 3);
    }
}

#[tokio::test]
async fn tenants_never_see_each_others_indicators() {
    let dir = tempfile::tempdir().unwrap();
    for b in backends(dir.path()) {
        let s = Server::start_with(&b, &["--no-rate-limits"]);
        let home = s.token_with("Ti.ReadWrite.All").await;
        let other_tenant = b.create_tenant("Other");
        let foreign = s
            .token(&b.create_app(Some(&other_tenant), "Ti.ReadWrite.All"))
            .await;

        let (_, mine) = post(
            &s,
            "/api/indicators",
            &home,
            indicator("203.0.113.0/24", "IpAddress", "Block"),
        )
        .await;
        let id = mine["id"].as_str().unwrap().to_owned();
        assert!(list(&s, &foreign, "").await.is_empty());
        let (st, _) = send(
            &s,
            "DELETE",
            &format!("/api/indicators/{id}"),
            Some(&foreign),
            None,
        )
        .await;
        assert_eq!(st, 404);
        let (st, _) = post(
            &s,
            "/api/indicators/BatchDelete",
            &foreign,
            json!({ "IndicatorIds": [id] }),
        )
        .await;
        assert_eq!(st, 404);
        // The same value in the other tenant is a separate indicator, numbered in that tenant.
        let (st, theirs) = post(
            &s,
            "/api/indicators",
            &foreign,
            indicator("203.0.113.9/24", "IpAddress", "Allowed"),
        )
        .await;
        assert_eq!(st, 200, "{theirs}");
        assert_eq!(theirs["indicatorValue"], "203.0.113.0/24");
        assert_eq!(theirs["id"], "1");
        let home_list = list(&s, &home, "").await;
        assert_eq!(home_list.len(), 1);
        assert_eq!(home_list[0]["action"], "Block", "{}", b.name);
    }
}

#[tokio::test]
async fn device_groups_filters_and_paging() {
    let dir = tempfile::tempdir().unwrap();
    for b in backends(dir.path()) {
        let s = Server::start_with(&b, &["--no-rate-limits"]);
        let web = crate::harness::seed_group(&b, &s.tenant, "Web servers").await;
        let token = s.token_with("Ti.ReadWrite.All").await;

        let scoped = with(
            indicator("evil.example.net", "DomainName", "Block"),
            "rbacGroupNames",
            json!(["web servers"]),
        );
        let (st, v) = post(&s, "/api/indicators", &token, scoped).await;
        assert_eq!(st, 200, "{}: {v}", b.name);
        assert_eq!(v["rbacGroupNames"], json!(["Web servers"]));
        assert_eq!(v["rbacGroupIds"], json!([web.id.to_string()]));
        let (_, items) = post(&s, "/api/indicators/import", &token, json!({ "Indicators": [
            with(indicator(&"b".repeat(64), "FileSha256", "Audit"), "generateAlert", json!(true)),
            with(indicator("https://phish.example.org/login", "Url", "Warn"), "severity", json!("High")),
            with(indicator("2001:db8::/32", "IpAddress", "Allowed"), "rbacGroupIds", json!([web.id.to_string()])),
            with(indicator("1.1.1.1", "IpAddress", "Block"), "rbacGroupNames", json!(["Missing group"])),
        ]})).await;
        let r = items["value"].as_array().unwrap();
        assert_eq!(
            r.iter().filter(|x| x["isFailed"] == true).count(),
            1,
            "{items}"
        );
        assert!(
            r[3]["failureReason"]
                .as_str()
                .unwrap()
                .contains("Missing group")
        );

        let by_group = list(
            &s,
            &token,
            "?$filter=rbacGroupNames/any(g: g eq 'Web servers')",
        )
        .await;
        assert_eq!(
            values(&by_group),
            BTreeSet::from(["evil.example.net".to_owned(), "2001:db8::/32".to_owned()])
        );
        let by_id = list(
            &s,
            &token,
            &format!("?$filter=rbacGroupIds/any(g: g eq '{}')", web.id),
        )
        .await;
        assert_eq!(by_id.len(), 2);
        for (filter, expected) in [
            (
                "indicatorType eq 'Url'",
                vec!["https://phish.example.org/login"],
            ),
            (
                "action eq 'audit' and generateAlert eq true",
                vec![&"b".repeat(64)[..]],
            ),
            (
                "severity eq 'High'",
                vec!["https://phish.example.org/login"],
            ),
            (
                "startswith(indicatorValue,'evil.')",
                vec!["evil.example.net"],
            ),
            // Equality on the value goes through the hashed index, and stays exact.
            (
                "indicatorValue eq 'evil.example.net'",
                vec!["evil.example.net"],
            ),
            ("indicatorValue eq 'EVIL.example.net'", vec![]),
            (
                "indicatorValue in ('1.1.1.1', '2001:db8::/32', 'evil.example.net') and indicatorType eq 'IpAddress'",
                vec!["2001:db8::/32"],
            ),
            (
                "indicatorValue eq 'evil.example.net' or severity eq 'High'",
                vec!["evil.example.net", "https://phish.example.org/login"],
            ),
            (
                "createdByDisplayName eq 'test-app' and application eq null",
                vec![
                    "evil.example.net",
                    "https://phish.example.org/login",
                    "2001:db8::/32",
                    &"b".repeat(64)[..],
                ],
            ),
        ] {
            let got = values(&list(&s, &token, &format!("?$filter={filter}")).await);
            let want: BTreeSet<String> = expected.iter().map(|v| v.to_string()).collect();
            assert_eq!(got, want, "{}: {filter}", b.name);
        }
        let (st, v) = s
            .get("/api/indicators?$filter=severity eq 'Severe'", Some(&token))
            .await;
        assert_eq!(st, 400);
        assert_mde_error(&v, "ODataError");

        // Re-scoping an indicator moves it out of the group's filter.
        let (st, _) = post(
            &s,
            "/api/indicators",
            &token,
            indicator("evil.example.net", "DomainName", "Block"),
        )
        .await;
        assert_eq!(st, 200);
        assert_eq!(
            list(
                &s,
                &token,
                "?$filter=rbacGroupNames/any(g: g eq 'Web servers')"
            )
            .await
            .len(),
            1
        );

        // Paging: $top with nextLink visits each indicator once.
        let mut seen = Vec::new();
        let mut url = format!(
            "{}/api/indicators?$top=1&$orderby=creationTimeDateTimeUtc desc",
            s.url
        );
        loop {
            let v: Value = s
                .http
                .get(&url)
                .bearer_auth(&token)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            for i in v["value"].as_array().unwrap() {
                seen.push(i["id"].as_str().unwrap().to_owned());
            }
            match v["@odata.nextLink"].as_str() {
                Some(n) => url = n.to_owned(),
                None => break,
            }
            assert!(seen.len() < 10, "paging loops");
        }
        assert_eq!(seen.len(), 4);
        assert_eq!(seen.iter().collect::<BTreeSet<_>>().len(), 4);
    }
}

#[tokio::test]
async fn concurrent_imports_of_the_same_values_converge() {
    let dir = tempfile::tempdir().unwrap();
    for b in backends(dir.path()) {
        let s = std::sync::Arc::new(Server::start_with(&b, &["--no-rate-limits"]));
        let token = s.token_with("Ti.ReadWrite.All").await;
        // Eight clients import overlapping halves of 200 values, in different orders.
        let mut tasks = Vec::new();
        for c in 0..8u32 {
            let (s, token) = (s.clone(), token.clone());
            tasks.push(tokio::spawn(async move {
                let mut items: Vec<Value> = (0..100u32)
                    .map(|i| {
                        let n = (i + c * 25) % 200;
                        indicator(&format!("{n:040x}"), "FileSha1", "Block")
                    })
                    .collect();
                if c % 2 == 1 {
                    items.reverse();
                }
                let (st, v) = post(
                    &s,
                    "/api/indicators/import",
                    &token,
                    json!({ "Indicators": items }),
                )
                .await;
                assert_eq!(st, 200, "{v}");
                assert!(
                    v["value"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .all(|x| x["isFailed"] == false),
                    "{v}"
                );
                v["value"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|x| {
                        (
                            x["indicator"].as_str().unwrap().to_owned(),
                            x["id"].as_str().unwrap().to_owned(),
                        )
                    })
                    .collect::<Vec<_>>()
            }));
        }
        let mut by_value: std::collections::BTreeMap<String, BTreeSet<String>> = Default::default();
        for t in tasks {
            for (value, id) in t.await.unwrap() {
                by_value.entry(value).or_default().insert(id);
            }
        }
        let stored = list(&s, &token, "").await;
        assert_eq!(
            stored.len(),
            by_value.len(),
            "{}: one indicator per value",
            b.name
        );
        for i in &stored {
            let ids = &by_value[i["indicatorValue"].as_str().unwrap()];
            assert_eq!(ids.len(), 1, "every client saw the same id");
            assert!(ids.contains(i["id"].as_str().unwrap()));
        }
    }
}

#[tokio::test]
async fn every_route_answers_its_documented_statuses_and_limits() {
    let dir = tempfile::tempdir().unwrap();
    let b = &backends(dir.path())[0];
    // Default (MDE) rate limits: import and BatchDelete have 30 calls a minute.
    let s = Server::start(b);
    let token = s.token_with("Ti.ReadWrite").await;
    let wrong = s.token_with("Alert.Read.All").await;
    for (method, path) in [
        ("GET", "/api/indicators"),
        ("POST", "/api/indicators"),
        ("POST", "/api/indicators/import"),
        ("POST", "/api/indicators/BatchDelete"),
        ("DELETE", "/api/indicators/1"),
    ] {
        let (st, v) = send(&s, method, path, None, Some(&json!({}))).await;
        assert_eq!(st, 401, "{method} {path}");
        assert_mde_error(&v, "Unauthorized");
        let (st, v) = send(&s, method, path, Some(&wrong), Some(&json!({}))).await;
        assert_eq!(st, 403, "{method} {path}");
        assert_mde_error(&v, "Forbidden");
    }
    let invalid = json!({ "Indicators": [indicator("nope", "FileSha1", "Block")] });
    for _ in 0..30 {
        let (st, v) = post(&s, "/api/indicators/import", &token, invalid.clone()).await;
        assert_eq!(st, 200, "{v}");
    }
    let resp = s
        .http
        .post(format!("{}/api/indicators/import", s.url))
        .bearer_auth(&token)
        .json(&invalid)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 429);
    assert!(resp.headers().contains_key("retry-after"));
    assert_mde_error(&resp.json().await.unwrap(), "TooManyRequests");
    // Other families keep their own budget.
    let (st, _) = post(
        &s,
        "/api/indicators",
        &token,
        indicator("8.8.8.8", "IpAddress", "Block"),
    )
    .await;
    assert_eq!(st, 200);

    // The OpenAPI document describes the routes and the entity, with allowInternal.
    let (_, doc) = s.get("/api/openapi.json", None).await;
    let import = &doc["paths"]["/api/indicators/import"]["post"];
    assert_eq!(import["x-rate-limit-family"], "IndicatorsImport");
    assert_eq!(
        doc["paths"]["/api/indicators/BatchDelete"]["post"]["x-rate-limit-family"],
        "IndicatorsBatchDelete"
    );
    let props = &doc["components"]["schemas"]["Indicator"]["properties"];
    for p in [
        "indicatorValue",
        "externalID",
        "creationTimeDateTimeUtc",
        "rbacGroupIds",
        "allowInternal",
    ] {
        assert!(props.get(p).is_some(), "{p} in {props}");
    }
}
