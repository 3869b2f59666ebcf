//! Internet endpoints that simulated processes talk to, by role. Addresses are fixed per host so
//! a domain always resolves to the same IP, as it mostly does within a day.

/// One remote endpoint.
#[derive(Clone, Copy, Debug)]
pub struct Dest {
    pub host: &'static str,
    pub ip: &'static str,
    pub port: u16,
    pub udp: bool,
}

const fn tcp(host: &'static str, ip: &'static str, port: u16) -> Dest {
    Dest {
        host,
        ip,
        port,
        udp: false,
    }
}

const fn https(host: &'static str, ip: &'static str) -> Dest {
    tcp(host, ip, 443)
}

pub static BROWSING: &[Dest] = &[
    https("www.google.com", "142.250.72.196"),
    https("fonts.gstatic.com", "142.250.64.99"),
    https("www.gstatic.com", "142.250.81.227"),
    https("docs.google.com", "142.250.68.14"),
    https("www.youtube.com", "142.250.69.206"),
    https("github.com", "140.82.112.4"),
    https("api.github.com", "140.82.113.6"),
    https("stackoverflow.com", "151.101.1.69"),
    https("en.wikipedia.org", "208.80.154.224"),
    https("www.linkedin.com", "13.107.42.14"),
    https("login.microsoftonline.com", "20.190.151.68"),
    https("www.office.com", "13.107.6.156"),
    https("www.bing.com", "204.79.197.200"),
    https("cdn.jsdelivr.net", "151.101.129.229"),
    https("ajax.googleapis.com", "142.250.80.10"),
    https("www.amazon.com", "52.94.236.248"),
    https("zoom.us", "170.114.52.2"),
    https("news.ycombinator.com", "209.216.230.207"),
    https("www.nytimes.com", "151.101.193.164"),
    https("www.salesforce.com", "23.1.154.223"),
    https("app.hubspot.com", "104.16.118.116"),
    https("www.atlassian.com", "104.192.141.1"),
    https("slack.com", "3.81.43.21"),
    https("www.dropbox.com", "162.125.1.18"),
    https("update.googleapis.com", "142.250.65.163"),
    https("clients2.google.com", "142.250.65.174"),
    https("edge.microsoft.com", "13.107.21.239"),
];

/// Where users download files from (FileOriginUrl of downloads).
pub static DOWNLOADS: &[Dest] = &[
    https("dl.google.com", "142.250.72.206"),
    https("download.microsoft.com", "23.35.108.12"),
    https("objects.githubusercontent.com", "185.199.108.133"),
    https("www.dropbox.com", "162.125.1.18"),
    https("drive.usercontent.google.com", "142.250.65.161"),
    https("cdn.zoom.us", "170.114.10.87"),
];

pub static OUTLOOK: &[Dest] = &[
    https("outlook.office365.com", "52.96.88.162"),
    https("outlook.office.com", "52.96.91.34"),
    https("substrate.office.com", "52.96.40.242"),
    https("autodiscover.outlook.com", "52.96.109.56"),
];

pub static TEAMS: &[Dest] = &[
    https("teams.microsoft.com", "52.113.194.132"),
    https("teams.events.data.microsoft.com", "52.182.143.212"),
    https("go.trouter.teams.microsoft.com", "52.114.128.43"),
    https("api.flightproxy.teams.microsoft.com", "52.112.238.71"),
];

pub static OFFICE_APPS: &[Dest] = &[
    https("officeclient.microsoft.com", "52.109.8.20"),
    https("nexusrules.officeapps.live.com", "52.111.236.21"),
    https("roaming.officeapps.live.com", "52.109.76.243"),
    https("ecs.office.com", "52.113.194.133"),
];

pub static ONEDRIVE: &[Dest] = &[
    https("g.live.com", "13.107.42.13"),
    https("oneclient.sfx.ms", "152.199.4.33"),
    https("my.microsoftpersonalcontent.com", "13.107.136.9"),
];

pub static WINDOWS_SERVICES: &[Dest] = &[
    https("settings-win.data.microsoft.com", "20.42.65.92"),
    https("v10.events.data.microsoft.com", "20.42.73.26"),
    https("fe3cr.delivery.mp.microsoft.com", "20.241.22.174"),
    tcp("ctldl.windowsupdate.com", "93.184.221.240", 80),
    https("login.live.com", "20.190.159.23"),
    https("arc.msn.com", "20.50.80.209"),
    Dest {
        host: "time.windows.com",
        ip: "168.61.215.74",
        port: 123,
        udp: true,
    },
    https("licensing.mp.microsoft.com", "20.109.209.108"),
];

pub static DEFENDER: &[Dest] = &[
    https("winatp-gw-eus.microsoft.com", "20.44.10.123"),
    https("us-v20.events.data.microsoft.com", "13.69.239.79"),
    https("wdcp.microsoft.com", "20.150.10.12"),
    https("definitionupdates.microsoft.com", "13.107.4.52"),
    https("x.cp.wd.microsoft.com", "52.232.227.84"),
];

pub static LINUX_SERVICES: &[Dest] = &[
    tcp("archive.ubuntu.com", "91.189.91.82", 80),
    tcp("security.ubuntu.com", "91.189.91.83", 80),
    https("packages.microsoft.com", "13.90.21.104"),
    https("registry-1.docker.io", "54.227.20.253"),
    https("pypi.org", "151.101.128.223"),
    https("files.pythonhosted.org", "151.101.64.223"),
    https("api.github.com", "140.82.113.6"),
    Dest {
        host: "ntp.ubuntu.com",
        ip: "185.125.190.57",
        port: 123,
        udp: true,
    },
];

pub static MAC_SERVICES: &[Dest] = &[
    https("swscan.apple.com", "17.253.83.201"),
    https("gdmf.apple.com", "17.32.194.9"),
    https("api.apple-cloudkit.com", "17.248.190.3"),
    https("gateway.icloud.com", "17.248.185.71"),
    https("officecdnmac.microsoft.com", "23.48.210.74"),
    https("mobile.events.data.microsoft.com", "13.89.178.26"),
];

pub static MAC_APPS: &[Dest] = &[
    https("slack.com", "3.81.43.21"),
    https("wss-primary.slack.com", "3.89.221.18"),
    https("zoom.us", "170.114.52.2"),
    https("www.google.com", "142.250.72.196"),
    https("github.com", "140.82.112.4"),
    https("outlook.office365.com", "52.96.88.162"),
];

/// Hosting ranges that attacker infrastructure is drawn from (first two octets).
pub static ATTACKER_NETS: &[(u8, u8)] = &[
    (45, 95),
    (185, 220),
    (91, 215),
    (193, 142),
    (103, 75),
    (5, 188),
    (194, 165),
];

/// Networks that internet background noise (SSH scanners) comes from.
pub static SCANNER_NETS: &[(u8, u8)] = &[
    (61, 177),
    (218, 92),
    (112, 85),
    (43, 156),
    (179, 43),
    (165, 232),
    (80, 94),
];

/// Public address blocks for the company's sites (egress NAT).
pub static ISP_NETS: &[(u8, u8)] = &[
    (64, 58),
    (73, 162),
    (81, 2),
    (84, 17),
    (98, 139),
    (203, 27),
    (49, 255),
];

/// Domains attackers register for C2 (a random label is prefixed).
pub static C2_DOMAINS: &[&str] = &[
    "officeupdate-cdn.com",
    "msft-telemetry.net",
    "cloud-sync-api.net",
    "secure-docs-share.com",
    "cdn-static-assets.org",
];

/// Mining pools: (host, port).
pub static POOLS: &[(&str, u16)] = &[
    ("pool.supportxmr.com", 3333),
    ("xmr.2miners.com", 2222),
    ("gulf.moneroocean.stream", 10128),
    ("xmr-eu1.nanopool.org", 14444),
];
