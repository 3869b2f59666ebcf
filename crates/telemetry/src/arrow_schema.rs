//! The Arrow form of the advanced-hunting tables.
//!
//! `datetime` is `Timestamp(Nanosecond, "UTC")` (KQL keeps 100 ns ticks; microseconds would lose
//! the seventh fractional digit), `dynamic` is JSON text, and every column but `Timestamp` is
//! nullable: devices omit what they don't know. Each field carries its KQL type in the metadata
//! key [`KQL_TYPE`], so `getschema` over a stored file tells `dynamic` from `string`.

use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use rampart_core::schema::{self, KqlType, Table};
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

/// Field metadata key holding the column's KQL type name.
pub const KQL_TYPE: &str = "kql_type";

/// The timezone of every timestamp column.
pub const UTC: &str = "UTC";

/// The Arrow type of a KQL type.
pub fn data_type(t: KqlType) -> DataType {
    match t {
        KqlType::Bool => DataType::Boolean,
        KqlType::Int => DataType::Int32,
        KqlType::Long => DataType::Int64,
        KqlType::Real => DataType::Float64,
        KqlType::String | KqlType::Dynamic => DataType::Utf8,
        KqlType::DateTime => DataType::Timestamp(TimeUnit::Nanosecond, Some(UTC.into())),
    }
}

/// The Arrow schema of `table` (built once per table).
pub fn arrow_schema(table: &'static Table) -> SchemaRef {
    static SCHEMAS: OnceLock<Vec<SchemaRef>> = OnceLock::new();
    let all = SCHEMAS.get_or_init(|| schema::hunting_tables().map(build).collect());
    let i = schema::hunting_tables()
        .position(|t| std::ptr::eq(t, table))
        .or_else(|| schema::hunting_tables().position(|t| t.name == table.name));
    match i {
        Some(i) => all[i].clone(),
        // Only the schema's tables exist, but a caller-built `Table` still gets its schema.
        None => build(table),
    }
}

fn build(table: &Table) -> SchemaRef {
    let fields: Vec<Field> = table
        .columns
        .iter()
        .map(|c| {
            Field::new(c.name, data_type(c.kql_type), c.name != schema::TIMESTAMP).with_metadata(
                HashMap::from([(KQL_TYPE.to_owned(), c.kql_type.name().to_owned())]),
            )
        })
        .collect();
    Arc::new(
        Schema::new(fields)
            .with_metadata(HashMap::from([("table".to_owned(), table.name.to_owned())])),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_table_maps_every_column() {
        for t in schema::ALL {
            let s = arrow_schema(t);
            assert_eq!(s.fields().len(), t.columns.len());
            let ts = s.field_with_name(schema::TIMESTAMP).unwrap();
            assert!(!ts.is_nullable());
            assert_eq!(
                ts.data_type(),
                &DataType::Timestamp(TimeUnit::Nanosecond, Some(UTC.into()))
            );
        }
        let info = schema::table("DeviceInfo").unwrap();
        let s = arrow_schema(info);
        let f = s.field_with_name("LoggedOnUsers").unwrap();
        assert_eq!(f.data_type(), &DataType::Utf8);
        assert_eq!(
            f.metadata().get(KQL_TYPE).map(String::as_str),
            Some("string")
        );
    }
}
