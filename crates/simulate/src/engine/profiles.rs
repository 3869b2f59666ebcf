//! How each kind of process behaves: its image, command lines, lifetime, the DLLs it loads at
//! start, and its recurring activities (connections, file writes, registry writes, children,
//! logons it records) with their mean intervals.
//!
//! Command-line templates may use `{u}` (account name), `{home}`, `{doc}` (the process's
//! document), `{n}` (a number), `{h}` (8 hex digits), `{guid}`, `{srv}` (a server's host name),
//! `{co}` (company) and `{dom}` (AD domain).

use crate::catalog::Img;
use crate::catalog::net::{self, Dest};

/// A connection to something inside the organisation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Internal {
    Dns,
    Smb,
    Ldap,
    Sql,
    Postgres,
    AppHttp,
    Rdp,
    Ssh,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    Autosave,
    Download,
    OutlookAttachment,
    OneDriveSync,
    WindowsTemp,
    Prefetch,
    SqlBackup,
    SmbWrite,
    LinuxTmp,
    BuildOutput,
    MacCache,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegKind {
    WindowsUpdate,
    AppSwitched,
    TaskCache,
    Defender,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogonKind {
    /// Kerberos network logons on a domain controller.
    DcKerberos,
    /// SMB sessions on a file server.
    SmbSession,
    /// An IT admin's RDP session on a Windows server.
    RdpAdmin,
    /// An admin's SSH session on a Linux server (logon, then a shell with commands).
    SshAdmin,
    /// Internet background noise: failed SSH logons from scanners.
    SshScan,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    PowerShellCommand,
    DefenderStatus,
}

/// A recurring activity of a process.
#[derive(Clone, Copy, Debug)]
pub enum Act {
    Net(&'static [Dest]),
    Internal(Internal),
    /// Accepting a connection on this local port.
    Inbound(u16),
    File(FileKind),
    Reg(RegKind),
    Child(&'static [(P, u32)]),
    Logon(LogonKind),
    Event(EventKind),
}

/// Whose account a new process runs as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunsAs {
    Parent,
    System,
    LocalService,
    NetworkService,
    /// The device's service account (Linux), NETWORK SERVICE on Windows.
    Service,
}

pub struct Profile {
    pub img: Img,
    pub cmds: &'static [&'static str],
    /// Lifetime in seconds (min, max); `(0, 0)` lives as long as its session (or forever).
    pub life: (f64, f64),
    pub acts: &'static [(Act, f64)],
    pub dlls: &'static [Img],
    pub runs_as: RunsAs,
    /// Console programs get a `conhost.exe` child right after they start (Windows).
    pub console: bool,
    /// The extension of the document the process opens (its `{doc}`), if any.
    pub doc: Option<&'static str>,
}

const fn p(img: Img, cmds: &'static [&'static str]) -> Profile {
    Profile {
        img,
        cmds,
        life: (0.0, 0.0),
        acts: &[],
        dlls: &[],
        runs_as: RunsAs::Parent,
        console: false,
        doc: None,
    }
}

const fn short(img: Img, cmds: &'static [&'static str]) -> Profile {
    Profile {
        life: (0.2, 5.0),
        ..p(img, cmds)
    }
}

macro_rules! profiles {
    ($( $key:ident = $def:expr ),* $(,)?) => {
        /// Every process kind; the discriminant indexes [`PROFILES`].
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum P { $($key),* }

        pub static PROFILES: &[Profile] = &[$($def),*];
    };
}

impl P {
    pub fn get(self) -> &'static Profile {
        &PROFILES[self as usize]
    }
}

const MIN: f64 = 60.0;
const HOUR: f64 = 3600.0;

pub static WIN_USER_APPS: &[(P, u32)] = &[
    (P::Chrome, 20),
    (P::Edge, 4),
    (P::Word, 14),
    (P::Excel, 12),
    (P::PowerPoint, 5),
    (P::Notepad, 6),
    (P::Cmd, 5),
    (P::PowerShellUser, 3),
    (P::VsCode, 4),
    (P::Mstsc, 1),
];
pub static WIN_STARTUP: &[P] = &[P::Sihost, P::OneDrive, P::Teams, P::Outlook, P::Chrome];
pub static MAC_USER_APPS: &[(P, u32)] = &[
    (P::MacChrome, 20),
    (P::Slack, 8),
    (P::Zoom, 5),
    (P::MacOutlook, 6),
    (P::MacCode, 6),
    (P::Terminal, 6),
];
pub static MAC_STARTUP: &[P] = &[P::Finder, P::Slack, P::MacOutlook, P::MacChrome];

static TASKS: &[(P, u32)] = &[
    (P::Taskhostw, 10),
    (P::MpCmdRunIdle, 4),
    (P::CompatTel, 2),
    (P::Wuauclt, 3),
    (P::GpupdateTask, 2),
];
static DCOM_CHILDREN: &[(P, u32)] = &[
    (P::RuntimeBroker, 8),
    (P::BackgroundTaskHost, 6),
    (P::Dllhost, 6),
    (P::WmiPrvSE, 2),
];
static SERVICE_STARTS: &[(P, u32)] = &[(P::SvcTrigger, 6), (P::MsiexecService, 1)];
static CMD_TOOLS: &[(P, u32)] = &[
    (P::Ipconfig, 4),
    (P::Whoami, 2),
    (P::Tasklist, 2),
    (P::NetUse, 2),
    (P::Git, 4),
    (P::GpupdateUser, 1),
    (P::SchtasksQuery, 1),
    (P::ScQuery, 1),
];
static CHROME_CHILDREN: &[(P, u32)] = &[(P::ChromeChild, 1)];
static EDGE_CHILDREN: &[(P, u32)] = &[(P::EdgeChild, 1)];
static CODE_CHILDREN: &[(P, u32)] = &[(P::Git, 3), (P::Cmd, 1)];
static LINUX_TIMERS: &[(P, u32)] = &[(P::AptGet, 2), (P::Logrotate, 2), (P::Systemctl, 1)];
static CRON_JOBS: &[(P, u32)] = &[(P::CronSh, 1)];
static ADMIN_CMDS: &[(P, u32)] = &[
    (P::Sudo, 4),
    (P::Tail, 3),
    (P::Df, 2),
    (P::Ps, 2),
    (P::Grep, 3),
    (P::Journalctl, 2),
    (P::SystemctlUser, 2),
    (P::DockerPs, 1),
];
static BUILD_STEPS: &[(P, u32)] = &[(P::GitFetch, 3), (P::Pytest, 2), (P::DockerBuild, 1)];
static MAC_DAEMONS: &[(P, u32)] = &[(P::MdWorker, 6), (P::XProtect, 1), (P::SoftwareUpdated, 1)];
static MAC_SHELL: &[(P, u32)] = &[(P::MacGit, 4), (P::MacCurl, 1), (P::MacSsh, 1)];
static TERMINAL_CHILDREN: &[(P, u32)] = &[(P::Zsh, 1)];
static GITHUB: &[Dest] = &[
    Dest {
        host: "github.com",
        ip: "140.82.112.4",
        port: 443,
        udp: false,
    },
    Dest {
        host: "api.github.com",
        ip: "140.82.113.6",
        port: 443,
        udp: false,
    },
];

profiles! {
    // Windows boot chain and services (started before the window; no creation rows).
    WSystem = p(Img::System, &[""]),
    WSystemFileServer = Profile { acts: &[(Act::Logon(LogonKind::SmbSession), 3.0 * MIN), (Act::File(FileKind::SmbWrite), 50.0)], ..p(Img::System, &[""]) },
    Smss = p(Img::Smss, &[r"\SystemRoot\System32\smss.exe"]),
    Csrss = p(Img::Csrss, &[r"%SystemRoot%\system32\csrss.exe ObjectDirectory=\Windows SharedSection=1024,20480,768 Windows=On SubSystemType=Windows ServerDll=basesrv,1 ServerDll=winsrv:UserServerDllInitialization,3 ServerDll=sxssrv,4 ProfileControl=Off MaxRequestThreads=16"]),
    Wininit = p(Img::Wininit, &["wininit.exe"]),
    Winlogon = p(Img::Winlogon, &["winlogon.exe"]),
    Services = Profile { acts: &[(Act::Child(SERVICE_STARTS), 3.0 * HOUR)], ..p(Img::Services, &[r"C:\Windows\system32\services.exe"]) },
    Lsass = p(Img::Lsass, &[r"C:\Windows\system32\lsass.exe"]),
    LsassServer = Profile { acts: &[(Act::Logon(LogonKind::RdpAdmin), 6.0 * HOUR)], ..p(Img::Lsass, &[r"C:\Windows\system32\lsass.exe"]) },
    LsassDc = Profile {
        acts: &[(Act::Logon(LogonKind::DcKerberos), 25.0), (Act::Logon(LogonKind::RdpAdmin), 6.0 * HOUR), (Act::Internal(Internal::Ldap), 10.0 * MIN)],
        ..p(Img::Lsass, &[r"C:\Windows\system32\lsass.exe"])
    },
    SvcSchedule = Profile {
        acts: &[(Act::Child(TASKS), 25.0 * MIN), (Act::Reg(RegKind::TaskCache), HOUR)],
        ..p(Img::Svchost, &[r"C:\Windows\system32\svchost.exe -k netsvcs -p -s Schedule"])
    },
    SvcDcom = Profile { acts: &[(Act::Child(DCOM_CHILDREN), 20.0 * MIN)], ..p(Img::Svchost, &[r"C:\Windows\system32\svchost.exe -k DcomLaunch -p"]) },
    SvcWu = Profile {
        acts: &[(Act::Net(net::WINDOWS_SERVICES), 4.0 * MIN), (Act::File(FileKind::WindowsTemp), 40.0 * MIN), (Act::Reg(RegKind::WindowsUpdate), 30.0 * MIN)],
        ..p(Img::Svchost, &[r"C:\Windows\system32\svchost.exe -k netsvcs -p -s wuauserv"])
    },
    SvcDns = Profile {
        acts: &[(Act::Internal(Internal::Dns), 3.0 * MIN)],
        runs_as: RunsAs::NetworkService,
        ..p(Img::Svchost, &[r"C:\Windows\system32\svchost.exe -k NetworkService -p -s Dnscache"])
    },
    SvcSysMain = Profile { acts: &[(Act::File(FileKind::Prefetch), 15.0 * MIN)], ..p(Img::Svchost, &[r"C:\Windows\system32\svchost.exe -k LocalSystemNetworkRestricted -p -s SysMain"]) },
    MsMpEng = Profile {
        acts: &[(Act::Net(net::DEFENDER), 15.0 * MIN), (Act::Event(EventKind::DefenderStatus), 8.0 * HOUR), (Act::Reg(RegKind::Defender), 4.0 * HOUR)],
        ..p(Img::MsMpEng, &[r#""C:\ProgramData\Microsoft\Windows Defender\Platform\4.18.24060.7-0\MsMpEng.exe""#])
    },
    MsSense = Profile { acts: &[(Act::Net(net::DEFENDER), 5.0 * MIN)], ..p(Img::MsSense, &[r#""C:\Program Files\Windows Defender Advanced Threat Protection\MsSense.exe""#]) },
    Sqlservr = Profile {
        acts: &[(Act::Inbound(1433), 30.0), (Act::File(FileKind::SqlBackup), 6.0 * HOUR)],
        runs_as: RunsAs::Service,
        ..p(Img::Sqlservr, &[r#""C:\Program Files\Microsoft SQL Server\MSSQL16.MSSQLSERVER\MSSQL\Binn\sqlservr.exe" -sMSSQLSERVER"#])
    },
    DnsServer = p(Img::Dns, &[r"C:\Windows\system32\dns.exe"]),

    // Windows session processes and user applications.
    Userinit = Profile { life: (5.0, 30.0), ..p(Img::Userinit, &[r"C:\Windows\system32\userinit.exe"]) },
    Explorer = Profile {
        acts: &[(Act::Reg(RegKind::AppSwitched), 10.0 * MIN), (Act::Internal(Internal::Smb), 30.0 * MIN)],
        ..p(Img::Explorer, &[r"C:\Windows\Explorer.EXE"])
    },
    Sihost = p(Img::Sihost, &["sihost.exe"]),
    Chrome = Profile {
        acts: &[(Act::Net(net::BROWSING), 12.0), (Act::Child(CHROME_CHILDREN), 4.0 * MIN), (Act::File(FileKind::Download), 2.0 * HOUR)],
        dlls: &[Img::ChromeDll],
        ..p(Img::Chrome, &[r#""C:\Program Files\Google\Chrome\Application\chrome.exe""#, r#""C:\Program Files\Google\Chrome\Application\chrome.exe" --profile-directory=Default"#])
    },
    ChromeChild = Profile {
        life: (30.0, 1800.0),
        ..p(Img::Chrome, &[
            r#""C:\Program Files\Google\Chrome\Application\chrome.exe" --type=renderer --lang=en-US --device-scale-factor=1 --num-raster-threads=4 --enable-main-frame-before-activation --renderer-client-id={n} --time-ticks-at-unix-epoch=-1720000000000000 --launch-time-ticks={n} --field-trial-handle=1960,i,{n},{n},262144 /prefetch:1"#,
            r#""C:\Program Files\Google\Chrome\Application\chrome.exe" --type=utility --utility-sub-type=network.mojom.NetworkService --lang=en-US --service-sandbox-type=none --field-trial-handle=1960,i,{n},{n},262144 /prefetch:3"#,
            r#""C:\Program Files\Google\Chrome\Application\chrome.exe" --type=gpu-process --gpu-preferences=UAAAAAAAAADgAAAEAAAAAAAAAAAAAAAAAABgAAEAAAA --field-trial-handle=1960,i,{n},{n},262144 /prefetch:2"#,
        ])
    },
    Edge = Profile {
        acts: &[(Act::Net(net::BROWSING), 15.0), (Act::Child(EDGE_CHILDREN), 5.0 * MIN)],
        life: (600.0, 4.0 * HOUR),
        ..p(Img::Msedge, &[r#""C:\Program Files (x86)\Microsoft\Edge\Application\msedge.exe" --single-argument https://{co}.sharepoint.com/"#, r#""C:\Program Files (x86)\Microsoft\Edge\Application\msedge.exe""#])
    },
    EdgeChild = Profile {
        life: (30.0, 1800.0),
        ..p(Img::Msedge, &[r#""C:\Program Files (x86)\Microsoft\Edge\Application\msedge.exe" --type=renderer --lang=en-US --js-flags=--ms-user-locale= --renderer-client-id={n} --field-trial-handle=2016,i,{n},{n},262144 /prefetch:1"#])
    },
    Outlook = Profile {
        acts: &[(Act::Net(net::OUTLOOK), 90.0), (Act::File(FileKind::OutlookAttachment), 3.0 * HOUR)],
        dlls: &[Img::Mso, Img::Wininet],
        ..p(Img::Outlook, &[r#""C:\Program Files\Microsoft Office\root\Office16\OUTLOOK.EXE" "#])
    },
    Teams = Profile { acts: &[(Act::Net(net::TEAMS), 45.0)], ..p(Img::Teams, &[r#""C:\Program Files\WindowsApps\MSTeams_24152.405.2925.6762_x64__8wekyb3d8bbwe\ms-teams.exe" msteams:system-initiated"#]) },
    OneDrive = Profile {
        acts: &[(Act::Net(net::ONEDRIVE), 5.0 * MIN), (Act::File(FileKind::OneDriveSync), 25.0 * MIN)],
        ..p(Img::OneDrive, &[r#""C:\Program Files\Microsoft OneDrive\OneDrive.exe" /background"#])
    },
    Word = Profile {
        life: (600.0, 1.5 * HOUR),
        acts: &[(Act::File(FileKind::Autosave), 4.0 * MIN), (Act::Net(net::OFFICE_APPS), 10.0 * MIN)],
        dlls: &[Img::Mso],
        doc: Some("docx"),
        ..p(Img::Winword, &[r#""C:\Program Files\Microsoft Office\root\Office16\WINWORD.EXE" /n "{doc}" /o """#])
    },
    Excel = Profile {
        life: (600.0, 2.0 * HOUR),
        acts: &[(Act::File(FileKind::Autosave), 4.0 * MIN), (Act::Net(net::OFFICE_APPS), 10.0 * MIN), (Act::Internal(Internal::Sql), HOUR)],
        dlls: &[Img::Mso],
        doc: Some("xlsx"),
        ..p(Img::Excel, &[r#""C:\Program Files\Microsoft Office\root\Office16\EXCEL.EXE" "{doc}""#])
    },
    PowerPoint = Profile {
        life: (600.0, 1.0 * HOUR),
        acts: &[(Act::File(FileKind::Autosave), 5.0 * MIN)],
        dlls: &[Img::Mso],
        doc: Some("pptx"),
        ..p(Img::Powerpnt, &[r#""C:\Program Files\Microsoft Office\root\Office16\POWERPNT.EXE" "{doc}""#])
    },
    Notepad = Profile {
        life: (60.0, 1800.0),
        acts: &[(Act::File(FileKind::Autosave), 10.0 * MIN)],
        doc: Some("txt"),
        ..p(Img::Notepad, &[r#""C:\Windows\system32\NOTEPAD.EXE" {doc}"#])
    },
    Cmd = Profile {
        life: (30.0, 900.0),
        acts: &[(Act::Child(CMD_TOOLS), 60.0)],
        console: true,
        ..p(Img::Cmd, &[r#""C:\Windows\system32\cmd.exe" "#])
    },
    PowerShellUser = Profile {
        life: (60.0, 1200.0),
        acts: &[(Act::Event(EventKind::PowerShellCommand), 45.0)],
        dlls: &[Img::Amsi, Img::Wldp, Img::Clr, Img::Sma],
        console: true,
        ..p(Img::PowerShell, &[r#""C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe" "#, r"powershell.exe -NoProfile -ExecutionPolicy Bypass -File C:\Scripts\Get-DiskReport.ps1"])
    },
    VsCode = Profile {
        acts: &[(Act::Net(GITHUB), 5.0 * MIN), (Act::Child(CODE_CHILDREN), 15.0 * MIN)],
        ..p(Img::VsCode, &[r#""C:\Program Files\Microsoft VS Code\Code.exe" "#])
    },
    Git = Profile {
        life: (1.0, 20.0),
        acts: &[(Act::Net(GITHUB), 3.0)],
        ..p(Img::Git, &["git status", "git fetch origin", "git pull --rebase", "git push origin HEAD"])
    },
    Mstsc = Profile {
        life: (300.0, 3600.0),
        acts: &[(Act::Internal(Internal::Rdp), 20.0 * MIN)],
        ..p(Img::Mstsc, &[r#""C:\Windows\system32\mstsc.exe" /v:{srv}"#])
    },
    Ipconfig = Profile { console: true, ..short(Img::Ipconfig, &["ipconfig /all", "ipconfig /flushdns", "ipconfig"]) },
    Whoami = Profile { console: true, ..short(Img::Whoami, &["whoami", "whoami /groups"]) },
    Tasklist = Profile { console: true, ..short(Img::Tasklist, &["tasklist", r#"tasklist /fi "imagename eq chrome.exe""#]) },
    NetUse = Profile { console: true, dlls: &[Img::Samlib], ..short(Img::Net, &["net use", r"net use Z: \\{srv}\Shared", "net view"]) },
    GpupdateUser = Profile { console: true, ..short(Img::Gpupdate, &["gpupdate /force"]) },
    SchtasksQuery = Profile { console: true, dlls: &[Img::Taskschd], ..short(Img::Schtasks, &["schtasks /query /fo LIST /v", r#"schtasks /query /tn "\Microsoft\Windows\WindowsUpdate\Scheduled Start""#]) },
    ScQuery = Profile { console: true, ..short(Img::Sc, &["sc query wuauserv", "sc queryex type= service state= all"]) },
    Conhost = short(Img::Conhost, &[r"\??\C:\Windows\system32\conhost.exe 0xffffffff -ForceV1"]),

    // Windows scheduled tasks and COM servers.
    Taskhostw = Profile { runs_as: RunsAs::Parent, ..short(Img::Taskhostw, &["taskhostw.exe -RegisterDevice -ProtectionStateChanged -FreeNetworkOnly", "taskhostw.exe Install $(Arg0)", "taskhostw.exe SYSTEM"]) },
    MpCmdRunIdle = Profile {
        runs_as: RunsAs::System,
        dlls: &[Img::MpClient],
        ..short(Img::MpCmdRun, &[r#""C:\ProgramData\Microsoft\Windows Defender\Platform\4.18.24060.7-0\MpCmdRun.exe" -IdleTask -TaskName WdCacheMaintenance"#, r#""C:\ProgramData\Microsoft\Windows Defender\Platform\4.18.24060.7-0\MpCmdRun.exe" -wdenable"#])
    },
    CompatTel = Profile { runs_as: RunsAs::System, life: (30.0, 300.0), ..p(Img::CompatTelRunner, &[r"C:\Windows\system32\compattelrunner.exe -maintenance", r"C:\Windows\system32\compattelrunner.exe -m:appraiser.dll -f:DoScheduledTelemetryRun"]) },
    Wuauclt = Profile {
        runs_as: RunsAs::System,
        life: (10.0, 120.0),
        acts: &[(Act::Net(net::WINDOWS_SERVICES), 20.0)],
        dlls: &[Img::Winhttp],
        ..p(Img::Wuauclt, &[r#""C:\Windows\system32\wuauclt.exe" /UpdateDeploymentProvider UpdateDeploymentProvider.dll /ClassId {guid} /RunHandlerComServer"#])
    },
    GpupdateTask = Profile { runs_as: RunsAs::System, ..short(Img::Gpupdate, &["gpupdate.exe /target:computer"]) },
    RuntimeBroker = Profile { life: (5.0, 600.0), ..p(Img::RuntimeBroker, &[r"C:\Windows\System32\RuntimeBroker.exe -Embedding"]) },
    BackgroundTaskHost = short(Img::BackgroundTaskHost, &[r#""C:\Windows\system32\backgroundTaskHost.exe" -ServerName:App.AppXmtcan0h2tfbfy7k9kn8hbxb6dmzz1zh0.mca"#, r#""C:\Windows\system32\backgroundTaskHost.exe" -ServerName:BackgroundTaskHost.WebAccountProvider"#]),
    Dllhost = short(Img::Dllhost, &[r"C:\Windows\system32\DllHost.exe /Processid:{AB8902B4-09CA-4BB6-B78D-A8F59079A8D5}", r"C:\Windows\system32\DllHost.exe /Processid:{3EB3C877-1F16-487C-9050-104DBCD66683}"]),
    WmiPrvSE = Profile { runs_as: RunsAs::NetworkService, life: (10.0, 600.0), ..p(Img::WmiPrvSE, &[r"C:\Windows\system32\wbem\wmiprvse.exe -secured -Embedding", r"C:\Windows\system32\wbem\wmiprvse.exe -Embedding"]) },
    SvcTrigger = Profile {
        runs_as: RunsAs::LocalService,
        life: (60.0, 1800.0),
        ..p(Img::Svchost, &[r"C:\Windows\system32\svchost.exe -k LocalServiceNetworkRestricted -p -s lmhosts", r"C:\Windows\System32\svchost.exe -k LocalService -p -s BthAvctpSvc", r"C:\Windows\system32\svchost.exe -k netsvcs -p -s BITS"])
    },
    MsiexecService = Profile { runs_as: RunsAs::System, life: (30.0, 600.0), ..p(Img::Msiexec, &[r"C:\Windows\system32\msiexec.exe /V"]) },

    // Linux.
    Systemd = Profile { acts: &[(Act::Child(LINUX_TIMERS), 40.0 * MIN)], ..p(Img::Systemd, &["/sbin/init"]) },
    Cron = Profile { acts: &[(Act::Child(CRON_JOBS), 15.0 * MIN)], ..p(Img::Cron, &["/usr/sbin/cron -f -P"]) },
    Sshd = Profile { acts: &[(Act::Logon(LogonKind::SshAdmin), 4.0 * HOUR)], ..p(Img::Sshd, &["sshd: /usr/sbin/sshd -D [listener] 0 of 10-100 startups"]) },
    SshdPublic = Profile {
        acts: &[(Act::Logon(LogonKind::SshAdmin), 4.0 * HOUR), (Act::Logon(LogonKind::SshScan), 20.0 * MIN)],
        ..p(Img::Sshd, &["sshd: /usr/sbin/sshd -D [listener] 0 of 10-100 startups"])
    },
    Mdatp = Profile { acts: &[(Act::Net(net::DEFENDER), 15.0 * MIN)], ..p(Img::Mdatp, &["/opt/microsoft/mdatp/sbin/wdavdaemon"]) },
    Nginx = Profile {
        acts: &[(Act::Inbound(443), 6.0), (Act::Internal(Internal::AppHttp), 15.0)],
        runs_as: RunsAs::Service,
        ..p(Img::Nginx, &["nginx: worker process"])
    },
    JavaApp = Profile {
        acts: &[(Act::Inbound(8080), 15.0), (Act::Internal(Internal::Postgres), 20.0), (Act::File(FileKind::LinuxTmp), HOUR)],
        runs_as: RunsAs::Service,
        ..p(Img::Java, &["/usr/lib/jvm/java-17-openjdk-amd64/bin/java -Xms2g -Xmx2g -jar /opt/app/orders-service.jar --spring.profiles.active=prod"])
    },
    Postgres = Profile { acts: &[(Act::Inbound(5432), 20.0)], runs_as: RunsAs::Service, ..p(Img::Postgres, &["/usr/lib/postgresql/14/bin/postgres -D /var/lib/postgresql/14/main -c config_file=/etc/postgresql/14/main/postgresql.conf"]) },
    Jenkins = Profile {
        acts: &[(Act::Child(BUILD_STEPS), 20.0 * MIN), (Act::Net(net::LINUX_SERVICES), 5.0 * MIN)],
        runs_as: RunsAs::Service,
        ..p(Img::Java, &["/usr/bin/java -Djava.awt.headless=true -jar /usr/share/java/jenkins.war --webroot=/var/cache/jenkins/war --httpPort=8080"])
    },
    AptGet = Profile { life: (20.0, 120.0), acts: &[(Act::Net(net::LINUX_SERVICES), 15.0)], dlls: &[Img::Libssl], runs_as: RunsAs::System, ..p(Img::AptGet, &["/usr/bin/apt-get -qq -y update", "apt-get -qq -y -d dist-upgrade"]) },
    Logrotate = Profile { runs_as: RunsAs::System, ..short(Img::Logrotate, &["/usr/sbin/logrotate /etc/logrotate.conf"]) },
    Systemctl = Profile { runs_as: RunsAs::System, ..short(Img::Systemctl, &["/usr/bin/systemctl --quiet is-active multipathd", "systemctl start --no-block motd-news.service"]) },
    CronSh = Profile {
        life: (1.0, 60.0),
        ..p(Img::Dash, &[r#"/bin/sh -c "   cd / && run-parts --report /etc/cron.hourly""#, r#"/bin/sh -c "[ -x /usr/lib/php/sessionclean ] && if [ ! -d /run/systemd/system ]; then /usr/lib/php/sessionclean; fi""#, r#"/bin/sh -c "/usr/local/bin/backup-db.sh >> /var/log/backup.log 2>&1""#, r#"/bin/sh -c "command -v debian-sa1 > /dev/null && debian-sa1 1 1""#])
    },
    BashSession = Profile { life: (120.0, 1500.0), acts: &[(Act::Child(ADMIN_CMDS), 45.0)], dlls: &[Img::Libpam], ..p(Img::Bash, &["-bash"]) },
    Sudo = short(Img::Sudo, &["sudo systemctl restart nginx", "sudo journalctl -u ssh --since today", "sudo apt-get install -y htop", "sudo tail -n 100 /var/log/auth.log"]),
    Tail = short(Img::Tail, &["tail -n 200 /var/log/syslog", "tail -n 50 /var/log/nginx/error.log"]),
    Df = short(Img::Df, &["df -h"]),
    Ps = short(Img::Ps, &["ps aux", "ps -ef --forest"]),
    Grep = short(Img::Grep, &["grep -i error /var/log/syslog", "grep -c 'Failed password' /var/log/auth.log"]),
    Journalctl = short(Img::Journalctl, &["journalctl -u nginx --since \"1 hour ago\"", "journalctl -p err -b"]),
    SystemctlUser = short(Img::Systemctl, &["systemctl status nginx", "systemctl list-timers --all"]),
    DockerPs = short(Img::Docker, &["docker ps", "docker logs --tail 100 app"]),
    GitFetch = Profile { life: (2.0, 30.0), acts: &[(Act::Net(GITHUB), 3.0)], ..p(Img::GitLinux, &["git fetch --tags --force --progress -- https://github.com/{co}/orders-service.git +refs/heads/*:refs/remotes/origin/*"]) },
    Pytest = Profile { life: (30.0, 600.0), acts: &[(Act::File(FileKind::BuildOutput), 30.0)], ..p(Img::Python3, &["python3 -m pytest -q tests/", "python3 -m pip install -r requirements.txt"]) },
    DockerBuild = Profile { life: (60.0, 900.0), acts: &[(Act::Net(net::LINUX_SERVICES), 20.0)], ..p(Img::Docker, &["docker build -t registry.{co}.com/orders-service:{n} ."]) },

    // macOS.
    Launchd = Profile { acts: &[(Act::Child(MAC_DAEMONS), 15.0 * MIN)], ..p(Img::Launchd, &["/sbin/launchd"]) },
    MacWdav = Profile { acts: &[(Act::Net(net::DEFENDER), 15.0 * MIN)], ..p(Img::MacWdav, &["/Library/Application Support/Microsoft/Defender/wdavdaemon.app/Contents/MacOS/wdavdaemon"]) },
    Loginwindow = p(Img::Loginwindow, &["/System/Library/CoreServices/loginwindow.app/Contents/MacOS/loginwindow console"]),
    Finder = Profile { acts: &[(Act::File(FileKind::MacCache), 30.0 * MIN)], ..p(Img::Finder, &["/System/Library/CoreServices/Finder.app/Contents/MacOS/Finder"]) },
    MdWorker = Profile { runs_as: RunsAs::Parent, life: (2.0, 120.0), ..p(Img::MdWorker, &["/System/Library/Frameworks/CoreServices.framework/Frameworks/Metadata.framework/Versions/A/Support/mdworker_shared -s mdworker -c MDSImporterWorker -m com.apple.mdworker.shared"]) },
    XProtect = short(Img::XProtect, &["/Library/Apple/System/Library/CoreServices/XProtect.app/Contents/MacOS/XProtect"]),
    SoftwareUpdated = Profile { life: (60.0, 600.0), acts: &[(Act::Net(net::MAC_SERVICES), 60.0)], ..p(Img::SoftwareUpdated, &["/System/Library/PrivateFrameworks/SoftwareUpdate.framework/Resources/softwareupdated"]) },
    MacChrome = Profile { acts: &[(Act::Net(net::BROWSING), 15.0), (Act::File(FileKind::Download), 3.0 * HOUR)], ..p(Img::MacChrome, &["/Applications/Google Chrome.app/Contents/MacOS/Google Chrome"]) },
    Slack = Profile { acts: &[(Act::Net(net::MAC_APPS), 40.0)], ..p(Img::Slack, &["/Applications/Slack.app/Contents/MacOS/Slack"]) },
    Zoom = Profile { life: (1200.0, 3600.0), acts: &[(Act::Net(net::MAC_APPS), 20.0)], ..p(Img::Zoom, &["/Applications/zoom.us.app/Contents/MacOS/zoom.us"]) },
    MacOutlook = Profile { acts: &[(Act::Net(net::OUTLOOK), 2.0 * MIN)], ..p(Img::MacOutlook, &["/Applications/Microsoft Outlook.app/Contents/MacOS/Microsoft Outlook"]) },
    MacCode = Profile { acts: &[(Act::Net(GITHUB), 5.0 * MIN)], ..p(Img::MacCode, &["/Applications/Visual Studio Code.app/Contents/MacOS/Electron"]) },
    Terminal = Profile { acts: &[(Act::Child(TERMINAL_CHILDREN), 20.0 * MIN)], ..p(Img::Terminal, &["/System/Applications/Utilities/Terminal.app/Contents/MacOS/Terminal"]) },
    Zsh = Profile { life: (300.0, 3600.0), acts: &[(Act::Child(MAC_SHELL), 3.0 * MIN)], ..p(Img::Zsh, &["-zsh"]) },
    MacGit = Profile { life: (1.0, 20.0), acts: &[(Act::Net(GITHUB), 3.0)], ..p(Img::MacGit, &["git pull", "git status", "git push origin main", "git fetch --all"]) },
    MacCurl = Profile { life: (1.0, 5.0), acts: &[(Act::Net(GITHUB), 1.0)], ..p(Img::MacCurl, &["curl -s https://api.github.com/repos/{co}/tools/releases/latest"]) },
    MacSsh = Profile { life: (60.0, 1800.0), acts: &[(Act::Internal(Internal::Ssh), 10.0 * MIN)], ..p(Img::MacSsh, &["ssh {u}@{srv}"]) },

    // Attack tooling is started by scenarios with explicit command lines.
    Attack = p(Img::Cmd, &[""]),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::info;

    #[test]
    fn every_profile_has_a_command_and_children_match_the_os() {
        for (i, prof) in PROFILES.iter().enumerate() {
            assert!(!prof.cmds.is_empty(), "profile {i}");
            for (act, mean) in prof.acts {
                assert!(*mean > 0.0);
                if let Act::Child(kids) = act {
                    for (k, _) in kids.iter() {
                        assert_eq!(
                            info(k.get().img).image.os,
                            info(prof.img).image.os,
                            "profile {i} -> {k:?}"
                        );
                    }
                }
            }
        }
        assert_eq!(PROFILES.len(), P::Attack as usize + 1);
    }
}
