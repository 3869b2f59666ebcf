//! Credential theft: an elevated shell dumps LSASS (ProcDump or comsvcs.dll MiniDump), then moves
//! laterally with the stolen admin account — PsExec (SMB, a service on the target) or WMI — and
//! the target records the network logon and the remote commands.

use super::{FileExtra, after, connect, device_event, entry_process, file, logon};
use crate::catalog::Img;
use crate::engine::acts::Logon;
use crate::engine::procs::{Spawn, spawn};
use crate::engine::{Out, World};
use crate::rng;
use std::io;

const NAME: &str = "credential-theft";

pub fn step(
    w: &mut World<'_>,
    out: &mut Out<'_>,
    run: usize,
    t: i64,
) -> io::Result<Option<(i64, usize)>> {
    let dev = w.runs[run].dev;
    let Some(target) = w.runs[run].target else {
        return Ok(None);
    };
    let step = w.runs[run].step;
    w.runs[run].step += 1;
    // text: [tool ("procdump"/"comsvcs"), -, method ("psexec"/"wmi"), admin account name]
    match step {
        0 => {
            let r = &mut w.runs[run].rng;
            let tool = if r.chance(0.5) { "procdump" } else { "comsvcs" };
            let method = if r.chance(0.5) { "psexec" } else { "wmi" };
            let ctx = &w.devs[dev].ctx;
            let Some(&admin) = ctx.admins.first() else {
                return Ok(None);
            };
            let name = ctx.acct(admin).name.clone();
            let run_ = &mut w.runs[run];
            run_.text[0] = tool.to_owned();
            run_.text[2] = method.to_owned();
            run_.text[3] = name;
            run_.acct = admin;
            let parent = Some(entry_process(w, out, dev, t)?);
            let cmd = spawn(
                w,
                out,
                dev,
                t,
                parent,
                Spawn {
                    acct: Some(admin),
                    ..Spawn::tool(
                        Img::Cmd,
                        r#""C:\Windows\system32\cmd.exe" "#,
                        NAME,
                        "admin-shell",
                    )
                },
            )?;
            w.runs[run].procs[0] = cmd;
            Ok(after(t, 20.0, dev))
        }
        1 => {
            let lsass_pid = w.devs[dev]
                .st
                .sys
                .lsass
                .map_or(712, |s| w.devs[dev].st.proc(s).pid);
            let (img, cmd) = if w.runs[run].text[0] == "procdump" {
                (
                    Img::ProcDump,
                    r"procdump64.exe -accepteula -ma lsass.exe C:\Users\Public\lsass.dmp"
                        .to_owned(),
                )
            } else {
                (
                    Img::Rundll32,
                    format!(
                        r"rundll32.exe C:\Windows\System32\comsvcs.dll, MiniDump {lsass_pid} C:\Windows\Temp\lsass.dmp full"
                    ),
                )
            };
            let (parent, acct) = (Some(w.runs[run].procs[0]), w.runs[run].acct);
            let tool = spawn(
                w,
                out,
                dev,
                t,
                parent,
                Spawn {
                    acct: Some(acct),
                    ..Spawn::tool(img, &cmd, NAME, "lsass-dump-tool")
                },
            )?;
            w.runs[run].procs[1] = tool;
            Ok(after(t, 1.0, dev))
        }
        2 => {
            let (tool, lsass) = (w.runs[run].procs[1], w.devs[dev].st.sys.lsass);
            // The dump goes through comsvcs.dll's MiniDump or ProcDump's dbghelp.dll.
            let dll = if w.runs[run].text[0] == "procdump" {
                Img::Dbghelp
            } else {
                Img::Comsvcs
            };
            super::image_load(w, out, run, dev, t, tool, dll, "dump-library-loaded")?;
            device_event(
                w,
                out,
                run,
                dev,
                t,
                tool,
                "OpenProcessApiCall",
                lsass,
                r#"{"DesiredAccess":"0x1fffff"}"#,
                "lsass-access",
            )?;
            Ok(after(t, 2.0, dev))
        }
        3 => {
            let tool = w.runs[run].procs[1];
            let path = if w.runs[run].text[0] == "procdump" {
                r"C:\Users\Public\lsass.dmp"
            } else {
                r"C:\Windows\Temp\lsass.dmp"
            };
            let key = rng::hash_str(w.seed ^ t as u64, path);
            file(
                w,
                out,
                run,
                dev,
                t,
                tool,
                "FileCreated",
                path,
                key,
                FileExtra {
                    size: 52_428_800 + (key % 9_000_000) as i64,
                    ..FileExtra::default()
                },
                "dump-file-written",
            )?;
            Ok(after(t, 180.0, dev))
        }
        4 => {
            let td = &w.fleet.devices()[target];
            let cmd = if w.runs[run].text[2] == "psexec" {
                format!(
                    r#"PsExec64.exe \\{} -accepteula -s cmd.exe /c "whoami & hostname & ipconfig /all""#,
                    td.host_name()
                )
            } else {
                format!(
                    r#"wmic /node:{} process call create "cmd.exe /c whoami > C:\Windows\Temp\wmi.txt""#,
                    td.primary_ip()
                )
            };
            let img = if w.runs[run].text[2] == "psexec" {
                Img::PsExec
            } else {
                Img::Wmic
            };
            let (parent, acct) = (Some(w.runs[run].procs[0]), w.runs[run].acct);
            let tool = spawn(
                w,
                out,
                dev,
                t,
                parent,
                Spawn {
                    acct: Some(acct),
                    ..Spawn::tool(img, &cmd, NAME, "lateral-movement-tool")
                },
            )?;
            w.runs[run].procs[2] = tool;
            Ok(after(t, 1.0, dev))
        }
        5 => {
            let tool = w.runs[run].procs[2];
            let td = &w.fleet.devices()[target];
            let (ip, name) = (td.primary_ip().to_owned(), td.name.clone());
            let port = if w.runs[run].text[2] == "psexec" {
                445
            } else {
                135
            };
            connect(
                w,
                out,
                run,
                dev,
                t,
                tool,
                &ip,
                port,
                Some(&name),
                false,
                "lateral-connection",
            )?;
            Ok(after(t, 0.5, target))
        }
        6 => {
            let sd = &w.fleet.devices()[dev];
            let (src_ip, src_host) = (sd.primary_ip().to_owned(), sd.host_name().to_owned());
            let name = w.runs[run].text[3].clone();
            let tctx = &w.devs[target].ctx;
            // The target knows the admin account under its own account index.
            let acct = tctx
                .accounts
                .iter()
                .position(|a| a.name == name)
                .unwrap_or(0) as u16;
            let (domain, sid) = (tctx.acct(acct).domain.clone(), tctx.acct(acct).sid.clone());
            let logon_id = w.devs[target].st.logon_id();
            let lsass = w.devs[target].st.sys.lsass;
            let l = Logon {
                action: "LogonSuccess",
                logon_type: "Network",
                domain: &domain,
                name: &name,
                sid: &sid,
                protocol: Some("NTLM"),
                failure: None,
                admin: Some(true),
                logon_id: Some(logon_id),
                remote_name: Some(&src_host),
                remote_ip: Some(&src_ip),
                remote_port: None,
            };
            logon(w, out, run, target, t, lsass, &l, "network-logon")?;
            w.runs[run].acct = acct;
            Ok(after(t, 1.0, target))
        }
        7 if w.runs[run].text[2] == "psexec" => {
            let root = w.devs[target].st.sys.root;
            let src_ip = w.fleet.devices()[dev].primary_ip().to_owned();
            let (name, dom) = (w.runs[run].text[3].clone(), w.fleet.netbios.clone());
            let key = rng::hash_str(0x95EC, r"C:\Windows\PSEXESVC.exe");
            let extra = FileExtra {
                size: 196_664,
                smb_from: Some((&src_ip, &name, &dom)),
                ..FileExtra::default()
            };
            file(
                w,
                out,
                run,
                target,
                t,
                root,
                "FileCreated",
                r"C:\Windows\PSEXESVC.exe",
                key,
                extra,
                "service-binary-dropped",
            )?;
            Ok(after(t, 1.0, target))
        }
        7 => {
            let dcom = w.devs[target].st.sys.wmi_host;
            let host = spawn(
                w,
                out,
                target,
                t,
                dcom,
                Spawn {
                    acct: Some(crate::engine::device::NETWORK_SERVICE),
                    ..Spawn::tool(
                        Img::WmiPrvSE,
                        r"C:\Windows\system32\wbem\wmiprvse.exe -secured -Embedding",
                        NAME,
                        "wmi-provider-host",
                    )
                },
            )?;
            w.runs[run].procs[3] = host;
            Ok(after(t, 1.0, target))
        }
        8 if w.runs[run].text[2] == "psexec" => {
            let Some(services) = w.devs[target].st.sys.services else {
                return Ok(None);
            };
            let json = r#"{"ServiceName":"PSEXESVC","ServiceAccount":"LocalSystem","ServiceStartType":3,"ServiceType":16,"ServiceImagePath":"%SystemRoot%\\PSEXESVC.exe"}"#;
            device_event(
                w,
                out,
                run,
                target,
                t,
                services,
                "ServiceInstalled",
                None,
                json,
                "service-installed",
            )?;
            Ok(after(t, 0.5, target))
        }
        8 => {
            let (host, acct) = (w.runs[run].procs[3], w.runs[run].acct);
            let cmd = spawn(
                w,
                out,
                target,
                t,
                Some(host),
                Spawn {
                    acct: Some(acct),
                    ..Spawn::tool(
                        Img::Cmd,
                        r"cmd.exe /c whoami > C:\Windows\Temp\wmi.txt",
                        NAME,
                        "remote-command",
                    )
                },
            )?;
            w.runs[run].procs[4] = cmd;
            w.runs[run].step = 11;
            Ok(after(t, 0.2, target))
        }
        9 => {
            let services = w.devs[target].st.sys.services;
            let svc = spawn(
                w,
                out,
                target,
                t,
                services,
                Spawn {
                    acct: Some(crate::engine::device::SYSTEM),
                    ..Spawn::tool(
                        Img::PsExeSvc,
                        r"C:\Windows\PSEXESVC.exe",
                        NAME,
                        "remote-service-started",
                    )
                },
            )?;
            w.runs[run].procs[3] = svc;
            Ok(after(t, 0.5, target))
        }
        10 => {
            let svc = w.runs[run].procs[3];
            let cmd = spawn(
                w,
                out,
                target,
                t,
                Some(svc),
                Spawn {
                    acct: Some(crate::engine::device::SYSTEM),
                    ..Spawn::tool(
                        Img::Cmd,
                        r#"cmd.exe /c "whoami & hostname & ipconfig /all""#,
                        NAME,
                        "remote-command",
                    )
                },
            )?;
            w.runs[run].procs[4] = cmd;
            Ok(after(t, 0.2, target))
        }
        11 => {
            let cmd = w.runs[run].procs[4];
            spawn(
                w,
                out,
                target,
                t,
                Some(cmd),
                Spawn::tool(Img::Whoami, "whoami", NAME, "remote-discovery"),
            )?;
            Ok(None)
        }
        _ => Ok(None),
    }
}
