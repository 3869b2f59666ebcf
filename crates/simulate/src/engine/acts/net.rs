//! Network activity: outbound connections to the internet and to the organisation's servers,
//! DNS lookups as inspected, and connections accepted by server daemons.

use crate::catalog::net::{BROWSING, Dest, ISP_NETS};
use crate::engine::profiles::Internal;
use crate::engine::write::{head, initiating};
use crate::engine::{Ev, Out, World};
use crate::fleet::{Os, Role};
use crate::rng::Rng;
use crate::row::{C, Row, T};
use crate::time;
use std::fmt::Write;
use std::io;

pub fn ephemeral(os: Os, r: &mut Rng) -> i32 {
    match os {
        Os::Linux => r.range(32_768, 60_999) as i32,
        _ => r.range(49_152, 65_535) as i32,
    }
}

/// The connection columns of a DeviceNetworkEvents row.
pub struct Conn<'a> {
    pub remote_ip: &'a str,
    pub remote_port: i32,
    pub url: Option<&'a str>,
    pub local_ip: &'a str,
    pub local_port: i32,
    pub udp: bool,
    pub remote_public: bool,
}

pub fn conn<'a>(r: &mut Row<'a>, c: &Conn<'a>) {
    r.s(C::RemoteIP, c.remote_ip);
    r.i(C::RemotePort, c.remote_port);
    r.s_opt(C::RemoteUrl, c.url);
    r.s(C::LocalIP, c.local_ip);
    r.i(C::LocalPort, c.local_port);
    r.s(C::Protocol, if c.udp { "Udp" } else { "Tcp" });
    r.s(C::LocalIPType, "Private");
    r.s(
        C::RemoteIPType,
        if c.remote_public { "Public" } else { "Private" },
    );
}

/// The ActionType of an outbound connection on this OS.
pub fn outbound_action(os: Os, failed: bool) -> &'static str {
    match (os, failed) {
        (Os::MacOs, _) => "ConnectionRequest",
        (_, true) => "ConnectionFailed",
        _ => "ConnectionSuccess",
    }
}

pub(super) fn net(
    w: &mut World<'_>,
    out: &mut Out<'_>,
    dev: usize,
    t: i64,
    slot: u32,
    list: &'static [Dest],
) -> io::Result<()> {
    let d = &mut w.devs[dev];
    let dest = *d.st.rng.pick(list);
    let failed = d.st.rng.chance(0.02);
    let show_url = d.st.rng.chance(0.9);
    let local_port = ephemeral(d.ctx.os, &mut d.st.rng);
    let rid = d.st.report_id();
    let (ctx, st) = (&d.ctx, &d.st);
    let mut r = out.start(T::Network);
    head(&mut r, ctx, t, outbound_action(ctx.os, failed), rid);
    conn(
        &mut r,
        &Conn {
            remote_ip: dest.ip,
            remote_port: i32::from(dest.port),
            url: show_url.then_some(dest.host),
            local_ip: &ctx.ip,
            local_port,
            udp: dest.udp,
            remote_public: true,
        },
    );
    initiating(&mut r, ctx, st.proc(slot));
    out.emit(dev, r)
}

/// A random device with one of `roles`: the `k`th of their devices listed role after role
/// (no allocation and no walk over the fleet: this runs for many rows).
fn pick_role(w: &World<'_>, r: &mut Rng, roles: &[Role]) -> Option<usize> {
    let n: usize = roles
        .iter()
        .map(|&role| w.shared.with_role(role).len())
        .sum();
    if n == 0 {
        return None;
    }
    let mut k = r.below(n as u64) as usize;
    for &role in roles {
        let list = w.shared.with_role(role);
        match list.get(k) {
            Some(&i) => return Some(i),
            None => k -= list.len(),
        }
    }
    None
}

pub(super) fn internal(
    w: &mut World<'_>,
    out: &mut Out<'_>,
    dev: usize,
    t: i64,
    slot: u32,
    k: Internal,
) -> io::Result<()> {
    let mut r = w.devs[dev].st.rng.clone();
    let (target, port, udp) = match k {
        Internal::Dns => (None, 53, true),
        Internal::Smb => (pick_role(w, &mut r, &[Role::FileServer]), 445, false),
        Internal::Ldap => (pick_role(w, &mut r, &[Role::DomainController]), 389, false),
        Internal::Sql => (pick_role(w, &mut r, &[Role::SqlServer]), 1433, false),
        Internal::Postgres => (pick_role(w, &mut r, &[Role::Database]), 5432, false),
        Internal::AppHttp => (pick_role(w, &mut r, &[Role::AppServer]), 8080, false),
        Internal::Rdp => (
            pick_role(
                w,
                &mut r,
                &[Role::DomainController, Role::FileServer, Role::SqlServer],
            ),
            3389,
            false,
        ),
        Internal::Ssh => (
            pick_role(
                w,
                &mut r,
                &[
                    Role::WebServer,
                    Role::AppServer,
                    Role::Database,
                    Role::BuildServer,
                ],
            ),
            22,
            false,
        ),
    };
    let target = target.filter(|&i| i != dev);
    if k != Internal::Dns && target.is_none() {
        // Nothing of that kind in this fleet: the activity simply does not happen.
        w.devs[dev].st.rng = r;
        return Ok(());
    }
    let d = &mut w.devs[dev];
    d.st.rng = r;
    if k == Internal::Dns && d.st.rng.chance(0.5) {
        return dns_inspected(w, out, dev, t, slot);
    }
    let d = &mut w.devs[dev];
    let local_port = ephemeral(d.ctx.os, &mut d.st.rng);
    let show_url = d.st.rng.chance(0.5);
    let rid = d.st.report_id();
    let (ctx, st) = (&d.ctx, &d.st);
    let (ip, url) = match target {
        Some(i) => {
            let td = &w.fleet.devices()[i];
            (td.primary_ip(), show_url.then_some(td.name.as_str()))
        }
        None => (ctx.dns[0].as_str(), None),
    };
    let mut row = out.start(T::Network);
    head(&mut row, ctx, t, outbound_action(ctx.os, false), rid);
    conn(
        &mut row,
        &Conn {
            remote_ip: ip,
            remote_port: port,
            url,
            local_ip: &ctx.ip,
            local_port,
            udp,
            remote_public: false,
        },
    );
    initiating(&mut row, ctx, st.proc(slot));
    out.emit(dev, row)?;
    if let (Internal::Rdp, Some(target)) = (k, target) {
        w.queue.push(
            t + 2 * time::SECOND,
            target,
            Ev::RdpLogon { from: dev as u32 },
        );
    }
    Ok(())
}

/// A DNS lookup as the network-inspection engine reports it (query and answer in
/// AdditionalFields).
fn dns_inspected(
    w: &mut World<'_>,
    out: &mut Out<'_>,
    dev: usize,
    t: i64,
    slot: u32,
) -> io::Result<()> {
    let s = &mut *w.scratch;
    let d = &mut w.devs[dev];
    let dest = *d.st.rng.pick(BROWSING);
    let local_port = ephemeral(d.ctx.os, &mut d.st.rng);
    let rid = d.st.report_id();
    let (ctx, st) = (&d.ctx, &d.st);
    let _ = write!(
        s.json,
        r#"{{"direction":"Out","query":"{}","qtype_name":"A","rcode_name":"NOERROR","answers":["{}"]}}"#,
        dest.host, dest.ip
    );
    let mut row = out.start(T::Network);
    head(&mut row, ctx, t, "DnsConnectionInspected", rid);
    conn(
        &mut row,
        &Conn {
            remote_ip: &ctx.dns[0],
            remote_port: 53,
            url: None,
            local_ip: &ctx.ip,
            local_port,
            udp: true,
            remote_public: false,
        },
    );
    row.s(C::AdditionalFields, &s.json);
    initiating(&mut row, ctx, st.proc(slot));
    out.emit(dev, row)
}

/// A random public address in one of `nets`, into `out`.
pub fn public_ip(out: &mut String, r: &mut Rng, nets: &[(u8, u8)]) {
    let (a, b) = *r.pick(nets);
    let _ = write!(out, "{a}.{b}.{}.{}", r.range(1, 254), r.range(1, 254));
}

pub(super) fn inbound(
    w: &mut World<'_>,
    out: &mut Out<'_>,
    dev: usize,
    t: i64,
    slot: u32,
    port: u16,
) -> io::Result<()> {
    let mut r = w.devs[dev].st.rng.clone();
    let role = w.devs[dev].ctx.role;
    let source = match (role, port) {
        (Role::WebServer, 443 | 80) => None,
        (_, 8080) => pick_role(w, &mut r, &[Role::WebServer]),
        (_, 5432) => pick_role(w, &mut r, &[Role::AppServer, Role::BuildServer]),
        _ => match w.shared.clients.len() {
            0 => None,
            n => Some(w.shared.clients[r.below(n as u64) as usize]),
        },
    }
    .filter(|&i| i != dev);
    let s = &mut *w.scratch;
    if source.is_none() {
        public_ip(&mut s.a, &mut r, ISP_NETS);
    }
    let d = &mut w.devs[dev];
    let remote_port = ephemeral(Os::Windows, &mut r);
    d.st.rng = r;
    let rid = d.st.report_id();
    let (ctx, st) = (&d.ctx, &d.st);
    let remote_ip = match source {
        Some(i) => w.fleet.devices()[i].primary_ip(),
        None => s.a.as_str(),
    };
    let mut row = out.start(T::Network);
    head(&mut row, ctx, t, "InboundConnectionAccepted", rid);
    conn(
        &mut row,
        &Conn {
            remote_ip,
            remote_port,
            url: None,
            local_ip: &ctx.ip,
            local_port: i32::from(port),
            udp: false,
            remote_public: source.is_none(),
        },
    );
    initiating(&mut row, ctx, st.proc(slot));
    out.emit(dev, row)
}
