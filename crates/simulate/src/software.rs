//! Installed software of the simulated devices, for `DeviceTvmSoftwareInventory`: what each kind
//! of device plausibly has, by operating system and role. Deterministic: a device's list depends
//! on its OS, role and distribution only, so a fleet reports the same software run after run.
//! The demo's agents send it as reports; `rampart simulate` writes it beside the event tables.

use crate::fleet::{Device, Fleet, Os, Role};
use crate::sinks::{DEFAULT_TENANT, NdjsonSink, ParquetSink};
use rampart_core::schema::{DEVICE_TVM_SOFTWARE_INVENTORY, Table};
use rampart_telemetry::TableBatchBuilder;
use serde_json::{Map, Value, json};
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

/// One installed product: vendor, name and version, as an inventory row names them.
pub type Product = (&'static str, &'static str, &'static str);

const WINDOWS: &[Product] = &[
    ("microsoft", "edge", "131.0.2903.70"),
    ("microsoft", "windows_defender", "4.18.24090.11"),
    ("microsoft", ".net_framework", "4.8.9032"),
    (
        "microsoft",
        "visual_c++_2015-2022_redistributable",
        "14.40.33810.0",
    ),
    ("7-zip", "7-zip", "24.08"),
];
const WINDOWS_DESKTOP: &[Product] = &[
    ("microsoft", "office", "16.0.18129.20158"),
    ("microsoft", "teams", "24295.605.3225.8804"),
    ("microsoft", "onedrive", "24.211.1020.0002"),
    ("google", "chrome", "131.0.6778.86"),
    ("zoom", "zoom", "6.2.11.5069"),
    ("adobe", "acrobat_reader_dc", "24.005.20320"),
    ("notepad++", "notepad++", "8.7.1"),
];
/// Linux packages: name, then its version on Ubuntu 22.04, Ubuntu 24.04 and Red Hat 9.4.
type Package = (&'static str, [&'static str; 3]);

const LINUX: &[Package] = &[
    (
        "openssh-server",
        [
            "1:8.9p1-3ubuntu0.10",
            "1:9.6p1-3ubuntu13.5",
            "8.7p1-38.el9_4.4",
        ],
    ),
    (
        "openssl",
        ["3.0.2-0ubuntu1.18", "3.0.13-0ubuntu3.4", "3.0.7-27.el9"],
    ),
    ("bash", ["5.1-6ubuntu1.1", "5.2.21-2ubuntu4", "5.1.8-9.el9"]),
    (
        "curl",
        [
            "7.81.0-1ubuntu1.18",
            "8.5.0-2ubuntu10.5",
            "7.76.1-29.el9_4.1",
        ],
    ),
    (
        "sudo",
        ["1.9.9-1ubuntu2.4", "1.9.15p5-3ubuntu5", "1.9.5p2-10.el9_3"],
    ),
    (
        "systemd",
        ["249.11-0ubuntu3.12", "255.4-1ubuntu8.4", "252-32.el9_4.7"],
    ),
    (
        "python3",
        ["3.10.6-1~22.04.1", "3.12.3-0ubuntu2", "3.9.18-3.el9_4.6"],
    ),
];
const LINUX_WEB: &[Package] = &[(
    "nginx",
    [
        "1.18.0-6ubuntu14.5",
        "1.24.0-2ubuntu7.1",
        "1:1.20.1-16.el9_4.1",
    ],
)];
const LINUX_DATABASE: &[Package] = &[(
    "postgresql",
    [
        "14.15-0ubuntu0.22.04.1",
        "16.6-0ubuntu0.24.04.1",
        "13.16-1.el9_4",
    ],
)];
const LINUX_APP: &[Package] = &[(
    "openjdk-17-jre",
    [
        "17.0.13+11-2ubuntu1~22.04",
        "17.0.13+11-2ubuntu1~24.04",
        "1:17.0.13.0.11-3.el9",
    ],
)];
const LINUX_BUILD: &[Package] = &[
    (
        "git",
        [
            "1:2.34.1-1ubuntu1.11",
            "1:2.43.0-1ubuntu7.1",
            "2.43.5-1.el9_4",
        ],
    ),
    (
        "docker.io",
        [
            "24.0.7-0ubuntu2~22.04.1",
            "24.0.7-0ubuntu4.1",
            "24.0.7-1.el9",
        ],
    ),
];
const MACOS: &[Product] = &[
    ("apple", "safari", "18.1.1"),
    ("google", "chrome", "131.0.6778.86"),
    ("slack", "slack", "4.41.105"),
    ("zoom", "zoom", "6.2.11.43613"),
    ("microsoft", "word", "16.91"),
    ("microsoft", "outlook", "16.91"),
];

/// What a Windows device's role adds to the base.
fn windows_role(role: Role) -> &'static [Product] {
    match role {
        Role::Desktop | Role::Laptop => WINDOWS_DESKTOP,
        Role::SqlServer => &[("microsoft", "sql_server_2019", "15.0.4405.4")],
        Role::WebServer | Role::AppServer => &[
            ("microsoft", "internet_information_services", "10.0.20348.1"),
            ("microsoft", ".net", "8.0.11"),
        ],
        _ => &[],
    }
}

/// What a Linux device's role adds to the base.
fn linux_role(role: Role) -> &'static [Package] {
    match role {
        Role::WebServer => LINUX_WEB,
        Role::Database => LINUX_DATABASE,
        Role::AppServer => LINUX_APP,
        Role::BuildServer => LINUX_BUILD,
        _ => &[],
    }
}

/// The products installed on `device`.
pub fn installed(device: &Device) -> Vec<Product> {
    match device.os {
        Os::Windows => WINDOWS
            .iter()
            .chain(windows_role(device.role))
            .copied()
            .collect(),
        Os::MacOs => MACOS.to_vec(),
        Os::Linux => {
            let (vendor, release) =
                match (device.platform.os_distribution, device.platform.os_version) {
                    ("Ubuntu", "22.04") => ("ubuntu", 0),
                    ("Ubuntu", _) => ("ubuntu", 1),
                    _ => ("red hat", 2),
                };
            LINUX
                .iter()
                .chain(linux_role(device.role))
                .map(|(name, versions)| (vendor, *name, versions[release]))
                .collect()
        }
    }
}

/// The device's inventory report: one `DeviceTvmSoftwareInventory` row per product.
pub fn rows(device: &Device) -> Vec<Map<String, Value>> {
    let text = |s: &str| Value::String(s.to_owned());
    installed(device)
        .into_iter()
        .map(|(vendor, name, version)| {
            Map::from_iter([
                ("DeviceId".to_owned(), text(&device.id)),
                ("DeviceName".to_owned(), text(&device.name)),
                ("OSPlatform".to_owned(), text(device.platform.os_platform)),
                ("OSVersion".to_owned(), text(device.platform.os_version)),
                ("OSArchitecture".to_owned(), text("64-bit")),
                ("SoftwareVendor".to_owned(), text(vendor)),
                ("SoftwareName".to_owned(), text(name)),
                ("SoftwareVersion".to_owned(), text(version)),
                ("ProductCodeCpe".to_owned(), text("not available")),
            ])
        })
        .collect()
}

/// Writes the fleet's inventory as `DeviceTvmSoftwareInventory.ndjson` in `dir`: MDE streaming
/// records like the other tables' files, stamped `at_ns` (a report has no event time of its
/// own). Returns the rows written.
pub fn write_ndjson(dir: &Path, fleet: &Fleet, at_ns: i64) -> io::Result<usize> {
    let mut out = BufWriter::new(File::create(NdjsonSink::path_of(dir, table()))?);
    let mut n = 0;
    for d in fleet.devices() {
        for row in rows(d) {
            let record = json!({
                "time": crate::time::iso_string(at_ns),
                "tenantId": DEFAULT_TENANT,
                "operationName": "Publish",
                "category": format!("AdvancedHunting-{}", table().name),
                "properties": row,
            });
            serde_json::to_writer(&mut out, &record)?;
            out.write_all(b"\n")?;
            n += 1;
        }
    }
    out.flush()?;
    Ok(n)
}

/// Writes the fleet's inventory as one Parquet file under `dir/DeviceTvmSoftwareInventory/`,
/// like the other tables' parts. Returns the rows written.
pub fn write_parquet(dir: &Path, fleet: &Fleet) -> io::Result<usize> {
    let mut b = TableBatchBuilder::new(table());
    for d in fleet.devices() {
        for row in rows(d) {
            b.push_json(&row).map_err(io::Error::other)?;
        }
    }
    let batch = b.finish();
    let bytes = rampart_telemetry::store::files::write_parquet(&batch).map_err(io::Error::other)?;
    let path = ParquetSink::path_of(dir, table(), 0);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(path, bytes)?;
    Ok(batch.num_rows())
}

fn table() -> &'static Table {
    &DEVICE_TVM_SOFTWARE_INVENTORY
}
