//! `Engine`: the core engine over the in-memory store. Each method converts
//! its arguments, runs the core with the GIL released, and converts the
//! result; errors go through [`errors::to_py`].

use std::cell::Cell;
use std::io::Read;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use medsched_core::document;
use medsched_core::error::Error as CoreError;
use medsched_core::policy::Policy;
use medsched_core::records::{
    AppointmentStatus, AppointmentTypeId, PatientId, ResourceId, WaitlistEntry,
};
use medsched_core::records::{MemoryStore, Store};
use medsched_core::{
    BookRequest, CancelReason, Clock, FnClock, Format, Proposal, SeriesPolicy, SeriesProposal,
    SlotQuery,
};
use pyo3::prelude::*;
use pyo3::types::PyString;

use crate::convert::{instant, instant_opt, wall_time};
use crate::errors;
use crate::types::{
    Appointment, AuditRecord, Booking, Elevation, Event, Explanation, OccurrenceReport, Principal,
    SeriesBooking, Slot,
};

/// The engine over a store chosen at run time.
type Core = medsched_core::Engine<Arc<dyn Store>>;

thread_local! {
    /// The instant the Python clock gave for the engine call running on
    /// this thread.
    static CALL_NOW: Cell<Option<DateTime<Utc>>> = const { Cell::new(None) };
}

/// The clock of an engine built with a Python clock. The binding calls the
/// Python clock once per engine call, while it holds the GIL (so the
/// clock's own exceptions propagate), and the core reads that instant for
/// the whole call.
struct CallClock;

impl Clock for CallClock {
    fn now(&self) -> DateTime<Utc> {
        CALL_NOW.with(Cell::get).unwrap_or_else(Utc::now)
    }
}

/// Sets [`CALL_NOW`] for one call and clears it afterwards, even on unwind.
struct CallNow;

impl CallNow {
    fn set(now: Option<DateTime<Utc>>) -> Self {
        CALL_NOW.with(|c| c.set(now));
        Self
    }
}

impl Drop for CallNow {
    fn drop(&mut self) {
        CALL_NOW.with(|c| c.set(None));
    }
}

/// A scheduling engine: one per process, shared by all threads.
#[pyclass(frozen, weakref, module = "medsched._medsched")]
pub(crate) struct Engine {
    core: Arc<Core>,
    clock: Option<Py<PyAny>>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("python_clock", &self.clock.is_some())
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// Runs `f` on the core with the GIL released; the Python clock, if
    /// any, is read first.
    fn run<T, F>(&self, py: Python<'_>, f: F) -> PyResult<T>
    where
        T: Send,
        F: FnOnce(&Core) -> Result<T, CoreError> + Send,
    {
        let now = match &self.clock {
            Some(clock) => Some(instant("clock()", &clock.bind(py).call0()?)?),
            None => None,
        };
        let core = &self.core;
        py.detach(|| {
            let _now = CallNow::set(now);
            // A panic never crosses into Python: it becomes `internal_error`.
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(core)))
                .unwrap_or_else(|_| Err(errors::caught_panic()))
        })
        .map_err(|e| errors::to_py(py, &e))
    }
}

#[pymethods]
impl Engine {
    /// An engine over an in-memory store.
    #[staticmethod]
    #[pyo3(signature = (policy_toml, clock = None))]
    fn in_memory(py: Python<'_>, policy_toml: &str, clock: Option<Py<PyAny>>) -> PyResult<Self> {
        errors::guard(py, || {
            let policy = Policy::from_toml(policy_toml).map_err(|e| errors::to_py(py, &e))?;
            let core_clock: Arc<dyn Clock> = match clock {
                Some(_) => Arc::new(CallClock),
                None => Arc::new(FnClock(Utc::now)),
            };
            Ok(Self {
                core: Arc::new(Core::new(Arc::new(MemoryStore::new()), core_clock, policy)),
                clock,
            })
        })
    }

    /// An engine over the reference PostgreSQL store at `dsn`.
    ///
    /// `keyring` turns on PHI encryption at rest (`id1:base64key,id2:...`,
    /// the first key active; the `MEDSCHED_PHI_KEYS` format). `migrate`
    /// applies the adapter's migrations first (it refuses a schema newer
    /// than it knows).
    #[staticmethod]
    #[pyo3(signature = (policy_toml, dsn, *, keyring = None, max_connections = 8, migrate = true, clock = None))]
    fn postgres(
        py: Python<'_>,
        policy_toml: &str,
        dsn: &str,
        keyring: Option<&str>,
        max_connections: usize,
        migrate: bool,
        clock: Option<Py<PyAny>>,
    ) -> PyResult<Self> {
        errors::guard(py, || {
            let policy = Policy::from_toml(policy_toml).map_err(|e| errors::to_py(py, &e))?;
            let store = py
                .detach(|| open_postgres(dsn, keyring, max_connections, migrate))
                .map_err(|e| errors::to_py(py, &e))?;
            let core_clock: Arc<dyn Clock> = match clock {
                Some(_) => Arc::new(CallClock),
                None => Arc::new(FnClock(Utc::now)),
            };
            Ok(Self {
                core: Arc::new(Core::new(store, core_clock, policy)),
                clock,
            })
        })
    }

    /// Validates and stores the principal's tenant catalog; returns its
    /// version.
    fn put_catalog(
        &self,
        py: Python<'_>,
        principal: &Principal,
        clinic: &Bound<'_, PyAny>,
    ) -> PyResult<u64> {
        let (bytes, format) = if clinic.is_instance_of::<PyString>()
            || clinic.is_instance(&py.import("os")?.getattr("PathLike")?)?
        {
            let path: String = py
                .import("os")?
                .call_method1("fspath", (clinic,))?
                .extract()?;
            // At most one byte past the cap: the core refuses longer ones.
            let cap = u64::try_from(document::MAX_DOCUMENT_BYTES)
                .unwrap_or(u64::MAX)
                .saturating_add(1);
            let bytes = py.detach(|| {
                let mut bytes = Vec::new();
                std::fs::File::open(&path)?
                    .take(cap)
                    .read_to_end(&mut bytes)
                    .map(|_| bytes)
            })?;
            (bytes, Format::from_path(&path))
        } else {
            let text: String = py
                .import("json")?
                .call_method1("dumps", (clinic,))?
                .extract()?;
            (text.into_bytes(), Format::Json)
        };
        let who = principal.to_core();
        self.run(py, move |core| {
            let text = document::decode(&bytes, format.name())?;
            let clinic = medsched_core::parse_clinic(text, format)?;
            core.put_catalog(&who, &clinic)
        })
    }

    /// Every (resource, start) able to take an appointment of `type_id`
    /// starting in `[start, end)`.
    #[pyo3(signature = (principal, type_id, start, end, *, now = None, resources = None))]
    #[allow(clippy::too_many_arguments)]
    fn slots(
        &self,
        py: Python<'_>,
        principal: &Principal,
        type_id: String,
        start: &Bound<'_, PyAny>,
        end: &Bound<'_, PyAny>,
        now: Option<&Bound<'_, PyAny>>,
        resources: Option<Vec<String>>,
    ) -> PyResult<Vec<Slot>> {
        let from = instant("start", start)?;
        let to = instant("end", end)?;
        let now = instant_opt("now", now)?;
        let who = principal.to_core();
        self.run(py, move |core| {
            let q = SlotQuery {
                type_id,
                from,
                to,
                now: now.unwrap_or_else(|| core.now()),
                resources: resources.unwrap_or_default(),
            };
            let slots = core.slots(&who, &q)?;
            let length = Duration::seconds(slots.duration);
            slots
                .entries
                .iter()
                .map(|e| {
                    let start = DateTime::from_timestamp(e.start, 0).ok_or_else(|| {
                        CoreError::InvalidInput {
                            field: "slot start".into(),
                            detail: "out of range".into(),
                        }
                    })?;
                    // Slot entries name resources by index into the slots'
                    // own catalog snapshot.
                    let resource =
                        slots
                            .resource_id(e.resource)
                            .ok_or_else(|| CoreError::InvalidInput {
                                field: "slot resource".into(),
                                detail: "index out of range".into(),
                            })?;
                    Ok(Slot::new(resource.to_owned(), start, start + length))
                })
                .collect()
        })
    }

    /// Books one appointment.
    #[pyo3(signature = (principal, type_id, start, *, resources = None, patient = None, reason = None, notes = None, idempotency_key = None, overbook = false, bypass_notice = false))]
    #[allow(clippy::too_many_arguments)]
    fn book(
        &self,
        py: Python<'_>,
        principal: &Principal,
        type_id: String,
        start: &Bound<'_, PyAny>,
        resources: Option<Vec<String>>,
        patient: Option<String>,
        reason: Option<String>,
        notes: Option<String>,
        idempotency_key: Option<String>,
        overbook: bool,
        bypass_notice: bool,
    ) -> PyResult<Booking> {
        let req = BookRequest {
            id: None,
            type_id,
            start: instant("start", start)?,
            resources: resources.unwrap_or_default(),
            patient,
            reason,
            notes,
            idempotency_key,
            overbook,
            bypass_notice,
        };
        let who = principal.to_core();
        self.run(py, move |core| {
            core.book(&who, &req).map(|b| Booking::from(&b))
        })
    }

    /// Holds a slot for `ttl` (default: the engine's hold time).
    #[pyo3(signature = (principal, type_id, start, *, ttl = None, resources = None, patient = None, reason = None, notes = None, idempotency_key = None, overbook = false, bypass_notice = false))]
    #[allow(clippy::too_many_arguments)]
    fn hold(
        &self,
        py: Python<'_>,
        principal: &Principal,
        type_id: String,
        start: &Bound<'_, PyAny>,
        ttl: Option<Duration>,
        resources: Option<Vec<String>>,
        patient: Option<String>,
        reason: Option<String>,
        notes: Option<String>,
        idempotency_key: Option<String>,
        overbook: bool,
        bypass_notice: bool,
    ) -> PyResult<Booking> {
        let req = BookRequest {
            id: None,
            type_id,
            start: instant("start", start)?,
            resources: resources.unwrap_or_default(),
            patient,
            reason,
            notes,
            idempotency_key,
            overbook,
            bypass_notice,
        };
        let ttl_secs = ttl.map(|d| d.num_seconds());
        let who = principal.to_core();
        self.run(py, move |core| {
            core.hold(&who, &req, ttl_secs).map(|b| Booking::from(&b))
        })
    }

    /// Confirms a hold at `expected_version`.
    fn confirm(
        &self,
        py: Python<'_>,
        principal: &Principal,
        id: String,
        expected_version: u64,
    ) -> PyResult<Appointment> {
        let who = principal.to_core();
        self.run(py, move |core| {
            core.confirm(&who, &id, expected_version)
                .map(|a| Appointment::from(&*a))
        })
    }

    /// Moves an appointment at `expected_version` to `new_start`.
    #[pyo3(signature = (principal, id, expected_version, new_start, *, resources = None))]
    fn reschedule(
        &self,
        py: Python<'_>,
        principal: &Principal,
        id: String,
        expected_version: u64,
        new_start: &Bound<'_, PyAny>,
        resources: Option<Vec<String>>,
    ) -> PyResult<Appointment> {
        let new_start = instant("new_start", new_start)?;
        let who = principal.to_core();
        self.run(py, move |core| {
            core.reschedule(&who, &id, expected_version, new_start, resources)
                .map(|a| Appointment::from(&*a))
        })
    }

    /// Changes an appointment's status (a FHIR code) at `expected_version`.
    fn transition(
        &self,
        py: Python<'_>,
        principal: &Principal,
        id: String,
        expected_version: u64,
        status: String,
    ) -> PyResult<Appointment> {
        let to: AppointmentStatus =
            serde_json::from_value(serde_json::Value::String(status.clone())).map_err(|_| {
                errors::invalid(py, "status", &format!("unknown FHIR status `{status}`"))
            })?;
        let who = principal.to_core();
        self.run(py, move |core| {
            core.transition(&who, &id, expected_version, to)
                .map(|a| Appointment::from(&*a))
        })
    }

    /// Books every occurrence of a recurring rule in wall time of `zone`.
    #[pyo3(signature = (principal, type_id, zone, dtstart, rrule, *, resources = None, patient = None, policy = "all_or_nothing", idempotency_key = None))]
    #[allow(clippy::too_many_arguments)]
    fn book_series(
        &self,
        py: Python<'_>,
        principal: &Principal,
        type_id: String,
        zone: String,
        dtstart: &Bound<'_, PyAny>,
        rrule: String,
        resources: Option<Vec<String>>,
        patient: Option<String>,
        policy: &str,
        idempotency_key: Option<String>,
    ) -> PyResult<SeriesBooking> {
        let policy = match policy {
            "all_or_nothing" => SeriesPolicy::AllOrNothing,
            "book_free" => SeriesPolicy::BookFree,
            other => {
                return Err(errors::invalid(
                    py,
                    "policy",
                    &format!("`{other}`; expected `all_or_nothing` or `book_free`"),
                ))
            }
        };
        let proposal = SeriesProposal {
            type_id,
            zone,
            dtstart: wall_time("dtstart", dtstart)?,
            rrule,
            resources: resources.unwrap_or_default(),
            patient,
        };
        let who = principal.to_core();
        self.run(py, move |core| {
            core.book_series(&who, &proposal, policy, idempotency_key.as_deref())
                .map(|s| SeriesBooking::from(&s))
        })
    }

    /// Why `resource` can or cannot take an appointment of `type_id` at
    /// `start`.
    #[pyo3(signature = (principal, type_id, resource, start, *, patient = None))]
    fn explain(
        &self,
        py: Python<'_>,
        principal: &Principal,
        type_id: String,
        resource: String,
        start: &Bound<'_, PyAny>,
        patient: Option<String>,
    ) -> PyResult<Explanation> {
        let start = instant("start", start)?;
        let who = principal.to_core();
        self.run(py, move |core| {
            core.explain(&who, &type_id, &resource, start, patient.as_deref())
                .map(|e| Explanation::from(&e))
        })
    }

    /// The conflict check of a proposed appointment.
    #[pyo3(signature = (principal, type_id, start, *, resources = None, patient = None))]
    fn check(
        &self,
        py: Python<'_>,
        principal: &Principal,
        type_id: String,
        start: &Bound<'_, PyAny>,
        resources: Option<Vec<String>>,
        patient: Option<String>,
    ) -> PyResult<OccurrenceReport> {
        let proposal = Proposal {
            type_id,
            start: instant("start", start)?,
            resources: resources.unwrap_or_default(),
            patient,
        };
        let who = principal.to_core();
        self.run(py, move |core| {
            core.check(&who, &proposal)
                .map(|r| OccurrenceReport::from(&r))
        })
    }

    /// Puts a patient on the waitlist for `type_id` in `[start, end)`.
    #[pyo3(signature = (principal, id, patient, type_id, start, end, *, resources = None, created_at = None))]
    #[allow(clippy::too_many_arguments)]
    fn add_waitlist(
        &self,
        py: Python<'_>,
        principal: &Principal,
        id: String,
        patient: String,
        type_id: String,
        start: &Bound<'_, PyAny>,
        end: &Bound<'_, PyAny>,
        resources: Option<Vec<String>>,
        created_at: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let from = instant("start", start)?;
        let to = instant("end", end)?;
        let created_at = instant_opt("created_at", created_at)?;
        let who = principal.to_core();
        self.run(py, move |core| {
            let entry = WaitlistEntry {
                id,
                patient: PatientId(patient),
                type_id: AppointmentTypeId(type_id),
                resources: resources
                    .unwrap_or_default()
                    .into_iter()
                    .map(ResourceId)
                    .collect(),
                from,
                to,
                created_at: created_at.unwrap_or_else(|| core.now()),
            };
            core.add_waitlist(&who, entry)
        })
    }

    /// Break-glass: emergency access to one patient for `minutes`.
    fn break_glass(
        &self,
        py: Python<'_>,
        principal: &Principal,
        patient: String,
        reason: String,
        minutes: i64,
    ) -> PyResult<Elevation> {
        // Out-of-range minutes become 0, which the core refuses with its
        // own message (it owns the limit).
        let minutes = u32::try_from(minutes).unwrap_or(0);
        let who = principal.to_core();
        self.run(py, move |core| {
            core.break_glass(&who, &patient, &reason, minutes)
                .map(Elevation::from)
        })
    }

    /// The audit trail from `from_seq`, at most `max` records.
    #[pyo3(signature = (principal, from_seq = 1, max = 1000))]
    fn audit_trail(
        &self,
        py: Python<'_>,
        principal: &Principal,
        from_seq: u64,
        max: usize,
    ) -> PyResult<Vec<AuditRecord>> {
        let who = principal.to_core();
        self.run(py, move |core| {
            core.audit_trail(&who, from_seq, max)
                .map(|rs| rs.iter().map(AuditRecord::from).collect())
        })
    }

    /// Verifies the whole audit chain; returns how many records it holds.
    fn verify_audit(&self, py: Python<'_>, principal: &Principal) -> PyResult<u64> {
        let who = principal.to_core();
        self.run(py, move |core| core.verify_audit(&who))
    }

    /// Cancels an appointment at `expected_version`, recording why (a code
    /// from the closed list) and an optional PHI note.
    #[pyo3(signature = (principal, id, expected_version, reason_code, note = None))]
    fn cancel(
        &self,
        py: Python<'_>,
        principal: &Principal,
        id: String,
        expected_version: u64,
        reason_code: String,
        note: Option<String>,
    ) -> PyResult<Appointment> {
        let who = principal.to_core();
        self.run(py, move |core| {
            let reason = CancelReason::from_code(&reason_code)?;
            core.cancel(&who, &id, expected_version, reason, note.as_deref())
                .map(|a| Appointment::from(&*a))
        })
    }

    /// One appointment, PHI redacted unless the principal may read it.
    fn appointment(
        &self,
        py: Python<'_>,
        principal: &Principal,
        id: String,
    ) -> PyResult<Appointment> {
        let who = principal.to_core();
        self.run(py, move |core| {
            core.appointment(&who, &id).map(|a| Appointment::from(&*a))
        })
    }

    /// Claims up to `max` due outbox events for `worker` for `lease`.
    #[pyo3(signature = (principal, worker, max = 100, lease = None))]
    fn claim_events(
        &self,
        py: Python<'_>,
        principal: &Principal,
        worker: String,
        max: usize,
        lease: Option<Duration>,
    ) -> PyResult<Vec<Event>> {
        let lease_secs = lease.map_or(60, |d| d.num_seconds());
        let who = principal.to_core();
        self.run(py, move |core| {
            core.claim_events(&who, &worker, max, lease_secs)
                .map(|events| events.iter().map(Event::from).collect())
        })
    }

    /// Acknowledges a delivered event.
    fn ack_event(
        &self,
        py: Python<'_>,
        principal: &Principal,
        event_id: u64,
        worker: String,
    ) -> PyResult<()> {
        let who = principal.to_core();
        self.run(py, move |core| core.ack_event(&who, event_id, &worker))
    }

    /// Panics inside the engine call path, to show that a panic reaches
    /// Python as `InternalError` (code `internal_error`). Testing aid; not
    /// part of the API.
    fn _panic_for_test(&self, py: Python<'_>) -> PyResult<()> {
        #[allow(clippy::panic)]
        self.run(py, |_core| -> Result<(), CoreError> {
            panic!("medsched test panic")
        })
    }

    fn __repr__(&self) -> String {
        "Engine(store='memory')".to_owned()
    }
}

/// Opens (and optionally migrates) the PostgreSQL store.
fn open_postgres(
    dsn: &str,
    keyring: Option<&str>,
    max_connections: usize,
    migrate: bool,
) -> Result<Arc<dyn Store>, CoreError> {
    use medsched_core::records::StorageError;
    use medsched_postgres::{KeyRing, PgConfig, PgStore, SetupError};
    let setup = |e: SetupError| CoreError::from(StorageError::from(e));
    let mut config = PgConfig::new(dsn).max_connections(max_connections.max(1));
    if let Some(spec) = keyring {
        config = config.keyring(KeyRing::parse(spec)?);
    }
    let store = PgStore::open(config).map_err(setup)?;
    if migrate {
        store.migrate().map_err(setup)?;
    }
    Ok(Arc::new(store))
}
