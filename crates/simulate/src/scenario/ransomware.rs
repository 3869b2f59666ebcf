//! Ransomware: a payload deletes shadow copies (vssadmin, wmic), disables recovery (bcdedit),
//! then renames hundreds of documents to a new extension a few per second, leaving a ransom
//! note in each folder.

use super::{FileExtra, after, entry_process, file, token};
use crate::catalog::Img;
use crate::catalog::names::{DEPARTMENTS, DOC_WORDS};
use crate::engine::procs::{Spawn, spawn};
use crate::engine::{Out, World};
use crate::fleet::Role;
use crate::rng;
use std::io;

const NAME: &str = "ransomware";
const FILES_PER_FOLDER: u32 = 40;

pub fn step(
    w: &mut World<'_>,
    out: &mut Out<'_>,
    run: usize,
    t: i64,
) -> io::Result<Option<(i64, usize)>> {
    let dev = w.runs[run].dev;
    let step = w.runs[run].step;
    w.runs[run].step += 1;
    let acct = w.devs[dev].ctx.user_or_admin();
    // text: [extension, -, current folder, -]
    match step {
        0 => {
            let r = &mut w.runs[run].rng;
            let ext = token(r, 5);
            let files = r.range(200, 400) as u32;
            let run_ = &mut w.runs[run];
            run_.text[0] = ext;
            run_.left = files;
            run_.acct = acct;
            let parent = Some(entry_process(w, out, dev, t)?);
            let payload = spawn(
                w,
                out,
                dev,
                t,
                parent,
                Spawn {
                    acct: Some(acct),
                    ..Spawn::tool(
                        Img::RansomPayload,
                        r#""C:\ProgramData\WinUpd\wupdsvc.exe" -run -path all"#,
                        NAME,
                        "payload-started",
                    )
                },
            )?;
            w.runs[run].procs[0] = payload;
            Ok(after(t, 5.0, dev))
        }
        1 => {
            let payload = Some(w.runs[run].procs[0]);
            let cmd = spawn(
                w,
                out,
                dev,
                t,
                payload,
                Spawn {
                    acct: Some(acct),
                    ..Spawn::tool(
                        Img::Cmd,
                        r#""C:\Windows\system32\cmd.exe" /c vssadmin.exe delete shadows /all /quiet"#,
                        NAME,
                        "shadow-copy-deletion",
                    )
                },
            )?;
            w.runs[run].procs[1] = cmd;
            Ok(after(t, 0.2, dev))
        }
        2 => {
            let cmd = Some(w.runs[run].procs[1]);
            spawn(
                w,
                out,
                dev,
                t,
                cmd,
                Spawn {
                    acct: Some(acct),
                    ..Spawn::tool(
                        Img::Vssadmin,
                        "vssadmin.exe  delete shadows /all /quiet",
                        NAME,
                        "shadow-copy-deletion",
                    )
                },
            )?;
            Ok(after(t, 2.0, dev))
        }
        3 => {
            let payload = Some(w.runs[run].procs[0]);
            spawn(
                w,
                out,
                dev,
                t,
                payload,
                Spawn {
                    acct: Some(acct),
                    ..Spawn::tool(
                        Img::Wmic,
                        "wmic.exe shadowcopy delete /nointeractive",
                        NAME,
                        "shadow-copy-deletion",
                    )
                },
            )?;
            Ok(after(t, 1.0, dev))
        }
        4 => {
            let payload = Some(w.runs[run].procs[0]);
            spawn(
                w,
                out,
                dev,
                t,
                payload,
                Spawn {
                    acct: Some(acct),
                    ..Spawn::tool(
                        Img::Bcdedit,
                        "bcdedit.exe /set {default} recoveryenabled No",
                        NAME,
                        "recovery-disabled",
                    )
                },
            )?;
            Ok(after(t, 3.0, dev))
        }
        _ => {
            let left = w.runs[run].left;
            if left == 0 {
                return Ok(None);
            }
            w.runs[run].left -= 1;
            w.runs[run].step = 5;
            let index = w.runs[run].rng.next_u64() >> 1;
            // A new folder (and ransom note) every FILES_PER_FOLDER files.
            let new_folder =
                left.is_multiple_of(FILES_PER_FOLDER) || w.runs[run].text[2].is_empty();
            if new_folder {
                let folder = pick_folder(w, run, dev);
                w.runs[run].text[2] = folder;
            }
            let payload = w.runs[run].procs[0];
            let folder = w.runs[run].text[2].clone();
            let ext = w.runs[run].text[0].clone();
            let r = &mut w.runs[run].rng;
            let word = *r.pick(DOC_WORDS);
            let kind = *r.pick(&["docx", "xlsx", "pdf", "pptx", "jpg", "csv"]);
            let old = format!(r"{folder}\{word}_{}.{kind}", index % 10_000);
            let new = format!("{old}.{ext}");
            let key = rng::hash_str(w.seed ^ index, &new);
            let extra = FileExtra {
                previous: Some(&old),
                ..FileExtra::default()
            };
            file(
                w,
                out,
                run,
                dev,
                t,
                payload,
                "FileRenamed",
                &new,
                key,
                extra,
                "file-encrypted",
            )?;
            if new_folder {
                let note = format!(r"{folder}\README_{}.txt", ext.to_uppercase());
                let key = rng::hash_str(w.seed, &ext);
                file(
                    w,
                    out,
                    run,
                    dev,
                    t,
                    payload,
                    "FileCreated",
                    &note,
                    key,
                    FileExtra {
                        size: 2_411,
                        ..FileExtra::default()
                    },
                    "ransom-note",
                )?;
            }
            let gap = 0.15 + 0.25 * w.runs[run].rng.unit();
            Ok(after(t, gap, dev))
        }
    }
}

/// The next folder to encrypt: user folders on workstations, department shares on file servers.
fn pick_folder(w: &mut World<'_>, run: usize, dev: usize) -> String {
    let ctx = &w.devs[dev].ctx;
    let r = &mut w.runs[run].rng;
    if ctx.role == Role::FileServer {
        return format!(r"D:\Shares\{}", r.pick(DEPARTMENTS));
    }
    let sub = *r.pick(&[
        r"Documents",
        r"Desktop",
        r"Pictures",
        r"Downloads",
        r"Documents\Projects",
        r"Documents\Finance",
    ]);
    format!(r"{}\{sub}", ctx.home)
}
