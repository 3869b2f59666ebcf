//! The cluster bus: servers sharing one state store tell each other, over NATS, what their
//! in-process signals would tell only themselves.
//!
//! * A machine's action queue changed (the store rang its [`ActionBell`]): the agent's held
//!   poll may be on another server, which rings its own bell and answers at once — a command
//!   reaches a connected agent within moments whichever server it polls, not at its poll's
//!   next look at the queue.
//! * A tenant's indicators changed: every other server reads the generations now and reloads
//!   the tenant, so its matcher and its connected agents have the change at once.
//! * Is a device's agent connected? An investigation asks before it looks at the device live;
//!   the server holding the agent's poll answers (a request on `<name>.presence`; silence
//!   within [`PRESENCE_WAIT`] means no).
//!
//! The messages are wake-ups, not data: the state store stays the one truth, a server that
//! misses one (NATS down, restarted) still finds the change at its next look, and each server
//! ignores its own. Core NATS subjects under `<name>.`, so clusters on one NATS server are
//! told apart by name.
//!
//! [`ActionBell`]: rampart_store::ActionBell

use crate::state::AppState;
use futures::StreamExt;
use rampart_core::TenantId;
use rampart_respond::air::Presence;
use rampart_store::Store;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// How long a presence question waits for the server holding the agent's poll to answer.
pub const PRESENCE_WAIT: Duration = Duration::from_millis(250);
/// Wake-ups waiting to be published at most.
const OUTBOX: usize = 10_000;

/// `[api.cluster]`: how this server finds the others.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    /// The NATS server (`nats://host:4222`).
    pub nats_url: String,
    /// The cluster's name, the prefix of its subjects (default `rampart`).
    #[serde(default = "default_name")]
    pub name: String,
}

fn default_name() -> String {
    "rampart".into()
}

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("connecting to NATS at {url}: {source}")]
    Connect {
        url: String,
        source: async_nats::ConnectError,
    },
    #[error("subscribing to {subject}: {source}")]
    Subscribe {
        subject: String,
        source: async_nats::SubscribeError,
    },
    #[error("cluster name '{0}' is not a NATS subject token (letters, digits, '-', '_')")]
    Name(String),
}

/// One wake-up, as it travels.
#[derive(Debug, Serialize, Deserialize)]
struct Message {
    /// The server that sent it (each ignores its own).
    from: String,
    tenant: TenantId,
    /// The machine whose queue changed, or whose agent is asked after (`bell`, `presence`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    machine: Option<String>,
}

/// Joins the cluster: this server's bell rings and indicator changes are published, the
/// others' are heard, and presence questions about the agents whose polls it holds are
/// answered. Returns the task that does so (it runs until the runtime stops; the NATS client
/// reconnects by itself).
pub async fn join(
    state: &AppState,
    config: &ClusterConfig,
) -> Result<tokio::task::JoinHandle<()>, ClusterError> {
    let token_ok = !config.name.is_empty()
        && config
            .name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !token_ok {
        return Err(ClusterError::Name(config.name.clone()));
    }
    let me = uuid::Uuid::new_v4().to_string();
    let client = async_nats::ConnectOptions::new()
        .name(format!("rampart-server {me}"))
        .connect(&config.nats_url)
        .await
        .map_err(|source| ClusterError::Connect {
            url: config.nats_url.clone(),
            source,
        })?;
    let bell_subject = format!("{}.bell", config.name);
    let indicators_subject = format!("{}.indicators", config.name);
    let presence_subject = format!("{}.presence", config.name);
    let subject = format!("{}.*", config.name);
    let mut heard = client
        .subscribe(subject.clone())
        .await
        .map_err(|source| ClusterError::Subscribe { subject, source })?;

    // The relays run in the store's and the matcher's paths: they only queue, and drop what
    // does not fit while NATS is unreachable (the others find it at their next look).
    let (tx, mut outbox) = mpsc::channel::<(String, Message)>(OUTBOX);
    let (from, bells) = (me.clone(), tx.clone());
    let subject = bell_subject.clone();
    state
        .store
        .action_bell()
        .set_relay(Box::new(move |tenant, machine| {
            let m = Message {
                from: from.clone(),
                tenant,
                machine: Some(machine.to_owned()),
            };
            let _ = bells.try_send((subject.clone(), m));
        }));
    let (from, subject) = (me.clone(), indicators_subject.clone());
    state.indicators.set_relay(Box::new(move |tenant| {
        let m = Message {
            from: from.clone(),
            tenant,
            machine: None,
        };
        let _ = tx.try_send((subject.clone(), m));
    }));

    state.investigator.set_presence(Arc::new(ClusterPresence {
        store: state.store.clone(),
        client: client.clone(),
        subject: presence_subject.clone(),
        me: me.clone(),
    }));
    let store = state.store.clone();
    let indicators = state.indicators.clone();
    tracing::info!(
        nats = config.nats_url,
        cluster = config.name,
        "joined the cluster bus"
    );
    Ok(tokio::spawn(async move {
        loop {
            tokio::select! {
                out = outbox.recv() => {
                    let Some((subject, m)) = out else { break };
                    let Ok(payload) = serde_json::to_vec(&m) else { continue };
                    if let Err(e) = client.publish(subject, payload.into()).await {
                        tracing::warn!("cluster bus: not published: {e}");
                    }
                }
                msg = heard.next() => {
                    let Some(msg) = msg else { break };
                    let Ok(m) = serde_json::from_slice::<Message>(&msg.payload) else {
                        tracing::warn!(subject = %msg.subject, "cluster bus: a message that is not Rampart's");
                        continue;
                    };
                    if m.from == me {
                        continue;
                    }
                    if msg.subject.as_str() == bell_subject {
                        if let Some(machine) = &m.machine {
                            store.action_bell().ring_here(m.tenant, machine);
                        }
                    } else if msg.subject.as_str() == indicators_subject {
                        indicators.look_now();
                    } else if msg.subject.as_str() == presence_subject
                        && let (Some(reply), Some(machine)) = (msg.reply, &m.machine)
                        && store.action_bell().is_listening(m.tenant, machine)
                        && let Err(e) = client.publish(reply, "here".into()).await
                    {
                        tracing::warn!("cluster bus: presence not answered: {e}");
                    }
                }
            }
        }
        tracing::warn!("cluster bus stopped");
    }))
}

/// Whether a device's agent holds a poll on this server, or — asked over the bus — on another.
struct ClusterPresence {
    store: Arc<dyn Store>,
    client: async_nats::Client,
    subject: String,
    me: String,
}

impl Presence for ClusterPresence {
    fn is_connected<'a>(
        &'a self,
        tenant: TenantId,
        machine_id: &'a str,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = bool> + Send + 'a>> {
        Box::pin(async move {
            if self.store.action_bell().is_listening(tenant, machine_id) {
                return true;
            }
            let question = Message {
                from: self.me.clone(),
                tenant,
                machine: Some(machine_id.to_owned()),
            };
            let Ok(payload) = serde_json::to_vec(&question) else {
                return false;
            };
            // Only the server holding the poll answers; silence is a no.
            matches!(
                tokio::time::timeout(
                    PRESENCE_WAIT,
                    self.client.request(self.subject.clone(), payload.into()),
                )
                .await,
                Ok(Ok(_))
            )
        })
    }
}
