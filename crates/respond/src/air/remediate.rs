//! Carrying remediation actions out and taking them back: machine actions for what happens
//! on the device, shared indicators for what the tenant blocks.

use crate::signal::store_requests;
use rampart_core::action_target::{PersistenceTarget, ProcessTarget};
use rampart_core::audit::AuditContext;
use rampart_core::machine_action::{
    ActionRequest, ActionSubmission, IdempotencyKey, IsolationType, MAX_COMMENT_LEN,
    RequestedAction,
};
use rampart_core::remediation::{Execution, RemediationAction, RemediationType};
use rampart_core::signal::{Origin, entity_request};
use rampart_core::{ErrorCode, Rejection, TenantId};
use rampart_detect::IndicatorMatcher;
use rampart_detect::indicators::Change;
use rampart_store::{Store, StoreError};
use time::OffsetDateTime;

/// Who the machine actions of investigations name as their requestor.
pub const REQUESTOR: &str = "Automated investigation";
/// The client id idempotency keys of investigations' machine actions are scoped to.
const CLIENT_ID: &str = "rampart-air";

/// Carries `action` out: submits its machine action (idempotently: carrying out the same
/// action twice submits one) or stores its indicator.
pub async fn execute(
    store: &dyn Store,
    matcher: &IndicatorMatcher,
    ctx: &AuditContext,
    tenant: TenantId,
    action: &RemediationAction,
) -> Result<Execution, StoreError> {
    let request = match action.action_type {
        RemediationType::QuarantineFile => RequestedAction::StopAndQuarantineFile {
            sha1: sha1_of(action)?,
        },
        RemediationType::KillProcess => RequestedAction::KillProcess(ProcessTarget {
            pid: action
                .process_id
                .ok_or_else(|| refused(action, "it names no process"))?,
            image_path: path_of(action)?,
        }),
        RemediationType::RemovePersistence => {
            RequestedAction::RemovePersistence(persistence_of(action)?)
        }
        RemediationType::IsolateDevice => RequestedAction::Isolate {
            isolation: IsolationType::Full,
        },
        RemediationType::BlockIndicator => return block(store, matcher, ctx, tenant, action).await,
    };
    let comment = format!(
        "Automated investigation {}: {} ({})",
        action.investigation_id,
        action.entity_name,
        action.reasons.first().map_or("malicious", String::as_str)
    );
    let id = submit(store, ctx, tenant, action, request, comment, "").await?;
    Ok(Execution::MachineAction(id))
}

/// Takes a completed action back: restores the quarantined file, releases the device, or
/// deletes the indicator. Returns the machine action that undoes it, if one does.
pub async fn undo(
    store: &dyn Store,
    matcher: &IndicatorMatcher,
    ctx: &AuditContext,
    tenant: TenantId,
    action: &RemediationAction,
    comment: &str,
) -> Result<Option<String>, StoreError> {
    let request = match action.action_type {
        RemediationType::QuarantineFile => RequestedAction::RestoreQuarantinedFile {
            sha1: sha1_of(action)?,
        },
        RemediationType::RemovePersistence => {
            RequestedAction::RestorePersistence(persistence_of(action)?)
        }
        // `check_undoable` refuses it: a killed process cannot be brought back.
        RemediationType::KillProcess => {
            return Err(refused(action, "a process cannot be brought back"));
        }
        RemediationType::IsolateDevice => RequestedAction::Unisolate,
        RemediationType::BlockIndicator => {
            if let Some(id) = &action.indicator_id {
                store.delete_indicator(ctx, tenant, id, None).await?;
                matcher.apply(tenant, &[Change::Remove { id: id.clone() }]);
            }
            return Ok(None);
        }
    };
    let comment = format!(
        "Undo of remediation action {} (investigation {}): {comment}",
        action.id, action.investigation_id
    );
    submit(store, ctx, tenant, action, request, comment, ":undo")
        .await
        .map(Some)
}

async fn submit(
    store: &dyn Store,
    ctx: &AuditContext,
    tenant: TenantId,
    action: &RemediationAction,
    request: RequestedAction,
    comment: String,
    key_suffix: &str,
) -> Result<String, StoreError> {
    let key = format!("remediation:{}:{}{key_suffix}", tenant, action.id);
    submit_action(
        store,
        ctx,
        tenant,
        &action.machine_id,
        request,
        comment,
        key,
    )
    .await
}

/// Submits a machine action of an investigation, idempotently on `key`: submitting the same
/// key twice gives the same action. The comment is cut to what a request may carry. Returns
/// its id.
pub async fn submit_action(
    store: &dyn Store,
    ctx: &AuditContext,
    tenant: TenantId,
    machine_id: &str,
    request: RequestedAction,
    comment: String,
    key: String,
) -> Result<String, StoreError> {
    let comment: String = comment.chars().take(MAX_COMMENT_LEN).collect();
    let submission = ActionSubmission {
        machine_id: machine_id.to_owned(),
        request: ActionRequest::new(request, Some(comment), None)?,
        requestor: REQUESTOR.into(),
        request_source: Some("AutomatedInvestigation".into()),
        idempotency: Some(IdempotencyKey {
            client_id: CLIENT_ID.into(),
            key,
        }),
    };
    Ok(store
        .submit_machine_action(ctx, tenant, &submission)
        .await?
        .action
        .id)
}

async fn block(
    store: &dyn Store,
    matcher: &IndicatorMatcher,
    ctx: &AuditContext,
    tenant: TenantId,
    action: &RemediationAction,
) -> Result<Execution, StoreError> {
    let now = OffsetDateTime::now_utc();
    let (Some(kind), Some(value)) = (action.indicator_type, &action.indicator_value) else {
        return Err(refused(action, "it names no indicator"));
    };
    let policy = store.signal_sharing_policy(tenant).await?;
    let origin = Origin {
        label: format!("investigation {}", action.investigation_id),
        title: format!("Automated investigation {}", action.investigation_id),
        external_id: format!("rampart-air:{}", action.investigation_id),
        severity: rampart_core::alert::Severity::High,
    };
    let why = action.reasons.first().map_or("malicious", String::as_str);
    let request = entity_request(kind, value, &origin, &format!("{why}."), now, &policy)
        .ok_or_else(|| {
            refused(
                action,
                &format!(
                    "the tenant's signal sharing policy does not share {} indicators",
                    kind.as_str()
                ),
            )
        })?;
    let stored = store_requests(store, matcher, ctx, tenant, vec![request], now).await?;
    match stored.into_iter().next() {
        Some(i) => Ok(Execution::Indicator(i.id)),
        None => Err(refused(action, "the indicator rules refused the value")),
    }
}

fn sha1_of(action: &RemediationAction) -> Result<String, StoreError> {
    action
        .sha1
        .clone()
        .ok_or_else(|| refused(action, "it names no SHA-1"))
}

fn path_of(action: &RemediationAction) -> Result<String, StoreError> {
    action
        .file_path
        .clone()
        .ok_or_else(|| refused(action, "it names no path"))
}

fn persistence_of(action: &RemediationAction) -> Result<PersistenceTarget, StoreError> {
    Ok(PersistenceTarget {
        path: path_of(action)?,
        entries: action.entries.clone(),
    })
}

fn refused(action: &RemediationAction, why: &str) -> StoreError {
    StoreError::Rejected(Rejection::new(
        ErrorCode::InvalidInput,
        format!("Remediation action {} cannot run: {why}.", action.id),
    ))
}
