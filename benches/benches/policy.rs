//! Access-policy decisions on a large generated policy:
//!
//! * `policy/decide_1000_roles`: one `Policy::decide` per iteration, cycling
//!   through a fixed array of (principal, action, target) cases drawn so the
//!   branch mix is realistic (cross-tenant, explicit deny, grant by each
//!   scope, no grant, break-glass).
//!
//! The policy (all from one splitmix64 seed):
//!
//! * 100 base roles `b000`..`b099`, each with 5–15 grants over random
//!   action × scope (scopes weighted towards `assigned`, `department` and
//!   `tenant`, as real roles are);
//! * 900 roles `r0100`..`r0999`, each inheriting 1–3 earlier roles (mostly
//!   base roles, sometimes an earlier derived one, so chains form), with
//!   0–3 grants of their own; one in five also has a deny;
//! * break-glass for 10 of the base roles, at most 240 minutes.
//!
//! Principals: 2,000 over 10 tenants, 1–3 roles each, with a patient id,
//! 0–2 resources, 0–2 departments, one in ten a guardianship, one in
//! twenty an elevation (and then a break-glass role too). Targets mostly
//! share the principal's tenant and often its resources, departments or
//! patient.
//!
//! `PolicyDoc` is not exported by the core, so the generated document is
//! written as TOML and parsed by `Policy::from_toml`; the compile time
//! printed is `Policy::compile` alone, on a clone of the parsed document.
#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::hint::black_box;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use criterion::Criterion;
use medsched_benches::{SplitMix64, SEED};
use medsched_core::policy::{Action, Elevation, Guardianship, Policy, Principal, Scope, Target};
use medsched_core::Error;

const BASE_ROLES: usize = 100;
const ROLES: usize = 1000;
const TENANTS: usize = 10;
const PRINCIPALS: usize = 2000;
const CASES: usize = 4096;
/// Base roles `b000`, `b010`, … `b090` may use break-glass.
const BREAK_GLASS_EVERY: usize = 10;
/// Per tenant: patients, provider resources, departments.
const PATIENTS: u64 = 500;
const RESOURCES: u64 = 60;
const DEPARTMENTS: u64 = 8;

fn role_name(i: usize) -> String {
    if i < BASE_ROLES {
        format!("b{i:03}")
    } else {
        format!("r{i:04}")
    }
}

fn pick<T: Copy>(rng: &mut SplitMix64, items: &[T]) -> Option<T> {
    items.get(rng.below(items.len() as u64) as usize).copied()
}

/// A scope, weighted: own 10 %, guardian 5 %, assigned 30 %, department
/// 30 %, tenant 25 %.
fn scope(rng: &mut SplitMix64) -> Scope {
    match rng.below(20) {
        0 | 1 => Scope::Own,
        2 => Scope::Guardian,
        3..=8 => Scope::Assigned,
        9..=14 => Scope::Department,
        _ => Scope::Tenant,
    }
}

fn rule(rng: &mut SplitMix64) -> String {
    let action = pick(rng, &Action::ALL).unwrap_or(Action::SlotsRead);
    format!(
        "{{ action = \"{}\", scope = \"{}\" }}",
        action.name(),
        scope(rng).name()
    )
}

fn rules(rng: &mut SplitMix64, n: i64) -> String {
    let all: Vec<String> = (0..n).map(|_| rule(rng)).collect();
    format!("[{}]", all.join(", "))
}

/// The generated policy document, as TOML.
fn policy_toml(rng: &mut SplitMix64) -> String {
    let mut t = String::from("version = \"bench-1000\"\n");
    for i in 0..ROLES {
        let _ = writeln!(t, "\n[roles.{}]", role_name(i));
        if i < BASE_ROLES {
            let n = rng.between(5, 15);
            let _ = writeln!(t, "grants = {}", rules(rng, n));
            continue;
        }
        let parents: Vec<String> = (0..rng.between(1, 3))
            .map(|_| {
                // Mostly a base role; one in four an earlier derived role.
                let p = if rng.below(4) == 0 {
                    BASE_ROLES + rng.below((i - BASE_ROLES).max(1) as u64) as usize
                } else {
                    rng.below(BASE_ROLES as u64) as usize
                };
                format!("\"{}\"", role_name(p.min(i - 1)))
            })
            .collect();
        let _ = writeln!(t, "inherits = [{}]", parents.join(", "));
        let n = rng.between(0, 3);
        if n > 0 {
            let _ = writeln!(t, "grants = {}", rules(rng, n));
        }
        if rng.below(5) == 0 {
            let _ = writeln!(t, "denies = {}", rules(rng, 1));
        }
    }
    let bg: Vec<String> = (0..10)
        .map(|k| format!("\"{}\"", role_name(k * BREAK_GLASS_EVERY)))
        .collect();
    let _ = writeln!(
        t,
        "\n[break_glass]\nroles = [{}]\nmax_minutes = 240",
        bg.join(", ")
    );
    t
}

/// 0–2 ids from a tenant's pool.
fn ids(rng: &mut SplitMix64, prefix: &str, tenant: usize, pool: u64) -> Vec<String> {
    (0..rng.between(0, 2))
        .map(|_| format!("t{tenant}-{prefix}{}", rng.below(pool)))
        .collect()
}

fn principals(rng: &mut SplitMix64, now: DateTime<Utc>) -> Vec<Principal> {
    (0..PRINCIPALS)
        .map(|u| {
            let tenant = u % TENANTS;
            let mut roles: Vec<String> = (0..rng.between(1, 3))
                .map(|_| role_name(rng.below(ROLES as u64) as usize))
                .collect();
            let guardianships = if rng.below(10) == 0 {
                let from = now - chrono::Duration::days(rng.between(-30, 365));
                vec![Guardianship {
                    patient: format!("t{tenant}-p{}", rng.below(PATIENTS)),
                    from: Some(from),
                    until: None,
                }]
            } else {
                vec![]
            };
            let elevations = if rng.below(20) == 0 {
                let granted_at = now - chrono::Duration::minutes(rng.between(0, 480));
                // Only a break-glass role is ever elevated.
                roles.push(role_name(BREAK_GLASS_EVERY * rng.below(10) as usize));
                vec![Elevation {
                    patient: format!("t{tenant}-p{}", rng.below(PATIENTS)),
                    reason: "er".into(),
                    granted_at,
                    expires_at: granted_at + chrono::Duration::minutes(240),
                }]
            } else {
                vec![]
            };
            Principal {
                user: format!("u{u}"),
                tenant: format!("t{tenant}"),
                roles,
                patient: Some(format!("t{tenant}-p{}", rng.below(PATIENTS))),
                resources: ids(rng, "dr", tenant, RESOURCES),
                departments: ids(rng, "dep", tenant, DEPARTMENTS),
                guardianships,
                elevations,
            }
        })
        .collect()
}

/// A target for `p`: another tenant 5 % of the time; a patient that is the
/// principal's own or its ward one time in ten each, its elevation's two in
/// ten (when it has one), else anyone; resources and departments that
/// overlap the principal's about half the time.
fn target_for(rng: &mut SplitMix64, p: &Principal, index: usize) -> Target {
    let own_tenant = index % TENANTS;
    let tenant = if rng.below(20) == 0 {
        (own_tenant + 1 + rng.below(TENANTS as u64 - 1) as usize) % TENANTS
    } else {
        own_tenant
    };
    let linked = |rng: &mut SplitMix64, mine: &[String], prefix: &str, pool: u64| match mine
        .get(rng.below(mine.len().max(1) as u64 * 2) as usize)
    {
        Some(x) if tenant == own_tenant => x.clone(),
        _ => format!("t{tenant}-{prefix}{}", rng.below(pool)),
    };
    let patient = match rng.below(10) {
        0 => p.patient.clone(),
        1 => p.guardianships.first().map(|g| g.patient.clone()),
        2 | 3 => p.elevations.first().map(|e| e.patient.clone()),
        _ => None,
    }
    .unwrap_or_else(|| format!("t{tenant}-p{}", rng.below(PATIENTS)));
    Target {
        tenant: format!("t{tenant}"),
        patient: Some(patient),
        resources: vec![linked(rng, &p.resources, "dr", RESOURCES)],
        departments: vec![linked(rng, &p.departments, "dep", DEPARTMENTS)],
    }
}

/// PHI, appointment and slot reads one time in eight each; otherwise any
/// action.
fn action(rng: &mut SplitMix64) -> Action {
    match rng.below(8) {
        0 => Action::PhiRead,
        1 => Action::AppointmentRead,
        2 => Action::SlotsRead,
        _ => pick(rng, &Action::ALL).unwrap_or(Action::AppointmentBook),
    }
}

#[derive(Debug)]
struct Case {
    principal: usize,
    action: Action,
    target: Target,
}

#[allow(clippy::print_stdout)] // A bench reports on stdout.
fn run() -> Result<(), Error> {
    let mut rng = SplitMix64::new(SEED ^ 0x706f_6c69_6379); // "policy"
    let text = policy_toml(&mut rng);
    let t = Instant::now();
    let parsed = Policy::from_toml(&text)?;
    let loaded = t.elapsed();
    let doc = parsed.doc().clone();
    let t = Instant::now();
    let policy = Policy::compile(doc)?;
    let compiled = t.elapsed();

    let now = Utc
        .with_ymd_and_hms(2027, 3, 1, 12, 0, 0)
        .single()
        .unwrap_or_default();
    let people = principals(&mut rng, now);
    let cases: Vec<Case> = (0..CASES)
        .filter_map(|_| {
            let i = rng.below(PRINCIPALS as u64) as usize;
            let p = people.get(i)?;
            Some(Case {
                principal: i,
                action: action(&mut rng),
                target: target_for(&mut rng, p, i),
            })
        })
        .collect();
    let decide = |c: &Case| {
        people
            .get(c.principal)
            .map(|p| policy.decide(p, c.action, &c.target, now))
    };

    // The branch mix, outside timing.
    let mut mix: BTreeMap<&str, usize> = BTreeMap::new();
    for d in cases.iter().filter_map(decide) {
        let key = match (d.allowed, d.break_glass) {
            (true, true) => "allowed (break-glass)",
            _ => d.code(),
        };
        *mix.entry(key).or_default() += 1;
    }
    let allowed: usize = mix
        .iter()
        .filter(|(k, _)| k.starts_with("allowed"))
        .map(|(_, n)| n)
        .sum();
    println!(
        "policy: {} roles, {} bytes of TOML; Policy::from_toml {:.2?}, Policy::compile {:.2?}",
        policy.doc().roles.len(),
        text.len(),
        loaded,
        compiled
    );
    let shares: Vec<String> = mix.iter().map(|(k, n)| format!("{k} {n}")).collect();
    println!(
        "decide: {} cases over {} principals in {} tenants; allowed {:.1} % (cases: {})",
        cases.len(),
        people.len(),
        TENANTS,
        100.0 * allowed as f64 / cases.len() as f64,
        shares.join(", ")
    );

    let mut c = Criterion::default().configure_from_args();
    let mut g = c.benchmark_group("policy");
    g.sample_size(50)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    g.bench_function("decide_1000_roles", |b| {
        let mut next = cases.iter().cycle();
        b.iter(|| next.next().and_then(|c| black_box(decide(black_box(c)))))
    });
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
