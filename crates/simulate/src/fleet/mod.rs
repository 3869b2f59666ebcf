//! The simulated organisation: sites with their private address plans, people, and devices with
//! operating systems, roles, names, addresses, accounts and tags — all derived from the seed.

mod build;

use crate::spec::FleetSpec;
use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Os {
    Windows,
    Linux,
    MacOs,
}

impl Os {
    pub const fn name(self) -> &'static str {
        match self {
            Os::Windows => "Windows",
            Os::Linux => "Linux",
            Os::MacOs => "macOS",
        }
    }
}

impl fmt::Display for Os {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a device is for; decides its background activity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    Desktop,
    Laptop,
    DomainController,
    FileServer,
    SqlServer,
    WebServer,
    AppServer,
    Database,
    BuildServer,
}

impl Role {
    pub fn is_server(self) -> bool {
        !matches!(self, Role::Desktop | Role::Laptop)
    }
}

/// An office with its private address plan (10.x, 172.16–31.x or 192.168.x) and NAT address.
#[derive(Clone, Debug)]
pub struct Site {
    pub code: &'static str,
    pub city: &'static str,
    pub utc_offset_hours: i64,
    /// The site's private network, e.g. `10.20.0.0/16`.
    pub subnet: String,
    pub public_ip: String,
    pub dns_servers: [String; 2],
    pub(crate) net: [u8; 2],
    pub(crate) third: u8,
}

impl Site {
    /// Address of the `n`th client (workstation) at this site.
    pub(crate) fn client_ip(&self, n: usize) -> [u8; 4] {
        [
            self.net[0],
            self.net[1],
            self.third.wrapping_add(4 + (n / 200) as u8),
            20 + (n % 200) as u8,
        ]
    }

    pub(crate) fn server_ip(&self, n: usize) -> [u8; 4] {
        [self.net[0], self.net[1], self.third, 20 + (n % 200) as u8]
    }
}

/// A person of the organisation with their directory identity.
#[derive(Clone, Debug)]
pub struct Person {
    pub first: &'static str,
    pub last: &'static str,
    /// sAMAccountName, e.g. `asmith`.
    pub sam: String,
    pub upn: String,
    pub sid: String,
    pub object_id: String,
    pub department: &'static str,
    /// Separate admin account (`adm-asmith`) for IT staff.
    pub admin: Option<String>,
    pub admin_sid: Option<String>,
}

/// Operating-system and hardware facts a device reports in DeviceInfo.
#[derive(Clone, Debug)]
pub struct Platform {
    pub os_platform: &'static str,
    pub os_build: Option<i64>,
    pub os_version: &'static str,
    pub os_version_info: &'static str,
    pub os_distribution: &'static str,
    pub build_revision: &'static str,
    pub vendor: &'static str,
    pub model: &'static str,
}

/// One simulated endpoint.
#[derive(Clone, Debug)]
pub struct Device {
    /// 40 lowercase hex characters, as Defender's DeviceId.
    pub id: String,
    /// DeviceName: the lowercase FQDN on domain-joined Windows, a bare host name elsewhere.
    pub name: String,
    pub os: Os,
    pub role: Role,
    pub ips: Vec<String>,
    /// Accounts that sign in to this device.
    pub users: Vec<String>,
    pub tags: Vec<String>,
    pub site: String,
    pub machine_group: String,
    pub internet_facing: bool,
    pub platform: Platform,
    /// Index into [`Fleet::people`] of the device's main user (workstations).
    pub owner: Option<usize>,
    pub(crate) site_index: usize,
}

impl Device {
    /// The host part of the name (`sea-lt-0001` for `sea-lt-0001.corp.contoso.com`).
    pub fn host_name(&self) -> &str {
        self.name.split('.').next().unwrap_or(&self.name)
    }

    /// Whether `name` names this device: full name, host part (case-insensitive) or DeviceId.
    pub fn is_named(&self, name: &str) -> bool {
        self.name.eq_ignore_ascii_case(name)
            || self.host_name().eq_ignore_ascii_case(name)
            || self.id == name
    }

    pub fn primary_ip(&self) -> &str {
        self.ips.first().map_or("127.0.0.1", String::as_str)
    }
}

/// The whole organisation.
#[derive(Clone, Debug)]
pub struct Fleet {
    pub seed: u64,
    /// Short company name, e.g. `contoso`.
    pub company: &'static str,
    /// Mail/UPN domain, e.g. `contoso.com`.
    pub mail_domain: String,
    /// Active Directory DNS domain, e.g. `corp.contoso.com`.
    pub ad_domain: String,
    /// NetBIOS domain, e.g. `CONTOSO`.
    pub netbios: String,
    /// Domain SID prefix `S-1-5-21-a-b-c`.
    pub domain_sid: String,
    pub sites: Vec<Site>,
    pub people: Vec<Person>,
    devices: Vec<Device>,
}

impl Fleet {
    pub fn new(spec: &FleetSpec) -> Fleet {
        build::Builder::new(spec.seed).build(spec.devices)
    }

    pub fn devices(&self) -> &[Device] {
        &self.devices
    }

    /// The device `name` refers to (see [`Device::is_named`]).
    pub fn find(&self, name: &str) -> Option<usize> {
        self.devices.iter().position(|d| d.is_named(name))
    }
}
