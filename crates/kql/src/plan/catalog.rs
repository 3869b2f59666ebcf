//! The tables a session actually has, as a binder [`Catalog`].
//!
//! Binding against what is registered (rather than the whole advanced-hunting schema)
//! makes a query over a table this deployment does not store fail at bind time, with
//! "did you mean", instead of at execution.

use super::types::kql_type_of;
use crate::bind::catalog::Catalog;
use crate::bind::{Column, Schema};
use datafusion::prelude::SessionContext;

/// The tables of a session's default schema with their KQL column types.
#[derive(Debug, Clone, Default)]
pub struct SessionCatalog {
    tables: Vec<(String, Schema)>,
}

impl SessionCatalog {
    /// Reads the tables registered in `ctx`'s default catalog and schema. A column's KQL
    /// type is its `kql_type` metadata, else the advanced-hunting schema's type for that
    /// table and column, else what its Arrow type suggests; columns of other Arrow types
    /// are left out.
    pub async fn from_context(ctx: &SessionContext) -> SessionCatalog {
        let state = ctx.state();
        let options = state.config_options();
        let catalog_name = options.catalog.default_catalog.clone();
        let schema_name = options.catalog.default_schema.clone();
        let Some(schema) = ctx
            .catalog(&catalog_name)
            .and_then(|catalog| catalog.schema(&schema_name))
        else {
            return SessionCatalog::default();
        };
        let mut names = schema.table_names();
        // Hunting tables first, in the reference's order (wildcard unions expand in it).
        let order = |name: &str| {
            rampart_core::schema::hunting_tables()
                .position(|t| t.name == name)
                .unwrap_or(usize::MAX)
        };
        names.sort_by(|a, b| order(a).cmp(&order(b)).then_with(|| a.cmp(b)));
        let mut tables = Vec::with_capacity(names.len());
        for name in names {
            let Ok(Some(provider)) = schema.table(&name).await else {
                continue;
            };
            let known = rampart_core::schema::table(&name);
            let columns = provider
                .schema()
                .fields()
                .iter()
                .filter_map(|field| {
                    let declared = field.metadata().contains_key(super::types::KQL_TYPE);
                    let from_reference = known
                        .and_then(|t| t.columns.iter().find(|c| c.name == field.name()))
                        .map(|c| c.kql_type.into());
                    let ty = if declared {
                        kql_type_of(field)
                    } else {
                        from_reference.or_else(|| kql_type_of(field))
                    }?;
                    Some(Column::new(field.name().clone(), ty))
                })
                .collect();
            tables.push((name, Schema::new(columns)));
        }
        SessionCatalog { tables }
    }
}

impl Catalog for SessionCatalog {
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
