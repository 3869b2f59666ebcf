//! Compiling checked OData queries to parameterised SQL.
//!
//! Every value from a query is bound with [`SqlBuilder::push_param`]; the only names written into
//! SQL text are the caller's table name and columns derived from the entity set's static
//! [`Field::name`]s, never a name as the client spelled it.
//!
//! Every `push_*` function appends without a leading or trailing space, so the caller writes the
//! separators (`" WHERE "`, `" AND "`, `" "` before `ORDER BY`).
//!
//! Ordering is "NULL is the smallest value": `ASC NULLS FIRST`, `DESC NULLS LAST` (SQLite's
//! natural index order), with the insertion number `seq` as the final tiebreaker in the
//! direction of the last key. [`push_keyset`] selects exactly the rows after a [`Cursor`] in that
//! order, so paging by cursor neither skips nor repeats rows, even while rows are inserted.

use crate::sql::{SqlBuilder, SqlValue, column_name};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rampart_core::odata::{
    CmpOp, EntitySet, FieldType, Filter, Literal, ODataError, OrderBy, StrFn,
};
use rampart_core::timefmt::to_micros;
use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::any::AnyRow;

/// Appends `filter` as one parenthesised boolean expression over `table`'s columns, qualified as
/// `table.column`. A name that `set` does not have (a filter that skipped validation) compiles
/// to false rather than to SQL naming it.
pub fn push_filter(b: &mut SqlBuilder, table: &str, filter: &Filter, set: &EntitySet) {
    Scope {
        table,
        set,
        lambda: None,
    }
    .push(b, filter);
}

/// The strings `filter` requires `field` to equal — through `eq` or `in`, alone or in a
/// conjunction — or `None` when rows with other values may match.
pub fn pinned_strings(filter: &Filter, set: &EntitySet, field: &str) -> Option<Vec<String>> {
    let is_field = |name: &str| set.field(name).is_some_and(|f| f.name == field);
    match filter {
        Filter::And(x, y) => {
            pinned_strings(x, set, field).or_else(|| pinned_strings(y, set, field))
        }
        Filter::Compare {
            field: name,
            op: CmpOp::Eq,
            value: Literal::String(v),
        } if is_field(name) => Some(vec![v.clone()]),
        Filter::In {
            field: name,
            values,
        } if is_field(name) && !values.is_empty() => values
            .iter()
            .map(|v| match v {
                Literal::String(s) => Some(s.clone()),
                _ => None,
            })
            .collect(),
        _ => None,
    }
}

/// The variable of an enclosing `any` and the side table whose `value` column it stands for.
struct Lambda<'a> {
    var: &'a str,
    side: String,
}

struct Scope<'a> {
    table: &'a str,
    set: &'a EntitySet,
    lambda: Option<Lambda<'a>>,
}

impl Scope<'_> {
    /// The SQL column a filter name stands for, and its type.
    fn column(&self, name: &str) -> Option<(String, FieldType)> {
        if let Some(l) = self
            .lambda
            .as_ref()
            .filter(|l| name.eq_ignore_ascii_case(l.var))
        {
            return Some((format!("{}.value", l.side), FieldType::String));
        }
        let f = self.set.field(name)?;
        Some((format!("{}.{}", self.table, column_name(f.name)), f.ty))
    }

    fn push(&self, b: &mut SqlBuilder, f: &Filter) {
        let falsity = b.dialect.false_literal();
        match f {
            Filter::And(x, y) | Filter::Or(x, y) => {
                let op = if matches!(f, Filter::And(..)) {
                    " AND "
                } else {
                    " OR "
                };
                b.push("(");
                self.push(b, x);
                b.push(op);
                self.push(b, y);
                b.push(")");
            }
            Filter::Not(x) => {
                // OData treats a comparison with null as false, so `not (x gt 5)` holds when x is
                // null; SQL's NOT NULL would be NULL, hence the COALESCE.
                b.push("(NOT COALESCE(");
                self.push(b, x);
                b.push(", ").push(falsity).push("))");
            }
            Filter::Compare { field, op, value } => {
                let Some((col, ty)) = self.column(field) else {
                    b.push("(").push(falsity).push(")");
                    return;
                };
                // A column that is never null needs no null-safe `ne`; the plain `<>` lets the
                // planners use an index, which `IS NOT` / `IS DISTINCT FROM` defeat.
                let nullable = self.set.field(field).is_none_or(|f| f.nullable);
                b.push("(").push(&col);
                match (op, value) {
                    (CmpOp::Eq, Literal::Null) => {
                        b.push(" IS NULL");
                    }
                    (CmpOp::Ne, Literal::Null) => {
                        b.push(" IS NOT NULL");
                    }
                    (_, Literal::Null) => {
                        // Validation refuses ordering against null; SQL would say NULL anyway.
                        b.push(" IS NULL AND ").push(falsity);
                    }
                    (op, v) => {
                        let sql_op = match op {
                            CmpOp::Eq => "=",
                            // OData's `ne` holds for null properties too.
                            CmpOp::Ne if nullable => b.dialect.null_safe_ne(),
                            CmpOp::Ne => "<>",
                            CmpOp::Gt => ">",
                            CmpOp::Ge => ">=",
                            CmpOp::Lt => "<",
                            CmpOp::Le => "<=",
                        };
                        b.push(" ")
                            .push(sql_op)
                            .push(" ")
                            .push_param(literal_value(ty, v));
                    }
                }
                b.push(")");
            }
            Filter::In { field, values } => {
                let Some((col, ty)) = self.column(field) else {
                    b.push("(").push(falsity).push(")");
                    return;
                };
                if values.is_empty() {
                    b.push("(").push(falsity).push(")");
                    return;
                }
                b.push("(").push(&col).push(" IN (");
                for (i, v) in values.iter().enumerate() {
                    if i > 0 {
                        b.push(", ");
                    }
                    b.push_param(literal_value(ty, v));
                }
                b.push("))");
            }
            Filter::StrFn { func, field, value } => match self.column(field) {
                Some((col, FieldType::String | FieldType::Enum(_))) => {
                    let escaped = escape_like(value);
                    let pattern = match func {
                        StrFn::StartsWith => format!("{escaped}%"),
                        StrFn::EndsWith => format!("%{escaped}"),
                        StrFn::Contains => format!("%{escaped}%"),
                    };
                    let ilike = b.dialect.ilike();
                    b.push("(").push(&col).push(" ").push(ilike).push(" ");
                    b.push_param(SqlValue::Text(pattern)).push(" ESCAPE '\\')");
                }
                _ => {
                    b.push("(").push(falsity).push(")");
                }
            },
            Filter::Any {
                field,
                var,
                predicate,
            } => {
                let Some(fd) = self
                    .set
                    .field(field)
                    .filter(|f| f.ty == FieldType::StringCollection)
                else {
                    b.push("(").push(falsity).push(")");
                    return;
                };
                let side = format!("{}_{}", self.table, column_name(fd.name));
                b.push("(EXISTS (SELECT 1 FROM ")
                    .push(&side)
                    .push(" WHERE ")
                    .push(&side);
                b.push(".entity_seq = ").push(self.table).push(".seq AND ");
                let inner = Scope {
                    table: self.table,
                    set: self.set,
                    lambda: Some(Lambda { var, side }),
                };
                inner.push(b, predicate);
                b.push("))");
            }
        }
    }
}

/// The bound value of a literal compared with a column of type `ty`, in the storage conventions
/// (datetimes as microseconds, booleans as 0/1).
fn literal_value(ty: FieldType, l: &Literal) -> SqlValue {
    match l {
        Literal::Null => SqlValue::Null,
        Literal::String(s) => match ty {
            // Validation converts quoted datetimes; this keeps an unconverted one meaningful.
            FieldType::DateTime => rampart_core::timefmt::parse(s).map_or_else(
                || SqlValue::Text(s.clone()),
                |t| SqlValue::Int(to_micros(t)),
            ),
            _ => SqlValue::Text(s.clone()),
        },
        Literal::Int(i) => SqlValue::Int(*i),
        Literal::Bool(v) => SqlValue::Int(i64::from(*v)),
        Literal::DateTime(t) => SqlValue::Int(to_micros(*t)),
    }
}

/// Escapes `LIKE` wildcards so that the client's text matches literally (with `ESCAPE '\'`).
fn escape_like(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    for c in s.chars() {
        if matches!(c, '\\' | '%' | '_') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Whether the `seq` tiebreaker runs descending: it follows the last key, so that an index on
/// `(…, key, seq)` serves the whole ORDER BY in one direction.
fn seq_descending(keys: &[OrderBy]) -> bool {
    keys.last().is_some_and(|k| k.descending)
}

fn key_column(table: &str, key: &OrderBy) -> String {
    format!("{table}.{}", column_name(key.field.name))
}

/// Appends `ORDER BY table.k0 ASC NULLS FIRST, …, table.seq ASC` (no leading space).
pub fn push_order_by(b: &mut SqlBuilder, table: &str, keys: &[OrderBy]) {
    b.push("ORDER BY ");
    for k in keys {
        b.push(&key_column(table, k));
        // A NOT NULL column is ordered without a NULLS clause: PostgreSQL's plain index then
        // serves both directions, which it cannot for `DESC NULLS LAST`.
        b.push(match (k.descending, k.field.nullable) {
            (true, true) => " DESC NULLS LAST, ",
            (false, true) => " ASC NULLS FIRST, ",
            (true, false) => " DESC, ",
            (false, false) => " ASC, ",
        });
    }
    b.push(table).push(".seq").push(if seq_descending(keys) {
        " DESC"
    } else {
        " ASC"
    });
}

/// Appends `, table.col AS k0, table.col AS k1, …` for the sort keys, which
/// [`Cursor::from_row`] reads back (the row must also have a `seq` column).
pub fn push_select_sort_keys(b: &mut SqlBuilder, table: &str, keys: &[OrderBy]) {
    for (i, k) in keys.iter().enumerate() {
        b.push(", ")
            .push(&key_column(table, k))
            .push(" AS k")
            .push(&i.to_string());
    }
}

/// A position in an ordered collection: the sort-key values and `seq` of the last row served,
/// and the ordering they belong to.
#[derive(Clone, Debug, PartialEq)]
pub struct Cursor {
    /// One value per `$orderby` key, as stored (text, or integer for numbers, datetimes, bools).
    pub values: Vec<SqlValue>,
    pub seq: i64,
    /// The `$orderby` the values are keys of (see [`ordering_signature`]).
    ordering: String,
}

/// The `$skiptoken` payload. `o` records the ordering the cursor belongs to, so that a token is
/// not silently reinterpreted under a different `$orderby`.
#[derive(Serialize, Deserialize)]
struct Token {
    o: String,
    k: Vec<SqlValue>,
    s: i64,
}

/// Longest `$skiptoken` accepted: far above any real cursor, far below a costly decode.
const MAX_TOKEN_LEN: usize = 16 * 1024;

fn ordering_signature(keys: &[OrderBy]) -> String {
    keys.iter()
        .map(|k| format!("{}{}", if k.descending { '-' } else { '+' }, k.field.name))
        .collect::<Vec<_>>()
        .join(",")
}

/// Whether a stored value has the shape a column of type `ty` holds.
fn fits(ty: FieldType, v: &SqlValue) -> bool {
    match v {
        SqlValue::Null => true,
        SqlValue::Text(_) => matches!(ty, FieldType::String | FieldType::Enum(_)),
        SqlValue::Int(_) => matches!(ty, FieldType::Int | FieldType::Bool | FieldType::DateTime),
    }
}

impl Cursor {
    /// The cursor at the row with these `values` of `keys` and this `seq`.
    pub fn new(keys: &[OrderBy], values: Vec<SqlValue>, seq: i64) -> Cursor {
        Cursor {
            values,
            seq,
            ordering: ordering_signature(keys),
        }
    }

    /// Reads the cursor of a row selected with [`push_select_sort_keys`] and a `seq` column.
    pub fn from_row(row: &AnyRow, keys: &[OrderBy]) -> Result<Cursor, sqlx::Error> {
        let mut values = Vec::with_capacity(keys.len());
        for (i, k) in keys.iter().enumerate() {
            let name = format!("k{i}");
            let v = match k.field.ty {
                FieldType::String | FieldType::Enum(_) => row
                    .try_get::<Option<String>, _>(name.as_str())?
                    .map_or(SqlValue::Null, SqlValue::Text),
                FieldType::Int | FieldType::Bool | FieldType::DateTime => row
                    .try_get::<Option<i64>, _>(name.as_str())?
                    .map_or(SqlValue::Null, SqlValue::Int),
                // Validation never lets a collection into $orderby.
                FieldType::StringCollection => SqlValue::Null,
            };
            values.push(v);
        }
        Ok(Cursor::new(keys, values, row.try_get("seq")?))
    }

    /// The cursor as an opaque, URL-safe `$skiptoken` (base64url of a small JSON document).
    pub fn encode(&self) -> String {
        let token = Token {
            o: self.ordering.clone(),
            k: self.values.clone(),
            s: self.seq,
        };
        // Serialising strings, integers and nulls cannot fail; an empty token would only make the
        // next request fail to decode, never return wrong rows.
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&token).unwrap_or_default())
    }

    /// Reads a `$skiptoken`, refusing one that is malformed or was made for another `$orderby`.
    pub fn decode(token: &str, keys: &[OrderBy]) -> Result<Cursor, ODataError> {
        let invalid = |why: &str| {
            ODataError::new(
                "$skiptoken",
                format!(
                    "$skiptoken is not valid for this query ({why}); follow @odata.nextLink as returned, or start again without $skiptoken"
                ),
            )
        };
        if token.len() > MAX_TOKEN_LEN {
            return Err(invalid("too long"));
        }
        let bytes = URL_SAFE_NO_PAD
            .decode(token.trim_end_matches('='))
            .map_err(|_| invalid("not base64url"))?;
        let t: Token =
            serde_json::from_slice(&bytes).map_err(|_| invalid("not a Rampart token"))?;
        let ordering = ordering_signature(keys);
        if t.o != ordering || t.k.len() != keys.len() {
            return Err(invalid("it was made for a different $orderby"));
        }
        if !keys.iter().zip(&t.k).all(|(k, v)| fits(k.field.ty, v)) {
            return Err(invalid("its values do not fit the $orderby"));
        }
        Ok(Cursor {
            values: t.k,
            seq: t.s,
            ordering,
        })
    }
}

/// Appends a parenthesised boolean expression that holds exactly for the rows after `cursor` in
/// the [`push_order_by`] order of the same `keys` (no leading space).
///
/// For keys `k0, k1` it is `after(k0) OR (k0 = c0 AND (after(k1) OR (k1 = c1 AND seq after)))`,
/// with "after" spelled out for NULLs: ascending, NULLs come first, so every non-null value is
/// after a NULL cursor; descending, NULLs come last, so they are after every non-null cursor.
/// A redundant bound on `k0` in front lets the database seek its index to the cursor instead of
/// scanning the pages before it.
pub fn push_keyset(b: &mut SqlBuilder, table: &str, keys: &[OrderBy], cursor: &Cursor) {
    if cursor.values.len() != keys.len() {
        // A cursor for other keys has no position in this order; Cursor::decode prevents it.
        let falsity = b.dialect.false_literal();
        b.push("(").push(falsity).push(")");
        return;
    }
    b.push("(");
    if let (Some(k0), Some(v0)) = (keys.first(), cursor.values.first()) {
        let col = key_column(table, k0);
        match (k0.descending, v0) {
            // Ascending from a NULL: everything is at or after it; no bound to add.
            (false, SqlValue::Null) => {}
            (false, v) => {
                b.push(&col)
                    .push(" >= ")
                    .push_param(v.clone())
                    .push(" AND ");
            }
            // Descending from a NULL: the expression itself starts with `k0 IS NULL`.
            (true, SqlValue::Null) => {}
            // Descending, NULLs come last, so they stay admitted. (Columns declared NOT NULL
            // make the second half dead, and planners then seek on `k0 <= v`.)
            (true, v) if !k0.field.nullable => {
                b.push(&col)
                    .push(" <= ")
                    .push_param(v.clone())
                    .push(" AND ");
            }
            (true, v) => {
                b.push("(")
                    .push(&col)
                    .push(" <= ")
                    .push_param(v.clone())
                    .push(" OR ")
                    .push(&col)
                    .push(" IS NULL) AND ");
            }
        }
    }
    push_after(b, table, keys, cursor, 0);
    b.push(")");
}

/// The rows after the cursor among those equal to it on keys `0..i`.
fn push_after(b: &mut SqlBuilder, table: &str, keys: &[OrderBy], cursor: &Cursor, i: usize) {
    let (Some(k), Some(v)) = (keys.get(i), cursor.values.get(i)) else {
        let op = if seq_descending(keys) { " < " } else { " > " };
        b.push(table)
            .push(".seq")
            .push(op)
            .push_param(SqlValue::Int(cursor.seq));
        return;
    };
    let col = key_column(table, k);
    match (k.descending, v) {
        (false, SqlValue::Null) => {
            b.push("(")
                .push(&col)
                .push(" IS NOT NULL OR (")
                .push(&col)
                .push(" IS NULL AND ");
            push_after(b, table, keys, cursor, i + 1);
            b.push("))");
        }
        (false, v) => {
            b.push("(").push(&col).push(" > ").push_param(v.clone());
            b.push(" OR (")
                .push(&col)
                .push(" = ")
                .push_param(v.clone())
                .push(" AND ");
            push_after(b, table, keys, cursor, i + 1);
            b.push("))");
        }
        (true, SqlValue::Null) => {
            b.push("(").push(&col).push(" IS NULL AND ");
            push_after(b, table, keys, cursor, i + 1);
            b.push(")");
        }
        (true, v) => {
            b.push("(").push(&col).push(" < ").push_param(v.clone());
            if k.field.nullable {
                b.push(" OR ").push(&col).push(" IS NULL");
            }
            b.push(" OR (")
                .push(&col)
                .push(" = ")
                .push_param(v.clone())
                .push(" AND ");
            push_after(b, table, keys, cursor, i + 1);
            b.push("))");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::Dialect;
    use rampart_core::odata::{Field, QueryOptions};

    static SET: EntitySet = EntitySet {
        name: "Things",
        fields: &[
            Field::new("name", FieldType::String),
            Field::new("level", FieldType::Enum(&["Low", "High"])),
            Field::new("size", FieldType::Int),
            Field::new("isActive", FieldType::Bool),
            Field::new("createdTime", FieldType::DateTime),
            Field::new("tags", FieldType::StringCollection),
            Field::new("kind", FieldType::Enum(&["A", "B"])).not_null(),
        ],
        expand: &[],
    };

    fn options(pairs: &[(&str, &str)]) -> QueryOptions {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        QueryOptions::parse(&pairs, &SET).unwrap()
    }

    fn compile(dialect: Dialect, filter: &str) -> (String, Vec<SqlValue>) {
        let q = options(&[("$filter", filter)]);
        let mut b = SqlBuilder::new(dialect);
        push_filter(&mut b, "t", q.filter.as_ref().unwrap(), &SET);
        (b.sql, b.params)
    }

    fn text(s: &str) -> SqlValue {
        SqlValue::Text(s.into())
    }

    #[test]
    fn comparisons_bind_every_value() {
        let (sql, params) = compile(Dialect::Postgres, "name eq 'x'' OR 1=1 --' and size gt 3");
        assert_eq!(sql, "((t.name = $1) AND (t.size > $2))");
        assert_eq!(params, vec![text("x' OR 1=1 --"), SqlValue::Int(3)]);
        let (sql, params) = compile(Dialect::Sqlite, "size ge -1 or size lt 0 or size le 9");
        assert_eq!(sql, "(((t.size >= $1) OR (t.size < $2)) OR (t.size <= $3))");
        assert_eq!(
            params,
            vec![SqlValue::Int(-1), SqlValue::Int(0), SqlValue::Int(9)]
        );
    }

    #[test]
    fn ne_is_null_safe_and_null_is_is_null() {
        assert_eq!(
            compile(Dialect::Postgres, "name ne 'a'").0,
            "(t.name IS DISTINCT FROM $1)"
        );
        assert_eq!(
            compile(Dialect::Sqlite, "name ne 'a'").0,
            "(t.name IS NOT $1)"
        );
        // Never null: the plain operator, which an index can serve.
        assert_eq!(
            compile(Dialect::Postgres, "kind ne 'A'").0,
            "(t.kind <> $1)"
        );
        assert_eq!(compile(Dialect::Sqlite, "kind ne 'A'").0, "(t.kind <> $1)");
        let (sql, params) = compile(Dialect::Sqlite, "name eq null or size ne null");
        assert_eq!(sql, "((t.name IS NULL) OR (t.size IS NOT NULL))");
        assert!(params.is_empty());
    }

    #[test]
    fn not_coalesces_unknown_to_false() {
        assert_eq!(
            compile(Dialect::Postgres, "not size gt 3").0,
            "(NOT COALESCE((t.size > $1), FALSE))"
        );
        assert_eq!(
            compile(Dialect::Sqlite, "not size gt 3").0,
            "(NOT COALESCE((t.size > $1), 0))"
        );
    }

    #[test]
    fn typed_literals_follow_storage_conventions() {
        let (sql, params) = compile(
            Dialect::Sqlite,
            "isActive eq true and createdTime ge 1970-01-01T00:00:01Z and level eq 'high'",
        );
        assert_eq!(
            sql,
            "(((t.is_active = $1) AND (t.created_time >= $2)) AND (t.level = $3))"
        );
        assert_eq!(
            params,
            vec![SqlValue::Int(1), SqlValue::Int(1_000_000), text("High")]
        );
    }

    #[test]
    fn in_lists_and_empty_in() {
        let (sql, params) = compile(Dialect::Postgres, "level in ('low', 'HIGH')");
        assert_eq!(sql, "(t.level IN ($1, $2))");
        assert_eq!(params, vec![text("Low"), text("High")]);
        assert_eq!(compile(Dialect::Postgres, "size in ()").0, "(FALSE)");
        assert_eq!(compile(Dialect::Sqlite, "size in ()").0, "(0)");
    }

    #[test]
    fn string_functions_escape_wildcards() {
        let (sql, params) = compile(Dialect::Postgres, r"startswith(name,'50%_\x')");
        assert_eq!(sql, r"(t.name ILIKE $1 ESCAPE '\')");
        assert_eq!(params, vec![text(r"50\%\_\\x%")]);
        let (sql, params) = compile(
            Dialect::Sqlite,
            "endswith(name,'a') and contains(level,'ig')",
        );
        assert_eq!(
            sql,
            r"((t.name LIKE $1 ESCAPE '\') AND (t.level LIKE $2 ESCAPE '\'))"
        );
        assert_eq!(params, vec![text("%a"), text("%ig%")]);
        assert_eq!(
            compile(Dialect::Sqlite, "startswith(name,'a') eq false").0,
            r"(NOT COALESCE((t.name LIKE $1 ESCAPE '\'), 0))"
        );
    }

    #[test]
    fn any_is_an_exists_over_the_side_table() {
        let (sql, params) = compile(
            Dialect::Postgres,
            "tags/any(x: x eq 'a' or startswith(x,'b'))",
        );
        assert_eq!(
            sql,
            r"(EXISTS (SELECT 1 FROM t_tags WHERE t_tags.entity_seq = t.seq AND ((t_tags.value = $1) OR (t_tags.value ILIKE $2 ESCAPE '\'))))"
        );
        assert_eq!(params, vec![text("a"), text("b%")]);
    }

    #[test]
    fn unvalidated_names_never_reach_sql() {
        let mut b = SqlBuilder::new(Dialect::Postgres);
        let f = Filter::Compare {
            field: "x; DROP TABLE t".into(),
            op: CmpOp::Eq,
            value: Literal::Int(1),
        };
        push_filter(&mut b, "t", &f, &SET);
        assert_eq!(b.sql, "(FALSE)");
        let mut b = SqlBuilder::new(Dialect::Postgres);
        let f = Filter::Any {
            field: "name".into(),
            var: "v".into(),
            predicate: Box::new(f),
        };
        push_filter(&mut b, "t", &f, &SET);
        assert_eq!(b.sql, "(FALSE)");
    }

    #[test]
    fn order_by_puts_nulls_lowest_and_seq_last() {
        let mut b = SqlBuilder::new(Dialect::Sqlite);
        push_order_by(&mut b, "t", &[]);
        assert_eq!(b.sql, "ORDER BY t.seq ASC");
        let q = options(&[("$orderby", "createdTime desc, name")]);
        let mut b = SqlBuilder::new(Dialect::Sqlite);
        push_order_by(&mut b, "t", &q.orderby);
        assert_eq!(
            b.sql,
            "ORDER BY t.created_time DESC NULLS LAST, t.name ASC NULLS FIRST, t.seq ASC"
        );
        let q = options(&[("$orderby", "name, createdTime desc")]);
        let mut b = SqlBuilder::new(Dialect::Sqlite);
        push_order_by(&mut b, "t", &q.orderby);
        assert!(
            b.sql
                .ends_with("t.created_time DESC NULLS LAST, t.seq DESC"),
            "{}",
            b.sql
        );
        let mut b = SqlBuilder::new(Dialect::Sqlite);
        push_select_sort_keys(&mut b, "t", &q.orderby);
        assert_eq!(b.sql, ", t.name AS k0, t.created_time AS k1");
    }

    fn keyset(orderby: &str, values: Vec<SqlValue>, seq: i64) -> (String, Vec<SqlValue>) {
        let q = options(&[("$orderby", orderby)]);
        let mut b = SqlBuilder::new(Dialect::Postgres);
        push_keyset(
            &mut b,
            "t",
            &q.orderby,
            &Cursor::new(&q.orderby, values, seq),
        );
        (b.sql, b.params)
    }

    #[test]
    fn keyset_without_keys_is_seq_only() {
        let mut b = SqlBuilder::new(Dialect::Sqlite);
        push_keyset(&mut b, "t", &[], &Cursor::new(&[], vec![], 42));
        assert_eq!(b.sql, "(t.seq > $1)");
        assert_eq!(b.params, vec![SqlValue::Int(42)]);
    }

    #[test]
    fn keyset_ascending_with_seek_bound() {
        let (sql, params) = keyset("size", vec![SqlValue::Int(5)], 9);
        assert_eq!(
            sql,
            "(t.size >= $1 AND (t.size > $2 OR (t.size = $3 AND t.seq > $4)))"
        );
        assert_eq!(
            params,
            vec![
                SqlValue::Int(5),
                SqlValue::Int(5),
                SqlValue::Int(5),
                SqlValue::Int(9)
            ]
        );
        let (sql, _) = keyset("size", vec![SqlValue::Null], 9);
        assert_eq!(
            sql,
            "((t.size IS NOT NULL OR (t.size IS NULL AND t.seq > $1)))"
        );
    }

    #[test]
    fn keyset_descending_keeps_nulls_last() {
        let (sql, _) = keyset("size desc", vec![SqlValue::Int(5)], 9);
        assert_eq!(
            sql,
            "((t.size <= $1 OR t.size IS NULL) AND (t.size < $2 OR t.size IS NULL OR (t.size = $3 AND t.seq < $4)))"
        );
        let (sql, _) = keyset("size desc", vec![SqlValue::Null], 9);
        assert_eq!(sql, "((t.size IS NULL AND t.seq < $1))");
    }

    #[test]
    fn keyset_two_keys_nests() {
        let (sql, params) = keyset(
            "level, createdTime desc",
            vec![text("High"), SqlValue::Null],
            3,
        );
        assert_eq!(
            sql,
            "(t.level >= $1 AND (t.level > $2 OR (t.level = $3 AND (t.created_time IS NULL AND t.seq < $4))))"
        );
        assert_eq!(params.len(), 4);
        let mut b = SqlBuilder::new(Dialect::Postgres);
        let q = options(&[("$orderby", "level, size")]);
        push_keyset(&mut b, "t", &q.orderby, &Cursor::new(&[], vec![], 1));
        assert_eq!(b.sql, "(FALSE)");
    }

    #[test]
    fn tokens_round_trip_and_bind_to_their_orderby() {
        let keys = options(&[("$orderby", "createdTime desc, name")]).orderby;
        let c = Cursor::new(
            &keys,
            vec![SqlValue::Int(-5), SqlValue::Text("a'b\"é".into())],
            77,
        );
        let token = c.encode();
        assert!(
            token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
            "{token}"
        );
        assert_eq!(Cursor::decode(&token, &keys).unwrap(), c);

        for other in [
            "createdTime asc, name",
            "createdTime desc",
            "createdTime desc, name, size",
        ] {
            let e = Cursor::decode(&token, &options(&[("$orderby", other)]).orderby).unwrap_err();
            assert_eq!(e.target, "$skiptoken");
            assert!(e.message.contains("different $orderby"), "{}", e.message);
        }
        assert!(Cursor::decode(&token, &[]).is_err());
        // A hand-made token whose values do not fit the key types is refused too.
        let forged = URL_SAFE_NO_PAD.encode(br#"{"o":"-createdTime,+name","k":["x",1],"s":1}"#);
        assert!(
            Cursor::decode(&forged, &keys)
                .unwrap_err()
                .message
                .contains("do not fit")
        );
    }

    #[test]
    fn garbage_tokens_are_odata_errors() {
        let keys = options(&[("$orderby", "size")]).orderby;
        for bad in [
            "",
            "!!!",
            "bm90IGpzb24",
            &URL_SAFE_NO_PAD.encode(br#"{"o":"+size","k":[1.5],"s":1}"#),
            &"A".repeat(20_000),
        ] {
            let e = Cursor::decode(bad, &keys).unwrap_err();
            assert_eq!(e.target, "$skiptoken", "{bad}");
        }
        let ok = URL_SAFE_NO_PAD.encode(br#"{"o":"+size","k":[null],"s":1}"#);
        assert_eq!(
            Cursor::decode(&ok, &keys).unwrap(),
            Cursor::new(&keys, vec![SqlValue::Null], 1)
        );
    }
}
