//! The network sensor: TCP and UDP connections and listeners → `DeviceNetworkEvents`.
//!
//! Each interval the sensor dumps the kernel's TCP and UDP sockets ([`diag`], sock_diag) and
//! compares the dump with the one before ([`changes`]):
//!
//! * a new listening socket (TCP, or UDP bound to a port) → `ListeningConnectionCreated`;
//! * a new connection that got through the handshake (or a connected UDP socket) →
//!   `InboundConnectionAccepted` when its local port is one the host listens on, else
//!   `ConnectionSuccess`;
//! * an outbound TCP attempt seen in `SYN_SENT` that is gone without ever connecting →
//!   `ConnectionFailed`;
//! * at start, the connections already open → `ConnectionFound`.
//!
//! Connections are keyed by their address pair, so one that goes from `ESTABLISHED` to
//! `TIME_WAIT` between dumps is reported once, and one opened and closed within an interval is
//! still seen in `TIME_WAIT` (without its process: no file refers to such a socket any more).
//! An inbound connection still waiting in its listener's accept queue is reported at the dump
//! that finds it accepted, so that the server process behind it is named.
//! Anything that opens and fails between two dumps is not seen, nor UDP datagrams sent with
//! `sendto` from an unconnected socket (they leave no state). The process behind a socket is
//! found by its inode among `/proc/*/fd`, read only when a dump brought something new.
//! IPv4-mapped IPv6 addresses are reported as the IPv4 address, so that IPv4 indicators match.

pub mod diag;

use crate::batcher::TableRow;
use crate::error::{Error, Result};
use crate::process::hashes::HashCache;
use crate::process::rows::{self, RowContext};
use crate::process::{procfs, users};
use crate::worker::{Worker, pause};
use diag::{InetSocket, Protocol, TcpState};
use rampart_proto::telemetry::Row;
use rustc_hash::FxHashMap;
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use time::OffsetDateTime;
use tokio::sync::mpsc;

#[derive(Clone, Debug)]
pub struct NetworkConfig {
    pub rows: RowContext,
    /// Time between two dumps of the socket table.
    pub interval: Duration,
    pub passwd: PathBuf,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        NetworkConfig {
            rows: RowContext::default(),
            interval: Duration::from_secs(1),
            passwd: PathBuf::from("/etc/passwd"),
        }
    }
}

/// What the sensor reports, with the socket it is about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    pub action: &'static str,
    pub socket: InetSocket,
}

/// A connection's identity across dumps: its protocol and addresses (a listener has no remote
/// end).
type Key = (Protocol, SocketAddr, SocketAddr);

/// One dump, by key.
#[derive(Default)]
pub struct Dump {
    sockets: FxHashMap<Key, InetSocket>,
}

impl Dump {
    pub fn new(sockets: Vec<InetSocket>) -> Dump {
        let mut map = FxHashMap::with_capacity_and_hasher(sockets.len(), Default::default());
        for mut s in sockets {
            s.local = unmapped(s.local);
            s.remote = unmapped(s.remote);
            map.insert((s.protocol, s.local, s.remote), s);
        }
        Dump { sockets: map }
    }

    fn listening_ports(&self) -> HashSet<(Protocol, IpAddr, u16)> {
        self.sockets
            .values()
            .filter(|s| s.is_listener())
            .map(|s| (s.protocol, s.local.ip(), s.local.port()))
            .collect()
    }
}

/// An IPv4-mapped IPv6 address as the IPv4 address it stands for.
fn unmapped(a: SocketAddr) -> SocketAddr {
    match a.ip() {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(IpAddr::V4(v4), a.port()),
            None => a,
        },
        IpAddr::V4(_) => a,
    }
}

/// Whether a listener on `listening` takes `protocol` connections to `local`.
fn listens(
    listening: &HashSet<(Protocol, IpAddr, u16)>,
    protocol: Protocol,
    local: SocketAddr,
) -> bool {
    let port = local.port();
    listening.contains(&(protocol, local.ip(), port))
        || listening
            .iter()
            .any(|(pr, ip, p)| *pr == protocol && *p == port && ip.is_unspecified())
}

/// What changed from `before` (`None` at start) to `now`.
pub fn changes(before: Option<&Dump>, now: &Dump) -> Vec<Change> {
    let mut listening = now.listening_ports();
    let mut out = Vec::new();
    let Some(before) = before else {
        out.extend(
            now.sockets
                .values()
                .filter(|s| s.state == TcpState::Established && !s.is_listener())
                .map(|s| Change {
                    action: "ConnectionFound",
                    socket: s.clone(),
                }),
        );
        return out;
    };
    listening.extend(before.listening_ports());
    for (key, s) in &now.sockets {
        let old = before.sockets.get(key);
        let action = if s.is_listener() {
            if old.is_some() {
                continue;
            }
            "ListeningConnectionCreated"
        } else if s.was_connected()
            // Reported once accepted, when its process can be named (or once it is gone).
            && !s.awaits_accept()
            && !old.is_some_and(|o| o.was_connected() && !o.awaits_accept())
        {
            if listens(&listening, s.protocol, s.local) {
                "InboundConnectionAccepted"
            } else {
                "ConnectionSuccess"
            }
        } else {
            continue;
        };
        out.push(Change {
            action,
            socket: s.clone(),
        });
    }
    for (key, s) in &before.sockets {
        if s.protocol == Protocol::Tcp
            && s.state == TcpState::SynSent
            && !now.sockets.contains_key(key)
        {
            out.push(Change {
                action: "ConnectionFailed",
                socket: s.clone(),
            });
        }
    }
    // Stable order: listeners first (a connection to them follows), then by address.
    out.sort_by_key(|c| {
        (
            c.action != "ListeningConnectionCreated",
            c.socket.local,
            c.socket.remote,
        )
    });
    out
}

/// MDE's class of an IP address (`LocalIPType`, `RemoteIPType`).
pub fn ip_type(ip: IpAddr) -> &'static str {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            if v4.is_loopback() {
                "Loopback"
            } else if v4.is_private() {
                "Private"
            } else if v4.is_link_local() {
                "LinkLocal"
            } else if v4.is_broadcast() {
                "Broadcast"
            } else if v4.is_multicast() {
                "Multicast"
            } else if v4.is_unspecified()
                || v4.is_documentation()
                || o[0] == 0
                || o[0] >= 240
                || (o[0] == 100 && (o[1] & 0xc0) == 64)
            {
                "Reserved"
            } else {
                "Public"
            }
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            if v6.is_loopback() {
                "Loopback"
            } else if v6.to_ipv4_mapped().is_some() {
                "FourToSixMapping"
            } else if s[0] == 0x2001 && s[1] == 0 {
                "Teredo"
            } else if (s[0] & 0xfe00) == 0xfc00 {
                "Private"
            } else if (s[0] & 0xffc0) == 0xfe80 {
                "LinkLocal"
            } else if v6.is_multicast() {
                "Multicast"
            } else if v6.is_unspecified() || (s[0] == 0x2001 && s[1] == 0x0db8) {
                "Reserved"
            } else {
                "Public"
            }
        }
    }
}

/// Socket inode → pid of a process holding it, from `/proc/*/fd`.
pub fn socket_owners() -> HashMap<u64, u32> {
    let mut owners = HashMap::new();
    let Ok(pids) = procfs::list_pids() else {
        return owners;
    };
    for pid in pids {
        let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            let Ok(target) = std::fs::read_link(fd.path()) else {
                continue;
            };
            let Some(inode) = target
                .to_str()
                .and_then(|t| t.strip_prefix("socket:["))
                .and_then(|t| t.strip_suffix(']'))
                .and_then(|t| t.parse::<u64>().ok())
            else {
                continue;
            };
            owners.entry(inode).or_insert(pid);
        }
    }
    owners
}

/// The row of one change.
pub fn row(
    ctx: &RowContext,
    time: OffsetDateTime,
    change: &Change,
    process: Option<&rows::ProcInfo>,
) -> Row {
    let s = &change.socket;
    let mut r = ctx.event(time, change.action);
    r.insert("Protocol".into(), json!(s.protocol.as_str()));
    r.insert("LocalIP".into(), json!(s.local.ip().to_string()));
    r.insert("LocalPort".into(), json!(s.local.port()));
    r.insert("LocalIPType".into(), json!(ip_type(s.local.ip())));
    if !s.is_listener() {
        r.insert("RemoteIP".into(), json!(s.remote.ip().to_string()));
        r.insert("RemotePort".into(), json!(s.remote.port()));
        r.insert("RemoteIPType".into(), json!(ip_type(s.remote.ip())));
    }
    match process {
        Some(p) => rows::initiating_process(&mut r, ctx, p),
        None if s.protocol == Protocol::Tcp && s.state == TcpState::TimeWait => {
            r.insert(
                "AdditionalFields".into(),
                Value::String(
                    json!({ "Partial": true, "Reason": "the connection had closed when it was seen; its process is unknown" })
                        .to_string(),
                ),
            );
        }
        None => {}
    }
    r
}

/// A running network sensor; stopped (thread joined) by [`NetworkSensor::stop`] or on drop.
pub struct NetworkSensor {
    worker: Worker,
}

impl NetworkSensor {
    /// Starts the sensor; rows go to `out` as `("DeviceNetworkEvents", row)`. Fails when the
    /// socket table cannot be read at all.
    pub fn start(
        config: NetworkConfig,
        cache: Arc<HashCache>,
        out: mpsc::Sender<TableRow>,
    ) -> Result<NetworkSensor> {
        diag::dump()
            .map_err(|e| Error::Config(format!("reading the socket table (sock_diag): {e}")))?;
        let worker = Worker::spawn("rampart-net", move |stop| watch(config, cache, out, stop))?;
        Ok(NetworkSensor { worker })
    }

    pub fn stop(self) {
        self.worker.stop();
    }
}

fn watch(
    config: NetworkConfig,
    cache: Arc<HashCache>,
    out: mpsc::Sender<TableRow>,
    stop: &AtomicBool,
) {
    let mut users = users::Users::new(&config.passwd);
    let mut before: Option<Dump> = None;
    while !stop.load(Ordering::Relaxed) {
        let time = OffsetDateTime::now_utc();
        match diag::dump() {
            Ok(sockets) => {
                let now = Dump::new(sockets);
                let found = changes(before.as_ref(), &now);
                let owners = if found.iter().any(|c| c.socket.inode != 0) {
                    socket_owners()
                } else {
                    HashMap::new()
                };
                let mut processes: HashMap<u32, Option<rows::ProcInfo>> = HashMap::new();
                for change in &found {
                    let process = owners.get(&change.socket.inode).and_then(|&pid| {
                        processes
                            .entry(pid)
                            .or_insert_with(|| {
                                let snap = procfs::snapshot(pid);
                                (!snap.is_empty())
                                    .then(|| crate::process::info_of(&snap, &cache, &mut users))
                            })
                            .clone()
                    });
                    let row = row(&config.rows, time, change, process.as_ref());
                    if out
                        .blocking_send((rampart_core::schema::DEVICE_NETWORK_EVENTS.name, row))
                        .is_err()
                    {
                        return;
                    }
                }
                before = Some(now);
            }
            Err(e) => tracing::warn!("reading the socket table: {e}"),
        }
        pause(stop, config.interval);
    }
}
