//! `impl Store for PgStore`.

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use medsched_storage::{
    Appointment, AppointmentId, AppointmentKey, AppointmentTypeId, AuditRecord, Batch, BookingRow,
    BookingsQuery, Claim, Clinic, Committed, EventData, EventKind, NewAudit, NewEvent, Op,
    OutboxEvent, PatientId, Phi, ResourceId, StorageError, StorageErrorKind, Store,
    StoredAppointment, TenantId, VersionedCatalog, WaitlistEntry, GENESIS,
};
use postgres::error::SqlState;
use postgres::types::Json;
use postgres::{Row, Transaction};
use serde_json::Value;

use crate::crypto::{self, KeyRing, PhiSlot};
use crate::insert::Item;
use crate::{Fail, PgStore};

/// Advisory lock classes (first key of `pg_advisory_xact_lock(int, int)`).
pub(crate) const LOCK_RESOURCE: i32 = 1;
pub(crate) const LOCK_IDEMPOTENCY: i32 = 2;
pub(crate) const LOCK_AUDIT: i32 = 3;

const APPT_COLS: &str = "key, version, hold_expires_at, id, status, start_at, end_at, \
     buffer_before_min, buffer_after_min, resources, patient_id, type_id, reason, notes";

/// The table and columns of the PHI fields (bound into their associated
/// data).
const APPT_TABLE: &str = "appointments";
const REASON: &str = "reason";
const NOTES: &str = "notes";

fn slot<'a>(tenant: &'a str, column: &'a str, row_id: &'a str) -> PhiSlot<'a> {
    PhiSlot {
        tenant,
        table: APPT_TABLE,
        column,
        row_id,
    }
}

/// Decodes a stored PHI column of appointment `id`.
fn open_phi(
    ring: Option<&KeyRing>,
    tenant: &str,
    column: &str,
    id: &str,
    stored: Option<Vec<u8>>,
) -> Result<Option<Phi<String>>, StorageError> {
    stored
        .map(|bytes| crypto::open(ring, &slot(tenant, column, id), &bytes).map(Phi))
        .transpose()
}

/// Encodes a PHI field of appointment `id` for its column.
fn seal_phi(
    ring: Option<&KeyRing>,
    tenant: &str,
    column: &str,
    id: &str,
    value: Option<&Phi<String>>,
) -> Result<Option<Vec<u8>>, StorageError> {
    value
        .map(|v| crypto::seal(ring, &slot(tenant, column, id), &v.0))
        .transpose()
}

pub(crate) fn invalid(message: impl Into<String>) -> StorageError {
    StorageError::new(StorageErrorKind::Invalid, message)
}

fn to_i64(v: u64, what: &str) -> Result<i64, StorageError> {
    i64::try_from(v).map_err(|_| invalid(format!("{what} out of range")))
}

pub(crate) fn to_u64(v: i64) -> Result<u64, StorageError> {
    u64::try_from(v)
        .map_err(|_| StorageError::new(StorageErrorKind::Integrity, "negative stored counter"))
}

pub(crate) fn instant(secs: i64) -> Result<DateTime<Utc>, StorageError> {
    DateTime::<Utc>::from_timestamp(secs, 0).ok_or_else(|| invalid("instant out of range"))
}

/// The name of a tenant's advisory lock of one class (the lock key is
/// `hashtext` of it; `medsched.commit_insert` builds the same names).
pub(crate) fn lock_name(tenant: &TenantId, name: &str) -> String {
    format!("{}\u{1f}{name}", tenant.as_str())
}

fn lock(tx: &mut Transaction<'_>, class: i32, tenant: &TenantId, name: &str) -> Result<(), Fail> {
    tx.execute(
        "SELECT pg_advisory_xact_lock($1, hashtext($2))",
        &[&class, &lock_name(tenant, name)],
    )?;
    Ok(())
}

/// An insert of an appointment id that exists.
pub(crate) fn duplicate_appointment(id: &AppointmentId) -> StorageError {
    StorageError::duplicate("appointment", id.as_str())
}

pub(crate) fn to_json<T: serde::Serialize>(v: &T) -> Result<Value, StorageError> {
    serde_json::to_value(v).map_err(|_| invalid("record cannot be serialized"))
}

fn from_json<T: serde::de::DeserializeOwned>(v: Value, what: &str) -> Result<T, StorageError> {
    serde_json::from_value(v).map_err(|_| {
        StorageError::new(
            StorageErrorKind::Integrity,
            format!("stored {what} is unreadable"),
        )
    })
}

pub(crate) fn kind_code(kind: EventKind) -> Result<String, StorageError> {
    match to_json(&kind)? {
        Value::String(s) => Ok(s),
        _ => Err(invalid("event kind has no code")),
    }
}

/// The appointment without its PHI fields, as stored in `doc`.
pub(crate) fn without_phi(a: &Appointment) -> Appointment {
    Appointment {
        reason: None,
        notes: None,
        ..a.clone()
    }
}

/// An appointment row (columns [`APPT_COLS`]) with its PHI decrypted.
fn stored_from_row(
    row: &Row,
    tenant: &TenantId,
    ring: Option<&KeyRing>,
) -> Result<StoredAppointment, Fail> {
    let unreadable = || {
        StorageError::new(
            StorageErrorKind::Integrity,
            "stored appointment is unreadable",
        )
    };
    let key: i64 = row.try_get(0)?;
    let version: i64 = row.try_get(1)?;
    let hold_expires_at: Option<DateTime<Utc>> = row.try_get(2)?;
    let id: String = row.try_get(3)?;
    let status: String = row.try_get(4)?;
    let buffer = |i: usize| -> Result<u32, Fail> {
        let minutes: i64 = row.try_get(i)?;
        Ok(u32::try_from(minutes).map_err(|_| unreadable())?)
    };
    let resources: Vec<String> = row.try_get(9)?;
    let patient: Option<String> = row.try_get(10)?;
    let type_id: Option<String> = row.try_get(11)?;
    let t = tenant.as_str();
    let appointment = Appointment {
        status: from_json(Value::String(status), "appointment status")?,
        start: row.try_get(5)?,
        end: row.try_get(6)?,
        buffer_before_min: buffer(7)?,
        buffer_after_min: buffer(8)?,
        resources: resources.into_iter().map(ResourceId).collect(),
        patient: patient.map(PatientId),
        type_id: type_id.map(AppointmentTypeId),
        reason: open_phi(ring, t, REASON, &id, row.try_get(12)?)?,
        notes: open_phi(ring, t, NOTES, &id, row.try_get(13)?)?,
        id: AppointmentId(id),
    };
    Ok(StoredAppointment {
        key: to_u64(key)?,
        version: to_u64(version)?,
        hold_expires_at,
        appointment,
    })
}

/// The busy span of an appointment that holds time, in epoch seconds.
pub(crate) fn busy_span(a: &Appointment) -> Option<(i64, i64)> {
    if !a.status.holds_time() {
        return None;
    }
    let (start, end) = (a.start?.timestamp(), a.end?.timestamp());
    Some((
        start - i64::from(a.buffer_before_min) * 60,
        end + i64::from(a.buffer_after_min) * 60,
    ))
}

/// The most spans overlapping at one instant (half-open spans).
fn max_depth(spans: &[(i64, i64)]) -> u64 {
    let mut edges: Vec<(i64, i64)> = spans.iter().flat_map(|&(s, e)| [(s, 1), (e, -1)]).collect();
    edges.sort_unstable();
    let (mut depth, mut most) = (0i64, 0i64);
    for (_, d) in edges {
        depth += d;
        most = most.max(depth);
    }
    u64::try_from(most).unwrap_or(0)
}

/// Writes the columns of an appointment (insert or update).
pub(crate) struct Columns {
    pub(crate) status: &'static str,
    pub(crate) buffer_before: i64,
    pub(crate) buffer_after: i64,
    pub(crate) resources: Vec<String>,
    pub(crate) patient: Option<String>,
    pub(crate) type_id: Option<String>,
    pub(crate) reason: Option<Vec<u8>>,
    pub(crate) notes: Option<Vec<u8>>,
    /// The key the PHI is encrypted with (`None`: plaintext or no PHI).
    pub(crate) phi_key: Option<String>,
}

impl Columns {
    pub(crate) fn of(
        a: &Appointment,
        tenant: &TenantId,
        ring: Option<&KeyRing>,
    ) -> Result<Self, StorageError> {
        let (t, id) = (tenant.as_str(), a.id.as_str());
        let has_phi = a.reason.is_some() || a.notes.is_some();
        Ok(Self {
            status: a.status.code(),
            buffer_before: i64::from(a.buffer_before_min),
            buffer_after: i64::from(a.buffer_after_min),
            resources: a.resources.iter().map(|r| r.0.clone()).collect(),
            patient: a.patient.as_ref().map(|p| p.0.clone()),
            type_id: a.type_id.as_ref().map(|t| t.0.clone()),
            reason: seal_phi(ring, t, REASON, id, a.reason.as_ref())?,
            notes: seal_phi(ring, t, NOTES, id, a.notes.as_ref())?,
            phi_key: ring.filter(|_| has_phi).map(|r| r.active_id().to_owned()),
        })
    }
}

/// Inserts the active rows of an appointment, after its claims' checks.
/// Capacity-one claims are enforced by the exclusion constraint (plus an
/// explicit look at rows outside it); larger ones count overlapping rows.
/// The batch holds the lock of every claimed resource.
#[allow(clippy::too_many_arguments)]
fn place(
    tx: &mut Transaction<'_>,
    tenant: &TenantId,
    key: i64,
    a: &Appointment,
    hold: Option<DateTime<Utc>>,
    claims: &[Claim],
    overbook: bool,
    now: DateTime<Utc>,
) -> Result<(), Fail> {
    let Some(span) = busy_span(a) else {
        return Ok(());
    };
    if span.1 < span.0 {
        return Err(invalid(format!("appointment `{}` ends before it starts", a.id)).into());
    }
    let (lo, hi) = (instant(span.0)?, instant(span.1)?);
    let t = tenant.as_str();
    let checked = !overbook && !claims.is_empty();
    if checked {
        // Lapsed holds never block: drop their rows from the checked spans.
        let touched: Vec<&str> = claims
            .iter()
            .map(|c| c.resource.as_str())
            .chain(a.resources.iter().map(ResourceId::as_str))
            .collect();
        tx.execute(
            "DELETE FROM medsched.active_bookings
             WHERE tenant_id = $1 AND resource_id = ANY($2)
               AND busy_hi > $3 AND busy_lo < $4 AND hold_expires_at <= $5",
            &[&t, &touched, &lo, &hi, &now],
        )?;
        for c in claims {
            let r = c.resource.as_str();
            if c.capacity <= 1 {
                // Rows outside the constraint (overbooked or of a larger
                // claim), and capacity-one rows too when this claim inserts
                // none (else the constraint refuses them). Capacity-one rows
                // are disjoint, so of them only the first live one ending
                // after the start can overlap: one probe of the key (`IS NOT
                // FALSE` keeps the exclusion constraint's partial GiST index,
                // which would read them all, out of the plan).
                let all = !a.resources.contains(&c.resource);
                let blocked: bool = tx
                    .query_one(
                        "SELECT ($6 AND EXISTS (
                                    SELECT FROM (
                                        SELECT busy_lo FROM medsched.active_bookings
                                        WHERE tenant_id = $1 AND resource_id = $2
                                          AND capacity_one IS NOT FALSE AND busy_hi > $3
                                          AND (hold_expires_at IS NULL OR hold_expires_at > $5)
                                        ORDER BY busy_hi LIMIT 1) first
                                    WHERE first.busy_lo < $4))
                             OR EXISTS (
                                    SELECT FROM medsched.active_bookings
                                    WHERE tenant_id = $1 AND resource_id = $2
                                      AND NOT capacity_one
                                      AND busy_hi > $3 AND busy_lo < $4
                                      AND (hold_expires_at IS NULL OR hold_expires_at > $5))",
                        &[&t, &r, &lo, &hi, &now, &all],
                    )?
                    .try_get(0)?;
                if blocked {
                    return Err(StorageError::slot_taken(&c.resource).into());
                }
            } else {
                let rows = tx.query(
                    "SELECT extract(epoch FROM greatest(busy_lo, $3))::bigint,
                            extract(epoch FROM least(busy_hi, $4))::bigint
                     FROM medsched.active_bookings
                     WHERE tenant_id = $1 AND resource_id = $2
                       AND busy_hi > $3 AND busy_lo < $4
                       AND (hold_expires_at IS NULL OR hold_expires_at > $5)",
                    &[&t, &r, &lo, &hi, &now],
                )?;
                let mut spans = Vec::with_capacity(rows.len());
                for row in &rows {
                    spans.push((row.try_get::<_, i64>(0)?, row.try_get::<_, i64>(1)?));
                }
                if max_depth(&spans) + 1 > u64::from(c.capacity) {
                    return Err(StorageError::slot_taken(&c.resource).into());
                }
            }
        }
    }
    let mut seen = BTreeSet::new();
    for r in &a.resources {
        if !seen.insert(r) {
            continue;
        }
        let capacity_one = checked && claims.iter().any(|c| &c.resource == r && c.capacity <= 1);
        let inserted = tx.execute(
            "INSERT INTO medsched.active_bookings
                 (tenant_id, resource_id, appointment_key, busy, busy_lo, busy_hi,
                  hold_expires_at, capacity_one)
             VALUES ($1, $2, $3, tstzrange($4, $5, '[)'),
                     CASE WHEN $4 < $5 THEN $4 ELSE 'infinity' END,
                     CASE WHEN $4 < $5 THEN $5 ELSE '-infinity' END, $6, $7)",
            &[&t, &r.as_str(), &key, &lo, &hi, &hold, &capacity_one],
        );
        match inserted {
            Ok(_) => {}
            Err(e) if e.code() == Some(&SqlState::EXCLUSION_VIOLATION) => {
                return Err(StorageError::slot_taken(r).into());
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

fn version_conflict(id: &AppointmentId, current: i64, expected: u64) -> StorageError {
    StorageError::new(
        StorageErrorKind::VersionConflict,
        format!("appointment `{id}` is at version {current}, not {expected}"),
    )
}

/// Applies one op inside the batch's transaction.
fn apply(
    tx: &mut Transaction<'_>,
    tenant: &TenantId,
    ring: Option<&KeyRing>,
    op: &Op,
    now: DateTime<Utc>,
    out: &mut Vec<Arc<StoredAppointment>>,
) -> Result<(), Fail> {
    let t = tenant.as_str();
    match op {
        Op::Insert {
            appointment: a,
            hold_expires_at,
            claims,
            overbook,
        } => {
            let c = Columns::of(a, tenant, ring)?;
            let row = tx.query_opt(
                "INSERT INTO medsched.appointments
                     (tenant_id, id, version, hold_expires_at, status, start_at, end_at,
                      buffer_before_min, buffer_after_min, resources, patient_id, type_id,
                      reason, notes, phi_key)
                 VALUES ($1, $2, 1, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
                 ON CONFLICT (tenant_id, id) DO NOTHING
                 RETURNING key",
                &[
                    &t,
                    &a.id.as_str(),
                    hold_expires_at,
                    &c.status,
                    &a.start,
                    &a.end,
                    &c.buffer_before,
                    &c.buffer_after,
                    &c.resources,
                    &c.patient,
                    &c.type_id,
                    &c.reason,
                    &c.notes,
                    &c.phi_key,
                ],
            )?;
            let Some(row) = row else {
                return Err(duplicate_appointment(&a.id).into());
            };
            let key: i64 = row.try_get(0)?;
            place(tx, tenant, key, a, *hold_expires_at, claims, *overbook, now)?;
            out.push(Arc::new(StoredAppointment {
                key: to_u64(key)?,
                version: 1,
                hold_expires_at: *hold_expires_at,
                appointment: a.clone(),
            }));
        }
        Op::Update {
            appointment: a,
            expected_version,
            hold_expires_at,
            claims,
            overbook,
        } => {
            let row = tx
                .query_opt(
                    "SELECT key, version FROM medsched.appointments
                     WHERE tenant_id = $1 AND id = $2 FOR UPDATE",
                    &[&t, &a.id.as_str()],
                )?
                .ok_or_else(|| StorageError::not_found("appointment", a.id.as_str()))?;
            let key: i64 = row.try_get(0)?;
            let version: i64 = row.try_get(1)?;
            if u64::try_from(version).ok() != Some(*expected_version) {
                return Err(version_conflict(&a.id, version, *expected_version).into());
            }
            // Its own old rows never count against its new time.
            tx.execute(
                "DELETE FROM medsched.active_bookings
                 WHERE tenant_id = $1 AND appointment_key = $2",
                &[&t, &key],
            )?;
            place(tx, tenant, key, a, *hold_expires_at, claims, *overbook, now)?;
            let c = Columns::of(a, tenant, ring)?;
            tx.execute(
                "UPDATE medsched.appointments SET
                     version = version + 1, hold_expires_at = $3, status = $4,
                     start_at = $5, end_at = $6, buffer_before_min = $7,
                     buffer_after_min = $8, resources = $9, patient_id = $10,
                     type_id = $11, reason = $12, notes = $13, phi_key = $14
                 WHERE tenant_id = $1 AND key = $2",
                &[
                    &t,
                    &key,
                    hold_expires_at,
                    &c.status,
                    &a.start,
                    &a.end,
                    &c.buffer_before,
                    &c.buffer_after,
                    &c.resources,
                    &c.patient,
                    &c.type_id,
                    &c.reason,
                    &c.notes,
                    &c.phi_key,
                ],
            )?;
            out.push(Arc::new(StoredAppointment {
                key: to_u64(key)?,
                version: to_u64(version)?.saturating_add(1),
                hold_expires_at: *hold_expires_at,
                appointment: a.clone(),
            }));
        }
        Op::Emit(NewEvent { kind, due_at, data }) => {
            tx.execute(
                "INSERT INTO medsched.outbox (tenant_id, kind, due_at, appointment_id, data)
                 VALUES ($1, $2, $3, $4, $5)",
                &[
                    &t,
                    &kind_code(*kind)?,
                    due_at,
                    &data.appointment.as_ref().map(AppointmentId::as_str),
                    &to_json(data)?,
                ],
            )?;
        }
        Op::Supersede { appointment, kinds } => {
            let codes = kinds
                .iter()
                .map(|k| kind_code(*k))
                .collect::<Result<Vec<_>, _>>()?;
            tx.execute(
                "DELETE FROM medsched.outbox
                 WHERE tenant_id = $1 AND appointment_id = $2 AND kind = ANY($3)",
                &[&t, &appointment.as_str(), &codes],
            )?;
        }
        Op::AddWaitlist(entry) => {
            let n = tx.execute(
                "INSERT INTO medsched.waitlist (tenant_id, id, type_id, created_at, data)
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (tenant_id, id) DO NOTHING",
                &[
                    &t,
                    &entry.id,
                    &entry.type_id.as_str(),
                    &entry.created_at,
                    &to_json(entry)?,
                ],
            )?;
            if n == 0 {
                return Err(StorageError::duplicate("waitlist entry", entry.id.as_str()).into());
            }
        }
        Op::RemoveWaitlist { id } => {
            tx.execute(
                "DELETE FROM medsched.waitlist WHERE tenant_id = $1 AND id = $2",
                &[&t, id],
            )?;
        }
        Op::Audit(entry) => {
            seal_audit(tx, tenant, entry.clone())?;
        }
        _ => {
            return Err(invalid("operation not supported by this store").into());
        }
    }
    Ok(())
}

/// Appends to the tenant's chain; the caller holds the tenant's audit lock.
fn seal_audit(
    tx: &mut Transaction<'_>,
    tenant: &TenantId,
    entry: NewAudit,
) -> Result<AuditRecord, Fail> {
    let t = tenant.as_str();
    let head = tx.query_opt(
        "SELECT seq, hash FROM medsched.audit WHERE tenant_id = $1
         ORDER BY seq DESC LIMIT 1",
        &[&t],
    )?;
    let (seq, prev) = match head {
        Some(row) => (to_u64(row.try_get::<_, i64>(0)?)?, row.try_get(1)?),
        None => (0, GENESIS.to_owned()),
    };
    let record = AuditRecord::seal(seq.saturating_add(1), entry, &prev);
    let e = &record.entry;
    tx.execute(
        "INSERT INTO medsched.audit (tenant_id, seq, at, actor, action, record, decision,
             reason_code, policy_version, break_glass, prev_hash, hash)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        &[
            &t,
            &to_i64(record.seq, "audit position")?,
            &e.at,
            &e.actor,
            &e.action,
            &e.record,
            &e.decision,
            &e.reason_code,
            &e.policy_version,
            &e.break_glass,
            &record.prev_hash,
            &record.hash,
        ],
    )?;
    Ok(record)
}

/// The recorded result of an idempotency key, PHI read back from the rows.
pub(crate) fn idempotency_lookup(
    tx: &mut Transaction<'_>,
    tenant: &TenantId,
    ring: Option<&KeyRing>,
    key: &str,
) -> Result<Option<(String, Committed)>, Fail> {
    let t = tenant.as_str();
    let Some(row) = tx.query_opt(
        "SELECT fingerprint, result FROM medsched.idempotency
         WHERE tenant_id = $1 AND key = $2",
        &[&t, &key],
    )?
    else {
        return Ok(None);
    };
    let fingerprint: String = row.try_get(0)?;
    let result: Value = row.try_get(1)?;
    let stored: Vec<StoredAppointment> = from_json(result, "idempotency result")?;
    let mut appointments = Vec::with_capacity(stored.len());
    for mut s in stored {
        let phi = tx.query_opt(
            "SELECT reason, notes, id FROM medsched.appointments
             WHERE tenant_id = $1 AND key = $2",
            &[&t, &to_i64(s.key, "appointment key")?],
        )?;
        if let Some(phi) = phi {
            let id: String = phi.try_get(2)?;
            s.appointment.reason = open_phi(ring, t, REASON, &id, phi.try_get(0)?)?;
            s.appointment.notes = open_phi(ring, t, NOTES, &id, phi.try_get(1)?)?;
        }
        appointments.push(Arc::new(s));
    }
    Ok(Some((
        fingerprint,
        Committed {
            appointments,
            replayed: true,
        },
    )))
}

fn commit_tx(
    tx: &mut Transaction<'_>,
    tenant: &TenantId,
    ring: Option<&KeyRing>,
    batch: &Batch,
) -> Result<Committed, Fail> {
    let t = tenant.as_str();
    // Locks in one fixed order: idempotency key, resources (sorted), audit.
    if let Some(idem) = &batch.idempotency {
        lock(tx, LOCK_IDEMPOTENCY, tenant, &idem.key)?;
        if let Some((fingerprint, first)) = idempotency_lookup(tx, tenant, ring, &idem.key)? {
            if fingerprint != idem.fingerprint {
                return Err(StorageError::new(
                    StorageErrorKind::IdempotencyMismatch,
                    "idempotency key reused with different parameters",
                )
                .into());
            }
            return Ok(first);
        }
    }
    // Every claimed resource is locked, in sorted order, before any row is
    // written: writers of one resource queue here instead of waiting on each
    // other's uncommitted rows inside the exclusion constraint, where two
    // inserts (or a move and an insert) would deadlock. The constraint
    // stays the guarantee; the locks make contention cheap.
    let mut claimed: BTreeSet<&str> = BTreeSet::new();
    let mut audited = false;
    for op in &batch.ops {
        match op {
            Op::Insert {
                claims, overbook, ..
            }
            | Op::Update {
                claims, overbook, ..
            } if !overbook => {
                claimed.extend(claims.iter().map(|c| c.resource.as_str()));
            }
            Op::Audit(_) => audited = true,
            _ => {}
        }
    }
    for r in claimed {
        lock(tx, LOCK_RESOURCE, tenant, r)?;
    }
    if audited {
        lock(tx, LOCK_AUDIT, tenant, "")?;
    }
    let mut out = Vec::new();
    for op in &batch.ops {
        apply(tx, tenant, ring, op, batch.now, &mut out)?;
    }
    if let Some(idem) = &batch.idempotency {
        let stripped: Vec<StoredAppointment> = out
            .iter()
            .map(|s| StoredAppointment {
                appointment: without_phi(&s.appointment),
                ..(**s).clone()
            })
            .collect();
        tx.execute(
            "INSERT INTO medsched.idempotency (tenant_id, key, fingerprint, result)
             VALUES ($1, $2, $3, $4)",
            &[&t, &idem.key, &idem.fingerprint, &to_json(&stripped)?],
        )?;
    }
    Ok(Committed {
        appointments: out,
        replayed: false,
    })
}

impl Store for PgStore {
    fn catalog(&self, tenant: &TenantId) -> Result<VersionedCatalog, StorageError> {
        self.run(Some(tenant), true, |tx| {
            let row = tx
                .query_opt(
                    "SELECT version, data FROM medsched.catalogs WHERE tenant_id = $1",
                    &[&tenant.as_str()],
                )?
                .ok_or_else(|| StorageError::not_found("catalog of tenant", tenant.as_str()))?;
            let version: i64 = row.try_get(0)?;
            let data: Value = row.try_get(1)?;
            let catalog: Clinic = from_json(data, "catalog")?;
            Ok(VersionedCatalog {
                version: to_u64(version)?,
                catalog: Arc::new(catalog),
            })
        })
    }

    fn catalog_version(&self, tenant: &TenantId) -> Result<u64, StorageError> {
        self.run(Some(tenant), true, |tx| {
            let row = tx.query_opt(
                "SELECT version FROM medsched.catalogs WHERE tenant_id = $1",
                &[&tenant.as_str()],
            )?;
            match row {
                Some(row) => Ok(to_u64(row.try_get(0)?)?),
                None => Ok(0),
            }
        })
    }

    fn replace_catalog(
        &self,
        tenant: &TenantId,
        catalog: Clinic,
        expected_version: u64,
    ) -> Result<u64, StorageError> {
        if !catalog.appointments.is_empty() {
            return Err(invalid(
                "a catalog holds no appointments; commit them as inserts",
            ));
        }
        let data = to_json(&catalog)?;
        let expected = to_i64(expected_version, "catalog version")?;
        self.run(Some(tenant), true, |tx| {
            let t = tenant.as_str();
            let row = if expected == 0 {
                tx.query_opt(
                    "INSERT INTO medsched.catalogs (tenant_id, version, data) VALUES ($1, 1, $2)
                     ON CONFLICT (tenant_id) DO NOTHING RETURNING version",
                    &[&t, &data],
                )?
            } else {
                tx.query_opt(
                    "UPDATE medsched.catalogs SET version = version + 1, data = $3
                     WHERE tenant_id = $1 AND version = $2 RETURNING version",
                    &[&t, &expected, &data],
                )?
            };
            if let Some(row) = row {
                return Ok(to_u64(row.try_get(0)?)?);
            }
            let current: i64 = tx
                .query_opt(
                    "SELECT version FROM medsched.catalogs WHERE tenant_id = $1",
                    &[&t],
                )?
                .map(|r| r.try_get(0))
                .transpose()?
                .unwrap_or(0);
            Err(StorageError::new(
                StorageErrorKind::VersionConflict,
                format!("catalog is at version {current}, not {expected_version}"),
            )
            .into())
        })
    }

    fn bookings(
        &self,
        tenant: &TenantId,
        q: &BookingsQuery<'_>,
        out: &mut Vec<BookingRow>,
    ) -> Result<(), StorageError> {
        if q.resources.is_empty() || q.to <= q.from {
            return Ok(());
        }
        let resources: Vec<&str> = q.resources.iter().map(ResourceId::as_str).collect();
        let (from, to, now) = (instant(q.from)?, instant(q.to)?, instant(q.now)?);
        let want = q.type_id.map(AppointmentTypeId::as_str);
        let rows = self.run(Some(tenant), true, |tx| {
            Ok(tx.query(
                "SELECT q.pos, extract(epoch FROM a.start_at)::bigint,
                        extract(epoch FROM a.end_at)::bigint,
                        a.buffer_before_min, a.buffer_after_min, a.key,
                        coalesce(a.type_id = $6, false)
                 FROM unnest($2::text[]) WITH ORDINALITY AS q(resource_id, pos)
                 CROSS JOIN LATERAL (
                     -- The rows ending inside the window: a range of the key.
                     SELECT b.appointment_key, b.hold_expires_at
                     FROM medsched.active_bookings b
                     WHERE b.tenant_id = $1 AND b.resource_id = q.resource_id
                       AND b.busy_hi > $3 AND b.busy_hi <= $4
                     UNION ALL
                     -- Of the disjoint capacity-one rows ending after it,
                     -- only the first can reach into it (IS NOT FALSE: see
                     -- migration 0005).
                     SELECT f.appointment_key, f.hold_expires_at
                     FROM (SELECT b.appointment_key, b.hold_expires_at, b.busy_lo
                           FROM medsched.active_bookings b
                           WHERE b.tenant_id = $1 AND b.resource_id = q.resource_id
                             AND b.capacity_one IS NOT FALSE AND b.busy_hi > $4
                           ORDER BY b.busy_hi LIMIT 1) f
                     WHERE f.busy_lo < $4
                     UNION ALL
                     -- The other rows ending after it: their own index.
                     SELECT b.appointment_key, b.hold_expires_at
                     FROM medsched.active_bookings b
                     WHERE b.tenant_id = $1 AND b.resource_id = q.resource_id
                       AND NOT b.capacity_one AND b.busy_hi > $4 AND b.busy_lo < $4
                 ) b
                 JOIN medsched.appointments a
                   ON a.tenant_id = $1 AND a.key = b.appointment_key
                 WHERE b.hold_expires_at IS NULL OR b.hold_expires_at > $5
                 ORDER BY q.pos, a.start_at, a.key",
                &[&tenant.as_str(), &resources, &from, &to, &now, &want],
            )?)
        })?;
        out.reserve(rows.len());
        let integrity =
            |_| StorageError::new(StorageErrorKind::Integrity, "stored booking is unreadable");
        for row in &rows {
            let pos: i64 = row.try_get(0).map_err(integrity)?;
            out.push(BookingRow {
                resource: u32::try_from(pos.saturating_sub(1)).unwrap_or(u32::MAX),
                start: row.try_get(1).map_err(integrity)?,
                end: row.try_get(2).map_err(integrity)?,
                buffer_before: row.try_get::<_, i64>(3).map_err(integrity)? * 60,
                buffer_after: row.try_get::<_, i64>(4).map_err(integrity)? * 60,
                key: to_u64(row.try_get(5).map_err(integrity)?)?,
                same_type: row.try_get(6).map_err(integrity)?,
            });
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
        let (lo, hi) = (instant(from)?, instant(to)?);
        self.run(Some(tenant), true, |tx| {
            let rows = tx.query(
                &format!(
                    "SELECT {APPT_COLS} FROM medsched.appointments
                     WHERE tenant_id = $1 AND patient_id = $2
                       AND start_at < $4 AND end_at > $3
                     ORDER BY start_at, key"
                ),
                &[&tenant.as_str(), &patient.as_str(), &lo, &hi],
            )?;
            let mut found = Vec::new();
            for row in &rows {
                let s = stored_from_row(row, tenant, self.keyring.as_ref())?;
                if s.busy_at(now).is_some() {
                    found.push(Arc::new(s));
                }
            }
            Ok(found)
        })
    }

    fn appointment(
        &self,
        tenant: &TenantId,
        id: &AppointmentId,
    ) -> Result<Arc<StoredAppointment>, StorageError> {
        self.run(Some(tenant), true, |tx| {
            let row = tx
                .query_opt(
                    &format!(
                        "SELECT {APPT_COLS} FROM medsched.appointments
                         WHERE tenant_id = $1 AND id = $2"
                    ),
                    &[&tenant.as_str(), &id.as_str()],
                )?
                .ok_or_else(|| StorageError::not_found("appointment", id.as_str()))?;
            Ok(Arc::new(stored_from_row(
                &row,
                tenant,
                self.keyring.as_ref(),
            )?))
        })
    }

    fn appointment_by_key(
        &self,
        tenant: &TenantId,
        key: AppointmentKey,
    ) -> Result<Arc<StoredAppointment>, StorageError> {
        let missing = || StorageError::not_found("appointment key", &key.to_string());
        let k = i64::try_from(key).map_err(|_| missing())?;
        self.run(Some(tenant), true, |tx| {
            let row = tx
                .query_opt(
                    &format!(
                        "SELECT {APPT_COLS} FROM medsched.appointments
                         WHERE tenant_id = $1 AND key = $2"
                    ),
                    &[&tenant.as_str(), &k],
                )?
                .ok_or_else(missing)?;
            Ok(Arc::new(stored_from_row(
                &row,
                tenant,
                self.keyring.as_ref(),
            )?))
        })
    }

    fn idempotent(
        &self,
        tenant: &TenantId,
        key: &str,
    ) -> Result<Option<(String, Committed)>, StorageError> {
        let ring = self.keyring.as_ref();
        self.run(Some(tenant), true, |tx| {
            idempotency_lookup(tx, tenant, ring, key)
        })
    }

    fn commit(&self, tenant: &TenantId, batch: Batch) -> Result<Committed, StorageError> {
        if let Some(item) = Item::of(tenant, &batch, self.keyring.as_ref())? {
            return self.commit_item(item);
        }
        // With an idempotency key, a retry after an unknown COMMIT outcome
        // replays the first result instead of applying twice.
        let idempotent = batch.idempotency.is_some();
        let ring = self.keyring.as_ref();
        self.run(Some(tenant), idempotent, |tx| {
            commit_tx(tx, tenant, ring, &batch)
        })
    }

    fn claim_events(
        &self,
        tenant: &TenantId,
        worker: &str,
        max: usize,
        now: DateTime<Utc>,
        lease_secs: i64,
    ) -> Result<Vec<OutboxEvent>, StorageError> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let limit = i64::try_from(max).unwrap_or(i64::MAX);
        let until = now
            .checked_add_signed(chrono::TimeDelta::seconds(lease_secs))
            .ok_or_else(|| invalid("lease out of range"))?;
        let rows = self.run(Some(tenant), false, |tx| {
            Ok(tx.query(
                "WITH c AS (
                     SELECT tenant_id, id FROM medsched.outbox
                     WHERE tenant_id = $1 AND due_at <= $2
                       AND (lease_until IS NULL OR lease_until <= $2)
                     ORDER BY due_at, id
                     LIMIT $3
                     FOR UPDATE SKIP LOCKED)
                 UPDATE medsched.outbox o
                 SET lease_owner = $4, lease_until = $5, attempts = o.attempts + 1
                 FROM c WHERE o.tenant_id = c.tenant_id AND o.id = c.id
                 RETURNING o.id, o.kind, o.due_at, o.data, o.attempts",
                &[&tenant.as_str(), &now, &limit, &worker, &until],
            )?)
        })?;
        let mut events = Vec::with_capacity(rows.len());
        let integrity =
            |_| StorageError::new(StorageErrorKind::Integrity, "stored event is unreadable");
        for row in &rows {
            let kind: String = row.try_get(1).map_err(integrity)?;
            let data: Value = row.try_get(3).map_err(integrity)?;
            let attempts: i32 = row.try_get(4).map_err(integrity)?;
            events.push(OutboxEvent {
                id: to_u64(row.try_get(0).map_err(integrity)?)?,
                tenant: tenant.clone(),
                kind: from_json(Value::String(kind), "event kind")?,
                due_at: row.try_get(2).map_err(integrity)?,
                data: from_json::<EventData>(data, "event")?,
                attempts: u32::try_from(attempts).unwrap_or(0),
            });
        }
        events.sort_by_key(|e| (e.due_at, e.id));
        Ok(events)
    }

    fn ack_event(
        &self,
        tenant: &TenantId,
        event_id: u64,
        worker: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StorageError> {
        let missing = || StorageError::not_found("event", &event_id.to_string());
        let id = i64::try_from(event_id).map_err(|_| missing())?;
        self.run(Some(tenant), true, |tx| {
            let t = tenant.as_str();
            let n = tx.execute(
                "DELETE FROM medsched.outbox
                 WHERE tenant_id = $1 AND id = $2 AND lease_owner = $3 AND lease_until > $4",
                &[&t, &id, &worker, &now],
            )?;
            if n == 1 {
                return Ok(());
            }
            let exists = tx
                .query_opt(
                    "SELECT 1 FROM medsched.outbox WHERE tenant_id = $1 AND id = $2",
                    &[&t, &id],
                )?
                .is_some();
            if !exists {
                return Err(missing().into());
            }
            Err(StorageError::new(
                StorageErrorKind::LeaseLost,
                format!("event {event_id} is not leased to this worker"),
            )
            .into())
        })
    }

    fn append_audit(
        &self,
        tenant: &TenantId,
        entry: NewAudit,
    ) -> Result<AuditRecord, StorageError> {
        self.run(Some(tenant), false, |tx| {
            lock(tx, LOCK_AUDIT, tenant, "")?;
            seal_audit(tx, tenant, entry.clone())
        })
    }

    fn audit_records(
        &self,
        tenant: &TenantId,
        from_seq: u64,
        max: usize,
    ) -> Result<Vec<AuditRecord>, StorageError> {
        let from = i64::try_from(from_seq.max(1)).unwrap_or(i64::MAX);
        let limit = i64::try_from(max).unwrap_or(i64::MAX);
        self.run(Some(tenant), true, |tx| {
            let rows = tx.query(
                "SELECT seq, at, actor, action, record, decision, reason_code,
                        policy_version, break_glass, prev_hash, hash
                 FROM medsched.audit WHERE tenant_id = $1 AND seq >= $2
                 ORDER BY seq LIMIT $3",
                &[&tenant.as_str(), &from, &limit],
            )?;
            let mut records = Vec::with_capacity(rows.len());
            for row in &rows {
                records.push(AuditRecord {
                    seq: to_u64(row.try_get(0)?)?,
                    entry: NewAudit {
                        at: row.try_get(1)?,
                        actor: row.try_get(2)?,
                        action: row.try_get(3)?,
                        record: row.try_get(4)?,
                        decision: row.try_get(5)?,
                        reason_code: row.try_get(6)?,
                        policy_version: row.try_get(7)?,
                        break_glass: row.try_get(8)?,
                    },
                    prev_hash: row.try_get(9)?,
                    hash: row.try_get(10)?,
                });
            }
            Ok(records)
        })
    }

    fn waitlist(
        &self,
        tenant: &TenantId,
        type_id: &AppointmentTypeId,
    ) -> Result<Vec<WaitlistEntry>, StorageError> {
        self.run(Some(tenant), true, |tx| {
            let rows = tx.query(
                "SELECT data FROM medsched.waitlist WHERE tenant_id = $1 AND type_id = $2
                 ORDER BY created_at, id COLLATE \"C\"",
                &[&tenant.as_str(), &type_id.as_str()],
            )?;
            let mut entries = Vec::with_capacity(rows.len());
            for row in &rows {
                let Json(v): Json<Value> = row.try_get(0)?;
                entries.push(from_json(v, "waitlist entry")?);
            }
            Ok(entries)
        })
    }
}

/// One batch of a PHI key rotation: what [`PgStore::rotate_phi`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RotationProgress {
    /// Appointments re-encrypted by this batch.
    pub rotated: u64,
    /// Appointments with PHI still not under the active key after it
    /// (in the rotated scope: every tenant, or one).
    pub remaining: u64,
    /// The id of the active key.
    pub active_key: String,
}

impl RotationProgress {
    /// Whether every appointment in scope is under the active key.
    pub fn is_done(&self) -> bool {
        self.remaining == 0
    }
}

impl PgStore {
    /// Re-encrypts, under the key ring's active key, up to `batch_size`
    /// appointments whose PHI is under another key (or still plaintext),
    /// taken in `(tenant, key)` order, in one transaction; call it until
    /// [`RotationProgress::is_done`]. Each batch commits on its own, so an
    /// interrupted rotation resumes where it stopped: the next call picks
    /// up the first rows not yet under the active key. Versions are not
    /// changed (the records are the same). Crossing tenants needs a role
    /// that bypasses row-level security (the schema owner's superuser or a
    /// `BYPASSRLS` maintenance role); the runtime role uses
    /// [`PgStore::rotate_phi_for`] per tenant instead.
    ///
    /// # Errors
    /// `Invalid` without a key ring or when the role is bound by row-level
    /// security; `Integrity` (naming the appointment) when a stored value
    /// cannot be decrypted with the key ring; `Unavailable`.
    pub fn rotate_phi(&self, batch_size: usize) -> Result<RotationProgress, StorageError> {
        self.rotate(None, batch_size)
    }

    /// [`PgStore::rotate_phi`] within one tenant (row-level security
    /// applies as for any store call, so the runtime role can run it).
    ///
    /// # Errors
    /// As [`PgStore::rotate_phi`].
    pub fn rotate_phi_for(
        &self,
        tenant: &TenantId,
        batch_size: usize,
    ) -> Result<RotationProgress, StorageError> {
        self.rotate(Some(tenant), batch_size)
    }

    fn rotate(
        &self,
        tenant: Option<&TenantId>,
        batch_size: usize,
    ) -> Result<RotationProgress, StorageError> {
        let ring = self
            .keyring
            .as_ref()
            .ok_or_else(|| invalid("phi rotation needs a key ring"))?;
        let active = ring.active_id();
        let limit = i64::try_from(batch_size.max(1)).unwrap_or(i64::MAX);
        let only = tenant.map(TenantId::as_str);
        self.run(tenant, true, |tx| {
            if only.is_none() {
                let bypass: bool = tx
                    .query_one(
                        "SELECT rolsuper OR rolbypassrls FROM pg_roles
                         WHERE rolname = current_user",
                        &[],
                    )?
                    .try_get(0)?;
                if !bypass {
                    return Err(invalid(
                        "phi rotation across tenants needs a role that bypasses row-level \
                         security; rotate per tenant instead",
                    )
                    .into());
                }
            }
            let rows = tx.query(
                "SELECT tenant_id, key, id, reason, notes FROM medsched.appointments
                 WHERE ($3::text IS NULL OR tenant_id = $3)
                   AND (reason IS NOT NULL OR notes IS NOT NULL)
                   AND phi_key IS DISTINCT FROM $1
                 ORDER BY tenant_id, key
                 LIMIT $2
                 FOR UPDATE",
                &[&active, &limit, &only],
            )?;
            let mut rotated = 0u64;
            for row in &rows {
                let t: String = row.try_get(0)?;
                let key: i64 = row.try_get(1)?;
                let id: String = row.try_get(2)?;
                let reason = open_phi(Some(ring), &t, REASON, &id, row.try_get(3)?)?;
                let notes = open_phi(Some(ring), &t, NOTES, &id, row.try_get(4)?)?;
                tx.execute(
                    "UPDATE medsched.appointments SET reason = $3, notes = $4, phi_key = $5
                     WHERE tenant_id = $1 AND key = $2",
                    &[
                        &t,
                        &key,
                        &seal_phi(Some(ring), &t, REASON, &id, reason.as_ref())?,
                        &seal_phi(Some(ring), &t, NOTES, &id, notes.as_ref())?,
                        &active,
                    ],
                )?;
                rotated += 1;
            }
            let remaining: i64 = tx
                .query_one(
                    "SELECT count(*) FROM medsched.appointments
                     WHERE ($2::text IS NULL OR tenant_id = $2)
                       AND (reason IS NOT NULL OR notes IS NOT NULL)
                       AND phi_key IS DISTINCT FROM $1",
                    &[&active, &only],
                )?
                .try_get(0)?;
            Ok(RotationProgress {
                rotated,
                remaining: to_u64(remaining)?,
                active_key: active.to_owned(),
            })
        })
    }
}
