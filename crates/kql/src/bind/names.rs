//! Output column naming (§4.0, §7): what an unnamed expression or aggregate is called,
//! how collisions are resolved, and wildcard matching for `project-away` and friends.
//!
//! Names are part of the result contract: partner tools read columns by name, and a
//! query that works on the service must produce the same names here.

use crate::ast::{Expr, ExprKind, Literal};
use std::cmp::Ordering;

/// Functions whose result is named after their first argument (§4.0 rule 4).
const NAMED_AFTER_FIRST_ARG: &[&str] = &[
    "tostring",
    "tolong",
    "toint",
    "toreal",
    "todouble",
    "tobool",
    "toboolean",
    "todatetime",
    "totimespan",
    "totime",
    "toguid",
    "todecimal",
    "todynamic",
    "toobject",
    "parse_json",
    "parsejson",
    "bin",
    "floor",
    "bin_at",
    "startofday",
    "format_datetime",
    "format_timespan",
    "round",
    "abs",
    "pow",
    "sqrt",
    "log",
    "log2",
    "log10",
    "exp",
    "exp2",
    "exp10",
    "split",
];

/// The name an unnamed expression takes, if the rules give it one: a column keeps its
/// name, dynamic paths join their parts with `_`, conversions and `bin` take their first
/// argument's name, `strlen(x)` is `strlen_x`. `None` means "next `ColumnN`".
pub fn derived_name(expr: &Expr) -> Option<String> {
    match &expr.kind {
        ExprKind::Name(name) => Some(name.text.clone()),
        ExprKind::Member { target, name } => {
            Some(format!("{}_{}", derived_name(target)?, name.text))
        }
        ExprKind::Index { target, index } => {
            let part = match &index.kind {
                ExprKind::Literal(Literal::String(key)) => key.clone(),
                ExprKind::Literal(Literal::Long(i)) => i.to_string(),
                ExprKind::Literal(Literal::Int(i)) => i.to_string(),
                _ => return None,
            };
            Some(format!("{}_{part}", derived_name(target)?))
        }
        ExprKind::Call(call) => {
            let first = call.args.first()?;
            let function = call.name.text.as_str();
            if NAMED_AFTER_FIRST_ARG.contains(&function) {
                derived_name(first)
            } else if function == "strlen" {
                Some(format!("strlen_{}", derived_name(first)?))
            } else {
                None
            }
        }
        _ => None,
    }
}

/// `base` if free, else `base1`, `base2`, ... (rule 7: smallest free suffix from 1).
pub fn unique(base: &str, taken: impl Fn(&str) -> bool) -> String {
    if !taken(base) {
        return base.to_string();
    }
    (1..)
        .map(|n| format!("{base}{n}"))
        .find(|candidate| !taken(candidate))
        .unwrap_or_else(|| base.to_string())
}

/// The first free `ColumnN` (rule 5).
pub fn next_column_name(taken: impl Fn(&str) -> bool) -> String {
    (1..)
        .map(|n| format!("Column{n}"))
        .find(|candidate| !taken(candidate))
        .unwrap_or_else(|| "Column".to_string())
}

/// Whether `name` matches a pattern where `*` stands for any run of characters.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == name;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !name.starts_with(first) || name.len() < first.len() + last.len() || !name.ends_with(last) {
        return false;
    }
    let mut rest = &name[first.len()..name.len() - last.len()];
    for middle in &parts[1..parts.len() - 1] {
        match rest.find(middle) {
            Some(at) => rest = &rest[at + middle.len()..],
            None => return false,
        }
    }
    true
}

/// "Natural" order for `granny-asc`: digit runs compare by value (`a2` < `a10`).
pub fn natural_cmp(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (a.chars().peekable(), b.chars().peekable());
    loop {
        match (a.peek().copied(), b.peek().copied()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) if x.is_ascii_digit() && y.is_ascii_digit() => {
                let take = |it: &mut std::iter::Peekable<std::str::Chars<'_>>| {
                    let mut digits = String::new();
                    while let Some(c) = it.peek().copied().filter(char::is_ascii_digit) {
                        digits.push(c);
                        it.next();
                    }
                    digits
                };
                let (da, db) = (take(&mut a), take(&mut b));
                let (ta, tb) = (da.trim_start_matches('0'), db.trim_start_matches('0'));
                let order = ta.len().cmp(&tb.len()).then_with(|| ta.cmp(tb));
                if order != Ordering::Equal {
                    return order;
                }
            }
            (Some(x), Some(y)) => {
                let order = x.cmp(&y);
                if order != Ordering::Equal {
                    return order;
                }
                a.next();
                b.next();
            }
        }
    }
}

/// The number in an aggregate name: `95` -> `95`, `99.9` -> `99_9`.
pub fn number_part(literal: &Literal) -> Option<String> {
    match literal {
        Literal::Long(v) => Some(v.to_string()),
        Literal::Int(v) => Some(v.to_string()),
        Literal::Real(v) => Some(v.to_string().replace('.', "_")),
        Literal::Decimal(text) => Some(text.replace('.', "_")),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match("Device*", "DeviceName"));
        assert!(glob_match("*Name", "DeviceName"));
        assert!(glob_match("A*B*", "AxxBy"));
        assert!(glob_match("*", "x"));
        assert!(!glob_match("A*B", "AB_"));
        assert!(!glob_match("Name", "name"));
        assert!(!glob_match("ab*ba", "aba"));
    }

    #[test]
    fn suffixes() {
        let taken = ["count_", "count_1"];
        assert_eq!(unique("count_", |n| taken.contains(&n)), "count_2");
        assert_eq!(unique("x", |n| taken.contains(&n)), "x");
        assert_eq!(next_column_name(|n| n == "Column1"), "Column2");
    }

    #[test]
    fn natural() {
        assert_eq!(natural_cmp("a2", "a10"), Ordering::Less);
        assert_eq!(natural_cmp("b", "a10"), Ordering::Greater);
    }
}
