//! Persisted record types. Durations are whole minutes (`*_min`), instants
//! are UTC (any RFC 3339 offset is accepted on input), rules are wall times
//! plus an IANA zone name.

use std::fmt;

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use serde::{Deserialize, Serialize};

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub String);

        impl $name {
            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                Self(s.to_owned())
            }
        }
    };
}

id_type!(
    /// Id of a provider, room or piece of equipment.
    ResourceId
);
id_type!(
    /// Id of an appointment type.
    AppointmentTypeId
);
id_type!(
    /// Id of an appointment.
    AppointmentId
);
id_type!(
    /// Id of a patient (an opaque reference, not PHI by itself).
    PatientId
);
id_type!(
    /// Id of a tenant (a clinic organisation); data never crosses tenants.
    TenantId
);

/// Protected health information: serialized as its value, but `Debug`
/// never shows it, so it cannot leak into logs or error reports.
#[derive(Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Phi<T>(pub T);

impl<T> fmt::Debug for Phi<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<phi redacted>")
    }
}

/// What a resource is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResourceKind {
    /// A clinician.
    #[default]
    Provider,
    /// A room.
    Room,
    /// A piece of equipment.
    Equipment,
}

fn one() -> u32 {
    1
}

/// A provider, room or piece of equipment that appointments need.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resource {
    /// Unique id.
    pub id: ResourceId,
    /// Display name.
    #[serde(default)]
    pub name: String,
    /// Provider, room or equipment.
    #[serde(default)]
    pub kind: ResourceKind,
    /// IANA time zone of the resource's local clock.
    pub zone: String,
    /// How many appointments may overlap (1 for a clinician).
    #[serde(default = "one")]
    pub capacity: u32,
    /// Tags that requirement groups can ask for (`cardiology`, `ecg-room`).
    #[serde(default)]
    pub tags: Vec<String>,
    /// Department, for access scopes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub department: Option<String>,
}

/// What a recurring rule does with a local time that does not exist (the
/// spring-forward gap). Ambiguous times always take the first occurrence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Nonexistent {
    /// Read the time with the offset before the gap: 02:30 becomes 03:30
    /// summer time (RFC 5545 §3.3.5).
    #[default]
    ShiftForward,
    /// Drop the occurrence.
    Skip,
}

/// A recurring block of working hours: starts at DTSTART's wall time on each
/// occurrence date and ends at `end` on the same local day, or on the next
/// day when `end` is not after the start (a night shift; `end` equal to the
/// start is a 24-hour block).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkingHours {
    /// The resource these hours belong to.
    pub resource: ResourceId,
    /// Local wall time of the first block's start (`2027-01-04T08:00:00`).
    pub dtstart: NaiveDateTime,
    /// Local wall time at which each block ends.
    pub end: NaiveTime,
    /// RFC 5545 RRULE value (`FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR`).
    pub rrule: String,
    /// Zone of the wall times; the resource's zone when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
    /// Extra local dates with a block.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rdates: Vec<NaiveDate>,
    /// Local dates without a block.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exdates: Vec<NaiveDate>,
    /// Policy for a block start that does not exist on a DST night.
    #[serde(default)]
    pub nonexistent: Nonexistent,
}

/// A block of local wall time on one date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocalBlock {
    /// Local start.
    pub start: NaiveTime,
    /// Local end; not after `start` means the next day.
    pub end: NaiveTime,
}

/// Replaces the working-hour blocks that start on one local date.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DateOverride {
    /// The resource.
    pub resource: ResourceId,
    /// The local date whose blocks are replaced.
    pub date: NaiveDate,
    /// The blocks of that date; empty means closed.
    #[serde(default)]
    pub blocks: Vec<LocalBlock>,
}

/// Why a resource is away.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimeOffKind {
    /// Vacation.
    Vacation,
    /// Public or clinic holiday.
    Holiday,
    /// A meeting or other blocked time.
    Meeting,
    /// Anything else.
    #[default]
    Other,
}

/// Time during which a resource (or, without one, every resource) is away.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimeOff {
    /// Unique id, named in explanations.
    pub id: String,
    /// The resource, or `None` for the whole clinic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<ResourceId>,
    /// Start instant.
    pub start: DateTime<Utc>,
    /// End instant (exclusive).
    pub end: DateTime<Utc>,
    /// Kind of absence.
    #[serde(default)]
    pub kind: TimeOffKind,
}

/// One requirement group: `count` distinct resources, taken from `resources`
/// and from every resource tagged `tag`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Requirement {
    /// How many resources of the group the appointment needs.
    #[serde(default = "one")]
    pub count: u32,
    /// Resources named by id.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<ResourceId>,
    /// Resources with this tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
}

/// A kind of appointment: how long, with what buffers, on which grid, with
/// which limits and which resources.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppointmentType {
    /// Unique id.
    pub id: AppointmentTypeId,
    /// Display name.
    #[serde(default)]
    pub name: String,
    /// Elapsed duration in minutes.
    pub duration_min: u32,
    /// Buffer before, in minutes.
    #[serde(default)]
    pub buffer_before_min: u32,
    /// Buffer after, in minutes.
    #[serde(default)]
    pub buffer_after_min: u32,
    /// Slot step in minutes; candidates lie on this grid from local midnight.
    pub step_min: u32,
    /// Offset of the grid from local midnight, in minutes.
    #[serde(default)]
    pub align_offset_min: u32,
    /// Minimum notice before the start, in minutes.
    #[serde(default)]
    pub min_notice_min: u32,
    /// How far ahead the start may be, in days.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub horizon_days: Option<u32>,
    /// Most appointments of this type per resource and local day.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_per_day: Option<u32>,
    /// Most appointments of this type per resource and local ISO week.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_per_week: Option<u32>,
    /// Requirement groups; all must be met at once.
    pub requirements: Vec<Requirement>,
    /// Reminders, in minutes before the start (e.g. `[1440, 120]`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reminders_min: Vec<u32>,
}

/// FHIR R4 `Appointment.status` codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AppointmentStatus {
    /// Proposed, not yet requested; holds no time.
    Proposed,
    /// Requested, awaiting confirmation.
    Pending,
    /// Booked.
    #[default]
    Booked,
    /// The patient has arrived.
    Arrived,
    /// Done.
    Fulfilled,
    /// Cancelled; releases its time.
    Cancelled,
    /// The patient did not come.
    Noshow,
    /// Recorded by mistake; releases its time.
    EnteredInError,
    /// The patient has checked in.
    CheckedIn,
    /// On the waitlist; holds no time.
    Waitlist,
}

impl AppointmentStatus {
    /// Whether an appointment in this status holds its time.
    pub fn holds_time(self) -> bool {
        !matches!(
            self,
            AppointmentStatus::Proposed
                | AppointmentStatus::Waitlist
                | AppointmentStatus::Cancelled
                | AppointmentStatus::EnteredInError
        )
    }

    /// The FHIR code.
    pub fn code(self) -> &'static str {
        match self {
            AppointmentStatus::Proposed => "proposed",
            AppointmentStatus::Pending => "pending",
            AppointmentStatus::Booked => "booked",
            AppointmentStatus::Arrived => "arrived",
            AppointmentStatus::Fulfilled => "fulfilled",
            AppointmentStatus::Cancelled => "cancelled",
            AppointmentStatus::Noshow => "noshow",
            AppointmentStatus::EnteredInError => "entered-in-error",
            AppointmentStatus::CheckedIn => "checked-in",
            AppointmentStatus::Waitlist => "waitlist",
        }
    }
}

/// An appointment. The buffers are recorded when it is booked, so a later
/// change to its type does not move other bookings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Appointment {
    /// Unique id.
    pub id: AppointmentId,
    /// The appointment type, if any.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_id: Option<AppointmentTypeId>,
    /// The patient, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patient: Option<PatientId>,
    /// The resources it takes.
    pub resources: Vec<ResourceId>,
    /// Start instant; `None` for a proposal or a waitlist entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<DateTime<Utc>>,
    /// End instant (exclusive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<DateTime<Utc>>,
    /// FHIR status.
    #[serde(default)]
    pub status: AppointmentStatus,
    /// Buffer before, in minutes, as recorded at booking.
    #[serde(default)]
    pub buffer_before_min: u32,
    /// Buffer after, in minutes, as recorded at booking.
    #[serde(default)]
    pub buffer_after_min: u32,
    /// Reason for visit (PHI).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<Phi<String>>,
    /// Clinical notes (PHI).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<Phi<String>>,
}

/// How a patient's overlapping appointments are treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// The booking is refused.
    #[default]
    Block,
    /// The booking goes ahead with a warning.
    Warn,
}

/// Clinic-wide settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// What a patient's overlapping appointments do.
    #[serde(default)]
    pub patient_overlap: Severity,
}

/// A whole clinic, as loaded from one file.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Clinic {
    /// Clinic-wide settings.
    #[serde(default)]
    pub settings: Settings,
    /// Providers, rooms, equipment.
    #[serde(default)]
    pub resources: Vec<Resource>,
    /// Recurring working hours.
    #[serde(default)]
    pub working_hours: Vec<WorkingHours>,
    /// Date overrides.
    #[serde(default)]
    pub overrides: Vec<DateOverride>,
    /// Time off.
    #[serde(default)]
    pub time_off: Vec<TimeOff>,
    /// Appointment types.
    #[serde(default)]
    pub appointment_types: Vec<AppointmentType>,
    /// Existing appointments.
    #[serde(default)]
    pub appointments: Vec<Appointment>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phi_never_shows_in_debug() {
        let a = Appointment {
            id: "a1".into(),
            type_id: None,
            patient: None,
            resources: vec![],
            start: None,
            end: None,
            status: AppointmentStatus::Booked,
            buffer_before_min: 0,
            buffer_after_min: 0,
            reason: Some(Phi("chest pain SENTINEL".into())),
            notes: Some(Phi("SENTINEL notes".into())),
        };
        let dbg = format!("{a:?} {a:#?}");
        assert!(!dbg.contains("SENTINEL"), "{dbg}");
        // Stores need the value: serialization keeps it, only Debug hides it.
        let json = serde_json::to_string(&a).unwrap();
        assert!(json.contains("chest pain SENTINEL"));
        let back: Appointment = serde_json::from_str(&json).unwrap();
        assert_eq!(back, a);
    }

    #[test]
    fn status_codes_are_fhir() {
        for s in [
            AppointmentStatus::EnteredInError,
            AppointmentStatus::CheckedIn,
            AppointmentStatus::Noshow,
        ] {
            assert!(["entered-in-error", "checked-in", "noshow"].contains(&s.code()));
        }
        assert!(!AppointmentStatus::Cancelled.holds_time());
        assert!(AppointmentStatus::Arrived.holds_time());
    }
}
