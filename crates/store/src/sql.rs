//! Building parameterised SQL that runs on both SQLite and PostgreSQL.
//!
//! Both dialects accept `$N` placeholders, so statements are written once; [`Dialect`] covers the
//! few spots where the two disagree. Values from outside are only ever bound as parameters.

/// The SQL dialect of the connected database.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    /// Null-safe equality (`NULL` equals `NULL`).
    pub fn null_safe_eq(self) -> &'static str {
        match self {
            Dialect::Sqlite => "IS",
            Dialect::Postgres => "IS NOT DISTINCT FROM",
        }
    }

    /// Null-safe inequality (`NULL` differs from every value).
    pub fn null_safe_ne(self) -> &'static str {
        match self {
            Dialect::Sqlite => "IS NOT",
            Dialect::Postgres => "IS DISTINCT FROM",
        }
    }

    /// Case-insensitive `LIKE` (SQLite's `LIKE` already is, for ASCII).
    pub fn ilike(self) -> &'static str {
        match self {
            Dialect::Sqlite => "LIKE",
            Dialect::Postgres => "ILIKE",
        }
    }

    /// The boolean constant false.
    pub fn false_literal(self) -> &'static str {
        match self {
            Dialect::Sqlite => "0",
            Dialect::Postgres => "FALSE",
        }
    }
}

/// A value bound to a placeholder. Datetimes are microseconds since the epoch ([`SqlValue::Int`]),
/// booleans are 0/1 integers, so that every column type means the same in both dialects.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(untagged)]
pub enum SqlValue {
    Null,
    Int(i64),
    Text(String),
}

/// A statement under construction: SQL text with `$N` placeholders and the values they bind.
#[derive(Clone, Debug)]
pub struct SqlBuilder {
    pub sql: String,
    pub params: Vec<SqlValue>,
    pub dialect: Dialect,
}

impl SqlBuilder {
    pub fn new(dialect: Dialect) -> Self {
        SqlBuilder {
            sql: String::with_capacity(256),
            params: Vec::new(),
            dialect,
        }
    }

    /// Appends SQL text written by Rampart (never text from a request).
    pub fn push(&mut self, sql: &str) -> &mut Self {
        self.sql.push_str(sql);
        self
    }

    /// Appends a placeholder bound to `value`. A NULL is written as the literal `NULL`: a bound
    /// NULL has no type, and PostgreSQL refuses an untyped parameter in a typed column.
    pub fn push_param(&mut self, value: SqlValue) -> &mut Self {
        if value == SqlValue::Null {
            self.sql.push_str("NULL");
            return self;
        }
        self.params.push(value);
        self.sql.push('$');
        self.sql.push_str(&self.params.len().to_string());
        self
    }

    /// Appends `(p1, p2, …)`, a placeholder per value: the right side of an `IN`.
    pub fn push_list(&mut self, values: impl IntoIterator<Item = SqlValue>) -> &mut Self {
        self.sql.push('(');
        for (i, v) in values.into_iter().enumerate() {
            if i > 0 {
                self.sql.push_str(", ");
            }
            self.push_param(v);
        }
        self.sql.push(')');
        self
    }

    /// Binds the collected parameters to a query over the `Any` driver.
    pub fn query(&self) -> sqlx::query::Query<'_, sqlx::Any, sqlx::any::AnyArguments<'_>> {
        let mut q = sqlx::query(&self.sql);
        for p in &self.params {
            q = match p {
                SqlValue::Null => q.bind(None::<String>),
                SqlValue::Int(i) => q.bind(*i),
                SqlValue::Text(s) => q.bind(s.as_str()),
            };
        }
        q
    }
}

/// The SQL column of an OData property: `alertCreationTime` → `alert_creation_time`.
pub fn column_name(odata_name: &str) -> String {
    let mut out = String::with_capacity(odata_name.len() + 4);
    for (i, c) in odata_name.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_snake_case() {
        assert_eq!(column_name("alertCreationTime"), "alert_creation_time");
        assert_eq!(column_name("id"), "id");
        assert_eq!(column_name("machineTags"), "machine_tags");
    }

    #[test]
    fn placeholders_are_numbered() {
        let mut b = SqlBuilder::new(Dialect::Postgres);
        b.push("a = ")
            .push_param(SqlValue::Int(1))
            .push(" AND b = ")
            .push_param(SqlValue::Text("x".into()));
        assert_eq!(b.sql, "a = $1 AND b = $2");
        assert_eq!(b.params.len(), 2);
    }
}
