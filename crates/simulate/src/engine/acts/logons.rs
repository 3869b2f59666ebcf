//! Logons recorded by services: Kerberos on domain controllers, SMB sessions on file servers,
//! admins' RDP and SSH sessions, and the internet's SSH scanners.

use super::net::{Conn, conn, ephemeral, public_ip};
use crate::catalog::names::BRUTE_USERS;
use crate::catalog::net::SCANNER_NETS;
use crate::engine::device::{DevCtx, Proc};
use crate::engine::procs::{Spawn, spawn};
use crate::engine::profiles::{LogonKind, P};
use crate::engine::write::{head, initiating};
use crate::engine::{Out, World};
use crate::fleet::Os;
use crate::row::{C, Row, T};
use std::io;

/// The columns of a DeviceLogonEvents row.
pub struct Logon<'a> {
    pub action: &'a str,
    pub logon_type: &'a str,
    pub domain: &'a str,
    pub name: &'a str,
    pub sid: &'a str,
    pub protocol: Option<&'a str>,
    pub failure: Option<&'a str>,
    pub admin: Option<bool>,
    pub logon_id: Option<i64>,
    pub remote_name: Option<&'a str>,
    pub remote_ip: Option<&'a str>,
    pub remote_port: Option<i32>,
}

pub fn logon_row<'a>(
    out: &mut Out<'_>,
    ctx: &'a DevCtx,
    by: Option<&'a Proc>,
    t: i64,
    rid: i64,
    l: &Logon<'a>,
) -> Row<'a> {
    let mut r = out.start(T::Logon);
    head(&mut r, ctx, t, l.action, rid);
    r.s(C::LogonType, l.logon_type);
    r.s(C::AccountDomain, l.domain);
    r.s(C::AccountName, l.name);
    r.s_opt(C::AccountSid, Some(l.sid));
    r.s_opt(C::Protocol, l.protocol);
    r.s_opt(C::FailureReason, l.failure);
    if let Some(a) = l.admin {
        r.b(C::IsLocalAdmin, a);
    }
    if let Some(id) = l.logon_id {
        r.l(C::LogonId, id);
    }
    r.s_opt(C::RemoteDeviceName, l.remote_name);
    if let Some(ip) = l.remote_ip {
        r.s(C::RemoteIP, ip);
        let private = ip.starts_with("10.") || ip.starts_with("192.168.") || ip.starts_with("172.");
        r.s(C::RemoteIPType, if private { "Private" } else { "Public" });
    }
    if let Some(p) = l.remote_port {
        r.i(C::RemotePort, p);
    }
    if let Some(p) = by {
        initiating(&mut r, ctx, p);
    }
    r
}

pub(super) fn logon_act(
    w: &mut World<'_>,
    out: &mut Out<'_>,
    dev: usize,
    t: i64,
    slot: u32,
    k: LogonKind,
) -> io::Result<()> {
    match k {
        LogonKind::DcKerberos | LogonKind::SmbSession => {
            let clients = &w.shared.clients;
            let d = &mut w.devs[dev];
            if clients.is_empty() {
                return Ok(());
            }
            let from = clients[d.st.rng.below(clients.len() as u64) as usize];
            let failed = d.st.rng.chance(0.03);
            let logon_id = d.st.logon_id();
            let rid = d.st.report_id();
            let fd = &w.fleet.devices()[from];
            let Some(person) = fd.owner.map(|o| &w.fleet.people[o]) else {
                return Ok(());
            };
            // Only clients in use authenticate, so servers are quiet at night.
            if from != dev && w.devs[from].st.session.is_none() {
                return Ok(());
            }
            let d = &mut w.devs[dev];
            let (ctx, st) = (&d.ctx, &d.st);
            let l = Logon {
                action: if failed {
                    "LogonFailed"
                } else {
                    "LogonSuccess"
                },
                logon_type: "Network",
                domain: &w.fleet.netbios,
                name: &person.sam,
                sid: &person.sid,
                protocol: Some("Kerberos"),
                failure: failed.then_some("InvalidUserNameOrPassword"),
                admin: Some(false),
                logon_id: (!failed).then_some(logon_id),
                remote_name: None,
                remote_ip: Some(fd.primary_ip()),
                remote_port: None,
            };
            let r = logon_row(out, ctx, Some(st.proc(slot)), t, rid, &l);
            out.emit(dev, r)
        }
        LogonKind::RdpAdmin => {
            let d = &mut w.devs[dev];
            let admins = &d.ctx.admins;
            if admins.is_empty() {
                return Ok(());
            }
            let acct = admins[d.st.rng.below(admins.len() as u64) as usize];
            let from = match w.shared.it_clients.len() {
                0 => None,
                n => Some(w.shared.it_clients[d.st.rng.below(n as u64) as usize]),
            };
            let logon_id = d.st.logon_id();
            let rid = d.st.report_id();
            let (ctx, st) = (&d.ctx, &d.st);
            let a = ctx.acct(acct);
            let (remote_name, remote_ip) = match from {
                Some(i) => (
                    Some(w.fleet.devices()[i].host_name()),
                    w.fleet.devices()[i].primary_ip(),
                ),
                None => (None, ctx.dns[0].as_str()),
            };
            let l = Logon {
                action: "LogonSuccess",
                logon_type: "RemoteInteractive",
                domain: &a.domain,
                name: &a.name,
                sid: &a.sid,
                protocol: Some("Negotiate"),
                failure: None,
                admin: Some(true),
                logon_id: Some(logon_id),
                remote_name,
                remote_ip: Some(remote_ip),
                remote_port: None,
            };
            let r = logon_row(out, ctx, Some(st.proc(slot)), t, rid, &l);
            out.emit(dev, r)
        }
        LogonKind::SshAdmin => ssh_admin(w, out, dev, t, slot),
        LogonKind::SshScan => {
            let s = &mut *w.scratch;
            let d = &mut w.devs[dev];
            public_ip(&mut s.a, &mut d.st.rng, SCANNER_NETS);
            let user = *d.st.rng.pick(BRUTE_USERS);
            let port = ephemeral(Os::Linux, &mut d.st.rng);
            let rid = d.st.report_id();
            let (ctx, st) = (&d.ctx, &d.st);
            let l = Logon {
                action: "LogonFailed",
                logon_type: "Network",
                domain: &ctx.host,
                name: user,
                sid: "",
                protocol: None,
                failure: Some("InvalidUserNameOrPassword"),
                admin: None,
                logon_id: None,
                remote_name: None,
                remote_ip: Some(&s.a),
                remote_port: Some(port),
            };
            let r = logon_row(out, ctx, Some(st.proc(slot)), t, rid, &l);
            out.emit(dev, r)
        }
    }
}

/// An administrator opens an SSH session: the inbound connection, the logon, then a shell.
fn ssh_admin(
    w: &mut World<'_>,
    out: &mut Out<'_>,
    dev: usize,
    t: i64,
    sshd: u32,
) -> io::Result<()> {
    let d = &mut w.devs[dev];
    let admins: Vec<u16> = d.ctx.admins.iter().copied().filter(|&a| a != 0).collect();
    if admins.is_empty() {
        return Ok(());
    }
    let acct = admins[d.st.rng.below(admins.len() as u64) as usize];
    let from = match w.shared.it_clients.len() {
        0 => None,
        n => Some(w.shared.it_clients[d.st.rng.below(n as u64) as usize]),
    };
    let port = ephemeral(Os::Windows, &mut d.st.rng);
    let (rid1, rid2) = (d.st.report_id(), d.st.report_id());
    let (ctx, st) = (&d.ctx, &d.st);
    let remote_ip = match from {
        Some(i) => w.fleet.devices()[i].primary_ip(),
        None => ctx.dns[0].as_str(),
    };
    let p = st.proc(sshd);
    let mut row = out.start(T::Network);
    head(&mut row, ctx, t, "InboundConnectionAccepted", rid1);
    conn(
        &mut row,
        &Conn {
            remote_ip,
            remote_port: port,
            url: None,
            local_ip: &ctx.ip,
            local_port: 22,
            udp: false,
            remote_public: false,
        },
    );
    initiating(&mut row, ctx, p);
    out.emit(dev, row)?;
    let a = ctx.acct(acct);
    let l = Logon {
        action: "LogonSuccess",
        logon_type: "Network",
        domain: &a.domain,
        name: &a.name,
        sid: &a.sid,
        protocol: None,
        failure: None,
        admin: None,
        logon_id: Some(0),
        remote_name: None,
        remote_ip: Some(remote_ip),
        remote_port: Some(port),
    };
    let r = logon_row(out, ctx, Some(p), t, rid2, &l);
    out.emit(dev, r)?;
    spawn(
        w,
        out,
        dev,
        t,
        Some(sshd),
        Spawn {
            acct: Some(acct),
            ..Spawn::new(P::BashSession)
        },
    )?;
    Ok(())
}

/// An RDP session from device `from` signs in here.
pub fn rdp_logon(
    w: &mut World<'_>,
    out: &mut Out<'_>,
    dev: usize,
    t: i64,
    from: usize,
) -> io::Result<()> {
    let fd = &w.fleet.devices()[from];
    let Some(person) = fd.owner.map(|o| &w.fleet.people[o]) else {
        return Ok(());
    };
    let d = &mut w.devs[dev];
    if d.ctx.os != Os::Windows {
        return Ok(());
    }
    let logon_id = d.st.logon_id();
    let rid = d.st.report_id();
    let (ctx, st) = (&d.ctx, &d.st);
    let l = Logon {
        action: "LogonSuccess",
        logon_type: "RemoteInteractive",
        domain: &w.fleet.netbios,
        name: &person.sam,
        sid: &person.sid,
        protocol: Some("Negotiate"),
        failure: None,
        admin: Some(false),
        logon_id: Some(logon_id),
        remote_name: Some(fd.host_name()),
        remote_ip: Some(fd.primary_ip()),
        remote_port: None,
    };
    let by = st.sys.lsass.map(|s| st.proc(s));
    let r = logon_row(out, ctx, by, t, rid, &l);
    out.emit(dev, r)
}
