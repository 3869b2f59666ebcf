//! Talking to a running server from the CLI: an app token by client credentials, and answers
//! read as JSON or as the server's error.

use crate::cli::RemoteArgs;
use anyhow::{Context, bail};
use serde::de::DeserializeOwned;
use serde_json::Value;

/// An HTTP client, the server's base URL and an access token for it.
pub async fn login(
    server: &str,
    tenant: Option<&str>,
    args: &RemoteArgs,
) -> anyhow::Result<(reqwest::Client, String, String)> {
    let (Some(tenant), Some(id), Some(secret)) = (
        tenant,
        args.client_id.as_deref(),
        args.client_secret.as_deref(),
    ) else {
        bail!(
            "--server needs --tenant, --client-id and --client-secret (or RAMPART_CLIENT_ID / RAMPART_CLIENT_SECRET)"
        );
    };
    let server = server.trim_end_matches('/').to_owned();
    let http = reqwest::Client::new();
    let token: Value = http
        .post(format!("{server}/{tenant}/oauth2/v2.0/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", id),
            ("client_secret", secret),
            ("scope", &format!("{server}/.default")),
        ])
        .send()
        .await
        .with_context(|| format!("reaching {server}"))?
        .json()
        .await
        .context("reading the token response")?;
    let Some(access) = token["access_token"].as_str() else {
        bail!("the server refused the credentials: {token}");
    };
    Ok((http, server, access.to_owned()))
}

/// The answer's JSON body, or its status and MDE error message as the error.
pub async fn json_or_error<T: DeserializeOwned>(resp: reqwest::Response) -> anyhow::Result<T> {
    let status = resp.status();
    let body: Value = resp.json().await.context("reading the server's answer")?;
    if !status.is_success() {
        let message = body["error"]["message"].as_str().unwrap_or("no message");
        bail!("{status}: {message}");
    }
    serde_json::from_value(body).context("reading the server's answer")
}
