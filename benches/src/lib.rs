//! Deterministic clinic scenarios for the medsched benchmarks.
//!
//! Every scenario is built from a fixed seed by a small splitmix64 generator,
//! so two calls give equal clinics and numbers from different runs compare.
//! The recipe (see `docs/benchmarks.md`):
//!
//! * providers `p000`, `p001`, … tagged `provider`, capacity 1; the first
//!   80 % in `America/New_York`, the rest in `Europe/Berlin`;
//! * weekly RRULE working hours: 70 % Mon–Fri 08:00–12:00 and 13:00–17:00,
//!   15 % Mon/Wed/Fri 08:00–12:00 and 13:00–17:00 plus Tue/Thu 12:00–20:00,
//!   15 % Mon–Fri 08:00–12:00 and 13:00–17:00 on alternate weeks
//!   (`INTERVAL=2`, half of them starting a week later);
//! * every tenth provider has a one-week vacation (Monday to Monday, local
//!   midnight) inside March 2027;
//! * about 40 % of each working block (outside vacations) booked with
//!   15–60-minute `consult` appointments on a 5-minute grid, at least the
//!   5-minute recorded buffer apart;
//! * one appointment type `consult`: 30 minutes, 5 minutes buffer after,
//!   15-minute step, one group of one resource tagged `provider`.
//!
//! The generator builds the working blocks itself from the recipe (local
//! wall times converted with chrono-tz); the tests check them against the
//! core's own reading of the RRULEs.
#![forbid(unsafe_code)]

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use medsched_core::records::{
    Appointment, AppointmentStatus, AppointmentType, Clinic, Nonexistent, PatientId, Requirement,
    Resource, ResourceKind, TimeOff, TimeOffKind, WorkingHours,
};
use medsched_core::{Error, Schedule, SlotQuery};

/// The one appointment type of every scenario.
pub const TYPE_ID: &str = "consult";

/// Seed of every scenario ("medsched" in ASCII).
pub const SEED: u64 = 0x6d65_6473_6368_6564;

/// Share of each working block that is booked.
const BOOKED_SHARE: f64 = 0.40;

/// Appointment lengths and gaps are counted in units of five minutes.
const UNIT: i64 = 300;

const fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    match NaiveDate::from_ymd_opt(y, m, d) {
        Some(x) => x,
        None => NaiveDate::MIN,
    }
}

const fn time(h: u32, m: u32) -> NaiveTime {
    match NaiveTime::from_hms_opt(h, m, 0) {
        Some(x) => x,
        None => NaiveTime::MIN,
    }
}

/// First Monday of the rules (DTSTART date of the Mon–Fri rules).
const RULES_START: NaiveDate = date(2027, 1, 4);

/// "Now" of every query: 2027-02-28T00:00:00Z.
const NOW: NaiveDate = date(2027, 2, 28);

/// Mondays of the vacation weeks, all inside March 2027.
const VACATION_WEEKS: [NaiveDate; 4] = [
    date(2027, 3, 1),
    date(2027, 3, 8),
    date(2027, 3, 15),
    date(2027, 3, 22),
];

/// A small deterministic PRNG (splitmix64).
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator starting from `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, n)`; 0 when `n` is 0.
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform in `[lo, hi]`; `lo` when `hi < lo`.
    pub fn between(&mut self, lo: i64, hi: i64) -> i64 {
        if hi <= lo {
            return lo;
        }
        lo + self.below((hi - lo) as u64 + 1) as i64
    }
}

/// The benchmark scenarios.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    /// 50 providers (40 New York, 10 Berlin), March 2027.
    ClinicMonth,
    /// 1000 providers (800 New York, 200 Berlin), 2027-03-01 to 2027-05-30.
    Large,
}

impl Scenario {
    /// Every scenario.
    pub const ALL: [Scenario; 2] = [Scenario::ClinicMonth, Scenario::Large];

    /// Name used for the benchmark group.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::ClinicMonth => "clinic_month",
            Scenario::Large => "large",
        }
    }

    /// The parameters of the scenario.
    pub fn recipe(self) -> Recipe {
        match self {
            Scenario::ClinicMonth => Recipe {
                providers: 50,
                berlin: 10,
                from: date(2027, 3, 1),
                days: 31,
                seed: SEED,
            },
            Scenario::Large => Recipe {
                providers: 1000,
                berlin: 200,
                from: date(2027, 3, 1),
                days: 90,
                seed: SEED ^ 1000,
            },
        }
    }

    /// The clinic of the scenario.
    pub fn clinic(self) -> Clinic {
        self.recipe().clinic()
    }

    /// The slot query of the scenario: every provider, the whole window.
    pub fn query(self) -> SlotQuery {
        self.recipe().query()
    }
}

/// The clinic-month scenario: 50 providers, March 2027.
pub fn clinic_month() -> Clinic {
    Scenario::ClinicMonth.clinic()
}

/// The slot query of [`clinic_month`]: 2027-03-01T00:00Z to 2027-04-01T00:00Z.
pub fn clinic_month_query() -> SlotQuery {
    Scenario::ClinicMonth.query()
}

/// The large scenario: 1000 providers, 2027-03-01 to 2027-05-30.
pub fn large() -> Clinic {
    Scenario::Large.clinic()
}

/// The slot query of [`large`]: 2027-03-01T00:00Z to 2027-05-30T00:00Z.
pub fn large_query() -> SlotQuery {
    Scenario::Large.query()
}

/// Parameters of a generated clinic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipe {
    /// Number of providers.
    pub providers: usize,
    /// How many of them (the last ones) are in Berlin; the rest in New York.
    pub berlin: usize,
    /// First day of the window (from its UTC midnight).
    pub from: NaiveDate,
    /// Length of the window in days.
    pub days: u32,
    /// Seed of the generator.
    pub seed: u64,
}

/// How a provider's week looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pattern {
    /// Mon–Fri 08–12 and 13–17.
    Weekdays,
    /// Mon/Wed/Fri 08–12 and 13–17, Tue/Thu 12–20.
    LateTueThu,
    /// Mon–Fri 08–12 and 13–17 every other week, from `RULES_START` plus
    /// `phase` weeks.
    AlternateWeeks { phase: i64 },
}

fn pattern_of(i: usize) -> Pattern {
    match i % 20 {
        0..=13 => Pattern::Weekdays,
        14..=16 => Pattern::LateTueThu,
        _ => Pattern::AlternateWeeks {
            phase: (i / 20 % 2) as i64,
        },
    }
}

/// One weekly rule as the generator reads it.
#[derive(Debug, Clone, Copy)]
struct Rule {
    /// DTSTART date (the first matching day).
    first: NaiveDate,
    start: NaiveTime,
    end: NaiveTime,
    /// Bit `i`: weekday `i` (Monday = 0).
    days: u8,
    interval: i64,
}

const MON_FRI: u8 = 0b1_1111;
const MON_WED_FRI: u8 = 0b1_0101;
const TUE_THU: u8 = 0b0_1010;

fn byday(days: u8) -> String {
    ["MO", "TU", "WE", "TH", "FR", "SA", "SU"]
        .iter()
        .enumerate()
        .filter(|(i, _)| days & (1 << i) != 0)
        .map(|(_, d)| *d)
        .collect::<Vec<_>>()
        .join(",")
}

impl Rule {
    fn rrule(&self) -> String {
        let mut s = format!("FREQ=WEEKLY;BYDAY={}", byday(self.days));
        if self.interval > 1 {
            s.push_str(&format!(";INTERVAL={}", self.interval));
        }
        s
    }

    /// Whether the rule has a block starting on local date `d` (WKST=MO).
    fn on(&self, d: NaiveDate) -> bool {
        if d < self.first {
            return false;
        }
        let origin =
            self.first - Duration::days(i64::from(self.first.weekday().num_days_from_monday()));
        let weeks = (d - origin).num_days().div_euclid(7);
        weeks.rem_euclid(self.interval.max(1)) == 0
            && self.days & (1 << d.weekday().num_days_from_monday()) != 0
    }
}

fn rules_of(pattern: Pattern) -> Vec<Rule> {
    let day = |first, start, end, days, interval| Rule {
        first,
        start,
        end,
        days,
        interval,
    };
    match pattern {
        Pattern::Weekdays => vec![
            day(RULES_START, time(8, 0), time(12, 0), MON_FRI, 1),
            day(RULES_START, time(13, 0), time(17, 0), MON_FRI, 1),
        ],
        Pattern::LateTueThu => vec![
            day(RULES_START, time(8, 0), time(12, 0), MON_WED_FRI, 1),
            day(RULES_START, time(13, 0), time(17, 0), MON_WED_FRI, 1),
            day(
                RULES_START + Duration::days(1),
                time(12, 0),
                time(20, 0),
                TUE_THU,
                1,
            ),
        ],
        Pattern::AlternateWeeks { phase } => {
            let first = RULES_START + Duration::weeks(phase);
            vec![
                day(first, time(8, 0), time(12, 0), MON_FRI, 2),
                day(first, time(13, 0), time(17, 0), MON_FRI, 2),
            ]
        }
    }
}

/// The instant of a local wall time (the recipe's times are never in a gap
/// or a fold; the earliest reading is taken all the same).
fn instant(zone: Tz, wall: NaiveDateTime) -> Option<i64> {
    zone.from_local_datetime(&wall)
        .earliest()
        .map(|t| t.timestamp())
}

fn utc(secs: i64) -> DateTime<Utc> {
    DateTime::<Utc>::from_timestamp(secs, 0).unwrap_or_default()
}

fn midnight_utc(d: NaiveDate) -> DateTime<Utc> {
    d.and_time(NaiveTime::MIN).and_utc()
}

impl Recipe {
    /// Window start, UTC.
    pub fn window_from(&self) -> DateTime<Utc> {
        midnight_utc(self.from)
    }

    /// Window end (exclusive), UTC.
    pub fn window_to(&self) -> DateTime<Utc> {
        midnight_utc(self.from + Duration::days(i64::from(self.days)))
    }

    /// The slot query over the whole window, for every provider.
    pub fn query(&self) -> SlotQuery {
        SlotQuery {
            type_id: TYPE_ID.to_owned(),
            from: self.window_from(),
            to: self.window_to(),
            now: midnight_utc(NOW),
            resources: Vec::new(),
        }
    }

    /// Builds the clinic.
    pub fn clinic(&self) -> Clinic {
        let mut clinic = Clinic {
            appointment_types: vec![consult()],
            ..Clinic::default()
        };
        let width = self.providers.saturating_sub(1).to_string().len().max(3);
        for i in 0..self.providers {
            let mut rng =
                SplitMix64::new(self.seed ^ (i as u64 + 1).wrapping_mul(0xd6e8_feb8_6659_fd93));
            let id = format!("p{i:0width$}");
            let berlin = i >= self.providers.saturating_sub(self.berlin);
            let zone = if berlin {
                chrono_tz::Europe::Berlin
            } else {
                chrono_tz::America::New_York
            };
            self.provider(&mut clinic, &mut rng, i, &id, zone);
        }
        clinic
    }

    fn provider(&self, clinic: &mut Clinic, rng: &mut SplitMix64, i: usize, id: &str, zone: Tz) {
        clinic.resources.push(Resource {
            id: id.into(),
            name: format!("Provider {i}"),
            kind: ResourceKind::Provider,
            zone: zone.name().to_owned(),
            capacity: 1,
            tags: vec!["provider".to_owned()],
            department: None,
        });
        let rules = rules_of(pattern_of(i));
        for r in &rules {
            clinic.working_hours.push(WorkingHours {
                resource: id.into(),
                dtstart: r.first.and_time(r.start),
                end: r.end,
                rrule: r.rrule(),
                zone: None,
                rdates: Vec::new(),
                exdates: Vec::new(),
                nonexistent: Nonexistent::ShiftForward,
            });
        }

        // Every tenth provider is away one week (whole local days).
        let mut vacation = None;
        if i % 10 == 7 {
            let week = rng.below(VACATION_WEEKS.len() as u64) as usize;
            let monday = VACATION_WEEKS
                .get(week)
                .copied()
                .unwrap_or(date(2027, 3, 1));
            let start = instant(zone, monday.and_time(NaiveTime::MIN));
            let end = instant(zone, (monday + Duration::weeks(1)).and_time(NaiveTime::MIN));
            if let (Some(start), Some(end)) = (start, end) {
                clinic.time_off.push(TimeOff {
                    id: format!("vacation-{id}"),
                    resource: Some(id.into()),
                    start: utc(start),
                    end: utc(end),
                    kind: TimeOffKind::Vacation,
                });
                vacation = Some((start, end));
            }
        }

        let (from, to) = (self.window_from().timestamp(), self.window_to().timestamp());
        let mut blocks = Vec::new();
        // Local dates around the window; blocks are clipped to it.
        let mut d = self.from - Duration::days(1);
        let last = self.from + Duration::days(i64::from(self.days));
        while d <= last {
            for r in &rules {
                if !r.on(d) {
                    continue;
                }
                let end_date = if r.end <= r.start {
                    d.succ_opt()
                } else {
                    Some(d)
                };
                let (Some(s), Some(e)) = (
                    instant(zone, d.and_time(r.start)),
                    end_date.and_then(|ed| instant(zone, ed.and_time(r.end))),
                ) else {
                    continue;
                };
                let (s, e) = (s.max(from), e.min(to));
                if e <= s || vacation.is_some_and(|(vs, ve)| s < ve && vs < e) {
                    continue;
                }
                blocks.push((s, e));
            }
            d += Duration::days(1);
        }
        blocks.sort_unstable();

        let mut seq = 0usize;
        let patients = (self.providers as u64) * 200;
        for (s, e) in blocks {
            for (start, len) in fill_block(rng, (e - s) / UNIT) {
                seq += 1;
                let start = s + start * UNIT;
                clinic.appointments.push(Appointment {
                    id: format!("a-{id}-{seq:05}").as_str().into(),
                    type_id: Some(TYPE_ID.into()),
                    patient: Some(PatientId(format!("pt{:07}", rng.below(patients)))),
                    resources: vec![id.into()],
                    start: Some(utc(start)),
                    end: Some(utc(start + len * UNIT)),
                    status: AppointmentStatus::Booked,
                    buffer_before_min: 0,
                    buffer_after_min: 5,
                    reason: None,
                    notes: None,
                });
            }
        }
    }
}

/// Appointments in a block of `units` five-minute units, as `(start, length)`
/// in units: about [`BOOKED_SHARE`] of the block booked with 3–12-unit
/// appointments, each one unit (the recorded buffer) or more before the
/// next, the free units spread at random over the gaps.
fn fill_block(rng: &mut SplitMix64, units: i64) -> Vec<(i64, i64)> {
    let target = (units as f64 * BOOKED_SHARE).round() as i64;
    let mut lengths = Vec::new();
    let mut booked = 0;
    while booked < target {
        let len = rng.between(3, 12).min(target - booked);
        if len >= 3 {
            lengths.push(len);
            booked += len;
            continue;
        }
        // A rest of one or two units: lengthen the last appointment, or
        // shorten it to make room for a 15-minute one.
        match lengths.last_mut() {
            Some(last) if *last + len <= 12 => *last += len,
            Some(last) => {
                *last -= 3 - len;
                lengths.push(3);
            }
            None => {}
        }
        booked += len;
        if lengths.is_empty() {
            booked = 0;
            break;
        }
    }
    let n = lengths.len() as i64;
    let mut free = units - booked - (n - 1).max(0);
    while free < 0 {
        // Never for the recipe's blocks; keeps odd inputs valid.
        let Some(len) = lengths.pop() else {
            return Vec::new();
        };
        free += len + 1;
    }
    // A random composition of `free` into `lengths.len() + 1` gaps.
    let mut cuts: Vec<i64> = (0..lengths.len()).map(|_| rng.between(0, free)).collect();
    cuts.sort_unstable();
    let mut out = Vec::with_capacity(lengths.len());
    let (mut t, mut prev_cut) = (0, 0);
    for (k, (len, cut)) in lengths.iter().zip(&cuts).enumerate() {
        t += cut - prev_cut + i64::from(k > 0);
        prev_cut = *cut;
        out.push((t, *len));
        t += len;
    }
    out
}

fn consult() -> AppointmentType {
    AppointmentType {
        id: TYPE_ID.into(),
        name: "Consultation".to_owned(),
        duration_min: 30,
        buffer_before_min: 0,
        buffer_after_min: 5,
        step_min: 15,
        align_offset_min: 0,
        min_notice_min: 0,
        horizon_days: None,
        max_per_day: None,
        max_per_week: None,
        requirements: vec![Requirement {
            count: 1,
            resources: Vec::new(),
            tag: Some("provider".to_owned()),
        }],
        reminders_min: vec![],
    }
}

/// Booked share of working time in the query window: appointment time over
/// open time (working hours less time off, as the core reads them).
///
/// # Errors
///
/// As [`Schedule::open`].
pub fn booked_share(schedule: &Schedule, clinic: &Clinic, q: &SlotQuery) -> Result<f64, Error> {
    let (from, to) = (q.from.timestamp(), q.to.timestamp());
    let mut open = 0i64;
    for id in schedule.resource_ids() {
        open += schedule
            .open(id, q.from, q.to)?
            .iter()
            .map(|(s, e)| e - s)
            .sum::<i64>();
    }
    let booked: i64 = clinic
        .appointments
        .iter()
        .filter_map(|a| Some((a.start?.timestamp().max(from), a.end?.timestamp().min(to))))
        .map(|(s, e)| (e - s).max(0))
        .sum();
    Ok(if open == 0 {
        0.0
    } else {
        booked as f64 / open as f64
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zones(c: &Clinic) -> (usize, usize) {
        let ny = c
            .resources
            .iter()
            .filter(|r| r.zone == "America/New_York")
            .count();
        let berlin = c
            .resources
            .iter()
            .filter(|r| r.zone == "Europe/Berlin")
            .count();
        (ny, berlin)
    }

    #[test]
    fn generator_is_deterministic() {
        assert_eq!(clinic_month(), clinic_month());
        assert_eq!(large(), large());
        let q = clinic_month_query();
        assert_eq!(q.from.to_rfc3339(), "2027-03-01T00:00:00+00:00");
        assert_eq!(q.to.to_rfc3339(), "2027-04-01T00:00:00+00:00");
        assert_eq!(q.now.to_rfc3339(), "2027-02-28T00:00:00+00:00");
        let q = large_query();
        assert_eq!(q.to.to_rfc3339(), "2027-05-30T00:00:00+00:00");
    }

    #[test]
    fn clinic_month_shape() {
        let c = clinic_month();
        assert_eq!(c.resources.len(), 50);
        assert_eq!(zones(&c), (40, 10));
        let first = c.resources.first().map(|r| r.id.as_str());
        let last = c.resources.last().map(|r| r.id.as_str());
        assert_eq!((first, last), (Some("p000"), Some("p049")));
        assert!(c.resources.iter().all(|r| r.capacity == 1
            && r.tags == ["provider"]
            && r.kind == ResourceKind::Provider));
        assert_eq!(c.time_off.len(), 5);
        for off in &c.time_off {
            assert!(off.start >= midnight_utc(date(2027, 2, 28)));
            assert!(off.end <= midnight_utc(date(2027, 4, 1)));
            // A week of local days: 167 hours across a spring-forward night.
            let hours = (off.end - off.start).num_hours();
            assert!(hours == 168 || hours == 167, "{}: {hours}", off.id);
            let zone: Tz = c
                .resources
                .iter()
                .find(|r| Some(&r.id) == off.resource.as_ref())
                .map(|r| r.zone.parse().unwrap())
                .unwrap();
            let local = off.start.with_timezone(&zone).naive_local();
            assert_eq!(local.weekday(), chrono::Weekday::Mon, "{}", off.id);
            assert_eq!(local.time(), NaiveTime::MIN, "{}", off.id);
        }
        assert!(c
            .working_hours
            .iter()
            .any(|w| w.rrule.contains("INTERVAL=2")));
        assert!(c
            .working_hours
            .iter()
            .any(|w| w.rrule == "FREQ=WEEKLY;BYDAY=TU,TH" && w.end == time(20, 0)));
        let l = large();
        assert_eq!(l.resources.len(), 1000);
        assert_eq!(zones(&l), (800, 200));
        assert_eq!(l.time_off.len(), 100);
        assert_eq!(l.resources.last().map(|r| r.id.as_str()), Some("p999"));
    }

    /// Appointments are on the 5-minute grid, 15–60 minutes, booked, apart
    /// by at least their buffer, and inside open time as the core reads the
    /// RRULEs (so the generator's blocks agree with the core).
    #[test]
    fn appointments_fit_the_recipe() {
        for scenario in Scenario::ALL {
            let c = scenario.clinic();
            let q = scenario.query();
            let s = Schedule::new(&c).unwrap();
            let mut by_resource: std::collections::BTreeMap<&str, Vec<(i64, i64)>> =
                Default::default();
            for a in &c.appointments {
                let (st, en) = (a.start.unwrap().timestamp(), a.end.unwrap().timestamp());
                assert_eq!(st % 300, 0, "{}", a.id);
                assert!((15 * 60..=60 * 60).contains(&(en - st)), "{}", a.id);
                assert_eq!(a.status, AppointmentStatus::Booked);
                assert!(a.patient.is_some());
                assert_eq!(a.type_id.as_ref().map(|t| t.as_str()), Some(TYPE_ID));
                assert_eq!(a.resources.len(), 1);
                by_resource
                    .entry(a.resources[0].as_str())
                    .or_default()
                    .push((st, en));
            }
            assert_eq!(by_resource.len(), c.resources.len());
            for (id, appts) in by_resource {
                let open = s.open(id, q.from, q.to).unwrap();
                for w in appts.windows(2) {
                    assert!(w[1].0 >= w[0].1 + 300, "{id}: {w:?}");
                }
                for (st, en) in appts {
                    assert!(
                        open.iter().any(|(os, oe)| *os <= st && en <= *oe),
                        "{id}: {st}..{en} outside open time"
                    );
                }
            }
        }
    }

    #[test]
    fn booked_share_is_about_forty_percent() {
        for scenario in Scenario::ALL {
            let c = scenario.clinic();
            let q = scenario.query();
            let s = Schedule::new(&c).unwrap();
            let share = booked_share(&s, &c, &q).unwrap();
            assert!((0.35..=0.45).contains(&share), "{scenario:?}: {share}");
        }
    }

    #[test]
    fn schedules_build_and_have_slots() {
        for scenario in Scenario::ALL {
            let s = Schedule::new(&scenario.clinic()).unwrap();
            let q = scenario.query();
            let slots = s.slots(&q).unwrap();
            assert!(!slots.entries.is_empty(), "{scenario:?}");
            assert!(!slots.is_empty(), "{scenario:?}");
            assert_eq!(s.slots_parallel(&q, 2).unwrap(), slots, "{scenario:?}");
        }
    }

    #[test]
    fn prng_is_fixed() {
        let mut r = SplitMix64::new(0);
        // Reference values of splitmix64 from seed 0.
        assert_eq!(r.next_u64(), 0xe220_a839_7b1d_cdaf);
        assert_eq!(r.next_u64(), 0x6e78_9e6a_a1b9_65f4);
        let mut r = SplitMix64::new(SEED);
        for _ in 0..1000 {
            assert!((3..=12).contains(&r.between(3, 12)));
        }
    }

    #[test]
    fn fill_block_keeps_gaps_and_share() {
        let mut rng = SplitMix64::new(7);
        for units in [48, 96, 10, 8, 7, 5, 3, 0, 47, 95, 120] {
            let appts = fill_block(&mut rng, units);
            let mut end = -1;
            for (s, len) in &appts {
                assert!(*s > end, "{appts:?}");
                assert!((3..=12).contains(len));
                end = s + len;
            }
            assert!(end <= units);
            if units >= 8 {
                let booked: i64 = appts.iter().map(|(_, l)| l).sum();
                assert_eq!(booked, (units as f64 * 0.4).round() as i64, "{units}");
            }
        }
    }
}
