//! The process sensor against the real kernel: the eBPF program and the proc connector see
//! the exec of a process the test starts, and the sensor's row, from each source, describes it
//! and its parent exactly. Needs root (loading eBPF and the connector need it), as the agent
//! does, and a kernel with BTF (the eBPF source is required to load here).

use rampart_agent::batcher::TableRow;
use rampart_agent::process::connector::{Connector, ProcEvent};
use rampart_agent::process::hashes::HashCache;
use rampart_agent::process::rows::RowContext;
use rampart_agent::process::{ProcessSensor, SensorConfig, Source};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

#[test]
fn connector_reports_exec_and_exit_of_a_spawned_process() {
    let mut c = Connector::open().expect("the proc connector (run the tests as root)");
    let marker = uuid::Uuid::new_v4().to_string();
    let mut child = Command::new("/bin/sh")
        .args(["-c", &format!("exit 7 # {marker}")])
        .spawn()
        .unwrap();
    let pid = child.id();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(7));

    let (mut forked, mut exec, mut exit) = (false, false, None);
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline && exit.is_none() {
        match c.recv().unwrap() {
            Some(ProcEvent::Fork {
                child_tgid,
                parent_tgid,
                ..
            }) if child_tgid == pid => {
                assert_eq!(parent_tgid, std::process::id());
                forked = true;
            }
            Some(ProcEvent::Exec { tgid, .. }) if tgid == pid => exec = true,
            Some(ProcEvent::Exit {
                pid: p,
                tgid,
                exit_code,
                ..
            }) if tgid == pid && p == pid => exit = Some(exit_code),
            _ => {}
        }
    }
    assert!(forked, "no fork event for {pid}");
    assert!(exec, "no exec event for {pid}");
    // The kernel reports the wait status: the exit code in the second byte.
    assert_eq!(exit.map(|code| code >> 8), Some(7), "exit event for {pid}");
}

#[test]
fn a_starts_only_subscription_is_not_woken_for_exits_where_the_kernel_filters() {
    use rampart_agent::process::connector::{filters_events, release_at_least};
    assert_eq!(release_at_least("6.18.44-fc-v1272", (6, 6)), Some(true));
    assert_eq!(release_at_least("6.6.0", (6, 6)), Some(true));
    assert_eq!(
        release_at_least("5.14.0-427.el9.x86_64", (6, 6)),
        Some(false)
    );
    assert_eq!(release_at_least("6.1.0-26-amd64\n", (6, 6)), Some(false));
    assert_eq!(release_at_least("linux", (6, 6)), None);

    let mut all = Connector::open().unwrap();
    let mut starts = Connector::open_starts().unwrap();
    let mut child = Command::new("/bin/true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    // What each subscription got about the child, until the full one has seen its exit.
    let about = |e: &ProcEvent| match *e {
        ProcEvent::Fork { child_tgid, .. } => (child_tgid == pid).then_some("fork"),
        ProcEvent::Exec { tgid, .. } => (tgid == pid).then_some("exec"),
        ProcEvent::Exit { tgid, .. } => (tgid == pid).then_some("exit"),
    };
    let mut seen_all = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !seen_all.contains(&"exit") && Instant::now() < deadline {
        if let Some(e) = all.recv().unwrap() {
            seen_all.extend(about(&e));
        }
    }
    assert_eq!(seen_all, ["fork", "exec", "exit"]);
    // The full subscription has seen the exit, so whatever the other got of the child is
    // queued by now: read it all (bounded, as other processes keep starting meanwhile).
    let mut seen_starts = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline {
        match starts.recv().unwrap() {
            Some(e) => seen_starts.extend(about(&e)),
            None => break,
        }
    }
    if filters_events() {
        assert_eq!(seen_starts, ["fork", "exec"]);
    } else {
        assert_eq!(seen_starts, ["fork", "exec", "exit"]);
    }
}

/// A private copy of `sleep` under a unique name, so its path and hash are the test's own.
fn unique_binary(dir: &Path) -> PathBuf {
    let path = dir.join(format!("rampart-it-{}", uuid::Uuid::new_v4().simple()));
    std::fs::copy("/bin/sleep", &path).unwrap();
    path
}

/// Spawns, retrying while another test's fork still holds the fresh copy open for writing.
fn spawn(path: &Path, args: &[&str]) -> std::process::Child {
    for _ in 0..50 {
        match Command::new(path).args(args).spawn() {
            Ok(c) => return c,
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) => {
                std::thread::sleep(Duration::from_millis(20))
            }
            Err(e) => panic!("spawning {}: {e}", path.display()),
        }
    }
    panic!("{} stayed busy", path.display());
}

async fn row_for(
    rx: &mut mpsc::Receiver<TableRow>,
    pid: u32,
) -> serde_json::Map<String, serde_json::Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let (table, row) = tokio::time::timeout_at(deadline, rx.recv())
            .await
            .unwrap_or_else(|_| panic!("no row for pid {pid}"))
            .expect("sensor stopped");
        assert_eq!(table, "DeviceProcessEvents");
        if row.get("ProcessId").and_then(|v| v.as_u64()) == Some(u64::from(pid)) {
            return row;
        }
    }
}

fn sha256_of(path: &Path) -> String {
    rampart_agent::hex::encode(&Sha256::digest(std::fs::read(path).unwrap()))
}

async fn sensor_reports(first_source: Source) {
    let tmp = tempfile::tempdir().unwrap();
    let binary = unique_binary(tmp.path());
    let (tx, mut rx) = mpsc::channel(10_000);
    let config = SensorConfig {
        rows: RowContext {
            device_id: Some("e".repeat(40)),
            device_name: "it-host".into(),
            account_domain: "it-host".into(),
        },
        first_source,
        poll_interval: Duration::from_millis(200),
        ..SensorConfig::default()
    };
    // The debug test binary (the parent) is over the default 100 MB cap; raise it to check
    // the parent's hashes too.
    let cache = Arc::new(HashCache::new(1 << 30, 1024));
    let sensor = ProcessSensor::start(config, cache, tx).unwrap();
    assert_eq!(sensor.source(), first_source);
    if first_source == Source::ProcPolling {
        // Let the first listing (the baseline) happen before the process starts.
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // A unique, valid second duration makes the command line the test's own.
    let nonce = format!("0.000{}", rand::random::<u32>() % 1_000_000 + 1);
    let mut child = spawn(&binary, &["1.5", &nonce]);
    let pid = child.id();
    let row = row_for(&mut rx, pid).await;
    let _ = child.wait();

    let path = binary.to_str().unwrap();
    assert_eq!(row["ActionType"], "ProcessCreated");
    assert_eq!(row["DeviceId"], "e".repeat(40));
    assert_eq!(row["FolderPath"], path);
    assert_eq!(
        row["FileName"],
        binary.file_name().unwrap().to_str().unwrap()
    );
    assert_eq!(row["ProcessCommandLine"], format!("{path} 1.5 {nonce}"));
    assert_eq!(row["SHA256"], sha256_of(&binary));
    assert_eq!(row["SHA1"].as_str().unwrap().len(), 40);
    assert_eq!(row["MD5"].as_str().unwrap().len(), 32);
    assert_eq!(row["AccountName"], "root");
    assert!(row["ProcessCreationTime"].is_string());

    // The initiating process is this test binary.
    let me = std::fs::read_link("/proc/self/exe").unwrap();
    assert_eq!(row["InitiatingProcessId"], std::process::id());
    assert_eq!(row["InitiatingProcessFolderPath"], me.to_str().unwrap());
    assert_eq!(
        row["InitiatingProcessFileName"],
        me.file_name().unwrap().to_str().unwrap()
    );
    assert_eq!(row["InitiatingProcessSHA256"], sha256_of(&me));
    assert_eq!(row["InitiatingProcessAccountName"], "root");
    let my_cmdline = std::fs::read("/proc/self/cmdline").unwrap();
    let first_arg =
        String::from_utf8_lossy(my_cmdline.split(|&b| b == 0).next().unwrap()).into_owned();
    assert!(
        row["InitiatingProcessCommandLine"]
            .as_str()
            .unwrap()
            .starts_with(&first_arg)
    );
    let my_parent = rampart_agent::process::procfs::read_stat(std::process::id())
        .unwrap()
        .ppid;
    assert_eq!(row["InitiatingProcessParentId"], my_parent);
    assert!(row["InitiatingProcessParentFileName"].is_string());
    sensor.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sensor_reports_a_spawned_process_through_ebpf() {
    sensor_reports(Source::Ebpf).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sensor_reports_a_spawned_process_through_the_connector() {
    sensor_reports(Source::ProcConnector).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sensor_reports_a_spawned_process_by_polling_proc() {
    sensor_reports(Source::ProcPolling).await;
}

/// A sensor on the eBPF source, the default, as the agent starts it.
fn ebpf_sensor() -> (ProcessSensor, mpsc::Receiver<TableRow>) {
    let (tx, rx) = mpsc::channel(10_000);
    let cache = Arc::new(HashCache::new(1 << 30, 1024));
    let sensor = ProcessSensor::start(SensorConfig::default(), cache, tx).unwrap();
    assert_eq!(
        sensor.source(),
        Source::Ebpf,
        "the eBPF source loads on this kernel"
    );
    (sensor, rx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ebpf_reports_a_process_gone_long_before_the_buffer_is_read_whole() {
    let (sensor, mut rx) = ebpf_sensor();
    let tmp = tempfile::tempdir().unwrap();
    let binary = unique_binary(tmp.path());
    // A symlink to it: the row names the file that ran, not the link.
    let link = tmp.path().join("link-to-sleep");
    std::os::unix::fs::symlink(&binary, &link).unwrap();
    let nonce = format!("0.00{}", rand::random::<u32>() % 1_000 + 1);
    let mut child = spawn(&link, &[&nonce, "two words"]);
    let pid = child.id();
    child.wait().unwrap();
    let row = row_for(&mut rx, pid).await;
    let path = binary.to_str().unwrap();
    assert_eq!(row["FolderPath"], path);
    assert_eq!(
        row["ProcessCommandLine"],
        format!("{} {nonce} \"two words\"", link.to_str().unwrap())
    );
    assert_eq!(row["SHA256"], sha256_of(&binary));
    assert_eq!(row["AccountName"], "root");
    assert_eq!(row["InitiatingProcessId"], std::process::id());
    assert!(
        row.get("AdditionalFields").is_none_or(|v| v.is_null()),
        "{row:?}"
    );
    sensor.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ebpf_reports_a_script_as_its_interpreter_and_long_arguments_whole_while_it_runs() {
    let (sensor, mut rx) = ebpf_sensor();
    let tmp = tempfile::tempdir().unwrap();
    let script = tmp.path().join("rampart-it.sh");
    std::fs::write(&script, "#!/bin/sh\nsleep 1\n").unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    // Past what the kernel side copies (4 KiB): read whole from /proc while the script runs.
    let long = "x".repeat(10_000);
    let mut child = spawn(&script, &[&long]);
    let pid = child.id();
    let row = row_for(&mut rx, pid).await;
    let _ = child.wait();
    let sh = std::fs::canonicalize("/bin/sh").unwrap();
    assert_eq!(row["FolderPath"], sh.to_str().unwrap());
    assert_eq!(
        row["ProcessCommandLine"],
        format!("/bin/sh {} {long}", script.to_str().unwrap())
    );
    assert_eq!(row["SHA256"], sha256_of(&sh));

    sensor.stop();
}

/// An exec record as the kernel side writes it, of `/bin/true` run by `pid` with `args`.
fn true_record(
    pid: u32,
    args: &[u8],
    args_size: usize,
) -> rampart_agent::process::ebpf::ExecRecord {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata("/bin/true").unwrap();
    let (major, minor) = (libc::major(meta.dev()), libc::minor(meta.dev()));
    rampart_agent::process::ebpf::ExecRecord {
        pid,
        ppid: std::process::id(),
        euid: 0,
        dev: (major << 20) | minor,
        ino: meta.ino(),
        exec_boottime: 1,
        start_boottime: 1,
        parent_start_boottime: 1,
        comm: "true".into(),
        path: b"/bin/true".to_vec(),
        args: args.to_vec(),
        args_size,
    }
}

#[test]
fn an_exec_record_is_read_whole_from_proc_only_while_its_process_runs_that_image() {
    use rampart_agent::process::exec_snapshot::{Images, snapshot};
    let true_path = std::fs::canonicalize("/bin/true").unwrap();
    let mut args = b"/bin/true\0".to_vec();
    args.resize(4096, b'x');
    let mut images = Images::default();

    // Gone (reaped): the first 4 KiB the kernel side copied; the image found by its name.
    let mut child = Command::new("/bin/true").spawn().unwrap();
    let gone = child.id();
    child.wait().unwrap();
    let s = snapshot(&true_record(gone, &args, 10_000), &mut images);
    assert_eq!(s.exe.as_deref(), true_path.to_str());
    assert!(
        s.exe_file.is_some(),
        "the file by its name is the inode that ran"
    );
    let line = s.cmdline.unwrap();
    assert!(line.starts_with("/bin/true xxx"), "{line}");
    assert_eq!(line.len(), 4096, "the arguments' first 4 KiB");

    // A live process that runs another image now (this test binary): its /proc is not read.
    let s = snapshot(&true_record(std::process::id(), &args, 10_000), &mut images);
    assert_eq!(s.cmdline.unwrap().len(), 4096);
    assert_eq!(s.exe.as_deref(), true_path.to_str());

    // A record whose file is not the inode that ran: no file to hash.
    let mut other = true_record(gone, &args[..20], 20);
    other.ino += 1;
    let s = snapshot(&other, &mut images);
    assert!(s.exe_file.is_none());
    assert_eq!(s.cmdline.as_deref(), Some("/bin/true xxxxxxxxxx"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_that_exits_at_once_still_gets_a_row() {
    let (tx, mut rx) = mpsc::channel(10_000);
    let sensor =
        ProcessSensor::start(SensorConfig::default(), Arc::new(HashCache::default()), tx).unwrap();
    // dash runs `true` itself and exits: the process may be gone before /proc is read.
    let mut child = Command::new("/bin/sh")
        .args(["-c", "true"])
        .spawn()
        .unwrap();
    let pid = child.id();
    child.wait().unwrap();
    let row = row_for(&mut rx, pid).await;
    assert_eq!(row["ActionType"], "ProcessCreated");
    assert_eq!(row["InitiatingProcessId"], std::process::id());
    sensor.stop();
}

#[test]
fn the_watchers_recent_snapshots_are_reused_only_while_they_stand() {
    use rampart_agent::process::recent::{FRESH_FOR, Recent};
    let mut recent = Recent::default();
    let me = std::process::id();
    let first = recent.snapshot(me);
    assert!(first.exe.is_some());
    assert!(Arc::ptr_eq(&first, &recent.snapshot(me)), "read once");
    let g = recent.grandparent(me);
    assert_eq!(g.file_name, first.file_name(), "from the snapshot");
    // An exec or exit makes the watcher forget; age alone does too.
    recent.forget(me);
    let second = recent.snapshot(me);
    assert!(!Arc::ptr_eq(&first, &second), "read again after forget");
    std::thread::sleep(FRESH_FOR + std::time::Duration::from_millis(50));
    assert!(
        !Arc::ptr_eq(&second, &recent.snapshot(me)),
        "read again when old"
    );
    // A process already gone is not remembered as gone.
    let mut child = std::process::Command::new("/bin/true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    let gone = recent.snapshot(pid);
    assert!(gone.exe.is_none());
    assert!(!Arc::ptr_eq(&gone, &recent.snapshot(pid)));
}
