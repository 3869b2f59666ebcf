//! Plain lists: one value per line, its type detected from its shape.
//!
//! `#` starts a comment line; a `#` after whitespace starts a comment at the end of a value
//! line (URLs have no whitespace, so their `#fragment` is safe), and that comment becomes the
//! indicator's description. Values published "defanged" (`hxxp://evil[.]com`) are re-fanged.

use crate::collect::Collector;
use crate::{Defaults, Format, Origin, Parsed};
use rampart_core::indicator::{IndicatorRequest, IndicatorType, normalize_domain};
use std::net::IpAddr;

/// Reads a plain list. Nothing makes the whole file unreadable: a line that is not UTF-8 is
/// an error for that line.
pub fn parse(bytes: &[u8], defaults: &Defaults) -> Parsed {
    let mut c = Collector::new(Format::Txt, defaults);
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    for (i, raw) in bytes.split(|b| *b == b'\n').enumerate() {
        let origin = Origin::Line(i + 1);
        let Ok(line) = std::str::from_utf8(raw) else {
            c.error(origin, "the line is not UTF-8 text");
            continue;
        };
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (value, comment) = split_comment(line);
        let value = refang(value);
        let ty = match detect(&value) {
            Ok(ty) => ty,
            Err(reason) => {
                c.error(origin, reason);
                continue;
            }
        };
        let request = IndicatorRequest {
            indicator_value: Some(value),
            indicator_type: Some(ty),
            description: comment.map(str::to_owned),
            ..IndicatorRequest::default()
        };
        c.push(origin, ty.as_str(), request);
    }
    c.finish()
}

/// The value and the comment after it, if any.
fn split_comment(line: &str) -> (&str, Option<&str>) {
    let mut prev_space = false;
    for (i, ch) in line.char_indices() {
        if ch == '#' && prev_space {
            let comment = line[i + 1..].trim();
            return (line[..i].trim(), (!comment.is_empty()).then_some(comment));
        }
        prev_space = ch.is_whitespace();
    }
    (line, None)
}

/// Undoes the common ways of defanging a value: `hxxp(s)://`, `[.]`, `(.)`, `{.}`, `[dot]`,
/// `[:]`, `[://]`.
pub fn refang(v: &str) -> String {
    let mut s = v
        .replace("[.]", ".")
        .replace("(.)", ".")
        .replace("{.}", ".")
        .replace("[dot]", ".")
        .replace("[DOT]", ".")
        .replace("[://]", "://")
        .replace("[:]", ":");
    if s.len() >= 4 && s[..4].eq_ignore_ascii_case("hxxp") {
        s.replace_range(..4, "http");
    }
    s
}

/// The indicator type a value's shape says, or why it has none. The value is checked for that
/// type afterwards, by the core's normalisers.
fn detect(v: &str) -> Result<IndicatorType, String> {
    if v.bytes().all(|b| b.is_ascii_hexdigit()) {
        match v.len() {
            32 => return Ok(IndicatorType::FileMd5),
            40 => return Ok(IndicatorType::FileSha1),
            64 => return Ok(IndicatorType::FileSha256),
            // Long hex runs are hashes with a digit missing or extra, not host names.
            n if n >= 16 => {
                return Err(format!(
                    "'{}' looks like a hash but has {n} hexadecimal digits; MD5 has 32, SHA-1 40, SHA-256 64",
                    crate::shorten(v)
                ));
            }
            _ => {}
        }
    }
    if v.contains("://") {
        return Ok(IndicatorType::Url);
    }
    if looks_like_ip(v) {
        return Ok(IndicatorType::IpAddress);
    }
    if v.contains('/') {
        // `host/path` without a scheme: a URL, as MDE reads it.
        return Ok(IndicatorType::Url);
    }
    normalize_domain(v)
        .map(|_| IndicatorType::DomainName)
        .map_err(|m| format!("not a hash, IP address, URL or domain name: {m}"))
}

/// An address or network, or something meant as one (`256.1.1.1`, `1.2.3.4-1.2.3.9`), so
/// that its error speaks of addresses rather than domain names.
fn looks_like_ip(v: &str) -> bool {
    let addr = v.split_once('/').map_or(v, |(a, _)| a);
    if addr.is_empty() {
        return false;
    }
    addr.parse::<IpAddr>().is_ok()
        || addr
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'*'))
        || (addr.matches(':').count() >= 2
            && addr
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || matches!(b, b':' | b'.' | b'%')))
}
