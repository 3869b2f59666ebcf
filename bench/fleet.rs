//! What the benches that simulate a fleet of agents share: a server on a fresh data dir with
//! its devices enrolled over HTTP, waiting for the agents to connect, and reading latencies.

use crate::serve::{self, Served};
use anyhow::{Context, bail};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// A real `rampart serve` on a fresh data dir (removed when dropped), an app's token on it,
/// and `n` enrolled devices.
pub struct Fleet {
    pub server: Served,
    pub url: String,
    pub http: reqwest::Client,
    pub token: String,
    /// Each device's id and `Authorization` value.
    pub devices: Vec<(String, String)>,
    data: PathBuf,
}

impl Fleet {
    /// Starts the server, creates the app `name` with `roles`, and enrolls `n` devices. The
    /// client's requests time out after `timeout` (longer than any poll is held).
    pub async fn start(
        rampart: &str,
        name: &str,
        roles: &str,
        n: usize,
        timeout: Duration,
    ) -> anyhow::Result<Fleet> {
        let data = std::env::temp_dir().join(format!("rampart-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&data)?;
        let app = serve::create_app(rampart, &data, name, roles)?;
        let server = serve::serve(rampart, &data).await?;
        let url = server.url.clone();
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(usize::MAX)
            .timeout(timeout)
            .build()?;
        let token = serve::token(&http, &url, &app).await?;
        let t = Instant::now();
        let devices = enroll_devices(&http, &url, &token, n).await?;
        println!(
            "enrolled {} devices in {:.1} s",
            devices.len(),
            t.elapsed().as_secs_f64()
        );
        Ok(Fleet {
            server,
            url,
            http,
            token,
            devices,
            data,
        })
    }

    /// Waits (up to 5 minutes) until `connected` counts every device; returns how long it took.
    pub async fn wait_connected(&self, connected: &AtomicUsize) -> anyhow::Result<Duration> {
        let t = Instant::now();
        while connected.load(Ordering::Relaxed) < self.devices.len() {
            if t.elapsed() > Duration::from_secs(300) {
                bail!(
                    "only {} of {} agents connected",
                    connected.load(Ordering::Relaxed),
                    self.devices.len()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(t.elapsed())
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        // The server first: its data dir goes next.
        let _ = self.server.child.kill();
        let _ = self.server.child.wait();
        let _ = std::fs::remove_dir_all(&self.data);
    }
}

/// Enrolls `n` devices with a fresh enrollment token, 64 at a time, as `bench-NNNNN.corp.example`;
/// returns each one's id and `Authorization` value.
async fn enroll_devices(
    http: &reqwest::Client,
    url: &str,
    admin: &str,
    n: usize,
) -> anyhow::Result<Vec<(String, String)>> {
    let enrollment: Value = http
        .post(format!("{url}/api/enrollmentTokens"))
        .bearer_auth(admin)
        .json(&json!({ "name": "bench", "maxUses": n }))
        .send()
        .await?
        .json()
        .await?;
    let secret = enrollment["token"]
        .as_str()
        .with_context(|| format!("enrollment token: {enrollment}"))?
        .to_owned();
    let mut devices: Vec<(String, String)> = Vec::with_capacity(n);
    for chunk in (0..n).collect::<Vec<_>>().chunks(64) {
        let mut joins = Vec::new();
        for i in chunk {
            let (http, url, secret) = (http.clone(), url.to_owned(), secret.clone());
            let name = format!("bench-{i:05}.corp.example");
            joins.push(tokio::spawn(async move {
                let v: Value = http
                    .post(format!("{url}/agent/v1/enroll"))
                    .json(&json!({ "enrollmentToken": secret, "computerDnsName": name, "osPlatform": "Linux" }))
                    .send()
                    .await?
                    .json()
                    .await?;
                let id = v["deviceId"].as_str().with_context(|| format!("enroll: {v}"))?.to_owned();
                let auth = format!("Device {id}:{}", v["deviceSecret"].as_str().unwrap_or_default());
                anyhow::Ok((id, auth))
            }));
        }
        for j in joins {
            devices.push(j.await??);
        }
    }
    Ok(devices)
}

/// The `p` quantile of sorted durations.
fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

/// `p50 … p90 … p99 … max …` of some latencies (sorted here).
pub fn summary(latencies: &mut [Duration]) -> String {
    if latencies.is_empty() {
        return "none".into();
    }
    latencies.sort();
    format!(
        "p50 {}  p90 {}  p99 {}  max {}",
        ms(percentile(latencies, 0.5)),
        ms(percentile(latencies, 0.9)),
        ms(percentile(latencies, 0.99)),
        ms(*latencies.last().unwrap_or(&Duration::ZERO))
    )
}
