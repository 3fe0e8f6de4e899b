//! Bookings of concurrent callers share calls of the booking function
//! (`medsched.commit_inserts`), and each caller still gets the outcome it
//! would have had alone: one winner per slot, duplicate ids refused,
//! idempotency keys replayed, audit chains intact, across tenants.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Barrier;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use medsched_postgres::PgStore;
use medsched_storage::{
    verify_chain, Appointment, AppointmentStatus, Batch, Claim, Committed, EventData, EventKind,
    Idempotency, NewAudit, NewEvent, Op, StorageError, Store, TenantId,
};

use crate::pg::{app_store, own_app_store};

const THREADS: usize = 16;

pub(crate) fn at(slot: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2031, 3, 3, 8, 0, 0).unwrap() + TimeDelta::minutes(30 * slot)
}

/// A booking of `id` on `resource` in slot `slot`: the appointment, its
/// booked event and its audit record, as the engine commits it.
pub(crate) fn booking(id: &str, resource: &str, slot: i64, key: Option<&str>) -> Batch {
    let appointment = Appointment {
        id: id.into(),
        type_id: None,
        patient: Some("patient-1".into()),
        resources: vec![resource.into()],
        start: Some(at(slot)),
        end: Some(at(slot + 1)),
        status: AppointmentStatus::Booked,
        buffer_before_min: 0,
        buffer_after_min: 0,
        reason: None,
        notes: None,
    };
    Batch {
        now: at(-100),
        idempotency: key.map(|k| Idempotency {
            key: k.to_owned(),
            fingerprint: format!("fp-{k}"),
        }),
        ops: vec![
            Op::Insert {
                claims: vec![Claim {
                    resource: resource.into(),
                    capacity: 1,
                }],
                appointment,
                hold_expires_at: None,
                overbook: false,
            },
            Op::Emit(NewEvent {
                kind: EventKind::Booked,
                due_at: at(-100),
                data: EventData {
                    appointment: Some(id.into()),
                    start: Some(at(slot)),
                    ..EventData::default()
                },
            }),
            Op::Audit(NewAudit {
                at: at(-100),
                actor: "desk".to_owned(),
                action: "appointment.book".to_owned(),
                record: id.to_owned(),
                decision: "allow".to_owned(),
                reason_code: "receptionist".to_owned(),
                policy_version: "v1".to_owned(),
                break_glass: false,
            }),
        ],
    }
}

/// Runs `batch(thread)` on `THREADS` threads released together.
fn race(
    store: &PgStore,
    batch: impl Fn(usize) -> (TenantId, Batch) + Sync,
) -> Vec<Result<Committed, StorageError>> {
    let barrier = Barrier::new(THREADS);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|i| {
                let (barrier, batch) = (&barrier, &batch);
                s.spawn(move || {
                    let (tenant, b) = batch(i);
                    barrier.wait();
                    store.commit(&tenant, b)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

/// Runs `batch(thread)` on `THREADS` threads released together while a
/// transaction on `gate` (the owner's connection) holds the appointments
/// table: the calls the store makes wait in the database, and the callers
/// that come while they wait queue for a shared call. Once every thread
/// is in and every call made so far waits (`watch` looks) or has answered
/// (a refusal found by probing writes nothing, so the gate does not stop
/// it), the gate opens: the queued bookings then share calls, whatever
/// the scheduler did.
fn race_gated(
    store: &PgStore,
    gate: &mut postgres::Client,
    watch: &mut postgres::Client,
    batch: impl Fn(usize) -> (TenantId, Batch) + Sync,
) -> Vec<Result<Committed, StorageError>> {
    let barrier = Barrier::new(THREADS);
    let entered = AtomicUsize::new(0);
    let finished = AtomicUsize::new(0);
    let calls_before = store.booking_calls().calls;
    let mut tx = gate.transaction().unwrap();
    tx.batch_execute("LOCK TABLE medsched.appointments IN EXCLUSIVE MODE")
        .unwrap();
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|i| {
                let (barrier, batch) = (&barrier, &batch);
                let (entered, finished) = (&entered, &finished);
                s.spawn(move || {
                    let (tenant, b) = batch(i);
                    barrier.wait();
                    entered.fetch_add(1, Ordering::SeqCst);
                    let r = store.commit(&tenant, b);
                    finished.fetch_add(1, Ordering::SeqCst);
                    r
                })
            })
            .collect();
        // A panic here ends the transaction (the gate opens), so the
        // threads end and the scope re-raises it.
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let calls = store.booking_calls().calls - calls_before;
            let waiting: i64 = watch
                .query_one(
                    "SELECT count(*) FROM pg_stat_activity
                     WHERE datname = current_database() AND backend_type = 'client backend'
                       AND wait_event_type = 'Lock'",
                    &[],
                )
                .unwrap()
                .get(0);
            // Each call answered under the gate answered at least one
            // thread.
            let done = finished.load(Ordering::SeqCst) as u64;
            if entered.load(Ordering::SeqCst) == THREADS
                && calls > 0
                && u64::try_from(waiting).unwrap() + done >= calls
            {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the racers did not line up: {calls} calls, {waiting} waiting, {done} answered"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        tx.commit().unwrap();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

fn audited(store: &PgStore, tenant: &TenantId) -> usize {
    let records = store.audit_records(tenant, 1, 10_000).unwrap();
    verify_chain(&records).unwrap_or_else(|b| panic!("chain of {tenant} breaks: {b:?}"));
    records.len()
}

/// Two tenants, 16 threads per round; threads 2k and 2k+1 of a tenant race
/// for the same slot of the same room, released behind a gate so that
/// bookings share calls (see [`race_gated`]). Rounds repeat until some
/// call carried several bookings (so that combining was exercised) and 4
/// rounds ran; 30 rounds without a shared call fail.
#[test]
fn racing_pairs_get_one_winner_each_across_shared_calls() {
    let (store, owner_url) = own_app_store("combine_pairs");
    let mut gate = postgres::Client::connect(&owner_url, postgres::NoTls).unwrap();
    let mut watch = postgres::Client::connect(&owner_url, postgres::NoTls).unwrap();
    let tenants = [TenantId::from("combine-a"), TenantId::from("combine-b")];
    let before = store.booking_calls();
    let mut rounds = 0i64;
    let (mut won, mut taken) = (0usize, 0usize);
    loop {
        let r = rounds;
        let results = race_gated(&store, &mut gate, &mut watch, |i| {
            let tenant = tenants[i / 8].clone();
            let pair = (i % 8) / 2;
            let b = booking(
                &format!("r{r}-t{i}"),
                &format!("room-{pair}"),
                r * 10 + i64::try_from(pair).unwrap(),
                None,
            );
            (tenant, b)
        });
        for pair in results.chunks(2) {
            let ok = pair.iter().filter(|r| r.is_ok()).count();
            assert_eq!(ok, 1, "one winner per slot: {pair:?}");
            for r in pair {
                match r {
                    Ok(c) => {
                        assert_eq!(c.appointments.len(), 1);
                        assert!(!c.replayed);
                        won += 1;
                    }
                    Err(e) => {
                        assert_eq!(e.code(), "slot_unavailable", "{e}");
                        taken += 1;
                    }
                }
            }
        }
        rounds += 1;
        let now = store.booking_calls();
        let shared = now.shared > before.shared;
        if (shared && rounds >= 4) || rounds >= 30 {
            assert!(shared, "no call carried two bookings in {rounds} rounds");
            break;
        }
    }
    let per_tenant = usize::try_from(rounds).unwrap() * 4;
    assert_eq!((won, taken), (2 * per_tenant, 2 * per_tenant));
    for t in &tenants {
        // Every winner's record is there, once, with its audit record.
        assert_eq!(audited(&store, t), per_tenant, "audit records of {t}");
        let mut found = 0;
        for r in 0..rounds {
            for i in 0..THREADS {
                if let Ok(s) = store.appointment(t, &format!("r{r}-t{i}").as_str().into()) {
                    assert_eq!(s.version, 1);
                    found += 1;
                }
            }
        }
        assert_eq!(found, per_tenant, "appointments of {t}");
    }
    let after = store.booking_calls();
    println!(
        "combine: {rounds} rounds, {} bookings in {} calls",
        after.items - before.items,
        after.calls - before.calls
    );
}

/// One idempotency key on 16 threads: one appointment, the same key for
/// all, 15 replays. One appointment id on 16 threads (different rooms, no
/// key): one booking, 15 `duplicate_id`.
#[test]
fn shared_keys_and_ids_resolve_as_if_one_after_the_other() {
    let store = app_store();
    let t = TenantId::from("combine-keys");
    let results = race(&store, |_| {
        (
            t.clone(),
            booking("same-key", "room-k", 1, Some("key-shared")),
        )
    });
    let keys: Vec<u64> = results
        .iter()
        .map(|r| r.as_ref().unwrap().appointments[0].key)
        .collect();
    assert!(keys.iter().all(|k| *k == keys[0]), "{keys:?}");
    let replayed = results
        .iter()
        .filter(|r| r.as_ref().unwrap().replayed)
        .count();
    assert_eq!(replayed, THREADS - 1);

    let results = race(&store, |i| {
        (t.clone(), booking("same-id", &format!("room-{i}"), 2, None))
    });
    let ok = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(ok, 1);
    for r in results.iter().filter_map(|r| r.as_ref().err()) {
        assert_eq!(r.code(), "duplicate_id", "{r}");
    }
    // Two bookings, two audit records: refused items wrote nothing.
    assert_eq!(audited(&store, &t), 2);
}

/// Holds that have lapsed never block, also when the bookings that meet
/// them share a call (such an item is committed alone, after removing the
/// lapsed hold); a live hold does block. The bookings race behind a gate
/// (see [`race_gated`]); rounds repeat until one round's bookings shared a
/// call, at most 30.
#[test]
fn lapsed_holds_give_way_in_shared_calls_and_live_ones_do_not() {
    let (store, owner_url) = own_app_store("combine_holds");
    let mut gate = postgres::Client::connect(&owner_url, postgres::NoTls).unwrap();
    let mut watch = postgres::Client::connect(&owner_url, postgres::NoTls).unwrap();
    let t = TenantId::from("combine-holds");
    for round in 0..30 {
        let slot = 5 + 10 * round;
        for i in 0..THREADS {
            let mut b = booking(
                &format!("hold{round}-{i}"),
                &format!("room-{i}"),
                slot,
                None,
            );
            b.now = at(-300);
            if let Op::Insert {
                hold_expires_at, ..
            } = &mut b.ops[0]
            {
                // Room 0's hold is still live when the bookings come; the
                // others lapsed before.
                *hold_expires_at = Some(if i == 0 { at(-50) } else { at(-200) });
            }
            store.commit(&t, b).unwrap();
        }
        let before = store.booking_calls();
        let results = race_gated(&store, &mut gate, &mut watch, |i| {
            (
                t.clone(),
                booking(&format!("hb{round}-{i}"), &format!("room-{i}"), slot, None),
            )
        });
        let after = store.booking_calls();
        assert_eq!(
            results[0].as_ref().unwrap_err().code(),
            "slot_unavailable",
            "the live hold blocks"
        );
        for (i, r) in results.iter().enumerate().skip(1) {
            assert!(r.is_ok(), "room-{i}: a lapsed hold blocked: {r:?}");
        }
        if after.shared > before.shared {
            return;
        }
    }
    panic!("no call carried two bookings in 30 rounds");
}

/// A booking does not probe for rows in the way before writing: the
/// exclusion constraint refuses it, and a second call says what is in the
/// way. While bookings keep meeting conflicts (a popular slot, racing
/// clients) they probe first instead, one call each; once conflicts are
/// rare again they go back to one statement less.
#[test]
fn bookings_probe_first_only_while_conflicts_are_frequent() {
    let store = app_store();
    let t = TenantId("probe-adapt".into());
    let calls = |f: &mut dyn FnMut()| {
        let before = store.booking_calls().calls;
        f();
        store.booking_calls().calls - before
    };
    let taken = |r: Result<Committed, StorageError>| {
        assert_eq!(r.unwrap_err().code(), "slot_unavailable");
    };
    store
        .commit(&t, booking("held", "popular", 0, None))
        .unwrap();

    // The first losers cost two calls each, then one.
    let used = calls(&mut || {
        for i in 0..30 {
            taken(store.commit(&t, booking(&format!("lose-{i}"), "popular", 0, None)));
        }
    });
    assert!(used < 40, "30 refused bookings took {used} calls");

    // Free slots book in one call either way; after enough of them the
    // next loser costs two calls again.
    let used = calls(&mut || {
        for i in 0..80 {
            store
                .commit(&t, booking(&format!("free-{i}"), "quiet", i, None))
                .unwrap();
        }
    });
    assert_eq!(used, 80);
    let used = calls(&mut || taken(store.commit(&t, booking("late", "popular", 0, None))));
    assert_eq!(
        used, 2,
        "a rare conflict: refused by the constraint, then probed"
    );
}

/// Without the probe, a row outside the exclusion constraint (an
/// overbooked one) in a booking's way is still found: the call is refused
/// like one the constraint refuses, and the probing call names the claim.
#[test]
fn an_overbooked_row_refuses_a_booking_that_does_not_probe() {
    let store = app_store();
    let t = TenantId("probe-overbooked".into());
    let mut over = booking("over", "ward", 0, None);
    if let Op::Insert { overbook, .. } = &mut over.ops[0] {
        *overbook = true;
    }
    store.commit(&t, over).unwrap();
    let before = store.booking_calls().calls;
    let e = store
        .commit(&t, booking("after", "ward", 0, None))
        .unwrap_err();
    assert_eq!(e.code(), "slot_unavailable");
    assert_eq!(
        store.booking_calls().calls - before,
        2,
        "refused without the probe, then probed"
    );
    // Next to it the slot is free.
    store
        .commit(&t, booking("beside", "ward", 1, None))
        .unwrap();
}
