//! Access control: principals, a policy document (TOML) mapping roles to
//! grants and denies of action × scope, and decisions that carry their
//! reason. Deny by default; a deny beats an allow; a principal never
//! crosses tenants. See ADR 0007 for how denies attach to roles.

mod compile;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use compile::{BreakGlassDoc, Policy, PolicyDoc, RoleDoc, RuleDoc, MAX_ROLES};

/// What a principal wants to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Action {
    /// List free slots.
    SlotsRead,
    /// Read an appointment (without PHI).
    AppointmentRead,
    /// Read an appointment's PHI (reason for visit, notes).
    PhiRead,
    /// Book or hold.
    AppointmentBook,
    /// Cancel.
    AppointmentCancel,
    /// Move to another time.
    AppointmentReschedule,
    /// Change status (check in, arrive, fulfil, no-show).
    AppointmentStatus,
    /// Book over a taken slot.
    AppointmentOverbook,
    /// Book inside the minimum notice or beyond the horizon (never in the past).
    BypassNoticeHorizon,
    /// Put patients on and off the waitlist.
    WaitlistManage,
    /// Drain the outbox.
    OutboxDrain,
    /// Replace the catalog.
    CatalogManage,
    /// Read and verify the audit trail.
    AuditRead,
}

impl Action {
    /// Every action, in bit order.
    pub const ALL: [Action; 13] = [
        Action::SlotsRead,
        Action::AppointmentRead,
        Action::PhiRead,
        Action::AppointmentBook,
        Action::AppointmentCancel,
        Action::AppointmentReschedule,
        Action::AppointmentStatus,
        Action::AppointmentOverbook,
        Action::BypassNoticeHorizon,
        Action::WaitlistManage,
        Action::OutboxDrain,
        Action::CatalogManage,
        Action::AuditRead,
    ];

    /// The name used in policy documents.
    pub fn name(self) -> &'static str {
        match self {
            Action::SlotsRead => "slots.read",
            Action::AppointmentRead => "appointment.read",
            Action::PhiRead => "phi.read",
            Action::AppointmentBook => "appointment.book",
            Action::AppointmentCancel => "appointment.cancel",
            Action::AppointmentReschedule => "appointment.reschedule",
            Action::AppointmentStatus => "appointment.status",
            Action::AppointmentOverbook => "appointment.overbook",
            Action::BypassNoticeHorizon => "booking.bypass_notice",
            Action::WaitlistManage => "waitlist.manage",
            Action::OutboxDrain => "outbox.drain",
            Action::CatalogManage => "catalog.manage",
            Action::AuditRead => "audit.read",
        }
    }

    /// The action with this policy name.
    pub fn from_name(name: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.name() == name)
    }

    pub(crate) fn bit(self) -> u32 {
        1 << (Action::ALL.iter().position(|a| *a == self).unwrap_or(0) as u32)
    }
}

/// Over which appointments a grant or deny applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// The principal's own (the target patient is the principal's patient id).
    Own,
    /// A ward's (a valid guardianship of the target patient).
    Guardian,
    /// On the principal's own provider resources.
    Assigned,
    /// On resources of the principal's departments.
    Department,
    /// Anywhere in the principal's tenant.
    Tenant,
}

impl Scope {
    /// Every scope.
    pub const ALL: [Scope; 5] = [
        Scope::Own,
        Scope::Guardian,
        Scope::Assigned,
        Scope::Department,
        Scope::Tenant,
    ];

    /// The name used in policy documents.
    pub fn name(self) -> &'static str {
        match self {
            Scope::Own => "own",
            Scope::Guardian => "guardian",
            Scope::Assigned => "assigned",
            Scope::Department => "department",
            Scope::Tenant => "tenant",
        }
    }

    /// The scope with this name.
    pub fn from_name(name: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|s| s.name() == name)
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

/// A guardian's authority over a ward, valid in `[from, until)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Guardianship {
    /// The ward's patient id.
    pub patient: String,
    /// Valid from.
    #[serde(default)]
    pub from: Option<DateTime<Utc>>,
    /// Valid until (exclusive).
    #[serde(default)]
    pub until: Option<DateTime<Utc>>,
}

/// An active break-glass elevation: emergency access to one patient. Its
/// `Debug` never shows the stated reason (free text).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Elevation {
    /// The patient.
    pub patient: String,
    /// The stated reason (a short code or sentence, no PHI).
    pub reason: String,
    /// When it was granted.
    pub granted_at: DateTime<Utc>,
    /// When it stops having any effect.
    pub expires_at: DateTime<Utc>,
}

impl std::fmt::Debug for Elevation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Elevation")
            .field("patient", &self.patient)
            .field("reason", &medsched_storage::Phi(()))
            .field("granted_at", &self.granted_at)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// Who is asking: a user in a tenant with roles and the links scopes need.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Principal {
    /// User id.
    pub user: String,
    /// Tenant id.
    pub tenant: String,
    /// Role names from the policy.
    #[serde(default)]
    pub roles: Vec<String>,
    /// The user's own patient id, for `own`.
    #[serde(default)]
    pub patient: Option<String>,
    /// The user's provider resources, for `assigned`.
    #[serde(default)]
    pub resources: Vec<String>,
    /// The user's departments, for `department`.
    #[serde(default)]
    pub departments: Vec<String>,
    /// Guardianships, for `guardian`.
    #[serde(default)]
    pub guardianships: Vec<Guardianship>,
    /// Break-glass elevations granted by the engine.
    #[serde(default)]
    pub elevations: Vec<Elevation>,
}

/// What an action is about: an appointment (or a would-be one).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// The tenant that owns it.
    pub tenant: String,
    /// Its patient.
    #[serde(default)]
    pub patient: Option<String>,
    /// Its resources.
    #[serde(default)]
    pub resources: Vec<String>,
    /// The departments of its resources.
    #[serde(default)]
    pub departments: Vec<String>,
}

/// Why a request was denied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DenyReason {
    /// No grant of any of the principal's roles covers it.
    NoGrant,
    /// A deny rule covers it.
    ExplicitDeny,
    /// The target belongs to another tenant.
    CrossTenant,
}

impl DenyReason {
    /// The stable code.
    pub fn code(self) -> &'static str {
        match self {
            DenyReason::NoGrant => "no_grant",
            DenyReason::ExplicitDeny => "explicit_deny",
            DenyReason::CrossTenant => "cross_tenant",
        }
    }
}

/// The rule that decided.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleRef {
    /// The role whose rule it is (`break_glass` for an elevation).
    pub role: String,
    /// `grant` or `deny`.
    pub effect: &'static str,
    /// The action.
    pub action: &'static str,
    /// The scope.
    pub scope: &'static str,
}

/// A decision with its reason and the policy version that made it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    /// Whether the action is allowed.
    pub allowed: bool,
    /// The deciding rule (the grant that allowed, or the deny that denied).
    pub rule: Option<RuleRef>,
    /// Why not, when denied.
    pub reason: Option<DenyReason>,
    /// Whether a break-glass elevation was needed (always audited, flagged
    /// for review).
    pub break_glass: bool,
    /// The version of the policy that decided.
    pub policy_version: String,
}

impl Decision {
    /// The reason code of a denial, or `allowed`.
    pub fn code(&self) -> &'static str {
        self.reason.map_or("allowed", DenyReason::code)
    }
}

/// A policy that can be replaced at run time atomically; readers take the
/// current version with [`PolicyStore::current`].
#[derive(Debug)]
pub struct PolicyStore(std::sync::RwLock<Arc<Policy>>);

impl PolicyStore {
    /// A store holding `policy`.
    pub fn new(policy: Policy) -> Self {
        Self(std::sync::RwLock::new(Arc::new(policy)))
    }

    /// The current policy.
    pub fn current(&self) -> Arc<Policy> {
        Arc::clone(
            &self
                .0
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }

    /// Replaces the policy; decisions already running keep the version they
    /// started with.
    pub fn replace(&self, policy: Policy) {
        *self
            .0
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(policy);
    }
}

#[cfg(test)]
mod tests;
