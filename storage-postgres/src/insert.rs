//! Batches that insert one appointment (a booking or a hold, with its
//! events and audit records), committed in one round trip by the SQL
//! functions of migrations/0004 and 0005: `medsched.commit_insert` for one,
//! `medsched.commit_inserts` for several callers' together (ADRs 0008 and
//! 0009).
//!
//! Writing first: a call does not look for rows in a booking's way; the
//! exclusion constraint refuses a capacity-one row in the way (23P01,
//! nothing written), and the call is repeated with the probe, which names
//! the claim. While bookings often meet conflicts, calls probe first
//! ([`Combiner::probe_first`]).
//!
//! Combining: a caller queues its item; if fewer calls than the cap are in
//! flight it leads one, taking up to [`MAX_GROUP`] queued items (its own
//! and those of callers that arrived meanwhile), and hands each caller its
//! own result. The cap is [`MAX_LEADERS`] while more than [`MANY_CALLERS`]
//! callers are booking (few calls, each carrying many bookings: one round
//! trip, one function call and one WAL flush for them all) and
//! [`MAX_LEADERS_FEW`] while fewer are (each commits on its own, and their
//! waits for the disk overlap). A lone caller commits alone, without
//! waiting. Each item succeeds or fails on its own, with the outcome it
//! would have had had the callers committed one after the other.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread;

use chrono::{DateTime, Utc};
use medsched_storage::{
    Appointment, Batch, Committed, Idempotency, NewAudit, Op, ResourceId, StorageError,
    StorageErrorKind, StoredAppointment, TenantId,
};
use postgres::error::SqlState;
use serde_json::Value;

use crate::crypto::KeyRing;
use crate::pool::Conn;
use crate::store::{
    busy_span, duplicate_appointment, idempotency_lookup, instant, invalid, kind_code, lock_name,
    to_json, to_u64, without_phi, Columns, LOCK_AUDIT, LOCK_IDEMPOTENCY, LOCK_RESOURCE,
};
use crate::{
    backoff, gave_up, is_connection_loss, is_retryable, unavailable, Fail, PgStore, MAX_ATTEMPTS,
};

/// Calls in flight at once per store while many callers are booking (more
/// than [`MANY_CALLERS`]): few calls, so that each carries many bookings.
const MAX_LEADERS: usize = 2;
/// Calls in flight at once per store while few callers are booking: each
/// commits on its own, and their waits for the disk overlap.
const MAX_LEADERS_FEW: usize = 4;
/// Above this many callers inside `commit_item`, calls are shared.
const MANY_CALLERS: usize = 8;
/// Items per call at most.
const MAX_GROUP: usize = 32;

const COMMIT_INSERTS: &str = "SELECT keys, codes, details FROM medsched.commit_inserts(\
     $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, \
     $21, $22, $23, $24, $25, $26, $27, $28, $29, $30, $31, $32, $33, $34, $35, $36, $37, $38, \
     $39, $40, $41)";

const COMMIT_INSERT: &str = "SELECT medsched.commit_insert(\
     $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, \
     $21, $22, $23, $24, $25, $26, $27, $28, $29, $30, $31, $32, $33, $34)";

/// One batch of the right shape, ready to send: every value owned, PHI
/// already sealed.
pub(crate) struct Item {
    tenant: TenantId,
    now: DateTime<Utc>,
    idempotency: Option<Idempotency>,
    /// The result recorded with the idempotency key (no PHI; the key is
    /// written in by the function).
    idempotency_result: Option<Value>,
    appointment: Appointment,
    hold_expires_at: Option<DateTime<Utc>>,
    columns: Columns,
    span: Option<(DateTime<Utc>, DateTime<Utc>)>,
    /// Capacity-one claims, sorted and distinct; empty when overbooked.
    claims: Vec<String>,
    events: Vec<Event>,
    audits: Vec<NewAudit>,
}

struct Event {
    kind: String,
    due: DateTime<Utc>,
    appointment: Option<String>,
    data: Value,
}

impl Item {
    /// The item of a batch made of one [`Op::Insert`] whose claims are all
    /// of capacity one (or overbooked) plus any [`Op::Emit`]s and
    /// [`Op::Audit`]s; `None` for any other batch.
    pub(crate) fn of(
        tenant: &TenantId,
        batch: &Batch,
        ring: Option<&KeyRing>,
    ) -> Result<Option<Self>, StorageError> {
        let mut insert = None;
        let (mut events, mut audits) = (Vec::new(), Vec::new());
        for op in &batch.ops {
            match op {
                Op::Insert {
                    appointment,
                    hold_expires_at,
                    claims,
                    overbook,
                } if insert.is_none() && claims.iter().all(|c| c.capacity <= 1) => {
                    insert = Some((appointment, *hold_expires_at, claims, *overbook));
                }
                Op::Emit(e) => events.push(e),
                Op::Audit(a) => audits.push(a.clone()),
                _ => return Ok(None),
            }
        }
        let Some((a, hold_expires_at, claims, overbook)) = insert else {
            return Ok(None);
        };
        let span = match busy_span(a) {
            Some((lo, hi)) if hi < lo => {
                return Err(invalid(format!(
                    "appointment `{}` ends before it starts",
                    a.id
                )));
            }
            Some((lo, hi)) => Some((instant(lo)?, instant(hi)?)),
            None => None,
        };
        let mut claims: Vec<String> = if overbook {
            Vec::new()
        } else {
            claims.iter().map(|c| c.resource.0.clone()).collect()
        };
        claims.sort_unstable();
        claims.dedup();
        let events = events
            .into_iter()
            .map(|e| {
                Ok(Event {
                    kind: kind_code(e.kind)?,
                    due: e.due_at,
                    appointment: e.data.appointment.as_ref().map(|a| a.0.clone()),
                    data: to_json(&e.data)?,
                })
            })
            .collect::<Result<_, StorageError>>()?;
        let idempotency_result = match &batch.idempotency {
            Some(_) => Some(to_json(&[StoredAppointment {
                key: 0,
                version: 1,
                hold_expires_at,
                appointment: without_phi(a),
            }])?),
            None => None,
        };
        Ok(Some(Self {
            tenant: tenant.clone(),
            now: batch.now,
            idempotency: batch.idempotency.clone(),
            idempotency_result,
            columns: Columns::of(a, tenant, ring)?,
            appointment: a.clone(),
            hold_expires_at,
            span,
            claims,
            events,
            audits,
        }))
    }

    fn committed(&self, key: i64) -> Result<Committed, StorageError> {
        Ok(Committed {
            appointments: vec![Arc::new(StoredAppointment {
                key: to_u64(key)?,
                version: 1,
                hold_expires_at: self.hold_expires_at,
                appointment: self.appointment.clone(),
            })],
            replayed: false,
        })
    }

    /// Whether a claim is on a resource the appointment does not occupy:
    /// no row of its own, so the exclusion constraint cannot check it and
    /// the function must look for rows in the way first.
    fn probe_first(&self) -> bool {
        let occupied = &self.appointment.resources;
        self.claims
            .iter()
            .any(|c| !occupied.iter().any(|r| &r.0 == c))
    }

    fn exists(&self) -> StorageError {
        duplicate_appointment(&self.appointment.id)
    }
}

/// What the function did with one item.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    Inserted(i64),
    SlotTaken(String),
    Exists,
    /// The idempotency key has a recorded result.
    Recorded,
    /// Not decided in a shared call (a lapsed hold is in the way): commit
    /// it alone.
    Again,
}

/// The events of some items as flat column lists, in item order; `None`
/// when there are none (sent as NULL: nothing to decode on the server).
struct EventLists<'a> {
    kind: Vec<&'a str>,
    due: Vec<DateTime<Utc>>,
    appointment: Vec<Option<&'a str>>,
    data: Vec<&'a Value>,
}

impl<'a> EventLists<'a> {
    fn of(items: &[&'a Item]) -> Option<Self> {
        let all = || items.iter().flat_map(|it| it.events.iter());
        all().next()?;
        Some(Self {
            kind: all().map(|e| e.kind.as_str()).collect(),
            due: all().map(|e| e.due).collect(),
            appointment: all().map(|e| e.appointment.as_deref()).collect(),
            data: all().map(|e| &e.data).collect(),
        })
    }
}

/// The audit records of some items as flat column lists, in item order;
/// `None` when there are none.
struct AuditLists<'a> {
    at: Vec<DateTime<Utc>>,
    actor: Vec<&'a str>,
    action: Vec<&'a str>,
    record: Vec<&'a str>,
    decision: Vec<&'a str>,
    reason_code: Vec<&'a str>,
    policy_version: Vec<&'a str>,
    break_glass: Vec<bool>,
}

impl<'a> AuditLists<'a> {
    fn of(items: &[&'a Item]) -> Option<Self> {
        let all = || items.iter().flat_map(|it| it.audits.iter());
        all().next()?;
        Some(Self {
            at: all().map(|a| a.at).collect(),
            actor: all().map(|a| a.actor.as_str()).collect(),
            action: all().map(|a| a.action.as_str()).collect(),
            record: all().map(|a| a.record.as_str()).collect(),
            decision: all().map(|a| a.decision.as_str()).collect(),
            reason_code: all().map(|a| a.reason_code.as_str()).collect(),
            policy_version: all().map(|a| a.policy_version.as_str()).collect(),
            break_glass: all().map(|a| a.break_glass).collect(),
        })
    }
}

/// Sends independent `items` (see [`independent_runs`]) in one call of
/// `medsched.commit_inserts` on `conn`; `probe` as for [`call_one`] (a row
/// in any item's way fails the whole call with 23P01).
fn call_many(conn: &mut Conn, items: &[&Item], probe: bool) -> Result<Vec<Outcome>, Fail> {
    // Every lock of every item, in the one global order: idempotency keys,
    // resources, audit chains, each by tenant and name.
    let mut locks: Vec<(i32, String)> = Vec::new();
    for it in items {
        if let Some(i) = &it.idempotency {
            locks.push((0, lock_name(&it.tenant, &i.key)));
        }
        locks.extend(it.claims.iter().map(|c| (1, lock_name(&it.tenant, c))));
        if !it.audits.is_empty() {
            locks.push((2, lock_name(&it.tenant, "")));
        }
    }
    locks.sort_unstable();
    locks.dedup();
    let class = [LOCK_IDEMPOTENCY, LOCK_RESOURCE, LOCK_AUDIT];
    let lock_class: Vec<i32> = locks
        .iter()
        .map(|(rank, _)| {
            class
                .get(usize::try_from(*rank).unwrap_or(0))
                .copied()
                .unwrap_or(0)
        })
        .collect();
    let lock_name: Vec<&str> = locks.iter().map(|(_, n)| n.as_str()).collect();

    // The position (from 1) of the item of each element of a flat list.
    let position = |i: usize| i32::try_from(i + 1).unwrap_or(i32::MAX);
    let positions = |n: &dyn Fn(&Item) -> usize| -> Vec<i32> {
        items
            .iter()
            .enumerate()
            .flat_map(|(i, it)| std::iter::repeat_n(position(i), n(it)))
            .collect()
    };
    let tenant: Vec<&str> = items.iter().map(|it| it.tenant.as_str()).collect();
    let mut tenants = tenant.clone();
    tenants.sort_unstable();
    tenants.dedup();
    let now: Vec<DateTime<Utc>> = items.iter().map(|it| it.now).collect();
    // Lists nobody needs go as NULL, and the function skips their work.
    let keyed = items.iter().any(|it| it.idempotency.is_some());
    let idem_key: Option<Vec<Option<&str>>> = keyed.then(|| {
        items
            .iter()
            .map(|it| it.idempotency.as_ref().map(|i| i.key.as_str()))
            .collect()
    });
    let idem_fingerprint: Option<Vec<Option<&str>>> = keyed.then(|| {
        items
            .iter()
            .map(|it| it.idempotency.as_ref().map(|i| i.fingerprint.as_str()))
            .collect()
    });
    let idem_result: Option<Vec<Option<&Value>>> = keyed.then(|| {
        items
            .iter()
            .map(|it| it.idempotency_result.as_ref())
            .collect()
    });
    let id: Vec<&str> = items.iter().map(|it| it.appointment.id.as_str()).collect();
    let hold: Vec<Option<DateTime<Utc>>> = items.iter().map(|it| it.hold_expires_at).collect();
    let status: Vec<&str> = items.iter().map(|it| it.columns.status).collect();
    let start: Vec<Option<DateTime<Utc>>> = items.iter().map(|it| it.appointment.start).collect();
    let end: Vec<Option<DateTime<Utc>>> = items.iter().map(|it| it.appointment.end).collect();
    let buffer_before: Vec<i64> = items.iter().map(|it| it.columns.buffer_before).collect();
    let buffer_after: Vec<i64> = items.iter().map(|it| it.columns.buffer_after).collect();
    let patient: Vec<Option<&str>> = items
        .iter()
        .map(|it| it.columns.patient.as_deref())
        .collect();
    let type_id: Vec<Option<&str>> = items
        .iter()
        .map(|it| it.columns.type_id.as_deref())
        .collect();
    let reason: Vec<Option<&[u8]>> = items
        .iter()
        .map(|it| it.columns.reason.as_deref())
        .collect();
    let notes: Vec<Option<&[u8]>> = items.iter().map(|it| it.columns.notes.as_deref()).collect();
    let phi_key: Vec<Option<&str>> = items
        .iter()
        .map(|it| it.columns.phi_key.as_deref())
        .collect();
    let busy_lo: Vec<Option<DateTime<Utc>>> = items.iter().map(|it| it.span.map(|s| s.0)).collect();
    let busy_hi: Vec<Option<DateTime<Utc>>> = items.iter().map(|it| it.span.map(|s| s.1)).collect();
    let resource_item = positions(&|it| it.columns.resources.len());
    let resources: Vec<&str> = items
        .iter()
        .flat_map(|it| it.columns.resources.iter().map(String::as_str))
        .collect();
    let claim_item = positions(&|it| it.claims.len());
    let claims: Vec<&str> = items
        .iter()
        .flat_map(|it| it.claims.iter().map(String::as_str))
        .collect();
    let events = EventLists::of(items);
    let event_item = events.as_ref().map(|_| positions(&|it| it.events.len()));
    let audits = AuditLists::of(items);
    let audit_item = audits.as_ref().map(|_| positions(&|it| it.audits.len()));

    let statement = conn.prepared(COMMIT_INSERTS)?;
    let row = conn.client.query_one(
        &statement,
        &[
            &lock_class,
            &lock_name,
            &tenants,
            &tenant,
            &now,
            &idem_key,
            &idem_fingerprint,
            &idem_result,
            &id,
            &hold,
            &status,
            &start,
            &end,
            &buffer_before,
            &buffer_after,
            &patient,
            &type_id,
            &reason,
            &notes,
            &phi_key,
            &busy_lo,
            &busy_hi,
            &resource_item,
            &resources,
            &claim_item,
            &claims,
            &event_item,
            &events.as_ref().map(|e| &e.kind),
            &events.as_ref().map(|e| &e.due),
            &events.as_ref().map(|e| &e.appointment),
            &events.as_ref().map(|e| &e.data),
            &audit_item,
            &audits.as_ref().map(|a| &a.at),
            &audits.as_ref().map(|a| &a.actor),
            &audits.as_ref().map(|a| &a.action),
            &audits.as_ref().map(|a| &a.record),
            &audits.as_ref().map(|a| &a.decision),
            &audits.as_ref().map(|a| &a.reason_code),
            &audits.as_ref().map(|a| &a.policy_version),
            &audits.as_ref().map(|a| &a.break_glass),
            &probe,
        ],
    )?;
    let keys: Vec<Option<i64>> = row.try_get(0)?;
    let codes: Vec<Option<String>> = row.try_get(1)?;
    let details: Vec<Option<String>> = row.try_get(2)?;
    if keys.len() != items.len() || codes.len() != items.len() || details.len() != items.len() {
        return Err(StorageError::new(
            StorageErrorKind::Integrity,
            "the booking function answered for a different number of items",
        )
        .into());
    }
    keys.into_iter()
        .zip(codes)
        .zip(details)
        .map(|((key, code), detail)| outcome(key, code, detail))
        .collect()
}

/// An item's outcome from the function's key, code and detail.
fn outcome(
    key: Option<i64>,
    code: Option<String>,
    detail: Option<String>,
) -> Result<Outcome, Fail> {
    Ok(match (key, code.as_deref()) {
        (Some(k), None) => Outcome::Inserted(k),
        (None, Some("MS001")) => Outcome::SlotTaken(detail.unwrap_or_default()),
        (None, Some("MS002")) => Outcome::Exists,
        (None, Some("MS003")) => Outcome::Recorded,
        (None, Some("AGAIN")) => Outcome::Again,
        _ => {
            return Err(StorageError::new(
                StorageErrorKind::Integrity,
                "the booking function gave an unknown outcome",
            )
            .into())
        }
    })
}

/// Sends one item in one call of `medsched.commit_insert` on `conn`;
/// `probe`: look for rows in the way before writing (else the exclusion
/// constraint refuses a capacity-one row in the way with 23P01, having
/// written nothing).
fn call_one(conn: &mut Conn, it: &Item, probe: bool) -> Result<Outcome, Fail> {
    let c = &it.columns;
    let a = &it.appointment;
    let events = EventLists::of(&[it]);
    let audits = AuditLists::of(&[it]);
    let statement = conn.prepared(COMMIT_INSERT)?;
    let row = conn.client.query_one(
        &statement,
        &[
            &it.tenant.as_str(),
            &it.now,
            &it.idempotency.as_ref().map(|i| i.key.as_str()),
            &it.idempotency.as_ref().map(|i| i.fingerprint.as_str()),
            &it.idempotency_result,
            &a.id.as_str(),
            &it.hold_expires_at,
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
            &it.span.map(|s| s.0),
            &it.span.map(|s| s.1),
            &it.claims,
            &events.as_ref().map(|e| &e.kind),
            &events.as_ref().map(|e| &e.due),
            &events.as_ref().map(|e| &e.appointment),
            &events.as_ref().map(|e| &e.data),
            &audits.as_ref().map(|a| &a.at),
            &audits.as_ref().map(|a| &a.actor),
            &audits.as_ref().map(|a| &a.action),
            &audits.as_ref().map(|a| &a.record),
            &audits.as_ref().map(|a| &a.decision),
            &audits.as_ref().map(|a| &a.reason_code),
            &audits.as_ref().map(|a| &a.policy_version),
            &audits.as_ref().map(|a| &a.break_glass),
            &probe,
        ],
    )?;
    let answer: i64 = row.try_get(0)?;
    Ok(match answer {
        k if k > 0 => Outcome::Inserted(k),
        -2 => Outcome::Exists,
        -3 => Outcome::Recorded,
        k => {
            let claim = usize::try_from(-1000 - k)
                .ok()
                .and_then(|n| n.checked_sub(1))
                .and_then(|n| it.claims.get(n));
            match claim {
                Some(r) => Outcome::SlotTaken(r.clone()),
                None => {
                    return Err(StorageError::new(
                        StorageErrorKind::Integrity,
                        "the booking function gave an unknown outcome",
                    )
                    .into())
                }
            }
        }
    })
}

/// Splits items into runs (consecutive, in order) within which no two
/// items of one tenant share an appointment id, an idempotency key, or a
/// resource (claimed or booked) at overlapping times: the items of a run
/// can be checked and written together with the outcome they would have
/// had one after the other.
fn independent_runs(items: &[&Item]) -> Vec<std::ops::Range<usize>> {
    let interacts = |a: &Item, b: &Item| {
        if a.tenant != b.tenant {
            return false;
        }
        if a.appointment.id == b.appointment.id {
            return true;
        }
        if let (Some(x), Some(y)) = (&a.idempotency, &b.idempotency) {
            if x.key == y.key {
                return true;
            }
        }
        let (Some(sa), Some(sb)) = (a.span, b.span) else {
            return false;
        };
        if !(sa.0 < sb.1 && sb.0 < sa.1) {
            return false;
        }
        let uses = |it: &Item, r: &str| {
            it.claims.iter().any(|c| c == r) || it.columns.resources.iter().any(|x| x == r)
        };
        a.claims
            .iter()
            .chain(a.columns.resources.iter())
            .any(|r| uses(b, r))
    };
    let mut runs = Vec::new();
    let mut start = 0;
    for (i, it) in items.iter().enumerate() {
        let clash = items
            .get(start..i)
            .unwrap_or_default()
            .iter()
            .any(|earlier| interacts(earlier, it));
        if clash {
            runs.push(start..i);
            start = i;
        }
    }
    if start < items.len() {
        runs.push(start..items.len());
    }
    runs
}

/// What a waiting caller is told: its result, or to lead the next call.
enum Word {
    Done(Result<Committed, StorageError>),
    Lead,
}

/// Where a waiting caller waits for its word.
#[derive(Default)]
struct Slot {
    word: Mutex<Option<Word>>,
    told: Condvar,
}

impl Slot {
    fn tell(&self, word: Word) {
        *self.word.lock().unwrap_or_else(PoisonError::into_inner) = Some(word);
        self.told.notify_one();
    }

    fn wait(&self) -> Word {
        let mut w = self.word.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if let Some(word) = w.take() {
                return word;
            }
            w = self.told.wait(w).unwrap_or_else(PoisonError::into_inner);
        }
    }
}

/// A queued item and its caller's slot; `promised`: the caller was told to
/// lead.
struct Waiting {
    item: Arc<Item>,
    slot: Arc<Slot>,
    promised: bool,
}

/// The items waiting for a call, and how many calls are being led.
#[derive(Default)]
struct Queue {
    waiting: VecDeque<Waiting>,
    leaders: usize,
    /// Callers inside `commit_item`.
    callers: usize,
}

/// Combines concurrent callers' items into shared calls (see the module
/// documentation). Each caller waits on its own slot, so that a finished
/// call wakes exactly its callers and at most one next leader.
#[derive(Default)]
pub(crate) struct Combiner {
    queue: Mutex<Queue>,
    calls: AtomicU64,
    items: AtomicU64,
    shared: AtomicU64,
    /// How often bookings lately found something in the way: see
    /// [`Combiner::probe_first`].
    conflicts: AtomicU32,
}

/// How many calls of the booking function a store made, and how many
/// bookings they carried: [`PgStore::booking_calls`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct BookingCalls {
    /// Calls of the booking functions (`medsched.commit_insert` for one
    /// booking, `medsched.commit_inserts` for several), attempts included.
    pub calls: u64,
    /// Items sent in them (an item sent twice counts twice).
    pub items: u64,
    /// Items answered by a call that carried several: the bookings that
    /// shared a call.
    pub shared: u64,
}

/// What a booking that finds something in the way adds to
/// [`Combiner::conflicts`] (a clean one takes 1 off), its ceiling, and the
/// level above which bookings probe first: from about one booking in five
/// meeting a conflict.
const CONFLICT_STEP: u32 = 4;
const CONFLICT_CEILING: u32 = 64;
const CONFLICT_PROBE_ABOVE: u32 = 8;

impl Combiner {
    /// Whether a booking should look for rows in the way before writing.
    /// Without the probe a booking in the way costs two calls (one refused
    /// by the exclusion constraint, one probing); with it every booking
    /// costs a statement more. So bookings probe first while conflicts
    /// are frequent (popular slots, racing clients), and not otherwise.
    fn probe_first(&self) -> bool {
        self.conflicts.load(Ordering::Relaxed) > CONFLICT_PROBE_ABOVE
    }

    /// Records whether a booking found something in the way.
    fn record_conflict(&self, conflict: bool) {
        // A lost update between racing callers only blurs the estimate.
        let now = self.conflicts.load(Ordering::Relaxed);
        let next = if conflict {
            (now + CONFLICT_STEP).min(CONFLICT_CEILING)
        } else {
            now.saturating_sub(1)
        };
        if next != now {
            self.conflicts.store(next, Ordering::Relaxed);
        }
    }

    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Ends a leadership: passes it to the first waiting caller not yet
    /// told to lead, or gives it up.
    fn hand_over(&self) {
        let mut q = self.lock();
        match q.waiting.iter_mut().find(|w| !w.promised) {
            Some(next) => {
                next.promised = true;
                next.slot.tell(Word::Lead);
            }
            None => q.leaders = q.leaders.saturating_sub(1),
        }
    }
}

/// A caller inside `commit_item`, counted until it returns (or unwinds).
struct Calling<'a>(&'a Combiner);

impl Drop for Calling<'_> {
    fn drop(&mut self) {
        let mut q = self.0.lock();
        q.callers = q.callers.saturating_sub(1);
    }
}

/// A leadership, handed over when dropped (also when a call unwinds).
struct Leadership<'a>(&'a Combiner);

impl Drop for Leadership<'_> {
    fn drop(&mut self) {
        self.0.hand_over();
    }
}

/// The callers of a call in progress: those not told by the end (the
/// call unwound) are told it failed.
struct Callers(Vec<Option<Arc<Slot>>>);

impl Drop for Callers {
    fn drop(&mut self) {
        for slot in self.0.iter().flatten() {
            slot.tell(Word::Done(Err(StorageError::new(
                StorageErrorKind::Unavailable,
                "the booking call failed unexpectedly",
            ))));
        }
    }
}

impl PgStore {
    /// Calls of the booking function so far and the bookings they carried
    /// (a booking is a batch that inserts one appointment): `items` above
    /// `calls` means bookings of concurrent callers shared round trips.
    pub fn booking_calls(&self) -> BookingCalls {
        BookingCalls {
            calls: self.combiner.calls.load(Ordering::Relaxed),
            items: self.combiner.items.load(Ordering::Relaxed),
            shared: self.combiner.shared.load(Ordering::Relaxed),
        }
    }

    /// Sends `items` in one call of `medsched.commit_inserts` (counted).
    fn call(&self, items: &[&Item], probe: bool) -> Result<Vec<Outcome>, Fail> {
        self.count_call(items.len());
        let outcomes = self
            .pool
            .get()
            .and_then(|mut c| call_many(c.conn()?, items, probe))?;
        self.combiner
            .shared
            .fetch_add(items.len() as u64, Ordering::Relaxed);
        Ok(outcomes)
    }

    /// Sends one item in one call of `medsched.commit_insert` (counted).
    fn call_alone(&self, item: &Item, probe: bool) -> Result<Outcome, Fail> {
        self.count_call(1);
        self.pool
            .get()
            .and_then(|mut c| call_one(c.conn()?, item, probe))
    }

    fn count_call(&self, items: usize) {
        self.combiner.calls.fetch_add(1, Ordering::Relaxed);
        self.combiner
            .items
            .fetch_add(items as u64, Ordering::Relaxed);
    }

    /// Commits one item, combined with other callers' items when they
    /// arrive together.
    pub(crate) fn commit_item(&self, item: Item) -> Result<Committed, StorageError> {
        let combiner = &self.combiner;
        let slot = Arc::new(Slot::default());
        let lead_now = {
            let mut q = combiner.lock();
            q.callers += 1;
            let cap = if q.callers > MANY_CALLERS {
                MAX_LEADERS
            } else {
                MAX_LEADERS_FEW
            };
            let lead = q.leaders < cap.min(self.pool.max_size()).max(1);
            if lead {
                q.leaders += 1;
            }
            q.waiting.push_back(Waiting {
                item: Arc::new(item),
                slot: Arc::clone(&slot),
                promised: lead,
            });
            lead
        };
        let _calling = Calling(combiner);
        if lead_now {
            return self.lead(&slot);
        }
        match slot.wait() {
            Word::Done(result) => result,
            Word::Lead => self.lead(&slot),
        }
    }

    /// Leads calls, taking the queue's first items each time, until the
    /// caller's own item (on `mine`) is done; then hands the leadership
    /// over. A caller told to lead is told nothing else: its item waits
    /// in the queue for its own call.
    fn lead(&self, mine: &Arc<Slot>) -> Result<Committed, StorageError> {
        let _leadership = Leadership(&self.combiner);
        loop {
            // The first items in the queue, but not those of callers told
            // to lead: each leader takes its own item itself.
            let group: Vec<Waiting> = {
                let mut q = self.combiner.lock();
                let mut group = Vec::with_capacity(q.waiting.len().min(MAX_GROUP));
                let mut rest = VecDeque::with_capacity(q.waiting.len());
                for w in q.waiting.drain(..) {
                    if group.len() < MAX_GROUP && (!w.promised || Arc::ptr_eq(&w.slot, mine)) {
                        group.push(w);
                    } else {
                        rest.push_back(w);
                    }
                }
                q.waiting = rest;
                group
            };
            let mut callers = Callers(group.iter().map(|w| Some(Arc::clone(&w.slot))).collect());
            let items: Vec<&Item> = group.iter().map(|w| w.item.as_ref()).collect();
            let results = self.commit_group(&items);
            let mut own = None;
            for (caller, result) in callers.0.iter_mut().zip(results) {
                let Some(slot) = caller.take() else { continue };
                if Arc::ptr_eq(&slot, mine) {
                    own = Some(result);
                } else {
                    slot.tell(Word::Done(result));
                }
            }
            drop(callers);
            if let Some(result) = own {
                return result;
            }
            if group.is_empty() {
                // Not reachable: the caller's item stays queued until its
                // own call takes it.
                return Err(StorageError::new(
                    StorageErrorKind::Unavailable,
                    "the booking call lost an item",
                ));
            }
        }
    }

    /// Commits `items`, as if one after the other: each run of independent
    /// items in one call.
    fn commit_group(&self, items: &[&Item]) -> Vec<Result<Committed, StorageError>> {
        let mut results = Vec::with_capacity(items.len());
        for run in independent_runs(items) {
            results.extend(self.commit_run(items.get(run).unwrap_or_default()));
        }
        results
    }

    /// Commits independent items in one call (see [`independent_runs`]),
    /// and falls back to one call per item when it fails as a whole.
    fn commit_run(&self, items: &[&Item]) -> Vec<Result<Committed, StorageError>> {
        if let [item] = items {
            return vec![self.commit_alone(item)];
        }
        let mut probe = self.combiner.probe_first() || items.iter().any(|it| it.probe_first());
        let mut attempt = 0;
        let lost = loop {
            attempt += 1;
            let outcome = self.call(items, probe);
            let err = match outcome {
                Ok(outcomes) => {
                    for o in &outcomes {
                        self.combiner
                            .record_conflict(matches!(o, Outcome::SlotTaken(_) | Outcome::Again));
                    }
                    return items
                        .iter()
                        .zip(outcomes)
                        .map(|(it, o)| self.settle_outcome(it, o, false))
                        .collect();
                }
                Err(Fail::Db(e)) => e,
                // A pool timeout, an unreadable answer: each on its own.
                Err(_) => break false,
            };
            if err.code() == Some(&SqlState::EXCLUSION_VIOLATION) && !probe {
                // Something is in some item's way (nothing was written):
                // the probing call says what, item by item.
                self.combiner.record_conflict(true);
                probe = true;
                continue;
            }
            if is_connection_loss(&err) {
                break true;
            }
            if !is_retryable(&err) || attempt >= MAX_ATTEMPTS {
                break false;
            }
            thread::sleep(backoff(attempt));
        };
        items
            .iter()
            .map(|it| {
                // The call may have committed: the item's appointment
                // tells. With a key, the next call tells (its recorded
                // result, `replayed`, whichever request committed it).
                if lost && it.idempotency.is_none() {
                    if let Ok(Some(done)) = self.inserted(it) {
                        return Ok(done);
                    }
                }
                self.commit_alone(it)
            })
            .collect()
    }

    /// Commits one item in its own call, with retries; a connection lost
    /// during the call is settled by looking for the item's appointment.
    fn commit_alone(&self, item: &Item) -> Result<Committed, StorageError> {
        let mut lost_before = false;
        let mut probe = item.probe_first() || self.combiner.probe_first();
        let mut refused = false;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let err = match self.call_alone(item, probe) {
                Ok(o) => {
                    self.combiner
                        .record_conflict(refused || matches!(o, Outcome::SlotTaken(_)));
                    return self.settle_outcome(item, o, lost_before);
                }
                Err(Fail::Domain(e)) => return Err(e),
                Err(Fail::Db(e)) => e,
            };
            if is_duplicate_id(&err) {
                // The function inserts the appointment without ON CONFLICT:
                // an existing id fails the call, nothing written.
                return self.settle_outcome(item, Outcome::Exists, lost_before);
            }
            if err.code() == Some(&SqlState::EXCLUSION_VIOLATION) {
                if !probe {
                    refused = true;
                    // Something is in the way (nothing was written): the
                    // probing call removes lapsed holds and says what.
                    probe = true;
                    continue;
                }
                // A writer outside medsched holds the time.
                let resource = ResourceId(item.claims.first().cloned().unwrap_or_default());
                return Err(StorageError::slot_taken(&resource));
            }
            if is_connection_loss(&err) {
                lost_before = true;
                // Without a key, an existing appointment of the item's id
                // is its own insert; with one, the retried call answers
                // with the key's recorded result (`replayed`: an earlier
                // request may have committed it).
                if item.idempotency.is_none() {
                    if let Ok(Some(done)) = self.inserted(item) {
                        return Ok(done);
                    }
                }
            } else if !is_retryable(&err) {
                return Err(unavailable(&err));
            }
            if attempt >= MAX_ATTEMPTS {
                return Err(gave_up(attempt));
            }
            thread::sleep(backoff(attempt));
        }
    }

    /// The caller's result for an item's outcome. `lost_before`: an earlier
    /// attempt of this item lost its connection, so an existing
    /// appointment may be its own.
    fn settle_outcome(
        &self,
        item: &Item,
        outcome: Outcome,
        lost_before: bool,
    ) -> Result<Committed, StorageError> {
        match outcome {
            Outcome::Inserted(k) => item.committed(k),
            // Only from a shared call: the item wrote nothing there.
            Outcome::Again => self.commit_alone(item),
            Outcome::SlotTaken(_) | Outcome::Exists if lost_before => {
                // The lost attempt may have committed: its own appointment
                // is then what is in the way.
                if let Some(done) = self.inserted(item)? {
                    return Ok(done);
                }
                Err(match outcome {
                    Outcome::SlotTaken(r) => StorageError::slot_taken(&ResourceId(r)),
                    _ => item.exists(),
                })
            }
            Outcome::SlotTaken(r) => Err(StorageError::slot_taken(&ResourceId(r))),
            Outcome::Exists => Err(item.exists()),
            Outcome::Recorded => {
                let Some(idem) = &item.idempotency else {
                    return Err(unavailable_answer());
                };
                let ring = self.keyring.as_ref();
                let found = self.run(Some(&item.tenant), true, |tx| {
                    idempotency_lookup(tx, &item.tenant, ring, &idem.key)
                })?;
                match found {
                    Some((fingerprint, _)) if fingerprint != idem.fingerprint => {
                        Err(StorageError::new(
                            StorageErrorKind::IdempotencyMismatch,
                            "idempotency key reused with different parameters",
                        ))
                    }
                    Some((_, first)) => Ok(first),
                    None => Err(unavailable_answer()),
                }
            }
        }
    }

    /// The committed item if its appointment exists (its id is the
    /// caller's, so an existing row is the item's own insert).
    fn inserted(&self, item: &Item) -> Result<Option<Committed>, StorageError> {
        let t = item.tenant.as_str();
        let key = self.run(Some(&item.tenant), true, |tx| {
            Ok(tx
                .query_opt(
                    "SELECT key FROM medsched.appointments WHERE tenant_id = $1 AND id = $2",
                    &[&t, &item.appointment.id.as_str()],
                )?
                .map(|r| r.try_get::<_, i64>(0))
                .transpose()?)
        })?;
        key.map(|k| item.committed(k)).transpose()
    }
}

/// Whether `err` is the unique violation of an appointment id.
fn is_duplicate_id(err: &postgres::Error) -> bool {
    err.as_db_error().is_some_and(|e| {
        e.code() == &SqlState::UNIQUE_VIOLATION
            && e.constraint() == Some("appointments_tenant_id_id_key")
    })
}

fn unavailable_answer() -> StorageError {
    StorageError::new(
        StorageErrorKind::Unavailable,
        "the booking function gave no usable answer",
    )
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use medsched_storage::{AppointmentStatus, Claim};

    use super::*;

    fn item(tenant: &str, id: &str, resource: &str, hour: u32, key: Option<&str>) -> Item {
        let at = |h: u32| Utc.with_ymd_and_hms(2031, 1, 6, h, 0, 0).single();
        let appointment = Appointment {
            id: id.into(),
            type_id: None,
            patient: None,
            resources: vec![resource.into()],
            start: at(hour),
            end: at(hour + 1),
            status: AppointmentStatus::Booked,
            buffer_before_min: 0,
            buffer_after_min: 0,
            reason: None,
            notes: None,
        };
        let batch = Batch {
            now: Utc
                .with_ymd_and_hms(2031, 1, 1, 0, 0, 0)
                .single()
                .unwrap_or_default(),
            idempotency: key.map(|k| Idempotency {
                key: k.to_owned(),
                fingerprint: "f".to_owned(),
            }),
            ops: vec![Op::Insert {
                claims: vec![Claim {
                    resource: resource.into(),
                    capacity: 1,
                }],
                appointment,
                hold_expires_at: None,
                overbook: false,
            }],
        };
        match Item::of(&TenantId::from(tenant), &batch, None) {
            Ok(Some(it)) => it,
            other => panic!("not a one-insert item: {:?}", other.map(|o| o.is_some())),
        }
    }

    fn runs(items: &[Item]) -> Vec<std::ops::Range<usize>> {
        let refs: Vec<&Item> = items.iter().collect();
        independent_runs(&refs)
    }

    #[test]
    fn interacting_items_go_in_separate_runs_in_order() {
        // Independent: other rooms, other tenants, other times.
        let free = [
            item("t", "a", "r1", 9, None),
            item("t", "b", "r2", 9, None),
            item("u", "c", "r1", 9, None),
            item("t", "d", "r1", 10, None),
        ];
        assert_eq!(runs(&free), vec![0..4]);
        // The same room at overlapping times, the same id, the same key
        // (within one run; an earlier run is committed before): each starts
        // a new run, and the runs keep the queue's order.
        let clash = [
            item("t", "a", "r1", 9, Some("k1")),
            item("t", "b", "r2", 9, None),
            item("t", "c", "r1", 9, None),
            item("t", "c", "r3", 12, Some("k2")),
            item("t", "e", "r4", 12, Some("k2")),
            item("u", "e", "r4", 12, Some("k2")),
        ];
        assert_eq!(runs(&clash), vec![0..2, 2..3, 3..4, 4..6]);
    }

    #[test]
    fn one_insert_items_are_recognised_and_others_are_not() {
        let it = item("t", "a", "r1", 9, None);
        assert_eq!(it.claims, vec!["r1".to_owned()]);
        let two = Batch {
            now: it.now,
            idempotency: None,
            ops: vec![
                Op::Insert {
                    claims: vec![],
                    appointment: it.appointment.clone(),
                    hold_expires_at: None,
                    overbook: false,
                },
                Op::Insert {
                    claims: vec![],
                    appointment: it.appointment.clone(),
                    hold_expires_at: None,
                    overbook: false,
                },
            ],
        };
        assert!(matches!(
            Item::of(&TenantId::from("t"), &two, None),
            Ok(None)
        ));
        let larger = Batch {
            now: it.now,
            idempotency: None,
            ops: vec![Op::Insert {
                claims: vec![Claim {
                    resource: "r1".into(),
                    capacity: 3,
                }],
                appointment: it.appointment.clone(),
                hold_expires_at: None,
                overbook: false,
            }],
        };
        assert!(matches!(
            Item::of(&TenantId::from("t"), &larger, None),
            Ok(None)
        ));
    }
}
