//! The action bell: wakes the agents' command polls when a machine's action queue changes.
//!
//! An agent's poll (`POST /agent/v1/commands/poll`) holds its request open until there is
//! something to do. Every change to a queue goes through the store, so the store rings the
//! machine's bell after the change commits, and a poll waiting on it answers at once instead
//! of at its next look. The bell is in-process; servers sharing the database hear each other's
//! rings through a relay ([`ActionBell::set_relay`], the cluster bus) — without one, a poll
//! served by another server finds the change at its next look (see the poll route).
//!
//! A waiter must *listen* before it looks at the queue — `Notify::notified()` then `enable()` —
//! so that a ring landing between the look and the wait is not lost.

use rampart_core::TenantId;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, Weak};
use tokio::sync::Notify;

/// One [`Notify`] per machine with a poll waiting; machines nobody waits for cost nothing.
#[derive(Default)]
pub struct ActionBell {
    rooms: Mutex<Rooms>,
    /// Tells the other servers of each ring (set once, when the server joins a cluster).
    relay: OnceLock<Relay>,
}

/// Where a ring is passed on to: it must not block (it runs in the store's write path).
pub type Relay = Box<dyn Fn(TenantId, &str) + Send + Sync>;

#[derive(Default)]
struct Rooms {
    by_machine: HashMap<(TenantId, String), Weak<Notify>>,
    /// Entries at the last sweep of dead ones; the next sweep comes when the map doubles, so
    /// sweeping costs O(1) per `listen` on average.
    live_after_sweep: usize,
}

impl ActionBell {
    /// The bell of one machine (lower-case id), to wait on. It stays registered while the
    /// returned handle lives.
    pub fn listen(&self, tenant: TenantId, machine_id: &str) -> Arc<Notify> {
        let mut rooms = self.rooms.lock().unwrap_or_else(|p| p.into_inner());
        let key = (tenant, machine_id.to_owned());
        if let Some(n) = rooms.by_machine.get(&key).and_then(Weak::upgrade) {
            return n;
        }
        let n = Arc::new(Notify::new());
        rooms.by_machine.insert(key, Arc::downgrade(&n));
        if rooms.by_machine.len() > 2 * rooms.live_after_sweep.max(64) {
            rooms.by_machine.retain(|_, w| w.strong_count() > 0);
            rooms.live_after_sweep = rooms.by_machine.len();
        }
        n
    }

    /// Passes every ring of this bell on to `relay` from now on; `false` when one is set
    /// already (it stays).
    pub fn set_relay(&self, relay: Relay) -> bool {
        self.relay.set(relay).is_ok()
    }

    /// Wakes every poll waiting on the machine (lower-case id), here and, through the relay,
    /// on the other servers.
    pub fn ring(&self, tenant: TenantId, machine_id: &str) {
        self.ring_here(tenant, machine_id);
        if let Some(relay) = self.relay.get() {
            relay(tenant, machine_id);
        }
    }

    /// Wakes the polls waiting on the machine on this server only: a ring relayed from
    /// another server.
    pub fn ring_here(&self, tenant: TenantId, machine_id: &str) {
        let rooms = self.rooms.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = rooms
            .by_machine
            .get(&(tenant, machine_id.to_owned()))
            .and_then(Weak::upgrade)
        {
            n.notify_waiters();
        }
    }

    /// Whether the machine's agent has a poll waiting on this server now: it is connected, and
    /// a command reaches it at once. (An agent connected through another server sharing the
    /// database is not seen here.)
    pub fn is_listening(&self, tenant: TenantId, machine_id: &str) -> bool {
        let rooms = self.rooms.lock().unwrap_or_else(|p| p.into_inner());
        rooms
            .by_machine
            .get(&(tenant, machine_id.to_ascii_lowercase()))
            .is_some_and(|w| w.strong_count() > 0)
    }

    /// Machines with a poll waiting (for metrics and tests).
    pub fn listening(&self) -> usize {
        let rooms = self.rooms.lock().unwrap_or_else(|p| p.into_inner());
        rooms
            .by_machine
            .values()
            .filter(|w| w.strong_count() > 0)
            .count()
    }
}

impl std::fmt::Debug for ActionBell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ActionBell")
            .field("listening", &self.listening())
            .finish()
    }
}
