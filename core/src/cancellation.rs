//! Why an appointment was cancelled: a code from a closed list
//! (`docs/error-codes.md`, "Cancellation reason codes"). The code travels
//! in the `cancelled` outbox event; free text never does. A note beside it
//! is PHI and is kept with the appointment's notes (ADR 0011).

use serde::{Deserialize, Serialize};

use crate::error::Error;

/// The reason code of a cancellation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum CancelReason {
    /// The patient asked for it.
    PatientRequest,
    /// The provider (or another resource) is not available.
    ProviderUnavailable,
    /// The clinic is closed (weather, holiday, outage).
    ClinicClosed,
    /// The clinic's no-show policy cancelled it.
    NoShowPolicy,
    /// It duplicates another appointment.
    Duplicate,
    /// It was booked by mistake.
    EnteredInError,
    /// It was cancelled through a plain status change, without a reason.
    StatusChange,
    /// Any other reason (say more in the note, which is PHI).
    Other,
}

impl CancelReason {
    /// Every reason, in documentation order.
    pub const ALL: [CancelReason; 8] = [
        CancelReason::PatientRequest,
        CancelReason::ProviderUnavailable,
        CancelReason::ClinicClosed,
        CancelReason::NoShowPolicy,
        CancelReason::Duplicate,
        CancelReason::EnteredInError,
        CancelReason::StatusChange,
        CancelReason::Other,
    ];

    /// The stable snake_case code (as serialized, and in events).
    pub fn code(self) -> &'static str {
        match self {
            CancelReason::PatientRequest => "patient_request",
            CancelReason::ProviderUnavailable => "provider_unavailable",
            CancelReason::ClinicClosed => "clinic_closed",
            CancelReason::NoShowPolicy => "no_show_policy",
            CancelReason::Duplicate => "duplicate",
            CancelReason::EnteredInError => "entered_in_error",
            CancelReason::StatusChange => "status_change",
            CancelReason::Other => "other",
        }
    }

    /// The reason of a code, for bindings that receive it as text.
    ///
    /// ```
    /// use medsched_core::CancelReason;
    /// assert_eq!(CancelReason::from_code("duplicate").unwrap(), CancelReason::Duplicate);
    /// let e = CancelReason::from_code("he moved away").unwrap_err();
    /// assert_eq!(e.code(), "invalid_input");
    /// assert!(!e.to_string().contains("moved"));
    /// ```
    ///
    /// # Errors
    ///
    /// `invalid_input` naming the allowed codes; the text given is not
    /// echoed (a caller may have passed free text, which may be PHI).
    pub fn from_code(code: &str) -> Result<Self, Error> {
        Self::ALL
            .into_iter()
            .find(|r| r.code() == code)
            .ok_or_else(|| {
                let allowed: Vec<String> = Self::ALL
                    .iter()
                    .map(|r| format!("`{}`", r.code()))
                    .collect();
                Error::invalid(
                    "cancellation reason code",
                    format!("must be one of {}", allowed.join(", ")),
                )
            })
    }
}

impl std::fmt::Display for CancelReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code())
    }
}

/// The appointment's notes with a cancellation note added on a line of
/// its own; unchanged when the note is absent or blank.
pub(crate) fn with_note(notes: Option<&str>, note: Option<&str>) -> Option<String> {
    let note = note.map(str::trim).filter(|n| !n.is_empty());
    match (notes, note) {
        (old, None) => old.map(str::to_owned),
        (None | Some(""), Some(n)) => Some(format!("cancellation note: {n}")),
        (Some(old), Some(n)) => Some(format!("{old}\ncancellation note: {n}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_are_documented() {
        let doc = include_str!("../../docs/error-codes.md");
        for r in CancelReason::ALL {
            assert_eq!(CancelReason::from_code(r.code()).unwrap(), r);
            assert_eq!(
                serde_json::to_value(r).unwrap(),
                serde_json::Value::from(r.code())
            );
            assert!(
                doc.contains(&format!("| `{}` |", r.code())),
                "{r} undocumented"
            );
        }
        let e = CancelReason::from_code("Patient_Request").unwrap_err();
        assert!(e.to_string().contains("`patient_request`"), "{e}");
    }

    #[test]
    fn notes_are_appended() {
        assert_eq!(with_note(None, None), None);
        assert_eq!(with_note(Some("a"), Some("  ")), Some("a".into()));
        assert_eq!(
            with_note(None, Some("n")),
            Some("cancellation note: n".into())
        );
        assert_eq!(
            with_note(Some("a"), Some("n")),
            Some("a\ncancellation note: n".into())
        );
    }
}
