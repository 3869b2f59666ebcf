//! DeviceProcessEvents rows from what the sensor learnt of a process and its parent.

use crate::process::hashes::Hashes;
use rampart_core::timefmt::format as rfc3339;
use rampart_proto::telemetry::Row;
use serde_json::{Value, json};
use time::OffsetDateTime;

/// `ActionType` of a process start.
pub const PROCESS_CREATED: &str = "ProcessCreated";

/// What the rows of this device share.
#[derive(Clone, Debug, Default)]
pub struct RowContext {
    /// The enrolled device id; the server fills it in when absent.
    pub device_id: Option<String>,
    pub device_name: String,
    /// `AccountDomain` of local accounts: the host name, as MDE reports Linux accounts.
    pub account_domain: String,
}

impl RowContext {
    /// A new event row: its time, this device, and what happened (`ActionType`).
    pub fn event(&self, time: OffsetDateTime, action_type: &str) -> Row {
        let mut r = Row::new();
        r.insert("Timestamp".into(), Value::String(rfc3339(time)));
        if let Some(id) = &self.device_id {
            r.insert("DeviceId".into(), json!(id));
        }
        r.insert("DeviceName".into(), json!(self.device_name));
        r.insert("ActionType".into(), json!(action_type));
        r
    }
}

/// A process as the rows describe it (the new process, or its parent).
#[derive(Clone, Debug, Default)]
pub struct ProcInfo {
    pub pid: u32,
    pub ppid: Option<u32>,
    pub path: Option<String>,
    pub file_name: Option<String>,
    pub cmdline: Option<String>,
    pub account_name: Option<String>,
    pub creation_time: Option<OffsetDateTime>,
    pub hashes: Option<Hashes>,
}

/// The parent of the initiating process: only its pid, image name and start time are
/// columns.
#[derive(Clone, Debug, Default)]
pub struct GrandParent {
    pub pid: Option<u32>,
    pub file_name: Option<String>,
    pub creation_time: Option<OffsetDateTime>,
}

fn put(row: &mut Row, column: &str, value: Option<Value>) {
    if let Some(v) = value {
        row.insert(column.to_owned(), v);
    }
}

fn text(s: &Option<String>) -> Option<Value> {
    s.as_ref().map(|s| Value::String(s.clone()))
}

fn when(t: Option<OffsetDateTime>) -> Option<Value> {
    t.map(|t| Value::String(rfc3339(t)))
}

/// The `InitiatingProcess*` columns (but the parent's) of the process `p`.
pub fn initiating_process(r: &mut Row, ctx: &RowContext, p: &ProcInfo) {
    put(r, "InitiatingProcessId", Some(json!(p.pid)));
    put(r, "InitiatingProcessFileName", text(&p.file_name));
    put(r, "InitiatingProcessFolderPath", text(&p.path));
    put(r, "InitiatingProcessCommandLine", text(&p.cmdline));
    put(r, "InitiatingProcessCreationTime", when(p.creation_time));
    if p.account_name.is_some() {
        put(
            r,
            "InitiatingProcessAccountDomain",
            Some(json!(ctx.account_domain)),
        );
    }
    put(r, "InitiatingProcessAccountName", text(&p.account_name));
    if let Some(h) = &p.hashes {
        put(r, "InitiatingProcessSHA1", Some(json!(h.sha1)));
        put(r, "InitiatingProcessSHA256", Some(json!(h.sha256)));
        put(r, "InitiatingProcessMD5", Some(json!(h.md5)));
        put(r, "InitiatingProcessFileSize", Some(json!(h.size)));
    }
}

/// A `ProcessCreated` row. `partial` says why part of it could not be read (the process
/// exited first); it goes to `AdditionalFields`.
pub fn process_created(
    ctx: &RowContext,
    time: OffsetDateTime,
    child: &ProcInfo,
    parent: Option<&ProcInfo>,
    grandparent: &GrandParent,
    partial: Option<&str>,
) -> Row {
    let mut r = ctx.event(time, PROCESS_CREATED);
    put(&mut r, "FileName", text(&child.file_name));
    put(&mut r, "FolderPath", text(&child.path));
    if let Some(h) = &child.hashes {
        put(&mut r, "SHA1", Some(json!(h.sha1)));
        put(&mut r, "SHA256", Some(json!(h.sha256)));
        put(&mut r, "MD5", Some(json!(h.md5)));
        put(&mut r, "FileSize", Some(json!(h.size)));
    }
    put(&mut r, "ProcessId", Some(json!(child.pid)));
    put(&mut r, "ProcessCommandLine", text(&child.cmdline));
    put(&mut r, "ProcessCreationTime", when(child.creation_time));
    if child.account_name.is_some() {
        put(&mut r, "AccountDomain", Some(json!(ctx.account_domain)));
    }
    put(&mut r, "AccountName", text(&child.account_name));
    if let Some(p) = parent {
        initiating_process(&mut r, ctx, p);
    } else if let Some(ppid) = child.ppid {
        put(&mut r, "InitiatingProcessId", Some(json!(ppid)));
    }
    put(
        &mut r,
        "InitiatingProcessParentId",
        grandparent.pid.map(|p| json!(p)),
    );
    put(
        &mut r,
        "InitiatingProcessParentFileName",
        text(&grandparent.file_name),
    );
    put(
        &mut r,
        "InitiatingProcessParentCreationTime",
        when(grandparent.creation_time),
    );
    if let Some(reason) = partial {
        put(
            &mut r,
            "AdditionalFields",
            Some(Value::String(
                json!({ "Partial": true, "Reason": reason }).to_string(),
            )),
        );
    }
    r
}
