//! The network sensor: the kernel's socket table read through sock_diag, the changes between two
//! reads turned into DeviceNetworkEvents action types, sockets traced to their process, and
//! rows whose every column is one of the table's.

use rampart_agent::network::diag::{self, InetSocket, Protocol, TcpState};
use rampart_agent::network::{self, Dump, changes, ip_type};
use rampart_agent::process::rows::{ProcInfo, RowContext};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream, UdpSocket};
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

fn actions(before: Option<&Dump>, now: &Dump) -> Vec<(&'static str, String, String)> {
    changes(before, now)
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

#[test]
fn the_kernel_socket_table_shows_a_listener_and_both_ends_of_a_connection() {
    let before = Dump::new(diag::dump().unwrap());
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let server = listener.local_addr().unwrap();
    let client = TcpStream::connect(server).unwrap();
    let (accepted, _) = listener.accept().unwrap();
    let client_addr = client.local_addr().unwrap();
    let raw = diag::dump().unwrap();

    let ours = raw
        .iter()
        .find(|s| s.protocol == Protocol::Tcp && s.local == server && s.state == TcpState::Listen)
        .expect("the listener is in the dump");
    assert_ne!(ours.inode, 0);
    assert_eq!(ours.uid, own_euid());
    let found = actions(Some(&before), &Dump::new(raw.clone()));
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

    // Seen again in the next read: nothing new.
    let again = Dump::new(diag::dump().unwrap());
    let repeated: Vec<_> = actions(Some(&Dump::new(raw)), &again)
        .into_iter()
        .filter(|(_, l, r)| [l, r].iter().any(|a| **a == s(server)))
        .collect();
    assert!(repeated.is_empty(), "{repeated:?}");
    drop((client, accepted, listener));
}

#[test]
fn udp_sockets_bound_and_connected_are_seen_in_the_kernel_table() {
    let before = Dump::new(diag::dump().unwrap());
    let server = UdpSocket::bind("127.0.0.1:0").unwrap();
    let server_addr = server.local_addr().unwrap();
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    client.connect(server_addr).unwrap();
    let client_addr = client.local_addr().unwrap();
    let raw = diag::dump().unwrap();
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

    let found: Vec<_> = changes(Some(&before), &Dump::new(raw.clone()))
        .into_iter()
        .filter(|c| c.socket.protocol == Protocol::Udp)
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
    for c in changes(Some(&before), &Dump::new(raw.clone())) {
        if c.socket.protocol != Protocol::Udp || c.socket.local != server_addr {
            continue;
        }
        let row = network::row(&ctx, time, &c, None);
        assert_eq!(row["Protocol"], "Udp");
        assert!(!row.contains_key("RemoteIP"), "{row:?}");
    }
    // The sockets lead to this process.
    let owners = network::socket_owners();
    assert_eq!(owners.get(&bound.inode), Some(&std::process::id()));
    drop((client, server));
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
fn changes_between_dumps_name_what_happened() {
    let listen = sock(TcpState::Listen, "0.0.0.0:22", "0.0.0.0:0", 10);
    let open = sock(
        TcpState::Established,
        "10.0.0.5:40000",
        "93.184.216.34:443",
        11,
    );
    // At start: open connections are found, listeners are not news.
    let start = Dump::new(vec![listen.clone(), open.clone()]);
    assert_eq!(
        actions(None, &start),
        vec![(
            "ConnectionFound",
            "10.0.0.5:40000".into(),
            "93.184.216.34:443".into()
        )]
    );

    let trying = sock(TcpState::SynSent, "10.0.0.5:40001", "198.51.100.7:8443", 12);
    let t1 = Dump::new(vec![listen.clone(), open.clone(), trying]);
    assert_eq!(
        actions(Some(&start), &t1),
        Vec::<(&str, String, String)>::new(),
        "an attempt is not reported until it ends"
    );

    // The attempt is gone without connecting; an SSH login came in and left in TIME_WAIT
    // (the server closed first); the open connection moved to CLOSE_WAIT.
    let inbound = sock(TcpState::TimeWait, "10.0.0.5:22", "192.0.2.9:51000", 0);
    let closing = InetSocket {
        state: TcpState::CloseWait,
        ..open.clone()
    };
    let t2 = Dump::new(vec![listen, closing, inbound]);
    assert_eq!(
        actions(Some(&t1), &t2),
        vec![
            (
                "InboundConnectionAccepted",
                "10.0.0.5:22".into(),
                "192.0.2.9:51000".into()
            ),
            (
                "ConnectionFailed",
                "10.0.0.5:40001".into(),
                "198.51.100.7:8443".into()
            ),
        ]
    );

    // An inbound connection still in the accept queue (no inode yet) waits for the dump that
    // finds it accepted, so that the server process is named.
    let sshd = sock(TcpState::Listen, "0.0.0.0:22", "0.0.0.0:0", 10);
    let queued = sock(TcpState::Established, "10.0.0.5:22", "192.0.2.10:52000", 0);
    let t2q = Dump::new(vec![sshd.clone(), queued.clone()]);
    assert_eq!(
        actions(Some(&t2), &t2q),
        Vec::<(&str, String, String)>::new()
    );
    let accepted = InetSocket {
        inode: 14,
        ..queued
    };
    let t2a = Dump::new(vec![sshd, accepted]);
    assert_eq!(
        actions(Some(&t2q), &t2a),
        vec![(
            "InboundConnectionAccepted",
            "10.0.0.5:22".into(),
            "192.0.2.10:52000".into()
        )]
    );

    // IPv4-mapped IPv6 addresses are reported as IPv4.
    let mapped = sock(
        TcpState::Established,
        "[::ffff:10.0.0.5]:40002",
        "[::ffff:203.0.113.1]:80",
        13,
    );
    let t3 = Dump::new(vec![mapped]);
    assert_eq!(
        actions(Some(&t2), &t3),
        vec![(
            "ConnectionSuccess",
            "10.0.0.5:40002".into(),
            "203.0.113.1:80".into()
        )]
    );
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
        socket: sock(state, "10.0.0.5:40000", remote, 1),
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
            change(
                "InboundConnectionAccepted",
                TcpState::TimeWait,
                "192.0.2.9:1",
            ),
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
