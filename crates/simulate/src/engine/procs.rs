//! Starting processes: the ones running since boot (no rows, as they started before the window)
//! and new ones (a ProcessCreated row, then their DLL loads and recurring activities queued).

use crate::catalog::{Img, info};
use crate::engine::device::{DevCtx, DevState, LOCAL_SERVICE, NETWORK_SERVICE, Proc, SYSTEM};
use crate::engine::profiles::{P, RunsAs};
use crate::engine::write::{Vars, head, initiating, process, render};
use crate::engine::{Ev, Out, World};
use crate::fleet::{Os, Role};
use crate::row::T;
use crate::time::{self, secs};
use std::fmt::Write;
use std::io;

/// How to start a process; [`Spawn::new`] takes everything from the profile.
pub struct Spawn<'c> {
    pub profile: P,
    pub img: Option<Img>,
    pub cmd: Option<&'c str>,
    pub acct: Option<u16>,
    /// When the process ends at the latest (its session's end).
    pub until: Option<i64>,
    pub pinned: bool,
    /// Write the ProcessCreated row (false for processes running since before the window).
    pub emit: bool,
    /// The label for the ProcessCreated row: (scenario, step).
    pub label: Option<(&'c str, &'c str)>,
}

impl<'c> Spawn<'c> {
    pub fn new(profile: P) -> Spawn<'c> {
        Spawn {
            profile,
            img: None,
            cmd: None,
            acct: None,
            until: None,
            pinned: false,
            emit: true,
            label: None,
        }
    }

    /// An attack tool: explicit image and command line, kept alive for the scenario's later steps.
    pub fn tool(img: Img, cmd: &'c str, scenario: &'c str, step: &'c str) -> Spawn<'c> {
        Spawn {
            img: Some(img),
            cmd: Some(cmd),
            pinned: true,
            label: Some((scenario, step)),
            ..Spawn::new(P::Attack)
        }
    }
}

/// The processes a device has been running since it booted.
pub fn boot(w: &mut World<'_>, dev: usize, start: i64) {
    let (os, role, boot_ns) = {
        let c = &w.devs[dev].ctx;
        (c.os, c.role, c.boot_ns)
    };
    let at = |k: i64| boot_ns + k * time::SECOND / 3;
    let quiet = |profile: P| Spawn {
        emit: false,
        pinned: true,
        ..Spawn::new(profile)
    };
    // Processes started at boot have small PIDs.
    let mut boot_pid = if os == Os::Windows { 60 } else { 300 };
    let mut go = |w: &mut World<'_>, parent: Option<u32>, profile: P, k: i64| -> u32 {
        // Boot processes write no rows, so spawning them cannot fail.
        let slot = spawn_at(w, None, dev, at(k), parent, quiet(profile), start).unwrap_or(0);
        let st = &mut w.devs[dev].st;
        boot_pid += if os == Os::Windows {
            4 * st.rng.range(8, 60)
        } else {
            st.rng.range(1, 120)
        };
        st.proc_mut(slot).pid = boot_pid;
        slot
    };
    match os {
        Os::Windows => {
            let system = go(
                w,
                None,
                if role == Role::FileServer {
                    P::WSystemFileServer
                } else {
                    P::WSystem
                },
                0,
            );
            w.devs[dev].st.proc_mut(system).pid = 4;
            let smss = go(w, Some(system), P::Smss, 1);
            let _csrss = go(w, Some(smss), P::Csrss, 2);
            let wininit = go(w, Some(smss), P::Wininit, 3);
            let winlogon = go(w, Some(smss), P::Winlogon, 3);
            let services = go(w, Some(wininit), P::Services, 4);
            let lsass = go(
                w,
                Some(wininit),
                match role {
                    Role::DomainController => P::LsassDc,
                    r if r.is_server() => P::LsassServer,
                    _ => P::Lsass,
                },
                4,
            );
            let dcom = go(w, Some(services), P::SvcDcom, 5);
            for p in [
                P::SvcSchedule,
                P::SvcWu,
                P::SvcDns,
                P::SvcSysMain,
                P::MsMpEng,
                P::MsSense,
            ] {
                go(w, Some(services), p, 6);
            }
            match role {
                Role::SqlServer => {
                    go(w, Some(services), P::Sqlservr, 9);
                }
                Role::DomainController => {
                    go(w, Some(services), P::DnsServer, 9);
                }
                _ => {}
            }
            let sys = &mut w.devs[dev].st.sys;
            sys.root = system;
            sys.services = Some(services);
            sys.lsass = Some(lsass);
            sys.winlogon = Some(winlogon);
            sys.wmi_host = Some(dcom);
        }
        Os::Linux => {
            let systemd = go(w, None, P::Systemd, 0);
            w.devs[dev].st.proc_mut(systemd).pid = 1;
            go(w, Some(systemd), P::Cron, 2);
            let sshd = go(
                w,
                Some(systemd),
                if role == Role::WebServer {
                    P::SshdPublic
                } else {
                    P::Sshd
                },
                2,
            );
            go(w, Some(systemd), P::Mdatp, 3);
            match role {
                Role::WebServer => {
                    go(w, Some(systemd), P::Nginx, 4);
                }
                Role::AppServer => {
                    go(w, Some(systemd), P::JavaApp, 4);
                }
                Role::Database => {
                    go(w, Some(systemd), P::Postgres, 4);
                }
                _ => {
                    go(w, Some(systemd), P::Jenkins, 4);
                }
            }
            let sys = &mut w.devs[dev].st.sys;
            sys.root = systemd;
            sys.sshd = Some(sshd);
        }
        Os::MacOs => {
            let launchd = go(w, None, P::Launchd, 0);
            w.devs[dev].st.proc_mut(launchd).pid = 1;
            go(w, Some(launchd), P::MacWdav, 2);
            let lw = go(w, Some(launchd), P::Loginwindow, 3);
            let sys = &mut w.devs[dev].st.sys;
            sys.root = launchd;
            sys.winlogon = Some(lw);
        }
    }
}

/// Starts a process at `t` (rows at `t`, activities from `t` on).
pub fn spawn(
    w: &mut World<'_>,
    out: &mut Out<'_>,
    dev: usize,
    t: i64,
    parent: Option<u32>,
    s: Spawn<'_>,
) -> io::Result<u32> {
    spawn_at(w, Some(out), dev, t, parent, s, t)
}

/// Records a process that was already running (no row); its activities begin at `active_from`.
pub fn spawn_quiet(
    w: &mut World<'_>,
    dev: usize,
    created: i64,
    parent: Option<u32>,
    s: Spawn<'_>,
    active_from: i64,
) -> u32 {
    // Without an output nothing is written, so nothing can fail.
    spawn_at(
        w,
        None,
        dev,
        created,
        parent,
        Spawn { emit: false, ..s },
        active_from,
    )
    .unwrap_or(0)
}

/// Starts a process created at `created`; its recurring activities begin at `active_from` (the
/// window start for processes that were already running).
fn spawn_at(
    w: &mut World<'_>,
    out: Option<&mut Out<'_>>,
    dev: usize,
    created: i64,
    parent: Option<u32>,
    s: Spawn<'_>,
    active_from: i64,
) -> io::Result<u32> {
    let profile = s.profile.get();
    let img = info(s.img.unwrap_or(profile.img));
    let d = &mut w.devs[dev];
    let (ctx, st) = (&d.ctx, &mut d.st);
    let os = ctx.os;
    let parent_acct = parent.map(|p| st.proc(p).acct);
    let acct = s.acct.unwrap_or(match profile.runs_as {
        RunsAs::Parent => parent_acct.unwrap_or(SYSTEM),
        RunsAs::System => SYSTEM,
        RunsAs::LocalService if os == Os::Windows => LOCAL_SERVICE,
        RunsAs::NetworkService if os == Os::Windows => NETWORK_SERVICE,
        RunsAs::Service if os == Os::Windows => NETWORK_SERVICE,
        RunsAs::Service if os == Os::Linux => (ctx.accounts.len() - 1) as u16,
        _ => SYSTEM,
    });
    let (integrity, elevation, session, logon_id) = token(ctx, st, acct, parent);
    let pid = st.pid(os);
    let (parent_pid, parent_name, parent_created) = match parent {
        Some(p) => {
            let pp = st.proc(p);
            (pp.pid, pp.img.image.name, pp.created)
        }
        None => (0, "", ctx.boot_ns),
    };
    let life_end = if profile.life.1 <= 0.0 {
        s.until.unwrap_or(i64::MAX)
    } else {
        let life = profile.life.0 + (profile.life.1 - profile.life.0) * st.rng.unit();
        (created + secs(life)).min(s.until.unwrap_or(i64::MAX))
    };
    let tpl = *st.rng.pick(profile.cmds);
    let (n, h) = (st.rng.next_u64(), st.rng.next_u64());
    let unique = if os == Os::MacOs { 0 } else { st.unique() };
    let doc_word = *st.rng.pick(crate::catalog::names::DOC_WORDS);
    let doc_n = st.rng.range(1, 999);
    let doc_place = st.rng.below(3);
    let server = match w.shared.windows_servers.len() {
        0 => "fileserver",
        k => {
            w.fleet.devices()[w.shared.windows_servers[st.rng.below(k as u64) as usize]].host_name()
        }
    };
    let slot = st.alloc(Proc {
        img,
        profile: s.profile,
        pid,
        created,
        cmd: String::new(),
        acct,
        integrity,
        elevation,
        session,
        logon_id,
        parent_pid,
        parent_name,
        parent_created,
        unique: String::new(),
        arg: String::new(),
        counter: 0,
        refs: 0,
        pinned: s.pinned,
        exit_at: life_end,
    });
    {
        let Proc {
            cmd,
            arg,
            unique: u,
            ..
        } = &mut st.procs[slot as usize];
        if let Some(ext) = profile.doc {
            let sep = if os == Os::Windows { '\\' } else { '/' };
            let home = &ctx.home;
            let _ = match (doc_place, os) {
                (0, Os::Windows) => write!(
                    arg,
                    "{home}{sep}OneDrive - {}{sep}Documents",
                    w.shared.company_title
                ),
                (1, _) => write!(arg, "{home}{sep}Downloads"),
                _ => write!(arg, "{home}{sep}Documents"),
            };
            let _ = write!(arg, "{sep}{doc_word}_{doc_n}.{ext}");
        }
        match s.cmd {
            Some(c) => cmd.push_str(c),
            None => {
                let a = ctx.acct(acct);
                let vars = Vars {
                    user: &a.name,
                    home: &ctx.home,
                    doc: arg,
                    server,
                    company: w.fleet.company,
                    domain: &w.fleet.ad_domain,
                    n,
                    h,
                };
                render(cmd, tpl, &vars);
            }
        }
        let _ = write!(u, "{unique}");
    }
    if s.emit
        && let Some(out) = out
    {
        let rid = st.report_id();
        let child = st.proc(slot);
        let mut r = out.start(T::Process);
        head(&mut r, ctx, created, "ProcessCreated", rid);
        process(&mut r, ctx, child);
        if let Some(p) = parent {
            initiating(&mut r, ctx, st.proc(p));
        }
        match s.label {
            Some((scenario, step)) => out.emit_labeled(dev, r, scenario, step)?,
            None => out.emit(dev, r)?,
        }
    }
    // Queue what the process will do.
    let mut refs = 0;
    let step = time::MILLI;
    // DLL loads and conhost follow a start within milliseconds: only for starts in the window.
    let dlls = if s.emit { profile.dlls } else { &[] };
    for (k, _) in dlls.iter().enumerate() {
        w.queue.push(
            created + step * (3 + 7 * k as i64) + st.rng.range(0, 5) * step,
            dev,
            Ev::Dll { slot, dll: k as u8 },
        );
        refs += 1;
    }
    if profile.console && os == Os::Windows && s.emit {
        w.queue.push(
            created + step * st.rng.range(1, 4),
            dev,
            Ev::Console { slot },
        );
        refs += 1;
    }
    for (k, (_, mean)) in profile.acts.iter().enumerate() {
        let first = active_from.max(created) + secs(st.rng.exp(*mean));
        if first < life_end {
            w.queue.push(first, dev, Ev::Act { slot, act: k as u8 });
            refs += 1;
        }
    }
    st.proc_mut(slot).refs += refs;
    if refs == 0 {
        st.release(slot);
    }
    Ok(slot)
}

/// Integrity level, token elevation, session id and logon id of a process running as `acct`.
fn token(
    ctx: &DevCtx,
    st: &DevState,
    acct: u16,
    parent: Option<u32>,
) -> (Option<&'static str>, &'static str, Option<i64>, i64) {
    if ctx.os != Os::Windows {
        return (None, "None", None, 0);
    }
    match acct {
        SYSTEM => (Some("System"), "TokenElevationTypeDefault", Some(0), 0x3e7),
        LOCAL_SERVICE => (Some("System"), "TokenElevationTypeDefault", Some(0), 0x3e5),
        NETWORK_SERVICE => (Some("System"), "TokenElevationTypeDefault", Some(0), 0x3e4),
        a => {
            // Same account as the parent: inherit its session; otherwise the user's session.
            let inherited = parent.map(|p| st.proc(p)).filter(|p| p.acct == a);
            let (session, logon) = match (inherited, st.session) {
                (Some(p), _) => (p.session, p.logon_id),
                (None, Some(s)) => (Some(s.session_id), s.logon_id),
                (None, None) => (Some(0), 0x3e7),
            };
            if ctx.acct(a).admin {
                (Some("High"), "TokenElevationTypeFull", session, logon)
            } else {
                (Some("Medium"), "TokenElevationTypeLimited", session, logon)
            }
        }
    }
}

/// Console programs get a conhost.exe right after they start.
pub fn console(
    w: &mut World<'_>,
    out: &mut Out<'_>,
    dev: usize,
    t: i64,
    slot: u32,
) -> io::Result<()> {
    spawn(w, out, dev, t, Some(slot), Spawn::new(P::Conhost))?;
    w.devs[dev].st.unref(slot);
    Ok(())
}
