//! What does not change about a device during a run, spelled once as rows need it.

use crate::fleet::{Device, Fleet, Os, Role};
use crate::hex;
use crate::rng::{self, Rng};
use crate::time::{DAY, HOUR, SECOND};

/// An account as rows spell it.
pub struct Acct {
    /// `AccountName` / `AccountDomain` spelling.
    pub name: String,
    pub domain: String,
    pub sid: String,
    pub upn: Option<String>,
    pub object_id: Option<String>,
    /// `InitiatingProcessAccount*` spelling (lowercase for the built-in Windows accounts).
    pub init_name: String,
    pub init_domain: String,
    pub admin: bool,
}

impl Acct {
    fn new(name: &str, domain: &str, sid: String, lower: bool) -> Acct {
        Acct {
            init_name: if lower {
                name.to_lowercase()
            } else {
                name.to_owned()
            },
            init_domain: if lower {
                domain.to_lowercase()
            } else {
                domain.to_owned()
            },
            name: name.to_owned(),
            domain: domain.to_owned(),
            sid,
            upn: None,
            object_id: None,
            admin: false,
        }
    }
}

/// Well-known account slots.
pub const SYSTEM: u16 = 0;
pub const LOCAL_SERVICE: u16 = 1;
pub const NETWORK_SERVICE: u16 = 2;

/// What does not change about a device during a run.
pub struct DevCtx {
    pub index: usize,
    pub id: String,
    pub name: String,
    pub host: String,
    pub os: Os,
    pub role: Role,
    pub ip: String,
    pub accounts: Vec<Acct>,
    /// Account index of the device's main user (workstations) or first admin (servers).
    pub user: Option<u16>,
    /// Account indexes of administrators (IT admin accounts on Windows, admin users on Linux).
    pub admins: Vec<u16>,
    pub utc_offset: i64,
    /// Offset of the hourly snapshot within the hour.
    pub snapshot_offset: i64,
    pub boot_ns: i64,
    pub dns: [String; 2],
    pub public_ip: String,
    pub home: String,
    /// DeviceInfo text that does not change between reports.
    pub info: InfoText,
    pub adapters: Vec<Adapter>,
    /// Key from which file hashes on this device are derived.
    pub hash_key: u64,
}

pub struct InfoText {
    pub logged_on: String,
    pub nobody: String,
    pub aad_device_id: String,
    pub hardware_uuid: String,
    pub manual_tags: String,
    pub client_version: &'static str,
    pub device_type: &'static str,
    pub additional: String,
}

pub struct Adapter {
    pub name: &'static str,
    pub mac: String,
    pub kind: &'static str,
    pub vendor: &'static str,
    pub connected: String,
    pub dns: String,
    pub dhcp: Option<String>,
    pub gateways: String,
    pub addresses: String,
    pub suffix: Option<String>,
    pub tunnel: &'static str,
}

impl DevCtx {
    pub fn new(fleet: &Fleet, index: usize, start_ns: i64) -> DevCtx {
        let d = &fleet.devices()[index];
        let mut r = Rng::derive(fleet.seed, &[0xC7C7, index as u64]);
        let site = &fleet.sites[d.site_index];
        let (accounts, user, admins) = accounts(fleet, d);
        let uptime = if d.role.is_server() {
            r.range(5, 90)
        } else {
            r.range(0, 12)
        } * DAY
            + r.range(1, 20) * HOUR;
        let ip = d.primary_ip().to_owned();
        let gateway = match ip.rsplit_once('.') {
            Some((net, _)) => format!("{net}.1"),
            None => ip.clone(),
        };
        let home = match (d.os, user) {
            (Os::Windows, Some(u)) => format!(r"C:\Users\{}", accounts[usize::from(u)].name),
            (Os::MacOs, Some(u)) => format!("/Users/{}", accounts[usize::from(u)].name),
            (Os::Linux, Some(u)) => format!("/home/{}", accounts[usize::from(u)].name),
            (Os::Windows, None) => r"C:\Users\Administrator".to_owned(),
            _ => "/root".to_owned(),
        };
        let info = info_text(fleet, d, &accounts, user, &mut r);
        let adapters = adapters(fleet, d, &ip, &gateway, &site.dns_servers, &mut r);
        DevCtx {
            index,
            id: d.id.clone(),
            name: d.name.clone(),
            host: d.host_name().to_owned(),
            os: d.os,
            role: d.role,
            ip,
            accounts,
            user,
            admins,
            utc_offset: site.utc_offset_hours * HOUR,
            snapshot_offset: r.range(0, 3599) * SECOND,
            boot_ns: start_ns - uptime,
            dns: site.dns_servers.clone(),
            public_ip: site.public_ip.clone(),
            home,
            info,
            adapters,
            hash_key: rng::hash_str(fleet.seed, &d.id),
        }
    }

    pub fn acct(&self, i: u16) -> &Acct {
        &self.accounts[usize::from(i)]
    }

    /// The session user, or the built-in administrator account for devices without one.
    pub fn user_or_admin(&self) -> u16 {
        self.user
            .or_else(|| self.admins.first().copied())
            .unwrap_or(SYSTEM)
    }
}

fn accounts(fleet: &Fleet, d: &Device) -> (Vec<Acct>, Option<u16>, Vec<u16>) {
    let mut v = Vec::new();
    let mut admins = Vec::new();
    let host = d.host_name();
    match d.os {
        Os::Windows => {
            v.push(Acct::new(
                "SYSTEM",
                "NT AUTHORITY",
                "S-1-5-18".to_owned(),
                true,
            ));
            v.push(Acct::new(
                "LOCAL SERVICE",
                "NT AUTHORITY",
                "S-1-5-19".to_owned(),
                true,
            ));
            v.push(Acct::new(
                "NETWORK SERVICE",
                "NT AUTHORITY",
                "S-1-5-20".to_owned(),
                true,
            ));
            let dom = fleet.netbios.as_str();
            let mut user = None;
            if let Some(p) = d.owner.map(|o| &fleet.people[o]) {
                let mut a = Acct::new(&p.sam, dom, p.sid.clone(), false);
                a.init_domain = dom.to_lowercase();
                a.upn = Some(p.upn.clone());
                a.object_id = Some(p.object_id.clone());
                user = Some(v.len() as u16);
                v.push(a);
            }
            // Every Windows device knows the IT admin accounts: they administer it remotely.
            for p in &fleet.people {
                if let (Some(adm), Some(sid)) = (&p.admin, &p.admin_sid) {
                    let mut a = Acct::new(adm, dom, sid.clone(), false);
                    a.init_domain = dom.to_lowercase();
                    a.upn = Some(format!("{adm}@{}", fleet.mail_domain));
                    a.admin = true;
                    admins.push(v.len() as u16);
                    v.push(a);
                }
            }
            let user = user.or_else(|| admins.first().copied());
            (v, user, admins)
        }
        Os::Linux | Os::MacOs => {
            let mut root = Acct::new("root", host, "S-1-5-18".to_owned(), false);
            root.admin = true;
            v.push(root);
            let base = rng::hash_str(fleet.seed, host) % 900_000_000 + 100_000_000;
            for (k, name) in d.users.iter().enumerate() {
                let uid = if d.os == Os::MacOs { 501 + k } else { 1000 + k };
                let mut a = Acct::new(
                    name,
                    host,
                    format!("S-1-5-21-{base}-{}-{}-{uid}", base / 7 + 11, base / 3 + 5),
                    false,
                );
                a.admin = d.os == Os::MacOs
                    || fleet
                        .people
                        .iter()
                        .any(|p| p.admin.is_some() && &p.sam == name)
                    || k == 0;
                if a.admin {
                    admins.push(v.len() as u16);
                }
                v.push(a);
            }
            let user = if v.len() > 1 { Some(1) } else { None };
            (v, user, admins)
        }
    }
}

fn info_text(
    fleet: &Fleet,
    d: &Device,
    accounts: &[Acct],
    user: Option<u16>,
    r: &mut Rng,
) -> InfoText {
    let logged_on = match user
        .filter(|_| !d.role.is_server())
        .map(|u| &accounts[usize::from(u)])
    {
        Some(a) if d.os == Os::Windows => {
            format!(
                r#"[{{"UserName":"{}","DomainName":"{}","Sid":"{}"}}]"#,
                a.name, a.domain, a.sid
            )
        }
        Some(a) => format!(r#"[{{"UserName":"{}"}}]"#, a.name),
        None => "[]".to_owned(),
    };
    let tags: Vec<String> = d.tags.iter().map(|t| format!("\"{t}\"")).collect();
    InfoText {
        logged_on,
        nobody: "[]".to_owned(),
        aad_device_id: hex::guid(r.next_u64()),
        hardware_uuid: hex::guid(r.next_u64()),
        manual_tags: format!("[{}]", tags.join(",")),
        client_version: match d.os {
            Os::Windows => "10.8760.22621.3527",
            Os::Linux => "101.24082.0004",
            Os::MacOs => "101.24092.0011",
        },
        device_type: if d.role.is_server() {
            "Server"
        } else {
            "Workstation"
        },
        additional: format!(r#"{{"Domain":"{}","Site":"{}"}}"#, fleet.ad_domain, d.site),
    }
}

fn adapters(
    fleet: &Fleet,
    d: &Device,
    ip: &str,
    gw: &str,
    dns: &[String; 2],
    r: &mut Rng,
) -> Vec<Adapter> {
    let mac = |r: &mut Rng| {
        let mut b = [0u8; 6];
        r.fill(&mut b);
        b[0] &= 0xFC; // unicast, globally administered
        b.iter()
            .map(|x| format!("{x:02X}"))
            .collect::<Vec<_>>()
            .join("-")
    };
    let dns_json = format!(r#"["{}","{}"]"#, dns[0], dns[1]);
    let (prefix, category) = if d.os == Os::Windows {
        (24, "Domain")
    } else {
        (24, "Private")
    };
    let network_name = if d.os == Os::Windows {
        fleet.ad_domain.clone()
    } else {
        format!("{}-net", d.site.to_lowercase().replace(' ', "-"))
    };
    let connected = format!(
        r#"[{{"Name":"{network_name}","Category":"{category}","Description":"{network_name}","IsConnectedToInternet":true}}]"#
    );
    let addresses =
        format!(r#"[{{"IPAddress":"{ip}","SubnetPrefix":{prefix},"AddressType":"Private"}}]"#);
    let gateways = format!(r#"["{gw}"]"#);
    let dhcp = Some(dns[0].clone()).filter(|_| !d.role.is_server());
    let suffix = (d.os == Os::Windows).then(|| fleet.ad_domain.clone());
    let mut out = Vec::new();
    match (d.os, d.role) {
        (Os::Windows, Role::Laptop) => out.push(Adapter {
            name: "Wi-Fi",
            mac: mac(r),
            kind: "Wireless80211",
            vendor: "Intel Corporation",
            connected,
            dns: dns_json,
            dhcp,
            gateways,
            addresses,
            suffix,
            tunnel: "None",
        }),
        (Os::Windows, _) => out.push(Adapter {
            name: "Ethernet",
            mac: mac(r),
            kind: "Ethernet",
            vendor: if d.role.is_server() {
                "VMware, Inc."
            } else {
                "Intel Corporation"
            },
            connected,
            dns: dns_json,
            dhcp,
            gateways,
            addresses,
            suffix,
            tunnel: "None",
        }),
        (Os::Linux, _) => {
            out.push(Adapter {
                name: "ens5",
                mac: mac(r),
                kind: "Ethernet",
                vendor: "Amazon.com, Inc.",
                connected,
                dns: dns_json,
                dhcp,
                gateways,
                addresses,
                suffix,
                tunnel: "None",
            });
            if let Some(second) = d.ips.get(1) {
                out.push(Adapter {
                    name: "ens6",
                    mac: mac(r),
                    kind: "Ethernet",
                    vendor: "Amazon.com, Inc.",
                    connected: "[]".to_owned(),
                    dns: "[]".to_owned(),
                    dhcp: None,
                    gateways: "[]".to_owned(),
                    addresses: format!(
                        r#"[{{"IPAddress":"{second}","SubnetPrefix":24,"AddressType":"Private"}}]"#
                    ),
                    suffix: None,
                    tunnel: "None",
                });
            }
        }
        (Os::MacOs, _) => {
            out.push(Adapter {
                name: "en0",
                mac: mac(r),
                kind: "Wireless80211",
                vendor: "Apple",
                connected,
                dns: dns_json,
                dhcp,
                gateways,
                addresses,
                suffix,
                tunnel: "None",
            });
            // VPN tunnel adapters report zero MACs and type Unknown on macOS.
            out.push(Adapter {
                name: "utun3",
                mac: "00-00-00-00-00-00".to_owned(),
                kind: "Unknown",
                vendor: "",
                connected: "[]".to_owned(),
                dns: "[]".to_owned(),
                dhcp: None,
                gateways: "[]".to_owned(),
                addresses: "[]".to_owned(),
                suffix: None,
                tunnel: "None",
            });
        }
    }
    out
}
