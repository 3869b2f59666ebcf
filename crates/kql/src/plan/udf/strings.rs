//! String operators (`has`, `contains`, `=~`, ...) and string functions.
//!
//! Case-insensitive forms fold ASCII only (§2): non-ASCII letters compare exactly, which
//! byte-wise ASCII folding gives for free on UTF-8.

use super::{Strs, arg, bool_result, call, long_result, longs, string_result, strs};
use crate::plan::json::Json;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{DataFusionError, Result as DFResult};
use datafusion::logical_expr::{ColumnarValue, Expr};
use regex::Regex;
use std::sync::Arc;

/// The matching string operators (negations are `not` of these).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Match {
    Has,
    HasPrefix,
    HasSuffix,
    Contains,
    StartsWith,
    EndsWith,
    Equals,
}

fn is_term(c: char) -> bool {
    c.is_alphanumeric()
}

/// `needle` occurs in `hay` aligned to term boundaries (§5.3): at a start unless the
/// needle itself starts with a separator, and likewise at the end.
fn aligned(hay: &str, needle: &str, check_start: bool, check_end: bool) -> bool {
    if needle.is_empty() {
        return true;
    }
    let first_term = needle.chars().next().is_some_and(is_term);
    let last_term = needle.chars().next_back().is_some_and(is_term);
    let step = needle.chars().next().map_or(1, char::len_utf8);
    let mut from = 0;
    while let Some(found) = hay.get(from..).and_then(|rest| rest.find(needle)) {
        let start = from + found;
        let end = start + needle.len();
        let start_ok =
            !check_start || !first_term || !hay[..start].chars().next_back().is_some_and(is_term);
        let end_ok = !check_end || !last_term || !hay[end..].chars().next().is_some_and(is_term);
        if start_ok && end_ok {
            return true;
        }
        // Matches may overlap: the next candidate starts one character later.
        from = start + step;
    }
    false
}

/// Whether `hay` matches `needle` under `kind`; `needle` is already lowercased when
/// `case_sensitive` is false.
fn matches(kind: Match, case_sensitive: bool, hay: &str, needle: &str) -> bool {
    match kind {
        Match::Equals => {
            if case_sensitive {
                hay == needle
            } else {
                hay.eq_ignore_ascii_case(needle)
            }
        }
        Match::StartsWith => {
            hay.len() >= needle.len()
                && if case_sensitive {
                    hay.as_bytes().starts_with(needle.as_bytes())
                } else {
                    hay.as_bytes()[..needle.len()].eq_ignore_ascii_case(needle.as_bytes())
                }
        }
        Match::EndsWith => {
            hay.len() >= needle.len()
                && if case_sensitive {
                    hay.as_bytes().ends_with(needle.as_bytes())
                } else {
                    hay.as_bytes()[hay.len() - needle.len()..]
                        .eq_ignore_ascii_case(needle.as_bytes())
                }
        }
        Match::Contains | Match::Has | Match::HasPrefix | Match::HasSuffix => {
            let lowered;
            let hay = if case_sensitive {
                hay
            } else {
                lowered = hay.to_ascii_lowercase();
                &lowered
            };
            match kind {
                Match::Contains => hay.contains(needle),
                Match::Has => aligned(hay, needle, true, true),
                Match::HasPrefix => aligned(hay, needle, true, false),
                _ => aligned(hay, needle, false, true),
            }
        }
    }
}

/// `left <op> right` for a string operator; both sides are strings.
pub(crate) fn string_match(
    kind: Match,
    case_sensitive: bool,
    negated: bool,
    left: Expr,
    right: Expr,
) -> Expr {
    let name = format!(
        "kql_{}{}{}",
        if negated { "not_" } else { "" },
        format!("{kind:?}").to_ascii_lowercase(),
        if case_sensitive { "_cs" } else { "" }
    );
    call(
        name,
        DataType::Boolean,
        vec![left, right],
        move |args, rows| {
            let hay = strs(arg(args, 0, "match")?)?;
            let needle = strs(arg(args, 1, "match")?)?;
            let fold = |s: &str| {
                if case_sensitive {
                    s.to_string()
                } else {
                    s.to_ascii_lowercase()
                }
            };
            let constant = needle.constant().map(|n| fold(n.unwrap_or("")));
            Ok(bool_result(rows, |r| {
                let owned;
                let needle_text = match &constant {
                    Some(n) => n.as_str(),
                    None => {
                        owned = fold(needle.text(r));
                        owned.as_str()
                    }
                };
                Some(matches(kind, case_sensitive, hay.text(r), needle_text) != negated)
            }))
        },
    )
}

/// `has_any` / `has_all` over a constant list of terms.
pub(crate) fn has_terms(all: bool, left: Expr, terms: Vec<String>) -> Expr {
    let lowered: Vec<String> = terms.iter().map(|t| t.to_ascii_lowercase()).collect();
    let name = format!(
        "kql_has_{}{}",
        if all { "all" } else { "any" },
        Json::Array(terms.into_iter().map(Json::Str).collect()).to_text()
    );
    call(name, DataType::Boolean, vec![left], move |args, rows| {
        let hay = strs(arg(args, 0, "has_any")?)?;
        Ok(bool_result(rows, |r| {
            let text = hay.text(r).to_ascii_lowercase();
            let hit = |t: &String| aligned(&text, t, true, true);
            Some(if all {
                lowered.iter().all(hit)
            } else {
                lowered.iter().any(hit)
            })
        }))
    })
}

/// `in~` / `!in~` over a constant list of strings.
pub(crate) fn in_ci(negated: bool, left: Expr, items: Vec<String>) -> Expr {
    let mut lowered: Vec<String> = items.iter().map(|t| t.to_ascii_lowercase()).collect();
    lowered.sort();
    lowered.dedup();
    let name = format!(
        "kql_{}in_ci{}",
        if negated { "not_" } else { "" },
        Json::Array(lowered.iter().cloned().map(Json::Str).collect()).to_text()
    );
    // Most values have a length no item has, and are refused without being lowered; the
    // others are lowered into a buffer on the stack (this ran at a fifth of DuckDB's speed
    // when every row allocated its lowered copy).
    let longest = lowered.iter().map(String::len).max().unwrap_or(0);
    let mut lengths = vec![false; longest + 1];
    for item in &lowered {
        lengths[item.len()] = true;
    }
    call(name, DataType::Boolean, vec![left], move |args, rows| {
        let value = strs(arg(args, 0, "in~")?)?;
        let mut buf = [0u8; 256];
        Ok(bool_result(rows, |r| {
            let text = value.text(r).as_bytes();
            if !lengths.get(text.len()).copied().unwrap_or(false) {
                return Some(negated);
            }
            let found = match buf.get_mut(..text.len()) {
                Some(lower) => {
                    for (l, b) in lower.iter_mut().zip(text) {
                        *l = b.to_ascii_lowercase();
                    }
                    lowered
                        .binary_search_by(|item| item.as_bytes().cmp(lower))
                        .is_ok()
                }
                None => lowered
                    .binary_search(&String::from_utf8_lossy(text).to_ascii_lowercase())
                    .is_ok(),
            };
            Some(found != negated)
        }))
    })
}

/// Compiles a pattern, as a DataFusion error naming the function.
pub(crate) fn compile(pattern: &str, what: &str) -> DFResult<Regex> {
    Regex::new(pattern)
        .map_err(|e| DataFusionError::Execution(format!("{what}: invalid regular expression: {e}")))
}

/// A regex argument: compiled once when constant, per row otherwise.
struct Patterns {
    constant: Option<Option<Arc<Regex>>>,
    texts: Strs,
    what: &'static str,
}

impl Patterns {
    fn new(value: &ColumnarValue, what: &'static str) -> DFResult<Patterns> {
        let texts = strs(value)?;
        let constant = match texts.constant() {
            Some(Some(p)) => Some(Some(Arc::new(compile(p, what)?))),
            Some(None) => Some(None),
            None => None,
        };
        Ok(Patterns {
            constant,
            texts,
            what,
        })
    }

    fn get(&self, row: usize) -> DFResult<Option<Arc<Regex>>> {
        match &self.constant {
            Some(regex) => Ok(regex.clone()),
            None => match self.texts.get(row) {
                Some(p) => Ok(Some(Arc::new(compile(p, self.what)?))),
                None => Ok(None),
            },
        }
    }
}

/// `matches regex`: an unanchored RE2-style match.
pub(crate) fn matches_regex(left: Expr, pattern: Expr) -> Expr {
    call(
        "kql_matches_regex",
        DataType::Boolean,
        vec![left, pattern],
        |args, rows| {
            let text = strs(arg(args, 0, "matches regex")?)?;
            let patterns = Patterns::new(arg(args, 1, "matches regex")?, "matches regex")?;
            let mut out = Vec::with_capacity(rows);
            for r in 0..rows {
                out.push(patterns.get(r)?.map(|re| re.is_match(text.text(r))));
            }
            Ok(Arc::new(datafusion::arrow::array::BooleanArray::from(out)))
        },
    )
}

/// A string function of one string argument.
pub(crate) fn map_str(
    name: &str,
    value: Expr,
    f: impl Fn(&str) -> Option<String> + Send + Sync + 'static,
) -> Expr {
    call(
        format!("kql_{name}"),
        DataType::Utf8,
        vec![value],
        move |args, rows| {
            let s = strs(arg(args, 0, "string function")?)?;
            Ok(string_result(rows, |r| {
                Some(f(s.text(r)).unwrap_or_default())
            }))
        },
    )
}

pub(crate) fn strlen(value: Expr) -> Expr {
    call("kql_strlen", DataType::Int64, vec![value], |args, rows| {
        let s = strs(arg(args, 0, "strlen")?)?;
        Ok(long_result(
            rows,
            |r| Some(s.text(r).chars().count() as i64),
        ))
    })
}

/// `substring(s, start [, length])` in characters; negative start counts from the end.
pub(crate) fn substring(args_in: Vec<Expr>) -> Expr {
    call("kql_substring", DataType::Utf8, args_in, |args, rows| {
        let s = strs(arg(args, 0, "substring")?)?;
        let start = longs(arg(args, 1, "substring")?)?;
        let length = match args.get(2) {
            Some(v) => Some(longs(v)?),
            None => None,
        };
        Ok(string_result(rows, |r| {
            let chars: Vec<char> = s.text(r).chars().collect();
            let len = chars.len() as i64;
            let mut from = start.get(r)?;
            if from < 0 {
                from = (len + from).max(0);
            }
            let from = from.min(len);
            let to = match &length {
                Some(l) => {
                    let l = l.get(r)?;
                    if l < 0 {
                        return Some(String::new());
                    }
                    from.saturating_add(l).min(len)
                }
                None => len,
            };
            Some(chars[from as usize..to as usize].iter().collect())
        }))
    })
}

/// `split(s, delimiter [, index])`: a dynamic array of strings.
pub(crate) fn split(args_in: Vec<Expr>) -> Expr {
    call("kql_split", DataType::Utf8, args_in, |args, rows| {
        let s = strs(arg(args, 0, "split")?)?;
        let d = strs(arg(args, 1, "split")?)?;
        let index = match args.get(2) {
            Some(v) => Some(longs(v)?),
            None => None,
        };
        Ok(string_result(rows, |r| {
            let text = s.text(r);
            let delim = d.text(r);
            let parts: Vec<Json> = if delim.is_empty() {
                vec![Json::Str(text.to_string())]
            } else {
                text.split(delim)
                    .map(|p| Json::Str(p.to_string()))
                    .collect()
            };
            let parts = match &index {
                Some(i) => {
                    let i = i.get(r)?;
                    match usize::try_from(i).ok().and_then(|i| parts.get(i)) {
                        Some(part) => vec![part.clone()],
                        None => Vec::new(),
                    }
                }
                None => parts,
            };
            Some(Json::Array(parts).to_text())
        }))
    })
}

/// `strcat_array(array, delimiter)`
pub(crate) fn strcat_array(args_in: Vec<Expr>) -> Expr {
    call("kql_strcat_array", DataType::Utf8, args_in, |args, rows| {
        let a = strs(arg(args, 0, "strcat_array")?)?;
        let d = strs(arg(args, 1, "strcat_array")?)?;
        Ok(string_result(rows, |r| {
            let items = match a.get(r).map(Json::parse_lenient) {
                Some(Json::Array(items)) => items,
                _ => return Some(String::new()),
            };
            Some(
                items
                    .iter()
                    .map(Json::string_form)
                    .collect::<Vec<_>>()
                    .join(d.text(r)),
            )
        }))
    })
}

/// `replace_string(s, lookup, replacement)`
pub(crate) fn replace_string(args_in: Vec<Expr>) -> Expr {
    call(
        "kql_replace_string",
        DataType::Utf8,
        args_in,
        |args, rows| {
            let s = strs(arg(args, 0, "replace_string")?)?;
            let find = strs(arg(args, 1, "replace_string")?)?;
            let with = strs(arg(args, 2, "replace_string")?)?;
            Ok(string_result(rows, |r| {
                let f = find.text(r);
                Some(if f.is_empty() {
                    s.text(r).to_string()
                } else {
                    s.text(r).replace(f, with.text(r))
                })
            }))
        },
    )
}

/// Kusto's `\1` group references in a replacement, as the regex crate's `${1}`.
fn replacement_template(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek().is_some_and(|n| n.is_ascii_digit()) => {
                let digit = chars.next().unwrap_or('0');
                out.push_str(&format!("${{{digit}}}"));
            }
            '$' => out.push_str("$$"),
            other => out.push(other),
        }
    }
    out
}

/// `replace_regex(s, regex, replacement)`
pub(crate) fn replace_regex(args_in: Vec<Expr>) -> Expr {
    call(
        "kql_replace_regex",
        DataType::Utf8,
        args_in,
        |args, rows| {
            let s = strs(arg(args, 0, "replace_regex")?)?;
            let patterns = Patterns::new(arg(args, 1, "replace_regex")?, "replace_regex")?;
            let with = strs(arg(args, 2, "replace_regex")?)?;
            let mut out = Vec::with_capacity(rows);
            for r in 0..rows {
                let text = s.text(r);
                out.push(Some(match patterns.get(r)? {
                    Some(re) => re
                        .replace_all(text, replacement_template(with.text(r)).as_str())
                        .into_owned(),
                    None => text.to_string(),
                }));
            }
            Ok(Arc::new(datafusion::arrow::array::StringArray::from(out)))
        },
    )
}

/// `trim`, `trim_start`, `trim_end(regex, s)`: strip leading/trailing matches.
pub(crate) fn trim(start: bool, end: bool, args_in: Vec<Expr>) -> Expr {
    let name = format!("kql_trim_{start}_{end}");
    call(name, DataType::Utf8, args_in, move |args, rows| {
        let patterns = strs(arg(args, 0, "trim")?)?;
        let s = strs(arg(args, 1, "trim")?)?;
        let build = |p: &str| -> DFResult<(Regex, Regex)> {
            Ok((
                compile(&format!("^(?:{p})+"), "trim")?,
                compile(&format!("(?:{p})+$"), "trim")?,
            ))
        };
        let constant = match patterns.constant() {
            Some(p) => Some(build(p.unwrap_or(""))?),
            None => None,
        };
        let mut out = Vec::with_capacity(rows);
        for r in 0..rows {
            let owned;
            let (lead, trail) = match &constant {
                Some(pair) => pair,
                None => {
                    owned = build(patterns.text(r))?;
                    &owned
                }
            };
            let mut text = s.text(r);
            if start && let Some(m) = lead.find(text) {
                text = &text[m.end()..];
            }
            if end && let Some(m) = trail.find(text) {
                text = &text[..m.start()];
            }
            out.push(Some(text.to_string()));
        }
        Ok(Arc::new(datafusion::arrow::array::StringArray::from(out)))
    })
}

/// `translate(searchList, replacementList, source)`
pub(crate) fn translate(args_in: Vec<Expr>) -> Expr {
    call("kql_translate", DataType::Utf8, args_in, |args, rows| {
        let search = strs(arg(args, 0, "translate")?)?;
        let replace = strs(arg(args, 1, "translate")?)?;
        let source = strs(arg(args, 2, "translate")?)?;
        Ok(string_result(rows, |r| {
            let from: Vec<char> = search.text(r).chars().collect();
            let to: Vec<char> = replace.text(r).chars().collect();
            Some(
                source
                    .text(r)
                    .chars()
                    .filter_map(|c| match from.iter().position(|f| *f == c) {
                        None => Some(c),
                        Some(_) if to.is_empty() => None,
                        Some(i) => to.get(i).or(to.last()).copied(),
                    })
                    .collect(),
            )
        }))
    })
}

/// `indexof(s, lookup [, start [, length [, occurrence]]])`, in characters.
pub(crate) fn indexof(args_in: Vec<Expr>) -> Expr {
    call("kql_indexof", DataType::Int64, args_in, |args, rows| {
        let s = strs(arg(args, 0, "indexof")?)?;
        let find = strs(arg(args, 1, "indexof")?)?;
        let opt =
            |i: usize| -> DFResult<Option<super::Longs>> { args.get(i).map(longs).transpose() };
        let (start, length, nth) = (opt(2)?, opt(3)?, opt(4)?);
        Ok(long_result(rows, |r| {
            let chars: Vec<char> = s.text(r).chars().collect();
            let needle: Vec<char> = find.text(r).chars().collect();
            let len = chars.len() as i64;
            let mut from = match &start {
                Some(v) => v.get(r)?,
                None => 0,
            };
            if from < 0 {
                from = (len + from).max(0);
            }
            if from > len {
                return Some(-1);
            }
            let window = match &length {
                Some(v) => v.get(r)?,
                None => -1,
            };
            if window < -1 {
                return None;
            }
            let until = if window == -1 {
                len
            } else {
                (from + window).min(len)
            };
            let occurrence = match &nth {
                Some(v) => v.get(r)?,
                None => 1,
            };
            if occurrence < 0 {
                return None;
            }
            let mut seen = 0;
            let last_start = until - needle.len() as i64;
            let mut at = from;
            while at <= last_start {
                let a = at as usize;
                if chars[a..a + needle.len()] == needle[..] {
                    seen += 1;
                    if seen >= occurrence.max(1) {
                        return Some(at);
                    }
                }
                at += 1;
            }
            Some(-1)
        }))
    })
}

/// `countof(s, search [, "normal" | "regex"])`: plain matches overlap, regex ones do not.
pub(crate) fn countof(args_in: Vec<Expr>) -> Expr {
    call("kql_countof", DataType::Int64, args_in, |args, rows| {
        let s = strs(arg(args, 0, "countof")?)?;
        let find = strs(arg(args, 1, "countof")?)?;
        let kind = match args.get(2) {
            Some(v) => Some(strs(v)?),
            None => None,
        };
        let mut out = Vec::with_capacity(rows);
        for r in 0..rows {
            let text = s.text(r);
            let needle = find.text(r);
            let regex_mode = kind.as_ref().is_some_and(|k| k.text(r) == "regex");
            let count = if regex_mode {
                compile(needle, "countof")?.find_iter(text).count() as i64
            } else if needle.is_empty() {
                0
            } else {
                let step = needle.chars().next().map_or(1, char::len_utf8);
                let mut n = 0;
                let mut from = 0;
                while let Some(found) = text.get(from..).and_then(|t| t.find(needle)) {
                    n += 1;
                    from += found + step;
                }
                n
            };
            out.push(Some(count));
        }
        Ok(Arc::new(datafusion::arrow::array::Int64Array::from(out)))
    })
}

/// `strrep(value, n [, delimiter])`
pub(crate) fn strrep(args_in: Vec<Expr>) -> Expr {
    call("kql_strrep", DataType::Utf8, args_in, |args, rows| {
        let s = strs(arg(args, 0, "strrep")?)?;
        let n = longs(arg(args, 1, "strrep")?)?;
        let d = match args.get(2) {
            Some(v) => Some(strs(v)?),
            None => None,
        };
        Ok(string_result(rows, |r| {
            let times = n.get(r)?.clamp(0, 1024) as usize;
            let delim = d.as_ref().map_or("", |d| d.text(r));
            Some(vec![s.text(r); times].join(delim))
        }))
    })
}

/// `strcmp(a, b)`: -1, 0 or 1, ordinal.
pub(crate) fn strcmp(a: Expr, b: Expr) -> Expr {
    call("kql_strcmp", DataType::Int32, vec![a, b], |args, rows| {
        let a = strs(arg(args, 0, "strcmp")?)?;
        let b = strs(arg(args, 1, "strcmp")?)?;
        Ok(super::int_result(rows, |r| {
            Some(match a.text(r).cmp(b.text(r)) {
                std::cmp::Ordering::Less => -1,
                std::cmp::Ordering::Equal => 0,
                std::cmp::Ordering::Greater => 1,
            })
        }))
    })
}

/// `extract(regex, group, s)`: the group's text, `None` when there is no match.
pub(crate) fn extract(args_in: Vec<Expr>) -> Expr {
    call("kql_extract", DataType::Utf8, args_in, |args, rows| {
        let patterns = Patterns::new(arg(args, 0, "extract")?, "extract")?;
        let group = longs(arg(args, 1, "extract")?)?;
        let s = strs(arg(args, 2, "extract")?)?;
        let mut out = Vec::with_capacity(rows);
        for r in 0..rows {
            let value = match (patterns.get(r)?, group.get(r)) {
                (Some(re), Some(g)) if g >= 0 => re
                    .captures(s.text(r))
                    .and_then(|c| c.get(g as usize))
                    .map(|m| m.as_str().to_string()),
                _ => None,
            };
            out.push(value);
        }
        Ok(Arc::new(datafusion::arrow::array::StringArray::from(out)))
    })
}

/// `extract_all(regex, [groups,] s)`: a dynamic array of matches (arrays of groups when
/// the regex has several), null when nothing matches.
pub(crate) fn extract_all(args_in: Vec<Expr>) -> Expr {
    call("kql_extract_all", DataType::Utf8, args_in, |args, rows| {
        let patterns = Patterns::new(arg(args, 0, "extract_all")?, "extract_all")?;
        let (groups, s) = if args.len() == 3 {
            (
                Some(strs(arg(args, 1, "extract_all")?)?),
                strs(arg(args, 2, "extract_all")?)?,
            )
        } else {
            (None, strs(arg(args, 1, "extract_all")?)?)
        };
        let mut out = Vec::with_capacity(rows);
        for r in 0..rows {
            let Some(re) = patterns.get(r)? else {
                out.push(None);
                continue;
            };
            let chosen: Option<Vec<usize>> =
                groups
                    .as_ref()
                    .and_then(|g| match g.get(r).map(Json::parse_lenient) {
                        Some(Json::Array(items)) => Some(
                            items
                                .iter()
                                .filter_map(|i| match i {
                                    Json::Int(n) if *n >= 0 => Some(*n as usize),
                                    _ => None,
                                })
                                .collect(),
                        ),
                        _ => None,
                    });
            let group_count = re.captures_len() - 1;
            let mut matches = Vec::new();
            for caps in re.captures_iter(s.text(r)) {
                let text = |g: usize| {
                    caps.get(g)
                        .map_or(Json::Null, |m| Json::Str(m.as_str().to_string()))
                };
                let item = match &chosen {
                    Some(list) if list.len() == 1 => text(list[0]),
                    Some(list) => Json::Array(list.iter().map(|g| text(*g)).collect()),
                    None if group_count == 0 => text(0),
                    None if group_count == 1 => text(1),
                    None => Json::Array((1..=group_count).map(text).collect()),
                };
                matches.push(item);
            }
            out.push(if matches.is_empty() {
                None
            } else {
                Some(Json::Array(matches).to_text())
            });
        }
        Ok(Arc::new(datafusion::arrow::array::StringArray::from(out)))
    })
}

// ---- encodings and hashes -------------------------------------------------------------

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub(crate) fn hash(kind: &'static str, value: Expr) -> Expr {
    map_str(&format!("hash_{kind}"), value, move |s| {
        use sha2::Digest;
        Some(match kind {
            "sha256" => hex(&sha2::Sha256::digest(s.as_bytes())),
            "sha1" => hex(&sha1::Sha1::digest(s.as_bytes())),
            _ => hex(&md5::Md5::digest(s.as_bytes())),
        })
    })
}

/// `hash(x [, mod])`: Kusto's xxHash64 (seed 0) of the UTF-8 text, as a signed long
/// (`hash("World")` = 1846988464401551951). With `mod`, the unsigned hash modulo `mod`, so that
/// `hash(x, 10) == 0` samples a tenth whatever the sign of the hash.
pub(crate) fn xx_hash(args_in: Vec<Expr>) -> Expr {
    call("kql_hash", DataType::Int64, args_in, |args, rows| {
        let s = strs(arg(args, 0, "hash")?)?;
        let modulo = args.get(1).map(longs).transpose()?;
        Ok(long_result(rows, |r| {
            let h = twox_hash::XxHash64::oneshot(0, s.text(r).as_bytes());
            match &modulo {
                Some(m) => {
                    let m = m.get(r)?;
                    (m > 0).then(|| (h % m.unsigned_abs()) as i64)
                }
                None => Some(h as i64),
            }
        }))
    })
}

pub(crate) fn base64_encode(value: Expr) -> Expr {
    map_str("base64_encode", value, |s| {
        use base64::Engine;
        Some(base64::engine::general_purpose::STANDARD.encode(s.as_bytes()))
    })
}

fn base64_bytes(s: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    let trimmed = s.trim();
    base64::engine::general_purpose::STANDARD
        .decode(trimmed)
        .or_else(|_| {
            base64::engine::general_purpose::STANDARD_NO_PAD.decode(trimmed.trim_end_matches('='))
        })
        .ok()
}

pub(crate) fn base64_decode(value: Expr) -> Expr {
    map_str("base64_decode", value, |s| {
        base64_bytes(s).and_then(|b| String::from_utf8(b).ok())
    })
}

pub(crate) fn base64_decode_array(value: Expr) -> Expr {
    call(
        "kql_base64_decode_toarray",
        DataType::Utf8,
        vec![value],
        |args, rows| {
            let s = strs(arg(args, 0, "base64_decode_toarray")?)?;
            Ok(string_result(rows, |r| {
                let bytes = base64_bytes(s.text(r))?;
                Some(
                    Json::Array(bytes.into_iter().map(|b| Json::Int(i64::from(b))).collect())
                        .to_text(),
                )
            }))
        },
    )
}

/// `url_encode`: form style (space as `+`), unreserved characters kept.
pub(crate) fn url_encode(component: bool, value: Expr) -> Expr {
    let name = if component {
        "url_encode_component"
    } else {
        "url_encode"
    };
    map_str(name, value, move |s| {
        let mut out = String::with_capacity(s.len());
        for b in s.bytes() {
            match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    out.push(b as char)
                }
                b' ' if !component => out.push('+'),
                other => out.push_str(&format!("%{other:02x}")),
            }
        }
        Some(out)
    })
}

/// Percent-decoding (and `+` as space); `None` for malformed UTF-8.
pub(crate) fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let h = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match h.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(v) => {
                        out.push(v);
                        i += 3;
                    }
                    None => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            other => {
                out.push(other);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

pub(crate) fn url_decode(value: Expr) -> Expr {
    map_str("url_decode", value, percent_decode)
}
