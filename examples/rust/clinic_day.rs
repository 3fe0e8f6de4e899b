//! A clinic day on the embedded `MemoryStore`: patients book concurrently
//! from several threads (losers of a race retry the next free slot), some
//! cancel and free slots for the waitlist, and a worker drains the outbox
//! (booking confirmations, reminders, waitlist offers) as the clock moves
//! through the day. Prints what happened.
//!
//! Run: `cargo run -p medsched-examples --bin clinic-day`
#![allow(clippy::print_stdout)] // an example prints
#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, NaiveDate, NaiveTime, Utc};
use medsched_core::policy::{Policy, Principal};
use medsched_core::records::*;
use medsched_core::{BookRequest, CancelReason, Clock, Engine, Error, ManualClock, SlotQuery};

/// Someone at the clinic with one role of the shipped example policy.
fn staff(user: &str, role: &str) -> Principal {
    Principal {
        user: user.into(),
        tenant: "riverside-clinic".into(),
        roles: vec![role.into()],
        departments: vec!["family-medicine".into()],
        ..Principal::default()
    }
}

fn at(s: &str) -> Result<DateTime<Utc>, Error> {
    DateTime::parse_from_rfc3339(s)
        .map(|d| d.with_timezone(&Utc))
        .map_err(|_| Error::InvalidInput {
            field: "instant".into(),
            detail: format!("`{s}` is not RFC 3339"),
        })
}

fn clinic() -> Clinic {
    let first = NaiveDate::from_ymd_opt(2027, 3, 1).unwrap_or_default();
    let nine = NaiveTime::from_hms_opt(9, 0, 0).unwrap_or_default();
    let five = NaiveTime::from_hms_opt(17, 0, 0).unwrap_or_default();
    let providers = ["dr-ames", "dr-baker", "dr-chen"];
    Clinic {
        resources: providers
            .iter()
            .map(|id| Resource {
                id: (*id).into(),
                name: String::new(),
                kind: ResourceKind::Provider,
                zone: "America/New_York".into(),
                capacity: 1,
                tags: vec!["gp".into()],
                department: Some("family-medicine".into()),
            })
            .collect(),
        working_hours: providers
            .iter()
            .map(|id| WorkingHours {
                resource: (*id).into(),
                dtstart: first.and_time(nine),
                end: five,
                rrule: "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR".into(),
                zone: None,
                rdates: vec![],
                exdates: vec![],
                nonexistent: Nonexistent::ShiftForward,
            })
            .collect(),
        appointment_types: vec![AppointmentType {
            id: "visit".into(),
            name: "Visit".into(),
            duration_min: 20,
            buffer_before_min: 0,
            buffer_after_min: 10,
            step_min: 30,
            align_offset_min: 0,
            min_notice_min: 30,
            horizon_days: Some(30),
            max_per_day: None,
            max_per_week: None,
            requirements: vec![Requirement {
                count: 1,
                resources: vec![],
                tag: Some("gp".into()),
            }],
            reminders_min: vec![24 * 60, 60],
        }],
        ..Clinic::default()
    }
}

fn main() -> Result<(), Error> {
    let tenant = TenantId::from("riverside-clinic");
    let clock = Arc::new(ManualClock::new(at("2027-03-15T12:00:00Z")?)); // Monday 08:00 EDT
    let policy = Policy::from_toml(include_str!("../../fixtures/policy-clinic.toml"))?;
    let engine = Engine::new(MemoryStore::new(), clock.clone(), policy);
    let admin = staff("admin-1", "clinic_admin");
    engine.put_catalog(&admin, &clinic())?;
    let day = (at("2027-03-16T00:00:00Z")?, at("2027-03-17T00:00:00Z")?); // Tuesday
    let log = Mutex::new(BTreeMap::<&str, usize>::new());
    let count = |what: &'static str| {
        if let Ok(mut l) = log.lock() {
            *l.entry(what).or_default() += 1;
        }
    };

    // A patient who could not get in waits for a cancellation on Tuesday.
    engine.add_waitlist(
        &staff("desk-0", "receptionist"),
        WaitlistEntry {
            id: "wait-1".into(),
            patient: "pat-waiting".into(),
            type_id: "visit".into(),
            resources: vec![],
            from: day.0,
            to: day.1,
            created_at: clock.now(),
        },
    )?;

    // 4 front-desk threads book 12 patients each, racing for the same slots.
    let booked: Mutex<Vec<(String, u64)>> = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for desk in 0..4 {
            let (engine, booked, count) = (&engine, &booked, &count);
            s.spawn(move || {
                let desk_staff = staff(&format!("desk-{desk}"), "receptionist");
                for n in 0..12 {
                    let patient = format!("pat-{desk}-{n}");
                    let q = SlotQuery {
                        type_id: "visit".into(),
                        from: day.0,
                        to: day.1,
                        now: engine.now(),
                        resources: vec![],
                    };
                    let Ok(slots) = engine.slots(&desk_staff, &q) else {
                        return;
                    };
                    // Everyone wants the earliest slot: take it or the next.
                    for a in slots.assignments() {
                        let req = BookRequest {
                            type_id: "visit".into(),
                            start: medsched_core::slots::slot_time(a.start),
                            patient: Some(patient.clone()),
                            idempotency_key: Some(format!("desk-{desk}-req-{n}")),
                            ..BookRequest::default()
                        };
                        match engine.book(&desk_staff, &req) {
                            Ok(b) => {
                                count("booked");
                                if let Ok(mut v) = booked.lock() {
                                    v.push((
                                        b.appointment.appointment.id.0.clone(),
                                        b.appointment.version,
                                    ));
                                }
                                break;
                            }
                            Err(e) if e.code() == "slot_unavailable" => {
                                count("lost a race, retried")
                            }
                            Err(_) => {
                                count("failed");
                                break;
                            }
                        }
                    }
                }
            });
        }
    });

    // Two patients cancel; the first freed slot goes to the waitlist.
    let cancels: Vec<(String, u64)> = booked
        .lock()
        .map(|v| v.iter().take(2).cloned().collect())
        .unwrap_or_default();
    for (id, version) in cancels {
        engine.cancel(
            &staff("desk-0", "receptionist"),
            &id,
            version,
            CancelReason::PatientRequest,
            None,
        )?;
        count("cancelled");
    }

    // A worker drains the outbox through Monday evening and Tuesday.
    let mut delivered = BTreeMap::<String, usize>::new();
    let mut t = clock.now();
    while t < at("2027-03-16T22:00:00Z")? {
        for ev in engine.claim_events(&admin, "worker-1", 100, 60)? {
            *delivered.entry(format!("{:?}", ev.kind)).or_default() += 1;
            engine.ack_event(&admin, ev.id, "worker-1")?;
        }
        t += Duration::minutes(30);
        clock.set(t);
    }

    println!("clinic day at {tenant}, Tuesday 2027-03-16 (America/New_York):");
    for (what, n) in log.lock().map(|l| l.clone()).unwrap_or_default() {
        println!("  {what:24} {n}");
    }
    println!("outbox events delivered by the worker:");
    for (kind, n) in &delivered {
        println!("  {kind:24} {n}");
    }
    let q = SlotQuery {
        type_id: "visit".into(),
        from: day.0,
        to: day.1,
        now: at("2027-03-15T12:00:00Z")?,
        resources: vec![],
    };
    println!(
        "free starts left on Tuesday: {}",
        engine.slots(&admin, &q)?.len()
    );
    let checked = engine.verify_audit(&staff("auditor-1", "auditor"))?;
    println!("audit trail: {checked} records, hash chain verified");
    Ok(())
}
