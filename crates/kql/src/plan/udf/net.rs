//! IP addresses (§6.7), URLs, paths and command lines (§6.4).

use super::{Strs, arg, bool_result, call, int_result, long_result, string_result, strs};
use crate::plan::json::Json;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::Result as DFResult;
use datafusion::logical_expr::Expr;
use std::net::{Ipv4Addr, Ipv6Addr};

/// `a.b.c.d[/n]` as (address, prefix length).
pub(crate) fn parse_v4(text: &str) -> Option<(u32, u32)> {
    let text = text.trim();
    let (addr, prefix) = match text.split_once('/') {
        Some((a, p)) => (a, p.trim().parse::<u32>().ok().filter(|p| *p <= 32)?),
        None => (text, 32),
    };
    let ip: Ipv4Addr = addr.trim().parse().ok()?;
    Some((u32::from(ip), prefix))
}

fn mask(prefix: u32) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - prefix)
    }
}

pub(crate) fn parse_ipv4(value: Expr) -> Expr {
    call(
        "kql_parse_ipv4",
        DataType::Int64,
        vec![value],
        |args, rows| {
            let s = strs(arg(args, 0, "parse_ipv4")?)?;
            Ok(long_result(rows, |r| {
                let (addr, prefix) = parse_v4(s.get(r)?)?;
                Some(i64::from(addr & mask(prefix)))
            }))
        },
    )
}

pub(crate) fn parse_ipv4_mask(args_in: Vec<Expr>) -> Expr {
    call(
        "kql_parse_ipv4_mask",
        DataType::Int64,
        args_in,
        |args, rows| {
            let s = strs(arg(args, 0, "parse_ipv4_mask")?)?;
            let m = super::longs(arg(args, 1, "parse_ipv4_mask")?)?;
            Ok(long_result(rows, |r| {
                let (addr, prefix) = parse_v4(s.get(r)?)?;
                let given = u32::try_from(m.get(r)?).ok().filter(|p| *p <= 32)?;
                Some(i64::from(addr & mask(prefix.min(given))))
            }))
        },
    )
}

pub(crate) fn ipv4_is_private(value: Expr) -> Expr {
    call(
        "kql_ipv4_is_private",
        DataType::Boolean,
        vec![value],
        |args, rows| {
            let s = strs(arg(args, 0, "ipv4_is_private")?)?;
            Ok(bool_result(rows, |r| {
                let (addr, _) = parse_v4(s.get(r)?)?;
                let ip = Ipv4Addr::from(addr);
                let [a, b, ..] = ip.octets();
                Some(a == 10 || (a == 172 && (16..=31).contains(&b)) || (a == 192 && b == 168))
            }))
        },
    )
}

/// Ranges given as strings or dynamic arrays of strings.
fn ranges(values: &[Strs], row: usize) -> Vec<String> {
    let mut out = Vec::new();
    for v in values {
        match v.get(row).map(Json::parse_lenient) {
            Some(Json::Array(items)) => out.extend(items.iter().map(Json::string_form)),
            Some(other) => out.push(other.string_form()),
            None => {}
        }
    }
    out
}

/// `ipv4_is_in_range(ip, range)` and `ipv4_is_in_any_range(ip, range, ...)`.
pub(crate) fn ipv4_in_ranges(args_in: Vec<Expr>) -> Expr {
    call(
        "kql_ipv4_in_ranges",
        DataType::Boolean,
        args_in,
        |args, rows| {
            let ip = strs(arg(args, 0, "ipv4_is_in_range")?)?;
            let rest: Vec<Strs> = args[1..].iter().map(strs).collect::<DFResult<_>>()?;
            Ok(bool_result(rows, |r| {
                let (addr, own) = parse_v4(ip.get(r)?)?;
                let mut any = false;
                for range in ranges(&rest, r) {
                    let (net, prefix) = parse_v4(&range)?;
                    let m = mask(prefix.min(own));
                    any |= addr & m == net & m;
                }
                Some(any)
            }))
        },
    )
}

/// `ipv4_compare(a, b [, prefix])` (-1/0/1) or, with `is_match`, whether they are equal.
pub(crate) fn ipv4_compare(is_match: bool, args_in: Vec<Expr>) -> Expr {
    let ret = if is_match {
        DataType::Boolean
    } else {
        DataType::Int32
    };
    call(
        format!("kql_ipv4_compare_{is_match}"),
        ret,
        args_in,
        move |args, rows| {
            let a = strs(arg(args, 0, "ipv4_compare")?)?;
            let b = strs(arg(args, 1, "ipv4_compare")?)?;
            let n = args.get(2).map(super::longs).transpose()?;
            let compare = |r: usize| -> Option<i32> {
                let (x, px) = parse_v4(a.get(r)?)?;
                let (y, py) = parse_v4(b.get(r)?)?;
                let mut prefix = px.min(py);
                if let Some(n) = &n {
                    prefix = prefix.min(u32::try_from(n.get(r)?).ok().filter(|p| *p <= 32)?);
                }
                let m = mask(prefix);
                Some((x & m).cmp(&(y & m)) as i32)
            };
            Ok(if is_match {
                bool_result(rows, |r| compare(r).map(|c| c == 0))
            } else {
                int_result(rows, compare)
            })
        },
    )
}

fn parse_v6(text: &str) -> Option<(u128, u32)> {
    let text = text.trim();
    let (addr, prefix) = match text.split_once('/') {
        Some((a, p)) => (a, Some(p.trim().parse::<u32>().ok()?)),
        None => (text, None),
    };
    if let Ok(v6) = addr.parse::<Ipv6Addr>() {
        let prefix = prefix.unwrap_or(128);
        return (prefix <= 128).then_some((u128::from(v6), prefix));
    }
    let v4: Ipv4Addr = addr.parse().ok()?;
    let prefix = prefix.unwrap_or(32);
    (prefix <= 32).then_some((u128::from(v4.to_ipv6_mapped()), prefix + 96))
}

fn mask6(prefix: u32) -> u128 {
    if prefix == 0 {
        0
    } else {
        u128::MAX << (128 - prefix)
    }
}

pub(crate) fn ipv6_compare(is_match: bool, args_in: Vec<Expr>) -> Expr {
    let ret = if is_match {
        DataType::Boolean
    } else {
        DataType::Int32
    };
    call(
        format!("kql_ipv6_compare_{is_match}"),
        ret,
        args_in,
        move |args, rows| {
            let a = strs(arg(args, 0, "ipv6_compare")?)?;
            let b = strs(arg(args, 1, "ipv6_compare")?)?;
            let n = args.get(2).map(super::longs).transpose()?;
            let compare = |r: usize| -> Option<i32> {
                let (x, px) = parse_v6(a.get(r)?)?;
                let (y, py) = parse_v6(b.get(r)?)?;
                let mut prefix = px.min(py);
                if let Some(n) = &n {
                    prefix = prefix.min(u32::try_from(n.get(r)?).ok().filter(|p| *p <= 128)?);
                }
                let m = mask6(prefix);
                Some((x & m).cmp(&(y & m)) as i32)
            };
            Ok(if is_match {
                bool_result(rows, |r| compare(r).map(|c| c == 0))
            } else {
                int_result(rows, compare)
            })
        },
    )
}

/// Dotted-number tokens of `text` bounded by characters that are neither alphanumeric nor
/// dots (so `1.2.3.4.5` is one token, not an address).
fn dotted_tokens(text: &str) -> Vec<&str> {
    let mut tokens = Vec::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i].is_ascii_digit()
            && (i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'.'))
        {
            let start = i;
            while i < bytes.len() && (bytes[i].is_ascii_digit() || bytes[i] == b'.') {
                i += 1;
            }
            let followed_by_word = i < bytes.len() && bytes[i].is_ascii_alphanumeric();
            if !followed_by_word {
                tokens.push(text[start..i].trim_end_matches('.'));
            }
        } else {
            i += 1;
        }
    }
    tokens
}

/// `has_ipv4(text, ip)`, `has_any_ipv4(text, ip, ...)`, `has_ipv4_prefix(text, prefix)`,
/// `has_any_ipv4_prefix(text, prefix, ...)`.
pub(crate) fn has_ipv4(prefix: bool, args_in: Vec<Expr>) -> Expr {
    call(
        format!("kql_has_ipv4_{prefix}"),
        DataType::Boolean,
        args_in,
        move |args, rows| {
            let text = strs(arg(args, 0, "has_ipv4")?)?;
            let rest: Vec<Strs> = args[1..].iter().map(strs).collect::<DFResult<_>>()?;
            Ok(bool_result(rows, |r| {
                let wanted = ranges(&rest, r);
                let tokens = dotted_tokens(text.text(r));
                Some(tokens.iter().any(|token| {
                    token.parse::<Ipv4Addr>().is_ok()
                        && wanted.iter().any(|w| {
                            if prefix {
                                let w = w.trim_end_matches('.');
                                token.starts_with(w)
                                    && (token.len() == w.len() || token.as_bytes()[w.len()] == b'.')
                            } else {
                                token == w
                            }
                        })
                }))
            }))
        },
    )
}

/// `format_ipv4(ip [, prefix])`; the address may be text or a number.
pub(crate) fn format_ipv4(args_in: Vec<Expr>) -> Expr {
    call("kql_format_ipv4", DataType::Utf8, args_in, |args, rows| {
        let s = strs(arg(args, 0, "format_ipv4")?)?;
        let n = args.get(1).map(super::longs).transpose()?;
        Ok(string_result(rows, |r| {
            let text = s.text(r);
            let (addr, own) = match text.parse::<u64>() {
                Ok(v) => (u32::try_from(v).ok()?, 32),
                Err(_) => parse_v4(text)?,
            };
            let mut prefix = own;
            if let Some(n) = &n {
                prefix = prefix.min(u32::try_from(n.get(r)?).ok().filter(|p| *p <= 32)?);
            }
            Some(Ipv4Addr::from(addr & mask(prefix)).to_string())
        }))
    })
}

// ---- URLs ------------------------------------------------------------------------------

fn query_bag(query: &str) -> Json {
    let mut entries: Vec<(String, Json)> = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let key = super::strings::percent_decode(k).unwrap_or_else(|| k.to_string());
        let value = super::strings::percent_decode(v).unwrap_or_else(|| v.to_string());
        match entries.iter_mut().find(|(existing, _)| *existing == key) {
            Some(entry) => entry.1 = Json::Str(value),
            None => entries.push((key, Json::Str(value))),
        }
    }
    Json::Object(entries)
}

fn url_bag(url: &str) -> Json {
    let Some((scheme, rest)) = url.split_once("://") else {
        return Json::Object(Vec::new());
    };
    if scheme.is_empty()
        || !scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
    {
        return Json::Object(Vec::new());
    }
    let (rest, fragment) = rest.split_once('#').unwrap_or((rest, ""));
    let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let (userinfo, hostport) = match authority.rfind('@') {
        Some(i) => (&authority[..i], &authority[i + 1..]),
        None => ("", authority),
    };
    let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
    let (host, port) = if hostport.starts_with('[') {
        match hostport.find(']') {
            Some(i) => (&hostport[..=i], hostport[i + 1..].trim_start_matches(':')),
            None => (hostport, ""),
        }
    } else {
        hostport.split_once(':').unwrap_or((hostport, ""))
    };
    let s = |t: &str| Json::Str(t.to_string());
    Json::Object(vec![
        ("Scheme".into(), s(scheme)),
        ("Host".into(), s(host)),
        ("Port".into(), s(port)),
        ("Path".into(), s(path)),
        ("Username".into(), s(user)),
        ("Password".into(), s(password)),
        ("Query Parameters".into(), query_bag(query)),
        ("Fragment".into(), s(fragment)),
    ])
}

pub(crate) fn parse_url(value: Expr) -> Expr {
    call(
        "kql_parse_url",
        DataType::Utf8,
        vec![value],
        |args, rows| {
            let s = strs(arg(args, 0, "parse_url")?)?;
            Ok(string_result(rows, |r| Some(url_bag(s.text(r)).to_text())))
        },
    )
}

pub(crate) fn parse_urlquery(value: Expr) -> Expr {
    call(
        "kql_parse_urlquery",
        DataType::Utf8,
        vec![value],
        |args, rows| {
            let s = strs(arg(args, 0, "parse_urlquery")?)?;
            Ok(string_result(rows, |r| {
                let q = s.text(r);
                let q = q.strip_prefix('?').unwrap_or(q);
                Some(Json::Object(vec![("Query Parameters".into(), query_bag(q))]).to_text())
            }))
        },
    )
}

// ---- paths and command lines ---------------------------------------------------------

fn path_bag(path: &str) -> Json {
    let (scheme, body) = match path.split_once("://") {
        Some((scheme, rest)) if !scheme.contains(['\\', '/']) => (scheme, rest),
        _ => ("", path),
    };
    let body = body.strip_prefix(r"\\?\").unwrap_or(body);
    let is_sep = |c: char| c == '\\' || c == '/';
    let (directory, file) = match body.rfind(is_sep) {
        Some(i) => (&body[..i], &body[i + 1..]),
        None => ("", body),
    };
    let (file, stream) = match file.split_once(':') {
        Some((f, s)) if !f.is_empty() => (f, s),
        _ => (file, ""),
    };
    let root = if body.len() >= 2
        && body.as_bytes()[1] == b':'
        && body.as_bytes()[0].is_ascii_alphabetic()
    {
        &body[..2]
    } else if body.starts_with(r"\\") || body.starts_with("//") {
        // \\server\share
        let rest = &body[2..];
        let server_end = rest.find(is_sep).map_or(rest.len(), |i| i);
        let after = &rest[(server_end + 1).min(rest.len())..];
        let share_end = after.find(is_sep).map_or(after.len(), |i| i);
        &body[..(2 + server_end + 1 + share_end).min(body.len())]
    } else {
        ""
    };
    let directory_name = directory.rsplit(is_sep).next().unwrap_or("");
    let extension = match file.rfind('.') {
        Some(i) if i + 1 < file.len() => &file[i + 1..],
        _ => "",
    };
    let s = |t: &str| Json::Str(t.to_string());
    Json::Object(vec![
        ("Scheme".into(), s(scheme)),
        ("RootPath".into(), s(root)),
        ("DirectoryPath".into(), s(directory)),
        ("DirectoryName".into(), s(directory_name)),
        ("Filename".into(), s(file)),
        ("Extension".into(), s(extension)),
        ("AlternateDataStreamName".into(), s(stream)),
    ])
}

pub(crate) fn parse_path(value: Expr) -> Expr {
    call(
        "kql_parse_path",
        DataType::Utf8,
        vec![value],
        |args, rows| {
            let s = strs(arg(args, 0, "parse_path")?)?;
            Ok(string_result(rows, |r| Some(path_bag(s.text(r)).to_text())))
        },
    )
}

/// `CommandLineToArgvW`: the program name ends at the first space outside quotes and
/// takes no escapes; later arguments follow the backslash-quote rules.
fn windows_argv(line: &str) -> Vec<String> {
    let chars: Vec<char> = line.chars().collect();
    let mut args = Vec::new();
    let mut i = 0;
    // Program name.
    let mut program = String::new();
    let mut quoted = false;
    while i < chars.len() {
        let c = chars[i];
        if c == '"' {
            quoted = !quoted;
        } else if (c == ' ' || c == '\t') && !quoted {
            break;
        } else {
            program.push(c);
        }
        i += 1;
    }
    if line.is_empty() {
        return args;
    }
    args.push(program);
    loop {
        while i < chars.len() && (chars[i] == ' ' || chars[i] == '\t') {
            i += 1;
        }
        if i >= chars.len() {
            break;
        }
        let mut arg = String::new();
        let mut quoted = false;
        while i < chars.len() {
            let c = chars[i];
            if c == '\\' {
                let mut backslashes = 0;
                while i < chars.len() && chars[i] == '\\' {
                    backslashes += 1;
                    i += 1;
                }
                if i < chars.len() && chars[i] == '"' {
                    arg.extend(std::iter::repeat_n('\\', backslashes / 2));
                    if backslashes % 2 == 1 {
                        arg.push('"');
                        i += 1;
                    }
                } else {
                    arg.extend(std::iter::repeat_n('\\', backslashes));
                }
                continue;
            }
            if c == '"' {
                if quoted && i + 1 < chars.len() && chars[i + 1] == '"' {
                    arg.push('"');
                    i += 2;
                    continue;
                }
                quoted = !quoted;
                i += 1;
                continue;
            }
            if (c == ' ' || c == '\t') && !quoted {
                break;
            }
            arg.push(c);
            i += 1;
        }
        args.push(arg);
    }
    args
}

pub(crate) fn parse_command_line(args_in: Vec<Expr>) -> Expr {
    call(
        "kql_parse_command_line",
        DataType::Utf8,
        args_in,
        |args, rows| {
            let s = strs(arg(args, 0, "parse_command_line")?)?;
            let kind = strs(arg(args, 1, "parse_command_line")?)?;
            Ok(string_result(rows, |r| {
                if !kind.text(r).eq_ignore_ascii_case("windows") {
                    return None;
                }
                Some(
                    Json::Array(windows_argv(s.text(r)).into_iter().map(Json::Str).collect())
                        .to_text(),
                )
            }))
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argv_rules() {
        assert_eq!(
            windows_argv(r#""C:\Program Files\a.exe" -x "a b" c\\"d e" f\"g"#),
            vec![r"C:\Program Files\a.exe", "-x", "a b", r"c\d e", "f\"g"]
        );
    }

    #[test]
    fn paths() {
        assert_eq!(
            path_bag(r"C:\temp\a.txt").to_text(),
            r#"{"Scheme":"","RootPath":"C:","DirectoryPath":"C:\\temp","DirectoryName":"temp","Filename":"a.txt","Extension":"txt","AlternateDataStreamName":""}"#
        );
    }

    #[test]
    fn tokens() {
        assert_eq!(
            dotted_tokens("a 10.0.0.1, 1.2.3.4.5 x9.9.9.9"),
            vec!["10.0.0.1", "1.2.3.4.5"]
        );
    }
}
