//! A loop over one scenario's slot query, for profilers (perf, callgrind):
//!
//! ```text
//! cargo build --release -p medsched-benches --example profile_slots
//! perf record -g target/release/examples/profile_slots large 1 50
//! ```
//!
//! Arguments: scenario (`clinic_month` or `large`), threads (1 uses
//! `Schedule::slots`, more `Schedule::slots_parallel`), iterations.

use std::hint::black_box;
use std::process::ExitCode;
use std::time::Instant;

use medsched_benches::Scenario;
use medsched_core::Schedule;

#[allow(clippy::print_stdout)] // A profiling tool reports on stdout.
fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let name = args.first().map_or("large", String::as_str);
    let threads: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(1);
    let iterations: u32 = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(20);
    let Some(scenario) = Scenario::ALL.into_iter().find(|s| s.name() == name) else {
        eprintln!("error: unknown scenario `{name}`");
        return ExitCode::FAILURE;
    };
    let schedule = match Schedule::new(&scenario.clinic()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let q = scenario.query();
    let mut times = Vec::with_capacity(iterations as usize);
    let mut entries = 0;
    for _ in 0..iterations {
        let t = Instant::now();
        let r = if threads <= 1 {
            schedule.slots(black_box(&q))
        } else {
            schedule.slots_parallel(black_box(&q), threads)
        };
        times.push(t.elapsed());
        entries = r.map_or(0, |s| black_box(s).entries.len());
    }
    times.sort_unstable();
    let median = times.get(times.len() / 2).copied().unwrap_or_default();
    println!(
        "{name}, {threads} thread(s), {iterations} iterations: median {median:.3?}, \
         min {:.3?}, {entries} slot entries",
        times.first().copied().unwrap_or_default()
    );
    ExitCode::SUCCESS
}
