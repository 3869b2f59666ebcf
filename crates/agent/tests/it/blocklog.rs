//! Reading what NFLOG hands the block log: netlink messages cut at any byte, and IPv4/IPv6
//! packets of any protocol, parsed without ever reading out of bounds.

use rampart_agent::blocklog::{Flow, flow, parse_messages};
use std::net::IpAddr;

/// An NFLOG packet message: prefix and payload attributes, as the kernel lays them out.
fn message(prefix: &str, packet: &[u8]) -> Vec<u8> {
    let mut attrs = Vec::new();
    for (kind, value) in [
        (10u16, [prefix.as_bytes(), &[0]].concat()),
        (9u16, packet.to_vec()),
    ] {
        let len = 4 + value.len();
        attrs.extend_from_slice(&(len as u16).to_ne_bytes());
        attrs.extend_from_slice(&kind.to_ne_bytes());
        attrs.extend_from_slice(&value);
        attrs.resize((attrs.len() + 3) & !3, 0);
    }
    let len = 16 + 4 + attrs.len();
    let mut m = Vec::new();
    m.extend_from_slice(&(len as u32).to_ne_bytes());
    m.extend_from_slice(&0x0400u16.to_ne_bytes()); // NFNL_SUBSYS_ULOG << 8 | NFULNL_MSG_PACKET
    m.extend_from_slice(&0u16.to_ne_bytes());
    m.extend_from_slice(&[0; 8]);
    m.extend_from_slice(&[2, 0, 0x1c, 0x3f]); // nfgenmsg: AF_INET, v0, group 7231
    m.extend_from_slice(&attrs);
    m
}

fn ipv4_tcp(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16) -> Vec<u8> {
    let mut p = vec![0x45, 0, 0, 40, 0, 0, 0, 0, 64, 6, 0, 0];
    p.extend_from_slice(&src);
    p.extend_from_slice(&dst);
    p.extend_from_slice(&sport.to_be_bytes());
    p.extend_from_slice(&dport.to_be_bytes());
    p.resize(40, 0);
    p
}

fn ipv6_udp(src: [u8; 16], dst: [u8; 16], sport: u16, dport: u16) -> Vec<u8> {
    let mut p = vec![0x60, 0, 0, 0, 0, 8, 17, 64];
    p.extend_from_slice(&src);
    p.extend_from_slice(&dst);
    p.extend_from_slice(&sport.to_be_bytes());
    p.extend_from_slice(&dport.to_be_bytes());
    p.extend_from_slice(&[0, 8, 0, 0]);
    p
}

#[test]
fn packets_of_both_families_are_read_with_their_ports() {
    let v4 = ipv4_tcp([10, 0, 0, 2], [198, 51, 100, 7], 40000, 443);
    assert_eq!(
        flow(&v4),
        Some(Flow {
            src: IpAddr::from([10, 0, 0, 2]),
            dst: IpAddr::from([198, 51, 100, 7]),
            protocol: "Tcp",
            src_port: Some(40000),
            dst_port: Some(443),
        })
    );
    let mut a = [0u8; 16];
    a[0] = 0x20;
    a[1] = 0x01;
    a[15] = 1;
    let mut b = a;
    b[15] = 2;
    let f = flow(&ipv6_udp(a, b, 5353, 53)).unwrap();
    assert_eq!(
        (f.protocol, f.src_port, f.dst_port),
        ("Udp", Some(5353), Some(53))
    );
    assert_eq!(f.dst, IpAddr::from(b));
    // ICMP has no ports; a packet cut short or of another version is nothing.
    let mut icmp = ipv4_tcp([1, 1, 1, 1], [2, 2, 2, 2], 0, 0);
    icmp[9] = 1;
    assert_eq!(
        flow(&icmp).map(|f| (f.protocol, f.src_port)),
        Some(("Icmp", None))
    );
    for cut in 0..20 {
        assert_eq!(flow(&v4[..cut]), None, "cut at {cut}");
    }
    assert_eq!(flow(&[0x50; 40]), None);
}

#[test]
fn messages_are_read_in_turn_and_a_cut_one_ends_the_buffer() {
    let out = ipv4_tcp([10, 0, 0, 2], [192, 0, 2, 9], 1, 2);
    let inbound = ipv4_tcp([192, 0, 2, 9], [10, 0, 0, 2], 3, 4);
    let mut buf = message("rampart-block-out", &out);
    buf.extend(message("rampart-block-in", &inbound));
    let logged = parse_messages(&buf);
    assert_eq!(logged.len(), 2);
    assert_eq!(logged[0].prefix, "rampart-block-out");
    assert_eq!(logged[0].packet, &out[..]);
    assert_eq!(logged[1].prefix, "rampart-block-in");
    assert_eq!(logged[1].packet, &inbound[..]);
    // Every truncation yields whole messages only, and never panics.
    let first_len = message("rampart-block-out", &out).len();
    for cut in 0..buf.len() {
        let n = parse_messages(&buf[..cut]).len();
        assert!(n <= 2);
        if cut < first_len {
            assert_eq!(n, 0, "cut at {cut}");
        }
    }
    // A length field that lies is not followed.
    let mut lying = buf.clone();
    lying[0..4].copy_from_slice(&u32::MAX.to_ne_bytes());
    assert!(parse_messages(&lying).is_empty());
}
