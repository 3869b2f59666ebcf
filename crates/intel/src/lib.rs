//! Threat-intelligence feeds into indicator submissions.
//!
//! A feed arrives as a file in one of four formats — MDE's CSV import template, a plain list of
//! values, a STIX 2.1 bundle, a MISP event (or a MISP feed directory) — or is pulled from a
//! TAXII 2.1 collection ([`taxii`]). Each becomes a list of [`IndicatorRequest`]s, the body the
//! indicator API takes, plus a list of [`FeedError`]s: one per entry that could not become a
//! request, naming its line or object and saying precisely what is wrong. A bad entry never
//! stops the rest of the feed; only a file that cannot be read at all (not JSON, no CSV
//! header, …) is a [`FeedFileError`].
//!
//! This crate parses and checks; it stores nothing. Values are checked with the core's
//! normalisers, and every request is run through [`IndicatorRequest::validate`] (apart from its
//! "expiration in the past" rule, which depends on when the caller submits), so what comes out
//! is what the API will accept. Requests carry the values as the feed wrote them (trimmed,
//! re-fanged for plain lists); duplicates are found on the normalised value and type.
//!
//! [`Defaults`] fill what a feed leaves out (action, severity, expiration, title, alerting).

mod collect;
pub mod csv;
pub mod misp;
pub mod stix;
pub mod taxii;
mod time_text;
pub mod txt;

use rampart_core::alert::Severity;
use rampart_core::indicator::{IndicatorAction, IndicatorRequest, RequestedAction};
use std::fmt;
use std::path::{Path, PathBuf};
use time::OffsetDateTime;

pub use misp::parse_misp_feed;

/// The feed formats [`parse`] reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    /// MDE's portal import template (`IndicatorType, IndicatorValue, …`).
    Csv,
    /// One value per line; the type is detected.
    Txt,
    /// A STIX 2.1 bundle, list of objects, single indicator or TAXII envelope.
    Stix,
    /// A MISP event (`{"Event": …}`, a `{"response": […]}` search result, or a bare event).
    Misp,
}

impl Format {
    pub const NAMES: &'static [&'static str] = &["csv", "txt", "stix", "misp"];

    pub fn as_str(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Txt => "txt",
            Format::Stix => "stix",
            Format::Misp => "misp",
        }
    }

    /// How titles and descriptions name the format.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Format::Csv => "CSV",
            Format::Txt => "plain-list",
            Format::Stix => "STIX",
            Format::Misp => "MISP",
        }
    }

    /// The format of a file, from its extension when that is decisive (`.csv`, `.txt`), else
    /// from the first bytes: JSON with an `Event` is MISP, other JSON is STIX; text whose first
    /// line names the CSV template's columns is CSV; other text is a plain list. `None` for
    /// JSON that looks like neither.
    pub fn guess(path: &Path, bytes: &[u8]) -> Option<Format> {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(|e| e.to_ascii_lowercase());
        match ext.as_deref() {
            Some("csv") => return Some(Format::Csv),
            Some("txt" | "lst" | "list") => return Some(Format::Txt),
            _ => {}
        }
        // A look at the start is enough to tell the formats apart; reading a whole feed of
        // millions of entries just to guess would double the work.
        let head = &bytes[..bytes.len().min(64 * 1024)];
        let head = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
        let text = String::from_utf8_lossy(head);
        let trimmed = text.trim_start();
        if trimmed.starts_with('{') || trimmed.starts_with('[') {
            if trimmed.contains("\"Event\"") || trimmed.contains("\"Attribute\"") {
                return Some(Format::Misp);
            }
            if trimmed.contains("\"objects\"")
                || trimmed.contains("\"pattern\"")
                || trimmed.contains("\"bundle\"")
            {
                return Some(Format::Stix);
            }
            return None;
        }
        let first = trimmed.lines().next().unwrap_or("");
        let lower = first.to_ascii_lowercase();
        if lower.contains("indicatorvalue") && first.contains(',') {
            return Some(Format::Csv);
        }
        Some(Format::Txt)
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Format {
    type Err = String;
    /// Case-insensitive: `csv`, `txt`, `stix`, `misp`.
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "csv" => Ok(Format::Csv),
            "txt" => Ok(Format::Txt),
            "stix" => Ok(Format::Stix),
            "misp" => Ok(Format::Misp),
            _ => Err(format!(
                "'{s}' is not a feed format; expected one of {}",
                Format::NAMES.join(", ")
            )),
        }
    }
}

/// Where in the feed an entry came from.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Origin {
    /// A 1-based line number (for CSV, the line the record starts on; the header is line 1).
    Line(usize),
    /// A STIX object id or MISP attribute uuid, possibly qualified (`indicator--… (comparison
    /// 2)`, `event <uuid> attribute 3`).
    Object(String),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Line(n) => write!(f, "line {n}"),
            Origin::Object(id) => write!(f, "object {id}"),
        }
    }
}

/// One indicator the feed yields.
#[derive(Clone, Debug, PartialEq)]
pub struct FeedItem {
    pub origin: Origin,
    pub request: IndicatorRequest,
}

/// One entry of the feed that did not become an indicator, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FeedError {
    pub origin: Origin,
    pub reason: String,
}

impl fmt::Display for FeedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.origin, self.reason)
    }
}

impl std::error::Error for FeedError {}

/// What a feed yields: its indicators in feed order, and its bad entries.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Parsed {
    pub items: Vec<FeedItem>,
    pub errors: Vec<FeedError>,
}

impl Parsed {
    /// The requests alone, in feed order (what the caller submits in batches).
    pub fn requests(&self) -> impl Iterator<Item = &IndicatorRequest> {
        self.items.iter().map(|i| &i.request)
    }
}

/// What an indicator gets when the feed does not say.
#[derive(Clone, Debug, PartialEq)]
pub struct Defaults {
    /// Block and BlockAndRemediate are taken as "block": each type gets the one MDE allows
    /// for it (BlockAndRemediate for certificates, Block for IPs, domains and URLs).
    pub action: RequestedAction,
    pub severity: Severity,
    pub expiration_time: Option<OffsetDateTime>,
    /// The title for entries without one; `None` makes one from the type and format.
    pub title: Option<String>,
    pub generate_alert: bool,
    /// Accept internal addresses (and URLs on them), as the API's `allowInternal`; without it
    /// such entries are errors, as the API would refuse them.
    pub allow_internal: bool,
}

impl Default for Defaults {
    fn default() -> Self {
        Defaults {
            action: RequestedAction::Current(IndicatorAction::Audit),
            severity: Severity::Medium,
            expiration_time: None,
            title: None,
            // Audit (the default action) requires an alert.
            generate_alert: true,
            allow_internal: false,
        }
    }
}

/// A feed file that cannot be read at all. Bad entries within a readable file are
/// [`FeedError`]s instead.
#[derive(Debug, thiserror::Error)]
pub enum FeedFileError {
    #[error("not valid JSON at line {line}, column {column}: {message}")]
    Json {
        line: usize,
        column: usize,
        message: String,
    },
    /// A CSV file whose header cannot be used.
    #[error("line {line}: {message}")]
    Header { line: usize, message: String },
    /// Valid JSON, but not the shape of the format.
    #[error("{0}")]
    Shape(String),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl FeedFileError {
    pub(crate) fn json(e: &serde_json::Error) -> FeedFileError {
        FeedFileError::Json {
            line: e.line(),
            column: e.column(),
            message: json_message(e),
        }
    }
}

/// serde_json's message without its own " at line … column …" suffix (we say where).
pub(crate) fn json_message(e: &serde_json::Error) -> String {
    let s = e.to_string();
    match s.rfind(" at line ") {
        Some(i) => s[..i].to_owned(),
        None => s,
    }
}

/// Reads a feed of the given format.
pub fn parse(format: Format, bytes: &[u8], defaults: &Defaults) -> Result<Parsed, FeedFileError> {
    match format {
        Format::Csv => csv::parse(bytes, defaults),
        Format::Txt => Ok(txt::parse(bytes, defaults)),
        Format::Stix => stix::parse(bytes, defaults),
        Format::Misp => misp::parse(bytes, defaults),
    }
}

/// `s` cut to 100 characters, for messages that echo feed input.
pub(crate) fn shorten(s: &str) -> String {
    match s.char_indices().nth(100) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

/// A JSON text field that is present and not blank.
pub(crate) fn text(v: Option<&serde_json::Value>) -> Option<String> {
    v.and_then(|v| v.as_str())
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}
