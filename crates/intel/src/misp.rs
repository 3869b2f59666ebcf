//! MISP events and feeds.
//!
//! An event is read from `{"Event": …}`, a search result `{"response": [{"Event": …}, …]}`,
//! a list of either, or a bare event object. Its attributes — in `Event.Attribute` and in each
//! `Event.Object[].Attribute` — become indicators when `to_ids` is set: in MISP, an attribute
//! without `to_ids` is context, not something to detect, so it is skipped without an error, as
//! are deleted attributes and objects.
//!
//! A MISP feed is a directory: `manifest.json` maps event uuids to metadata, and each event is
//! in `<uuid>.json` beside it ([`parse_misp_feed`]).

use crate::collect::Collector;
use crate::{Defaults, FeedFileError, Format, Origin, Parsed, json_message, shorten, text};
use rampart_core::alert::Severity;
use rampart_core::indicator::{IndicatorRequest, IndicatorType};
use serde_json::{Map, Value};
use std::path::Path;

/// Reads a MISP event document.
pub fn parse(bytes: &[u8], defaults: &Defaults) -> Result<Parsed, FeedFileError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let doc: Value = serde_json::from_slice(bytes).map_err(|e| FeedFileError::json(&e))?;
    let mut c = Collector::new(Format::Misp, defaults);
    for (k, ev) in events(&doc)
        .map_err(FeedFileError::Shape)?
        .into_iter()
        .enumerate()
    {
        event(ev, k, &mut c);
    }
    Ok(c.finish())
}

/// Reads a MISP feed directory: `manifest.json` and the `<uuid>.json` of every event it lists.
/// A missing or unreadable event file is an error for that event; only a missing or unreadable
/// manifest fails the whole feed.
pub fn parse_misp_feed(dir: &Path, defaults: &Defaults) -> Result<Parsed, FeedFileError> {
    let manifest_path = dir.join("manifest.json");
    let bytes = std::fs::read(&manifest_path).map_err(|source| FeedFileError::Io {
        path: manifest_path.clone(),
        source,
    })?;
    let manifest: Value = serde_json::from_slice(&bytes).map_err(|e| {
        FeedFileError::Shape(format!(
            "{}: not valid JSON at line {}, column {}: {}",
            manifest_path.display(),
            e.line(),
            e.column(),
            json_message(&e)
        ))
    })?;
    let Value::Object(entries) = manifest else {
        return Err(FeedFileError::Shape(format!(
            "{}: expected an object mapping event uuids to their metadata",
            manifest_path.display()
        )));
    };
    let mut c = Collector::new(Format::Misp, defaults);
    for (k, uuid) in entries.keys().enumerate() {
        let origin = Origin::Object(format!("event {uuid}"));
        // The key names a file: refuse anything that could reach outside the directory.
        if uuid.is_empty()
            || uuid.len() > 64
            || !uuid.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')
        {
            c.error(origin, format!("'{}' is not an event uuid", shorten(uuid)));
            continue;
        }
        let file = format!("{uuid}.json");
        let bytes = match std::fs::read(dir.join(&file)) {
            Ok(b) => b,
            Err(e) => {
                c.error(origin, format!("cannot read {file}: {e}"));
                continue;
            }
        };
        let doc: Value = match serde_json::from_slice(&bytes) {
            Ok(d) => d,
            Err(e) => {
                c.error(
                    origin,
                    format!(
                        "{file} is not valid JSON at line {}, column {}: {}",
                        e.line(),
                        e.column(),
                        json_message(&e)
                    ),
                );
                continue;
            }
        };
        match events(&doc) {
            Ok(evs) => evs.into_iter().for_each(|ev| event(ev, k, &mut c)),
            Err(why) => c.error(origin, format!("{file}: {why}")),
        }
    }
    Ok(c.finish())
}

const SHAPE: &str = "not a MISP event: expected {\"Event\": {…}}, {\"response\": [{\"Event\": {…}}]} or an event object";

/// The events of a document.
fn events(doc: &Value) -> Result<Vec<&Map<String, Value>>, String> {
    match doc {
        Value::Array(items) => event_list(items),
        Value::Object(m) => match m.get("response") {
            Some(Value::Array(items)) => event_list(items),
            Some(single) => one_event(single)
                .map(|e| vec![e])
                .ok_or_else(|| SHAPE.to_owned()),
            None => one_event(doc)
                .map(|e| vec![e])
                .ok_or_else(|| SHAPE.to_owned()),
        },
        _ => Err(SHAPE.to_owned()),
    }
}

fn event_list(items: &[Value]) -> Result<Vec<&Map<String, Value>>, String> {
    items
        .iter()
        .enumerate()
        .map(|(i, v)| one_event(v).ok_or_else(|| format!("item {i}: {SHAPE}")))
        .collect()
}

/// `{"Event": {…}}` or a bare event (an object with an event's keys).
fn one_event(v: &Value) -> Option<&Map<String, Value>> {
    let m = v.as_object()?;
    match m.get("Event") {
        Some(e) => e.as_object(),
        None if ["Attribute", "Object", "info", "uuid"]
            .iter()
            .any(|k| m.contains_key(*k)) =>
        {
            Some(m)
        }
        None => None,
    }
}

/// What every attribute of an event shares.
struct Event {
    /// The uuid, or `#k` for an event without one.
    label: String,
    info: Option<String>,
    severity: Option<Severity>,
}

fn event(ev: &Map<String, Value>, k: usize, c: &mut Collector<'_>) {
    let e = Event {
        label: text(ev.get("uuid")).unwrap_or_else(|| format!("#{}", k + 1)),
        info: text(ev.get("info")),
        severity: threat_level(ev.get("threat_level_id")),
    };
    let here = || Origin::Object(format!("event {}", e.label));
    match ev.get("Attribute") {
        None | Some(Value::Null) => {}
        Some(Value::Array(attrs)) => {
            for (n, a) in attrs.iter().enumerate() {
                let place = format!("event {} attribute {}", e.label, n + 1);
                attribute(a, &e, None, place, c);
            }
        }
        Some(_) => c.error(here(), "Event.Attribute is not a list"),
    }
    match ev.get("Object") {
        None | Some(Value::Null) => {}
        Some(Value::Array(objects)) => {
            for (m, o) in objects.iter().enumerate() {
                let at = format!("event {} object {}", e.label, m + 1);
                let Some(o) = o.as_object() else {
                    c.error(Origin::Object(at), "not a JSON object");
                    continue;
                };
                if flag(o.get("deleted")) == Ok(Some(true)) {
                    continue;
                }
                let name = text(o.get("name"));
                match o.get("Attribute") {
                    None | Some(Value::Null) => {}
                    Some(Value::Array(attrs)) => {
                        for (n, a) in attrs.iter().enumerate() {
                            let place = format!("{at} attribute {}", n + 1);
                            attribute(a, &e, name.as_deref(), place, c);
                        }
                    }
                    Some(_) => c.error(Origin::Object(at), "Object.Attribute is not a list"),
                }
            }
        }
        Some(_) => c.error(here(), "Event.Object is not a list"),
    }
}

/// MISP's threat levels: 1 High, 2 Medium, 3 Low, 4 Undefined.
fn threat_level(v: Option<&Value>) -> Option<Severity> {
    let n = match v? {
        Value::String(s) => s.trim().parse::<u64>().ok()?,
        Value::Number(n) => n.as_u64()?,
        _ => return None,
    };
    match n {
        1 => Some(Severity::High),
        2 => Some(Severity::Medium),
        3 => Some(Severity::Low),
        4 => Some(Severity::Informational),
        _ => None,
    }
}

/// MISP writes flags as booleans, "1"/"0" strings or numbers, depending on version and export.
fn flag(v: Option<&Value>) -> Result<Option<bool>, String> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(Value::String(s)) => match s.trim().to_ascii_lowercase().as_str() {
            "1" | "true" => Ok(Some(true)),
            "0" | "false" | "" => Ok(Some(false)),
            _ => Err(format!("'{}' is not a boolean", shorten(s))),
        },
        Some(Value::Number(n)) => match n.as_u64() {
            Some(1) => Ok(Some(true)),
            Some(0) => Ok(Some(false)),
            _ => Err(format!("{n} is not a boolean")),
        },
        Some(other) => Err(format!("{} is not a boolean", shorten(&other.to_string()))),
    }
}

/// One value an attribute yields: its type, the value, and what tells it apart from the
/// attribute's other values (for `domain|ip`).
struct Part<'v> {
    ty: IndicatorType,
    value: &'v str,
    suffix: Option<&'static str>,
}

fn attribute(a: &Value, e: &Event, object: Option<&str>, place: String, c: &mut Collector<'_>) {
    let Some(a) = a.as_object() else {
        c.error(Origin::Object(place), "not a JSON object");
        return;
    };
    let uuid = text(a.get("uuid"));
    let origin = Origin::Object(uuid.clone().unwrap_or(place));
    match flag(a.get("deleted")) {
        Ok(Some(true)) => return,
        Ok(_) => {}
        Err(m) => {
            c.error(origin, format!("deleted: {m}"));
            return;
        }
    }
    match flag(a.get("to_ids")) {
        Ok(Some(true)) => {}
        Ok(_) => return,
        Err(m) => {
            c.error(origin, format!("to_ids: {m}"));
            return;
        }
    }
    let Some(ty) = text(a.get("type")) else {
        c.error(origin, "the attribute has no 'type'");
        return;
    };
    let Some(value) = text(a.get("value")) else {
        c.error(origin, format!("the {ty} attribute has no 'value'"));
        return;
    };
    let one = |ty: IndicatorType, value| {
        vec![Part {
            ty,
            value,
            suffix: None,
        }]
    };
    let pair = |value: &str, what: &str| -> Result<(String, String), String> {
        value
            .split_once('|')
            .map(|(a, b)| (a.trim().to_owned(), b.trim().to_owned()))
            .ok_or_else(|| {
                format!(
                    "the {ty} value '{}' is not of the form {what}",
                    shorten(value)
                )
            })
    };
    // Composite values ("a|b"): the halves, kept alive for the parts below.
    let halves: (String, String);
    let mut file_name = None;
    let parts = match ty.as_str() {
        "md5" => one(IndicatorType::FileMd5, value.as_str()),
        "sha1" => one(IndicatorType::FileSha1, value.as_str()),
        "sha256" => one(IndicatorType::FileSha256, value.as_str()),
        "ip-src" | "ip-dst" => one(IndicatorType::IpAddress, value.as_str()),
        "domain" | "hostname" => one(IndicatorType::DomainName, value.as_str()),
        "url" => one(IndicatorType::Url, value.as_str()),
        "x509-fingerprint-sha1" => one(IndicatorType::CertificateThumbprint, value.as_str()),
        "ip-src|port" | "ip-dst|port" => {
            halves = match pair(&value, "ip|port") {
                Ok(h) => h,
                Err(m) => return c.error(origin, m),
            };
            one(IndicatorType::IpAddress, halves.0.as_str())
        }
        "filename|md5" | "filename|sha1" | "filename|sha256" => {
            // The hash is last; a file name could itself contain '|'.
            let Some((name, hash)) = value.rsplit_once('|') else {
                return c.error(
                    origin,
                    format!(
                        "the {ty} value '{}' is not of the form filename|hash",
                        shorten(&value)
                    ),
                );
            };
            halves = (name.trim().to_owned(), hash.trim().to_owned());
            file_name = Some(halves.0.as_str());
            let hash_ty = match ty.as_str() {
                "filename|md5" => IndicatorType::FileMd5,
                "filename|sha1" => IndicatorType::FileSha1,
                _ => IndicatorType::FileSha256,
            };
            one(hash_ty, halves.1.as_str())
        }
        "domain|ip" => {
            halves = match pair(&value, "domain|ip") {
                Ok(h) => h,
                Err(m) => return c.error(origin, m),
            };
            vec![
                Part {
                    ty: IndicatorType::DomainName,
                    value: halves.0.as_str(),
                    suffix: Some("domain"),
                },
                Part {
                    ty: IndicatorType::IpAddress,
                    value: halves.1.as_str(),
                    suffix: Some("ip"),
                },
            ]
        }
        other => {
            return c.error(
                origin,
                format!("unsupported MISP attribute type '{}'", shorten(other)),
            );
        }
    };

    let mut description = match &e.info {
        Some(info) => format!("MISP event \"{info}\" ({}): {ty} attribute", e.label),
        None => format!("MISP event {}: {ty} attribute", e.label),
    };
    if let Some(name) = object {
        description.push_str(&format!(" of a {name} object"));
    }
    if let Some(cat) = text(a.get("category")) {
        description.push_str(&format!(", category {cat}"));
    }
    description.push('.');
    if let Some(name) = file_name {
        description.push_str(&format!("\nFile name: {name}"));
    }
    if let Some(comment) = text(a.get("comment")) {
        description.push_str(&format!("\nComment: {comment}"));
    }
    for part in parts {
        let origin = match (part.suffix, &origin) {
            (Some(s), Origin::Object(id)) => Origin::Object(format!("{id} ({s})")),
            _ => origin.clone(),
        };
        let request = IndicatorRequest {
            indicator_value: Some(part.value.to_owned()),
            indicator_type: Some(part.ty),
            title: e.info.clone(),
            description: Some(description.clone()),
            external_id: uuid.clone(),
            severity: e.severity,
            ..IndicatorRequest::default()
        };
        c.push(origin, &format!("{ty} value"), request);
    }
}
