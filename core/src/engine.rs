//! The `Engine`: what a clinic application keeps for its lifetime. It lists
//! slots and explains them from the core, and books, holds, confirms,
//! cancels, reschedules and moves appointments through their FHIR
//! lifecycle over a [`Store`]. Its own checks give the explanations; the
//! store's atomic batch gives the guarantee (ADR 0006).

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use chrono::{DateTime, NaiveDateTime, Utc};
use medsched_storage::{
    Appointment, AppointmentId, AppointmentStatus, AppointmentTypeId, Batch, BookingRow,
    BookingsQuery, Claim, Clinic, Committed, EventData, EventKind, Idempotency, NewEvent, Op,
    OutboxEvent, PatientId, Phi, ResourceId, Store, StoredAppointment, TenantId, WaitlistEntry,
};

use crate::cancellation::CancelReason;
use crate::error::{Error, RecordKind};
use crate::explain::{OccurrenceReport, Proposal, Reason, SeriesProposal, SeriesReport};
use crate::schedule::{Catalog, Schedule};
use crate::slots::{SlotQuery, Slots};
use crate::time::{utc_of, DAY};

/// Where the engine's "now" comes from. Core never reads the system clock;
/// hosts inject one (bindings pass the system clock, tests a manual one).
pub trait Clock: Send + Sync {
    /// The current instant.
    fn now(&self) -> DateTime<Utc>;
}

/// A clock that reads a closure.
pub struct FnClock<F>(pub F);

impl<F: Fn() -> DateTime<Utc> + Send + Sync> Clock for FnClock<F> {
    fn now(&self) -> DateTime<Utc> {
        (self.0)()
    }
}

impl<F> std::fmt::Debug for FnClock<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FnClock")
    }
}

/// A clock set by hand, for tests and simulations.
#[derive(Debug)]
pub struct ManualClock(Mutex<DateTime<Utc>>);

impl ManualClock {
    /// A clock showing `now`.
    pub fn new(now: DateTime<Utc>) -> Self {
        Self(Mutex::new(now))
    }

    /// Sets the time.
    pub fn set(&self, now: DateTime<Utc>) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = now;
    }

    /// Moves the time forward.
    pub fn advance(&self, by: chrono::Duration) {
        let mut g = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        *g += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Engine settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EngineConfig {
    /// How long a freed slot is held for the first waitlist entry, seconds.
    pub waitlist_hold_secs: i64,
    /// Default hold time when a hold request names none, seconds.
    pub default_hold_secs: i64,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            waitlist_hold_secs: 15 * 60,
            default_hold_secs: 10 * 60,
        }
    }
}

/// Longest hold, seconds (a day): a hold is a short reservation before
/// confirmation, and a longer one would outlive the instants it can name.
pub const MAX_HOLD_SECS: i64 = 24 * 60 * 60;

/// A request to book (or hold) one appointment. Its `Debug` never shows
/// the reason or the notes (PHI).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct BookRequest {
    /// The appointment id; derived from the idempotency key, or generated,
    /// when absent.
    pub id: Option<String>,
    /// Appointment type id.
    pub type_id: String,
    /// Start instant.
    pub start: DateTime<Utc>,
    /// Resources; when empty the engine assigns resources that fit.
    pub resources: Vec<String>,
    /// The patient.
    pub patient: Option<String>,
    /// Reason for visit (PHI).
    pub reason: Option<String>,
    /// Notes (PHI).
    pub notes: Option<String>,
    /// Client idempotency key (a Celery task id, a request id).
    pub idempotency_key: Option<String>,
    /// Book even where the slot is taken or outside the rules (explicit,
    /// needs `appointment.overbook`, audited).
    pub overbook: bool,
    /// Ignore the type's minimum notice and horizon (needs
    /// `booking.bypass_notice`; a start in the past is still refused).
    pub bypass_notice: bool,
}

impl std::fmt::Debug for BookRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // `Phi`'s own `Debug` prints the redaction marker.
        let redact = |v: &Option<String>| v.as_ref().map(|_| medsched_storage::Phi(()));
        f.debug_struct("BookRequest")
            .field("id", &self.id)
            .field("type_id", &self.type_id)
            .field("start", &self.start)
            .field("resources", &self.resources)
            .field("patient", &self.patient)
            .field("reason", &redact(&self.reason))
            .field("notes", &redact(&self.notes))
            .field("idempotency_key", &self.idempotency_key)
            .field("overbook", &self.overbook)
            .field("bypass_notice", &self.bypass_notice)
            .finish()
    }
}

/// The outcome of a booking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Booking {
    /// The appointment as stored.
    pub appointment: Arc<StoredAppointment>,
    /// Whether this is the first result of an earlier request with the
    /// same idempotency key.
    pub replayed: bool,
    /// Findings that did not block (a patient overlap under `warn`).
    pub warnings: Vec<Reason>,
}

/// How a series is booked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SeriesPolicy {
    /// Every occurrence or none.
    #[default]
    AllOrNothing,
    /// The free occurrences; the others are reported.
    BookFree,
}

/// The outcome of a series booking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeriesBooking {
    /// The booked occurrences.
    pub booked: Vec<Arc<StoredAppointment>>,
    /// Every occurrence with its conflicts (empty for booked ones).
    pub report: SeriesReport,
}

/// Deterministic 64-bit FNV-1a, for fingerprints and derived ids.
fn fnv(parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for b in p.bytes().chain(std::iter::once(0x1f)) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

/// The engine. `Send + Sync` over a `Send + Sync` store: share it.
pub struct Engine<S: Store> {
    store: S,
    clock: Arc<dyn Clock>,
    pub(crate) policy: crate::policy::PolicyStore,
    config: EngineConfig,
    catalogs: RwLock<HashMap<TenantId, (u64, Arc<Catalog>)>>,
    counter: AtomicU64,
    salt: u64,
}

impl<S: Store> std::fmt::Debug for Engine<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl<S: Store> Engine<S> {
    /// An engine over `store` with an injected clock and an access policy.
    pub fn new(store: S, clock: Arc<dyn Clock>, policy: crate::policy::Policy) -> Self {
        Self::with_config(store, clock, policy, EngineConfig::default())
    }

    /// An engine with settings.
    pub fn with_config(
        store: S,
        clock: Arc<dyn Clock>,
        policy: crate::policy::Policy,
        config: EngineConfig,
    ) -> Self {
        let salt = std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish();
        Self {
            store,
            clock,
            policy: crate::policy::PolicyStore::new(policy),
            config,
            catalogs: RwLock::new(HashMap::new()),
            counter: AtomicU64::new(0),
            salt,
        }
    }

    /// The raw store, without access control, redaction or audit: for the
    /// host's own administration and tests. Bindings must not expose it.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The engine's current instant.
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Validates and stores a tenant's catalog (resources, rules, types);
    /// the clinic's appointments, if any, are imported as they are.
    ///
    /// # Errors
    ///
    /// Any validation error of [`Catalog::new`]; `version_conflict` when
    /// another writer replaced the catalog meanwhile.
    pub(crate) fn put_catalog_in(&self, tenant: &TenantId, clinic: &Clinic) -> Result<u64, Error> {
        // Validate everything, appointments included, before writing.
        let schedule = Schedule::new(clinic)?;
        let mut catalog = clinic.clone();
        let appointments = std::mem::take(&mut catalog.appointments);
        let current = self.store.catalog_version(tenant)?;
        let version = self.store.replace_catalog(tenant, catalog, current)?;
        if !appointments.is_empty() {
            let ops = appointments
                .into_iter()
                .map(|a| Op::Insert {
                    appointment: a,
                    hold_expires_at: None,
                    claims: vec![],
                    overbook: true,
                })
                .collect();
            self.store.commit(
                tenant,
                Batch {
                    now: self.now(),
                    idempotency: None,
                    ops,
                },
            )?;
        }
        drop(schedule);
        Ok(version)
    }

    /// The tenant's compiled catalog, from the cache when its version is
    /// current.
    ///
    /// # Errors
    ///
    /// `not_found` when the tenant has no catalog; `storage_unavailable`.
    pub fn catalog(&self, tenant: &TenantId) -> Result<Arc<Catalog>, Error> {
        let version = self.store.catalog_version(tenant)?;
        if let Some((v, c)) = self
            .catalogs
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(tenant)
        {
            if *v == version {
                return Ok(Arc::clone(c));
            }
        }
        let stored = self.store.catalog(tenant)?;
        let compiled = Arc::new(Catalog::new(&stored.catalog)?);
        self.catalogs
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(tenant.clone(), (stored.version, Arc::clone(&compiled)));
        Ok(compiled)
    }

    /// A schedule of `resources` over `[from, to)` as the store has it now.
    #[allow(clippy::too_many_arguments)]
    fn view(
        &self,
        tenant: &TenantId,
        cat: &Arc<Catalog>,
        type_idx: Option<u32>,
        resources: &[u32],
        from: i64,
        to: i64,
        now: i64,
        with_ids: bool,
        except: Option<u64>,
        patient: Option<&str>,
    ) -> Result<Schedule, Error> {
        let ids: Vec<ResourceId> = resources
            .iter()
            .filter_map(|r| cat.resource_id(*r).map(ResourceId::from))
            .collect();
        let type_id = type_idx
            .and_then(|t| cat.type_records.get(t as usize))
            .map(|t| t.id.clone());
        let mut rows: Vec<BookingRow> = Vec::new();
        self.store.bookings(
            tenant,
            &BookingsQuery {
                resources: &ids,
                from,
                to,
                now,
                type_id: type_id.as_ref(),
            },
            &mut rows,
        )?;
        if let Some(k) = except {
            rows.retain(|r| r.key != k);
        }
        let need_busy = with_ids
            || type_idx
                .and_then(|t| cat.ty(t))
                .is_some_and(|ty| ty.max_per_day.is_some() || ty.max_per_week.is_some());
        let mut schedule =
            Schedule::from_rows(Arc::clone(cat), resources, &rows, type_idx, need_busy);
        if with_ids {
            let mut keys: Vec<u64> = rows.iter().map(|r| r.key).collect();
            keys.sort_unstable();
            keys.dedup();
            for k in keys {
                let a = self.store.appointment_by_key(tenant, k)?;
                schedule.book.ids.insert(k, a.appointment.id.0.clone());
            }
        }
        if let Some(p) = patient {
            let found = self
                .store
                .patient_bookings(tenant, &PatientId::from(p), from, to, now)?;
            let spans: Vec<(i64, i64, u64)> = found
                .iter()
                .filter(|a| Some(a.key) != except)
                .filter_map(|a| {
                    let (s, e) = (
                        a.appointment.start?.timestamp(),
                        a.appointment.end?.timestamp(),
                    );
                    Some((s, e, a.key))
                })
                .collect();
            for a in &found {
                schedule.book.ids.insert(a.key, a.appointment.id.0.clone());
            }
            schedule.book.patient_busy.insert(p.to_owned(), spans);
        }
        Ok(schedule)
    }

    fn candidates(cat: &Catalog, type_idx: u32, chosen: &[u32]) -> Vec<u32> {
        if !chosen.is_empty() {
            return chosen.to_vec();
        }
        let mut c: Vec<u32> = cat
            .types
            .get(type_idx as usize)
            .map(|t| {
                t.groups
                    .iter()
                    .flat_map(|g| g.members.iter().copied())
                    .collect()
            })
            .unwrap_or_default();
        c.sort_unstable();
        c.dedup();
        c
    }

    /// Bookable slots (one batched store read, then the core).
    ///
    /// # Errors
    ///
    /// As [`Schedule::slots`]; `storage_unavailable`.
    pub(crate) fn slots_in(&self, tenant: &TenantId, q: &SlotQuery) -> Result<Slots, Error> {
        let cat = self.catalog(tenant)?;
        let t = cat.type_idx(&q.type_id)?;
        let ty = cat
            .ty(t)
            .ok_or_else(|| Error::not_found(RecordKind::AppointmentType, &q.type_id))?;
        let mut chosen = Vec::with_capacity(q.resources.len());
        for r in &q.resources {
            chosen.push(cat.resource_idx(r)?);
        }
        let resources = Self::candidates(&cat, t, &chosen);
        crate::slots::check_window(q.from.timestamp(), q.to.timestamp())?;
        let margin = if ty.max_per_day.is_some() || ty.max_per_week.is_some() {
            8 * DAY
        } else {
            DAY
        };
        let (from, to) = (
            q.from.timestamp() - ty.reach_before() - margin,
            q.to.timestamp() + ty.reach_after() + margin,
        );
        let schedule = self.view(
            tenant,
            &cat,
            Some(t),
            &resources,
            from,
            to,
            q.now.timestamp(),
            false,
            None,
            None,
        )?;
        schedule.slots(q)
    }

    /// Why a resource can or cannot take a start now.
    ///
    /// # Errors
    ///
    /// As [`Schedule::explain`].
    pub(crate) fn explain_in(
        &self,
        tenant: &TenantId,
        type_id: &str,
        resource: &str,
        start: DateTime<Utc>,
        patient: Option<&str>,
    ) -> Result<crate::Explanation, Error> {
        let now = self.now();
        let cat = self.catalog(tenant)?;
        let t = cat.type_idx(type_id)?;
        let r = cat.resource_idx(resource)?;
        let s = start.timestamp();
        let schedule = self.view(
            tenant,
            &cat,
            Some(t),
            &[r],
            s - 9 * DAY,
            s + 9 * DAY,
            now.timestamp(),
            true,
            None,
            patient,
        )?;
        schedule.explain(type_id, resource, start, now, patient)
    }

    /// Checks a proposal; `with_ids` resolves appointment ids for the
    /// reasons (callers that only need reason codes skip the look-ups).
    fn check_one(
        &self,
        tenant: &TenantId,
        cat: &Arc<Catalog>,
        p: &Proposal,
        now: DateTime<Utc>,
        except: Option<u64>,
        with_ids: bool,
    ) -> Result<OccurrenceReport, Error> {
        let t = cat.type_idx(&p.type_id)?;
        let mut chosen = Vec::with_capacity(p.resources.len());
        for r in &p.resources {
            chosen.push(cat.resource_idx(r)?);
        }
        let resources = Self::candidates(cat, t, &chosen);
        let s = p.start.timestamp();
        let schedule = self.view(
            tenant,
            cat,
            Some(t),
            &resources,
            s - 9 * DAY,
            s + 9 * DAY,
            now.timestamp(),
            with_ids,
            except,
            p.patient.as_deref(),
        )?;
        schedule.check(p, now)
    }

    /// The conflict check of a proposed appointment against the store.
    ///
    /// # Errors
    ///
    /// As [`Schedule::check`].
    pub(crate) fn check_in(
        &self,
        tenant: &TenantId,
        p: &Proposal,
    ) -> Result<OccurrenceReport, Error> {
        let cat = self.catalog(tenant)?;
        self.check_one(tenant, &cat, p, self.now(), None, true)
    }

    fn new_id(&self, tenant: &TenantId, req: &BookRequest) -> String {
        if let Some(id) = &req.id {
            return id.clone();
        }
        if let Some(k) = &req.idempotency_key {
            return format!("apt-{:016x}", fnv(&[tenant.as_str(), "idem", k]));
        }
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let nanos = self.now().timestamp_nanos_opt().unwrap_or_default();
        format!(
            "apt-{:016x}",
            fnv(&[&self.salt.to_string(), &n.to_string(), &nanos.to_string()])
        )
    }

    fn fingerprint(kind: &str, req: &BookRequest) -> String {
        let mut resources = req.resources.clone();
        resources.sort();
        format!(
            "{:016x}",
            fnv(&[
                kind,
                req.id.as_deref().unwrap_or_default(),
                &req.type_id,
                &req.start.timestamp().to_string(),
                &resources.join(","),
                req.patient.as_deref().unwrap_or_default(),
                if req.overbook { "overbook" } else { "" },
            ])
        )
    }

    fn replay(
        &self,
        tenant: &TenantId,
        key: Option<&String>,
        fingerprint: &str,
    ) -> Result<Option<Committed>, Error> {
        let Some(k) = key else { return Ok(None) };
        match self.store.idempotent(tenant, k)? {
            Some((fp, _)) if fp != fingerprint => Err(Error::IdempotencyMismatch),
            Some((_, committed)) => Ok(Some(Committed {
                replayed: true,
                ..committed
            })),
            None => Ok(None),
        }
    }

    fn reminder_ops(cat: &Catalog, a: &Appointment, now: i64) -> Vec<Op> {
        let (Some(t), Some(start)) = (a.type_id.as_ref(), a.start) else {
            return Vec::new();
        };
        let Some(ty) = cat.appointment_type(t.as_str()) else {
            return Vec::new();
        };
        ty.reminders_min
            .iter()
            .filter_map(|&m| {
                let due = start.timestamp() - i64::from(m) * 60;
                (due > now).then(|| {
                    Op::Emit(NewEvent {
                        kind: EventKind::ReminderDue,
                        due_at: utc_of(due),
                        data: EventData {
                            appointment: Some(a.id.clone()),
                            patient: a.patient.clone(),
                            start: a.start,
                            offset_min: Some(m),
                            ..EventData::default()
                        },
                    })
                })
            })
            .collect()
    }

    fn claims(cat: &Catalog, resources: &[ResourceId]) -> Vec<Claim> {
        resources
            .iter()
            .map(|r| Claim {
                resource: r.clone(),
                capacity: cat.resource(r.as_str()).map_or(1, |x| x.capacity),
            })
            .collect()
    }

    fn event(kind: EventKind, now: DateTime<Utc>, a: &Appointment) -> Op {
        Op::Emit(NewEvent {
            kind,
            due_at: now,
            data: EventData {
                appointment: Some(a.id.clone()),
                patient: a.patient.clone(),
                start: a.start,
                status: Some(a.status.code().to_owned()),
                ..EventData::default()
            },
        })
    }

    pub(crate) fn book_or_hold(
        &self,
        tenant: &TenantId,
        req: &BookRequest,
        hold_secs: Option<i64>,
        extra: Vec<Op>,
    ) -> Result<Booking, Error> {
        let now = self.now();
        let kind = if hold_secs.is_some() { "hold" } else { "book" };
        let fingerprint = Self::fingerprint(kind, req);
        if let Some(c) = self.replay(tenant, req.idempotency_key.as_ref(), &fingerprint)? {
            return Self::booking_of(c, Vec::new());
        }
        let mut cat = self.catalog(tenant)?;
        if req.bypass_notice {
            cat = Arc::new(cat.relaxed(cat.type_idx(&req.type_id)?));
        }
        let ty_rec = cat
            .appointment_type(&req.type_id)
            .ok_or_else(|| Error::not_found(RecordKind::AppointmentType, &req.type_id))?
            .clone();
        let proposal = Proposal {
            type_id: req.type_id.clone(),
            start: req.start,
            resources: req.resources.clone(),
            patient: req.patient.clone(),
        };
        let report = self.check_one(tenant, &cat, &proposal, now, None, false)?;
        let resources: Vec<ResourceId> = if report.bookable {
            report
                .assigned
                .iter()
                .map(|r| ResourceId::from(r.as_str()))
                .collect()
        } else if req.overbook && !req.resources.is_empty() {
            req.resources
                .iter()
                .map(|r| ResourceId::from(r.as_str()))
                .collect()
        } else {
            return Err(unavailable(&report));
        };
        let start = req.start.timestamp();
        let appointment = Appointment {
            id: AppointmentId(self.new_id(tenant, req)),
            type_id: Some(AppointmentTypeId(req.type_id.clone())),
            patient: req.patient.as_deref().map(PatientId::from),
            resources: resources.clone(),
            start: Some(req.start),
            end: Some(utc_of(start + i64::from(ty_rec.duration_min) * 60)),
            status: if hold_secs.is_some() {
                AppointmentStatus::Pending
            } else {
                AppointmentStatus::Booked
            },
            buffer_before_min: ty_rec.buffer_before_min,
            buffer_after_min: ty_rec.buffer_after_min,
            reason: req.reason.clone().map(Phi),
            notes: req.notes.clone().map(Phi),
        };
        let mut ops = vec![Op::Insert {
            appointment: appointment.clone(),
            hold_expires_at: hold_secs.map(|s| utc_of(now.timestamp() + s)),
            claims: Self::claims(&cat, &resources),
            overbook: req.overbook,
        }];
        if hold_secs.is_some() {
            ops.push(Self::event(EventKind::Held, now, &appointment));
        } else {
            ops.push(Self::event(EventKind::Booked, now, &appointment));
            ops.extend(Self::reminder_ops(&cat, &appointment, now.timestamp()));
        }
        ops.extend(extra);
        let committed = self.store.commit(
            tenant,
            Batch {
                now,
                idempotency: req.idempotency_key.as_ref().map(|k| Idempotency {
                    key: k.clone(),
                    fingerprint,
                }),
                ops,
            },
        )?;
        Self::booking_of(committed, report.warnings)
    }

    fn booking_of(c: Committed, warnings: Vec<Reason>) -> Result<Booking, Error> {
        let appointment =
            c.appointments.into_iter().next().ok_or_else(|| {
                Error::internal("the store returned no appointment for an insert")
            })?;
        Ok(Booking {
            appointment,
            replayed: c.replayed,
            warnings,
        })
    }

    /// Books one appointment: the engine checks (and explains a refusal),
    /// the store re-checks and inserts atomically with its events and the
    /// idempotency record.
    ///
    /// # Errors
    ///
    /// `slot_unavailable` (with reason codes), `idempotency_mismatch`,
    /// `not_found`, `storage_unavailable`.
    pub(crate) fn book_in(
        &self,
        tenant: &TenantId,
        req: &BookRequest,
        extra: Vec<Op>,
    ) -> Result<Booking, Error> {
        self.book_or_hold(tenant, req, None, extra)
    }

    /// Holds a slot for `ttl_secs` (the configured default when `None`): a
    /// `pending` appointment that holds time until it lapses.
    ///
    /// # Errors
    ///
    /// As [`Engine::book`].
    pub(crate) fn hold_in(
        &self,
        tenant: &TenantId,
        req: &BookRequest,
        ttl_secs: Option<i64>,
        extra: Vec<Op>,
    ) -> Result<Booking, Error> {
        let ttl = ttl_secs.unwrap_or(self.config.default_hold_secs);
        if !(1..=MAX_HOLD_SECS).contains(&ttl) {
            return Err(Error::invalid(
                "hold ttl",
                format!("must be from 1 to {MAX_HOLD_SECS} seconds"),
            ));
        }
        self.book_or_hold(tenant, req, Some(ttl), extra)
    }

    /// Confirms a hold: `pending` becomes `booked` if the hold has not
    /// lapsed.
    ///
    /// # Errors
    ///
    /// `hold_expired`, `version_conflict`, `invalid_transition`, `not_found`.
    pub(crate) fn confirm_in(
        &self,
        tenant: &TenantId,
        id: &str,
        expected_version: u64,
        extra: Vec<Op>,
    ) -> Result<Arc<StoredAppointment>, Error> {
        let now = self.now();
        let cat = self.catalog(tenant)?;
        let current = self.store.appointment(tenant, &AppointmentId::from(id))?;
        if current.appointment.status != AppointmentStatus::Pending
            || current.hold_expires_at.is_none()
        {
            return Err(Error::InvalidTransition {
                appointment: crate::error::truncate(id),
                from: current.appointment.status.code(),
                to: AppointmentStatus::Booked.code(),
            });
        }
        if current.hold_expires_at.is_some_and(|h| h <= now) {
            return Err(Error::HoldExpired {
                appointment: crate::error::truncate(id),
            });
        }
        let mut a = current.appointment.clone();
        a.status = AppointmentStatus::Booked;
        let mut ops = vec![Op::Update {
            appointment: a.clone(),
            expected_version,
            hold_expires_at: None,
            claims: Self::claims(&cat, &a.resources),
            overbook: false,
        }];
        ops.push(Self::event(EventKind::Booked, now, &a));
        ops.extend(Self::reminder_ops(&cat, &a, now.timestamp()));
        ops.extend(extra);
        self.commit_one(tenant, now, ops)
    }

    fn commit_one(
        &self,
        tenant: &TenantId,
        now: DateTime<Utc>,
        ops: Vec<Op>,
    ) -> Result<Arc<StoredAppointment>, Error> {
        let c = self.store.commit(
            tenant,
            Batch {
                now,
                idempotency: None,
                ops,
            },
        )?;
        c.appointments
            .into_iter()
            .next()
            .ok_or_else(|| Error::internal("the store returned no appointment for an insert"))
    }

    /// Cancels an appointment, recording who and why (a reason code) in the
    /// event; a note (PHI) goes with the appointment's notes, never into the
    /// event; its reminders are dropped; when a waitlist entry matches the
    /// freed slot, the slot is held for it and an offer event written, all
    /// in one atomic step.
    ///
    /// # Errors
    ///
    /// `version_conflict`, `invalid_transition`, `not_found`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn cancel_in(
        &self,
        tenant: &TenantId,
        id: &str,
        expected_version: u64,
        by: &str,
        reason: CancelReason,
        note: Option<&str>,
        extra: Vec<Op>,
    ) -> Result<Arc<StoredAppointment>, Error> {
        let now = self.now();
        let cat = self.catalog(tenant)?;
        let current = self.store.appointment(tenant, &AppointmentId::from(id))?;
        let from = current.appointment.status;
        if !crate::status::allowed(from, AppointmentStatus::Cancelled) {
            return Err(Error::InvalidTransition {
                appointment: crate::error::truncate(id),
                from: from.code(),
                to: AppointmentStatus::Cancelled.code(),
            });
        }
        let mut a = current.appointment.clone();
        a.status = AppointmentStatus::Cancelled;
        a.notes =
            crate::cancellation::with_note(a.notes.as_ref().map(|n| n.0.as_str()), note).map(Phi);
        let mut ops = vec![
            Op::Update {
                appointment: a.clone(),
                expected_version,
                hold_expires_at: None,
                claims: vec![],
                overbook: false,
            },
            Op::Supersede {
                appointment: a.id.clone(),
                kinds: vec![EventKind::ReminderDue],
            },
            Op::Emit(NewEvent {
                kind: EventKind::Cancelled,
                due_at: now,
                data: EventData {
                    appointment: Some(a.id.clone()),
                    patient: a.patient.clone(),
                    start: a.start,
                    status: Some(a.status.code().to_owned()),
                    actor: Some(by.to_owned()),
                    reason_code: Some(reason.code().to_owned()),
                    ..EventData::default()
                },
            }),
        ];
        if from.holds_time() && current.busy_at(now.timestamp()).is_some() {
            ops.extend(self.waitlist_offer(tenant, &cat, &current.appointment, now)?);
        }
        ops.extend(extra);
        self.commit_one(tenant, now, ops)
    }

    /// Ops that hold a freed slot for the first matching waitlist entry.
    fn waitlist_offer(
        &self,
        tenant: &TenantId,
        cat: &Catalog,
        freed: &Appointment,
        now: DateTime<Utc>,
    ) -> Result<Vec<Op>, Error> {
        let (Some(t), Some(start), Some(end)) = (freed.type_id.as_ref(), freed.start, freed.end)
        else {
            return Ok(Vec::new());
        };
        if start <= now {
            return Ok(Vec::new());
        }
        let entries = self.store.waitlist(tenant, t)?;
        let Some(e) = entries.into_iter().find(|e| {
            e.from <= start
                && end <= e.to
                && (e.resources.is_empty()
                    || freed.resources.iter().any(|r| e.resources.contains(r)))
                && Some(&e.patient) != freed.patient.as_ref()
        }) else {
            return Ok(Vec::new());
        };
        let hold = Appointment {
            id: AppointmentId(format!("offer-{}-{}", e.id, freed.id)),
            patient: Some(e.patient.clone()),
            status: AppointmentStatus::Pending,
            reason: None,
            notes: None,
            ..freed.clone()
        };
        Ok(vec![
            Op::Insert {
                appointment: hold.clone(),
                hold_expires_at: Some(utc_of(now.timestamp() + self.config.waitlist_hold_secs)),
                claims: Self::claims(cat, &hold.resources),
                overbook: false,
            },
            Op::Emit(NewEvent {
                kind: EventKind::WaitlistOffer,
                due_at: now,
                data: EventData {
                    appointment: Some(hold.id.clone()),
                    patient: Some(e.patient.clone()),
                    start: hold.start,
                    waitlist_entry: Some(e.id.clone()),
                    ..EventData::default()
                },
            }),
            Op::RemoveWaitlist { id: e.id },
        ])
    }

    /// Moves an appointment to a new start (and optionally other
    /// resources): the new time is claimed and the old released in one
    /// atomic update, or neither; reminders follow the new time.
    ///
    /// # Errors
    ///
    /// `slot_unavailable`, `version_conflict`, `invalid_transition`, `not_found`.
    pub(crate) fn reschedule_in(
        &self,
        tenant: &TenantId,
        id: &str,
        expected_version: u64,
        new_start: DateTime<Utc>,
        resources: Option<Vec<String>>,
        extra: Vec<Op>,
    ) -> Result<Arc<StoredAppointment>, Error> {
        let now = self.now();
        let cat = self.catalog(tenant)?;
        let current = self.store.appointment(tenant, &AppointmentId::from(id))?;
        let a0 = &current.appointment;
        if !matches!(
            a0.status,
            AppointmentStatus::Booked | AppointmentStatus::Pending
        ) {
            return Err(Error::InvalidTransition {
                appointment: crate::error::truncate(id),
                from: a0.status.code(),
                to: a0.status.code(),
            });
        }
        let type_id = a0
            .type_id
            .as_ref()
            .ok_or_else(|| Error::invalid("appointment", "has no type to reschedule by"))?;
        let proposal = Proposal {
            type_id: type_id.0.clone(),
            start: new_start,
            resources: resources
                .unwrap_or_else(|| a0.resources.iter().map(|r| r.0.clone()).collect()),
            patient: a0.patient.as_ref().map(|p| p.0.clone()),
        };
        let report = self.check_one(tenant, &cat, &proposal, now, Some(current.key), false)?;
        if !report.bookable {
            return Err(unavailable(&report));
        }
        let duration = match (a0.start, a0.end) {
            (Some(s), Some(e)) => e - s,
            _ => chrono::Duration::zero(),
        };
        let mut a = a0.clone();
        a.start = Some(new_start);
        a.end = Some(new_start + duration);
        a.resources = report
            .assigned
            .iter()
            .map(|r| ResourceId::from(r.as_str()))
            .collect();
        let mut ops = vec![
            Op::Update {
                appointment: a.clone(),
                expected_version,
                hold_expires_at: current.hold_expires_at,
                claims: Self::claims(&cat, &a.resources),
                overbook: false,
            },
            Op::Supersede {
                appointment: a.id.clone(),
                kinds: vec![EventKind::ReminderDue],
            },
            Self::event(EventKind::Rescheduled, now, &a),
        ];
        if a.status == AppointmentStatus::Booked {
            ops.extend(Self::reminder_ops(&cat, &a, now.timestamp()));
        }
        ops.extend(extra);
        self.commit_one(tenant, now, ops)
    }

    /// Changes an appointment's status along the FHIR transition table
    /// ([`crate::status`]). Entering a status that holds time from one that
    /// does not re-checks and claims the slot. Use [`Engine::cancel`] to
    /// cancel and [`Engine::confirm`] to confirm a hold.
    ///
    /// # Errors
    ///
    /// `invalid_transition`, `slot_unavailable`, `version_conflict`, `not_found`.
    pub(crate) fn transition_in(
        &self,
        tenant: &TenantId,
        id: &str,
        expected_version: u64,
        to: AppointmentStatus,
        extra: Vec<Op>,
    ) -> Result<Arc<StoredAppointment>, Error> {
        if to == AppointmentStatus::Cancelled {
            return self.cancel_in(
                tenant,
                id,
                expected_version,
                "system",
                CancelReason::StatusChange,
                None,
                extra,
            );
        }
        let now = self.now();
        let cat = self.catalog(tenant)?;
        let current = self.store.appointment(tenant, &AppointmentId::from(id))?;
        let from = current.appointment.status;
        if !crate::status::allowed(from, to) {
            return Err(Error::InvalidTransition {
                appointment: crate::error::truncate(id),
                from: from.code(),
                to: to.code(),
            });
        }
        let mut a = current.appointment.clone();
        a.status = to;
        // A lapsed hold holds no time any more: moving it to a status that
        // holds time claims the slot again, checked like a new booking.
        let lapsed = current.hold_expires_at.is_some_and(|h| h <= now);
        let claims_needed = to.holds_time() && (!from.holds_time() || lapsed);
        if claims_needed {
            if let (Some(t), Some(start)) = (a.type_id.as_ref(), a.start) {
                let p = Proposal {
                    type_id: t.0.clone(),
                    start,
                    resources: a.resources.iter().map(|r| r.0.clone()).collect(),
                    patient: a.patient.as_ref().map(|p| p.0.clone()),
                };
                let report = self.check_one(tenant, &cat, &p, now, Some(current.key), false)?;
                if !report.bookable {
                    return Err(unavailable(&report));
                }
            }
        }
        let mut ops = vec![Op::Update {
            appointment: a.clone(),
            expected_version,
            hold_expires_at: if to == AppointmentStatus::Pending {
                current.hold_expires_at
            } else {
                None
            },
            claims: if claims_needed {
                Self::claims(&cat, &a.resources)
            } else {
                vec![]
            },
            overbook: false,
        }];
        if !to.holds_time()
            || matches!(to, AppointmentStatus::Fulfilled | AppointmentStatus::Noshow)
        {
            ops.push(Op::Supersede {
                appointment: a.id.clone(),
                kinds: vec![EventKind::ReminderDue],
            });
        }
        let kind = if to == AppointmentStatus::Booked {
            EventKind::Booked
        } else {
            EventKind::StatusChanged
        };
        ops.push(Self::event(kind, now, &a));
        if to == AppointmentStatus::Booked {
            ops.extend(Self::reminder_ops(&cat, &a, now.timestamp()));
        }
        ops.extend(extra);
        self.commit_one(tenant, now, ops)
    }

    /// Books a recurring series under a policy: all-or-nothing commits every
    /// occurrence in one atomic batch or none; book-free commits the free
    /// occurrences and reports the rest.
    ///
    /// # Errors
    ///
    /// `slot_unavailable` (all-or-nothing with a conflict), and as
    /// [`Schedule::check_series`].
    pub(crate) fn book_series_in(
        &self,
        tenant: &TenantId,
        p: &SeriesProposal,
        policy: SeriesPolicy,
        idempotency_key: Option<&str>,
        extra: Vec<Op>,
    ) -> Result<SeriesBooking, Error> {
        let now = self.now();
        let fingerprint = format!(
            "{:016x}",
            fnv(&[
                "series",
                &p.type_id,
                &p.zone,
                &p.dtstart.to_string(),
                &p.rrule,
                &p.resources.join(","),
                p.patient.as_deref().unwrap_or_default(),
                if policy == SeriesPolicy::AllOrNothing {
                    "all"
                } else {
                    "free"
                }
            ])
        );
        let key = idempotency_key.map(str::to_owned);
        if let Some(c) = self.replay(tenant, key.as_ref(), &fingerprint)? {
            let report = SeriesReport {
                occurrences: Vec::new(),
                truncated: false,
            };
            return Ok(SeriesBooking {
                booked: c.appointments,
                report,
            });
        }
        let cat = self.catalog(tenant)?;
        let t = cat.type_idx(&p.type_id)?;
        let ty_rec = cat
            .appointment_type(&p.type_id)
            .ok_or_else(|| Error::not_found(RecordKind::AppointmentType, &p.type_id))?
            .clone();
        let mut chosen = Vec::new();
        for r in &p.resources {
            chosen.push(cat.resource_idx(r)?);
        }
        let resources = Self::candidates(&cat, t, &chosen);
        let zone = crate::time::parse_zone(&p.zone)?;
        let first = crate::time::resolve_naive(
            zone,
            p.dtstart,
            medsched_storage::Nonexistent::ShiftForward,
        )
        .unwrap_or_default();
        let last = first + crate::slots::MAX_WINDOW_DAYS * 5 * DAY;
        let schedule = self.view(
            tenant,
            &cat,
            Some(t),
            &resources,
            first - 9 * DAY,
            last + 9 * DAY,
            now.timestamp(),
            true,
            None,
            p.patient.as_deref(),
        )?;
        let report = schedule.check_series(p, now)?;
        if policy == SeriesPolicy::AllOrNothing && !report.all_bookable() {
            let first_bad = report.occurrences.iter().find(|o| !o.bookable);
            return Err(first_bad.map_or(
                Error::SlotUnavailable {
                    resource: None,
                    reasons: vec![],
                },
                unavailable,
            ));
        }
        let series_id = format!(
            "ser-{:016x}",
            fnv(&[
                tenant.as_str(),
                &fingerprint,
                &self.salt.to_string(),
                &now.to_string()
            ])
        );
        let mut ops = Vec::new();
        let mut appointments = Vec::new();
        for (k, o) in report.occurrences.iter().enumerate() {
            if !o.bookable {
                continue;
            }
            let resources: Vec<ResourceId> = o
                .assigned
                .iter()
                .map(|r| ResourceId::from(r.as_str()))
                .collect();
            let a = Appointment {
                id: AppointmentId(format!("{series_id}-{k}")),
                type_id: Some(AppointmentTypeId(p.type_id.clone())),
                patient: p.patient.as_deref().map(PatientId::from),
                resources: resources.clone(),
                start: Some(o.start),
                end: Some(o.end),
                status: AppointmentStatus::Booked,
                buffer_before_min: ty_rec.buffer_before_min,
                buffer_after_min: ty_rec.buffer_after_min,
                reason: None,
                notes: None,
            };
            ops.push(Op::Insert {
                appointment: a.clone(),
                hold_expires_at: None,
                claims: Self::claims(&cat, &resources),
                overbook: false,
            });
            ops.push(Self::event(EventKind::Booked, now, &a));
            ops.extend(Self::reminder_ops(&cat, &a, now.timestamp()));
            appointments.push(a);
        }
        if appointments.is_empty() {
            return Ok(SeriesBooking {
                booked: Vec::new(),
                report,
            });
        }
        ops.extend(extra);
        let committed = self.store.commit(
            tenant,
            Batch {
                now,
                idempotency: key.map(|k| Idempotency {
                    key: k,
                    fingerprint,
                }),
                ops,
            },
        )?;
        Ok(SeriesBooking {
            booked: committed.appointments,
            report,
        })
    }

    /// Puts a patient on the waitlist.
    ///
    /// # Errors
    ///
    /// `end_before_start`, `not_found` (type or resource), `duplicate_id`.
    pub(crate) fn add_waitlist_in(
        &self,
        tenant: &TenantId,
        entry: WaitlistEntry,
        extra: Vec<Op>,
    ) -> Result<(), Error> {
        let cat = self.catalog(tenant)?;
        cat.type_idx(entry.type_id.as_str())?;
        for r in &entry.resources {
            cat.resource_idx(r.as_str())?;
        }
        if entry.to <= entry.from {
            return Err(Error::EndBeforeStart {
                what: "waitlist window".into(),
            });
        }
        self.store.commit(
            tenant,
            Batch {
                now: self.now(),
                idempotency: None,
                ops: std::iter::once(Op::AddWaitlist(entry))
                    .chain(extra)
                    .collect(),
            },
        )?;
        Ok(())
    }

    /// Claims deliverable outbox events for a worker (at-least-once: an
    /// event whose worker died is claimable again after its lease).
    ///
    /// # Errors
    ///
    /// `storage_unavailable`.
    pub(crate) fn claim_events_in(
        &self,
        tenant: &TenantId,
        worker: &str,
        max: usize,
        lease_secs: i64,
    ) -> Result<Vec<OutboxEvent>, Error> {
        Ok(self
            .store
            .claim_events(tenant, worker, max, self.now(), lease_secs)?)
    }

    /// Acknowledges a delivered event.
    ///
    /// # Errors
    ///
    /// `lease_lost`, `not_found`.
    pub(crate) fn ack_event_in(
        &self,
        tenant: &TenantId,
        event_id: u64,
        worker: &str,
    ) -> Result<(), Error> {
        Ok(self.store.ack_event(tenant, event_id, worker, self.now())?)
    }

    /// Local wall time helper for series built from user input.
    pub fn series(
        type_id: &str,
        zone: &str,
        dtstart: NaiveDateTime,
        rrule: &str,
        resources: Vec<String>,
        patient: Option<String>,
    ) -> SeriesProposal {
        SeriesProposal {
            type_id: type_id.to_owned(),
            zone: zone.to_owned(),
            dtstart,
            rrule: rrule.to_owned(),
            resources,
            patient,
        }
    }
}

/// The `slot_unavailable` error of a failed check, with its reason codes.
fn unavailable(r: &OccurrenceReport) -> Error {
    let mut reasons: Vec<String> = r
        .conflicts
        .iter()
        .flat_map(|c| c.reasons.iter().map(|x| x.code().to_owned()))
        .chain(r.patient_conflicts.iter().map(|x| x.code().to_owned()))
        .collect();
    reasons.sort();
    reasons.dedup();
    let resource = match r.conflicts.as_slice() {
        [one] => one.resource.as_deref().map(crate::error::truncate),
        _ => None,
    };
    Error::SlotUnavailable { resource, reasons }
}
