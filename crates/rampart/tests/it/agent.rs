//! The Linux agent against the real server: enrollment over TLS pinned to the server's
//! self-signed certificate, the process and network sensors on the real kernel, telemetry
//! batches through `/agent/v1/telemetry`, and the rows found again by KQL; machine actions
//! carried out for real (isolation, in a network namespace). The agent is the real binary, in a
//! process of its own.

use crate::harness::{Server, backends};
use rampart_agent::credentials::Credentials;
use rampart_agent::status::AgentStatus;
use serde_json::{Value, json};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

async fn post(s: &Server, token: &str, path: &str, body: Value) -> (u16, Value) {
    s.post(path, token, body).await
}

/// Rows of `query`, polled until `done` holds them (at most 60 s: the machine may be busy with other tests).
async fn hunt(s: &Server, token: &str, query: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (st, v) = post(
            s,
            token,
            "/api/advancedhunting/run",
            json!({ "Query": query }),
        )
        .await;
        assert_eq!(st, 200, "{v}");
        let rows = v["Results"].as_array().cloned().unwrap_or_default();
        if done(&rows) || Instant::now() > deadline {
            return rows;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn sha256_hex(path: &Path) -> String {
    use sha2::Digest;
    let bytes = std::fs::read(path).unwrap();
    sha2::Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[tokio::test]
async fn enrolled_agent_reports_processes_files_and_connections_that_hunting_finds() {
    // The proc connector needs CAP_NET_ADMIN; the agent falls back to polling /proc without
    // it, which sees the same process (it lives half a second).
    let dir = tempfile::tempdir().unwrap();
    for b in backends(dir.path()) {
        let s = Server::start_with(&b, &["--no-rate-limits", "--tls-self-signed"]);
        let fingerprint = s
            .stdout()
            .iter()
            .find_map(|l| l.split("fingerprint: ").nth(1).map(str::to_owned))
            .expect("the server prints its certificate's fingerprint");
        let admin = s.token_with("SecurityConfiguration.ReadWrite.All").await;
        let (st, token) = post(
            &s,
            &admin,
            "/api/enrollmentTokens",
            json!({"name": "e2e", "maxUses": 1}),
        )
        .await;
        assert_eq!(st, 201, "{}: {token}", b.name);
        let secret = token["token"].as_str().unwrap().to_owned();

        // A wrong pin fails before the token is sent: the token stays unused.
        let state = dir.path().join(format!("agent-{}", b.name));
        let state_arg = state.to_str().unwrap();
        let mut wrong = fingerprint.replace(':', "");
        let flipped = if wrong.starts_with('0') { "1" } else { "0" };
        wrong.replace_range(0..1, flipped);
        let enroll = |pin: &str, force: bool| {
            let mut c = agent_command(state_arg);
            c.args(["enroll", "--server", &s.url, "--server-fingerprint", pin])
                .env("RAMPART_ENROLLMENT_TOKEN", &secret);
            if force {
                c.arg("--force");
            }
            c.output().unwrap()
        };
        let out = enroll(&wrong, false);
        assert!(
            !out.status.success(),
            "{}: a wrong pin must not enroll",
            b.name
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("pinned"), "{}: {err}", b.name);

        let out = enroll(&fingerprint, false);
        assert!(
            out.status.success(),
            "{}: {}",
            b.name,
            String::from_utf8_lossy(&out.stderr)
        );
        let creds = Credentials::load(&state).unwrap();
        assert_eq!(creds.tenant_id, s.tenant, "{}", b.name);
        assert_eq!(creds.device_id.len(), 40);
        let mode = std::fs::metadata(Credentials::path(&state))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{}", b.name);
        // The token allowed one enrollment.
        let out = enroll(&fingerprint, true);
        assert!(!out.status.success(), "{}", b.name);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("401"), "{}: {err}", b.name);
        assert_eq!(
            Credentials::load(&state).unwrap(),
            creds,
            "{}: kept",
            b.name
        );

        let mut agent = agent_command(state_arg)
            .arg("run")
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // The DeviceInfo batch sent at start is acknowledged.
        let deadline = Instant::now() + Duration::from_secs(60);
        while AgentStatus::load(&state)
            .last_send
            .is_none_or(|r| r.outcome != "Acknowledged")
        {
            assert!(
                Instant::now() < deadline,
                "{}: nothing acknowledged",
                b.name
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }

        // A process started after the agent, with a command line nothing else has.
        let nonce = format!("{:06}", rand_digits());
        let exe = dir.path().join(format!("rampart-e2e-{}-{nonce}", b.name));
        std::fs::copy("/bin/sleep", &exe).unwrap();
        let mut child = std::process::Command::new(&exe)
            .arg(format!("0.5{nonce}"))
            .spawn()
            .unwrap();
        let pid = child.id();
        child.wait().unwrap();

        let hunter = s.token_with("AdvancedHunting.Read.All").await;
        let marker = exe.file_name().unwrap().to_str().unwrap().to_owned();
        let q = format!(
            "DeviceProcessEvents | where ProcessCommandLine contains '{marker}' and ActionType == 'ProcessCreated' \
             | project DeviceId, DeviceName, FileName, FolderPath, ProcessId, SHA256, InitiatingProcessId, AccountName"
        );
        let rows = hunt(&s, &hunter, &q, |r| !r.is_empty()).await;
        assert_eq!(rows.len(), 1, "{}: {rows:?}", b.name);
        let row = &rows[0];
        assert_eq!(row["DeviceId"], creds.device_id.as_str(), "{}", b.name);
        assert_eq!(row["FileName"], marker.as_str(), "{}", b.name);
        assert_eq!(row["FolderPath"], exe.to_str().unwrap(), "{}", b.name);
        assert_eq!(row["ProcessId"], pid, "{}", b.name);
        assert_eq!(row["SHA256"], sha256_hex(&exe), "{}", b.name);
        assert_eq!(row["InitiatingProcessId"], std::process::id(), "{}", b.name);
        assert_eq!(row["AccountName"], "root", "{}", b.name);

        // The copy that became that program was seen being written: created, by this
        // process, with the hashes of the program (it is executable).
        let q = format!(
            "DeviceFileEvents | where DeviceId == '{}' and FileName == '{marker}' and ActionType == 'FileCreated' \
             | project FolderPath, SHA256, InitiatingProcessId",
            creds.device_id
        );
        let files = hunt(&s, &hunter, &q, |r| !r.is_empty()).await;
        assert_eq!(files.len(), 1, "{}: {files:?}", b.name);
        assert_eq!(files[0]["FolderPath"], exe.to_str().unwrap(), "{}", b.name);
        assert_eq!(files[0]["SHA256"], sha256_hex(&exe), "{}", b.name);
        assert_eq!(
            files[0]["InitiatingProcessId"],
            std::process::id(),
            "{}",
            b.name
        );

        // A connection from this process to the server: both ends are seen by the network
        // sensor, each with its process.
        let server_addr = s.url.trim_start_matches("https://").to_owned();
        let conn = std::net::TcpStream::connect(&server_addr).unwrap();
        let local_port = conn.local_addr().unwrap().port();
        let server_port = server_addr.rsplit(':').next().unwrap();
        let q = format!(
            "DeviceNetworkEvents | where DeviceId == '{}' and Protocol == 'Tcp' \
             and ((ActionType == 'ConnectionSuccess' and LocalPort == {local_port} and RemotePort == {server_port}) \
               or (ActionType == 'InboundConnectionAccepted' and LocalPort == {server_port} and RemotePort == {local_port})) \
             | project ActionType, InitiatingProcessId, InitiatingProcessFileName, RemoteIP, RemoteIPType | sort by ActionType asc",
            creds.device_id
        );
        let net = hunt(&s, &hunter, &q, |r| r.len() >= 2).await;
        drop(conn);
        assert_eq!(net.len(), 2, "{}: {net:?}", b.name);
        assert_eq!(net[0]["ActionType"], "ConnectionSuccess", "{}", b.name);
        assert_eq!(
            net[0]["InitiatingProcessId"],
            std::process::id(),
            "{}",
            b.name
        );
        assert_eq!(net[0]["RemoteIP"], "127.0.0.1", "{}", b.name);
        assert_eq!(net[0]["RemoteIPType"], "Loopback", "{}", b.name);
        assert_eq!(
            net[1]["ActionType"], "InboundConnectionAccepted",
            "{}",
            b.name
        );
        assert_eq!(net[1]["InitiatingProcessFileName"], "rampart", "{}", b.name);

        // UDP: a socket bound to a port is a listener, a connected one a connection, both with
        // this process behind them.
        let udp_server = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let udp_port = udp_server.local_addr().unwrap().port();
        let udp_client = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        udp_client.connect(("127.0.0.1", udp_port)).unwrap();
        let q = format!(
            "DeviceNetworkEvents | where DeviceId == '{}' and Protocol == 'Udp' \
             and ((ActionType == 'ListeningConnectionCreated' and LocalPort == {udp_port}) \
               or (ActionType == 'InboundConnectionAccepted' and RemotePort == {udp_port}) \
               or (ActionType == 'ConnectionSuccess' and RemotePort == {udp_port})) \
             | project ActionType, InitiatingProcessId | sort by ActionType asc",
            creds.device_id
        );
        let udp = hunt(&s, &hunter, &q, |r| r.len() >= 2).await;
        drop((udp_client, udp_server));
        let kinds: Vec<_> = udp.iter().map(|r| r["ActionType"].clone()).collect();
        assert_eq!(
            kinds,
            [
                json!("ConnectionSuccess"),
                json!("ListeningConnectionCreated")
            ],
            "{}: {udp:?}",
            b.name
        );
        assert!(
            udp.iter()
                .all(|r| r["InitiatingProcessId"] == std::process::id()),
            "{}: {udp:?}",
            b.name
        );

        let q = format!(
            "DeviceInfo | where DeviceId == '{}' | project OSPlatform, ClientVersion",
            creds.device_id
        );
        let info = hunt(&s, &hunter, &q, |r| !r.is_empty()).await;
        assert_eq!(info[0]["OSPlatform"], "Linux", "{}: {info:?}", b.name);
        assert_eq!(info[0]["ClientVersion"], rampart_agent::VERSION);

        // The installed packages, as this host's package manager lists them: the agent's
        // report holds exactly what the agent's own reader finds (the manager itself among it).
        let db = rampart_agent::software::PackageDatabase::find().expect("dpkg or rpm here");
        let installed = db.installed().unwrap();
        let manager = match db {
            rampart_agent::software::PackageDatabase::Dpkg(_) => "dpkg",
            rampart_agent::software::PackageDatabase::Rpm(_) => "rpm",
        };
        let q = format!(
            "DeviceTvmSoftwareInventory | where DeviceId == '{}' \
             | summarize packages = count(), manager = countif(SoftwareName == '{manager}'), \
                         os = make_set(OSPlatform)",
            creds.device_id
        );
        let report = hunt(&s, &hunter, &q, |r| {
            r.first().is_some_and(|r| r["packages"].as_u64() > Some(0))
        })
        .await;
        assert_eq!(
            report[0]["packages"].as_u64(),
            Some(installed.len() as u64),
            "{}: {report:?}",
            b.name
        );
        assert_eq!(report[0]["manager"], 1, "{}: {report:?}", b.name);
        assert_eq!(report[0]["os"], json!(["Linux"]), "{}: {report:?}", b.name);

        let machines = s.token_with("Machine.Read.All").await;
        let (st, m) = s
            .get(
                &format!("/api/machines/{}", creds.device_id),
                Some(&machines),
            )
            .await;
        assert_eq!(st, 200, "{}: {m}", b.name);
        let (st, software) = s
            .get(
                &format!("/api/machines/{}/software", creds.device_id),
                Some(&s.token_with("Software.Read.All").await),
            )
            .await;
        assert_eq!(st, 200, "{}: {software}", b.name);
        assert!(
            software["value"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["name"] == manager && p["exposedMachines"] == 1),
            "{}: {software}",
            b.name
        );

        let stopped = std::process::Command::new("kill")
            .args(["-TERM", &agent.id().to_string()])
            .status()
            .unwrap();
        assert!(stopped.success());
        let exit = agent.wait().unwrap();
        assert!(exit.success(), "{}: clean exit on SIGTERM: {exit}", b.name);
        let status = AgentStatus::load(&state);
        assert_eq!(
            status.last_send.map(|r| r.outcome),
            Some("Acknowledged".to_owned()),
            "{}",
            b.name
        );
    }
}

/// The `rampart-agent` binary with `--state-dir`: built beside this test binary by `cargo test
/// --workspace` (the agent is a package of its own; `cargo build -p rampart-agent` builds it
/// alone). It runs as its own process, as on an endpoint.
fn agent_command(state_dir: &str) -> std::process::Command {
    let exe = std::env::current_exe().unwrap();
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .map(|dir| dir.join("rampart-agent"))
        .filter(|p| p.exists())
        .expect("the rampart-agent binary is built: run `cargo test --workspace`");
    let mut c = std::process::Command::new(bin);
    // Not the test's stdout: an agent left behind by a failed test must not hold it open.
    c.args(["--state-dir", state_dir])
        .stdout(std::process::Stdio::null());
    c
}

/// Six digits that differ between runs (the clock's nanoseconds and the process id).
fn rand_digits() -> u32 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    (nanos ^ std::process::id().rotate_left(16)) % 1_000_000
}

/// A network namespace joined to this one by a veth pair: the agent's host in the isolation
/// test. `host_ip` is this side's address, `ns_ip` the namespace's; both go when it drops.
struct NetNs {
    name: String,
    host_ip: String,
    ns_ip: String,
    /// A second address on this side, on the same link as `host_ip`.
    other_ip: String,
}

impl NetNs {
    fn new() -> NetNs {
        use std::sync::atomic::{AtomicU32, Ordering};
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = (std::process::id() % 200) * 8 + NEXT.fetch_add(1, Ordering::Relaxed) % 8;
        // A /29 per namespace: .1 this side, .2 the namespace, .3 a second address this side.
        let (third, fourth) = (n / 32, (n % 32) * 8);
        let name = format!("rt-{}-{n}", std::process::id());
        let (host_if, ns_if) = (format!("rvh{n}"), format!("rvn{n}"));
        let host_ip = format!("10.231.{third}.{}", fourth + 1);
        let ns_ip = format!("10.231.{third}.{}", fourth + 2);
        let other_ip = format!("10.231.{third}.{}", fourth + 3);
        let ns = NetNs {
            name: name.clone(),
            host_ip: host_ip.clone(),
            ns_ip: ns_ip.clone(),
            other_ip: other_ip.clone(),
        };
        let _ = ip(&["link", "del", &host_if]);
        for args in [
            vec!["netns", "add", &name],
            vec![
                "link", "add", &host_if, "type", "veth", "peer", "name", &ns_if,
            ],
            vec!["link", "set", &ns_if, "netns", &name],
            vec!["addr", "add", &format!("{host_ip}/29"), "dev", &host_if],
            vec!["addr", "add", &format!("{other_ip}/29"), "dev", &host_if],
            vec!["link", "set", &host_if, "up"],
            vec![
                "-n",
                &name,
                "addr",
                "add",
                &format!("{ns_ip}/29"),
                "dev",
                &ns_if,
            ],
            vec!["-n", &name, "link", "set", &ns_if, "up"],
            vec!["-n", &name, "link", "set", "lo", "up"],
        ] {
            let out = ip(&args);
            assert!(
                out.status.success(),
                "ip {args:?}: {} (the isolation test needs root and iproute2)",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        ns
    }

    /// A command run inside the namespace.
    fn exec(&self, program: &std::ffi::OsStr) -> std::process::Command {
        let mut c = std::process::Command::new("ip");
        c.args(["netns", "exec", &self.name]).arg(program);
        c
    }

    /// The agent binary of `state` run inside the namespace with `args`.
    fn run_agent(&self, state: &str, args: &[&str]) -> std::process::Child {
        let agent = agent_command(state);
        self.exec(agent.get_program())
            .args(agent.get_args())
            .args(args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    }

    /// Whether a TCP connection from the namespace to `addr` opens within 2 s.
    fn connects(&self, addr: &str) -> bool {
        let (host, port) = addr.rsplit_once(':').unwrap();
        self.exec("timeout".as_ref())
            .args([
                "2",
                "bash",
                "-c",
                &format!("exec 3<>/dev/tcp/{host}/{port}"),
            ])
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap()
            .success()
    }

    /// Whether Rampart's isolation table exists in the namespace.
    fn has_isolation_table(&self) -> bool {
        self.has_table("rampart_isolation")
    }

    fn has_table(&self, table: &str) -> bool {
        self.exec("nft".as_ref())
            .args(["list", "table", "inet", table])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .expect("nft (install nftables)")
            .success()
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        // Deleting the namespace deletes its end of the veth pair, and with it the pair.
        let _ = ip(&["netns", "del", &self.name]);
    }
}

fn ip(args: &[&str]) -> std::process::Output {
    std::process::Command::new("ip")
        .args(args)
        .output()
        .unwrap()
}

/// Accepts connections (and drops them) until the test ends: something else on the network
/// that an isolated device must not reach.
fn bystander(ip: &str) -> String {
    let listener = std::net::TcpListener::bind(format!("{ip}:0")).unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            drop(conn);
        }
    });
    addr
}

/// Waits (at most 60 s: the machine may be busy with other tests) until the machine action is finished; returns it.
async fn finished_action(s: &Server, token: &str, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (st, a) = s
            .get(&format!("/api/machineactions/{id}"), Some(token))
            .await;
        assert_eq!(st, 200, "{a}");
        if !matches!(a["status"].as_str(), Some("Pending" | "InProgress")) {
            return a;
        }
        assert!(Instant::now() < deadline, "action still open: {a}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Asks for a machine action on `device` (`POST /api/machines/{device}/{action}`) and waits
/// until it is finished; returns it.
async fn machine_action(s: &Server, token: &str, device: &str, action: &str, body: Value) -> Value {
    let (st, a) = post(s, token, &format!("/api/machines/{device}/{action}"), body).await;
    assert_eq!(st, 201, "{a}");
    finished_action(s, token, a["id"].as_str().unwrap()).await
}

#[tokio::test]
async fn isolation_cuts_the_device_off_except_from_the_server_and_survives_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let b = &backends(dir.path())[0];
    let ns = NetNs::new();
    let s = Server::start_listening(b, &format!("{}:0", ns.host_ip), &["--no-rate-limits"]);
    let server_addr = s.url.trim_start_matches("http://").to_owned();
    let other = bystander(&ns.host_ip);

    let state = dir.path().join("agent-iso");
    let state_arg = state.to_str().unwrap();
    let device = enroll_agent(&s, &state).await;
    let start_agent = || {
        ns.run_agent(
            state_arg,
            &["run", "--force-polling", "--isolation-allow", &ns.host_ip],
        )
    };
    let mut agent = start_agent();
    assert!(ns.connects(&other), "reachable before isolation");

    // The agent reports its adapters (DeviceNetworkInfo): the server finds the device by the
    // address it has in its namespace, as external alerts that name only an IP are correlated.
    let reader = s.token_with("Machine.Read.All").await;
    let now = rampart_core::timefmt::format(time::OffsetDateTime::now_utc());
    let path = format!("/api/machines/findbyip(ip='{}',timestamp={now})", ns.ns_ip);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (st, v) = s.get(&path, Some(&reader)).await;
        assert_eq!(st, 200, "{v}");
        let ids: Vec<&str> = v["value"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|m| m["id"].as_str())
            .collect();
        if ids == [device.as_str()] {
            break;
        }
        assert!(Instant::now() < deadline, "findbyip: {v}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let iso = s.token_with("Machine.Isolate,Machine.Read.All").await;
    let isolate = |kind: &'static str| {
        let body = json!({"Comment": "contain", "IsolationType": kind});
        machine_action(&s, &iso, &device, "isolate", body)
    };

    // Selective: the allow-list (here the bystander's address) stays reachable.
    let a = isolate("Selective").await;
    assert_eq!(a["status"], "Succeeded", "{a}");
    assert!(ns.has_isolation_table());
    assert!(
        ns.connects(&other),
        "selective isolation keeps the allow-list"
    );

    // Full: only the server.
    let a = isolate("Full").await;
    assert_eq!(a["status"], "Succeeded", "{a}");
    assert!(
        !ns.connects(&other),
        "an isolated device reaches nothing but the server"
    );
    assert!(ns.connects(&server_addr), "the server stays reachable");

    // The agent dies and the firewall is emptied (as by a reboot): the agent isolates again
    // as soon as it starts, from the state it recorded.
    agent.kill().unwrap();
    agent.wait().unwrap();
    let flushed = ns
        .exec("nft".as_ref())
        .args(["delete", "table", "inet", "rampart_isolation"])
        .status()
        .unwrap();
    assert!(flushed.success());
    assert!(ns.connects(&other));
    let mut agent = start_agent();
    wait_for("isolation not restored", || ns.has_isolation_table()).await;
    assert!(!ns.connects(&other), "still isolated after the restart");

    // Unisolate, through the server the device can still reach.
    let a = machine_action(&s, &iso, &device, "unisolate", json!({"Comment": "clean"})).await;
    assert_eq!(a["status"], "Succeeded", "{a}");
    assert!(!ns.has_isolation_table());
    assert!(ns.connects(&other), "reachable again");

    stop_agent(&mut agent);
    let status = AgentStatus::load(&state);
    assert!(status.last_success.is_some());
}

/// Enrolls the agent binary of `state` with a new enrollment token; returns its device id.
async fn enroll_agent(s: &Server, state: &Path) -> String {
    let admin = s.token_with("SecurityConfiguration.ReadWrite.All").await;
    let (st, token) = post(s, &admin, "/api/enrollmentTokens", json!({"name": "e2e"})).await;
    assert_eq!(st, 201, "{token}");
    let out = agent_command(state.to_str().unwrap())
        .args(["enroll", "--server", &s.url])
        .env("RAMPART_ENROLLMENT_TOKEN", token["token"].as_str().unwrap())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Credentials::load(state).unwrap().device_id
}

/// A server (SQLite) and the agent binary enrolled with it, running `run --force-polling` and
/// `args`; the agent is stopped (and must exit cleanly) when this is dropped.
struct EnrolledAgent {
    s: Server,
    state: std::path::PathBuf,
    device: String,
    agent: std::process::Child,
    dir: tempfile::TempDir,
}

impl EnrolledAgent {
    async fn start(args: &[&str]) -> EnrolledAgent {
        let dir = tempfile::tempdir().unwrap();
        let b = &backends(dir.path())[0];
        let s = Server::start_with(b, &["--no-rate-limits"]);
        let state = dir.path().join("agent");
        let device = enroll_agent(&s, &state).await;
        let agent = agent_command(state.to_str().unwrap())
            .args(["run", "--force-polling"])
            .args(args)
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        EnrolledAgent {
            s,
            state,
            device,
            agent,
            dir,
        }
    }
}

impl Drop for EnrolledAgent {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            stop_agent(&mut self.agent);
        } else {
            let _ = self.agent.kill();
            let _ = self.agent.wait();
        }
    }
}

#[tokio::test]
async fn restricted_execution_blocks_programs_the_package_manager_did_not_install() {
    let dir = tempfile::tempdir().unwrap();
    let b = &backends(dir.path())[0];
    let s = Server::start_with(b, &["--no-rate-limits"]);
    let state = dir.path().join("agent-restrict");
    let device = enroll_agent(&s, &state).await;
    // The restriction watches only a tmpfs of this test: nothing else on the machine is
    // touched, whatever happens.
    let mnt = tmpfs(dir.path(), "mnt");
    let evil = mnt.join("dropped-tool");
    std::fs::copy("/bin/true", &evil).unwrap();
    let runs = || {
        std::process::Command::new(&evil)
            .status()
            .is_ok_and(|s| s.success())
    };

    let mut agent = agent_command(state.to_str().unwrap())
        .args([
            "run",
            "--force-polling",
            "--exec-control-mount",
            mnt.to_str().unwrap(),
        ])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let token = s
        .token_with("Machine.RestrictExecution,Machine.Read.All,AdvancedHunting.Read.All")
        .await;
    let act = |action: &'static str| {
        machine_action(&s, &token, &device, action, json!({"Comment": "contain"}))
    };
    assert!(runs(), "runs before the restriction");
    let a = act("restrictCodeExecution").await;
    assert_eq!(a["status"], "Succeeded", "{a}");
    let err = std::process::Command::new(&evil).status().unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::PermissionDenied, "{err}");
    assert!(
        std::process::Command::new("/bin/true")
            .status()
            .unwrap()
            .success(),
        "package-manager programs still run"
    );

    let q = format!(
        "DeviceEvents | where DeviceId == '{device}' and ActionType == 'AppControlExecutableBlocked' \
         | project FolderPath, SHA256, InitiatingProcessId"
    );
    let rows = hunt(&s, &token, &q, |r| !r.is_empty()).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["FolderPath"], evil.to_str().unwrap());
    assert_eq!(rows[0]["SHA256"], sha256_hex(&evil));

    let a = act("unrestrictCodeExecution").await;
    assert_eq!(a["status"], "Succeeded", "{a}");
    assert!(runs(), "runs again once unrestricted");

    stop_agent(&mut agent);
}

/// SIGTERM, and a clean exit.
fn stop_agent(agent: &mut std::process::Child) {
    let stopped = std::process::Command::new("kill")
        .args(["-TERM", &agent.id().to_string()])
        .status()
        .unwrap();
    assert!(stopped.success());
    let exit = agent.wait().unwrap();
    assert!(exit.success(), "clean exit on SIGTERM: {exit}");
}

/// A tmpfs mounted on a new directory of the test's (the only filesystem whose executions the
/// agent under test controls), unmounted when dropped — also when the test fails.
struct Tmpfs(std::path::PathBuf);

impl std::ops::Deref for Tmpfs {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

/// Mounts a tmpfs on a new directory `name` of `dir`.
fn tmpfs(dir: &Path, name: &str) -> Tmpfs {
    let mnt = dir.join(name);
    std::fs::create_dir(&mnt).unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=16m", "tmpfs"])
        .arg(&mnt)
        .status()
        .unwrap();
    assert!(mounted.success(), "mounting a tmpfs (the test needs root)");
    Tmpfs(mnt)
}

#[tokio::test]
async fn a_blocked_hash_cannot_run_on_the_device_until_it_is_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let b = &backends(dir.path())[0];
    let s = Server::start_with(b, &["--no-rate-limits"]);
    let state = dir.path().join("agent-ioc");
    let device = enroll_agent(&s, &state).await;
    let mnt = tmpfs(dir.path(), "mnt");
    // A program of its own hash (trailing bytes do not stop an ELF from running), and a plain
    // copy of /bin/true beside it.
    let evil = mnt.join("implant");
    let mut bytes = std::fs::read("/bin/true").unwrap();
    bytes.extend_from_slice(format!("rampart-e2e-{}", rand_digits()).as_bytes());
    std::fs::write(&evil, &bytes).unwrap();
    std::fs::set_permissions(&evil, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let good = mnt.join("tool");
    std::fs::copy("/bin/true", &good).unwrap();
    let runs = |p: &Path| {
        std::process::Command::new(p)
            .status()
            .is_ok_and(|s| s.success())
    };
    assert!(runs(&evil) && runs(&good));

    let mut agent = agent_command(state.to_str().unwrap())
        .args(["run", "--force-polling", "--indicator-sync-seconds", "1"])
        .args(["--exec-control-mount", mnt.to_str().unwrap()])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let ti = s
        .token_with("Ti.ReadWrite.All,AdvancedHunting.Read.All")
        .await;
    let indicator = |action: &'static str| {
        let (s, ti, value) = (&s, &ti, sha256_hex(&evil));
        async move {
            let (st, v) = post(
                s,
                ti,
                "/api/indicators",
                json!({ "indicatorValue": value, "indicatorType": "FileSha256", "action": action,
                        "title": "implant", "description": "e2e" }),
            )
            .await;
            assert_eq!(st, 200, "{v}");
            v["id"].as_str().unwrap().to_owned()
        }
    };
    let id = indicator("Block").await;
    wait_for("the blocked hash still runs", || !runs(&evil)).await;
    let err = std::process::Command::new(&evil).status().unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::PermissionDenied, "{err}");
    assert!(runs(&good), "only the blocked hash is refused");

    let q = format!(
        "DeviceEvents | where DeviceId == '{device}' and ActionType == 'AppControlExecutableBlocked' \
         | extend F = parse_json(AdditionalFields) | project FolderPath, SHA256, Reason = tostring(F.Reason), IndicatorId = tostring(F.IndicatorId)"
    );
    let rows = hunt(&s, &ti, &q, |r| !r.is_empty()).await;
    assert!(!rows.is_empty());
    assert_eq!(rows[0]["FolderPath"], evil.to_str().unwrap());
    assert_eq!(rows[0]["Reason"], "Indicator");
    assert_eq!(rows[0]["IndicatorId"], id.as_str());

    // The same indicator turned to Allowed (updated in place): it runs again.
    assert_eq!(indicator("Allowed").await, id);
    wait_for("the allowed hash does not run", || runs(&evil)).await;
    stop_agent(&mut agent);
}

#[tokio::test]
async fn blocked_addresses_are_dropped_on_the_device_but_never_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let b = &backends(dir.path())[0];
    let ns = NetNs::new();
    let s = Server::start_listening(b, &format!("{}:0", ns.host_ip), &["--no-rate-limits"]);
    let server_addr = s.url.trim_start_matches("http://").to_owned();
    let other = bystander(&ns.other_ip);
    let state = dir.path().join("agent-block");
    enroll_agent(&s, &state).await;
    let mut agent = ns.run_agent(
        state.to_str().unwrap(),
        &["run", "--force-polling", "--indicator-sync-seconds", "1"],
    );
    assert!(ns.connects(&other), "reachable before any indicator");

    let ti = s
        .token_with("Ti.ReadWrite.All,AdvancedHunting.Read.All")
        .await;
    let indicator = |value: String, action: &'static str| {
        let (s, ti) = (&s, &ti);
        async move {
            let (st, v) = post(
                s,
                ti,
                "/api/indicators",
                json!({ "indicatorValue": value, "indicatorType": "IpAddress", "action": action,
                        "title": "c2", "description": "e2e", "allowInternal": true }),
            )
            .await;
            assert_eq!(st, 200, "{v}");
            v["id"].as_str().unwrap().to_owned()
        }
    };
    // The address, and a network that holds the server's too: the server stays reachable.
    let id = indicator(ns.other_ip.clone(), "Block").await;
    indicator("10.231.0.0/16".into(), "Block").await;
    wait_for("the blocked address is still reachable", || {
        !ns.connects(&other)
    })
    .await;
    assert!(ns.has_table("rampart_block"));
    assert!(ns.connects(&server_addr), "the server is never blocked");
    // The dropped attempts are reported, with the indicator that blocked them.
    let (_, port) = other.rsplit_once(':').unwrap();
    let q = format!(
        "DeviceEvents | where ActionType == 'FirewallOutboundConnectionBlocked' \
         and RemoteIP == '{}' and RemotePort == {port} \
         | extend F = parse_json(AdditionalFields) \
         | project LocalIP, Indicator = tostring(F.IndicatorId), Protocol = tostring(F.Protocol)",
        ns.other_ip
    );
    let rows = hunt(&s, &ti, &q, |r| !r.is_empty()).await;
    assert!(!rows.is_empty(), "no block event");
    assert_eq!(rows[0]["LocalIP"], ns.ns_ip.as_str());
    assert_eq!(rows[0]["Indicator"], id.as_str());
    assert_eq!(rows[0]["Protocol"], "Tcp");

    // Allowed wins over the network's block.
    indicator(ns.other_ip.clone(), "Allowed").await;
    wait_for("the allowed address is not reachable", || {
        ns.connects(&other)
    })
    .await;
    stop_agent(&mut agent);
}

/// Waits (at most 20 s, looking every 100 ms) until `done` holds; fails naming `what` is not.
async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(Instant::now() < deadline, "after 60 s: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn an_antivirus_scan_finds_a_blocked_file_that_quarantine_stops_and_restore_brings_back() {
    let dir = tempfile::tempdir().unwrap();
    let b = &backends(dir.path())[0];
    let s = Server::start_with(b, &["--no-rate-limits"]);
    let state = dir.path().join("agent-av");
    let device = enroll_agent(&s, &state).await;
    // The Quick scan reads this directory (and the running images); the exec guard that a
    // blocked hash starts watches only an empty tmpfs of the test.
    let drop_dir = dir.path().join("drop");
    std::fs::create_dir(&drop_dir).unwrap();
    let mnt = tmpfs(dir.path(), "mnt");
    let implant = drop_dir.join("implant");
    let mut bytes = std::fs::read("/bin/sleep").unwrap();
    bytes.extend_from_slice(format!("rampart-av-{}", rand_digits()).as_bytes());
    std::fs::write(&implant, &bytes).unwrap();
    std::fs::set_permissions(&implant, std::fs::Permissions::from_mode(0o750)).unwrap();
    let sha1 = rampart_agent::process::hashes::HashCache::default()
        .hash_path(&implant)
        .unwrap()
        .unwrap()
        .sha1;
    let mut running = std::process::Command::new(&implant)
        .arg("300")
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();

    let mut agent = agent_command(state.to_str().unwrap())
        .args(["run", "--force-polling", "--indicator-sync-seconds", "1"])
        .args(["--exec-control-mount", mnt.to_str().unwrap()])
        .args(["--quick-scan-path", drop_dir.to_str().unwrap()])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let token = s
        .token_with(
            "Ti.ReadWrite.All,Machine.Scan,Machine.StopAndQuarantine,Machine.Read.All,\
             AdvancedHunting.Read.All,Alert.Read.All",
        )
        .await;
    let (st, v) = post(
        &s,
        &token,
        "/api/indicators",
        json!({ "indicatorValue": sha1, "indicatorType": "FileSha1", "action": "Block",
                "title": "implant", "description": "e2e", "generateAlert": true }),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    let saved = state.join("indicators.json");
    wait_for("the agent has not synced the indicator", || {
        std::fs::read_to_string(&saved).is_ok_and(|s| s.contains(&sha1))
    })
    .await;

    let act = |action: &'static str, body: Value| machine_action(&s, &token, &device, action, body);
    let a = act(
        "runAntiVirusScan",
        json!({"Comment": "sweep", "ScanType": "Quick"}),
    )
    .await;
    assert_eq!(a["status"], "Succeeded", "{a}");
    let q = format!(
        "DeviceEvents | where DeviceId == '{device}' and ActionType == 'AntivirusDetection' \
         | extend F = parse_json(AdditionalFields) \
         | project FolderPath, SHA1, ProcessId, Threat = tostring(F.ThreatName), Running = tobool(F.WasExecutingWhileDetected)"
    );
    let rows = hunt(&s, &token, &q, |r| !r.is_empty()).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["FolderPath"], implant.to_str().unwrap());
    assert_eq!(rows[0]["SHA1"], sha1.as_str());
    assert_eq!(rows[0]["ProcessId"], running.id());
    assert_eq!(rows[0]["Threat"], "implant");
    assert_eq!(rows[0]["Running"], true);
    let done = hunt(
        &s,
        &token,
        &format!(
            "DeviceEvents | where DeviceId == '{device}' and ActionType == 'AntivirusScanCompleted'"
        ),
        |r| !r.is_empty(),
    )
    .await;
    assert_eq!(done.len(), 1);
    // The finding is alerted on by the indicator it matched.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (st, alerts) = s
            .get(
                &format!("/api/alerts?$filter=machineId eq '{device}'&$expand=evidence"),
                Some(&token),
            )
            .await;
        assert_eq!(st, 200, "{alerts}");
        let hit = alerts["value"].as_array().unwrap().iter().any(|a| {
            a["detectionSource"] == "CustomTI"
                && a["evidence"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|e| e["sha1"] == sha1.as_str())
        });
        if hit {
            break;
        }
        assert!(Instant::now() < deadline, "no indicator alert: {alerts}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let a = act(
        "StopAndQuarantineFile",
        json!({"Comment": "contain", "Sha1": sha1}),
    )
    .await;
    assert_eq!(a["status"], "Succeeded", "{a}");
    let exit = running.wait().unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        exit.signal(),
        Some(9),
        "the running implant was killed: {exit}"
    );
    assert!(!implant.exists(), "the file left its place");

    let a = act(
        "restoreQuarantinedFile",
        json!({"Comment": "false positive", "Sha1": sha1}),
    )
    .await;
    assert_eq!(a["status"], "Succeeded", "{a}");
    assert_eq!(a["type"], "RestoreQuarantinedFile");
    assert_eq!(std::fs::read(&implant).unwrap(), bytes);
    let mode = std::fs::metadata(&implant).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode, 0o750);

    // A YARA rule set reaches the agent with its next sync; the next scan finds a file by
    // its content, and the server raises an antivirus alert for it.
    let (st, v) = post(
        &s,
        &token,
        "/api/yararules",
        json!({"name": "e2e markers",
               "source": "rule Rampart_E2E_Marker { strings: $m = \"RAMPART-E2E-MARKER\" condition: $m }"}),
    )
    .await;
    assert_eq!(st, 201, "{v}");
    let note = drop_dir.join("notes.txt");
    std::fs::write(&note, "harmless text then RAMPART-E2E-MARKER").unwrap();
    wait_for("the agent has not synced the YARA rules", || {
        std::fs::read_to_string(&saved).is_ok_and(|s| s.contains("Rampart_E2E_Marker"))
    })
    .await;
    let a = act(
        "runAntiVirusScan",
        json!({"Comment": "sweep again", "ScanType": "Quick"}),
    )
    .await;
    assert_eq!(a["status"], "Succeeded", "{a}");
    let q = format!(
        "DeviceEvents | where DeviceId == '{device}' and ActionType == 'AntivirusDetection' \
         | extend F = parse_json(AdditionalFields) | where tostring(F.DetectionSource) == 'Yara' \
         | project FolderPath, Threat = tostring(F.ThreatName), RuleSet = tostring(F.RuleSet)"
    );
    let rows = hunt(&s, &token, &q, |r| !r.is_empty()).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["FolderPath"], note.to_str().unwrap());
    assert_eq!(rows[0]["Threat"], "Rampart_E2E_Marker");
    assert_eq!(rows[0]["RuleSet"], "e2e markers");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (st, alerts) = s
            .get(
                "/api/alerts?$filter=detectionSource eq 'Antivirus'&$expand=evidence",
                Some(&token),
            )
            .await;
        assert_eq!(st, 200, "{alerts}");
        if let Some(a) = alerts["value"].as_array().unwrap().first() {
            assert_eq!(a["threatName"], "Rampart_E2E_Marker", "{a}");
            assert_eq!(a["machineId"], device.as_str());
            assert_eq!(a["category"], "Malware");
            assert_eq!(a["evidence"][0]["filePath"], note.to_str().unwrap());
            break;
        }
        assert!(Instant::now() < deadline, "no antivirus alert: {alerts}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    stop_agent(&mut agent);
}

#[tokio::test]
async fn offboarding_lifts_every_containment_and_retires_the_credential() {
    let dir = tempfile::tempdir().unwrap();
    let b = &backends(dir.path())[0];
    let s = Server::start_with(b, &["--no-rate-limits"]);
    let state = dir.path().join("agent-offboard");
    let device = enroll_agent(&s, &state).await;
    let creds = Credentials::load(&state).unwrap();
    let mnt = tmpfs(dir.path(), "mnt");
    let tool = mnt.join("tool");
    std::fs::copy("/bin/true", &tool).unwrap();
    let runs = || {
        std::process::Command::new(&tool)
            .status()
            .is_ok_and(|s| s.success())
    };
    let mut agent = agent_command(state.to_str().unwrap())
        .args(["run", "--force-polling"])
        .args(["--exec-control-mount", mnt.to_str().unwrap()])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let token = s
        .token_with("Machine.RestrictExecution,Machine.Offboard,Machine.Read.All")
        .await;
    let act = |action: &'static str| {
        machine_action(&s, &token, &device, action, json!({"Comment": "e2e"}))
    };
    let a = act("restrictCodeExecution").await;
    assert_eq!(a["status"], "Succeeded", "{a}");
    assert!(!runs(), "restricted");

    let a = act("offboard").await;
    assert_eq!(a["status"], "Succeeded", "{a}");
    // The agent stops by itself, cleanly, once the server has the result.
    let deadline = Instant::now() + Duration::from_secs(60);
    let exit = loop {
        if let Some(status) = agent.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the offboarded agent still runs");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(exit.success(), "{exit}");
    assert!(runs(), "the restriction is lifted");
    assert!(!Credentials::path(&state).exists());
    assert!(state.join("credentials.offboarded.json").exists());

    // The server forgot the credential: the old one is refused, and the agent cannot start.
    let refused = s
        .http
        .post(format!("{}/agent/v1/commands/poll", s.url))
        .header("authorization", creds.authorization())
        .json(&json!({"waitSeconds": 0}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status().as_u16(), 401);
    let again = agent_command(state.to_str().unwrap())
        .args(["run", "--force-polling"])
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("not enrolled"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
}

#[tokio::test]
async fn an_investigation_package_is_collected_uploaded_and_served_through_a_signed_link() {
    let host = EnrolledAgent::start(&[]).await;
    let (s, state, device) = (&host.s, &host.state, &host.device);
    let token = s
        .token_with("Machine.CollectForensics,Machine.Read.All")
        .await;
    let a = machine_action(
        s,
        &token,
        device,
        "collectInvestigationPackage",
        json!({"Comment": "forensics"}),
    )
    .await;
    assert_eq!(a["status"], "Succeeded", "{a}");
    let id = a["id"].as_str().unwrap();
    let (st, v) = s
        .get(
            &format!("/api/machineactions/{id}/GetPackageUri"),
            Some(&token),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    let link = v["value"].as_str().unwrap().to_owned();
    assert!(
        link.starts_with(&format!("{}/packages/{id}?token=", s.url)),
        "{link}"
    );

    // The link needs no bearer token; a changed or misdirected one is refused.
    let resp = s.http.get(&link).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(resp.headers()["content-type"], "application/gzip");
    let package = resp.bytes().await.unwrap();
    let mut forged = link.clone();
    forged.pop();
    forged.push(if link.ends_with('A') { 'B' } else { 'A' });
    let other_action = link.replacen(id, "00000000-0000-0000-0000-000000000000", 1);
    for bad in [forged, other_action, format!("{}/packages/{id}", s.url)] {
        let resp = s.http.get(&bad).send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 401, "{bad}");
    }

    let file = host.dir.path().join("package.tar.gz");
    std::fs::write(&file, &package).unwrap();
    let listing = std::process::Command::new("tar")
        .arg("-tzf")
        .arg(&file)
        .output()
        .unwrap();
    assert!(listing.status.success());
    let names = String::from_utf8_lossy(&listing.stdout).into_owned();
    for part in [
        "manifest.json",
        "processes.tsv",
        "connections.tsv",
        "network/adapters.json",
        "network/resolv.conf",
        "users/passwd",
        // (This machine's kernel is built without modules: no /proc/modules to copy.)
        "kernel/version",
        "packages.tsv",
        "persistence/etc/profile",
    ] {
        assert!(
            names.lines().any(|l| l == part),
            "{part} missing from:\n{names}"
        );
    }
    let read = |name: &str| {
        let out = std::process::Command::new("tar")
            .arg("-xzOf")
            .arg(&file)
            .arg(name)
            .output()
            .unwrap();
        assert!(out.status.success(), "{name}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let manifest: Value = serde_json::from_str(&read("manifest.json")).unwrap();
    assert_eq!(manifest["deviceId"], device.as_str());
    assert_eq!(manifest["commandId"], id);
    let processes = read("processes.tsv");
    assert!(
        processes.lines().any(
            |l| l.starts_with(&format!("{}\t", host.agent.id())) && l.contains("rampart-agent")
        ),
        "the agent itself is among the processes"
    );
    assert!(
        read("packages.tsv").lines().count() > 10,
        "installed packages listed"
    );
    // The local copy is gone once the server has it.
    let left: Vec<_> = std::fs::read_dir(state.join("packages")).unwrap().collect();
    assert!(left.is_empty());
}

#[tokio::test]
async fn a_cancelled_scan_stops_on_the_device() {
    // A Full scan of /usr takes far longer than the test waits.
    let host = EnrolledAgent::start(&["--full-scan-root", "/usr"]).await;
    let (s, device) = (&host.s, &host.device);
    let token = s
        .token_with("Machine.Scan,Machine.Read.All,AdvancedHunting.Read.All")
        .await;
    let (st, a) = post(
        s,
        &token,
        &format!("/api/machines/{device}/runAntiVirusScan"),
        json!({"Comment": "full sweep", "ScanType": "Full"}),
    )
    .await;
    assert_eq!(st, 201, "{a}");
    let id = a["id"].as_str().unwrap().to_owned();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, a) = s
            .get(&format!("/api/machineactions/{id}"), Some(&token))
            .await;
        if a["status"] == "InProgress" {
            break;
        }
        assert!(Instant::now() < deadline, "the scan did not start: {a}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (st, a) = post(
        s,
        &token,
        &format!("/api/machineactions/{id}/cancel"),
        json!({"Comment": "enough"}),
    )
    .await;
    assert_eq!(st, 200, "{a}");
    assert_eq!(a["status"], "Cancelled", "{a}");
    let q = format!(
        "DeviceEvents | where DeviceId == '{device}' and ActionType startswith 'AntivirusScan' \
         | project ActionType"
    );
    let rows = hunt(s, &token, &q, |r| !r.is_empty()).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["ActionType"], "AntivirusScanCancelled");
}

/// `/etc/netns/<name>/hosts`, which `ip netns exec` puts over `/etc/hosts` inside the
/// namespace; removed when dropped.
struct NetNsHosts(std::path::PathBuf);

impl NetNsHosts {
    fn new(ns: &NetNs, entries: &str) -> NetNsHosts {
        let dir = Path::new("/etc/netns").join(&ns.name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("hosts"),
            format!("127.0.0.1 localhost\n{entries}\n"),
        )
        .unwrap();
        NetNsHosts(dir)
    }
}

impl Drop for NetNsHosts {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[tokio::test]
async fn blocked_domains_are_resolved_on_the_device_and_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let b = &backends(dir.path())[0];
    let ns = NetNs::new();
    // Inside the namespace the name resolves to the bystander's address.
    let _hosts = NetNsHosts::new(&ns, &format!("{} c2.rampart-e2e.test", ns.other_ip));
    let s = Server::start_listening(b, &format!("{}:0", ns.host_ip), &["--no-rate-limits"]);
    let server_addr = s.url.trim_start_matches("http://").to_owned();
    let other = bystander(&ns.other_ip);
    let state = dir.path().join("agent-domain");
    enroll_agent(&s, &state).await;
    let mut agent = ns.run_agent(
        state.to_str().unwrap(),
        &["run", "--force-polling", "--indicator-sync-seconds", "1"],
    );
    assert!(ns.connects(&other), "reachable before any indicator");
    let ti = s.token_with("Ti.ReadWrite.All").await;
    let (st, v) = post(
        &s,
        &ti,
        "/api/indicators",
        json!({ "indicatorValue": "c2.rampart-e2e.test", "indicatorType": "DomainName",
                "action": "Block", "title": "c2 domain", "description": "e2e" }),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    wait_for("the blocked domain's address is still reachable", || {
        !ns.connects(&other)
    })
    .await;
    assert!(ns.connects(&server_addr), "the server is never blocked");
    stop_agent(&mut agent);
}

/// Fetches a `GetLiveResponseResultDownloadLink` link (no bearer token needed) and returns its
/// bytes.
async fn live_response_result(s: &Server, token: &str, action: &str, index: u32) -> Vec<u8> {
    let (st, v) = s
        .get(
            &format!(
                "/api/machineactions/{action}/GetLiveResponseResultDownloadLink(index={index})"
            ),
            Some(token),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    let link = v["value"].as_str().unwrap();
    assert!(
        link.starts_with(&format!("{}/liveresponse/{action}/{index}?token=", s.url)),
        "{link}"
    );
    let resp = s.http.get(link).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    resp.bytes().await.unwrap().to_vec()
}

#[tokio::test]
async fn a_live_response_session_puts_a_file_runs_a_script_and_gets_a_file_back() {
    let host = EnrolledAgent::start(&[]).await;
    let (s, state, device) = (&host.s, &host.state, &host.device);
    let manage = s.token_with("Library.Manage").await;
    let token = s.token_with("Machine.LiveResponse,Machine.Read.All").await;
    let marker = format!("rampart-lr-{}", rand_digits());
    let (st, v) = s
        .upload_library_file(&manage, "input.txt", format!("{marker}\n").as_bytes(), &[])
        .await;
    assert_eq!(st, 200, "{v}");
    // Prints its arguments, writes to both streams, copies the file PutFile brought into the
    // path of its third argument with the directory it ran in, and exits 3.
    let script = "#!/bin/sh\nset -e\necho \"args: $# [$1] [$2]\"\necho complaint >&2\n\
                  cat input.txt > \"$3\"\necho \"cwd=$(pwd)\" >> \"$3\"\nexit 3\n";
    let (st, v) = s
        .upload_library_file(
            &manage,
            "collect.sh",
            script.as_bytes(),
            &[("HasParameters", "true")],
        )
        .await;
    assert_eq!(st, 200, "{v}");
    let out = host.dir.path().join("lr-out.txt");
    let out = out.to_str().unwrap();
    let a = machine_action(
        s,
        &token,
        device,
        "runliveresponse",
        json!({"Comment": "triage", "Commands": [
            {"type": "PutFile", "params": [{"key": "FileName", "value": "input.txt"}]},
            {"type": "RunScript", "params": [{"key": "ScriptName", "value": "collect.sh"},
                {"key": "Args", "value": format!("'two words' \"x y\" {out}")}]},
            {"type": "GetFile", "params": [{"key": "Path", "value": out}]}]}),
    )
    .await;
    assert_eq!(a["status"], "Succeeded", "{a}");
    let id = a["id"].as_str().unwrap().to_owned();
    for c in a["commands"].as_array().unwrap() {
        assert_eq!(c["commandStatus"], "Completed", "{a}");
        assert!(
            c["startTime"].is_string() && c["endTime"].is_string(),
            "{c}"
        );
    }

    // The transcript: MDE's four fields; a non-zero exit is still a script that ran.
    let transcript: Value =
        serde_json::from_slice(&live_response_result(s, &token, &id, 1).await).unwrap();
    assert_eq!(transcript["script_name"], "collect.sh");
    assert_eq!(transcript["exit_code"], 3);
    assert_eq!(transcript["script_output"], "args: 3 [two words] [x y]\n");
    assert_eq!(transcript["script_errors"], "complaint\n");
    // The file, as the script wrote it in the downloads directory where PutFile put the input.
    let got = String::from_utf8(live_response_result(s, &token, &id, 2).await).unwrap();
    let downloads = state.join("liveresponse/downloads");
    assert_eq!(
        got,
        format!("{marker}\ncwd={}\n", downloads.display()),
        "the file GetFile brought back"
    );
    assert!(downloads.join("input.txt").exists());
    let (st, e) = s
        .get(
            &format!("/api/machineactions/{id}/GetLiveResponseResultDownloadLink(index=0)"),
            Some(&token),
        )
        .await;
    assert_eq!(st, 404, "PutFile leaves no result: {e}");
    // Scripts do not stay behind on the device.
    let scripts: Vec<_> = std::fs::read_dir(state.join("liveresponse/scripts"))
        .unwrap()
        .collect();
    assert!(scripts.is_empty(), "{scripts:?}");

    // A command that fails ends the session: the ones before it completed, the ones after it
    // never ran.
    let a = machine_action(
        s,
        &token,
        device,
        "runliveresponse",
        json!({"Comment": "missing file", "Commands": [
            {"type": "RunScript", "params": [{"key": "ScriptName", "value": "collect.sh"},
                {"key": "Args", "value": format!("a b {out}")}]},
            {"type": "GetFile", "params": [{"key": "Path", "value": "/nonexistent/rampart"}]},
            {"type": "GetFile", "params": [{"key": "Path", "value": out}]}]}),
    )
    .await;
    assert_eq!(a["status"], "Failed", "{a}");
    let statuses: Vec<&str> = a["commands"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["commandStatus"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["Completed", "Failed", "Created"], "{a}");
    let errors = a["commands"][1]["errors"].to_string();
    assert!(errors.contains("/nonexistent/rampart"), "{errors}");
    assert!(
        a["troubleshootInfo"]
            .as_str()
            .is_some_and(|t| t.contains("GetFile")),
        "{a}"
    );
}

#[tokio::test]
async fn a_cancelled_live_response_session_kills_its_script() {
    let host = EnrolledAgent::start(&[]).await;
    let (s, state, device) = (&host.s, &host.state, &host.device);
    let manage = s.token_with("Library.Manage").await;
    let token = s.token_with("Machine.LiveResponse,Machine.Read.All").await;
    // Records the pid of a child it leaves running: the whole process group must go.
    let script = "sleep 300 &\necho $! > sleeper.pid\nwait\n";
    let (st, v) = s
        .upload_library_file(&manage, "hang.sh", script.as_bytes(), &[])
        .await;
    assert_eq!(st, 200, "{v}");
    let (st, a) = post(
        s,
        &token,
        &format!("/api/machines/{device}/runliveresponse"),
        json!({"Comment": "hangs", "Commands": [
            {"type": "RunScript", "params": [{"key": "ScriptName", "value": "hang.sh"}]}]}),
    )
    .await;
    assert_eq!(st, 201, "{a}");
    let id = a["id"].as_str().unwrap().to_owned();
    let pid_file = state.join("liveresponse/downloads/sleeper.pid");
    let mut pid = None;
    wait_for("the script to start", || {
        pid = std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|p| p.trim().parse::<u32>().ok());
        pid.is_some()
    })
    .await;
    let pid = pid.unwrap();
    assert!(Path::new(&format!("/proc/{pid}")).exists());
    let (st, a) = post(
        s,
        &token,
        &format!("/api/machineactions/{id}/cancel"),
        json!({"Comment": "enough"}),
    )
    .await;
    assert_eq!(st, 200, "{a}");
    assert_eq!(a["status"], "Cancelled");
    wait_for("the script's child to be killed", || {
        // Gone, or a zombie waiting for a parent that is gone too.
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| s.contains(") Z "))
            .unwrap_or(true)
    })
    .await;
}

/// An automated investigation on a real device: a network sensor names a running process
/// whose image is a system file. The investigation asks the agent whether it still runs (it
/// does), and kills it — the process, checked to still run that image, not the image, which
/// is everyone's.
#[tokio::test]
async fn an_investigation_looks_at_the_device_live_and_kills_the_process_it_names() {
    let host = EnrolledAgent::start(&[]).await;
    let (s, device) = (&host.s, &host.device);
    let token = s
        .token_with("Alert.ReadWrite.All,Machine.Read.All,Machine.StopAndQuarantine")
        .await;
    let mut victim = std::process::Command::new("sleep")
        .arg("600")
        .spawn()
        .unwrap();
    let pid = victim.id();
    let image = std::fs::read_link(format!("/proc/{pid}/exe"))
        .unwrap()
        .to_string_lossy()
        .into_owned();
    // A round trip through the command channel: the agent is polling when the alert comes.
    let probe = machine_action(
        s,
        &token,
        device,
        "restoreQuarantinedFile",
        json!({"Comment": "is the agent there", "Sha1": "0".repeat(40)}),
    )
    .await;
    assert_eq!(probe["status"], "Failed", "nothing to restore: {probe}");

    let (st, res) = post(
        s,
        &token,
        "/api/alerts/import",
        json!({"Alerts": [{"sourceProduct": "Contoso NDR", "externalId": "live-kill-1",
            "title": "Reverse shell to 198.51.100.9", "severity": "High", "category": "Execution",
            "evidence": [{"entityType": "Device", "machineId": device},
                         {"entityType": "Process", "processId": pid, "fileName": "sleep",
                          "filePath": image}]}]}),
    )
    .await;
    assert_eq!(
        (st, res["value"][0]["isFailed"].as_bool()),
        (200, Some(false)),
        "{res}"
    );
    let alert = res["value"][0]["id"].as_str().unwrap().to_owned();

    let deadline = Instant::now() + Duration::from_secs(60);
    let inv = loop {
        let (_, a) = s.get(&format!("/api/alerts/{alert}"), Some(&token)).await;
        if let Some(id) = a["investigationId"].as_i64() {
            let (st, inv) = s
                .get(&format!("/api/investigations/{id}"), Some(&token))
                .await;
            assert_eq!(st, 200, "{inv}");
            if inv["state"] == "SuccessfullyRemediated" {
                break inv;
            }
            assert!(
                !matches!(
                    inv["state"].as_str(),
                    Some("Failed" | "PartiallyInvestigated")
                ),
                "{inv}"
            );
        }
        assert!(
            Instant::now() < deadline,
            "the investigation did not end: {a}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let process = inv["entities"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["processId"] == pid)
        .unwrap_or_else(|| panic!("no process {pid} in {inv}"));
    assert_eq!(
        (process["verdict"].as_str(), process["liveState"].as_str()),
        (Some("Malicious"), Some("Running")),
        "{inv}"
    );
    assert_eq!(inv["notExamined"], json!([]), "{inv}");
    let look = finished_action(s, &token, inv["liveEvidenceActionId"].as_str().unwrap()).await;
    assert_eq!(
        look["liveEvidence"]["processes"][0]["running"], true,
        "{look}"
    );

    let deadline = Instant::now() + Duration::from_secs(10);
    while victim.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "the process still runs");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (st, actions) = s
        .get(
            &format!(
                "/api/remediationactions?$filter=investigationId eq '{}'",
                inv["id"].as_str().unwrap()
            ),
            Some(&token),
        )
        .await;
    assert_eq!(st, 200, "{actions}");
    let actions = actions["value"].as_array().unwrap();
    assert_eq!(actions.len(), 1, "only the kill: {actions:?}");
    assert_eq!(
        (
            actions[0]["actionType"].as_str(),
            actions[0]["status"].as_str()
        ),
        (Some("KillProcess"), Some("Completed"))
    );
    assert!(Path::new(&image).exists(), "the image is left alone");
}
