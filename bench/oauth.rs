//! Getting an app's token from the server under test, as an MDE client does.

use anyhow::Context;
use serde_json::Value;

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
