//! Alert correlation: which alerts tell one story. The rules, without I/O; the store applies
//! them as alerts arrive, in the transaction that stores them.
//!
//! An alert joins an open incident when it shares a *strong entity* with one of that
//! incident's alerts whose time is within the tenant's window of its own: the same device, or —
//! across devices — the same file hash, remote IP, URL, domain or user. An alert that links
//! several incidents merges them into the oldest; the others are `Redirected` to it. Every
//! alert's place is explained by a [`CorrelationReason`] on its incident: which entity it shared
//! with which alert. The rules are deterministic: the same alerts in the same order make the
//! same incidents.

use crate::alert::{Alert, Classification, Severity};
use serde::{Deserialize, Serialize};

/// The kinds of entity alerts are correlated by, strongest first (the order is the tie-break
/// when an alert links by several).
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
pub enum EntityKind {
    Device,
    File,
    Ip,
    Url,
    Domain,
    User,
}

impl EntityKind {
    pub const ALL: &'static [EntityKind] = &[
        EntityKind::Device,
        EntityKind::File,
        EntityKind::Ip,
        EntityKind::Url,
        EntityKind::Domain,
        EntityKind::User,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EntityKind::Device => "Device",
            EntityKind::File => "File",
            EntityKind::Ip => "Ip",
            EntityKind::Url => "Url",
            EntityKind::Domain => "Domain",
            EntityKind::User => "User",
        }
    }

    pub fn parse(s: &str) -> Option<EntityKind> {
        EntityKind::ALL
            .iter()
            .copied()
            .find(|k| k.as_str().eq_ignore_ascii_case(s))
    }
}

/// An entity an alert names, normalised (lower case; hashes as hex, domains without a trailing
/// dot).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Entity {
    pub kind: EntityKind,
    pub value: String,
}

/// Accounts every machine has: sharing one says nothing about a shared attack.
const COMMON_ACCOUNTS: &[&str] = &[
    "root",
    "system",
    "local service",
    "network service",
    "localsystem",
    "administrator",
    "nobody",
    "daemon",
    "www-data",
];

/// The entities of an alert that correlation may link by.
pub fn entities(alert: &Alert) -> Vec<Entity> {
    let mut out = Vec::new();
    let mut push = |kind: EntityKind, value: &str| {
        let value = value.trim().trim_end_matches('.').to_ascii_lowercase();
        if !value.is_empty() {
            out.push(Entity { kind, value });
        }
    };
    if let Some(m) = &alert.machine_id {
        push(EntityKind::Device, m);
    }
    let mut user = |name: &str, domain: Option<&str>| {
        let name = name.trim().to_ascii_lowercase();
        if name.is_empty() || COMMON_ACCOUNTS.contains(&name.as_str()) {
            return;
        }
        match domain.map(str::trim).filter(|d| !d.is_empty()) {
            Some(d) => push(EntityKind::User, &format!("{d}\\{name}")),
            None => push(EntityKind::User, &name),
        }
    };
    if let Some(u) = &alert.related_user
        && let Some(name) = &u.user_name
    {
        user(name, u.domain_name.as_deref());
    }
    for e in &alert.evidence {
        if let Some(name) = &e.account_name {
            user(name, e.domain_name.as_deref());
        }
    }
    for e in &alert.evidence {
        // A process's image is often a system binary every story runs (a shell, PowerShell):
        // only files named as files link.
        let image = e.entity_type.eq_ignore_ascii_case("Process");
        for h in [&e.sha1, &e.sha256]
            .into_iter()
            .flatten()
            .filter(|_| !image)
        {
            if h.len() >= 40 && h.bytes().all(|b| b.is_ascii_hexdigit()) {
                push(EntityKind::File, h);
            }
        }
        // A device's own address names the device (resolved at import), not a remote peer.
        if let Some(ip) = e.ip_address.as_ref().filter(|_| !e.names_device())
            && let Ok(addr) = ip.trim().parse::<std::net::IpAddr>()
            && !crate::indicator::is_internal_ip(addr)
        {
            // Internal peers (domain controllers, DNS, proxies) are shared by every device:
            // only public addresses link. (A lateral move names its target device instead.)
            push(EntityKind::Ip, &addr.to_string());
        }
        if let Some(url) = &e.url {
            let url = url.trim();
            match host_of(url) {
                // A bare domain given as a URL entity.
                Some(host) if host.len() == url.trim_end_matches('/').len() => {
                    push(EntityKind::Domain, host);
                }
                Some(host) => {
                    push(EntityKind::Url, url);
                    if host.parse::<std::net::IpAddr>().is_err() {
                        push(EntityKind::Domain, host);
                    }
                }
                None => {}
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// The host of a URL (`scheme://host[:port]/…`, or `host/…` without a scheme).
fn host_of(url: &str) -> Option<&str> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next()?;
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next()?,
        None => host.split(':').next()?,
    };
    (!host.is_empty() && !host.contains(char::is_whitespace)).then_some(host)
}

/// The time correlation places an alert at: when its activity began.
pub fn alert_time(alert: &Alert) -> Option<time::OffsetDateTime> {
    alert
        .first_event_time
        .or(alert.alert_creation_time)
        .or(alert.last_update_time)
}

/// Whether an alert may link others to its incident: one an analyst called a false positive
/// does not (what it shares is no evidence of one story).
pub fn links_others(alert: &Alert) -> bool {
    alert.classification != Some(Classification::FalsePositive)
}

/// How a tenant correlates.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CorrelationPolicy {
    /// How far apart in time two alerts may be and still be linked.
    pub window_hours: u32,
    /// The entity kinds alerts are linked by; an empty list turns correlation off (every
    /// alert its own incident).
    #[schema(value_type = Vec<String>)]
    pub link_by: Vec<EntityKind>,
}

/// The longest window a policy may set (a month: the telemetry retention).
pub const MAX_WINDOW_HOURS: u32 = 24 * 30;

impl Default for CorrelationPolicy {
    fn default() -> Self {
        CorrelationPolicy {
            window_hours: 24,
            link_by: EntityKind::ALL.to_vec(),
        }
    }
}

impl CorrelationPolicy {
    pub fn window(&self) -> time::Duration {
        time::Duration::hours(i64::from(self.window_hours))
    }

    pub fn check(&self) -> Result<(), crate::Rejection> {
        if self.window_hours == 0 || self.window_hours > MAX_WINDOW_HOURS {
            return Err(crate::Rejection::new(
                crate::ErrorCode::InvalidRequestBody,
                format!("windowHours: 1 to {MAX_WINDOW_HOURS}"),
            ));
        }
        Ok(())
    }
}

/// Why an alert is in its incident.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CorrelationReason {
    pub alert_id: String,
    /// The entity it shares with `linkedAlertId`; absent for the alert that opened the incident.
    #[schema(value_type = Option<String>)]
    pub entity_type: Option<EntityKind>,
    pub entity_value: Option<String>,
    pub linked_alert_id: Option<String>,
    /// The incident this alert's own incident was merged from, when it came by a merge.
    pub merged_from_incident_id: Option<i64>,
}

impl CorrelationReason {
    /// The alert opened its incident.
    pub fn opened(alert_id: &str) -> CorrelationReason {
        CorrelationReason {
            alert_id: alert_id.to_owned(),
            entity_type: None,
            entity_value: None,
            linked_alert_id: None,
            merged_from_incident_id: None,
        }
    }

    /// The alert shares `entity` with `linked`.
    pub fn linked(alert_id: &str, entity: &Entity, linked: &str) -> CorrelationReason {
        CorrelationReason {
            alert_id: alert_id.to_owned(),
            entity_type: Some(entity.kind),
            entity_value: Some(entity.value.clone()),
            linked_alert_id: Some(linked.to_owned()),
            merged_from_incident_id: None,
        }
    }
}

/// One stored alert that shares an entity with a new alert, and its incident.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    pub incident_id: i64,
    pub alert_id: String,
    pub entity: Entity,
}

/// Where a new alert goes, given the candidates (already filtered to open incidents, alerts
/// that link others, and the window): `None` for an incident of its own; else the incident it
/// joins (the oldest it links to), the reason, and the other incidents it merges into that one.
pub fn place(
    alert_id: &str,
    policy: &CorrelationPolicy,
    candidates: &[Candidate],
) -> Option<(i64, CorrelationReason, Vec<i64>)> {
    let usable: Vec<&Candidate> = candidates
        .iter()
        .filter(|c| policy.link_by.contains(&c.entity.kind))
        .collect();
    let survivor = usable.iter().map(|c| c.incident_id).min()?;
    // The strongest entity, then the earliest alert id: deterministic.
    let best = usable
        .iter()
        .filter(|c| c.incident_id == survivor)
        .min_by(|a, b| {
            (a.entity.kind, &a.alert_id, &a.entity.value).cmp(&(
                b.entity.kind,
                &b.alert_id,
                &b.entity.value,
            ))
        })?;
    let mut merged: Vec<i64> = usable
        .iter()
        .map(|c| c.incident_id)
        .filter(|i| *i != survivor)
        .collect();
    merged.sort_unstable();
    merged.dedup();
    Some((
        survivor,
        CorrelationReason::linked(alert_id, &best.entity, &best.alert_id),
        merged,
    ))
}

/// What MDE calls the categories in incident names.
fn category_words(category: &str) -> &str {
    match category {
        "CommandAndControl" => "command-and-control",
        "CredentialAccess" => "credential access",
        "DefenseEvasion" => "defense evasion",
        "InitialAccess" => "initial access",
        "LateralMovement" => "lateral movement",
        "PrivilegeEscalation" => "privilege escalation",
        "SuspiciousActivity" => "suspicious activity",
        "Execution" => "execution",
        "Persistence" => "persistence",
        "Discovery" => "discovery",
        "Collection" => "collection",
        "Exfiltration" => "exfiltration",
        "Exploit" => "exploit",
        "Malware" => "malware",
        "Ransomware" => "ransomware",
        _ => "general",
    }
}

/// The kill-chain position of a category, for naming incidents in the attack's order.
fn stage(category: &str) -> usize {
    const ORDER: &[&str] = &[
        "InitialAccess",
        "Exploit",
        "Execution",
        "Persistence",
        "PrivilegeEscalation",
        "DefenseEvasion",
        "CredentialAccess",
        "Discovery",
        "LateralMovement",
        "Collection",
        "CommandAndControl",
        "Exfiltration",
        "Malware",
        "Ransomware",
        "SuspiciousActivity",
    ];
    ORDER
        .iter()
        .position(|c| *c == category)
        .unwrap_or(ORDER.len())
}

/// The name of an incident: a lone alert's title with its device; else the incident's alert
/// categories in kill-chain order and its scope, e.g. "Execution and command-and-control on 2
/// endpoints".
pub fn incident_name(lone: Option<&Alert>, categories: &[String], devices: usize) -> String {
    let scope = match devices {
        0 => String::new(),
        1 => " on one endpoint".to_owned(),
        n => format!(" on {n} endpoints"),
    };
    if let Some(alone) = lone {
        let host = alone
            .computer_dns_name
            .as_deref()
            .map(|n| format!(" on {n}"))
            .unwrap_or(scope);
        return format!("{}{host}", alone.title);
    }
    let mut categories: Vec<&str> = categories.iter().map(String::as_str).collect();
    categories.sort_by_key(|c| (stage(c), *c));
    categories.dedup();
    let words: Vec<&str> = categories.iter().map(|c| category_words(c)).collect();
    let listed = match words.as_slice() {
        [] => "Incident".to_owned(),
        [one] => format!("Multi-stage {one} incident"),
        [a, b] => format!("{a} and {b}"),
        [a, b, c] => format!("{a}, {b} and {c}"),
        [a, b, rest @ ..] => format!("{a}, {b} and {} more", rest.len()),
    };
    let mut name = format!("{listed}{scope}");
    if let Some(first) = name.get(..1) {
        name = first.to_uppercase() + &name[1..];
    }
    name
}

/// Adds `value` to a sorted set kept as a vector.
pub fn insert_sorted(set: &mut Vec<String>, value: &str) {
    if let Err(at) = set.binary_search_by(|v| v.as_str().cmp(value)) {
        set.insert(at, value.to_owned());
    }
}

/// Severity order, lowest first.
pub fn severity_rank(s: Severity) -> usize {
    Severity::VARIANTS
        .iter()
        .position(|v| *v == s.as_str())
        .unwrap_or(0)
}

/// The highest severity of some alerts.
pub fn highest_severity<'a>(alerts: impl IntoIterator<Item = &'a Alert>) -> Option<Severity> {
    alerts
        .into_iter()
        .map(|a| a.severity)
        .max_by_key(|s| severity_rank(*s))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::{Evidence, RelatedUser};

    fn alert(machine: Option<&str>, category: &str, evidence: Vec<Evidence>) -> Alert {
        let mut a = crate::alert::synthetic(
            1,
            crate::TenantId::new_random(),
            time::OffsetDateTime::UNIX_EPOCH,
            1,
        );
        a.machine_id = machine.map(str::to_owned);
        a.computer_dns_name = None;
        a.category = category.into();
        a.related_user = None;
        a.evidence = evidence;
        a
    }

    fn ev(kind: &str) -> Evidence {
        Evidence {
            entity_type: kind.into(),
            ..Default::default()
        }
    }

    #[test]
    fn entities_are_normalised_and_weak_ones_left_out() {
        let mut a = alert(
            Some("ABCDEF"),
            "Execution",
            vec![
                Evidence {
                    sha256: Some("AB".repeat(32)),
                    sha1: Some("not-a-hash".into()),
                    ..ev("File")
                },
                Evidence {
                    sha256: Some("cd".repeat(32)),
                    ..ev("Process")
                },
                Evidence {
                    ip_address: Some("10.1.2.3".into()),
                    ..ev("Device")
                },
                Evidence {
                    ip_address: Some("198.51.100.7".into()),
                    ..ev("Ip")
                },
                Evidence {
                    ip_address: Some("127.0.0.1".into()),
                    ..ev("Ip")
                },
                Evidence {
                    url: Some("https://C2.Evil.example./beacon?x=1".into()),
                    ..ev("Url")
                },
                Evidence {
                    url: Some("bad.example".into()),
                    ..ev("Url")
                },
                Evidence {
                    account_name: Some("root".into()),
                    ..ev("User")
                },
            ],
        );
        a.related_user = Some(RelatedUser {
            user_name: Some("Alice".into()),
            domain_name: Some("CORP".into()),
        });
        let got: Vec<(EntityKind, String)> = entities(&a)
            .into_iter()
            .map(|e| (e.kind, e.value))
            .collect();
        assert_eq!(
            got,
            [
                (EntityKind::Device, "abcdef".to_owned()),
                (EntityKind::File, "ab".repeat(32)),
                (EntityKind::Ip, "198.51.100.7".to_owned()),
                (
                    EntityKind::Url,
                    "https://c2.evil.example./beacon?x=1".to_owned()
                ),
                (EntityKind::Domain, "bad.example".to_owned()),
                (EntityKind::Domain, "c2.evil.example".to_owned()),
                (EntityKind::User, "corp\\alice".to_owned()),
            ]
        );
    }

    fn cand(incident: i64, alert: &str, kind: EntityKind, value: &str) -> Candidate {
        Candidate {
            incident_id: incident,
            alert_id: alert.into(),
            entity: Entity {
                kind,
                value: value.into(),
            },
        }
    }

    #[test]
    fn the_oldest_incident_wins_by_the_strongest_entity_and_absorbs_the_rest() {
        let policy = CorrelationPolicy::default();
        assert_eq!(place("n", &policy, &[]), None);
        let c = [
            cand(9, "a9", EntityKind::Device, "m"),
            cand(4, "a4", EntityKind::User, "corp\\bob"),
            cand(4, "a3", EntityKind::File, "ff"),
            cand(7, "a7", EntityKind::Ip, "1.2.3.4"),
        ];
        let (survivor, reason, merged) = place("n", &policy, &c).unwrap();
        assert_eq!(survivor, 4);
        assert_eq!(merged, [7, 9]);
        assert_eq!(reason.entity_type, Some(EntityKind::File));
        assert_eq!(reason.linked_alert_id.as_deref(), Some("a3"));
        // Kinds the policy leaves out do not link.
        let only_devices = CorrelationPolicy {
            link_by: vec![EntityKind::Device],
            ..policy
        };
        let (survivor, _, merged) = place("n", &only_devices, &c).unwrap();
        assert_eq!((survivor, merged), (9, vec![]));
    }

    #[test]
    fn names_follow_the_kill_chain_and_the_scope() {
        let one = alert(Some("m1"), "Execution", vec![]);
        assert_eq!(
            incident_name(Some(&one), &[], 1),
            format!("{} on one endpoint", one.title)
        );
        let cats = |c: &[&str]| c.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            incident_name(None, &cats(&["CommandAndControl", "Execution"]), 2),
            "Execution and command-and-control on 2 endpoints"
        );
        assert_eq!(
            incident_name(None, &cats(&["Execution"]), 1),
            "Multi-stage execution incident on one endpoint"
        );
        assert_eq!(
            incident_name(
                None,
                &cats(&["Discovery", "InitialAccess", "Execution", "Persistence"]),
                3
            ),
            "Initial access, execution and 2 more on 3 endpoints"
        );
    }
}
