//! STIX 2.1: `indicator` objects with STIX patterns become indicator requests.
//!
//! Accepted shapes: a bundle (`{"type":"bundle","objects":[…]}`), a TAXII envelope
//! (`{"objects":[…]}`), a bare list of objects, or a single object. Objects other than
//! indicators (malware, relationships, identities…) are skipped: they carry no value to match.
//!
//! Mapping: `name` → title, `description` → description (with `labels` and
//! `indicator_types` appended), `valid_until` → expirationTime, `revoked: true` →
//! expirationTime = `modified` (or now) so that re-importing expires it, `confidence` →
//! severity, `id` → externalID. Each comparison of the pattern's OR is one indicator; see
//! [`pattern`] for what patterns can be.

pub mod pattern;

use crate::collect::Collector;
use crate::{Defaults, FeedFileError, Format, Origin, Parsed, shorten, text, time_text};
use rampart_core::alert::Severity;
use rampart_core::indicator::IndicatorRequest;
use serde_json::{Map, Value};
use time::OffsetDateTime;

/// Reads a STIX document (see the module documentation for the shapes).
pub fn parse(bytes: &[u8], defaults: &Defaults) -> Result<Parsed, FeedFileError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let doc: Value = serde_json::from_slice(bytes).map_err(|e| FeedFileError::json(&e))?;
    let mut c = Collector::new(Format::Stix, defaults);
    convert(objects(&doc)?, &mut c);
    Ok(c.finish())
}

/// The objects of a document.
fn objects(doc: &Value) -> Result<&[Value], FeedFileError> {
    match doc {
        Value::Array(items) => Ok(items),
        Value::Object(map) => match map.get("objects") {
            Some(Value::Array(items)) => Ok(items),
            Some(_) => Err(FeedFileError::Shape(
                "'objects' is not a list of STIX objects".into(),
            )),
            None if map.get("type").is_some_and(Value::is_string) => {
                Ok(std::slice::from_ref(doc))
            }
            None => Err(FeedFileError::Shape(
                "not STIX: expected a bundle {\"type\":\"bundle\",\"objects\":[…]}, a list of objects or an indicator object".into(),
            )),
        },
        _ => Err(FeedFileError::Shape(
            "not STIX: expected a bundle, a list of objects or an indicator object".into(),
        )),
    }
}

/// Adds the indicators among `objects` to `c` (shared with the TAXII client, whose pages feed
/// one collector so that duplicates are found across pages).
pub(crate) fn convert(objects: &[Value], c: &mut Collector<'_>) {
    for (i, obj) in objects.iter().enumerate() {
        let at = || Origin::Object(format!("objects[{i}]"));
        let Some(map) = obj.as_object() else {
            c.error(at(), "not a JSON object");
            continue;
        };
        match map.get("type").and_then(Value::as_str) {
            Some("indicator") => indicator(map, i, c),
            Some(_) => {}
            None => c.error(at(), "an object without a 'type'"),
        }
    }
}

fn indicator(map: &Map<String, Value>, index: usize, c: &mut Collector<'_>) {
    let Some(id) = text(map.get("id")) else {
        c.error(
            Origin::Object(format!("objects[{index}]")),
            "an indicator without an 'id'",
        );
        return;
    };
    let origin = Origin::Object(id.clone());
    match map.get("pattern_type") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) if s == "stix" => {}
        Some(Value::String(s)) => {
            c.error(
                origin,
                format!(
                    "unsupported pattern_type '{}': only STIX patterns can become indicators",
                    shorten(s)
                ),
            );
            return;
        }
        Some(_) => {
            c.error(origin, "pattern_type is not a string");
            return;
        }
    }
    let Some(pattern) = map.get("pattern").and_then(Value::as_str) else {
        c.error(origin, "the indicator has no 'pattern' string");
        return;
    };
    let meta = match Meta::read(map, &id) {
        Ok(m) => m,
        Err(problems) => {
            c.error(origin, problems.join("; "));
            return;
        }
    };
    let targets = match pattern::targets(pattern) {
        Ok(t) => t,
        Err(e) => {
            c.error(origin, e.to_string());
            return;
        }
    };
    let several = targets.len() > 1;
    for (n, target) in targets.into_iter().enumerate() {
        let origin = if several {
            Origin::Object(format!("{id} (comparison {})", n + 1))
        } else {
            Origin::Object(id.clone())
        };
        match target {
            Err(reason) => c.error(origin, reason),
            Ok(t) => {
                let request = IndicatorRequest {
                    indicator_value: Some(t.value),
                    indicator_type: Some(t.indicator_type),
                    title: meta.title.clone(),
                    description: Some(meta.description.clone()),
                    external_id: Some(id.clone()),
                    expiration_time: meta.expiration,
                    severity: meta.severity,
                    ..IndicatorRequest::default()
                };
                c.push(origin, &t.path, request);
            }
        }
    }
}

/// What an indicator object says besides its pattern.
struct Meta {
    title: Option<String>,
    description: String,
    expiration: Option<OffsetDateTime>,
    severity: Option<Severity>,
}

impl Meta {
    fn read(map: &Map<String, Value>, id: &str) -> Result<Meta, Vec<String>> {
        let mut problems = Vec::new();
        let mut time_field = |name: &str| -> Option<OffsetDateTime> {
            let v = map.get(name)?;
            let t = v.as_str().and_then(time_text::parse);
            if t.is_none() {
                problems.push(format!(
                    "{name}: {} is not an RFC 3339 timestamp",
                    shorten(&v.to_string())
                ));
            }
            t
        };
        let valid_until = time_field("valid_until");
        let modified = time_field("modified");
        let expiration = match map.get("revoked") {
            None | Some(Value::Null) | Some(Value::Bool(false)) => valid_until,
            // Revoked: expire it, at the moment it was revoked if the object says.
            Some(Value::Bool(true)) => Some(modified.unwrap_or_else(OffsetDateTime::now_utc)),
            Some(other) => {
                problems.push(format!(
                    "revoked: {} is not true or false",
                    shorten(&other.to_string())
                ));
                None
            }
        };
        let severity = match map.get("confidence") {
            None | Some(Value::Null) => None,
            Some(v) => match v.as_u64().filter(|n| *n <= 100) {
                Some(n) => Some(severity_of(n)),
                None => {
                    problems.push(format!(
                        "confidence: {} is not an integer from 0 to 100",
                        shorten(&v.to_string())
                    ));
                    None
                }
            },
        };
        let mut labels = Vec::new();
        for name in ["indicator_types", "labels"] {
            match map.get(name) {
                None | Some(Value::Null) => {}
                Some(Value::Array(items)) => {
                    for item in items {
                        match item.as_str() {
                            Some(s) if !labels.iter().any(|l| l == s) => labels.push(s.to_owned()),
                            Some(_) => {}
                            None => problems.push(format!(
                                "{name}: {} is not a string",
                                shorten(&item.to_string())
                            )),
                        }
                    }
                }
                Some(_) => problems.push(format!("{name} is not a list of strings")),
            }
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        let mut description =
            text(map.get("description")).unwrap_or_else(|| format!("STIX indicator {id}."));
        if !labels.is_empty() {
            description.push_str("\nLabels: ");
            description.push_str(&labels.join(", "));
        }
        Ok(Meta {
            title: text(map.get("name")),
            description,
            expiration,
            severity,
        })
    }
}

/// STIX confidence (0–100) as an indicator severity.
fn severity_of(confidence: u64) -> Severity {
    match confidence {
        85.. => Severity::High,
        50.. => Severity::Medium,
        15.. => Severity::Low,
        _ => Severity::Informational,
    }
}
