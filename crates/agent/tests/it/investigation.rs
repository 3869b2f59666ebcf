//! What automated investigations ask of the device, on real processes and files: the live
//! look, the kill that leaves a reused pid alone, and persistence entries taken out and put
//! back with the file's owner and mode kept.

use rampart_agent::commands::evidence::{kill, look, running_image};
use rampart_agent::commands::persistence::PersistenceStore;
use rampart_agent::process::hashes::HashCache;
use rampart_agent::process::rows::RowContext;
use rampart_agent::scan::Scanner;
use rampart_agent::scan::locations::QuickLocations;
use rampart_proto::command::{EvidenceRequest, FileProbe, PersistenceTarget, ProcessTarget};
use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn scanner() -> Scanner {
    let (rows, _) = tokio::sync::mpsc::channel(1);
    Scanner::new(
        Arc::new(HashCache::new(1 << 20, 16)),
        QuickLocations { paths: vec![] },
        Some(vec![]),
        RowContext::default(),
        rows,
    )
}

fn gone(child: &mut std::process::Child) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if child.try_wait().unwrap().is_some() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

#[test]
fn a_live_look_tells_running_processes_and_present_files_and_a_kill_spares_a_reused_pid() {
    let mut sleeper = std::process::Command::new("sleep")
        .arg("60")
        .spawn()
        .unwrap();
    let pid = sleeper.id();
    let image = running_image(pid).expect("the sleeper runs");
    let dir = tempfile::tempdir().unwrap();
    let present = dir.path().join("payload");
    std::fs::write(&present, b"#!/bin/sh\necho hi\n").unwrap();
    let absent = dir.path().join("deleted");
    let path = |p: &std::path::Path| p.to_string_lossy().into_owned();

    let seen = look(
        &EvidenceRequest {
            investigation_id: "1".into(),
            processes: vec![
                ProcessTarget {
                    pid,
                    image_path: image.clone(),
                },
                // The same pid with another image: the process the investigation saw is gone.
                ProcessTarget {
                    pid,
                    image_path: "/tmp/implant".into(),
                },
            ],
            files: vec![
                FileProbe {
                    path: path(&present),
                    sha1: None,
                },
                FileProbe {
                    path: path(&absent),
                    sha1: None,
                },
            ],
        },
        &scanner(),
    );
    assert_eq!(
        seen.processes.iter().map(|p| p.running).collect::<Vec<_>>(),
        [true, false]
    );
    assert!(seen.files[0].exists && !seen.files[1].exists);
    let sha1sum = std::process::Command::new("sha1sum")
        .arg(&present)
        .output()
        .unwrap();
    let expected = String::from_utf8(sha1sum.stdout).unwrap();
    assert_eq!(
        seen.files[0].sha1.as_deref(),
        expected.split_whitespace().next()
    );
    assert_eq!(seen.files[1].sha1, None);

    // A kill naming another image leaves the process alone.
    let note = kill(pid, Some("/tmp/implant")).unwrap();
    assert!(note.contains("left alone"), "{note}");
    assert!(
        sleeper.try_wait().unwrap().is_none(),
        "the sleeper was killed"
    );
    // Naming its image kills it; killing it again finds nothing to kill.
    assert_eq!(
        kill(pid, Some(&image)).unwrap(),
        format!("process {pid} killed")
    );
    assert!(gone(&mut sleeper));
    let again = kill(pid, Some(&image)).unwrap();
    assert!(again.contains("not running"), "{again}");
}

#[test]
fn authorized_keys_lose_only_the_attackers_key_and_get_it_back_on_restore() {
    let home = tempfile::tempdir().unwrap();
    let ssh = home.path().join(".ssh");
    std::fs::create_dir(&ssh).unwrap();
    let keys = ssh.join("authorized_keys");
    let owner =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOwnerOwnerOwnerOwnerOwnerOwnerOwner ann@laptop\n";
    let attacker =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEvilEvilEvilEvilEvilEvilEvilEvilEvil evil@c2\n";
    std::fs::write(&keys, format!("{owner}{attacker}")).unwrap();
    std::fs::set_permissions(&keys, std::fs::Permissions::from_mode(0o600)).unwrap();
    let state = tempfile::tempdir().unwrap();
    let store = PersistenceStore::new(state.path());
    let target = PersistenceTarget {
        path: keys.to_string_lossy().into_owned(),
        entries: vec!["AAAAC3NzaC1lZDI1NTE5AAAAIEvilEvilEvilEvilEvilEvilEvilEvilEvil".into()],
    };

    let note = store.remove(&target).unwrap();
    assert!(note.starts_with("1 line removed"), "{note}");
    assert_eq!(std::fs::read_to_string(&keys).unwrap(), owner);
    let mode = std::fs::metadata(&keys).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "sshd refuses a keys file with a wider mode");
    // Removing again finds nothing; the record of the first removal stays.
    assert!(store.remove(&target).unwrap().contains("nothing to remove"));

    store.restore(&target).unwrap();
    assert_eq!(
        std::fs::read_to_string(&keys).unwrap(),
        format!("{owner}{attacker}")
    );
    // Nothing is kept any more: a second restore says so.
    assert!(store.restore(&target).is_err());

    // The whole file is never taken for a shared one.
    let whole = PersistenceTarget {
        path: target.path.clone(),
        entries: vec![],
    };
    assert!(store.remove(&whole).is_err());
    assert!(keys.exists());
}

#[test]
fn a_unit_of_its_own_goes_whole_and_comes_back() {
    let home = tempfile::tempdir().unwrap();
    let units = home.path().join(".config/systemd/user");
    std::fs::create_dir_all(&units).unwrap();
    let unit = units.join("implant-update.service");
    let text = "[Service]\nExecStart=/tmp/.cache/implant --beacon\n";
    std::fs::write(&unit, text).unwrap();
    std::fs::set_permissions(&unit, std::fs::Permissions::from_mode(0o644)).unwrap();
    let state = tempfile::tempdir().unwrap();
    let store = PersistenceStore::new(state.path());
    let target = PersistenceTarget {
        path: unit.to_string_lossy().into_owned(),
        entries: vec![],
    };

    store.remove(&target).unwrap();
    assert!(!unit.exists());
    // A file taken out of a place that is not a persistence location is refused.
    let elsewhere = PersistenceTarget {
        path: home.path().join("notes.txt").to_string_lossy().into_owned(),
        entries: vec![],
    };
    assert!(store.remove(&elsewhere).is_err());

    store.restore(&target).unwrap();
    assert_eq!(std::fs::read_to_string(&unit).unwrap(), text);
    let mode = std::fs::metadata(&unit).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o644);
}
