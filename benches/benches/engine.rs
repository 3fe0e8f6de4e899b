//! The engine over `MemoryStore`:
//!
//! * `engine_slots/core` and `engine_slots/engine`: the clinic-month slot
//!   query on a loaded `Schedule`, and the same query through
//!   `Engine::slots` (catalog cache check, one batched store read, busy
//!   data built per query), in one run so their ratio is meaningful;
//! * `booking/memory_1_thread` and `booking/memory_2_threads`: time per
//!   booking (`Engine::book`: engine check, atomic store commit with
//!   events), non-conflicting, on the large scenario's catalog.
#![forbid(unsafe_code)]

use std::hint::black_box;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use criterion::{Criterion, Throughput};
use medsched_benches::Scenario;
use medsched_core::policy::{Action, Policy, Principal, Target};
use medsched_core::records::{Clinic, MemoryStore};
use medsched_core::{BookRequest, Engine, Error, FnClock, Schedule};

fn fixed_now(q_now: DateTime<Utc>) -> Arc<FnClock<impl Fn() -> DateTime<Utc> + Send + Sync>> {
    Arc::new(FnClock(move || q_now))
}

struct Slot {
    resource: String,
    start: DateTime<Utc>,
}

/// Non-overlapping free slots of an empty catalog: every third 15-minute
/// start per resource (45 minutes apart, more than 30 + 5).
fn free_slots(catalog: &Clinic, q: &medsched_core::SlotQuery) -> Result<Vec<Slot>, Error> {
    let schedule = Schedule::new(catalog)?;
    let slots = schedule.slots(q)?;
    let mut out = Vec::new();
    let mut last: Option<(u32, i64)> = None;
    for e in &slots.entries {
        if let Some((r, s)) = last {
            if r == e.resource && e.start - s < 45 * 60 {
                continue;
            }
        }
        last = Some((e.resource, e.start));
        out.push(Slot {
            resource: schedule
                .resource_id(e.resource)
                .unwrap_or_default()
                .to_owned(),
            start: medsched_core::slots::slot_time(e.start),
        });
    }
    Ok(out)
}

/// The shipped clinic policy; the bench acts as a clinic admin (slots,
/// booking) of tenant `bench`.
fn policy() -> Result<Policy, Error> {
    Policy::from_toml(include_str!("../../fixtures/policy-clinic.toml"))
}

fn admin() -> Principal {
    Principal {
        user: "bench-admin".into(),
        tenant: "bench".into(),
        roles: vec!["clinic_admin".into()],
        ..Principal::default()
    }
}

#[allow(clippy::print_stdout)] // A bench reports on stdout.
fn run() -> Result<(), Error> {
    let who = admin();
    // Slot query through the engine against the core on the same data.
    let month = Scenario::ClinicMonth.clinic();
    let q = Scenario::ClinicMonth.query();
    let schedule = Schedule::new(&month)?;
    let engine = Engine::new(MemoryStore::new(), fixed_now(q.now), policy()?);
    engine.put_catalog(&who, &month)?;
    let a = schedule.slots(&q)?;
    let b = engine.slots(&who, &q)?;
    println!(
        "engine_slots: core {} entries, engine {} entries (must be equal: {})",
        a.entries.len(),
        b.entries.len(),
        a.entries == b.entries
    );

    // Booking throughput on the large scenario's catalog, no appointments.
    let mut catalog = Scenario::Large.clinic();
    catalog.appointments.clear();
    let lq = Scenario::Large.query();
    let slots = Arc::new(free_slots(&catalog, &lq)?);
    println!(
        "booking: {} distinct non-overlapping free slots available",
        slots.len()
    );

    let mut c = Criterion::default().configure_from_args();
    let mut g = c.benchmark_group("engine_slots");
    g.sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    g.bench_function("core", |bch| {
        bch.iter(|| black_box(schedule.slots(black_box(&q))))
    });
    g.bench_function("engine", |bch| {
        bch.iter(|| black_box(engine.slots(&who, black_box(&q))))
    });
    // What authorisation adds to `Engine::slots`: the decision on the same
    // principal and target (slot lists carry no PHI, so nothing is redacted).
    let target = Target {
        tenant: "bench".into(),
        ..Target::default()
    };
    let current = engine.policy();
    g.bench_function("authorisation", |bch| {
        bch.iter(|| {
            black_box(current.decide(
                black_box(&who),
                Action::SlotsRead,
                black_box(&target),
                q.now,
            ))
        })
    });
    g.finish();

    let mut g = c.benchmark_group("booking");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .throughput(Throughput::Elements(1));
    for threads in [1usize, 2] {
        // A fresh engine per benchmark, slots consumed in order.
        let engine = Engine::new(MemoryStore::new(), fixed_now(lq.now), policy()?);
        engine.put_catalog(&who, &catalog)?;
        let next = std::sync::atomic::AtomicUsize::new(0);
        let name = format!(
            "memory_{threads}_thread{}",
            if threads == 1 { "" } else { "s" }
        );
        g.bench_function(name, |bch| {
            bch.iter_custom(|iters| {
                let start = Instant::now();
                std::thread::scope(|s| {
                    for _ in 0..threads {
                        s.spawn(|| {
                            for _ in 0..iters.div_ceil(threads as u64) {
                                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                                let Some(slot) = slots.get(i % slots.len()) else {
                                    return;
                                };
                                let r = engine.book(
                                    &who,
                                    &BookRequest {
                                        type_id: "consult".into(),
                                        start: slot.start,
                                        resources: vec![slot.resource.clone()],
                                        patient: Some(format!("bench-{i}")),
                                        ..BookRequest::default()
                                    },
                                );
                                // After the first pass over the slots, bookings
                                // fail as taken; that is still a full check.
                                let _ = black_box(r);
                            }
                        });
                    }
                });
                start.elapsed()
            })
        });
    }
    g.finish();
    c.final_summary();
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error[{}]: {e}", e.code());
            ExitCode::FAILURE
        }
    }
}
