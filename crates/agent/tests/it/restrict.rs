//! Code-execution restriction on the real kernel: fanotify exec-permission events on a tmpfs of
//! the test's own (so nothing else on the machine is affected), a refusal reported with the
//! file's hashes and the process that asked, and everything allowed again once the guard stops.
//! Needs root (CAP_SYS_ADMIN for fanotify and mount).

use rampart_agent::commands::restrict::{
    Allowlist, ExecGuard, ExecPolicy, PolicyCell, Refusal, Reporter,
};
use rampart_agent::process::hashes::HashCache;
use rampart_agent::process::rows::RowContext;
use rampart_proto::enforcement::Enforcement;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A tmpfs mounted on a temporary directory; unmounted on drop.
pub(crate) struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    pub(crate) fn new() -> Tmpfs {
        let dir = tempfile::tempdir().unwrap();
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=16m", "tmpfs"])
            .arg(dir.path())
            .status()
            .unwrap()
            .success();
        assert!(ok, "mounting a tmpfs (the test needs root)");
        Tmpfs { dir }
    }

    pub(crate) fn path(&self) -> &Path {
        self.dir.path()
    }

    /// A copy of `/bin/true` named `name`, executable.
    fn program(&self, name: &str) -> PathBuf {
        let p = self.path().join(name);
        std::fs::copy("/bin/true", &p).unwrap();
        p
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

fn sha256(path: &Path) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(std::fs::read(path).unwrap())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
fn the_guard_refuses_what_is_not_allowed_and_everything_runs_once_it_stops() {
    let fs = Tmpfs::new();
    let good = fs.program("good");
    let evil = fs.program("evil");
    let allow = Arc::new(Allowlist::from_paths([good.clone()]));
    let policy: PolicyCell = Arc::new(std::sync::RwLock::new(Arc::new(ExecPolicy {
        restricted: Some(allow),
        hashes: Default::default(),
    })));
    let (tx, mut rx) = tokio::sync::mpsc::channel(16);
    let guard = ExecGuard::start(
        &[fs.path().to_owned()],
        policy,
        Reporter {
            rows: tx,
            context: RowContext {
                device_id: Some("ef".repeat(20)),
                device_name: "web-1".into(),
                account_domain: "web-1".into(),
            },
            cache: Arc::new(HashCache::new(100 << 20, 1024)),
        },
    )
    .unwrap();

    assert!(
        std::process::Command::new(&good)
            .status()
            .unwrap()
            .success()
    );
    let refused = std::process::Command::new(&evil).status();
    let err = refused.expect_err("a program off the allow-list must not run");
    assert_eq!(err.kind(), std::io::ErrorKind::PermissionDenied, "{err}");
    // Programs elsewhere are not watched.
    assert!(
        std::process::Command::new("/bin/true")
            .status()
            .unwrap()
            .success()
    );

    let (table, row) = rx.blocking_recv().expect("the refusal is reported");
    assert_eq!(table, "DeviceEvents");
    assert_eq!(row["ActionType"], "AppControlExecutableBlocked");
    assert_eq!(row["FolderPath"], evil.to_str().unwrap());
    assert_eq!(row["FileName"], "evil");
    assert_eq!(row["SHA256"], sha256(&evil).as_str());
    // The process that asked was this test's fork, still running this test's image.
    let me = std::env::current_exe().unwrap();
    assert_eq!(
        row["InitiatingProcessFileName"],
        me.file_name().unwrap().to_str().unwrap(),
        "{row:?}"
    );
    let table = &rampart_core::schema::DEVICE_EVENTS;
    for column in row.keys() {
        assert!(table.columns.iter().any(|c| c.name == column), "{column}");
    }
    assert!(rx.try_recv().is_err(), "one refusal, one row");

    guard.stop();
    assert!(
        std::process::Command::new(&evil)
            .status()
            .unwrap()
            .success()
    );
}

#[test]
fn the_package_manager_allow_list_has_system_programs_not_copies() {
    let allow = Allowlist::from_package_manager().unwrap();
    assert!(allow.len() > 1000, "{} files", allow.len());
    let truth = std::fs::canonicalize("/bin/true").unwrap();
    assert!(allow.allows(&truth), "{} is package-owned", truth.display());
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("true");
    std::fs::copy(&truth, &copy).unwrap();
    assert!(!allow.allows(&copy));
}

#[test]
fn an_allow_indicator_wins_then_a_block_then_the_restriction() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tool");
    std::fs::write(&file, b"#!/bin/sh\necho hi\n").unwrap();
    let open = || std::fs::File::open(&file).unwrap();
    let cache = HashCache::new(1 << 20, 16);
    let digest = sha256(&file);
    let rule = |action| (action, "42".to_owned(), "bad tool".to_owned());
    let decide = |p: &ExecPolicy| p.decide(Some(&file), &open(), &cache, None);

    assert_eq!(decide(&ExecPolicy::default()), None);
    let blocked = ExecPolicy {
        restricted: None,
        hashes: [(digest.clone(), rule(Enforcement::Block))].into(),
    };
    assert_eq!(
        decide(&blocked),
        Some(Refusal::Indicator {
            id: "42".into(),
            title: "bad tool".into()
        })
    );
    let restricted = ExecPolicy {
        restricted: Some(Arc::new(Allowlist::default())),
        hashes: Default::default(),
    };
    assert_eq!(decide(&restricted), Some(Refusal::Restricted));
    let allowed = ExecPolicy {
        restricted: Some(Arc::new(Allowlist::default())),
        hashes: [(digest, rule(Enforcement::Allow))].into(),
    };
    assert_eq!(
        decide(&allowed),
        None,
        "an Allowed indicator wins over the restriction"
    );
}
