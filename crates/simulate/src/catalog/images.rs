//! The binaries and libraries simulated devices run: real paths, version resources and sizes, and
//! hashes that are stable per file (derived from path and version, the same on every device and
//! in every fleet, as real hashes are).

use crate::fleet::Os;
use crate::hex;
use crate::rng;
use std::sync::OnceLock;

/// A static description of an executable or library.
pub struct Image {
    pub os: Os,
    pub name: &'static str,
    pub path: &'static str,
    /// Version resource (Windows); code-signing identity on macOS; empty when unknown.
    pub company: &'static str,
    pub product: &'static str,
    pub version: &'static str,
    pub description: &'static str,
    pub size: i64,
}

/// An image with everything derived once: hashes and the spellings rows use.
pub struct ImageInfo {
    pub image: &'static Image,
    pub sha1: String,
    pub sha256: String,
    pub md5: String,
    /// `InitiatingProcessFileName`: lowercased on macOS, as in real records.
    pub init_name: String,
    /// `InitiatingProcessFolderPath`: lowercased on Windows and macOS, as in real records.
    pub init_path: String,
    /// Internal file name (the stem), for the version-info columns.
    pub internal: &'static str,
    /// (`InitiatingProcessSignerType`, `InitiatingProcessSignatureStatus`).
    pub signer: Option<(&'static str, &'static str)>,
}

impl ImageInfo {
    fn build(image: &'static Image) -> ImageInfo {
        let h = rng::hash_str(0x1A6E, image.path) ^ rng::hash_str(0x5E7, image.version);
        let lower = !matches!(image.os, Os::Linux);
        ImageInfo {
            image,
            sha1: hex::digest(h, 20),
            sha256: hex::digest(h ^ 0x256, 32),
            md5: hex::digest(h ^ 0x5, 16),
            init_name: if image.os == Os::MacOs {
                image.name.to_lowercase()
            } else {
                image.name.to_owned()
            },
            init_path: if lower {
                image.path.to_lowercase()
            } else {
                image.path.to_owned()
            },
            internal: image
                .name
                .rsplit_once('.')
                .map_or(image.name, |(stem, _)| stem),
            signer: match image.company {
                "" => None,
                "Microsoft Corporation" | "(APPLE)" => Some(("OsVendor", "Valid")),
                _ => Some(("Vendor", "Valid")),
            },
        }
    }

    /// Version-info text, or `None` where the platform has none (Linux, and macOS except the
    /// company column, which carries the signing identity).
    pub fn company(&self) -> Option<&'static str> {
        Some(self.image.company).filter(|c| !c.is_empty())
    }

    pub fn version_field(&self, v: &'static str) -> Option<&'static str> {
        (self.image.os == Os::Windows && !v.is_empty()).then_some(v)
    }
}

macro_rules! images {
    ($( $key:ident = ($os:ident, $name:expr, $path:expr, $company:expr, $product:expr, $version:expr, $desc:expr, $size:expr) ),* $(,)?) => {
        /// Every simulated binary; the discriminant indexes [`IMAGES`].
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum Img { $($key),* }

        pub static IMAGES: &[Image] = &[
            $( Image { os: Os::$os, name: $name, path: $path, company: $company, product: $product, version: $version, description: $desc, size: $size } ),*
        ];
    };
}

const MS: &str = "Microsoft Corporation";
const WIN: &str = "Microsoft® Windows® Operating System";
const WV: &str = "10.0.22621.3527";
const OFFICE: &str = "16.0.17531.20140";

images! {
    // Windows: the boot chain and services.
    System = (Windows, "System", "", "", "", "", "", 0),
    Smss = (Windows, "smss.exe", r"C:\Windows\System32\smss.exe", MS, WIN, WV, "Windows Session Manager", 155_648),
    Csrss = (Windows, "csrss.exe", r"C:\Windows\System32\csrss.exe", MS, WIN, WV, "Client Server Runtime Process", 18_432),
    Wininit = (Windows, "wininit.exe", r"C:\Windows\System32\wininit.exe", MS, WIN, WV, "Windows Start-Up Application", 421_888),
    Winlogon = (Windows, "winlogon.exe", r"C:\Windows\System32\winlogon.exe", MS, WIN, WV, "Windows Logon Application", 925_696),
    Services = (Windows, "services.exe", r"C:\Windows\System32\services.exe", MS, WIN, WV, "Services and Controller app", 749_568),
    Lsass = (Windows, "lsass.exe", r"C:\Windows\System32\lsass.exe", MS, WIN, WV, "Local Security Authority Process", 84_224),
    Svchost = (Windows, "svchost.exe", r"C:\Windows\System32\svchost.exe", MS, WIN, WV, "Host Process for Windows Services", 79_920),
    Userinit = (Windows, "userinit.exe", r"C:\Windows\System32\userinit.exe", MS, WIN, WV, "Userinit Logon Application", 33_280),
    Explorer = (Windows, "explorer.exe", r"C:\Windows\explorer.exe", MS, WIN, WV, "Windows Explorer", 5_458_560),
    Sihost = (Windows, "sihost.exe", r"C:\Windows\System32\sihost.exe", MS, WIN, WV, "Shell Infrastructure Host", 135_168),
    Taskhostw = (Windows, "taskhostw.exe", r"C:\Windows\System32\taskhostw.exe", MS, WIN, WV, "Host Process for Windows Tasks", 102_192),
    RuntimeBroker = (Windows, "RuntimeBroker.exe", r"C:\Windows\System32\RuntimeBroker.exe", MS, WIN, WV, "Runtime Broker", 143_360),
    BackgroundTaskHost = (Windows, "backgroundTaskHost.exe", r"C:\Windows\System32\backgroundTaskHost.exe", MS, WIN, WV, "Background Task Host", 32_768),
    Dllhost = (Windows, "dllhost.exe", r"C:\Windows\System32\dllhost.exe", MS, WIN, WV, "COM Surrogate", 21_312),
    Conhost = (Windows, "conhost.exe", r"C:\Windows\System32\conhost.exe", MS, WIN, WV, "Console Window Host", 1_018_880),
    Cmd = (Windows, "cmd.exe", r"C:\Windows\System32\cmd.exe", MS, WIN, WV, "Windows Command Processor", 323_584),
    PowerShell = (Windows, "powershell.exe", r"C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe", MS, WIN, WV, "Windows PowerShell", 455_680),
    WmiPrvSE = (Windows, "WmiPrvSE.exe", r"C:\Windows\System32\wbem\WmiPrvSE.exe", MS, WIN, WV, "WMI Provider Host", 515_072),
    Wmic = (Windows, "WMIC.exe", r"C:\Windows\System32\wbem\WMIC.exe", MS, WIN, WV, "WMI Commandline Utility", 571_392),
    Rundll32 = (Windows, "rundll32.exe", r"C:\Windows\System32\rundll32.exe", MS, WIN, WV, "Windows host process (Rundll32)", 71_680),
    Schtasks = (Windows, "schtasks.exe", r"C:\Windows\System32\schtasks.exe", MS, WIN, WV, "Task Scheduler Configuration Tool", 235_520),
    Sc = (Windows, "sc.exe", r"C:\Windows\System32\sc.exe", MS, WIN, WV, "Service Control Manager Configuration Tool", 72_192),
    Net = (Windows, "net.exe", r"C:\Windows\System32\net.exe", MS, WIN, WV, "Net Command", 57_344),
    Whoami = (Windows, "whoami.exe", r"C:\Windows\System32\whoami.exe", MS, WIN, WV, "whoami - displays logged on user information", 73_728),
    Ipconfig = (Windows, "ipconfig.exe", r"C:\Windows\System32\ipconfig.exe", MS, WIN, WV, "IP Configuration Utility", 35_840),
    Tasklist = (Windows, "tasklist.exe", r"C:\Windows\System32\tasklist.exe", MS, WIN, WV, "Lists the current running tasks.", 90_112),
    Vssadmin = (Windows, "vssadmin.exe", r"C:\Windows\System32\vssadmin.exe", MS, WIN, WV, "Command Line Interface for Microsoft® Volume Shadow Copy Service ", 126_976),
    Bcdedit = (Windows, "bcdedit.exe", r"C:\Windows\System32\bcdedit.exe", MS, WIN, WV, "Boot Configuration Data Editor", 488_448),
    Gpupdate = (Windows, "gpupdate.exe", r"C:\Windows\System32\gpupdate.exe", MS, WIN, WV, "Microsoft® Windows Group Policy Update Utility", 28_160),
    CompatTelRunner = (Windows, "CompatTelRunner.exe", r"C:\Windows\System32\CompatTelRunner.exe", MS, WIN, WV, "Microsoft Compatibility Telemetry", 209_408),
    Wuauclt = (Windows, "wuauclt.exe", r"C:\Windows\System32\wuauclt.exe", MS, WIN, WV, "Windows Update", 98_304),
    Msiexec = (Windows, "msiexec.exe", r"C:\Windows\System32\msiexec.exe", MS, WIN, WV, "Windows® installer", 69_632),
    Notepad = (Windows, "notepad.exe", r"C:\Windows\System32\notepad.exe", MS, WIN, WV, "Notepad", 201_216),
    Mstsc = (Windows, "mstsc.exe", r"C:\Windows\System32\mstsc.exe", MS, WIN, WV, "Remote Desktop Connection", 1_363_968),
    MsMpEng = (Windows, "MsMpEng.exe", concat!(r"C:\ProgramData\Microsoft\Windows Defender\Platform\4.18.24060.7-0", r"\MsMpEng.exe"), MS, "Microsoft® Windows® Operating System", "4.18.24060.7", "Antimalware Service Executable", 133_576),
    MpCmdRun = (Windows, "MpCmdRun.exe", concat!(r"C:\ProgramData\Microsoft\Windows Defender\Platform\4.18.24060.7-0", r"\MpCmdRun.exe"), MS, "Microsoft® Windows® Operating System", "4.18.24060.7", "Microsoft Malware Protection Command Line Utility", 1_614_264),
    MsSense = (Windows, "MsSense.exe", r"C:\Program Files\Windows Defender Advanced Threat Protection\MsSense.exe", MS, WIN, "10.8760.22621.3527", "Windows Defender Advanced Threat Protection Service Executable", 4_493_752),
    OneDrive = (Windows, "OneDrive.exe", r"C:\Program Files\Microsoft OneDrive\OneDrive.exe", MS, "Microsoft OneDrive", "24.116.0609.0004", "Microsoft OneDrive", 3_512_752),
    Teams = (Windows, "ms-teams.exe", r"C:\Program Files\WindowsApps\MSTeams_24152.405.2925.6762_x64__8wekyb3d8bbwe\ms-teams.exe", MS, "Microsoft Teams", "24152.405.2925.6762", "Microsoft Teams", 1_041_448),
    Outlook = (Windows, "OUTLOOK.EXE", r"C:\Program Files\Microsoft Office\root\Office16\OUTLOOK.EXE", MS, "Microsoft Outlook", OFFICE, "Microsoft Outlook", 44_119_384),
    Winword = (Windows, "WINWORD.EXE", r"C:\Program Files\Microsoft Office\root\Office16\WINWORD.EXE", MS, "Microsoft Office", OFFICE, "Microsoft Word", 1_932_120),
    Excel = (Windows, "EXCEL.EXE", r"C:\Program Files\Microsoft Office\root\Office16\EXCEL.EXE", MS, "Microsoft Office", OFFICE, "Microsoft Excel", 65_433_944),
    Powerpnt = (Windows, "POWERPNT.EXE", r"C:\Program Files\Microsoft Office\root\Office16\POWERPNT.EXE", MS, "Microsoft Office", OFFICE, "Microsoft PowerPoint", 1_864_536),
    Chrome = (Windows, "chrome.exe", r"C:\Program Files\Google\Chrome\Application\chrome.exe", "Google LLC", "Google Chrome", "126.0.6478.127", "Google Chrome", 3_120_416),
    Msedge = (Windows, "msedge.exe", r"C:\Program Files (x86)\Microsoft\Edge\Application\msedge.exe", MS, "Microsoft Edge", "126.0.2592.87", "Microsoft Edge", 4_024_376),
    VsCode = (Windows, "Code.exe", r"C:\Program Files\Microsoft VS Code\Code.exe", MS, "Visual Studio Code", "1.90.2", "Visual Studio Code", 164_812_120),
    Git = (Windows, "git.exe", r"C:\Program Files\Git\cmd\git.exe", "The Git Development Community", "Git", "2.45.2.windows.1", "Git for Windows", 46_672),
    Sqlservr = (Windows, "sqlservr.exe", r"C:\Program Files\Microsoft SQL Server\MSSQL16.MSSQLSERVER\MSSQL\Binn\sqlservr.exe", MS, "Microsoft SQL Server", "2022.160.4125.3", "SQL Server Windows NT - 64 Bit", 467_992),
    Dns = (Windows, "dns.exe", r"C:\Windows\System32\dns.exe", MS, WIN, WV, "Domain Name System (DNS) Server", 2_521_088),
    // Windows: attacker tooling.
    ProcDump = (Windows, "procdump64.exe", r"C:\Users\Public\procdump64.exe", "Sysinternals - www.sysinternals.com", "ProcDump", "11.0", "Sysinternals process dump utility", 424_864),
    PsExec = (Windows, "PsExec64.exe", r"C:\Users\Public\PsExec64.exe", "Sysinternals - www.sysinternals.com", "Sysinternals PsExec", "2.43", "Execute processes remotely", 833_472),
    PsExeSvc = (Windows, "PSEXESVC.exe", r"C:\Windows\PSEXESVC.exe", "Sysinternals", "Sysinternals PsExec", "2.43", "PsExec Service", 196_664),
    RansomPayload = (Windows, "wupdsvc.exe", r"C:\ProgramData\WinUpd\wupdsvc.exe", "", "", "", "", 1_318_912),
    // Windows: modules for image loads.
    Amsi = (Windows, "amsi.dll", r"C:\Windows\System32\amsi.dll", MS, WIN, WV, "Anti-Malware Scan Interface", 90_112),
    Clr = (Windows, "clr.dll", r"C:\Windows\Microsoft.NET\Framework64\v4.0.30319\clr.dll", MS, "Microsoft® .NET Framework", "4.8.9232.0", "Microsoft .NET Runtime Common Language Runtime - WorkStation", 10_534_800),
    Sma = (Windows, "System.Management.Automation.ni.dll", r"C:\Windows\assembly\NativeImages_v4.0.30319_64\System.Manaa57fc8cc#\a1b6b1b2e3f7c1d0c39f0f3b2c8d6c2e\System.Management.Automation.ni.dll", MS, "Microsoft (R) Windows (R) Operating System", "10.0.22621.3527", "System.Management.Automation", 34_089_984),
    Vbe7 = (Windows, "VBE7.DLL", r"C:\Program Files\Common Files\microsoft shared\VBA\VBA7.1\VBE7.DLL", MS, "Microsoft Visual Basic for Applications", "7.1.11.33", "Visual Basic for Applications Runtime", 3_290_040),
    Mso = (Windows, "Mso20win32client.dll", r"C:\Program Files\Common Files\microsoft shared\Office16\Mso20win32client.dll", MS, "Microsoft Office", OFFICE, "Microsoft Office 2016 component", 6_012_848),
    ChromeDll = (Windows, "chrome.dll", r"C:\Program Files\Google\Chrome\Application\126.0.6478.127\chrome.dll", "Google LLC", "Google Chrome", "126.0.6478.127", "Google Chrome", 237_174_040),
    Comsvcs = (Windows, "comsvcs.dll", r"C:\Windows\System32\comsvcs.dll", MS, WIN, WV, "COM+ Services", 1_343_488),
    Dbghelp = (Windows, "dbghelp.dll", r"C:\Windows\System32\dbghelp.dll", MS, WIN, WV, "Windows Image Helper", 1_875_968),
    Winhttp = (Windows, "winhttp.dll", r"C:\Windows\System32\winhttp.dll", MS, WIN, WV, "Windows HTTP Services", 1_125_376),
    Wininet = (Windows, "wininet.dll", r"C:\Windows\System32\wininet.dll", MS, WIN, WV, "Internet Extensions for Win32", 4_931_584),
    Samlib = (Windows, "samlib.dll", r"C:\Windows\System32\samlib.dll", MS, WIN, WV, "SAM Library DLL", 155_648),
    Taskschd = (Windows, "taskschd.dll", r"C:\Windows\System32\taskschd.dll", MS, WIN, WV, "Task Scheduler COM API", 851_968),
    Wldp = (Windows, "wldp.dll", r"C:\Windows\System32\wldp.dll", MS, WIN, WV, "Windows Lockdown Policy", 303_104),
    MpClient = (Windows, "MpClient.dll", concat!(r"C:\ProgramData\Microsoft\Windows Defender\Platform\4.18.24060.7-0", r"\MpClient.dll"), MS, "Microsoft® Windows® Operating System", "4.18.24060.7", "Client Interface", 1_562_120),

    // Linux.
    Systemd = (Linux, "systemd", "/usr/lib/systemd/systemd", "", "", "", "", 1_840_232),
    Sshd = (Linux, "sshd", "/usr/sbin/sshd", "", "", "", "", 921_488),
    Bash = (Linux, "bash", "/usr/bin/bash", "", "", "", "", 1_396_520),
    Dash = (Linux, "dash", "/usr/bin/dash", "", "", "", "", 125_688),
    Cron = (Linux, "cron", "/usr/sbin/cron", "", "", "", "", 55_944),
    Logrotate = (Linux, "logrotate", "/usr/sbin/logrotate", "", "", "", "", 97_264),
    Python3 = (Linux, "python3.10", "/usr/bin/python3.10", "", "", "", "", 5_913_032),
    Curl = (Linux, "curl", "/usr/bin/curl", "", "", "", "", 260_328),
    AptGet = (Linux, "apt-get", "/usr/bin/apt-get", "", "", "", "", 18_824),
    Sudo = (Linux, "sudo", "/usr/bin/sudo", "", "", "", "", 232_416),
    Systemctl = (Linux, "systemctl", "/usr/bin/systemctl", "", "", "", "", 1_010_888),
    Journalctl = (Linux, "journalctl", "/usr/bin/journalctl", "", "", "", "", 84_728),
    Grep = (Linux, "grep", "/usr/bin/grep", "", "", "", "", 186_936),
    Tail = (Linux, "tail", "/usr/bin/tail", "", "", "", "", 68_560),
    Df = (Linux, "df", "/usr/bin/df", "", "", "", "", 84_888),
    Ps = (Linux, "ps", "/usr/bin/ps", "", "", "", "", 137_688),
    Uname = (Linux, "uname", "/usr/bin/uname", "", "", "", "", 35_208),
    Nproc = (Linux, "nproc", "/usr/bin/nproc", "", "", "", "", 35_208),
    Chmod = (Linux, "chmod", "/usr/bin/chmod", "", "", "", "", 64_152),
    Crontab = (Linux, "crontab", "/usr/bin/crontab", "", "", "", "", 43_720),
    GitLinux = (Linux, "git", "/usr/bin/git", "", "", "", "", 4_165_488),
    Docker = (Linux, "docker", "/usr/bin/docker", "", "", "", "", 36_233_016),
    Nginx = (Linux, "nginx", "/usr/sbin/nginx", "", "", "", "", 1_189_104),
    Java = (Linux, "java", "/usr/lib/jvm/java-17-openjdk-amd64/bin/java", "", "", "", "", 14_496),
    Postgres = (Linux, "postgres", "/usr/lib/postgresql/14/bin/postgres", "", "", "", "", 9_396_424),
    Mdatp = (Linux, "wdavdaemon", "/opt/microsoft/mdatp/sbin/wdavdaemon", "", "", "", "", 21_564_312),
    Miner = (Linux, "kswapd0", "/tmp/.ICE-unix/.x/kswapd0", "", "", "", "", 6_021_176),
    Libssl = (Linux, "libssl.so.3", "/usr/lib/x86_64-linux-gnu/libssl.so.3", "", "", "", "", 667_864),
    Libpam = (Linux, "libpam.so.0.85.1", "/usr/lib/x86_64-linux-gnu/libpam.so.0.85.1", "", "", "", "", 67_584),

    // macOS.
    Launchd = (MacOs, "launchd", "/sbin/launchd", "(APPLE)", "", "", "", 1_078_560),
    Loginwindow = (MacOs, "loginwindow", "/System/Library/CoreServices/loginwindow.app/Contents/MacOS/loginwindow", "(APPLE)", "", "", "", 2_964_880),
    Finder = (MacOs, "Finder", "/System/Library/CoreServices/Finder.app/Contents/MacOS/Finder", "(APPLE)", "", "", "", 5_215_936),
    MdWorker = (MacOs, "mdworker_shared", "/System/Library/Frameworks/CoreServices.framework/Versions/A/Frameworks/Metadata.framework/Versions/A/Support/mdworker_shared", "(APPLE)", "", "", "", 330_144),
    SoftwareUpdated = (MacOs, "softwareupdated", "/System/Library/PrivateFrameworks/SoftwareUpdate.framework/Versions/A/Resources/softwareupdated", "(APPLE)", "", "", "", 3_046_528),
    XProtect = (MacOs, "XProtect", "/Library/Apple/System/Library/CoreServices/XProtect.app/Contents/MacOS/XProtect", "(APPLE)", "", "", "", 4_480_144),
    Zsh = (MacOs, "zsh", "/bin/zsh", "(APPLE)", "", "", "", 1_361_200),
    Terminal = (MacOs, "Terminal", "/System/Applications/Utilities/Terminal.app/Contents/MacOS/Terminal", "(APPLE)", "", "", "", 5_006_528),
    MacChrome = (MacOs, "Google Chrome", "/Applications/Google Chrome.app/Contents/MacOS/Google Chrome", "EQHXZ8M8AV", "", "", "", 202_656),
    Slack = (MacOs, "Slack", "/Applications/Slack.app/Contents/MacOS/Slack", "BQR82RBBHL", "", "", "", 156_816),
    Zoom = (MacOs, "zoom.us", "/Applications/zoom.us.app/Contents/MacOS/zoom.us", "BJ4HAAB9B3", "", "", "", 1_263_328),
    MacOutlook = (MacOs, "Microsoft Outlook", "/Applications/Microsoft Outlook.app/Contents/MacOS/Microsoft Outlook", "UBF8T346G9", "", "", "", 77_093_104),
    MacCode = (MacOs, "Electron", "/Applications/Visual Studio Code.app/Contents/MacOS/Electron", "UBF8T346G9", "", "", "", 114_960),
    MacGit = (MacOs, "git", "/usr/bin/git", "(APPLE)", "", "", "", 167_120),
    MacCurl = (MacOs, "curl", "/usr/bin/curl", "(APPLE)", "", "", "", 209_936),
    MacSsh = (MacOs, "ssh", "/usr/bin/ssh", "(APPLE)", "", "", "", 1_544_000),
    MacWdav = (MacOs, "wdavdaemon", "/Library/Application Support/Microsoft/Defender/wdavdaemon.app/Contents/MacOS/wdavdaemon", "UBF8T346G9", "", "", "", 26_931_472),
}

/// The image's derived information (built once for all images).
pub fn info(img: Img) -> &'static ImageInfo {
    static ALL: OnceLock<Vec<ImageInfo>> = OnceLock::new();
    &ALL.get_or_init(|| IMAGES.iter().map(ImageInfo::build).collect())[img as usize]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_well_formed_and_stable_per_file() {
        let c = info(Img::Chrome);
        assert_eq!((c.sha1.len(), c.sha256.len(), c.md5.len()), (40, 64, 32));
        assert!(
            c.sha256
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
        assert_ne!(info(Img::Chrome).sha1, info(Img::Msedge).sha1);
        assert_eq!(
            c.init_path,
            r"c:\program files\google\chrome\application\chrome.exe"
        );
        assert_eq!(info(Img::MacChrome).init_name, "google chrome");
        assert_eq!(info(Img::Cmd).internal, "cmd");
        assert_eq!(IMAGES.len(), Img::MacWdav as usize + 1);
    }
}
