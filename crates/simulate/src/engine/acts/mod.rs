//! Recurring activities of processes: connections out and in ([`net`]), file and registry
//! writes ([`files`]), logons a service records ([`logons`]), child processes, DeviceEvents, and
//! DLL loads after a start.

mod files;
mod logons;
mod net;

pub use files::{file_name, file_type_json};
pub use logons::{Logon, logon_row, rdp_logon};
pub use net::{Conn, conn, ephemeral, outbound_action, public_ip};

use crate::catalog::info;
use crate::engine::procs::{Spawn, spawn};
use crate::engine::profiles::{Act, EventKind, P};
use crate::engine::write::{head, initiating};
use crate::engine::{Ev, Out, World};
use crate::row::{C, Row, T};
use crate::time::{self, secs};
use std::fmt::Write;
use std::io;

/// Runs activity `act` of the process in `slot` and queues its next occurrence.
pub fn act(
    w: &mut World<'_>,
    out: &mut Out<'_>,
    dev: usize,
    t: i64,
    slot: u32,
    act: u8,
) -> io::Result<()> {
    let p = w.devs[dev].st.proc(slot);
    if t >= p.exit_at {
        w.devs[dev].st.unref(slot);
        return Ok(());
    }
    let Some(&(a, mean)) = p.profile.get().acts.get(usize::from(act)) else {
        w.devs[dev].st.unref(slot);
        return Ok(());
    };
    match a {
        Act::Net(list) => net::net(w, out, dev, t, slot, list)?,
        Act::Internal(k) => net::internal(w, out, dev, t, slot, k)?,
        Act::Inbound(port) => net::inbound(w, out, dev, t, slot, port)?,
        Act::File(k) => files::file(w, out, dev, t, slot, k)?,
        Act::Reg(k) => files::reg(w, out, dev, t, slot, k)?,
        Act::Child(list) => child(w, out, dev, t, slot, list)?,
        Act::Logon(k) => logons::logon_act(w, out, dev, t, slot, k)?,
        Act::Event(k) => event(w, out, dev, t, slot, k)?,
    }
    let st = &mut w.devs[dev].st;
    let next = t + secs(st.rng.exp(mean));
    if next < st.proc(slot).exit_at {
        w.queue.push(next, dev, Ev::Act { slot, act });
    } else {
        st.unref(slot);
    }
    Ok(())
}

fn child(
    w: &mut World<'_>,
    out: &mut Out<'_>,
    dev: usize,
    t: i64,
    slot: u32,
    list: &'static [(P, u32)],
) -> io::Result<()> {
    let st = &mut w.devs[dev].st;
    let weights: [u32; 16] = std::array::from_fn(|i| list.get(i).map_or(0, |x| x.1));
    let p = list[st.rng.weighted(&weights[..list.len().min(16)])].0;
    let exit = st.proc(slot).exit_at;
    let until = (exit != i64::MAX).then_some(exit);
    spawn(
        w,
        out,
        dev,
        t,
        Some(slot),
        Spawn {
            until,
            ..Spawn::new(p)
        },
    )?;
    Ok(())
}

static POWERSHELL_COMMANDS: &[&str] = &[
    r#"{"Command":"Get-ChildItem"}"#,
    r#"{"Command":"Get-Process"}"#,
    r#"{"Command":"Get-Service"}"#,
    r#"{"Command":"Test-NetConnection"}"#,
    r#"{"Command":"Get-ADUser"}"#,
    r#"{"Command":"Get-Content"}"#,
    r#"{"Command":"Select-String"}"#,
    r#"{"Command":"Import-Module"}"#,
    r#"{"Command":"Get-WinEvent"}"#,
    r#"{"Command":"Get-Volume"}"#,
];

fn event(
    w: &mut World<'_>,
    out: &mut Out<'_>,
    dev: usize,
    t: i64,
    slot: u32,
    k: EventKind,
) -> io::Result<()> {
    let s = &mut *w.scratch;
    let d = &mut w.devs[dev];
    let action = match k {
        EventKind::PowerShellCommand => {
            s.json.push_str(d.st.rng.pick::<&str>(POWERSHELL_COMMANDS));
            "PowerShellCommand"
        }
        EventKind::DefenderStatus => {
            if d.st.rng.chance(0.5) {
                let _ = write!(
                    s.json,
                    r#"{{"Domain":"NT AUTHORITY","User":"SYSTEM","SignatureVersion":"1.415.{}.0"}}"#,
                    100 + t / time::DAY % 900
                );
                "AntivirusDefinitionsUpdated"
            } else {
                let _ = write!(
                    s.json,
                    r#"{{"Domain":"NT AUTHORITY","User":"SYSTEM","ScanTypeIndex":"1","ScanParametersIndex":"1","ScanId":"{}"}}"#,
                    crate::hex::guid(d.st.rng.next_u64()).to_uppercase()
                );
                "AntivirusScanCompleted"
            }
        }
    };
    let rid = d.st.report_id();
    let (ctx, st) = (&d.ctx, &d.st);
    let mut row = out.start(T::Events);
    head(&mut row, ctx, t, action, rid);
    row.s(C::AdditionalFields, &s.json);
    initiating(&mut row, ctx, st.proc(slot));
    out.emit(dev, row)
}

/// A process loads DLL `dll` of its profile.
pub fn image_load(
    w: &mut World<'_>,
    out: &mut Out<'_>,
    dev: usize,
    t: i64,
    slot: u32,
    dll: u8,
) -> io::Result<()> {
    let d = &mut w.devs[dev];
    let img =
        d.st.proc(slot)
            .profile
            .get()
            .dlls
            .get(usize::from(dll))
            .copied();
    if let Some(img) = img {
        let rid = d.st.report_id();
        let (ctx, st) = (&d.ctx, &d.st);
        let mut row = out.start(T::ImageLoad);
        head(&mut row, ctx, t, "ImageLoaded", rid);
        image_cols(&mut row, info(img));
        initiating(&mut row, ctx, st.proc(slot));
        out.emit(dev, row)?;
    }
    w.devs[dev].st.unref(slot);
    Ok(())
}

/// FileName, FolderPath, hashes and size of a module or file image.
pub fn image_cols<'a>(row: &mut Row<'a>, i: &'a crate::catalog::ImageInfo) {
    row.s(C::FileName, i.image.name);
    row.s(C::FolderPath, i.image.path);
    row.s(C::SHA1, &i.sha1);
    row.s(C::SHA256, &i.sha256);
    row.s(C::MD5, &i.md5);
    row.l(C::FileSize, i.image.size);
}
