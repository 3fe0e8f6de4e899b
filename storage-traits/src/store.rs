//! The store contract: synchronous traits (ADR 0001) with a small required
//! surface. Every write goes through [`Store::commit`], which applies a
//! [`Batch`] atomically: its checks, its inserts and updates, its outbox
//! events and its idempotency record happen together or not at all. The
//! engine's own checks give explanations; the store's checks give the
//! guarantee, so two app servers racing for one slot get one winner.

use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::audit::{AuditRecord, NewAudit};
use crate::records::{
    Appointment, AppointmentId, AppointmentTypeId, Clinic, PatientId, ResourceId, TenantId,
};

/// Store-assigned numeric key of an appointment, unique within a tenant.
pub type AppointmentKey = u64;

/// An appointment as stored: the record, its key, its optimistic version
/// and, for a hold, when the hold lapses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredAppointment {
    /// Store-assigned key.
    pub key: AppointmentKey,
    /// 1 when inserted, one more on every update.
    pub version: u64,
    /// For a hold: the instant at which it stops holding time.
    pub hold_expires_at: Option<DateTime<Utc>>,
    /// The record.
    pub appointment: Appointment,
}

impl StoredAppointment {
    /// The busy span `[start − buffer before, end + buffer after)` in epoch
    /// seconds, if the appointment holds time at `now`: it has a time, its
    /// status holds time, and it is not a lapsed hold. This is the store
    /// contract's definition of an active row.
    pub fn busy_at(&self, now: i64) -> Option<(i64, i64)> {
        let a = &self.appointment;
        if !a.status.holds_time() {
            return None;
        }
        if self.hold_expires_at.is_some_and(|h| h.timestamp() <= now) {
            return None;
        }
        let (start, end) = (a.start?.timestamp(), a.end?.timestamp());
        Some((
            start - i64::from(a.buffer_before_min) * 60,
            end + i64::from(a.buffer_after_min) * 60,
        ))
    }
}

/// One active appointment on one resource, as the availability read
/// returns it: plain numbers, no allocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BookingRow {
    /// Position of the resource in [`BookingsQuery::resources`].
    pub resource: u32,
    /// Start, epoch seconds.
    pub start: i64,
    /// End, epoch seconds.
    pub end: i64,
    /// Buffer before, seconds, as recorded.
    pub buffer_before: i64,
    /// Buffer after, seconds, as recorded.
    pub buffer_after: i64,
    /// The appointment's key.
    pub key: AppointmentKey,
    /// Whether its type is [`BookingsQuery::type_id`].
    pub same_type: bool,
}

/// The batched availability read: every active appointment on any of
/// `resources` whose busy span overlaps `[from, to)`.
#[derive(Debug, Clone, Copy)]
pub struct BookingsQuery<'a> {
    /// The resources, in the order the rows refer to.
    pub resources: &'a [ResourceId],
    /// Window start, epoch seconds.
    pub from: i64,
    /// Window end, epoch seconds.
    pub to: i64,
    /// The instant at which holds are judged.
    pub now: i64,
    /// Rows of this type are flagged [`BookingRow::same_type`].
    pub type_id: Option<&'a AppointmentTypeId>,
}

/// "This resource can take at most `capacity` overlapping appointments":
/// what an insert or update asks the store to guarantee.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claim {
    /// The resource.
    pub resource: ResourceId,
    /// Its capacity (1 for a clinician).
    pub capacity: u32,
}

/// Client idempotency: a retried batch with the same key returns the first
/// result; the same key with another fingerprint is refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Idempotency {
    /// The client's key.
    pub key: String,
    /// A digest of the request's parameters.
    pub fingerprint: String,
}

/// What an outbox event announces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum EventKind {
    /// An appointment was booked (or a hold confirmed).
    Booked,
    /// A slot was held.
    Held,
    /// An appointment was cancelled.
    Cancelled,
    /// An appointment moved to a new time or resources.
    Rescheduled,
    /// An appointment changed status otherwise.
    StatusChanged,
    /// A reminder is due.
    ReminderDue,
    /// A freed slot is offered to a waitlist entry (and held for it).
    WaitlistOffer,
}

impl EventKind {
    /// The stable snake_case code (as serialized).
    pub fn code(self) -> &'static str {
        match self {
            EventKind::Booked => "booked",
            EventKind::Held => "held",
            EventKind::Cancelled => "cancelled",
            EventKind::Rescheduled => "rescheduled",
            EventKind::StatusChanged => "status_changed",
            EventKind::ReminderDue => "reminder_due",
            EventKind::WaitlistOffer => "waitlist_offer",
        }
    }
}

/// The ids an event carries. Never PHI: ids and instants only.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventData {
    /// The appointment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub appointment: Option<AppointmentId>,
    /// The patient (an opaque id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patient: Option<PatientId>,
    /// The appointment's start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<DateTime<Utc>>,
    /// For a reminder: minutes before the start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset_min: Option<u32>,
    /// For a waitlist offer: the entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waitlist_entry: Option<String>,
    /// For a status change: the new FHIR status code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Who made the change (a user id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    /// Why, as a code (`patient_request`, `provider_unavailable` ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason_code: Option<String>,
}

/// An event to write to the outbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewEvent {
    /// What it announces.
    pub kind: EventKind,
    /// When it may be delivered.
    pub due_at: DateTime<Utc>,
    /// Its ids.
    pub data: EventData,
}

/// An event in the outbox, as a worker claims it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxEvent {
    /// Store-assigned id, ascending in write order.
    pub id: u64,
    /// The tenant.
    pub tenant: TenantId,
    /// What it announces.
    pub kind: EventKind,
    /// When it became deliverable.
    pub due_at: DateTime<Utc>,
    /// Its ids.
    pub data: EventData,
    /// How many times it has been claimed, this claim included.
    pub attempts: u32,
}

/// A patient waiting for a slot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaitlistEntry {
    /// Unique id.
    pub id: String,
    /// The patient.
    pub patient: PatientId,
    /// The appointment type wanted.
    pub type_id: AppointmentTypeId,
    /// Acceptable resources; any when empty.
    #[serde(default)]
    pub resources: Vec<ResourceId>,
    /// Earliest acceptable start.
    pub from: DateTime<Utc>,
    /// Latest acceptable end.
    pub to: DateTime<Utc>,
    /// When the entry was made; earlier entries are offered first.
    pub created_at: DateTime<Utc>,
}

/// One step of a [`Batch`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Op {
    /// Insert a new appointment (key assigned, version 1). For each claim the
    /// store first checks that the new busy span, with every active row
    /// overlapping it on that resource, never exceeds the claim's capacity
    /// at any instant (touching is not overlapping); `overbook` skips it.
    Insert {
        /// The record; its id must be new.
        appointment: Appointment,
        /// For a hold: when it lapses.
        hold_expires_at: Option<DateTime<Utc>>,
        /// Capacity checks.
        claims: Vec<Claim>,
        /// Skip the capacity checks.
        overbook: bool,
    },
    /// Replace an appointment if its version is `expected_version`; the
    /// claims are checked as for an insert, not counting its own old row.
    Update {
        /// The new record (same id).
        appointment: Appointment,
        /// The version the caller read.
        expected_version: u64,
        /// For a hold: when it lapses.
        hold_expires_at: Option<DateTime<Utc>>,
        /// Capacity checks.
        claims: Vec<Claim>,
        /// Skip the capacity checks.
        overbook: bool,
    },
    /// Write an event.
    Emit(NewEvent),
    /// Drop the undelivered events of these kinds for an appointment
    /// (stale reminders), claimed ones included.
    Supersede {
        /// The appointment.
        appointment: AppointmentId,
        /// Kinds to drop.
        kinds: Vec<EventKind>,
    },
    /// Add a waitlist entry.
    AddWaitlist(WaitlistEntry),
    /// Remove a waitlist entry (a no-op when it is gone).
    RemoveWaitlist {
        /// The entry id.
        id: String,
    },
    /// Append an audit record (sealed into the hash chain at commit).
    Audit(NewAudit),
}

/// Writes that succeed or fail together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    /// The instant at which holds are judged.
    pub now: DateTime<Utc>,
    /// Optional client idempotency.
    pub idempotency: Option<Idempotency>,
    /// The steps, applied in order.
    pub ops: Vec<Op>,
}

/// What a committed batch produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    /// The inserted and updated appointments, in op order, as stored.
    pub appointments: Vec<Arc<StoredAppointment>>,
    /// Whether this is the recorded result of an earlier batch with the same
    /// idempotency key (nothing was applied now).
    pub replayed: bool,
}

/// The kind of a storage error. Not `non_exhaustive`: the core's mapping
/// matches every kind, so a new kind cannot fall into a catch-all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StorageErrorKind {
    /// A record does not exist.
    NotFound,
    /// A capacity check failed: the slot is taken.
    SlotTaken,
    /// The record changed since it was read.
    VersionConflict,
    /// A record with this id already exists.
    Duplicate,
    /// The idempotency key was used with other parameters.
    IdempotencyMismatch,
    /// The event's lease is held by another worker or has lapsed.
    LeaseLost,
    /// The store cannot be reached or is overloaded; try again.
    Unavailable,
    /// A stored value fails its integrity check (e.g. decryption).
    Integrity,
    /// The request is not valid for the store.
    Invalid,
    /// The database's schema is newer than this adapter knows: upgrade the
    /// application, never downgrade the schema.
    SchemaTooNew,
    /// A broken store invariant (a defect, not bad input).
    Internal,
}

/// An error from a store. Messages name records by id, never carry PHI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageError {
    kind: StorageErrorKind,
    message: String,
    resource: Option<ResourceId>,
    record: Option<(String, String)>,
}

impl StorageError {
    /// A new error.
    pub fn new(kind: StorageErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            resource: None,
            record: None,
        }
    }

    /// "Slot taken" on a resource.
    pub fn slot_taken(resource: &ResourceId) -> Self {
        Self {
            kind: StorageErrorKind::SlotTaken,
            message: format!("slot taken on resource `{resource}`"),
            resource: Some(resource.clone()),
            record: None,
        }
    }

    /// A missing record.
    pub fn not_found(what: &str, id: &str) -> Self {
        Self {
            record: Some((what.to_owned(), id.to_owned())),
            ..Self::new(
                StorageErrorKind::NotFound,
                format!("{what} `{id}` not found"),
            )
        }
    }

    /// A record whose id exists already (`what` names the kind of record:
    /// `appointment`, `waitlist entry`).
    pub fn duplicate(what: &str, id: &str) -> Self {
        Self {
            record: Some((what.to_owned(), id.to_owned())),
            ..Self::new(
                StorageErrorKind::Duplicate,
                format!("{what} `{id}` already exists"),
            )
        }
    }

    /// For [`StorageErrorKind::NotFound`] and [`StorageErrorKind::Duplicate`]:
    /// what kind of record, and its id.
    pub fn record(&self) -> Option<(&str, &str)> {
        self.record.as_ref().map(|(w, i)| (w.as_str(), i.as_str()))
    }

    /// The kind.
    pub fn kind(&self) -> StorageErrorKind {
        self.kind
    }

    /// For [`StorageErrorKind::SlotTaken`]: the resource that is full.
    pub fn resource(&self) -> Option<&ResourceId> {
        self.resource.as_ref()
    }

    /// Whether retrying the same call may succeed.
    pub fn is_temporary(&self) -> bool {
        matches!(self.kind, StorageErrorKind::Unavailable)
    }

    /// The stable snake_case code.
    pub fn code(&self) -> &'static str {
        match self.kind {
            StorageErrorKind::NotFound => "not_found",
            StorageErrorKind::SlotTaken => "slot_unavailable",
            StorageErrorKind::VersionConflict => "version_conflict",
            StorageErrorKind::Duplicate => "duplicate_id",
            StorageErrorKind::IdempotencyMismatch => "idempotency_mismatch",
            StorageErrorKind::LeaseLost => "lease_lost",
            StorageErrorKind::Unavailable => "storage_unavailable",
            StorageErrorKind::Integrity => "integrity_error",
            StorageErrorKind::Invalid => "invalid_input",
            StorageErrorKind::SchemaTooNew => "schema_too_new",
            StorageErrorKind::Internal => "internal_error",
        }
    }
}

impl fmt::Display for StorageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for StorageError {}

/// A clinic's catalog (everything but appointments) with its version.
#[derive(Debug, Clone)]
pub struct VersionedCatalog {
    /// Bumped on every replacement.
    pub version: u64,
    /// The catalog; its `appointments` are empty.
    pub catalog: Arc<Clinic>,
}

/// The store contract. Implementations are `Send + Sync` and safe to share
/// between threads; every method is one atomic step.
pub trait Store: Send + Sync {
    /// The tenant's catalog. Atomic read of one version.
    ///
    /// # Errors
    /// `NotFound` when the tenant has none; `Unavailable`.
    fn catalog(&self, tenant: &TenantId) -> Result<VersionedCatalog, StorageError>;

    /// The catalog's current version (0 when none); cheap, for caches.
    ///
    /// # Errors
    /// `Unavailable`.
    fn catalog_version(&self, tenant: &TenantId) -> Result<u64, StorageError>;

    /// Replaces the catalog if its version is `expected_version` (0 for a
    /// new tenant); its `appointments` must be empty. Atomic.
    ///
    /// # Errors
    /// `VersionConflict`, `Invalid`, `Unavailable`.
    fn replace_catalog(
        &self,
        tenant: &TenantId,
        catalog: Clinic,
        expected_version: u64,
    ) -> Result<u64, StorageError>;

    /// The batched availability read: appends to `out` every active row of
    /// the query's resources whose busy span overlaps the window, sorted by
    /// (resource position, start). One consistent snapshot.
    ///
    /// # Errors
    /// `Unavailable`.
    fn bookings(
        &self,
        tenant: &TenantId,
        query: &BookingsQuery<'_>,
        out: &mut Vec<BookingRow>,
    ) -> Result<(), StorageError>;

    /// A patient's active appointments whose own time overlaps
    /// `[from, to)` (epoch seconds), judged at `now`.
    ///
    /// # Errors
    /// `Unavailable`.
    fn patient_bookings(
        &self,
        tenant: &TenantId,
        patient: &PatientId,
        from: i64,
        to: i64,
        now: i64,
    ) -> Result<Vec<Arc<StoredAppointment>>, StorageError>;

    /// One appointment by id.
    ///
    /// # Errors
    /// `NotFound`, `Unavailable`.
    fn appointment(
        &self,
        tenant: &TenantId,
        id: &AppointmentId,
    ) -> Result<Arc<StoredAppointment>, StorageError>;

    /// One appointment by key.
    ///
    /// # Errors
    /// `NotFound`, `Unavailable`.
    fn appointment_by_key(
        &self,
        tenant: &TenantId,
        key: AppointmentKey,
    ) -> Result<Arc<StoredAppointment>, StorageError>;

    /// The recorded result of an idempotency key, with its fingerprint.
    ///
    /// # Errors
    /// `Unavailable`.
    fn idempotent(
        &self,
        tenant: &TenantId,
        key: &str,
    ) -> Result<Option<(String, Committed)>, StorageError>;

    /// Applies a batch atomically: with an idempotency key already recorded
    /// with the same fingerprint, returns that first result and applies
    /// nothing; with another fingerprint fails with `IdempotencyMismatch`.
    /// Otherwise every op's checks pass and all ops apply, the key is
    /// recorded with the result, or nothing changes.
    ///
    /// # Errors
    /// `SlotTaken`, `VersionConflict`, `Duplicate`, `NotFound`,
    /// `IdempotencyMismatch`, `Unavailable`.
    fn commit(&self, tenant: &TenantId, batch: Batch) -> Result<Committed, StorageError>;

    /// Claims up to `max` deliverable events (due at or before `now`, not
    /// acknowledged, not under another worker's unexpired lease), oldest
    /// due first, leasing them to `worker` until `now + lease_secs`. Atomic:
    /// two workers never hold one event's lease at once.
    ///
    /// # Errors
    /// `Unavailable`.
    fn claim_events(
        &self,
        tenant: &TenantId,
        worker: &str,
        max: usize,
        now: DateTime<Utc>,
        lease_secs: i64,
    ) -> Result<Vec<OutboxEvent>, StorageError>;

    /// Acknowledges a delivered event; only its current lease holder may,
    /// before the lease lapses.
    ///
    /// # Errors
    /// `LeaseLost`, `NotFound`, `Unavailable`.
    fn ack_event(
        &self,
        tenant: &TenantId,
        event_id: u64,
        worker: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StorageError>;

    /// Appends one audit record to the tenant's hash chain, atomically.
    ///
    /// # Errors
    /// `Unavailable`: the caller's operation must then fail.
    fn append_audit(&self, tenant: &TenantId, entry: NewAudit)
        -> Result<AuditRecord, StorageError>;

    /// Up to `max` audit records from position `from_seq` (1 = the first).
    ///
    /// # Errors
    /// `Unavailable`.
    fn audit_records(
        &self,
        tenant: &TenantId,
        from_seq: u64,
        max: usize,
    ) -> Result<Vec<AuditRecord>, StorageError>;

    /// The waitlist entries for a type, oldest first.
    ///
    /// # Errors
    /// `Unavailable`.
    fn waitlist(
        &self,
        tenant: &TenantId,
        type_id: &AppointmentTypeId,
    ) -> Result<Vec<WaitlistEntry>, StorageError>;
}

/// A shared store is a store: `Arc<dyn Store>` lets a host choose the
/// backend at run time (the Python binding's `Engine.in_memory` /
/// `Engine.postgres`).
impl<T: Store + ?Sized> Store for Arc<T> {
    fn catalog(&self, tenant: &TenantId) -> Result<VersionedCatalog, StorageError> {
        (**self).catalog(tenant)
    }
    fn catalog_version(&self, tenant: &TenantId) -> Result<u64, StorageError> {
        (**self).catalog_version(tenant)
    }
    fn replace_catalog(
        &self,
        tenant: &TenantId,
        catalog: Clinic,
        expected_version: u64,
    ) -> Result<u64, StorageError> {
        (**self).replace_catalog(tenant, catalog, expected_version)
    }
    fn bookings(
        &self,
        tenant: &TenantId,
        query: &BookingsQuery<'_>,
        out: &mut Vec<BookingRow>,
    ) -> Result<(), StorageError> {
        (**self).bookings(tenant, query, out)
    }
    fn patient_bookings(
        &self,
        tenant: &TenantId,
        patient: &PatientId,
        from: i64,
        to: i64,
        now: i64,
    ) -> Result<Vec<Arc<StoredAppointment>>, StorageError> {
        (**self).patient_bookings(tenant, patient, from, to, now)
    }
    fn appointment(
        &self,
        tenant: &TenantId,
        id: &AppointmentId,
    ) -> Result<Arc<StoredAppointment>, StorageError> {
        (**self).appointment(tenant, id)
    }
    fn appointment_by_key(
        &self,
        tenant: &TenantId,
        key: AppointmentKey,
    ) -> Result<Arc<StoredAppointment>, StorageError> {
        (**self).appointment_by_key(tenant, key)
    }
    fn idempotent(
        &self,
        tenant: &TenantId,
        key: &str,
    ) -> Result<Option<(String, Committed)>, StorageError> {
        (**self).idempotent(tenant, key)
    }
    fn commit(&self, tenant: &TenantId, batch: Batch) -> Result<Committed, StorageError> {
        (**self).commit(tenant, batch)
    }
    fn claim_events(
        &self,
        tenant: &TenantId,
        worker: &str,
        max: usize,
        now: DateTime<Utc>,
        lease_secs: i64,
    ) -> Result<Vec<OutboxEvent>, StorageError> {
        (**self).claim_events(tenant, worker, max, now, lease_secs)
    }
    fn ack_event(
        &self,
        tenant: &TenantId,
        event_id: u64,
        worker: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StorageError> {
        (**self).ack_event(tenant, event_id, worker, now)
    }
    fn append_audit(
        &self,
        tenant: &TenantId,
        entry: NewAudit,
    ) -> Result<AuditRecord, StorageError> {
        (**self).append_audit(tenant, entry)
    }
    fn audit_records(
        &self,
        tenant: &TenantId,
        from_seq: u64,
        max: usize,
    ) -> Result<Vec<AuditRecord>, StorageError> {
        (**self).audit_records(tenant, from_seq, max)
    }
    fn waitlist(
        &self,
        tenant: &TenantId,
        type_id: &AppointmentTypeId,
    ) -> Result<Vec<WaitlistEntry>, StorageError> {
        (**self).waitlist(tenant, type_id)
    }
}

#[cfg(test)]
mod tests {
    use super::EventKind;

    #[test]
    fn event_kind_codes_are_their_serialized_names() {
        for k in [
            EventKind::Booked,
            EventKind::Held,
            EventKind::Cancelled,
            EventKind::Rescheduled,
            EventKind::StatusChanged,
            EventKind::ReminderDue,
            EventKind::WaitlistOffer,
        ] {
            assert_eq!(serde_json::to_value(k).unwrap(), k.code());
        }
    }
}
