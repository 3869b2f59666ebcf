//! What the benches that simulate a fleet of agents share: enrolling the devices over HTTP, and
//! reading latencies.

use anyhow::Context;
use serde_json::{Value, json};
use std::time::Duration;

/// Enrolls `n` devices with a fresh enrollment token, 64 at a time, as `bench-NNNNN.corp.example`;
/// returns each one's id and `Authorization` value.
pub async fn enroll_devices(
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
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

pub fn ms(d: Duration) -> String {
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
