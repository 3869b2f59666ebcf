//! The network sensor: the kernel's socket table and socket closures read through sock_diag,
//! turned into DeviceNetworkEvents action types with each connection reported once, sockets
//! traced to their process, and rows whose every column is one of the table's.

use rampart_agent::network::diag::{
    self, ClosedSocket, ClosedSockets, Ending, InetSocket, Protocol, TcpState,
};
use rampart_agent::network::{self, NetworkConfig, NetworkSensor, Tracker, ip_type};
use rampart_agent::process::hashes::HashCache;
use rampart_agent::process::rows::{ProcInfo, RowContext};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::{Duration, Instant};
use time::OffsetDateTime;

fn sock(state: TcpState, local: &str, remote: &str, inode: u64) -> InetSocket {
    InetSocket {
        protocol: Protocol::Tcp,
        state,
        local: local.parse().unwrap(),
        remote: remote.parse().unwrap(),
        uid: 0,
        inode,
    }
}

fn closed(local: &str, remote: &str, ending: Ending) -> ClosedSocket {
    ClosedSocket {
        socket: sock(TcpState::Close, local, remote, 0),
        ending,
    }
}

type Action = (&'static str, String, String);

fn actions(changes: Vec<network::Change>) -> Vec<Action> {
    changes
        .into_iter()
        .map(|c| {
            (
                c.action,
                c.socket.local.to_string(),
                c.socket.remote.to_string(),
            )
        })
        .collect()
}

fn action(a: &'static str, local: &str, remote: &str) -> Action {
    (a, local.into(), remote.into())
}

/// Only the changes about `addr` (other tests of this binary open sockets too).
fn about(found: Vec<Action>, addr: SocketAddr) -> Vec<Action> {
    let a = addr.to_string();
    found
        .into_iter()
        .filter(|(_, l, r)| *l == a || *r == a)
        .collect()
}

#[test]
fn the_kernel_socket_table_shows_a_listener_and_both_ends_of_a_connection() {
    let mut tracker = Tracker::default();
    tracker.dumped(diag::dump_open().unwrap());
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let server = listener.local_addr().unwrap();
    let client = TcpStream::connect(server).unwrap();
    let (accepted, _) = listener.accept().unwrap();
    let client_addr = client.local_addr().unwrap();
    let raw = diag::dump_open().unwrap();

    let ours = raw
        .iter()
        .find(|s| s.protocol == Protocol::Tcp && s.local == server && s.state == TcpState::Listen)
        .expect("the listener is in the dump");
    assert_ne!(ours.inode, 0);
    assert_eq!(ours.uid, own_euid());
    // Both address families are in one dump.
    let v6 = TcpListener::bind("[::1]:0").unwrap();
    let v6_addr = v6.local_addr().unwrap();
    assert!(
        diag::dump_open()
            .unwrap()
            .iter()
            .any(|s| s.local == v6_addr && s.state == TcpState::Listen),
        "the IPv6 listener is in the dump"
    );
    let found = actions(tracker.dumped(raw.clone()));
    let s = |a: SocketAddr| a.to_string();
    assert!(
        found.contains(&("ListeningConnectionCreated", s(server), "0.0.0.0:0".into())),
        "{found:?}"
    );
    assert!(
        found.contains(&("ConnectionSuccess", s(client_addr), s(server))),
        "{found:?}"
    );
    assert!(
        found.contains(&("InboundConnectionAccepted", s(server), s(client_addr))),
        "{found:?}"
    );

    // The sockets lead to this process.
    let owners = network::socket_owners();
    assert_eq!(owners.get(&ours.inode), Some(&std::process::id()));
    let client_sock = raw.iter().find(|s| s.local == client_addr).unwrap();
    assert_eq!(owners.get(&client_sock.inode), Some(&std::process::id()));

    // Seen again in the next dump: nothing new.
    let repeated = about(actions(tracker.dumped(diag::dump_open().unwrap())), server);
    assert!(repeated.is_empty(), "{repeated:?}");
    drop((client, accepted, listener));
}

#[test]
fn udp_sockets_bound_and_connected_are_seen_in_the_kernel_table() {
    let mut tracker = Tracker::default();
    tracker.dumped(diag::dump_open().unwrap());
    let server = UdpSocket::bind("127.0.0.1:0").unwrap();
    let server_addr = server.local_addr().unwrap();
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    client.connect(server_addr).unwrap();
    let client_addr = client.local_addr().unwrap();
    let raw = diag::dump_open().unwrap();
    let bound = raw
        .iter()
        .find(|s| s.protocol == Protocol::Udp && s.local == server_addr)
        .expect("the bound UDP socket is in the dump");
    assert!(bound.is_listener(), "{bound:?}");
    let connected = raw
        .iter()
        .find(|s| s.protocol == Protocol::Udp && s.local == client_addr)
        .expect("the connected UDP socket is in the dump");
    assert_eq!(connected.remote, server_addr);
    assert!(connected.was_connected() && !connected.is_listener());

    let changes: Vec<_> = tracker
        .dumped(raw.clone())
        .into_iter()
        .filter(|c| c.socket.protocol == Protocol::Udp)
        .collect();
    let found: Vec<_> = changes
        .iter()
        .map(|c| (c.action, c.socket.local, c.socket.remote))
        .collect();
    assert!(
        found.contains(&(
            "ListeningConnectionCreated",
            server_addr,
            "0.0.0.0:0".parse().unwrap()
        )),
        "{found:?}"
    );
    assert!(
        found.contains(&("ConnectionSuccess", client_addr, server_addr)),
        "{found:?}"
    );
    // Rows say Udp, and a bound socket has no remote end.
    let ctx = RowContext::default();
    let time = OffsetDateTime::now_utc();
    for c in changes.iter().filter(|c| c.socket.local == server_addr) {
        let row = network::row(&ctx, time, c, None);
        assert_eq!(row["Protocol"], "Udp");
        assert!(!row.contains_key("RemoteIP"), "{row:?}");
    }
    // The sockets lead to this process.
    let owners = network::socket_owners();
    assert_eq!(owners.get(&bound.inode), Some(&std::process::id()));
    drop((client, server));
}

/// Reads closures until `done` holds for those about `addr`, for at most five seconds.
fn closures_about(
    feed: &mut ClosedSockets,
    addr: SocketAddr,
    done: impl Fn(&[ClosedSocket]) -> bool,
) -> Vec<ClosedSocket> {
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut batch = Vec::new();
        feed.drain(&mut batch).unwrap();
        seen.extend(
            batch
                .into_iter()
                .filter(|c| c.socket.local == addr || c.socket.remote == addr),
        );
        if done(&seen) || Instant::now() > deadline {
            return seen;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn the_kernel_reports_closed_connections_and_failed_connects() {
    let mut feed = ClosedSockets::open().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let server = listener.local_addr().unwrap();

    // A connection that lives for a moment: both ends are reported closed, as connected.
    let client = TcpStream::connect(server).unwrap();
    let (accepted, _) = listener.accept().unwrap();
    let client_addr = client.local_addr().unwrap();
    drop(client);
    drop(accepted);
    let seen = closures_about(&mut feed, server, |s| s.len() >= 2);
    let ends: Vec<_> = seen
        .iter()
        .map(|c| (c.socket.protocol, c.socket.local, c.socket.remote, c.ending))
        .collect();
    assert!(
        ends.contains(&(Protocol::Tcp, client_addr, server, Ending::Connected)),
        "{ends:?}"
    );
    assert!(
        ends.contains(&(Protocol::Tcp, server, client_addr, Ending::Connected)),
        "{ends:?}"
    );
    assert!(seen.iter().all(|c| c.socket.inode == 0), "{seen:?}");

    // A connect that times out: a listener whose accept queue (backlog 0) is full drops SYNs.
    // SAFETY: listen(2) on a descriptor the listener owns, which stays open for the call;
    // calling it again on a listening socket only changes the backlog.
    assert_eq!(unsafe { libc::listen(listener.as_raw_fd(), 0) }, 0);
    let _queued = TcpStream::connect(server).unwrap();
    let attempt = TcpStream::connect_timeout(&server, Duration::from_millis(300));
    assert!(attempt.is_err(), "the queue was full: {attempt:?}");
    let seen = closures_about(&mut feed, server, |s| {
        s.iter().any(|c| c.ending == Ending::Failed)
    });
    let failed: Vec<_> = seen.iter().filter(|c| c.ending == Ending::Failed).collect();
    assert_eq!(failed.len(), 1, "{seen:?}");
    assert_eq!(failed[0].socket.remote, server);

    // UDP: a connected socket is a connection; a bound one is not.
    let udp_server = UdpSocket::bind("127.0.0.1:0").unwrap();
    let udp_addr = udp_server.local_addr().unwrap();
    let udp_client = UdpSocket::bind("127.0.0.1:0").unwrap();
    udp_client.connect(udp_addr).unwrap();
    drop(udp_client);
    drop(udp_server);
    let seen = closures_about(&mut feed, udp_addr, |s| s.len() >= 2);
    let endings: Vec<_> = seen
        .iter()
        .map(|c| (c.socket.protocol, c.socket.remote.port() != 0, c.ending))
        .collect();
    assert!(
        endings.contains(&(Protocol::Udp, true, Ending::Connected)),
        "{endings:?}"
    );
    assert!(
        endings.contains(&(Protocol::Udp, false, Ending::Unconnected)),
        "{endings:?}"
    );
    assert_eq!(feed.overruns, 0);
}

/// A destroy broadcast as the kernel builds it: `inet_diag_msg`, then attributes.
fn broadcast(protocol: Option<u8>, info: Option<&[u8]>, dport: u16) -> Vec<u8> {
    let mut m = vec![0u8; 72];
    m[0] = libc::AF_INET as u8;
    m[1] = 7; // CLOSE
    m[4..6].copy_from_slice(&40000u16.to_be_bytes());
    m[6..8].copy_from_slice(&dport.to_be_bytes());
    m[8..12].copy_from_slice(&[10, 0, 0, 5]);
    m[24..28].copy_from_slice(&[198, 51, 100, 7]);
    let mut attr = |kind: u16, value: &[u8]| {
        m.extend_from_slice(&(4 + value.len() as u16).to_ne_bytes());
        m.extend_from_slice(&kind.to_ne_bytes());
        m.extend_from_slice(value);
        m.resize((m.len() + 3) & !3, 0);
    };
    if let Some(p) = protocol {
        attr(10, &[p]);
    }
    if let Some(i) = info {
        attr(2, i);
    }
    m
}

fn tcp_info(len: usize, fields: &[(usize, u64, usize)]) -> Vec<u8> {
    let mut info = vec![0u8; len];
    for &(at, value, width) in fields {
        info[at..at + width].copy_from_slice(&value.to_ne_bytes()[..width]);
    }
    info
}

#[test]
fn destroy_broadcasts_are_parsed_from_bytes_for_old_and_new_kernels() {
    const TCP: Option<u8> = Some(6);
    let ending = |m: Vec<u8>| diag::closed_socket(&m).map(|c| c.ending);
    // Linux ≥ 4.18: tcpi_delivered (offset 192) counts what the peer acknowledged.
    let new = |delivered, segs_out| tcp_info(232, &[(192, delivered, 4), (136, segs_out, 4)]);
    assert_eq!(
        ending(broadcast(TCP, Some(&new(2, 4)), 443)),
        Some(Ending::Connected)
    );
    assert_eq!(
        ending(broadcast(TCP, Some(&new(0, 3)), 443)),
        Some(Ending::Failed)
    );
    assert_eq!(
        ending(broadcast(TCP, Some(&new(0, 0)), 0)),
        Some(Ending::Unconnected)
    );
    // Older kernels send a shorter struct: a measured round trip, or bytes received.
    let old = |rtt, received, segs_out| {
        tcp_info(160, &[(68, rtt, 4), (128, received, 8), (136, segs_out, 4)])
    };
    assert_eq!(
        ending(broadcast(TCP, Some(&old(40, 0, 3)), 443)),
        Some(Ending::Connected)
    );
    assert_eq!(
        ending(broadcast(TCP, Some(&old(0, 10, 3)), 443)),
        Some(Ending::Connected)
    );
    assert_eq!(
        ending(broadcast(TCP, Some(&old(0, 0, 3)), 443)),
        Some(Ending::Failed)
    );
    // Nothing to tell, or nothing to believe: no panic, no connection.
    assert_eq!(ending(broadcast(TCP, None, 443)), Some(Ending::Unconnected));
    assert_eq!(ending(broadcast(None, Some(&new(2, 4)), 443)), None);
    assert_eq!(
        ending(broadcast(Some(132), Some(&new(2, 4)), 443)),
        None,
        "SCTP"
    );
    let c = diag::closed_socket(&broadcast(Some(17), None, 53)).unwrap();
    assert_eq!(
        (c.socket.protocol, c.ending),
        (Protocol::Udp, Ending::Connected)
    );
    assert_eq!(c.socket.remote, "198.51.100.7:53".parse().unwrap());
    let mut cut = broadcast(TCP, Some(&new(2, 4)), 443);
    cut.truncate(100);
    assert_eq!(
        diag::closed_socket(&cut).map(|c| c.ending),
        Some(Ending::Unconnected)
    );
    assert!(diag::closed_socket(&cut[..60]).is_none());
}

#[test]
fn each_connection_is_reported_once_whether_seen_open_or_closed() {
    let listen = sock(TcpState::Listen, "0.0.0.0:22", "0.0.0.0:0", 10);
    let open = sock(
        TcpState::Established,
        "10.0.0.5:40000",
        "93.184.216.34:443",
        11,
    );
    let mut t = Tracker::default();
    // At start: open connections are found, listeners are not news.
    assert_eq!(
        actions(t.dumped(vec![listen.clone(), open.clone()])),
        vec![action(
            "ConnectionFound",
            "10.0.0.5:40000",
            "93.184.216.34:443"
        )]
    );

    // An attempt is not reported until it ends; a new listener is.
    let trying = sock(TcpState::SynSent, "10.0.0.5:40001", "198.51.100.7:8443", 12);
    let web = sock(TcpState::Listen, "[::]:8080", "[::]:0", 15);
    assert_eq!(
        actions(t.dumped(vec![listen.clone(), web.clone(), open.clone(), trying])),
        vec![action("ListeningConnectionCreated", "[::]:8080", "[::]:0")]
    );

    // The attempt failed; an SSH login came in and left between two dumps; the connection
    // found at start closed (no news); a socket that was only bound closed (none either).
    let closures = vec![
        closed("10.0.0.5:40001", "198.51.100.7:8443", Ending::Failed),
        closed("10.0.0.5:22", "192.0.2.9:51000", Ending::Connected),
        closed("10.0.0.5:40000", "93.184.216.34:443", Ending::Connected),
        closed("10.0.0.5:40003", "0.0.0.0:0", Ending::Unconnected),
    ];
    assert_eq!(
        actions(t.closed(closures)),
        vec![
            action(
                "InboundConnectionAccepted",
                "10.0.0.5:22",
                "192.0.2.9:51000"
            ),
            action("ConnectionFailed", "10.0.0.5:40001", "198.51.100.7:8443"),
        ]
    );
    assert_eq!(actions(t.dumped(vec![listen.clone(), web.clone()])), vec![]);

    // An inbound connection still in the accept queue (no inode yet) waits for the dump that
    // finds it accepted, so that the server process is named; its closure is then no news.
    let queued = sock(TcpState::Established, "10.0.0.5:22", "192.0.2.10:52000", 0);
    assert_eq!(
        actions(t.dumped(vec![listen.clone(), web.clone(), queued.clone()])),
        vec![]
    );
    let accepted = InetSocket {
        inode: 14,
        ..queued
    };
    assert_eq!(
        actions(t.dumped(vec![listen.clone(), web.clone(), accepted])),
        vec![action(
            "InboundConnectionAccepted",
            "10.0.0.5:22",
            "192.0.2.10:52000"
        )]
    );
    // Closed just after the next dump no longer had it: still known, still no news.
    assert_eq!(actions(t.dumped(vec![listen.clone(), web.clone()])), vec![]);
    assert_eq!(
        actions(t.closed(vec![closed(
            "10.0.0.5:22",
            "192.0.2.10:52000",
            Ending::Connected
        )])),
        vec![]
    );
    // One closed before any dump saw it accepted is reported from its closure, and a closed
    // connection to the new listener is inbound.
    let queued = sock(TcpState::Established, "10.0.0.5:22", "192.0.2.11:53000", 0);
    assert_eq!(
        actions(t.dumped(vec![listen.clone(), web.clone(), queued])),
        vec![]
    );
    assert_eq!(
        actions(t.closed(vec![
            closed("10.0.0.5:22", "192.0.2.11:53000", Ending::Connected),
            closed("[fd00::5]:8080", "[fd00::9]:50000", Ending::Connected),
        ])),
        vec![
            action(
                "InboundConnectionAccepted",
                "10.0.0.5:22",
                "192.0.2.11:53000"
            ),
            action(
                "InboundConnectionAccepted",
                "[fd00::5]:8080",
                "[fd00::9]:50000"
            ),
        ]
    );

    // IPv4-mapped IPv6 addresses are reported as IPv4, open or closed.
    let mapped = sock(
        TcpState::Established,
        "[::ffff:10.0.0.5]:40002",
        "[::ffff:203.0.113.1]:80",
        13,
    );
    assert_eq!(
        actions(t.dumped(vec![mapped])),
        vec![action(
            "ConnectionSuccess",
            "10.0.0.5:40002",
            "203.0.113.1:80"
        )]
    );
    assert_eq!(
        actions(t.closed(vec![
            closed(
                "[::ffff:10.0.0.5]:40002",
                "[::ffff:203.0.113.1]:80",
                Ending::Connected
            ),
            closed(
                "[::ffff:10.0.0.5]:40004",
                "[::ffff:203.0.113.1]:80",
                Ending::Connected
            ),
        ])),
        vec![action(
            "ConnectionSuccess",
            "10.0.0.5:40004",
            "203.0.113.1:80"
        )]
    );
}

/// The sensor's rows about `port`, until one satisfies `until` (at most 30 s).
fn rows_about(
    rx: &mut tokio::sync::mpsc::Receiver<rampart_agent::batcher::TableRow>,
    port: u16,
    into: &mut Vec<rampart_proto::telemetry::Row>,
    until: impl Fn(&rampart_proto::telemetry::Row) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        match rx.try_recv() {
            Ok((table, row)) => {
                assert_eq!(table, "DeviceNetworkEvents");
                let is = |c: &str| row.get(c).and_then(|v| v.as_u64()) == Some(u64::from(port));
                if is("LocalPort") || is("RemotePort") {
                    let done = until(&row);
                    into.push(row);
                    if done {
                        return;
                    }
                }
            }
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
    panic!("no row about port {port} satisfied the wait: {into:#?}");
}

#[test]
fn the_running_sensor_reports_short_and_long_connections_once() {
    let (tx, mut rx) = tokio::sync::mpsc::channel(100_000);
    let config = NetworkConfig {
        interval: Duration::from_millis(200),
        ..NetworkConfig::default()
    };
    let sensor = NetworkSensor::start(config, Arc::new(HashCache::default()), tx).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let server = listener.local_addr().unwrap();
    let mut rows = Vec::new();
    let action_is = |a: &'static str| move |r: &rampart_proto::telemetry::Row| r["ActionType"] == a;
    rows_about(
        &mut rx,
        server.port(),
        &mut rows,
        action_is("ListeningConnectionCreated"),
    );

    // Long: open across rounds, so a dump names its process. Short: closed at once.
    let long = TcpStream::connect(server).unwrap();
    let (long_accepted, _) = listener.accept().unwrap();
    let long_addr = long.local_addr().unwrap();
    rows_about(&mut rx, server.port(), &mut rows, |r| {
        r["ActionType"] == "ConnectionSuccess"
            && r["LocalPort"].as_u64() == Some(u64::from(long_addr.port()))
    });
    let short = TcpStream::connect(server).unwrap();
    let (short_accepted, _) = listener.accept().unwrap();
    let short_addr = short.local_addr().unwrap();
    drop((short, short_accepted));
    drop((long, long_accepted));
    rows_about(&mut rx, server.port(), &mut rows, |r| {
        r["ActionType"] == "InboundConnectionAccepted"
            && r["RemotePort"].as_u64() == Some(u64::from(short_addr.port()))
    });
    // Two more rounds: the long connection's closure is read, and is no news.
    std::thread::sleep(Duration::from_millis(600));
    sensor.stop();
    while let Ok((_, row)) = rx.try_recv() {
        let is = |c: &str| row.get(c).and_then(|v| v.as_u64()) == Some(u64::from(server.port()));
        if is("LocalPort") || is("RemotePort") {
            rows.push(row);
        }
    }

    let summary: Vec<_> = rows
        .iter()
        .map(|r| {
            (
                r["ActionType"].as_str().unwrap().to_owned(),
                r["LocalPort"].as_u64().unwrap(),
                r.get("RemotePort").and_then(|v| v.as_u64()),
                r.get("InitiatingProcessId").and_then(|v| v.as_u64()),
            )
        })
        .collect();
    let me = Some(u64::from(std::process::id()));
    let p = |a: SocketAddr| u64::from(a.port());
    let count = |action: &str, local: u64, remote: Option<u64>| {
        summary
            .iter()
            .filter(|s| (s.0.as_str(), s.1, s.2) == (action, local, remote))
            .collect::<Vec<_>>()
    };
    let listener_rows = count("ListeningConnectionCreated", p(server), None);
    assert_eq!(listener_rows.len(), 1, "{summary:#?}");
    assert_eq!(listener_rows[0].3, me);
    for (action, local, remote) in [
        ("ConnectionSuccess", long_addr, server),
        ("InboundConnectionAccepted", server, long_addr),
    ] {
        let found = count(action, p(local), Some(p(remote)));
        assert_eq!(found.len(), 1, "{action} {local}: {summary:#?}");
        assert_eq!(found[0].3, me, "a dump saw it open: {summary:#?}");
    }
    // Opened and closed within a round: seen closed, its process unknown (unless a dump
    // happened to fall in the microseconds it was open).
    for (action, local, remote) in [
        ("ConnectionSuccess", short_addr, server),
        ("InboundConnectionAccepted", server, short_addr),
    ] {
        let found = count(action, p(local), Some(p(remote)));
        assert_eq!(found.len(), 1, "{action} {local}: {summary:#?}");
    }
    assert_eq!(summary.len(), 5, "{summary:#?}");
    for r in rows
        .iter()
        .filter(|r| r.get("InitiatingProcessId").is_none())
    {
        assert!(r["AdditionalFields"].as_str().unwrap().contains("Partial"));
    }
}

/// The effective uid of this process, read from /proc (the sensor reports socket owners by it).
fn own_euid() -> u32 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|v| v.split_whitespace().nth(1)?.parse().ok())
        .unwrap()
}

#[test]
fn addresses_are_classed_as_mde_does() {
    let class = |a: &str| ip_type(a.parse::<IpAddr>().unwrap());
    assert_eq!(class("127.0.0.1"), "Loopback");
    assert_eq!(class("10.1.2.3"), "Private");
    assert_eq!(class("172.16.0.1"), "Private");
    assert_eq!(class("192.168.1.1"), "Private");
    assert_eq!(class("169.254.1.1"), "LinkLocal");
    assert_eq!(class("255.255.255.255"), "Broadcast");
    assert_eq!(class("224.0.0.251"), "Multicast");
    assert_eq!(class("100.64.0.1"), "Reserved");
    assert_eq!(class("192.0.2.1"), "Reserved");
    assert_eq!(class("8.8.8.8"), "Public");
    assert_eq!(class("::1"), "Loopback");
    assert_eq!(class("::ffff:1.2.3.4"), "FourToSixMapping");
    assert_eq!(class("2001:0:4136:e378::1"), "Teredo");
    assert_eq!(class("fd00::1"), "Private");
    assert_eq!(class("fe80::1"), "LinkLocal");
    assert_eq!(class("2001:db8::1"), "Reserved");
    assert_eq!(class("2606:4700::1111"), "Public");
}

#[test]
fn rows_use_only_the_columns_of_device_network_events() {
    let ctx = RowContext {
        device_id: Some("ab".repeat(20)),
        device_name: "web-1".into(),
        account_domain: "web-1".into(),
    };
    let process = ProcInfo {
        pid: 4242,
        ppid: Some(1),
        path: Some("/usr/bin/curl".into()),
        file_name: Some("curl".into()),
        cmdline: Some("curl https://example.com".into()),
        account_name: Some("root".into()),
        creation_time: Some(OffsetDateTime::now_utc()),
        hashes: None,
    };
    let table = &rampart_core::schema::DEVICE_NETWORK_EVENTS;
    let change = |action, state, remote| network::Change {
        action,
        socket: sock(
            state,
            "10.0.0.5:40000",
            remote,
            u64::from(state != TcpState::Close),
        ),
    };
    for (c, p) in [
        (
            change(
                "ConnectionSuccess",
                TcpState::Established,
                "93.184.216.34:443",
            ),
            Some(&process),
        ),
        (
            change("ListeningConnectionCreated", TcpState::Listen, "0.0.0.0:0"),
            Some(&process),
        ),
        (
            change("InboundConnectionAccepted", TcpState::Close, "192.0.2.9:1"),
            None,
        ),
    ] {
        let row = network::row(&ctx, OffsetDateTime::now_utc(), &c, p);
        for column in row.keys() {
            assert!(
                table.columns.iter().any(|col| col.name == column),
                "{column} is not a DeviceNetworkEvents column"
            );
        }
        assert_eq!(row["ActionType"], c.action);
        assert_eq!(row["Protocol"], "Tcp");
        assert_eq!(row["LocalIPType"], "Private");
        if c.action == "ListeningConnectionCreated" {
            assert!(row.get("RemoteIP").is_none());
        } else {
            assert!(row.get("RemoteIP").is_some());
        }
        match p {
            Some(_) => assert_eq!(row["InitiatingProcessFileName"], "curl"),
            None => assert!(
                row["AdditionalFields"]
                    .as_str()
                    .unwrap()
                    .contains("Partial")
            ),
        }
    }
}

#[test]
fn default_gateways_are_read_from_the_kernel_route_tables() {
    use rampart_agent::netinfo::{default_gateways_v4, default_gateways_v6};
    // 192.168.1.1 as the kernel prints it on a little-endian machine.
    let gw = u32::from_ne_bytes([192, 168, 1, 1]);
    let route = format!(
        "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
         eth0\t00000000\t{gw:08X}\t0003\t0\t0\t100\t00000000\t0\t0\t0\n\
         eth0\t0001A8C0\t00000000\t0001\t0\t0\t100\t00FFFFFF\t0\t0\t0\n"
    );
    assert_eq!(
        default_gateways_v4(&route),
        vec![("eth0".to_owned(), "192.168.1.1".parse().unwrap())]
    );
    let route6 = "00000000000000000000000000000000 00 00000000000000000000000000000000 00 fe800000000000000000000000000001 00000400 00000001 00000000 00000003 eth0\n\
                  fe800000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001 eth0\n";
    assert_eq!(
        default_gateways_v6(route6),
        vec![("eth0".to_owned(), "fe80::1".parse().unwrap())]
    );
}

#[test]
fn adapters_match_what_iproute2_reports_and_rows_fit_the_table() {
    let adapters = rampart_agent::netinfo::adapters();
    assert!(adapters.iter().all(|a| a.name != "lo"));
    let out = std::process::Command::new("ip")
        .args(["-j", "addr", "show"])
        .output()
        .expect("ip (iproute2)");
    let links: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut expected = Vec::new();
    for link in links.as_array().unwrap() {
        let name = link["ifname"].as_str().unwrap();
        if name == "lo" {
            continue;
        }
        let adapter = adapters
            .iter()
            .find(|a| a.name == name)
            .unwrap_or_else(|| panic!("{name} missing from {adapters:?}"));
        if let Some(mac) = link["address"].as_str().filter(|m| m.len() == 17) {
            assert_eq!(
                adapter.mac.as_deref(),
                Some(mac.replace(':', "-").to_uppercase().as_str())
            );
        }
        for a in link["addr_info"].as_array().unwrap() {
            let ip: IpAddr = a["local"].as_str().unwrap().parse().unwrap();
            let prefix = a["prefixlen"].as_u64().unwrap() as u8;
            expected.push((name.to_owned(), ip, prefix));
        }
    }
    let got: Vec<_> = adapters
        .iter()
        .flat_map(|a| a.addresses.iter().map(|(ip, p)| (a.name.clone(), *ip, *p)))
        .collect();
    for e in &expected {
        assert!(got.contains(e), "{e:?} not in {got:?}");
    }

    let ctx = RowContext {
        device_id: Some("cd".repeat(20)),
        device_name: "web-1".into(),
        account_domain: "web-1".into(),
    };
    let table = &rampart_core::schema::DEVICE_NETWORK_INFO;
    for row in rampart_agent::netinfo::rows(&ctx, OffsetDateTime::now_utc(), &adapters) {
        for column in row.keys() {
            assert!(
                table.columns.iter().any(|c| c.name == column),
                "{column} is not a DeviceNetworkInfo column"
            );
        }
        let ips: serde_json::Value =
            serde_json::from_str(row["IPAddresses"].as_str().unwrap()).unwrap();
        assert!(ips.is_array());
    }
}
