//! The authenticated caller of a request, put in the request extensions by the route guard.

use super::token::VerifiedToken;
use rampart_core::audit::{Actor, ActorKind, AuditContext};
use rampart_core::{ClientId, Permission, TenantId};
use std::collections::BTreeSet;

/// Who is calling: an app of one tenant with its roles.
#[derive(Debug, Clone, PartialEq)]
pub struct Caller {
    pub tenant: TenantId,
    pub client_id: ClientId,
    pub app_name: String,
    pub roles: BTreeSet<Permission>,
}

impl From<VerifiedToken> for Caller {
    fn from(t: VerifiedToken) -> Self {
        Caller {
            tenant: t.tenant,
            client_id: t.client_id,
            app_name: t.app_name,
            roles: t.roles,
        }
    }
}

impl Caller {
    /// Whether the caller holds any of `needed`.
    pub fn has_any(&self, needed: &[Permission]) -> bool {
        needed.iter().any(|p| self.roles.contains(p))
    }

    /// The audit context of a change this caller makes.
    pub fn audit(&self) -> AuditContext {
        AuditContext {
            actor: Actor {
                kind: ActorKind::App,
                id: self.client_id.to_string(),
                name: Some(self.app_name.clone()),
            },
            correlation_id: crate::error::correlation_id(),
        }
    }
}
