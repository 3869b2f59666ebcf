//! Installed software: every device has an inventory that fits its OS, distribution and role,
//! and its rows are valid `DeviceTvmSoftwareInventory` rows.

use crate::common::spec;
use rampart_simulate::{Fleet, Os, Role};
use rampart_telemetry::TableBatchBuilder;
use std::collections::BTreeSet;

#[test]
fn every_device_reports_software_that_fits_it() {
    let fleet = Fleet::new(&spec(200, 1.0, 5, &[]));
    let table = rampart_core::schema::table("DeviceTvmSoftwareInventory").unwrap();
    let mut vendors_by_os: BTreeSet<(&str, String)> = BTreeSet::new();
    for d in fleet.devices() {
        let rows = rampart_simulate::software::rows(d);
        assert!(rows.len() >= 5, "{}: {rows:?}", d.name);
        let mut b = TableBatchBuilder::new(table);
        for r in &rows {
            b.push_json(r).unwrap_or_else(|e| panic!("{}: {e}", d.name));
            vendors_by_os.insert((
                d.os.name(),
                r["SoftwareVendor"].as_str().unwrap().to_owned(),
            ));
            assert_eq!(r["DeviceId"], d.id.as_str());
        }
        let names: BTreeSet<&str> = rows
            .iter()
            .map(|r| r["SoftwareName"].as_str().unwrap())
            .collect();
        assert_eq!(
            names.len(),
            rows.len(),
            "{}: a product listed twice",
            d.name
        );
        match (d.os, d.role) {
            (Os::Linux, Role::WebServer) => assert!(names.contains("nginx"), "{}", d.name),
            (Os::Linux, _) => assert!(names.contains("openssh-server"), "{}", d.name),
            (Os::Windows, Role::SqlServer) => {
                assert!(names.contains("sql_server_2019"), "{}", d.name)
            }
            (Os::Windows, Role::Desktop | Role::Laptop) => {
                assert!(names.contains("office"), "{}", d.name)
            }
            _ => {}
        }
        if d.os == Os::Linux && d.platform.os_distribution == "RedHat" {
            assert!(
                rows.iter().all(|r| r["SoftwareVendor"] == "red hat"),
                "{}",
                d.name
            );
        }
    }
    // The fleet's mix shows in the vendors: Windows and macOS products, and both Linux families.
    for (os, vendor) in [
        ("Windows", "microsoft"),
        ("macOS", "apple"),
        ("Linux", "ubuntu"),
        ("Linux", "red hat"),
    ] {
        assert!(
            vendors_by_os.contains(&(os, vendor.to_owned())),
            "{os}/{vendor}: {vendors_by_os:?}"
        );
    }
}
