//! Bad input of every kind gets a clear 4xx in MDE's format and changes nothing.

use crate::harness::{Server, assert_mde_error, backends};

#[tokio::test]
async fn garbage_gets_mde_errors_never_a_5xx() {
    let dir = tempfile::tempdir().unwrap();
    let b = &backends(dir.path())[0];
    let s = Server::start_with(b, &["--no-rate-limits"]);
    let token = s.token_with("all").await;
    let before = s.get("/api/audit?$count=true", Some(&token)).await.1["@odata.count"].clone();

    let raw_paths = [
        "/api/alerts/%FF%FE",
        "/api/alerts/..%2F..%2Fetc%2Fpasswd",
        "/api/alerts?$filter=%FF",
        "/api/alerts?$filter=((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((",
        "/api/alerts?%zz=1",
        "/api//alerts",
        "/api/alerts/x/y/z",
        "/../../etc/passwd",
        "/api/alerts?$top=-1",
        "/api/alerts?$skip=99999999999999999999999",
    ];
    for p in raw_paths {
        let resp = s
            .http
            .get(format!("{}{p}", s.url))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        let st = resp.status().as_u16();
        let body: serde_json::Value = resp.json().await.unwrap_or(serde_json::Value::Null);
        assert!((400..500).contains(&st) || st == 200, "{p}: {st}");
        if st != 200 {
            assert!(body["error"]["code"].is_string(), "{p}: {body}");
        }
    }
    // Garbage headers.
    for auth in [
        "Bearer",
        "Bearer    ",
        "Basic Zm9vOmJhcg==",
        "bearer a.b.c",
        "\u{1}",
    ] {
        let req = s
            .http
            .get(format!("{}/api/alerts", s.url))
            .header("authorization", auth);
        if let Ok(resp) = req.send().await {
            assert_eq!(resp.status(), 401, "{auth:?}");
        }
    }
    // Garbage bodies at the token endpoint and at a route without a body.
    let resp = s
        .http
        .post(format!("{}/{}/oauth2/v2.0/token", s.url, s.tenant))
        .body(vec![0xff, 0, 1, 2])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let resp = s
        .http
        .post(format!("{}/api/alerts", s.url))
        .bearer_auth(&token)
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 405);
    assert_mde_error(&resp.json().await.unwrap(), "MethodNotAllowed");

    let after = s.get("/api/audit?$count=true", Some(&token)).await.1["@odata.count"].clone();
    assert_eq!(before, after, "garbage changed nothing");
}

#[tokio::test]
async fn the_fuzz_corpus_replayed_through_the_live_server() {
    let corpus =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/odata_filter");
    let files: Vec<_> = std::fs::read_dir(&corpus)
        .expect("the fuzz corpus is committed")
        .map(|e| e.unwrap().path())
        .collect();
    assert!(
        files.len() >= 20,
        "corpus at {} is too small",
        corpus.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let b = &backends(dir.path())[0];
    let s = Server::start_with(b, &["--no-rate-limits"]);
    crate::harness::seed_alerts(b, &s.tenant, 0, 20).await;
    let token = s.token_with("Alert.Read.All").await;
    let client = &s.http;
    for f in &files {
        let bytes = std::fs::read(f).unwrap();
        let filter = String::from_utf8_lossy(&bytes);
        let resp = client
            .get(format!("{}/api/alerts", s.url))
            .query(&[("$filter", filter.as_ref())])
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        let st = resp.status().as_u16();
        let body: serde_json::Value = resp.json().await.unwrap_or(serde_json::Value::Null);
        assert!(st == 200 || st == 400, "{}: {st} {body}", f.display());
        if st == 400 {
            assert_mde_error(&body, "ODataError");
        }
    }
    assert!(
        !s.stderr().contains("panicked"),
        "a handler panicked: {}",
        s.stderr()
    );
}

#[tokio::test]
async fn correlation_ids_match_the_log_and_limits_answer_413_and_429() {
    let dir = tempfile::tempdir().unwrap();
    let b = &backends(dir.path())[0];
    let config = dir.path().join("rampart.toml");
    std::fs::write(&config, "[api]\nbody_limit_bytes = 1024\n[api.rate_limits.overrides.Default]\nper_minute = 3\nper_hour = 100\n").unwrap();
    let s = Server::start_opts(b, &["--config", config.to_str().unwrap()], &[]);
    let token = s.token_with("Alert.Read.All").await;
    let resp = s
        .http
        .get(format!("{}/api/alerts/does-not-exist", s.url))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let header = resp.headers()["x-correlation-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["target"], header);
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert!(
        s.stderr().contains(&header),
        "the correlation id is in the server log"
    );

    // Two more calls fit the budget of 3 per minute; the fourth is refused with Retry-After.
    for _ in 0..2 {
        assert_eq!(s.get("/api/alerts", Some(&token)).await.0, 200);
    }
    let resp = s
        .http
        .get(format!("{}/api/alerts", s.url))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 429);
    let wait: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait));
    assert_mde_error(&resp.json().await.unwrap(), "TooManyRequests");
    // Another app has its own budget.
    assert_eq!(
        s.get("/api/alerts", Some(&s.token_with("Alert.Read.All").await))
            .await
            .0,
        200
    );

    let big = format!("{{\"x\":\"{}\"}}", "a".repeat(4096));
    let resp = s
        .http
        .post(format!("{}/{}/oauth2/v2.0/token", s.url, s.tenant))
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 413, "over the body limit");
    let body: serde_json::Value = resp.json().await.unwrap();
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("larger"),
        "{body}"
    );
}
