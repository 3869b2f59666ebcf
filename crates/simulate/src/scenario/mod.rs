//! Attack scenarios: state machines that write labelled rows into the same time-ordered stream
//! as normal activity. Each step writes its rows at its own instant and queues the next step.
//!
//! Every scenario row is reported to the sink as a [`crate::Label`] (scenario, step, device,
//! table, ReportId, Timestamp), so detections can be scored against ground truth.

mod credential;
mod miner;
mod phishing;
mod ransomware;

use crate::catalog::net::ATTACKER_NETS;
use crate::engine::acts::{
    Conn, Logon, conn, file_name, file_type_json, logon_row, outbound_action,
};
use crate::engine::write::{head, initiating};
use crate::engine::{Ev, Out, World};
use crate::fleet::{Device, Fleet, Os, Role};
use crate::rng::Rng;
use crate::row::{C, T};
use crate::spec::{ScenarioError, ScenarioKind, ScenarioSpec};
use std::io;

/// Where a scenario runs.
#[derive(Clone, Copy, Debug)]
pub struct Placed {
    pub kind: ScenarioKind,
    pub dev: usize,
    /// The second device of lateral movement.
    pub target: Option<usize>,
}

/// A running scenario.
pub struct Run {
    pub kind: ScenarioKind,
    pub dev: usize,
    pub target: Option<usize>,
    pub step: u16,
    /// Repetitions left in the current step (brute-force attempts, files to encrypt).
    pub left: u32,
    /// Repeating steps (beacons, pool connections) stop here.
    pub until: i64,
    /// Process slots of the processes the story started, by role in the story.
    pub procs: [u32; 6],
    pub acct: u16,
    pub rng: Rng,
    /// Free text the story keeps: C2 domain, attacker IP, file extension, paths.
    pub text: [String; 4],
}

impl Run {
    fn name(&self) -> &'static str {
        self.kind.name()
    }
}

/// How long beaconing and mining keep going after the scenario starts.
const TAIL: i64 = 6 * crate::time::HOUR;

/// Chooses the device(s) for `s`: the named one (checked for suitability) or a deterministic
/// pick among suitable devices.
pub fn place(
    fleet: &Fleet,
    s: &ScenarioSpec,
    index: usize,
    seed: u64,
) -> Result<Placed, ScenarioError> {
    let devs = fleet.devices();
    let (needs, ok): (&'static str, fn(&Device) -> bool) = match s.kind {
        ScenarioKind::Phishing => ("a Windows workstation", |d| {
            d.os == Os::Windows && !d.role.is_server()
        }),
        ScenarioKind::CredentialTheft | ScenarioKind::Ransomware => {
            ("a Windows device", |d| d.os == Os::Windows)
        }
        ScenarioKind::SshMiner => ("a Linux server", |d| d.os == Os::Linux),
    };
    let dev = match &s.device {
        Some(name) => {
            let i = fleet
                .find(name)
                .ok_or_else(|| ScenarioError::UnknownDevice {
                    scenario: s.kind,
                    device: name.clone(),
                })?;
            if !ok(&devs[i]) {
                return Err(ScenarioError::WrongDevice {
                    scenario: s.kind,
                    device: name.clone(),
                    needs,
                });
            }
            i
        }
        None => {
            let all: Vec<usize> = (0..devs.len()).filter(|&i| ok(&devs[i])).collect();
            let preferred: Vec<usize> = all
                .iter()
                .copied()
                .filter(|&i| match s.kind {
                    ScenarioKind::SshMiner => devs[i].internet_facing,
                    _ => !devs[i].role.is_server(),
                })
                .collect();
            let pool = if preferred.is_empty() {
                &all
            } else {
                &preferred
            };
            if pool.is_empty() {
                return Err(ScenarioError::NoSuitableDevice {
                    scenario: s.kind,
                    needs,
                });
            }
            let mut r = Rng::derive(seed, &[0x5CE, s.kind as u64, index as u64]);
            pool[r.below(pool.len() as u64) as usize]
        }
    };
    let target = if s.kind == ScenarioKind::CredentialTheft {
        let others: Vec<usize> = (0..devs.len())
            .filter(|&i| i != dev && devs[i].os == Os::Windows)
            .collect();
        let best = others
            .iter()
            .copied()
            .find(|&i| devs[i].role == Role::DomainController)
            .or_else(|| others.iter().copied().find(|&i| devs[i].role.is_server()))
            .or_else(|| others.first().copied());
        match best {
            Some(t) => Some(t),
            None => {
                return Err(ScenarioError::NoSuitableDevice {
                    scenario: s.kind,
                    needs: "a second Windows device to move to",
                });
            }
        }
    } else {
        None
    };
    Ok(Placed {
        kind: s.kind,
        dev,
        target,
    })
}

/// Queues the first step of a placed scenario at `at`.
pub fn start(w: &mut World<'_>, p: Placed, at: i64, index: usize) {
    let mut rng = Rng::derive(w.seed, &[0x5CA7, p.kind as u64, index as u64, at as u64]);
    let mut text: [String; 4] = Default::default();
    crate::engine::acts::public_ip(&mut text[1], &mut rng, ATTACKER_NETS);
    let run = Run {
        kind: p.kind,
        dev: p.dev,
        target: p.target,
        step: 0,
        left: 0,
        until: at + TAIL,
        procs: [0; 6],
        acct: 0,
        rng,
        text,
    };
    w.runs.push(run);
    w.queue.push(
        at,
        p.dev,
        Ev::Scenario {
            run: (w.runs.len() - 1) as u32,
        },
    );
}

/// Runs the next step of run `run`.
pub fn step(w: &mut World<'_>, out: &mut Out<'_>, run: usize, t: i64) -> io::Result<()> {
    let next = match w.runs[run].kind {
        ScenarioKind::Phishing => phishing::step(w, out, run, t)?,
        ScenarioKind::CredentialTheft => credential::step(w, out, run, t)?,
        ScenarioKind::Ransomware => ransomware::step(w, out, run, t)?,
        ScenarioKind::SshMiner => miner::step(w, out, run, t)?,
    };
    if let Some((at, dev)) = next {
        w.queue.push(
            at.max(t + crate::time::TICK),
            dev,
            Ev::Scenario { run: run as u32 },
        );
    }
    Ok(())
}

/// `Some((t + secs, device))`: the next step's time, on the same device.
fn after(t: i64, secs: f64, dev: usize) -> Option<(i64, usize)> {
    Some((t + crate::time::secs(secs), dev))
}

/// The process an attack on `dev` starts from: the user's shell on a workstation (signing the
/// user in first when nobody is — the victim working late), services.exe on a server.
fn entry_process(w: &mut World<'_>, out: &mut Out<'_>, dev: usize, t: i64) -> io::Result<u32> {
    let d = &w.devs[dev];
    if d.ctx.role.is_server() || d.ctx.user.is_none() {
        return Ok(d.st.sys.services.unwrap_or(d.st.sys.root));
    }
    if d.st.session.is_none() {
        crate::engine::session::start(w, out, dev, t, t + 4 * crate::time::HOUR)?;
    }
    let st = &w.devs[dev].st;
    Ok(st.sys.shell.unwrap_or(st.sys.root))
}

/// A labelled outbound connection from process `slot`.
#[allow(clippy::too_many_arguments)]
fn connect(
    w: &mut World<'_>,
    out: &mut Out<'_>,
    run: usize,
    dev: usize,
    t: i64,
    slot: u32,
    ip: &str,
    port: i32,
    url: Option<&str>,
    public: bool,
    step: &str,
) -> io::Result<()> {
    let d = &mut w.devs[dev];
    let local_port = crate::engine::acts::ephemeral(d.ctx.os, &mut d.st.rng);
    let rid = d.st.report_id();
    let (ctx, st) = (&d.ctx, &d.st);
    let mut r = out.start(T::Network);
    head(&mut r, ctx, t, outbound_action(ctx.os, false), rid);
    conn(
        &mut r,
        &Conn {
            remote_ip: ip,
            remote_port: port,
            url,
            local_ip: &ctx.ip,
            local_port,
            udp: false,
            remote_public: public,
        },
    );
    initiating(&mut r, ctx, st.proc(slot));
    out.emit_labeled(dev, r, w.runs[run].name(), step)
}

/// What a labelled file row looks like beyond its path.
#[derive(Default)]
struct FileExtra<'a> {
    previous: Option<&'a str>,
    size: i64,
    smb_from: Option<(&'a str, &'a str, &'a str)>,
}

/// A labelled file event by process `slot` on `path`, hashes derived from `key`.
#[allow(clippy::too_many_arguments)]
fn file(
    w: &mut World<'_>,
    out: &mut Out<'_>,
    run: usize,
    dev: usize,
    t: i64,
    slot: u32,
    action: &str,
    path: &str,
    key: u64,
    extra: FileExtra<'_>,
    step: &str,
) -> io::Result<()> {
    let s = &mut *w.scratch;
    s.hashes(key);
    let d = &mut w.devs[dev];
    let rid = d.st.report_id();
    let (ctx, st) = (&d.ctx, &d.st);
    let mut r = out.start(T::File);
    head(&mut r, ctx, t, action, rid);
    r.s(C::FileName, file_name(path));
    r.s(C::FolderPath, path);
    r.s(C::SHA1, &s.sha1);
    r.s(C::SHA256, &s.sha256);
    r.s(C::MD5, &s.md5);
    r.l(
        C::FileSize,
        if extra.size > 0 {
            extra.size
        } else {
            1_024 + (key % 900_000) as i64
        },
    );
    if let Some(prev) = extra.previous {
        r.s(C::PreviousFileName, file_name(prev));
        r.s(C::PreviousFolderPath, prev);
    }
    match extra.smb_from {
        Some((ip, account, domain)) => {
            r.s(C::RequestProtocol, "SMB");
            r.s(C::RequestSourceIP, ip);
            r.s(C::RequestAccountName, account);
            r.s(C::RequestAccountDomain, domain);
        }
        None => r.s(C::RequestProtocol, "Local"),
    }
    r.s(C::AdditionalFields, file_type_json(path));
    initiating(&mut r, ctx, st.proc(slot));
    out.emit_labeled(dev, r, w.runs[run].name(), step)
}

/// A labelled DeviceEvents row by process `slot`, optionally about process `target`.
#[allow(clippy::too_many_arguments)]
fn device_event(
    w: &mut World<'_>,
    out: &mut Out<'_>,
    run: usize,
    dev: usize,
    t: i64,
    slot: u32,
    action: &str,
    target: Option<u32>,
    json: &str,
    step: &str,
) -> io::Result<()> {
    let d = &mut w.devs[dev];
    let rid = d.st.report_id();
    let (ctx, st) = (&d.ctx, &d.st);
    let mut r = out.start(T::Events);
    head(&mut r, ctx, t, action, rid);
    if let Some(tp) = target.map(|p| st.proc(p)) {
        r.s(C::FileName, tp.img.image.name);
        r.s(C::FolderPath, tp.img.image.path);
        r.s(C::SHA1, &tp.img.sha1);
        r.l(C::ProcessId, tp.pid);
        r.s(C::ProcessCommandLine, &tp.cmd);
        r.t(C::ProcessCreationTime, tp.created);
    }
    if !json.is_empty() {
        r.s(C::AdditionalFields, json);
    }
    initiating(&mut r, ctx, st.proc(slot));
    out.emit_labeled(dev, r, w.runs[run].name(), step)
}

/// A labelled ImageLoaded row: process `slot` loads `img`.
#[allow(clippy::too_many_arguments)]
fn image_load(
    w: &mut World<'_>,
    out: &mut Out<'_>,
    run: usize,
    dev: usize,
    t: i64,
    slot: u32,
    img: crate::catalog::Img,
    step: &str,
) -> io::Result<()> {
    let d = &mut w.devs[dev];
    let rid = d.st.report_id();
    let (ctx, st) = (&d.ctx, &d.st);
    let mut r = out.start(T::ImageLoad);
    head(&mut r, ctx, t, "ImageLoaded", rid);
    crate::engine::acts::image_cols(&mut r, crate::catalog::info(img));
    initiating(&mut r, ctx, st.proc(slot));
    out.emit_labeled(dev, r, w.runs[run].name(), step)
}

/// A labelled logon row recorded by process `by`.
#[allow(clippy::too_many_arguments)] // as the other row writers here, plus the logon
fn logon(
    w: &mut World<'_>,
    out: &mut Out<'_>,
    run: usize,
    dev: usize,
    t: i64,
    by: Option<u32>,
    l: &Logon<'_>,
    step: &str,
) -> io::Result<()> {
    let d = &mut w.devs[dev];
    let rid = d.st.report_id();
    let (ctx, st) = (&d.ctx, &d.st);
    let r = logon_row(out, ctx, by.map(|p| st.proc(p)), t, rid, l);
    out.emit_labeled(dev, r, w.runs[run].name(), step)
}

/// Random lowercase letters and digits.
fn token(r: &mut Rng, len: usize) -> String {
    const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    (0..len)
        .map(|_| CHARS[r.below(CHARS.len() as u64) as usize] as char)
        .collect()
}

/// Random Base58 text (Monero wallet addresses).
fn base58(r: &mut Rng, len: usize) -> String {
    const CHARS: &[u8] = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
    (0..len)
        .map(|_| CHARS[r.below(CHARS.len() as u64) as usize] as char)
        .collect()
}
