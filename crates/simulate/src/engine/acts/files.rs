//! File and registry writes: documents saved, downloads, attachments, update and prefetch
//! files, SMB writes on file servers, and the registry values Windows services keep touching.

use super::net::ephemeral;
use crate::catalog::names::{DEPARTMENTS, DOC_WORDS};
use crate::catalog::net::{DOWNLOADS, Dest};
use crate::engine::profiles::{FileKind, RegKind};
use crate::engine::write::{head, initiating};
use crate::engine::{Out, World};
use crate::fleet::Os;
use crate::rng;
use crate::row::{C, T};
use crate::time;
use std::fmt::Write;
use std::io;

/// `AdditionalFields` of a file event, from its extension.
pub fn file_type_json(path: &str) -> &'static str {
    let ext = path.rsplit_once('.').map_or("", |(_, e)| e);
    match ext.to_ascii_lowercase().as_str() {
        "docx" | "docm" | "doc" => r#"{"FileType":"Docx"}"#,
        "xlsx" | "xls" | "csv" => r#"{"FileType":"Xlsx"}"#,
        "pptx" => r#"{"FileType":"Pptx"}"#,
        "pdf" => r#"{"FileType":"Pdf"}"#,
        "exe" | "dll" | "sys" => r#"{"FileType":"PortableExecutable"}"#,
        "txt" | "log" => r#"{"FileType":"Text"}"#,
        "zip" | "cab" => r#"{"FileType":"Zip"}"#,
        _ => r#"{"FileType":"Unknown"}"#,
    }
}

/// The file name part of a full path.
pub fn file_name(path: &str) -> &str {
    path.rsplit(['\\', '/']).next().unwrap_or(path)
}

/// Extra columns of a file written over SMB.
struct Smb<'a> {
    source_ip: &'a str,
    source_port: i32,
    account: &'a str,
    domain: &'a str,
    sid: &'a str,
    share: &'a str,
}

pub(super) fn file(
    w: &mut World<'_>,
    out: &mut Out<'_>,
    dev: usize,
    t: i64,
    slot: u32,
    k: FileKind,
) -> io::Result<()> {
    // Shares are written by people at work, not by idle clients at night.
    let smb_source = match (k, w.shared.clients.len()) {
        (FileKind::SmbWrite, n) if n > 0 => {
            let from = w.shared.clients[w.devs[dev].st.rng.below(n as u64) as usize];
            if w.devs[from].st.session.is_none() {
                return Ok(());
            }
            Some(from)
        }
        _ => None,
    };
    let s = &mut *w.scratch;
    let d = &mut w.devs[dev];
    let os = d.ctx.os;
    let (ctx, st) = (&d.ctx, &mut d.st);
    let r = &mut st.rng;
    let word = *r.pick(DOC_WORDS);
    let n = r.range(1, 9999);
    let mut action = "FileCreated";
    let mut origin: Option<Dest> = None;
    let mut smb_from: Option<(usize, i32)> = None;
    let path = &mut s.a;
    match k {
        FileKind::Autosave => {
            let p = &mut st.procs[slot as usize];
            if p.arg.is_empty() {
                return Ok(());
            }
            p.counter += 1;
            path.push_str(&p.arg);
            action = "FileModified";
        }
        FileKind::Download => {
            let dest = *r.pick(DOWNLOADS);
            origin = Some(dest);
            let sep = if os == Os::Windows { '\\' } else { '/' };
            let (stem, ext) = *r.pick(&[
                ("report", "pdf"),
                ("invoice", "pdf"),
                ("export", "csv"),
                ("screenshot", "png"),
                ("slides", "pptx"),
                ("setup", "zip"),
            ]);
            let _ = write!(path, "{}{sep}Downloads{sep}{stem}_{n}.{ext}", ctx.home);
        }
        FileKind::OutlookAttachment => {
            let ext = *r.pick(&["pdf", "xlsx", "docx"]);
            let _ = write!(
                path,
                r"{}\AppData\Local\Microsoft\Windows\INetCache\Content.Outlook\{:08X}\{word}_{n}.{ext}",
                ctx.home,
                r.next_u64() as u32
            );
        }
        FileKind::OneDriveSync => {
            let ext = *r.pick(&["docx", "xlsx", "pptx", "pdf"]);
            if r.chance(0.7) {
                action = "FileModified";
            }
            let _ = write!(
                path,
                r"{}\OneDrive - {}\Documents\{word}_{}.{ext}",
                ctx.home,
                w.shared.company_title,
                n % 40
            );
        }
        FileKind::WindowsTemp => {
            if r.chance(0.5) {
                let _ = write!(
                    path,
                    r"C:\Windows\Temp\{:08x}-{:04x}.tmp",
                    r.next_u64() as u32,
                    r.next_u64() as u16
                );
                if r.chance(0.4) {
                    action = "FileDeleted";
                }
            } else {
                let _ = write!(
                    path,
                    r"C:\Windows\SoftwareDistribution\Download\{:016x}{:016x}\Windows11.0-KB50{:05}-x64.cab",
                    r.next_u64(),
                    r.next_u64(),
                    n
                );
            }
        }
        FileKind::Prefetch => {
            let exe = *r.pick(&[
                "CHROME.EXE",
                "SVCHOST.EXE",
                "OUTLOOK.EXE",
                "WINWORD.EXE",
                "EXCEL.EXE",
                "TASKHOSTW.EXE",
                "RUNTIMEBROKER.EXE",
                "MSEDGE.EXE",
                "CONHOST.EXE",
            ]);
            let _ = write!(
                path,
                r"C:\Windows\Prefetch\{exe}-{:08X}.pf",
                rng::hash_str(ctx.hash_key, exe) as u32
            );
            action = "FileModified";
        }
        FileKind::SqlBackup => {
            let db = *r.pick(&["Orders", "Inventory", "HR", "Finance", "CRM"]);
            let _ = write!(path, r"D:\Backup\{db}_{}.bak", t / time::HOUR);
        }
        FileKind::SmbWrite => {
            let Some(from) = smb_source else {
                return Ok(());
            };
            let dept = *r.pick(DEPARTMENTS);
            let ext = *r.pick(&["docx", "xlsx", "pdf", "pptx", "csv"]);
            if r.chance(0.7) {
                action = "FileModified";
            }
            let _ = write!(path, r"D:\Shares\{dept}\{word}_{}.{ext}", n % 60);
            smb_from = Some((from, ephemeral(Os::Windows, r)));
        }
        FileKind::LinuxTmp => {
            let _ = write!(
                path,
                "/tmp/tomcat.8080.{n}/work/Tomcat/localhost/ROOT/upload_{:08x}.tmp",
                r.next_u64() as u32
            );
        }
        FileKind::BuildOutput => {
            let _ = write!(
                path,
                "/var/lib/jenkins/workspace/orders-service/tests/__pycache__/test_{}.cpython-310-pytest-7.4.4.pyc",
                word.to_ascii_lowercase()
            );
        }
        FileKind::MacCache => {
            let _ = write!(
                path,
                "{}/Library/Caches/com.apple.finder/Cache.db",
                ctx.home
            );
            action = "FileModified";
        }
    }
    let counter = u64::from(st.procs[slot as usize].counter);
    let key = rng::hash_str(ctx.hash_key, path) ^ counter.wrapping_mul(0x9E37_79B9);
    s.hashes(key);
    let size = 1_024 + (key % 4_000_000) as i64;
    let rid = st.report_id();
    let (ctx, st) = (&d.ctx, &d.st);
    if let Some(dest) = origin {
        let _ = write!(s.b, "https://{}/download/{}", dest.host, file_name(&s.a));
    }
    let path = s.a.as_str();
    let mut row = out.start(T::File);
    head(&mut row, ctx, t, action, rid);
    row.s(C::FileName, file_name(path));
    row.s(C::FolderPath, path);
    if action != "FileDeleted" {
        row.s(C::SHA1, &s.sha1);
        row.s(C::SHA256, &s.sha256);
        row.s(C::MD5, &s.md5);
        row.l(C::FileSize, size);
    }
    let mut smb = None;
    if let Some((from, port)) = smb_from {
        let fd = &w.fleet.devices()[from];
        let person = fd.owner.map(|o| &w.fleet.people[o]);
        smb = Some(Smb {
            source_ip: fd.primary_ip(),
            source_port: port,
            account: person.map_or("svc-backup", |p| p.sam.as_str()),
            domain: &w.fleet.netbios,
            sid: person.map_or("", |p| p.sid.as_str()),
            share: path.split('\\').nth(2).unwrap_or("Shares"),
        });
    }
    match &smb {
        Some(m) => {
            row.s(C::RequestProtocol, "SMB");
            row.s(C::RequestSourceIP, m.source_ip);
            row.i(C::RequestSourcePort, m.source_port);
            row.s(C::RequestAccountName, m.account);
            row.s(C::RequestAccountDomain, m.domain);
            row.s_opt(C::RequestAccountSid, Some(m.sid));
            row.s(C::ShareName, m.share);
        }
        None => row.s(C::RequestProtocol, "Local"),
    }
    if let Some(dest) = origin {
        row.s(C::FileOriginUrl, &s.b);
        row.s(C::FileOriginIP, dest.ip);
    }
    row.s(C::AdditionalFields, file_type_json(path));
    initiating(&mut row, ctx, st.proc(slot));
    out.emit(dev, row)
}

pub(super) fn reg(
    w: &mut World<'_>,
    out: &mut Out<'_>,
    dev: usize,
    t: i64,
    slot: u32,
    k: RegKind,
) -> io::Result<()> {
    let s = &mut *w.scratch;
    let d = &mut w.devs[dev];
    if d.ctx.os != Os::Windows {
        return Ok(());
    }
    let (ctx, st) = (&d.ctx, &mut d.st);
    let r = &mut st.rng;
    let (key, name, ty) = match k {
        RegKind::WindowsUpdate => {
            let _ = write!(s.b, "{}", t / time::SECOND);
            (
                r"HKEY_LOCAL_MACHINE\SOFTWARE\Microsoft\Windows\CurrentVersion\WindowsUpdate\Orchestrator",
                "LastScanTime",
                "String",
            )
        }
        RegKind::AppSwitched => {
            let app = *r.pick(&[
                r"Microsoft.Office.WINWORD.EXE.15",
                r"Microsoft.Office.EXCEL.EXE.15",
                r"Microsoft.Office.OUTLOOK.EXE.15",
                r"{6D809377-6AF0-444B-8957-A3773F02200E}\Google\Chrome\Application\chrome.exe",
                r"MSTeams_8wekyb3d8bbwe!MSTeams",
                r"Microsoft.Windows.Explorer",
            ]);
            let p = &mut st.procs[slot as usize];
            p.counter += 1;
            let _ = write!(s.b, "{}", p.counter + 3);
            let _ = write!(s.c, "{}", p.counter + 2);
            let sid = &ctx.acct(p.acct).sid;
            let _ = write!(
                s.a,
                r"HKEY_CURRENT_USER\{sid}\Software\Microsoft\Windows\CurrentVersion\Explorer\FeatureUsage\AppSwitched"
            );
            ("", app, "Dword")
        }
        RegKind::TaskCache => {
            let _ = write!(
                s.a,
                r"HKEY_LOCAL_MACHINE\SOFTWARE\Microsoft\Windows NT\CurrentVersion\Schedule\TaskCache\Tasks\{{{:08X}-{:04X}-4{:03X}-A{:03X}-{:012X}}}",
                r.next_u64() as u32,
                r.next_u64() as u16,
                r.next_u64() as u16 & 0xFFF,
                r.next_u64() as u16 & 0xFFF,
                r.next_u64() & 0xFFFF_FFFF_FFFF
            );
            crate::hex::push_digest(&mut s.b, r.next_u64(), 28);
            ("", "DynamicInfo", "Binary")
        }
        RegKind::Defender => {
            let _ = write!(s.b, "1.415.{}.0", 100 + t / time::DAY % 900);
            (
                r"HKEY_LOCAL_MACHINE\SOFTWARE\Microsoft\Windows Defender\Signature Updates",
                "AVSignatureVersion",
                "String",
            )
        }
    };
    let rid = st.report_id();
    let (ctx, st) = (&d.ctx, &d.st);
    let mut row = out.start(T::Registry);
    head(&mut row, ctx, t, "RegistryValueSet", rid);
    row.s(
        C::RegistryKey,
        if key.is_empty() { s.a.as_str() } else { key },
    );
    row.s(C::RegistryValueType, ty);
    row.s(C::RegistryValueName, name);
    row.s(C::RegistryValueData, &s.b);
    row.s_opt(C::PreviousRegistryValueData, Some(s.c.as_str()));
    initiating(&mut row, ctx, st.proc(slot));
    out.emit(dev, row)
}
