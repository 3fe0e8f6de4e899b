//! `MemoryStore`: the embedded default store. Thread-safe (one `RwLock` per
//! tenant: availability reads share it, commits take it alone), with
//! per-resource indexes sorted by busy start so the batched availability
//! read is a binary search and a copy.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use chrono::{DateTime, Utc};

use crate::audit::{AuditRecord, NewAudit, GENESIS};
use crate::records::{
    Appointment, AppointmentId, AppointmentTypeId, Clinic, PatientId, ResourceId, TenantId,
};
use crate::store::{
    AppointmentKey, Batch, BookingRow, BookingsQuery, Claim, Committed, NewEvent, Op, OutboxEvent,
    StorageError, StorageErrorKind, Store, StoredAppointment, VersionedCatalog, WaitlistEntry,
};

/// No type, in [`IndexRow::type_sym`].
const NO_TYPE: u32 = u32::MAX;

/// One appointment with time on one resource.
#[derive(Debug, Clone, Copy)]
struct IndexRow {
    busy_start: i64,
    busy_end: i64,
    start: i64,
    end: i64,
    /// `i64::MAX` when not a hold.
    hold_until: i64,
    key: AppointmentKey,
    type_sym: u32,
}

impl IndexRow {
    fn active_at(&self, now: i64) -> bool {
        self.hold_until > now
    }
}

#[derive(Debug, Default)]
struct ResourceIndex {
    /// Sorted by (busy_start, key).
    rows: Vec<IndexRow>,
    /// Longest busy span, bounding the search back from a window start.
    longest: i64,
}

#[derive(Debug)]
struct EventEntry {
    event: OutboxEvent,
    lease: Option<(String, i64)>,
}

#[derive(Debug, Default)]
struct TenantState {
    catalog: Option<VersionedCatalog>,
    /// Indexed by key − 1.
    rows: Vec<Option<Arc<StoredAppointment>>>,
    by_id: HashMap<AppointmentId, AppointmentKey>,
    by_resource: HashMap<ResourceId, ResourceIndex>,
    by_patient: HashMap<PatientId, Vec<AppointmentKey>>,
    types: Vec<AppointmentTypeId>,
    idempotency: HashMap<String, (String, Committed)>,
    /// Undelivered events by (due, id).
    outbox: BTreeMap<(i64, u64), EventEntry>,
    event_due: HashMap<u64, i64>,
    events_of: HashMap<AppointmentId, Vec<u64>>,
    next_event: u64,
    waitlist: Vec<WaitlistEntry>,
    audit: Vec<AuditRecord>,
}

/// The embedded default store, in memory.
#[derive(Debug, Default)]
pub struct MemoryStore {
    tenants: RwLock<HashMap<TenantId, Arc<RwLock<TenantState>>>>,
}

fn read<T>(l: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(PoisonError::into_inner)
}

fn write<T>(l: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(PoisonError::into_inner)
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Direct access to a tenant's audit records, bypassing the chain: for
    /// tests that prove tampering is detected. Not for application use.
    pub fn tamper_with_audit(&self, tenant: &TenantId, f: impl FnOnce(&mut Vec<AuditRecord>)) {
        let t = self.tenant(tenant);
        let mut state = write(&t);
        f(&mut state.audit);
    }

    fn tenant(&self, tenant: &TenantId) -> Arc<RwLock<TenantState>> {
        if let Some(t) = read(&self.tenants).get(tenant) {
            return Arc::clone(t);
        }
        Arc::clone(write(&self.tenants).entry(tenant.clone()).or_default())
    }
}

/// What to undo when a later op of the batch fails.
enum Undo {
    Inserted(AppointmentKey),
    Updated(Arc<StoredAppointment>),
    Emitted(u64),
    Superseded(Vec<EventEntry>),
    WaitlistAdded(String),
    WaitlistRemoved(usize, WaitlistEntry),
    Audited,
}

impl TenantState {
    fn seal_audit(&mut self, entry: NewAudit) -> AuditRecord {
        let prev = self
            .audit
            .last()
            .map_or(GENESIS, |r| r.hash.as_str())
            .to_owned();
        let record = AuditRecord::seal(self.audit.len() as u64 + 1, entry, &prev);
        self.audit.push(record.clone());
        record
    }

    fn type_sym(&mut self, t: Option<&AppointmentTypeId>) -> u32 {
        let Some(t) = t else { return NO_TYPE };
        match self.types.iter().position(|x| x == t) {
            Some(p) => p as u32,
            None => {
                self.types.push(t.clone());
                (self.types.len() - 1) as u32
            }
        }
    }

    fn row(&self, key: AppointmentKey) -> Option<&Arc<StoredAppointment>> {
        self.rows
            .get((key as usize).wrapping_sub(1))
            .and_then(Option::as_ref)
    }

    fn index_add(&mut self, s: &StoredAppointment) {
        let a = &s.appointment;
        let (Some(start), Some(end)) = (a.start, a.end) else {
            return;
        };
        if !a.status.holds_time() {
            return;
        }
        let (start, end) = (start.timestamp(), end.timestamp());
        let row = IndexRow {
            busy_start: start - i64::from(a.buffer_before_min) * 60,
            busy_end: end + i64::from(a.buffer_after_min) * 60,
            start,
            end,
            hold_until: s.hold_expires_at.map_or(i64::MAX, |h| h.timestamp()),
            key: s.key,
            type_sym: self.type_sym(a.type_id.as_ref()),
        };
        for r in &a.resources {
            let idx = self.by_resource.entry(r.clone()).or_default();
            let at = idx
                .rows
                .partition_point(|x| (x.busy_start, x.key) < (row.busy_start, row.key));
            idx.rows.insert(at, row);
            idx.longest = idx.longest.max(row.busy_end - row.busy_start);
        }
        if let Some(p) = &a.patient {
            self.by_patient.entry(p.clone()).or_default().push(s.key);
        }
    }

    fn index_remove(&mut self, s: &StoredAppointment) {
        let a = &s.appointment;
        for r in &a.resources {
            if let Some(idx) = self.by_resource.get_mut(r) {
                idx.rows.retain(|x| x.key != s.key);
            }
        }
        if let Some(p) = &a.patient {
            if let Some(v) = self.by_patient.get_mut(p) {
                v.retain(|k| *k != s.key);
            }
        }
    }

    /// Checks a claim: the span plus the active rows overlapping it stay
    /// within capacity at every instant.
    fn check_claim(
        &self,
        claim: &Claim,
        span: (i64, i64),
        now: i64,
        except: Option<AppointmentKey>,
    ) -> Result<(), StorageError> {
        let Some(idx) = self.by_resource.get(&claim.resource) else {
            return Ok(());
        };
        let lo = idx
            .rows
            .partition_point(|x| x.busy_start < span.0 - idx.longest);
        let mut overlapping: Vec<(i64, i64)> = Vec::new();
        for x in idx.rows.get(lo..).unwrap_or_default() {
            if x.busy_start >= span.1 {
                break;
            }
            if x.busy_end > span.0 && x.active_at(now) && Some(x.key) != except {
                overlapping.push((x.busy_start.max(span.0), x.busy_end.min(span.1)));
            }
        }
        if overlapping.is_empty() {
            return Ok(());
        }
        if claim.capacity <= 1 {
            return Err(StorageError::slot_taken(&claim.resource));
        }
        let mut events: Vec<(i64, i32)> = overlapping
            .iter()
            .flat_map(|&(s, e)| [(s, 1), (e, -1)])
            .collect();
        events.sort_unstable();
        let mut depth = 0i64;
        for (_, d) in events {
            depth += i64::from(d);
            if depth + 1 > i64::from(claim.capacity) {
                return Err(StorageError::slot_taken(&claim.resource));
            }
        }
        Ok(())
    }

    fn check_claims(
        &self,
        a: &Appointment,
        claims: &[Claim],
        overbook: bool,
        now: i64,
        except: Option<AppointmentKey>,
    ) -> Result<(), StorageError> {
        if overbook || claims.is_empty() || !a.status.holds_time() {
            return Ok(());
        }
        let (Some(start), Some(end)) = (a.start, a.end) else {
            return Ok(());
        };
        let span = (
            start.timestamp() - i64::from(a.buffer_before_min) * 60,
            end.timestamp() + i64::from(a.buffer_after_min) * 60,
        );
        for c in claims {
            self.check_claim(c, span, now, except)?;
        }
        Ok(())
    }

    fn apply(
        &mut self,
        tenant: &TenantId,
        op: Op,
        now: i64,
        out: &mut Vec<Arc<StoredAppointment>>,
        undo: &mut Vec<Undo>,
    ) -> Result<(), StorageError> {
        match op {
            Op::Insert {
                appointment,
                hold_expires_at,
                claims,
                overbook,
            } => {
                if self.by_id.contains_key(&appointment.id) {
                    return Err(StorageError::duplicate(
                        "appointment",
                        appointment.id.as_str(),
                    ));
                }
                self.check_claims(&appointment, &claims, overbook, now, None)?;
                let key = self.rows.len() as u64 + 1;
                let stored = Arc::new(StoredAppointment {
                    key,
                    version: 1,
                    hold_expires_at,
                    appointment,
                });
                self.by_id.insert(stored.appointment.id.clone(), key);
                self.index_add(&stored);
                self.rows.push(Some(Arc::clone(&stored)));
                undo.push(Undo::Inserted(key));
                out.push(stored);
            }
            Op::Update {
                appointment,
                expected_version,
                hold_expires_at,
                claims,
                overbook,
            } => {
                let key = *self.by_id.get(&appointment.id).ok_or_else(|| {
                    StorageError::not_found("appointment", appointment.id.as_str())
                })?;
                let old = self.row(key).cloned().ok_or_else(|| {
                    StorageError::not_found("appointment", appointment.id.as_str())
                })?;
                if old.version != expected_version {
                    return Err(StorageError::new(
                        StorageErrorKind::VersionConflict,
                        format!(
                            "appointment `{}` is at version {}, not {expected_version}",
                            appointment.id, old.version
                        ),
                    ));
                }
                self.check_claims(&appointment, &claims, overbook, now, Some(key))?;
                let stored = Arc::new(StoredAppointment {
                    key,
                    version: old.version + 1,
                    hold_expires_at,
                    appointment,
                });
                self.index_remove(&old);
                self.index_add(&stored);
                if let Some(slot) = self.rows.get_mut(key as usize - 1) {
                    *slot = Some(Arc::clone(&stored));
                }
                undo.push(Undo::Updated(old));
                out.push(stored);
            }
            Op::Emit(NewEvent { kind, due_at, data }) => {
                self.next_event += 1;
                let id = self.next_event;
                let due = due_at.timestamp();
                if let Some(a) = &data.appointment {
                    self.events_of.entry(a.clone()).or_default().push(id);
                }
                self.outbox.insert(
                    (due, id),
                    EventEntry {
                        event: OutboxEvent {
                            id,
                            tenant: tenant.clone(),
                            kind,
                            due_at,
                            data,
                            attempts: 0,
                        },
                        lease: None,
                    },
                );
                self.event_due.insert(id, due);
                undo.push(Undo::Emitted(id));
            }
            Op::Supersede { appointment, kinds } => {
                let ids = self
                    .events_of
                    .get(&appointment)
                    .cloned()
                    .unwrap_or_default();
                let mut removed = Vec::new();
                for id in ids {
                    let Some(&due) = self.event_due.get(&id) else {
                        continue;
                    };
                    let matches = self
                        .outbox
                        .get(&(due, id))
                        .is_some_and(|e| kinds.contains(&e.event.kind));
                    if matches {
                        if let Some(e) = self.outbox.remove(&(due, id)) {
                            self.event_due.remove(&id);
                            removed.push(e);
                        }
                    }
                }
                undo.push(Undo::Superseded(removed));
            }
            Op::AddWaitlist(entry) => {
                if self.waitlist.iter().any(|w| w.id == entry.id) {
                    return Err(StorageError::duplicate("waitlist entry", entry.id.as_str()));
                }
                undo.push(Undo::WaitlistAdded(entry.id.clone()));
                self.waitlist.push(entry);
            }
            Op::Audit(entry) => {
                self.seal_audit(entry);
                undo.push(Undo::Audited);
            }
            Op::RemoveWaitlist { id } => {
                if let Some(pos) = self.waitlist.iter().position(|w| w.id == id) {
                    let e = self.waitlist.remove(pos);
                    undo.push(Undo::WaitlistRemoved(pos, e));
                }
            }
        }
        Ok(())
    }

    fn rollback(&mut self, undo: Vec<Undo>) {
        for u in undo.into_iter().rev() {
            match u {
                Undo::Inserted(key) => {
                    if let Some(s) = self.row(key).cloned() {
                        self.index_remove(&s);
                        self.by_id.remove(&s.appointment.id);
                    }
                    self.rows.truncate(key as usize - 1);
                }
                Undo::Updated(old) => {
                    if let Some(cur) = self.row(old.key).cloned() {
                        self.index_remove(&cur);
                    }
                    self.index_add(&old);
                    if let Some(slot) = self.rows.get_mut(old.key as usize - 1) {
                        *slot = Some(old);
                    }
                }
                Undo::Emitted(id) => {
                    if let Some(due) = self.event_due.remove(&id) {
                        if let Some(e) = self.outbox.remove(&(due, id)) {
                            if let Some(a) = &e.event.data.appointment {
                                if let Some(v) = self.events_of.get_mut(a) {
                                    v.retain(|x| *x != id);
                                }
                            }
                        }
                    }
                    self.next_event -= 1;
                }
                Undo::Superseded(entries) => {
                    for e in entries {
                        let due = e.event.due_at.timestamp();
                        self.event_due.insert(e.event.id, due);
                        self.outbox.insert((due, e.event.id), e);
                    }
                }
                Undo::WaitlistAdded(id) => self.waitlist.retain(|w| w.id != id),
                Undo::Audited => {
                    self.audit.pop();
                }
                Undo::WaitlistRemoved(pos, e) => {
                    let pos = pos.min(self.waitlist.len());
                    self.waitlist.insert(pos, e);
                }
            }
        }
    }
}

impl Store for MemoryStore {
    fn catalog(&self, tenant: &TenantId) -> Result<VersionedCatalog, StorageError> {
        read(&self.tenant(tenant))
            .catalog
            .clone()
            .ok_or_else(|| StorageError::not_found("catalog of tenant", tenant.as_str()))
    }

    fn catalog_version(&self, tenant: &TenantId) -> Result<u64, StorageError> {
        Ok(read(&self.tenant(tenant))
            .catalog
            .as_ref()
            .map_or(0, |c| c.version))
    }

    fn replace_catalog(
        &self,
        tenant: &TenantId,
        catalog: Clinic,
        expected_version: u64,
    ) -> Result<u64, StorageError> {
        if !catalog.appointments.is_empty() {
            return Err(StorageError::new(
                StorageErrorKind::Invalid,
                "a catalog holds no appointments; commit them as inserts",
            ));
        }
        let t = self.tenant(tenant);
        let mut state = write(&t);
        let current = state.catalog.as_ref().map_or(0, |c| c.version);
        if current != expected_version {
            return Err(StorageError::new(
                StorageErrorKind::VersionConflict,
                format!("catalog is at version {current}, not {expected_version}"),
            ));
        }
        state.catalog = Some(VersionedCatalog {
            version: current + 1,
            catalog: Arc::new(catalog),
        });
        Ok(current + 1)
    }

    fn bookings(
        &self,
        tenant: &TenantId,
        q: &BookingsQuery<'_>,
        out: &mut Vec<BookingRow>,
    ) -> Result<(), StorageError> {
        let t = self.tenant(tenant);
        let state = read(&t);
        let want = q
            .type_id
            .and_then(|t| state.types.iter().position(|x| x == t))
            .map_or(NO_TYPE - 1, |p| p as u32);
        for (pos, r) in q.resources.iter().enumerate() {
            let Some(idx) = state.by_resource.get(r) else {
                continue;
            };
            let lo = if idx.rows.first().is_some_and(|x| x.busy_start >= q.from) {
                0
            } else {
                idx.rows
                    .partition_point(|x| x.busy_start < q.from - idx.longest)
            };
            let first = out.len();
            for x in idx.rows.get(lo..).unwrap_or_default() {
                if x.busy_start >= q.to {
                    break;
                }
                if x.busy_end > q.from && x.active_at(q.now) {
                    out.push(BookingRow {
                        resource: pos as u32,
                        start: x.start,
                        end: x.end,
                        buffer_before: x.start - x.busy_start,
                        buffer_after: x.busy_end - x.end,
                        key: x.key,
                        same_type: x.type_sym == want,
                    });
                }
            }
            // The index is ordered by busy start, the contract by start: they
            // differ only where rows overlap with different buffers before.
            if let Some(rows) = out.get_mut(first..) {
                if !rows.is_sorted_by_key(|r| r.start) {
                    rows.sort_by_key(|r| r.start);
                }
            }
        }
        Ok(())
    }

    fn patient_bookings(
        &self,
        tenant: &TenantId,
        patient: &PatientId,
        from: i64,
        to: i64,
        now: i64,
    ) -> Result<Vec<Arc<StoredAppointment>>, StorageError> {
        let t = self.tenant(tenant);
        let state = read(&t);
        let keys = state.by_patient.get(patient).cloned().unwrap_or_default();
        Ok(keys
            .into_iter()
            .filter_map(|k| state.row(k).cloned())
            .filter(|s| {
                s.busy_at(now).is_some()
                    && s.appointment.start.is_some_and(|st| st.timestamp() < to)
                    && s.appointment.end.is_some_and(|e| e.timestamp() > from)
            })
            .collect())
    }

    fn appointment(
        &self,
        tenant: &TenantId,
        id: &AppointmentId,
    ) -> Result<Arc<StoredAppointment>, StorageError> {
        let t = self.tenant(tenant);
        let state = read(&t);
        state
            .by_id
            .get(id)
            .and_then(|k| state.row(*k).cloned())
            .ok_or_else(|| StorageError::not_found("appointment", id.as_str()))
    }

    fn appointment_by_key(
        &self,
        tenant: &TenantId,
        key: AppointmentKey,
    ) -> Result<Arc<StoredAppointment>, StorageError> {
        let t = self.tenant(tenant);
        let state = read(&t);
        state
            .row(key)
            .cloned()
            .ok_or_else(|| StorageError::not_found("appointment key", &key.to_string()))
    }

    fn idempotent(
        &self,
        tenant: &TenantId,
        key: &str,
    ) -> Result<Option<(String, Committed)>, StorageError> {
        let t = self.tenant(tenant);
        let state = read(&t);
        Ok(state.idempotency.get(key).cloned())
    }

    fn commit(&self, tenant: &TenantId, batch: Batch) -> Result<Committed, StorageError> {
        let t = self.tenant(tenant);
        let mut state = write(&t);
        if let Some(idem) = &batch.idempotency {
            if let Some((fingerprint, result)) = state.idempotency.get(&idem.key) {
                if *fingerprint != idem.fingerprint {
                    return Err(StorageError::new(
                        StorageErrorKind::IdempotencyMismatch,
                        "idempotency key reused with different parameters",
                    ));
                }
                return Ok(Committed {
                    appointments: result.appointments.clone(),
                    replayed: true,
                });
            }
        }
        let now = batch.now.timestamp();
        let mut out = Vec::new();
        let mut undo = Vec::new();
        for op in batch.ops {
            if let Err(e) = state.apply(tenant, op, now, &mut out, &mut undo) {
                state.rollback(undo);
                return Err(e);
            }
        }
        let committed = Committed {
            appointments: out,
            replayed: false,
        };
        if let Some(idem) = batch.idempotency {
            state
                .idempotency
                .insert(idem.key, (idem.fingerprint, committed.clone()));
        }
        Ok(committed)
    }

    fn claim_events(
        &self,
        tenant: &TenantId,
        worker: &str,
        max: usize,
        now: DateTime<Utc>,
        lease_secs: i64,
    ) -> Result<Vec<OutboxEvent>, StorageError> {
        let t = self.tenant(tenant);
        let mut state = write(&t);
        let now = now.timestamp();
        let mut claimed = Vec::new();
        for ((due, _), entry) in state.outbox.iter_mut() {
            if *due > now || claimed.len() >= max {
                break;
            }
            if entry.lease.as_ref().is_some_and(|(_, until)| *until > now) {
                continue;
            }
            entry.lease = Some((worker.to_owned(), now + lease_secs));
            entry.event.attempts += 1;
            claimed.push(entry.event.clone());
        }
        Ok(claimed)
    }

    fn ack_event(
        &self,
        tenant: &TenantId,
        event_id: u64,
        worker: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StorageError> {
        let t = self.tenant(tenant);
        let mut state = write(&t);
        let due = *state
            .event_due
            .get(&event_id)
            .ok_or_else(|| StorageError::not_found("event", &event_id.to_string()))?;
        let holds = state
            .outbox
            .get(&(due, event_id))
            .and_then(|e| e.lease.as_ref())
            .is_some_and(|(w, until)| w == worker && *until > now.timestamp());
        if !holds {
            return Err(StorageError::new(
                StorageErrorKind::LeaseLost,
                format!("event {event_id} is not leased to this worker"),
            ));
        }
        if let Some(e) = state.outbox.remove(&(due, event_id)) {
            if let Some(a) = &e.event.data.appointment {
                if let Some(v) = state.events_of.get_mut(a) {
                    v.retain(|x| *x != event_id);
                }
            }
        }
        state.event_due.remove(&event_id);
        Ok(())
    }

    fn append_audit(
        &self,
        tenant: &TenantId,
        entry: NewAudit,
    ) -> Result<AuditRecord, StorageError> {
        let t = self.tenant(tenant);
        let mut state = write(&t);
        Ok(state.seal_audit(entry))
    }

    fn audit_records(
        &self,
        tenant: &TenantId,
        from_seq: u64,
        max: usize,
    ) -> Result<Vec<AuditRecord>, StorageError> {
        let t = self.tenant(tenant);
        let state = read(&t);
        let start = (from_seq.max(1) - 1) as usize;
        Ok(state.audit.iter().skip(start).take(max).cloned().collect())
    }

    fn waitlist(
        &self,
        tenant: &TenantId,
        type_id: &AppointmentTypeId,
    ) -> Result<Vec<WaitlistEntry>, StorageError> {
        let t = self.tenant(tenant);
        let state = read(&t);
        let mut v: Vec<WaitlistEntry> = state
            .waitlist
            .iter()
            .filter(|w| &w.type_id == type_id)
            .cloned()
            .collect();
        v.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(v)
    }
}
