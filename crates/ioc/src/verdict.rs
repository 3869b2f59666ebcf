//! Which indicator decides when several match one event: MDE's precedence rules (reference
//! mde-api.md §3.4), applied to indicators that are in force and apply to the device.
//!
//! Files (hashes and certificate thumbprints), in order:
//! 1. among file hashes, the strongest hash type decides, whatever the device groups:
//!    SHA-256 over SHA-1 over MD5;
//! 2. between that hash and a certificate indicator, a blocking or warning indicator goes before
//!    an allowing one, and an allowing one before an audit (MDE evaluates block/warn IoCs before
//!    allow IoCs); at equal rank a device-group-scoped indicator beats an all-devices one, then
//!    the hash beats the certificate.
//!
//! Network (IP addresses and ranges, domains, URLs), in order:
//! 1. if any indicator scoped to the device's group matches, the all-devices ones are ignored;
//! 2. per target, the most specific value: the longest prefix of the addresses, and for names
//!    the URL with the longest path, else the domain with the most labels;
//! 3. between the IP target and the name target: Allowed over Warn over Block over Audit;
//!    at equal action the name (URL or domain) decides.
//!
//! `Allowed` wins as a verdict of its own: it suppresses enforcement and alerts.

use crate::entry::Entry;
use rampart_core::indicator::{IndicatorAction, IndicatorType};
use std::net::IpAddr;

/// The device an event comes from, as indicator scopes see it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Device<'a> {
    pub group_id: Option<&'a str>,
    pub group_name: Option<&'a str>,
}

/// The file entities of an event (any may be missing).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct FileObservation<'a> {
    pub sha256: Option<&'a str>,
    pub sha1: Option<&'a str>,
    pub md5: Option<&'a str>,
    pub cert_thumbprint: Option<&'a str>,
}

impl<'a> FileObservation<'a> {
    /// The values in the order of [`FileObservation::KINDS`].
    pub fn values(&self) -> [Option<&'a str>; 4] {
        [self.sha256, self.sha1, self.md5, self.cert_thumbprint]
    }

    /// The indicator type of each value.
    pub const KINDS: [IndicatorType; 4] = [
        IndicatorType::FileSha256,
        IndicatorType::FileSha1,
        IndicatorType::FileMd5,
        IndicatorType::CertificateThumbprint,
    ];
}

/// The network entities of an event: the remote address and the URL or host name.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct NetworkObservation<'a> {
    pub ip: Option<IpAddr>,
    /// A URL, or a bare host name as `RemoteUrl` often holds.
    pub url: Option<&'a str>,
}

/// An indicator that matched an event: its entry, the value it matched under and how
/// specific that value is (see [`crate::table::Matched`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hit {
    pub entry: Entry,
    pub value: String,
    pub specificity: u32,
}

impl Hit {
    fn is_name(&self) -> bool {
        matches!(
            self.entry.kind,
            IndicatorType::DomainName | IndicatorType::Url
        )
    }
}

/// The file indicator that decides among `hits` for `device` at `now` (Unix seconds).
pub fn decide_file(hits: Vec<Hit>, device: Device<'_>, now: i64) -> Option<Hit> {
    let (hashes, certs): (Vec<Hit>, Vec<Hit>) = in_force(hits, device, now)
        .partition(|h| h.entry.kind != IndicatorType::CertificateThumbprint);
    let hash = hashes
        .into_iter()
        .max_by_key(|h| hash_strength(h.entry.kind));
    let cert = certs.into_iter().max_by_key(|h| h.entry.scoped());
    match (hash, cert) {
        (Some(h), Some(c)) => {
            let rank = |x: &Hit| (file_rank(x.entry.action), x.entry.scoped());
            Some(if rank(&c) > rank(&h) { c } else { h })
        }
        (h, c) => h.or(c),
    }
}

/// The network indicator that decides among `hits` for `device` at `now` (Unix seconds).
pub fn decide_network(hits: Vec<Hit>, device: Device<'_>, now: i64) -> Option<Hit> {
    let mut hits: Vec<Hit> = in_force(hits, device, now).collect();
    if hits.iter().any(|h| h.entry.scoped()) {
        hits.retain(|h| h.entry.scoped());
    }
    let (names, ips): (Vec<Hit>, Vec<Hit>) = hits.into_iter().partition(Hit::is_name);
    let name = names.into_iter().max_by_key(|h| h.specificity);
    let ip = ips.into_iter().max_by_key(|h| h.specificity);
    match (name, ip) {
        (Some(n), Some(i)) => Some(
            if network_rank(i.entry.action) > network_rank(n.entry.action) {
                i
            } else {
                n
            },
        ),
        (n, i) => n.or(i),
    }
}

fn in_force(hits: Vec<Hit>, device: Device<'_>, now: i64) -> impl Iterator<Item = Hit> + '_ {
    hits.into_iter().filter(move |h| {
        h.entry.active_at(now) && h.entry.applies_to(device.group_id, device.group_name)
    })
}

fn hash_strength(kind: IndicatorType) -> u8 {
    match kind {
        IndicatorType::FileSha256 => 3,
        IndicatorType::FileSha1 => 2,
        _ => 1,
    }
}

fn file_rank(action: IndicatorAction) -> u8 {
    match action {
        IndicatorAction::Block | IndicatorAction::BlockAndRemediate | IndicatorAction::Warn => 2,
        IndicatorAction::Allowed => 1,
        IndicatorAction::Audit => 0,
    }
}

fn network_rank(action: IndicatorAction) -> u8 {
    match action {
        IndicatorAction::Allowed => 4,
        IndicatorAction::Warn => 3,
        IndicatorAction::Block | IndicatorAction::BlockAndRemediate => 2,
        IndicatorAction::Audit => 1,
    }
}
