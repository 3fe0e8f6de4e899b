//! Bookings per second through the PostgreSQL adapter against a raw
//! `INSERT` into a table with the same exclusion constraint, in one run
//! (issue 5, point 8). Run by `benches/postgres/run.sh`, which starts a
//! throwaway server; by hand:
//!
//! ```text
//! cargo run --release -p medsched-postgres --example pg_bench -- \
//!     "host=127.0.0.1 port=5432 user=postgres dbname=bench" [seconds per case]
//! ```
//!
//! The connection must be a superuser on an empty database: the program
//! migrates it, creates the runtime role `medsched_bench_app` (the adapter
//! runs as it, under row-level security, as in production) and the raw
//! table `bench.raw_bookings`.
//!
//! Cases, each for 1, 4 and 16 client threads, each timed for the same
//! number of seconds after every thread has warmed its connection:
//! - adapter: `Store::commit` of a booking batch (an `Insert` with one
//!   capacity-one `Claim` plus one `Emit` of the booked event), with a
//!   pool of one connection per thread;
//! - raw: one prepared `INSERT` of (tenant, resource, busy range) per
//!   transaction (autocommit), one connection per thread;
//! - non-conflicting: every thread books its own resource; contended: all
//!   threads try the same slot sequence on 2 resources, so each slot has
//!   one winner and the rest get "slot taken". Slots are taken scattered
//!   over a calendar of 2^22 half hours, as a clinic's calendar fills;
//!   `PG_BENCH_ORDER=sequential` takes them in calendar order instead (each
//!   booking after all others: the best case for every index).
//!
//! Each non-conflicting pair (adapter, then raw) runs three times
//! (`PG_BENCH_ROUNDS`), each round on its own resources; the table shows
//! the medians, the ratio being the median of the rounds' ratios. Every
//! pair starts from empty tables after a checkpoint (`PG_BENCH_KEEP=1`
//! keeps all rows instead, so that later cases run on bigger tables).
//!
//! Prints one line per case and a Markdown table; exits 1 when an adapter
//! run saw an error other than "slot taken" (the raw baseline's errors,
//! such as deadlocks, are reported only).
#![allow(clippy::print_stdout, clippy::print_stderr)]
#![forbid(unsafe_code)]

use std::process::ExitCode;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use medsched_postgres::PgStore;
use medsched_storage::{
    Appointment, AppointmentStatus, Batch, Claim, EventData, EventKind, NewAudit, NewEvent, Op,
    StorageErrorKind, Store, TenantId,
};
use postgres::error::SqlState;
use postgres::{Client, NoTls};

const THREADS: [usize; 3] = [1, 4, 16];
const APP_ROLE: &str = "medsched_bench_app";
const TENANT: &str = "bench";
/// Resources of the contended cases.
const CONTENDED_RESOURCES: u64 = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Path {
    Adapter,
    Raw,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Load {
    Distinct,
    Contended,
}

/// What one thread counted during the timed window.
#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    ok: u64,
    taken: u64,
    other: u64,
}

impl Counts {
    fn add(&mut self, o: Counts) {
        self.ok += o.ok;
        self.taken += o.taken;
        self.other += o.other;
    }
}

#[derive(Debug)]
struct Outcome {
    path: Path,
    load: Load,
    threads: usize,
    round: usize,
    secs: f64,
    counts: Counts,
}

impl Outcome {
    fn booked_per_sec(&self) -> f64 {
        self.counts.ok as f64 / self.secs
    }
    fn attempts_per_sec(&self) -> f64 {
        (self.counts.ok + self.counts.taken + self.counts.other) as f64 / self.secs
    }
}

fn at(min: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2030, 1, 7, 0, 0, 0)
        .single()
        .unwrap_or_default()
        + TimeDelta::minutes(min)
}

/// The slot of attempt `i`: 30 minutes every 30 minutes.
fn slot(i: u64) -> (DateTime<Utc>, DateTime<Utc>) {
    let start = at(i64::try_from(i).unwrap_or(i64::MAX / 60) * 30);
    (start, start + TimeDelta::minutes(30))
}

/// Slots of a calendar: 2^22 half hours, about 240 years.
const CALENDAR_SLOTS: u64 = 1 << 22;

/// Whether attempts take slots in calendar order (PG_BENCH_ORDER=sequential)
/// rather than scattered over the calendar.
fn sequential() -> bool {
    static SEQUENTIAL: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *SEQUENTIAL.get_or_init(|| std::env::var("PG_BENCH_ORDER").is_ok_and(|v| v == "sequential"))
}

/// The `n`th slot taken: by default scattered over the calendar, as a
/// clinic's calendar fills (a bijection of `0..CALENDAR_SLOTS`: consecutive
/// attempts land far apart and no slot is taken twice); in calendar order,
/// each booking lands after all the others, the best case for every index.
fn nth_slot(n: u64) -> u64 {
    if sequential() {
        n
    } else {
        n.wrapping_mul(0x9E37_79B1) % CALENDAR_SLOTS
    }
}

/// The resource and slot of a thread's attempt `i` in case `case`.
fn target(case: &str, load: Load, thread: usize, i: u64) -> (String, u64) {
    match load {
        Load::Distinct => (format!("{case}-t{thread}"), nth_slot(i)),
        Load::Contended => (
            format!("{case}-c{}", i % CONTENDED_RESOURCES),
            nth_slot(i / CONTENDED_RESOURCES),
        ),
    }
}

/// With PG_BENCH_AUDIT=1 each booking also appends its audit record, as
/// the engine's bookings do (one hash chain per tenant, so a tenant's
/// bookings take turns on its chain).
fn audited() -> bool {
    static AUDIT: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *AUDIT.get_or_init(|| std::env::var_os("PG_BENCH_AUDIT").is_some())
}

fn booking(resource: &str, id: &str, i: u64) -> Batch {
    let (start, end) = slot(i);
    let a = Appointment {
        id: id.into(),
        type_id: None,
        patient: None,
        resources: vec![resource.into()],
        start: Some(start),
        end: Some(end),
        status: AppointmentStatus::Booked,
        buffer_before_min: 0,
        buffer_after_min: 0,
        reason: None,
        notes: None,
    };
    Batch {
        now: at(-60),
        idempotency: None,
        ops: vec![
            Op::Insert {
                claims: vec![Claim {
                    resource: resource.into(),
                    capacity: 1,
                }],
                appointment: a,
                hold_expires_at: None,
                overbook: false,
            },
            Op::Emit(NewEvent {
                kind: EventKind::Booked,
                due_at: at(-60),
                data: EventData {
                    appointment: Some(id.into()),
                    start: Some(start),
                    ..EventData::default()
                },
            }),
        ]
        .into_iter()
        .chain(audited().then(|| {
            Op::Audit(NewAudit {
                at: at(-60),
                actor: "bench-desk".to_owned(),
                action: "appointment.book".to_owned(),
                record: id.to_owned(),
                decision: "allow".to_owned(),
                reason_code: "receptionist".to_owned(),
                policy_version: "bench".to_owned(),
                break_glass: false,
            })
        }))
        .collect(),
    }
}

type Error = Box<dyn std::error::Error + Send + Sync>;

/// One thread's booking attempt `i`.
type Step<'a> = Box<dyn FnMut(u64) -> Counts + Send + 'a>;

/// Runs `threads` threads of `step` (called with the thread and the attempt
/// number) for `window`, after one untimed warm-up step each.
fn timed<'a, S>(threads: usize, window: Duration, setup: S) -> Result<(f64, Counts), Error>
where
    S: Fn(usize) -> Result<Step<'a>, Error> + Sync,
{
    let barrier = Barrier::new(threads + 1);
    let (setup, barrier) = (&setup, &barrier);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|th| {
                s.spawn(move || -> Result<Counts, Error> {
                    let prepared = setup(th);
                    barrier.wait();
                    let mut step = prepared?;
                    // Warm-up (connection, plans), outside the window.
                    step(0);
                    barrier.wait();
                    let start = Instant::now();
                    let mut total = Counts::default();
                    let mut i = 1;
                    while start.elapsed() < window {
                        total.add(step(i));
                        i += 1;
                    }
                    Ok(total)
                })
            })
            .collect();
        barrier.wait();
        barrier.wait();
        let start = Instant::now();
        let mut total = Counts::default();
        let mut first_err = None;
        for h in handles {
            match h.join() {
                Ok(Ok(c)) => total.add(c),
                Ok(Err(e)) => first_err = Some(e),
                Err(_) => first_err = Some("a bench thread panicked".into()),
            }
        }
        let secs = start.elapsed().as_secs_f64();
        match first_err {
            Some(e) => Err(e),
            None => Ok((secs, total)),
        }
    })
}

fn adapter_case(
    app_url: &str,
    case: &str,
    load: Load,
    threads: usize,
    window: Duration,
) -> Result<(f64, Counts), Error> {
    let store = PgStore::connect(app_url, threads)?;
    let store = &store;
    let tenant = TenantId(TENANT.to_owned());
    let tenant = &tenant;
    timed(threads, window, |th| {
        Ok(Box::new(move |i| {
            let (resource, s) = target(case, load, th, i);
            let id = format!("{case}-{th}-{i}");
            let mut c = Counts::default();
            match store.commit(tenant, booking(&resource, &id, s)) {
                Ok(_) => c.ok = 1,
                Err(e) if e.kind() == StorageErrorKind::SlotTaken => c.taken = 1,
                Err(e) => {
                    eprintln!("adapter error: {} ({e})", e.code());
                    c.other = 1;
                }
            }
            c
        }) as Step<'_>)
    })
}

fn raw_case(
    owner_url: &str,
    case: &str,
    load: Load,
    threads: usize,
    window: Duration,
) -> Result<(f64, Counts), Error> {
    timed(threads, window, |th| {
        let mut client = Client::connect(owner_url, NoTls)?;
        let insert = client.prepare(
            "INSERT INTO bench.raw_bookings (tenant_id, resource_id, busy)
             VALUES ($1, $2, tstzrange($3, $4, '[)'))",
        )?;
        Ok(Box::new(move |i| {
            let (resource, s) = target(case, load, th, i);
            let (start, end) = slot(s);
            let mut c = Counts::default();
            match client.execute(&insert, &[&TENANT, &resource, &start, &end]) {
                Ok(_) => c.ok = 1,
                Err(e) if e.code() == Some(&SqlState::EXCLUSION_VIOLATION) => c.taken = 1,
                Err(e) => {
                    let code = e.code().map_or("none", SqlState::code);
                    eprintln!("raw error: sqlstate {code}");
                    c.other = 1;
                }
            }
            c
        }) as Step<'_>)
    })
}

fn prepare(owner_url: &str) -> Result<String, Error> {
    let owner = PgStore::connect(owner_url, 1)?;
    owner.migrate()?;
    let mut admin = Client::connect(owner_url, NoTls)?;
    admin.batch_execute(&format!(
        "CREATE ROLE {APP_ROLE} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
         CREATE SCHEMA bench;
         CREATE TABLE bench.raw_bookings (
             tenant_id   text NOT NULL,
             resource_id text NOT NULL,
             busy        tstzrange NOT NULL,
             CONSTRAINT raw_no_overlap EXCLUDE USING gist (
                 tenant_id WITH =, resource_id WITH =, busy WITH &&
             )
         );"
    ))?;
    owner.grant_runtime_role(APP_ROLE)?;
    let config: postgres::Config = owner_url.parse()?;
    let user = config.get_user().unwrap_or("postgres");
    Ok(owner_url.replace(&format!("user={user}"), &format!("user={APP_ROLE}")))
}

fn main() -> ExitCode {
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("pg_bench: {e}");
            ExitCode::from(2)
        }
    }
}

fn run() -> Result<bool, Error> {
    let mut args = std::env::args().skip(1);
    let owner_url = args
        .next()
        .ok_or("usage: pg_bench <connection string> [seconds]")?;
    let secs: f64 = args.next().map_or(Ok(4.0), |s| s.parse())?;
    let window = Duration::from_secs_f64(secs);
    let app_url = prepare(&owner_url)?;
    // For profiling: PG_BENCH_STATEMENTS=1 prints where the server spent its
    // time, statements inside functions included (the server must load
    // pg_stat_statements: MEDSCHED_BENCH_PG_OPTS="-c
    // shared_preload_libraries=pg_stat_statements -c pg_stat_statements.track=all").
    let statements = std::env::var_os("PG_BENCH_STATEMENTS").is_some();
    if statements {
        Client::connect(&owner_url, NoTls)?.batch_execute(
            "CREATE EXTENSION IF NOT EXISTS pg_stat_statements; SELECT pg_stat_statements_reset();",
        )?;
    }

    let mut outcomes = Vec::new();
    // For profiling: PG_BENCH_ONLY=adapter-distinct-16,raw-distinct-* (path,
    // load, threads; `*` ends a prefix) runs only the cases named.
    let only = std::env::var("PG_BENCH_ONLY").ok();
    // Non-conflicting pairs run ROUNDS times (PG_BENCH_ROUNDS, default 3)
    // and the table shows medians: the machine is shared and one pair can
    // land on a busy moment.
    let keep = std::env::var_os("PG_BENCH_KEEP").is_some();
    let rounds: usize = std::env::var("PG_BENCH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .filter(|r| *r > 0)
        .unwrap_or(3);
    for threads in THREADS {
        for (load, round) in (1..=rounds)
            .map(|r| (Load::Distinct, r))
            .chain([(Load::Contended, 1)])
        {
            // Each pair starts from empty tables and a checkpoint, so that a
            // case's figure does not depend on the cases before it
            // (PG_BENCH_KEEP=1 keeps every case's rows instead).
            if !keep {
                Client::connect(&owner_url, NoTls)?.batch_execute(
                    "TRUNCATE medsched.appointments, medsched.active_bookings, medsched.outbox,
                              medsched.audit, bench.raw_bookings;
                     CHECKPOINT;",
                )?;
            }
            // Adapter and raw back to back, so both see the same machine state.
            for path in [Path::Adapter, Path::Raw] {
                let name = format!("{path:?}-{load:?}-{threads}").to_lowercase();
                let named = |o: &str| {
                    o.split(',').any(|p| match p.strip_suffix('*') {
                        Some(prefix) => name.starts_with(prefix),
                        None => name == p,
                    })
                };
                if only.as_deref().is_some_and(|o| !named(o)) {
                    continue;
                }
                // Each round books its own resources and ids.
                let case = format!(
                    "{}{}{threads}{}",
                    if path == Path::Adapter { "a" } else { "r" },
                    if load == Load::Distinct { "d" } else { "c" },
                    if round > 1 {
                        format!("-{round}")
                    } else {
                        String::new()
                    },
                );
                let (secs, counts) = match path {
                    Path::Adapter => adapter_case(&app_url, &case, load, threads, window)?,
                    Path::Raw => raw_case(&owner_url, &case, load, threads, window)?,
                };
                let o = Outcome {
                    path,
                    load,
                    threads,
                    round,
                    secs,
                    counts,
                };
                println!(
                    "case={case} path={path:?} load={load:?} threads={threads} secs={secs:.2} \
                     booked={} slot_taken={} other_errors={} booked_per_s={:.0} attempts_per_s={:.0}",
                    counts.ok,
                    counts.taken,
                    counts.other,
                    o.booked_per_sec(),
                    o.attempts_per_sec()
                );
                outcomes.push(o);
            }
        }
    }

    if statements {
        let mut admin = Client::connect(&owner_url, NoTls)?;
        println!("server time by statement (pg_stat_statements, all cases above):");
        for row in admin.query(
            "SELECT calls, total_exec_time, mean_exec_time * 1000,
                    regexp_replace(left(query, 100), '\\s+', ' ', 'g')
             FROM pg_stat_statements ORDER BY total_exec_time DESC LIMIT 20",
            &[],
        )? {
            let (calls, total, mean, query): (i64, f64, f64, String) =
                (row.get(0), row.get(1), row.get(2), row.get(3));
            println!("  calls={calls} total_ms={total:.0} mean_us={mean:.1} {query}");
        }
    }
    let find = |path, load, threads| {
        outcomes
            .iter()
            .find(|o| o.path == path && o.load == load && o.threads == threads)
    };
    // The median of the non-conflicting rounds: the adapter's and the raw
    // rate, and the ratio of each round's back-to-back pair.
    let medians = |threads: usize| -> Option<(f64, f64, f64)> {
        let rate = |path| -> Vec<f64> {
            let mut v: Vec<f64> = outcomes
                .iter()
                .filter(|o| o.path == path && o.load == Load::Distinct && o.threads == threads)
                .map(Outcome::booked_per_sec)
                .collect();
            v.sort_by(f64::total_cmp);
            v
        };
        let mut ratios: Vec<f64> = outcomes
            .iter()
            .filter(|o| o.path == Path::Adapter && o.load == Load::Distinct && o.threads == threads)
            .filter_map(|a| {
                outcomes
                    .iter()
                    .find(|r| {
                        r.path == Path::Raw
                            && r.load == Load::Distinct
                            && r.threads == threads
                            && r.round == a.round
                    })
                    .map(|r| a.booked_per_sec() / r.booked_per_sec().max(f64::MIN_POSITIVE))
            })
            .collect();
        ratios.sort_by(f64::total_cmp);
        let median = |v: &[f64]| v.get(v.len() / 2).copied();
        Some((
            median(&rate(Path::Adapter))?,
            median(&rate(Path::Raw))?,
            median(&ratios)?,
        ))
    };
    println!();
    println!("| threads | adapter non-conflicting (bookings/s, median) | raw INSERT non-conflicting (rows/s, median) | adapter / raw (median of the rounds' ratios) | adapter contended: booked/s, attempts/s | raw contended: inserted/s, attempts/s | contended errors other than slot taken (adapter / raw) |");
    println!("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    let mut ratios = Vec::new();
    for threads in THREADS {
        let (Some((ad, rd, ratio)), Some(ac), Some(rc)) = (
            medians(threads),
            find(Path::Adapter, Load::Contended, threads),
            find(Path::Raw, Load::Contended, threads),
        ) else {
            continue;
        };
        ratios.push(ratio);
        println!(
            "| {threads} | {ad:.0} | {rd:.0} | {:.0}% | {:.0}, {:.0} | {:.0}, {:.0} | {} / {} |",
            ratio * 100.0,
            ac.booked_per_sec(),
            ac.attempts_per_sec(),
            rc.booked_per_sec(),
            rc.attempts_per_sec(),
            ac.counts.other,
            rc.counts.other
        );
    }
    println!();
    // The raw baseline has no retry: its deadlocks are reported, not failed.
    let raw_other: u64 = outcomes
        .iter()
        .filter(|o| o.path == Path::Raw)
        .map(|o| o.counts.other)
        .sum();
    let other: u64 = outcomes
        .iter()
        .filter(|o| o.path == Path::Adapter)
        .map(|o| o.counts.other)
        .sum();
    let contended_taken = outcomes
        .iter()
        .filter(|o| o.load == Load::Contended && o.threads > 1)
        .all(|o| o.counts.taken > 0);
    println!();
    if ratios.len() == THREADS.len() {
        let min_ratio = ratios.iter().copied().fold(f64::INFINITY, f64::min);
        println!(
            "target adapter/raw >= 70% non-conflicting: {} (lowest {:.0}%)",
            if min_ratio >= 0.7 { "met" } else { "NOT met" },
            min_ratio * 100.0
        );
    } else {
        println!(
            "target adapter/raw >= 70% non-conflicting: not judged (PG_BENCH_ONLY left cases out)"
        );
    }
    println!(
        "adapter errors other than slot taken: {other}; raw INSERT errors other than an \
         exclusion violation: {raw_other}; contended runs contended: {}",
        if contended_taken { "yes" } else { "NO" }
    );
    Ok(other == 0 && contended_taken)
}
