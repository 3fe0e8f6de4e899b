//! Slot listing over the generated scenarios, with the clinic already
//! compiled into a `Schedule` (loading is not timed).
//!
//! * `clinic_month/all_slots`: `Schedule::slots`, 50 providers, March 2027;
//! * `large/all_slots_1_thread`: `Schedule::slots`, 1000 providers, 90 days;
//! * `large/all_slots_2_threads`: `Schedule::slots_parallel(q, 2)`, same.
//!
//! Before timing, the slot counts of each scenario are printed once.
#![forbid(unsafe_code)]

use std::hint::black_box;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use criterion::Criterion;
use medsched_benches::{booked_share, Scenario};
use medsched_core::{Error, Schedule, SlotQuery};

struct Loaded {
    schedule: Schedule,
    query: SlotQuery,
}

/// Builds a scenario and prints its size and slot counts.
#[allow(clippy::print_stdout)] // A bench reports on stdout.
fn load(scenario: Scenario) -> Result<Loaded, Error> {
    let t = Instant::now();
    let clinic = scenario.clinic();
    let generated = t.elapsed();
    let t = Instant::now();
    let schedule = Schedule::new(&clinic)?;
    let built = t.elapsed();
    let query = scenario.query();
    let slots = schedule.slots(&query)?;
    println!(
        "scenario {}: {} providers, {} working-hour rules, {} time off, {} appointments, \
         booked share {:.1} %, {} slot entries, {} distinct starts \
         (generated in {:.0?}, Schedule::new in {:.0?})",
        scenario.name(),
        clinic.resources.len(),
        clinic.working_hours.len(),
        clinic.time_off.len(),
        clinic.appointments.len(),
        100.0 * booked_share(&schedule, &clinic, &query)?,
        slots.entries.len(),
        slots.len(),
        generated,
        built,
    );
    Ok(Loaded { schedule, query })
}

fn bench(c: &mut Criterion, month: &Loaded, large: &Loaded) {
    let mut g = c.benchmark_group(Scenario::ClinicMonth.name());
    g.sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    g.bench_function("all_slots", |b| {
        b.iter(|| black_box(month.schedule.slots(black_box(&month.query))))
    });
    g.finish();

    let mut g = c.benchmark_group(Scenario::Large.name());
    g.sample_size(20)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(8));
    g.bench_function("all_slots_1_thread", |b| {
        b.iter(|| black_box(large.schedule.slots(black_box(&large.query))))
    });
    g.bench_function("all_slots_2_threads", |b| {
        b.iter(|| black_box(large.schedule.slots_parallel(black_box(&large.query), 2)))
    });
    g.finish();
}

fn main() -> ExitCode {
    let loaded = load(Scenario::ClinicMonth).and_then(|m| Ok((m, load(Scenario::Large)?)));
    let (month, large) = match loaded {
        Ok(x) => x,
        Err(e) => {
            eprintln!("error: cannot load a scenario: {e} ({})", e.code());
            return ExitCode::FAILURE;
        }
    };
    let mut c = Criterion::default().configure_from_args();
    bench(&mut c, &month, &large);
    c.final_summary();
    ExitCode::SUCCESS
}
