//! Network isolation: an nftables table owned by Rampart (`inet rampart_isolation`) whose input
//! and output chains drop everything except loopback, the Rampart server (its addresses and
//! port), the DNS servers of `/etc/resolv.conf` when the server is named by a host name, DHCP
//! and IPv6 neighbour discovery (so the host keeps its address and its way to the server), and —
//! for `Selective` isolation — the configured allow-list.
//!
//! The state is explicit: `isolation.json` in the state directory says whether the host is to
//! be isolated, and it is written *before* the firewall is changed. On start the agent makes
//! the firewall match it ([`Isolation::restore`]), so a crash or a reboot can neither leave a
//! host isolated that should not be nor free one that should stay isolated. The table is
//! replaced in one nftables transaction (`nft -j -f -`: add, delete, add again, chains, rules),
//! so there is no moment with half a rule set.
//!
//! A `drop` in any base chain of a hook is final in nftables, whatever other tables accept, so
//! the table works beside the host's own firewall without touching it.

use crate::error::{Error, Result};
use crate::fsutil::{read_json_or_default, write_json};
use crate::nft::{self, Nft, field, match_eq, proto_of};
use rampart_proto::command::IsolationType;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

/// The table's name, in family `inet` (IPv4 and IPv6).
pub const TABLE: &str = "rampart_isolation";

/// A network the `Selective` isolation lets through: an address and a prefix length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AllowedNet {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl AllowedNet {
    /// Whether `ip` lies in this network.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let host = AllowedNet {
            addr: ip,
            prefix: if ip.is_ipv4() { 32 } else { 128 },
        };
        crate::netblock::within(&host, self)
    }
}

impl std::str::FromStr for AllowedNet {
    type Err = String;

    /// `10.0.0.0/8`, `2001:db8::/32`, or an address alone (a host).
    fn from_str(s: &str) -> std::result::Result<AllowedNet, String> {
        let s = s.trim();
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("'{s}' is not an IP address or CIDR network"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("'{s}': the prefix length must be 0 to {max}"))?,
            None => max,
        };
        Ok(AllowedNet { addr, prefix })
    }
}

/// The isolation state on disk.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IsolationState {
    /// `None`: not isolated.
    pub isolated: Option<IsolationType>,
}

impl IsolationState {
    pub fn path(state_dir: &Path) -> PathBuf {
        state_dir.join("isolation.json")
    }

    /// The state recorded in `state_dir` (not isolated when there is none).
    pub fn load(state_dir: &Path) -> Result<IsolationState> {
        read_json_or_default(&IsolationState::path(state_dir))
    }
}

/// The Rampart server as the firewall sees it: the host and port of its URL.
#[derive(Clone, Debug)]
pub struct ServerEndpoint {
    pub host: String,
    pub port: u16,
}

impl ServerEndpoint {
    pub fn of(server_url: &str) -> Result<ServerEndpoint> {
        let url = reqwest::Url::parse(server_url)
            .map_err(|e| Error::Config(format!("server URL '{server_url}': {e}")))?;
        let host = url
            .host_str()
            .ok_or_else(|| Error::Config(format!("server URL '{server_url}' has no host")))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = url
            .port_or_known_default()
            .ok_or_else(|| Error::Config(format!("server URL '{server_url}' has no port")))?;
        Ok(ServerEndpoint { host, port })
    }

    /// Whether the URL names the server by address (no DNS needed to reach it).
    pub fn is_address(&self) -> bool {
        self.host.parse::<IpAddr>().is_ok()
    }

    /// The server's addresses: the URL's, or what its host name resolves to now.
    pub async fn addrs(&self) -> Result<Vec<SocketAddr>> {
        if let Ok(ip) = self.host.parse::<IpAddr>() {
            return Ok(vec![SocketAddr::new(ip, self.port)]);
        }
        let mut addrs: Vec<SocketAddr> = tokio::net::lookup_host((self.host.as_str(), self.port))
            .await
            .map_err(|e| {
                Error::Network(format!(
                    "resolving the server {} to keep it reachable: {e}",
                    self.host
                ))
            })?
            .collect();
        addrs.sort();
        addrs.dedup();
        if addrs.is_empty() {
            return Err(Error::Network(format!(
                "the server {} resolves to no address; the firewall would cut the agent off",
                self.host
            )));
        }
        Ok(addrs)
    }
}

/// The isolation of this host.
#[derive(Clone, Debug)]
pub struct Isolation {
    state_dir: PathBuf,
    server: ServerEndpoint,
    allow: Vec<AllowedNet>,
    nft: Nft,
}

impl Isolation {
    /// The isolation of the agent whose state directory is `state_dir` and whose server is
    /// `server_url`; `allow` is the `Selective` allow-list.
    pub fn new(state_dir: &Path, server_url: &str, allow: Vec<AllowedNet>) -> Result<Isolation> {
        Ok(Isolation {
            state_dir: state_dir.to_owned(),
            server: ServerEndpoint::of(server_url)?,
            allow,
            nft: Nft::default(),
        })
    }

    fn save(&self, state: &IsolationState) -> Result<()> {
        write_json(&IsolationState::path(&self.state_dir), state)
    }

    /// Isolates the host: records it, then installs the table.
    pub async fn isolate(&self, kind: IsolationType) -> Result<String> {
        self.save(&IsolationState {
            isolated: Some(kind),
        })?;
        self.apply(kind).await
    }

    /// Ends isolation: records it, then removes the table.
    pub async fn unisolate(&self) -> Result<String> {
        self.save(&IsolationState::default())?;
        self.remove().await?;
        Ok("isolation removed".into())
    }

    /// Makes the firewall match the recorded state (at start). Returns the state.
    pub async fn restore(&self) -> Result<Option<IsolationType>> {
        let state = IsolationState::load(&self.state_dir)?;
        match state.isolated {
            Some(kind) => {
                self.apply(kind).await?;
            }
            None => self.remove().await?,
        }
        Ok(state.isolated)
    }

    async fn apply(&self, kind: IsolationType) -> Result<String> {
        let servers = self.server.addrs().await?;
        let dns = if self.server.is_address() {
            Vec::new()
        } else {
            resolvers(&std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default())
        };
        let allow: &[AllowedNet] = match kind {
            IsolationType::Full => &[],
            IsolationType::Selective => &self.allow,
        };
        let ruleset = ruleset(&servers, &dns, allow);
        self.nft.apply(&ruleset).await?;
        let list = |v: &[String]| v.join(", ");
        Ok(format!(
            "{} isolation applied; open: loopback, server {}{}{}",
            kind.as_str(),
            list(&servers.iter().map(ToString::to_string).collect::<Vec<_>>()),
            if dns.is_empty() {
                String::new()
            } else {
                format!(
                    ", DNS {}",
                    list(&dns.iter().map(ToString::to_string).collect::<Vec<_>>())
                )
            },
            if allow.is_empty() {
                String::new()
            } else {
                format!(
                    ", allowed {}",
                    list(
                        &allow
                            .iter()
                            .map(|n| format!("{}/{}", n.addr, n.prefix))
                            .collect::<Vec<_>>()
                    )
                )
            }
        ))
    }

    async fn remove(&self) -> Result<()> {
        self.nft.delete_table(TABLE).await
    }
}

/// The `nameserver` addresses of a resolv.conf.
pub fn resolvers(resolv_conf: &str) -> Vec<IpAddr> {
    let mut out: Vec<IpAddr> = resolv_conf
        .lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .filter_map(|rest| rest.split_whitespace().next())
        .filter_map(|a| a.split('%').next()?.parse().ok())
        .collect();
    out.sort();
    out.dedup();
    out
}

fn rule(chain: &str, expr: Vec<Value>) -> Value {
    nft::rule(TABLE, chain, expr, "accept")
}

/// The whole table as one nftables JSON transaction.
pub fn ruleset(servers: &[SocketAddr], dns: &[IpAddr], allow: &[AllowedNet]) -> Value {
    let mut cmds = nft::fresh_table(TABLE);
    for hook in ["input", "output"] {
        cmds.push(nft::base_chain(TABLE, hook, "drop"));
    }
    // (chain, the peer's address field, the peer's port field, the meta key of the interface)
    for (chain, peer_addr, peer_port, local_port, iface) in [
        ("input", "saddr", "sport", "dport", "iifname"),
        ("output", "daddr", "dport", "sport", "oifname"),
    ] {
        cmds.push(rule(
            chain,
            vec![match_eq(json!({ "meta": { "key": iface } }), json!("lo"))],
        ));
        for s in servers {
            let ip = s.ip();
            cmds.push(rule(
                chain,
                vec![
                    match_eq(field(proto_of(&ip), peer_addr), json!(ip.to_string())),
                    match_eq(field("tcp", peer_port), json!(s.port())),
                ],
            ));
        }
        for ns in dns {
            for l4 in ["udp", "tcp"] {
                cmds.push(rule(
                    chain,
                    vec![
                        match_eq(field(proto_of(ns), peer_addr), json!(ns.to_string())),
                        match_eq(field(l4, peer_port), json!(53)),
                    ],
                ));
            }
        }
        // DHCP, so that the host keeps its address while isolated.
        let (server_port, client_port) = (67, 68);
        cmds.push(rule(
            chain,
            vec![
                match_eq(field("udp", peer_port), json!(server_port)),
                match_eq(field("udp", local_port), json!(client_port)),
            ],
        ));
        // IPv6 neighbour and router discovery: without it no IPv6 address is reachable.
        cmds.push(rule(
            chain,
            vec![match_eq(
                field("icmpv6", "type"),
                json!({ "set": ["nd-neighbor-solicit", "nd-neighbor-advert",
                                "nd-router-solicit", "nd-router-advert"] }),
            )],
        ));
        for net in allow {
            cmds.push(rule(
                chain,
                vec![match_eq(
                    field(proto_of(&net.addr), peer_addr),
                    json!({ "prefix": { "addr": net.addr.to_string(), "len": net.prefix } }),
                )],
            ));
        }
    }
    json!({ "nftables": cmds })
}
