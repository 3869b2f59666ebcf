//! The normal form of URLs, one for indicators and observed events alike, so that equal URLs
//! compare equal however they were written: scheme and host in lower case, no default port, no
//! trailing dot on the host, percent-escapes of unreserved characters decoded and the other
//! escapes in upper case (RFC 3986 §6.2.2), no fragment.

use std::borrow::Cow;

/// A URL split for matching.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UrlKey {
    /// `http` or `https`; `None` when the text had no scheme (a bare `host/path`).
    pub scheme: Option<Scheme>,
    /// The host in lower case, with `:port` when the port is not the scheme's default.
    pub host: String,
    /// Path and query, normalised; empty for the host alone.
    pub path: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scheme {
    Http,
    Https,
}

/// A URL split as far as matching needs before anything is allocated: the host in normal form
/// (borrowed when the text has it so) and the rest as written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UrlParts<'a> {
    pub scheme: Option<Scheme>,
    /// The host in lower case without a trailing dot, port or credentials.
    pub name: Cow<'a, str>,
    /// The port, when it is not the scheme's default.
    pub port: Option<&'a str>,
    /// Path and query as written.
    pub tail: &'a str,
}

impl<'a> UrlParts<'a> {
    /// Splits `text`; `None` when it has no host or a scheme other than http(s).
    pub fn of(text: &'a str) -> Option<UrlParts<'a>> {
        let text = text.trim();
        let (scheme, rest) = match text.find("://") {
            Some(i) => {
                let s = &text[..i];
                let scheme = if s.eq_ignore_ascii_case("http") {
                    Scheme::Http
                } else if s.eq_ignore_ascii_case("https") {
                    Scheme::Https
                } else {
                    return None;
                };
                (Some(scheme), &text[i + 3..])
            }
            None => (None, text),
        };
        let rest = rest.split('#').next().unwrap_or("");
        let end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(end);
        // Credentials are never part of what an indicator names.
        let authority = authority.rsplit('@').next().unwrap_or(authority);
        let (host, port) = split_port(authority);
        let host = host.trim_end_matches('.');
        if host.is_empty() {
            return None;
        }
        let name = match host.bytes().any(|b| b.is_ascii_uppercase()) {
            true => Cow::Owned(host.to_ascii_lowercase()),
            false => Cow::Borrowed(host),
        };
        let default_port = match scheme {
            Some(Scheme::Http) => port == Some("80"),
            Some(Scheme::Https) => port == Some("443"),
            None => matches!(port, Some("80" | "443")),
        };
        let port = port.filter(|p| !default_port && !p.is_empty());
        Some(UrlParts {
            scheme,
            name,
            port,
            tail,
        })
    }

    /// The host as URL indicators are filed under: with its port when not the default.
    pub fn host(&self) -> Cow<'_, str> {
        match self.port {
            Some(p) => Cow::Owned(format!("{}:{p}", self.name)),
            None => Cow::Borrowed(&self.name),
        }
    }

    /// The host name for domain matching (an IPv6 literal keeps its brackets).
    pub fn host_name(&self) -> &str {
        match self.name.find(']') {
            Some(i) => &self.name[..=i],
            None => self.name.split(':').next().unwrap_or(&self.name),
        }
    }

    /// The whole URL in normal form.
    pub fn key(&self) -> UrlKey {
        UrlKey {
            scheme: self.scheme,
            host: self.host().into_owned(),
            path: normalise_escapes(self.tail),
        }
    }
}

impl UrlKey {
    /// Splits and normalises `text`; `None` when it has no host or a scheme other than http(s).
    pub fn parse(text: &str) -> Option<UrlKey> {
        UrlParts::of(text).map(|p| p.key())
    }

    /// Whether `self`, a URL indicator, covers `observed`: same host, the scheme unless either
    /// side has none, and the observed path at or below the indicator's (a path ends at `/`, `?`
    /// or the end, so `/a` covers `/a/b` and `/a?x` but not `/ab`).
    pub fn covers(&self, observed: &UrlKey) -> bool {
        if self.host != observed.host {
            return false;
        }
        schemes_agree(self.scheme, observed.scheme) && path_covers(&self.path, &observed.path)
    }

    /// The host without its port, for domain matching.
    pub fn host_name(&self) -> &str {
        match self.host.find(']') {
            Some(i) => &self.host[..=i],
            None => self.host.split(':').next().unwrap_or(&self.host),
        }
    }
}

/// Whether an indicator's scheme admits an observed one: equal, or either side has none.
pub(crate) fn schemes_agree(indicator: Option<Scheme>, observed: Option<Scheme>) -> bool {
    match (indicator, observed) {
        (Some(a), Some(b)) => a == b,
        _ => true,
    }
}

/// An indicator path without its trailing `/`, which covers the same observed paths (`/a/`
/// covers `/a` as `/a` does).
pub(crate) fn path_key(path: &str) -> &str {
    path.strip_suffix('/').unwrap_or(path)
}

/// Whether the indicator path `prefix` covers the observed `path`.
pub fn path_covers(prefix: &str, path: &str) -> bool {
    let prefix = path_key(prefix);
    if prefix.is_empty() {
        return true;
    }
    match path.strip_prefix(prefix) {
        Some(rest) => rest.is_empty() || rest.starts_with(['/', '?']),
        None => false,
    }
}

fn split_port(authority: &str) -> (&str, Option<&str>) {
    if authority.starts_with('[') {
        return match authority.find(']') {
            Some(i) => {
                let port = authority[i + 1..].strip_prefix(':');
                (&authority[..=i], port)
            }
            None => (authority, None),
        };
    }
    match authority.rsplit_once(':') {
        // More than one colon: an IPv6 address written without brackets.
        Some((h, _)) if h.contains(':') => (authority, None),
        Some((h, p)) => (h, Some(p)),
        None => (authority, None),
    }
}

/// Decodes `%XX` of unreserved characters and upper-cases the hex digits of the others.
fn normalise_escapes(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            let b = h << 4 | l;
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
                out.push(char::from(b));
            } else {
                out.push('%');
                out.push(char::from(bytes[i + 1].to_ascii_uppercase()));
                out.push(char::from(bytes[i + 2].to_ascii_uppercase()));
            }
            i += 3;
            continue;
        }
        // Copy the run up to the next escape whole (it may hold multi-byte characters).
        let next = s[i + 1..].find('%').map_or(s.len(), |j| i + 1 + j);
        out.push_str(&s[i..next]);
        i = next;
    }
    out
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}
