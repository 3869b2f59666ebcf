//! An immutable set of indicator entries with one lookup structure per kind of value.

use crate::entry::{Entry, EntryError};
use crate::url::{Scheme, UrlKey, UrlParts, path_key, schemes_agree};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use rampart_core::indicator::{Indicator, IndicatorType};
use std::borrow::Cow;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};

/// The maps of a table. Every event probes several of them, so the hash function is a large
/// share of matching: foldhash, seeded per process (a feed cannot aim its values at one bucket
/// without knowing the seed), instead of the default SipHash.
type Map<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// Entries by value: hashes and thumbprints as bytes (half the size of their hex), addresses
/// and networks by prefix length (`Nets`), domains and URL hosts as lower-case text.
#[derive(Clone, Default)]
pub struct Table {
    sha256: Map<[u8; 32], Entry>,
    sha1: Map<[u8; 20], Entry>,
    md5: Map<[u8; 16], Entry>,
    certs: Map<[u8; 20], Entry>,
    nets: Nets,
    domains: Map<Box<str>, Entry>,
    /// URL indicators by host (with a non-default port), then by path without its trailing
    /// `/` ([`path_key`]): the paths that may cover an observed URL are its own prefixes that end
    /// before a `/` or `?`, so a lookup probes those few instead of scanning every path of the
    /// host (a feed lists thousands under one file-sharing host).
    urls: Map<Box<str>, Map<Box<str>, Vec<UrlEntry>>>,
    len: usize,
}

#[derive(Clone)]
struct UrlEntry {
    scheme: Option<Scheme>,
    path: Box<str>,
    entry: Entry,
}

/// An entry that matched, with the indicator value it matched under and how specific that
/// value is: the prefix length of an address or network, the number of labels of a domain,
/// 1,000 plus the path length of a URL (a URL is more specific than its host's domain).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Matched<'a> {
    pub entry: &'a Entry,
    pub value: String,
    pub specificity: u32,
}

/// The key an indicator value is stored under; two entries with one key are the same slot.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Key {
    Sha256([u8; 32]),
    Sha1([u8; 20]),
    Md5([u8; 16]),
    Cert([u8; 20]),
    Net(IpNet),
    Domain(Box<str>),
    Url {
        host: Box<str>,
        scheme: Option<Scheme>,
        path: Box<str>,
    },
}

impl Key {
    /// The key of an indicator value of type `kind` (as the store keeps it, or as a feed
    /// writes it: hex in any case, any address form, a domain with a trailing dot).
    pub fn parse(kind: IndicatorType, value: &str) -> Result<Key, String> {
        let value = value.trim();
        let bad = |what: &str| format!("'{value}' is not {what}");
        Ok(match kind {
            IndicatorType::FileSha256 => Key::Sha256(hex(value).ok_or_else(|| bad("a SHA-256"))?),
            IndicatorType::FileSha1 => Key::Sha1(hex(value).ok_or_else(|| bad("a SHA-1"))?),
            IndicatorType::FileMd5 => Key::Md5(hex(value).ok_or_else(|| bad("an MD5"))?),
            IndicatorType::CertificateThumbprint => {
                Key::Cert(hex(value).ok_or_else(|| bad("a certificate thumbprint"))?)
            }
            IndicatorType::IpAddress => Key::Net(match value.parse::<IpNet>() {
                Ok(net) => net.trunc(),
                Err(_) => IpNet::from(
                    value
                        .parse::<IpAddr>()
                        .map_err(|_| bad("an IP address or network"))?
                        .to_canonical(),
                ),
            }),
            IndicatorType::DomainName => {
                let d = value.trim_end_matches('.').to_ascii_lowercase();
                if d.is_empty() || d.contains('/') {
                    return Err(bad("a domain name"));
                }
                Key::Domain(d.into())
            }
            IndicatorType::Url => {
                let url = UrlKey::parse(value).ok_or_else(|| bad("an http(s) URL"))?;
                Key::Url {
                    host: url.host.into(),
                    scheme: url.scheme,
                    path: url.path.into(),
                }
            }
        })
    }

    /// The key of an observed file hash or thumbprint of type `kind`, given as hex in either
    /// case; `None` for a value that cannot be one (such a value matches nothing). Matching
    /// decodes each observed hash once, for every table it probes.
    pub fn file(kind: IndicatorType, hex_value: &str) -> Option<Key> {
        Some(match kind {
            IndicatorType::FileSha256 => Key::Sha256(hex(hex_value)?),
            IndicatorType::FileSha1 => Key::Sha1(hex(hex_value)?),
            IndicatorType::FileMd5 => Key::Md5(hex(hex_value)?),
            IndicatorType::CertificateThumbprint => Key::Cert(hex(hex_value)?),
            _ => return None,
        })
    }

    /// The value as text (hashes in lower-case hex, networks as `address/length`, a single
    /// address without a length).
    pub fn value(&self) -> String {
        match self {
            Key::Sha256(b) => to_hex(b),
            Key::Sha1(b) | Key::Cert(b) => to_hex(b),
            Key::Md5(b) => to_hex(b),
            Key::Net(n) if n.prefix_len() == n.max_prefix_len() => n.addr().to_string(),
            Key::Net(n) => n.to_string(),
            Key::Domain(d) => d.to_string(),
            Key::Url { host, scheme, path } => match scheme {
                Some(Scheme::Http) => format!("http://{host}{path}"),
                Some(Scheme::Https) => format!("https://{host}{path}"),
                None => format!("{host}{path}"),
            },
        }
    }
}

impl Table {
    /// Puts `indicator` in the table (replacing an entry with the same value), or says why it
    /// cannot be held.
    pub fn add(&mut self, indicator: &Indicator) -> Result<(), EntryError> {
        let entry = Entry::of(indicator)?;
        let key =
            Key::parse(entry.kind, &indicator.indicator_value).map_err(|message| EntryError {
                id: indicator.id.clone(),
                message,
            })?;
        self.insert(key, entry);
        Ok(())
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Puts `entry` under `key`, replacing what was there.
    pub fn insert(&mut self, key: Key, entry: Entry) {
        let replaced = match key {
            Key::Sha256(k) => self.sha256.insert(k, entry).is_some(),
            Key::Sha1(k) => self.sha1.insert(k, entry).is_some(),
            Key::Md5(k) => self.md5.insert(k, entry).is_some(),
            Key::Cert(k) => self.certs.insert(k, entry).is_some(),
            Key::Net(n) => self.nets.insert(n, entry),
            Key::Domain(d) => self.domains.insert(d, entry).is_some(),
            Key::Url { host, scheme, path } => {
                let same = self
                    .urls
                    .entry(host)
                    .or_default()
                    .entry(path_key(&path).into())
                    // Almost every path has one entry: a default `Vec` would reserve four.
                    .or_insert_with(|| Vec::with_capacity(1));
                match same
                    .iter_mut()
                    .find(|u| u.scheme == scheme && u.path == path)
                {
                    Some(u) => {
                        u.entry = entry;
                        true
                    }
                    None => {
                        same.push(UrlEntry {
                            scheme,
                            path,
                            entry,
                        });
                        false
                    }
                }
            }
        };
        if !replaced {
            self.len += 1;
        }
    }

    /// The entry stored under `key`.
    pub fn get(&self, key: &Key) -> Option<&Entry> {
        match key {
            Key::Sha256(k) => self.sha256.get(k),
            Key::Sha1(k) => self.sha1.get(k),
            Key::Md5(k) => self.md5.get(k),
            Key::Cert(k) => self.certs.get(k),
            Key::Net(n) => self.nets.map.get(&Nets::key(*n)),
            Key::Domain(d) => self.domains.get(d),
            Key::Url { host, scheme, path } => self
                .urls
                .get(host)
                .and_then(|paths| paths.get(path_key(path)))
                .and_then(|same| same.iter().find(|u| u.scheme == *scheme && u.path == *path))
                .map(|u| &u.entry),
        }
    }

    /// Removes the entries `drop` picks; returns how many went.
    pub fn remove_where(&mut self, drop: impl Fn(&Entry) -> bool) -> usize {
        let before = self.len;
        let keys: Vec<Key> = self
            .iter()
            .filter(|(_, e)| drop(e))
            .map(|(k, _)| k)
            .collect();
        for key in keys {
            let gone = match &key {
                Key::Sha256(k) => self.sha256.remove(k).is_some(),
                Key::Sha1(k) => self.sha1.remove(k).is_some(),
                Key::Md5(k) => self.md5.remove(k).is_some(),
                Key::Cert(k) => self.certs.remove(k).is_some(),
                Key::Net(n) => self.nets.remove(*n),
                Key::Domain(d) => self.domains.remove(d).is_some(),
                Key::Url { host, scheme, path } => {
                    let Some(paths) = self.urls.get_mut(host) else {
                        continue;
                    };
                    let key = path_key(path);
                    let gone = paths.get_mut(key).is_some_and(|same| {
                        let n = same.len();
                        same.retain(|u| !(u.scheme == *scheme && u.path == *path));
                        same.len() < n
                    });
                    if paths.get(key).is_some_and(Vec::is_empty) {
                        paths.remove(key);
                    }
                    if paths.is_empty() {
                        self.urls.remove(host);
                    }
                    gone
                }
            };
            if gone {
                self.len -= 1;
            }
        }
        before - self.len
    }

    /// Every entry with its key.
    pub fn iter(&self) -> impl Iterator<Item = (Key, &Entry)> + '_ {
        let hashes = self
            .sha256
            .iter()
            .map(|(k, e)| (Key::Sha256(*k), e))
            .chain(self.sha1.iter().map(|(k, e)| (Key::Sha1(*k), e)))
            .chain(self.md5.iter().map(|(k, e)| (Key::Md5(*k), e)))
            .chain(self.certs.iter().map(|(k, e)| (Key::Cert(*k), e)));
        let nets = self
            .nets
            .map
            .iter()
            .map(|(k, e)| (Key::Net(Nets::net(*k)), e));
        let names = self
            .domains
            .iter()
            .map(|(d, e)| (Key::Domain(d.clone()), e));
        let urls = self.urls.iter().flat_map(|(host, paths)| {
            paths.values().flatten().map(move |u| {
                (
                    Key::Url {
                        host: host.clone(),
                        scheme: u.scheme,
                        path: u.path.clone(),
                    },
                    &u.entry,
                )
            })
        });
        hashes.chain(nets).chain(names).chain(urls)
    }

    /// The entry of a file hash or thumbprint (see [`Key::file`]).
    pub fn file(&self, key: &Key) -> Option<&Entry> {
        if self.len == 0 {
            return None;
        }
        self.get(key)
    }

    /// The entries of the addresses and networks holding `ip`, longest prefix first.
    pub fn ip(&self, ip: IpAddr) -> Vec<Matched<'_>> {
        if self.nets.map.is_empty() {
            return Vec::new();
        }
        self.nets
            .cover(ip)
            .map(|(key, entry)| matched_net(Nets::net(key), entry))
            .collect()
    }

    /// The entries of `host` and of each domain it is a subdomain of, most specific first.
    pub fn domains(&self, host: &str) -> Vec<Matched<'_>> {
        let mut out = Vec::new();
        if self.domains.is_empty() {
            return out;
        }
        let host = host.trim_end_matches('.');
        // Observed hosts are mostly lower case already: no copy for those.
        let host: Cow<'_, str> = match host.bytes().any(|b| b.is_ascii_uppercase()) {
            true => Cow::Owned(host.to_ascii_lowercase()),
            false => Cow::Borrowed(host),
        };
        if host.is_empty() || host.starts_with('[') {
            return out;
        }
        let labels = host.split('.').count() as u32;
        let mut suffix: &str = &host;
        let mut depth = labels;
        loop {
            if let Some(entry) = self.domains.get(suffix) {
                out.push(Matched {
                    entry,
                    value: suffix.to_owned(),
                    specificity: depth,
                });
            }
            match suffix.split_once('.') {
                Some((_, rest)) => {
                    suffix = rest;
                    depth -= 1;
                }
                None => break,
            }
        }
        out
    }

    /// Whether URL indicators are filed under the host of `url` (before normalising its path).
    pub fn has_url_host(&self, url: &UrlParts<'_>) -> bool {
        !self.urls.is_empty() && self.urls.contains_key(url.host().as_ref())
    }

    /// The URL entries covering `url`, longest path first.
    pub fn urls(&self, url: &UrlKey) -> Vec<Matched<'_>> {
        let Some(paths) = self.urls.get(url.host.as_str()) else {
            return Vec::new();
        };
        // The prefixes of the observed path that a covering path can be (`url::path_covers`):
        // the empty one, each one ending before a `/` or `?`, and the whole path.
        let path = url.path.as_str();
        let cuts = path
            .bytes()
            .enumerate()
            .filter(|&(i, b)| i > 0 && matches!(b, b'/' | b'?'))
            .map(|(i, _)| i)
            .chain((!path.is_empty()).then_some(path.len()));
        let mut found: Vec<Matched<'_>> = std::iter::once(0)
            .chain(cuts)
            .filter_map(|end| paths.get(&path[..end]))
            .flatten()
            .filter(|u| schemes_agree(u.scheme, url.scheme))
            .map(|u| Matched {
                entry: &u.entry,
                value: Key::Url {
                    host: url.host.as_str().into(),
                    scheme: u.scheme,
                    path: u.path.clone(),
                }
                .value(),
                specificity: 1_000 + u.path.len() as u32,
            })
            .collect();
        if found.len() > 1 {
            found.sort_by_key(|m| std::cmp::Reverse(m.specificity));
        }
        found
    }
}

/// Addresses and networks in one hash map keyed by (network bits, prefix length), IPv4 as
/// IPv4-mapped IPv6 (lengths 96–128). A lookup probes each prefix length the table holds, longest
/// first: two probes for a feed of addresses and /24s. (A binary trie, `prefix-trie`, walked
/// about twenty nodes per address of a 2-million-network table, each a cache miss: its
/// `contains` alone was a quarter of ioc-bench's samples.)
#[derive(Clone)]
struct Nets {
    map: Map<(u128, u8), Entry>,
    /// How many networks of each prefix length (0 to 128) the map holds.
    lengths: [u32; 129],
}

impl Default for Nets {
    fn default() -> Nets {
        Nets {
            map: Map::default(),
            lengths: [0; 129],
        }
    }
}

impl Nets {
    fn key(net: IpNet) -> (u128, u8) {
        match net {
            IpNet::V4(n) => (
                u128::from(n.network().to_ipv6_mapped()),
                n.prefix_len() + 96,
            ),
            IpNet::V6(n) => (u128::from(n.network()), n.prefix_len()),
        }
    }

    fn net((bits, len): (u128, u8)) -> IpNet {
        let addr = Ipv6Addr::from(bits);
        if len >= 96
            && let Some(v4) = addr.to_ipv4_mapped()
            && let Ok(n) = Ipv4Net::new(v4, len - 96)
        {
            return IpNet::V4(n);
        }
        // Keys are made by `key` from valid networks, so `len` is at most 128.
        IpNet::V6(Ipv6Net::new(addr, len.min(128)).unwrap_or_default())
    }

    /// Whether an entry was replaced.
    fn insert(&mut self, net: IpNet, entry: Entry) -> bool {
        let key = Nets::key(net);
        let replaced = self.map.insert(key, entry).is_some();
        if !replaced {
            self.lengths[usize::from(key.1)] += 1;
        }
        replaced
    }

    fn remove(&mut self, net: IpNet) -> bool {
        let key = Nets::key(net);
        let gone = self.map.remove(&key).is_some();
        if gone {
            self.lengths[usize::from(key.1)] -= 1;
        }
        gone
    }

    /// The entries of the networks holding `ip`, longest prefix first.
    fn cover(&self, ip: IpAddr) -> impl Iterator<Item = ((u128, u8), &Entry)> + '_ {
        let (bits, shortest) = match ip.to_canonical() {
            IpAddr::V4(a) => (u128::from(a.to_ipv6_mapped()), 96u8),
            IpAddr::V6(a) => (u128::from(a), 0u8),
        };
        (shortest..=128).rev().filter_map(move |len| {
            if self.lengths[usize::from(len)] == 0 {
                return None;
            }
            let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
            let key = (bits & mask, len);
            self.map.get(&key).map(|e| (key, e))
        })
    }
}

fn matched_net(net: IpNet, entry: &Entry) -> Matched<'_> {
    Matched {
        entry,
        value: Key::Net(net).value(),
        specificity: u32::from(net.prefix_len()),
    }
}

/// `N` bytes from `2N` hex digits of either case.
fn hex<const N: usize>(s: &str) -> Option<[u8; N]> {
    /// Each byte's value as a hex digit; 0xff for a byte that is not one.
    const DIGIT: [u8; 256] = {
        let mut t = [0xffu8; 256];
        let mut i = 0;
        while i < 10 {
            t[b'0' as usize + i] = i as u8;
            i += 1;
        }
        let mut i = 0;
        while i < 6 {
            t[b'a' as usize + i] = 10 + i as u8;
            t[b'A' as usize + i] = 10 + i as u8;
            i += 1;
        }
        t
    };
    let b = s.as_bytes();
    if b.len() != 2 * N {
        return None;
    }
    let mut out = [0u8; N];
    // Checked once for the whole value: a bad digit has its high bit set.
    let mut bad = 0u8;
    for (o, pair) in out.iter_mut().zip(b.chunks_exact(2)) {
        let (h, l) = (DIGIT[usize::from(pair[0])], DIGIT[usize::from(pair[1])]);
        bad |= h | l;
        *o = (h << 4) | (l & 0x0f);
    }
    (bad & 0x80 == 0).then_some(out)
}

fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    s
}
