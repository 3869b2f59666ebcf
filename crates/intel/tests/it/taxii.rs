//! The TAXII client against a real local server: paging, the cursor, the Accept header,
//! authentication, and the ways a pull ends.

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use rampart_core::indicator::IndicatorType::*;
use rampart_intel::Defaults;
use rampart_intel::taxii::{Auth, Client, MEDIA_TYPE, TaxiiError};
use serde_json::json;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// What the server saw of one request.
#[derive(Clone, Debug)]
struct Seen {
    collection: String,
    query: HashMap<String, String>,
    accept: String,
    authorization: String,
}

type Log = Arc<Mutex<Vec<Seen>>>;

const BASIC: &str = "Basic dXNlcjpwYXNz"; // user:pass

fn indicator(id: &str, pattern: &str) -> serde_json::Value {
    json!({"type": "indicator", "spec_version": "2.1", "id": id, "pattern": pattern,
           "pattern_type": "stix", "created": "2024-01-01T00:00:00Z", "modified": "2024-01-01T00:00:00Z"})
}

async fn objects(
    State(log): State<Log>,
    Path(collection): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    let seen = Seen {
        collection: collection.clone(),
        query: query.clone(),
        accept: header("accept"),
        authorization: header("authorization"),
    };
    log.lock().unwrap().push(seen.clone());
    if seen.accept != MEDIA_TYPE {
        return (StatusCode::NOT_ACCEPTABLE, "wrong media type").into_response();
    }
    let taxii = [("content-type", MEDIA_TYPE)];
    match collection.as_str() {
        "c1" => {
            if seen.authorization != BASIC {
                return (StatusCode::UNAUTHORIZED, "{\"title\": \"who are you\"}").into_response();
            }
            match query.get("next").map(String::as_str) {
                None => (
                    [
                        ("content-type", MEDIA_TYPE),
                        ("X-TAXII-Date-Added-Last", "2024-01-01T00:00:01.000Z"),
                    ],
                    json!({"more": true, "next": "p2", "objects": [
                        indicator("indicator--1", "[domain-name:value = 'one.example.com']"),
                        {"type": "malware", "id": "malware--1", "name": "Evil", "is_family": true},
                    ]})
                    .to_string(),
                )
                    .into_response(),
                Some("p2") => (
                    [
                        ("content-type", MEDIA_TYPE),
                        ("X-TAXII-Date-Added-Last", "2024-01-01T00:00:02.000Z"),
                    ],
                    json!({"more": false, "objects": [
                        indicator("indicator--2", "[url:value = 'https://two.example.com/x']"),
                        indicator("indicator--3", "[domain-name:value = 'ONE.example.com']"),
                    ]})
                    .to_string(),
                )
                    .into_response(),
                Some(other) => {
                    (StatusCode::BAD_REQUEST, format!("no page {other}")).into_response()
                }
            }
        }
        "tok" if seen.authorization == "Bearer s3cret" => {
            (taxii, json!({"objects": []}).to_string()).into_response()
        }
        "tok" => (StatusCode::UNAUTHORIZED, "no").into_response(),
        // A broken server handing out the same `next` again and again.
        "loop" => (
            taxii,
            json!({"more": true, "next": "same", "objects": []}).to_string(),
        )
            .into_response(),
        // A server that never ends.
        "endless" => {
            let n: u64 = query.get("next").and_then(|n| n.parse().ok()).unwrap_or(0);
            (
                taxii,
                json!({"more": true, "next": (n + 1).to_string(), "objects": [
                    indicator(&format!("indicator--e{n}"), &format!("[domain-name:value = 'e{n}.example.com']"))
                ]})
                .to_string(),
            )
                .into_response()
        }
        // More, no `next`: paged by date instead.
        "bydate" => {
            let (last, more) = match query.get("added_after").map(String::as_str) {
                Some("2024-01-01T00:00:00Z") => ("2024-01-02T00:00:00Z", true),
                _ => ("2024-01-03T00:00:00Z", false),
            };
            (
                [("X-TAXII-Date-Added-Last", last)],
                json!({"more": more}).to_string(),
            )
                .into_response()
        }
        "broken" => (StatusCode::INTERNAL_SERVER_ERROR, "database\n   on fire").into_response(),
        "garbage" => (taxii, "{\"objects\": [}").into_response(),
        "empty" => StatusCode::NO_CONTENT.into_response(),
        _ => (StatusCode::NOT_FOUND, "no such collection").into_response(),
    }
}

/// Starts the server; returns its API root and the request log.
async fn server() -> (String, Log) {
    let log = Log::default();
    let app = Router::new()
        .route("/taxii2/api1/collections/{id}/objects/", get(objects))
        .with_state(log.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/taxii2/api1"), log)
}

fn basic() -> Auth {
    Auth::Basic {
        user: "user".into(),
        password: "pass".into(),
    }
}

#[tokio::test]
async fn pages_cursor_accept_and_auth() {
    let (root, log) = server().await;
    let client = Client::new(&root, "c1", basic()).unwrap();
    assert!(
        client
            .objects_url()
            .as_str()
            .ends_with("/taxii2/api1/collections/c1/objects/")
    );
    let pulled = client
        .pull(Some("2023-12-31T00:00:00Z"), &Defaults::default())
        .await
        .unwrap();
    assert!(pulled.complete);
    assert_eq!(pulled.pages, 2);
    assert_eq!(
        pulled.last_added.as_deref(),
        Some("2024-01-01T00:00:02.000Z")
    );
    assert_eq!(
        crate::values(&pulled.parsed),
        vec![
            (DomainName, "one.example.com".to_owned()),
            (Url, "https://two.example.com/x".to_owned())
        ]
    );
    // Duplicates are found across pages.
    assert_eq!(pulled.parsed.errors.len(), 1);
    assert_eq!(
        pulled.parsed.errors[0].reason,
        "duplicate of object indicator--1"
    );

    let seen = log.lock().unwrap().clone();
    assert_eq!(seen.len(), 2);
    for s in &seen {
        assert_eq!(s.accept, MEDIA_TYPE);
        assert_eq!(s.authorization, BASIC);
        assert_eq!(
            s.query.get("added_after").map(String::as_str),
            Some("2023-12-31T00:00:00Z")
        );
    }
    assert_eq!(seen[0].query.get("next"), None);
    assert_eq!(seen[1].query.get("next").map(String::as_str), Some("p2"));

    // Wrong credentials: the status and the body's start.
    let wrong = Auth::Basic {
        user: "user".into(),
        password: "nope".into(),
    };
    let e = Client::new(&root, "c1", wrong)
        .unwrap()
        .pull(None, &Defaults::default())
        .await
        .unwrap_err();
    match &e {
        TaxiiError::Status {
            status: 401, body, ..
        } => assert!(body.contains("who are you"), "{body}"),
        other => panic!("{other:?}"),
    }
    assert!(!e.to_string().contains("nope"));
}

#[tokio::test]
async fn bearer_tokens_and_empty_collections() {
    let (root, log) = server().await;
    let client = Client::new(&format!("{root}/"), "tok", Auth::Bearer("s3cret".into())).unwrap();
    let pulled = client.pull(None, &Defaults::default()).await.unwrap();
    assert!(pulled.complete && pulled.parsed.items.is_empty());
    // No header anywhere: the cursor stays (here: none).
    assert_eq!(pulled.last_added, None);
    assert_eq!(log.lock().unwrap()[0].authorization, "Bearer s3cret");
    assert!(log.lock().unwrap()[0].query.is_empty());

    let none = Client::new(&root, "tok", Auth::None).unwrap();
    assert!(matches!(
        none.pull(None, &Defaults::default()).await,
        Err(TaxiiError::Status { status: 401, .. })
    ));
    let empty = Client::new(&root, "empty", Auth::None).unwrap();
    let pulled = empty
        .pull(Some("2024-05-01T00:00:00Z"), &Defaults::default())
        .await
        .unwrap();
    assert_eq!(pulled.last_added.as_deref(), Some("2024-05-01T00:00:00Z"));
}

#[tokio::test]
async fn never_loops_forever() {
    let (root, log) = server().await;
    let looping = Client::new(&root, "loop", Auth::None).unwrap();
    let pulled = looping
        .pull(Some("2024-01-01T00:00:00Z"), &Defaults::default())
        .await
        .unwrap();
    assert!(!pulled.complete);
    assert_eq!(pulled.pages, 2, "the repeated next is not followed");
    assert_eq!(pulled.last_added.as_deref(), Some("2024-01-01T00:00:00Z"));

    let endless = Client::new(&root, "endless", Auth::None)
        .unwrap()
        .with_max_pages(3);
    let pulled = endless.pull(None, &Defaults::default()).await.unwrap();
    assert!(!pulled.complete);
    assert_eq!(pulled.pages, 3);
    assert_eq!(pulled.parsed.items.len(), 3);

    // Without `next`, the date header pages (and stops once the server says no more).
    log.lock().unwrap().clear();
    let bydate = Client::new(&root, "bydate", Auth::None).unwrap();
    let pulled = bydate
        .pull(Some("2024-01-01T00:00:00Z"), &Defaults::default())
        .await
        .unwrap();
    assert!(pulled.complete);
    assert_eq!(pulled.pages, 2);
    assert_eq!(pulled.last_added.as_deref(), Some("2024-01-03T00:00:00Z"));
    let seen = log.lock().unwrap().clone();
    assert_eq!(
        seen[1].query.get("added_after").map(String::as_str),
        Some("2024-01-02T00:00:00Z")
    );
    assert!(seen.iter().all(|s| s.collection == "bydate"));
}

#[tokio::test]
async fn errors_say_what_and_where() {
    let (root, _) = server().await;
    let pull = |c: &str| {
        let client = Client::new(&root, c, Auth::None).unwrap();
        async move { client.pull(None, &Defaults::default()).await.unwrap_err() }
    };
    match pull("broken").await {
        TaxiiError::Status { status, body, url } => {
            assert_eq!(status, 500);
            assert_eq!(body, "database on fire");
            assert!(url.ends_with("/collections/broken/objects/"), "{url}");
        }
        other => panic!("{other:?}"),
    }
    match pull("garbage").await {
        TaxiiError::Json { line, column, .. } => assert_eq!((line, column), (1, 14)),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        Client::new("not a url", "c", Auth::None),
        Err(TaxiiError::Url(_))
    ));
    assert!(matches!(
        Client::new("ftp://x.example.com/", "c", Auth::None),
        Err(TaxiiError::Url(_))
    ));
    // Nothing listens on port 9 of 127.0.0.1 here: a connection error, not a panic.
    let down = Client::new("http://127.0.0.1:9/api", "c", Auth::None).unwrap();
    assert!(matches!(
        down.pull(None, &Defaults::default()).await,
        Err(TaxiiError::Http { .. })
    ));
}
