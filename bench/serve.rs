//! The server under test, for the benches that drive a real `rampart serve`: an app created
//! with the CLI, the server started on a free port of a fresh data dir (and killed when
//! dropped), and the app's token, got as an MDE client gets it.

use anyhow::{Context, bail};
use serde_json::Value;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `rampart serve`, killed when dropped.
pub struct Served {
    pub child: Child,
    pub url: String,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `rampart apps create --json` on `data`: the app's JSON (tenant, client id and secret).
pub fn create_app(rampart: &str, data: &Path, name: &str, roles: &str) -> anyhow::Result<Value> {
    let out = Command::new(rampart)
        .args(["--data-dir", data.to_str().unwrap_or(".")])
        .args(["apps", "create", "--name", name, "--roles", roles, "--json"])
        .output()?;
    if !out.status.success() {
        bail!("apps create: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(serde_json::from_slice(&out.stdout)?)
}

/// Starts `rampart serve` on `data` (no rate limits, warnings only) on a free port and waits
/// until it answers `/healthz`.
pub async fn serve(rampart: &str, data: &Path) -> anyhow::Result<Served> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let child = Command::new(rampart)
        .args(["--data-dir", data.to_str().unwrap_or(".")])
        .args(["serve", "--no-rate-limits", "--listen"])
        .arg(format!("127.0.0.1:{port}"))
        .env("RAMPART_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {rampart}"))?;
    let served = Served {
        child,
        url: format!("http://127.0.0.1:{port}"),
    };
    let http = reqwest::Client::new();
    let started = Instant::now();
    while http
        .get(format!("{}/healthz", served.url))
        .send()
        .await
        .is_err()
    {
        if started.elapsed() > Duration::from_secs(60) {
            bail!("the server did not start");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(served)
}

/// A client-credentials token for `app` (the JSON `rampart apps create --json` prints).
pub async fn token(http: &reqwest::Client, url: &str, app: &Value) -> anyhow::Result<String> {
    let tenant = app["tenantId"].as_str().context("tenantId")?;
    let v: Value = http
        .post(format!("{url}/{tenant}/oauth2/v2.0/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", app["clientId"].as_str().context("clientId")?),
            (
                "client_secret",
                app["clientSecret"].as_str().context("clientSecret")?,
            ),
            ("scope", &format!("{url}/.default")),
        ])
        .send()
        .await?
        .json()
        .await?;
    Ok(v["access_token"]
        .as_str()
        .with_context(|| format!("token: {v}"))?
        .to_owned())
}
