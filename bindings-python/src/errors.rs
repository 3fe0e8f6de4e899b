//! The one mapping from a core error to a Python exception. The classes are
//! defined in `medsched/_errors.py` (plain Python classes, so they pickle
//! across Celery workers); this module picks one by the error's code.

use medsched_core::error::RecordKind;
use medsched_core::Error;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

/// The `medsched` exception class that carries errors of `code`; `None`
/// for a code this binding does not know (a test fails on any).
fn class_for(code: &str) -> Option<&'static str> {
    Some(match code {
        "invalid_input"
        | "unknown_zone"
        | "rrule_invalid"
        | "end_before_start"
        | "window_too_large"
        | "malformed_document"
        | "document_too_large"
        | "policy_invalid"
        | "recurrence_too_large"
        | "output_too_large" => "InvalidInputError",
        "not_found" => "NotFoundError",
        "permission_denied" => "PermissionDeniedError",
        "slot_unavailable" => "SlotUnavailableError",
        "version_conflict"
        | "idempotency_mismatch"
        | "invalid_transition"
        | "hold_expired"
        | "duplicate_id"
        | "lease_lost" => "ConflictError",
        "storage_unavailable" => "StorageUnavailableError",
        "integrity_error" => "IntegrityError",
        "schema_too_new" => "SchemaTooNewError",
        "internal_error" => "InternalError",
        _ => return None,
    })
}

/// A core error as the `medsched` exception of its code's family, with
/// the core's message (which never carries PHI) and `.code`.
pub(crate) fn to_py(py: Python<'_>, e: &Error) -> PyErr {
    let code = e.code();
    let name = class_for(code).unwrap_or("Error");
    let made = py
        .import("medsched._errors")
        .and_then(|m| m.getattr(name))
        .and_then(|class| class.call1((e.to_string(), code)));
    match made {
        Ok(instance) => PyErr::from_value(instance),
        Err(err) => err,
    }
}

/// The core error of a panic caught at the binding edge (no input in it).
pub(crate) fn caught_panic() -> Error {
    Error::internal("a panic was caught at the python binding")
}

/// Runs an entry point's body; a panic becomes `InternalError`.
pub(crate) fn guard<T>(py: Python<'_>, f: impl FnOnce() -> PyResult<T>) -> PyResult<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
        .unwrap_or_else(|_| Err(to_py(py, &caught_panic())))
}

/// The invalid-input error the binding raises for arguments the core never
/// sees (a naive datetime).
pub(crate) fn invalid(py: Python<'_>, field: &str, detail: &str) -> PyErr {
    to_py(
        py,
        &Error::InvalidInput {
            field: field.to_owned(),
            detail: detail.to_owned(),
        },
    )
}

/// The name of the `medsched` exception class for an error code, or `None`.
#[pyfunction]
#[pyo3(name = "_error_class_name")]
pub(crate) fn error_class_name(code: &str) -> Option<&'static str> {
    class_for(code)
}

/// Raises a sample core error of `code` through the real mapping, so the
/// tests can reach every family (a store outage cannot be provoked from
/// Python). Testing aid; not part of the API.
#[pyfunction]
#[pyo3(name = "_raise_sample_error")]
pub(crate) fn raise_sample_error(py: Python<'_>, code: &str) -> PyResult<()> {
    let e = match code {
        "unknown_zone" => Error::UnknownZone {
            name: "Mars/Base".into(),
        },
        "rrule_invalid" => Error::RruleInvalid {
            detail: "sample".into(),
        },
        "recurrence_too_large" => Error::RecurrenceTooLarge { limit: 1 },
        "end_before_start" => Error::EndBeforeStart {
            what: "window".into(),
        },
        "window_too_large" => Error::WindowTooLarge {
            days: 2,
            max_days: 1,
        },
        "not_found" => Error::NotFound {
            kind: RecordKind::Appointment,
            id: "sample".into(),
        },
        "duplicate_id" => Error::DuplicateId {
            kind: RecordKind::Appointment,
            id: "sample".into(),
        },
        "invalid_input" => Error::InvalidInput {
            field: "sample".into(),
            detail: "sample".into(),
        },
        "malformed_document" => Error::Malformed {
            format: "json",
            detail: "sample".into(),
        },
        "document_too_large" => Error::DocumentTooLarge { limit: 1 },
        "slot_unavailable" => Error::SlotUnavailable {
            resource: None,
            reasons: vec![],
        },
        "version_conflict" => Error::VersionConflict {
            detail: "sample".into(),
        },
        "idempotency_mismatch" => Error::IdempotencyMismatch,
        "invalid_transition" => Error::InvalidTransition {
            appointment: "sample".into(),
            from: "cancelled",
            to: "booked",
        },
        "hold_expired" => Error::HoldExpired {
            appointment: "sample".into(),
        },
        "lease_lost" => Error::LeaseLost {
            detail: "sample".into(),
        },
        "storage_unavailable" => Error::StorageUnavailable {
            detail: "sample".into(),
        },
        "integrity_error" => Error::Integrity {
            detail: "sample".into(),
        },
        "policy_invalid" => Error::PolicyInvalid {
            place: "sample".into(),
            detail: "sample".into(),
        },
        "permission_denied" => Error::PermissionDenied {
            action: "slots.read",
            reason: "sample",
        },
        "internal_error" => Error::internal("sample"),
        "output_too_large" => Error::OutputTooLarge {
            what: "slot entries",
            limit: 1,
        },
        "schema_too_new" => Error::SchemaTooNew {
            detail: "sample".into(),
        },
        other => {
            return Err(PyValueError::new_err(format!(
                "no sample error for code `{other}`"
            )))
        }
    };
    Err(to_py(py, &e))
}
