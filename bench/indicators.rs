//! `indicators-bench`: the indicator-import benchmark of docs/BENCHMARKS.md.
//!
//! Starts the real `rampart serve` binary on an empty state store (nothing is seeded), creates an
//! app with `Ti.ReadWrite.All` through the store, and imports N generated indicators (a mix of
//! SHA-256, SHA-1, MD5, IPv4, IPv6, CIDR networks, domains and URLs) through
//! `POST /api/indicators/import` in 500-item calls from concurrent keep-alive HTTP/1.1 clients.
//! Then — in the same run, as the baseline — it sends the same bodies from the same clients to a
//! trivial axum handler that only parses the JSON.

use anyhow::{Context, bail};
use bytes::Bytes;
use clap::Parser;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use rampart_core::app::App;
use rampart_core::audit::AuditContext;
use rampart_core::{ClientId, Permission, TenantId};
use rampart_store::SqlStore;
use rampart_store::prelude::*;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

#[derive(Parser)]
struct Args {
    /// State store URL (sqlite://… or postgres://…); should hold no indicators yet
    #[arg(long)]
    database_url: String,
    /// Indicators to import
    #[arg(long, default_value_t = 1_000_000)]
    indicators: usize,
    /// Indicators per import call (MDE's maximum is 500)
    #[arg(long, default_value_t = 500)]
    batch: usize,
    /// Concurrent clients
    #[arg(long, default_value_t = 8)]
    clients: usize,
    /// The rampart binary (a release build)
    #[arg(long)]
    rampart: String,
    /// Skip the baseline (the JSON-parsing axum handler)
    #[arg(long)]
    no_baseline: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let store = SqlStore::connect(&args.database_url).await?;
    let tenant = store.ensure_default_tenant().await?.id;
    let (client_id, secret) = bench_app(&store, tenant).await?;
    drop(store);

    let started = Instant::now();
    let bodies = Arc::new(bodies(args.indicators, args.batch));
    let total_bytes: usize = bodies.iter().map(|(b, _)| b.len()).sum();
    eprintln!(
        "generated {} indicators in {} bodies ({:.0} MiB) in {:.1}s",
        args.indicators,
        bodies.len(),
        total_bytes as f64 / 1048576.0,
        started.elapsed().as_secs_f64()
    );

    let mut server = spawn_server(&args)?;
    let result = run(&args, &server, tenant, client_id, &secret, bodies.clone()).await;
    let _ = server.child.kill();
    let _ = server.child.wait();
    result?;

    if !args.no_baseline {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let app = axum::Router::new()
            .route(
                "/import",
                axum::routing::post(|body: Bytes| async move {
                    match serde_json::from_slice::<serde_json::Value>(&body) {
                        Ok(v) => {
                            let n = v["Indicators"].as_array().map_or(0, Vec::len);
                            (axum::http::StatusCode::OK, format!("{{\"received\":{n}}}"))
                        }
                        Err(e) => (axum::http::StatusCode::BAD_REQUEST, e.to_string()),
                    }
                }),
            )
            .layer(axum::extract::DefaultBodyLimit::max(16 * 1024 * 1024));
        let srv = tokio::spawn(async move { axum::serve(listener, app).await });
        let base = load(&format!("http://{addr}/import"), None, bodies, args.clients).await;
        println!("baseline (axum handler parsing the JSON): {base}");
        srv.abort();
    }
    Ok(())
}

async fn bench_app(store: &SqlStore, tenant: TenantId) -> anyhow::Result<(ClientId, String)> {
    let now = time::OffsetDateTime::now_utc();
    let app = App {
        tenant_id: tenant,
        client_id: ClientId::new_random(),
        name: "indicators-bench".into(),
        roles: vec![Permission::TiReadWriteAll],
        created_time: now,
        secret_updated_time: now,
    };
    let secret = rampart_api::auth::secret::generate();
    let hash = rampart_api::auth::secret::hash(&secret).map_err(|e| anyhow::anyhow!("{e}"))?;
    store
        .create_app(&AuditContext::system("bench"), &app, &hash)
        .await?;
    Ok((app.client_id, secret))
}

/// splitmix64: spreads consecutive numbers over all bits.
fn mix(n: u64) -> u64 {
    let mut x = n.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// Indicator `n` of the feed: unique value, a type mix like a threat-intel feed's.
fn indicator(n: u64) -> serde_json::Value {
    let h = mix(n);
    let h2 = mix(h);
    let hex = |words: usize| -> String {
        (0..words as u64)
            .map(|w| format!("{:016x}", mix(h ^ w.wrapping_mul(0x1234_5678_9abc_def1))))
            .collect()
    };
    // Unique per n: the low bits of n go into every value.
    let (ty, value, action) = match h % 100 {
        0..30 => ("FileSha256", hex(4), "BlockAndRemediate"),
        30..45 => ("FileSha1", format!("{}{n:08x}", &hex(2)[..32]), "Block"),
        45..55 => ("FileMd5", format!("{}{n:08x}", &hex(2)[..24]), "Audit"),
        55..70 => (
            "IpAddress",
            // 11.0.0.0/8 and up: public, never internal.
            format!(
                "{}.{}.{}.{}",
                11 + (n >> 24),
                (n >> 16) & 255,
                (n >> 8) & 255,
                n & 255
            ),
            "Block",
        ),
        70..74 => (
            "IpAddress",
            format!("2001:db8:{:x}:{:x}::{:x}", n >> 16, n & 0xffff, h2 & 0xffff),
            "Block",
        ),
        74..78 => (
            "IpAddress",
            if n.is_multiple_of(2) {
                format!("{}.{}.{}.0/24", 60 + (n >> 16), (n >> 8) & 255, n & 255)
            } else {
                format!("2001:db8:{:x}:{:x}::/64", n >> 16, n & 0xffff)
            },
            "Warn",
        ),
        78..92 => (
            "DomainName",
            format!("c2-{n:x}-{:x}.example{}.com", h2 & 0xffffff, h % 50),
            "Block",
        ),
        _ => (
            "Url",
            format!(
                "https://cdn{}.example.net/{:x}/payload-{n}.bin",
                h % 20,
                h2 & 0xffff_ffff
            ),
            "Block",
        ),
    };
    let severity = ["Informational", "Low", "Medium", "High"][(h2 % 4) as usize];
    let mut v = serde_json::json!({
        "indicatorValue": value,
        "indicatorType": ty,
        "action": action,
        "title": format!("Feed item {n}"),
        "description": "Observed in a commodity malware campaign; imported from the threat-intel feed.",
        "severity": severity,
        "externalID": format!("feed-{n}"),
        "application": "ThreatFeed",
        "recommendedActions": "Isolate the device and investigate.",
    });
    if action == "Audit" {
        v["generateAlert"] = serde_json::Value::Bool(true);
    }
    if h2.is_multiple_of(2) {
        v["expirationTime"] = serde_json::Value::String("2099-12-31T00:00:00Z".into());
    }
    v
}

/// The request bodies, each with the number of indicators it carries.
fn bodies(n: usize, batch: usize) -> Vec<(Bytes, usize)> {
    (0..n)
        .step_by(batch)
        .map(|start| {
            let items: Vec<serde_json::Value> = (start..(start + batch).min(n))
                .map(|i| indicator(i as u64))
                .collect();
            let len = items.len();
            let body = serde_json::to_vec(&serde_json::json!({ "Indicators": items }));
            (Bytes::from(body.expect("JSON of generated values")), len)
        })
        .collect()
}

struct Server {
    child: Child,
    url: String,
}

fn spawn_server(args: &Args) -> anyhow::Result<Server> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let data = std::env::temp_dir().join(format!("rampart-indicators-bench-{port}"));
    let child = Command::new(&args.rampart)
        .args([
            "--data-dir",
            data.to_str().unwrap_or("."),
            "--database-url",
            &args.database_url,
            "serve",
            "--no-rate-limits",
            "--listen",
        ])
        .arg(format!("127.0.0.1:{port}"))
        .env("RAMPART_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {}", args.rampart))?;
    Ok(Server {
        child,
        url: format!("http://127.0.0.1:{port}"),
    })
}

type HttpClient = Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;

fn client(clients: usize) -> HttpClient {
    Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(clients * 2)
        .build_http()
}

async fn send(
    http: &HttpClient,
    method: hyper::Method,
    url: &str,
    token: Option<&str>,
    body: Bytes,
) -> anyhow::Result<(u16, Bytes)> {
    let mut req = hyper::Request::builder().method(method).uri(url);
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    if !body.is_empty() {
        req = req.header("content-type", "application/json");
    }
    let resp = http.request(req.body(Full::new(body))?).await?;
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await?.to_bytes();
    Ok((status, body))
}

async fn run(
    args: &Args,
    server: &Server,
    tenant: TenantId,
    client_id: ClientId,
    secret: &str,
    bodies: Arc<Vec<(Bytes, usize)>>,
) -> anyhow::Result<()> {
    let http = client(args.clients);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !matches!(
        send(
            &http,
            hyper::Method::GET,
            &format!("{}/readyz", server.url),
            None,
            Bytes::new()
        )
        .await,
        Ok((200, _))
    ) {
        if Instant::now() > deadline {
            bail!("server did not become ready");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let form = format!(
        "grant_type=client_credentials&client_id={client_id}&client_secret={secret}&scope={}/.default",
        server.url
    );
    let req = hyper::Request::post(format!("{}/{tenant}/oauth2/v2.0/token", server.url))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Full::new(Bytes::from(form)))?;
    let resp = http.request(req).await?;
    let v: serde_json::Value =
        serde_json::from_slice(&resp.into_body().collect().await?.to_bytes())?;
    let token = v["access_token"]
        .as_str()
        .context("no access_token in the token response")?
        .to_owned();

    let (_, before) = send(
        &http,
        hyper::Method::GET,
        &format!("{}/api/indicators?$count=true&$top=0", server.url),
        Some(&token),
        Bytes::new(),
    )
    .await?;
    let before: serde_json::Value = serde_json::from_slice(&before)?;
    if before["@odata.count"].as_i64() != Some(0) {
        bail!(
            "the store holds indicators already ({}); use an empty one",
            before["@odata.count"]
        );
    }

    let res = load(
        &format!("{}/api/indicators/import", server.url),
        Some(token.clone()),
        bodies,
        args.clients,
    )
    .await;
    println!("rampart import: {res}");

    let counted = Instant::now();
    let (_, after) = send(
        &http,
        hyper::Method::GET,
        &format!("{}/api/indicators?$count=true&$top=0", server.url),
        Some(&token),
        Bytes::new(),
    )
    .await?;
    let after: serde_json::Value = serde_json::from_slice(&after)?;
    println!(
        "stored: {} active indicators (counted in {:.2}s)",
        after["@odata.count"],
        counted.elapsed().as_secs_f64()
    );
    if after["@odata.count"].as_u64() != Some(args.indicators as u64) || res.failed_items > 0 {
        bail!("not every indicator was stored");
    }
    Ok(())
}

struct LoadResult {
    calls: u64,
    errors: u64,
    failed_items: u64,
    indicators: u64,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

impl std::fmt::Display for LoadResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut l = self.latencies.clone();
        l.sort();
        let pct = |p: f64| {
            l.get(((l.len() as f64 * p) as usize).min(l.len().saturating_sub(1)))
                .copied()
                .unwrap_or_default()
        };
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let secs = self.elapsed.as_secs_f64();
        write!(
            f,
            "{:.0} indicators/s ({} in {:.1}s), {:.0} calls/s, p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms per call, {} failed calls, {} failed items",
            self.indicators as f64 / secs,
            self.indicators,
            secs,
            self.calls as f64 / secs,
            ms(pct(0.50)),
            ms(pct(0.99)),
            ms(l.last().copied().unwrap_or_default()),
            self.errors,
            self.failed_items
        )
    }
}

/// Sends every body once, `clients` at a time.
async fn load(
    url: &str,
    token: Option<String>,
    bodies: Arc<Vec<(Bytes, usize)>>,
    clients: usize,
) -> LoadResult {
    let http = client(clients);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (http, bodies, token, next, url) = (
            http.clone(),
            bodies.clone(),
            token.clone(),
            next.clone(),
            url.to_owned(),
        );
        tasks.push(tokio::spawn(async move {
            let (mut lat, mut errors, mut failed, mut sent) = (Vec::new(), 0u64, 0u64, 0u64);
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some((body, items)) = bodies.get(i) else {
                    break;
                };
                let t = Instant::now();
                match send(
                    &http,
                    hyper::Method::POST,
                    &url,
                    token.as_deref(),
                    body.clone(),
                )
                .await
                {
                    Ok((200, resp)) => {
                        // Count the items the server reports as failed (rampart only).
                        let text = String::from_utf8_lossy(&resp);
                        failed += text.matches("\"isFailed\":true").count() as u64;
                        sent += *items as u64;
                    }
                    Ok((status, resp)) => {
                        errors += 1;
                        if errors <= 3 {
                            eprintln!("{status}: {}", String::from_utf8_lossy(&resp));
                        }
                    }
                    Err(e) => {
                        errors += 1;
                        if errors <= 3 {
                            eprintln!("request failed: {e}");
                        }
                    }
                }
                lat.push(t.elapsed());
            }
            (lat, errors, failed, sent)
        }));
    }
    let mut res = LoadResult {
        calls: 0,
        errors: 0,
        failed_items: 0,
        indicators: 0,
        elapsed: Duration::ZERO,
        latencies: Vec::new(),
    };
    for t in tasks {
        if let Ok((lat, errors, failed, sent)) = t.await {
            res.calls += lat.len() as u64;
            res.latencies.extend(lat);
            res.errors += errors;
            res.failed_items += failed;
            res.indicators += sent;
        }
    }
    res.elapsed = started.elapsed();
    res
}
