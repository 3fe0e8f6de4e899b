//! `medsched-pg-load DSN WORKER ATTEMPTS`: a load generator for the
//! PostgreSQL adapter. It makes ATTEMPTS random capacity-one bookings (with
//! their outbox event, like the engine's) on three providers with
//! overlapping ranges in tenant `multiprocess`, seeded by WORKER, and prints
//! one line `medsched-pg-load pid=.. ok=.. taken=.. other=.. codes=..`.
//! Several of these processes against one database show that the database,
//! not the process, prevents double booking (the multi-process test runs
//! four).
#![allow(clippy::print_stdout)] // a command-line tool prints its result
#![forbid(unsafe_code)]

use std::process::ExitCode;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use medsched_postgres::PgStore;
use medsched_storage::{
    Appointment, AppointmentStatus, Batch, Claim, EventData, EventKind, NewEvent, Op,
    StorageErrorKind, Store, TenantId,
};

/// The tenant every worker books in.
const TENANT: &str = "multiprocess";

fn at(min: i64) -> DateTime<Utc> {
    let base = Utc
        .with_ymd_and_hms(2030, 1, 7, 8, 0, 0)
        .single()
        .unwrap_or(DateTime::<Utc>::MIN_UTC);
    base + TimeDelta::minutes(min)
}

/// A tiny deterministic RNG (splitmix64).
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_4762_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)) % n.max(1)
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(url), Some(worker), Some(attempts)) = (args.first(), args.get(1), args.get(2)) else {
        eprintln!("usage: medsched-pg-load DSN WORKER ATTEMPTS");
        return ExitCode::from(2);
    };
    let (Ok(n), Ok(attempts)) = (worker.parse::<u64>(), attempts.parse::<usize>()) else {
        eprintln!("error[invalid_input]: WORKER and ATTEMPTS must be numbers");
        return ExitCode::from(2);
    };
    let store = match PgStore::connect(url, 2) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error[{}]: {e}", e.code());
            return ExitCode::from(1);
        }
    };
    let t = TenantId(TENANT.to_owned());
    let mut rng = Rng(0x5EED_0000 + n);
    let (mut ok, mut taken, mut other) = (0, 0, 0);
    let mut codes: Vec<&'static str> = Vec::new();
    for i in 0..attempts {
        let id = format!("p{n}-{i}");
        let resource = format!("provider-{}", rng.below(3));
        // A 5-minute grid over a week: most attempts collide.
        let start = rng.below(7 * 24 * 12) as i64 * 5;
        let len = 15 + rng.below(4) as i64 * 15;
        let a = Appointment {
            id: id.as_str().into(),
            type_id: None,
            patient: None,
            resources: vec![resource.as_str().into()],
            start: Some(at(start)),
            end: Some(at(start + len)),
            status: AppointmentStatus::Booked,
            buffer_before_min: 0,
            buffer_after_min: 5,
            reason: None,
            notes: None,
        };
        let booked = NewEvent {
            kind: EventKind::Booked,
            due_at: at(-60),
            data: EventData {
                appointment: Some(id.as_str().into()),
                start: a.start,
                ..EventData::default()
            },
        };
        let batch = Batch {
            now: at(-60),
            idempotency: None,
            ops: vec![
                Op::Insert {
                    claims: vec![Claim {
                        resource: resource.as_str().into(),
                        capacity: 1,
                    }],
                    appointment: a,
                    hold_expires_at: None,
                    overbook: false,
                },
                Op::Emit(booked),
            ],
        };
        match store.commit(&t, batch) {
            Ok(_) => ok += 1,
            Err(e) if e.kind() == StorageErrorKind::SlotTaken => taken += 1,
            Err(e) => {
                other += 1;
                codes.push(e.code());
            }
        }
    }
    codes.dedup();
    let codes = if codes.is_empty() {
        "-".to_owned()
    } else {
        codes.join(",")
    };
    println!(
        "medsched-pg-load pid={} ok={ok} taken={taken} other={other} codes={codes}",
        std::process::id()
    );
    ExitCode::SUCCESS
}
