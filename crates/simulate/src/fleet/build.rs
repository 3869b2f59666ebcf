//! Deriving the organisation from the seed: sites and their address plans, OS quotas and roles,
//! people, names, accounts and tags.

use super::{Device, Fleet, Os, Person, Platform, Role, Site};
use crate::catalog::names;
use crate::hex;
use crate::rng::Rng;
use std::collections::BTreeSet;

/// Stream id for [`Rng::derive`], so the fleet draws its own numbers.
const FLEET_STREAM: u64 = 0xF1EE7;

pub(super) struct Builder {
    rng: Rng,
    seed: u64,
    names: BTreeSet<String>,
}

impl Builder {
    pub(super) fn new(seed: u64) -> Builder {
        Builder {
            rng: Rng::derive(seed, &[FLEET_STREAM]),
            seed,
            names: BTreeSet::new(),
        }
    }

    pub(super) fn build(mut self, n: usize) -> Fleet {
        let company = *self.rng.pick(names::COMPANIES);
        let mail_domain = format!("{company}.com");
        let ad_domain = format!("corp.{company}.com");
        let netbios = company.to_ascii_uppercase();
        let domain_sid = format!(
            "S-1-5-21-{}-{}-{}",
            self.rng.range(1_000_000_000, 4_000_000_000),
            self.rng.range(1_000_000_000, 4_000_000_000),
            self.rng.range(100_000_000, 4_000_000_000)
        );
        let sites = self.sites(n);
        let roles = self.roles(n);
        let owners = roles.iter().filter(|(_, r)| !r.is_server()).count();
        let people = self.people(owners + 2, &mail_domain, &domain_sid);

        // Per-site counters for addresses and per-role counters for names.
        let mut clients_at = vec![0usize; sites.len()];
        let mut servers = 0usize;
        let mut next_owner = 0usize;
        let mut devices = Vec::with_capacity(n);
        for (os, role) in roles {
            let site_index = if role.is_server() {
                0
            } else {
                self.site_for(sites.len())
            };
            let site = &sites[site_index];
            let ip = if role.is_server() {
                servers += 1;
                site.server_ip(servers - 1)
            } else {
                clients_at[site_index] += 1;
                site.client_ip(clients_at[site_index] - 1)
            };
            let owner = (!role.is_server()).then(|| {
                next_owner += 1;
                next_owner - 1
            });
            let platform = self.platform(os, role);
            let name = self.name(os, role, site, owner.map(|o| &people[o]), &ad_domain);
            let internet_facing = role == Role::WebServer;
            let mut ips = vec![format!("{}.{}.{}.{}", ip[0], ip[1], ip[2], ip[3])];
            if os == Os::Linux && role != Role::WebServer && self.rng.chance(0.3) {
                // A second interface on the backend network (storage / replication).
                ips.push(format!("10.250.{}.{}", ip[2], ip[3]));
            }
            let users = self.users(os, role, owner.map(|o| &people[o]), &people, &platform);
            let tags = self.tags(os, role, site, owner.map(|o| &people[o]));
            let machine_group = match (os, role.is_server()) {
                (Os::Windows, false) => format!("Workstations - {}", site.city),
                (Os::Windows, true) => "Servers - Windows".to_owned(),
                (Os::Linux, _) => "Servers - Linux".to_owned(),
                (Os::MacOs, _) => "Mac Laptops".to_owned(),
            };
            let id = hex::digest(self.rng.next_u64(), 20);
            devices.push(Device {
                id,
                name,
                os,
                role,
                ips,
                users,
                tags,
                site: site.city.to_owned(),
                machine_group,
                internet_facing,
                platform,
                owner,
                site_index,
            });
        }
        Fleet {
            seed: self.seed,
            company,
            mail_domain,
            ad_domain,
            netbios,
            domain_sid,
            sites,
            people,
            devices,
        }
    }

    /// One site per ~40 devices (at most the catalog's), each with its own address plan.
    fn sites(&mut self, n: usize) -> Vec<Site> {
        let count = (1 + n / 40).min(names::SITES.len());
        let mut order: Vec<usize> = (0..names::SITES.len()).collect();
        shuffle(&mut self.rng, &mut order);
        (0..count)
            .map(|i| {
                let (code, city, utc_offset_hours) = names::SITES[order[i]];
                let (net, third, subnet) = match i % 3 {
                    0 => {
                        let b = (20 + 10 * i % 200) as u8;
                        ([10, b], 0u8, format!("10.{b}.0.0/16"))
                    }
                    1 => {
                        let b = (16 + i % 16) as u8;
                        ([172, b], 0u8, format!("172.{b}.0.0/16"))
                    }
                    _ => {
                        let c = (10 + 20 * i % 200) as u8;
                        ([192, 168], c, format!("192.168.{c}.0/22"))
                    }
                };
                let isp = self.rng.pick(crate::catalog::net::ISP_NETS);
                let public_ip = format!(
                    "{}.{}.{}.{}",
                    isp.0,
                    isp.1,
                    self.rng.range(1, 254),
                    self.rng.range(1, 254)
                );
                let dns = |h: u8| format!("{}.{}.{}.{h}", net[0], net[1], third);
                Site {
                    code,
                    city,
                    utc_offset_hours,
                    subnet,
                    public_ip,
                    dns_servers: [dns(10), dns(11)],
                    net,
                    third,
                }
            })
            .collect()
    }

    /// Exact OS quotas (70/20/10, rounded) so even small fleets have the documented mix, then
    /// roles, then a shuffle so the device list interleaves them.
    fn roles(&mut self, n: usize) -> Vec<(Os, Role)> {
        let win = ((n as f64) * 0.7).round() as usize;
        let linux = (((n as f64) * 0.2).round() as usize).min(n - win.min(n));
        let win = win.min(n);
        let mac = n - win - linux;
        let win_servers = if win >= 5 {
            ((win as f64 * 0.12).round() as usize).max(1)
        } else {
            0
        };
        const WIN_SERVERS: [Role; 6] = [
            Role::DomainController,
            Role::FileServer,
            Role::SqlServer,
            Role::FileServer,
            Role::DomainController,
            Role::SqlServer,
        ];
        const LINUX: [Role; 6] = [
            Role::WebServer,
            Role::AppServer,
            Role::Database,
            Role::BuildServer,
            Role::WebServer,
            Role::AppServer,
        ];
        let mut out = Vec::with_capacity(n);
        for i in 0..win {
            let role = if i < win_servers {
                WIN_SERVERS[i % WIN_SERVERS.len()]
            } else if self.rng.chance(0.55) {
                Role::Laptop
            } else {
                Role::Desktop
            };
            out.push((Os::Windows, role));
        }
        out.extend((0..linux).map(|i| (Os::Linux, LINUX[i % LINUX.len()])));
        out.extend((0..mac).map(|_| (Os::MacOs, Role::Laptop)));
        shuffle(&mut self.rng, &mut out);
        out
    }

    /// Headquarters (site 0) gets about half the people.
    fn site_for(&mut self, sites: usize) -> usize {
        if sites == 1 || self.rng.chance(0.5) {
            0
        } else {
            self.rng.range(1, sites as i64 - 1) as usize
        }
    }

    fn people(&mut self, count: usize, mail: &str, domain_sid: &str) -> Vec<Person> {
        let mut taken = BTreeSet::new();
        (0..count)
            .map(|i| {
                let first = *self.rng.pick(names::FIRST);
                let last = *self.rng.pick(names::LAST);
                let base = format!(
                    "{}{}",
                    first[..1].to_ascii_lowercase(),
                    last.to_ascii_lowercase()
                );
                let mut sam = base.clone();
                let mut k = 2;
                while !taken.insert(sam.clone()) {
                    sam = format!("{base}{k}");
                    k += 1;
                }
                let local = if k == 2 {
                    format!(
                        "{}.{}",
                        first.to_ascii_lowercase(),
                        last.to_ascii_lowercase()
                    )
                } else {
                    sam.clone()
                };
                // The first two people are the IT admins every fleet has.
                let department = if i < 2 {
                    "IT"
                } else {
                    *self.rng.pick(names::DEPARTMENTS)
                };
                let rid = 1105 + i as i64 * 3;
                let admin = (department == "IT").then(|| format!("adm-{sam}"));
                let admin_sid = admin.as_ref().map(|_| format!("{domain_sid}-{}", rid + 1));
                Person {
                    first,
                    last,
                    upn: format!("{local}@{mail}"),
                    sid: format!("{domain_sid}-{rid}"),
                    object_id: hex::guid(self.rng.next_u64()),
                    sam,
                    department,
                    admin,
                    admin_sid,
                }
            })
            .collect()
    }

    fn platform(&mut self, os: Os, role: Role) -> Platform {
        let p = |os_platform,
                 os_build,
                 os_version,
                 os_version_info,
                 os_distribution,
                 build_revision,
                 vendor,
                 model| Platform {
            os_platform,
            os_build,
            os_version,
            os_version_info,
            os_distribution,
            build_revision,
            vendor,
            model,
        };
        match (os, role.is_server()) {
            (Os::Windows, false) => {
                let (vendor, model) = *self.rng.pick(if role == Role::Laptop {
                    &[
                        ("LENOVO", "ThinkPad T14 Gen 4"),
                        ("Dell Inc.", "Latitude 7440"),
                        ("HP", "HP EliteBook 840 G10"),
                    ][..]
                } else {
                    &[
                        ("Dell Inc.", "OptiPlex 7010"),
                        ("HP", "HP EliteDesk 800 G9 Desktop Mini PC"),
                        ("LENOVO", "ThinkCentre M70q Gen 4"),
                    ][..]
                });
                if self.rng.chance(0.75) {
                    p(
                        "Windows11",
                        Some(22631),
                        "10.0",
                        "23H2",
                        "Windows",
                        "3737",
                        vendor,
                        model,
                    )
                } else {
                    p(
                        "Windows10",
                        Some(19045),
                        "10.0",
                        "22H2",
                        "Windows",
                        "4651",
                        vendor,
                        model,
                    )
                }
            }
            (Os::Windows, true) => {
                if self.rng.chance(0.7) {
                    p(
                        "WindowsServer2022",
                        Some(20348),
                        "10.0",
                        "21H2",
                        "Windows",
                        "2527",
                        "VMware, Inc.",
                        "VMware20,1",
                    )
                } else {
                    p(
                        "WindowsServer2019",
                        Some(17763),
                        "10.0",
                        "1809",
                        "Windows",
                        "5936",
                        "VMware, Inc.",
                        "VMware7,1",
                    )
                }
            }
            (Os::Linux, _) => {
                let (vendor, model) = *self.rng.pick(&[
                    ("Amazon EC2", "m6i.large"),
                    ("VMware, Inc.", "VMware20,1"),
                    ("Amazon EC2", "c6i.xlarge"),
                ]);
                match self.rng.weighted(&[50, 20, 30]) {
                    0 => p(
                        "Linux",
                        None,
                        "22.04",
                        "22.04.4 LTS (Jammy Jellyfish)",
                        "Ubuntu",
                        "",
                        vendor,
                        model,
                    ),
                    1 => p(
                        "Linux",
                        None,
                        "24.04",
                        "24.04 LTS (Noble Numbat)",
                        "Ubuntu",
                        "",
                        vendor,
                        model,
                    ),
                    _ => p(
                        "Linux",
                        None,
                        "9.4",
                        "9.4 (Plow)",
                        "RedHat",
                        "",
                        vendor,
                        model,
                    ),
                }
            }
            (Os::MacOs, _) => {
                let model =
                    *self
                        .rng
                        .pick(&["MacBookPro18,3", "Mac14,9", "MacBookAir10,1", "Mac15,6"]);
                if self.rng.chance(0.7) {
                    p("macOS", None, "14.5", "Sonoma", "macOS", "", "Apple", model)
                } else {
                    p(
                        "macOS", None, "13.6.7", "Ventura", "macOS", "", "Apple", model,
                    )
                }
            }
        }
    }

    fn name(
        &mut self,
        os: Os,
        role: Role,
        site: &Site,
        owner: Option<&Person>,
        ad: &str,
    ) -> String {
        let stem = match (os, role) {
            (Os::Windows, Role::Laptop) => {
                format!("{}-lt-{:04}", site.code, self.rng.range(1, 9999))
            }
            (Os::Windows, Role::Desktop) => {
                format!("{}-ws-{:04}", site.code, self.rng.range(1, 9999))
            }
            (Os::Windows, Role::DomainController) => format!("{}-dc01", site.code),
            (Os::Windows, Role::FileServer) => format!("{}-fs01", site.code),
            (Os::Windows, _) => format!("{}-sql01", site.code),
            (Os::Linux, Role::WebServer) => "web-prod-01".to_owned(),
            (Os::Linux, Role::AppServer) => "app-prod-01".to_owned(),
            (Os::Linux, Role::Database) => "db-prod-01".to_owned(),
            (Os::Linux, _) => "build-01".to_owned(),
            (Os::MacOs, _) => match owner {
                Some(p) => format!("{}s-macbook-pro", p.first.to_ascii_lowercase()),
                None => "macbook-pro".to_owned(),
            },
        };
        // Make the host part unique: bump the trailing number, or add one.
        let mut host = stem.clone();
        let mut k = 2;
        while self.names.contains(&host) {
            host = match stem.strip_suffix("01") {
                Some(base) if os != Os::MacOs => format!("{base}{k:02}"),
                _ => format!("{stem}-{k}"),
            };
            k += 1;
        }
        self.names.insert(host.clone());
        if os == Os::Windows {
            format!("{host}.{ad}")
        } else {
            host
        }
    }

    fn users(
        &mut self,
        os: Os,
        role: Role,
        owner: Option<&Person>,
        people: &[Person],
        platform: &Platform,
    ) -> Vec<String> {
        let admins = people.iter().filter_map(|p| p.admin.clone());
        match os {
            Os::Windows if role.is_server() => {
                let mut u: Vec<String> = admins.collect();
                match role {
                    Role::SqlServer => u.push("svc-sql".to_owned()),
                    Role::FileServer => u.push("svc-backup".to_owned()),
                    _ => {}
                }
                u
            }
            Os::Windows => owner.map(|p| vec![p.sam.clone()]).unwrap_or_default(),
            Os::Linux => {
                let default = if platform.os_distribution == "Ubuntu" {
                    "ubuntu"
                } else {
                    "ec2-user"
                };
                let mut u = vec![default.to_owned()];
                u.extend(
                    people
                        .iter()
                        .filter(|p| p.admin.is_some())
                        .map(|p| p.sam.clone()),
                );
                let svc = match role {
                    Role::WebServer => "www-data",
                    Role::Database => "postgres",
                    Role::BuildServer => "jenkins",
                    _ => "deploy",
                };
                u.push(svc.to_owned());
                u
            }
            Os::MacOs => owner
                .map(|p| vec![p.first.to_ascii_lowercase()])
                .unwrap_or_default(),
        }
    }

    fn tags(&mut self, os: Os, role: Role, site: &Site, owner: Option<&Person>) -> Vec<String> {
        let mut t = Vec::new();
        match (os, role) {
            (Os::Linux, _) => {
                t.push("Linux".to_owned());
                t.push("Production".to_owned());
                if role == Role::WebServer {
                    t.push("Internet-Facing".to_owned());
                }
            }
            (Os::Windows, r) if r.is_server() => {
                t.push("Servers".to_owned());
                if r == Role::DomainController {
                    t.push("Tier0".to_owned());
                }
            }
            _ => {
                if let Some(p) = owner {
                    t.push(p.department.to_owned());
                }
                t.push(site.city.to_owned());
                if os == Os::MacOs {
                    t.push("macOS".to_owned());
                }
                if self.rng.chance(0.05) {
                    t.push("VIP".to_owned());
                }
            }
        }
        t
    }
}

fn shuffle<T>(rng: &mut Rng, v: &mut [T]) {
    for i in (1..v.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        v.swap(i, j);
    }
}
