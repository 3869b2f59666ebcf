//! `api-bench`: the alert-listing load benchmark of docs/BENCHMARKS.md.
//!
//! Seeds a state store with N synthetic alerts (once; reused when already there), starts the real
//! `rampart serve` binary on it, and drives it from 32 concurrent keep-alive HTTP/1.1 clients:
//! the first page of the benchmark query; then the same number of pages from the start and from
//! the end of the result (reached by following `@odata.nextLink`: keyset paging should make depth
//! free); then every page from the 50th on; then — in the same run, as the ceiling — a static
//! axum handler.

use anyhow::{Context, bail};
use bytes::Bytes;
use clap::Parser;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use rampart_core::app::App;
use rampart_core::audit::AuditContext;
use rampart_core::{ClientId, Permission, TenantId};
use rampart_store::SqlStore;
use rampart_store::prelude::*;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Parser)]
struct Args {
    /// State store URL (sqlite://… or postgres://…)
    #[arg(long)]
    database_url: String,
    /// Alerts to seed
    #[arg(long, default_value_t = 1_000_000)]
    alerts: u64,
    /// Seconds per load phase
    #[arg(long, default_value_t = 15)]
    seconds: u64,
    /// Concurrent clients
    #[arg(long, default_value_t = 32)]
    clients: usize,
    /// The rampart binary (a release build)
    #[arg(long)]
    rampart: String,
}

const QUERY: &str = "$top=100&$filter=severity%20eq%20'High'%20and%20status%20ne%20'Resolved'&$orderby=alertCreationTime%20desc";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let store = SqlStore::connect(&args.database_url).await?;
    let tenant = store.ensure_default_tenant().await?.id;
    seed(&store, tenant, args.alerts).await?;
    let (client_id, secret) = bench_app(&store, tenant).await?;
    drop(store);

    let mut server = spawn_server(&args)?;
    let result = run(&args, &mut server, tenant, client_id, &secret).await;
    let _ = server.child.kill();
    let _ = server.child.wait();
    result
}

async fn seed(store: &SqlStore, tenant: TenantId, n: u64) -> anyhow::Result<()> {
    let all = rampart_core::odata::QueryOptions::parse(
        &[
            ("$count".into(), "true".into()),
            ("$top".into(), "0".into()),
        ],
        &rampart_core::alert::ALERTS,
    )?;
    let have = store
        .list(
            tenant,
            rampart_store::Collection::of::<rampart_core::alert::Alert>(),
            &all,
            None,
        )
        .await?
        .count
        .unwrap_or(0) as u64;
    if have >= n {
        eprintln!("store holds {have} alerts already");
        return Ok(());
    }
    let started = Instant::now();
    let now = time::OffsetDateTime::now_utc();
    let ctx = AuditContext::system("bench-seed");
    // The synthetic alerts share 500 devices over 90 days: correlated, they would chain into a
    // few huge incidents, which is not what the paging benchmark measures. One incident each.
    store
        .set_correlation_policy(
            &ctx,
            tenant,
            &rampart_core::correlation::CorrelationPolicy {
                window_hours: 24,
                link_by: Vec::new(),
            },
        )
        .await?;
    const BATCH: u64 = 20_000;
    let mut i = have;
    while i < n {
        let end = (i + BATCH).min(n);
        let alerts: Vec<_> = (i..end)
            .map(|k| rampart_core::alert::synthetic(k, tenant, now, 90 * 86_400))
            .collect();
        store.insert_alerts(&ctx, tenant, &alerts).await?;
        i = end;
        eprint!(
            "\rseeded {i}/{n} alerts ({:.0}/s)   ",
            i as f64 / started.elapsed().as_secs_f64()
        );
    }
    eprintln!();
    Ok(())
}

async fn bench_app(store: &SqlStore, tenant: TenantId) -> anyhow::Result<(ClientId, String)> {
    let now = time::OffsetDateTime::now_utc();
    let app = App {
        tenant_id: tenant,
        client_id: ClientId::new_random(),
        name: "bench".into(),
        roles: vec![Permission::AlertRead],
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

struct Server {
    child: Child,
    url: String,
}

fn spawn_server(args: &Args) -> anyhow::Result<Server> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let data = std::env::temp_dir().join(format!("rampart-bench-{port}"));
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

type HttpClient = Client<hyper_util::client::legacy::connect::HttpConnector, Empty<Bytes>>;

async fn get(client: &HttpClient, url: &str, token: Option<&str>) -> anyhow::Result<(u16, Bytes)> {
    let mut req = hyper::Request::get(url);
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let resp = client.request(req.body(Empty::new())?).await?;
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await?.to_bytes();
    Ok((status, body))
}

async fn run(
    args: &Args,
    server: &mut Server,
    tenant: TenantId,
    client_id: ClientId,
    secret: &str,
) -> anyhow::Result<()> {
    let http: HttpClient = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(args.clients * 2)
        .build_http();
    // Wait for the server.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !matches!(
        get(&http, &format!("{}/readyz", server.url), None).await,
        Ok((200, _))
    ) {
        if Instant::now() > deadline {
            bail!("server did not become ready");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let token = token(&server.url, tenant, client_id, secret).await?;

    let first = format!("{}/api/alerts?{QUERY}", server.url);
    // Walk the whole result once by following nextLink, keeping every page's URL and latency.
    let mut pages: Vec<(String, Duration)> = Vec::new();
    let mut url = first.clone();
    let walk_started = Instant::now();
    loop {
        let t = Instant::now();
        let (status, body) = get(&http, &url, Some(&token)).await?;
        if status != 200 {
            bail!("GET {url}: {status} {}", String::from_utf8_lossy(&body));
        }
        pages.push((url.clone(), t.elapsed()));
        let v: serde_json::Value = serde_json::from_slice(&body)?;
        match v["@odata.nextLink"].as_str() {
            Some(next) => url = next.to_owned(),
            None => break,
        }
    }
    let walk = walk_started.elapsed();
    let n = pages.len();
    println!(
        "full walk: {n} pages of 100 in {:.2}s ({:.1} ms/page, one client)",
        walk.as_secs_f64(),
        walk.as_secs_f64() * 1000.0 / n as f64
    );
    // Keyset paging means depth costs nothing: compare equal numbers of pages from both ends.
    let band = (n / 4).clamp(1, 48);
    let median = |v: &[(String, Duration)]| {
        let mut l: Vec<Duration> = v.iter().map(|p| p.1).collect();
        l.sort();
        l[l.len() / 2].as_secs_f64() * 1000.0
    };
    println!(
        "one client, median latency: pages 2-{} {:.2} ms, last {band} pages {:.2} ms",
        band + 1,
        median(&pages[1.min(n - 1)..(band + 1).min(n)]),
        median(&pages[n - band..])
    );
    let urls = |range: std::ops::Range<usize>| -> Vec<String> {
        pages[range].iter().map(|p| p.0.clone()).collect()
    };
    let shallow = urls(1.min(n - 1)..(band + 1).min(n));
    let deepest = urls(n - band..n);
    let deep = if n > 50 {
        urls(49..n)
    } else {
        vec![first.clone()]
    };

    let phase = Duration::from_secs(args.seconds);
    let run_phase = |urls: Vec<String>| load(&http, urls, Some(token.clone()), args.clients, phase);
    println!("first page: {}", run_phase(vec![first.clone()]).await);
    println!("pages 2-{}: {}", band + 1, run_phase(shallow).await);
    println!("last {band} pages: {}", run_phase(deepest).await);
    println!("deep pages (50+): {}", run_phase(deep).await);

    // The ceiling: a static axum handler on the same machine, same client, same concurrency.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let app =
        axum::Router::new().route("/static", axum::routing::get(|| async { "{\"value\":[]}" }));
    let srv = tokio::spawn(async move { axum::serve(listener, app).await });
    let base_res = load(
        &http,
        vec![format!("http://{addr}/static")],
        None,
        args.clients,
        phase,
    )
    .await;
    println!("static axum handler: {base_res}");
    srv.abort();
    Ok(())
}

async fn token(
    base: &str,
    tenant: TenantId,
    client_id: ClientId,
    secret: &str,
) -> anyhow::Result<String> {
    let body = format!(
        "grant_type=client_credentials&client_id={client_id}&client_secret={secret}&scope={base}/.default"
    );
    let client: Client<_, http_body_util::Full<Bytes>> =
        Client::builder(TokioExecutor::new()).build_http();
    let req = hyper::Request::post(format!("{base}/{tenant}/oauth2/v2.0/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(http_body_util::Full::new(Bytes::from(body)))?;
    let resp = client.request(req).await?;
    let bytes = resp.into_body().collect().await?.to_bytes();
    let v: serde_json::Value = serde_json::from_slice(&bytes)?;
    v["access_token"]
        .as_str()
        .map(str::to_owned)
        .context("no access_token in the token response")
}

struct LoadResult {
    requests: u64,
    errors: u64,
    elapsed: Duration,
    latencies: Vec<Duration>,
    bytes: u64,
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
        write!(
            f,
            "{:.0} req/s, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms, {} requests, {} errors, {:.0} KiB/response",
            self.requests as f64 / self.elapsed.as_secs_f64(),
            ms(pct(0.50)),
            ms(pct(0.99)),
            ms(l.last().copied().unwrap_or_default()),
            self.requests,
            self.errors,
            self.bytes as f64 / self.requests.max(1) as f64 / 1024.0
        )
    }
}

async fn load(
    http: &HttpClient,
    urls: Vec<String>,
    token: Option<String>,
    clients: usize,
    phase: Duration,
) -> LoadResult {
    let urls = Arc::new(urls);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let (http, urls, token) = (http.clone(), urls.clone(), token.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let (mut errors, mut bytes, mut i) = (0u64, 0u64, c);
            while started.elapsed() < phase {
                let url = &urls[i % urls.len()];
                i += clients;
                let t = Instant::now();
                match get(&http, url, token.as_deref()).await {
                    Ok((200, body)) => bytes += body.len() as u64,
                    _ => errors += 1,
                }
                lat.push(t.elapsed());
            }
            (lat, errors, bytes)
        }));
    }
    let mut res = LoadResult {
        requests: 0,
        errors: 0,
        elapsed: Duration::ZERO,
        latencies: Vec::new(),
        bytes: 0,
    };
    for t in tasks {
        if let Ok((lat, errors, bytes)) = t.await {
            res.requests += lat.len() as u64;
            res.latencies.extend(lat);
            res.errors += errors;
            res.bytes += bytes;
        }
    }
    res.elapsed = started.elapsed();
    res
}
