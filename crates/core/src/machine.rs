//! Machines (devices, reference §2.1) and device groups.

use crate::Rejection;
use crate::odata::{EntitySet, Field, FieldType};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

string_enum!(
    /// Sensor health, derived from when the device last reported.
    HealthStatus { Active, Inactive, ImpairedCommunication, NoSensorData, NoSensorDataImpairedCommunication, Unknown }
);
string_enum!(
    /// Risk and exposure scores.
    RiskScore { None, Informational, Low, Medium, High }
);
string_enum!(
    /// Exposure level.
    ExposureLevel { None, Low, Medium, High }
);
string_enum!(
    /// Business value of a device.
    DeviceValue { Normal, Low, High }
);
string_enum!(
    /// What automated investigation may do on a device group's machines (reference §5.3).
    AutomationLevel {
        FullRemediation, SemiApprovalAllFolders, SemiApprovalCoreFolders, SemiApprovalNonTempFolders,
        NoAutomatedResponse
    }
);

/// A device stops being `Active` when it has not reported for this long (MDE: 7 days).
pub const INACTIVE_AFTER: time::Duration = time::Duration::days(7);

/// One network interface address of a machine.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct IpAddress {
    pub ip_address: String,
    pub mac_address: Option<String>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub operational_status: Option<String>,
}

/// The MDE machine entity.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Machine {
    /// 40 lower-case hex characters.
    pub id: String,
    pub computer_dns_name: String,
    #[serde(with = "crate::timefmt::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub first_seen: Option<OffsetDateTime>,
    #[serde(with = "crate::timefmt::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_seen: Option<OffsetDateTime>,
    /// e.g. `Linux`, `Windows11`, `macOS`.
    pub os_platform: String,
    pub onboarding_status: String,
    pub os_processor: Option<String>,
    pub version: Option<String>,
    pub os_build: Option<i64>,
    pub os_version: Option<String>,
    pub os_architecture: Option<String>,
    pub agent_version: Option<String>,
    pub last_ip_address: Option<String>,
    pub last_external_ip_address: Option<String>,
    pub health_status: HealthStatus,
    pub rbac_group_name: Option<String>,
    pub rbac_group_id: i64,
    pub risk_score: Option<RiskScore>,
    pub exposure_level: Option<ExposureLevel>,
    pub aad_device_id: Option<String>,
    pub is_aad_joined: bool,
    pub machine_tags: Vec<String>,
    pub device_value: DeviceValue,
    pub ip_addresses: Vec<IpAddress>,
    pub managed_by: String,
    pub managed_by_status: String,
}

/// Whether `id` has the shape of a machine id.
pub fn is_machine_id(id: &str) -> bool {
    id.len() == 40 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The health a device has at `now`, given when it last reported.
pub fn health_at(last_seen: Option<OffsetDateTime>, now: OffsetDateTime) -> HealthStatus {
    match last_seen {
        None => HealthStatus::NoSensorData,
        Some(t) if now - t > INACTIVE_AFTER => HealthStatus::Inactive,
        Some(_) => HealthStatus::Active,
    }
}

/// Longest tag MDE accepts (and Rampart).
pub const MAX_TAG_LEN: usize = 200;

/// Checks a tag value.
pub fn check_tag(tag: &str) -> Result<(), Rejection> {
    if tag.trim().is_empty() {
        return Err(Rejection::new(
            crate::ErrorCode::InvalidInput,
            "The tag must not be empty.",
        ));
    }
    if tag.chars().count() > MAX_TAG_LEN {
        return Err(Rejection::new(
            crate::ErrorCode::InvalidInput,
            format!("A tag is at most {MAX_TAG_LEN} characters."),
        ));
    }
    Ok(())
}

impl Machine {
    pub fn add_tag(&mut self, tag: &str) -> Result<(), Rejection> {
        check_tag(tag)?;
        if !self.machine_tags.iter().any(|t| t == tag) {
            self.machine_tags.push(tag.to_owned());
        }
        Ok(())
    }

    pub fn remove_tag(&mut self, tag: &str) {
        self.machine_tags.retain(|t| t != tag);
    }

    /// A new machine as first reported by its sensor.
    pub fn new(
        id: String,
        computer_dns_name: String,
        os_platform: String,
        now: OffsetDateTime,
    ) -> Machine {
        Machine {
            id,
            computer_dns_name,
            first_seen: Some(now),
            last_seen: Some(now),
            os_platform,
            onboarding_status: "Onboarded".into(),
            os_processor: None,
            version: None,
            os_build: None,
            os_version: None,
            os_architecture: None,
            agent_version: None,
            last_ip_address: None,
            last_external_ip_address: None,
            health_status: HealthStatus::Active,
            rbac_group_name: None,
            rbac_group_id: 0,
            risk_score: Some(RiskScore::None),
            exposure_level: Some(ExposureLevel::None),
            aad_device_id: None,
            is_aad_joined: false,
            machine_tags: Vec::new(),
            device_value: DeviceValue::Normal,
            ip_addresses: Vec::new(),
            managed_by: "Rampart".into(),
            managed_by_status: "Managed".into(),
        }
    }
}

/// `/api/machines`: the filterable properties of reference §2.2.
pub static MACHINES: EntitySet = EntitySet {
    name: "Machines",
    fields: &[
        Field::new("id", FieldType::String).not_null(),
        Field::new("computerDnsName", FieldType::String).not_null(),
        Field::new("version", FieldType::String),
        Field::new("deviceValue", FieldType::Enum(DeviceValue::VARIANTS)).not_null(),
        Field::new("aadDeviceId", FieldType::String),
        Field::new("machineTags", FieldType::StringCollection),
        Field::new("lastSeen", FieldType::DateTime),
        Field::new("firstSeen", FieldType::DateTime),
        Field::new("exposureLevel", FieldType::Enum(ExposureLevel::VARIANTS)),
        Field::new("onboardingStatus", FieldType::String).not_null(),
        Field::new("lastIpAddress", FieldType::String),
        Field::new("healthStatus", FieldType::Enum(HealthStatus::VARIANTS)).not_null(),
        Field::new("osPlatform", FieldType::String).not_null(),
        Field::new("riskScore", FieldType::Enum(RiskScore::VARIANTS)),
        Field::new("rbacGroupId", FieldType::Int).not_null(),
    ],
    expand: &[],
};

/// One condition of a device group; a group matches a machine when all its conditions do.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", content = "value")]
pub enum GroupRule {
    /// The machine carries this tag (case-insensitive).
    Tag(String),
    /// The computer name matches this pattern: `*` any run of characters, `?` one (case-insensitive).
    NamePattern(String),
    /// The OS platform equals this (case-insensitive), e.g. `Linux`.
    OsPlatform(String),
    /// The computer DNS name is in this domain (it or a subdomain).
    Domain(String),
}

impl GroupRule {
    pub fn matches(&self, m: &Machine) -> bool {
        match self {
            GroupRule::Tag(t) => m.machine_tags.iter().any(|x| x.eq_ignore_ascii_case(t)),
            GroupRule::NamePattern(p) => wildcard_match(
                &p.to_ascii_lowercase(),
                &m.computer_dns_name.to_ascii_lowercase(),
            ),
            GroupRule::OsPlatform(p) => m.os_platform.eq_ignore_ascii_case(p),
            GroupRule::Domain(d) => {
                let name = m.computer_dns_name.to_ascii_lowercase();
                let d = d.trim_start_matches('.').to_ascii_lowercase();
                name == d || name.ends_with(&format!(".{d}"))
            }
        }
    }
}

/// `*`/`?` wildcard matching, iterative (no backtracking blow-up).
fn wildcard_match(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// A device group: machines are assigned to the first group, by rank, whose rules all match;
/// machines no group matches are in the ungrouped group (id 0, no name), as in MDE.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MachineGroup {
    pub id: i64,
    pub name: String,
    pub description: Option<String>,
    /// Lower ranks are evaluated first.
    pub rank: i64,
    pub rules: Vec<GroupRule>,
    pub automation_level: AutomationLevel,
    #[serde(with = "crate::timefmt::option", default)]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_update_time: Option<OffsetDateTime>,
}

impl MachineGroup {
    pub fn matches(&self, m: &Machine) -> bool {
        !self.rules.is_empty() && self.rules.iter().all(|r| r.matches(m))
    }
}

/// The group a machine belongs in: `groups` must be sorted by rank.
pub fn assign<'a>(groups: &'a [MachineGroup], m: &Machine) -> Option<&'a MachineGroup> {
    groups.iter().find(|g| g.matches(m))
}

/// The automation level of machines no group matches.
pub const UNGROUPED_AUTOMATION: AutomationLevel = AutomationLevel::FullRemediation;

pub static MACHINE_GROUPS: EntitySet = EntitySet {
    name: "MachineGroups",
    fields: &[
        Field::new("id", FieldType::Int).not_null(),
        Field::new("name", FieldType::String).not_null(),
        Field::new("rank", FieldType::Int).not_null(),
        Field::new(
            "automationLevel",
            FieldType::Enum(AutomationLevel::VARIANTS),
        )
        .not_null(),
    ],
    expand: &[],
};

#[cfg(test)]
mod tests {
    use super::*;

    fn m(name: &str, os: &str, tags: &[&str]) -> Machine {
        let mut m = Machine::new(
            "a".repeat(40),
            name.into(),
            os.into(),
            OffsetDateTime::UNIX_EPOCH,
        );
        m.machine_tags = tags.iter().map(|t| t.to_string()).collect();
        m
    }

    #[test]
    fn rules_and_first_match_assignment() {
        let g = |id, rank, rules| MachineGroup {
            id,
            name: format!("g{id}"),
            description: None,
            rank,
            rules,
            automation_level: AutomationLevel::FullRemediation,
            last_update_time: None,
        };
        let groups = vec![
            g(
                1,
                1,
                vec![
                    GroupRule::Tag("PCI".into()),
                    GroupRule::OsPlatform("linux".into()),
                ],
            ),
            g(
                2,
                2,
                vec![GroupRule::NamePattern("web-*.corp.example".into())],
            ),
            g(3, 3, vec![GroupRule::Domain("corp.example".into())]),
        ];
        assert_eq!(
            assign(&groups, &m("db-1.corp.example", "Linux", &["pci"]))
                .unwrap()
                .id,
            1
        );
        assert_eq!(
            assign(&groups, &m("WEB-7.corp.example", "Linux", &[]))
                .unwrap()
                .id,
            2
        );
        assert_eq!(
            assign(&groups, &m("x.corp.example", "Windows11", &["pci"]))
                .unwrap()
                .id,
            3
        );
        assert!(assign(&groups, &m("x.notcorp.example", "Linux", &[])).is_none());
        assert!(assign(&groups, &m("corp.example.evil", "Linux", &[])).is_none());
    }

    #[test]
    fn wildcards() {
        assert!(wildcard_match("a*b?d", "axxxbcd"));
        assert!(!wildcard_match("a*b?d", "axxxbd"));
        assert!(wildcard_match("*", ""));
        assert!(wildcard_match(&"*a".repeat(20), &"a".repeat(40)));
    }

    #[test]
    fn health_follows_last_contact() {
        let now = OffsetDateTime::UNIX_EPOCH + time::Duration::days(30);
        assert_eq!(
            health_at(Some(now - time::Duration::days(1)), now),
            HealthStatus::Active
        );
        assert_eq!(
            health_at(Some(now - time::Duration::days(8)), now),
            HealthStatus::Inactive
        );
        assert_eq!(health_at(None, now), HealthStatus::NoSensorData);
    }
}
