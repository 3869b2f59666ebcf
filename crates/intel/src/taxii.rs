//! A TAXII 2.1 client: pulls a collection's objects page by page and converts the STIX
//! indicators among them (the same conversion as [`crate::stix`]).
//!
//! The caller keeps the cursor: each [`Pulled`] carries `last_added` (the server's
//! `X-TAXII-Date-Added-Last`), to pass as `added_after` on the next pull so that only newer
//! objects come back.

use crate::collect::Collector;
use crate::{Defaults, Format, Parsed, json_message, stix};
use reqwest::header::ACCEPT;
use serde_json::Value;
use std::collections::HashSet;
use std::time::Duration;
use url::Url;

/// The TAXII 2.1 media type, which servers require in `Accept`.
pub const MEDIA_TYPE: &str = "application/taxii+json;version=2.1";

/// Pages one pull fetches at most, unless [`Client::with_max_pages`] says otherwise.
pub const DEFAULT_MAX_PAGES: usize = 1000;

/// How the client authenticates.
#[derive(Clone, PartialEq, Eq)]
pub enum Auth {
    None,
    Basic { user: String, password: String },
    Bearer(String),
}

// Credentials stay out of logs.
impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Auth::None => f.write_str("None"),
            Auth::Basic { user, .. } => write!(f, "Basic({user}, ***)"),
            Auth::Bearer(_) => f.write_str("Bearer(***)"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TaxiiError {
    #[error("invalid TAXII address: {0}")]
    Url(String),
    /// The request could not be made or its answer not read.
    #[error("{url}: {message}")]
    Http { url: String, message: String },
    /// The server answered with an error status; `body` is the start of its answer.
    #[error("{url}: HTTP {status}: {body}")]
    Status {
        url: String,
        status: u16,
        body: String,
    },
    #[error("{url}: not valid JSON at line {line}, column {column}: {message}")]
    Json {
        url: String,
        line: usize,
        column: usize,
        message: String,
    },
    /// JSON, but not a TAXII envelope.
    #[error("{url}: {message}")]
    Envelope { url: String, message: String },
}

/// What one pull brought.
#[derive(Clone, Debug, PartialEq)]
pub struct Pulled {
    /// The indicators of every page (duplicates across pages reported once each).
    pub parsed: Parsed,
    /// The cursor for the next pull: the `X-TAXII-Date-Added-Last` of the last page that had
    /// one, else the `added_after` this pull was given.
    pub last_added: Option<String>,
    /// Pages fetched.
    pub pages: usize,
    /// False when the pull stopped before the server said there was no more: the page limit
    /// was reached, or the server repeated a `next` or gave no way to go on. Pulling again
    /// from `last_added` continues.
    pub complete: bool,
}

/// A client for one collection.
#[derive(Clone, Debug)]
pub struct Client {
    http: reqwest::Client,
    objects_url: Url,
    auth: Auth,
    max_pages: usize,
}

impl Client {
    /// A client for `{api_root}/collections/{collection_id}/objects/`.
    pub fn new(api_root: &str, collection_id: &str, auth: Auth) -> Result<Client, TaxiiError> {
        let mut url = Url::parse(api_root)
            .map_err(|e| TaxiiError::Url(format!("'{}': {e}", crate::shorten(api_root))))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(TaxiiError::Url(format!(
                "'{}': the scheme must be http or https",
                redact(&url)
            )));
        }
        if collection_id.trim().is_empty() {
            return Err(TaxiiError::Url("the collection id is empty".into()));
        }
        if url.cannot_be_a_base() {
            return Err(TaxiiError::Url(format!(
                "'{}' has no path to add the collection to",
                redact(&url)
            )));
        }
        url.set_query(None);
        url.set_fragment(None);
        url.path_segments_mut()
            .map_err(|()| TaxiiError::Url("the address has no path".into()))?
            .pop_if_empty()
            // Segments are percent-encoded, so an id cannot change the path.
            .extend(["collections", collection_id.trim(), "objects", ""]);
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(30))
            .timeout(Duration::from_secs(300))
            .user_agent(concat!("rampart-intel/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| TaxiiError::Url(error_chain(&e)))?;
        Ok(Client {
            http,
            objects_url: url,
            auth,
            max_pages: DEFAULT_MAX_PAGES,
        })
    }

    /// Caps the pages one pull fetches (at least 1).
    pub fn with_max_pages(mut self, pages: usize) -> Self {
        self.max_pages = pages.max(1);
        self
    }

    /// The collection's objects endpoint.
    pub fn objects_url(&self) -> &Url {
        &self.objects_url
    }

    /// Fetches the objects added after `added_after` (a TAXII timestamp; `None` for all),
    /// following `more`/`next` paging, and converts the STIX indicators among them.
    pub async fn pull(
        &self,
        added_after: Option<&str>,
        defaults: &Defaults,
    ) -> Result<Pulled, TaxiiError> {
        let mut c = Collector::new(Format::Stix, defaults);
        let mut last_added = added_after.map(str::to_owned);
        let mut after = added_after.map(str::to_owned);
        let mut next: Option<String> = None;
        let mut nexts_seen = HashSet::new();
        let mut pages = 0;
        let complete = loop {
            if pages == self.max_pages {
                break false;
            }
            let mut url = self.objects_url.clone();
            if after.is_some() || next.is_some() {
                let mut q = url.query_pairs_mut();
                if let Some(a) = &after {
                    q.append_pair("added_after", a);
                }
                if let Some(n) = &next {
                    q.append_pair("next", n);
                }
            }
            let page = self.page(&url).await?;
            pages += 1;
            if let Some(h) = &page.date_added_last {
                last_added = Some(h.clone());
            }
            stix::convert(&page.objects, &mut c);
            if !page.more {
                break true;
            }
            match page.next {
                // A server that hands out the same `next` again would be followed forever.
                Some(n) if !nexts_seen.insert(n.clone()) => break false,
                Some(n) => next = Some(n),
                // No `next`: page by date instead (as TAXII 2.0 did), if the date moves on.
                None => match page.date_added_last {
                    Some(h) if after.as_deref() != Some(h.as_str()) => {
                        after = Some(h);
                        next = None;
                    }
                    _ => break false,
                },
            }
        };
        Ok(Pulled {
            parsed: c.finish(),
            last_added,
            pages,
            complete,
        })
    }

    async fn page(&self, url: &Url) -> Result<Page, TaxiiError> {
        let shown = redact(url);
        let mut request = self.http.get(url.clone()).header(ACCEPT, MEDIA_TYPE);
        request = match &self.auth {
            Auth::None => request,
            Auth::Basic { user, password } => request.basic_auth(user, Some(password)),
            Auth::Bearer(token) => request.bearer_auth(token),
        };
        let http_err = |e: reqwest::Error| TaxiiError::Http {
            url: shown.clone(),
            message: error_chain(&e),
        };
        let response = request.send().await.map_err(http_err)?;
        let status = response.status();
        let date_added_last = response
            .headers()
            .get("X-TAXII-Date-Added-Last")
            .and_then(|v| v.to_str().ok())
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty());
        let body = response.bytes().await.map_err(http_err)?;
        if !status.is_success() {
            return Err(TaxiiError::Status {
                url: shown,
                status: status.as_u16(),
                body: excerpt(&body),
            });
        }
        // An empty collection may come back as 204 or an empty body.
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Page {
                objects: Vec::new(),
                more: false,
                next: None,
                date_added_last,
            });
        }
        let envelope: Value = serde_json::from_slice(&body).map_err(|e| TaxiiError::Json {
            url: shown.clone(),
            line: e.line(),
            column: e.column(),
            message: json_message(&e),
        })?;
        let bad = |message: &str| TaxiiError::Envelope {
            url: shown.clone(),
            message: message.to_owned(),
        };
        let Value::Object(mut envelope) = envelope else {
            return Err(bad("the answer is not a TAXII envelope (a JSON object)"));
        };
        let objects = match envelope.remove("objects") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(objects)) => objects,
            Some(_) => return Err(bad("the envelope's 'objects' is not a list")),
        };
        let more = match envelope.get("more") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err(bad("the envelope's 'more' is not true or false")),
        };
        let next = match envelope.get("next") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if s.is_empty() => None,
            Some(Value::String(s)) => Some(s.clone()),
            // Some servers number their pages.
            Some(Value::Number(n)) => Some(n.to_string()),
            Some(_) => return Err(bad("the envelope's 'next' is not a string")),
        };
        Ok(Page {
            objects,
            more,
            next,
            date_added_last,
        })
    }
}

struct Page {
    objects: Vec<Value>,
    more: bool,
    next: Option<String>,
    date_added_last: Option<String>,
}

/// The URL without credentials, for messages.
fn redact(url: &Url) -> String {
    let mut u = url.clone();
    // Both fail only for URLs that cannot carry credentials anyway.
    let _ = u.set_password(None);
    let _ = u.set_username("");
    u.to_string()
}

/// An error and its causes: reqwest's own message is often just "error sending request".
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        s.push_str(": ");
        s.push_str(&cause.to_string());
        source = cause.source();
    }
    s
}

/// The start of an error body, on one line.
fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let one_line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.is_empty() {
        return "(empty body)".into();
    }
    crate::shorten(&one_line)
}
