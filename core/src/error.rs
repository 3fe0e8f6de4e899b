//! The core's error type. Every variant has a stable snake_case code
//! (listed in `docs/error-codes.md`); messages are one lowercase line that
//! names records by id and never carries patient data.

use std::fmt;

/// What kind of record an id refers to, for [`Error::NotFound`] and
/// [`Error::DuplicateId`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RecordKind {
    /// A provider, room or piece of equipment.
    Resource,
    /// An appointment type.
    AppointmentType,
    /// An appointment.
    Appointment,
    /// A working-hours rule.
    WorkingHours,
    /// A time-off entry.
    TimeOff,
    /// An outbox event.
    Event,
    /// A tenant's catalog.
    Catalog,
    /// A waitlist entry.
    WaitlistEntry,
    /// Another stored record.
    Other,
}

impl fmt::Display for RecordKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RecordKind::Resource => "resource",
            RecordKind::AppointmentType => "appointment type",
            RecordKind::Appointment => "appointment",
            RecordKind::WorkingHours => "working hours",
            RecordKind::TimeOff => "time off",
            RecordKind::Event => "event",
            RecordKind::Catalog => "catalog of tenant",
            RecordKind::WaitlistEntry => "waitlist entry",
            RecordKind::Other => "record",
        })
    }
}

/// An error from the scheduling core.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A time zone name that is not in the IANA database.
    #[error("unknown time zone `{name}`")]
    UnknownZone {
        /// The name as given.
        name: String,
    },
    /// A recurrence rule (or its DTSTART, RDATE, EXDATE lines) that cannot be read.
    #[error("invalid recurrence rule: {detail}")]
    RruleInvalid {
        /// What is wrong, without the caller's other data.
        detail: String,
    },
    /// An expansion would need more work than its bound allows.
    #[error("recurrence expansion exceeds {limit} steps before reaching the window end")]
    RecurrenceTooLarge {
        /// The bound that was hit.
        limit: usize,
    },
    /// An interval whose end is not after its start.
    #[error("{what} ends at or before it starts")]
    EndBeforeStart {
        /// Which interval.
        what: String,
    },
    /// A query window longer than the core accepts.
    #[error("window of {days} days exceeds the maximum of {max_days} days")]
    WindowTooLarge {
        /// Days asked for.
        days: i64,
        /// Days allowed.
        max_days: i64,
    },
    /// A reference to a record that does not exist.
    #[error("{kind} `{id}` not found")]
    NotFound {
        /// The kind of record.
        kind: RecordKind,
        /// Its id.
        id: String,
    },
    /// Two records of one kind with one id.
    #[error("duplicate {kind} id `{id}`")]
    DuplicateId {
        /// The kind of record.
        kind: RecordKind,
        /// The repeated id.
        id: String,
    },
    /// A field whose value is out of range or inconsistent.
    #[error("invalid {field}: {detail}")]
    InvalidInput {
        /// The field, as a path (`appointment_types[2].step_min`).
        field: String,
        /// What is wrong with it.
        detail: String,
    },
    /// The slot cannot be booked: the engine's check or the store's found it
    /// taken or outside what the type allows.
    #[error("slot unavailable{}: {}", resource.as_ref().map(|r| format!(" on resource `{r}`")).unwrap_or_default(), if reasons.is_empty() { "taken".to_owned() } else { reasons.join(", ") })]
    SlotUnavailable {
        /// The resource, when one is to blame.
        resource: Option<String>,
        /// Reason codes (see `docs/error-codes.md`).
        reasons: Vec<String>,
    },
    /// The record changed since the caller read it.
    #[error("{detail}")]
    VersionConflict {
        /// Which record and versions.
        detail: String,
    },
    /// An idempotency key was reused with different parameters.
    #[error("idempotency key reused with different parameters")]
    IdempotencyMismatch,
    /// A status change the FHIR transition table does not allow.
    #[error("cannot change appointment `{appointment}` from `{from}` to `{to}`")]
    InvalidTransition {
        /// The appointment.
        appointment: String,
        /// Current FHIR status code.
        from: &'static str,
        /// Requested FHIR status code.
        to: &'static str,
    },
    /// A hold lapsed before it was confirmed.
    #[error("hold `{appointment}` has expired")]
    HoldExpired {
        /// The held appointment.
        appointment: String,
    },
    /// An outbox event's lease is held by another worker or lapsed.
    #[error("{detail}")]
    LeaseLost {
        /// Which event.
        detail: String,
    },
    /// The store cannot be reached or is overloaded; retrying may succeed.
    #[error("storage unavailable: {detail}")]
    StorageUnavailable {
        /// The store's account, without data.
        detail: String,
    },
    /// A stored value failed its integrity check.
    #[error("integrity check failed: {detail}")]
    Integrity {
        /// Which record.
        detail: String,
    },
    /// A policy document that parses but does not validate.
    #[error("invalid policy at {place}: {detail}")]
    PolicyInvalid {
        /// Where (`roles.nurse.grants[2].action`).
        place: String,
        /// What is wrong.
        detail: String,
    },
    /// The principal may not do this.
    #[error("permission denied: {action} ({reason})")]
    PermissionDenied {
        /// The action's policy name.
        action: &'static str,
        /// The denial reason code.
        reason: &'static str,
    },
    /// An answer larger than the core returns.
    #[error("the answer has more than {limit} {what}; narrow the window or the resources")]
    OutputTooLarge {
        /// What was counted.
        what: &'static str,
        /// The bound.
        limit: usize,
    },
    /// A broken invariant or a caught panic: a defect in medsched, never
    /// the answer to bad input. The message carries no input.
    #[error("internal error: {detail}")]
    Internal {
        /// Which invariant, in medsched's words.
        detail: String,
    },
    /// The store's schema is newer than this build knows.
    #[error("{detail}")]
    SchemaTooNew {
        /// The versions found and known.
        detail: String,
    },
    /// A clinic file or document that cannot be parsed.
    #[error("malformed {format} document: {detail}")]
    Malformed {
        /// `json` or `toml`.
        format: &'static str,
        /// The category, line and column and schema path, never the
        /// parser's own text.
        detail: String,
    },
    /// A document longer than [`crate::document::MAX_DOCUMENT_BYTES`].
    #[error("document exceeds the limit of {limit} bytes")]
    DocumentTooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
}

impl Error {
    /// The stable snake_case code of this error; bindings branch on it.
    pub fn code(&self) -> &'static str {
        match self {
            Error::UnknownZone { .. } => "unknown_zone",
            Error::RruleInvalid { .. } => "rrule_invalid",
            Error::RecurrenceTooLarge { .. } => "recurrence_too_large",
            Error::EndBeforeStart { .. } => "end_before_start",
            Error::WindowTooLarge { .. } => "window_too_large",
            Error::NotFound { .. } => "not_found",
            Error::DuplicateId { .. } => "duplicate_id",
            Error::InvalidInput { .. } => "invalid_input",
            Error::Malformed { .. } => "malformed_document",
            Error::DocumentTooLarge { .. } => "document_too_large",
            Error::SlotUnavailable { .. } => "slot_unavailable",
            Error::VersionConflict { .. } => "version_conflict",
            Error::IdempotencyMismatch => "idempotency_mismatch",
            Error::InvalidTransition { .. } => "invalid_transition",
            Error::HoldExpired { .. } => "hold_expired",
            Error::LeaseLost { .. } => "lease_lost",
            Error::StorageUnavailable { .. } => "storage_unavailable",
            Error::Integrity { .. } => "integrity_error",
            Error::PolicyInvalid { .. } => "policy_invalid",
            Error::PermissionDenied { .. } => "permission_denied",
            Error::OutputTooLarge { .. } => "output_too_large",
            Error::Internal { .. } => "internal_error",
            Error::SchemaTooNew { .. } => "schema_too_new",
        }
    }

    /// Every code this layer can return, for binding completeness tests.
    pub const CODES: &'static [&'static str] = &[
        "unknown_zone",
        "rrule_invalid",
        "recurrence_too_large",
        "end_before_start",
        "window_too_large",
        "not_found",
        "duplicate_id",
        "invalid_input",
        "malformed_document",
        "document_too_large",
        "slot_unavailable",
        "version_conflict",
        "idempotency_mismatch",
        "invalid_transition",
        "hold_expired",
        "lease_lost",
        "storage_unavailable",
        "integrity_error",
        "policy_invalid",
        "permission_denied",
        "output_too_large",
        "internal_error",
        "schema_too_new",
    ];

    /// Whether retrying the same call may succeed.
    pub fn is_temporary(&self) -> bool {
        matches!(self, Error::StorageUnavailable { .. })
    }

    pub(crate) fn unknown_zone(name: &str) -> Self {
        Error::UnknownZone {
            name: truncate(name),
        }
    }

    /// The error of a broken invariant or a caught panic; `what` is
    /// medsched's own text, never input.
    pub fn internal(what: &'static str) -> Self {
        Error::Internal {
            detail: what.to_owned(),
        }
    }

    pub(crate) fn rrule(detail: impl Into<String>) -> Self {
        Error::RruleInvalid {
            detail: detail.into(),
        }
    }

    pub(crate) fn invalid(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Error::InvalidInput {
            field: field.into(),
            detail: detail.into(),
        }
    }

    pub(crate) fn not_found(kind: RecordKind, id: &str) -> Self {
        Error::NotFound {
            kind,
            id: truncate(id),
        }
    }
}

/// Caller input echoed in a message: the id echo, cut to a readable
/// length with control characters escaped ([`crate::document::echo_id`]).
pub(crate) fn truncate(s: &str) -> String {
    crate::document::echo_id(s)
}

impl From<medsched_storage::StorageError> for Error {
    /// Every storage kind has its own arm (the kind enum is exhaustive, so
    /// a new kind does not compile until it is mapped here); the record id
    /// a store names is kept.
    fn from(e: medsched_storage::StorageError) -> Self {
        use medsched_storage::StorageErrorKind as K;
        let kind_of = |what: &str| match what {
            "appointment" | "appointment key" => RecordKind::Appointment,
            "event" => RecordKind::Event,
            "catalog of tenant" => RecordKind::Catalog,
            "waitlist entry" => RecordKind::WaitlistEntry,
            _ => RecordKind::Other,
        };
        let detail = e.to_string();
        match e.kind() {
            K::NotFound => {
                let (what, id) = e.record().unwrap_or(("record", ""));
                Error::NotFound {
                    kind: kind_of(what),
                    id: truncate(id),
                }
            }
            K::Duplicate => match e.record() {
                Some((what, id)) => Error::DuplicateId {
                    kind: kind_of(what),
                    id: truncate(id),
                },
                None => Error::DuplicateId {
                    kind: RecordKind::Other,
                    id: String::new(),
                },
            },
            K::SlotTaken => Error::SlotUnavailable {
                resource: e.resource().map(|r| truncate(&r.0)),
                reasons: vec![],
            },
            K::VersionConflict => Error::VersionConflict { detail },
            K::IdempotencyMismatch => Error::IdempotencyMismatch,
            K::LeaseLost => Error::LeaseLost { detail },
            K::Integrity => Error::Integrity { detail },
            K::Invalid => Error::invalid("store request", detail),
            K::Unavailable => Error::StorageUnavailable { detail },
            K::SchemaTooNew => Error::SchemaTooNew { detail },
            K::Internal => Error::Internal { detail },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_listed_once_and_match_variants() {
        let samples = [
            Error::unknown_zone("Mars/Base"),
            Error::rrule("x"),
            Error::RecurrenceTooLarge { limit: 1 },
            Error::EndBeforeStart {
                what: "window".into(),
            },
            Error::WindowTooLarge {
                days: 2,
                max_days: 1,
            },
            Error::not_found(RecordKind::Resource, "r"),
            Error::DuplicateId {
                kind: RecordKind::Resource,
                id: "r".into(),
            },
            Error::invalid("f", "d"),
            Error::Malformed {
                format: "json",
                detail: "d".into(),
            },
            Error::DocumentTooLarge { limit: 1 },
            Error::SlotUnavailable {
                resource: None,
                reasons: vec![],
            },
            Error::VersionConflict { detail: "d".into() },
            Error::IdempotencyMismatch,
            Error::InvalidTransition {
                appointment: "a".into(),
                from: "booked",
                to: "proposed",
            },
            Error::HoldExpired {
                appointment: "a".into(),
            },
            Error::LeaseLost { detail: "d".into() },
            Error::StorageUnavailable { detail: "d".into() },
            Error::Integrity { detail: "d".into() },
            Error::PolicyInvalid {
                place: "p".into(),
                detail: "d".into(),
            },
            Error::PermissionDenied {
                action: "phi.read",
                reason: "no_grant",
            },
            Error::OutputTooLarge {
                what: "slot entries",
                limit: 1,
            },
            Error::internal("sample"),
            Error::SchemaTooNew { detail: "d".into() },
        ];
        assert!(samples
            .iter()
            .all(|e| e.is_temporary() == (e.code() == "storage_unavailable")));
        let codes: Vec<_> = samples.iter().map(Error::code).collect();
        assert_eq!(codes, Error::CODES);
        let doc = include_str!("../../docs/error-codes.md");
        for code in Error::CODES {
            assert!(
                doc.contains(&format!("`{code}`")),
                "{code} missing from docs/error-codes.md"
            );
        }
    }

    #[test]
    fn every_storage_kind_keeps_its_code_and_record() {
        use medsched_storage::{StorageError, StorageErrorKind as K};
        let kinds = [
            K::NotFound,
            K::SlotTaken,
            K::VersionConflict,
            K::Duplicate,
            K::IdempotencyMismatch,
            K::LeaseLost,
            K::Unavailable,
            K::Integrity,
            K::Invalid,
            K::SchemaTooNew,
            K::Internal,
        ];
        for kind in kinds {
            let s = StorageError::new(kind, "broken");
            let e = Error::from(s.clone());
            assert_eq!(e.code(), s.code(), "{kind:?}");
            assert_eq!(e.is_temporary(), kind == K::Unavailable, "{kind:?}");
        }
        let e = Error::from(StorageError::duplicate("waitlist entry", "w-1"));
        assert_eq!(e.to_string(), "duplicate waitlist entry id `w-1`");
        let e = Error::from(StorageError::duplicate("appointment", "a-1"));
        assert_eq!(e.to_string(), "duplicate appointment id `a-1`");
        let e = Error::from(StorageError::not_found("waitlist entry", "w-2"));
        assert_eq!(e.to_string(), "waitlist entry `w-2` not found");
    }

    #[test]
    fn messages_are_one_lowercase_line() {
        let e = Error::unknown_zone("Mars/Base");
        let m = e.to_string();
        assert_eq!(m, "unknown time zone `Mars/Base`");
        assert!(!m.contains('\n'));
    }
}
