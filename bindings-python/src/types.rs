//! The value classes the module returns and takes. They own their data (no
//! reference into the engine), so they outlive it freely. PHI (reason,
//! notes) is never part of a `repr` or of `Debug`.

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use medsched_core::engine::{Booking as CoreBooking, SeriesBooking as CoreSeriesBooking};
use medsched_core::explain::{Explanation as CoreExplanation, OccurrenceReport as CoreReport};
use medsched_core::policy;
use medsched_core::records::{AuditRecord as CoreAudit, OutboxEvent, Phi, StoredAppointment};
use medsched_core::Reason as CoreReason;
use pyo3::prelude::*;

use crate::convert::{instant, instant_opt};

fn iso(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, false)
}

fn iso_opt(t: Option<&DateTime<Utc>>) -> String {
    t.map_or_else(|| "None".to_owned(), iso)
}

/// A string as Python writes its repr (single quotes).
fn text(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

fn text_opt(s: Option<&String>) -> String {
    s.map_or_else(|| "None".to_owned(), |s| text(s))
}

fn texts(v: &[String]) -> String {
    let items: Vec<String> = v.iter().map(|s| text(s)).collect();
    format!("[{}]", items.join(", "))
}

/// A guardian's authority over a ward (a patient id), valid in
/// `[valid_from, until)`; open-ended where `None`.
#[pyclass(frozen, eq, from_py_object, module = "medsched._medsched")]
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Guardianship {
    #[pyo3(get)]
    patient: String,
    #[pyo3(get)]
    valid_from: Option<DateTime<Utc>>,
    #[pyo3(get)]
    until: Option<DateTime<Utc>>,
}

#[pymethods]
impl Guardianship {
    #[new]
    #[pyo3(signature = (patient, valid_from = None, until = None))]
    fn new(
        patient: String,
        valid_from: Option<&Bound<'_, PyAny>>,
        until: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        Ok(Self {
            patient,
            valid_from: instant_opt("valid_from", valid_from)?,
            until: instant_opt("until", until)?,
        })
    }

    fn __repr__(&self) -> String {
        format!(
            "Guardianship(valid_from={}, until={})",
            iso_opt(self.valid_from.as_ref()),
            iso_opt(self.until.as_ref())
        )
    }
}

/// A break-glass elevation granted by `Engine.break_glass`: emergency
/// access to one patient until `expires_at`.
#[pyclass(frozen, eq, from_py_object, module = "medsched._medsched")]
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Elevation {
    #[pyo3(get)]
    patient: String,
    #[pyo3(get)]
    reason: String,
    #[pyo3(get)]
    granted_at: DateTime<Utc>,
    #[pyo3(get)]
    expires_at: DateTime<Utc>,
}

impl std::fmt::Debug for Elevation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The stated reason is free text: never shown.
        f.debug_struct("Elevation")
            .field("patient", &self.patient)
            .field("granted_at", &self.granted_at)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

impl From<policy::Elevation> for Elevation {
    fn from(e: policy::Elevation) -> Self {
        Self {
            patient: e.patient,
            reason: e.reason,
            granted_at: e.granted_at,
            expires_at: e.expires_at,
        }
    }
}

#[pymethods]
impl Elevation {
    /// Rebuilds an elevation the host stored (e.g. in its session); only
    /// `Engine.break_glass` grants new ones.
    #[new]
    fn new(
        patient: String,
        reason: String,
        granted_at: &Bound<'_, PyAny>,
        expires_at: &Bound<'_, PyAny>,
    ) -> PyResult<Self> {
        Ok(Self {
            patient,
            reason,
            granted_at: instant("granted_at", granted_at)?,
            expires_at: instant("expires_at", expires_at)?,
        })
    }

    fn __repr__(&self) -> String {
        format!(
            "Elevation(granted_at={}, expires_at={})",
            iso(&self.granted_at),
            iso(&self.expires_at)
        )
    }
}

/// Who is asking: a user in a tenant with roles from the policy.
#[pyclass(frozen, eq, module = "medsched._medsched")]
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Principal {
    #[pyo3(get)]
    user: String,
    #[pyo3(get)]
    tenant: String,
    #[pyo3(get)]
    roles: Vec<String>,
    #[pyo3(get)]
    patient: Option<String>,
    #[pyo3(get)]
    resources: Vec<String>,
    #[pyo3(get)]
    departments: Vec<String>,
    #[pyo3(get)]
    guardianships: Vec<Guardianship>,
    #[pyo3(get)]
    elevations: Vec<Elevation>,
}

#[pymethods]
impl Principal {
    #[new]
    #[pyo3(signature = (user, tenant, roles = Vec::new(), patient = None, resources = Vec::new(), departments = Vec::new(), guardianships = Vec::new(), elevations = Vec::new()))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        user: String,
        tenant: String,
        roles: Vec<String>,
        patient: Option<String>,
        resources: Vec<String>,
        departments: Vec<String>,
        guardianships: Vec<Guardianship>,
        elevations: Vec<Elevation>,
    ) -> Self {
        Self {
            user,
            tenant,
            roles,
            patient,
            resources,
            departments,
            guardianships,
            elevations,
        }
    }

    /// A copy of this principal that also carries `elevation`.
    fn with_elevation(&self, elevation: Elevation) -> Self {
        let mut next = self.clone();
        next.elevations.push(elevation);
        next
    }

    fn __repr__(&self) -> String {
        format!(
            "Principal(user={}, tenant={}, roles={})",
            text(&self.user),
            text(&self.tenant),
            texts(&self.roles)
        )
    }
}

impl Principal {
    /// The core's principal.
    pub(crate) fn to_core(&self) -> policy::Principal {
        policy::Principal {
            user: self.user.clone(),
            tenant: self.tenant.clone(),
            roles: self.roles.clone(),
            patient: self.patient.clone(),
            resources: self.resources.clone(),
            departments: self.departments.clone(),
            guardianships: self
                .guardianships
                .iter()
                .map(|g| policy::Guardianship {
                    patient: g.patient.clone(),
                    from: g.valid_from,
                    until: g.until,
                })
                .collect(),
            elevations: self
                .elevations
                .iter()
                .map(|e| policy::Elevation {
                    patient: e.patient.clone(),
                    reason: e.reason.clone(),
                    granted_at: e.granted_at,
                    expires_at: e.expires_at,
                })
                .collect(),
        }
    }
}

/// One resource able to take part in a booking at one start.
#[pyclass(frozen, eq, hash, module = "medsched._medsched")]
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Slot {
    #[pyo3(get)]
    resource: String,
    #[pyo3(get)]
    start: DateTime<Utc>,
    #[pyo3(get)]
    end: DateTime<Utc>,
}

impl Slot {
    pub(crate) fn new(resource: String, start: DateTime<Utc>, end: DateTime<Utc>) -> Self {
        Self {
            resource,
            start,
            end,
        }
    }
}

#[pymethods]
impl Slot {
    fn __repr__(&self) -> String {
        format!(
            "Slot(resource={}, start={}, end={})",
            text(&self.resource),
            iso(&self.start),
            iso(&self.end)
        )
    }
}

/// An appointment as the engine returns it to this principal: `reason` and
/// `notes` are `None` when the principal may not read PHI.
#[pyclass(frozen, eq, module = "medsched._medsched")]
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Appointment {
    #[pyo3(get)]
    id: String,
    #[pyo3(get)]
    version: u64,
    #[pyo3(get)]
    status: &'static str,
    #[pyo3(get)]
    type_id: Option<String>,
    #[pyo3(get)]
    start: Option<DateTime<Utc>>,
    #[pyo3(get)]
    end: Option<DateTime<Utc>>,
    #[pyo3(get)]
    resources: Vec<String>,
    #[pyo3(get)]
    patient: Option<String>,
    #[pyo3(get)]
    hold_expires_at: Option<DateTime<Utc>>,
    reason: Option<Phi<String>>,
    notes: Option<Phi<String>>,
}

impl From<&StoredAppointment> for Appointment {
    fn from(s: &StoredAppointment) -> Self {
        let a = &s.appointment;
        Self {
            id: a.id.0.clone(),
            version: s.version,
            status: a.status.code(),
            type_id: a.type_id.as_ref().map(|t| t.0.clone()),
            start: a.start,
            end: a.end,
            resources: a.resources.iter().map(|r| r.0.clone()).collect(),
            patient: a.patient.as_ref().map(|p| p.0.clone()),
            hold_expires_at: s.hold_expires_at,
            reason: a.reason.clone(),
            notes: a.notes.clone(),
        }
    }
}

#[pymethods]
impl Appointment {
    /// Reason for visit (PHI); `None` when redacted or absent.
    #[getter]
    fn reason(&self) -> Option<String> {
        self.reason.as_ref().map(|p| p.0.clone())
    }

    /// Clinical notes (PHI); `None` when redacted or absent.
    #[getter]
    fn notes(&self) -> Option<String> {
        self.notes.as_ref().map(|p| p.0.clone())
    }

    fn __repr__(&self) -> String {
        format!(
            "Appointment(id={}, status={}, start={}, end={}, resources={}, version={})",
            text(&self.id),
            text(self.status),
            iso_opt(self.start.as_ref()),
            iso_opt(self.end.as_ref()),
            texts(&self.resources),
            self.version
        )
    }
}

/// An outbox event claimed by a worker: ids and instants, never PHI.
#[pyclass(frozen, module = "medsched._medsched")]
#[derive(Debug, Clone)]
pub(crate) struct Event {
    #[pyo3(get)]
    id: u64,
    #[pyo3(get)]
    tenant: String,
    #[pyo3(get)]
    kind: String,
    #[pyo3(get)]
    due_at: DateTime<Utc>,
    #[pyo3(get)]
    attempts: u32,
    #[pyo3(get)]
    appointment: Option<String>,
    #[pyo3(get)]
    patient: Option<String>,
    #[pyo3(get)]
    start: Option<DateTime<Utc>>,
    #[pyo3(get)]
    offset: Option<Duration>,
    #[pyo3(get)]
    waitlist_entry: Option<String>,
    #[pyo3(get)]
    status: Option<String>,
    #[pyo3(get)]
    actor: Option<String>,
    #[pyo3(get)]
    reason_code: Option<String>,
}

impl From<&OutboxEvent> for Event {
    fn from(e: &OutboxEvent) -> Self {
        let kind = e.kind.code().to_owned();
        let d = &e.data;
        Self {
            id: e.id,
            tenant: e.tenant.0.clone(),
            kind,
            due_at: e.due_at,
            attempts: e.attempts,
            appointment: d.appointment.as_ref().map(|a| a.0.clone()),
            patient: d.patient.as_ref().map(|p| p.0.clone()),
            start: d.start,
            offset: d.offset_min.map(|m| Duration::minutes(i64::from(m))),
            waitlist_entry: d.waitlist_entry.clone(),
            status: d.status.clone(),
            actor: d.actor.clone(),
            reason_code: d.reason_code.clone(),
        }
    }
}

#[pymethods]
impl Event {
    fn __repr__(&self) -> String {
        format!(
            "Event(id={}, kind={}, due_at={}, appointment={}, attempts={})",
            self.id,
            text(&self.kind),
            iso(&self.due_at),
            text_opt(self.appointment.as_ref()),
            self.attempts
        )
    }
}

fn codes(reasons: &[CoreReason]) -> Vec<String> {
    reasons.iter().map(|r| r.code().to_owned()).collect()
}

/// The outcome of `Engine.book` or `Engine.hold`.
#[pyclass(frozen, module = "medsched._medsched")]
#[derive(Debug, Clone)]
pub(crate) struct Booking {
    #[pyo3(get)]
    appointment: Appointment,
    #[pyo3(get)]
    replayed: bool,
    #[pyo3(get)]
    warnings: Vec<String>,
}

impl From<&CoreBooking> for Booking {
    fn from(b: &CoreBooking) -> Self {
        Self {
            appointment: Appointment::from(&*b.appointment),
            replayed: b.replayed,
            warnings: codes(&b.warnings),
        }
    }
}

#[pymethods]
impl Booking {
    fn __repr__(&self) -> String {
        format!(
            "Booking(appointment={}, replayed={}, warnings={})",
            self.appointment.__repr__(),
            if self.replayed { "True" } else { "False" },
            texts(&self.warnings)
        )
    }
}

/// Why a start is not bookable: a stable `code` and a one-line account.
#[pyclass(frozen, eq, hash, module = "medsched._medsched")]
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Reason {
    #[pyo3(get)]
    code: &'static str,
    #[pyo3(get)]
    description: String,
}

impl From<&CoreReason> for Reason {
    fn from(r: &CoreReason) -> Self {
        Self {
            code: r.code(),
            description: r.describe(),
        }
    }
}

#[pymethods]
impl Reason {
    fn __repr__(&self) -> String {
        format!("Reason(code={})", text(self.code))
    }
}

/// Whether one resource can take one start, and if not, why.
#[pyclass(frozen, module = "medsched._medsched")]
#[derive(Debug, Clone)]
pub(crate) struct Explanation {
    #[pyo3(get)]
    resource: String,
    #[pyo3(get)]
    start: DateTime<Utc>,
    #[pyo3(get)]
    end: DateTime<Utc>,
    #[pyo3(get)]
    bookable: bool,
    #[pyo3(get)]
    reasons: Vec<Reason>,
    #[pyo3(get)]
    warnings: Vec<Reason>,
}

impl From<&CoreExplanation> for Explanation {
    fn from(e: &CoreExplanation) -> Self {
        Self {
            resource: e.resource.clone(),
            start: e.start,
            end: e.end,
            bookable: e.bookable,
            reasons: e.reasons.iter().map(Reason::from).collect(),
            warnings: e.warnings.iter().map(Reason::from).collect(),
        }
    }
}

#[pymethods]
impl Explanation {
    fn __repr__(&self) -> String {
        let reasons: Vec<String> = self.reasons.iter().map(|r| text(r.code)).collect();
        format!(
            "Explanation(resource={}, start={}, bookable={}, reasons=[{}])",
            text(&self.resource),
            iso(&self.start),
            if self.bookable { "True" } else { "False" },
            reasons.join(", ")
        )
    }
}

/// The conflict check of one start.
#[pyclass(frozen, module = "medsched._medsched")]
#[derive(Debug, Clone)]
pub(crate) struct OccurrenceReport {
    #[pyo3(get)]
    start: DateTime<Utc>,
    #[pyo3(get)]
    end: DateTime<Utc>,
    #[pyo3(get)]
    bookable: bool,
    #[pyo3(get)]
    assigned: Vec<String>,
    #[pyo3(get)]
    conflicts: Vec<(Option<String>, Vec<String>)>,
    #[pyo3(get)]
    warnings: Vec<String>,
    #[pyo3(get)]
    patient_conflicts: Vec<String>,
}

impl From<&CoreReport> for OccurrenceReport {
    fn from(r: &CoreReport) -> Self {
        Self {
            start: r.start,
            end: r.end,
            bookable: r.bookable,
            assigned: r.assigned.clone(),
            conflicts: r
                .conflicts
                .iter()
                .map(|c| (c.resource.clone(), codes(&c.reasons)))
                .collect(),
            warnings: codes(&r.warnings),
            patient_conflicts: codes(&r.patient_conflicts),
        }
    }
}

#[pymethods]
impl OccurrenceReport {
    fn __repr__(&self) -> String {
        format!(
            "OccurrenceReport(start={}, end={}, bookable={}, assigned={})",
            iso(&self.start),
            iso(&self.end),
            if self.bookable { "True" } else { "False" },
            texts(&self.assigned)
        )
    }
}

/// The outcome of `Engine.book_series`.
#[pyclass(frozen, module = "medsched._medsched")]
#[derive(Debug, Clone)]
pub(crate) struct SeriesBooking {
    #[pyo3(get)]
    booked: Vec<Appointment>,
    #[pyo3(get)]
    occurrences: Vec<OccurrenceReport>,
    #[pyo3(get)]
    truncated: bool,
}

impl From<&CoreSeriesBooking> for SeriesBooking {
    fn from(s: &CoreSeriesBooking) -> Self {
        Self {
            booked: s.booked.iter().map(|a| Appointment::from(&**a)).collect(),
            occurrences: s
                .report
                .occurrences
                .iter()
                .map(OccurrenceReport::from)
                .collect(),
            truncated: s.report.truncated,
        }
    }
}

#[pymethods]
impl SeriesBooking {
    fn __repr__(&self) -> String {
        format!(
            "SeriesBooking(booked={}, occurrences={}, truncated={})",
            self.booked.len(),
            self.occurrences.len(),
            if self.truncated { "True" } else { "False" }
        )
    }
}

/// One record of the tenant's tamper-evident audit trail.
#[pyclass(frozen, module = "medsched._medsched")]
#[derive(Debug, Clone)]
pub(crate) struct AuditRecord {
    #[pyo3(get)]
    seq: u64,
    #[pyo3(get)]
    at: DateTime<Utc>,
    #[pyo3(get)]
    actor: String,
    #[pyo3(get)]
    action: String,
    #[pyo3(get)]
    record: String,
    #[pyo3(get)]
    decision: String,
    #[pyo3(get)]
    reason_code: String,
    #[pyo3(get)]
    policy_version: String,
    #[pyo3(get)]
    break_glass: bool,
}

impl From<&CoreAudit> for AuditRecord {
    fn from(r: &CoreAudit) -> Self {
        let e = &r.entry;
        Self {
            seq: r.seq,
            at: e.at,
            actor: e.actor.clone(),
            action: e.action.clone(),
            record: e.record.clone(),
            decision: e.decision.clone(),
            reason_code: e.reason_code.clone(),
            policy_version: e.policy_version.clone(),
            break_glass: e.break_glass,
        }
    }
}

#[pymethods]
impl AuditRecord {
    fn __repr__(&self) -> String {
        format!(
            "AuditRecord(seq={}, at={}, action={}, decision={}, break_glass={})",
            self.seq,
            iso(&self.at),
            text(&self.action),
            text(&self.decision),
            if self.break_glass { "True" } else { "False" }
        )
    }
}
