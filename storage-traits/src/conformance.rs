//! The adapter conformance suite (feature `conformance`): the checks every
//! [`Store`] implementation must pass, MemoryStore and every durable adapter
//! alike, so that "the store is the last line of defence" holds whatever
//! the backend.
//!
//! Each check is a public function taking a store and panicking (through
//! `assert!`) on the first violation. An adapter runs them all, one named
//! test per check, with [`conformance_tests!`](crate::conformance_tests):
//!
//! ```toml
//! [dev-dependencies]
//! medsched-storage = { workspace = true, features = ["conformance"] }
//! ```
//!
//! ```
//! // tests/conformance.rs of an adapter crate: one `#[test]` per check,
//! // each on a fresh store from the factory.
//! medsched_storage::conformance_tests!(medsched_storage::MemoryStore::new);
//! # fn main() {}
//! ```
//!
//! A single check can also be called directly:
//!
//! ```
//! use medsched_storage::{conformance, MemoryStore};
//!
//! conformance::version_conflict_on_stale_update(&MemoryStore::new());
//! ```
//!
//! The factory must return a store in which the tenants the suite uses
//! (`conformance-*`) are empty. Every check uses its own tenants, so checks
//! running in parallel never see each other's data even when the factory
//! hands out connections to one shared database. Instants lie in January
//! 2030, on whole seconds; the suite prints nothing.
//!
//! This module is test code that adapters compile into their test builds:
//! it unwraps, indexes and panics on purpose, so the lints that keep panics
//! out of library code are allowed here.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::BTreeSet;
use std::fmt::Debug;
use std::sync::Barrier;
use std::thread;

use chrono::{DateTime, NaiveDate, NaiveTime, TimeDelta, TimeZone, Utc};

use crate::records::{
    Appointment, AppointmentId, AppointmentStatus, AppointmentType, AppointmentTypeId, Clinic,
    PatientId, Phi, Requirement, Resource, ResourceId, ResourceKind, TenantId, WorkingHours,
};
use crate::store::{
    AppointmentKey, Batch, BookingRow, BookingsQuery, Claim, Committed, EventData, EventKind,
    Idempotency, NewEvent, Op, OutboxEvent, StorageError, StorageErrorKind, Store,
    StoredAppointment, WaitlistEntry,
};

/// Expands to one `#[test]` per conformance check, each calling the check
/// with a fresh store from `$factory` (any expression that can be called
/// with no arguments and returns a [`Store`](crate::Store)). The tests are
/// named after the checks in [`conformance`](crate::conformance).
///
/// ```
/// medsched_storage::conformance_tests!(medsched_storage::MemoryStore::new);
/// # fn main() {}
/// ```
#[macro_export]
macro_rules! conformance_tests {
    ($factory:expr) => {
        $crate::conformance_tests!(@checks $factory;
            concurrent_bookings_never_overlap,
            idempotency_keys_give_one_appointment_each,
            capacity_three_never_exceeded,
            reschedule_races_have_one_winner,
            outbox_claims_are_exclusive,
            batch_is_atomic,
            holds_lapse,
            statuses_release_time,
            outbox_lease_expiry_redelivers,
            supersede_drops_stale_reminders,
            catalog_versions,
            bookings_read_is_windowed_and_sorted,
            bookings_read_matches_model,
            long_rows_checks_and_reads_match_model,
            waitlist_order_and_removal,
            patient_bookings_filters,
            duplicate_ids_refused,
            version_conflict_on_stale_update,
            update_claims_skip_own_row,
            multi_resource_claims,
            not_found_errors,
            appointments_round_trip,
            error_codes_and_messages,
            audit_chain_appends_in_order,
            audit_in_a_failed_batch_is_rolled_back,
            concurrent_audit_appends_keep_one_chain,
        );
    };
    (@checks $factory:expr; $($check:ident),+ $(,)?) => {
        $(
            #[test]
            fn $check() {
                let store = ($factory)();
                $crate::conformance::$check(&store);
            }
        )+
    };
}

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// Text put in every PHI field the suite writes; no error may show it.
const PHI_SENTINEL: &str = "conformance-phi-sentinel";

/// A tiny deterministic RNG (splitmix64), one per thread.
#[derive(Debug)]
struct SplitMix64(u64);

impl SplitMix64 {
    fn new(seed: u64) -> Self {
        Self(seed)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_4762_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform enough in `0..n` for test data.
    fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    fn int(&mut self, lo: i64, hi_inclusive: i64) -> i64 {
        lo + self.below((hi_inclusive - lo + 1) as u64) as i64
    }
}

fn tenant(name: &str) -> TenantId {
    TenantId(format!("conformance-{name}"))
}

/// 2030-01-07T00:00:00Z, a Monday: minute 0 of the suite's clock.
fn base() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2030, 1, 7, 0, 0, 0).single().unwrap()
}

/// The instant `min` minutes after [`base`].
fn at(min: i64) -> DateTime<Utc> {
    base() + TimeDelta::minutes(min)
}

/// Epoch seconds of [`at`].
fn secs(min: i64) -> i64 {
    at(min).timestamp()
}

/// A booked appointment on one resource, `len` minutes from minute `start`.
fn appt(id: &str, resource: &str, start: i64, len: i64) -> Appointment {
    Appointment {
        id: id.into(),
        type_id: None,
        patient: None,
        resources: vec![resource.into()],
        start: Some(at(start)),
        end: Some(at(start + len)),
        status: AppointmentStatus::Booked,
        buffer_before_min: 0,
        buffer_after_min: 0,
        reason: Some(Phi(format!("{PHI_SENTINEL} reason"))),
        notes: None,
    }
}

fn with_buffers(mut a: Appointment, before: u32, after: u32) -> Appointment {
    a.buffer_before_min = before;
    a.buffer_after_min = after;
    a
}

fn with_status(mut a: Appointment, status: AppointmentStatus) -> Appointment {
    a.status = status;
    a
}

fn with_patient(mut a: Appointment, patient: &str) -> Appointment {
    a.patient = Some(patient.into());
    a
}

fn moved(a: &Appointment, start: i64, len: i64) -> Appointment {
    Appointment {
        start: Some(at(start)),
        end: Some(at(start + len)),
        ..a.clone()
    }
}

/// Busy span in epoch seconds, buffers included.
fn busy_span(a: &Appointment) -> (i64, i64) {
    (
        a.start.unwrap().timestamp() - i64::from(a.buffer_before_min) * 60,
        a.end.unwrap().timestamp() + i64::from(a.buffer_after_min) * 60,
    )
}

/// Claims of `capacity` on every resource of the appointment.
fn claims(a: &Appointment, capacity: u32) -> Vec<Claim> {
    a.resources
        .iter()
        .map(|r| Claim {
            resource: r.clone(),
            capacity,
        })
        .collect()
}

/// A checked insert with capacity `capacity` on each of its resources.
fn insert(a: Appointment, capacity: u32) -> Op {
    Op::Insert {
        claims: claims(&a, capacity),
        appointment: a,
        hold_expires_at: None,
        overbook: false,
    }
}

/// An insert that skips the capacity checks.
fn insert_overbooked(a: Appointment, hold_expires_at: Option<DateTime<Utc>>) -> Op {
    Op::Insert {
        appointment: a,
        hold_expires_at,
        claims: Vec::new(),
        overbook: true,
    }
}

fn hold(a: Appointment, expires: DateTime<Utc>) -> Op {
    Op::Insert {
        claims: claims(&a, 1),
        appointment: a,
        hold_expires_at: Some(expires),
        overbook: false,
    }
}

/// A checked update with capacity `capacity` on each of its resources.
fn update(a: Appointment, expected_version: u64, capacity: u32) -> Op {
    Op::Update {
        claims: claims(&a, capacity),
        appointment: a,
        expected_version,
        hold_expires_at: None,
        overbook: false,
    }
}

fn event(kind: EventKind, due: DateTime<Utc>, appointment: &str) -> Op {
    Op::Emit(NewEvent {
        kind,
        due_at: due,
        data: EventData {
            appointment: Some(appointment.into()),
            ..EventData::default()
        },
    })
}

fn batch(now: DateTime<Utc>, ops: Vec<Op>) -> Batch {
    Batch {
        now,
        idempotency: None,
        ops,
    }
}

/// Commits and expects success.
#[track_caller]
fn commit_ok<S: Store>(store: &S, t: &TenantId, now: DateTime<Utc>, ops: Vec<Op>) -> Committed {
    match store.commit(t, batch(now, ops)) {
        Ok(c) => {
            assert!(!c.replayed, "a batch without idempotency key was replayed");
            c
        }
        Err(e) => panic!("commit failed: {} ({e})", e.code()),
    }
}

/// Commits and expects an error of `kind`.
#[track_caller]
fn commit_err<S: Store>(
    store: &S,
    t: &TenantId,
    now: DateTime<Utc>,
    ops: Vec<Op>,
    kind: StorageErrorKind,
) -> StorageError {
    expect_err(store.commit(t, batch(now, ops)), kind, "commit")
}

/// The code a kind must have: listed here, independently of `code()`.
fn expected_code(kind: StorageErrorKind) -> &'static str {
    match kind {
        StorageErrorKind::NotFound => "not_found",
        StorageErrorKind::SlotTaken => "slot_unavailable",
        StorageErrorKind::VersionConflict => "version_conflict",
        StorageErrorKind::Duplicate => "duplicate_id",
        StorageErrorKind::IdempotencyMismatch => "idempotency_mismatch",
        StorageErrorKind::LeaseLost => "lease_lost",
        StorageErrorKind::Unavailable => "storage_unavailable",
        StorageErrorKind::Integrity => "integrity_error",
        StorageErrorKind::Invalid => "invalid_input",
        StorageErrorKind::SchemaTooNew => "schema_too_new",
        StorageErrorKind::Internal => "internal_error",
    }
}

/// Checks an error's kind, code, permanence and message style.
#[track_caller]
fn check_error(e: &StorageError, kind: StorageErrorKind, what: &str) {
    assert_eq!(e.kind(), kind, "{what}: wrong error kind ({e})");
    assert_eq!(e.code(), expected_code(kind), "{what}: wrong code");
    assert!(
        !e.is_temporary(),
        "{what}: `{}` must not be temporary",
        e.code()
    );
    let msg = e.to_string();
    assert!(!msg.is_empty(), "{what}: empty message");
    assert!(
        !msg.contains('\n'),
        "{what}: message is not one line: {msg:?}"
    );
    assert!(!msg.ends_with('.'), "{what}: message ends with a period");
    assert!(
        !msg.starts_with(|c: char| c.is_uppercase()),
        "{what}: message does not start lowercase: {msg:?}"
    );
    assert!(
        !msg.contains(PHI_SENTINEL) && !format!("{e:?}").contains(PHI_SENTINEL),
        "{what}: error shows PHI"
    );
}

/// Expects an error of `kind` and checks it as [`check_error`] does.
#[track_caller]
fn expect_err<T: Debug>(
    r: Result<T, StorageError>,
    kind: StorageErrorKind,
    what: &str,
) -> StorageError {
    match r {
        Ok(v) => panic!(
            "{what}: expected `{}`, got success: {v:?}",
            expected_code(kind)
        ),
        Err(e) => {
            check_error(&e, kind, what);
            e
        }
    }
}

/// Expects an error of one of `kinds`.
#[track_caller]
fn expect_err_of<T: Debug>(
    r: Result<T, StorageError>,
    kinds: &[StorageErrorKind],
    what: &str,
) -> StorageError {
    match r {
        Ok(v) => panic!("{what}: expected one of {kinds:?}, got success: {v:?}"),
        Err(e) => {
            assert!(kinds.contains(&e.kind()), "{what}: unexpected error {e}");
            check_error(&e, e.kind(), what);
            e
        }
    }
}

#[track_caller]
fn get<S: Store>(store: &S, t: &TenantId, id: &str) -> std::sync::Arc<StoredAppointment> {
    store
        .appointment(t, &id.into())
        .unwrap_or_else(|e| panic!("appointment `{id}`: {e}"))
}

#[track_caller]
fn assert_missing<S: Store>(store: &S, t: &TenantId, id: &str) {
    expect_err(
        store.appointment(t, &id.into()),
        StorageErrorKind::NotFound,
        "read of an appointment that must not exist",
    );
}

/// The rows of a bookings read, checked to be sorted by (position, start).
#[track_caller]
fn bookings<S: Store>(
    store: &S,
    t: &TenantId,
    resources: &[ResourceId],
    window: (i64, i64),
    now: i64,
    type_id: Option<&AppointmentTypeId>,
) -> Vec<BookingRow> {
    let mut out = Vec::new();
    store
        .bookings(
            t,
            &BookingsQuery {
                resources,
                from: window.0,
                to: window.1,
                now,
                type_id,
            },
            &mut out,
        )
        .unwrap();
    assert!(
        out.windows(2)
            .all(|w| (w[0].resource, w[0].start) <= (w[1].resource, w[1].start)),
        "bookings rows not sorted by (resource position, start): {out:?}"
    );
    out
}

fn row_busy(r: &BookingRow) -> (i64, i64) {
    (r.start - r.buffer_before, r.end + r.buffer_after)
}

fn overlaps(a: (i64, i64), b: (i64, i64)) -> bool {
    a.0 < b.1 && b.0 < a.1
}

/// The most spans that overlap at one instant (half-open: touching spans
/// do not overlap).
fn max_depth(spans: &[(i64, i64)]) -> usize {
    let mut edges: Vec<(i64, i32)> = spans.iter().flat_map(|&(s, e)| [(s, 1), (e, -1)]).collect();
    edges.sort_unstable();
    let (mut depth, mut most) = (0i32, 0i32);
    for (_, d) in edges {
        depth += d;
        most = most.max(depth);
    }
    most as usize
}

/// The most spans overlapping at one instant inside `within`.
fn max_depth_within(spans: &[(i64, i64)], within: (i64, i64)) -> usize {
    let clipped: Vec<(i64, i64)> = spans
        .iter()
        .filter(|s| overlaps(**s, within))
        .map(|&(s, e)| (s.max(within.0), e.min(within.1)))
        .collect();
    max_depth(&clipped)
}

/// Runs `f(0..n)` on `n` scoped threads and returns the results in order,
/// re-raising a thread's panic.
fn on_threads<T: Send, F: Fn(usize) -> T + Sync>(n: usize, f: F) -> Vec<T> {
    thread::scope(|s| {
        let f = &f;
        let handles: Vec<_> = (0..n).map(|i| s.spawn(move || f(i))).collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    })
}

fn claim<S: Store>(
    store: &S,
    t: &TenantId,
    worker: &str,
    max: usize,
    now: DateTime<Utc>,
    lease_secs: i64,
) -> Vec<OutboxEvent> {
    store
        .claim_events(t, worker, max, now, lease_secs)
        .unwrap_or_else(|e| panic!("claim_events: {e}"))
}

fn ids(events: &[OutboxEvent]) -> Vec<u64> {
    events.iter().map(|e| e.id).collect()
}

fn waitlist_entry(id: &str, type_id: &str, created: i64) -> WaitlistEntry {
    WaitlistEntry {
        id: id.to_owned(),
        patient: format!("patient-of-{id}").as_str().into(),
        type_id: type_id.into(),
        resources: vec!["wl-room".into()],
        from: at(0),
        to: at(7 * 24 * 60),
        created_at: at(created),
    }
}

// ---------------------------------------------------------------------------
// Races
// ---------------------------------------------------------------------------

/// One attempt of a booking race and its outcome.
#[derive(Debug)]
struct Attempt {
    id: AppointmentId,
    resource: usize,
    span: (i64, i64),
    outcome: Result<AppointmentKey, StorageError>,
}

/// 8 threads make 500 attempts each to book random spans (5-minute grid,
/// 15–60 minutes, buffers 0–10 minutes) on 3 resources of capacity 1.
/// No two active rows of a resource overlap (touching is allowed), every
/// refusal is `slot_unavailable` naming the resource and is justified by a
/// row that overlaps it, and the rows read back are exactly the successes.
pub fn concurrent_bookings_never_overlap<S: Store>(store: &S) {
    const THREADS: usize = 8;
    const ATTEMPTS: usize = 500;
    let t = tenant("concurrent-bookings");
    let resources: Vec<ResourceId> = (0..3)
        .map(|i| ResourceId(format!("race-room-{i}")))
        .collect();
    let now = at(-24 * 60);

    let attempts: Vec<Attempt> = on_threads(THREADS, |th| {
        let mut rng = SplitMix64::new(0x5EED_0000 + th as u64);
        let mut out = Vec::with_capacity(ATTEMPTS);
        for i in 0..ATTEMPTS {
            let resource = rng.below(3) as usize;
            let start = rng.int(0, 287) * 5;
            let len = rng.int(15, 60);
            let a = with_buffers(
                appt(
                    &format!("race-{th}-{i}"),
                    resources[resource].as_str(),
                    start,
                    len,
                ),
                rng.below(11) as u32,
                rng.below(11) as u32,
            );
            let (id, span) = (a.id.clone(), busy_span(&a));
            let outcome = store.commit(&t, batch(now, vec![insert(a, 1)])).map(|c| {
                assert!(!c.replayed);
                assert_eq!(c.appointments.len(), 1);
                assert_eq!(c.appointments[0].version, 1);
                c.appointments[0].key
            });
            out.push(Attempt {
                id,
                resource,
                span,
                outcome,
            });
        }
        out
    })
    .into_iter()
    .flatten()
    .collect();

    let rows = bookings(
        store,
        &t,
        &resources,
        (secs(-2 * 24 * 60), secs(3 * 24 * 60)),
        now.timestamp(),
        None,
    );
    let successes: Vec<&Attempt> = attempts.iter().filter(|a| a.outcome.is_ok()).collect();
    assert!(!successes.is_empty(), "no attempt succeeded");
    assert!(
        successes.len() < attempts.len(),
        "every attempt succeeded: the race never contended"
    );
    assert_eq!(
        rows.len(),
        successes.len(),
        "rows read back differ from the successful inserts"
    );
    let keys: BTreeSet<AppointmentKey> = rows.iter().map(|r| r.key).collect();
    assert_eq!(keys.len(), rows.len(), "one key on two rows");

    // No overlap, from the batched read.
    for (pos, resource) in resources.iter().enumerate() {
        let mut spans: Vec<(i64, i64)> = rows
            .iter()
            .filter(|r| r.resource as usize == pos)
            .map(row_busy)
            .collect();
        spans.sort_unstable();
        for w in spans.windows(2) {
            assert!(
                w[0].1 <= w[1].0,
                "double booking on `{resource}`: {:?} and {:?}",
                w[0],
                w[1]
            );
        }
    }

    // The same, from the rows read one by one.
    let mut by_resource: Vec<Vec<(i64, i64)>> = vec![Vec::new(); resources.len()];
    for a in &successes {
        let key = *a.outcome.as_ref().unwrap();
        let stored = get(store, &t, a.id.as_str());
        assert_eq!(stored.key, key, "appointment `{}` changed key", a.id);
        assert_eq!(stored.version, 1);
        assert_eq!(stored.busy_at(now.timestamp()), Some(a.span));
        let row = rows
            .iter()
            .find(|r| r.key == key)
            .unwrap_or_else(|| panic!("appointment `{}` missing from bookings", a.id));
        assert_eq!(row.resource as usize, a.resource);
        assert_eq!(row_busy(row), a.span);
        by_resource[a.resource].push(a.span);
    }
    for (pos, spans) in by_resource.iter_mut().enumerate() {
        spans.sort_unstable();
        assert!(
            spans.windows(2).all(|w| w[0].1 <= w[1].0),
            "double booking on `{}` (read by id)",
            resources[pos]
        );
    }

    // Every refusal is slot_unavailable and justified: nothing is ever
    // removed here, so what blocked it is still there.
    for a in attempts.iter().filter(|a| a.outcome.is_err()) {
        let e = a.outcome.as_ref().unwrap_err();
        check_error(e, StorageErrorKind::SlotTaken, "refused booking");
        assert_eq!(e.resource(), Some(&resources[a.resource]));
        assert!(
            rows.iter()
                .any(|r| r.resource as usize == a.resource && overlaps(row_busy(r), a.span)),
            "booking `{}` refused although its slot is free",
            a.id
        );
        assert_missing(store, &t, a.id.as_str());
    }
}

/// 8 threads submit the same 50 idempotency keys (each key always with the
/// same appointment and fingerprint): one appointment and one event per
/// key, the replays say `replayed` and return the original's key. The same
/// key with another fingerprint is `idempotency_mismatch` and inserts
/// nothing; a failed batch records no key.
pub fn idempotency_keys_give_one_appointment_each<S: Store>(store: &S) {
    const THREADS: usize = 8;
    const KEYS: usize = 50;
    let t = tenant("idempotency");
    let now = at(0);
    let request = |k: usize, fingerprint: &str, id: &str| Batch {
        now,
        idempotency: Some(Idempotency {
            key: format!("key-{k}"),
            fingerprint: fingerprint.to_owned(),
        }),
        ops: vec![
            insert(appt(id, "idem-room", 60 * k as i64, 30), 1),
            event(EventKind::Booked, now, id),
        ],
    };

    let barrier = Barrier::new(THREADS);
    // Nothing between two barrier waits may panic, or the other threads
    // would wait forever: results are judged after the threads end.
    let results: Vec<Vec<Result<Committed, StorageError>>> = on_threads(THREADS, |_| {
        (0..KEYS)
            .map(|k| {
                barrier.wait();
                store.commit(&t, request(k, &format!("fp-{k}"), &format!("idem-{k}")))
            })
            .collect()
    });

    let mut keys = BTreeSet::new();
    for k in 0..KEYS {
        let per_key: Vec<&Committed> = results
            .iter()
            .map(|r| {
                r[k].as_ref()
                    .unwrap_or_else(|e| panic!("idempotent submit of key-{k}: {e}"))
            })
            .collect();
        let originals = per_key.iter().filter(|c| !c.replayed).count();
        assert_eq!(originals, 1, "key-{k}: {originals} batches applied");
        let stored = get(store, &t, &format!("idem-{k}"));
        for c in &per_key {
            assert_eq!(
                c.appointments.len(),
                1,
                "key-{k}: result has the wrong rows"
            );
            assert_eq!(c.appointments[0].key, stored.key, "key-{k}: replay differs");
            assert_eq!(c.appointments[0].appointment.id, stored.appointment.id);
        }
        assert_eq!(stored.version, 1);
        keys.insert(stored.key);
        let recorded = store.idempotent(&t, &format!("key-{k}")).unwrap();
        let (fingerprint, committed) = recorded.expect("recorded idempotency key");
        assert_eq!(fingerprint, format!("fp-{k}"));
        assert_eq!(committed.appointments.len(), 1);
        assert_eq!(committed.appointments[0].key, stored.key);
    }
    assert_eq!(keys.len(), KEYS, "two keys share an appointment");
    let rows = bookings(
        store,
        &t,
        &["idem-room".into()],
        (secs(-60), secs(KEYS as i64 * 60 + 60)),
        now.timestamp(),
        None,
    );
    assert_eq!(rows.len(), KEYS, "replays inserted rows");
    let events = claim(store, &t, "idem-worker", 10 * KEYS, now, 60);
    assert_eq!(events.len(), KEYS, "replays emitted events");
    let announced: BTreeSet<String> = events
        .iter()
        .map(|e| e.data.appointment.clone().unwrap().0)
        .collect();
    assert_eq!(announced.len(), KEYS);

    // The same key with other parameters.
    expect_err(
        store.commit(&t, request(0, "another-fingerprint", "idem-x")),
        StorageErrorKind::IdempotencyMismatch,
        "key reused with another fingerprint",
    );
    assert_missing(store, &t, "idem-x");
    let again = store
        .commit(&t, request(0, "fp-0", "idem-0"))
        .unwrap_or_else(|e| panic!("replay after a mismatch: {e}"));
    assert!(again.replayed);
    assert!(store.idempotent(&t, "key-unknown").unwrap().is_none());

    // A failed batch records nothing: its retry runs afresh.
    let clash = |id: &str| Batch {
        now,
        idempotency: Some(Idempotency {
            key: "key-retry".to_owned(),
            fingerprint: "fp-retry".to_owned(),
        }),
        ops: vec![insert(appt(id, "idem-room", 0, 30), 1)],
    };
    expect_err(
        store.commit(&t, clash("idem-retry")),
        StorageErrorKind::SlotTaken,
        "idempotent batch into a taken slot",
    );
    assert!(
        store.idempotent(&t, "key-retry").unwrap().is_none(),
        "a failed batch recorded its idempotency key"
    );
    let first = get(store, &t, "idem-0");
    let cancelled = with_status(first.appointment.clone(), AppointmentStatus::Cancelled);
    commit_ok(store, &t, now, vec![update(cancelled, first.version, 1)]);
    let retried = store
        .commit(&t, clash("idem-retry"))
        .unwrap_or_else(|e| panic!("retry after the slot freed: {e}"));
    assert!(!retried.replayed, "a failed batch's key was replayed");
    get(store, &t, "idem-retry");
}

/// 8 threads make 200 attempts each on one resource of capacity 3: at no
/// instant do more than 3 active rows overlap, every refusal is
/// `slot_unavailable` and justified by 3 rows overlapping inside its span.
pub fn capacity_three_never_exceeded<S: Store>(store: &S) {
    const THREADS: usize = 8;
    const ATTEMPTS: usize = 200;
    let t = tenant("capacity-three");
    let room: ResourceId = "group-room".into();
    let now = at(-24 * 60);

    let attempts: Vec<Attempt> = on_threads(THREADS, |th| {
        let mut rng = SplitMix64::new(0xCA9A_C170 + th as u64);
        (0..ATTEMPTS)
            .map(|i| {
                let a = with_buffers(
                    appt(
                        &format!("cap-{th}-{i}"),
                        room.as_str(),
                        rng.int(0, 287) * 5,
                        rng.int(15, 60),
                    ),
                    rng.below(11) as u32,
                    rng.below(11) as u32,
                );
                let (id, span) = (a.id.clone(), busy_span(&a));
                let outcome = store
                    .commit(&t, batch(now, vec![insert(a, 3)]))
                    .map(|c| c.appointments[0].key);
                Attempt {
                    id,
                    resource: 0,
                    span,
                    outcome,
                }
            })
            .collect::<Vec<_>>()
    })
    .into_iter()
    .flatten()
    .collect();

    let rows = bookings(
        store,
        &t,
        std::slice::from_ref(&room),
        (secs(-2 * 24 * 60), secs(3 * 24 * 60)),
        now.timestamp(),
        None,
    );
    let successes = attempts.iter().filter(|a| a.outcome.is_ok()).count();
    assert!(successes > 3 && successes < attempts.len());
    assert_eq!(
        rows.len(),
        successes,
        "rows read back differ from successes"
    );
    let spans: Vec<(i64, i64)> = rows.iter().map(row_busy).collect();
    let depth = max_depth(&spans);
    assert!(
        depth <= 3,
        "{depth} appointments overlap on a resource of capacity 3"
    );
    for a in attempts.iter().filter(|a| a.outcome.is_err()) {
        let e = a.outcome.as_ref().unwrap_err();
        check_error(e, StorageErrorKind::SlotTaken, "refused booking");
        assert_eq!(e.resource(), Some(&room));
        assert!(
            max_depth_within(&spans, a.span) >= 3,
            "booking `{}` refused although the resource had room",
            a.id
        );
    }
}

/// Rescheduling races: 8 threads move 8 appointments into one free slot
/// (one wins, the rest get `slot_unavailable`); 8 threads move one
/// appointment, read at one version, to 8 free slots (one wins, the rest
/// get `version_conflict`); and mixed races. Versions grow by one per
/// successful update, the rows end where the winners put them, and
/// nothing overlaps.
pub fn reschedule_races_have_one_winner<S: Store>(store: &S) {
    const THREADS: usize = 8;
    const ROUNDS: usize = 10;
    const DAY: i64 = 24 * 60;
    let t = tenant("reschedule-races");
    let room = "move-room";
    let now = at(-DAY);
    let name = |i: usize| format!("move-{i}");
    for i in 0..THREADS {
        commit_ok(
            store,
            &t,
            now,
            vec![insert(appt(&name(i), room, (8 + i as i64) * 60, 30), 1)],
        );
    }
    let mut expected_start: Vec<i64> = (0..THREADS).map(|i| (8 + i as i64) * 60).collect();
    let mut updates = vec![0u64; THREADS];
    let barrier = Barrier::new(THREADS);

    // Each thread: which appointment it moves and where.
    let race = |plan: &(dyn Fn(usize) -> (usize, i64) + Sync)| {
        // Nothing before the barrier may panic, or the other threads would
        // wait forever: a failed read is reported after the race.
        on_threads(THREADS, |i| {
            let (which, target) = plan(i);
            let current = store.appointment(&t, &name(which).as_str().into());
            barrier.wait();
            let current =
                current.unwrap_or_else(|e| panic!("read of `{}` before a race: {e}", name(which)));
            let next = moved(&current.appointment, target, 30);
            let r = store.commit(&t, batch(now, vec![update(next, current.version, 1)]));
            (which, target, current.version, r)
        })
    };
    // Targets: contested on day 1, one-appointment rounds from day 3 (80
    // hours), mixed on day 10; all distinct.
    let settle = |results: Vec<(usize, i64, u64, Result<Committed, StorageError>)>,
                  loser_kinds: &[StorageErrorKind],
                  expected_start: &mut Vec<i64>,
                  updates: &mut Vec<u64>| {
        let winners: Vec<_> = results.iter().filter(|r| r.3.is_ok()).collect();
        assert_eq!(winners.len(), 1, "{} winners for one slot", winners.len());
        let (which, target, read_version, ok) = winners[0];
        let c = ok.as_ref().unwrap();
        assert_eq!(c.appointments[0].version, read_version + 1);
        assert_eq!(c.appointments[0].appointment.start, Some(at(*target)));
        expected_start[*which] = *target;
        updates[*which] += 1;
        for (_, _, _, r) in results.iter().filter(|r| r.3.is_err()) {
            let e = r.as_ref().unwrap_err();
            assert!(loser_kinds.contains(&e.kind()), "race loser got {e}");
            check_error(e, e.kind(), "race loser");
        }
    };

    for round in 0..ROUNDS {
        let r = round as i64;
        // Eight appointments, one free slot.
        let contested = DAY + r * 60;
        let results = race(&|i| (i, contested));
        settle(
            results,
            &[StorageErrorKind::SlotTaken],
            &mut expected_start,
            &mut updates,
        );

        // One appointment at one version, eight free slots.
        let results = race(&|i| {
            (
                round % THREADS,
                3 * DAY + (r * THREADS as i64 + i as i64) * 60,
            )
        });
        settle(
            results,
            &[StorageErrorKind::VersionConflict],
            &mut expected_start,
            &mut updates,
        );

        // Both at once: four threads move one appointment, four move their
        // own, all into one free slot.
        let mixed = 10 * DAY + r * 60;
        let results = race(&|i| (if i < 4 { round % 4 } else { i }, mixed));
        settle(
            results,
            &[
                StorageErrorKind::SlotTaken,
                StorageErrorKind::VersionConflict,
            ],
            &mut expected_start,
            &mut updates,
        );
    }

    for i in 0..THREADS {
        let s = get(store, &t, &name(i));
        assert_eq!(s.version, 1 + updates[i], "`{}`: versions skipped", name(i));
        assert_eq!(s.appointment.start, Some(at(expected_start[i])));
    }
    let rows = bookings(
        store,
        &t,
        &[room.into()],
        (secs(-DAY), secs(11 * DAY)),
        now.timestamp(),
        None,
    );
    assert_eq!(rows.len(), THREADS);
    let spans: Vec<(i64, i64)> = rows.iter().map(row_busy).collect();
    assert_eq!(max_depth(&spans), 1, "rescheduling double-booked the room");
}

/// 8 workers claim 200 due events in small batches under one lease at one
/// instant: no event goes to two workers, every event goes to one, and
/// each worker can acknowledge what it claimed.
pub fn outbox_claims_are_exclusive<S: Store>(store: &S) {
    const THREADS: usize = 8;
    const EVENTS: usize = 200;
    let t = tenant("outbox-exclusive");
    let now = at(0);
    let ops = (0..EVENTS)
        .map(|i| event(EventKind::Booked, at(-(i as i64 % 17)), &format!("ev-{i}")))
        .collect();
    commit_ok(store, &t, now, ops);
    let barrier = Barrier::new(THREADS);
    let claimed: Vec<Vec<OutboxEvent>> = on_threads(THREADS, |i| {
        let worker = format!("worker-{i}");
        barrier.wait();
        let mut mine = Vec::new();
        // Bounded, so that a store that never runs dry fails, not hangs.
        for round in 0.. {
            assert!(round <= EVENTS, "claims never run dry under a lease");
            let got = claim(store, &t, &worker, 7, now, 600);
            assert!(got.len() <= 7, "claim returned more than `max`");
            if got.is_empty() {
                break;
            }
            for e in &got {
                assert_eq!(e.attempts, 1, "event {} claimed twice", e.id);
            }
            mine.extend(got);
        }
        for e in &mine {
            store
                .ack_event(&t, e.id, &worker, now)
                .unwrap_or_else(|err| panic!("ack by the lease holder: {err}"));
        }
        mine
    });
    let all: Vec<u64> = claimed.iter().flat_map(|v| ids(v)).collect();
    let distinct: BTreeSet<u64> = all.iter().copied().collect();
    assert_eq!(
        distinct.len(),
        all.len(),
        "an event was leased to two workers"
    );
    assert_eq!(all.len(), EVENTS, "events were lost");
    assert!(claim(store, &t, "late", EVENTS, at(24 * 60), 60).is_empty());
}

// ---------------------------------------------------------------------------
// Batches, holds, statuses
// ---------------------------------------------------------------------------

/// A batch that fails at its last op leaves no trace: no appointment, no
/// event, no waitlist change, no superseded event, no moved row; the ids
/// and slots it touched can be used afterwards.
pub fn batch_is_atomic<S: Store>(store: &S) {
    let t = tenant("batch-atomic");
    let room = "atomic-room";
    let now = at(0);
    let whole_day = (secs(0), secs(24 * 60));
    let rows = |store: &S| -> Vec<AppointmentKey> {
        bookings(store, &t, &[room.into()], whole_day, now.timestamp(), None)
            .iter()
            .map(|r| r.key)
            .collect()
    };
    let blocker = commit_ok(
        store,
        &t,
        now,
        vec![
            insert(appt("blocker", room, 10 * 60, 60), 1),
            event(EventKind::ReminderDue, at(9 * 60), "blocker"),
            Op::AddWaitlist(waitlist_entry("wl-0", "atomic-type", 0)),
        ],
    )
    .appointments[0]
        .clone();

    // Insert, emit, then an insert whose claim fails.
    commit_err(
        store,
        &t,
        now,
        vec![
            insert(appt("early", room, 8 * 60, 30), 1),
            event(EventKind::Booked, now, "early"),
            insert(appt("clash", room, 10 * 60 + 30, 30), 1),
        ],
        StorageErrorKind::SlotTaken,
    );
    assert_missing(store, &t, "early");
    assert_missing(store, &t, "clash");
    assert_eq!(rows(store), vec![blocker.key]);

    // Waitlist changes, a supersede and an insert, then a stale update.
    commit_err(
        store,
        &t,
        now,
        vec![
            Op::AddWaitlist(waitlist_entry("wl-1", "atomic-type", 1)),
            Op::RemoveWaitlist {
                id: "wl-0".to_owned(),
            },
            Op::Supersede {
                appointment: "blocker".into(),
                kinds: vec![EventKind::ReminderDue],
            },
            insert(appt("noon", room, 12 * 60, 30), 1),
            update(moved(&blocker.appointment, 14 * 60, 60), 7, 1),
        ],
        StorageErrorKind::VersionConflict,
    );
    assert_missing(store, &t, "noon");
    let wl = store.waitlist(&t, &"atomic-type".into()).unwrap();
    assert_eq!(wl, vec![waitlist_entry("wl-0", "atomic-type", 0)]);

    // A move that frees a slot, an insert into it, then a duplicate id.
    commit_err(
        store,
        &t,
        now,
        vec![
            update(moved(&blocker.appointment, 13 * 60, 60), 1, 1),
            insert(appt("into-freed", room, 10 * 60, 60), 1),
            insert(appt("blocker", room, 16 * 60, 30), 1),
        ],
        StorageErrorKind::Duplicate,
    );
    assert_missing(store, &t, "into-freed");
    let b = get(store, &t, "blocker");
    assert_eq!(b.version, 1, "a rolled-back update bumped the version");
    assert_eq!(*b, *blocker, "a rolled-back update changed the row");
    assert_eq!(rows(store), vec![blocker.key]);

    // Only the first batch's event exists, the supersede was undone.
    let events = claim(store, &t, "atomic-worker", 100, at(24 * 60), 60);
    assert_eq!(events.len(), 1, "events of failed batches were written");
    assert_eq!(events[0].kind, EventKind::ReminderDue);
    assert_eq!(
        events[0].data.appointment,
        Some("blocker".into()),
        "wrong event survived"
    );

    // Everything the failed batches touched is usable.
    commit_ok(
        store,
        &t,
        now,
        vec![
            insert(appt("early", room, 8 * 60, 30), 1),
            event(EventKind::Booked, now, "early"),
            insert(appt("noon", room, 12 * 60, 30), 1),
            insert(appt("at-13", room, 13 * 60, 60), 1),
        ],
    );
    commit_err(
        store,
        &t,
        now,
        vec![insert(appt("clash", room, 10 * 60 + 30, 30), 1)],
        StorageErrorKind::SlotTaken,
    );
    let later = claim(store, &t, "atomic-worker-2", 100, at(24 * 60), 60);
    assert_eq!(later.len(), 1);
    assert!(later[0].id > events[0].id, "event ids do not grow");
    assert_eq!(rows(store).len(), 4);
}

/// A hold blocks its slot until it lapses: at `now` it is a row and a
/// conflicting insert is refused; from its expiry instant on it is not a
/// row, not a patient booking, and a conflicting insert judged later
/// succeeds. A hold confirmed in time (update without expiry) keeps
/// holding.
pub fn holds_lapse<S: Store>(store: &S) {
    let t = tenant("holds");
    let room = "hold-room";
    let now = 8 * 60;
    let expiry = now + 10;
    let rows_at = |m: i64| -> Vec<AppointmentKey> {
        bookings(
            store,
            &t,
            &[room.into()],
            (secs(0), secs(24 * 60)),
            secs(m),
            None,
        )
        .iter()
        .map(|r| r.key)
        .collect()
    };
    let h = commit_ok(
        store,
        &t,
        at(now),
        vec![hold(
            with_patient(appt("held", room, 9 * 60, 30), "hold-patient"),
            at(expiry),
        )],
    )
    .appointments[0]
        .clone();
    assert_eq!(h.hold_expires_at, Some(at(expiry)));
    assert_eq!(rows_at(now), vec![h.key]);
    assert_eq!(rows_at(expiry - 1), vec![h.key]);
    let patient: PatientId = "hold-patient".into();
    let held_for = |m: i64| {
        store
            .patient_bookings(&t, &patient, secs(0), secs(24 * 60), secs(m))
            .unwrap()
            .len()
    };
    assert_eq!(held_for(now), 1);
    for m in [now, expiry - 1] {
        commit_err(
            store,
            &t,
            at(m),
            vec![insert(appt("over-hold", room, 9 * 60 + 15, 30), 1)],
            StorageErrorKind::SlotTaken,
        );
    }
    assert!(rows_at(expiry).is_empty(), "a hold is a row at its expiry");
    assert!(rows_at(now + 11).is_empty(), "a lapsed hold is a row");
    assert_eq!(held_for(now + 11), 0, "a lapsed hold is a patient booking");
    commit_ok(
        store,
        &t,
        at(now + 11),
        vec![insert(appt("over-hold", room, 9 * 60 + 15, 30), 1)],
    );

    // A hold confirmed before it lapses holds for good.
    let h2 = commit_ok(
        store,
        &t,
        at(now),
        vec![hold(appt("confirmed", room, 11 * 60, 30), at(expiry))],
    )
    .appointments[0]
        .clone();
    let confirmed = commit_ok(
        store,
        &t,
        at(now + 5),
        vec![update(h2.appointment.clone(), h2.version, 1)],
    );
    assert_eq!(confirmed.appointments[0].hold_expires_at, None);
    commit_err(
        store,
        &t,
        at(now + 60),
        vec![insert(appt("over-confirmed", room, 11 * 60, 30), 1)],
        StorageErrorKind::SlotTaken,
    );
}

/// Cancelled and entered-in-error release their time; proposed and
/// waitlist appointments, with or without times, hold nothing; every other
/// status holds its time; re-booking a cancelled appointment is checked.
pub fn statuses_release_time<S: Store>(store: &S) {
    use AppointmentStatus as St;
    let t = tenant("statuses");
    let room = "status-room";
    let now = at(0);
    let day = (secs(0), secs(2 * 24 * 60));
    let keys = || -> BTreeSet<AppointmentKey> {
        bookings(store, &t, &[room.into()], day, now.timestamp(), None)
            .iter()
            .map(|r| r.key)
            .collect()
    };

    let a = commit_ok(
        store,
        &t,
        now,
        vec![insert(appt("first", room, 600, 60), 1)],
    )
    .appointments[0]
        .clone();
    commit_err(
        store,
        &t,
        now,
        vec![insert(appt("second", room, 600, 60), 1)],
        StorageErrorKind::SlotTaken,
    );
    commit_ok(
        store,
        &t,
        now,
        vec![update(
            with_status(a.appointment.clone(), St::Cancelled),
            a.version,
            1,
        )],
    );
    assert!(keys().is_empty(), "a cancelled appointment is a row");
    let b = commit_ok(
        store,
        &t,
        now,
        vec![insert(appt("second", room, 600, 60), 1)],
    )
    .appointments[0]
        .clone();
    commit_ok(
        store,
        &t,
        now,
        vec![update(
            with_status(b.appointment.clone(), St::EnteredInError),
            b.version,
            1,
        )],
    );
    assert!(
        keys().is_empty(),
        "an entered-in-error appointment is a row"
    );
    let c = commit_ok(
        store,
        &t,
        now,
        vec![insert(appt("third", room, 600, 60), 1)],
    )
    .appointments[0]
        .clone();

    // Re-booking the cancelled one into its old, now taken, slot.
    let first = get(store, &t, "first");
    commit_err(
        store,
        &t,
        now,
        vec![update(
            with_status(first.appointment.clone(), St::Booked),
            first.version,
            1,
        )],
        StorageErrorKind::SlotTaken,
    );

    // Appointments that hold nothing, with and without times.
    let mut untimed = appt("proposed-untimed", room, 0, 0);
    untimed.start = None;
    untimed.end = None;
    for (i, (status, timed)) in [
        (St::Proposed, false),
        (St::Waitlist, false),
        (St::Proposed, true),
        (St::Waitlist, true),
    ]
    .into_iter()
    .enumerate()
    {
        let a = if timed {
            appt(&format!("nothing-{i}"), room, 600, 60)
        } else {
            Appointment {
                id: format!("nothing-{i}").as_str().into(),
                ..untimed.clone()
            }
        };
        commit_ok(store, &t, now, vec![insert(with_status(a, status), 1)]);
    }
    assert_eq!(keys(), BTreeSet::from([c.key]), "proposed or waitlist rows");

    // Every other status holds its time.
    for (i, status) in [
        St::Pending,
        St::Booked,
        St::Arrived,
        St::Fulfilled,
        St::Noshow,
        St::CheckedIn,
    ]
    .into_iter()
    .enumerate()
    {
        let start = (12 + i as i64) * 60;
        let held = commit_ok(
            store,
            &t,
            now,
            vec![insert(
                with_status(appt(&format!("holds-{i}"), room, start, 30), status),
                1,
            )],
        );
        assert!(
            keys().contains(&held.appointments[0].key),
            "{status:?} holds no time"
        );
        commit_err(
            store,
            &t,
            now,
            vec![insert(appt(&format!("over-{i}"), room, start + 15, 30), 1)],
            StorageErrorKind::SlotTaken,
        );
    }
}

// ---------------------------------------------------------------------------
// Outbox
// ---------------------------------------------------------------------------

/// Leases: a claim returns only due events, oldest due first, at most
/// `max`, with `attempts` counted; a leased event is not claimable by
/// another worker until its lease lapses, then it is redelivered; only the
/// current holder may acknowledge, before its lease lapses; an
/// acknowledged event is never claimable again.
pub fn outbox_lease_expiry_redelivers<S: Store>(store: &S) {
    let t = tenant("outbox-leases");
    let now = at(0);
    let plus = |s: i64| now + TimeDelta::seconds(s);
    // Written in another order than due order: ids grow in write order.
    let emit = |due: i64, id: &str| {
        commit_ok(
            store,
            &t,
            now,
            vec![event(EventKind::ReminderDue, at(due), id)],
        );
    };
    emit(0, "e3");
    emit(-2, "e1");
    emit(60, "e4");
    emit(-1, "e2");

    let a = claim(store, &t, "worker-a", 2, now, 60);
    let names = |v: &[OutboxEvent]| -> Vec<String> {
        v.iter()
            .map(|e| e.data.appointment.clone().unwrap().0)
            .collect()
    };
    assert_eq!(
        names(&a),
        ["e1", "e2"],
        "not oldest due first, or `max` ignored"
    );
    assert!(a.iter().all(|e| e.attempts == 1));
    assert!(a[0].id < a[1].id, "event ids do not grow in write order");
    assert_eq!(a[0].tenant, t);
    assert_eq!(a[0].kind, EventKind::ReminderDue);
    assert_eq!(a[0].due_at, at(-2));
    let c = claim(store, &t, "worker-c", 10, now, 60);
    assert_eq!(names(&c), ["e3"], "an event due now is deliverable");
    assert!(c[0].id < a[0].id, "event ids do not grow in write order");

    assert!(
        claim(store, &t, "worker-b", 10, plus(30), 60).is_empty(),
        "leased events were claimed by another worker"
    );
    expect_err(
        store.ack_event(&t, c[0].id, "worker-b", plus(30)),
        StorageErrorKind::LeaseLost,
        "ack by a worker without the lease",
    );

    let b = claim(store, &t, "worker-b", 10, plus(61), 60);
    assert_eq!(
        names(&b),
        ["e1", "e2", "e3"],
        "lapsed leases not redelivered"
    );
    assert!(b.iter().all(|e| e.attempts == 2), "attempts not counted");
    expect_err(
        store.ack_event(&t, a[0].id, "worker-a", plus(61)),
        StorageErrorKind::LeaseLost,
        "ack after the lease lapsed",
    );
    expect_err(
        store.ack_event(&t, c[0].id, "worker-c", plus(62)),
        StorageErrorKind::LeaseLost,
        "ack after the lease lapsed",
    );
    for e in &b {
        store
            .ack_event(&t, e.id, "worker-b", plus(62))
            .unwrap_or_else(|err| panic!("ack by the lease holder: {err}"));
    }
    expect_err_of(
        store.ack_event(&t, b[0].id, "worker-b", plus(63)),
        &[StorageErrorKind::NotFound, StorageErrorKind::LeaseLost],
        "second ack",
    );

    assert!(claim(store, &t, "worker-d", 10, at(30), 60).is_empty());
    let d = claim(store, &t, "worker-d", 10, at(120), 60);
    assert_eq!(names(&d), ["e4"]);
    assert_eq!(d[0].attempts, 1);
    // The holder's own lease lapsed, even though nobody took it over.
    let lapsed = at(120) + TimeDelta::seconds(61);
    expect_err(
        store.ack_event(&t, d[0].id, "worker-d", lapsed),
        StorageErrorKind::LeaseLost,
        "ack by the holder after its lease lapsed",
    );
    let d = claim(store, &t, "worker-d", 10, lapsed, 60);
    assert_eq!((names(&d), d[0].attempts), (vec!["e4".to_owned()], 2));
    store.ack_event(&t, d[0].id, "worker-d", lapsed).unwrap();
    assert!(
        claim(store, &t, "worker-e", 100, at(3 * 24 * 60), 60).is_empty(),
        "acknowledged events were claimed"
    );
}

/// `Op::Supersede` drops an appointment's undelivered events of the given
/// kinds, claimed ones included, and nothing else.
pub fn supersede_drops_stale_reminders<S: Store>(store: &S) {
    let t = tenant("supersede");
    let room = "supersede-room";
    let now = at(0);
    let start = 3 * 24 * 60;
    let a = commit_ok(
        store,
        &t,
        now,
        vec![
            insert(appt("moving", room, start, 30), 1),
            event(EventKind::Booked, now, "moving"),
            event(EventKind::ReminderDue, at(1), "moving"),
            event(EventKind::ReminderDue, at(start - 24 * 60), "moving"),
            event(EventKind::ReminderDue, at(start - 120), "moving"),
            insert(appt("staying", room, start + 60, 30), 1),
            event(EventKind::ReminderDue, at(start + 60 - 24 * 60), "staying"),
        ],
    )
    .appointments[0]
        .clone();
    let leased = claim(store, &t, "early-worker", 10, at(1), 600);
    let leased_reminder = leased
        .iter()
        .find(|e| e.kind == EventKind::ReminderDue)
        .expect("the reminder due at minute 1")
        .id;

    let new_start = start + 24 * 60;
    commit_ok(
        store,
        &t,
        at(2),
        vec![
            update(moved(&a.appointment, new_start, 30), a.version, 1),
            Op::Supersede {
                appointment: "moving".into(),
                kinds: vec![EventKind::ReminderDue],
            },
            event(EventKind::Rescheduled, at(2), "moving"),
            event(EventKind::ReminderDue, at(new_start - 120), "moving"),
        ],
    );
    expect_err_of(
        store.ack_event(&t, leased_reminder, "early-worker", at(3)),
        &[StorageErrorKind::NotFound, StorageErrorKind::LeaseLost],
        "ack of a superseded event",
    );

    let all = claim(store, &t, "late-worker", 100, at(10 * 24 * 60), 60);
    // (appointment, kind, due); kinds by name, as they have no order.
    let got: BTreeSet<(String, String, DateTime<Utc>)> = all
        .iter()
        .map(|e| {
            let id = e.data.appointment.clone().unwrap().0;
            (id, format!("{:?}", e.kind), e.due_at)
        })
        .collect();
    let want: BTreeSet<(String, String, DateTime<Utc>)> = [
        ("moving", EventKind::Rescheduled, at(2)),
        ("moving", EventKind::ReminderDue, at(new_start - 120)),
        ("staying", EventKind::ReminderDue, at(start + 60 - 24 * 60)),
    ]
    .into_iter()
    .map(|(a, k, d)| (a.to_owned(), format!("{k:?}"), d))
    .chain(
        // The booked event was claimed early and its lease has lapsed.
        leased
            .iter()
            .filter(|e| e.kind == EventKind::Booked)
            .map(|e| ("moving".to_owned(), format!("{:?}", e.kind), e.due_at)),
    )
    .collect();
    assert_eq!(got, want, "supersede dropped the wrong events");
    assert_eq!(all.len(), want.len());
}

// ---------------------------------------------------------------------------
// Catalog and tenants
// ---------------------------------------------------------------------------

fn sample_clinic() -> Clinic {
    Clinic {
        resources: vec![Resource {
            id: "cat-room".into(),
            name: "Room 1".to_owned(),
            kind: ResourceKind::Room,
            zone: "Europe/Berlin".to_owned(),
            capacity: 2,
            tags: vec!["ecg".to_owned()],
            department: Some("cardiology".to_owned()),
        }],
        working_hours: vec![WorkingHours {
            resource: "cat-room".into(),
            dtstart: NaiveDate::from_ymd_opt(2030, 1, 7)
                .unwrap()
                .and_hms_opt(8, 0, 0)
                .unwrap(),
            end: NaiveTime::from_hms_opt(17, 0, 0).unwrap(),
            rrule: "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR".to_owned(),
            zone: None,
            rdates: Vec::new(),
            exdates: vec![NaiveDate::from_ymd_opt(2030, 1, 9).unwrap()],
            nonexistent: Default::default(),
        }],
        appointment_types: vec![AppointmentType {
            id: "ecg".into(),
            name: "ECG".to_owned(),
            duration_min: 20,
            buffer_before_min: 5,
            buffer_after_min: 10,
            step_min: 15,
            align_offset_min: 0,
            min_notice_min: 60,
            horizon_days: Some(90),
            max_per_day: Some(8),
            max_per_week: None,
            requirements: vec![Requirement {
                count: 1,
                resources: Vec::new(),
                tag: Some("ecg".to_owned()),
            }],
            reminders_min: vec![1440, 120],
        }],
        ..Clinic::default()
    }
}

/// Catalog versions are optimistic (0 for a new tenant, one more per
/// replacement, stale versions refused), a catalog holds no appointments,
/// and tenants see nothing of each other.
pub fn catalog_versions<S: Store>(store: &S) {
    let t = tenant("catalog-a");
    let other = tenant("catalog-b");
    expect_err(
        store.catalog(&t),
        StorageErrorKind::NotFound,
        "catalog of a new tenant",
    );
    assert_eq!(store.catalog_version(&t).unwrap(), 0);
    let clinic = sample_clinic();
    assert_eq!(store.replace_catalog(&t, clinic.clone(), 0).unwrap(), 1);
    let v = store.catalog(&t).unwrap();
    assert_eq!(v.version, 1);
    assert_eq!(*v.catalog, clinic, "the catalog changed in the store");
    assert_eq!(store.catalog_version(&t).unwrap(), 1);

    let mut second = clinic.clone();
    second.resources[0].capacity = 3;
    expect_err(
        store.replace_catalog(&t, second.clone(), 0),
        StorageErrorKind::VersionConflict,
        "catalog replaced at a stale version",
    );
    assert_eq!(*store.catalog(&t).unwrap().catalog, clinic);
    assert_eq!(store.replace_catalog(&t, second.clone(), 1).unwrap(), 2);
    expect_err(
        store.replace_catalog(&t, clinic.clone(), 1),
        StorageErrorKind::VersionConflict,
        "catalog replaced at a stale version",
    );
    let mut with_appointments = second.clone();
    with_appointments.appointments = vec![appt("cat-a", "cat-room", 600, 30)];
    expect_err(
        store.replace_catalog(&t, with_appointments, 2),
        StorageErrorKind::Invalid,
        "catalog with appointments",
    );
    let v = store.catalog(&t).unwrap();
    assert_eq!((v.version, &*v.catalog), (2, &second));

    // Data in tenant a.
    let now = at(0);
    let booked = commit_ok(
        store,
        &t,
        now,
        vec![
            insert(
                with_patient(appt("cat-a", "cat-room", 600, 30), "cat-patient"),
                1,
            ),
            event(EventKind::Booked, now, "cat-a"),
            Op::AddWaitlist(waitlist_entry("cat-wl", "ecg", 0)),
        ],
    )
    .appointments[0]
        .clone();

    // Tenant b sees none of it.
    expect_err(
        store.catalog(&other),
        StorageErrorKind::NotFound,
        "catalog of b",
    );
    assert_eq!(store.catalog_version(&other).unwrap(), 0);
    assert!(bookings(
        store,
        &other,
        &["cat-room".into()],
        (secs(0), secs(24 * 60)),
        now.timestamp(),
        None
    )
    .is_empty());
    expect_err(
        store.appointment(&other, &"cat-a".into()),
        StorageErrorKind::NotFound,
        "appointment of another tenant",
    );
    expect_err(
        store.appointment_by_key(&other, booked.key),
        StorageErrorKind::NotFound,
        "appointment key of another tenant",
    );
    assert!(store
        .patient_bookings(
            &other,
            &"cat-patient".into(),
            secs(0),
            secs(24 * 60),
            now.timestamp()
        )
        .unwrap()
        .is_empty());
    assert!(store.waitlist(&other, &"ecg".into()).unwrap().is_empty());
    assert!(claim(store, &other, "b-worker", 10, now, 60).is_empty());
    assert!(store.idempotent(&other, "anything").unwrap().is_none());

    // Tenant b books the same ids, resources and times on its own.
    assert_eq!(store.replace_catalog(&other, clinic.clone(), 0).unwrap(), 1);
    commit_ok(
        store,
        &other,
        now,
        vec![
            insert(appt("cat-a", "cat-room", 600, 30), 1),
            Op::AddWaitlist(waitlist_entry("cat-wl", "ecg", 0)),
        ],
    );
    assert_eq!(store.catalog_version(&t).unwrap(), 2);
    let a_events = claim(store, &t, "a-worker", 10, now, 60);
    assert_eq!(a_events.len(), 1);
    assert_eq!(a_events[0].tenant, t);
    store
        .ack_event(&t, a_events[0].id, "a-worker", now)
        .unwrap();
    assert_eq!(get(store, &t, "cat-a").key, booked.key);
}

// ---------------------------------------------------------------------------
// Reads
// ---------------------------------------------------------------------------

/// The batched availability read returns rows only for the requested
/// resources, whose busy span (buffers included) overlaps the window
/// (touching does not), appended to `out`, sorted by (position in the
/// query, start), with `resource` the position in the query and
/// `same_type` set for rows of the queried type.
pub fn bookings_read_is_windowed_and_sorted<S: Store>(store: &S) {
    let t = tenant("bookings-read");
    let now = at(0);
    let (ra, rb, rc) = ("read-a", "read-b", "read-c");
    let typed = |a: Appointment, ty: &str| Appointment {
        type_id: Some(ty.into()),
        ..a
    };
    let h = |hh: i64, mm: i64| hh * 60 + mm;
    let mut both = appt("both", ra, h(11, 0), 30);
    both.resources.push(rb.into());
    let stored = commit_ok(
        store,
        &t,
        now,
        vec![
            // Touches the window start through its buffer: out.
            insert_overbooked(
                with_buffers(appt("touch-before", ra, h(9, 0), 45), 0, 15),
                None,
            ),
            // Own time before the window, buffer inside: in.
            insert_overbooked(
                with_buffers(appt("buffer-in", ra, h(9, 0), 40), 0, 30),
                None,
            ),
            // Busy start at the window end: out.
            insert_overbooked(
                with_buffers(appt("touch-after", ra, h(12, 15), 30), 15, 0),
                None,
            ),
            // Own time after the window, buffer inside: in.
            insert_overbooked(
                with_buffers(appt("buffer-late", ra, h(12, 10), 30), 15, 0),
                None,
            ),
            // Start order differs from busy-start order (9:50 and 10:10).
            insert_overbooked(
                typed(
                    with_buffers(appt("late-start", ra, h(10, 20), 30), 30, 0),
                    "t1",
                ),
                None,
            ),
            insert_overbooked(typed(appt("early-start", ra, h(10, 10), 30), "t2"), None),
            insert_overbooked(both, None),
            insert_overbooked(typed(appt("on-c", rc, h(10, 30), 30), "t1"), None),
            insert_overbooked(
                with_status(
                    appt("cancelled", ra, h(10, 30), 30),
                    AppointmentStatus::Cancelled,
                ),
                None,
            ),
        ],
    );
    let key = |id: &str| {
        stored
            .appointments
            .iter()
            .find(|s| s.appointment.id.as_str() == id)
            .unwrap()
            .key
    };
    let window = (secs(h(10, 0)), secs(h(12, 0)));
    let sentinel = BookingRow {
        resource: 99,
        start: 0,
        end: 0,
        buffer_before: 0,
        buffer_after: 0,
        key: AppointmentKey::MAX,
        same_type: false,
    };
    let t1: AppointmentTypeId = "t1".into();
    let mut out = vec![sentinel];
    store
        .bookings(
            &t,
            &BookingsQuery {
                resources: &[rb.into(), ra.into()],
                from: window.0,
                to: window.1,
                now: now.timestamp(),
                type_id: Some(&t1),
            },
            &mut out,
        )
        .unwrap();
    assert_eq!(
        out[0], sentinel,
        "bookings replaced `out` instead of appending"
    );
    let rows = &out[1..];
    let got: Vec<(u32, AppointmentKey)> = rows.iter().map(|r| (r.resource, r.key)).collect();
    let want = vec![
        (0, key("both")),
        (1, key("buffer-in")),
        (1, key("early-start")),
        (1, key("late-start")),
        (1, key("both")),
        (1, key("buffer-late")),
    ];
    assert_eq!(
        got, want,
        "wrong rows or order (positions, then start; buffers count, touching does not)"
    );
    let late = rows.iter().find(|r| r.key == key("late-start")).unwrap();
    assert_eq!(
        (late.start, late.end, late.buffer_before, late.buffer_after),
        (secs(h(10, 20)), secs(h(10, 50)), 30 * 60, 0)
    );
    let buffer_in = rows.iter().find(|r| r.key == key("buffer-in")).unwrap();
    assert_eq!(buffer_in.buffer_after, 30 * 60);
    let flagged: Vec<AppointmentKey> = rows.iter().filter(|r| r.same_type).map(|r| r.key).collect();
    assert_eq!(
        flagged,
        vec![key("late-start")],
        "same_type flags the wrong rows"
    );

    // No type, an unknown type, no resources, an unknown resource.
    let untyped = bookings(store, &t, &[ra.into()], window, now.timestamp(), None);
    assert!(untyped.iter().all(|r| !r.same_type));
    let unknown_type: AppointmentTypeId = "nobody-has-this-type".into();
    let unknown = bookings(
        store,
        &t,
        &[ra.into()],
        window,
        now.timestamp(),
        Some(&unknown_type),
    );
    assert!(unknown.iter().all(|r| !r.same_type));
    assert_eq!(unknown.len(), 5);
    assert!(bookings(store, &t, &[], window, now.timestamp(), None).is_empty());
    assert!(bookings(
        store,
        &t,
        &["read-none".into()],
        window,
        now.timestamp(),
        None
    )
    .is_empty());
    let only_c = bookings(store, &t, &[rc.into()], window, now.timestamp(), Some(&t1));
    assert_eq!(only_c.len(), 1);
    assert_eq!((only_c[0].resource, only_c[0].same_type), (0, true));
}

/// The batched availability read against a brute-force model: 150 random
/// appointments (overbooked, on one or two of 4 resources, every status,
/// some untimed, some holds, three types) and 300 random queries (resource
/// subsets in random order, windows, instants, types).
pub fn bookings_read_matches_model<S: Store>(store: &S) {
    use AppointmentStatus as St;
    let t = tenant("bookings-model");
    let statuses = [
        St::Proposed,
        St::Pending,
        St::Booked,
        St::Arrived,
        St::Fulfilled,
        St::Cancelled,
        St::Noshow,
        St::EnteredInError,
        St::CheckedIn,
        St::Waitlist,
    ];
    let resources: Vec<ResourceId> = (0..4).map(|i| ResourceId(format!("model-{i}"))).collect();
    let types: [Option<AppointmentTypeId>; 3] = [Some("m1".into()), Some("m2".into()), None];
    let mut rng = SplitMix64::new(0xB00C_1265);
    let span = 2 * 24 * 60;
    let mut model: Vec<(AppointmentKey, Appointment, Option<i64>)> = Vec::new();
    for i in 0..150 {
        let first = rng.below(4) as usize;
        let mut a = with_buffers(
            appt(
                &format!("m-{i}"),
                resources[first].as_str(),
                rng.int(0, span),
                rng.int(5, 120),
            ),
            rng.below(31) as u32,
            rng.below(31) as u32,
        );
        if rng.below(4) == 0 {
            let second = (first + 1 + rng.below(3) as usize) % 4;
            a.resources.push(resources[second].clone());
        }
        a.status = statuses[rng.below(10) as usize];
        if rng.below(10) == 0 {
            a.start = None;
            a.end = None;
        }
        a.type_id = types[rng.below(3) as usize].clone();
        let hold = (rng.below(4) == 0).then(|| rng.int(0, span));
        let c = commit_ok(
            store,
            &t,
            at(0),
            vec![insert_overbooked(a.clone(), hold.map(at))],
        );
        model.push((c.appointments[0].key, a, hold.map(secs)));
    }

    let query_types: [Option<AppointmentTypeId>; 4] = [
        Some("m1".into()),
        Some("m2".into()),
        Some("m-unknown".into()),
        None,
    ];
    for q in 0..300 {
        let mut pool: Vec<ResourceId> = resources.clone();
        pool.push("model-empty".into());
        let mut chosen = Vec::new();
        for _ in 0..rng.below(6) {
            let i = rng.below(pool.len() as u64) as usize;
            chosen.push(pool.remove(i));
        }
        let from = secs(rng.int(-120, span + 120));
        let to = from + rng.int(1, 12 * 60) * 60;
        let now = secs(rng.int(-60, span + 60));
        let ty = query_types[rng.below(4) as usize].as_ref();

        let mut want: Vec<BookingRow> = Vec::new();
        for (pos, r) in chosen.iter().enumerate() {
            for (key, a, hold) in &model {
                let active = a.status.holds_time()
                    && a.start.is_some()
                    && hold.is_none_or(|h| h > now)
                    && a.resources.contains(r);
                if !active || !overlaps(busy_span(a), (from, to)) {
                    continue;
                }
                want.push(BookingRow {
                    resource: pos as u32,
                    start: a.start.unwrap().timestamp(),
                    end: a.end.unwrap().timestamp(),
                    buffer_before: i64::from(a.buffer_before_min) * 60,
                    buffer_after: i64::from(a.buffer_after_min) * 60,
                    key: *key,
                    same_type: ty.is_some() && a.type_id.as_ref() == ty,
                });
            }
        }
        let mut got = bookings(store, &t, &chosen, (from, to), now, ty);
        let order = |r: &BookingRow| (r.resource, r.start, r.key);
        got.sort_by_key(order);
        want.sort_by_key(order);
        assert_eq!(got, want, "query {q}: bookings differ from the model");
    }
}

/// Capacity-one claims and bookings reads against a model, on a calendar
/// with long bookings, overbooked rows lying inside them, and holds that
/// lapse as the clock moves on. A store may find conflicts by probing its
/// capacity-one rows as disjoint spans (only the first one ending after a
/// point can contain it), which holds only for them: overbooked rows lie
/// anywhere, and a row ending later may contain a row ending earlier.
pub fn long_rows_checks_and_reads_match_model<S: Store>(store: &S) {
    let t = tenant("long-rows");
    let resources: Vec<ResourceId> = (0..2).map(|i| ResourceId(format!("long-{i}"))).collect();
    let mut rng = SplitMix64::new(0x10A6_5EED);
    let span = 3 * 24 * 60;
    let attempts = 240;
    // (key, appointment, hold expiry in epoch seconds)
    let mut model: Vec<(AppointmentKey, Appointment, Option<i64>)> = Vec::new();
    let live = |hold: &Option<i64>, now: i64| hold.is_none_or(|h| h > now);
    let (mut booked, mut refused) = (0, 0);
    for i in 0..attempts {
        // The clock only moves on: a hold, once lapsed, stays lapsed.
        let now_min = i * span / attempts;
        let now = secs(now_min);
        let r = &resources[rng.below(2) as usize];
        let len = if rng.below(5) == 0 {
            rng.int(4 * 60, 24 * 60)
        } else {
            rng.int(5, 60)
        };
        let a = appt(&format!("long-{i}"), r.as_str(), rng.int(0, span), len);
        let hold_min = (rng.below(3) == 0).then(|| rng.int(now_min + 1, now_min + 12 * 60));
        if rng.below(6) == 0 {
            let c = commit_ok(
                store,
                &t,
                at(now_min),
                vec![insert_overbooked(a.clone(), hold_min.map(at))],
            );
            model.push((c.appointments[0].key, a, hold_min.map(secs)));
            continue;
        }
        let blocked = model.iter().any(|(_, b, h)| {
            b.resources.contains(r) && live(h, now) && overlaps(busy_span(b), busy_span(&a))
        });
        let op = match hold_min {
            Some(h) => hold(a.clone(), at(h)),
            None => insert(a.clone(), 1),
        };
        match store.commit(&t, batch(at(now_min), vec![op])) {
            Ok(c) => {
                assert!(!blocked, "attempt {i}: booked over an active row");
                model.push((c.appointments[0].key, a, hold_min.map(secs)));
                booked += 1;
            }
            Err(e) => {
                assert!(
                    blocked,
                    "attempt {i}: refused a free slot: {} ({e})",
                    e.code()
                );
                check_error(&e, StorageErrorKind::SlotTaken, "a taken slot");
                refused += 1;
            }
        }
    }
    assert!(
        booked > 40 && refused > 40,
        "{booked} booked, {refused} refused"
    );

    for q in 0..200 {
        let chosen: Vec<ResourceId> = match rng.below(3) {
            0 => vec![resources[0].clone()],
            1 => vec![resources[1].clone()],
            _ => resources.clone(),
        };
        let from = secs(rng.int(-120, span + 120));
        let to = from + rng.int(1, 16 * 60) * 60;
        let now = secs(span + rng.int(0, 12 * 60));
        let mut want: Vec<BookingRow> = Vec::new();
        for (pos, r) in chosen.iter().enumerate() {
            for (key, a, hold) in &model {
                if a.resources.contains(r) && live(hold, now) && overlaps(busy_span(a), (from, to))
                {
                    want.push(BookingRow {
                        resource: pos as u32,
                        start: a.start.unwrap().timestamp(),
                        end: a.end.unwrap().timestamp(),
                        buffer_before: 0,
                        buffer_after: 0,
                        key: *key,
                        same_type: false,
                    });
                }
            }
        }
        let mut got = bookings(store, &t, &chosen, (from, to), now, None);
        let order = |r: &BookingRow| (r.resource, r.start, r.key);
        got.sort_by_key(order);
        want.sort_by_key(order);
        assert_eq!(got, want, "query {q}: bookings differ from the model");
    }
}

/// A patient's bookings: active appointments of that patient whose own
/// time (not their buffers) overlaps the window, judged at `now`.
pub fn patient_bookings_filters<S: Store>(store: &S) {
    let t = tenant("patient-bookings");
    let now = at(0);
    let (p, q) = ("patient-p", "patient-q");
    let room = "patient-room";
    let h = |hh: i64, mm: i64| hh * 60 + mm;
    let ops = vec![
        insert_overbooked(with_patient(appt("inside", room, h(10, 30), 30), p), None),
        insert_overbooked(with_patient(appt("covering", room, h(9, 0), 240), p), None),
        insert_overbooked(
            with_patient(appt("ends-at-from", room, h(9, 30), 30), p),
            None,
        ),
        insert_overbooked(
            with_patient(appt("starts-at-to", room, h(12, 0), 30), p),
            None,
        ),
        insert_overbooked(
            with_buffers(
                with_patient(appt("buffer-only", room, h(9, 0), 50), p),
                0,
                20,
            ),
            None,
        ),
        insert_overbooked(
            with_status(
                with_patient(appt("cancelled", room, h(10, 30), 30), p),
                AppointmentStatus::Cancelled,
            ),
            None,
        ),
        insert_overbooked(
            with_status(
                with_patient(appt("proposed", room, h(10, 30), 30), p),
                AppointmentStatus::Proposed,
            ),
            None,
        ),
        insert_overbooked(
            with_patient(appt("held", room, h(11, 0), 30), p),
            Some(at(60)),
        ),
        insert_overbooked(
            with_patient(appt("other-patient", room, h(10, 30), 30), q),
            None,
        ),
        insert_overbooked(appt("no-patient", room, h(10, 30), 30), None),
    ];
    commit_ok(store, &t, now, ops);
    let found = |m: i64| -> BTreeSet<String> {
        store
            .patient_bookings(&t, &p.into(), secs(h(10, 0)), secs(h(12, 0)), secs(m))
            .unwrap()
            .iter()
            .map(|s| s.appointment.id.0.clone())
            .collect()
    };
    let ids = |v: &[&str]| -> BTreeSet<String> { v.iter().map(|s| (*s).to_owned()).collect() };
    assert_eq!(found(0), ids(&["inside", "covering", "held"]));
    assert_eq!(
        found(60),
        ids(&["inside", "covering"]),
        "lapsed hold returned"
    );
    let other = store
        .patient_bookings(
            &t,
            &q.into(),
            secs(h(10, 0)),
            secs(h(12, 0)),
            now.timestamp(),
        )
        .unwrap();
    assert_eq!(other.len(), 1);
    assert_eq!(other[0].appointment.id.as_str(), "other-patient");
    assert!(store
        .patient_bookings(
            &t,
            &"patient-none".into(),
            secs(0),
            secs(24 * 60),
            now.timestamp()
        )
        .unwrap()
        .is_empty());
}

/// The waitlist of a type is its entries oldest first; removal works and
/// is a no-op for a missing entry; entry ids are unique.
pub fn waitlist_order_and_removal<S: Store>(store: &S) {
    let t = tenant("waitlist");
    let now = at(0);
    let (late, early, mid, other) = (
        waitlist_entry("w-late", "wt-1", 30),
        waitlist_entry("w-early", "wt-1", 10),
        waitlist_entry("w-mid", "wt-1", 20),
        waitlist_entry("w-other", "wt-2", 5),
    );
    commit_ok(
        store,
        &t,
        now,
        vec![
            Op::AddWaitlist(late.clone()),
            Op::AddWaitlist(early.clone()),
        ],
    );
    commit_ok(store, &t, now, vec![Op::AddWaitlist(other.clone())]);
    commit_ok(store, &t, now, vec![Op::AddWaitlist(mid.clone())]);
    let list = |ty: &str| store.waitlist(&t, &ty.into()).unwrap();
    assert_eq!(list("wt-1"), vec![early.clone(), mid.clone(), late.clone()]);
    assert_eq!(list("wt-2"), vec![other.clone()]);
    assert!(list("wt-3").is_empty());

    commit_ok(
        store,
        &t,
        now,
        vec![Op::RemoveWaitlist {
            id: "w-mid".to_owned(),
        }],
    );
    assert_eq!(list("wt-1"), vec![early.clone(), late.clone()]);
    commit_ok(
        store,
        &t,
        now,
        vec![Op::RemoveWaitlist {
            id: "w-missing".to_owned(),
        }],
    );
    commit_err(
        store,
        &t,
        now,
        vec![Op::AddWaitlist(waitlist_entry("w-early", "wt-2", 1))],
        StorageErrorKind::Duplicate,
    );
    assert_eq!(list("wt-1"), vec![early.clone(), late.clone()]);
    assert_eq!(list("wt-2"), vec![other]);

    // Offered and removed in one batch.
    commit_ok(
        store,
        &t,
        now,
        vec![
            Op::AddWaitlist(waitlist_entry("w-brief", "wt-1", 0)),
            Op::RemoveWaitlist {
                id: "w-brief".to_owned(),
            },
            Op::RemoveWaitlist {
                id: "w-early".to_owned(),
            },
        ],
    );
    assert_eq!(list("wt-1"), vec![late]);
}

/// An appointment id is unique in a tenant: a second insert, in another
/// batch or the same one, is `duplicate_id`, even after cancellation.
pub fn duplicate_ids_refused<S: Store>(store: &S) {
    let t = tenant("duplicates");
    let now = at(0);
    let room = "dup-room";
    let first = commit_ok(
        store,
        &t,
        now,
        vec![insert(appt("dup-1", room, 600, 30), 1)],
    )
    .appointments[0]
        .clone();
    commit_err(
        store,
        &t,
        now,
        vec![insert(appt("dup-1", room, 900, 30), 1)],
        StorageErrorKind::Duplicate,
    );
    commit_err(
        store,
        &t,
        now,
        vec![
            insert(appt("dup-2", room, 1000, 30), 1),
            insert(appt("dup-2", room, 1100, 30), 1),
        ],
        StorageErrorKind::Duplicate,
    );
    assert_missing(store, &t, "dup-2");
    commit_ok(
        store,
        &t,
        now,
        vec![update(
            with_status(first.appointment.clone(), AppointmentStatus::Cancelled),
            first.version,
            1,
        )],
    );
    commit_err(
        store,
        &t,
        now,
        vec![insert(appt("dup-1", room, 600, 30), 1)],
        StorageErrorKind::Duplicate,
    );
    let rows = bookings(
        store,
        &t,
        &[room.into()],
        (secs(0), secs(24 * 60)),
        now.timestamp(),
        None,
    );
    assert!(rows.is_empty(), "a refused duplicate left a row");
    assert_eq!(get(store, &t, "dup-1").key, first.key);
}

/// Updates are optimistic: version 1 on insert, one more per update, a
/// stale or future expected version is `version_conflict` and changes
/// nothing; a batch returns its rows in op order.
pub fn version_conflict_on_stale_update<S: Store>(store: &S) {
    let t = tenant("versions");
    let now = at(0);
    let room = "version-room";
    let c = commit_ok(
        store,
        &t,
        now,
        vec![
            insert(appt("v-a", room, 600, 30), 1),
            insert(appt("v-b", room, 700, 30), 1),
        ],
    );
    assert_eq!(c.appointments.len(), 2);
    let (a, b) = (c.appointments[0].clone(), c.appointments[1].clone());
    assert_eq!(
        (a.appointment.id.as_str(), b.appointment.id.as_str()),
        ("v-a", "v-b"),
        "rows not in op order"
    );
    assert_eq!((a.version, b.version), (1, 1));
    assert_ne!(a.key, b.key);

    let mut noted = a.appointment.clone();
    noted.notes = Some(Phi(format!("{PHI_SENTINEL} second")));
    let v2 = commit_ok(store, &t, now, vec![update(noted.clone(), 1, 1)]).appointments[0].clone();
    assert_eq!((v2.key, v2.version), (a.key, 2));

    let mut stale = a.appointment.clone();
    stale.notes = Some(Phi(format!("{PHI_SENTINEL} lost")));
    for expected in [1, 3, 0] {
        commit_err(
            store,
            &t,
            now,
            vec![update(stale.clone(), expected, 1)],
            StorageErrorKind::VersionConflict,
        );
    }
    let current = get(store, &t, "v-a");
    assert_eq!((current.version, &current.appointment), (2, &noted));

    let c = commit_ok(
        store,
        &t,
        now,
        vec![
            update(moved(&noted, 800, 30), 2, 1),
            insert(appt("v-c", room, 600, 30), 1),
            update(moved(&b.appointment, 900, 30), 1, 1),
        ],
    );
    let order: Vec<(&str, u64)> = c
        .appointments
        .iter()
        .map(|s| (s.appointment.id.as_str(), s.version))
        .collect();
    assert_eq!(
        order,
        vec![("v-a", 3), ("v-c", 1), ("v-b", 2)],
        "rows not in op order"
    );
    assert_eq!(store.appointment_by_key(&t, a.key).unwrap().version, 3);
}

/// An update's claims do not count the appointment's own old row, but do
/// count every other row.
pub fn update_claims_skip_own_row<S: Store>(store: &S) {
    let t = tenant("update-claims");
    let now = at(0);
    let room = "self-room";
    let a = commit_ok(
        store,
        &t,
        now,
        vec![insert(appt("self-a", room, 600, 60), 1)],
    )
    .appointments[0]
        .clone();
    let a2 = commit_ok(
        store,
        &t,
        now,
        vec![update(moved(&a.appointment, 630, 60), a.version, 1)],
    )
    .appointments[0]
        .clone();
    commit_ok(
        store,
        &t,
        now,
        vec![insert(appt("self-b", room, 720, 60), 1)],
    );
    commit_err(
        store,
        &t,
        now,
        vec![update(moved(&a2.appointment, 690, 60), a2.version, 1)],
        StorageErrorKind::SlotTaken,
    );
    let still = get(store, &t, "self-a");
    assert_eq!((still.version, still.appointment.start), (2, Some(at(630))));

    // Capacity 2: moving one of two overlapping rows over the other fits.
    let group = "self-group";
    let c = commit_ok(
        store,
        &t,
        now,
        vec![
            insert(appt("self-c", group, 600, 60), 2),
            insert(appt("self-d", group, 600, 60), 2),
        ],
    );
    commit_ok(
        store,
        &t,
        now,
        vec![update(moved(&c.appointments[0].appointment, 615, 60), 1, 2)],
    );
    commit_err(
        store,
        &t,
        now,
        vec![insert(appt("self-e", group, 630, 10), 2)],
        StorageErrorKind::SlotTaken,
    );
}

/// Every claim of an op is checked; a refusal names the full resource.
pub fn multi_resource_claims<S: Store>(store: &S) {
    let t = tenant("multi-claims");
    let now = at(0);
    let two = |id: &str, doctor: &str, room: &str| {
        let mut a = appt(id, doctor, 600, 30);
        a.resources.push(room.into());
        Op::Insert {
            claims: vec![
                Claim {
                    resource: doctor.into(),
                    capacity: 1,
                },
                Claim {
                    resource: room.into(),
                    capacity: 2,
                },
            ],
            appointment: a,
            hold_expires_at: None,
            overbook: false,
        }
    };
    commit_ok(store, &t, now, vec![two("mc-1", "doc-1", "shared-room")]);
    commit_ok(store, &t, now, vec![two("mc-2", "doc-2", "shared-room")]);
    let e = commit_err(
        store,
        &t,
        now,
        vec![two("mc-3", "doc-3", "shared-room")],
        StorageErrorKind::SlotTaken,
    );
    assert_eq!(e.resource(), Some(&"shared-room".into()));
    let e = commit_err(
        store,
        &t,
        now,
        vec![two("mc-4", "doc-1", "other-room")],
        StorageErrorKind::SlotTaken,
    );
    assert_eq!(e.resource(), Some(&"doc-1".into()));
    assert_missing(store, &t, "mc-3");
    assert_missing(store, &t, "mc-4");
    // Overbooking skips every claim.
    let mut over = appt("mc-5", "doc-1", 600, 30);
    over.resources.push("shared-room".into());
    commit_ok(store, &t, now, vec![insert_overbooked(over, None)]);
}

/// Missing records are `not_found` and name the record.
pub fn not_found_errors<S: Store>(store: &S) {
    let t = tenant("not-found");
    let now = at(0);
    let e = expect_err(
        store.appointment(&t, &"nf-missing".into()),
        StorageErrorKind::NotFound,
        "missing appointment",
    );
    assert_eq!(e.record().map(|r| r.1), Some("nf-missing"));
    for key in [0, 1, 999_999, AppointmentKey::MAX] {
        expect_err(
            store.appointment_by_key(&t, key),
            StorageErrorKind::NotFound,
            "missing appointment key",
        );
    }
    let e = commit_err(
        store,
        &t,
        now,
        vec![
            insert(appt("nf-a", "nf-room", 600, 30), 1),
            update(appt("nf-missing", "nf-room", 700, 30), 1, 1),
        ],
        StorageErrorKind::NotFound,
    );
    assert_eq!(e.record().map(|r| r.1), Some("nf-missing"));
    assert_missing(store, &t, "nf-a");
    expect_err(
        store.ack_event(&t, 987_654, "nf-worker", now),
        StorageErrorKind::NotFound,
        "ack of a missing event",
    );
    expect_err(
        store.catalog(&t),
        StorageErrorKind::NotFound,
        "missing catalog",
    );
}

/// Appointments come back exactly as written (every field, PHI included),
/// by id and by key, and as the commit returned them.
pub fn appointments_round_trip<S: Store>(store: &S) {
    let t = tenant("round-trip");
    let now = at(0);
    let a = Appointment {
        id: "rt-1".into(),
        type_id: Some("rt-type".into()),
        patient: Some("rt-patient".into()),
        resources: vec!["rt-doctor".into(), "rt-room".into()],
        start: Some(at(600)),
        end: Some(at(645)),
        status: AppointmentStatus::Arrived,
        buffer_before_min: 5,
        buffer_after_min: 10,
        reason: Some(Phi(
            "chest pain \u{e9}\u{1f600} 'quoted' \"double\"".to_owned()
        )),
        notes: Some(Phi("line one\nline two".to_owned())),
    };
    let mut untimed = a.clone();
    untimed.id = "rt-2".into();
    untimed.start = None;
    untimed.end = None;
    untimed.status = AppointmentStatus::Proposed;
    untimed.patient = None;
    untimed.type_id = None;
    untimed.reason = None;
    untimed.notes = None;
    let c = commit_ok(
        store,
        &t,
        now,
        vec![
            Op::Insert {
                claims: claims(&a, 1),
                appointment: a.clone(),
                hold_expires_at: Some(at(60)),
                overbook: false,
            },
            insert(untimed.clone(), 1),
        ],
    );
    for (s, want, hold) in [
        (&c.appointments[0], &a, Some(at(60))),
        (&c.appointments[1], &untimed, None),
    ] {
        assert_eq!(&s.appointment, want, "commit returned another record");
        assert_eq!((s.version, s.hold_expires_at), (1, hold));
        let by_id = get(store, &t, want.id.as_str());
        assert_eq!(*by_id, **s, "read by id differs from the commit's row");
        let by_key = store.appointment_by_key(&t, s.key).unwrap();
        assert_eq!(*by_key, **s, "read by key differs from the commit's row");
    }
}

/// Each error kind an adapter produces carries its stable code, is
/// permanent, and has a one-line lowercase message without PHI.
pub fn error_codes_and_messages<S: Store>(store: &S) {
    let t = tenant("error-codes");
    let now = at(0);
    let room = "code-room";
    let a = commit_ok(
        store,
        &t,
        now,
        vec![
            insert(appt("code-a", room, 600, 30), 1),
            event(EventKind::Booked, now, "code-a"),
        ],
    )
    .appointments[0]
        .clone();
    let e = commit_err(
        store,
        &t,
        now,
        vec![insert(appt("code-b", room, 600, 30), 1)],
        StorageErrorKind::SlotTaken,
    );
    assert_eq!(e.code(), "slot_unavailable");
    let e = commit_err(
        store,
        &t,
        now,
        vec![update(a.appointment.clone(), 5, 1)],
        StorageErrorKind::VersionConflict,
    );
    assert_eq!(e.code(), "version_conflict");
    let e = commit_err(
        store,
        &t,
        now,
        vec![insert(appt("code-a", room, 900, 30), 1)],
        StorageErrorKind::Duplicate,
    );
    assert_eq!(e.code(), "duplicate_id");
    let keyed = |fingerprint: &str| Batch {
        now,
        idempotency: Some(Idempotency {
            key: "code-key".to_owned(),
            fingerprint: fingerprint.to_owned(),
        }),
        ops: vec![insert(appt("code-c", room, 1200, 30), 1)],
    };
    store.commit(&t, keyed("one")).unwrap();
    let e = expect_err(
        store.commit(&t, keyed("two")),
        StorageErrorKind::IdempotencyMismatch,
        "idempotency mismatch",
    );
    assert_eq!(e.code(), "idempotency_mismatch");
    let ev = claim(store, &t, "code-worker", 1, now, 60);
    let e = expect_err(
        store.ack_event(&t, ev[0].id, "code-other", now),
        StorageErrorKind::LeaseLost,
        "lease lost",
    );
    assert_eq!(e.code(), "lease_lost");
    let e = expect_err(
        store.appointment(&t, &"code-missing".into()),
        StorageErrorKind::NotFound,
        "not found",
    );
    assert_eq!(e.code(), "not_found");
    let mut bad = sample_clinic();
    bad.appointments = vec![appt("code-d", room, 600, 30)];
    let e = expect_err(
        store.replace_catalog(&t, bad, 0),
        StorageErrorKind::Invalid,
        "invalid catalog",
    );
    assert_eq!(e.code(), "invalid_input");
}

fn audit_entry(actor: &str, n: i64) -> crate::audit::NewAudit {
    crate::audit::NewAudit {
        at: at(n),
        actor: actor.into(),
        action: "appointment.book".into(),
        record: format!("apt-{n}"),
        decision: "allow".into(),
        reason_code: "receptionist:appointment.book@tenant".into(),
        policy_version: "v1".into(),
        break_glass: n % 7 == 0,
    }
}

/// Audit records get positions 1, 2, ... in order, each linked to the one
/// before; what is read back verifies and equals what was written; tenants
/// have separate chains.
pub fn audit_chain_appends_in_order<S: Store>(store: &S) {
    let t = tenant("audit-order");
    let mut written = Vec::new();
    for n in 0..20 {
        let r = store.append_audit(&t, audit_entry("u1", n)).unwrap();
        assert_eq!(r.seq, n as u64 + 1);
        written.push(r);
    }
    // Mixed with batch audit ops.
    commit_ok(
        store,
        &t,
        at(0),
        vec![
            insert(appt("a1", "r1", 0, 30), 1),
            Op::Audit(audit_entry("u2", 99)),
        ],
    );
    let read = store.audit_records(&t, 1, 1000).unwrap();
    assert_eq!(read.len(), 21);
    assert_eq!(read.get(..20).unwrap(), &written[..]);
    assert_eq!(read[20].entry.actor, "u2");
    assert_eq!(crate::audit::verify_chain(&read), Ok(()));
    assert_eq!(read[0].prev_hash, crate::audit::GENESIS);
    let page = store.audit_records(&t, 5, 3).unwrap();
    assert_eq!(page.iter().map(|r| r.seq).collect::<Vec<_>>(), [5, 6, 7]);
    assert!(store
        .audit_records(&tenant("audit-order-other"), 1, 10)
        .unwrap()
        .is_empty());
}

/// An audit op in a batch that fails leaves no record.
pub fn audit_in_a_failed_batch_is_rolled_back<S: Store>(store: &S) {
    let t = tenant("audit-rollback");
    commit_ok(store, &t, at(0), vec![insert(appt("a1", "r1", 0, 30), 1)]);
    let e = store
        .commit(
            &t,
            batch(
                at(0),
                vec![
                    Op::Audit(audit_entry("u1", 1)),
                    insert(appt("a2", "r1", 10, 30), 1),
                ],
            ),
        )
        .unwrap_err();
    assert_eq!(e.kind(), StorageErrorKind::SlotTaken);
    assert!(store.audit_records(&t, 1, 10).unwrap().is_empty());
    store.append_audit(&t, audit_entry("u1", 2)).unwrap();
    let read = store.audit_records(&t, 1, 10).unwrap();
    assert_eq!(read.len(), 1);
    assert_eq!(crate::audit::verify_chain(&read), Ok(()));
}

/// 8 threads appending at once still give one gapless, verifying chain.
pub fn concurrent_audit_appends_keep_one_chain<S: Store>(store: &S) {
    let t = tenant("audit-concurrent");
    thread::scope(|sc| {
        for w in 0..8 {
            let t = &t;
            sc.spawn(move || {
                for n in 0..50 {
                    store
                        .append_audit(t, audit_entry(&format!("w{w}"), n))
                        .unwrap();
                }
            });
        }
    });
    let read = store.audit_records(&t, 1, 1000).unwrap();
    assert_eq!(read.len(), 400);
    assert_eq!(crate::audit::verify_chain(&read), Ok(()));
}
