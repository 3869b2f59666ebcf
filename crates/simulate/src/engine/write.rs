//! Column blocks shared by many rows: the row head, the InitiatingProcess* block, the created
//! process's own columns, and command-line templates.

use crate::engine::device::{DevCtx, Proc};
use crate::fleet::Os;
use crate::row::{C, Row};
use std::fmt::Write;

/// Timestamp, DeviceId, DeviceName, ActionType, ReportId.
pub fn head<'a>(r: &mut Row<'a>, ctx: &'a DevCtx, t: i64, action: &'a str, report_id: i64) {
    r.t(C::Timestamp, t);
    r.s(C::DeviceId, &ctx.id);
    r.s(C::DeviceName, &ctx.name);
    if !action.is_empty() {
        r.s(C::ActionType, action);
    }
    r.l(C::ReportId, report_id);
}

/// The InitiatingProcess* block for `p` (the acting process).
pub fn initiating<'a>(r: &mut Row<'a>, ctx: &'a DevCtx, p: &'a Proc) {
    let img = p.img;
    let i = img.image;
    let a = ctx.acct(p.acct);
    r.s(C::InitiatingProcessAccountDomain, &a.init_domain);
    r.s(C::InitiatingProcessAccountName, &a.init_name);
    r.s(C::InitiatingProcessAccountSid, &a.sid);
    r.s_opt(C::InitiatingProcessAccountUpn, a.upn.as_deref());
    r.s_opt(C::InitiatingProcessAccountObjectId, a.object_id.as_deref());
    r.l(C::InitiatingProcessLogonId, p.logon_id);
    r.s_opt(C::InitiatingProcessIntegrityLevel, p.integrity);
    r.s(C::InitiatingProcessTokenElevation, p.elevation);
    if !i.path.is_empty() {
        r.s(C::InitiatingProcessSHA1, &img.sha1);
        r.s(C::InitiatingProcessSHA256, &img.sha256);
        r.s(C::InitiatingProcessMD5, &img.md5);
        r.l(C::InitiatingProcessFileSize, i.size);
        r.s(C::InitiatingProcessFolderPath, &img.init_path);
    }
    r.s(C::InitiatingProcessFileName, &img.init_name);
    r.s_opt(C::InitiatingProcessVersionInfoCompanyName, img.company());
    r.s_opt(
        C::InitiatingProcessVersionInfoProductName,
        img.version_field(i.product),
    );
    r.s_opt(
        C::InitiatingProcessVersionInfoProductVersion,
        img.version_field(i.version),
    );
    r.s_opt(
        C::InitiatingProcessVersionInfoInternalFileName,
        img.version_field(img.internal),
    );
    r.s_opt(
        C::InitiatingProcessVersionInfoOriginalFileName,
        img.version_field(i.name),
    );
    r.s_opt(
        C::InitiatingProcessVersionInfoFileDescription,
        img.version_field(i.description),
    );
    r.l(C::InitiatingProcessId, p.pid);
    r.s_opt(C::InitiatingProcessCommandLine, Some(&p.cmd));
    r.t(C::InitiatingProcessCreationTime, p.created);
    if p.parent_pid > 0 || ctx.os != Os::Windows {
        r.l(C::InitiatingProcessParentId, p.parent_pid);
        r.s(C::InitiatingProcessParentFileName, p.parent_name);
        r.t(C::InitiatingProcessParentCreationTime, p.parent_created);
    }
    if let Some((signer, status)) = img.signer {
        r.s(C::InitiatingProcessSignerType, signer);
        r.s(C::InitiatingProcessSignatureStatus, status);
    }
    if let Some(s) = p.session {
        r.l(C::InitiatingProcessSessionId, s);
    }
    r.b(C::IsInitiatingProcessRemoteSession, false);
    r.s(C::InitiatingProcessUniqueId, &p.unique);
}

/// The created (or targeted) process's own columns in DeviceProcessEvents / DeviceEvents.
pub fn process<'a>(r: &mut Row<'a>, ctx: &'a DevCtx, p: &'a Proc) {
    let img = p.img;
    let i = img.image;
    let a = ctx.acct(p.acct);
    r.s(C::FileName, i.name);
    if !i.path.is_empty() {
        r.s(C::FolderPath, i.path);
        r.s(C::SHA1, &img.sha1);
        r.s(C::SHA256, &img.sha256);
        r.s(C::MD5, &img.md5);
        r.l(C::FileSize, i.size);
    }
    r.s_opt(C::ProcessVersionInfoCompanyName, img.company());
    r.s_opt(
        C::ProcessVersionInfoProductName,
        img.version_field(i.product),
    );
    r.s_opt(
        C::ProcessVersionInfoProductVersion,
        img.version_field(i.version),
    );
    r.s_opt(
        C::ProcessVersionInfoInternalFileName,
        img.version_field(img.internal),
    );
    r.s_opt(
        C::ProcessVersionInfoOriginalFileName,
        img.version_field(i.name),
    );
    r.s_opt(
        C::ProcessVersionInfoFileDescription,
        img.version_field(i.description),
    );
    r.l(C::ProcessId, p.pid);
    r.s_opt(C::ProcessCommandLine, Some(&p.cmd));
    r.s_opt(C::ProcessIntegrityLevel, p.integrity);
    r.s(C::ProcessTokenElevation, p.elevation);
    r.t(C::ProcessCreationTime, p.created);
    r.s(C::AccountDomain, &a.domain);
    r.s(C::AccountName, &a.name);
    r.s(C::AccountSid, &a.sid);
    r.s_opt(C::AccountUpn, a.upn.as_deref());
    r.s_opt(C::AccountObjectId, a.object_id.as_deref());
    r.l(C::LogonId, p.logon_id);
    if let Some(s) = p.session {
        r.l(C::CreatedProcessSessionId, s);
    }
    r.b(C::IsProcessRemoteSession, false);
    r.s(C::ProcessUniqueId, &p.unique);
}

/// Values for command-line placeholders.
pub struct Vars<'a> {
    pub user: &'a str,
    pub home: &'a str,
    pub doc: &'a str,
    pub server: &'a str,
    pub company: &'a str,
    pub domain: &'a str,
    pub n: u64,
    pub h: u64,
}

/// Appends `tpl` to `out` with placeholders replaced (see the profiles module doc).
pub fn render(out: &mut String, tpl: &str, v: &Vars<'_>) {
    let mut rest = tpl;
    let mut n = v.n;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else {
            out.push_str(&rest[open..]);
            return;
        };
        match &after[..close] {
            "u" => out.push_str(v.user),
            "home" => out.push_str(v.home),
            "doc" => out.push_str(v.doc),
            "srv" => out.push_str(v.server),
            "co" => out.push_str(v.company),
            "dom" => out.push_str(v.domain),
            "n" => {
                // Successive {n} differ, as the numbers in one real command line do.
                let _ = write!(out, "{}", n % 100_000_000);
                n = n
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407)
                    >> 1;
            }
            "h" => {
                let _ = write!(out, "{:08x}", v.h as u32);
            }
            "guid" => {
                let h = v.h;
                let _ = write!(
                    out,
                    "{{{:08X}-{:04X}-{:04X}-{:04X}-{:012X}}}",
                    h as u32,
                    (h >> 32) as u16,
                    (h >> 48) as u16 | 0x4000 & 0x4FFF,
                    (n as u16) | 0x8000,
                    n & 0xFFFF_FFFF_FFFF
                );
            }
            // Not a placeholder (GUIDs in command lines): keep it.
            other => {
                out.push('{');
                out.push_str(other);
                out.push('}');
            }
        }
        rest = &after[close + 1..];
    }
    out.push_str(rest);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_fill_placeholders_and_keep_braces_they_do_not_know() {
        let v = Vars {
            user: "asmith",
            home: r"C:\Users\asmith",
            doc: "a.docx",
            server: "fs01",
            company: "contoso",
            domain: "corp",
            n: 12345,
            h: 0xdeadbeef,
        };
        let mut s = String::new();
        render(
            &mut s,
            r"net use Z: \\{srv}\Shared {u} {h} /Processid:{AB89-01}",
            &v,
        );
        assert_eq!(
            s,
            r"net use Z: \\fs01\Shared asmith deadbeef /Processid:{AB89-01}"
        );
        s.clear();
        render(&mut s, "{n} {n}", &v);
        let parts: Vec<&str> = s.split(' ').collect();
        assert_ne!(parts[0], parts[1]);
    }
}
