//! Rows as typed cells addressed by column index, built without per-row allocation.
//!
//! Every column the generator writes is a variant of [`C`], named exactly like the schema column.
//! Each table resolves those names to positions once ([`TableCols`]); a cell for a column the
//! table does not have is skipped, so shared writers (the InitiatingProcess block) serve every
//! table that has a subset of the columns.

use rampart_core::schema::{self, Table};
use rampart_telemetry::Cell;
use std::sync::OnceLock;

macro_rules! columns {
    ($($c:ident),* $(,)?) => {
        /// A column the generator writes, named as in the schema.
        #[allow(clippy::upper_case_acronyms)]
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum C { $($c),* }

        impl C {
            pub const ALL: &'static [C] = &[$(C::$c),*];
            pub const fn name(self) -> &'static str {
                match self { $(C::$c => stringify!($c)),* }
            }
        }
    };
}

columns! {
    Timestamp, DeviceId, DeviceName, ActionType, ReportId, AdditionalFields,
    FileName, FolderPath, SHA1, SHA256, MD5, FileSize,
    ProcessVersionInfoCompanyName, ProcessVersionInfoProductName, ProcessVersionInfoProductVersion,
    ProcessVersionInfoInternalFileName, ProcessVersionInfoOriginalFileName, ProcessVersionInfoFileDescription,
    ProcessId, ProcessCommandLine, ProcessIntegrityLevel, ProcessTokenElevation, ProcessCreationTime,
    AccountDomain, AccountName, AccountSid, AccountUpn, AccountObjectId, LogonId,
    CreatedProcessSessionId, IsProcessRemoteSession, ProcessUniqueId,
    InitiatingProcessAccountDomain, InitiatingProcessAccountName, InitiatingProcessAccountSid,
    InitiatingProcessAccountUpn, InitiatingProcessAccountObjectId, InitiatingProcessLogonId,
    InitiatingProcessIntegrityLevel, InitiatingProcessTokenElevation,
    InitiatingProcessSHA1, InitiatingProcessSHA256, InitiatingProcessMD5,
    InitiatingProcessFileName, InitiatingProcessFileSize,
    InitiatingProcessVersionInfoCompanyName, InitiatingProcessVersionInfoProductName,
    InitiatingProcessVersionInfoProductVersion, InitiatingProcessVersionInfoInternalFileName,
    InitiatingProcessVersionInfoOriginalFileName, InitiatingProcessVersionInfoFileDescription,
    InitiatingProcessId, InitiatingProcessCommandLine, InitiatingProcessCreationTime,
    InitiatingProcessFolderPath, InitiatingProcessParentId, InitiatingProcessParentFileName,
    InitiatingProcessParentCreationTime, InitiatingProcessSignerType, InitiatingProcessSignatureStatus,
    InitiatingProcessSessionId, IsInitiatingProcessRemoteSession, InitiatingProcessUniqueId,
    RemoteIP, RemotePort, RemoteUrl, LocalIP, LocalPort, Protocol, LocalIPType, RemoteIPType,
    FileOriginUrl, FileOriginReferrerUrl, FileOriginIP, PreviousFolderPath, PreviousFileName,
    RequestProtocol, RequestSourceIP, RequestSourcePort, RequestAccountName, RequestAccountDomain,
    RequestAccountSid, ShareName,
    RegistryKey, RegistryValueType, RegistryValueName, RegistryValueData, PreviousRegistryValueData,
    LogonType, FailureReason, IsLocalAdmin, RemoteDeviceName,
    ClientVersion, PublicIP, OSArchitecture, OSPlatform, OSBuild, IsAzureADJoined, JoinType,
    AadDeviceId, LoggedOnUsers, OSVersion, MachineGroup, OnboardingStatus, DeviceCategory, DeviceType,
    Model, Vendor, OSDistribution, OSVersionInfo, IsInternetFacing, SensorHealthState, IsExcluded,
    ExposureLevel, AssetValue, DeviceManualTags, DeviceDynamicTags, ConnectivityType, HardwareUuid,
    IsTransient, OsBuildRevision, Site, RegistryDeviceTag,
    NetworkAdapterName, MacAddress, NetworkAdapterType, NetworkAdapterStatus, TunnelType,
    ConnectedNetworks, DnsAddresses, IPv4Dhcp, DefaultGateways, IPAddresses, NetworkAdapterVendor,
    NetworkAdapterDnsSuffix,
}

/// The tables the generator writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum T {
    Process,
    Network,
    File,
    Registry,
    Logon,
    ImageLoad,
    Events,
    Info,
    NetworkInfo,
}

impl T {
    pub const ALL: [T; 9] = [
        T::Process,
        T::Network,
        T::File,
        T::Registry,
        T::Logon,
        T::ImageLoad,
        T::Events,
        T::Info,
        T::NetworkInfo,
    ];

    pub fn table(self) -> &'static Table {
        match self {
            T::Process => &schema::DEVICE_PROCESS_EVENTS,
            T::Network => &schema::DEVICE_NETWORK_EVENTS,
            T::File => &schema::DEVICE_FILE_EVENTS,
            T::Registry => &schema::DEVICE_REGISTRY_EVENTS,
            T::Logon => &schema::DEVICE_LOGON_EVENTS,
            T::ImageLoad => &schema::DEVICE_IMAGE_LOAD_EVENTS,
            T::Events => &schema::DEVICE_EVENTS,
            T::Info => &schema::DEVICE_INFO,
            T::NetworkInfo => &schema::DEVICE_NETWORK_INFO,
        }
    }

    pub fn cols(self) -> &'static TableCols {
        static ALL: OnceLock<Vec<TableCols>> = OnceLock::new();
        &ALL.get_or_init(|| T::ALL.iter().map(|t| TableCols::new(t.table())).collect())
            [self as usize]
    }
}

const ABSENT: u8 = u8::MAX;

/// Column positions of one table for every [`C`] (or absent).
pub struct TableCols {
    pub table: &'static Table,
    pos: Vec<u8>,
}

impl TableCols {
    fn new(table: &'static Table) -> TableCols {
        let pos = C::ALL
            .iter()
            .map(|c| {
                rampart_telemetry::rows::column_index(table, c.name())
                    .and_then(|i| u8::try_from(i).ok())
                    .unwrap_or(ABSENT)
            })
            .collect();
        TableCols { table, pos }
    }

    #[cfg(test)]
    pub fn has(&self, c: C) -> bool {
        self.pos[c as usize] != ABSENT
    }
}

/// One row being built. Obtained from [`RowBuf::start`] and handed back with
/// [`RowBuf::recycle`], so its cell vector is reused across rows.
pub struct Row<'a> {
    pub t: T,
    cols: &'static TableCols,
    pub cells: Vec<(usize, Cell<'a>)>,
}

impl<'a> Row<'a> {
    #[inline]
    pub fn set(&mut self, c: C, v: Cell<'a>) {
        let p = self.cols.pos[c as usize];
        if p != ABSENT {
            self.cells.push((usize::from(p), v));
        }
    }

    #[inline]
    pub fn s(&mut self, c: C, v: &'a str) {
        self.set(c, Cell::Str(v));
    }

    /// A text cell unless the text is empty (then the column stays null).
    #[inline]
    pub fn s_opt(&mut self, c: C, v: Option<&'a str>) {
        if let Some(v) = v.filter(|v| !v.is_empty()) {
            self.set(c, Cell::Str(v));
        }
    }

    #[inline]
    pub fn l(&mut self, c: C, v: i64) {
        self.set(c, Cell::Long(v));
    }

    #[inline]
    pub fn i(&mut self, c: C, v: i32) {
        self.set(c, Cell::Int(v));
    }

    #[inline]
    pub fn b(&mut self, c: C, v: bool) {
        self.set(c, Cell::Bool(v));
    }

    #[inline]
    pub fn t(&mut self, c: C, ns: i64) {
        self.set(c, Cell::Time(ns));
    }

    pub fn table(&self) -> &'static Table {
        self.cols.table
    }

    /// The text of a column already set (labels and tests look rows up by it).
    pub fn get_str(&self, c: C) -> Option<&'a str> {
        let p = usize::from(self.cols.pos[c as usize]);
        self.cells
            .iter()
            .find(|(i, _)| *i == p)
            .and_then(|(_, v)| match v {
                Cell::Str(s) => Some(*s),
                _ => None,
            })
    }
}

/// The spare cell vector rows are built in.
#[derive(Default)]
pub struct RowBuf {
    spare: Vec<(usize, Cell<'static>)>,
}

impl RowBuf {
    pub fn start<'a>(&mut self, t: T) -> Row<'a> {
        Row {
            t,
            cols: t.cols(),
            cells: relabel(std::mem::take(&mut self.spare)),
        }
    }

    pub fn recycle(&mut self, row: Row<'_>) {
        self.spare = relabel(row.cells);
    }
}

/// Empties a cell vector and gives it another lifetime, keeping its allocation: `collect` from a
/// vector's own `IntoIter` into a same-layout vector reuses the buffer, and as the vector is
/// empty the closure never runs.
fn relabel<'b>(mut v: Vec<(usize, Cell<'_>)>) -> Vec<(usize, Cell<'b>)> {
    v.clear();
    v.into_iter().map(|_| (0, Cell::Null)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_column_exists_somewhere_and_positions_match_the_schema() {
        for c in C::ALL {
            assert!(
                T::ALL.iter().any(|t| t.cols().has(*c)),
                "{} is in no table",
                c.name()
            );
        }
        let mut buf = RowBuf::default();
        let mut r = buf.start(T::Registry);
        r.s(C::AdditionalFields, "{}"); // not a DeviceRegistryEvents column: skipped
        r.s(C::RegistryKey, "HKEY_LOCAL_MACHINE\\SOFTWARE");
        assert_eq!(r.cells.len(), 1);
        assert_eq!(
            T::Registry.table().columns[r.cells[0].0].name,
            "RegistryKey"
        );
        r.cells.reserve(64);
        let cap = r.cells.capacity();
        buf.recycle(r);
        let r = buf.start(T::Process);
        assert!(r.cells.is_empty());
        assert_eq!(r.cells.capacity(), cap, "the cell buffer is reused");
    }
}
