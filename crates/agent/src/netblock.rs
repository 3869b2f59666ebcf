//! Address indicators enforced in the firewall: the nftables table `inet rampart_block` drops
//! traffic to and from blocked addresses and networks — and the addresses blocked domains
//! resolve to, looked up again at every indicator sync — except the Rampart server (never cut
//! off: it is how a block is lifted) and the `Allowed` ones, which win.
//!
//! The table holds four interval sets (blocked and allowed, IPv4 and IPv6) and is replaced in
//! one transaction whenever the indicator set changes; with nothing blocked it is deleted. It
//! stays in place while the agent is stopped (the kernel keeps it) and is rebuilt at start from
//! the saved set, so a reboot does not lift a block for longer than the agent takes to start.

use crate::blocklog::{self, BlockedNets};
use crate::commands::isolation::{AllowedNet, ServerEndpoint};
use crate::error::Result;
use crate::nft::{self, Nft, field, match_eq, proto_of};
use rampart_proto::enforcement::{DomainRule, Enforcement, NetworkRule};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::Arc;

pub const TABLE: &str = "rampart_block";

/// The address block of this host. Clones share what is blocked.
#[derive(Clone, Debug)]
pub struct AddressBlock {
    server: ServerEndpoint,
    nft: Nft,
    /// The networks blocked now, with the indicator of each (for the block events).
    nets: BlockedNets,
}

impl AddressBlock {
    pub fn new(server: ServerEndpoint) -> AddressBlock {
        AddressBlock {
            server,
            nft: Nft::default(),
            nets: BlockedNets::default(),
        }
    }

    /// The networks blocked now, kept current by [`apply`](Self::apply).
    pub fn blocked_nets(&self) -> BlockedNets {
        Arc::clone(&self.nets)
    }

    /// Enforces `rules` and the addresses `domains` resolve to now (replacing what was
    /// enforced); returns how many addresses are blocked. A value that is not an address or
    /// network, or a domain that does not resolve, is skipped with a warning.
    pub async fn apply(&self, rules: &[NetworkRule], domains: &[DomainRule]) -> Result<usize> {
        let mut block = Vec::new();
        let mut allow = Vec::new();
        let mut named = Vec::new();
        for r in rules {
            match r.value.parse::<AllowedNet>() {
                Ok(net) => match r.action {
                    Enforcement::Block => {
                        named.push((net, r.indicator_id.clone(), r.title.clone()));
                        block.push(net);
                    }
                    Enforcement::Allow => allow.push(net),
                },
                Err(e) => tracing::warn!(indicator = r.indicator_id, "not enforced: {e}"),
            }
        }
        for d in domains {
            let addrs = resolve(&d.domain).await;
            if addrs.is_empty() {
                tracing::warn!(
                    indicator = d.indicator_id,
                    domain = d.domain,
                    "does not resolve"
                );
            }
            let nets = addrs.into_iter().map(|addr| AllowedNet {
                addr,
                prefix: if addr.is_ipv4() { 32 } else { 128 },
            });
            match d.action {
                Enforcement::Block => {
                    for n in nets {
                        named.push((n, d.indicator_id.clone(), d.title.clone()));
                        block.push(n);
                    }
                }
                Enforcement::Allow => allow.extend(nets),
            }
        }
        *self.nets.write().unwrap_or_else(|p| p.into_inner()) = named;
        if block.is_empty() {
            self.nft.delete_table(TABLE).await?;
            return Ok(0);
        }
        let servers = self.server.addrs().await?;
        self.nft.apply(&ruleset(&servers, &block, &allow)).await?;
        Ok(block.len())
    }
}

/// How long one domain may take to resolve.
const RESOLVE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

/// The addresses `domain` resolves to now (through the host's resolver: /etc/hosts, DNS).
async fn resolve(domain: &str) -> Vec<std::net::IpAddr> {
    let lookup = tokio::net::lookup_host((domain, 0));
    match tokio::time::timeout(RESOLVE_TIMEOUT, lookup).await {
        Ok(Ok(addrs)) => {
            let mut ips: Vec<std::net::IpAddr> = addrs.map(|a| a.ip()).collect();
            ips.sort();
            ips.dedup();
            ips
        }
        _ => Vec::new(),
    }
}

/// The address bits of `ip` as a 128-bit number (IPv4 in the low 32 bits) and its width.
fn bits(ip: std::net::IpAddr) -> (u128, u8) {
    match ip {
        std::net::IpAddr::V4(v4) => (u128::from(u32::from(v4)), 32),
        std::net::IpAddr::V6(v6) => (u128::from(v6), 128),
    }
}

/// Whether `inner` lies within `outer` (same family).
pub(crate) fn within(inner: &AllowedNet, outer: &AllowedNet) -> bool {
    let ((a, width), (b, other)) = (bits(inner.addr), bits(outer.addr));
    if width != other || inner.prefix < outer.prefix {
        return false;
    }
    let shift = u32::from(width - outer.prefix);
    shift >= 128 || (a >> shift) == (b >> shift)
}

/// The networks without those another one holds: an interval set refuses overlapping
/// elements, and CIDR networks overlap only by nesting.
pub fn outermost(nets: &[AllowedNet]) -> Vec<AllowedNet> {
    let mut sorted = nets.to_vec();
    sorted.sort_by_key(|n| n.prefix);
    let mut kept: Vec<AllowedNet> = Vec::new();
    for n in sorted {
        if !kept.iter().any(|k| within(&n, k)) {
            kept.push(n);
        }
    }
    kept
}

fn element(net: &AllowedNet) -> Value {
    let full = if net.addr.is_ipv4() { 32 } else { 128 };
    if net.prefix == full {
        json!(net.addr.to_string())
    } else {
        json!({ "prefix": { "addr": net.addr.to_string(), "len": net.prefix } })
    }
}

/// The whole table as one nftables transaction.
pub fn ruleset(servers: &[SocketAddr], block: &[AllowedNet], allow: &[AllowedNet]) -> Value {
    let mut cmds = nft::fresh_table(TABLE);
    for (name, v4, nets) in [
        ("block4", true, block),
        ("block6", false, block),
        ("allow4", true, allow),
        ("allow6", false, allow),
    ] {
        cmds.push(json!({ "add": { "set": {
            "family": "inet", "table": TABLE, "name": name,
            "type": if v4 { "ipv4_addr" } else { "ipv6_addr" },
            "flags": ["interval"], "auto-merge": true } } }));
        let elems: Vec<Value> = outermost(nets)
            .iter()
            .filter(|n| n.addr.is_ipv4() == v4)
            .map(element)
            .collect();
        if !elems.is_empty() {
            cmds.push(json!({ "add": { "element": {
                "family": "inet", "table": TABLE, "name": name, "elem": elems } } }));
        }
    }
    for (hook, peer_addr, peer_port) in [("input", "saddr", "sport"), ("output", "daddr", "dport")]
    {
        cmds.push(nft::base_chain(TABLE, hook, "accept"));
        for s in servers {
            let ip = s.ip();
            cmds.push(nft::rule(
                TABLE,
                hook,
                vec![
                    match_eq(field(proto_of(&ip), peer_addr), json!(ip.to_string())),
                    match_eq(field("tcp", peer_port), json!(s.port())),
                ],
                "accept",
            ));
        }
        let prefix = if hook == "input" {
            blocklog::PREFIX_IN
        } else {
            blocklog::PREFIX_OUT
        };
        for (set, proto, verdict) in [
            ("@allow4", "ip", "accept"),
            ("@allow6", "ip6", "accept"),
            ("@block4", "ip", "drop"),
            ("@block6", "ip6", "drop"),
        ] {
            if verdict == "drop" {
                // What is dropped is logged first (a few packets a second at most) for the
                // block events.
                cmds.push(nft::statements(
                    TABLE,
                    hook,
                    vec![
                        match_eq(field(proto, peer_addr), json!(set)),
                        json!({ "limit": { "rate": 20, "per": "second" } }),
                        json!({ "log": { "prefix": prefix, "group": blocklog::NFLOG_GROUP } }),
                    ],
                ));
            }
            cmds.push(nft::rule(
                TABLE,
                hook,
                vec![match_eq(field(proto, peer_addr), json!(set))],
                verdict,
            ));
        }
    }
    json!({ "nftables": cmds })
}
