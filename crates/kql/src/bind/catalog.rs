//! Where table names come from. The binder only needs names and column types, so the
//! catalog is a trait: the hunting API binds against the Defender schema, tests against
//! small tables of their own, and a future tenant catalog against what is stored.

use super::ir::{Column, Schema};
use rampart_core::schema::{Table, hunting_tables};

/// Tables by name. Names are case-sensitive, as in Kusto.
pub trait Catalog {
    /// The columns of `name`, in order, or `None` if there is no such table.
    fn table(&self, name: &str) -> Option<Schema>;

    /// Every table name, in a stable order (wildcard `union`/`search` legs expand in it,
    /// and "did you mean" draws from it).
    fn table_names(&self) -> Vec<String>;
}

/// The advanced-hunting tables of [`rampart_core::schema::hunting_tables`] (Device*, Alert*,
/// and the inventory tables).
#[derive(Debug, Clone, Copy, Default)]
pub struct HuntingCatalog;

fn schema_of(table: &Table) -> Schema {
    Schema::new(
        table
            .columns
            .iter()
            .map(|c| Column::new(c.name, c.kql_type.into()))
            .collect(),
    )
}

impl Catalog for HuntingCatalog {
    fn table(&self, name: &str) -> Option<Schema> {
        rampart_core::schema::table(name).map(schema_of)
    }

    fn table_names(&self) -> Vec<String> {
        hunting_tables().map(|t| t.name.to_string()).collect()
    }
}

/// A catalog of explicitly listed tables, for tests and embedding.
#[derive(Debug, Clone, Default)]
pub struct StaticCatalog {
    tables: Vec<(String, Schema)>,
}

impl StaticCatalog {
    pub fn new() -> Self {
        StaticCatalog::default()
    }

    /// Adds (or replaces) a table.
    pub fn with_table(mut self, name: &str, columns: &[(&str, crate::ast::ScalarType)]) -> Self {
        let schema = Schema::new(
            columns
                .iter()
                .map(|(name, ty)| Column::new(*name, *ty))
                .collect(),
        );
        self.tables.retain(|(n, _)| n != name);
        self.tables.push((name.to_string(), schema));
        self
    }
}

impl Catalog for StaticCatalog {
    fn table(&self, name: &str) -> Option<Schema> {
        self.tables
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, s)| s.clone())
    }

    fn table_names(&self) -> Vec<String> {
        self.tables.iter().map(|(n, _)| n.clone()).collect()
    }
}
