//! The FHIR R4 `Appointment.status` transition table.
//!
//! | from | may become |
//! |---|---|
//! | proposed | pending, booked, waitlist, cancelled, entered-in-error |
//! | pending | booked, cancelled, entered-in-error |
//! | waitlist | proposed, pending, booked, cancelled, entered-in-error |
//! | booked | checked-in, arrived, fulfilled, noshow, cancelled, entered-in-error |
//! | checked-in | arrived, fulfilled, noshow, cancelled, entered-in-error |
//! | arrived | fulfilled, entered-in-error |
//! | fulfilled, cancelled, noshow | entered-in-error |
//! | entered-in-error | (nothing) |
//!
//! A change into a status that holds time from one that does not (a
//! proposal or waitlist entry becoming pending or booked) is a booking: the
//! slot is checked and claimed like a new one.

use medsched_storage::AppointmentStatus as S;

/// Whether `from → to` is allowed.
pub fn allowed(from: S, to: S) -> bool {
    use S::*;
    match from {
        Proposed => matches!(to, Pending | Booked | Waitlist | Cancelled | EnteredInError),
        Pending => matches!(to, Booked | Cancelled | EnteredInError),
        Waitlist => matches!(to, Proposed | Pending | Booked | Cancelled | EnteredInError),
        Booked => matches!(
            to,
            CheckedIn | Arrived | Fulfilled | Noshow | Cancelled | EnteredInError
        ),
        CheckedIn => matches!(
            to,
            Arrived | Fulfilled | Noshow | Cancelled | EnteredInError
        ),
        Arrived => matches!(to, Fulfilled | EnteredInError),
        Fulfilled | Cancelled | Noshow => matches!(to, EnteredInError),
        EnteredInError => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [S; 10] = [
        S::Proposed,
        S::Pending,
        S::Booked,
        S::Arrived,
        S::Fulfilled,
        S::Cancelled,
        S::Noshow,
        S::EnteredInError,
        S::CheckedIn,
        S::Waitlist,
    ];

    #[test]
    fn table_is_as_documented() {
        let allowed_pairs: Vec<(&str, &str)> = ALL
            .iter()
            .flat_map(|f| {
                ALL.iter()
                    .filter(|t| allowed(*f, **t))
                    .map(move |t| (f.code(), t.code()))
            })
            .collect();
        assert_eq!(allowed_pairs.len(), 29);
        assert!(allowed(S::Booked, S::Cancelled));
        assert!(!allowed(S::Cancelled, S::Booked));
        assert!(!allowed(S::Fulfilled, S::Booked));
        assert!(ALL.iter().all(|s| !allowed(S::EnteredInError, *s)));
        assert!(ALL.iter().all(|s| !allowed(*s, *s)), "no self transitions");
        // Everything but entered-in-error itself can be marked entered-in-error.
        assert!(ALL
            .iter()
            .filter(|s| **s != S::EnteredInError)
            .all(|s| allowed(*s, S::EnteredInError)));
    }
}
