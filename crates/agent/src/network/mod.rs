//! The network sensor: TCP and UDP connections and listeners → `DeviceNetworkEvents`.
//!
//! Two kernel sources, read by one thread each interval ([`diag`], sock_diag): the sockets the
//! kernel destroyed since the last round ([`diag::ClosedSockets`]), then a dump of the open
//! ones ([`diag::dump_open`]). A [`Tracker`] turns both into changes, each reported once:
//!
//! * a new listening socket (TCP, or UDP bound to a port) → `ListeningConnectionCreated`;
//! * a connection that got through the handshake (or a connected UDP socket), first seen open
//!   in a dump or first seen closed → `InboundConnectionAccepted` when its local port is one
//!   the host listens on, else `ConnectionSuccess`;
//! * a TCP connect that sent its SYN and was closed without connecting → `ConnectionFailed`;
//! * at start, the connections already open → `ConnectionFound`.
//!
//! Connections are keyed by their address pair. One seen open is named with its process; one
//! that opened and closed within an interval is only seen closed, without its process (no file
//! refers to a destroyed socket). An inbound connection still waiting in its listener's accept
//! queue is reported at the dump that finds it accepted, so that the server process behind it
//! is named. Not seen: a blocking connect that fails (the kernel forgets where it went), and
//! UDP datagrams sent with `sendto` from an unconnected socket (they leave no state). The
//! process behind a socket is found by its inode among `/proc/*/fd`, read only when a dump
//! brought something new. IPv4-mapped IPv6 addresses are reported as the IPv4 address, so that
//! IPv4 indicators match.
//!
//! Why not dump TIME_WAIT sockets instead of listening for closures: at 1,000 connections a
//! second the table holds a minute of them, 60,000 sockets to walk, copy and compare every
//! second; that was a third of the agent's CPU under load.

pub mod diag;

use crate::batcher::TableRow;
use crate::error::{Error, Result};
use crate::process::hashes::HashCache;
use crate::process::rows::{self, RowContext};
use crate::process::{procfs, users};
use crate::worker::{Worker, pause};
use diag::{ClosedSocket, ClosedSockets, Ending, InetSocket, Protocol, TcpState};
use rampart_proto::telemetry::Row;
use rustc_hash::{FxHashMap, FxHashSet};
use serde_json::{Value, json};
use std::collections::HashMap;
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
    /// Time between two rounds (closures read, open sockets dumped).
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

/// A connection's identity: its protocol and addresses (a listener has no remote end).
type Key = (Protocol, SocketAddr, SocketAddr);

fn key(s: &InetSocket) -> Key {
    (s.protocol, s.local, s.remote)
}

/// A port the host listens on: protocol, address (unspecified for all), port.
type Listening = (Protocol, IpAddr, u16);

/// What the sensor remembers between rounds, so that each connection is reported once.
#[derive(Default)]
pub struct Tracker {
    /// The listening sockets of the last dump.
    listeners: FxHashSet<Key>,
    /// The ports listened on in the last two dumps (a connection may outlive its listener).
    listening: FxHashSet<Listening>,
    /// Connections reported open (or found at start) → the last dump that had them. Their
    /// closure is not news. One no dump has had for [`Tracker::KEEP`] rounds is forgotten: its
    /// closure was read by then.
    open: FxHashMap<Key, u64>,
    dumps: u64,
}

impl Tracker {
    const KEEP: u64 = 2;

    /// The changes a dump of the open sockets shows. The first dump reports the connections
    /// it finds (`ConnectionFound`), not its listeners.
    pub fn dumped(&mut self, sockets: Vec<InetSocket>) -> Vec<Change> {
        let first = self.dumps == 0;
        self.dumps += 1;
        let round = self.dumps;
        let sockets: Vec<InetSocket> = sockets.into_iter().map(unmapped).collect();
        let listeners: FxHashSet<Key> = sockets
            .iter()
            .filter(|s| s.is_listener())
            .map(key)
            .collect();
        let mut listening: FxHashSet<Listening> = listeners.iter().map(port_of).collect();
        listening.extend(self.listeners.iter().map(port_of));
        let mut out = Vec::new();
        for s in sockets {
            let action = if s.is_listener() {
                if first || self.listeners.contains(&key(&s)) {
                    continue;
                }
                "ListeningConnectionCreated"
            } else if s.was_connected() && !s.awaits_accept() {
                // Reported once accepted, when its process can be named.
                if self.open.insert(key(&s), round).is_some() {
                    continue;
                }
                if first {
                    if s.state != TcpState::Established {
                        continue;
                    }
                    "ConnectionFound"
                } else if listens(&listening, s.protocol, s.local) {
                    "InboundConnectionAccepted"
                } else {
                    "ConnectionSuccess"
                }
            } else {
                continue;
            };
            out.push(Change { action, socket: s });
        }
        self.open.retain(|_, seen| *seen + Self::KEEP >= round);
        self.listeners = listeners;
        self.listening = listening;
        sort(&mut out);
        out
    }

    /// The changes the kernel's closures show: connections no dump had reported, and
    /// connects that failed.
    pub fn closed(&mut self, closed: Vec<ClosedSocket>) -> Vec<Change> {
        let mut out = Vec::new();
        for ClosedSocket { socket, ending } in closed {
            let socket = unmapped(socket);
            let action = match ending {
                Ending::Connected => {
                    if self.open.remove(&key(&socket)).is_some() {
                        continue;
                    }
                    if listens(&self.listening, socket.protocol, socket.local) {
                        "InboundConnectionAccepted"
                    } else {
                        "ConnectionSuccess"
                    }
                }
                Ending::Failed => "ConnectionFailed",
                Ending::Unconnected => continue,
            };
            out.push(Change { action, socket });
        }
        sort(&mut out);
        out
    }
}

fn port_of((protocol, local, _): &Key) -> Listening {
    (*protocol, local.ip(), local.port())
}

/// Stable order: listeners first (a connection to them follows), then by address.
fn sort(changes: &mut [Change]) {
    changes.sort_by_key(|c| {
        (
            c.action != "ListeningConnectionCreated",
            c.socket.local,
            c.socket.remote,
        )
    });
}

/// A socket with IPv4-mapped IPv6 addresses as the IPv4 addresses they stand for.
fn unmapped(mut s: InetSocket) -> InetSocket {
    s.local = unmapped_addr(s.local);
    s.remote = unmapped_addr(s.remote);
    s
}

fn unmapped_addr(a: SocketAddr) -> SocketAddr {
    match a.ip() {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(IpAddr::V4(v4), a.port()),
            None => a,
        },
        IpAddr::V4(_) => a,
    }
}

/// Whether a listener on `listening` takes `protocol` connections to `local`.
fn listens(listening: &FxHashSet<Listening>, protocol: Protocol, local: SocketAddr) -> bool {
    let port = local.port();
    listening.contains(&(protocol, local.ip(), port))
        || listening
            .iter()
            .any(|(pr, ip, p)| *pr == protocol && *p == port && ip.is_unspecified())
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
        // No file refers to the socket any more.
        None if s.inode == 0 => {
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
    /// Starts the sensor; rows go to `out` as `("DeviceNetworkEvents", row)`. The connections
    /// open when it returns are the ones reported as found. Fails when the socket table cannot
    /// be read or the kernel's closures cannot be listened to.
    pub fn start(
        config: NetworkConfig,
        cache: Arc<HashCache>,
        out: mpsc::Sender<TableRow>,
    ) -> Result<NetworkSensor> {
        // Listening first, so that nothing closes unseen after the first dump.
        let closures = ClosedSockets::open().map_err(|e| {
            Error::Config(format!(
                "listening to the kernel's socket closures (sock_diag destroy groups): {e}"
            ))
        })?;
        let time = OffsetDateTime::now_utc();
        let sockets = diag::dump_open()
            .map_err(|e| Error::Config(format!("reading the socket table (sock_diag): {e}")))?;
        let mut tracker = Tracker::default();
        let found = tracker.dumped(sockets);
        let rounds = Rounds {
            closures,
            tracker,
            closed: Vec::new(),
            overruns: 0,
        };
        let worker = Worker::spawn("rampart-net", move |stop| {
            watch(config, cache, rounds, (time, found), out, stop)
        })?;
        Ok(NetworkSensor { worker })
    }

    pub fn stop(self) {
        self.worker.stop();
    }
}

/// What one round of the sensor reads and remembers.
struct Rounds {
    closures: ClosedSockets,
    tracker: Tracker,
    /// Reused between rounds.
    closed: Vec<ClosedSocket>,
    /// Overruns already warned about.
    overruns: u64,
}

impl Rounds {
    /// The closures since the last round, then a dump: a connection a dump reports has its
    /// closure read after.
    fn next(&mut self) -> Vec<Change> {
        let mut found = match self.closures.drain(&mut self.closed) {
            Ok(()) => self.tracker.closed(std::mem::take(&mut self.closed)),
            Err(e) => {
                tracing::warn!("reading the kernel's socket closures: {e}");
                Vec::new()
            }
        };
        if self.closures.overruns > self.overruns {
            self.overruns = self.closures.overruns;
            tracing::warn!(
                "connections went unreported: the kernel's socket closures overran the receive \
                 buffer ({} times since start)",
                self.overruns
            );
        }
        match diag::dump_open() {
            Ok(sockets) => found.extend(self.tracker.dumped(sockets)),
            Err(e) => tracing::warn!("reading the socket table: {e}"),
        }
        found
    }
}

fn watch(
    config: NetworkConfig,
    cache: Arc<HashCache>,
    mut rounds: Rounds,
    first: (OffsetDateTime, Vec<Change>),
    out: mpsc::Sender<TableRow>,
    stop: &AtomicBool,
) {
    let mut users = users::Users::new(&config.passwd);
    let (mut time, mut found) = first;
    loop {
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
        pause(stop, config.interval);
        if stop.load(Ordering::Relaxed) {
            return;
        }
        time = OffsetDateTime::now_utc();
        found = rounds.next();
    }
}
