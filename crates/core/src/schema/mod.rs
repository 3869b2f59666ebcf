//! The advanced-hunting schema: the Device* and Alert* tables with every documented column, its
//! exact name and KQL type.
//!
//! This is the one definition that ingestion, storage, hunting and the streaming format share. The
//! table list in [`tables`] is generated from the reference (`tools/gen-schema.py`), so a column is
//! never spelled two ways in the code base.

mod tables;

pub use tables::*;

use serde::Serialize;

/// A KQL scalar type as used by the advanced-hunting tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KqlType {
    Bool,
    Int,
    Long,
    Real,
    String,
    #[serde(rename = "datetime")]
    DateTime,
    Dynamic,
}

impl KqlType {
    /// The KQL name (`getschema`'s `ColumnType`).
    pub const fn name(self) -> &'static str {
        match self {
            KqlType::Bool => "bool",
            KqlType::Int => "int",
            KqlType::Long => "long",
            KqlType::Real => "real",
            KqlType::String => "string",
            KqlType::DateTime => "datetime",
            KqlType::Dynamic => "dynamic",
        }
    }

    /// The .NET type name (`getschema`'s `DataType`), which some partner tools key on.
    pub const fn clr_name(self) -> &'static str {
        match self {
            KqlType::Bool => "System.Boolean",
            KqlType::Int => "System.Int32",
            KqlType::Long => "System.Int64",
            KqlType::Real => "System.Double",
            KqlType::String => "System.String",
            KqlType::DateTime => "System.DateTime",
            KqlType::Dynamic => "System.Object",
        }
    }
}

/// One column of a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    pub name: &'static str,
    pub kql_type: KqlType,
    pub description: &'static str,
}

impl Column {
    pub const fn new(name: &'static str, kql_type: KqlType, description: &'static str) -> Self {
        Column {
            name,
            kql_type,
            description,
        }
    }
}

/// What a table's rows are, which decides what ingestion requires of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum TableKind {
    /// One row per device event; `Timestamp` and `DeviceId` are required.
    Event,
    /// Periodic device state (DeviceInfo, DeviceNetworkInfo, certificates); `Timestamp` and
    /// `DeviceId` are required.
    Snapshot,
    /// Alert tables; only `Timestamp` is required (evidence rows need not name a device).
    Alert,
    /// Current state per device (installed software): no `Timestamp`, `DeviceId` required. A
    /// report of a device replaces everything it reported before, so the table always shows
    /// what each device has now, not a history.
    Inventory,
}

/// One advanced-hunting table.
#[derive(Debug, PartialEq, Eq)]
pub struct Table {
    pub name: &'static str,
    pub kind: TableKind,
    pub description: &'static str,
    pub columns: &'static [Column],
}

/// The event-time column of every table but the inventory ones; storage sorts and partitions
/// by it.
pub const TIMESTAMP: &str = "Timestamp";
/// The device key column.
pub const DEVICE_ID: &str = "DeviceId";

impl Table {
    /// The column called `name` and its position (names are case-sensitive, as in KQL: `LogonId`
    /// and `LogonID` are different columns).
    pub fn column(&self, name: &str) -> Option<(usize, &'static Column)> {
        self.columns
            .iter()
            .enumerate()
            .find(|(_, c)| c.name == name)
    }

    /// Whether a row without a `DeviceId` is incomplete.
    pub fn requires_device_id(&self) -> bool {
        matches!(
            self.kind,
            TableKind::Event | TableKind::Snapshot | TableKind::Inventory
        )
    }

    /// Whether the table is a time series (its column 0 is `Timestamp`), not current state.
    pub fn has_timestamp(&self) -> bool {
        self.kind != TableKind::Inventory
    }

    /// Whether a stored row must carry this column.
    pub fn is_required(&self, column: &str) -> bool {
        (column == TIMESTAMP && self.has_timestamp())
            || (column == DEVICE_ID && self.requires_device_id())
    }
}

/// The table called `name` (case-sensitive), of [`ALL`] or [`INVENTORY`].
pub fn table(name: &str) -> Option<&'static Table> {
    ALL.iter()
        .chain(INVENTORY)
        .copied()
        .find(|t| t.name == name)
}

/// Every hunting table: [`ALL`], then [`INVENTORY`].
pub fn hunting_tables() -> impl Iterator<Item = &'static Table> {
    ALL.iter().chain(INVENTORY).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_table_has_a_timestamp_first_and_unique_columns() {
        assert_eq!(ALL.len(), 12);
        for t in ALL {
            assert_eq!(t.columns[0].name, TIMESTAMP, "{}", t.name);
            assert_eq!(t.columns[0].kql_type, KqlType::DateTime, "{}", t.name);
            let mut names: Vec<_> = t.columns.iter().map(|c| c.name).collect();
            names.sort_unstable();
            names.dedup();
            assert_eq!(
                names.len(),
                t.columns.len(),
                "{} has a duplicate column",
                t.name
            );
            if t.requires_device_id() {
                assert_eq!(
                    t.column(DEVICE_ID).map(|(_, c)| c.kql_type),
                    Some(KqlType::String)
                );
            }
        }
    }

    #[test]
    fn reference_types_are_kept() {
        let net = table("DeviceNetworkEvents").unwrap();
        assert_eq!(net.column("RemotePort").unwrap().1.kql_type, KqlType::Int);
        assert_eq!(net.column("ReportId").unwrap().1.kql_type, KqlType::Long);
        let proc = table("DeviceProcessEvents").unwrap();
        assert_eq!(
            proc.column("IsProcessRemoteSession").unwrap().1.kql_type,
            KqlType::Bool
        );
        assert_eq!(
            proc.column("ProcessCreationTime").unwrap().1.kql_type,
            KqlType::DateTime
        );
        assert!(
            proc.column("processid").is_none(),
            "column names are case-sensitive"
        );
        assert!(table("deviceinfo").is_none());
        assert_eq!(table("AlertInfo").unwrap().kind, TableKind::Alert);
    }

    #[test]
    fn inventory_tables_have_no_timestamp_and_need_a_device() {
        assert_eq!(INVENTORY.len(), 1);
        let software = table("DeviceTvmSoftwareInventory").unwrap();
        assert_eq!(software.kind, TableKind::Inventory);
        assert!(!software.has_timestamp());
        assert!(software.column(TIMESTAMP).is_none());
        assert!(software.is_required(DEVICE_ID));
        assert!(!software.is_required(TIMESTAMP));
        assert_eq!(
            software.column("EndOfSupportDate").unwrap().1.kql_type,
            KqlType::DateTime
        );
        assert_eq!(hunting_tables().count(), ALL.len() + INVENTORY.len());
    }
}
