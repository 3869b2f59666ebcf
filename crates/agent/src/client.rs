//! The HTTP client of the agent routes: enrollment, and posting one spooled batch.

use crate::error::{Error, Result};
use crate::tls::{self, Fingerprint};
use rampart_proto::command::{
    CommandUpdate, PackageAck, PollRequest, PollResponse, ResultAck, UpdateAck,
};
use rampart_proto::enforcement::EnforcementSet;
use rampart_proto::enroll::{EnrollRequest, EnrollResponse};
use rampart_proto::error::ErrorBody;
use rampart_proto::telemetry::BatchAck;
use std::time::Duration;

/// Time allowed to open a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Time allowed for a whole request, body included.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest error body kept in a message.
const MAX_ERROR_TEXT: usize = 500;
/// Longest an investigation package upload may take (packages run to hundreds of MB).
const UPLOAD_TIMEOUT: Duration = Duration::from_secs(600);

/// A client of one Rampart server.
#[derive(Clone, Debug)]
pub struct ServerClient {
    http: reqwest::Client,
    base: String,
}

/// What became of a request to the agent routes.
#[derive(Clone, Debug, PartialEq)]
pub enum Reply<T> {
    /// 2xx, with the answer read.
    Done(T),
    /// Worth retrying: network error, unreadable answer, 408, 429 or 5xx. `status` is absent
    /// when no answer came; `retry_after` is the server's `Retry-After`, when it gave one.
    Retry {
        reason: String,
        status: Option<u16>,
        retry_after: Option<Duration>,
    },
    /// Another 4xx: asking again the same way will not help.
    Refused { status: u16, reason: String },
}

/// Extra time a poll's request gets beyond the wait the server may hold it for.
const POLL_MARGIN: Duration = Duration::from_secs(15);

impl ServerClient {
    /// A client of `server` (`http://…` or `https://…`); with `fingerprint`, TLS accepts only
    /// the certificate with that SHA-256.
    pub fn new(server: &str, fingerprint: Option<Fingerprint>) -> Result<ServerClient> {
        let base = server.trim().trim_end_matches('/').to_owned();
        let url = reqwest::Url::parse(&base)
            .map_err(|e| Error::Config(format!("server URL '{base}': {e}")))?;
        match (url.scheme(), fingerprint) {
            ("https", _) | ("http", None) => {}
            ("http", Some(_)) => {
                return Err(Error::Config(
                    "a server fingerprint needs an https:// server URL".into(),
                ));
            }
            (other, _) => {
                return Err(Error::Config(format!(
                    "server URL: scheme '{other}' is not http or https"
                )));
            }
        }
        let mut builder = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .user_agent(concat!("rampart-agent/", env!("CARGO_PKG_VERSION")));
        if let Some(pin) = fingerprint {
            builder = builder.use_preconfigured_tls(tls::pinned_config(pin)?);
        }
        let http = builder
            .build()
            .map_err(|e| Error::Config(format!("HTTP client: {e}")))?;
        Ok(ServerClient { http, base })
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// `POST /agent/v1/enroll`.
    pub async fn enroll(&self, req: &EnrollRequest) -> Result<EnrollResponse> {
        let url = format!("{}{}", self.base, rampart_proto::ENROLL_PATH);
        let resp = self
            .http
            .post(&url)
            .json(req)
            .send()
            .await
            .map_err(|e| Error::Network(error_chain(&e)))?;
        let status = resp.status();
        let body = resp
            .bytes()
            .await
            .map_err(|e| Error::Network(error_chain(&e)))?;
        if status.is_success() {
            return serde_json::from_slice(&body).map_err(|e| {
                Error::Network(format!(
                    "the enrollment answer is not what was expected: {e}"
                ))
            });
        }
        Err(Error::Refused {
            status: status.as_u16(),
            message: error_text(&body),
        })
    }

    /// `POST /agent/v1/commands/poll`: the device's next commands, waiting up to
    /// `req.wait_seconds` for one.
    pub async fn poll(&self, authorization: &str, req: &PollRequest) -> Reply<PollResponse> {
        let timeout = Duration::from_secs(req.wait_seconds.into()) + POLL_MARGIN;
        self.post_json(
            rampart_proto::COMMANDS_POLL_PATH,
            authorization,
            req,
            timeout,
        )
        .await
    }

    /// `POST /agent/v1/commands/{id}`: the progress or the result of a command.
    pub async fn update(&self, authorization: &str, update: &CommandUpdate) -> Reply<UpdateAck> {
        let path = rampart_proto::command_update_path(&update.command_id);
        self.post_json(&path, authorization, update, REQUEST_TIMEOUT)
            .await
    }

    /// `PUT /agent/v1/commands/{id}/package`: the investigation package of a command.
    pub async fn upload_package(
        &self,
        authorization: &str,
        command_id: &str,
        package: Vec<u8>,
    ) -> Reply<PackageAck> {
        let path = rampart_proto::package_upload_path(command_id);
        let request = self
            .http
            .put(format!("{}{path}", self.base))
            .header(reqwest::header::AUTHORIZATION, authorization)
            .header(reqwest::header::CONTENT_TYPE, "application/gzip")
            .timeout(UPLOAD_TIMEOUT)
            .body(package);
        send(request).await
    }

    /// `PUT /agent/v1/commands/{id}/results/{index}`: the result of one live response command
    /// (a script transcript, a file), streamed from `body`.
    pub async fn upload_result(
        &self,
        authorization: &str,
        command_id: &str,
        index: u32,
        content_type: &str,
        body: reqwest::Body,
    ) -> Reply<ResultAck> {
        let path = rampart_proto::live_response_result_path(command_id, index);
        let request = self
            .http
            .put(format!("{}{path}", self.base))
            .header(reqwest::header::AUTHORIZATION, authorization)
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .timeout(UPLOAD_TIMEOUT)
            .body(body);
        send(request).await
    }

    /// `GET /agent/v1/library/{sha256}` into `out`, at most `max` bytes; the bytes written.
    pub async fn download_library_file(
        &self,
        authorization: &str,
        sha256: &str,
        out: &mut (impl std::io::Write + Send),
        max: u64,
    ) -> Reply<u64> {
        let path = rampart_proto::library_content_path(sha256);
        let mut resp = match self
            .http
            .get(format!("{}{path}", self.base))
            .header(reqwest::header::AUTHORIZATION, authorization)
            .timeout(UPLOAD_TIMEOUT)
            .send()
            .await
        {
            Ok(r) => r,
            Err(e) => return unanswered(&e),
        };
        let status = resp.status().as_u16();
        if !(200..300).contains(&status) {
            let retry_after = retry_after(resp.headers());
            let body = resp.bytes().await.unwrap_or_default();
            return not_done(status, retry_after, &body);
        }
        let mut written = 0u64;
        loop {
            let chunk = match resp.chunk().await {
                Ok(Some(c)) => c,
                Ok(None) => break,
                Err(e) => {
                    return Reply::Retry {
                        reason: format!("the download broke off: {}", error_chain(&e)),
                        status: Some(status),
                        retry_after: None,
                    };
                }
            };
            written += chunk.len() as u64;
            if written > max {
                return Reply::Refused {
                    status,
                    reason: format!("the file is larger than {max} bytes"),
                };
            }
            if let Err(e) = out.write_all(&chunk) {
                return Reply::Refused {
                    status,
                    reason: format!("writing the download: {e}"),
                };
            }
        }
        Reply::Done(written)
    }

    async fn post_json<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        authorization: &str,
        body: &impl serde::Serialize,
        timeout: Duration,
    ) -> Reply<T> {
        let request = self
            .http
            .post(format!("{}{path}", self.base))
            .header(reqwest::header::AUTHORIZATION, authorization)
            .timeout(timeout)
            .json(body);
        send(request).await
    }

    /// `GET /agent/v1/indicators`: the set the device enforces with its ETag, or `None` when
    /// it is still the one `etag` names.
    pub async fn indicators(
        &self,
        authorization: &str,
        etag: Option<&str>,
    ) -> std::result::Result<Option<(EnforcementSet, String)>, String> {
        let mut req = self
            .http
            .get(format!("{}{}", self.base, rampart_proto::INDICATORS_PATH))
            .header(reqwest::header::AUTHORIZATION, authorization);
        if let Some(e) = etag {
            req = req.header(reqwest::header::IF_NONE_MATCH, e);
        }
        let resp = req.send().await.map_err(|e| error_chain(&e))?;
        let status = resp.status().as_u16();
        if status == 304 {
            return Ok(None);
        }
        let tag = resp
            .headers()
            .get(reqwest::header::ETAG)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = resp.bytes().await.map_err(|e| error_chain(&e))?;
        if !(200..300).contains(&status) {
            return Err(format!("HTTP {status}: {}", error_text(&body)));
        }
        let set: EnforcementSet =
            serde_json::from_slice(&body).map_err(|e| format!("unreadable indicator set: {e}"))?;
        let tag = tag.unwrap_or_else(|| format!("\"{}\"", set.version));
        Ok(Some((set, tag)))
    }

    /// `POST /agent/v1/telemetry` with a zstd-compressed JSON batch, as the spool keeps it.
    /// Sending a batch again is safe: its batch id makes it idempotent.
    pub async fn post_batch(&self, authorization: &str, zstd_body: Vec<u8>) -> Reply<BatchAck> {
        let request = self
            .http
            .post(format!("{}{}", self.base, rampart_proto::TELEMETRY_PATH))
            .header(reqwest::header::AUTHORIZATION, authorization)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(reqwest::header::CONTENT_ENCODING, "zstd")
            .body(zstd_body);
        send(request).await
    }
}

/// Sends a request and sorts the answer: read, worth retrying, or refused.
async fn send<T: serde::de::DeserializeOwned>(request: reqwest::RequestBuilder) -> Reply<T> {
    let resp = match request.send().await {
        Ok(r) => r,
        Err(e) => return unanswered(&e),
    };
    let status = resp.status().as_u16();
    let retry_after = retry_after(resp.headers());
    let body = match resp.bytes().await {
        Ok(b) => b,
        Err(e) => {
            return Reply::Retry {
                reason: format!("reading the answer: {}", error_chain(&e)),
                status: Some(status),
                retry_after,
            };
        }
    };
    match status {
        200..=299 => match serde_json::from_slice(&body) {
            Ok(v) => Reply::Done(v),
            // The server said yes but the answer is unreadable: asking again finds out.
            Err(e) => Reply::Retry {
                reason: format!("unreadable answer: {e}"),
                status: Some(status),
                retry_after,
            },
        },
        _ => not_done(status, retry_after, &body),
    }
}

/// A request that got no answer: worth retrying.
fn unanswered<T>(e: &reqwest::Error) -> Reply<T> {
    Reply::Retry {
        reason: error_chain(e),
        status: None,
        retry_after: None,
    }
}

/// An answer that is not a 2xx: worth retrying (408, 429, 5xx) or refused.
fn not_done<T>(status: u16, retry_after: Option<Duration>, body: &[u8]) -> Reply<T> {
    match status {
        408 | 429 | 500..=599 => Reply::Retry {
            reason: error_text(body),
            status: Some(status),
            retry_after,
        },
        _ => Reply::Refused {
            status,
            reason: error_text(body),
        },
    }
}

/// A `Retry-After` in seconds.
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    headers
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
}

/// The message of an error body: the MDE error when it is one, else the start of the text.
fn error_text(body: &[u8]) -> String {
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(e) => e.error.to_string(),
        Err(_) => String::from_utf8_lossy(body)
            .chars()
            .take(MAX_ERROR_TEXT)
            .collect(),
    }
}

/// An error with its causes, which is where reqwest puts the useful part (refused
/// connection, certificate mismatch).
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
