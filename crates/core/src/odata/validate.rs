//! Query option parsing and checking against an [`EntitySet`].
//!
//! Everything a client names is looked up case-insensitively (as MDE does) and replaced by its
//! canonical spelling, so that later stages compare names exactly and only ever emit names that
//! come from the entity set, never from the request.
//!
//! `$select` rule: each name must be an identifier; names that match a field are canonicalised,
//! other identifiers are kept as given (the API layer projects the JSON documents by name and
//! rejects names the entity does not have, since an entity has more properties than it indexes).

use super::lexer::{parse_datetime, shorten};
use super::parser::parse_filter;
use super::{
    CmpOp, EntitySet, Field, FieldType, Filter, Literal, MAX_TOP, ODataError, OrderBy, QueryOptions,
};

/// Most `$orderby` keys accepted: each one widens the keyset predicate and the index needed.
pub const MAX_ORDERBY_KEYS: usize = 4;

const SUPPORTED: &str = "$filter, $top, $skip, $orderby, $select, $count, $expand, $skiptoken";

pub(crate) fn parse_options(
    pairs: &[(String, String)],
    set: &EntitySet,
) -> Result<QueryOptions, ODataError> {
    let mut q = QueryOptions {
        top: MAX_TOP,
        ..QueryOptions::default()
    };
    let mut seen: Vec<String> = Vec::new();
    for (key, value) in pairs {
        // Parameters without `$` belong to the route (e.g. an API version), not to OData.
        let Some(name) = key.strip_prefix('$') else {
            continue;
        };
        let name = name.to_ascii_lowercase();
        let option = format!("${name}");
        if seen.contains(&name) {
            return Err(ODataError::new(
                option.clone(),
                format!("the query option {option} is given more than once"),
            ));
        }
        seen.push(name.clone());
        match name.as_str() {
            "filter" => q.filter = Some(check_filter(parse_filter(value)?, set)?),
            "top" => q.top = parse_top(value)?,
            "skip" => q.skip = parse_skip(value)?,
            "orderby" => q.orderby = parse_orderby(value, set)?,
            "select" => q.select = parse_select(value, set)?,
            "count" => q.count = parse_count(value)?,
            "expand" => q.expand = parse_expand(value, set)?,
            "skiptoken" => q.skiptoken = Some(value.clone()),
            _ => {
                let shown = shorten(key);
                return Err(ODataError::new(
                    shown.clone(),
                    format!("the query option '{shown}' is not supported; supported: {SUPPORTED}"),
                ));
            }
        }
    }
    Ok(q)
}

fn parse_top(value: &str) -> Result<u32, ODataError> {
    let v = value.trim();
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ODataError::new(
            "$top",
            format!(
                "$top must be a whole number from 0 to {MAX_TOP}, not '{}'",
                shorten(value)
            ),
        ));
    }
    match v.parse::<u64>() {
        Ok(n) if n <= u64::from(MAX_TOP) => Ok(n as u32),
        _ => Err(ODataError::new(
            "$top",
            format!(
                "$top may be at most {MAX_TOP} (the maximum page size), not {}",
                shorten(v)
            ),
        )),
    }
}

fn parse_skip(value: &str) -> Result<u64, ODataError> {
    let v = value.trim();
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ODataError::new(
            "$skip",
            format!(
                "$skip must be a whole number of at least 0, not '{}'",
                shorten(value)
            ),
        ));
    }
    v.parse::<u64>()
        .map_err(|_| ODataError::new("$skip", format!("$skip {} is too large", shorten(v))))
}

fn parse_count(value: &str) -> Result<bool, ODataError> {
    match value.trim() {
        v if v.eq_ignore_ascii_case("true") => Ok(true),
        v if v.eq_ignore_ascii_case("false") => Ok(false),
        _ => Err(ODataError::new(
            "$count",
            format!("$count must be true or false, not '{}'", shorten(value)),
        )),
    }
}

fn parse_orderby(value: &str, set: &EntitySet) -> Result<Vec<OrderBy>, ODataError> {
    let mut keys: Vec<OrderBy> = Vec::new();
    for item in value.split(',') {
        let words: Vec<&str> = item.split_whitespace().collect();
        let (name, descending) = match words.as_slice() {
            [name] => (*name, false),
            [name, dir] if dir.eq_ignore_ascii_case("asc") => (*name, false),
            [name, dir] if dir.eq_ignore_ascii_case("desc") => (*name, true),
            [] => {
                return Err(ODataError::new(
                    "$orderby",
                    "$orderby has an empty entry; write e.g. $orderby=alertCreationTime desc",
                ));
            }
            _ => {
                return Err(ODataError::new(
                    "$orderby",
                    format!(
                        "$orderby entry '{}' must be a property optionally followed by asc or desc",
                        shorten(item.trim())
                    ),
                ));
            }
        };
        let field = lookup(set, name, "$orderby", |f| {
            f.sortable && f.ty != FieldType::StringCollection
        })?;
        if keys.iter().any(|k| k.field.name == field.name) {
            return Err(ODataError::new(
                field.name,
                format!("$orderby names '{}' more than once", field.name),
            ));
        }
        keys.push(OrderBy { field, descending });
        if keys.len() > MAX_ORDERBY_KEYS {
            return Err(ODataError::new(
                "$orderby",
                format!("$orderby may name at most {MAX_ORDERBY_KEYS} properties"),
            ));
        }
    }
    Ok(keys)
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn parse_select(value: &str, set: &EntitySet) -> Result<Option<Vec<String>>, ODataError> {
    let mut names = Vec::new();
    for item in value.split(',').map(str::trim) {
        if item == "*" {
            // `$select=*` is OData for "everything".
            return Ok(None);
        }
        if !is_identifier(item) {
            return Err(ODataError::new(
                "$select",
                format!("$select entry '{}' is not a property name", shorten(item)),
            ));
        }
        let name = set
            .field(item)
            .map_or_else(|| item.to_owned(), |f| f.name.to_owned());
        if !names.contains(&name) {
            names.push(name);
        }
    }
    Ok(Some(names))
}

fn parse_expand(value: &str, set: &EntitySet) -> Result<Vec<String>, ODataError> {
    let mut out: Vec<String> = Vec::new();
    for item in value.split(',').map(str::trim) {
        let Some(canonical) = set.expand.iter().find(|e| e.eq_ignore_ascii_case(item)) else {
            let can = if set.expand.is_empty() {
                format!("{} has no expandable properties", set.name)
            } else {
                format!("expandable: {}", set.expand.join(", "))
            };
            return Err(ODataError::new(
                "$expand",
                format!("$expand: '{}' cannot be expanded; {can}", shorten(item)),
            ));
        };
        if !out.iter().any(|e| e == canonical) {
            out.push((*canonical).to_owned());
        }
    }
    Ok(out)
}

/// Finds a field that `allowed` admits for `option`, or explains why not (with a suggestion).
fn lookup(
    set: &EntitySet,
    name: &str,
    option: &str,
    allowed: impl Fn(&Field) -> bool,
) -> Result<&'static Field, ODataError> {
    let shown = shorten(name);
    match set.field(name) {
        Some(f) if allowed(f) => Ok(f),
        Some(f) => {
            let why = if f.ty == FieldType::StringCollection && option == "$filter" {
                format!(
                    "'{0}' is a collection: filter it with {0}/any(t: t eq 'value')",
                    f.name
                )
            } else if f.ty == FieldType::StringCollection {
                format!(
                    "'{}' is a collection and cannot be used in {option}",
                    f.name
                )
            } else {
                format!("'{}' cannot be used in {option}", f.name)
            };
            Err(ODataError::new(f.name, why))
        }
        None => {
            let candidates: Vec<&str> = set
                .fields
                .iter()
                .filter(|f| allowed(f))
                .map(|f| f.name)
                .collect();
            let hint = match closest(name, &candidates) {
                Some(c) => format!("; did you mean '{c}'?"),
                None if candidates.is_empty() => format!("; {} has none that can", set.name),
                None => format!("; properties that can: {}", candidates.join(", ")),
            };
            Err(ODataError::new(
                shown.clone(),
                format!("{option}: {} has no property '{shown}'{hint}", set.name),
            ))
        }
    }
}

/// The candidate nearest to `name` by edit distance, when it is near enough to be a typo.
fn closest<'a>(name: &str, candidates: &[&'a str]) -> Option<&'a str> {
    // Bounded so that a huge name cannot make the suggestion quadratic in request size.
    if name.len() > 64 {
        return None;
    }
    let name = name.to_ascii_lowercase();
    let limit = (name.chars().count() / 3).max(2);
    candidates
        .iter()
        .map(|c| (edit_distance(&name, &c.to_ascii_lowercase()), *c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Levenshtein distance over chars.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let subst = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = subst.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// What a name inside `$filter` refers to.
enum Target {
    Field(&'static Field),
    /// The variable of the enclosing `any` lambda: one string element.
    Var(String),
}

/// Checks a parsed filter against `set`, returning it with canonical names and typed literals.
pub(crate) fn check_filter(f: Filter, set: &EntitySet) -> Result<Filter, ODataError> {
    check(f, set, None)
}

fn check(f: Filter, set: &EntitySet, lambda: Option<(&str, &str)>) -> Result<Filter, ODataError> {
    Ok(match f {
        Filter::And(a, b) => Filter::And(
            Box::new(check(*a, set, lambda)?),
            Box::new(check(*b, set, lambda)?),
        ),
        Filter::Or(a, b) => Filter::Or(
            Box::new(check(*a, set, lambda)?),
            Box::new(check(*b, set, lambda)?),
        ),
        Filter::Not(a) => Filter::Not(Box::new(check(*a, set, lambda)?)),
        Filter::Compare { field, op, value } => match resolve(&field, set, lambda)? {
            Target::Field(fd) => Filter::Compare {
                field: fd.name.to_owned(),
                op,
                value: check_literal(fd, op, value)?,
            },
            Target::Var(var) => {
                let value = check_element_literal(&var, op, value)?;
                Filter::Compare {
                    field: var,
                    op,
                    value,
                }
            }
        },
        Filter::In { field, values } => {
            let target = resolve(&field, set, lambda)?;
            let mut checked = Vec::with_capacity(values.len());
            for v in values {
                let name = match &target {
                    Target::Field(fd) => fd.name.to_owned(),
                    Target::Var(var) => var.clone(),
                };
                if v == Literal::Null {
                    // SQL's `IN (NULL)` matches nothing, which would surprise; say how to ask.
                    return Err(ODataError::new(
                        name.clone(),
                        format!(
                            "$filter: null cannot appear in an in (…) list; use {name} eq null"
                        ),
                    ));
                }
                checked.push(match &target {
                    Target::Field(fd) => check_literal(fd, CmpOp::Eq, v)?,
                    Target::Var(var) => check_element_literal(var, CmpOp::Eq, v)?,
                });
            }
            let field = match target {
                Target::Field(fd) => fd.name.to_owned(),
                Target::Var(var) => var,
            };
            Filter::In {
                field,
                values: checked,
            }
        }
        Filter::StrFn { func, field, value } => match resolve(&field, set, lambda)? {
            Target::Field(fd) => {
                if !matches!(fd.ty, FieldType::String | FieldType::Enum(_)) {
                    return Err(ODataError::new(
                        fd.name,
                        format!(
                            "$filter: startswith, endswith and contains apply to text properties; '{}' is {}",
                            fd.name,
                            describe_type(fd.ty)
                        ),
                    ));
                }
                Filter::StrFn {
                    func,
                    field: fd.name.to_owned(),
                    value,
                }
            }
            Target::Var(var) => Filter::StrFn {
                func,
                field: var,
                value,
            },
        },
        Filter::Any {
            field,
            var,
            predicate,
        } => {
            if let Some((outer_field, _)) = lambda {
                return Err(ODataError::new(
                    shorten(&field),
                    format!("$filter: any() cannot be nested inside {outer_field}/any(…)"),
                ));
            }
            let fd = lookup(set, &field, "$filter", |f| f.filterable)?;
            if fd.ty != FieldType::StringCollection {
                return Err(ODataError::new(
                    fd.name,
                    format!(
                        "$filter: any() applies to collection properties; '{}' is {}",
                        fd.name,
                        describe_type(fd.ty)
                    ),
                ));
            }
            let predicate = check(*predicate, set, Some((fd.name, &var)))?;
            Filter::Any {
                field: fd.name.to_owned(),
                var,
                predicate: Box::new(predicate),
            }
        }
    })
}

fn resolve(
    name: &str,
    set: &EntitySet,
    lambda: Option<(&str, &str)>,
) -> Result<Target, ODataError> {
    if let Some((collection, var)) = lambda {
        if name.eq_ignore_ascii_case(var) {
            return Ok(Target::Var(var.to_owned()));
        }
        let shown = shorten(name);
        return Err(ODataError::new(
            shown.clone(),
            format!(
                "$filter: inside {collection}/any({var}: …) only the variable '{var}' may be used, not '{shown}'"
            ),
        ));
    }
    lookup(set, name, "$filter", |f| {
        f.filterable && f.ty != FieldType::StringCollection
    })
    .map(Target::Field)
}

fn describe_type(ty: FieldType) -> &'static str {
    match ty {
        FieldType::String => "a string",
        FieldType::Enum(_) => "an enumeration",
        FieldType::Int => "a whole number",
        FieldType::Bool => "a boolean",
        FieldType::DateTime => "a datetime",
        FieldType::StringCollection => "a collection of strings",
    }
}

fn describe_literal(l: &Literal) -> String {
    match l {
        Literal::Null => "null".to_owned(),
        Literal::String(s) => format!("the string '{}'", shorten(s)),
        Literal::Int(i) => format!("the number {i}"),
        Literal::Bool(b) => b.to_string(),
        Literal::DateTime(t) => format!("the datetime {}", crate::timefmt::format(*t)),
    }
}

fn null_check(name: &str, op: CmpOp) -> Result<Literal, ODataError> {
    if matches!(op, CmpOp::Eq | CmpOp::Ne) {
        Ok(Literal::Null)
    } else {
        Err(ODataError::new(
            name,
            format!("$filter: '{name}' can be compared with null only by eq or ne"),
        ))
    }
}

/// Checks a literal compared with `fd`, converting it where the field's type asks.
fn check_literal(fd: &Field, op: CmpOp, value: Literal) -> Result<Literal, ODataError> {
    let name = fd.name;
    let ordering = !matches!(op, CmpOp::Eq | CmpOp::Ne);
    let mismatch = |value: &Literal, expected: &str| {
        ODataError::new(
            name,
            format!(
                "$filter: '{name}' is {}; expected {expected}, found {}",
                describe_type(fd.ty),
                describe_literal(value)
            ),
        )
    };
    match (fd.ty, value) {
        (_, Literal::Null) => null_check(name, op),
        (FieldType::String, v @ Literal::String(_)) => Ok(v),
        (FieldType::Enum(variants), Literal::String(s)) => {
            if ordering {
                // Text order of enum names ("High" < "Low") is not their meaning; refuse rather
                // than answer wrongly.
                return Err(ODataError::new(
                    name,
                    format!("$filter: '{name}' is an enumeration: only eq, ne and in apply"),
                ));
            }
            match variants.iter().find(|v| v.eq_ignore_ascii_case(&s)) {
                Some(v) => Ok(Literal::String((*v).to_owned())),
                None => Err(ODataError::new(
                    name,
                    format!(
                        "$filter: '{}' is not a valid {name}; valid values: {}",
                        shorten(&s),
                        variants.join(", ")
                    ),
                )),
            }
        }
        (FieldType::Int, v @ Literal::Int(_)) => Ok(v),
        (FieldType::Bool, v @ Literal::Bool(_)) => {
            if ordering {
                return Err(ODataError::new(
                    name,
                    format!("$filter: '{name}' is a boolean: only eq and ne apply"),
                ));
            }
            Ok(v)
        }
        (FieldType::DateTime, v @ Literal::DateTime(_)) => Ok(v),
        // Some clients quote datetimes; accept them when they parse.
        (FieldType::DateTime, Literal::String(s)) => {
            parse_datetime(&s).map(Literal::DateTime).ok_or_else(|| {
                mismatch(
                    &Literal::String(s),
                    "an ISO 8601 datetime such as 2024-01-31T00:00:00Z",
                )
            })
        }
        (FieldType::String, v) => Err(mismatch(&v, "a quoted string such as 'text'")),
        (FieldType::Enum(_), v) => Err(mismatch(&v, "one of its values in single quotes")),
        (FieldType::Int, v) => Err(mismatch(&v, "a whole number")),
        (FieldType::Bool, v) => Err(mismatch(&v, "true or false")),
        (FieldType::DateTime, v) => Err(mismatch(
            &v,
            "an ISO 8601 datetime such as 2024-01-31T00:00:00Z",
        )),
        (FieldType::StringCollection, _) => Err(ODataError::new(
            name,
            format!(
                "$filter: '{name}' is a collection: filter it with {name}/any(t: t eq 'value')"
            ),
        )),
    }
}

/// Checks a literal compared with the lambda variable (one string of a collection).
fn check_element_literal(var: &str, op: CmpOp, value: Literal) -> Result<Literal, ODataError> {
    match value {
        Literal::Null => null_check(var, op),
        v @ Literal::String(_) => Ok(v),
        v => Err(ODataError::new(
            var,
            format!(
                "$filter: '{var}' stands for one string of the collection; expected a quoted string, found {}",
                describe_literal(&v)
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::odata::StrFn;

    static TEST_SET: EntitySet = EntitySet {
        name: "Things",
        fields: &[
            Field::new("id", FieldType::String),
            Field::new("severity", FieldType::Enum(&["Low", "Medium", "High"])),
            Field::new("incidentId", FieldType::Int),
            Field::new("isActive", FieldType::Bool),
            Field::new("alertCreationTime", FieldType::DateTime),
            Field::new("machineTags", FieldType::StringCollection),
            Field {
                name: "secret",
                ty: FieldType::String,
                filterable: false,
                sortable: false,
                nullable: true,
            },
        ],
        expand: &["evidence"],
    };

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }
    fn opts(p: &[(&str, &str)]) -> Result<QueryOptions, ODataError> {
        QueryOptions::parse(&pairs(p), &TEST_SET)
    }
    fn filter(src: &str) -> Result<Filter, ODataError> {
        opts(&[("$filter", src)]).map(|q| q.filter.unwrap())
    }
    fn filter_err(src: &str) -> ODataError {
        filter(src).unwrap_err()
    }
    fn cmp(field: &str, op: CmpOp, value: Literal) -> Filter {
        Filter::Compare {
            field: field.into(),
            op,
            value,
        }
    }

    #[test]
    fn defaults() {
        let q = opts(&[("api-version", "1"), ("filter", "ignored")]).unwrap();
        assert_eq!(
            q,
            QueryOptions {
                top: MAX_TOP,
                ..QueryOptions::default()
            }
        );
    }

    #[test]
    fn every_option() {
        let q = opts(&[
            ("$filter", "severity eq 'high'"),
            ("$TOP", "25"),
            ("$skip", "50"),
            ("$orderby", "alertCreationTime desc, ID"),
            ("$select", "ID,title"),
            ("$count", "TRUE"),
            ("$expand", "Evidence"),
            ("$skiptoken", "abc"),
        ])
        .unwrap();
        assert_eq!(
            q.filter,
            Some(cmp("severity", CmpOp::Eq, Literal::String("High".into())))
        );
        assert_eq!(q.top, 25);
        assert_eq!(q.skip, 50);
        assert_eq!(q.orderby.len(), 2);
        assert_eq!(
            (q.orderby[0].field.name, q.orderby[0].descending),
            ("alertCreationTime", true)
        );
        assert_eq!(
            (q.orderby[1].field.name, q.orderby[1].descending),
            ("id", false)
        );
        assert_eq!(q.select, Some(vec!["id".to_owned(), "title".to_owned()]));
        assert!(q.count);
        assert_eq!(q.expand, vec!["evidence".to_owned()]);
        assert_eq!(q.skiptoken.as_deref(), Some("abc"));
    }

    #[test]
    fn top_bounds() {
        assert_eq!(opts(&[("$top", "0")]).unwrap().top, 0);
        assert_eq!(opts(&[("$top", "10000")]).unwrap().top, 10_000);
        let e = opts(&[("$top", "10001")]).unwrap_err();
        assert_eq!(e.target, "$top");
        assert!(e.message.contains("at most 10000"), "{}", e.message);
        assert!(
            opts(&[("$top", "99999999999999999999999")])
                .unwrap_err()
                .message
                .contains("at most 10000")
        );
        for bad in ["-1", "", "ten", "1.5"] {
            assert_eq!(opts(&[("$top", bad)]).unwrap_err().target, "$top", "{bad}");
        }
    }

    #[test]
    fn skip_and_count_values() {
        assert_eq!(
            opts(&[("$skip", "18446744073709551615")]).unwrap().skip,
            u64::MAX
        );
        assert_eq!(opts(&[("$skip", "-1")]).unwrap_err().target, "$skip");
        assert_eq!(
            opts(&[("$skip", "18446744073709551616")])
                .unwrap_err()
                .target,
            "$skip"
        );
        assert!(!opts(&[("$count", "false")]).unwrap().count);
        assert_eq!(opts(&[("$count", "yes")]).unwrap_err().target, "$count");
    }

    #[test]
    fn unknown_and_duplicate_options() {
        let e = opts(&[("$search", "x")]).unwrap_err();
        assert_eq!(e.target, "$search");
        assert!(
            e.message.contains("'$search' is not supported"),
            "{}",
            e.message
        );
        let e = opts(&[("$top", "1"), ("$Top", "2")]).unwrap_err();
        assert_eq!(e.target, "$top");
        assert!(e.message.contains("more than once"));
    }

    #[test]
    fn orderby_rules() {
        let q = opts(&[("$orderby", "severity ASC,incidentId   DESC")]).unwrap();
        assert_eq!(
            q.orderby
                .iter()
                .map(|o| (o.field.name, o.descending))
                .collect::<Vec<_>>(),
            vec![("severity", false), ("incidentId", true)]
        );
        let e = opts(&[("$orderby", "sevrity")]).unwrap_err();
        assert_eq!(e.target, "sevrity");
        assert!(
            e.message.contains("did you mean 'severity'?"),
            "{}",
            e.message
        );
        assert!(
            opts(&[("$orderby", "secret")])
                .unwrap_err()
                .message
                .contains("cannot be used in $orderby")
        );
        assert!(
            opts(&[("$orderby", "machineTags")])
                .unwrap_err()
                .message
                .contains("collection")
        );
        assert!(
            opts(&[("$orderby", "id sideways")])
                .unwrap_err()
                .message
                .contains("asc or desc")
        );
        assert!(
            opts(&[("$orderby", "id,,severity")])
                .unwrap_err()
                .message
                .contains("empty entry")
        );
        assert!(
            opts(&[("$orderby", "id, ID desc")])
                .unwrap_err()
                .message
                .contains("more than once")
        );
        let five = opts(&[(
            "$orderby",
            "id,severity,incidentId,isActive,alertCreationTime",
        )])
        .unwrap_err();
        assert!(five.message.contains("at most 4"), "{}", five.message);
    }

    #[test]
    fn select_and_expand_rules() {
        assert_eq!(opts(&[("$select", "*")]).unwrap().select, None);
        assert_eq!(
            opts(&[("$select", "severity, Severity,anything")])
                .unwrap()
                .select,
            Some(vec!["severity".into(), "anything".into()])
        );
        assert_eq!(opts(&[("$select", "a-b")]).unwrap_err().target, "$select");
        assert_eq!(opts(&[("$select", "")]).unwrap_err().target, "$select");
        let e = opts(&[("$expand", "machine")]).unwrap_err();
        assert_eq!(e.target, "$expand");
        assert!(e.message.contains("expandable: evidence"), "{}", e.message);
        let e = QueryOptions::parse(&pairs(&[("$expand", "x")]), &crate::audit::AUDIT).unwrap_err();
        assert!(e.message.contains("no expandable"), "{}", e.message);
    }

    #[test]
    fn filter_fields_are_canonicalised() {
        assert_eq!(
            filter("INCIDENTID ge 3").unwrap(),
            cmp("incidentId", CmpOp::Ge, Literal::Int(3))
        );
        assert_eq!(
            filter("startswith(ID,'a')").unwrap(),
            Filter::StrFn {
                func: StrFn::StartsWith,
                field: "id".into(),
                value: "a".into()
            }
        );
        assert_eq!(
            filter("severity in ('low','HIGH')").unwrap(),
            Filter::In {
                field: "severity".into(),
                values: vec![
                    Literal::String("Low".into()),
                    Literal::String("High".into())
                ]
            }
        );
    }

    #[test]
    fn unknown_field_suggests_closest() {
        let e = filter_err("sevrity eq 'High'");
        assert_eq!(e.target, "sevrity");
        assert!(
            e.message.contains("no property 'sevrity'")
                && e.message.contains("did you mean 'severity'?"),
            "{}",
            e.message
        );
        let e = filter_err("zzzzzzzzzz eq 1");
        assert!(
            e.message.contains("properties that can: id, severity"),
            "{}",
            e.message
        );
        let e = filter_err("secret eq 'x'");
        assert_eq!(e.target, "secret");
        assert!(
            e.message.contains("cannot be used in $filter"),
            "{}",
            e.message
        );
    }

    #[test]
    fn literal_types_must_match() {
        assert!(filter("id eq 'x'").is_ok());
        assert!(
            filter_err("id eq 5")
                .message
                .contains("expected a quoted string")
        );
        assert!(
            filter_err("incidentId eq '5'")
                .message
                .contains("a whole number")
        );
        assert!(filter("isActive eq true").is_ok());
        assert!(
            filter_err("isActive eq 1")
                .message
                .contains("true or false")
        );
        assert!(
            filter_err("isActive gt false")
                .message
                .contains("only eq and ne")
        );
        assert!(
            filter_err("severity eq 1")
                .message
                .contains("in single quotes")
        );
        assert!(
            filter_err("severity gt 'Low'")
                .message
                .contains("only eq, ne and in")
        );
        let e = filter_err("severity eq 'Critical'");
        assert_eq!(e.target, "severity");
        assert!(
            e.message.contains("valid values: Low, Medium, High"),
            "{}",
            e.message
        );
        assert!(
            filter_err("alertCreationTime gt 5")
                .message
                .contains("ISO 8601")
        );
        assert!(
            filter_err("alertCreationTime gt 'yesterday'")
                .message
                .contains("ISO 8601")
        );
    }

    #[test]
    fn quoted_datetimes_are_accepted() {
        let t = crate::timefmt::parse("2024-01-01T00:00:00Z").unwrap();
        assert_eq!(
            filter("alertCreationTime gt '2024-01-01T00:00:00Z'").unwrap(),
            cmp("alertCreationTime", CmpOp::Gt, Literal::DateTime(t))
        );
        assert_eq!(
            filter("alertCreationTime gt 2024-01-01").unwrap(),
            cmp("alertCreationTime", CmpOp::Gt, Literal::DateTime(t))
        );
    }

    #[test]
    fn null_only_with_eq_and_ne() {
        for f in [
            "id eq null",
            "severity ne null",
            "incidentId eq null",
            "isActive ne null",
            "alertCreationTime eq null",
        ] {
            assert!(filter(f).is_ok(), "{f}");
        }
        assert!(
            filter_err("incidentId gt null")
                .message
                .contains("only by eq or ne")
        );
        assert!(
            filter_err("id in ('a', null)")
                .message
                .contains("null cannot appear")
        );
    }

    #[test]
    fn string_functions_only_on_text() {
        assert!(filter("contains(severity,'ig')").is_ok());
        let e = filter_err("contains(incidentId,'1')");
        assert_eq!(e.target, "incidentId");
        assert!(e.message.contains("text properties"), "{}", e.message);
    }

    #[test]
    fn any_rules() {
        assert_eq!(
            filter("MACHINETAGS/any(t: T eq 'x' or contains(t,'y'))").unwrap(),
            Filter::Any {
                field: "machineTags".into(),
                var: "t".into(),
                predicate: Box::new(Filter::Or(
                    Box::new(cmp("t", CmpOp::Eq, Literal::String("x".into()))),
                    Box::new(Filter::StrFn {
                        func: StrFn::Contains,
                        field: "t".into(),
                        value: "y".into()
                    })
                ))
            }
        );
        assert!(filter("machineTags/any(t: t in ('a','b') and not t eq 'c')").is_ok());
        assert!(
            filter_err("machineTags eq 'x'")
                .message
                .contains("machineTags/any(t: t eq 'value')")
        );
        assert!(
            filter_err("startswith(machineTags,'x')")
                .message
                .contains("collection")
        );
        assert!(
            filter_err("severity/any(t: t eq 'x')")
                .message
                .contains("any() applies to collection")
        );
        let e = filter_err("machineTags/any(t: severity eq 'High')");
        assert_eq!(e.target, "severity");
        assert!(e.message.contains("only the variable 't'"), "{}", e.message);
        assert!(
            filter_err("machineTags/any(t: t eq 5)")
                .message
                .contains("quoted string")
        );
        assert!(
            filter_err("machineTags/any(t: machineTags/any(u: u eq 'x'))")
                .message
                .contains("cannot be nested")
        );
        assert!(
            filter_err("machineTagz/any(t: t eq 'x')")
                .message
                .contains("did you mean 'machineTags'?")
        );
    }

    #[test]
    fn filter_parse_errors_pass_through() {
        let e = filter_err("severity eq ");
        assert_eq!(e.target, "$filter");
        assert_eq!(
            e.message,
            "$filter: expected a value after 'eq' at position 12"
        );
    }

    #[test]
    fn alerts_set_accepts_mde_examples() {
        for f in [
            "alertCreationTime ge 2018-11-22",
            "lastUpdateTime ge 2019-11-22T00:00:00Z and status ne 'Resolved'",
            "severity eq 'High' or severity eq 'Medium'",
            "status in ('New','InProgress')",
            "startswith(machineId,'ab')",
            "incidentId eq 12 and assignedTo eq null",
        ] {
            let q = QueryOptions::parse(&pairs(&[("$filter", f)]), &crate::alert::ALERTS);
            assert!(q.is_ok(), "{f}: {q:?}");
        }
    }

    #[test]
    fn edit_distance_basics() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("same", "same"), 0);
        assert_eq!(closest("statsu", &["status", "severity"]), Some("status"));
        assert_eq!(closest("qqqq", &["status"]), None);
    }
}
