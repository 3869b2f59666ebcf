//! KQL `dynamic` values, carried between operators as compact JSON text.
//!
//! A property bag keeps its keys in insertion order (Kusto shows `bag_pack("b", 1, "a", 2)`
//! as `{"b":1,"a":2}`), which `serde_json::Value` does not do without a feature that
//! would change how the rest of the workspace builds, hence this small value type. Parsing
//! still goes through `serde_json`; only the tree and the writer are ours.
//!
//! Text that is not valid JSON is a dynamic *string* holding that text (what `parse_json`
//! does with it), so values written by agents as plain text still work.

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use std::cmp::Ordering;
use std::fmt;

#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    Null,
    Bool(bool),
    Int(i64),
    Real(f64),
    Str(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

impl Json {
    /// Valid JSON, or else a string holding the text.
    pub fn parse_lenient(text: &str) -> Json {
        Json::parse(text).unwrap_or_else(|| Json::Str(text.to_string()))
    }

    pub fn parse(text: &str) -> Option<Json> {
        let trimmed = text.trim_start();
        // A bare word or number that is not JSON (`abc`, `1.2.3`) is quicker to refuse here.
        match trimmed.as_bytes().first() {
            Some(b'{' | b'[' | b'"' | b'-' | b'0'..=b'9' | b't' | b'f' | b'n') => {}
            _ => return None,
        }
        serde_json::from_str::<Json>(text).ok()
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Json::Null)
    }

    /// Compact JSON text.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        self.write(&mut out);
        out
    }

    /// The text of a dynamic column: `None` (SQL null) for JSON null.
    pub fn to_column(&self) -> Option<String> {
        if self.is_null() {
            None
        } else {
            Some(self.to_text())
        }
    }

    /// The string form string operators and `tostring` use: a string's own text, `""`
    /// for null, compact JSON otherwise.
    pub fn string_form(&self) -> String {
        match self {
            Json::Null => String::new(),
            Json::Str(s) => s.clone(),
            other => other.to_text(),
        }
    }

    fn write(&self, out: &mut String) {
        match self {
            Json::Null => out.push_str("null"),
            Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Json::Int(i) => out.push_str(&i.to_string()),
            Json::Real(r) => out.push_str(&real_text(*r)),
            Json::Str(s) => write_string(s, out),
            Json::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    item.write(out);
                }
                out.push(']');
            }
            Json::Object(entries) => {
                out.push('{');
                for (i, (key, value)) in entries.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write_string(key, out);
                    out.push(':');
                    value.write(out);
                }
                out.push('}');
            }
        }
    }

    pub fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Object(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// Element `index` of an array; negative counts from the end.
    pub fn index(&self, index: i64) -> Option<&Json> {
        match self {
            Json::Array(items) => {
                let len = items.len() as i64;
                let at = if index < 0 { len + index } else { index };
                if (0..len).contains(&at) {
                    items.get(at as usize)
                } else {
                    None
                }
            }
            _ => None,
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Json::Int(i) => Some(*i as f64),
            Json::Real(r) => Some(*r),
            _ => None,
        }
    }

    /// Kind name for `gettype`.
    pub fn type_name(&self) -> &'static str {
        match self {
            Json::Null => "null",
            Json::Bool(_) => "bool",
            Json::Int(_) => "long",
            Json::Real(_) => "real",
            Json::Str(_) => "string",
            Json::Array(_) => "array",
            Json::Object(_) => "dictionary",
        }
    }

    /// Equality of dynamic values: numbers by value whatever their kind, the rest
    /// structurally.
    pub fn same(&self, other: &Json) -> bool {
        match (self, other) {
            (Json::Int(a), Json::Int(b)) => a == b,
            (a, b) if a.as_f64().is_some() && b.as_f64().is_some() => a.as_f64() == b.as_f64(),
            (Json::Array(a), Json::Array(b)) => {
                a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.same(y))
            }
            (Json::Object(a), Json::Object(b)) => {
                a.len() == b.len()
                    && a.iter()
                        .all(|(k, v)| other.get(k).is_some_and(|w| v.same(w)))
            }
            _ => self == other,
        }
    }

    /// Order of dynamic values where one exists (numbers, strings, bools).
    pub fn compare(&self, other: &Json) -> Option<Ordering> {
        match (self, other) {
            (Json::Int(a), Json::Int(b)) => Some(a.cmp(b)),
            (Json::Str(a), Json::Str(b)) => Some(a.cmp(b)),
            (Json::Bool(a), Json::Bool(b)) => Some(a.cmp(b)),
            (a, b) => a.as_f64()?.partial_cmp(&b.as_f64()?),
        }
    }
}

/// Reals as JSON numbers (`2.0`, `1.5`); NaN and infinities, which JSON lacks, as strings.
pub fn real_text(value: f64) -> String {
    if value.is_finite() {
        serde_json::to_string(&value).unwrap_or_else(|_| value.to_string())
    } else if value.is_nan() {
        "\"NaN\"".to_string()
    } else if value > 0.0 {
        "\"Infinity\"".to_string()
    } else {
        "\"-Infinity\"".to_string()
    }
}

pub(crate) fn write_string(text: &str, out: &mut String) {
    out.push('"');
    for ch in text.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

struct JsonVisitor;

impl<'de> Visitor<'de> for JsonVisitor {
    type Value = Json;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Json, E> {
        Ok(Json::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Json, E> {
        Ok(Json::Int(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Json, E> {
        Ok(match i64::try_from(v) {
            Ok(i) => Json::Int(i),
            Err(_) => Json::Real(v as f64),
        })
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Json, E> {
        Ok(Json::Real(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Json, E> {
        Ok(Json::Str(v.to_string()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Json, E> {
        Ok(Json::Str(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Json>()? {
            items.push(item);
        }
        Ok(Json::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
        let mut entries: Vec<(String, Json)> = Vec::new();
        while let Some((key, value)) = map.next_entry::<String, Json>()? {
            // A repeated key keeps its first position and its last value, as JSON parsers do.
            match entries.iter_mut().find(|(k, _)| *k == key) {
                Some(entry) => entry.1 = value,
                None => entries.push((key, value)),
            }
        }
        Ok(Json::Object(entries))
    }
}

impl<'de> Deserialize<'de> for Json {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Json, D::Error> {
        deserializer.deserialize_any(JsonVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_key_order_and_is_compact() {
        let value = Json::parse_lenient(r#"{ "b": 1, "a": [true, null, 2.5, "x\"y"] }"#);
        assert_eq!(value.to_text(), r#"{"b":1,"a":[true,null,2.5,"x\"y"]}"#);
        assert_eq!(Json::parse_lenient("not json").to_text(), r#""not json""#);
        assert_eq!(Json::Real(2.0).to_text(), "2.0");
    }

    #[test]
    fn numbers_compare_by_value() {
        assert!(Json::Int(2).same(&Json::Real(2.0)));
        assert!(!Json::Str("2".into()).same(&Json::Int(2)));
        assert_eq!(Json::Int(1).compare(&Json::Real(1.5)), Some(Ordering::Less));
    }
}
