//! Operator surface: health, readiness, metrics, API description, TLS, shutdown, audit.

use crate::harness::{Server, backends};

#[tokio::test]
async fn health_metrics_and_api_description() {
    let dir = tempfile::tempdir().unwrap();
    let b = &backends(dir.path())[0];
    let s = Server::start(b);
    let text = |path: &str| {
        let url = format!("{}{path}", s.url);
        let http = s.http.clone();
        async move {
            let r = http.get(url).send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    assert_eq!(text("/healthz").await, (200, "ok".into()));
    assert_eq!(text("/readyz").await, (200, "ready".into()));
    let token = s.token_with("Alert.Read.All").await;
    s.get("/api/alerts", Some(&token)).await;
    s.get("/api/alerts/x", Some(&token)).await;
    let (st, metrics) = text("/metrics").await;
    assert_eq!(st, 200);
    assert!(
        metrics.contains(
            r#"rampart_http_requests_total{method="GET",route="/api/alerts",status="200"} 1"#
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            r#"rampart_http_requests_total{method="GET",route="/api/alerts/{id}",status="404"} 1"#
        ),
        "{metrics}"
    );
    assert!(metrics.contains(
        r#"rampart_http_request_duration_seconds_count{method="GET",route="/api/alerts"} 1"#
    ));

    let (st, doc) = s.get("/api/openapi.json", None).await;
    assert_eq!(st, 200);
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(
        doc["paths"]["/api/alerts"]["get"]["x-permissions"],
        serde_json::json!(["Alert.Read.All", "Alert.ReadWrite.All"])
    );
    assert!(doc["components"]["schemas"]["Alert"]["properties"]["alertCreationTime"].is_object());
    assert!(doc["components"]["securitySchemes"]["oauth2"]["flows"]["clientCredentials"]["scopes"]["Machine.Isolate"].is_string());
    let (st, page) = text("/api/docs").await;
    assert_eq!(st, 200);
    assert!(
        page.contains("openapi.json") && !page.contains("http://") && !page.contains("https://"),
        "the page loads nothing from outside"
    );

    // The versioned prefix serves the same API.
    assert_eq!(s.get("/api/v1.0/alerts", Some(&token)).await.0, 200);
}

#[tokio::test]
async fn audit_log_records_changes_with_actor_and_paging() {
    let dir = tempfile::tempdir().unwrap();
    for b in backends(dir.path()) {
        let s = Server::start(&b);
        let app = b.create_app(None, "SecurityConfiguration.Read.All");
        b.cli(&["apps", "rotate-secret", "--client-id", &app.client_id]);
        let (st, log) = s
            .get(
                "/api/audit?$filter=entityType eq 'App'&$top=1",
                Some(&s.token_with("SecurityConfiguration.Read.All").await),
            )
            .await;
        assert_eq!(st, 200, "{log}");
        let first = &log["value"][0];
        assert_eq!(first["action"], "Create");
        assert_eq!(first["entityId"], app.client_id);
        assert!(first["actor"]["id"].as_str().unwrap().starts_with("cli:"));
        assert!(first["id"].as_i64().unwrap() > 0);
        assert!(log["@odata.nextLink"].is_string(), "more entries than $top");
    }
}

#[tokio::test]
async fn self_signed_tls_keeps_its_fingerprint_and_sigterm_drains() {
    let dir = tempfile::tempdir().unwrap();
    let b = &backends(dir.path())[0];
    let s = Server::start_with(b, &["--tls-self-signed"]);
    assert!(s.url.starts_with("https://"), "{}", s.url);
    let fp = |s: &Server| {
        s.stdout()
            .iter()
            .find_map(|l| l.split("fingerprint: ").nth(1).map(str::to_owned))
            .expect("fingerprint printed")
    };
    let first = fp(&s);
    assert_eq!(first.split(':').count(), 32);
    assert_eq!(s.get("/healthz", None).await.0, 200);
    let status = s.terminate();
    assert!(status.success(), "clean exit on SIGTERM: {status}");
    let again = Server::start_with(b, &["--tls-self-signed"]);
    assert_eq!(
        fp(&again),
        first,
        "the certificate persists in the data dir"
    );
}
