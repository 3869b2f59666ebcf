//! Reports the traffic the address block drops: the block table logs the first packets of each
//! blocked flow to an NFLOG group (rate-limited in the kernel), and this listener turns them
//! into DeviceEvents rows — `FirewallOutboundConnectionBlocked` or
//! `FirewallInboundConnectionBlocked`, with the local and remote address and port, the protocol
//! and the indicator that blocked the address. The same flow is reported once per
//! [`REPORT_WINDOW`]. Packets are read from `nfnetlink_log` with bounds-checked parsing.

use crate::batcher::TableRow;
use crate::bytes::{u16_at, u32_at};
use crate::commands::isolation::AllowedNet;
use crate::error::{Result, io_err};
use crate::netlink::check;
use crate::process::rows::RowContext;
use crate::worker::Worker;
use serde_json::json;
use std::collections::HashMap;
use std::net::IpAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use time::OffsetDateTime;
use tokio::sync::mpsc;

/// The NFLOG group the block table logs to.
pub const NFLOG_GROUP: u16 = 7231;
/// Log prefixes of the two directions.
pub const PREFIX_IN: &str = "rampart-block-in";
pub const PREFIX_OUT: &str = "rampart-block-out";
/// One row per flow (direction, addresses, ports) in this window.
pub const REPORT_WINDOW: Duration = Duration::from_secs(10);

const NFNL_SUBSYS_ULOG: u16 = 4;
const NFULNL_MSG_PACKET: u16 = 0;
const NFULNL_MSG_CONFIG: u16 = 1;
const NFULA_CFG_CMD: u16 = 1;
const NFULA_CFG_MODE: u16 = 2;
const NFULNL_CFG_CMD_BIND: u8 = 1;
const NFULNL_COPY_PACKET: u8 = 2;
const NFULA_PAYLOAD: u16 = 9;
const NFULA_PREFIX: u16 = 10;
const NLMSG_ERROR: u16 = 2;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_ACK: u16 = 4;
const NLMSG_HDRLEN: usize = 16;

/// Which indicator blocks which network: the block table's contents, kept current by
/// [`crate::netblock::AddressBlock`].
pub type BlockedNets = Arc<RwLock<Vec<(AllowedNet, String, String)>>>;

/// A running listener.
pub struct BlockLog {
    worker: Worker,
}

impl BlockLog {
    /// Binds the NFLOG group and starts reporting.
    pub fn start(
        context: RowContext,
        nets: BlockedNets,
        out: mpsc::Sender<TableRow>,
    ) -> Result<BlockLog> {
        let fd = bind(NFLOG_GROUP).map_err(io_err("binding the NFLOG group of the block table"))?;
        let worker = Worker::spawn("rampart-blocklog", move |stop| {
            listen(fd, &context, &nets, &out, stop)
        })?;
        Ok(BlockLog { worker })
    }

    pub fn stop(self) {
        self.worker.stop();
    }
}

/// A config message for `group` carrying one attribute.
fn config(group: u16, attr_type: u16, payload: &[u8], seq: u32) -> Vec<u8> {
    let attr_len = 4 + payload.len();
    let padded = (attr_len + 3) & !3;
    let len = NLMSG_HDRLEN + 4 + padded;
    let mut m = Vec::with_capacity(len);
    m.extend_from_slice(&(len as u32).to_ne_bytes());
    m.extend_from_slice(&((NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_CONFIG).to_ne_bytes());
    m.extend_from_slice(&(NLM_F_REQUEST | NLM_F_ACK).to_ne_bytes());
    m.extend_from_slice(&seq.to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes());
    m.push(libc::AF_UNSPEC as u8); // nfgenmsg: family, version, res_id (big endian)
    m.push(0);
    m.extend_from_slice(&group.to_be_bytes());
    m.extend_from_slice(&(attr_len as u16).to_ne_bytes());
    m.extend_from_slice(&attr_type.to_ne_bytes());
    m.extend_from_slice(payload);
    m.resize(len, 0);
    m
}

/// A netlink socket bound to the NFLOG `group`, copying the first 128 bytes of each packet.
fn bind(group: u16) -> std::io::Result<OwnedFd> {
    // SAFETY: plain socket(2) call with constant arguments; the result is checked and owned by
    // `OwnedFd` at once, which closes it exactly once.
    let raw = check(unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            libc::NETLINK_NETFILTER,
        )
    })?;
    // SAFETY: `raw` is a fresh descriptor nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    let mut mode = Vec::from(128u32.to_be_bytes());
    mode.extend_from_slice(&[NFULNL_COPY_PACKET, 0]);
    for (i, msg) in [
        config(group, NFULA_CFG_CMD, &[NFULNL_CFG_CMD_BIND], 1),
        config(group, NFULA_CFG_MODE, &mode, 2),
    ]
    .iter()
    .enumerate()
    {
        // SAFETY: the pointer and length describe `msg`, alive for the call.
        let sent = unsafe { libc::send(fd.as_raw_fd(), msg.as_ptr().cast(), msg.len(), 0) };
        if sent < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let mut buf = [0u8; 512];
        // SAFETY: the pointer and length describe `buf`, which outlives the call.
        let n = unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let reply = &buf[..usize::try_from(n).unwrap_or(0)];
        if u16_at(reply, 4) == Some(NLMSG_ERROR) {
            let code = i32::from_ne_bytes(
                reply
                    .get(NLMSG_HDRLEN..NLMSG_HDRLEN + 4)
                    .and_then(|b| b.try_into().ok())
                    .unwrap_or([0; 4]),
            );
            if code != 0 {
                let e = std::io::Error::from_raw_os_error(-code);
                return Err(std::io::Error::new(
                    e.kind(),
                    format!("NFLOG config step {}: {e}", i + 1),
                ));
            }
        }
    }
    Ok(fd)
}

/// One logged packet: its direction (the log prefix) and its IP payload.
#[derive(Debug, PartialEq, Eq)]
pub struct Logged<'a> {
    pub prefix: &'a str,
    pub packet: &'a [u8],
}

/// The logged packets of a buffer of netlink messages.
pub fn parse_messages(mut buf: &[u8]) -> Vec<Logged<'_>> {
    let mut out = Vec::new();
    while buf.len() >= NLMSG_HDRLEN {
        let Some(len) = u32_at(buf, 0).map(|l| l as usize) else {
            break;
        };
        if len < NLMSG_HDRLEN || len > buf.len() {
            break;
        }
        let msg = &buf[..len];
        buf = &buf[((len + 3) & !3).min(buf.len())..];
        if u16_at(msg, 4) != Some((NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_PACKET) {
            continue;
        }
        let (mut prefix, mut packet) = ("", None);
        let mut attrs = msg.get(NLMSG_HDRLEN + 4..).unwrap_or(&[]);
        while attrs.len() >= 4 {
            let (Some(alen), Some(atype)) = (u16_at(attrs, 0), u16_at(attrs, 2)) else {
                break;
            };
            let alen = alen as usize;
            if alen < 4 || alen > attrs.len() {
                break;
            }
            let value = &attrs[4..alen];
            match atype & 0x3fff {
                NFULA_PAYLOAD => packet = Some(value),
                NFULA_PREFIX => {
                    let end = value.iter().position(|&b| b == 0).unwrap_or(value.len());
                    prefix = std::str::from_utf8(&value[..end]).unwrap_or("");
                }
                _ => {}
            }
            attrs = &attrs[((alen + 3) & !3).min(attrs.len())..];
        }
        if let Some(packet) = packet {
            out.push(Logged { prefix, packet });
        }
    }
    out
}

/// What a packet says of its flow.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Flow {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub protocol: &'static str,
    pub src_port: Option<u16>,
    pub dst_port: Option<u16>,
}

/// Reads the addresses, protocol and ports of an IPv4 or IPv6 packet.
pub fn flow(p: &[u8]) -> Option<Flow> {
    let (src, dst, proto, l4) = match p.first()? >> 4 {
        4 => {
            let ihl = usize::from(p.first()? & 0x0f) * 4;
            let src: [u8; 4] = p.get(12..16)?.try_into().ok()?;
            let dst: [u8; 4] = p.get(16..20)?.try_into().ok()?;
            (
                IpAddr::from(src),
                IpAddr::from(dst),
                *p.get(9)?,
                p.get(ihl..)?,
            )
        }
        6 => {
            let src: [u8; 16] = p.get(8..24)?.try_into().ok()?;
            let dst: [u8; 16] = p.get(24..40)?.try_into().ok()?;
            (
                IpAddr::from(src),
                IpAddr::from(dst),
                *p.get(6)?,
                p.get(40..)?,
            )
        }
        _ => return None,
    };
    let protocol = match proto {
        6 => "Tcp",
        17 => "Udp",
        1 => "Icmp",
        58 => "Icmpv6",
        _ => "Other",
    };
    let ports = matches!(proto, 6 | 17)
        .then(|| {
            Some((
                u16::from_be_bytes(l4.get(0..2)?.try_into().ok()?),
                u16::from_be_bytes(l4.get(2..4)?.try_into().ok()?),
            ))
        })
        .flatten();
    Some(Flow {
        src,
        dst,
        protocol,
        src_port: ports.map(|p| p.0),
        dst_port: ports.map(|p| p.1),
    })
}

fn listen(
    fd: OwnedFd,
    context: &RowContext,
    nets: &BlockedNets,
    out: &mpsc::Sender<TableRow>,
    stop: &AtomicBool,
) {
    let mut buf = vec![0u8; 64 * 1024];
    let mut reported: HashMap<(bool, Flow), Instant> = HashMap::new();
    while !stop.load(Ordering::Relaxed) {
        let mut pfd = libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: `pfd` is one live pollfd and its count is 1.
        if unsafe { libc::poll(&raw mut pfd, 1, 200) } <= 0 {
            continue;
        }
        // SAFETY: the pointer and length describe `buf`, which outlives the call.
        let n = unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        let Ok(n) = usize::try_from(n) else { continue };
        let now = Instant::now();
        reported.retain(|_, at| now.duration_since(*at) < REPORT_WINDOW);
        for logged in parse_messages(&buf[..n.min(buf.len())]) {
            let outbound = logged.prefix == PREFIX_OUT;
            if !outbound && logged.prefix != PREFIX_IN {
                continue;
            }
            let Some(f) = flow(logged.packet) else {
                continue;
            };
            if reported.insert((outbound, f.clone()), now).is_some() {
                continue;
            }
            let row = row(context, nets, outbound, &f);
            if out
                .blocking_send((rampart_core::schema::DEVICE_EVENTS.name, row))
                .is_err()
            {
                return;
            }
        }
    }
}

/// The row of a blocked flow.
fn row(
    context: &RowContext,
    nets: &BlockedNets,
    outbound: bool,
    f: &Flow,
) -> rampart_proto::telemetry::Row {
    let (local, local_port, remote, remote_port) = if outbound {
        (f.src, f.src_port, f.dst, f.dst_port)
    } else {
        (f.dst, f.dst_port, f.src, f.src_port)
    };
    let action = if outbound {
        "FirewallOutboundConnectionBlocked"
    } else {
        "FirewallInboundConnectionBlocked"
    };
    let mut r = context.event(OffsetDateTime::now_utc(), action);
    r.insert("LocalIP".into(), json!(local.to_string()));
    r.insert("RemoteIP".into(), json!(remote.to_string()));
    if let Some(p) = local_port {
        r.insert("LocalPort".into(), json!(p));
    }
    if let Some(p) = remote_port {
        r.insert("RemotePort".into(), json!(p));
    }
    let indicator = nets
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .filter(|(net, _, _)| net.contains(remote))
        .max_by_key(|(net, _, _)| net.prefix)
        .map(|(_, id, title)| (id.clone(), title.clone()));
    let mut fields = json!({ "Reason": "Indicator", "Protocol": f.protocol });
    if let Some((id, title)) = indicator {
        fields["IndicatorId"] = json!(id);
        fields["IndicatorTitle"] = json!(title);
    }
    r.insert("AdditionalFields".into(), json!(fields.to_string()));
    r
}
