//! Working days on workstations: each local day a user may sign in (mostly weekdays, around
//! nine), start their usual applications, launch others through the day, lock for lunch and
//! leave in the evening. Servers have no interactive sessions.

use crate::engine::acts::{Logon, logon_row};
use crate::engine::device::Session;
use crate::engine::procs::{Spawn, spawn, spawn_quiet};
use crate::engine::profiles::{MAC_STARTUP, MAC_USER_APPS, P, WIN_STARTUP, WIN_USER_APPS};
use crate::engine::{Ev, Out, World};
use crate::fleet::Os;
use crate::rng::Rng;
use crate::time::{self, DAY, HOUR, MINUTE, SECOND, secs};
use std::io;

/// Mean gap between applications a user starts.
const LAUNCH_MEAN_SECS: f64 = 6.0 * 60.0;

/// The working session of the local day starting at `midnight`, if the user works that day.
/// Depends only on the seed, device and day, so planning ahead and catching up agree.
fn plan(seed: u64, dev: usize, midnight: i64, offset: i64) -> Option<(i64, i64)> {
    let day = (midnight + offset).div_euclid(DAY);
    let mut r = Rng::derive(seed, &[0x5E55, dev as u64, day as u64]);
    let weekend = time::is_weekend(midnight, offset);
    if !r.chance(if weekend { 0.08 } else { 0.94 }) {
        return None;
    }
    let start = midnight + 7 * HOUR + 45 * MINUTE + r.range(0, 7200) * SECOND;
    let hours = if weekend {
        r.range(1, 4) * HOUR
    } else {
        8 * HOUR + r.range(0, 7200) * SECOND
    };
    Some((start, start + hours))
}

fn has_sessions(w: &World<'_>, dev: usize) -> bool {
    let c = &w.devs[dev].ctx;
    !c.role.is_server() && c.user.is_some()
}

/// Plans the first day; when the window opens in the middle of a session, the user's shell and
/// startup applications are already running.
pub fn init(w: &mut World<'_>, dev: usize, start: i64) {
    if !has_sessions(w, dev) {
        return;
    }
    let offset = w.devs[dev].ctx.utc_offset;
    let midnight = time::local_midnight(start, offset);
    w.queue.push(midnight + DAY, dev, Ev::DayPlan);
    match plan(w.seed, dev, midnight, offset) {
        Some((s, e)) if s >= start => w.queue.push(s, dev, Ev::SessionStart { end: e }),
        Some((s, e)) if e > start => resume(w, dev, s, e, start),
        _ => {}
    }
}

/// A session that began before the window: its processes exist without creation rows.
fn resume(w: &mut World<'_>, dev: usize, began: i64, end: i64, start: i64) {
    open_session(w, dev, end);
    let (os, user, root, winlogon) = {
        let d = &w.devs[dev];
        (d.ctx.os, d.ctx.user, d.st.sys.root, d.st.sys.winlogon)
    };
    let quiet = |p: P| Spawn {
        emit: false,
        acct: user,
        until: Some(end),
        ..Spawn::new(p)
    };
    let shell = if os == Os::Windows {
        let shell = spawn_quiet(
            w,
            dev,
            began + 2 * SECOND,
            winlogon,
            Spawn {
                pinned: true,
                ..quiet(P::Explorer)
            },
            start,
        );
        w.devs[dev].st.sys.shell = Some(shell);
        shell
    } else {
        root
    };
    let apps = if os == Os::Windows {
        WIN_STARTUP
    } else {
        MAC_STARTUP
    };
    for (k, p) in apps.iter().enumerate() {
        spawn_quiet(
            w,
            dev,
            began + (10 + 7 * k as i64) * SECOND,
            Some(shell),
            quiet(*p),
            start,
        );
    }
    schedule_day(w, dev, start, end);
}

fn open_session(w: &mut World<'_>, dev: usize, end: i64) {
    let st = &mut w.devs[dev].st;
    let logon_id = st.logon_id();
    st.session = Some(Session {
        end,
        logon_id,
        session_id: if w.devs[dev].ctx.os == Os::Windows {
            1
        } else {
            0
        },
    });
}

/// Launches, lunch-time unlock and the end of the session.
fn schedule_day(w: &mut World<'_>, dev: usize, from: i64, end: i64) {
    let d = &mut w.devs[dev];
    let first = from + secs(d.st.rng.exp(LAUNCH_MEAN_SECS));
    if first < end {
        w.queue.push(first, dev, Ev::UserLaunch);
    }
    if d.ctx.os == Os::Windows && d.st.rng.chance(0.6) {
        let lunch = time::local_midnight(from, d.ctx.utc_offset)
            + 12 * HOUR
            + 15 * MINUTE
            + d.st.rng.range(0, 5400) * SECOND;
        if lunch > from && lunch < end {
            w.queue.push(lunch, dev, Ev::Unlock { retry: false });
        }
    }
    w.queue.push(end, dev, Ev::SessionEnd);
}

pub fn day_plan(w: &mut World<'_>, dev: usize, t: i64) {
    let offset = w.devs[dev].ctx.utc_offset;
    let midnight = time::local_midnight(t, offset);
    if let Some((s, e)) = plan(w.seed, dev, midnight, offset) {
        w.queue.push(s.max(t), dev, Ev::SessionStart { end: e });
    }
    w.queue.push(midnight + DAY, dev, Ev::DayPlan);
}

/// The user signs in: logon, shell, startup applications.
pub fn start(w: &mut World<'_>, out: &mut Out<'_>, dev: usize, t: i64, end: i64) -> io::Result<()> {
    if w.devs[dev].st.session.is_some() || end <= t {
        return Ok(());
    }
    open_session(w, dev, end);
    let os = w.devs[dev].ctx.os;
    logon(
        w,
        out,
        dev,
        t,
        "LogonSuccess",
        if os == Os::Windows {
            "Interactive"
        } else {
            "Local"
        },
    )?;
    let (user, root, winlogon) = {
        let d = &w.devs[dev];
        (d.ctx.user, d.st.sys.root, d.st.sys.winlogon)
    };
    if os == Os::Windows {
        // userinit is pinned until explorer, its child, has been written.
        let userinit = spawn(
            w,
            out,
            dev,
            t,
            winlogon,
            Spawn {
                acct: user,
                until: Some(end),
                pinned: true,
                ..Spawn::new(P::Userinit)
            },
        )?;
        let shell = spawn(
            w,
            out,
            dev,
            t,
            Some(userinit),
            Spawn {
                acct: user,
                until: Some(end),
                pinned: true,
                ..Spawn::new(P::Explorer)
            },
        )?;
        w.devs[dev].st.sys.shell = Some(shell);
        w.devs[dev].st.unpin(userinit);
    } else {
        w.devs[dev].st.sys.shell = Some(root);
    }
    let apps = if os == Os::Windows {
        WIN_STARTUP.len()
    } else {
        MAC_STARTUP.len()
    };
    for k in 0..apps {
        let d = &mut w.devs[dev];
        if d.st.rng.chance(0.85) {
            let at = t + (5 + 9 * k as i64) * SECOND + d.st.rng.range(0, 4000) * time::MILLI;
            w.queue.push(at, dev, Ev::Startup { index: k as u8 });
        }
    }
    schedule_day(w, dev, t, end);
    Ok(())
}

pub fn end(w: &mut World<'_>, dev: usize) {
    let d = &mut w.devs[dev];
    d.st.session = None;
    if let Some(shell) = d.st.sys.shell.take()
        && d.ctx.os == Os::Windows
    {
        d.st.unpin(shell);
    }
}

fn session_end(w: &World<'_>, dev: usize, t: i64) -> Option<i64> {
    w.devs[dev].st.session.map(|s| s.end).filter(|&e| e > t)
}

pub fn startup(
    w: &mut World<'_>,
    out: &mut Out<'_>,
    dev: usize,
    t: i64,
    index: u8,
) -> io::Result<()> {
    let Some(end) = session_end(w, dev, t) else {
        return Ok(());
    };
    let d = &w.devs[dev];
    let list = if d.ctx.os == Os::Windows {
        WIN_STARTUP
    } else {
        MAC_STARTUP
    };
    let Some(&p) = list.get(usize::from(index)) else {
        return Ok(());
    };
    launch(w, out, dev, t, p, end)
}

pub fn user_launch(w: &mut World<'_>, out: &mut Out<'_>, dev: usize, t: i64) -> io::Result<()> {
    let Some(end) = session_end(w, dev, t) else {
        return Ok(());
    };
    let d = &mut w.devs[dev];
    let list = if d.ctx.os == Os::Windows {
        WIN_USER_APPS
    } else {
        MAC_USER_APPS
    };
    let weights: [u32; 16] = std::array::from_fn(|i| list.get(i).map_or(0, |x| x.1));
    let p = list[d.st.rng.weighted(&weights[..list.len()])].0;
    let next = t + secs(d.st.rng.exp(LAUNCH_MEAN_SECS));
    if next < end {
        w.queue.push(next, dev, Ev::UserLaunch);
    }
    launch(w, out, dev, t, p, end)
}

/// The user starts `p` from the shell.
fn launch(
    w: &mut World<'_>,
    out: &mut Out<'_>,
    dev: usize,
    t: i64,
    p: P,
    end: i64,
) -> io::Result<()> {
    let d = &mut w.devs[dev];
    let parent = d.st.sys.shell.or(Some(d.st.sys.root));
    let user = d.ctx.user;
    // Browsers, mail and chat run once per session: starting one again creates a process that
    // hands its command line to the running instance and exits within seconds.
    let session_app = p.get().life.1 <= 0.0;
    let running = session_app
        && d.st
            .procs
            .iter()
            .any(|q| q.profile == p && q.exit_at > t && q.exit_at != i64::MIN);
    let until = if running {
        t + d.st.rng.range(1, 4) * SECOND
    } else {
        end
    };
    spawn(
        w,
        out,
        dev,
        t,
        parent,
        Spawn {
            acct: user,
            until: Some(until),
            ..Spawn::new(p)
        },
    )?;
    Ok(())
}

/// Back from lunch: unlock, sometimes after a mistyped password.
pub fn unlock(
    w: &mut World<'_>,
    out: &mut Out<'_>,
    dev: usize,
    t: i64,
    retry: bool,
) -> io::Result<()> {
    if session_end(w, dev, t).is_none() {
        return Ok(());
    }
    let d = &mut w.devs[dev];
    if !retry && d.st.rng.chance(0.12) {
        let again = t + d.st.rng.range(4, 15) * SECOND;
        w.queue.push(again, dev, Ev::Unlock { retry: true });
        return logon(w, out, dev, t, "LogonFailed", "Unlock");
    }
    logon(w, out, dev, t, "LogonSuccess", "Unlock")
}

/// A local logon of the session user, recorded by lsass (Windows) or loginwindow (macOS).
fn logon(
    w: &mut World<'_>,
    out: &mut Out<'_>,
    dev: usize,
    t: i64,
    action: &str,
    logon_type: &str,
) -> io::Result<()> {
    let d = &mut w.devs[dev];
    let rid = d.st.report_id();
    let (ctx, st) = (&d.ctx, &d.st);
    let Some(user) = ctx.user else { return Ok(()) };
    let a = ctx.acct(user);
    let windows = ctx.os == Os::Windows;
    let failed = action == "LogonFailed";
    let l = Logon {
        action,
        logon_type,
        domain: &a.domain,
        name: &a.name,
        sid: &a.sid,
        protocol: windows.then_some("Negotiate"),
        failure: failed.then_some("WrongPassword"),
        admin: windows.then_some(false),
        logon_id: st
            .session
            .map(|s| s.logon_id)
            .filter(|_| windows && !failed),
        remote_name: None,
        remote_ip: None,
        remote_port: None,
    };
    let by = st.sys.lsass.or(st.sys.winlogon).map(|s| st.proc(s));
    let r = logon_row(out, ctx, by, t, rid, &l);
    out.emit(dev, r)
}
