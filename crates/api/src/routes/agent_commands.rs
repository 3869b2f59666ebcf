//! The command channel of the agents (Rampart's own; device credential):
//!
//! * `POST /agent/v1/commands/poll` — a long poll. The server hands out the device's next
//!   machine actions as commands, marking each `InProgress` (the store's claim keeps each lane
//!   in order: `Unisolate` is not handed out while the `Isolate` before it runs). With nothing
//!   to hand out it holds the request up to `waitSeconds` and answers as soon as the machine's
//!   queue changes (the store's [`ActionBell`](rampart_store::ActionBell)), so a connected agent
//!   gets a command well within a second of its submission. Every answer carries the tenant's
//!   indicator generation; a poll that names an older one is answered at once, so the agent
//!   fetches the indicators it enforces right away (a new block reaches every connected
//!   device within moments, not at its next periodic sync).
//! * `POST /agent/v1/commands/{id}` — the agent's progress on one command; `Succeeded` and
//!   `Failed` complete the machine action.
//!
//! Delivery is at least once, execution at most once: a running command the agent does not
//! list in `running` is sent again (the answer that carried it may have been lost), and the
//! agent, which records the ids it has started, never starts one twice. A running command the
//! agent lists but the server no longer waits for (cancelled, timed out) is named in
//! `cancelled`.

use crate::auth::device::{DeviceCaller, authenticate_device};
use crate::body::read_bytes;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, Request, State};
use rampart_core::ErrorCode;
use rampart_core::TenantId;
use rampart_core::action_target::ActionTarget;
use rampart_core::audit::AuditContext;
use rampart_core::machine_action::{
    ActionOutcome, ActionScope, ActionStatus, ActionType, CommandOutcome, CommandStatus,
    CommandType, E_FAIL, MachineAction,
};
use rampart_proto::command::{
    Command, CommandKind, CommandState, CommandUpdate, IsolationType, LiveCommand, PollRequest,
    PollResponse, ScanType, UpdateAck,
};
use std::collections::HashMap;
use std::time::Duration;
use tokio::time::Instant;

/// Longest hold of a poll: below the agent's request timeout and the idle timeouts of common
/// proxies (60 s).
pub const MAX_WAIT: Duration = Duration::from_secs(50);
/// Commands handed out by one answer at most.
const MAX_COMMANDS: usize = 16;
/// Ids an agent may list in `running`.
const MAX_RUNNING: usize = 64;
/// Longest `detail` kept from an update.
const MAX_DETAIL: usize = 4000;

fn bad_body(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::InvalidRequestBody, message)
}

fn parse<T: serde::de::DeserializeOwned + Default>(body: &[u8]) -> ApiResult<T> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|e| bad_body(format!("The body is not valid: {e}")))
}

/// `POST /agent/v1/commands/poll`.
pub async fn poll(State(state): State<AppState>, req: Request) -> ApiResult<Json<PollResponse>> {
    let device = authenticate_device(&state, req.headers()).await?;
    let body = read_bytes(req, &state).await?;
    let poll: PollRequest = parse(&body)?;
    if poll.running.len() > MAX_RUNNING {
        return Err(bad_body(format!(
            "running: at most {MAX_RUNNING} ids, got {}",
            poll.running.len()
        )));
    }
    let wait = Duration::from_secs(poll.wait_seconds.into()).min(MAX_WAIT);
    let _held = state.metrics.hold_poll();
    let deadline = Instant::now() + wait;
    let bell = state
        .store
        .action_bell()
        .listen(device.tenant, &device.device_id);
    let mut stopping = state.stopping.subscribe();
    let mut generations = state.indicators.generations();
    let mut watching_generations = true;
    loop {
        // Listen before looking, so that a ring between the look and the wait is not lost.
        let rung = bell.notified();
        tokio::pin!(rung);
        rung.as_mut().enable();
        // A tenant that never had an indicator is at generation 0.
        let generation_of =
            |g: &HashMap<TenantId, i64>| g.get(&device.tenant).copied().unwrap_or(0);
        let generation = generation_of(&generations.borrow_and_update());
        let mut answer = collect(&state, &device, &poll.running).await?;
        answer.indicator_generation = Some(generation);
        // The agent enforces an older set of indicators: answer now, it fetches the new one.
        let news = poll.indicator_generation.is_some_and(|g| g != generation);
        let now = Instant::now();
        if !answer.is_empty() || news || now >= deadline || *stopping.borrow() {
            return Ok(Json(answer));
        }
        // A held poll looks at the queue now and then although its bell did not ring: a
        // change made by another server sharing the database rings that server's bell, and
        // this one's only through the cluster bus.
        let recheck = Duration::from_secs(state.config.poll_recheck_secs.max(1));
        let look_again = tokio::time::sleep_until(deadline.min(now + recheck));
        tokio::pin!(look_again);
        loop {
            tokio::select! {
                _ = &mut rung => break,
                _ = &mut look_again => break,
                _ = stopping.changed() => break,
                changed = generations.changed(), if watching_generations => {
                    watching_generations = changed.is_ok();
                    // Every tenant's change wakes every poll: look again only for this one's.
                    if generation_of(&generations.borrow_and_update()) != generation {
                        break;
                    }
                }
            }
        }
    }
}

/// What the device has to do now: running commands it did not list, cancellations of those it
/// did, and new claims.
async fn collect(
    state: &AppState,
    device: &DeviceCaller,
    listed: &[String],
) -> ApiResult<PollResponse> {
    let store = &state.store;
    let (tenant, machine) = (device.tenant, device.device_id.as_str());
    let running = store.running_actions(tenant, machine).await?;
    let mut answer = PollResponse::default();
    for id in listed {
        if !running.iter().any(|a| a.id.eq_ignore_ascii_case(id)) {
            answer.cancelled.push(id.clone());
        }
    }
    for a in running
        .iter()
        .filter(|a| !listed.iter().any(|id| a.id.eq_ignore_ascii_case(id)))
    {
        answer.commands.push(command_of(state, tenant, a).await?);
    }
    while answer.commands.len() < MAX_COMMANDS {
        match store.claim_next_action(tenant, machine).await? {
            Some(a) => answer.commands.push(command_of(state, tenant, &a).await?),
            None => break,
        }
    }
    if !answer.commands.is_empty() {
        tracing::info!(
            device_id = machine,
            commands = ?answer.commands.iter().map(|c| c.kind.name()).collect::<Vec<_>>(),
            "commands handed to the agent"
        );
    }
    Ok(answer)
}

/// The command that carries out a machine action. The command id is the action's id.
pub async fn command_of(
    state: &AppState,
    tenant: TenantId,
    action: &MachineAction,
) -> ApiResult<Command> {
    let kind = match action.action_type {
        ActionType::Isolate => CommandKind::Isolate {
            isolation_type: match action.scope {
                Some(ActionScope::Selective) => IsolationType::Selective,
                _ => IsolationType::Full,
            },
        },
        ActionType::Unisolate => CommandKind::Unisolate,
        ActionType::RunAntiVirusScan => CommandKind::RunAntiVirusScan {
            scan_type: match action.scope {
                Some(ActionScope::Full) => ScanType::Full,
                _ => ScanType::Quick,
            },
        },
        ActionType::StopAndQuarantineFile | ActionType::RestoreQuarantinedFile => {
            match (action.sha1(), action.action_type) {
                (Some(sha1), ActionType::StopAndQuarantineFile) => {
                    CommandKind::StopAndQuarantineFile {
                        sha1: sha1.to_ascii_lowercase(),
                    }
                }
                (Some(sha1), _) => CommandKind::RestoreQuarantinedFile {
                    sha1: sha1.to_ascii_lowercase(),
                },
                (None, kind) => CommandKind::Invalid {
                    kind: kind.as_str().into(),
                    reason: "the action names no SHA-1".into(),
                },
            }
        }
        ActionType::CollectInvestigationPackage => CommandKind::CollectInvestigationPackage,
        ActionType::RestrictCodeExecution => CommandKind::RestrictCodeExecution,
        ActionType::UnrestrictCodeExecution => CommandKind::UnrestrictCodeExecution,
        ActionType::Offboard => CommandKind::Offboard,
        ActionType::LiveResponse => live_response_kind(state, tenant, action).await?,
        ActionType::KillProcess
        | ActionType::RemovePersistence
        | ActionType::RestorePersistence
        | ActionType::CollectLiveEvidence => target_kind(action),
    };
    Ok(Command {
        id: action.id.clone(),
        machine_action_id: action.id.clone(),
        kind,
    })
}

/// The command of one of Rampart's own actions, from its target.
fn target_kind(action: &MachineAction) -> CommandKind {
    match (action.action_type, &action.target) {
        (ActionType::KillProcess, Some(ActionTarget::Process(p))) => CommandKind::KillProcess {
            pid: p.pid,
            image_path: Some(p.image_path.clone()),
        },
        (ActionType::RemovePersistence, Some(ActionTarget::Persistence(p))) => {
            CommandKind::RemovePersistence(p.clone())
        }
        (ActionType::RestorePersistence, Some(ActionTarget::Persistence(p))) => {
            CommandKind::RestorePersistence(p.clone())
        }
        (ActionType::CollectLiveEvidence, Some(ActionTarget::Evidence(e))) => {
            CommandKind::CollectLiveEvidence(e.clone())
        }
        (t, _) => CommandKind::Invalid {
            kind: t.as_str().into(),
            reason: "the action names no target of its type".into(),
        },
    }
}

/// A live response session as the agent runs it: each library file bound to the SHA-256 it
/// has now, so the device runs exactly those bytes. A file deleted from the library since the
/// session was requested makes the command invalid (the agent refuses it with the reason).
async fn live_response_kind(
    state: &AppState,
    tenant: TenantId,
    action: &MachineAction,
) -> ApiResult<CommandKind> {
    let invalid = |reason: String| CommandKind::Invalid {
        kind: "LiveResponse".into(),
        reason,
    };
    let mut commands = Vec::new();
    for entry in action.commands() {
        let c = &entry.command;
        let param = |key: &str| c.param(key).unwrap_or_default().to_owned();
        let library = |key: &str| {
            let name = param(key);
            async move {
                let file = state.store.get_library_file(tenant, &name).await?;
                Ok::<_, ApiError>(file.map(|f| (f.file_name, f.sha256)).ok_or(name))
            }
        };
        let command = match c.command_type {
            CommandType::PutFile => match library("FileName").await? {
                Ok((file_name, sha256)) => LiveCommand::PutFile { file_name, sha256 },
                Err(name) => {
                    return Ok(invalid(format!(
                        "library file '{name}' was deleted after the session was requested"
                    )));
                }
            },
            CommandType::RunScript => match library("ScriptName").await? {
                Ok((script_name, sha256)) => LiveCommand::RunScript {
                    script_name,
                    sha256,
                    args: c.param("Args").map(str::to_owned),
                },
                Err(name) => {
                    return Ok(invalid(format!(
                        "library script '{name}' was deleted after the session was requested"
                    )));
                }
            },
            CommandType::GetFile => LiveCommand::GetFile {
                path: param("Path"),
            },
        };
        commands.push(command);
    }
    Ok(CommandKind::LiveResponse { commands })
}

/// The outcome of a live response session from the agent's report: each command that ran with
/// its times and errors, and the result of each completed `RunScript`/`GetFile` — which must
/// have been uploaded, or the command failed. A session is a success only when every command
/// completed.
async fn live_response_outcome(
    state: &AppState,
    tenant: TenantId,
    action: &MachineAction,
    update: &CommandUpdate,
    detail: Option<String>,
) -> ApiResult<ActionOutcome> {
    let entries = action.commands();
    let mut outcomes: Vec<CommandOutcome> = Vec::new();
    let mut failure = None;
    for reported in &update.commands {
        let Some(entry) = entries.get(reported.index as usize) else {
            continue;
        };
        if outcomes.iter().any(|o| o.index == reported.index) {
            continue;
        }
        let mut outcome = CommandOutcome {
            index: reported.index,
            status: if reported.completed {
                CommandStatus::Completed
            } else {
                CommandStatus::Failed
            },
            start_time: time_of_ms(reported.started_ms),
            end_time: time_of_ms(reported.ended_ms),
            errors: reported
                .errors
                .iter()
                .take(10)
                .map(|e| e.chars().take(MAX_DETAIL).collect())
                .collect(),
            result_uri: None,
        };
        if reported.completed && entry.command.has_result() {
            if crate::routes::live_response::uploaded(state, tenant, &action.id, reported.index)
                .await?
            {
                outcome.result_uri = Some(crate::routes::live_response::stored_uri(
                    tenant,
                    &action.id,
                    reported.index,
                ));
            } else {
                outcome.status = CommandStatus::Failed;
                outcome.errors = vec!["the agent reported no result for this command".into()];
            }
        }
        if outcome.status == CommandStatus::Failed && failure.is_none() {
            failure = Some(format!(
                "Command {} ({}) failed: {}",
                outcome.index,
                entry.command.command_type.as_str(),
                outcome.errors.join("; ")
            ));
        }
        outcomes.push(outcome);
    }
    let all_completed = outcomes.len() == entries.len()
        && outcomes
            .iter()
            .all(|o| o.status == CommandStatus::Completed);
    Ok(match update.state {
        CommandState::Succeeded if all_completed => ActionOutcome::Succeeded {
            package_uri: None,
            live_evidence: None,
            commands: outcomes,
        },
        _ => ActionOutcome::Failed {
            error_hresult: E_FAIL,
            message: detail
                .or(failure)
                .unwrap_or_else(|| "The agent did not complete every command.".into()),
            commands: outcomes,
        },
    })
}

fn time_of_ms(ms: i64) -> Option<time::OffsetDateTime> {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok()
}

/// The machine action behind command `id` of `device`; 404 when there is none — or when it is
/// another device's, which is none of this device's business, not even its existence.
pub(crate) async fn command_of_device(
    state: &AppState,
    device: &DeviceCaller,
    id: &str,
) -> ApiResult<MachineAction> {
    state
        .store
        .get_machine_action(device.tenant, id)
        .await?
        .filter(|a| a.machine_id.eq_ignore_ascii_case(&device.device_id))
        .ok_or_else(|| ApiError::not_found(format!("Command {id} does not exist on this device.")))
}

/// `POST /agent/v1/commands/{id}`: 200 with the action's status; 404 when the device has no
/// such command; 409 when the action is not running any more (cancelled, timed out, finished).
pub async fn update(
    State(state): State<AppState>,
    Path(id): Path<String>,
    req: Request,
) -> ApiResult<Json<UpdateAck>> {
    let device = authenticate_device(&state, req.headers()).await?;
    let body = read_bytes(req, &state).await?;
    let update: CommandUpdate = serde_json::from_slice(&body)
        .map_err(|e| bad_body(format!("The body is not a command update: {e}")))?;
    if !update.command_id.eq_ignore_ascii_case(&id) {
        return Err(ApiError::new(
            ErrorCode::InvalidInput,
            format!(
                "commandId '{}' is not the command of the path ('{id}').",
                update.command_id
            ),
        ));
    }
    let not_found = || ApiError::not_found(format!("Command {id} does not exist on this device."));
    let action = command_of_device(&state, &device, &id).await?;
    if action.status() != ActionStatus::InProgress {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            format!(
                "Machine action {} is {}; it does not take updates any more.",
                action.id,
                action.status().as_str()
            ),
        ));
    }
    let detail = update
        .detail
        .as_deref()
        .map(|d| d.chars().take(MAX_DETAIL).collect::<String>());
    let outcome = match update.state {
        CommandState::Succeeded | CommandState::Failed
            if action.action_type == ActionType::LiveResponse =>
        {
            live_response_outcome(&state, device.tenant, &action, &update, detail).await?
        }
        CommandState::InProgress => {
            return Ok(Json(UpdateAck {
                command_id: action.id,
                status: ActionStatus::InProgress.as_str().into(),
            }));
        }
        CommandState::Succeeded
            if action.action_type == ActionType::CollectInvestigationPackage =>
        {
            // Success means the package is here; an agent that says so without uploading it
            // has failed.
            if crate::routes::packages::uploaded(&state, device.tenant, &action.id).await? {
                ActionOutcome::Succeeded {
                    package_uri: Some(crate::routes::packages::stored_uri(
                        device.tenant,
                        &action.id,
                    )),
                    live_evidence: None,
                    commands: Vec::new(),
                }
            } else {
                ActionOutcome::Failed {
                    error_hresult: E_FAIL,
                    message: "The agent reported success but uploaded no package.".into(),
                    commands: Vec::new(),
                }
            }
        }
        CommandState::Succeeded => ActionOutcome::Succeeded {
            package_uri: None,
            live_evidence: update.evidence,
            commands: Vec::new(),
        },
        CommandState::Failed => ActionOutcome::Failed {
            error_hresult: E_FAIL,
            message: detail.unwrap_or_else(|| "The agent reported a failure.".into()),
            commands: Vec::new(),
        },
    };
    let done = state
        .store
        .complete_action(device.tenant, &id, outcome)
        .await?
        .ok_or_else(not_found)?;
    tracing::info!(
        device_id = device.device_id,
        action = done.id,
        r#type = done.action_type.as_str(),
        status = done.status().as_str(),
        "command finished"
    );
    if done.action_type == ActionType::Offboard && done.status() == ActionStatus::Succeeded {
        // The agent has set its credential aside and stops; nothing may use it again.
        let ctx = AuditContext::system(&format!("device:{}", device.device_id));
        state
            .store
            .remove_device_credential(&ctx, device.tenant, &device.device_id)
            .await?;
        state.devices.remove(&device.device_id);
        tracing::warn!(device_id = device.device_id, "device offboarded");
    }
    Ok(Json(UpdateAck {
        command_id: done.id.clone(),
        status: done.status().as_str().into(),
    }))
}
