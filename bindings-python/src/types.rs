//! The value classes the module returns and takes. They own their data (no
//! reference into the engine), so they outlive it freely. PHI (reason,
//! notes) is never part of a `repr` or of `Debug`.

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use medsched_core::policy;
use medsched_core::records::{OutboxEvent, Phi, StoredAppointment};
use pyo3::prelude::*;

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
}

#[pymethods]
impl Principal {
    #[new]
    #[pyo3(signature = (user, tenant, roles = Vec::new(), patient = None, resources = Vec::new(), departments = Vec::new()))]
    fn new(
        user: String,
        tenant: String,
        roles: Vec<String>,
        patient: Option<String>,
        resources: Vec<String>,
        departments: Vec<String>,
    ) -> Self {
        Self {
            user,
            tenant,
            roles,
            patient,
            resources,
            departments,
        }
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
            ..policy::Principal::default()
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
