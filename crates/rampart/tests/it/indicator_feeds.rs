//! Threat-intelligence feeds: `POST /api/indicators/feeds/{source}` and `rampart indicators
//! import`, with per-entry problems, idempotent re-import, `sync` expiry, and matching of what a
//! feed brought in.

use crate::harness::{Server, assert_mde_error, backends};
use serde_json::{Value, json};
use std::time::Duration;

const MD5: &str = "44d88612fea8a8f36de82e1278abb02f";
const SHA256: &str = "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f";

async fn post_feed(s: &Server, token: &str, source_and_query: &str, body: &str) -> (u16, Value) {
    let resp = s
        .http
        .post(format!("{}/api/indicators/feeds/{source_and_query}", s.url))
        .bearer_auth(token)
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// Active indicators as (type, value), sorted.
async fn active(s: &Server, token: &str) -> Vec<(String, String)> {
    let (st, v) = s.get("/api/indicators", Some(token)).await;
    assert_eq!(st, 200, "{v}");
    let mut out: Vec<(String, String)> = v["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["indicatorType"].as_str().unwrap().to_owned(),
                i["indicatorValue"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    out.sort();
    out
}

fn pair(t: &str, v: &str) -> (String, String) {
    (t.to_owned(), v.to_owned())
}

#[tokio::test]
async fn feeds_import_update_and_sync() {
    let dir = tempfile::tempdir().unwrap();
    for b in backends(dir.path()) {
        let s = Server::start_with(&b, &["--no-rate-limits"]);
        let token = s
            .token_with("Ti.ReadWrite.All,Alert.Read.All,Event.Write")
            .await;
        let list = format!(
            "# a plain list\n{MD5}\nevil.example\nhxxps://bad[.]example/dl/x.bin\n198.51.100.0/24\n\nnot a value!!\n{MD5}\n"
        );
        let (st, r) = post_feed(&s, &token, "blocklist?format=txt", &list).await;
        assert_eq!(st, 200, "{}: {r}", b.name);
        assert_eq!(r["source"], "blocklist");
        assert_eq!(r["created"], 4, "{}: {r}", b.name);
        assert_eq!(r["updated"], 0);
        assert_eq!(r["failed"], 2, "{}: {r}", b.name);
        let origins: Vec<&str> = r["problems"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["origin"].as_str().unwrap())
            .collect();
        assert_eq!(origins, ["line 7", "line 8"], "{}: {r}", b.name);
        assert!(
            r["problems"][1]["reason"]
                .as_str()
                .unwrap()
                .contains("line 2"),
            "the duplicate names the first: {r}"
        );
        let expected = vec![
            pair("DomainName", "evil.example"),
            pair("FileMd5", MD5),
            pair("IpAddress", "198.51.100.0/24"),
            pair("Url", "https://bad.example/dl/x.bin"),
        ];
        assert_eq!(active(&s, &token).await, expected, "{}", b.name);

        // The same feed again: updates, nothing new. Then a shorter one with sync: what it
        // no longer lists expires; another source's indicators are left alone.
        let (st, r) = post_feed(&s, &token, "blocklist?format=txt", &list).await;
        assert_eq!(st, 200);
        assert_eq!(
            (r["created"].as_u64(), r["updated"].as_u64()),
            (Some(0), Some(4)),
            "{r}"
        );
        let (st, r) = post_feed(&s, &token, "other", &format!("{SHA256}\n")).await;
        assert_eq!(st, 200, "format guessed from the content: {r}");
        assert_eq!(r["created"], 1);
        let (st, r) = post_feed(
            &s,
            &token,
            "blocklist?format=txt&sync=true",
            &format!("{MD5}\nevil.example\n"),
        )
        .await;
        assert_eq!(st, 200, "{r}");
        assert_eq!(r["updated"], 2, "{r}");
        assert_eq!(r["expired"], 2, "{}: {r}", b.name);
        assert_eq!(
            active(&s, &token).await,
            vec![
                pair("DomainName", "evil.example"),
                pair("FileMd5", MD5),
                pair("FileSha256", SHA256),
            ],
            "{}",
            b.name
        );

        // STIX: an OR of two comparisons is two indicators; an AND is reported, not dropped.
        let bundle = json!({"type": "bundle", "id": "bundle--1", "objects": [
            {"type": "indicator", "spec_version": "2.1", "id": "indicator--a1",
             "name": "C2 pair", "pattern_type": "stix", "confidence": 90,
             "valid_from": "2026-01-01T00:00:00Z",
             "pattern": "[ipv4-addr:value = '203.0.113.5'] OR [domain-name:value = 'c2.example']"},
            {"type": "indicator", "spec_version": "2.1", "id": "indicator--b2",
             "name": "Both", "pattern_type": "stix", "valid_from": "2026-01-01T00:00:00Z",
             "pattern": "[file:name = 'x.exe' AND file:size = 10]"}
        ]});
        let (st, r) = post_feed(&s, &token, "stix-feed?format=stix", &bundle.to_string()).await;
        assert_eq!(st, 200, "{r}");
        assert_eq!(r["created"], 2, "{}: {r}", b.name);
        assert_eq!(r["failed"], 1, "{r}");
        assert!(
            r["problems"][0]["origin"]
                .as_str()
                .unwrap()
                .contains("indicator--b2"),
            "{r}"
        );
        let (_, v) = s
            .get(
                "/api/indicators?$filter=indicatorValue%20eq%20'c2.example'",
                Some(&token),
            )
            .await;
        assert_eq!(v["value"][0]["severity"], "High", "confidence 90: {v}");
        assert_eq!(v["value"][0]["source"], "stix-feed");
        assert_eq!(v["value"][0]["title"], "C2 pair");

        // A feed's indicator matches like any other.
        s.import(&token, "DeviceNetworkEvents", &[json!({
            "Timestamp": time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).unwrap(),
            "DeviceId": "c".repeat(40), "DeviceName": "ws-c", "ActionType": "ConnectionSuccess",
            "RemoteIP": "192.0.2.80", "RemoteUrl": "https://www.evil.example/", "ReportId": 1})]).await;
        let mut titles = Vec::new();
        for _ in 0..100 {
            let (_, v) = s
                .get(
                    "/api/alerts?$filter=detectionSource%20eq%20'CustomTI'",
                    Some(&token),
                )
                .await;
            titles = v["value"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a["title"].clone())
                .collect();
            if !titles.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(titles.len(), 1, "{}: {titles:?}", b.name);

        // Bad requests: an unknown format, a body that is not the format at all.
        let (st, v) = post_feed(&s, &token, "x?format=yaml", "a").await;
        assert_eq!(st, 400, "{v}");
        assert_mde_error(&v, "InvalidInput");
        let (st, v) = post_feed(&s, &token, "x?format=stix", "{not json").await;
        assert_eq!(st, 400, "{v}");
        let (st, v) = post_feed(&s, &token, "x?format=txt&bogus=1", "a.example").await;
        assert_eq!(st, 400, "{v}");
        assert_mde_error(&v, "InvalidInput");
    }
}

/// The CLI imports straight into the data dir (the server stopped), reports problems with the
/// file and line, and re-imports idempotently; with --server it goes through the API.
#[tokio::test]
async fn cli_imports_feed_files() {
    let dir = tempfile::tempdir().unwrap();
    for b in backends(dir.path()) {
        std::fs::create_dir_all(&b.data_dir).unwrap();
        let csv = b.data_dir.join("iocs.csv");
        std::fs::write(
            &csv,
            format!(
                "IndicatorType,IndicatorValue,ExpirationTime,Action,Severity,Title,Description,RecommendedActions,RbacGroups,Category,MitreTechniques,GenerateAlert\n\
                 FileMd5,{MD5},,Block,High,Dropper,\"Seen in \"\"phish\"\" mail, twice\",,,,,true\n\
                 DomainName,not_a_domain!,,Block,High,Bad,d,,,,,true\n\
                 Url,https://evil.example/a,,Warn,Low,Lure,d,,,,,false\n"
            ),
        )
        .unwrap();
        let out = b.cli_raw(&[
            "indicators",
            "import",
            "--source",
            "partner-csv",
            csv.to_str().unwrap(),
        ]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{}: {stderr}", b.name);
        assert!(stdout.contains("2 created"), "{stdout}");
        assert!(stdout.contains("1 failed"), "{stdout}");
        assert!(
            stderr.contains("iocs.csv") && stderr.contains("line 3"),
            "{stderr}"
        );
        let again = b.cli(&[
            "indicators",
            "import",
            "--source",
            "partner-csv",
            "--format",
            "csv",
            csv.to_str().unwrap(),
        ]);
        assert!(again.contains("0 created, 2 updated"), "{again}");

        let s = Server::start_with(&b, &["--no-rate-limits"]);
        let token = s.token_with("Ti.ReadWrite.All").await;
        let (_, v) = s.get("/api/indicators", Some(&token)).await;
        let values: Vec<&str> = v["value"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["indicatorValue"].as_str().unwrap())
            .collect();
        assert_eq!(values.len(), 2, "{v}");
        let dropper = v["value"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["title"] == "Dropper")
            .unwrap();
        assert_eq!(dropper["description"], "Seen in \"phish\" mail, twice");
        assert_eq!(dropper["source"], "partner-csv");
        assert_eq!(dropper["severity"], "High");

        // Through the server, with an app's credentials.
        let app = b.create_app(None, "Ti.ReadWrite.All");
        let list = b.data_dir.join("more.txt");
        std::fs::write(&list, "203.0.113.99\n").unwrap();
        let out = b.cli(
            &[
                &["indicators", "import", "--source", "partner-list"][..],
                &app.remote_args(&s.url),
                &[list.to_str().unwrap()],
            ]
            .concat(),
        );
        assert!(out.contains("1 created"), "{out}");
        let (_, v) = s
            .get(
                "/api/indicators?$filter=indicatorValue%20eq%20'203.0.113.99'",
                Some(&token),
            )
            .await;
        assert_eq!(v["value"][0]["source"], "partner-list", "{v}");
    }
}

/// `rampart indicators sync --taxii`: pulls a collection, stores its indicators under the
/// source, and on the next run asks only for what was added after where it stopped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_pulls_taxii_collections_where_it_stopped() {
    use axum::extract::{Query, State};
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};
    type Seen = Arc<Mutex<Vec<Option<String>>>>;
    async fn objects(
        State(seen): State<Seen>,
        Query(q): Query<HashMap<String, String>>,
    ) -> axum::response::Response {
        use axum::response::IntoResponse;
        let after = q.get("added_after").cloned();
        seen.lock().unwrap().push(after.clone());
        let (pattern, id, added) = match after {
            None => (
                format!("[file:hashes.'SHA-256' = '{SHA256}']"),
                "indicator--01",
                "2026-11-01T00:00:00.000Z",
            ),
            Some(_) => (
                "[domain-name:value = 'taxii.example']".to_owned(),
                "indicator--02",
                "2026-11-02T00:00:00.000Z",
            ),
        };
        let body = json!({"more": false, "objects": [{"type": "indicator", "spec_version": "2.1",
            "id": id, "name": "from TAXII", "pattern_type": "stix", "pattern": pattern,
            "valid_from": "2026-01-01T00:00:00Z"}]});
        (
            [
                ("content-type", "application/taxii+json;version=2.1"),
                ("X-TAXII-Date-Added-Last", added),
            ],
            body.to_string(),
        )
            .into_response()
    }
    let seen: Seen = Arc::default();
    let app = axum::Router::new()
        .route("/api1/collections/c1/objects/", axum::routing::get(objects))
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let root = format!("http://{}/api1/", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let dir = tempfile::tempdir().unwrap();
    let b = backends(dir.path()).remove(0);
    let sync = |b: crate::harness::Backend, root: String| {
        tokio::task::spawn_blocking(move || {
            b.cli(&[
                "indicators",
                "sync",
                "--taxii",
                &root,
                "--collection",
                "c1",
                "--source",
                "taxii-feed",
            ])
        })
    };
    let first = sync(b.clone(), root.clone()).await.unwrap();
    assert!(first.contains("1 created"), "{first}");
    let second = sync(b.clone(), root.clone()).await.unwrap();
    assert!(second.contains("1 created"), "{second}");
    assert_eq!(
        *seen.lock().unwrap(),
        vec![None, Some("2026-11-01T00:00:00.000Z".to_owned())]
    );

    let s = Server::start_with(&b, &["--no-rate-limits"]);
    let token = s.token_with("Ti.ReadWrite.All").await;
    let (_, v) = s.get("/api/indicators", Some(&token)).await;
    let mut got: Vec<(String, String)> = v["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["indicatorValue"].as_str().unwrap().to_owned(),
                i["source"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    got.sort();
    assert_eq!(
        got,
        vec![
            (SHA256.to_owned(), "taxii-feed".to_owned()),
            ("taxii.example".to_owned(), "taxii-feed".to_owned())
        ]
    );
}
