//! The installed-software sensor: parsing dpkg's and rpm's package lists, and the rows of a
//! report; and the packages of this very host, read the way `run` reads them.

use rampart_agent::host::DeviceInfo;
use rampart_agent::software::{
    Package, PackageDatabase, parse_dpkg_status, parse_rpm_query, report, rows,
};
use serde_json::json;

#[test]
fn dpkg_stanzas_count_only_installed_packages() {
    let status = "Package: adduser\nStatus: install ok installed\nPriority: important\n\
Maintainer: Debian Adduser Developers <adduser@packages.debian.org>\nArchitecture: all\n\
Version: 3.134\nDescription: add and remove users and groups\n This package includes\n .\n more\n\n\
Package: oldpkg\nStatus: deinstall ok config-files\nVersion: 1.0\n\n\
Package: curl\nStatus: install ok installed\nOrigin: Ubuntu\nVersion: 8.5.0-2ubuntu10.6\n\
Conffiles:\n /etc/x 0123\n\n\
Package: broken\nStatus: install reinstreq half-installed\nVersion: 2\n";
    let got = parse_dpkg_status(status);
    assert_eq!(
        got,
        vec![
            Package {
                name: "adduser".into(),
                version: "3.134".into(),
                vendor: None
            },
            Package {
                name: "curl".into(),
                version: "8.5.0-2ubuntu10.6".into(),
                vendor: Some("ubuntu".into())
            },
        ]
    );
}

#[test]
fn rpm_lines_skip_keys_and_missing_vendors() {
    let out = "bash\t5.2.26-3.fc40\tFedora Project\ngpg-pubkey\ta15b79cc-63d04c2c\t(none)\n\
openssl\t3.2.2-3.fc40\t(none)\n\n";
    let got = parse_rpm_query(out);
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].vendor.as_deref(), Some("Fedora Project"));
    assert_eq!(got[1].name, "openssl");
    assert_eq!(got[1].version, "3.2.2-3.fc40");
    assert_eq!(got[1].vendor, None);
}

#[test]
fn rows_fall_back_to_the_distribution_as_vendor() {
    let info = DeviceInfo {
        device_id: Some("ab".repeat(20)),
        device_name: "web-1".into(),
        os_release: [("ID".to_owned(), "Debian".to_owned())].into(),
        process_source: "connector".into(),
        logged_on_users: Vec::new(),
    };
    let pkgs = [Package {
        name: "bash".into(),
        version: "5.2".into(),
        vendor: None,
    }];
    let r = &rows(&info, &pkgs)[0];
    assert_eq!(r["SoftwareVendor"], json!("debian"));
    assert_eq!(r["SoftwareName"], json!("bash"));
    assert_eq!(r["DeviceId"], json!("ab".repeat(20)));
    assert!(r.get("Timestamp").is_none());
    let batch = report(vec![r.clone()]);
    assert_eq!(batch.row_count(), 1);
    assert!(batch.tables.contains_key("DeviceTvmSoftwareInventory"));
}

#[test]
fn this_hosts_package_database_lists_its_own_package_manager() {
    // The test machines are Debian-family (dpkg) or RPM-family: either way the package manager
    // itself is installed, and a change check has a fingerprint to compare.
    let db = PackageDatabase::find().expect("a dpkg or rpm database on this host");
    let packages = db.installed().unwrap();
    let manager = match db {
        PackageDatabase::Dpkg(_) => "dpkg",
        PackageDatabase::Rpm(_) => "rpm",
    };
    assert!(
        packages
            .iter()
            .any(|p| p.name == manager && !p.version.is_empty()),
        "{manager} is not among the {} installed packages",
        packages.len()
    );
    assert!(db.fingerprint().is_some());
}

/// Builds a package with the real `rpmbuild` (noarch, no files) into `top`; its path.
fn build_rpm(top: &std::path::Path, name: &str, version: &str) -> std::path::PathBuf {
    let specs = top.join("SPECS");
    std::fs::create_dir_all(&specs).unwrap();
    let spec = specs.join(format!("{name}.spec"));
    std::fs::write(
        &spec,
        format!(
            "Name: {name}\nVersion: {version}\nRelease: 4.el9\nSummary: test\nLicense: MIT\n\
             Vendor: Rampart Tests\nBuildArch: noarch\n%description\ntest\n%files\n"
        ),
    )
    .unwrap();
    let out = std::process::Command::new("rpmbuild")
        .arg("--define")
        .arg(format!("_topdir {}", top.display()))
        .args(["--quiet", "-bb"])
        .arg(&spec)
        .output()
        .expect("rpmbuild (apt-get install rpm)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    top.join(format!("RPMS/noarch/{name}-{version}-4.el9.noarch.rpm"))
}

#[test]
fn an_rpm_database_is_read_through_the_real_rpm_and_its_changes_are_seen() {
    let dir = tempfile::tempdir().unwrap();
    let dbdir = dir.path().join("rpmdb");
    let rpm = |args: &[&str]| {
        let out = std::process::Command::new("rpm")
            .arg("--dbpath")
            .arg(&dbdir)
            .args(args)
            .output()
            .expect("rpm (apt-get install rpm)");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    std::fs::create_dir(&dbdir).unwrap();
    rpm(&["--initdb"]);
    let db = PackageDatabase::Rpm(dbdir.join("rpmdb.sqlite"));
    assert!(
        db.installed().unwrap().is_empty(),
        "a new database lists nothing"
    );
    let before = db.fingerprint();

    let pkg = build_rpm(&dir.path().join("top"), "rampart-it-pkg", "1.2.3");
    // Into the database only (`--justdb`): the test installs no files on this host.
    rpm(&["-i", "--justdb", "--nodeps", pkg.to_str().unwrap()]);
    assert_eq!(
        db.installed().unwrap(),
        [Package {
            name: "rampart-it-pkg".into(),
            version: "1.2.3-4.el9".into(),
            vendor: Some("Rampart Tests".into()),
        }]
    );
    assert_ne!(
        db.fingerprint(),
        before,
        "an install changes the fingerprint"
    );

    // A database that is gone, or that rpm cannot read, is an error, not an empty inventory
    // (a report replaces the last one whole).
    let missing = PackageDatabase::Rpm(dir.path().join("nowhere/rpmdb.sqlite"));
    assert!(missing.installed().is_err());
    std::fs::write(dbdir.join("rpmdb.sqlite"), b"not a database").unwrap();
    assert!(db.installed().is_err(), "{:?}", db.installed());
}
