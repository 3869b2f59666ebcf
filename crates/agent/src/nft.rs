//! nftables through the `nft` binary's JSON interface (`nft -j -f -`): each document is applied
//! as one transaction, so a table is replaced whole or not at all. Rampart's tables live in
//! family `inet` (IPv4 and IPv6) and are Rampart's alone; the host's own rules are never touched.

use crate::error::{Error, Result, io_err};
use serde_json::{Value, json};
use std::io::Write;
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::Stdio;

/// The `nft` binary.
#[derive(Clone, Debug)]
pub struct Nft {
    binary: PathBuf,
}

impl Default for Nft {
    /// `nft` from `PATH`, else where distributions install it (a service's `PATH` may lack
    /// sbin).
    fn default() -> Nft {
        let in_path = std::env::var_os("PATH").and_then(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join("nft"))
                .find(|f| f.is_file())
        });
        Nft {
            binary: in_path.unwrap_or_else(|| PathBuf::from("/usr/sbin/nft")),
        }
    }
}

impl Nft {
    /// Applies one JSON document (`{"nftables": [...]}`) as one transaction.
    pub async fn apply(&self, doc: &Value) -> Result<()> {
        let nft = self.binary.clone();
        let input = doc.to_string();
        tokio::task::spawn_blocking(move || run(&nft, &input))
            .await
            .map_err(|e| Error::Config(format!("nft: {e}")))?
    }

    /// Deletes `table` if it exists.
    pub async fn delete_table(&self, table: &str) -> Result<()> {
        // Adding the table first makes the delete succeed whether or not it exists.
        let t = json!({ "family": "inet", "name": table });
        self.apply(
            &json!({ "nftables": [ { "add": { "table": t } }, { "delete": { "table": t } } ] }),
        )
        .await
    }
}

fn run(nft: &std::path::Path, input: &str) -> Result<()> {
    let mut child = std::process::Command::new(nft)
        .args(["-j", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(io_err(format!(
            "running {} (is nftables installed?)",
            nft.display()
        )))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(input.as_bytes())
            .map_err(io_err("writing to nft"))?;
    }
    let out = child
        .wait_with_output()
        .map_err(io_err("waiting for nft"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(Error::Config(format!(
            "nft failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

/// The commands that replace `table` with an empty one: add (so the delete cannot fail),
/// delete, add. Chains, sets and rules follow in the same document.
pub fn fresh_table(table: &str) -> Vec<Value> {
    let t = json!({ "family": "inet", "name": table });
    vec![
        json!({ "add": { "table": t } }),
        json!({ "delete": { "table": t } }),
        json!({ "add": { "table": t } }),
    ]
}

/// A base chain of `table` on `hook` (`input`/`output`) with a policy.
pub fn base_chain(table: &str, hook: &str, policy: &str) -> Value {
    json!({ "add": { "chain": {
        "family": "inet", "table": table, "name": hook,
        "type": "filter", "hook": hook, "prio": 0, "policy": policy } } })
}

/// `ip` or `ip6`, the payload protocol of an address.
pub fn proto_of(ip: &IpAddr) -> &'static str {
    if ip.is_ipv4() { "ip" } else { "ip6" }
}

pub fn match_eq(left: Value, right: Value) -> Value {
    json!({ "match": { "op": "==", "left": left, "right": right } })
}

pub fn field(protocol: &str, name: &str) -> Value {
    json!({ "payload": { "protocol": protocol, "field": name } })
}

/// A rule of `table`/`chain`: the matches of `expr`, then `verdict` (`accept`, `drop`).
pub fn rule(table: &str, chain: &str, mut expr: Vec<Value>, verdict: &str) -> Value {
    expr.push(json!({ verdict: null }));
    statements(table, chain, expr)
}

/// A rule of `table`/`chain` of exactly `expr`: matches and statements, no verdict of its own.
pub fn statements(table: &str, chain: &str, expr: Vec<Value>) -> Value {
    json!({ "add": { "rule": { "family": "inet", "table": table, "chain": chain, "expr": expr } } })
}
