//! Every secured route × (no token, wrong role, right role, another tenant), driven by the
//! route table the server publishes in its OpenAPI document — a new route is tested the moment
//! it exists.

use crate::harness::{Server, assert_mde_error, backends, seed_alerts};
use rampart_core::Permission;

struct Op {
    method: String,
    path: String,
    permissions: Vec<String>,
}

async fn operations(s: &Server) -> Vec<Op> {
    let (st, doc) = s.get("/api/openapi.json", None).await;
    assert_eq!(st, 200);
    let mut ops = Vec::new();
    for (path, methods) in doc["paths"].as_object().unwrap() {
        // The agent routes take device credentials, not app tokens (tested in `telemetry`).
        if !path.starts_with("/api/") {
            continue;
        }
        for (method, op) in methods.as_object().unwrap() {
            let permissions: Vec<String> = op["x-permissions"]
                .as_array()
                .expect("every route lists its permissions")
                .iter()
                .map(|p| p.as_str().unwrap().to_owned())
                .collect();
            assert!(
                !permissions.is_empty(),
                "{method} {path} declares no permission"
            );
            assert_eq!(op["security"][0]["oauth2"], op["x-permissions"]);
            ops.push(Op {
                method: method.to_uppercase(),
                path: path.clone(),
                permissions,
            });
        }
    }
    assert!(ops.len() >= 3, "the route table is published");
    ops
}

/// The path with its `{id}` placeholder filled with an id of the home tenant's data of the
/// resource the path names (the longest matching prefix wins).
fn concrete(path: &str, ids: &[(&str, String)]) -> String {
    let id = ids
        .iter()
        .filter(|(prefix, _)| path.starts_with(prefix))
        .max_by_key(|(prefix, _)| prefix.len())
        .map(|(_, id)| id.as_str())
        .unwrap_or("no-such-id");
    let mut path = path.replace("{id}", id);
    // Segments that name a function call get a sample call.
    for (placeholder, sample) in SAMPLE_SEGMENTS {
        path = path.replace(placeholder, sample);
    }
    // Routes that need a query parameter to mean anything get a sample one.
    match SAMPLE_QUERIES.iter().find(|(p, _)| *p == path) {
        Some((_, q)) => format!("{path}?{q}"),
        None => path,
    }
}

const SAMPLE_QUERIES: &[(&str, &str)] = &[("/api/machines/findbytag", "tag=web")];

const SAMPLE_SEGMENTS: &[(&str, &str)] =
    &[("{function}", "GetLiveResponseResultDownloadLink(index=0)")];

async fn call(
    s: &Server,
    method: &str,
    path: &str,
    token: Option<&str>,
) -> (u16, serde_json::Value) {
    let mut req = s
        .http
        .request(method.parse().unwrap(), format!("{}{path}", s.url));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if method != "GET" && method != "DELETE" {
        req = req.header("content-type", "application/json").body("{}");
    }
    let resp = req.send().await.unwrap();
    let st = resp.status().as_u16();
    (st, resp.json().await.unwrap_or(serde_json::Value::Null))
}

#[tokio::test]
async fn every_route_enforces_its_permissions_and_the_tenant_boundary() {
    let dir = tempfile::tempdir().unwrap();
    for b in backends(dir.path()) {
        let s = Server::start_with(&b, &["--no-rate-limits"]);
        let home_alerts = seed_alerts(&b, &s.tenant, 0, 30).await;
        let other = b.create_tenant("Other");
        seed_alerts(&b, &other, 1000, 30).await;
        let home_ids: Vec<&str> = home_alerts.iter().map(|a| a.id.as_str()).collect();
        let machine = crate::harness::seed_machine(&b, &s.tenant, "web-1.corp.example").await;
        let group = crate::harness::seed_group(&b, &s.tenant, "Web servers").await;
        let rich = crate::harness::seed_rich_alert(&b, &s.tenant, &machine).await;
        let investigation = crate::harness::seed_investigation(&b, &s.tenant, &machine).await;
        let remediation =
            crate::harness::seed_remediation_action(&b, &s.tenant, &machine, &investigation).await;
        let (collect_action, live_response_action) =
            crate::machine_actions::seed_finished_actions(&b, &s.tenant, &machine.id).await;
        let ids = [
            ("/api/machineactions/", collect_action),
            ("/api/machineactions/{id}/{function}", live_response_action),
            ("/api/alerts/", rich.id.clone()),
            ("/api/incidents/", rich.incident_id.unwrap().to_string()),
            ("/api/investigations/", investigation.id.clone()),
            ("/api/remediationactions/", remediation),
            ("/api/machines/", machine.id.clone()),
            ("/api/machinegroups/", group.id.to_string()),
            (
                "/api/indicators/",
                crate::indicators::seed_indicator(&b, &s.tenant, "192.0.2.1", None)
                    .await
                    .id,
            ),
            (
                "/api/enrollmentTokens/",
                crate::enrollment::seed_enrollment_token(&b, &s.tenant).await,
            ),
            (
                "/api/detectionrules/",
                crate::detection_rules::seed_detection_rule(&b, &s.tenant).await,
            ),
            (
                "/api/yararules/",
                crate::yara_rules::seed_yara_rule_set(&b, &s.tenant).await,
            ),
            (
                "/api/libraryfiles/",
                crate::library::seed_library_file(&b, &s.tenant).await,
            ),
        ];
        let mut ops = operations(&s).await;
        // Deletions last, so that they do not take away what the other routes read.
        ops.sort_by_key(|op| op.method == "DELETE");

        for op in ops {
            let path = concrete(&op.path, &ids);
            let requested = path
                .rsplit('/')
                .nth(if op.path.ends_with("{id}") { 0 } else { 1 })
                .unwrap_or("")
                .to_owned();
            let label = format!("{}: {} {}", b.name, op.method, op.path);

            let (st, body) = call(&s, &op.method, &path, None).await;
            assert_eq!(st, 401, "{label} without a token");
            assert_mde_error(&body, "Unauthorized");

            let wrong: Vec<&str> = Permission::ALL
                .iter()
                .map(|p| p.name())
                .filter(|n| !op.permissions.iter().any(|p| p == n))
                .collect();
            let wrong_token = s.token_with(&wrong.join(",")).await;
            let (st, body) = call(&s, &op.method, &path, Some(&wrong_token)).await;
            assert_eq!(st, 403, "{label} with every other role");
            assert_mde_error(&body, "Forbidden");

            for needed in &op.permissions {
                let token = s.token_with(needed).await;
                let (st, body) = call(&s, &op.method, &path, Some(&token)).await;
                // Reads must succeed; writes get `{}`, which may be an incomplete body (a 400
                // naming what is missing) — but never an auth failure or a server error. A second
                // DELETE finds nothing left.
                // `Ti.ReadWrite` reaches only its own app's indicators, and the seeded one is
                // someone else's: not found for it.
                let owned_elsewhere =
                    *needed == "Ti.ReadWrite" && op.path.contains("/indicators/{id}");
                let ok = (200..300).contains(&st)
                    || (op.method != "GET" && st == 400 && body["error"]["code"].is_string())
                    || ((op.method == "DELETE" || owned_elsewhere) && st == 404);
                assert!(ok, "{label} with {needed}: {st} {body}");
            }

            // The same route with a token of the other tenant never shows or touches home data.
            let app = b.create_app(Some(&other), &op.permissions.join(","));
            let foreign = s.token(&app).await;
            let (st, body) = call(&s, &op.method, &path, Some(&foreign)).await;
            // An error may echo the id the caller sent; nothing else of the home tenant may show.
            let text = body.to_string().replace(&requested, "<requested id>");
            assert!(
                !home_ids.iter().any(|id| text.contains(id)),
                "{label}: another tenant saw home data: {text}"
            );
            assert!(
                !text.contains(&s.tenant),
                "{label}: another tenant saw the home tenant id"
            );
            if op.path.contains('{') {
                // Not found — or, for a write, refused for its incomplete body before any lookup.
                let refused = st == 404 || (op.method != "GET" && st == 400);
                assert!(
                    refused,
                    "{label}: another tenant's entity is not found: {st} {body}"
                );
            } else if op.method == "GET" {
                assert_eq!(st, 200, "{label}");
            } else {
                assert!(st < 500 && st != 401 && st != 403, "{label}: {st}");
            }
        }
    }
}
