//! DeviceNetworkInfo: one row per network adapter — its addresses, MAC, state, type, DNS servers
//! and default gateways. The server keeps each device's address history from these rows, which
//! is what `findbyip` and the correlation of external alerts by IP stand on; so the agent sends
//! them at start, whenever an adapter changes, and hourly.
//!
//! Addresses come from getifaddrs(3), adapter details from `/sys/class/net`, gateways from
//! `/proc/net/route` and `/proc/net/ipv6_route`, DNS servers from `/etc/resolv.conf`. The
//! loopback adapter is left out: its addresses say nothing about the device.

use crate::commands::isolation::resolvers;
use crate::network::ip_type;
use crate::process::rows::RowContext;
use rampart_core::timefmt::format as rfc3339;
use rampart_proto::telemetry::Row;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::ffi::CStr;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use time::OffsetDateTime;

/// One adapter as reported.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Adapter {
    pub name: String,
    /// Dash-separated upper-case hex, as MDE writes it.
    pub mac: Option<String>,
    /// .NET `NetworkInterfaceType` name.
    pub kind: &'static str,
    /// .NET `OperationalStatus` name.
    pub status: &'static str,
    /// (address, prefix length).
    pub addresses: Vec<(IpAddr, u8)>,
    pub gateways: Vec<IpAddr>,
}

/// Every adapter but loopback, by name.
pub fn adapters() -> Vec<Adapter> {
    let mut by_name: BTreeMap<String, Adapter> = BTreeMap::new();
    for (name, addr, prefix) in interface_addresses() {
        by_name
            .entry(name.clone())
            .or_insert_with(|| Adapter {
                name,
                ..Adapter::default()
            })
            .addresses
            .push((addr, prefix));
    }
    // Adapters without an address are adapters too (a cable unplugged is worth knowing).
    if let Ok(dir) = std::fs::read_dir("/sys/class/net") {
        for e in dir.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            by_name.entry(name.clone()).or_insert_with(|| Adapter {
                name,
                ..Adapter::default()
            });
        }
    }
    let route = std::fs::read_to_string("/proc/net/route").unwrap_or_default();
    let route6 = std::fs::read_to_string("/proc/net/ipv6_route").unwrap_or_default();
    let gateways: Vec<(String, IpAddr)> = default_gateways_v4(&route)
        .into_iter()
        .chain(default_gateways_v6(&route6))
        .collect();
    by_name
        .into_values()
        .filter(|a| a.name != "lo")
        .map(|mut a| {
            let sys = format!("/sys/class/net/{}", a.name);
            let read = |f: &str| std::fs::read_to_string(format!("{sys}/{f}")).ok();
            a.mac = read("address")
                .map(|m| m.trim().replace(':', "-").to_ascii_uppercase())
                .filter(|m| !m.is_empty());
            let wireless = std::path::Path::new(&format!("{sys}/wireless")).exists();
            a.kind = adapter_type(read("type").as_deref().map(str::trim), wireless);
            a.status = status(read("operstate").as_deref().map(str::trim));
            a.addresses.sort();
            a.addresses.dedup();
            a.gateways = gateways
                .iter()
                .filter(|(dev, _)| *dev == a.name)
                .map(|(_, g)| *g)
                .collect();
            a
        })
        .collect()
}

/// .NET `NetworkInterfaceType` of an ARPHRD number (`/sys/class/net/*/type`).
fn adapter_type(arphrd: Option<&str>, wireless: bool) -> &'static str {
    if wireless {
        return "Wireless80211";
    }
    match arphrd {
        Some("1") => "Ethernet",
        Some("772") => "Loopback",
        Some("65534" | "768" | "769" | "776" | "778" | "823") => "Tunnel",
        Some("512") => "Ppp",
        _ => "Unknown",
    }
}

/// .NET `OperationalStatus` of a kernel `operstate`.
fn status(operstate: Option<&str>) -> &'static str {
    match operstate {
        Some("up") => "Up",
        Some("down") => "Down",
        Some("dormant") => "Dormant",
        Some("lowerlayerdown") => "LowerLayerDown",
        Some("notpresent") => "NotPresent",
        Some("testing") => "Testing",
        _ => "Unknown",
    }
}

/// Default IPv4 gateways per device, from `/proc/net/route`.
pub fn default_gateways_v4(route: &str) -> Vec<(String, IpAddr)> {
    const RTF_GATEWAY: u32 = 0x2;
    route
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let (dev, dest, gw, flags) = (f.first()?, f.get(1)?, f.get(2)?, f.get(3)?);
            let flags = u32::from_str_radix(flags, 16).ok()?;
            if *dest != "00000000" || flags & RTF_GATEWAY == 0 {
                return None;
            }
            // The kernel prints the address's bytes as a number in host order.
            let n = u32::from_str_radix(gw, 16).ok()?;
            Some((
                (*dev).to_owned(),
                IpAddr::V4(Ipv4Addr::from(n.to_ne_bytes())),
            ))
        })
        .collect()
}

/// Default IPv6 gateways per device, from `/proc/net/ipv6_route`.
pub fn default_gateways_v6(route: &str) -> Vec<(String, IpAddr)> {
    let hex16 = |s: &str| -> Option<Ipv6Addr> {
        let mut o = [0u8; 16];
        for (i, b) in o.iter_mut().enumerate() {
            *b = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
        }
        Some(Ipv6Addr::from(o))
    };
    route
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.len() < 10 || f[1] != "00" {
                return None;
            }
            let dest = hex16(f[0])?;
            let hop = hex16(f[4])?;
            (dest.is_unspecified() && !hop.is_unspecified())
                .then(|| (f[9].to_owned(), IpAddr::V6(hop)))
        })
        .collect()
}

fn prefix_len(mask: &[u8]) -> u8 {
    mask.iter().map(|b| b.count_ones() as u8).sum()
}

/// (interface, address, prefix length) of every IPv4 and IPv6 address, from getifaddrs(3).
fn interface_addresses() -> Vec<(String, IpAddr, u8)> {
    let mut out = Vec::new();
    let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs writes a pointer to a list it allocated into `list`, which is freed
    // below with freeifaddrs exactly once; on failure nothing is allocated.
    if unsafe { libc::getifaddrs(&raw mut list) } != 0 {
        return out;
    }
    let mut cur = list;
    while !cur.is_null() {
        // SAFETY: `cur` is a non-null node of the list getifaddrs returned, alive until
        // freeifaddrs; its fields are read, never kept beyond this loop.
        let ifa = unsafe { &*cur };
        cur = ifa.ifa_next;
        if ifa.ifa_addr.is_null() || ifa.ifa_name.is_null() {
            continue;
        }
        // SAFETY: ifa_name is a NUL-terminated string of the list (checked non-null).
        let name = unsafe { CStr::from_ptr(ifa.ifa_name) }
            .to_string_lossy()
            .into_owned();
        // SAFETY: ifa_addr is non-null (checked) and points at a sockaddr whose family says
        // which larger struct it is; each arm reads it as that struct only.
        let family = i32::from(unsafe { (*ifa.ifa_addr).sa_family });
        let entry = match family {
            libc::AF_INET => {
                // SAFETY: the family is AF_INET, so the sockaddr is a sockaddr_in.
                let a = unsafe { &*(ifa.ifa_addr as *const libc::sockaddr_in) };
                let ip = Ipv4Addr::from(a.sin_addr.s_addr.to_ne_bytes());
                let prefix = if ifa.ifa_netmask.is_null() {
                    32
                } else {
                    // SAFETY: the netmask of an AF_INET address is a sockaddr_in too.
                    let m = unsafe { &*(ifa.ifa_netmask as *const libc::sockaddr_in) };
                    prefix_len(&m.sin_addr.s_addr.to_ne_bytes())
                };
                (IpAddr::V4(ip), prefix)
            }
            libc::AF_INET6 => {
                // SAFETY: the family is AF_INET6, so the sockaddr is a sockaddr_in6.
                let a = unsafe { &*(ifa.ifa_addr as *const libc::sockaddr_in6) };
                let ip = Ipv6Addr::from(a.sin6_addr.s6_addr);
                let prefix = if ifa.ifa_netmask.is_null() {
                    128
                } else {
                    // SAFETY: the netmask of an AF_INET6 address is a sockaddr_in6 too.
                    let m = unsafe { &*(ifa.ifa_netmask as *const libc::sockaddr_in6) };
                    prefix_len(&m.sin6_addr.s6_addr)
                };
                (IpAddr::V6(ip), prefix)
            }
            _ => continue,
        };
        out.push((name, entry.0, entry.1));
    }
    // SAFETY: `list` came from a successful getifaddrs and is freed once; no reference into it
    // outlives this point.
    unsafe { libc::freeifaddrs(list) };
    out
}

/// The DeviceNetworkInfo rows of `adapters`.
pub fn rows(ctx: &RowContext, time: OffsetDateTime, adapters: &[Adapter]) -> Vec<Row> {
    let dns: Vec<String> =
        resolvers(&std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default())
            .iter()
            .map(ToString::to_string)
            .collect();
    adapters
        .iter()
        .map(|a| {
            let mut r = Row::new();
            r.insert("Timestamp".into(), Value::String(rfc3339(time)));
            if let Some(id) = &ctx.device_id {
                r.insert("DeviceId".into(), json!(id));
            }
            r.insert("DeviceName".into(), json!(ctx.device_name));
            r.insert("NetworkAdapterName".into(), json!(a.name));
            if let Some(mac) = &a.mac {
                r.insert("MacAddress".into(), json!(mac));
            }
            r.insert("NetworkAdapterType".into(), json!(a.kind));
            r.insert("NetworkAdapterStatus".into(), json!(a.status));
            // Which tunnel protocol a Linux tunnel speaks is not in /sys; say only "None".
            if a.kind != "Tunnel" {
                r.insert("TunnelType".into(), json!("None"));
            }
            let addresses: Vec<Value> = a
                .addresses
                .iter()
                .map(|(ip, prefix)| {
                    json!({ "IPAddress": ip.to_string(), "SubnetPrefix": prefix, "AddressType": ip_type(*ip) })
                })
                .collect();
            r.insert("IPAddresses".into(), Value::String(Value::Array(addresses).to_string()));
            r.insert("DnsAddresses".into(), Value::String(json!(dns).to_string()));
            let gateways: Vec<String> = a.gateways.iter().map(ToString::to_string).collect();
            r.insert("DefaultGateways".into(), Value::String(json!(gateways).to_string()));
            r
        })
        .collect()
}
