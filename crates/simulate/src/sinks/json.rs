//! Hand-written JSON for the NDJSON sink: rows are written straight from cells into a reused
//! buffer, without building a `serde_json::Value` per row.

use crate::Cell;
use crate::time;
use std::io::Write;

/// Appends `s` as a JSON string literal.
pub fn push_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let esc: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0..=0x1F => {
                out.extend_from_slice(&bytes[start..i]);
                let _ = write!(out, "\\u{b:04x}");
                start = i + 1;
                continue;
            }
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        out.extend_from_slice(esc);
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// Appends a cell as a JSON value (datetimes as ISO-8601 strings with 7 fractional digits).
pub fn push_cell(out: &mut Vec<u8>, c: &Cell<'_>) {
    match *c {
        Cell::Null => out.extend_from_slice(b"null"),
        Cell::Bool(b) => out.extend_from_slice(if b { b"true" } else { b"false" }),
        Cell::Int(x) => {
            let _ = write!(out, "{x}");
        }
        Cell::Long(x) => {
            let _ = write!(out, "{x}");
        }
        Cell::Real(x) if x.is_finite() => {
            let _ = write!(out, "{x}");
        }
        Cell::Real(_) => out.extend_from_slice(b"null"),
        Cell::Str(s) => push_str(out, s),
        Cell::Time(ns) => push_time(out, ns),
    }
}

pub fn push_time(out: &mut Vec<u8>, ns: i64) {
    let mut b = [0u8; time::ISO_LEN];
    out.push(b'"');
    out.extend_from_slice(time::iso(ns, &mut b).as_bytes());
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    #[test]
    fn strings_escape_like_serde() {
        for s in [
            "plain",
            r#"C:\Windows\"quoted""#,
            "tab\tnew\nline\u{1}",
            "ünïcödé",
        ] {
            let mut out = Vec::new();
            super::push_str(&mut out, s);
            assert_eq!(
                String::from_utf8(out).unwrap(),
                serde_json::to_string(s).unwrap()
            );
        }
    }
}
